//! The one error type of the keys crate. Messages name the file at fault and
//! say what to do next.

use std::path::PathBuf;

/// Result alias for the keys crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong with a keystore.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// No slot opened with the given passphrase.
    #[error("the passphrase is wrong (no passphrase slot opened with it); nothing was changed")]
    WrongPassphrase,
    /// The directory holds no keystore.
    #[error(
        "{0} is not a pivault vault: it has no pivault.keystore (create one with `pivault init`)"
    )]
    NotAVault(PathBuf),
    /// The keystore file is damaged.
    #[error("{path} is damaged: {reason}; the file was left untouched. Restore it from a copy made with `pivault keys backup`")]
    Corrupt {
        /// The keystore file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// The keystore was written by a newer pivault.
    #[error("{path} has format version {found}, but this pivault reads version {supported}; upgrade pivault (the file was left untouched)")]
    FutureVersion {
        /// The keystore file.
        path: PathBuf,
        /// Version found in the file.
        found: u32,
        /// Version this build reads.
        supported: u32,
    },
    /// `init` found an existing keystore.
    #[error("{0} is already a pivault vault; `init` never overwrites a keystore")]
    AlreadyInitialised(PathBuf),
    /// A passphrase was empty.
    #[error("the passphrase is empty; choose a long passphrase")]
    EmptyPassphrase,
    /// The slot asked for does not exist.
    #[error("slot {0} does not exist (see `pivault keys list`)")]
    NoSuchSlot(u32),
    /// The slot exists but is not of the kind the operation needs.
    #[error("slot {0} is not a passphrase slot")]
    NotPassphraseSlot(u32),
    /// Removing this slot would leave no way to unseal.
    #[error("slot {0} is the last slot; removing it would lock the vault forever (add another slot first)")]
    LastSlot(u32),
    /// Slots of keystore format 1 would keep the old keyring after a key change.
    #[error("{path}: slot(s) {} still use keystore format 1 (each seals the keyring itself) and cannot follow a key change; re-wrap each with `pivault keys change-passphrase --slot N` or remove it, then retry (nothing was changed)", .slots.iter().map(u32::to_string).collect::<Vec<_>>().join(", "))]
    LegacySlot {
        /// The format-1 slots.
        slots: Vec<u32>,
        /// The keystore file.
        path: PathBuf,
    },
    /// Slots carried over from keystore format 2 seal the keyring
    /// wrapping key themselves, so a change that must draw a new one (to
    /// cut off a removed slot or a changed passphrase) cannot reach them.
    #[error("{path}: slot(s) {} were written by an older pivault (keystore format 2) and cannot receive the new wrapping key this change draws to cut off old copies of the keystore; each holder unseals once with this pivault (any command that asks for the secret upgrades the slot), or an admin changes the slot's passphrase (`pivault keys change-passphrase --slot N`) or removes it, then retry (nothing was changed)", .slots.iter().map(u32::to_string).collect::<Vec<_>>().join(", "))]
    OldFormatSlot {
        /// The format-2 slots.
        slots: Vec<u32>,
        /// The keystore file.
        path: PathBuf,
    },
    /// A record was to be signed with an audit key a rotation replaced
    /// (the process unsealed before the rotation).
    #[error("{0}: the vault's keys were rotated after this process unsealed, so it cannot sign audit records any more; the record was not written (unseal again)")]
    StaleAuditKey(std::path::PathBuf),
    /// Shipping the audit log to a remote syslog server failed (the
    /// records stay in the log and go with the next shipment).
    #[error("audit shipping: {0}")]
    AuditRemote(String),
    /// The slot a running process unsealed with was removed, or re-keyed
    /// by a passphrase change: it no longer follows key changes.
    #[error("slot {0}, which this process unsealed with, was removed or its passphrase changed: the process keeps the keys it holds but cannot take in new ones; unseal again (remount)")]
    SlotGone(u32),
    /// No recovery slot opened with the given recovery key.
    #[error("the recovery key is wrong (no recovery slot opened with it); nothing was changed")]
    WrongRecoveryKey,
    /// No escrow slot opened with the given age identity.
    #[error("the age identity does not open any escrow slot of this vault (another organisation's key?); nothing was changed")]
    WrongIdentity,
    /// A recovery key failed its checksum (a typo), before any key work.
    #[error("the recovery key has a typo: {0}; compare it group by group with the printed copy (nothing was tried)")]
    RecoveryKeyTypo(String),
    /// A share file is damaged or does not belong to the slot.
    #[error("share file {path}: {reason}; nothing was changed")]
    BadShare {
        /// The share file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// Fewer shares than the threshold.
    #[error("slot {slot} needs {need} shares, {have} given: {} more needed (pass each with --share-file)", usize::from(*.need).saturating_sub(*.have))]
    NotEnoughShares {
        /// The share slot.
        slot: u32,
        /// Distinct valid shares given.
        have: usize,
        /// The threshold.
        need: u8,
    },
    /// Threshold and count out of range, or shares that do not combine.
    #[error("shares: {0}")]
    SharesParams(String),
    /// An age recipient that does not parse.
    #[error("invalid age recipient {0} (expected an X25519 recipient, age1...)")]
    BadRecipient(String),
    /// An age identity file that does not parse.
    #[error("identity file {path}: {reason}")]
    BadIdentity {
        /// The identity file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
    },
    /// A slot's policy forbids this unseal now.
    #[error("unseal refused: {0}; nothing was changed")]
    Refused(String),
    /// The slot named is of another kind than the secret given.
    #[error("slot {slot} is not a {kind} slot (see `pivault keys list`)")]
    WrongSlotKind {
        /// The slot.
        slot: u32,
        /// The kind of the secret given.
        kind: &'static str,
    },
    /// The vault has no slot of the kind asked for.
    #[error("{path} has no {kind} slot (see `pivault keys list`)")]
    NoSlotOfKind {
        /// The keystore file.
        path: PathBuf,
        /// The kind asked for.
        kind: &'static str,
    },
    /// A restricted slot tried an admin action.
    #[error("slot {slot} is a restricted slot: it may unseal and change its own passphrase, not {action}; unseal with an admin slot's secret (see `pivault keys list`)")]
    NotAdmin {
        /// The slot that unsealed.
        slot: u32,
        /// What it tried.
        action: String,
    },
    /// The last admin slot would go.
    #[error("slot {0} is the last admin slot; removing or restricting it would leave nobody able to manage the vault's keys (make another slot admin first: `pivault keys policy VAULT --slot N --admin`)")]
    LastAdmin(u32),
    /// Another command wrote the keystore between this command's read and
    /// its write; this command's change was not written.
    #[error("{0} was changed by another pivault command while this one ran; nothing was changed by this one: run it again")]
    KeystoreChanged(PathBuf),
    /// A new passphrase is below the strength rule (keys/src/strength.rs)
    /// and no exception was asked for.
    #[error("the new passphrase is too weak: {problems}.{feedback} Choose a longer passphrase, e.g. four or more random words, or pass --allow-weak-passphrase to record an exception in the slot (nothing was changed)")]
    WeakPassphrase {
        /// What is wrong with it ("it has 8 characters (at least 12 are needed)").
        problems: String,
        /// The estimator's warning and suggestions (may be empty).
        feedback: String,
    },
    /// A slot's stored Argon2id parameters are above pivault's ceiling: the
    /// keystore was edited (they are only checked by the MAC after the
    /// derivation they would make enormous).
    #[error("{path}: slot {slot}'s Argon2id {what} is {value}, above pivault's limit of {limit}; the keystore was edited or damaged, so nothing was tried and nothing was changed. Restore it from a copy made with `pivault keys backup`")]
    KdfOverLimit {
        /// The keystore file.
        path: PathBuf,
        /// The slot.
        slot: u32,
        /// The parameter.
        what: &'static str,
        /// Its value in the file.
        value: u32,
        /// The ceiling.
        limit: u32,
    },
    /// Argon2 parameters out of range.
    #[error("invalid Argon2id parameters: {0}")]
    KdfParams(String),
    /// A file operation failed.
    #[error("{path}: {source}")]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// A crypto-core error.
    #[error(transparent)]
    Core(#[from] vault_core::Error),
}

impl Error {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Error {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, reason: impl Into<String>) -> Error {
        Error::Corrupt {
            path: path.into(),
            reason: reason.into(),
        }
    }
}
