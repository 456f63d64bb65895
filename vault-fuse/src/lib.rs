//! vault-fuse: the plaintext view of a pivault ciphertext directory.
//!
//! [`Vault`] maps plaintext directories, names and files onto the
//! ciphertext tree (formats from `vault-core`); [`import`], [`export`] and
//! [`fsck`] work on it offline, without FUSE; [`fs`] mounts it with FUSE.
#![deny(missing_docs)]

mod error;
pub mod fs;
mod fsck;
mod hostattr;
mod hostfile;
mod lock;
mod reencrypt;
mod retree;
mod sys;
mod transfer;
mod tree;
mod walk;

pub use error::{Error, Result};
pub use fsck::{fsck, FsckReport};
pub use hostfile::HostFile;
pub use lock::{VaultLock, LOCK_FILE};
pub use reencrypt::{census, reencrypt, Census, ReencryptProgress, ReencryptReport};
pub use retree::{move_tree, TreeMoveReport};
pub use transfer::{export, import, Report};
pub use tree::{join_plain, Dir, Entry, Kind, Listed, NodeKind, Vault};
pub use walk::{walk, Damage, Visitor};

/// Progress of a long operation, in plaintext bytes. The CLI draws a bar;
/// library callers may ignore it with [`NoProgress`].
pub trait Progress {
    /// The expected total.
    fn set_total(&self, _bytes: u64) {}
    /// Bytes done since the last call.
    fn advance(&self, _bytes: u64) {}
}

/// A [`Progress`] that shows nothing.
pub struct NoProgress;
impl Progress for NoProgress {}
