//! Regular files: open (sharing one content handle per inode), create,
//! read, write (O_APPEND too), truncate, fallocate and fsync.

use super::handles::{FileHandle, OpenFile};
use super::inodes::CacheToken;
use super::{to_errno, VaultFs};
use fuser::{Errno, FileAttr, FopenFlags, WriteFlags};
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use vault::HostFile;
use vault::Kind;
use vault_core::ContentFile;

thread_local! {
    /// The plaintext of the read being answered, reused by every read on
    /// this session thread: a fresh zeroed 1 MiB per request made its
    /// memset 29% of the daemon's CPU in sequential reads. Wiped when the
    /// thread ends.
    static READ_BUF: std::cell::RefCell<zeroize::Zeroizing<Vec<u8>>> =
        std::cell::RefCell::new(zeroize::Zeroizing::new(Vec::new()));
}

fn token(m: &Metadata) -> CacheToken {
    (
        m.ino(),
        m.len(),
        m.mtime(),
        m.mtime_nsec(),
        m.ctime(),
        m.ctime_nsec(),
    )
}

impl VaultFs {
    /// The ciphertext path of `ino` for messages (or a placeholder for a
    /// file whose every name was unlinked while open).
    fn host_for_log(&self, ino: u64) -> PathBuf {
        self.host_of(ino)
            .map(|h| vault::shown(&h))
            .unwrap_or_else(|_| PathBuf::from(format!("(unlinked file, inode {ino})")))
    }

    /// Runs `f` on the content of file `ino` with exclusive access: the
    /// shared handle when the file is open, otherwise a short-lived one.
    pub(crate) fn with_content<R>(
        &self,
        ino: u64,
        f: impl FnOnce(&mut ContentFile<HostFile>) -> vault_core::Result<R>,
    ) -> Result<R, Errno> {
        if let Some(o) = self.open_state(ino) {
            self.upgrade(ino, &o)?;
            let mut c = o.write();
            return f(&mut c).map_err(|e| self.fail_content(&self.host_for_log(ino), e));
        }
        let (dir, name) = self.locate(ino)?;
        let mut c = self
            .vault
            .open_file(&dir, &name, true)
            .map_err(|e| self.fail(e))?;
        f(&mut c).map_err(|e| self.fail_content(&self.host_for_log(ino), e))
    }

    /// Makes the shared handle of `ino` writable (it was opened read-only
    /// while only readers had it open).
    fn upgrade(&self, ino: u64, o: &OpenFile) -> Result<(), Errno> {
        if o.is_writable() {
            return Ok(());
        }
        self.check_writable()?;
        let (dir, name) = self.locate(ino)?;
        let c = self
            .vault
            .open_file(&dir, &name, true)
            .map_err(|e| self.fail(e))?;
        let mut g = o.write();
        if !o.is_writable() {
            *g = c;
            o.writable.store(true, Ordering::Release);
        }
        Ok(())
    }

    /// Hands out an open state already counted for one more handle,
    /// upgraded to writable when asked (the count is given back on failure).
    fn share(
        &self,
        ino: u64,
        o: Arc<OpenFile>,
        want_write: bool,
    ) -> Result<(Arc<OpenFile>, bool), Errno> {
        if want_write {
            if let Err(e) = self.upgrade(ino, &o) {
                self.release_state(ino);
                return Err(e);
            }
        }
        Ok((o, true))
    }

