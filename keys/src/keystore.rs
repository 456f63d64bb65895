//! The keystore file: format, loading with its integrity checks, unsealing,
//! and slot changes written atomically.
//!
//! Layout (normative in docs/FORMAT.md): a first line `pivault-keystore 1`,
//! a JSON body, and a last line `sha256 <hex>` over every byte before it.

use crate::atomic::{write_atomic, write_new};
use crate::slot::{KdfParams, Passphrase, SlotKind};
use crate::{Error, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ring::hmac;
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};
use subtle::ConstantTimeEq;
use vault_core::{Aead, Keyring, SecretKey, Suite};

/// The keystore's file name inside a vault directory.
pub const KEYSTORE_FILE: &str = "pivault.keystore";
const MAGIC_LINE: &str = "pivault-keystore";
const VERSION: u32 = 1;
const MAC_LABEL: &str = "pivault v1 keystore mac";
const FILE_MODE: u32 = 0o600;

#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
struct Body {
    vault_id: String,
    suite: String,
    created: u64,
    data_key_versions: Vec<u32>,
    next_slot: u32,
    slots: Vec<SlotRecord>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    mac: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug)]
#[serde(deny_unknown_fields)]
struct SlotRecord {
    id: u32,
    kind: SlotKind,
    created: u64,
    kdf: KdfParams,
    salt: String,
    wrapped: String,
}

/// Public facts about a slot (no secret needed to read them).
#[derive(Debug, Clone, Serialize)]
pub struct SlotInfo {
    /// Slot number.
    pub id: u32,
    /// How it is opened.
    pub kind: SlotKind,
    /// Creation time, seconds since the Unix epoch.
    pub created: u64,
    /// Argon2id parameters.
    pub kdf: KdfParams,
}

/// The result of a successful unseal.
#[derive(Debug)]
pub struct Unsealed {
    /// The vault's keyring.
    pub keyring: Keyring,
    /// The slot that opened.
    pub slot: u32,
    /// True when that slot uses test-only KDF parameters.
    pub weak_kdf: bool,
}

/// A loaded keystore.
#[derive(Debug)]
pub struct Keystore {
    path: PathBuf,
    body: Body,
    suite: Suite,
    vault_id: [u8; 16],
}

