//! Extended attributes: `user.*` names and values, encrypted and bound to
//! the file (by its header's file ID) or directory (by its ID), stored as
//! host `user.pv.*` attributes (format in vault-core's `xattr.rs` and
//! docs/FORMAT.md §11). Other namespaces are not stored: reads find
//! nothing, writes fail with EOPNOTSUPP.

use super::{to_errno, VaultFs};
use crate::sys;
use fuser::Errno;
use vault::Kind;
use vault_core::XattrObject;

fn enodata() -> Errno {
    Errno::from_i32(libc::ENODATA)
}

/// The object ID an attribute hangs off.
enum Object {
    File([u8; 16]),
    Dir([u8; 16]),
}

impl Object {
    fn as_ref(&self) -> XattrObject<'_> {
        match self {
            Object::File(id) => XattrObject::File(id),
            Object::Dir(id) => XattrObject::Dir(id),
        }
    }
}

impl VaultFs {
    fn xattr_object(&self, ino: u64) -> Result<(Object, super::HostPath), Errno> {
        let kind = self.kind_of(ino)?;
        let host = self.host_of(ino)?;
        let obj = match kind {
            Kind::Dir => Object::Dir(self.dir(ino)?.id),
            Kind::File => {
                let id = match self.open_state(ino) {
                    Some(o) => o.read().header().file_id,
                    // Only a file that is bound to the name it is reached
                    // by: a ciphertext copied onto another name (with its
                    // host attributes) must not serve its attributes there
                    // any more than its contents.
                    None => {
                        let (dir, name) = self.locate(ino)?;
                        self.vault
                            .open_file(&dir, &name, false)
                            .map_err(|e| self.fail(e))?
                            .header()
                            .file_id
                    }
                };
                Object::File(id)
            }
            // Linux keeps user.* attributes off symlinks, fifos, sockets
            // and devices.
            Kind::Symlink | Kind::Node(_) => return Err(Errno::EPERM),
        };
        Ok((obj, host))
    }

    pub(crate) fn do_setxattr(
        &self,
        ino: u64,
        name: &[u8],
        value: &[u8],
        flags: i32,
    ) -> Result<(), Errno> {
        self.check_writable()?;
        if !name.starts_with(b"user.") {
            return Err(Errno::from_i32(libc::EOPNOTSUPP));
        }
        let (obj, host) = self.xattr_object(ino)?;
        let hname = self
            .xattr
            .host_name(obj.as_ref(), name)
            .map_err(|_| Errno::ERANGE)?;
        let sealed = self
            .xattr
            .seal_value(obj.as_ref(), name, value)
            .map_err(|_| Errno::EIO)?;
        sys::lsetxattr(&host, &hname, &sealed, flags).map_err(|e| to_errno(&e))
    }

    pub(crate) fn do_getxattr(&self, ino: u64, name: &[u8]) -> Result<Vec<u8>, Errno> {
        if !name.starts_with(b"user.") {
            return Err(enodata());
        }
        let (obj, host) = self.xattr_object(ino)?;
        let hname = self
            .xattr
            .host_name(obj.as_ref(), name)
            .map_err(|_| enodata())?;
        let sealed = sys::lgetxattr(&host, &hname).map_err(|e| to_errno(&e))?;
        self.xattr
            .open_value(obj.as_ref(), name, &sealed)
            .map_err(|e| self.fail_content(&host, e))
    }

    /// The NUL-terminated list of attribute names.
    pub(crate) fn do_listxattr(&self, ino: u64) -> Result<Vec<u8>, Errno> {
        let (obj, host) = match self.xattr_object(ino) {
            Ok(x) => x,
            Err(e) if e == Errno::EPERM => return Ok(Vec::new()),
            Err(e) => return Err(e),
        };
        let mut out = Vec::new();
        for hname in sys::llistxattr(&host).map_err(|e| to_errno(&e))? {
            match self.xattr.plain_name(obj.as_ref(), &hname) {
                Ok(Some(name)) => {
                    out.extend_from_slice(&name);
                    out.push(0);
                }
                Ok(None) => {}
                Err(e) => {
                    self.fail_content(&host, e);
                }
            }
        }
        Ok(out)
    }

    pub(crate) fn do_removexattr(&self, ino: u64, name: &[u8]) -> Result<(), Errno> {
        self.check_writable()?;
        if !name.starts_with(b"user.") {
            return Err(enodata());
        }
        let (obj, host) = self.xattr_object(ino)?;
        let hname = self
            .xattr
            .host_name(obj.as_ref(), name)
            .map_err(|_| enodata())?;
        sys::lremovexattr(&host, &hname).map_err(|e| to_errno(&e))
    }
}
