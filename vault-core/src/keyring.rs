//! The keyring (the secret a keystore slot unwraps) and the per-vault cipher
//! handle derived from it.
//!
//! The keyring holds a master secret, one data key per version (the
//! per-file content keys derive from them), the tree keys (names,
//! bindings, symlink targets and extended attributes derive from the
//! newest, or from the master secret before the first move), the audit
//! and keystore MAC keys, and each slot's authenticator key. Rotation adds
//! a data-key version; names are re-encrypted only by a move of the tree
//! to a new tree key (`reencrypt --retire`).

use crate::kdf::{self, label};
use crate::names::NameCipher;
use crate::{Aead, Error, Result, SecretBytes, SecretKey, Suite};
use ring::hmac;
use std::collections::BTreeMap;
use std::fmt;

const MAGIC: &[u8; 4] = b"PVKR";
const VERSION: u8 = 1;
const TAG_MASTER: u8 = 0x01;
const TAG_DATA_KEY: u8 = 0x02;
const TAG_AUDIT_SEED: u8 = 0x03;
const TAG_MAC_KEY: u8 = 0x04;
const TAG_TREE_KEY: u8 = 0x05;
const TAG_SLOT_AUTH: u8 = 0x06;

/// The vault's secret keys. Zeroized on drop (each key is a [`SecretKey`]),
/// never printed.
#[derive(Clone)]
pub struct Keyring {
    master: SecretKey,
    data_keys: BTreeMap<u32, SecretKey>,
    audit_seed: Option<SecretKey>,
    /// The keystore MAC key, drawn at random and replaced by every
    /// rotation; keyrings from before it derive the MAC key from the
    /// master secret, which a former key holder keeps knowing.
    mac_key: Option<SecretKey>,
    /// The tree keys by generation: the secret names, bindings, symlink
    /// targets and extended attributes derive from. Empty: the master
    /// secret serves (every vault before the first move). `reencrypt
    /// --retire` moves the tree to a new generation, so a former holder of
    /// an old keyring reads no current name; while a move is under way
    /// the keyring holds the old and the new generation.
    tree_keys: BTreeMap<u32, SecretKey>,
    /// Each keystore slot's authenticator key, by slot id: the slot seals
    /// its own copy under its KEK and checks with it that the keystore it
    /// opens was written by a holder of the keyring (keys, FORMAT.md §4.3).
    slot_auth: BTreeMap<u32, SecretKey>,
}

impl fmt::Debug for Keyring {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keyring")
            .field("data_key_versions", &self.versions())
            .finish_non_exhaustive()
    }
}

impl Keyring {
    /// A new keyring: a random master secret and data key version 1.
    pub fn generate() -> Result<Keyring> {
        let mut data_keys = BTreeMap::new();
        data_keys.insert(1, SecretKey::random()?);
        Ok(Keyring {
            master: SecretKey::random()?,
            data_keys,
            audit_seed: Some(SecretKey::random()?),
            mac_key: Some(SecretKey::random()?),
            tree_keys: BTreeMap::new(),
            slot_auth: BTreeMap::new(),
        })
    }

    /// Builds a keyring from known keys (test vectors, restores).
    pub fn from_parts(master: SecretKey, data_keys: BTreeMap<u32, SecretKey>) -> Result<Keyring> {
        if data_keys.is_empty() || data_keys.contains_key(&0) {
            return Err(Error::Keyring(
                "needs at least one data key, versions start at 1",
            ));
        }
        Ok(Keyring {
            master,
            data_keys,
            audit_seed: None,
            mac_key: None,
            tree_keys: BTreeMap::new(),
            slot_auth: BTreeMap::new(),
        })
    }

    /// The seed of the vault's audit-log signing key (Ed25519), when the
    /// keyring has one (keyrings from before the audit log do not).
    pub fn audit_seed(&self) -> Option<&SecretKey> {
        self.audit_seed.as_ref()
    }

