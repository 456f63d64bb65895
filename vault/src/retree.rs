//! Moving the tree to a new tree key (`pivault reencrypt --retire`,
//! FORMAT.md §5 "Tree keys"): every encrypted name, directory ID file,
//! file name binding, symlink target and extended attribute is re-sealed
//! under keys derived from a new random secret, so a former holder of an
//! older keyring, who keeps its names key, reads no current name.
//!
//! The move is done in place and can be interrupted at any moment: while
//! it runs the keyring holds both generations (only this module opens
//! such a vault), and every step is idempotent, trying the new key before
//! the old one. For each entry of a directory, in this order: its
//! contents are re-bound (a file header's binding slot, a directory's ID
//! file, a symlink's target written to the new name), its extended
//! attributes re-sealed, then the host entry renamed to its new encrypted
//! name (a long name's side file first). A crash between two steps leaves
//! an entry whose name is under the old key and whose contents are under
//! the new one, which the next run recognises and finishes. File contents
//! are not touched: their keys hang off the data keys, and the binding
//! slots are outside the blocks' AAD.

use crate::crash::crash_point;
use crate::sys;
use crate::tree::{read_long_name, write_synced, Kind, ROOT_FILES, TEMP_PREFIX};
use crate::{Error, Result};
use std::fs::{self, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use vault_core::{
    DirId, DirIdFile, EncodedName, Header, NameCipher, NameContext, VaultCipher, XattrCipher,
    XattrObject, DIRID_FILE, DIRID_LEN, HEADER_LEN, LONG_NAME_PREFIX, LONG_NAME_SUFFIX,
    ROOT_PARENT, XATTR_HOST_PREFIX,
};

/// What a move did.
#[derive(Debug, Default)]
pub struct TreeMoveReport {
    /// Entries renamed to their new encrypted names.
    pub moved: u64,
    /// Entries found already moved (a resumed run).
    pub already: u64,
    /// Extended attributes re-sealed.
    pub xattrs: u64,
    /// Entries that open under neither key (left as they are; the move is
    /// not complete while any remain).
    pub damaged: Vec<(PathBuf, String)>,
}

/// The two sides of a move.
struct Mover<'a> {
    old: &'a VaultCipher,
    new: &'a VaultCipher,
    old_x: XattrCipher,
    new_x: XattrCipher,
    report: TreeMoveReport,
}

/// Moves the tree of the vault at `root` from `old` (the keyring seen
/// with the old tree key alone) to `new` (the new tree key alone). The
/// caller holds the vault lock and, afterwards, drops the old generation
/// from the keyring only when [`TreeMoveReport::damaged`] is empty.
pub fn move_tree(root: &Path, old: &VaultCipher, new: &VaultCipher) -> Result<TreeMoveReport> {
    let mut m = Mover {
        old,
        new,
        old_x: old.xattr_cipher().map_err(|e| Error::core(root, e))?,
        new_x: new.xattr_cipher().map_err(|e| Error::core(root, e))?,
        report: TreeMoveReport::default(),
    };
    let at = NameContext::new(&ROOT_PARENT, b"");
    // The walk goes through a descriptor pinned on each directory (as the
    // tree does, `crate::tree::Dir`): nothing below the root is reached by
    // a path a planted symlink could steer, and depth has no limit.
    let (host, _root_pin) = crate::tree::anchor_root(root).map_err(|e| Error::io(root, e))?;
    let id = m.rebind_dir(&host, at)?;
    m.xattrs(&host, XattrObject::Dir(&id))?;
    m.dir(&host, &id, true)?;
    Ok(m.report)
}

