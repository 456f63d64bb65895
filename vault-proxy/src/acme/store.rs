//! `[acme] storage`: the directory that keeps the ACME account key and the
//! current certificate and its key across restarts. It must be the
//! gateway's alone: mode 0700 (a directory anyone else can read or list
//! is refused, naming the key), files 0600, each written whole to a
//! temporary file and renamed over the old one so that a crash never
//! leaves half a key. The directory is created (0700) on the first
//! write, not before: a gateway that fails to start writes nothing.

use crate::error::{Error, Result};
use std::fs::{DirBuilder, OpenOptions};
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The account: directory URL and credentials (with the account key).
pub const ACCOUNT: &str = "account.json";
/// The certificate chain served, leaf first (PEM).
pub const CERT: &str = "cert.pem";
/// Its private key (PKCS#8 PEM).
pub const KEY: &str = "key.pem";

/// The storage directory, checked.
#[derive(Debug, Clone)]
pub struct Store {
    dir: PathBuf,
}

impl Store {
    /// Checks `dir` (when it exists): a directory, mode 0700 or
    /// narrower, owned by this user.
    pub fn open(dir: &Path) -> Result<Store> {
        match std::fs::symlink_metadata(dir) {
            Ok(m) => {
                if !m.is_dir() {
                    return Err(Error::Acme(format!(
                        "[acme] storage `{}`: not a directory",
                        dir.display()
                    )));
                }
                let mode = m.permissions().mode() & 0o7777;
                if mode & 0o077 != 0 {
                    return Err(Error::Acme(format!(
                        "[acme] storage `{}`: mode {mode:04o} lets other users in; it holds private keys: `chmod 700 {}`",
                        dir.display(),
                        dir.display()
                    )));
                }
                if m.uid() != rustix::process::geteuid().as_raw() {
                    return Err(Error::Acme(format!(
                        "[acme] storage `{}`: owned by uid {}, not by the gateway's user",
                        dir.display(),
                        m.uid()
                    )));
                }
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(dir, e)),
        }
        Ok(Store {
            dir: dir.to_path_buf(),
        })
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A file's contents; None when it does not exist.
    pub fn read(&self, name: &str) -> Result<Option<Zeroizing<Vec<u8>>>> {
        let p = self.dir.join(name);
        match std::fs::read(&p) {
            Ok(v) => Ok(Some(Zeroizing::new(v))),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(Error::io(p, e)),
        }
    }

    /// When `name` was last written.
    pub fn modified(&self, name: &str) -> Option<std::time::SystemTime> {
        std::fs::metadata(self.dir.join(name))
            .and_then(|m| m.modified())
            .ok()
    }

    /// Writes `name` whole (0600), creating the directory (0700) if needed.
    pub fn write(&self, name: &str, data: &[u8]) -> Result<()> {
        DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(&self.dir)
            .map_err(|e| Error::io(&self.dir, e))?;
        let tmp = self.dir.join(format!(".{name}.tmp"));
        let _ = std::fs::remove_file(&tmp);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| Error::io(&tmp, e))?;
        f.write_all(data)
            .and_then(|()| f.sync_all())
            .map_err(|e| Error::io(&tmp, e))?;
        let dst = self.dir.join(name);
        std::fs::rename(&tmp, &dst).map_err(|e| Error::io(&dst, e))?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wide_directory_is_refused_and_files_are_private() {
        let d = tempfile::tempdir().unwrap();
        let wide = d.path().join("wide");
        std::fs::create_dir(&wide).unwrap();
        std::fs::set_permissions(&wide, std::fs::Permissions::from_mode(0o755)).unwrap();
        let e = Store::open(&wide).unwrap_err().to_string();
        assert!(e.contains("storage") && e.contains("0755"), "{e}");

        let s = Store::open(&d.path().join("new")).unwrap();
        assert!(!d.path().join("new").exists(), "nothing written at open");
        s.write(KEY, b"secret").unwrap();
        let m = std::fs::metadata(d.path().join("new")).unwrap();
        assert_eq!(m.permissions().mode() & 0o777, 0o700);
        let f = std::fs::metadata(d.path().join("new").join(KEY)).unwrap();
        assert_eq!(f.permissions().mode() & 0o777, 0o600);
        assert_eq!(&s.read(KEY).unwrap().unwrap()[..], b"secret");
        assert!(s.read(CERT).unwrap().is_none());
    }
}