    /// Sets the audit-log signing key seed.
    pub fn set_audit_seed(&mut self, seed: SecretKey) {
        self.audit_seed = Some(seed);
    }

    /// The keystore MAC key, when the keyring has its own (tag 0x04);
    /// `None` for keyrings from before it, whose MAC key is derived from
    /// the master secret.
    pub fn mac_key(&self) -> Option<&SecretKey> {
        self.mac_key.as_ref()
    }

    /// Sets the keystore MAC key.
    pub fn set_mac_key(&mut self, key: SecretKey) {
        self.mac_key = Some(key);
    }

    /// Slot `id`'s authenticator key, when it has one (format-3 slots).
    pub fn slot_auth(&self, id: u32) -> Option<&SecretKey> {
        self.slot_auth.get(&id)
    }

    /// Sets slot `id`'s authenticator key.
    pub fn set_slot_auth(&mut self, id: u32, key: SecretKey) {
        self.slot_auth.insert(id, key);
    }

    /// Forgets the authenticator keys of slots not in `keep`.
    pub fn retain_slot_auth(&mut self, keep: &[u32]) {
        self.slot_auth.retain(|id, _| keep.contains(id));
    }

    /// The secret the tree's keys (names, bindings, symlink targets,
    /// extended attributes) derive from: the newest tree key, or the master
    /// secret when the tree was never moved.
    pub fn tree_secret(&self) -> &SecretKey {
        self.tree_keys.values().next_back().unwrap_or(&self.master)
    }

    /// The tree-key generations held, ascending (empty: the master secret
    /// serves, generation 0).
    pub fn tree_generations(&self) -> Vec<u32> {
        self.tree_keys.keys().copied().collect()
    }

    /// True while a move of the tree to a new key is under way (the
    /// keyring holds two generations): only the move may use the vault.
    pub fn tree_move_pending(&self) -> bool {
        self.tree_keys.len() > 1
    }

    /// Starts (or, when one is pending, resumes) a move of the tree to a
    /// new random key: returns (old generation, new generation). The old
    /// generation 0 is the master secret, held explicitly during the move.
    pub fn begin_tree_move(&mut self) -> Result<(u32, u32)> {
        if self.tree_move_pending() {
            let g = self.tree_generations();
            return Ok((g[0], g[g.len() - 1]));
        }
        let old = match self.tree_keys.keys().next_back() {
            Some(&g) => g,
            None => {
                self.tree_keys.insert(0, self.master.clone());
                0
            }
        };
        let new = old
            .checked_add(1)
            .ok_or(Error::Keyring("tree-key generations exhausted"))?;
        self.tree_keys.insert(new, SecretKey::random()?);
        Ok((old, new))
    }

    /// Ends a move: keeps only the newest tree key (the old ones are wiped
    /// as they are dropped). Returns the generations removed.
    pub fn finish_tree_move(&mut self) -> Vec<u32> {
        let Some(&newest) = self.tree_keys.keys().next_back() else {
            return Vec::new();
        };
        let gone: Vec<u32> = self.tree_keys.range(..newest).map(|(g, _)| *g).collect();
        for g in &gone {
            self.tree_keys.remove(g);
        }
        gone
    }

    /// A copy whose tree secret is generation `generation` alone (for the
    /// two sides of a move); `None` when it is not held.
    pub fn tree_view(&self, generation: u32) -> Option<Keyring> {
        let key = self.tree_keys.get(&generation)?.clone();
        let mut k = self.clone();
        k.tree_keys = BTreeMap::from([(generation, key)]);
        Some(k)
    }

    /// The data-key version new writes use: the highest.
    pub fn current_version(&self) -> u32 {
        *self
            .data_keys
            .keys()
            .next_back()
            .expect("keyring always holds a data key")
    }

    /// All data-key versions held, ascending.
    pub fn versions(&self) -> Vec<u32> {
        self.data_keys.keys().copied().collect()
    }