impl Mover<'_> {
    fn damaged(&mut self, host: &Path, what: impl std::fmt::Display) {
        self.report
            .damaged
            .push((crate::tree::shown(host), what.to_string()));
    }

    /// Binds the directory at `host` (reached as `at`) under the new key,
    /// and returns its ID.
    fn rebind_dir(&self, host: &Path, at: NameContext<'_>) -> Result<DirId> {
        let path = host.join(DIRID_FILE);
        let bytes = keys::read_regular(&path).map_err(|e| Error::io(&path, e))?;
        if bytes.len() != DIRID_LEN {
            return Err(Error::damaged(
                path,
                vault_core::Error::DirId("wrong length"),
            ));
        }
        if let Ok(f) = DirIdFile::open(self.new, &bytes, at) {
            return Ok(f.id);
        }
        let id = DirIdFile::open(self.old, &bytes, at)
            .map_err(|e| Error::core(&path, e))?
            .id;
        let f = DirIdFile::with_id(self.new, id, at);
        let tmp = host.join(format!("{TEMP_PREFIX}retree-dirid"));
        let _ = fs::remove_file(&tmp);
        write_synced(&tmp, &f.to_bytes()).map_err(|e| Error::io(&tmp, e))?;
        crash_point(host)?;
        fs::rename(&tmp, &path).map_err(|e| Error::io(&path, e))?;
        fsync_dir(host)?;
        Ok(id)
    }

    /// Moves every entry of the directory at `host` (ID `id`), depth first.
    fn dir(&mut self, host: &Path, id: &DirId, is_root: bool) -> Result<()> {
        let mut names = Vec::new();
        for de in fs::read_dir(host).map_err(|e| Error::io(host, e))? {
            let de = de.map_err(|e| Error::io(host, e))?;
            names.push(de.file_name().to_string_lossy().into_owned());
        }
        names.sort();
        for entry in names {
            if entry == DIRID_FILE
                || entry.starts_with(TEMP_PREFIX)
                || (is_root && ROOT_FILES.contains(&entry.as_str()))
                || (entry.starts_with(LONG_NAME_PREFIX) && entry.ends_with(LONG_NAME_SUFFIX))
            {
                continue;
            }
            let path = host.join(&entry);
            if let Err(e) = self.entry(host, id, &entry, &path) {
                match e {
                    Error::Damaged { .. } | Error::Core(_) => self.damaged(&path, e),
                    e => return Err(e),
                }
            }
        }
        // Side files whose entry is gone: a move interrupted between a
        // long entry's rename and its old side file's removal leaves one,
        // holding the old key's encryption of a current name.
        for de in fs::read_dir(host).map_err(|e| Error::io(host, e))? {
            let de = de.map_err(|e| Error::io(host, e))?;
            let n = de.file_name().to_string_lossy().into_owned();
            if let Some(entry) = n
                .strip_suffix(LONG_NAME_SUFFIX)
                .filter(|e| e.starts_with(LONG_NAME_PREFIX))
            {
                if fs::symlink_metadata(host.join(entry)).is_err() {
                    let _ = fs::remove_file(de.path());
                }
            }
        }
        fsync_dir(host)
    }

    fn entry(&mut self, dir_host: &Path, id: &DirId, entry: &str, path: &Path) -> Result<()> {
        crash_point(path)?;
        let long = entry.starts_with(LONG_NAME_PREFIX);
        let full = if long {
            read_long_name(path, entry)?
        } else if NameCipher::is_encoded_entry(entry) {
            entry.to_string()
        } else {
            self.damaged(path, "not a pivault entry (foreign or renamed file)");
            return Ok(());
        };
        let (name, moved) = match self.new.names().decrypt(id, &full) {
            Ok(n) => (n, true),
            Err(_) => match self.old.names().decrypt(id, &full) {
                Ok(n) => (n, false),
                Err(e) => return Err(Error::core(path, e)),
            },
        };
        let at = NameContext::new(id, &name);
        let meta = fs::symlink_metadata(path).map_err(|e| Error::io(path, e))?;
        let kind = Kind::of(meta.file_type());
        // A directory is pinned before anything is read from it, and the
        // pin follows it through its rename below.
        let pinned = match kind {
            Some(Kind::Dir) => Some(crate::tree::anchor(path).map_err(|e| Error::io(path, e))?),
            _ => None,
        };
        let enc = self
            .new
            .names()
            .encrypt(id, &name)
            .map_err(|e| Error::core(path, e))?;
        let target = dir_host.join(enc.entry());
        // A long new name's side file exists before any entry under that
        // name (the symlink below is made at its new name at once).
        if !moved {
            if let (Some(side), EncodedName::Long { full, .. }) = (enc.side_file(), &enc) {
                let side = dir_host.join(side);
                keys::write_atomic(&side, full.as_bytes(), 0o600)
                    .map_err(|e| Error::io(&side, std::io::Error::other(e.to_string())))?;
            }
        }
        match (kind, &pinned) {
            (_, Some((dhost, _))) => {
                let child = self.rebind_dir(dhost, at)?;
                self.xattrs(dhost, XattrObject::Dir(&child))?;
            }
            (Some(Kind::File), _) => {
                let file_id = self.rebind_file(path, at)?;
                self.xattrs(path, XattrObject::File(&file_id))?;
            }
            (Some(Kind::Symlink), _) if !moved => self.resymlink(path, &target, at)?,
            _ => {}
        }
        crash_point(path)?;
        if !moved {
            if kind != Some(Kind::Symlink) {
                fs::rename(path, &target).map_err(|e| Error::io(path, e))?;
            }
            crash_point(path)?;
            if long {
                let old_side = dir_host.join(format!("{entry}{LONG_NAME_SUFFIX}"));
                let _ = fs::remove_file(old_side);
            }
            self.report.moved += 1;
        } else {
            self.report.already += 1;
        }
        if let Some((dhost, _pin)) = &pinned {
            let child = self.rebind_dir(dhost, at)?;
            self.dir(dhost, &child, false)?;
        }
        Ok(())
    }

    /// Re-binds the file at `host` to `at` under the new key (one header
    /// write, synced); returns its file ID.
    fn rebind_file(&self, host: &Path, at: NameContext<'_>) -> Result<[u8; 16]> {
        let mut f = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(host)
            .map_err(|e| Error::io(host, e))?;
        let mut hb = [0u8; HEADER_LEN];
        f.read_exact(&mut hb).map_err(|e| Error::io(host, e))?;
        let mut header = Header::parse(&hb).map_err(|e| Error::core(host, e))?;
        if header
            .rekey_binding(self.old, self.new, at)
            .map_err(|e| Error::core(host, e))?
        {
            f.seek(SeekFrom::Start(0))
                .and_then(|_| f.write_all(&header.to_bytes()))
                .and_then(|_| f.sync_data())
                .map_err(|e| Error::io(host, e))?;
        }
        Ok(header.file_id)
    }

    /// Writes the symlink at `old_path` (named under the old key) anew at
    /// `new_path` with its target sealed under the new key, then removes
    /// the old entry.
    fn resymlink(&self, old_path: &Path, new_path: &Path, at: NameContext<'_>) -> Result<()> {
        let sealed = fs::read_link(old_path).map_err(|e| Error::io(old_path, e))?;
        let sealed = sealed.as_os_str().as_encoded_bytes();
        let target = self
            .old
            .open_symlink(at.dir_id, at.name, sealed)
            .map_err(|e| Error::core(old_path, e))?;
        let resealed = self
            .new
            .seal_symlink(at.dir_id, at.name, &target)
            .map_err(|e| Error::core(old_path, e))?;
        match fs::remove_file(new_path) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(new_path, e)),
        }
        std::os::unix::fs::symlink(&resealed, new_path).map_err(|e| Error::io(new_path, e))?;
        fs::remove_file(old_path).map_err(|e| Error::io(old_path, e))
    }

    /// Re-seals every pivault attribute of `host` found under the old key.
    fn xattrs(&mut self, host: &Path, obj: XattrObject<'_>) -> Result<()> {
        let names = sys::llistxattr(host).map_err(|e| Error::io(host, e))?;
        for raw in names {
            if !raw.starts_with(XATTR_HOST_PREFIX.as_bytes()) {
                continue;
            }
            if matches!(self.new_x.plain_name(obj, &raw), Ok(Some(_))) {
                continue;
            }
            let Ok(Some(name)) = self.old_x.plain_name(obj, &raw) else {
                self.damaged(host, "an extended attribute opens under neither key");
                continue;
            };
            let host_name = String::from_utf8_lossy(&raw).into_owned();
            let sealed = sys::lgetxattr(host, &host_name).map_err(|e| Error::io(host, e))?;
            let value = self
                .old_x
                .open_value(obj, &name, &sealed)
                .map_err(|e| Error::core(host, e))?;
            let new_name = self
                .new_x
                .host_name(obj, &name)
                .map_err(|e| Error::core(host, e))?;
            let new_value = self
                .new_x
                .seal_value(obj, &name, &value)
                .map_err(|e| Error::core(host, e))?;
            sys::lsetxattr(host, &new_name, &new_value).map_err(|e| Error::io(host, e))?;
            crash_point(host)?;
            sys::lremovexattr(host, &host_name).map_err(|e| Error::io(host, e))?;
            self.report.xattrs += 1;
        }
        Ok(())
    }
}

