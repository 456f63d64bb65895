//! rename(2) and renameat2(2) with RENAME_NOREPLACE and RENAME_EXCHANGE:
//! the flags parsed, the vault's binding protocol run
//! ([`vault::Vault::rename`]), the inode table told.

use super::inodes::Link;
use super::VaultFs;
use fuser::{Errno, RenameFlags};
use vault::{RenameMode, Renamed};

impl VaultFs {
    pub(crate) fn do_rename(
        &self,
        parent: u64,
        name: &[u8],
        new_parent: u64,
        new_name: &[u8],
        flags: RenameFlags,
    ) -> Result<(), Errno> {
        self.check_writable()?;
        let mode = if flags.is_empty() {
            RenameMode::Replace
        } else if flags == RenameFlags::RENAME_NOREPLACE {
            RenameMode::NoReplace
        } else if flags == RenameFlags::RENAME_EXCHANGE {
            RenameMode::Exchange
        } else {
            return Err(Errno::EINVAL);
        };
        let sdir = self.dir(parent)?;
        let ddir = self.dir(new_parent)?;
        let from = Link {
            parent,
            name: name.to_vec(),
        };
        let to = Link {
            parent: new_parent,
            name: new_name.to_vec(),
        };
        match self.vault.rename(&sdir, name, &ddir, new_name, mode, self) {
            Ok(Renamed::Unchanged) => {}
            Ok(Renamed::Moved { dir }) => {
                if dir {
                    self.paths_changed();
                }
                self.table().rename(from, to);
            }
            Ok(Renamed::Exchanged { dir }) => {
                if dir {
                    self.paths_changed();
                }
                self.table().exchange(from, to);
            }
            Err(e) => {
                // A host rename may have happened before the error.
                self.paths_changed();
                return Err(self.fail(e));
            }
        }
        Ok(())
    }
}

impl vault::OpenFiles for VaultFs {
    fn with_open(
        &self,
        host_ino: u64,
        f: &mut dyn FnMut(&mut vault_core::ContentFile<vault::HostFile>) -> vault::Result<()>,
    ) -> Option<vault::Result<()>> {
        let o = self
            .open_state(self.inos.fuse(host_ino))
            .filter(|o| o.is_writable())?;
        let mut c = o.write();
        Some(f(&mut c))
    }
}
