//! The few host calls the standard library lacks, through rustix (no
//! unsafe code in this crate): flock, syncfs and extended attributes, by
//! path without following a final symlink (`l*xattr`) or by descriptor.

use rustix::fs::{self as rfs, XattrFlags};
use std::fs::File;
use std::io;
use std::path::Path;

/// flock(2) LOCK_EX | LOCK_NB: false when another process holds the lock.
pub fn try_lock_exclusive(f: &File) -> io::Result<bool> {
    match rfs::flock(f, rfs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(true),
        Err(rustix::io::Errno::WOULDBLOCK) => Ok(false),
        Err(e) => Err(e.into()),
    }
}

/// syncfs(2) on the file system holding `path`: one flush of everything
/// written there (a batch of re-encrypted files, an import).
pub fn syncfs(path: &Path) -> io::Result<()> {
    let dir = File::open(path)?;
    Ok(rfs::syncfs(&dir)?)
}

/// Grows a buffer until a size-returning xattr call fits (ERANGE means
/// the value grew between the size query and the read).
fn sized(mut call: impl FnMut(&mut [u8]) -> rustix::io::Result<usize>) -> io::Result<Vec<u8>> {
    let mut buf = vec![0u8; 1024];
    loop {
        match call(&mut buf) {
            Ok(n) => {
                buf.truncate(n);
                return Ok(buf);
            }
            Err(rustix::io::Errno::RANGE) => {
                let need = buf.len() * 4;
                buf.resize(need, 0);
            }
            Err(e) => return Err(e.into()),
        }
    }
}

fn split_names(list: Vec<u8>) -> Vec<Vec<u8>> {
    list.split(|&b| b == 0)
        .filter(|s| !s.is_empty())
        .map(<[u8]>::to_vec)
        .collect()
}

/// llistxattr(2): every attribute name of `path` (not following a symlink).
pub fn llistxattr(path: &Path) -> io::Result<Vec<Vec<u8>>> {
    match sized(|b| rfs::llistxattr(path, b)) {
        Ok(l) => Ok(split_names(l)),
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOTSUP.raw_os_error()) => {
            Ok(Vec::new())
        }
        Err(e) => Err(e),
    }
}

/// lgetxattr(2): the whole value.
pub fn lgetxattr(path: &Path, name: &str) -> io::Result<Vec<u8>> {
    sized(|b| rfs::lgetxattr(path, name, b))
}

/// lsetxattr(2) (create or replace).
pub fn lsetxattr(path: &Path, name: &str, value: &[u8]) -> io::Result<()> {
    Ok(rfs::lsetxattr(path, name, value, XattrFlags::empty())?)
}

/// lremovexattr(2).
pub fn lremovexattr(path: &Path, name: &str) -> io::Result<()> {
    Ok(rfs::lremovexattr(path, name)?)
}

/// Every attribute name of an open file.
pub fn flistxattr(f: &File) -> io::Result<Vec<Vec<u8>>> {
    match sized(|b| rfs::flistxattr(f, b)) {
        Ok(l) => Ok(split_names(l)),
        Err(e) if e.raw_os_error() == Some(rustix::io::Errno::NOTSUP.raw_os_error()) => {
            Ok(Vec::new())
        }
        Err(e) => Err(e),
    }
}

/// The value of attribute `name` of an open file.
pub fn fgetxattr(f: &File, name: &[u8]) -> io::Result<Vec<u8>> {
    let name = std::ffi::CString::new(name).map_err(io::Error::other)?;
    sized(|b| rfs::fgetxattr(f, name.as_c_str(), b))
}

/// Sets attribute `name` of an open file.
pub fn fsetxattr(f: &File, name: &[u8], value: &[u8]) -> io::Result<()> {
    let name = std::ffi::CString::new(name).map_err(io::Error::other)?;
    Ok(rfs::fsetxattr(
        f,
        name.as_c_str(),
        value,
        XattrFlags::empty(),
    )?)
}
