//! Writing a keystore in format 3: upgrading an older one, drawing a new
//! keyring wrapping key (KWK) when a slot is removed, a passphrase changed
//! or the keys rotated, wrapping the KWK to every slot's public key, and
//! anchoring the audit log (with the hand-over of a rotated signing key).
//!
//! Why a new KWK: every slot leads to the KWK, and the KWK opens the
//! keyring. A former holder who kept a copy of the keystore and their
//! secret keeps the KWK; if it never changed, it would open every later
//! keyring too. Format-3 slots receive a new KWK through their X25519
//! public key (`slot_key`), so no other holder's secret is needed. A slot
//! carried over from format 2 seals the KWK itself under its KEK and so
//! cannot receive a new one: while one remains, a change that must draw a
//! new KWK is refused, naming it (its holder's next unseal upgrades it).

use crate::audit::{self, Event};
use crate::body::{
    self, AuditAnchor, PreviousAuditKey, SlotForm, SlotRecord, WRAPS_KEYRING, WRAPS_KWK,
};
use crate::keystore::Keystore;
use crate::slot_key::wrap_kwk_to;
use crate::unseal::Unsealed;
use crate::{Error, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use std::path::Path;
use vault_core::{Keyring, SecretKey};

impl Keystore {
    /// Prepares a change: upgrades an older keystore in memory (its slots
    /// are marked as carried over), gives the slot that unsealed a key
    /// pair when it was carried over and its KEK is held, and makes sure
    /// the KWK is known (a new one when it is not: the slot that unsealed
    /// sealed the keyring itself). Every method that saves calls this
    /// first.
    pub(crate) fn begin_write(&mut self, u: &mut Unsealed) -> Result<()> {
        if self.version < body::VERSION {
            let mark = if self.version == 1 {
                WRAPS_KEYRING
            } else {
                WRAPS_KWK
            };
            for rec in &mut self.body.slots {
                if rec.wraps.is_none() {
                    rec.wraps = Some(mark.to_string());
                }
            }
            self.version = body::VERSION;
        }
        if let Some(kek) = u.upgrade_kek.take() {
            if let Ok(pos) = self.slot_index(u.slot) {
                let (id, kind) = (self.body.slots[pos].id, self.body.slots[pos].kind);
                if self.is_legacy(&self.body.slots[pos]) {
                    let (wrapped, public, identity) =
                        self.seal_new_identity(&mut u.keyring, &kek, id, kind)?;
                    let rec = &mut self.body.slots[pos];
                    rec.wrapped = wrapped;
                    rec.public = Some(public);
                    rec.wraps = None;
                    if let Some(auth) = u.keyring.slot_auth(id).cloned() {
                        u.identity = Some((identity, auth));
                    }
                }
            }
        }
        if u.kwk.is_none() {
            // Unsealed through a format-1 slot: its keyring copy is stale
            // beside a sealed keyring (no authenticator keys of the other
            // slots, an older audit key), so no change is made through it.
            if self.body.keyring.is_some() {
                return Err(Error::LegacySlot {
                    slots: vec![u.slot],
                    path: self.path.clone(),
                });
            }
            self.redraw_kwk(u)?;
        }
        Ok(())
    }

    /// True when a write would upgrade something: an older format, the
    /// slot that unsealed (carried over, its KEK held), or a keyring
    /// without its own MAC key or audit signing key.
    pub fn needs_upgrade(&self, u: &Unsealed) -> bool {
        // Unsealed through a format-1 slot beside a sealed keyring: nothing
        // can be written through it (see `begin_write`).
        if u.kwk.is_none() && self.body.keyring.is_some() {
            return false;
        }
        // A keyring gets its own MAC key only once no format-1 slot (with
        // its own keyring copy) remains, so a missing one alone is no
        // reason to write while such a slot is there.
        let keyring_copies = self
            .body
            .slots
            .iter()
            .any(|s| s.form(self.version) == SlotForm::Keyring);
        self.version < body::VERSION
            || u.upgrade_kek.is_some()
            || (self.body.stale_auth.contains(&u.slot) && u.slot_kek.is_some())
            || self.body.audit.is_none()
            || (u.keyring.mac_key().is_none() && !keyring_copies)
    }

    /// Writes the keystore in the newest format when [`needs_upgrade`]
    /// says so, and records it (`keystore-upgraded`); returns whether it
    /// wrote. The slot that unsealed gets its key pair, so a later
    /// removal or rotation can reach it.
    ///
    /// [`needs_upgrade`]: Keystore::needs_upgrade
    pub fn upgrade(&mut self, u: &mut Unsealed) -> Result<bool> {
        if !self.needs_upgrade(u) {
            return Ok(false);
        }
        let from = self.version;
        let slot_upgraded = u.upgrade_kek.is_some();
        let auth_refreshed = self.refresh_slot_auth(u)?;
        self.save(u)?;
        self.audited(
            u,
            Event::new("keystore-upgraded")
                .slot(u.slot)
                .detail("from_format", from)
                .detail("slot_upgraded", slot_upgraded)
                .detail("authenticator_replaced", auth_refreshed),
        );
        Ok(true)
    }

    /// Gives the slot that unsealed a new authenticator key when a removed
    /// holder may know its current one (`stale_auth`): its KEK, held since
    /// the unseal, seals the new key with its identity. Returns whether it
    /// did. From then on a former holder who kept an older keyring can no
    /// longer assemble a keystore this slot accepts.
    pub(crate) fn refresh_slot_auth(&mut self, u: &mut Unsealed) -> Result<bool> {
        if !self.body.stale_auth.contains(&u.slot) {
            return Ok(false);
        }
        let (Some(kek), Some((identity, _))) = (&u.slot_kek, &u.identity) else {
            return Ok(false);
        };
        let pos = self.slot_index(u.slot)?;
        let (id, kind) = (self.body.slots[pos].id, self.body.slots[pos].kind);
        let aead = vault_core::Aead::new(self.suite, kek)?;
        // Only a KEK that opens the slot as it is now (not one its
        // passphrase change replaced) seals the slot's new contents.
        let current = B64
            .decode(&self.body.slots[pos].wrapped)
            .unwrap_or_default();
        if aead
            .open(&self.slot_aad(id, kind, SlotForm::KeyPair), &current)
            .map(vault_core::SecretBytes::new)
            .is_none()
        {
            return Ok(false);
        }
        let auth = SecretKey::random()?;
        let wrapped = B64.encode(aead.seal(
            &self.slot_aad(id, kind, SlotForm::KeyPair),
            identity.sealed_form(&auth).expose(),
        )?);
        self.body.slots[pos].wrapped = wrapped;
        u.keyring.set_slot_auth(id, auth.clone());
        if let Some(i) = u.identity.as_mut() {
            i.1 = auth;
        }
        self.body.stale_auth.retain(|&s| s != id);
        Ok(true)
    }

    /// Marks every remaining format-3 slot but the one that unsealed (which
    /// gets a new authenticator key now when its KEK is held) as holding
    /// an authenticator key a removed holder may know.
    pub(crate) fn mark_auth_stale(&mut self, u: &mut Unsealed) -> Result<()> {
        let mut stale: Vec<u32> = self
            .body
            .slots
            .iter()
            .filter(|s| s.public.is_some())
            .map(|s| s.id)
            .collect();
        stale.sort_unstable();
        self.body.stale_auth = stale;
        self.refresh_slot_auth(u)?;
        Ok(())
    }

    /// Slots carried over from format 2, which seal the KWK itself and so
    /// cannot receive a new one, other than `leaving` (about to go).
    pub(crate) fn unreachable_by_new_kwk(&self, leaving: Option<u32>) -> Vec<u32> {
        self.body
            .slots
            .iter()
            .filter(|s| s.form(self.version) == SlotForm::Kwk && Some(s.id) != leaving)
            .map(|s| s.id)
            .collect()
    }

    /// Refuses, before anything changes, a change that must draw a new
    /// KWK while a slot that cannot receive it would remain.
    pub(crate) fn check_can_redraw(&self, u: &Unsealed, leaving: Option<u32>) -> Result<()> {
        let mut slots = self.unreachable_by_new_kwk(leaving);
        // The slot that unsealed is upgraded on the write when its KEK is
        // held.
        if u.upgrade_kek.is_some() {
            slots.retain(|&s| s != u.slot);
        }
        if slots.is_empty() {
            Ok(())
        } else {
            Err(Error::OldFormatSlot {
                slots,
                path: self.path.clone(),
            })
        }
    }

    /// Draws a new KWK; the write wraps it to every slot's public key.
    /// Call after `begin_write` (which upgrades the slot that unsealed).
    pub(crate) fn redraw_kwk(&mut self, u: &mut Unsealed) -> Result<()> {
        let slots = self.unreachable_by_new_kwk(None);
        if !slots.is_empty() {
            return Err(Error::OldFormatSlot {
                slots,
                path: self.path.clone(),
            });
        }
        u.kwk = Some(SecretKey::random()?);
        Ok(())
    }

    /// Encrypts the current KWK to every format-3 slot's public key (a
    /// fresh age file each write, so nothing ties two writes together).
    pub(crate) fn wrap_kwk_for_all(&mut self, u: &Unsealed) -> Result<()> {
        let kwk = u.kwk()?;
        let path = self.path.clone();
        for rec in &mut self.body.slots {
            if let Some(public) = &rec.public {
                rec.kwk = Some(wrap_kwk_to(&path, rec.id, public, kwk)?);
            }
        }
        Ok(())
    }

    /// Tags every format-3 slot with its authenticator (FORMAT.md §4.3):
    /// HMAC-SHA256 under the slot's authenticator key over the slot's
    /// prefix and the canonical body without `mac` and without any `auth`.
    pub(crate) fn authenticate_slots(&mut self, keyring: &Keyring) -> Result<()> {
        for s in &mut self.body.slots {
            s.auth = None;
        }
        let input = body::auth_input(&self.body);
        let path = self.path.clone();
        for s in &mut self.body.slots {
            if s.public.is_none() {
                continue;
            }
            let key = keyring.slot_auth(s.id).ok_or_else(|| {
                Error::corrupt(
                    &path,
                    format!("the keyring has no authenticator key for slot {}", s.id),
                )
            })?;
            s.auth = Some(B64.encode(slot_auth_tag(key, s.id, &input).as_ref()));
        }
        Ok(())
    }

    /// Checks slot `rec`'s authenticator with the key its KEK sealed: the
    /// keystore (its `kwk`, `keyring`, slots, everything but `mac`) was
    /// written by a holder of the keyring, not assembled by a writer of
    /// the directory, who can encrypt to a slot's public key but cannot
    /// know this key.
    pub(crate) fn check_slot_auth(&self, rec: &SlotRecord, key: &SecretKey) -> Result<()> {
        let tag = rec
            .auth
            .as_deref()
            .and_then(|t| B64.decode(t).ok())
            .ok_or_else(|| {
                Error::corrupt(&self.path, format!("slot {} has no authenticator", rec.id))
            })?;
        let input = body::auth_input(&self.body);
        let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.expose());
        ring::hmac::verify(&k, &slot_auth_message(rec.id, &input), &tag).map_err(|_| {
            Error::corrupt(
                &self.path,
                format!("slot {}'s authenticator does not match: the keystore was assembled or edited by someone without the keys", rec.id),
            )
        })
    }

    /// Sets the audit member: the verifying key of the keyring's signing
    /// key, the log's last record, and (when the signing key changed) the
    /// previous key with the record that handed the log over.
    pub(crate) fn anchor_audit(&mut self, u: &Unsealed) -> Result<()> {
        let key = audit::verifying_key(&u.keyring).ok_or(Error::Core(
            vault_core::Error::Crypto("Ed25519 key from seed"),
        ))?;
        let key = B64.encode(key);
        let tail = match self.path.parent() {
            Some(dir) => audit::tail(dir)?,
            None => None,
        };
        let mut previous = Vec::new();
        if let Some(old) = self.body.audit.take() {
            previous = old.previous;
            if old.key != key {
                let last_seq = u.audit_handover.or(tail.as_ref().map(|t| t.0)).unwrap_or(0);
                previous.push(PreviousAuditKey {
                    key: old.key,
                    last_seq,
                });
            }
        }
        self.body.audit = Some(AuditAnchor {
            key,
            seq: tail.as_ref().map(|t| t.0),
            hash: tail.map(|t| t.1),
            previous,
        });
        Ok(())
    }
}