    /// Adds a fresh random data key one above the current version and
    /// returns its number; new files then use it (rotation).
    pub fn rotate(&mut self) -> Result<u32> {
        let next = self
            .current_version()
            .checked_add(1)
            .ok_or(Error::Keyring("data-key versions exhausted"))?;
        self.data_keys.insert(next, SecretKey::random()?);
        Ok(next)
    }

    /// Removes every data key below `keep` (retirement after
    /// re-encryption); the current version is always kept. Returns the
    /// versions removed. The removed keys are wiped as they are dropped.
    pub fn retire_below(&mut self, keep: u32) -> Vec<u32> {
        let keep = keep.min(self.current_version());
        let gone: Vec<u32> = self.data_keys.range(..keep).map(|(v, _)| *v).collect();
        for v in &gone {
            self.data_keys.remove(v);
        }
        gone
    }

    /// The master secret, for deriving purpose keys outside vault-core
    /// (keystore MACs, audit signing). Use [`crate::derive`] with a label of
    /// your own; never use it directly as a key.
    pub fn master(&self) -> &SecretKey {
        &self.master
    }

    pub(crate) fn data_key(&self, version: u32) -> Result<&SecretKey> {
        self.data_keys
            .get(&version)
            .ok_or(Error::UnknownKeyVersion(version))
    }

    /// The exact length of [`Keyring::to_bytes`]: `40 + 39·n` bytes for n
    /// data keys, plus 35 with the audit key and 35 with the MAC key
    /// (FORMAT.md §5).
    pub fn serialized_len(&self) -> usize {
        let audit = if self.audit_seed.is_some() { 35 } else { 0 };
        let mac = if self.mac_key.is_some() { 35 } else { 0 };
        5 + 35
            + 39 * self.data_keys.len()
            + audit
            + mac
            + 39 * self.tree_keys.len()
            + 39 * self.slot_auth.len()
    }

    /// Serializes the keyring (format in FORMAT.md, "Keyring"). The buffer
    /// is reserved at its exact final size first: a reallocation while
    /// writing would leave a copy of the keys in freed memory, unwiped.
    pub fn to_bytes(&self) -> SecretBytes {
        let len = self.serialized_len();
        let mut out = SecretBytes::new(Vec::with_capacity(len));
        let v = out.expose_mut();
        v.extend_from_slice(MAGIC);
        v.push(VERSION);
        v.push(TAG_MASTER);
        v.extend_from_slice(&32u16.to_be_bytes());
        v.extend_from_slice(self.master.expose());
        for (version, key) in &self.data_keys {
            v.push(TAG_DATA_KEY);
            v.extend_from_slice(&36u16.to_be_bytes());
            v.extend_from_slice(&version.to_be_bytes());
            v.extend_from_slice(key.expose());
        }
        if let Some(seed) = &self.audit_seed {
            v.push(TAG_AUDIT_SEED);
            v.extend_from_slice(&32u16.to_be_bytes());
            v.extend_from_slice(seed.expose());
        }
        if let Some(key) = &self.mac_key {
            v.push(TAG_MAC_KEY);
            v.extend_from_slice(&32u16.to_be_bytes());
            v.extend_from_slice(key.expose());
        }
        for (generation, key) in &self.tree_keys {
            v.push(TAG_TREE_KEY);
            v.extend_from_slice(&36u16.to_be_bytes());
            v.extend_from_slice(&generation.to_be_bytes());
            v.extend_from_slice(key.expose());
        }
        for (slot, key) in &self.slot_auth {
            v.push(TAG_SLOT_AUTH);
            v.extend_from_slice(&36u16.to_be_bytes());
            v.extend_from_slice(&slot.to_be_bytes());
            v.extend_from_slice(key.expose());
        }
        debug_assert_eq!((v.len(), v.capacity()), (len, len), "keyring length");
        out
    }