fn now() -> u64 {
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
            body: Body {
                vault_id: B64.encode(vault_id),
                suite: suite.name().to_string(),
                created: now(),
                data_key_versions: keyring.versions(),
                next_slot: 0,
                slots: Vec::new(),
                mac: None,
            },
        };
        ks.push_passphrase_slot(&keyring, pass, kdf)?;
        let bytes = ks.serialize(&keyring)?;
        write_new(&ks.path, &bytes, FILE_MODE).map_err(|e| match e {
            Error::Io { source, .. } if source.kind() == std::io::ErrorKind::AlreadyExists => {
                Error::AlreadyInitialised(vault.to_path_buf())
            }
            e => e,
        })?;
        Ok((ks, keyring))
    }

    /// Loads and checks the keystore of `vault` (format version, checksum,
    /// structure). Needs no secret and never writes.
    pub fn load(vault: &Path) -> Result<Keystore> {
        let path = Self::path_in(vault);
        let bytes = match std::fs::read(&path) {
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
        let nl = bytes.iter().position(|&b| b == b'\n');
        let first = nl.map(|i| &bytes[..i]).unwrap_or(bytes);
        let first = std::str::from_utf8(first).unwrap_or("");
        let version = first
            .strip_prefix(MAGIC_LINE)
            .and_then(|v| v.strip_prefix(' '))
            .ok_or_else(|| Error::corrupt(&path, "it does not start with `pivault-keystore` (not a keystore, or overwritten with other data)"))?;
        // Strictly canonical decimal: no sign, no leading zeros.
        let canonical = !version.is_empty()
            && version.bytes().all(|b| b.is_ascii_digit())
            && (version == "0" || !version.starts_with('0'));
        let version: u32 = version
            .parse()
            .ok()
            .filter(|_| canonical)
            .ok_or_else(|| Error::corrupt(&path, "its format version is not a number"))?;
        if version > VERSION {
            return Err(Error::FutureVersion {
                path,
                found: version,
                supported: VERSION,
            });
        }
        if version == 0 {
            return Err(Error::corrupt(&path, "format version 0 does not exist"));
        }
        // The checksum line is the last line: "sha256 <64 hex>\n".
        const SUM_LINE: usize = 7 + 64 + 1;
        if bytes.len() < SUM_LINE || !bytes.ends_with(b"\n") {
            return Err(Error::corrupt(
                &path,
                "it is truncated (the checksum line is missing)",
            ));
        }
        let (content, sum_line) = bytes.split_at(bytes.len() - SUM_LINE);
        let want = sum_line
            .strip_prefix(b"sha256 ")
            .filter(|h| {
                h[..64]
                    .iter()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(b))
            })
            .and_then(|h| hex::decode(&h[..64]).ok())
            .ok_or_else(|| {
                Error::corrupt(&path, "it is truncated (the checksum line is missing)")
            })?;
        let got = ring::digest::digest(&ring::digest::SHA256, content);
        if !bool::from(got.as_ref().ct_eq(&want)) {
            return Err(Error::corrupt(
                &path,
                "its SHA-256 checksum does not match (the file was damaged or edited)",
            ));
        }
        let json = &content[nl.map(|i| i + 1).unwrap_or(0)..];
        let body: Body = serde_json::from_slice(json)
            .map_err(|e| Error::corrupt(&path, format!("its contents are malformed ({e})")))?;
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
        if body.slots.is_empty() {
            return Err(Error::corrupt(&path, "it has no slots"));
        }
        Ok(Keystore {
            path,
            body,
            suite,
            vault_id,
        })
    }

    /// The keystore file's path.
    pub fn path(&self) -> &Path {
        &self.path
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
            })
            .collect()
    }

    fn wrap_aad(&self, id: u32, kind: SlotKind) -> Vec<u8> {
        let mut aad = b"pivault keystore slot v1".to_vec();
        aad.extend_from_slice(&self.vault_id);
        aad.extend_from_slice(&id.to_be_bytes());
        aad.extend_from_slice(kind.name().as_bytes());
        aad
    }

    fn wrap(&self, kek: &SecretKey, id: u32, kind: SlotKind, keyring: &Keyring) -> Result<String> {
        let aead = Aead::new(self.suite, kek)?;
        Ok(B64.encode(aead.seal(&self.wrap_aad(id, kind), keyring.to_bytes().expose())?))
    }

    fn new_passphrase_record(
        &self,
        id: u32,
        keyring: &Keyring,
        pass: &Passphrase,
        kdf: KdfParams,
    ) -> Result<SlotRecord> {
        if pass.is_empty() {
            return Err(Error::EmptyPassphrase);
        }
        kdf.validate()?;
        let salt = vault_core::random::array::<16>()?;
        let kek = kdf.derive(pass, &salt)?;
        Ok(SlotRecord {
            id,
            kind: SlotKind::Passphrase,
            created: now(),
            kdf,
            salt: B64.encode(salt),
            wrapped: self.wrap(&kek, id, SlotKind::Passphrase, keyring)?,
        })
    }

    fn push_passphrase_slot(
        &mut self,
        keyring: &Keyring,
        pass: &Passphrase,
        kdf: KdfParams,
    ) -> Result<u32> {
        let id = self.body.next_slot;
        let rec = self.new_passphrase_record(id, keyring, pass, kdf)?;
        self.body.slots.push(rec);
        self.body.next_slot = id + 1;
        Ok(id)
    }

    fn mac_key(keyring: &Keyring) -> Result<hmac::Key> {
        let mut k = zeroize::Zeroizing::new([0u8; 32]);
        vault_core::derive(keyring.master().expose(), MAC_LABEL, b"", k.as_mut())?;
        Ok(hmac::Key::new(hmac::HMAC_SHA256, k.as_ref()))
    }

    fn mac_input(body: &Body) -> Vec<u8> {
        let mut b = body.clone();
        b.mac = None;
        serde_json::to_vec(&b).expect("keystore body serializes")
    }

    fn serialize(&mut self, keyring: &Keyring) -> Result<Vec<u8>> {
        self.body.data_key_versions = keyring.versions();
        let tag = hmac::sign(&Self::mac_key(keyring)?, &Self::mac_input(&self.body));
        self.body.mac = Some(B64.encode(tag.as_ref()));
        let mut out = format!("{MAGIC_LINE} {VERSION}\n").into_bytes();
        out.extend_from_slice(
            &serde_json::to_vec_pretty(&self.body).expect("keystore body serializes"),
        );
        out.push(b'\n');
        let sum = ring::digest::digest(&ring::digest::SHA256, &out);
        out.extend_from_slice(format!("sha256 {}\n", hex::encode(sum.as_ref())).as_bytes());
        Ok(out)
    }

    /// Writes the keystore back atomically after a change.
    fn save(&mut self, keyring: &Keyring) -> Result<()> {
        let bytes = self.serialize(keyring)?;
        write_atomic(&self.path, &bytes, FILE_MODE)
    }

    /// Opens the keyring with a passphrase: the given slot, or each
    /// passphrase slot in turn. Never writes the keystore.
    pub fn unseal_passphrase(&self, pass: &Passphrase, slot: Option<u32>) -> Result<Unsealed> {
        let candidates: Vec<&SlotRecord> = match slot {
            Some(id) => {
                let rec = self
                    .body
                    .slots
                    .iter()
                    .find(|s| s.id == id)
                    .ok_or(Error::NoSuchSlot(id))?;
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
            let kek = rec.kdf.derive(pass, &salt)?;
            if let Some(keyring) = self.open_slot(rec, &kek)? {
                self.check_mac(&keyring)?;
                return Ok(Unsealed {
                    keyring,
                    slot: rec.id,
                    weak_kdf: rec.kdf.test_only,
                });
            }
        }
        Err(Error::WrongPassphrase)
    }

    fn open_slot(&self, rec: &SlotRecord, kek: &SecretKey) -> Result<Option<Keyring>> {
        let wrapped = B64.decode(&rec.wrapped).map_err(|_| {
            Error::corrupt(&self.path, format!("slot {} is not valid base64", rec.id))
        })?;
        let aead = Aead::new(self.suite, kek)?;
        let Some(plain) = aead.open(&self.wrap_aad(rec.id, rec.kind), &wrapped) else {
            return Ok(None);
        };
        let plain = vault_core::SecretBytes::new(plain);
        let keyring = Keyring::from_bytes(plain.expose()).map_err(|e| {
            Error::corrupt(
                &self.path,
                format!("slot {} holds a malformed keyring ({e})", rec.id),
            )
        })?;
        Ok(Some(keyring))
    }

    fn check_mac(&self, keyring: &Keyring) -> Result<()> {
        let mac = self
            .body
            .mac
            .as_deref()
            .and_then(|m| B64.decode(m).ok())
            .ok_or_else(|| Error::corrupt(&self.path, "its integrity tag is missing"))?;
        hmac::verify(&Self::mac_key(keyring)?, &Self::mac_input(&self.body), &mac).map_err(|_| {
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

    /// Adds a passphrase slot; returns its number. Saves atomically.
    pub fn add_passphrase(
        &mut self,
        keyring: &Keyring,
        pass: &Passphrase,
        kdf: KdfParams,
    ) -> Result<u32> {
        let id = self.push_passphrase_slot(keyring, pass, kdf)?;
        self.save(keyring)?;
        Ok(id)
    }

    /// Replaces the passphrase of slot `id` (new salt, new parameters).
    /// Saves atomically.
    pub fn change_passphrase(
        &mut self,
        keyring: &Keyring,
        id: u32,
        pass: &Passphrase,
        kdf: KdfParams,
    ) -> Result<()> {
        let pos = self.slot_index(id)?;
        if self.body.slots[pos].kind != SlotKind::Passphrase {
            return Err(Error::NotPassphraseSlot(id));
        }
        let rec = self.new_passphrase_record(id, keyring, pass, kdf)?;
        self.body.slots[pos] = rec;
        self.save(keyring)
    }

    /// Removes slot `id`, refusing to remove the last one. Saves atomically.
    pub fn remove_slot(&mut self, keyring: &Keyring, id: u32) -> Result<()> {
        let pos = self.slot_index(id)?;
        if self.body.slots.len() == 1 {
            return Err(Error::LastSlot(id));
        }
        self.body.slots.remove(pos);
        self.save(keyring)
    }

    fn slot_index(&self, id: u32) -> Result<usize> {
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
        let bytes = std::fs::read(&self.path).map_err(|e| Error::io(&self.path, e))?;
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
        let u = ks.unseal_passphrase(&pass("one"), None).unwrap();
        assert_eq!(u.keyring.master(), ring.master());
        assert!(u.weak_kdf);
        assert!(matches!(
            ks.unseal_passphrase(&pass("two"), None),
            Err(Error::WrongPassphrase)
        ));
        let id = ks.add_passphrase(&u.keyring, &pass("two"), kdf).unwrap();
        assert_eq!(id, 1);
        let ks2 = Keystore::load(d.path()).unwrap();
        assert_eq!(ks2.unseal_passphrase(&pass("two"), None).unwrap().slot, 1);
        ks.change_passphrase(&u.keyring, 0, &pass("three"), kdf)
            .unwrap();
        ks.remove_slot(&u.keyring, 1).unwrap();
        assert!(matches!(
            ks.remove_slot(&u.keyring, 0),
            Err(Error::LastSlot(0))
        ));
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
