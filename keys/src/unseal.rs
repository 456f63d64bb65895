//! Unsealing: a slot's secret becomes its KEK, the KEK opens the slot's
//! X25519 identity, the identity opens the keyring wrapping key (KWK)
//! encrypted to it, the KWK opens the keyring, and the keystore's MAC is
//! checked under the keyring. A format-2 slot's KEK opens the KWK
//! directly, a format-1 slot's the keyring. Unsealing never writes the
//! keystore.

use crate::body::{SlotForm, SlotRecord};
use crate::keystore::Keystore;
use crate::slot::{Passphrase, SlotKind};
use crate::slot_key::SlotIdentity;
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
    /// The keyring wrapping key, when the slot led to one (not a format-1
    /// slot, which seals the keyring itself).
    pub(crate) kwk: Option<SecretKey>,
    /// The slot's X25519 identity and authenticator key (format 3), as
    /// its KEK sealed them: how a running process follows a KWK another
    /// process re-drew, and checks that a holder of the keys re-drew it.
    pub(crate) identity: Option<(SlotIdentity, SecretKey)>,
    /// The KEK of a slot carried over from format 1 or 2, kept so the next
    /// write can give the slot a key pair.
    pub(crate) upgrade_kek: Option<SecretKey>,
    /// The KEK of a format-3 slot, kept so that a write can give the slot
    /// a new authenticator key (after a removal, see `stale_auth`).
    pub(crate) slot_kek: Option<SecretKey>,
    /// The sequence number of the audit record that handed the log to a
    /// new signing key, during a rotation.
    pub(crate) audit_handover: Option<u64>,
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
            identity: None,
            upgrade_kek: None,
            slot_kek: None,
            audit_handover: None,
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
    /// Format 3: the slot's identity, its authenticator key, and the KWK
    /// it opened.
    KeyPair(SlotIdentity, SecretKey, SecretKey),
    /// Format 2: the KWK.
    Kwk(SecretKey),
    /// Format 1: the keyring.
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
        let slot_kek = (rec.form(self.version) == SlotForm::KeyPair).then(|| kek.clone());
        let (keyring, kwk, identity, upgrade_kek) = match self.open_slot(rec, &kek)? {
            Opened::Wrong => return Ok(None),
            Opened::Keyring(k) => (k, None, None, Some(kek)),
            Opened::Kwk(kwk) => (self.open_keyring(&kwk)?, Some(kwk), None, Some(kek)),
            Opened::KeyPair(id, auth, kwk) => {
                (self.open_keyring(&kwk)?, Some(kwk), Some((id, auth)), None)
            }
        };
        self.check_mac(&keyring)?;
        Ok(Some(Unsealed {
            keyring,
            slot: rec.id,
            weak_kdf: rec.kdf.is_some_and(|k| k.test_only),
            kwk,
            identity,
            upgrade_kek,
            slot_kek,
            audit_handover: None,
            reason: None,
            role: rec.role(),
        }))
    }

    fn open_slot(&self, rec: &SlotRecord, kek: &SecretKey) -> Result<Opened> {
        let form = rec.form(self.version);
        let wrapped = B64.decode(&rec.wrapped).map_err(|_| {
            Error::corrupt(&self.path, format!("slot {} is not valid base64", rec.id))
        })?;
        let aead = Aead::new(self.suite, kek)?;
        let Some(plain) = aead.open(&self.slot_aad(rec.id, rec.kind, form), &wrapped) else {
            return Ok(Opened::Wrong);
        };
        let plain = SecretBytes::new(plain);
        match form {
            SlotForm::Keyring => {
                let keyring = Keyring::from_bytes(plain.expose()).map_err(|e| {
                    Error::corrupt(
                        &self.path,
                        format!("slot {} holds a malformed keyring ({e})", rec.id),
                    )
                })?;
                Ok(Opened::Keyring(keyring))
            }
            SlotForm::Kwk => Ok(Opened::Kwk(self.kwk_from(rec.id, plain.expose())?)),
            SlotForm::KeyPair => {
                let (auth, identity) =
                    SlotIdentity::from_sealed_form(plain.expose()).ok_or_else(|| {
                        Error::corrupt(
                            &self.path,
                            format!(
                                "slot {} holds something other than an X25519 identity",
                                rec.id
                            ),
                        )
                    })?;
                self.check_slot_auth(rec, &auth)?;
                let kwk = self.kwk_of_slot(rec, &identity)?;
                Ok(Opened::KeyPair(identity, auth, kwk))
            }
        }
    }

    fn kwk_from(&self, slot: u32, bytes: &[u8]) -> Result<SecretKey> {
        SecretKey::from_slice(bytes).ok_or_else(|| {
            Error::corrupt(
                &self.path,
                format!("slot {slot} holds a wrapping key of the wrong length"),
            )
        })
    }

    /// The KWK a format-3 slot's `kwk` member holds for `identity`, after
    /// checking that the identity is the one the slot's public key names
    /// (under the MAC, checked right after).
    fn kwk_of_slot(&self, rec: &SlotRecord, identity: &SlotIdentity) -> Result<SecretKey> {
        let damaged = |what: &str| Error::corrupt(&self.path, format!("slot {} {what}", rec.id));
        if rec.public.as_deref() != Some(identity.public().as_str()) {
            return Err(damaged("holds an identity its public key does not name"));
        }
        let wrapped = rec
            .kwk
            .as_deref()
            .ok_or_else(|| damaged("has no wrapped key"))?;
        identity
            .open_kwk(&self.path, rec.id, wrapped)?
            .ok_or_else(|| damaged("has a wrapped key that is not encrypted to its public key"))
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
    /// keyring with what `u` holds, without any passphrase: how a
    /// long-running process (a mount) picks up a rotation made by another
    /// process. A format-3 slot follows a re-drawn KWK through its key
    /// pair; once the slot is removed or its passphrase changed, this
    /// fails (the process keeps the keys it holds but learns no new ones).
    pub fn reload_keyring(&self, u: &Unsealed) -> Result<Keyring> {
        let fresh = Keystore::load(self.path.parent().unwrap_or(std::path::Path::new(".")))?;
        if fresh.vault_id != self.vault_id {
            return Err(Error::corrupt(
                &fresh.path,
                "it belongs to another vault (its vault_id changed)",
            ));
        }
        let kwk = match &u.identity {
            Some(identity) => {
                let rec = fresh
                    .body
                    .slots
                    .iter()
                    .find(|s| s.id == u.slot)
                    .ok_or(Error::SlotGone(u.slot))?;
                if rec.public.as_deref() != Some(identity.0.public().as_str()) {
                    return Err(Error::SlotGone(u.slot));
                }
                fresh.check_slot_auth(rec, &identity.1)?;
                fresh.kwk_of_slot(rec, &identity.0)?
            }
            None => u.kwk()?.clone(),
        };
        let keyring = fresh.open_keyring(&kwk)?;
        fresh.check_mac(&keyring)?;
        Ok(keyring)
    }
}
