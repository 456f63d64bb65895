//! rename(2) and renameat2(2) with RENAME_NOREPLACE and RENAME_EXCHANGE.
//!
//! Every name is bound into the ciphertext of what it names, so a move
//! also re-binds: a file's header binding follows it to its new (directory
//! ID, name) (added before the host rename and the old one removed after,
//! so a crash leaves a file that opens under whichever name it has), a
//! directory's ID file is rewritten for its new place (its contents keep
//! working: they are bound to the directory's ID, not its path), and a
//! symlink's target is sealed again for its new name. Long-name side files
//! belong to names, so the new name's side file is written first and the
//! old one removed last.

use super::inodes::Link;
use super::{to_errno, VaultFs};
use crate::sys;
use fuser::{Errno, RenameFlags};
use std::fs::{self, Metadata, OpenOptions};
use std::os::unix::fs::MetadataExt;
use std::path::Path;
use vault::hostattr::{Pinned, SetTime};
use vault::HostFile;
use vault::{Dir, Kind};
use vault_core::{ContentFile, NameContext, DIRID_FILE};

fn io(e: std::io::Error) -> Errno {
    to_errno(&e)
}

/// Opens `host` read-write; when its mode forbids that to its owner (a
/// read-only file of a daemon not running as root), adds the owner's
/// write bit for the open and restores the mode right after. Never
/// through a symlink swapped in for the entry: the mode change and the
/// open go through a descriptor pinned to the entry.
pub(crate) fn open_rw_forced(host: &Path) -> std::io::Result<std::fs::File> {
    let mut rw = OpenOptions::new();
    rw.read(true).write(true);
    match keys::open_regular(host, &rw) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            let p = Pinned::open_as(host, Kind::File)?;
            p.chmod(p.mode() | 0o600)?;
            let f = p.reopen(&rw);
            p.chmod(p.mode())?;
            f
        }
        r => r,
    }
}

/// One side of a rename: where it was, and where it now is.
struct Move<'a> {
    from_dir: &'a Dir,
    from_name: &'a [u8],
    to_dir: &'a Dir,
    to_name: &'a [u8],
}

impl Move<'_> {
    fn from(&self) -> NameContext<'_> {
        NameContext::new(&self.from_dir.id, self.from_name)
    }
    fn to(&self) -> NameContext<'_> {
        NameContext::new(&self.to_dir.id, self.to_name)
    }
}

