//! Opening pivault's own files in a vault directory without being steered
//! by what else sits there. The vault directory may be writable by an
//! attacker (a synced or shared copy), who can put a symlink, a fifo or a
//! device where `pivault.lock`, `audit.log` or the keystore belongs. A
//! symlink would make pivault truncate, append to or read a file outside
//! the vault; a fifo would block it forever. So these files are opened
//! with `O_NOFOLLOW` (a final symlink fails instead of being followed) and
//! `O_NONBLOCK` (opening a fifo does not wait for a writer), then must be
//! regular files before a byte is read or written.

use std::fs::{File, OpenOptions};
use std::io::{self, Read};
use std::os::unix::fs::{FileTypeExt, OpenOptionsExt};
use std::path::Path;

use rustix::fs::OFlags;

/// Opens `path` with `opts` (read, write, append, create... as the caller
/// set them), never following a final symlink, and only if it is a
/// regular file; the error then says what the entry is and to remove it.
/// The returned file is in ordinary blocking mode.
pub fn open_regular(path: &Path, opts: &OpenOptions) -> io::Result<File> {
    let flags = OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
    let mut opts = opts.clone();
    let f = opts
        .custom_flags(flags.bits() as i32)
        .open(path)
        .map_err(|e| match e.raw_os_error() {
            // ELOOP from O_NOFOLLOW: the last component is a symlink.
            Some(code) if code == rustix::io::Errno::LOOP.raw_os_error() => {
                refusal("a symbolic link")
            }
            _ => e,
        })?;
    let ft = f.metadata()?.file_type();
    if !ft.is_file() {
        let what = if ft.is_dir() {
            "a directory"
        } else if ft.is_fifo() {
            "a named pipe"
        } else if ft.is_socket() {
            "a socket"
        } else if ft.is_block_device() || ft.is_char_device() {
            "a device node"
        } else {
            "not a regular file"
        };
        return Err(refusal(what));
    }
    // O_NONBLOCK was only for the open; reads and writes of a regular file
    // ignore it, but a clean descriptor is what callers expect.
    let fl = rustix::fs::fcntl_getfl(&f)?;
    rustix::fs::fcntl_setfl(&f, fl - OFlags::NONBLOCK)?;
    Ok(f)
}

/// Reads the whole of `path` as [`open_regular`] opens it for reading.
pub fn read_regular(path: &Path) -> io::Result<Vec<u8>> {
    let mut f = open_regular(path, OpenOptions::new().read(true))?;
    let mut out = Vec::new();
    f.read_to_end(&mut out)?;
    Ok(out)
}

/// The error for an entry pivault will not use in place of its own file.
/// `InvalidData`, not `NotFound`: callers that treat a missing file as
/// empty must not treat a planted entry so.
fn refusal(what: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!(
            "is {what}, where pivault keeps a regular file of its own; pivault does not \
             follow or use it (it may have been planted to redirect pivault's writes): \
             remove it and retry"
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_symlink_is_refused_and_its_target_untouched() {
        let d = tempfile::tempdir().unwrap();
        let victim = d.path().join("victim");
        std::fs::write(&victim, b"precious").unwrap();
        let link = d.path().join("audit.log");
        std::os::unix::fs::symlink(&victim, &link).unwrap();
        let e = open_regular(
            &link,
            OpenOptions::new().write(true).append(true).create(true),
        )
        .unwrap_err();
        assert!(e.to_string().contains("symbolic link"), "{e}");
        assert!(e.to_string().contains("remove it"), "{e}");
        assert_eq!(std::fs::read(&victim).unwrap(), b"precious");
        let e = read_regular(&link).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidData, "{e}");
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("pivault.keystore");
        rustix::fs::mknodat(
            rustix::fs::CWD,
            &p,
            rustix::fs::FileType::Fifo,
            rustix::fs::Mode::from_raw_mode(0o600),
            0,
        )
        .unwrap();
        let e = read_regular(&p).unwrap_err();
        assert!(e.to_string().contains("named pipe"), "{e}");
    }

    #[test]
    fn a_regular_file_is_read_in_blocking_mode() {
        let d = tempfile::tempdir().unwrap();
        let p = d.path().join("f");
        std::fs::write(&p, b"abc").unwrap();
        assert_eq!(read_regular(&p).unwrap(), b"abc");
        let f = open_regular(&p, OpenOptions::new().read(true)).unwrap();
        let fl = rustix::fs::fcntl_getfl(&f).unwrap();
        assert!(!fl.contains(OFlags::NONBLOCK));
    }
}
