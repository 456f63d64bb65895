//! Recovery keys: 256 random bits a person writes down or stores in a
//! safe, printed once, in 11 groups of 5 characters with a checksum that
//! catches typos before any key work.
//!
//! Encoding: the 32 key bytes, then the first 2 bytes of
//! SHA-256("pivault recovery key v1" || key); those 34 bytes in Crockford
//! base32 (digits and capitals without I, L, O, U; 55 characters, the last
//! 3 bits zero), grouped by 5 with `-`, after the prefix `PVRK-`. Input is
//! read case-insensitively, ignoring spaces and `-`, with O read as 0 and
//! I/L as 1. A recovery slot's KEK is HKDF-SHA256(key, "pivault v1 recovery
//! slot", salt): the key is uniformly random, so stretching adds nothing.

use crate::audit::Event;
use crate::body::SlotRecord;
use crate::keystore::{now, Keystore};
use crate::slot::SlotKind;
use crate::unseal::Unsealed;
use crate::{Error, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use vault_core::SecretKey;
use zeroize::Zeroizing;

const ALPHABET: &[u8; 32] = b"0123456789ABCDEFGHJKMNPQRSTVWXYZ";
const CHECK_DOMAIN: &[u8] = b"pivault recovery key v1";
const KEK_LABEL: &str = "pivault v1 recovery slot";
const PREFIX: &str = "PVRK";
const CHARS: usize = 55;

/// A recovery key. Wiped on drop, never printed except by [`RecoveryKey::encode`].
#[derive(Debug, Clone)]
pub struct RecoveryKey(SecretKey);

fn checksum(key: &[u8; 32]) -> [u8; 2] {
    let mut ctx = ring::digest::Context::new(&ring::digest::SHA256);
    ctx.update(CHECK_DOMAIN);
    ctx.update(key);
    let d = ctx.finish();
    [d.as_ref()[0], d.as_ref()[1]]
}

impl RecoveryKey {
    /// A fresh random recovery key.
    pub fn generate() -> Result<RecoveryKey> {
        Ok(RecoveryKey(SecretKey::random()?))
    }

    /// The printable form, e.g. `PVRK-0K3M9-...` (11 groups of 5).
    pub fn encode(&self) -> Zeroizing<String> {
        let mut bytes = Zeroizing::new([0u8; 34]);
        bytes[..32].copy_from_slice(self.0.expose());
        bytes[32..].copy_from_slice(&checksum(self.0.expose()));
        let mut chars = Zeroizing::new(String::with_capacity(CHARS));
        let (mut acc, mut bits) = (0u32, 0u32);
        for &b in bytes.iter() {
            acc = (acc << 8) | u32::from(b);
            bits += 8;
            while bits >= 5 {
                bits -= 5;
                chars.push(ALPHABET[((acc >> bits) & 31) as usize] as char);
            }
        }
        chars.push(ALPHABET[((acc << (5 - bits)) & 31) as usize] as char);
        let mut out = Zeroizing::new(String::from(PREFIX));
        for group in chars.as_bytes().chunks(5) {
            out.push('-');
            out.push_str(std::str::from_utf8(group).expect("ASCII"));
        }
        out
    }

    /// Reads a recovery key as typed; a typo is reported here, before any
    /// key derivation.
    pub fn parse(text: &str) -> Result<RecoveryKey> {
        let mut clean = Zeroizing::new(String::with_capacity(text.len()));
        for c in text.chars() {
            match c {
                ' ' | '\t' | '\n' | '\r' | '-' => {}
                c => clean.push(c.to_ascii_uppercase()),
            }
        }
        let body = clean.strip_prefix(PREFIX).unwrap_or(&clean);
        if body.len() != CHARS {
            return Err(Error::RecoveryKeyTypo(format!(
                "it has {} characters where a recovery key has {CHARS} (11 groups of 5 after `PVRK-`)",
                body.chars().count()
            )));
        }
        let mut bytes = Zeroizing::new([0u8; 35]);
        let (mut acc, mut bits, mut n) = (0u32, 0u32, 0usize);
        for (i, c) in body.bytes().enumerate() {
            let c = match c {
                b'O' => b'0',
                b'I' | b'L' => b'1',
                c => c,
            };
            let v = ALPHABET.iter().position(|&a| a == c).ok_or_else(|| {
                Error::RecoveryKeyTypo(format!(
                    "character {} ({:?}, group {}) is not used in recovery keys",
                    i + 1,
                    c as char,
                    i / 5 + 1
                ))
            })?;
            acc = (acc << 5) | v as u32;
            bits += 5;
            if bits >= 8 {
                bits -= 8;
                bytes[n] = (acc >> bits) as u8;
                n += 1;
            }
            acc &= (1 << bits) - 1;
        }
        let mut key = [0u8; 32];
        key.copy_from_slice(&bytes[..32]);
        let key = SecretKey::from_bytes(key);
        if acc != 0 || checksum(key.expose()) != bytes[32..34] {
            return Err(Error::RecoveryKeyTypo(
                "its checksum does not match".to_string(),
            ));
        }
        Ok(RecoveryKey(key))
    }

    pub(crate) fn kek(&self, salt: &[u8]) -> Result<SecretKey> {
        let mut out = Zeroizing::new([0u8; 32]);
        vault_core::derive(self.0.expose(), KEK_LABEL, salt, out.as_mut())?;
        Ok(SecretKey::from_bytes(*out))
    }
}

impl Keystore {
    /// Adds a recovery slot around a fresh recovery key, which is
    /// returned (show it once). Saves atomically.
    pub fn add_recovery(&mut self, u: &mut Unsealed) -> Result<(u32, RecoveryKey)> {
        self.require_admin(u, "add a slot")?;
        self.begin_write(u)?;
        let key = RecoveryKey::generate()?;
        let id = self.body.next_slot;
        let salt = vault_core::random::array::<16>()?;
        let kek = key.kek(&salt)?;
        let (wrapped, public, _) =
            self.seal_new_identity(&mut u.keyring, &kek, id, SlotKind::Recovery)?;
        let rec = SlotRecord {
            id,
            kind: SlotKind::Recovery,
            created: now(),
            kdf: None,
            salt: B64.encode(salt),
            policy: None,
            role: None,
            shares: None,
            escrow: None,
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
                .detail("kind", "recovery")
                .detail("by_slot", u.slot),
        );
        Ok((id, key))
    }

    /// Opens the keyring with a recovery key: each recovery slot in turn.
    /// Never writes the keystore.
    pub fn unseal_recovery(&self, key: &RecoveryKey) -> Result<Unsealed> {
        let mut any = false;
        for rec in self
            .body
            .slots
            .iter()
            .filter(|s| s.kind == SlotKind::Recovery)
        {
            any = true;
            let salt = B64.decode(&rec.salt).map_err(|_| {
                Error::corrupt(&self.path, format!("slot {} has a malformed salt", rec.id))
            })?;
            if let Some(u) = self.unseal_with_kek(rec, key.kek(&salt)?)? {
                return Ok(u);
            }
        }
        if !any {
            return Err(Error::NoSlotOfKind {
                path: self.path.clone(),
                kind: "recovery",
            });
        }
        Err(Error::WrongRecoveryKey)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encoding_round_trips_and_catches_typos() {
        // A fixed key, so the exhaustive typo check below is deterministic
        // (a random 16-bit checksum misses one typo in 65536).
        let k = RecoveryKey(SecretKey::from_bytes(*b"pivault recovery key test vector"));
        let text = k.encode();
        assert_ne!(RecoveryKey::generate().unwrap().encode(), text);
        assert_eq!(text.len(), 4 + 11 * 6);
        assert!(text.starts_with("PVRK-"));
        let back = RecoveryKey::parse(&text).unwrap();
        assert_eq!(back.0, k.0);
        // Lower case, spaces, and confusable letters are accepted.
        let loose = text.to_lowercase().replace('-', " ").replace('0', "o");
        assert_eq!(RecoveryKey::parse(&loose).unwrap().0, k.0);
        // Every single-character substitution is caught by the checksum
        // (or, in the last character, by the padding bits).
        let chars: Vec<char> = text.chars().collect();
        for (i, c) in chars.iter().enumerate().filter(|(_, c)| **c != '-') {
            if i < 5 {
                continue;
            }
            let other = if *c == 'Z' { 'Y' } else { 'Z' };
            let mut t = chars.clone();
            t[i] = other;
            let t: String = t.into_iter().collect();
            assert!(
                matches!(RecoveryKey::parse(&t), Err(Error::RecoveryKeyTypo(_))),
                "typo at {i} not caught"
            );
        }
        assert!(matches!(
            RecoveryKey::parse("PVRK-ABCDE"),
            Err(Error::RecoveryKeyTypo(m)) if m.contains("characters")
        ));
        assert!(matches!(
            RecoveryKey::parse(&text.replacen('-', "-U", 2)),
            Err(Error::RecoveryKeyTypo(_))
        ));
    }
}