impl VaultFs {
    pub(crate) fn do_rename(
        &self,
        parent: u64,
        name: &[u8],
        new_parent: u64,
        new_name: &[u8],
        flags: RenameFlags,
    ) -> Result<(), Errno> {
        self.check_writable()?;
        if !(RenameFlags::RENAME_NOREPLACE | RenameFlags::RENAME_EXCHANGE).contains(flags)
            || flags.contains(RenameFlags::RENAME_NOREPLACE | RenameFlags::RENAME_EXCHANGE)
        {
            return Err(Errno::EINVAL);
        }
        let sdir = self.dir(parent)?;
        let ddir = self.dir(new_parent)?;
        let (_, shost) = self.vault.encode(&sdir, name).map_err(|e| self.fail(e))?;
        let (denc, dhost) = self
            .vault
            .encode(&ddir, new_name)
            .map_err(|e| self.fail(e))?;
        let sm = fs::symlink_metadata(&shost).map_err(io)?;
        let dm = match fs::symlink_metadata(&dhost) {
            Ok(m) => Some(m),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => return Err(io(e)),
        };
        let skind = Kind::of(sm.file_type()).ok_or(Errno::EIO)?;
        let from = Link {
            parent,
            name: name.to_vec(),
        };
        let to = Link {
            parent: new_parent,
            name: new_name.to_vec(),
        };
        if flags.contains(RenameFlags::RENAME_EXCHANGE) {
            let dm = dm.ok_or(Errno::ENOENT)?;
            if dm.ino() == sm.ino() {
                return Ok(());
            }
            let dkind = Kind::of(dm.file_type()).ok_or(Errno::EIO)?;
            let sid = self.dir_id_if_dir(skind, &shost, &sdir, name)?;
            let did = self.dir_id_if_dir(dkind, &dhost, &ddir, new_name)?;
            if let Some(id) = &sid {
                self.vault
                    .prepare_dir_move(&shost, id, &ddir.id, new_name)
                    .map_err(|e| self.fail(e))?;
            }
            if let Some(id) = &did {
                self.vault
                    .prepare_dir_move(&dhost, id, &sdir.id, name)
                    .map_err(|e| self.fail(e))?;
            }
            sys::renameat2(&shost, &dhost, libc::RENAME_EXCHANGE).map_err(io)?;
            if skind == Kind::Dir || dkind == Kind::Dir {
                self.paths_changed();
            }
            let there = Move {
                from_dir: &sdir,
                from_name: name,
                to_dir: &ddir,
                to_name: new_name,
            };
            let back = Move {
                from_dir: &ddir,
                from_name: new_name,
                to_dir: &sdir,
                to_name: name,
            };
            self.rebind_after_move(skind, &sm, sid, &dhost, &there)?;
            self.rebind_after_move(dkind, &dm, did, &shost, &back)?;
            self.table().exchange(from, to);
            return Ok(());
        }
        if let Some(dm) = &dm {
            if flags.contains(RenameFlags::RENAME_NOREPLACE) {
                return Err(Errno::EEXIST);
            }
            if dm.ino() == sm.ino() {
                // Two names of one file: rename does nothing.
                return Ok(());
            }
            match (sm.is_dir(), dm.is_dir()) {
                (true, false) => return Err(Errno::ENOTDIR),
                (false, true) => return Err(Errno::EISDIR),
                (true, true) => {
                    if !vault::Vault::host_dir_is_empty(&dhost).map_err(|e| self.fail(e))? {
                        return Err(Errno::ENOTEMPTY);
                    }
                }
                (false, false) => {}
            }
        }
        self.vault
            .prepare_name(&denc, &ddir)
            .map_err(|e| self.fail(e))?;
        let mv = Move {
            from_dir: &sdir,
            from_name: name,
            to_dir: &ddir,
            to_name: new_name,
        };
        // A replaced file that keeps other names loses this one's binding.
        let replaced = match &dm {
            Some(m) if m.is_file() && m.nlink() > 1 => self
                .open_host(&dhost, NameContext::new(&ddir.id, new_name))
                .ok(),
            _ => None,
        };
        // An empty directory being replaced is moved aside first: the host
        // rename cannot replace a directory that holds an ID file.
        let aside = match &dm {
            Some(m) if m.is_dir() => {
                let tmp = self.vault.temp_entry(&ddir).map_err(|e| self.fail(e))?;
                fs::rename(&dhost, &tmp).map_err(io)?;
                Some(tmp)
            }
            _ => None,
        };
        let res = match skind {
            Kind::File => self.move_file(&sm, &shost, &dhost, &mv),
            Kind::Dir => {
                let id = self.dir_id_if_dir(skind, &shost, &sdir, name)?;
                if let Some(id) = &id {
                    self.vault
                        .prepare_dir_move(&shost, id, &ddir.id, new_name)
                        .map_err(|e| self.fail(e))?;
                }
                fs::rename(&shost, &dhost).map_err(io).and_then(|_| {
                    self.paths_changed();
                    self.rebind_after_move(Kind::Dir, &sm, id, &dhost, &mv)
                })
            }
            Kind::Symlink => self.move_symlink(&sm, &shost, &dhost, &mv),
            Kind::Node(_) => fs::rename(&shost, &dhost).map_err(io),
        };
        if let Some(tmp) = aside {
            if res.is_err() {
                let _ = fs::rename(&tmp, &dhost);
            } else {
                let _ = fs::remove_file(tmp.join(DIRID_FILE));
                if let Err(e) = fs::remove_dir(&tmp) {
                    tracing::warn!("could not remove {}: {e}", tmp.display());
                }
            }
        }
        res?;
        if let Some(mut c) = replaced {
            if let Err(e) =
                c.remove_binding(self.vault.cipher(), NameContext::new(&ddir.id, new_name))
            {
                tracing::warn!(
                    "{}: could not drop a replaced name's binding: {e}",
                    dhost.display()
                );
            }
        }
        self.vault
            .remove_side_file(&sdir, name)
            .map_err(|e| self.fail(e))?;
        self.table().rename(from, to);
        Ok(())
    }

    /// The ID of the directory at `host` (reached as `name` in `dir`), or
    /// `None` for other kinds.
    fn dir_id_if_dir(
        &self,
        kind: Kind,
        host: &Path,
        dir: &Dir,
        name: &[u8],
    ) -> Result<Option<vault_core::DirId>, Errno> {
        if kind != Kind::Dir {
            return Ok(None);
        }
        self.vault
            .dir_id_at(host, &dir.id, name)
            .map(Some)
            .map_err(|e| self.fail(e))
    }

    /// Opens the content at `host` for a header (binding) update, checking
    /// it is bound to `at`. Changing a file's names needs no write
    /// permission on the file, so a read-only host file is opened for
    /// writing by briefly adding the owner's write bit.
    pub(crate) fn open_host(
        &self,
        host: &Path,
        at: NameContext<'_>,
    ) -> Result<ContentFile<HostFile>, Errno> {
        let f = open_rw_forced(host).map_err(io)?;
        ContentFile::open(HostFile(f), self.vault.cipher(), at)
            .map_err(|e| self.fail_content(host, e))
    }

