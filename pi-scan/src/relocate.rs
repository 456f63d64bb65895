//! Moving a flagged file into a mounted vault without ever touching
//! another file: the original is opened once (`O_NOFOLLOW`), checked on
//! that descriptor (a regular file with one link, the inode that was
//! scanned), copied from it to the same relative path under the mount
//! point (never over an existing file, and only if the new file is on the
//! vault's mount), read back and compared, overwritten with zeros through
//! the same descriptor and fsynced, and its name removed only if the name
//! still refers to that inode. Whoever swaps a symbolic link in for the
//! name meanwhile changes nothing: the descriptor still points at the
//! scanned file. docs/SCAN.md says what the overwrite cannot promise.

use crate::Error;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use vault::mountinfo::{vault_mount_of, VaultMount};

const CHUNK: usize = 1 << 16;

fn io(path: &Path, op: &'static str) -> impl FnOnce(io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io { path, op, source }
}

/// The mounted vault `vault` is in (its root or a directory of it).
pub fn vault_target(vault: &Path) -> Result<VaultMount, Error> {
    if !fs::metadata(vault)
        .map_err(io(vault, "opening the vault"))?
        .is_dir()
    {
        return Err(Error::NotADirectory(vault.to_path_buf()));
    }
    vault_mount_of(vault).ok_or_else(|| Error::NotAVaultMount(vault.to_path_buf()))
}

/// Moves `file`, found while scanning `root` (its device and inode then:
/// `scanned`), to the same path relative to `root` under `vault`, which
/// must be in a mounted pivault vault (checked before the copy and again
/// before the original is destroyed), and returns the destination. When
/// `root` is the file itself, its name is kept.
///
/// Refuses, leaving everything as it was, when the destination exists, the
/// file has other hard links, is not a regular file, or is not the file
/// that was scanned. The original is destroyed only after its copy has been
/// flushed and read back identical.
pub fn move_into(
    root: &Path,
    file: &Path,
    scanned: Option<(u64, u64)>,
    vault: &Path,
) -> Result<PathBuf, Error> {
    let mount = vault_target(vault)?;
    let still_mounted = || match vault_mount_of(vault) {
        Some(m) if m == mount => Ok(()),
        _ => Err(Error::NotAVaultMount(vault.to_path_buf())),
    };
    move_file(root, file, scanned, vault, mount.dev, &still_mounted)
}

/// [`move_into`] with the destination device given and a check run between
/// the verified copy and the destruction of the original (the mount check;
/// tests also use that moment to play an attacker).
pub(crate) fn move_file(
    root: &Path,
    file: &Path,
    scanned: Option<(u64, u64)>,
    vault: &Path,
    vault_dev: u64,
    before_destroy: &dyn Fn() -> Result<(), Error>,
) -> Result<PathBuf, Error> {
    let rel = if root == file {
        file.file_name().map(PathBuf::from)
    } else {
        file.strip_prefix(root).ok().map(Path::to_path_buf)
    }
    .filter(|r| {
        r.components()
            .all(|c| matches!(c, std::path::Component::Normal(_)))
    })
    .ok_or_else(|| Error::OutsideRoot {
        path: file.to_path_buf(),
        root: root.to_path_buf(),
    })?;
    let dest = vault.join(rel);

    let mut orig = match OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NOCTTY | libc::O_NONBLOCK)
        .open(file)
    {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return Err(Error::NotRegular(file.to_path_buf()))
        }
        Err(e) => return Err(io(file, "opening the original to move it")(e)),
    };
    let meta = orig.metadata().map_err(io(file, "reading"))?;
    if !meta.is_file() {
        return Err(Error::NotRegular(file.to_path_buf()));
    }
    if meta.nlink() > 1 {
        return Err(Error::HardLinked {
            path: file.to_path_buf(),
            links: meta.nlink(),
        });
    }
    let id = (meta.dev(), meta.ino());
    if scanned.is_some_and(|s| s != id) {
        return Err(Error::Replaced(file.to_path_buf()));
    }
    if fs::symlink_metadata(&dest).is_ok() {
        return Err(Error::DestinationExists {
            src: file.to_path_buf(),
            dest,
        });
    }
    if let Some(parent) = dest.parent() {
        fs::create_dir_all(parent).map_err(io(parent, "creating directory"))?;
    }
    let mut copy = copy_new(&mut orig, &dest, &meta, vault_dev)?;
    let verified = same_contents(&mut orig, &mut copy).map_err(|e| Error::Io {
        path: dest.clone(),
        op: "verifying the copy",
        source: e,
    });
    let ready = match verified {
        Ok(true) => before_destroy(),
        Ok(false) => Err(Error::VerifyFailed {
            src: file.to_path_buf(),
            dest: dest.clone(),
        }),
        Err(e) => Err(e),
    };
    if let Err(e) = ready {
        // The copy holds the plaintext: wiped before it goes.
        let _ = overwrite(&mut copy, meta.len());
        let _ = fs::remove_file(&dest);
        return Err(e);
    }
    drop(copy);
    overwrite(&mut orig, meta.len()).map_err(io(file, "overwriting the original"))?;
    // Only the name of the file just overwritten goes: a name swapped
    // for something else meanwhile is left alone.
    match fs::symlink_metadata(file) {
        Ok(m) if (m.dev(), m.ino()) == id => {
            fs::remove_file(file).map_err(io(file, "removing the original"))?
        }
        _ => {
            return Err(Error::NameReplaced {
                path: file.to_path_buf(),
                dest,
            })
        }
    }
    if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        // Makes the removal durable; some filesystems cannot fsync a directory.
        let _ = File::open(parent).and_then(|d| d.sync_all());
    }
    tracing::debug!("moved {} to {}", file.display(), dest.display());
    Ok(dest)
}

