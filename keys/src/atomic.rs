//! Crash-safe file replacement: write a temp file in the same directory,
//! fsync it, rename it over the target (or hard-link it to a new name, which
//! fails rather than overwrite), then fsync the directory so the rename
//! itself is durable. A reader sees the old file or the new, never half.

use crate::{Error, Result};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

fn temp_path(target: &Path) -> PathBuf {
    let name = target
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let nonce = vault_core::random::array::<6>().unwrap_or([0; 6]);
    let tag: String = nonce.iter().map(|b| format!("{b:02x}")).collect();
    // The `.pivault-tmp-` prefix is what vault listings skip, so a temp
    // file left by a crash is never mistaken for a foreign entry.
    target.with_file_name(format!(".pivault-tmp-{tag}-{name}"))
}

fn write_temp(target: &Path, bytes: &[u8], mode: u32) -> Result<PathBuf> {
    let tmp = temp_path(target);
    let mut f = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(&tmp)
        // Name the file the caller asked for; the temp name means nothing to them.
        .map_err(|e| Error::io(target, e))?;
    let res = f.write_all(bytes).and_then(|_| f.sync_all());
    if let Err(e) = res {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(&tmp, e));
    }
    Ok(tmp)
}

fn sync_dir(target: &Path) -> Result<()> {
    let dir = target
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// Atomically replaces `target` with `bytes` (file mode `mode` when new).
pub fn write_atomic(target: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let tmp = write_temp(target, bytes, mode)?;
    if let Err(e) = fs::rename(&tmp, target) {
        let _ = fs::remove_file(&tmp);
        return Err(Error::io(target, e));
    }
    sync_dir(target)
}

/// Atomically creates `target` with `bytes`; fails with `AlreadyExists`
/// rather than replace an existing file.
pub fn write_new(target: &Path, bytes: &[u8], mode: u32) -> Result<()> {
    let tmp = write_temp(target, bytes, mode)?;
    let res = fs::hard_link(&tmp, target);
    let _ = fs::remove_file(&tmp);
    res.map_err(|e| Error::io(target, e))?;
    sync_dir(target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_new_refuses_to_overwrite_and_leaves_no_temp() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        write_new(&p, b"one", 0o600).unwrap();
        let e = write_new(&p, b"two", 0o600).unwrap_err();
        assert!(
            matches!(e, Error::Io { ref source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists)
        );
        assert_eq!(fs::read(&p).unwrap(), b"one");
        write_atomic(&p, b"three", 0o600).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"three");
        assert_eq!(fs::read_dir(d.path()).unwrap().count(), 1);
    }
}