    /// Parses a serialized keyring.
    pub fn from_bytes(bytes: &[u8]) -> Result<Keyring> {
        let rest = bytes
            .strip_prefix(MAGIC)
            .ok_or(Error::Keyring("bad magic"))?;
        let (&version, mut rest) = rest.split_first().ok_or(Error::Keyring("truncated"))?;
        if version != VERSION {
            return Err(Error::Keyring("keyring version from a newer pivault"));
        }
        let mut master = None;
        let mut audit_seed = None;
        let mut mac_key = None;
        let mut tree_keys = BTreeMap::new();
        let mut slot_auth = BTreeMap::new();
        let mut data_keys = BTreeMap::new();
        while let Some((&tag, r)) = rest.split_first() {
            if r.len() < 2 {
                return Err(Error::Keyring("truncated entry"));
            }
            let len = u16::from_be_bytes([r[0], r[1]]) as usize;
            let value = r.get(2..2 + len).ok_or(Error::Keyring("truncated entry"))?;
            rest = &r[2 + len..];
            match (tag, len) {
                (TAG_MASTER, 32) => {
                    if master.is_some() {
                        return Err(Error::Keyring("duplicate master secret"));
                    }
                    let mut k = [0u8; 32];
                    k.copy_from_slice(value);
                    master = Some(SecretKey::from_bytes(k));
                    zeroize::Zeroize::zeroize(&mut k);
                }
                (TAG_DATA_KEY, 36) => {
                    let v = u32::from_be_bytes(value[..4].try_into().expect("4 bytes"));
                    let mut k = [0u8; 32];
                    k.copy_from_slice(&value[4..]);
                    if data_keys.insert(v, SecretKey::from_bytes(k)).is_some() {
                        return Err(Error::Keyring("duplicate data key version"));
                    }
                    zeroize::Zeroize::zeroize(&mut k);
                }
                (TAG_AUDIT_SEED, 32) => {
                    if audit_seed.is_some() {
                        return Err(Error::Keyring("duplicate audit signing key"));
                    }
                    let mut k = [0u8; 32];
                    k.copy_from_slice(value);
                    audit_seed = Some(SecretKey::from_bytes(k));
                    zeroize::Zeroize::zeroize(&mut k);
                }
                (TAG_MAC_KEY, 32) => {
                    if mac_key.is_some() {
                        return Err(Error::Keyring("duplicate keystore MAC key"));
                    }
                    let mut k = [0u8; 32];
                    k.copy_from_slice(value);
                    mac_key = Some(SecretKey::from_bytes(k));
                    zeroize::Zeroize::zeroize(&mut k);
                }
                (TAG_TREE_KEY, 36) => {
                    let g = u32::from_be_bytes(value[..4].try_into().expect("4 bytes"));
                    let key = SecretKey::from_slice(&value[4..]).expect("32 bytes");
                    if tree_keys.insert(g, key).is_some() {
                        return Err(Error::Keyring("duplicate tree-key generation"));
                    }
                }
                (TAG_SLOT_AUTH, 36) => {
                    let id = u32::from_be_bytes(value[..4].try_into().expect("4 bytes"));
                    let key = SecretKey::from_slice(&value[4..]).expect("32 bytes");
                    if slot_auth.insert(id, key).is_some() {
                        return Err(Error::Keyring("duplicate slot authenticator key"));
                    }
                }
                (
                    TAG_MASTER | TAG_DATA_KEY | TAG_AUDIT_SEED | TAG_MAC_KEY | TAG_TREE_KEY
                    | TAG_SLOT_AUTH,
                    _,
                ) => return Err(Error::Keyring("entry has wrong length")),
                _ => return Err(Error::Keyring("unknown entry: written by a newer pivault")),
            }
        }
        let mut k =
            Keyring::from_parts(master.ok_or(Error::Keyring("no master secret"))?, data_keys)?;
        k.audit_seed = audit_seed;
        k.mac_key = mac_key;
        k.tree_keys = tree_keys;
        k.slot_auth = slot_auth;
        Ok(k)
    }
}

