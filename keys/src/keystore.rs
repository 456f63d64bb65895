//! The keystore file: loading with its integrity checks, and slot changes
//! written atomically. Unsealing is in `unseal.rs`, rotation and
//! retirement in `lifecycle.rs`, the file framing in `body.rs`.
//!
//! Layout (normative in docs/FORMAT.md §4): a first line
//! `pivault-keystore 3`, a JSON body, and a last line `sha256 <hex>` over
//! every byte before it. Format 3 seals the keyring once, under a random
//! keyring wrapping key (KWK) encrypted to each slot's X25519 public key;
//! each slot's KEK seals its identity and its authenticator key
//! (`slot_key.rs`, `rewrap.rs`). Formats 1 and 2 are still read and are
//! upgraded on the next write.

use crate::atomic::{write_atomic, write_new};
use crate::audit::Event;
use crate::body::{self, Body, SlotForm, SlotRecord};
use crate::role::Role;
use crate::slot::{KdfParams, Passphrase, SlotKind};
use crate::slot_key::SlotIdentity;
use crate::unseal::Unsealed;
use crate::writelock::{self, WriteLock};
use crate::{Error, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ring::hmac;
use serde::Serialize;
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};
use vault_core::{Aead, Keyring, SecretKey, Suite};

/// The keystore's file name inside a vault directory.
pub const KEYSTORE_FILE: &str = "pivault.keystore";
const MAC_LABEL: &str = "pivault v1 keystore mac";
pub(crate) const FILE_MODE: u32 = 0o600;

/// Public facts about a slot (no secret needed to read them).
#[derive(Debug, Clone, Serialize)]
pub struct SlotInfo {
    /// Slot number.
    pub id: u32,
    /// How it is opened.
    pub kind: SlotKind,
    /// Creation time, seconds since the Unix epoch.
    pub created: u64,
    /// Argon2id parameters (passphrase slots; a recovery key needs none).
    pub kdf: Option<KdfParams>,
    /// True for a slot carried over from keystore format 1 or 2 (it has
    /// no key pair, so a new wrapping key cannot reach it; its holder's
    /// next unseal upgrades it).
    pub legacy: bool,
    /// Share slots: (threshold, count).
    pub shares: Option<(u8, u8)>,
    /// Escrow slots: the age recipient.
    pub escrow_recipient: Option<String>,
    /// Passphrase slots: the passphrase was accepted below the strength
    /// rule (`--allow-weak-passphrase`; see [`crate::Strength`]).
    pub weak_passphrase: bool,
    /// What the slot's holder may do.
    pub role: Role,
}

/// A loaded keystore.
#[derive(Debug)]
pub struct Keystore {
    pub(crate) path: PathBuf,
    pub(crate) version: u32,
    pub(crate) body: Body,
    pub(crate) suite: Suite,
    pub(crate) vault_id: [u8; 16],
    /// SHA-256 of the bytes this keystore was read from (or last wrote):
    /// a write refuses to replace any other (see `writelock`).
    pub(crate) read_digest: [u8; 32],
}

pub(crate) fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

impl Keystore {
    /// The keystore path for a vault directory.
    pub fn path_in(vault: &Path) -> PathBuf {
        vault.join(KEYSTORE_FILE)
    }

    /// True when `vault` holds a keystore file.
    pub fn exists(vault: &Path) -> bool {
        Self::path_in(vault).exists()
    }

