//! Moving a flagged file into a vault: copy to the same relative path under
//! the mount point (never over an existing file), read the copy back and
//! compare, then overwrite the original with zeros, fsync it, remove it and
//! fsync its directory. docs/SCAN.md says what the overwrite cannot promise.

use crate::Error;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Read, Write};
use std::path::{Path, PathBuf};

const CHUNK: usize = 1 << 16;

fn io(path: &Path, op: &'static str) -> impl FnOnce(io::Error) -> Error {
    let path = path.to_path_buf();
    move |source| Error::Io { path, op, source }
}

/// Moves `file`, found while scanning `root`, to the same path relative to
/// `root` under `vault` (a mounted vault, or any directory), and returns
/// the destination. When `root` is the file itself, its name is kept.
///
/// Refuses, leaving everything as it was, when the destination exists or
/// the file has other hard links. The original is destroyed only after its
/// copy has been flushed and read back identical.
pub fn move_into(root: &Path, file: &Path, vault: &Path) -> Result<PathBuf, Error> {
    if !fs::metadata(vault)
        .map_err(io(vault, "opening the vault"))?
        .is_dir()
    {
        return Err(Error::NotADirectory(vault.to_path_buf()));
    }
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

    let meta = fs::symlink_metadata(file).map_err(io(file, "reading"))?;
    if !meta.is_file() {
        return Err(Error::NotRegular(file.to_path_buf()));
    }
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        if meta.nlink() > 1 {
            return Err(Error::HardLinked {
                path: file.to_path_buf(),
                links: meta.nlink(),
            });
        }
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
    copy_new(file, &dest, &meta).map_err(|e| match e.kind() {
        io::ErrorKind::AlreadyExists => Error::DestinationExists {
            src: file.to_path_buf(),
            dest: dest.clone(),
        },
        _ => Error::Io {
            path: dest.clone(),
            op: "copying into the vault",
            source: e,
        },
    })?;
    match same_contents(file, &dest) {
        Ok(true) => {}
        Ok(false) => {
            let _ = fs::remove_file(&dest);
            return Err(Error::VerifyFailed {
                src: file.to_path_buf(),
                dest,
            });
        }
        Err(e) => {
            let _ = fs::remove_file(&dest);
            return Err(Error::Io {
                path: dest,
                op: "verifying the copy",
                source: e,
            });
        }
    }
    overwrite(file, meta.len()).map_err(io(file, "overwriting the original"))?;
    fs::remove_file(file).map_err(io(file, "removing the original"))?;
    if let Some(parent) = file.parent().filter(|p| !p.as_os_str().is_empty()) {
        // Makes the removal durable; some filesystems cannot fsync a directory.
        let _ = File::open(parent).and_then(|d| d.sync_all());
    }
    tracing::debug!("moved {} to {}", file.display(), dest.display());
    Ok(dest)
}

/// Copies into a new file (`create_new`: an existing one is never touched),
/// with the original's permissions, and flushes it to stable storage.
fn copy_new(src: &Path, dest: &Path, meta: &fs::Metadata) -> io::Result<()> {
    let mut opts = OpenOptions::new();
    opts.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
        opts.mode(meta.permissions().mode() & 0o777);
    }
    let mut out = opts.open(dest)?;
    let copied = File::open(src)
        .and_then(|mut i| io::copy(&mut i, &mut out))
        .and_then(|_| out.sync_all());
    if copied.is_err() {
        let _ = fs::remove_file(dest);
    }
    copied
}

fn same_contents(a: &Path, b: &Path) -> io::Result<bool> {
    let (mut fa, mut fb) = (File::open(a)?, File::open(b)?);
    let (mut ba, mut bb) = (vec![0u8; CHUNK], vec![0u8; CHUNK]);
    loop {
        let na = read_full(&mut fa, &mut ba)?;
        let nb = read_full(&mut fb, &mut bb)?;
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

/// One pass of zeros over the file's length, then fsync. More passes add
/// nothing on modern disks; what no pass can reach is in docs/SCAN.md.
fn overwrite(path: &Path, len: u64) -> io::Result<()> {
    let mut f = OpenOptions::new().write(true).open(path)?;
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