    /// The shared open state of file `ino`, opened if needed, counting one
    /// more handle. The flag says whether the kernel may keep its cache.
    fn acquire(&self, ino: u64, want_write: bool) -> Result<(Arc<OpenFile>, bool), Errno> {
        {
            let mut t = self.table();
            let n = t.nodes.get_mut(&ino).ok_or(Errno::ENOENT)?;
            match n.kind {
                Kind::File => {}
                Kind::Dir => return Err(Errno::EISDIR),
                _ => return Err(Errno::EINVAL),
            }
            if let Some(o) = n.open.clone() {
                n.open_count += 1;
                drop(t);
                return self.share(ino, o, want_write);
            }
        }
        let (dir, name) = self.locate(ino)?;
        let mut writable = !self.read_only;
        let c = match self.vault.open_file(&dir, &name, writable) {
            Ok(c) => c,
            Err(e) if writable && !want_write && super::errno_of(&e) == libc::EACCES => {
                writable = false;
                self.vault
                    .open_file(&dir, &name, false)
                    .map_err(|e| self.fail(e))?
            }
            Err(e) => return Err(self.fail(e)),
        };
        let tok = c.store().0.metadata().map(|m| token(&m)).ok();
        let mut t = self.table();
        let n = t.nodes.get_mut(&ino).ok_or(Errno::ENOENT)?;
        n.open_count += 1;
        if let Some(o) = n.open.clone() {
            // Another request opened it meanwhile: share that one.
            drop(t);
            return self.share(ino, o, want_write);
        }
        let keep = tok.is_some() && n.cache_token == tok;
        n.cache_token = tok;
        let o = Arc::new(OpenFile::new(c, writable));
        n.open = Some(o.clone());
        Ok((o, keep))
    }

    /// One handle of `ino` closed; the last one closes the content and
    /// remembers what the ciphertext looked like, for KEEP_CACHE.
    fn release_state(&self, ino: u64) {
        let taken = {
            let mut t = self.table();
            let Some(n) = t.nodes.get_mut(&ino) else {
                return;
            };
            n.open_count = n.open_count.saturating_sub(1);
            if n.open_count == 0 {
                n.open.take()
            } else {
                None
            }
        };
        let tok = taken.and_then(|o| o.read().store().0.metadata().ok().map(|m| token(&m)));
        let mut t = self.table();
        if let Some(n) = t.nodes.get_mut(&ino) {
            if n.open.is_none() && tok.is_some() {
                n.cache_token = tok;
            }
        }
        t.maybe_remove(ino);
    }

    pub(crate) fn do_open(&self, ino: u64, flags: i32) -> Result<(u64, FopenFlags), Errno> {
        let trunc = flags & libc::O_TRUNC != 0;
        let want_write = flags & libc::O_ACCMODE != libc::O_RDONLY || trunc;
        if want_write {
            self.check_writable()?;
        }
        let (o, keep) = self.acquire(ino, want_write)?;
        if trunc {
            let res = o.write().set_len(0);
            if let Err(e) = res {
                self.release_state(ino);
                return Err(self.fail_content(&self.host_for_log(ino), e));
            }
        }
        let fh = self.handles.add_file(FileHandle {
            ino,
            file: o,
            append: flags & libc::O_APPEND != 0,
        });
        let mut out = FopenFlags::empty();
        if keep && !trunc {
            out |= FopenFlags::FOPEN_KEEP_CACHE;
        }
        Ok((fh, out))
    }

    #[allow(clippy::too_many_arguments)]
    pub(crate) fn do_create(
        &self,
        parent: u64,
        name: &[u8],
        mode: u32,
        flags: i32,
        uid: u32,
        gid: u32,
    ) -> Result<(FileAttr, u64), Errno> {
        self.check_writable()?;
        let dir = self.dir(parent)?;
        let (gid, mode) = self.new_entry(&dir, false, mode, gid)?;
        let c = self
            .vault
            .create_file(&dir, name, mode)
            .map_err(|e| self.fail(e))?;
        self.own_new_file(&c.store().0, mode, uid, gid)?;
        let m = c.store().0.metadata().map_err(|e| to_errno(&e))?;
        let ino = self.inos.fuse(m.ino());
        let o = Arc::new(OpenFile::new(c, true));
        {
            let mut t = self.table();
            let n = t.remember(ino, Kind::File, parent, name, 1, super::born(&m));
            n.open = Some(o.clone());
            n.open_count += 1;
            n.cache_token = None;
        }
        let fh = self.handles.add_file(FileHandle {
            ino,
            file: o,
            append: flags & libc::O_APPEND != 0,
        });
        Ok((self.attr(ino, Kind::File, &m, 0), fh))
    }

