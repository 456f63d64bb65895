//! The vault lock: an exclusive flock(2) on `pivault.lock` in the vault
//! root. A mount, a re-encryption and the offline commands each hold it,
//! so none of them runs beside another. The file names the holder (pid and
//! what it does) for the message the next one gets; a lock dies with its
//! process, so a crash never leaves the vault locked. The lock file is
//! written, so it is opened without following a symlink and must be a
//! regular file: a planted `pivault.lock -> ~/thesis.docx` would otherwise
//! be emptied by the next mount or fsck.

use crate::{sys, Error, Result};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;
use std::time::{Duration, Instant};

/// Name of the lock file in the vault root.
pub const LOCK_FILE: &str = crate::layout::LOCK;
/// What a mount writes as its holder line, before the mountpoint.
const MOUNT_PREFIX: &str = "mounted at ";

/// An exclusive hold on a vault's lock, released on drop (or when the
/// process, or a forked child sharing the descriptor, ends).
#[derive(Debug)]
pub struct VaultLock {
    file: File,
}

impl VaultLock {
    /// Takes the lock of the vault at `root`, creating the lock file if
    /// needed, or fails with a message naming the holder and what to do.
    pub fn acquire(root: &Path) -> Result<VaultLock> {
        let path = root.join(LOCK_FILE);
        let mut file = keys::open_regular(
            &path,
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600),
        )
        .map_err(|e| Error::io(&path, e))?;
        if sys::try_lock_exclusive(&file).map_err(|e| Error::io(&path, e))? {
            return Ok(VaultLock { file });
        }
        let mut holder = String::new();
        let _ = file.read_to_string(&mut holder);
        let mut lines = holder.lines();
        let pid = lines.next().unwrap_or("?");
        let what = lines.next().unwrap_or("");
        let msg = match what.strip_prefix(MOUNT_PREFIX) {
            Some(at) => format!(
                "the vault is in use: it is already mounted (process {pid}, at {at}); unmount it first with `pivault unmount {at}`"
            ),
            None if what.is_empty() => format!(
                "the vault is in use (mounted, or another command is changing it, process {pid}); unmount it or wait, then retry"
            ),
            None => format!(
                "the vault is in use by process {pid} ({what}); wait for it to finish, then retry"
            ),
        };
        Err(Error::io(
            &path,
            std::io::Error::new(std::io::ErrorKind::WouldBlock, msg),
        ))
    }

    /// Creates the lock file of a vault being made at `root` and takes the
    /// lock, or fails if the file exists: whoever made it (another `init`
    /// at the same moment) owns the directory, and this run must write
    /// nothing there, nor remove anything on its way out. `O_EXCL` never
    /// follows a symlink, so a planted one fails too.
    pub fn create_new(root: &Path) -> Result<VaultLock> {
        let path = root.join(LOCK_FILE);
        let file = keys::open_regular(
            &path,
            OpenOptions::new()
                .read(true)
                .write(true)
                .create_new(true)
                .mode(0o600),
        )
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::AlreadyExists {
                let msg = "another `pivault init` (or another pivault command) is using this \
                           directory at this moment; this run changed nothing in it";
                Error::io(&path, std::io::Error::new(e.kind(), msg))
            } else {
                Error::io(&path, e)
            }
        })?;
        // Nobody else can have the file open yet; the flock keeps a mount
        // or fsck started right after the create out until init is done.
        if !sys::try_lock_exclusive(&file).map_err(|e| Error::io(&path, e))? {
            return Err(Error::io(
                &path,
                std::io::Error::new(std::io::ErrorKind::WouldBlock, "locked by another process"),
            ));
        }
        let lock = VaultLock { file };
        lock.record("init")?;
        Ok(lock)
    }

    /// Takes the lock for a mount at `mountpoint` and records it.
    pub fn acquire_for_mount(root: &Path, mountpoint: &Path) -> Result<VaultLock> {
        let lock = Self::acquire(root)?;
        lock.record_mount(mountpoint)?;
        Ok(lock)
    }

    /// Records this process as the holder, doing `what` (e.g. `reencrypt`).
    pub fn record(&self, what: &str) -> Result<()> {
        let text = format!("{}\n{what}\n", std::process::id());
        let mut f = &self.file;
        f.set_len(0)
            .and_then(|_| f.rewind())
            .and_then(|_| f.write_all(text.as_bytes()))
            .map_err(|e| Error::io(LOCK_FILE, e))
    }

    /// Records this process as the mount at `mountpoint` (again after a
    /// `--daemon` fork, whose child has another pid).
    pub fn record_mount(&self, mountpoint: &Path) -> Result<()> {
        self.record(&format!("{MOUNT_PREFIX}{}", mountpoint.display()))
    }
}

/// Waits up to `timeout` for the lock of the vault at `root` to be free;
/// false when it is still held.
pub fn wait_unlocked(root: &Path, timeout: Duration) -> bool {
    let path = root.join(LOCK_FILE);
    let deadline = Instant::now() + timeout;
    loop {
        // A planted entry counts as free: acquire() then names it.
        match keys::open_regular(&path, OpenOptions::new().read(true)) {
            Ok(f) => {
                if sys::try_lock_exclusive(&f).unwrap_or(true) {
                    return true;
                }
            }
            Err(_) => return true,
        }
        if Instant::now() >= deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_holder_is_refused_with_the_first_ones_name() {
        let d = tempfile::tempdir().unwrap();
        let first = VaultLock::acquire_for_mount(d.path(), Path::new("/mnt/x")).unwrap();
        let e = VaultLock::acquire(d.path()).unwrap_err().to_string();
        assert!(e.contains("already mounted") && e.contains("/mnt/x"), "{e}");
        first.record("reencrypt").unwrap();
        let e = VaultLock::acquire(d.path()).unwrap_err().to_string();
        assert!(
            e.contains("in use by process") && e.contains("reencrypt"),
            "{e}"
        );
        drop(first);
        assert!(wait_unlocked(d.path(), Duration::from_secs(1)));
        VaultLock::acquire(d.path()).unwrap();
    }

    #[test]
    fn a_second_create_new_fails_and_leaves_the_first_holder_alone() {
        let d = tempfile::tempdir().unwrap();
        let first = VaultLock::create_new(d.path()).unwrap();
        let e = VaultLock::create_new(d.path()).unwrap_err().to_string();
        assert!(e.contains("another `pivault init`"), "{e}");
        // The first still holds the lock: a mount is refused.
        let e = VaultLock::acquire(d.path()).unwrap_err().to_string();
        assert!(e.contains("init"), "{e}");
        drop(first);
        VaultLock::acquire(d.path()).unwrap();
    }

    #[test]
    fn a_planted_lock_symlink_is_refused_and_its_target_kept() {
        let d = tempfile::tempdir().unwrap();
        let outside = tempfile::tempdir().unwrap();
        let victim = outside.path().join("thesis.docx");
        std::fs::write(&victim, b"years of work").unwrap();
        std::os::unix::fs::symlink(&victim, d.path().join(LOCK_FILE)).unwrap();
        let e = VaultLock::acquire_for_mount(d.path(), Path::new("/mnt/x"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(LOCK_FILE) && e.contains("symbolic link") && e.contains("remove it"),
            "{e}"
        );
        assert_eq!(std::fs::read(&victim).unwrap(), b"years of work");
    }
}
