//! A depth-first walk over the decrypted tree, shared by export and fsck.
//! The walker decides what is damage (and keeps going); visitors decide
//! what to do with each intact entry.

use crate::hostfile::HostFile;
use crate::tree::{join_plain, Dir, Entry, Kind, Listed, NodeKind, Vault};
use crate::{Error, Result};
use std::path::{Path, PathBuf};
use vault_core::ContentFile;

/// A damaged or tampered piece of the vault, as reported to the user.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Damage {
    /// Plaintext path inside the vault, where the name could be decrypted.
    pub plain: Option<PathBuf>,
    /// Ciphertext path on the host.
    pub host: PathBuf,
    /// What is wrong.
    pub reason: String,
}

impl Damage {
    pub(crate) fn from_error(plain: Option<&Path>, e: &Error) -> Damage {
        let (host, reason) = match e {
            Error::Damaged { host, source } => (host.clone(), source.to_string()),
            Error::Io { path, source } => (path.clone(), source.to_string()),
            other => (PathBuf::new(), other.to_string()),
        };
        Damage {
            plain: plain.map(Path::to_path_buf),
            host,
            reason,
        }
    }
}

/// What a walk does with each entry. Plaintext paths are relative to the
/// vault root. A visitor returning a damage error ([`Error::is_damage`])
/// has that entry recorded as damaged; any other error ends the walk.
pub trait Visitor {
    /// Before a directory's entries (not called for the root).
    fn enter_dir(&mut self, _plain: &Path, _entry: &Entry) -> Result<()> {
        Ok(())
    }
    /// After a directory's entries (not called for the root).
    fn leave_dir(&mut self, _plain: &Path, _entry: &Entry) -> Result<()> {
        Ok(())
    }
    /// A regular file whose header and binding checked out.
    fn file(&mut self, plain: &Path, entry: &Entry, file: ContentFile<HostFile>) -> Result<()>;
    /// A symlink and its decrypted target.
    fn symlink(&mut self, plain: &Path, entry: &Entry, target: &[u8]) -> Result<()>;
    /// A node without content: fifo, socket or device.
    fn node(&mut self, _plain: &Path, _entry: &Entry, _node: NodeKind) -> Result<()> {
        Ok(())
    }
    /// Something damaged.
    fn damaged(&mut self, damage: Damage);
}

/// Walks the whole vault.
pub fn walk(vault: &Vault, visitor: &mut dyn Visitor) -> Result<()> {
    walk_dir(vault, vault.root(), Path::new(""), visitor)
}

fn walk_dir(vault: &Vault, dir: &Dir, plain: &Path, v: &mut dyn Visitor) -> Result<()> {
    let mut entries = Vec::new();
    for item in vault.list(dir)? {
        match item {
            Listed::Entry(e) => entries.push(e),
            Listed::Damaged(e) => v.damaged(Damage::from_error(None, &e)),
        }
    }
    entries.sort_by(|a, b| a.name.cmp(&b.name));
    for entry in entries {
        let path = join_plain(plain, &entry.name);
        let res = match entry.kind {
            Kind::Dir => match vault.subdir(dir, &entry.name) {
                Ok(sub) => v
                    .enter_dir(&path, &entry)
                    .and_then(|_| walk_dir(vault, &sub, &path, v))
                    .and_then(|_| v.leave_dir(&path, &entry)),
                Err(e) => Err(e),
            },
            Kind::File => vault
                .open_file(dir, &entry.name, false)
                .and_then(|f| v.file(&path, &entry, f)),
            Kind::Symlink => vault
                .readlink(dir, &entry.name)
                .and_then(|t| v.symlink(&path, &entry, &t)),
            Kind::Node(n) => v.node(&path, &entry, n),
        };
        match res {
            Err(e) if e.is_damage() => v.damaged(Damage::from_error(Some(&path), &e)),
            other => other?,
        }
    }
    Ok(())
}