const SLOT_AUTH_DOMAIN: &[u8] = b"pivault keystore slot auth v1";

fn slot_auth_message(id: u32, input: &[u8]) -> Vec<u8> {
    let mut m = Vec::with_capacity(SLOT_AUTH_DOMAIN.len() + 4 + input.len());
    m.extend_from_slice(SLOT_AUTH_DOMAIN);
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(input);
    m
}

fn slot_auth_tag(key: &SecretKey, id: u32, input: &[u8]) -> ring::hmac::Tag {
    let k = ring::hmac::Key::new(ring::hmac::HMAC_SHA256, key.expose());
    ring::hmac::sign(&k, &slot_auth_message(id, input))
}

/// Draws the keys a former holder of the keyring must stop knowing: a new
/// keystore MAC key and a new audit signing key, recording the hand-over
/// in the log, signed by the old key, before the keystore that names the
/// new key is written (a crash in between leaves a hand-over the keystore
/// never took, which `audit verify` reports and tolerates; the reverse
/// order would leave records signed by a key the log never announced).
pub(crate) fn hand_over_audit_key(vault: &Path, u: &mut Unsealed, old: &Keyring) -> Result<()> {
    u.keyring.set_mac_key(SecretKey::random()?);
    u.keyring.set_audit_seed(SecretKey::random()?);
    let (Some(from), Some(to)) = (audit::verifying_key(old), audit::verifying_key(&u.keyring))
    else {
        return Ok(());
    };
    let mut event = Event::new(audit::KEY_HANDOVER)
        .slot(u.slot)
        .detail("from", B64.encode(from))
        .detail("to", B64.encode(to));
    if let Some(r) = &u.reason {
        event = event.reason(r.clone());
    }
    let rec = audit::append(vault, Some(old), event)?;
    u.audit_handover = Some(rec.seq);
    Ok(())
}
