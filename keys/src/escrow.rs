//! Escrow slots: a random 256-bit slot secret encrypted to an
//! organisation's X25519 public key in the age format, so IT can recover
//! any laptop's vault with its identity file and set a new passphrase,
//! without the user. The KEK is HKDF-SHA256(secret, "pivault v1 escrow
//! slot", salt); the slot record keeps the recipient and the age file.

use crate::audit::Event;
use crate::body::SlotRecord;
use crate::keystore::{now, Keystore};
use crate::slot::SlotKind;
use crate::unseal::Unsealed;
use crate::{Error, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::str::FromStr;
use vault_core::SecretKey;
use zeroize::Zeroizing;

const KEK_LABEL: &str = "pivault v1 escrow slot";

/// The public part of an escrow slot, in its record.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub(crate) struct EscrowInfo {
    /// The age recipient (`age1...`).
    pub recipient: String,
    /// base64 of the binary age file holding the slot secret.
    pub sealed: String,
}

/// An age X25519 identity read from a file (`AGE-SECRET-KEY-1...` lines;
/// comments and blank lines are skipped).
pub struct EscrowIdentity {
    path: PathBuf,
    identities: Vec<age::x25519::Identity>,
}

impl std::fmt::Debug for EscrowIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EscrowIdentity")
            .field("path", &self.path)
            .finish_non_exhaustive()
    }
}

impl EscrowIdentity {
    /// Reads an age identity file.
    pub fn read(path: &Path) -> Result<EscrowIdentity> {
        let text = Zeroizing::new(std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?);
        let mut identities = Vec::new();
        for line in text.lines().map(str::trim) {
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let id = age::x25519::Identity::from_str(line).map_err(|_| Error::BadIdentity {
                path: path.to_path_buf(),
                reason: "a line is not an age X25519 identity (AGE-SECRET-KEY-1...)".into(),
            })?;
            identities.push(id);
        }
        if identities.is_empty() {
            return Err(Error::BadIdentity {
                path: path.to_path_buf(),
                reason: "it holds no age identity".into(),
            });
        }
        Ok(EscrowIdentity {
            path: path.to_path_buf(),
            identities,
        })
    }
}

fn kek(secret: &[u8], salt: &[u8]) -> Result<SecretKey> {
    let mut out = Zeroizing::new([0u8; 32]);
    vault_core::derive(secret, KEK_LABEL, salt, out.as_mut())?;
    Ok(SecretKey::from_bytes(*out))
}

impl Keystore {
    /// Adds an escrow slot for age recipient `recipient` (`age1...`).
    /// Saves atomically. Returns the slot number.
    pub fn add_escrow(&mut self, u: &mut Unsealed, recipient: &str) -> Result<u32> {
        self.require_admin(u, "add a slot")?;
        let r = age::x25519::Recipient::from_str(recipient.trim())
            .map_err(|e| Error::BadRecipient(format!("{recipient:?}: {e}")))?;
        self.begin_write(u)?;
        let id = self.body.next_slot;
        let secret = SecretKey::random()?;
        let sealed = age::encrypt(&r, secret.expose())
            .map_err(|e| Error::BadRecipient(format!("age encryption failed: {e}")))?;
        let salt = vault_core::random::array::<16>()?;
        let kek = kek(secret.expose(), &salt)?;
        let (wrapped, public, _) =
            self.seal_new_identity(&mut u.keyring, &kek, id, SlotKind::Escrow)?;
        let rec = SlotRecord {
            id,
            kind: SlotKind::Escrow,
            created: now(),
            kdf: None,
            salt: B64.encode(salt),
            policy: None,
            role: None,
            shares: None,
            escrow: Some(EscrowInfo {
                recipient: r.to_string(),
                sealed: B64.encode(sealed),
            }),
            wraps: None,
            weak: false,
            public: Some(public),
            kwk: None,
            auth: None,
            wrapped,
        };
        self.body.slots.push(rec);
        self.body.next_slot = id + 1;
        self.save(u)?;
        self.audited(
            u,
            Event::new("slot-add")
                .slot(id)
                .detail("kind", "escrow")
                .detail("recipient", recipient.trim())
                .detail("by_slot", u.slot),
        );
        Ok(id)
    }

    /// The KEK of escrow slot `rec`, or `None` when `identity` is not its
    /// recipient's.
    pub(crate) fn escrow_kek(
        &self,
        rec: &SlotRecord,
        identity: &EscrowIdentity,
    ) -> Result<Option<SecretKey>> {
        let info = rec.escrow.as_ref().ok_or_else(|| {
            Error::corrupt(
                &self.path,
                format!("escrow slot {} has no age file", rec.id),
            )
        })?;
        let sealed = B64.decode(&info.sealed).map_err(|_| {
            Error::corrupt(
                &self.path,
                format!("escrow slot {} has a malformed age file", rec.id),
            )
        })?;
        for id in &identity.identities {
            match age::decrypt(id, &sealed) {
                Ok(secret) => {
                    let secret = Zeroizing::new(secret);
                    let salt = B64.decode(&rec.salt).map_err(|_| {
                        Error::corrupt(&self.path, format!("slot {} has a malformed salt", rec.id))
                    })?;
                    return kek(&secret, &salt).map(Some);
                }
                Err(age::DecryptError::NoMatchingKeys) => {}
                Err(e) => {
                    return Err(Error::corrupt(
                        &self.path,
                        format!("escrow slot {}'s age file does not decrypt ({e})", rec.id),
                    ))
                }
            }
        }
        Ok(None)
    }
}