    /// Moves a regular file: bind the new name, rename on the host, drop
    /// the old binding (or move it in one header write when all four
    /// slots are taken).
    fn move_file(
        &self,
        sm: &Metadata,
        shost: &Path,
        dhost: &Path,
        mv: &Move<'_>,
    ) -> Result<(), Errno> {
        let cipher = self.vault.cipher();
        let ino = self.inos.fuse(sm.ino());
        let shared = self.open_state(ino).filter(|o| o.is_writable());
        let mut temp = None;
        let mut guard;
        let c: &mut ContentFile<HostFile> = match &shared {
            Some(o) => {
                guard = o.write();
                &mut guard
            }
            None => temp.insert(self.open_host(shost, mv.from())?),
        };
        let added = c.add_binding(cipher, mv.to()).is_ok();
        // The new name's binding is on disk before the new name is: a
        // crash after the host rename must not leave a file whose only
        // binding is to the name it no longer has.
        if added {
            c.store().0.sync_data().map_err(io)?;
        }
        fs::rename(shost, dhost).map_err(io)?;
        let res = if added {
            c.remove_binding(cipher, mv.from())
        } else {
            c.rebind(cipher, mv.from(), mv.to())
        };
        res.map_err(|e| self.fail_content(dhost, e))
    }

    /// Moves a symlink: its target is sealed to its name, so a new host
    /// symlink sealed for the new name replaces the old one.
    fn move_symlink(
        &self,
        sm: &Metadata,
        shost: &Path,
        dhost: &Path,
        mv: &Move<'_>,
    ) -> Result<(), Errno> {
        self.reseal_symlink(sm, shost, dhost, mv)?;
        fs::remove_file(shost).map_err(io)
    }

    /// Writes the symlink read at `src` (sealed for `mv.from`) to `dest`,
    /// sealed for `mv.to`, keeping owner and times.
    fn reseal_symlink(
        &self,
        sm: &Metadata,
        src: &Path,
        dest: &Path,
        mv: &Move<'_>,
    ) -> Result<(), Errno> {
        use std::os::unix::ffi::OsStrExt;
        let cipher = self.vault.cipher();
        let sealed = fs::read_link(src).map_err(io)?;
        let target = cipher
            .open_symlink(&mv.from_dir.id, mv.from_name, sealed.as_os_str().as_bytes())
            .map_err(|e| self.fail_content(src, e))?;
        let resealed = cipher
            .seal_symlink(&mv.to_dir.id, mv.to_name, &target)
            .map_err(|e| self.fail_content(src, e))?;
        let tmp = self.vault.temp_entry(mv.to_dir).map_err(|e| self.fail(e))?;
        std::os::unix::fs::symlink(&resealed, &tmp).map_err(io)?;
        if let Ok(p) = Pinned::open_as(&tmp, Kind::Symlink) {
            let _ = p.chown(Some(sm.uid()), Some(sm.gid()));
            let _ = p.set_times(
                SetTime::At(sm.atime(), sm.atime_nsec()),
                SetTime::At(sm.mtime(), sm.mtime_nsec()),
            );
        }
        if let Err(e) = fs::rename(&tmp, dest) {
            let _ = fs::remove_file(&tmp);
            return Err(io(e));
        }
        Ok(())
    }

    /// Fixes the binding of an entry that a host rename already moved to
    /// `now` (used by RENAME_EXCHANGE and for directories).
    fn rebind_after_move(
        &self,
        kind: Kind,
        m: &Metadata,
        dir_id: Option<vault_core::DirId>,
        now: &Path,
        mv: &Move<'_>,
    ) -> Result<(), Errno> {
        match kind {
            Kind::File => {
                let cipher = self.vault.cipher();
                let ino = self.inos.fuse(m.ino());
                let res = match self.open_state(ino).filter(|o| o.is_writable()) {
                    Some(o) => o.write().rebind(cipher, mv.from(), mv.to()),
                    None => self
                        .open_host(now, mv.from())?
                        .rebind(cipher, mv.from(), mv.to()),
                };
                res.map_err(|e| self.fail_content(now, e))
            }
            Kind::Dir => {
                let id = dir_id.ok_or(Errno::EIO)?;
                self.vault
                    .rebind_dir(now, &id, &mv.to_dir.id, mv.to_name)
                    .map_err(|e| self.fail(e))
            }
            Kind::Symlink => self.reseal_symlink(m, now, now, mv),
            Kind::Node(_) => Ok(()),
        }
    }
}