/// Copies `src` (from its start) into a new file at `dest` (`create_new`:
/// an existing one is never touched) with the original's permissions,
/// refusing one that is not on `dev` (the vault's mount), and flushes it.
fn copy_new(src: &mut File, dest: &Path, meta: &fs::Metadata, dev: u64) -> Result<File, Error> {
    use std::os::unix::fs::PermissionsExt;
    let mut out = OpenOptions::new()
        .read(true)
        .write(true)
        .create_new(true)
        .mode(meta.permissions().mode() & 0o777)
        .custom_flags(libc::O_NOFOLLOW)
        .open(dest)
        .map_err(|e| match e.kind() {
            io::ErrorKind::AlreadyExists => Error::DestinationExists {
                src: dest.to_path_buf(),
                dest: dest.to_path_buf(),
            },
            _ => io(dest, "copying into the vault")(e),
        })?;
    let on_vault = out.metadata().map(|m| m.dev() == dev).unwrap_or(false);
    if !on_vault {
        let _ = fs::remove_file(dest);
        return Err(Error::NotAVaultMount(
            dest.parent().unwrap_or(dest).to_path_buf(),
        ));
    }
    let copied = src
        .seek(SeekFrom::Start(0))
        .and_then(|_| io::copy(src, &mut out))
        .and_then(|_| out.sync_all());
    if let Err(e) = copied {
        let _ = fs::remove_file(dest);
        return Err(io(dest, "copying into the vault")(e));
    }
    Ok(out)
}

fn same_contents(a: &mut File, b: &mut File) -> io::Result<bool> {
    a.seek(SeekFrom::Start(0))?;
    b.seek(SeekFrom::Start(0))?;
    let (mut ba, mut bb) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
    loop {
        let na = read_full(a, &mut ba)?;
        let nb = read_full(b, &mut bb)?;
        if na != nb || ba[..na] != bb[..nb] {
            return Ok(false);
        }
        if na == 0 {
            return Ok(true);
        }
    }
}