    /// Creates the keystore of a new vault with one passphrase slot (slot
    /// 0) around a fresh keyring. Never overwrites an existing keystore.
    pub fn create(
        vault: &Path,
        suite: Suite,
        pass: &Passphrase,
        kdf: KdfParams,
    ) -> Result<(Keystore, Keyring)> {
        let path = Self::path_in(vault);
        if path.exists() {
            return Err(Error::AlreadyInitialised(vault.to_path_buf()));
        }
        if pass.is_empty() {
            return Err(Error::EmptyPassphrase);
        }
        kdf.validate()?;
        let keyring = Keyring::generate()?;
        let vault_id = vault_core::random::array::<16>()?;
        let mut ks = Keystore {
            path,
            suite,
            vault_id,
            read_digest: [0; 32],
            version: body::VERSION,
            body: Body {
                vault_id: B64.encode(vault_id),
                suite: suite.name().to_string(),
                created: now(),
                data_key_versions: keyring.versions(),
                next_slot: 0,
                keyring: None,
                slots: Vec::new(),
                audit: None,
                stale_auth: Vec::new(),
                mac: None,
            },
        };
        let mut u = Unsealed::fresh(keyring)?;
        ks.push_passphrase_slot(&mut u.keyring, pass, kdf)?;
        let bytes = ks.serialize(&mut u)?;
        ks.read_digest = writelock::digest(&bytes);
        write_new(&ks.path, &bytes, FILE_MODE).map_err(|e| match e {
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists => {
                Error::AlreadyInitialised(vault.to_path_buf())
            }
            e => e,
        })?;
        Ok((ks, u.keyring.clone()))
    }