/// Everything needed to seal and open one vault's data: the suite for new
/// files, and keys derived from the keyring. The FUSE layer holds this
/// handle and never sees key bytes.
pub struct VaultCipher {
    suite: Suite,
    /// Behind a lock so a long-running mount can take in data-key versions
    /// added by a rotation ([`VaultCipher::refresh_keyring`]).
    keyring: std::sync::RwLock<Keyring>,
    names: NameCipher,
    binding: hmac::Key,
    symlinks: Aead,
}

impl fmt::Debug for VaultCipher {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("VaultCipher")
            .field("suite", &self.suite)
            .finish_non_exhaustive()
    }
}

impl VaultCipher {
    /// Derives the vault's keys. `suite` is used for new files and symlinks.
    pub fn new(keyring: Keyring, suite: Suite) -> VaultCipher {
        Self::try_new(keyring, suite).expect("HKDF with fixed lengths cannot fail")
    }

    fn try_new(keyring: Keyring, suite: Suite) -> Result<VaultCipher> {
        let mut name_key = zeroize::Zeroizing::new([0u8; 64]);
        let tree = keyring.tree_secret();
        kdf::derive(tree.expose(), label::NAMES, b"", name_key.as_mut())?;
        let binding_key = kdf::derive_key(tree, label::BINDING, b"")?;
        let symlink_key = kdf::derive_key(tree, label::SYMLINK, b"")?;
        Ok(VaultCipher {
            suite,
            names: NameCipher::new(&name_key),
            binding: hmac::Key::new(hmac::HMAC_SHA256, binding_key.expose()),
            symlinks: Aead::new(suite, &symlink_key)?,
            keyring: std::sync::RwLock::new(keyring),
        })
    }

    /// The suite new files are sealed with.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    /// The keyring (read-locked while the guard lives).
    pub fn keyring(&self) -> std::sync::RwLockReadGuard<'_, Keyring> {
        self.keyring.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Takes in a newer copy of the same vault's keyring (after `pivault
    /// keys rotate`): new files then use its newest data-key version.
    /// Returns whether anything changed.
    ///
    /// Only a keyring that holds every data-key version held now, with the
    /// same key bytes, is taken in: while the vault is in use (a mount holds
    /// its lock, so no retirement runs) versions are only ever added. One
    /// that lacks a held version (which includes a lower newest version) is
    /// older: [`Error::KeyringRollback`], and the held keyring stays. A
    /// keyring with another master secret (another vault), or other bytes
    /// for a held version, is refused too.
    pub fn refresh_keyring(&self, mut newer: Keyring) -> Result<bool> {
        let mut cur = self.keyring.write().unwrap_or_else(|e| e.into_inner());
        if cur.master != newer.master {
            return Err(Error::Keyring(
                "it belongs to another vault (different master secret)",
            ));
        }
        let missing: Vec<u32> = cur
            .data_keys
            .keys()
            .filter(|v| !newer.data_keys.contains_key(v))
            .copied()
            .collect();
        if !missing.is_empty() {
            return Err(Error::KeyringRollback {
                missing,
                held_newest: cur.current_version(),
                offered_newest: newer.current_version(),
            });
        }
        if cur
            .data_keys
            .iter()
            .any(|(v, k)| newer.data_keys.get(v) != Some(k))
        {
            return Err(Error::Keyring(
                "a data-key version held has other key bytes there (the keystore was forged)",
            ));
        }
        if cur.versions() == newer.versions() {
            return Ok(false);
        }
        if newer.audit_seed.is_none() {
            newer.audit_seed = cur.audit_seed.clone();
        }
        if newer.mac_key.is_none() {
            newer.mac_key = cur.mac_key.clone();
        }
        if newer.tree_keys != cur.tree_keys {
            return Err(Error::Keyring(
                "its tree key differs from the one in use (names were moved to a new key meanwhile, which needs the vault unmounted)",
            ));
        }
        *cur = newer;
        Ok(true)
    }

    /// The name cipher.
    pub fn names(&self) -> &NameCipher {
        &self.names
    }