fn read_full(f: &mut File, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// One pass of zeros over `len` bytes from the start, then fsync. More
/// passes add nothing on modern disks; what no pass can reach is in
/// docs/SCAN.md.
fn overwrite(f: &mut File, len: u64) -> io::Result<()> {
    f.seek(SeekFrom::Start(0))?;
    let zeros = vec![0u8; CHUNK];
    let mut left = len;
    while left > 0 {
        let n = left.min(CHUNK as u64) as usize;
        f.write_all(&zeros[..n])?;
        left -= n as u64;
    }
    f.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dev(p: &Path) -> u64 {
        fs::metadata(p).unwrap().dev()
    }

    /// `move_file` into a plain directory standing in for the mount.
    fn move_into(root: &Path, file: &Path, vault: &Path) -> Result<PathBuf, Error> {
        move_file(root, file, None, vault, dev(vault), &|| Ok(()))
    }

    #[test]
    fn moves_keeps_relative_path_and_refuses_existing() {
        let src = tempfile::tempdir().unwrap();
        let vault = tempfile::tempdir().unwrap();
        fs::create_dir(src.path().join("hr")).unwrap();
        let f = src.path().join("hr/list.txt");
        fs::write(&f, b"ssn 536-22-1234").unwrap();
        let dest = move_into(src.path(), &f, vault.path()).unwrap();
        assert_eq!(dest, vault.path().join("hr/list.txt"));
        assert_eq!(fs::read(&dest).unwrap(), b"ssn 536-22-1234");
        assert!(!f.exists());

        fs::write(&f, b"again").unwrap();
        let err = move_into(src.path(), &f, vault.path()).unwrap_err();
        assert!(matches!(err, Error::DestinationExists { .. }), "{err}");
        assert_eq!(fs::read(&f).unwrap(), b"again", "original untouched");
        assert_eq!(
            fs::read(&dest).unwrap(),
            b"ssn 536-22-1234",
            "destination untouched"
        );
    }

    #[test]
    fn hard_links_and_symlinks_are_left_in_place() {
        let src = tempfile::tempdir().unwrap();
        let vault = tempfile::tempdir().unwrap();
        let f = src.path().join("a.txt");
        fs::write(&f, b"ssn 536-22-1234").unwrap();
        fs::hard_link(&f, src.path().join("b.txt")).unwrap();
        let err = move_into(src.path(), &f, vault.path()).unwrap_err();
        assert!(matches!(err, Error::HardLinked { links: 2, .. }), "{err}");
        fs::remove_file(src.path().join("b.txt")).unwrap();
        #[cfg(unix)]
        {
            let link = src.path().join("link.txt");
            std::os::unix::fs::symlink(&f, &link).unwrap();
            let err = move_into(src.path(), &link, vault.path()).unwrap_err();
            assert!(matches!(err, Error::NotRegular(_)), "{err}");
        }
        assert_eq!(fs::read(&f).unwrap(), b"ssn 536-22-1234");
        assert_eq!(
            fs::read_dir(vault.path()).unwrap().count(),
            0,
            "nothing was copied"
        );
    }
}

#[cfg(test)]
mod attacks {
    use super::*;

    #[test]
    fn a_symlink_swapped_in_after_the_copy_never_gets_the_zeros() {
        let src = tempfile::tempdir().unwrap();
        let vault = tempfile::tempdir().unwrap();
        let f = src.path().join("list.txt");
        fs::write(&f, b"ssn 536-22-1234").unwrap();
        // The file root could write that the attacker wants zeroed.
        let victim = src.path().join("victim.conf");
        fs::write(&victim, b"precious").unwrap();
        let swap = || {
            // The attacker's moment: between the verified copy and the
            // overwrite, the name becomes a symlink to the victim.
            fs::rename(&f, src.path().join("moved-away")).unwrap();
            std::os::unix::fs::symlink(&victim, &f).unwrap();
            Ok(())
        };
        let dev = fs::metadata(vault.path()).unwrap().dev();
        let err = move_file(src.path(), &f, None, vault.path(), dev, &swap).unwrap_err();
        assert!(matches!(err, Error::NameReplaced { .. }), "{err}");
        assert_eq!(
            fs::read(&victim).unwrap(),
            b"precious",
            "the victim was zeroed"
        );
        assert!(
            fs::symlink_metadata(&f).unwrap().file_type().is_symlink(),
            "the swapped-in name was removed"
        );
        // The scanned file itself was moved and wiped.
        assert_eq!(
            fs::read(vault.path().join("list.txt")).unwrap(),
            b"ssn 536-22-1234"
        );
        assert_eq!(
            fs::read(src.path().join("moved-away")).unwrap(),
            vec![0u8; 15]
        );
    }

    #[test]
    fn a_file_replaced_since_the_scan_is_left_in_place() {
        let src = tempfile::tempdir().unwrap();
        let vault = tempfile::tempdir().unwrap();
        let f = src.path().join("a.txt");
        fs::write(&f, b"ssn 536-22-1234").unwrap();
        let m = fs::metadata(&f).unwrap();
        let scanned = (m.dev(), m.ino() + 1_000_000);
        let dev = fs::metadata(vault.path()).unwrap().dev();
        let err =
            move_file(src.path(), &f, Some(scanned), vault.path(), dev, &|| Ok(())).unwrap_err();
        assert!(matches!(err, Error::Replaced(_)), "{err}");
        assert_eq!(fs::read(&f).unwrap(), b"ssn 536-22-1234");
        assert_eq!(fs::read_dir(vault.path()).unwrap().count(), 0);
    }

    #[test]
    fn a_target_off_the_vault_mount_gets_nothing_and_the_original_stays() {
        let src = tempfile::tempdir().unwrap();
        let vault = tempfile::tempdir().unwrap();
        let f = src.path().join("a.txt");
        fs::write(&f, b"ssn 536-22-1234").unwrap();
        // A device number no real file has: the target is not the mount.
        let err = move_file(src.path(), &f, None, vault.path(), u64::MAX, &|| Ok(())).unwrap_err();
        assert!(matches!(err, Error::NotAVaultMount(_)), "{err}");
        assert_eq!(
            fs::read_dir(vault.path()).unwrap().count(),
            0,
            "plaintext left in the bare directory"
        );
        assert_eq!(fs::read(&f).unwrap(), b"ssn 536-22-1234");
    }

    #[test]
    fn a_vault_unmounted_before_the_overwrite_keeps_the_original_and_wipes_the_copy() {
        let src = tempfile::tempdir().unwrap();
        let vault = tempfile::tempdir().unwrap();
        let f = src.path().join("a.txt");
        fs::write(&f, b"ssn 536-22-1234").unwrap();
        let dev = fs::metadata(vault.path()).unwrap().dev();
        let gone = || Err(Error::NotAVaultMount(vault.path().to_path_buf()));
        let err = move_file(src.path(), &f, None, vault.path(), dev, &gone).unwrap_err();
        assert!(matches!(err, Error::NotAVaultMount(_)), "{err}");
        assert_eq!(fs::read(&f).unwrap(), b"ssn 536-22-1234");
        assert!(!vault.path().join("a.txt").exists());
    }

    #[test]
    fn the_move_target_must_be_a_mounted_vault() {
        let d = tempfile::tempdir().unwrap();
        let err = vault_target(d.path()).unwrap_err();
        assert!(matches!(err, Error::NotAVaultMount(_)), "{err}");
    }
}