    /// Gives a new regular file (open as `f`) to its caller when running
    /// as root, then sets exactly the mode the kernel asked for: the host
    /// open applied this daemon's own umask (umask is the caller's, and
    /// the kernel has applied it), and a change of owner cleared any
    /// setuid or setgid bit.
    pub(crate) fn own_new_file(
        &self,
        f: &std::fs::File,
        mode: u32,
        uid: u32,
        gid: u32,
    ) -> Result<(), Errno> {
        let chowned = self.as_root && (uid != 0 || gid != 0);
        if chowned {
            std::os::unix::fs::fchown(f, Some(uid), Some(gid)).map_err(|e| to_errno(&e))?;
        }
        // Only when something changed the mode: one system call less per
        // new file in the usual case (a 0644 file under umask 022).
        if mode & self.umask != 0 || (chowned && mode & 0o6000 != 0) {
            rustix::fs::fchmod(f, rustix::fs::Mode::from_raw_mode(mode & 0o7777))
                .map_err(|e| to_errno(&e.into()))?;
        }
        Ok(())
    }

    /// Reads up to `size` bytes at `offset` and hands them, or why not,
    /// to `reply`.
    pub(crate) fn do_read<R>(
        &self,
        fh: u64,
        offset: u64,
        size: u32,
        reply: impl FnOnce(Result<&[u8], Errno>) -> R,
    ) -> R {
        let Some(h) = self.handles.file(fh) else {
            return reply(Err(Errno::EBADF));
        };
        let c = h.file.read();
        let len = (size as u64).min(c.size().saturating_sub(offset)) as usize;
        READ_BUF.with(|buf| {
            let mut buf = buf.borrow_mut();
            if buf.len() < len {
                // Replaced, not resized: a reallocation would free the old
                // plaintext unwiped, while the drop here wipes it.
                *buf = zeroize::Zeroizing::new(vec![0u8; len]);
            }
            let n = match c.read_at(offset, &mut buf[..len]) {
                Ok(n) => n,
                Err(e) => {
                    drop(c);
                    return reply(Err(self.fail_content(&self.host_for_log(h.ino), e)));
                }
            };
            drop(c);
            reply(Ok(&buf[..n]))
        })
    }

    pub(crate) fn do_write(
        &self,
        fh: u64,
        offset: u64,
        data: &[u8],
        flags: WriteFlags,
    ) -> Result<u32, Errno> {
        self.check_writable()?;
        let h = self.handles.file(fh).ok_or(Errno::EBADF)?;
        if !h.file.is_writable() {
            self.upgrade(h.ino, &h.file)?;
        }
        let mut c = h.file.write();
        // Writes from the page cache carry their own offset; a direct
        // O_APPEND write goes to the end as this daemon knows it.
        let at = if h.append && !flags.contains(WriteFlags::FUSE_WRITE_CACHE) {
            c.size()
        } else {
            offset
        };
        match c.write_at(at, data) {
            Ok(()) => Ok(data.len() as u32),
            Err(e) => {
                drop(c);
                Err(self.fail_content(&self.host_for_log(h.ino), e))
            }
        }
    }

    pub(crate) fn do_release(&self, fh: u64) {
        if let Some(h) = self.handles.remove_file(fh) {
            drop(h.file);
            self.release_state(h.ino);
        }
    }

    pub(crate) fn do_fsync(&self, fh: u64, datasync: bool) -> Result<(), Errno> {
        let h = self.handles.file(fh).ok_or(Errno::EBADF)?;
        let c = h.file.read();
        let f = &c.store().0;
        let r = if datasync {
            f.sync_data()
        } else {
            f.sync_all()
        };
        r.map_err(|e| to_errno(&e))
    }

    pub(crate) fn do_fallocate(
        &self,
        fh: u64,
        offset: u64,
        len: u64,
        mode: i32,
    ) -> Result<(), Errno> {
        self.check_writable()?;
        if mode != 0 {
            // Only plain preallocation: punching holes or keeping the size
            // would need sparse ciphertext, which the format never has.
            return Err(Errno::from_i32(libc::EOPNOTSUPP));
        }
        let h = self.handles.file(fh).ok_or(Errno::EBADF)?;
        let end = offset.checked_add(len).ok_or(Errno::EFBIG)?;
        let mut c = h.file.write();
        if end > c.size() {
            if let Err(e) = c.set_len(end) {
                drop(c);
                return Err(self.fail_content(&self.host_for_log(h.ino), e));
            }
        }
        Ok(())
    }
}