    /// The cipher of extended attribute names and values (keys derived
    /// from the master secret; see `xattr.rs`).
    pub fn xattr_cipher(&self) -> Result<crate::XattrCipher> {
        crate::XattrCipher::new(self)
    }

    /// The content AEAD for one file.
    pub(crate) fn file_aead(&self, suite: Suite, version: u32, file_id: &[u8; 16]) -> Result<Aead> {
        let key = kdf::derive_key(self.keyring().data_key(version)?, label::CONTENT, file_id)?;
        Aead::new(suite, &key)
    }

    /// A 128-bit binding tag: HMAC-SHA256 over a domain and its fields,
    /// each length-prefixed so no two field lists collide.
    pub(crate) fn binding_tag(&self, domain: &[u8], fields: &[&[u8]]) -> [u8; 16] {
        let mut ctx = hmac::Context::with_key(&self.binding);
        ctx.update(domain);
        for f in fields {
            ctx.update(&(f.len() as u32).to_be_bytes());
            ctx.update(f);
        }
        let tag = ctx.sign();
        let mut out = [0u8; 16];
        out.copy_from_slice(&tag.as_ref()[..16]);
        out
    }

    /// Encrypts a symlink target bound to its entry (directory ID and
    /// plaintext name); the result is base64url, safe as a host symlink target.
    pub fn seal_symlink(&self, dir_id: &[u8; 16], name: &[u8], target: &[u8]) -> Result<String> {
        use base64::Engine as _;
        let aad = symlink_aad(self.suite, dir_id, name);
        let mut msg = vec![self.suite.id()];
        msg.extend_from_slice(&self.symlinks.seal(&aad, target)?);
        Ok(base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(msg))
    }

    /// Decrypts a symlink target sealed by [`VaultCipher::seal_symlink`].
    pub fn open_symlink(&self, dir_id: &[u8; 16], name: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
        use base64::Engine as _;
        let raw = base64::engine::general_purpose::URL_SAFE_NO_PAD
            .decode(sealed)
            .map_err(|_| Error::Symlink)?;
        let (&sid, msg) = raw.split_first().ok_or(Error::Symlink)?;
        let suite = Suite::from_id(sid).ok_or(Error::Symlink)?;
        let aad = symlink_aad(suite, dir_id, name);
        if suite == self.suite {
            return self.symlinks.open(&aad, msg).ok_or(Error::Symlink);
        }
        let key = kdf::derive_key(self.keyring().tree_secret(), label::SYMLINK, b"")?;
        Aead::new(suite, &key)?
            .open(&aad, msg)
            .ok_or(Error::Symlink)
    }
}

