//! Namespace operations: lookup, attributes, directory listings, mkdir,
//! rmdir, unlink, mknod (files, fifos, sockets, and devices when the
//! daemon runs as root), symlinks, hard links and statfs.

use super::handles::DirEntry;
use super::inodes::ROOT;
use super::{host_rdev, to_errno, VaultFs};
use crate::sys;
use fuser::{Errno, FileAttr, TimeOrNow};
use std::fs;
use std::os::unix::fs::MetadataExt;
use std::time::UNIX_EPOCH;
use vault::hostattr::{Pinned, SetTime};
use vault::{Kind, Listed, NodeKind};
use vault_core::DIRID_FILE;

/// What a setattr request asks for.
pub(crate) struct SetAttr {
    pub mode: Option<u32>,
    pub uid: Option<u32>,
    pub gid: Option<u32>,
    pub size: Option<u64>,
    pub atime: Option<TimeOrNow>,
    pub mtime: Option<TimeOrNow>,
}

fn set_time(t: Option<TimeOrNow>) -> SetTime {
    match t {
        None => SetTime::Omit,
        Some(TimeOrNow::Now) => SetTime::Now,
        Some(TimeOrNow::SpecificTime(st)) => match st.duration_since(UNIX_EPOCH) {
            Ok(d) => SetTime::At(d.as_secs() as i64, d.subsec_nanos() as i64),
            Err(e) => {
                let d = e.duration();
                let (s, ns) = (d.as_secs() as i64, d.subsec_nanos() as i64);
                if ns == 0 {
                    SetTime::At(-s, 0)
                } else {
                    SetTime::At(-s - 1, 1_000_000_000 - ns)
                }
            }
        },
    }
}

fn io(e: std::io::Error) -> Errno {
    to_errno(&e)
}

impl VaultFs {
    /// Looks `name` up in `parent`; `None` when it does not exist. A found
    /// entry counts as one kernel lookup.
    pub(crate) fn lookup_entry(&self, parent: u64, name: &[u8]) -> Result<Option<FileAttr>, Errno> {
        let dir = self.dir(parent)?;
        let (_, host) = self.vault.encode(&dir, name).map_err(|e| self.fail(e))?;
        let m = match fs::symlink_metadata(&host) {
            Ok(m) => m,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(io(e)),
        };
        let kind = Kind::of(m.file_type()).ok_or(Errno::EIO)?;
        let ino = self.inos.fuse(m.ino());
        let open = self
            .table()
            .remember(ino, kind, parent, name, 1, super::born(&m))
            .open
            .clone();
        let size = match open {
            Some(o) => o.read().size(),
            None => self.plain_size(kind, &m),
        };
        Ok(Some(self.attr(ino, kind, &m, size)))
    }

    /// A snapshot of directory `ino` for opendir: `.`, `..` and every
    /// entry whose name decrypts (damaged ones are logged and left out).
    pub(crate) fn list_dir(&self, ino: u64) -> Result<Vec<DirEntry>, Errno> {
        let dir = self.dir(ino)?;
        let parent = if ino == ROOT {
            ROOT
        } else {
            self.table()
                .nodes
                .get(&ino)
                .and_then(|n| n.links.first().map(|l| l.parent))
                .unwrap_or(ROOT)
        };
        let mut out = vec![
            DirEntry {
                ino,
                kind: Kind::Dir,
                name: b".".to_vec(),
                host: None,
            },
            DirEntry {
                ino: parent,
                kind: Kind::Dir,
                name: b"..".to_vec(),
                host: None,
            },
        ];
        for item in self.vault.list(&dir).map_err(|e| self.fail(e))? {
            match item {
                Listed::Entry(e) => out.push(DirEntry {
                    ino: self.inos.fuse(e.ino),
                    kind: e.kind,
                    name: e.name,
                    host: Some(dir.at(e.host)),
                }),
                Listed::Damaged(e) => {
                    self.fail(e);
                }
            }
        }
        Ok(out)
    }

    /// Attributes for a readdirplus entry (which the kernel counts as a
    /// lookup once it is in the reply: see [`VaultFs::remember_plus`]).
    pub(crate) fn plus_attr(&self, e: &DirEntry) -> Option<FileAttr> {
        let Some(host) = &e.host else {
            return self.stat(e.ino).ok();
        };
        let m = fs::symlink_metadata(host).ok()?;
        let kind = Kind::of(m.file_type())?;
        let ino = self.inos.fuse(m.ino());
        let size = match self.open_state(ino) {
            Some(o) => o.read().size(),
            None => self.plain_size(kind, &m),
        };
        Some(self.attr(ino, kind, &m, size))
    }

    /// Records a readdirplus entry the kernel accepted.
    pub(crate) fn remember_plus(&self, dir_ino: u64, name: &[u8], attr: &FileAttr, kind: Kind) {
        if name != b"." && name != b".." {
            self.table().remember(
                attr.ino.0,
                kind,
                dir_ino,
                name,
                1,
                super::birth(attr.crtime),
            );
        }
    }

