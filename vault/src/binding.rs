//! The name-binding protocol: rename (plain, no-replace, exchange), hard
//! link and unlink of a name, in the order that keeps every entry
//! readable through a crash (FORMAT.md §7, §8).
//!
//! Every name is bound into the ciphertext of what it names, so a move
//! also re-binds: a file's header binding follows it to its new (directory
//! ID, name) (added and made durable before the host rename and the old one
//! removed after, so a crash leaves a file that opens under whichever name
//! it has), a directory gets its next binding beside its ID file before
//! the host rename and its ID file rewritten after (its contents keep
//! working: they are bound to the directory's ID, not its path), and a
//! symlink's target is sealed again for its new name. Long-name side files
//! belong to names, so the new name's side file is written first and the
//! old one removed last.
//!
//! A file may be open elsewhere (the mount shares one content handle per
//! inode): its header must then be changed through that handle, or the
//! handle's next write would put the old header back. [`OpenFiles`] lets
//! the caller hand such a handle in.

use crate::crash::crash_point;
use crate::hostattr::{Pinned, SetTime};
use crate::hostfile::HostFile;
use crate::tree::{anchor, shown, Dir, Kind, Vault};
use crate::{Error, Result};
use std::fs::{self, Metadata};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use vault_core::{ContentFile, DirId, NameContext, BINDING_SLOTS, DIRID_FILE};

mod open;

pub use open::{open_rw_forced, NoOpenFiles, OpenFiles};

/// What a rename does when the destination name exists.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum RenameMode {
    /// Replace it, as rename(2) does.
    Replace,
    /// Fail with [`Error::Exists`] (`RENAME_NOREPLACE`).
    NoReplace,
    /// Swap the two entries (`RENAME_EXCHANGE`); the destination must
    /// exist.
    Exchange,
}

/// What a rename did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Renamed {
    /// Both names already named the same entry: nothing changed.
    Unchanged,
    /// The entry moved to the new name; `dir` when it is a directory
    /// (host paths below it changed).
    Moved {
        /// A directory moved.
        dir: bool,
    },
    /// The two entries swapped names; `dir` when either is a directory.
    Exchanged {
        /// A directory moved.
        dir: bool,
    },
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
    fn back(&self) -> Move<'_> {
        Move {
            from_dir: self.to_dir,
            from_name: self.to_name,
            to_dir: self.from_dir,
            to_name: self.from_name,
        }
    }
}

/// A directory about to move, pinned so that its ID file is read and
/// rewritten in the directory itself wherever the host rename puts it.
struct MovingDir {
    host: PathBuf,
    id: DirId,
    _pin: crate::tree::Anchor,
}

/// Makes host renames, links and unlinks durable: fsync(2) of the
/// directories holding `entries` (each once). A file's old binding may be
/// dropped only after its directory update is on disk: the header write
/// that drops it is file data, which write-back can put on disk before the
/// journal commits the rename, and a crash then left the file under its
/// old name bound to the new one only (found by the crash enumerator,
/// vault-core/tests/crash_enum.rs).
fn sync_parents(entries: &[&Path]) -> Result<()> {
    let mut done: Vec<&Path> = Vec::new();
    for e in entries {
        let dir = e.parent().unwrap_or(Path::new("."));
        if !done.contains(&dir) {
            fs::File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|err| Error::io(dir, err))?;
            done.push(dir);
        }
    }
    Ok(())
}

