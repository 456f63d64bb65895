//! Unsealing: a slot's secret becomes its KEK, the KEK opens the keyring
//! wrapping key (KWK), the KWK opens the keyring, and the keystore's MAC
//! is checked under the keyring. A format-1 slot's KEK opens the keyring
//! directly. Unsealing never writes the keystore.

use crate::body::SlotRecord;
use crate::keystore::Keystore;
use crate::slot::{Passphrase, SlotKind};
use crate::{Error, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use vault_core::{Aead, Keyring, SecretBytes, SecretKey};

/// The result of a successful unseal: the keyring, and what a later
/// keystore change needs (kept private, wiped on drop).
#[derive(Debug)]
pub struct Unsealed {
    /// The vault's keyring.
    pub keyring: Keyring,
    /// The slot that opened.
    pub slot: u32,
    /// True when that slot uses test-only KDF parameters.
    pub weak_kdf: bool,
    /// The keyring wrapping key, when the slot wrapped one (format 2).
    pub(crate) kwk: Option<SecretKey>,
    /// The KEK of a format-1 slot, kept so the next write can upgrade it.
    pub(crate) legacy_kek: Option<SecretKey>,
    /// Why the caller unsealed (the command): the reason of the audit
    /// records the library writes for changes made with this unseal.
    pub reason: Option<String>,
    /// The role of the slot that opened, as it was when it opened (the
    /// slot itself may be removed meanwhile).
    pub role: crate::Role,
}

impl Unsealed {
    /// A new vault's keyring with a fresh KWK (no slot yet).
    pub(crate) fn fresh(keyring: Keyring) -> Result<Unsealed> {
        Ok(Unsealed {
            keyring,
            slot: 0,
            weak_kdf: false,
            kwk: Some(SecretKey::random()?),
            legacy_kek: None,
            reason: None,
            role: crate::Role::Admin,
        })
    }

    pub(crate) fn kwk(&self) -> Result<&SecretKey> {
        self.kwk.as_ref().ok_or(Error::LegacySlot {
            slots: vec![self.slot],
            path: std::path::PathBuf::new(),
        })
    }
}

/// What a slot's KEK opened.
enum Opened {
    Wrong,
    Kwk(SecretKey),
    Keyring(Keyring),
}

impl Keystore {
    /// Opens the keyring with a passphrase: the given slot, or each
    /// passphrase slot in turn. Never writes the keystore.
    pub fn unseal_passphrase(&self, pass: &Passphrase, slot: Option<u32>) -> Result<Unsealed> {
        let candidates: Vec<&SlotRecord> = match slot {
            Some(id) => {
                let rec = &self.body.slots[self.slot_index(id)?];
                if rec.kind != SlotKind::Passphrase {
                    return Err(Error::NotPassphraseSlot(id));
                }
                vec![rec]
            }
            None => self
                .body
                .slots
                .iter()
                .filter(|s| s.kind == SlotKind::Passphrase)
                .collect(),
        };
        for rec in candidates {
            let salt = B64.decode(&rec.salt).map_err(|_| {
                Error::corrupt(&self.path, format!("slot {} has a malformed salt", rec.id))
            })?;
            let kdf = rec.kdf.ok_or_else(|| {
                Error::corrupt(
                    &self.path,
                    format!("slot {} has no Argon2id parameters", rec.id),
                )
            })?;
            let kek = kdf.derive(pass, &salt)?;
            if let Some(u) = self.unseal_with_kek(rec, kek)? {
                return Ok(u);
            }
        }
        Err(Error::WrongPassphrase)
    }

    /// Tries `secret` on slot `rec` (of the secret's kind); `None` when it
    /// does not open.
    pub(crate) fn try_slot(
        &self,
        rec: &SlotRecord,
        secret: &crate::Secret,
    ) -> Result<Option<Unsealed>> {
        let salt = B64.decode(&rec.salt).map_err(|_| {
            Error::corrupt(&self.path, format!("slot {} has a malformed salt", rec.id))
        })?;
        let kek = match secret {
            crate::Secret::Passphrase(pass) => {
                let kdf = rec.kdf.ok_or_else(|| {
                    Error::corrupt(
                        &self.path,
                        format!("slot {} has no Argon2id parameters", rec.id),
                    )
                })?;
                kdf.derive(pass, &salt)?
            }
            crate::Secret::Recovery(key) => key.kek(&salt)?,
            crate::Secret::Shares(shares) => self.shares_kek(rec, shares)?,
            crate::Secret::Escrow(identity) => match self.escrow_kek(rec, identity)? {
                Some(k) => k,
                None => return Ok(None),
            },
        };
        self.unseal_with_kek(rec, kek)
    }

    /// Opens slot `rec` with its KEK; `None` when the KEK is wrong.
    pub(crate) fn unseal_with_kek(
        &self,
        rec: &SlotRecord,
        kek: SecretKey,
    ) -> Result<Option<Unsealed>> {
        let legacy = self.is_legacy(rec);
        let (keyring, kwk, legacy_kek) = match self.open_slot(rec, &kek, legacy)? {
            Opened::Wrong => return Ok(None),
            Opened::Keyring(k) => (k, None, Some(kek)),
            Opened::Kwk(kwk) => (self.open_keyring(&kwk)?, Some(kwk), None),
        };
        self.check_mac(&keyring)?;
        Ok(Some(Unsealed {
            keyring,
            slot: rec.id,
            weak_kdf: rec.kdf.is_some_and(|k| k.test_only),
            kwk,
            legacy_kek,
            reason: None,
            role: rec.role(),
        }))
    }

    fn open_slot(&self, rec: &SlotRecord, kek: &SecretKey, legacy: bool) -> Result<Opened> {
        let wrapped = B64.decode(&rec.wrapped).map_err(|_| {
            Error::corrupt(&self.path, format!("slot {} is not valid base64", rec.id))
        })?;
        let aead = Aead::new(self.suite, kek)?;
        let Some(plain) = aead.open(&self.slot_aad(rec.id, rec.kind, legacy), &wrapped) else {
            return Ok(Opened::Wrong);
        };
        let plain = SecretBytes::new(plain);
        if legacy {
            let keyring = Keyring::from_bytes(plain.expose()).map_err(|e| {
                Error::corrupt(
                    &self.path,
                    format!("slot {} holds a malformed keyring ({e})", rec.id),
                )
            })?;
            return Ok(Opened::Keyring(keyring));
        }
        let kwk: [u8; 32] = plain.expose().try_into().map_err(|_| {
            Error::corrupt(
                &self.path,
                format!("slot {} holds a wrapping key of the wrong length", rec.id),
            )
        })?;
        Ok(Opened::Kwk(SecretKey::from_bytes(kwk)))
    }

    /// Opens the format-2 sealed keyring with the KWK.
    pub(crate) fn open_keyring(&self, kwk: &SecretKey) -> Result<Keyring> {
        let sealed = self
            .body
            .keyring
            .as_deref()
            .and_then(|k| B64.decode(k).ok())
            .ok_or_else(|| Error::corrupt(&self.path, "its sealed keyring is not valid base64"))?;
        let plain = Aead::new(self.suite, kwk)?
            .open(&self.keyring_aad(), &sealed)
            .map(SecretBytes::new)
            .ok_or_else(|| {
                Error::corrupt(
                    &self.path,
                    "its sealed keyring does not open with the key the slot holds (it was altered or replaced)",
                )
            })?;
        Keyring::from_bytes(plain.expose())
            .map_err(|e| Error::corrupt(&self.path, format!("its keyring is malformed ({e})")))
    }

    /// Re-reads this vault's keystore from disk and opens its current
    /// keyring with the KWK `u` holds, without any passphrase: how a
    /// long-running process (a mount) picks up a rotation made by another
    /// process. Fails when the keystore was re-keyed or is damaged.
    pub fn reload_keyring(&self, u: &Unsealed) -> Result<Keyring> {
        let fresh = Keystore::load(self.path.parent().unwrap_or(std::path::Path::new(".")))?;
        if fresh.vault_id != self.vault_id {
            return Err(Error::corrupt(
                &fresh.path,
                "it belongs to another vault (its vault_id changed)",
            ));
        }
        let keyring = fresh.open_keyring(u.kwk()?)?;
        fresh.check_mac(&keyring)?;
        Ok(keyring)
    }
}
