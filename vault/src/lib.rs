//! vault: a pivault vault directory and everything done to it without
//! FUSE.
//!
//! [`Vault`] maps plaintext directories, names and files onto the
//! ciphertext tree (formats from `vault-core`, keys from `keys`) and owns
//! its binding protocol; [`import`], [`export`], [`fsck`], [`reencrypt`]
//! and [`move_tree`] work on it offline; [`VaultLock`] keeps them from
//! running beside a mount. The FUSE adapter (`vault-fuse`) and the CLI
//! are thin layers over this crate.
#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod binding;
mod crash;
mod create;
mod error;
mod fsck;
pub mod hostattr;
mod hostfile;
pub mod layout;
mod lock;
pub mod mountinfo;
mod recover;
mod reencrypt;
mod retree;
pub mod sys;
#[cfg(test)]
mod test_support;
mod transfer;
mod tree;
mod walk;

pub use binding::{open_rw_forced, NoOpenFiles, OpenFiles, RenameMode, Renamed};
pub use error::{Error, Result};
pub use fsck::{fsck, FsckReport};
pub use hostfile::HostFile;
pub use layout::TEMP_PREFIX;
pub use lock::{wait_unlocked, VaultLock, LOCK_FILE};
pub use recover::{
    unclean_end, undo_interrupted_writes, Interrupted, MountMark, Recovery, MOUNTED_FILE,
};
pub use reencrypt::{census, reencrypt, Census, ReencryptProgress, ReencryptReport};
pub use retree::{move_tree, TreeMoveReport};
pub use transfer::{export, import, ExportOptions, Report};
pub use tree::{
    anchor, anchor_root, join_plain, shown, Anchor, Dir, Entry, Kind, Listed, NodeKind, Vault,
    PROC_FD,
};
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
