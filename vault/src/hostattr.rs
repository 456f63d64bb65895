//! Changing a host entry's mode, owner and times through a descriptor
//! pinned to the entry itself, never through its path. The vault directory
//! may be writable by someone else while it is mounted or imported into;
//! a path-based `chmod` follows a symlink swapped in for the host entry
//! and changes whatever it points at, outside the vault.
//!
//! The entry is opened `O_PATH | O_NOFOLLOW`: that pins the entry itself
//! (a symlink is pinned as the symlink), opens no device or fifo, and
//! needs no read or write permission on it. The changes then go through
//! that descriptor:
//!
//! - mode: `fchmod` refuses `O_PATH` descriptors (EBADF), and Linux has no
//!   `fchmodat(AT_SYMLINK_NOFOLLOW)` before `fchmodat2` (6.6). Opening the
//!   entry `O_RDONLY` instead would fail on a mode-000 file for a daemon
//!   not running as root, and would open devices. So the mode is set
//!   through `/proc/self/fd/N`, the magic link to the pinned inode (what
//!   glibc does for `fchmodat` with `AT_SYMLINK_NOFOLLOW`): whatever is
//!   swapped in at the path afterwards, the descriptor still names the
//!   entry that was checked. A symlink has no mode of its own on Linux.
//!   This needs /proc, which any system that mounts pivault has (the
//!   mount session and `pivault unmount` read /proc/self/mountinfo).
//! - owner: `fchownat(fd, "", AT_EMPTY_PATH)`, which takes `O_PATH`
//!   descriptors, symlinks included.
//! - times: `utimensat` through the same magic link; for a symlink,
//!   `utimensat(fd, "", AT_EMPTY_PATH | AT_SYMLINK_NOFOLLOW)`.

