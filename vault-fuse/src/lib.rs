//! vault-fuse: mounts a pivault vault (the `vault` crate) as a plaintext
//! directory with FUSE. [`fs`] translates kernel requests into calls on
//! [`vault::Vault`] and runs the mount session (daemon, signals, idle
//! seal, keyring reloads); [`mount`] is one mount's life around it (the
//! mountpoint rules, the lock, a keystore rotated meanwhile, the audit
//! records). Everything that does not need FUSE lives in `vault`.
#![deny(missing_docs)]

pub mod fs;
pub mod mount;
mod sys;

pub use mount::{check_mountpoint, MountError, Prepared};
