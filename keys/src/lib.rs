//! keys: the vault's keystore (`VAULT/pivault.keystore`) and its slots.
//!
//! A keystore holds one random [`Keyring`], sealed once under a random
//! keyring wrapping key (KWK) that each slot wraps; each slot is a way to
//! unseal it: a passphrase (Argon2id), a recovery key ([`RecoveryKey`]),
//! K of N Shamir shares ([`ShareFile`]), or an organisation's age identity
//! ([`EscrowIdentity`]). Rotation and retirement re-seal only the keyring,
//! so every slot follows. Slots may carry a [`SlotPolicy`] (OS users,
//! expiry, failures before a lock), enforced by [`Keystore::unseal_as`].
//! Every unseal and key change goes to the signed, hash-chained audit log
//! ([`audit`]). The file carries a format version, a SHA-256 checksum
//! (detects damage without any secret) and an HMAC under a key derived
//! from the keyring (detects tampering once unsealed). It is replaced
//! atomically and never rewritten by a failed unseal.
//!
//! ```no_run
//! use keys::{Keystore, KdfParams, Passphrase};
//! use vault_core::Suite;
//! let dir = std::path::Path::new("/tmp/vault");
//! let pass = Passphrase::new(b"correct horse battery staple".to_vec());
//! let (_store, _keyring) = Keystore::create(dir, Suite::Aes256Gcm, &pass, KdfParams::default()).unwrap();
//! let store = Keystore::load(dir).unwrap();
//! let unsealed = store.unseal_passphrase(&pass, None).unwrap();
//! assert_eq!(unsealed.keyring.current_version(), 1);
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod atomic;
pub mod audit;
pub mod audit_ship;
mod audit_syslog;
mod audit_verify;
mod body;
mod error;
mod escrow;
mod keystore;
mod lifecycle;
mod lockout;
mod nofollow;
mod policy;
mod recovery;
mod rewrap;
mod role;
pub mod sealed_keys;
mod shares;
mod slot;
mod slot_key;
mod strength;
mod trail;
mod unseal;
mod writelock;

pub use atomic::{write_atomic, write_new};
pub use error::{Error, Result};
pub use escrow::EscrowIdentity;
pub use keystore::{Keystore, SlotInfo, KEYSTORE_FILE};
pub use nofollow::{open_regular, read_regular};
pub use policy::{slot_states, Secret, SlotPolicy, SlotState};
pub use recovery::RecoveryKey;
pub use role::Role;
pub use shares::ShareFile;
pub use slot::{KdfParams, Passphrase, SlotKind};
pub use strength::{check_new_passphrase, Strength, MIN_CHARS, MIN_GUESSES_LOG10};
pub use unseal::Unsealed;
pub use vault_core::Keyring;
pub use writelock::LOCK_FILE as KEYSTORE_LOCK_FILE;