    pub(crate) fn do_mkdir(
        &self,
        parent: u64,
        name: &[u8],
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<FileAttr, Errno> {
        self.check_writable()?;
        let dir = self.dir(parent)?;
        let (gid, mode) = self.new_entry(&dir, true, mode, gid)?;
        let d = self
            .vault
            .mkdir(&dir, name, mode)
            .map_err(|e| self.fail(e))?;
        let chowned = self.give_to(&d.host, uid, gid)?;
        self.keep_special_bits(&d.host, Kind::Dir, chowned, mode)?;
        let m = fs::symlink_metadata(&d.host).map_err(io)?;
        let ino = self.inos.fuse(m.ino());
        self.table()
            .remember(ino, Kind::Dir, parent, name, 1, super::born(&m))
            .dir_id = Some(d.id);
        Ok(self.attr(ino, Kind::Dir, &m, m.len()))
    }

    pub(crate) fn do_rmdir(&self, parent: u64, name: &[u8]) -> Result<(), Errno> {
        self.check_writable()?;
        let dir = self.dir(parent)?;
        let (_, host) = self.vault.encode(&dir, name).map_err(|e| self.fail(e))?;
        let m = fs::symlink_metadata(&host).map_err(io)?;
        if !m.is_dir() {
            return Err(Errno::ENOTDIR);
        }
        if !vault::Vault::host_dir_is_empty(&host).map_err(|e| self.fail(e))? {
            return Err(Errno::ENOTEMPTY);
        }
        // Move it out of sight first, so a crash never leaves a visible
        // directory without its ID file.
        let tmp = self.vault.temp_entry(&dir).map_err(|e| self.fail(e))?;
        fs::rename(&host, &tmp).map_err(io)?;
        let idf = tmp.join(DIRID_FILE);
        let _ = fs::remove_file(tmp.join(vault::layout::DIRID_NEXT));
        let res = match fs::remove_file(&idf) {
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                // A read-only directory may still be removed when empty.
                Pinned::open_as(&tmp, Kind::Dir)
                    .and_then(|p| p.chmod(0o700))
                    .and_then(|_| fs::remove_file(&idf))
            }
            r => r,
        }
        .and_then(|_| fs::remove_dir(&tmp));
        if let Err(e) = res {
            tracing::warn!("could not remove {}: {e}", tmp.display());
        }
        self.vault
            .remove_side_file(&dir, name)
            .map_err(|e| self.fail(e))?;
        self.table().unlink(parent, name);
        Ok(())
    }

