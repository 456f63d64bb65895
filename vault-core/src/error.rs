//! The one error type of vault-core: every variant says what is wrong with
//! which piece of ciphertext, in words a person can act on.

/// Result alias for vault-core.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong while sealing or opening vault data.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A content block failed authentication: its bytes were changed, it was
    /// moved from another position or file, the file was truncated or
    /// extended at a block boundary, or the header was swapped.
    #[error("block {index} failed authentication: the ciphertext was modified, moved, truncated or extended")]
    BlockAuth {
        /// Index of the block (0-based) that failed.
        index: u64,
    },
    /// The file header could not be parsed.
    #[error("file header is damaged: {0}")]
    Header(&'static str),
    /// The file's header does not carry a binding for the name it was
    /// reached by: the ciphertext was renamed or swapped with another file's.
    #[error("file content does not belong to this name: the ciphertext was renamed or swapped with another file's")]
    Binding,
    /// The ciphertext length cannot be produced by this format.
    #[error(
        "ciphertext length {0} is impossible for this format: the file was truncated or extended"
    )]
    Length(u64),
    /// An encrypted name failed to decrypt.
    #[error("encrypted name does not decrypt in this directory: it was moved from another directory, edited, or the directory ID file was replaced")]
    Name,
    /// An encrypted name is not valid base64url or has an impossible length.
    #[error("encrypted name is malformed: {0}")]
    NameEncoding(&'static str),
    /// A plaintext name cannot be stored (empty, `.`/`..`, has `/` or NUL, or over 255 bytes).
    #[error("invalid file name: {0}")]
    InvalidName(&'static str),
    /// A plaintext name longer than 255 bytes (NAME_MAX).
    #[error("invalid file name: {0} bytes, longer than 255 bytes")]
    NameTooLong(usize),
    /// A directory ID file is damaged or does not belong where it is.
    #[error("directory ID file is damaged or was replaced: {0}")]
    DirId(&'static str),
    /// The header names a data-key version the keyring does not hold.
    #[error("data key version {0} is not in the keyring (retired, or the keystore is older than this file)")]
    UnknownKeyVersion(u32),
    /// The keyring bytes are damaged or from a newer pivault.
    #[error("keyring is malformed: {0}")]
    Keyring(&'static str),
    /// A keyring offered to a running mount lacks data-key versions the
    /// mount holds: an older copy of the keystore was put back.
    #[error("the keystore's keyring is older than the one in use: it lacks data-key version(s) {} that this mount holds (its newest is {offered_newest}, this mount's {held_newest}): an older copy of pivault.keystore was put back", .missing.iter().map(u32::to_string).collect::<Vec<_>>().join(", "))]
    KeyringRollback {
        /// Versions held but missing from the offered keyring.
        missing: Vec<u32>,
        /// The newest version held.
        held_newest: u32,
        /// The newest version offered.
        offered_newest: u32,
    },
    /// A symlink target failed to decrypt.
    #[error("symlink target failed authentication: it was modified or moved")]
    Symlink,
    /// The operating system's random number generator failed.
    #[error("the system random number generator failed")]
    Random,
    /// A lower-level cryptographic operation failed where it cannot fail with valid inputs.
    #[error("cryptographic operation failed: {0}")]
    Crypto(&'static str),
    /// A size or offset is out of the format's range.
    #[error("offset or size out of range: {0}")]
    Range(&'static str),
    /// Reading or writing the ciphertext store failed.
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl Error {
    /// True when the error means the ciphertext is damaged or was tampered
    /// with (as opposed to an I/O failure or a caller mistake).
    pub fn is_integrity(&self) -> bool {
        matches!(
            self,
            Error::BlockAuth { .. }
                | Error::Header(_)
                | Error::Binding
                | Error::Length(_)
                | Error::Name
                | Error::NameEncoding(_)
                | Error::DirId(_)
                | Error::Symlink
                | Error::UnknownKeyVersion(_)
        )
    }
}
