//! One keystore writer at a time, and never over a keystore it did not
//! read.
//!
//! A key command reads the keystore, unseals (Argon2id: seconds), changes
//! it and writes it back. Two commands doing that at once would each write
//! their own copy, and the second write would silently drop the first one's
//! change: a data key printed as added and then lost with the files written
//! under it, a removed slot brought back. So every write takes an exclusive
//! `flock(2)` on `VAULT/pivault.keystore.lock` (opened with `O_NOFOLLOW`,
//! so a planted symlink cannot redirect it) and, under it, checks that the
//! file on disk is still the one the command read (SHA-256 of its bytes).
//! If it is not, the write is refused and nothing changes: the command that
//! lost the race says so, and running it again works.
//!
//! A separate file, not the vault lock `pivault.lock`, because a mount
//! holds that for its whole life while `keys rotate` must still work.

use crate::{Error, Result};
use std::fs::{File, OpenOptions};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// The lock file's name in the vault root.
pub const LOCK_FILE: &str = "pivault.keystore.lock";

/// An exclusive lock on a vault's keystore, released when dropped.
pub(crate) struct WriteLock {
    _file: File,
}

impl WriteLock {
    /// Waits for the lock of the vault whose keystore is `keystore`.
    pub(crate) fn acquire(keystore: &Path) -> Result<WriteLock> {
        let vault = keystore
            .parent()
            .filter(|p| !p.as_os_str().is_empty())
            .unwrap_or(Path::new("."));
        let path = vault.join(LOCK_FILE);
        let file = crate::open_regular(
            &path,
            OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .mode(0o600),
        )
        .map_err(|e| Error::io(&path, e))?;
        rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)
            .map_err(|e| Error::io(&path, e.into()))?;
        Ok(WriteLock { _file: file })
    }
}

/// The digest a keystore is recognised by.
pub(crate) fn digest(bytes: &[u8]) -> [u8; 32] {
    let d = ring::digest::digest(&ring::digest::SHA256, bytes);
    let mut out = [0; 32];
    out.copy_from_slice(d.as_ref());
    out
}

/// Under `_lock`: refuses unless the keystore at `path` is still the one
/// whose digest is `read`.
pub(crate) fn check_unchanged(_lock: &WriteLock, path: &Path, read: &[u8; 32]) -> Result<()> {
    let now = crate::read_regular(path).map_err(|e| Error::io(path, e))?;
    if &digest(&now) != read {
        return Err(Error::KeystoreChanged(path.to_path_buf()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    #[test]
    fn the_lock_is_exclusive_between_open_files() {
        let d = tempfile::tempdir().unwrap();
        let ks = d.path().join("pivault.keystore");
        let held = WriteLock::acquire(&ks).unwrap();
        let lock = d.path().join(LOCK_FILE);
        assert_eq!(
            std::fs::metadata(&lock).unwrap().permissions().mode() & 0o777,
            0o600
        );
        let other = File::open(&lock).unwrap();
        assert!(
            rustix::fs::flock(&other, rustix::fs::FlockOperation::NonBlockingLockExclusive)
                .is_err(),
            "a second writer got the lock"
        );
        drop(held);
        rustix::fs::flock(&other, rustix::fs::FlockOperation::NonBlockingLockExclusive)
            .expect("free once dropped");
    }

    #[test]
    fn a_symlink_planted_at_the_lock_name_is_refused() {
        let d = tempfile::tempdir().unwrap();
        let elsewhere = d.path().join("elsewhere");
        std::os::unix::fs::symlink(&elsewhere, d.path().join(LOCK_FILE)).unwrap();
        let e = WriteLock::acquire(&d.path().join("pivault.keystore"))
            .err()
            .expect("refused");
        assert!(e.to_string().contains(LOCK_FILE), "{e}");
        assert!(!elsewhere.exists(), "the symlink's target was created");
    }

    #[test]
    fn a_keystore_other_than_the_one_read_is_not_replaced() {
        let d = tempfile::tempdir().unwrap();
        let ks = d.path().join("pivault.keystore");
        std::fs::write(&ks, b"as read").unwrap();
        let read = digest(b"as read");
        let lock = WriteLock::acquire(&ks).unwrap();
        check_unchanged(&lock, &ks, &read).unwrap();
        std::fs::write(&ks, b"written by another command").unwrap();
        let e = check_unchanged(&lock, &ks, &read).unwrap_err();
        assert!(matches!(e, Error::KeystoreChanged(_)), "{e}");
    }
}