    pub(crate) fn do_unlink(&self, parent: u64, name: &[u8]) -> Result<(), Errno> {
        self.check_writable()?;
        let dir = self.dir(parent)?;
        self.vault
            .unlink(&dir, name, self)
            .map_err(|e| self.fail(e))?;
        self.table().unlink(parent, name);
        Ok(())
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn do_mknod(
        &self,
        parent: u64,
        name: &[u8],
        mode: u32,
        rdev: u32,
        uid: u32,
        gid: u32,
    ) -> Result<FileAttr, Errno> {
        self.check_writable()?;
        let dir = self.dir(parent)?;
        let node = match mode & libc::S_IFMT {
            libc::S_IFREG | 0 => None,
            libc::S_IFIFO => Some(NodeKind::Fifo),
            libc::S_IFSOCK => Some(NodeKind::Socket),
            libc::S_IFCHR => Some(NodeKind::CharDevice),
            libc::S_IFBLK => Some(NodeKind::BlockDevice),
            _ => return Err(Errno::EINVAL),
        };
        let (gid, mode) = self.new_entry(&dir, false, mode, gid)?;
        let kind = match node {
            None => {
                let c = self
                    .vault
                    .create_file(&dir, name, mode)
                    .map_err(|e| self.fail(e))?;
                self.own_new_file(&c.store().0, mode, uid, gid)?;
                let m = c.store().0.metadata().map_err(io)?;
                let ino = self.inos.fuse(m.ino());
                self.table()
                    .remember(ino, Kind::File, parent, name, 1, super::born(&m));
                return Ok(self.attr(ino, Kind::File, &m, 0));
            }
            // The kernel lets only callers with CAP_MKNOD ask for a device
            // node; a daemon not running as root cannot make one on the
            // host either (as gocryptfs), so says so before touching it.
            Some(n) if n.is_device() && !self.as_root => return Err(Errno::EPERM),
            Some(n) => {
                self.vault
                    .mknode(&dir, name, n, mode, host_rdev(rdev))
                    .map_err(|e| self.fail(e))?;
                Kind::Node(n)
            }
        };
        let (_, host) = self.vault.encode(&dir, name).map_err(|e| self.fail(e))?;
        let chowned = self.give_to(&host, uid, gid)?;
        self.keep_special_bits(&host, kind, chowned, mode)?;
        let m = fs::symlink_metadata(&host).map_err(io)?;
        let ino = self.inos.fuse(m.ino());
        self.table()
            .remember(ino, kind, parent, name, 1, super::born(&m));
        Ok(self.attr(ino, kind, &m, 0))
    }

    pub(crate) fn do_symlink(
        &self,
        parent: u64,
        name: &[u8],
        target: &[u8],
        uid: u32,
        gid: u32,
    ) -> Result<FileAttr, Errno> {
        self.check_writable()?;
        let dir = self.dir(parent)?;
        let (gid, _) = self.new_entry(&dir, false, 0o777, gid)?;
        let host = self
            .vault
            .symlink(&dir, name, target)
            .map_err(|e| self.fail(e))?;
        self.give_to(&host, uid, gid)?;
        let m = fs::symlink_metadata(&host).map_err(io)?;
        let ino = self.inos.fuse(m.ino());
        self.table()
            .remember(ino, Kind::Symlink, parent, name, 1, super::born(&m));
        Ok(self.attr(ino, Kind::Symlink, &m, target.len() as u64))
    }

    pub(crate) fn do_readlink(&self, ino: u64) -> Result<Vec<u8>, Errno> {
        let (dir, name) = self.locate(ino)?;
        self.vault.readlink(&dir, &name).map_err(|e| self.fail(e))
    }

    pub(crate) fn do_link(&self, ino: u64, parent: u64, name: &[u8]) -> Result<FileAttr, Errno> {
        self.check_writable()?;
        let kind = self.kind_of(ino)?;
        let (old_dir, old_name) = self.locate(ino)?;
        let dir = self.dir(parent)?;
        let host = self
            .vault
            .link(
                &old_dir,
                &old_name,
                self.inos.fuse(ino),
                kind,
                &dir,
                name,
                self,
            )
            .map_err(|e| self.fail(e))?;
        let m = fs::symlink_metadata(&host).map_err(io)?;
        let open = self
            .table()
            .remember(ino, kind, parent, name, 1, super::born(&m))
            .open
            .clone();
        let size = match open {
            Some(o) => o.read().size(),
            None => self.plain_size(kind, &m),
        };
        Ok(self.attr(ino, kind, &m, size))
    }

    pub(crate) fn do_setattr(&self, ino: u64, a: SetAttr) -> Result<FileAttr, Errno> {
        self.check_writable()?;
        let kind = self.kind_of(ino)?;
        if let Some(size) = a.size {
            if kind != Kind::File {
                return Err(if kind == Kind::Dir {
                    Errno::EISDIR
                } else {
                    Errno::EINVAL
                });
            }
            self.with_content(ino, |c| c.set_len(size))?;
        }
        if a.mode.is_some()
            || a.uid.is_some()
            || a.gid.is_some()
            || a.atime.is_some()
            || a.mtime.is_some()
        {
            // Through a descriptor pinned to the entry, never its path: a
            // symlink swapped in for the host entry while mounted must not
            // carry the change to a file outside the vault.
            let host = self.host_of(ino)?;
            let p = Pinned::open_as(&host, kind).map_err(|e| {
                if e.kind() == std::io::ErrorKind::InvalidData {
                    tracing::warn!("setattr: {e}");
                }
                io(e)
            })?;
            if let Some(mode) = a.mode {
                if kind != Kind::Symlink {
                    p.chmod(mode).map_err(io)?;
                }
            }
            if a.uid.is_some() || a.gid.is_some() {
                p.chown(a.uid, a.gid).map_err(io)?;
            }
            if a.atime.is_some() || a.mtime.is_some() {
                p.set_times(set_time(a.atime), set_time(a.mtime))
                    .map_err(io)?;
            }
        }
        self.stat(ino)
    }

    /// access(2): the mode bits of the entry for the caller (root may do
    /// anything but execute a file no one may execute).
    pub(crate) fn do_access(&self, ino: u64, mask: i32, uid: u32, gid: u32) -> Result<(), Errno> {
        let a = self.stat(ino)?;
        if mask & libc::W_OK != 0 && self.read_only {
            return Err(Errno::EROFS);
        }
        let perm = a.perm as i32;
        if uid == 0 {
            let x_ok =
                mask & libc::X_OK == 0 || a.kind == fuser::FileType::Directory || perm & 0o111 != 0;
            return if x_ok { Ok(()) } else { Err(Errno::EACCES) };
        }
        let bits = if uid == a.uid {
            (perm >> 6) & 7
        } else if gid == a.gid {
            (perm >> 3) & 7
        } else {
            perm & 7
        };
        let want = mask & (libc::R_OK | libc::W_OK | libc::X_OK);
        if bits & want == want {
            Ok(())
        } else {
            Err(Errno::EACCES)
        }
    }

    pub(crate) fn do_statfs(&self) -> Result<sys::FsStats, Errno> {
        sys::statvfs(self.vault.root_path()).map_err(io)
    }
}