fn fsync_dir(host: &Path) -> Result<()> {
    fs::File::open(host)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(host, e))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tree::Vault;
    use std::collections::BTreeMap;
    use vault_core::{Keyring, Suite};

    /// Everything a reader sees: path -> content, link target, or "dir";
    /// and the extended attributes of `a/b/file.txt` and `a`.
    fn view(root: &Path, ring: &Keyring) -> BTreeMap<String, Vec<u8>> {
        let v = Vault::open(
            root.to_path_buf(),
            VaultCipher::new(ring.clone(), Suite::Aes256Gcm),
        )
        .unwrap();
        let mut map = crate::test_support::exported(&v);
        let x = v.cipher().xattr_cipher().unwrap();
        let a = v.subdir(v.root(), b"a").unwrap();
        for (host, obj_id, is_dir) in [
            (a.host.clone(), a.id, true),
            (
                v.lookup(&v.subdir(&a, b"b").unwrap(), b"file.txt")
                    .unwrap()
                    .unwrap()
                    .0,
                v.open_file(&v.subdir(&a, b"b").unwrap(), b"file.txt", false)
                    .unwrap()
                    .header()
                    .file_id,
                false,
            ),
        ] {
            let obj = if is_dir {
                XattrObject::Dir(&obj_id)
            } else {
                XattrObject::File(&obj_id)
            };
            for raw in sys::llistxattr(&host).unwrap() {
                if let Ok(Some(name)) = x.plain_name(obj, &raw) {
                    let sealed = sys::lgetxattr(&host, &String::from_utf8_lossy(&raw)).unwrap();
                    let value = x.open_value(obj, &name, &sealed).unwrap();
                    map.insert(
                        format!("xattr dir={is_dir} {}", String::from_utf8_lossy(&name)),
                        value,
                    );
                }
            }
        }
        map
    }

    fn build(root: &Path) -> Keyring {
        let ring = Keyring::generate().unwrap();
        let c = VaultCipher::new(ring.clone(), Suite::Aes256Gcm);
        Vault::init(root, &c).unwrap();
        let src = tempfile::tempdir().unwrap();
        let s = src.path();
        fs::create_dir_all(s.join("a/b")).unwrap();
        fs::write(s.join("a/b/file.txt"), b"Jane Roe 078-05-1120\n").unwrap();
        fs::write(s.join("a").join("L".repeat(200)), b"long name").unwrap();
        fs::create_dir(s.join("a").join("D".repeat(190))).unwrap();
        fs::write(
            s.join("a").join("D".repeat(190)).join("inner"),
            b"in a long dir",
        )
        .unwrap();
        std::os::unix::fs::symlink("a/b/file.txt", s.join("link")).unwrap();
        std::os::unix::fs::symlink("../top", s.join("a").join("S".repeat(190))).unwrap();
        fs::write(s.join("top"), b"top").unwrap();
        let v = Vault::open(root.to_path_buf(), c).unwrap();
        crate::import(&v, s, &crate::NoProgress).unwrap();
        let x = v.cipher().xattr_cipher().unwrap();
        let a = v.subdir(v.root(), b"a").unwrap();
        let (b, name) = (v.subdir(&a, b"b").unwrap(), b"file.txt");
        let fid = v.open_file(&b, name, false).unwrap().header().file_id;
        let fhost = v.lookup(&b, name).unwrap().unwrap().0;
        for (host, obj) in [
            (&a.host, XattrObject::Dir(&a.id)),
            (&fhost, XattrObject::File(&fid)),
        ] {
            let n = x.host_name(obj, b"user.colour").unwrap();
            let val = x.seal_value(obj, b"user.colour", b"blue").unwrap();
            sys::lsetxattr(host, &n, &val).unwrap();
        }
        ring
    }

    /// Long-name side files whose entry does not exist, in the whole tree.
    fn stray_side_files(root: &Path) -> usize {
        let mut n = 0;
        for e in fs::read_dir(root).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            if e.file_type().unwrap().is_dir() {
                n += stray_side_files(&e.path());
            } else if let Some(entry) = name.strip_suffix(LONG_NAME_SUFFIX) {
                if entry.starts_with(LONG_NAME_PREFIX)
                    && fs::symlink_metadata(root.join(entry)).is_err()
                {
                    n += 1;
                }
            }
        }
        n
    }

    fn copy(from: &Path, to: &Path) {
        crate::test_support::copy_dir(from, to)
    }

    /// Every crash point of a move, then a resumed move: the vault reads
    /// back exactly as before under the new key, and the old tree key
    /// names nothing.
    #[test]
    fn a_move_interrupted_at_any_crash_point_resumes_to_the_same_tree() {
        let base = tempfile::tempdir().unwrap();
        let original = base.path().join("v");
        fs::create_dir(&original).unwrap();
        let ring = build(&original);
        let before = view(&original, &ring);
        assert_eq!(
            before.keys().filter(|k| k.starts_with("xattr")).count(),
            2,
            "{before:?}"
        );

        // Count the crash points of a whole move.
        let probe = base.path().join("probe");
        copy(&original, &probe);
        let mut moving = ring.clone();
        let (old_g, new_g) = moving.begin_tree_move().unwrap();
        let old = VaultCipher::new(moving.tree_view(old_g).unwrap(), Suite::Aes256Gcm);
        let new = VaultCipher::new(moving.tree_view(new_g).unwrap(), Suite::Aes256Gcm);
        let (r, points) = crate::crash::count(|| move_tree(&probe, &old, &new));
        let r = r.unwrap();
        assert!(r.damaged.is_empty(), "{:?}", r.damaged);
        assert!(points > 20, "{points} crash points");
        eprintln!("checked {points} crash points");

        for n in 0..points {
            let v = base.path().join(format!("crash-{n}"));
            copy(&original, &v);
            let err = crate::crash::stop_at(n, || move_tree(&v, &old, &new))
                .expect_err("stops at the crash point");
            assert!(err.to_string().contains("test crash point"), "{err}");
            // The vault stays unopenable except by the move.
            assert!(matches!(
                Vault::open(
                    v.clone(),
                    VaultCipher::new(moving.clone(), Suite::Aes256Gcm)
                ),
                Err(Error::TreeMovePending(_))
            ));
            let r = move_tree(&v, &old, &new).unwrap();
            assert!(r.damaged.is_empty(), "crash point {n}: {:?}", r.damaged);
            let mut done = moving.clone();
            done.finish_tree_move();
            assert_eq!(view(&v, &done), before, "crash point {n}");
            assert_eq!(stray_side_files(&v), 0, "crash point {n}");
            // The keyring from before the move names nothing any more.
            assert!(
                Vault::open(v.clone(), VaultCipher::new(ring.clone(), Suite::Aes256Gcm)).is_err(),
                "crash point {n}: the old tree key still opens the root"
            );
            fs::remove_dir_all(&v).unwrap();
        }
    }
}