fn symlink_aad(suite: Suite, dir_id: &[u8; 16], name: &[u8]) -> Vec<u8> {
    let mut aad = Vec::with_capacity(22 + name.len());
    aad.extend_from_slice(b"PVSL");
    aad.push(suite.id());
    aad.extend_from_slice(dir_id);
    aad.extend_from_slice(name);
    aad
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyring_round_trips_and_rejects_garbage() {
        let k = Keyring::generate().unwrap();
        let bytes = k.to_bytes();
        let back = Keyring::from_bytes(bytes.expose()).unwrap();
        assert_eq!(back.master(), k.master());
        assert_eq!(back.versions(), vec![1]);
        assert_eq!(back.audit_seed(), k.audit_seed());
        assert!(back.audit_seed().is_some());
        assert!(Keyring::from_bytes(&bytes.expose()[..bytes.len() - 1]).is_err());
        let mut future = bytes.expose().to_vec();
        future.extend_from_slice(&[0x7f, 0, 0]);
        assert!(
            matches!(Keyring::from_bytes(&future), Err(Error::Keyring(m)) if m.contains("newer"))
        );
    }

    #[test]
    fn serialising_the_keyring_never_reallocates_leaving_a_key_copy() {
        // A Vec that grows while the keys are written into it moves them
        // and frees the old buffer without wiping it: the buffer must be
        // allocated once, at its final size.
        let mut k = Keyring::generate().unwrap();
        for n in 1..=20 {
            let bytes = k.to_bytes();
            assert_eq!(bytes.len(), k.serialized_len(), "{n} data keys");
            assert_eq!(bytes.expose().len(), 40 + 39 * n + 35 + 35);
            assert_eq!(
                bytes.capacity(),
                bytes.len(),
                "{n} data keys: the buffer grew while the keys were written"
            );
            k.rotate().unwrap();
        }
        let mut parts = BTreeMap::new();
        parts.insert(1, SecretKey::random().unwrap());
        let old = Keyring::from_parts(SecretKey::random().unwrap(), parts).unwrap();
        let bytes = old.to_bytes();
        assert_eq!(bytes.len(), 40 + 39);
        assert_eq!(bytes.capacity(), bytes.len());
    }

    #[test]
    fn rotate_adds_a_version_and_retire_keeps_the_current() {
        let mut k = Keyring::generate().unwrap();
        assert_eq!(k.rotate().unwrap(), 2);
        assert_eq!(k.rotate().unwrap(), 3);
        assert_eq!(k.current_version(), 3);
        assert_ne!(k.data_key(1).unwrap(), k.data_key(3).unwrap());
        assert_eq!(k.retire_below(3), vec![1, 2]);
        assert_eq!(k.versions(), vec![3]);
        assert!(matches!(k.data_key(1), Err(Error::UnknownKeyVersion(1))));
        assert!(k.retire_below(99).is_empty(), "the current version stays");
        let back = Keyring::from_bytes(k.to_bytes().expose()).unwrap();
        assert_eq!(back.versions(), vec![3]);
    }

    #[test]
    fn a_rolled_back_keyring_is_refused_and_the_newer_one_kept() {
        let old = Keyring::generate().unwrap();
        let mut newer = old.clone();
        newer.rotate().unwrap();
        let v = VaultCipher::new(old.clone(), Suite::Aes256Gcm);
        assert!(v.refresh_keyring(newer.clone()).unwrap());
        assert_eq!(v.keyring().versions(), vec![1, 2]);
        // The copy from before the rotation put back: refused, 2 kept.
        let e = v.refresh_keyring(old.clone()).unwrap_err();
        assert!(
            matches!(&e, Error::KeyringRollback { missing, held_newest: 2, offered_newest: 1 } if missing == &[2]),
            "{e}"
        );
        assert_eq!(v.keyring().versions(), vec![1, 2]);
        // A retired copy lacking version 1 (a lower version missing, same
        // newest) is older too.
        let mut retired = newer.clone();
        retired.retire_below(2);
        assert!(matches!(
            v.refresh_keyring(retired),
            Err(Error::KeyringRollback { .. })
        ));
        // Version 2 with other bytes is a forgery, not a rotation.
        let mut forged = old.clone();
        forged.rotate().unwrap();
        forged.rotate().unwrap();
        assert!(matches!(v.refresh_keyring(forged), Err(Error::Keyring(_))));
        assert_eq!(v.keyring().data_key(2).unwrap(), newer.data_key(2).unwrap());
        // The same keyring again changes nothing; a later rotation is taken.
        assert!(!v.refresh_keyring(newer.clone()).unwrap());
        let mut third = newer.clone();
        third.rotate().unwrap();
        assert!(v.refresh_keyring(third).unwrap());
        assert_eq!(v.keyring().current_version(), 3);
    }

    #[test]
    fn symlink_targets_are_bound_to_their_entry() {
        let v = VaultCipher::new(Keyring::generate().unwrap(), Suite::Aes256Gcm);
        let s = v.seal_symlink(&[1; 16], b"link", b"/etc/passwd").unwrap();
        assert_eq!(
            v.open_symlink(&[1; 16], b"link", s.as_bytes()).unwrap(),
            b"/etc/passwd"
        );
        assert!(v.open_symlink(&[2; 16], b"link", s.as_bytes()).is_err());
        assert!(v.open_symlink(&[1; 16], b"other", s.as_bytes()).is_err());
    }
}