use crate::tree::Kind;
use rustix::fs::{self as rfs, AtFlags, Mode, OFlags, Timespec, Timestamps};
use std::fs::{File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd;
use std::path::{Path, PathBuf};

/// A time to set: leave it, set it to now, or to a given time.
#[derive(Clone, Copy, Debug)]
pub enum SetTime {
    /// UTIME_OMIT.
    Omit,
    /// UTIME_NOW.
    Now,
    /// Seconds and nanoseconds since the epoch.
    At(i64, i64),
}

impl SetTime {
    fn spec(self) -> Timespec {
        match self {
            SetTime::Omit => Timespec {
                tv_sec: 0,
                tv_nsec: rfs::UTIME_OMIT,
            },
            SetTime::Now => Timespec {
                tv_sec: 0,
                tv_nsec: rfs::UTIME_NOW,
            },
            SetTime::At(s, ns) => Timespec {
                tv_sec: s,
                tv_nsec: ns as _,
            },
        }
    }
}

/// A host entry held by an `O_PATH | O_NOFOLLOW` descriptor.
#[derive(Debug)]
pub struct Pinned {
    fd: File,
    path: PathBuf,
    kind: Option<Kind>,
    mode: u32,
}

impl Pinned {
    /// Pins the entry at `host` itself; a symlink there is pinned, not
    /// followed.
    pub fn open(host: &Path) -> io::Result<Pinned> {
        let fd = rfs::open(
            host,
            OFlags::PATH | OFlags::NOFOLLOW | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        let fd = File::from(fd);
        let m = fd.metadata()?;
        Ok(Pinned {
            path: host.to_path_buf(),
            kind: Kind::of(m.file_type()),
            mode: std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o7777,
            fd,
        })
    }

    /// Pins the entry at `host` and requires it to be of `kind`: anything
    /// else was put there behind the vault's back, and is not touched.
    pub fn open_as(host: &Path, kind: Kind) -> io::Result<Pinned> {
        let p = Pinned::open(host)?;
        if p.kind != Some(kind) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                format!(
                    "{}: the host entry is not a {kind:?} as the vault recorded (replaced \
                     behind the vault's back?); left untouched",
                    crate::tree::shown(host).display()
                ),
            ));
        }
        Ok(p)
    }

    /// What the pinned entry is (`None` for sockets and devices).
    pub fn kind(&self) -> Option<Kind> {
        self.kind
    }

    /// The permission bits the entry had when pinned.
    pub fn mode(&self) -> u32 {
        self.mode
    }

    /// The magic link to the pinned inode.
    fn proc_path(&self) -> String {
        format!("/proc/self/fd/{}", self.fd.as_raw_fd())
    }

    /// Sets the permission bits (not for symlinks, which have none).
    pub fn chmod(&self, mode: u32) -> io::Result<()> {
        if self.kind == Some(Kind::Symlink) {
            return Err(io::Error::from(io::ErrorKind::Unsupported));
        }
        rfs::chmod(self.proc_path(), Mode::from_raw_mode(mode & 0o7777))?;
        Ok(())
    }

    /// Sets the owner and/or group.
    pub fn chown(&self, uid: Option<u32>, gid: Option<u32>) -> io::Result<()> {
        rfs::chownat(
            &self.fd,
            "",
            uid.map(rfs::Uid::from_raw),
            gid.map(rfs::Gid::from_raw),
            AtFlags::EMPTY_PATH,
        )?;
        Ok(())
    }

    /// Sets the access and modification times.
    pub fn set_times(&self, atime: SetTime, mtime: SetTime) -> io::Result<()> {
        let ts = Timestamps {
            last_access: atime.spec(),
            last_modification: mtime.spec(),
        };
        if self.kind == Some(Kind::Symlink) {
            // Through the magic link would follow the symlink; the
            // descriptor itself with AT_EMPTY_PATH is the symlink.
            let r = rfs::utimensat(
                &self.fd,
                "",
                &ts,
                AtFlags::EMPTY_PATH | AtFlags::SYMLINK_NOFOLLOW,
            );
            match r {
                // A kernel that takes no AT_EMPTY_PATH here says EINVAL: by path,
                // still never following a final symlink.
                Err(rustix::io::Errno::INVAL) => {
                    rfs::utimensat(rfs::CWD, &self.path, &ts, AtFlags::SYMLINK_NOFOLLOW)?
                }
                r => r?,
            }
        } else {
            rfs::utimensat(rfs::CWD, self.proc_path(), &ts, AtFlags::empty())?;
        }
        Ok(())
    }

    /// Opens the pinned entry for I/O (through the magic link: the same
    /// inode, whatever now sits at its path). Only for regular files.
    pub fn reopen(&self, opts: &OpenOptions) -> io::Result<File> {
        if self.kind != Some(Kind::File) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "not a regular file; left untouched",
            ));
        }
        opts.open(self.proc_path())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::{MetadataExt, PermissionsExt};

    #[test]
    fn chmod_through_a_swapped_in_symlink_leaves_its_target_alone() {
        let d = tempfile::tempdir().unwrap();
        let outside = d.path().join("outside");
        std::fs::write(&outside, b"x").unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o600)).unwrap();
        let entry = d.path().join("entry");
        std::os::unix::fs::symlink(&outside, &entry).unwrap();
        let e = Pinned::open_as(&entry, Kind::File).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
        let p = Pinned::open(&entry).unwrap();
        assert!(p.chmod(0o777).is_err());
        p.set_times(SetTime::At(1, 0), SetTime::At(1, 0)).unwrap();
        let m = std::fs::metadata(&outside).unwrap();
        assert_eq!(m.mode() & 0o7777, 0o600);
        assert_ne!(m.mtime(), 1);
        assert_eq!(std::fs::symlink_metadata(&entry).unwrap().mtime(), 1);
    }

    #[test]
    fn the_pinned_entry_is_changed_even_after_its_path_is_swapped() {
        let d = tempfile::tempdir().unwrap();
        let entry = d.path().join("entry");
        std::fs::write(&entry, b"x").unwrap();
        let p = Pinned::open_as(&entry, Kind::File).unwrap();
        // Swap the path for a symlink to another file after pinning.
        let outside = d.path().join("outside");
        std::fs::write(&outside, b"y").unwrap();
        std::fs::set_permissions(&outside, std::fs::Permissions::from_mode(0o600)).unwrap();
        let moved = d.path().join("moved");
        std::fs::rename(&entry, &moved).unwrap();
        std::os::unix::fs::symlink(&outside, &entry).unwrap();
        p.chmod(0o640).unwrap();
        p.set_times(SetTime::At(7, 0), SetTime::At(9, 0)).unwrap();
        let m = std::fs::metadata(&moved).unwrap();
        assert_eq!((m.mode() & 0o7777, m.mtime(), m.atime()), (0o640, 9, 7));
        assert_eq!(std::fs::metadata(&outside).unwrap().mode() & 0o7777, 0o600);
    }

    #[test]
    fn a_mode_000_file_can_be_pinned_and_reopened() {
        let d = tempfile::tempdir().unwrap();
        let entry = d.path().join("entry");
        std::fs::write(&entry, b"x").unwrap();
        std::fs::set_permissions(&entry, std::fs::Permissions::from_mode(0o000)).unwrap();
        let p = Pinned::open_as(&entry, Kind::File).unwrap();
        assert_eq!(p.mode(), 0);
        p.chmod(0o600).unwrap();
        let f = p.reopen(OpenOptions::new().read(true).write(true)).unwrap();
        assert_eq!(f.metadata().unwrap().len(), 1);
    }
}