fn lstat(host: &Path) -> Result<Option<Metadata>> {
    match fs::symlink_metadata(host) {
        Ok(m) => Ok(Some(m)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(Error::io(host, e)),
    }
}

fn kind_of(host: &Path, m: &Metadata) -> Result<Kind> {
    Kind::of(m.file_type()).ok_or_else(|| {
        Error::damaged(
            host,
            vault_core::Error::NameEncoding("unsupported file type in the vault"),
        )
    })
}

impl Vault {
    /// Opens the content at `host` for a header (binding) update, checking
    /// it is bound to `at` (see [`open_rw_forced`]).
    pub fn open_for_rebind(
        &self,
        host: &Path,
        at: NameContext<'_>,
    ) -> Result<ContentFile<HostFile>> {
        let f = open_rw_forced(host).map_err(|e| Error::io(host, e))?;
        ContentFile::open(HostFile(f), self.cipher(), at).map_err(|e| Error::core(host, e))
    }

    /// Runs `f` on the content of the file at `host` (host inode
    /// `host_ino`, bound to `at`): through its open handle when there is
    /// one, else through a short-lived one.
    fn with_content(
        &self,
        open: &dyn OpenFiles,
        host_ino: u64,
        host: &Path,
        at: NameContext<'_>,
        f: &mut dyn FnMut(&mut ContentFile<HostFile>) -> Result<()>,
    ) -> Result<()> {
        match open.with_open(host_ino, f) {
            Some(r) => r,
            None => f(&mut self.open_for_rebind(host, at)?),
        }
    }

    /// Pins the directory at `host` (reached as `name` in `dir`) and reads
    /// its ID through the pin.
    fn moving_dir(&self, host: &Path, dir: &Dir, name: &[u8]) -> Result<MovingDir> {
        let (pinned, pin) = anchor(host).map_err(|e| Error::io(host, e))?;
        let id = self.dir_id_at(&pinned, &dir.id, name)?;
        Ok(MovingDir {
            host: pinned,
            id,
            _pin: pin,
        })
    }

    /// Renames `name` in `sdir` to `new_name` in `ddir`, re-binding what
    /// moves (and, with [`RenameMode::Exchange`], what moves back).
    pub fn rename(
        &self,
        sdir: &Dir,
        name: &[u8],
        ddir: &Dir,
        new_name: &[u8],
        mode: RenameMode,
        open: &dyn OpenFiles,
    ) -> Result<Renamed> {
        let (_, shost) = self.encode(sdir, name)?;
        let (denc, dhost) = self.encode(ddir, new_name)?;
        let sm = lstat(&shost)?.ok_or_else(|| Error::NotFound(shown(&shost)))?;
        let dm = lstat(&dhost)?;
        let skind = kind_of(&shost, &sm)?;
        let mv = Move {
            from_dir: sdir,
            from_name: name,
            to_dir: ddir,
            to_name: new_name,
        };
        if mode == RenameMode::Exchange {
            let dm = dm.ok_or_else(|| Error::NotFound(shown(&dhost)))?;
            if dm.ino() == sm.ino() {
                return Ok(Renamed::Unchanged);
            }
            let dkind = kind_of(&dhost, &dm)?;
            let sd = match skind {
                Kind::Dir => Some(self.moving_dir(&shost, sdir, name)?),
                _ => None,
            };
            let dd = match dkind {
                Kind::Dir => Some(self.moving_dir(&dhost, ddir, new_name)?),
                _ => None,
            };
            if let Some(d) = &sd {
                self.prepare_dir_move(&d.host, &d.id, &ddir.id, new_name)?;
            }
            if let Some(d) = &dd {
                self.prepare_dir_move(&d.host, &d.id, &sdir.id, name)?;
            }
            // Files get their binding to the other name first, durably,
            // as in a move (a symlink cannot: its one seal is rewritten
            // after the exchange, a window docs/POSIX.md lists).
            let back = mv.back();
            let s_ahead = self.bind_ahead(skind, &sm, &shost, &mv, open)?;
            let d_ahead = self.bind_ahead(dkind, &dm, &dhost, &back, open)?;
            crash_point(&shost)?;
            rustix::fs::renameat_with(
                rustix::fs::CWD,
                &shost,
                rustix::fs::CWD,
                &dhost,
                rustix::fs::RenameFlags::EXCHANGE,
            )
            .map_err(|e| Error::io(&shost, e.into()))?;
            crash_point(&dhost)?;
            if s_ahead || d_ahead {
                sync_parents(&[&shost, &dhost])?;
            }
            self.rebind_after_move(skind, &sm, sd.as_ref(), s_ahead, &dhost, &mv, open)?;
            crash_point(&dhost)?;
            self.rebind_after_move(dkind, &dm, dd.as_ref(), d_ahead, &shost, &back, open)?;
            return Ok(Renamed::Exchanged {
                dir: skind == Kind::Dir || dkind == Kind::Dir,
            });
        }
        if let Some(dm) = &dm {
            if mode == RenameMode::NoReplace {
                return Err(Error::Exists(shown(&dhost)));
            }
            if dm.ino() == sm.ino() {
                // Two names of one file: rename does nothing.
                return Ok(Renamed::Unchanged);
            }
            match (sm.is_dir(), dm.is_dir()) {
                (true, false) => return Err(Error::NotADirectory(shown(&dhost))),
                (false, true) => return Err(Error::IsADirectory(shown(&dhost))),
                (true, true) => {
                    if !Vault::host_dir_is_empty(&dhost)? {
                        return Err(Error::NotEmpty(shown(&dhost)));
                    }
                }
                (false, false) => {}
            }
        }
        self.prepare_name(&denc, ddir)?;
        // A replaced file that keeps other names loses this one's binding.
        let replaced = match &dm {
            Some(m) if m.is_file() && m.nlink() > 1 => self
                .open_for_rebind(&dhost, NameContext::new(&ddir.id, new_name))
                .ok(),
            _ => None,
        };
        // An empty directory being replaced is moved aside first: the host
        // rename cannot replace a directory that holds an ID file.
        let aside = match &dm {
            Some(m) if m.is_dir() => {
                let tmp = self.temp_entry(ddir)?;
                fs::rename(&dhost, &tmp).map_err(|e| Error::io(&dhost, e))?;
                Some(tmp)
            }
            _ => None,
        };
        let res = match skind {
            Kind::File => self.move_file(&sm, &shost, &dhost, &mv, open),
            Kind::Dir => self.move_dir(&sm, &shost, &dhost, &mv, open),
            Kind::Symlink => self.move_symlink(&sm, &shost, &dhost, &mv),
            Kind::Node(_) => fs::rename(&shost, &dhost).map_err(|e| Error::io(&shost, e)),
        };
        if let Some(tmp) = aside {
            if res.is_err() {
                let _ = fs::rename(&tmp, &dhost);
            } else {
                let _ = fs::remove_file(tmp.join(DIRID_FILE));
                if let Err(e) = fs::remove_dir(&tmp) {
                    tracing::warn!("could not remove {}: {e}", shown(&tmp).display());
                }
            }
        }
        res?;
        if let Some(mut c) = replaced {
            let res = sync_parents(&[&dhost]).and_then(|()| {
                c.remove_binding(self.cipher(), NameContext::new(&ddir.id, new_name))
                    .map_err(|e| Error::core(&dhost, e))
            });
            if let Err(e) = res {
                tracing::warn!(
                    "{}: could not drop a replaced name's binding: {e}",
                    shown(&dhost).display()
                );
            }
        }
        crash_point(&dhost)?;
        self.remove_side_file(sdir, name)?;
        Ok(Renamed::Moved {
            dir: skind == Kind::Dir,
        })
    }

    /// Moves a regular file: bind the new name (durably), rename on the
    /// host, drop the old binding. When all four slots are taken the
    /// binding is moved in one header write after the host rename, and a
    /// crash between the two leaves the file bound to its old name only
    /// (docs/POSIX.md).
    fn move_file(
        &self,
        sm: &Metadata,
        shost: &Path,
        dhost: &Path,
        mv: &Move<'_>,
        open: &dyn OpenFiles,
    ) -> Result<()> {
        let cipher = self.cipher();
        self.with_content(open, sm.ino(), shost, mv.from(), &mut |c| {
            let added = c.add_binding(cipher, mv.to()).is_ok();
            // The new name's binding is on disk before the new name is: a
            // crash after the host rename must not leave a file whose only
            // binding is to the name it no longer has.
            if added {
                c.store().0.sync_data().map_err(|e| Error::io(shost, e))?;
            }
            crash_point(shost)?;
            fs::rename(shost, dhost).map_err(|e| Error::io(shost, e))?;
            crash_point(dhost)?;
            if added {
                sync_parents(&[shost, dhost])?;
            }
            let res = if added {
                c.remove_binding(cipher, mv.from())
            } else {
                c.rebind(cipher, mv.from(), mv.to())
            };
            res.map_err(|e| Error::core(dhost, e))
        })
    }

    /// Moves a directory: its next binding beside its ID file, the host
    /// rename, then the ID file rebound (FORMAT.md §8).
    fn move_dir(
        &self,
        sm: &Metadata,
        shost: &Path,
        dhost: &Path,
        mv: &Move<'_>,
        open: &dyn OpenFiles,
    ) -> Result<()> {
        let d = self.moving_dir(shost, mv.from_dir, mv.from_name)?;
        self.prepare_dir_move(&d.host, &d.id, &mv.to_dir.id, mv.to_name)?;
        crash_point(shost)?;
        fs::rename(shost, dhost).map_err(|e| Error::io(shost, e))?;
        crash_point(dhost)?;
        self.rebind_after_move(Kind::Dir, sm, Some(&d), false, dhost, mv, open)
    }

    /// Moves a symlink: its target is sealed to its name, so a new host
    /// symlink sealed for the new name replaces the old one.
    fn move_symlink(&self, sm: &Metadata, shost: &Path, dhost: &Path, mv: &Move<'_>) -> Result<()> {
        self.reseal_symlink(sm, shost, dhost, mv)?;
        crash_point(dhost)?;
        fs::remove_file(shost).map_err(|e| Error::io(shost, e))
    }

    /// Writes the symlink read at `src` (sealed for `mv.from`) to `dest`,
    /// sealed for `mv.to`, keeping owner and times.
    fn reseal_symlink(&self, sm: &Metadata, src: &Path, dest: &Path, mv: &Move<'_>) -> Result<()> {
        use std::os::unix::ffi::OsStrExt;
        let cipher = self.cipher();
        let sealed = fs::read_link(src).map_err(|e| Error::io(src, e))?;
        let target = cipher
            .open_symlink(&mv.from_dir.id, mv.from_name, sealed.as_os_str().as_bytes())
            .map_err(|e| Error::core(src, e))?;
        let resealed = cipher
            .seal_symlink(&mv.to_dir.id, mv.to_name, &target)
            .map_err(|e| Error::core(src, e))?;
        let tmp = self.temp_entry(mv.to_dir)?;
        std::os::unix::fs::symlink(&resealed, &tmp).map_err(|e| Error::io(&tmp, e))?;
        if let Ok(p) = Pinned::open_as(&tmp, Kind::Symlink) {
            let _ = p.chown(Some(sm.uid()), Some(sm.gid()));
            let _ = p.set_times(
                SetTime::At(sm.atime(), sm.atime_nsec()),
                SetTime::At(sm.mtime(), sm.mtime_nsec()),
            );
        }
        if let Err(e) = fs::rename(&tmp, dest) {
            let _ = fs::remove_file(&tmp);
            return Err(Error::io(dest, e));
        }
        Ok(())
    }

    /// Before a file at `host` moves by `mv`: binds it to the new name
    /// too and makes that durable. False when it is not a file, or all
    /// its binding slots are taken (the binding then moves after).
    fn bind_ahead(
        &self,
        kind: Kind,
        m: &Metadata,
        host: &Path,
        mv: &Move<'_>,
        open: &dyn OpenFiles,
    ) -> Result<bool> {
        if kind != Kind::File {
            return Ok(false);
        }
        let cipher = self.cipher();
        let mut added = false;
        self.with_content(open, m.ino(), host, mv.from(), &mut |c| {
            added = c.add_binding(cipher, mv.to()).is_ok();
            if added {
                c.store().0.sync_data().map_err(|e| Error::io(host, e))?;
            }
            Ok(())
        })?;
        Ok(added)
    }

    /// Fixes the binding of an entry that a host rename already moved to
    /// `now` (an exchange, or a directory); `ahead` when a file already
    /// holds its new binding ([`Vault::bind_ahead`]).
    #[allow(clippy::too_many_arguments)]
    fn rebind_after_move(
        &self,
        kind: Kind,
        m: &Metadata,
        dir: Option<&MovingDir>,
        ahead: bool,
        now: &Path,
        mv: &Move<'_>,
        open: &dyn OpenFiles,
    ) -> Result<()> {
        match (kind, dir) {
            (Kind::Dir, Some(d)) => self.rebind_dir(&d.host, &d.id, &mv.to_dir.id, mv.to_name),
            (Kind::Dir, None) => Err(Error::damaged(
                now,
                vault_core::Error::DirId("a moved directory was not pinned"),
            )),
            (Kind::File, _) => {
                let cipher = self.cipher();
                self.with_content(open, m.ino(), now, mv.from(), &mut |c| {
                    if ahead {
                        c.remove_binding(cipher, mv.from())
                    } else {
                        c.rebind(cipher, mv.from(), mv.to())
                    }
                    .map_err(|e| Error::core(now, e))
                })
            }
            (Kind::Symlink, _) => self.reseal_symlink(m, now, now, mv),
            (Kind::Node(_), _) => Ok(()),
        }
    }

    /// Gives the file or node at `old` (host inode `host_ino`, reached as
    /// `old_name` in `old_dir`) another name, `name` in `dir`: a file's
    /// header gets the new binding before the host link exists. Returns
    /// the new name's host path.
    #[allow(clippy::too_many_arguments)]
    pub fn link(
        &self,
        old_dir: &Dir,
        old_name: &[u8],
        host_ino: u64,
        kind: Kind,
        dir: &Dir,
        name: &[u8],
        open: &dyn OpenFiles,
    ) -> Result<PathBuf> {
        if !matches!(kind, Kind::File | Kind::Node(_)) {
            // A symlink's target is sealed to its one name; directories
            // cannot be hard-linked.
            return Err(Error::NotLinkable(kind));
        }
        let (_, old) = self.encode(old_dir, old_name)?;
        let (enc, host) = self.encode(dir, name)?;
        if lstat(&host)?.is_some() {
            return Err(Error::Exists(shown(&host)));
        }
        self.prepare_name(&enc, dir)?;
        if kind != Kind::File {
            return fs::hard_link(&old, &host)
                .map(|_| host.clone())
                .map_err(|e| Error::io(&host, e));
        }
        let cipher = self.cipher();
        let at = NameContext::new(&old_dir.id, old_name);
        let ctx = NameContext::new(&dir.id, name);
        let mut linked = false;
        let res = self.with_content(open, host_ino, &old, at, &mut |c| {
            if c.header().binding_count() >= BINDING_SLOTS && !c.is_bound_to(cipher, ctx) {
                // The header has four name slots (FORMAT.md §7).
                return Err(Error::TooManyLinks(shown(&old)));
            }
            c.add_binding(cipher, ctx)
                .map_err(|e| Error::core(&old, e))?;
            c.store().0.sync_data().map_err(|e| Error::io(&old, e))?;
            crash_point(&host)?;
            match fs::hard_link(&old, &host) {
                Ok(()) => {
                    linked = true;
                    Ok(())
                }
                Err(e) => {
                    let _ = c.remove_binding(cipher, ctx);
                    Err(Error::io(&host, e))
                }
            }
        });
        if res.is_err() && !linked {
            let _ = self.remove_side_file(dir, name);
        }
        res.map(|_| host)
    }

    /// Removes `name` from `dir` (not a directory). A file that keeps other
    /// names loses this name's binding, through a descriptor held across
    /// the host unlink.
    pub fn unlink(&self, dir: &Dir, name: &[u8], open: &dyn OpenFiles) -> Result<()> {
        let (_, host) = self.encode(dir, name)?;
        let m = lstat(&host)?.ok_or_else(|| Error::NotFound(shown(&host)))?;
        if m.is_dir() {
            return Err(Error::IsADirectory(shown(&host)));
        }
        if m.is_file() && m.nlink() > 1 {
            let ctx = NameContext::new(&dir.id, name);
            let cipher = self.cipher();
            // How far the closure got, to tell what an error means.
            let mut stage = 0;
            let res = self.with_content(open, m.ino(), &host, ctx, &mut |c| {
                stage = 1;
                fs::remove_file(&host).map_err(|e| Error::io(&host, e))?;
                stage = 2;
                sync_parents(&[&host])?;
                c.remove_binding(cipher, ctx)
                    .map_err(|e| Error::core(&host, e))
            });
            match (res, stage) {
                (Ok(()), _) => {}
                (Err(e), 2) => tracing::warn!(
                    "{}: could not drop the name's binding: {e}",
                    shown(&host).display()
                ),
                (Err(e), 1) => return Err(e),
                (Err(e), _) => {
                    // The file would not open (damaged, say): the name
                    // goes anyway, its binding stays unused.
                    tracing::warn!("{}: {e}; removing the name anyway", shown(&host).display());
                    fs::remove_file(&host).map_err(|e| Error::io(&host, e))?;
                }
            }
        } else {
            fs::remove_file(&host).map_err(|e| Error::io(&host, e))?;
        }
        self.remove_side_file(dir, name)
    }
}

#[cfg(test)]
mod tests;
