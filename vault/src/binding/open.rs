//! The content files a rename must reach: those open elsewhere (the
//! mount's shared handles), whose header must change through that handle,
//! and opening one for the header update when its mode forbids writing.

use crate::hostattr::Pinned;
use crate::hostfile::HostFile;
use crate::tree::Kind;
use crate::Result;
use std::fs::OpenOptions;
use std::path::Path;
use vault_core::ContentFile;

/// Content files open elsewhere, which a header update must go through.
pub trait OpenFiles {
    /// Runs `f` on the content of host inode `host_ino` if it is open for
    /// writing, holding it exclusively meanwhile; `None` when it is not
    /// open (the protocol then opens the file itself).
    fn with_open(
        &self,
        host_ino: u64,
        f: &mut dyn FnMut(&mut ContentFile<HostFile>) -> Result<()>,
    ) -> Option<Result<()>>;
}

/// No file is open elsewhere (the offline tools).
#[derive(Clone, Copy, Debug, Default)]
pub struct NoOpenFiles;

impl OpenFiles for NoOpenFiles {
    fn with_open(
        &self,
        _: u64,
        _: &mut dyn FnMut(&mut ContentFile<HostFile>) -> Result<()>,
    ) -> Option<Result<()>> {
        None
    }
}

/// Opens `host` read-write; when its mode forbids that to its owner (a
/// read-only file of a daemon not running as root), adds the owner's
/// write bit for the open and restores the mode right after. Changing a
/// file's names needs no write permission on the file. Never through a
/// symlink swapped in for the entry: the mode change and the open go
/// through a descriptor pinned to the entry.
pub fn open_rw_forced(host: &Path) -> std::io::Result<std::fs::File> {
    let mut rw = OpenOptions::new();
    rw.read(true).write(true);
    match keys::open_regular(host, &rw) {
        Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
            let p = Pinned::open_as(host, Kind::File)?;
            p.chmod(p.mode() | 0o600)?;
            let f = p.reopen(&rw);
            p.chmod(p.mode())?;
            f
        }
        r => r,
    }
}