    /// Loads and checks the keystore of `vault` (format version, checksum,
    /// structure). Needs no secret and never writes.
    pub fn load(vault: &Path) -> Result<Keystore> {
        let path = Self::path_in(vault);
        let bytes = match crate::read_regular(&path) {
            Ok(b) => b,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(if vault.is_dir() {
                    Error::NotAVault(vault.to_path_buf())
                } else {
                    Error::io(
                        vault,
                        std::io::Error::new(e.kind(), "vault directory does not exist"),
                    )
                });
            }
            Err(e) => return Err(Error::io(&path, e)),
        };
        Self::parse(path, &bytes)
    }

    /// Parses keystore bytes read from `path` (the path is only for messages).
    pub fn parse(path: PathBuf, bytes: &[u8]) -> Result<Keystore> {
        let (version, body) = body::parse(&path, bytes)?;
        let suite = Suite::from_name(&body.suite)
            .filter(|s| s.name() == body.suite)
            .ok_or_else(|| {
                Error::corrupt(&path, format!("unknown cipher suite {:?}", body.suite))
            })?;
        let vault_id: [u8; 16] = B64
            .decode(&body.vault_id)
            .ok()
            .and_then(|v| v.try_into().ok())
            .ok_or_else(|| Error::corrupt(&path, "vault_id is not 16 bytes of base64"))?;
        Ok(Keystore {
            path,
            version,
            body,
            suite,
            vault_id,
            read_digest: writelock::digest(bytes),
        })
    }

    /// The keystore file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The format version the file was read in (writes always use the
    /// newest).
    pub fn format_version(&self) -> u32 {
        self.version
    }

    /// The vault's cipher suite.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// The vault's random ID.
    pub fn vault_id(&self) -> [u8; 16] {
        self.vault_id
    }

    /// Creation time (seconds since the Unix epoch).
    pub fn created(&self) -> u64 {
        self.body.created
    }

    /// Data-key versions the keyring holds (as recorded in the keystore).
    pub fn data_key_versions(&self) -> &[u32] {
        &self.body.data_key_versions
    }

    /// The audit log's verifying key, from the public part (no secret
    /// needed; the MAC vouches for it only after an unseal).
    pub fn audit_key(&self) -> Result<Option<[u8; 32]>> {
        match &self.body.audit {
            None => Ok(None),
            Some(a) => B64
                .decode(&a.key)
                .ok()
                .and_then(|k| k.try_into().ok())
                .map(Some)
                .ok_or_else(|| {
                    Error::corrupt(&self.path, "its audit key is not 32 bytes of base64")
                }),
        }
    }

    /// The audit signing keys a rotation replaced, oldest first, each
    /// with the sequence number of the last record it signed (the
    /// hand-over record). The current key ([`Keystore::audit_key`]) signs
    /// every record after the last of them.
    pub fn previous_audit_keys(&self) -> Result<Vec<([u8; 32], u64)>> {
        let Some(a) = &self.body.audit else {
            return Ok(Vec::new());
        };
        a.previous
            .iter()
            .map(|p| {
                B64.decode(&p.key)
                    .ok()
                    .and_then(|k| k.try_into().ok())
                    .map(|k| (k, p.last_seq))
                    .ok_or_else(|| {
                        Error::corrupt(&self.path, "a previous audit key is not 32 bytes of base64")
                    })
            })
            .collect()
    }

    /// `(seq, hash)` of the audit record that was last in the log when the
    /// keystore was last written.
    pub fn audit_anchor(&self) -> Option<(u64, String)> {
        let a = self.body.audit.as_ref()?;
        Some((a.seq?, a.hash.clone()?))
    }

    /// True when the keyring lacks an audit signing key (a vault from
    /// before the audit log): the next keystore write adds one.
    pub fn needs_audit_key(&self) -> bool {
        self.body.audit.is_none()
    }

    /// Writes the keystore again without other changes: adds the audit
    /// signing key to a keyring without one, refreshes the audit anchor,
    /// and upgrades a format-1 keystore. Saves atomically.
    pub fn refresh(&mut self, u: &mut Unsealed) -> Result<()> {
        self.save(u)
    }

    /// The slots.
    pub fn slots(&self) -> Vec<SlotInfo> {
        self.body
            .slots
            .iter()
            .map(|s| SlotInfo {
                id: s.id,
                kind: s.kind,
                created: s.created,
                kdf: s.kdf,
                legacy: self.is_legacy(s),
                shares: s.shares.as_ref().map(|i| (i.threshold, i.count)),
                escrow_recipient: s.escrow.as_ref().map(|e| e.recipient.clone()),
                weak_passphrase: s.weak,
                role: s.role(),
            })
            .collect()
    }

    /// True when `rec` is carried over from an older format (it has no key
    /// pair, so a new KWK cannot reach it without its holder's secret).
    pub(crate) fn is_legacy(&self, rec: &SlotRecord) -> bool {
        rec.form(self.version) != SlotForm::KeyPair
    }

    pub(crate) fn slot_aad(&self, id: u32, kind: SlotKind, form: SlotForm) -> Vec<u8> {
        let mut aad = match form {
            SlotForm::Keyring => b"pivault keystore slot v1".to_vec(),
            SlotForm::Kwk => b"pivault keystore slot v2".to_vec(),
            SlotForm::KeyPair => b"pivault keystore slot v3".to_vec(),
        };
        aad.extend_from_slice(&self.vault_id);
        aad.extend_from_slice(&id.to_be_bytes());
        aad.extend_from_slice(kind.name().as_bytes());
        aad
    }

    pub(crate) fn keyring_aad(&self) -> Vec<u8> {
        let mut aad = b"pivault keystore keyring v2".to_vec();
        aad.extend_from_slice(&self.vault_id);
        aad
    }

    /// Gives slot `id` a new X25519 key pair, its identity sealed under
    /// the slot's KEK (format 3): returns `wrapped`, the public key, and
    /// the identity. The slot's `kwk` is written with the keystore.
    pub(crate) fn seal_new_identity(
        &self,
        keyring: &mut Keyring,
        kek: &SecretKey,
        id: u32,
        kind: SlotKind,
    ) -> Result<(String, String, SlotIdentity)> {
        let identity = SlotIdentity::generate();
        // The slot's authenticator key: sealed with the identity, and kept
        // in the keyring so that any holder can re-tag the slot on a write.
        let auth = SecretKey::random()?;
        let aead = Aead::new(self.suite, kek)?;
        let wrapped = B64.encode(aead.seal(
            &self.slot_aad(id, kind, SlotForm::KeyPair),
            identity.sealed_form(&auth).expose(),
        )?);
        keyring.set_slot_auth(id, auth);
        Ok((wrapped, identity.public(), identity))
    }

    pub(crate) fn new_passphrase_record(
        &self,
        keyring: &mut Keyring,
        id: u32,
        pass: &Passphrase,
        kdf: KdfParams,
    ) -> Result<(SlotRecord, SlotIdentity)> {
        if pass.is_empty() {
            return Err(Error::EmptyPassphrase);
        }
        kdf.validate()?;
        let salt = vault_core::random::array::<16>()?;
        let kek = kdf.derive(pass, &salt)?;
        let (wrapped, public, identity) =
            self.seal_new_identity(keyring, &kek, id, SlotKind::Passphrase)?;
        let rec = SlotRecord {
            id,
            kind: SlotKind::Passphrase,
            created: now(),
            kdf: Some(kdf),
            salt: B64.encode(salt),
            policy: None,
            role: None,
            shares: None,
            escrow: None,
            wraps: None,
            weak: self.is_weak_passphrase(pass),
            public: Some(public),
            kwk: None,
            auth: None,
            wrapped,
        };
        Ok((rec, identity))
    }

    fn push_passphrase_slot(
        &mut self,
        keyring: &mut Keyring,
        pass: &Passphrase,
        kdf: KdfParams,
    ) -> Result<u32> {
        let id = self.body.next_slot;
        let (rec, _) = self.new_passphrase_record(keyring, id, pass, kdf)?;
        self.body.slots.push(rec);
        self.body.next_slot = id + 1;
        Ok(id)
    }

    /// The keystore MAC key: the keyring's own (tag 0x04), or for a
    /// keyring from before it, derived from the master secret.
    pub(crate) fn mac_key(keyring: &Keyring) -> Result<hmac::Key> {
        if let Some(k) = keyring.mac_key() {
            return Ok(hmac::Key::new(hmac::HMAC_SHA256, k.expose()));
        }
        let mut k = zeroize::Zeroizing::new([0u8; 32]);
        vault_core::derive(keyring.master().expose(), MAC_LABEL, b"", k.as_mut())?;
        Ok(hmac::Key::new(hmac::HMAC_SHA256, k.as_ref()))
    }

    /// The file bytes for the current state, in the newest format: the
    /// keyring sealed under the KWK, then the MAC.
    fn serialize(&mut self, u: &mut Unsealed) -> Result<Vec<u8>> {
        self.begin_write(u)?;
        // The audit log's signing key (made for keyrings from before the
        // log) and its anchor: the log's last record at this write.
        if u.keyring.audit_seed().is_none() {
            u.keyring.set_audit_seed(SecretKey::random()?);
        }
        // A keyring from before its own MAC key gets one: from then on a
        // copy of the master secret no longer forges the keystore. Not
        // while a format-1 slot remains: it seals its own copy of the
        // keyring, which would not check the MAC.
        let keyring_copies = self
            .body
            .slots
            .iter()
            .any(|s| s.form(self.version) == SlotForm::Keyring);
        if u.keyring.mac_key().is_none() && !keyring_copies {
            u.keyring.set_mac_key(SecretKey::random()?);
        }
        self.anchor_audit(u)?;
        self.wrap_kwk_for_all(u)?;
        let ids: Vec<u32> = self.body.slots.iter().map(|s| s.id).collect();
        u.keyring.retain_slot_auth(&ids);
        let aead = Aead::new(self.suite, u.kwk()?)?;
        self.body.keyring =
            Some(B64.encode(aead.seal(&self.keyring_aad(), u.keyring.to_bytes().expose())?));
        self.body.data_key_versions = u.keyring.versions();
        // The slots' authenticators cover everything but themselves and
        // the MAC, so they come last but one.
        self.authenticate_slots(&u.keyring)?;
        self.body.mac = None;
        let tag = hmac::sign(&Self::mac_key(&u.keyring)?, &body::mac_input(&self.body));
        self.body.mac = Some(B64.encode(tag.as_ref()));
        Ok(body::frame(&self.body))
    }

    /// Writes the keystore back atomically after a change, under the
    /// keystore's write lock, and only over the keystore it was read from
    /// (else [`Error::KeystoreChanged`], nothing written). On failure the
    /// in-memory state may be ahead of the file; reload before retrying.
    pub(crate) fn save(&mut self, u: &mut Unsealed) -> Result<()> {
        self.save_with(u, |_| Ok(()))
    }

    /// As [`Keystore::save`], running `first` under the write lock once
    /// the keystore on disk is known to be the one read, before the new
    /// bytes are made (a rotation's audit hand-over, so that two rotations
    /// at once never both hand the log over).
    pub(crate) fn save_with(
        &mut self,
        u: &mut Unsealed,
        first: impl FnOnce(&mut Unsealed) -> Result<()>,
    ) -> Result<()> {
        let lock = WriteLock::acquire(&self.path)?;
        writelock::check_unchanged(&lock, &self.path, &self.read_digest)?;
        first(u)?;
        let bytes = self.serialize(u)?;
        write_atomic(&self.path, &bytes, FILE_MODE)?;
        self.read_digest = writelock::digest(&bytes);
        Ok(())
    }

    pub(crate) fn check_mac(&self, keyring: &Keyring) -> Result<()> {
        let mac = self
            .body
            .mac
            .as_deref()
            .and_then(|m| B64.decode(m).ok())
            .ok_or_else(|| Error::corrupt(&self.path, "its integrity tag is missing"))?;
        hmac::verify(&Self::mac_key(keyring)?, &body::mac_input(&self.body), &mac).map_err(|_| {
            Error::corrupt(&self.path, "its integrity tag does not match: slots or settings were altered by someone without the keys")
        })?;
        if keyring.versions() != self.body.data_key_versions {
            return Err(Error::corrupt(
                &self.path,
                "its data-key list does not match the keyring",
            ));
        }
        Ok(())
    }

    /// Adds a passphrase slot with `role`; returns its number. Saves
    /// atomically. Admin slots only.
    pub fn add_passphrase(
        &mut self,
        u: &mut Unsealed,
        pass: &Passphrase,
        kdf: KdfParams,
        role: Role,
    ) -> Result<u32> {
        self.require_admin(u, "add a slot")?;
        self.begin_write(u)?;
        let id = self.push_passphrase_slot(&mut u.keyring, pass, kdf)?;
        if let Some(rec) = self.body.slots.last_mut() {
            rec.role = Some(role).filter(|r| *r != Role::Admin);
        }
        self.save(u)?;
        self.audited(
            u,
            Event::new("slot-add")
                .slot(id)
                .detail("kind", "passphrase")
                .detail("by_slot", u.slot),
        );
        Ok(id)
    }

    /// Replaces the passphrase of slot `id` (new salt, new parameters; a
    /// format-1 slot is upgraded). Saves atomically.
    pub fn change_passphrase(
        &mut self,
        u: &mut Unsealed,
        id: u32,
        pass: &Passphrase,
        kdf: KdfParams,
    ) -> Result<()> {
        let pos = self.slot_index(id)?;
        if self.body.slots[pos].kind != SlotKind::Passphrase {
            return Err(Error::NotPassphraseSlot(id));
        }
        if id != u.slot {
            self.require_admin(u, "change another slot's passphrase")?;
        }
        self.check_can_redraw(u, Some(id))?;
        self.begin_write(u)?;
        let (mut rec, identity) = self.new_passphrase_record(&mut u.keyring, id, pass, kdf)?;
        if id == u.slot {
            if let Some(auth) = u.keyring.slot_auth(id).cloned() {
                u.identity = Some((identity, auth));
            }
            // The KEK held since the unseal is the old passphrase's.
            u.slot_kek = None;
        }
        rec.policy = self.body.slots[pos].policy.clone();
        rec.role = self.body.slots[pos].role;
        self.body.slots[pos] = rec;
        // The old passphrase may have leaked with a copy of the keystore:
        // the KWK that copy opens must stop opening the keyring.
        self.redraw_kwk(u)?;
        self.save(u)?;
        self.audited(
            u,
            Event::new("slot-change").slot(id).detail("by_slot", u.slot),
        );
        Ok(())
    }

    /// Removes slot `id`, refusing to remove the last one. Saves atomically.
    pub fn remove_slot(&mut self, u: &mut Unsealed, id: u32) -> Result<()> {
        let pos = self.slot_index(id)?;
        if self.body.slots.len() == 1 {
            return Err(Error::LastSlot(id));
        }
        self.require_admin(u, "remove a slot")?;
        self.keep_an_admin(id, None)?;
        // The removed holder may keep a copy of the keystore, and with it
        // the KWK: a new one, wrapped to every remaining slot, cuts it off.
        // Slots written by an older pivault cannot receive one; the
        // removal still happens (refusing it would leave the leaver's
        // slot working), and says what is left to do.
        let unreachable = match self.check_can_redraw(u, Some(id)) {
            Ok(()) => Vec::new(),
            Err(Error::OldFormatSlot { slots, .. }) => slots,
            Err(e) => return Err(e),
        };
        self.begin_write(u)?;
        self.body.slots.remove(pos);
        if unreachable.is_empty() {
            self.redraw_kwk(u)?;
            self.mark_auth_stale(u)?;
        } else {
            tracing::warn!(
                "slot {id} is removed, but the keyring wrapping key stays the same: slot(s) {unreachable:?} were written by an older pivault and cannot receive a new one. A copy of the keystore from before this removal still opens the keyring until each of those holders unseals once (or they are removed); then run `pivault keys rotate`"
            );
        }
        self.save(u)?;
        self.audited(
            u,
            Event::new("slot-remove")
                .slot(id)
                .detail("by_slot", u.slot)
                .detail("kwk_redrawn", unreachable.is_empty()),
        );
        Ok(())
    }

    pub(crate) fn slot_index(&self, id: u32) -> Result<usize> {
        self.body
            .slots
            .iter()
            .position(|s| s.id == id)
            .ok_or(Error::NoSuchSlot(id))
    }

    /// Copies the keystore file, byte for byte, to a new file `dest`
    /// (never overwrites). The copy is as safe to store as the original:
    /// without a slot's secret it reveals nothing.
    pub fn backup(&self, dest: &Path) -> Result<()> {
        let bytes = crate::read_regular(&self.path).map_err(|e| Error::io(&self.path, e))?;
        Self::parse(self.path.clone(), &bytes)?;
        write_new(dest, &bytes, FILE_MODE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pass(s: &str) -> Passphrase {
        Passphrase::new(s.as_bytes().to_vec())
    }

    #[test]
    fn create_unseal_change_remove() {
        let d = tempfile::tempdir().unwrap();
        let kdf = KdfParams::insecure_test();
        let (_, ring) = Keystore::create(d.path(), Suite::Aes256Gcm, &pass("one"), kdf).unwrap();
        let mut ks = Keystore::load(d.path()).unwrap();
        let mut u = ks.unseal_passphrase(&pass("one"), None).unwrap();
        assert_eq!(u.keyring.master(), ring.master());
        assert!(u.weak_kdf);
        assert!(matches!(
            ks.unseal_passphrase(&pass("two"), None),
            Err(Error::WrongPassphrase)
        ));
        let id = ks
            .add_passphrase(&mut u, &pass("two"), kdf, crate::Role::Admin)
            .unwrap();
        assert_eq!(id, 1);
        let ks2 = Keystore::load(d.path()).unwrap();
        assert_eq!(ks2.unseal_passphrase(&pass("two"), None).unwrap().slot, 1);
        ks.change_passphrase(&mut u, 0, &pass("three"), kdf)
            .unwrap();
        ks.remove_slot(&mut u, 1).unwrap();
        assert!(matches!(ks.remove_slot(&mut u, 0), Err(Error::LastSlot(0))));
        let ks3 = Keystore::load(d.path()).unwrap();
        assert!(ks3.unseal_passphrase(&pass("two"), None).is_err());
        assert_eq!(ks3.unseal_passphrase(&pass("three"), None).unwrap().slot, 0);
    }

    #[test]
    fn weak_parameters_need_the_test_flag() {
        let weak = KdfParams {
            test_only: false,
            ..KdfParams::insecure_test()
        };
        assert!(weak.validate().is_err());
        assert!(KdfParams::default().validate().is_ok());
    }

    #[test]
    fn edited_public_field_fails_the_mac() {
        let d = tempfile::tempdir().unwrap();
        Keystore::create(
            d.path(),
            Suite::Aes256Gcm,
            &pass("p"),
            KdfParams::insecure_test(),
        )
        .unwrap();
        let path = Keystore::path_in(d.path());
        let text = std::fs::read_to_string(&path).unwrap();
        let edited = text.replacen("\"next_slot\": 1", "\"next_slot\": 7", 1);
        assert_ne!(edited, text);
        // Recompute the checksum as an attacker would.
        let body = &edited[..edited.len() - 72];
        let sum =
            hex::encode(ring::digest::digest(&ring::digest::SHA256, body.as_bytes()).as_ref());
        let forged = format!("{body}sha256 {sum}\n");
        let ks = Keystore::parse(path, forged.as_bytes()).unwrap();
        assert!(matches!(
            ks.unseal_passphrase(&pass("p"), None),
            Err(Error::Corrupt { .. })
        ));
    }
}
