//! The one error type of the vault crate: every variant names the path at
//! fault, as the user knows it (never a `/proc/self/fd` path).

use std::path::PathBuf;

/// Result alias for the vault crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong in the vault tree.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// Ciphertext at `host` is damaged or was tampered with.
    #[error("{host}: {source}")]
    Damaged {
        /// The ciphertext path.
        host: PathBuf,
        /// What failed.
        #[source]
        source: vault_core::Error,
    },
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The name is not storable.
    #[error("{0}")]
    InvalidName(vault_core::Error),
    /// The name is longer than 255 bytes.
    #[error("{0}")]
    NameTooLong(vault_core::Error),
    /// The entry already exists.
    #[error("{0} already exists in the vault; nothing was overwritten")]
    Exists(PathBuf),
    /// The entry does not exist.
    #[error("{0} does not exist")]
    NotFound(PathBuf),
    /// A destination directory is not empty.
    #[error("{0} is not empty; choose an empty or new directory")]
    NotEmpty(PathBuf),
    /// The keyring holds two tree keys: a move of the names to a new key
    /// (`reencrypt --retire`) was interrupted, and only the move may open
    /// the vault until it is finished.
    #[error("{0}: a move of the vault's names to a new key was interrupted; finish it with `pivault reencrypt {0} --retire` (nothing was changed)")]
    TreeMovePending(PathBuf),
    /// The directory already holds a vault.
    #[error("{0} is already a pivault vault; creating one never overwrites a keystore")]
    AlreadyVault(PathBuf),
    /// The path is a directory, where something else was needed.
    #[error("{0} is a directory")]
    IsADirectory(PathBuf),
    /// This kind of entry cannot get a second name.
    #[error(
        "a {0:?} cannot be hard-linked in a vault (a symlink's target is sealed to its one name)"
    )]
    NotLinkable(crate::tree::Kind),
    /// A file's header has no free name slot for another hard link.
    #[error("{0} already has the most names a vault file can have (4); remove one first")]
    TooManyLinks(PathBuf),
    /// The path is not a directory.
    #[error("{0} is not a directory")]
    NotADirectory(PathBuf),
    /// A keystore or audit-log operation failed.
    #[error(transparent)]
    Keys(keys::Error),
    /// A crypto operation failed for a reason other than damage.
    #[error(transparent)]
    Core(vault_core::Error),
}

impl Error {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: crate::tree::shown(&path.into()),
            source,
        }
    }

    /// Damaged or tampered ciphertext at `host`.
    pub fn damaged(host: impl Into<PathBuf>, source: vault_core::Error) -> Error {
        Error::Damaged {
            host: crate::tree::shown(&host.into()),
            source,
        }
    }

    /// Wraps a vault-core error that happened on `host`.
    pub fn core(host: impl Into<PathBuf>, e: vault_core::Error) -> Error {
        let host = crate::tree::shown(&host.into());
        match e {
            vault_core::Error::Io(source) => Error::Io { path: host, source },
            vault_core::Error::InvalidName(_) => Error::InvalidName(e),
            vault_core::Error::NameTooLong(_) => Error::NameTooLong(e),
            e if e.is_integrity() => Error::Damaged { host, source: e },
            e => Error::Core(e),
        }
    }

    /// True when the error means damaged or tampered ciphertext.
    pub fn is_damage(&self) -> bool {
        matches!(self, Error::Damaged { .. })
    }
}
