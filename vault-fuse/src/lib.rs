//! vault-fuse: mounts a pivault vault (the `vault` crate) as a plaintext
//! directory with FUSE. [`fs`] translates kernel requests into calls on
//! [`vault::Vault`] and runs the mount session (daemon, signals, idle
//! seal, keyring reloads); everything that does not need FUSE lives in
//! `vault`.
#![deny(missing_docs)]

pub mod fs;
mod sys;
