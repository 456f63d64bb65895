//! The two AEAD suites behind one small interface.
//!
//! AES-256-GCM comes from `ring` (AES-NI and CLMUL where the CPU has them);
//! XChaCha20-Poly1305 from RustCrypto's `chacha20poly1305` for CPUs without
//! AES instructions, where a software AES would be slow and not constant-time.

use crate::{random, Error, Result, SecretKey};
use chacha20poly1305::aead::{AeadInPlace, KeyInit};
use chacha20poly1305::{Tag as XTag, XChaCha20Poly1305, XNonce};
use ring::aead::{self, LessSafeKey, UnboundKey, AES_256_GCM};
use std::sync::atomic::{AtomicU64, Ordering};

/// Tag length of both suites.
pub const TAG_LEN: usize = 16;

/// An AEAD suite, as recorded in the keystore and in every file header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Suite {
    /// AES-256-GCM, 96-bit random nonces (ring).
    Aes256Gcm,
    /// XChaCha20-Poly1305, 192-bit random nonces (RustCrypto).
    XChaCha20Poly1305,
}

impl Suite {
    /// The byte that identifies the suite on disk.
    pub fn id(self) -> u8 {
        match self {
            Suite::Aes256Gcm => 1,
            Suite::XChaCha20Poly1305 => 2,
        }
    }

    /// The suite for an on-disk identifier.
    pub fn from_id(id: u8) -> Option<Suite> {
        match id {
            1 => Some(Suite::Aes256Gcm),
            2 => Some(Suite::XChaCha20Poly1305),
            _ => None,
        }
    }

    /// The name used in the keystore and on the command line.
    pub fn name(self) -> &'static str {
        match self {
            Suite::Aes256Gcm => "aes-256-gcm",
            Suite::XChaCha20Poly1305 => "xchacha20-poly1305",
        }
    }

    /// Parses a keystore or command-line name (`aes-gcm` and `xchacha` are
    /// accepted as short forms).
    pub fn from_name(name: &str) -> Option<Suite> {
        match name {
            "aes-256-gcm" | "aes-gcm" => Some(Suite::Aes256Gcm),
            "xchacha20-poly1305" | "xchacha" => Some(Suite::XChaCha20Poly1305),
            _ => None,
        }
    }

    /// Nonce length in bytes.
    pub fn nonce_len(self) -> usize {
        match self {
            Suite::Aes256Gcm => 12,
            Suite::XChaCha20Poly1305 => 24,
        }
    }

    /// Bytes a sealed message adds to its plaintext (nonce and tag).
    pub fn overhead(self) -> usize {
        self.nonce_len() + TAG_LEN
    }

    /// AES-256-GCM when this CPU has AES and carry-less multiply
    /// instructions (then it is both fastest and constant-time), otherwise
    /// XChaCha20-Poly1305.
    pub fn preferred() -> Suite {
        #[cfg(any(target_arch = "x86", target_arch = "x86_64"))]
        {
            if std::arch::is_x86_feature_detected!("aes")
                && std::arch::is_x86_feature_detected!("pclmulqdq")
            {
                return Suite::Aes256Gcm;
            }
            Suite::XChaCha20Poly1305
        }
        #[cfg(target_arch = "aarch64")]
        {
            if std::arch::is_aarch64_feature_detected!("aes")
                && std::arch::is_aarch64_feature_detected!("pmull")
            {
                return Suite::Aes256Gcm;
            }
            Suite::XChaCha20Poly1305
        }
        #[cfg(not(any(target_arch = "x86", target_arch = "x86_64", target_arch = "aarch64")))]
        {
            Suite::XChaCha20Poly1305
        }
    }
}

enum Engine {
    Gcm(Box<LessSafeKey>),
    XChaCha(Box<XChaCha20Poly1305>),
}

/// A keyed AEAD of either suite. Messages are `nonce || ciphertext || tag`.
///
/// Nonces are counted, not drawn per message: each `Aead` takes a random
/// base nonce once and XORs a 64-bit message counter into its last eight
/// bytes. Within one instance nonces never repeat; across `F` instances
/// under the same key, each sealing at most `q` messages, a repeat has
/// probability at most `F² · q / 2^(8·nonce_len + 1)` (FORMAT.md, "Nonces").
/// This also keeps the OS random generator off the per-block path.
pub struct Aead {
    suite: Suite,
    engine: Engine,
    base: [u8; 24],
    counter: AtomicU64,
}

impl Aead {
    /// Keys `suite` with `key` and draws a fresh random base nonce.
    pub fn new(suite: Suite, key: &SecretKey) -> Result<Aead> {
        let engine = match suite {
            Suite::Aes256Gcm => Engine::Gcm(Box::new(LessSafeKey::new(
                UnboundKey::new(&AES_256_GCM, key.expose())
                    .map_err(|_| Error::Crypto("AES-256-GCM key"))?,
            ))),
            Suite::XChaCha20Poly1305 => Engine::XChaCha(Box::new(
                XChaCha20Poly1305::new_from_slice(key.expose())
                    .map_err(|_| Error::Crypto("XChaCha20-Poly1305 key"))?,
            )),
        };
        Ok(Aead {
            suite,
            engine,
            base: random::array::<24>()?,
            counter: AtomicU64::new(0),
        })
    }

    /// The suite.
    pub fn suite(&self) -> Suite {
        self.suite
    }

    fn next_nonce(&self, out: &mut [u8]) -> Result<()> {
        let c = self.counter.fetch_add(1, Ordering::Relaxed);
        if c == u64::MAX {
            return Err(Error::Crypto("nonce counter exhausted"));
        }
        let nl = out.len();
        out.copy_from_slice(&self.base[..nl]);
        for (o, b) in out[nl - 8..].iter_mut().zip(c.to_be_bytes()) {
            *o ^= b;
        }
        Ok(())
    }

    /// Seals in place. `message` is laid out as the sealed message will be:
    /// `nonce_len` bytes (overwritten with the nonce), the plaintext, and
    /// 16 bytes (overwritten with the tag).
    pub fn seal_in_place(&self, aad: &[u8], message: &mut [u8]) -> Result<()> {
        let nl = self.suite.nonce_len();
        if message.len() < nl + TAG_LEN {
            return Err(Error::Crypto("seal buffer shorter than nonce and tag"));
        }
        let (nonce, rest) = message.split_at_mut(nl);
        self.next_nonce(nonce)?;
        let body_len = rest.len() - TAG_LEN;
        let (body, tag_out) = rest.split_at_mut(body_len);
        match &self.engine {
            Engine::Gcm(key) => {
                let n = aead::Nonce::try_assume_unique_for_key(nonce)
                    .map_err(|_| Error::Crypto("nonce length"))?;
                let tag = key
                    .seal_in_place_separate_tag(n, aead::Aad::from(aad), body)
                    .map_err(|_| Error::Crypto("AES-256-GCM seal"))?;
                tag_out.copy_from_slice(tag.as_ref());
            }
            Engine::XChaCha(c) => {
                let tag = c
                    .encrypt_in_place_detached(XNonce::from_slice(nonce), aad, body)
                    .map_err(|_| Error::Crypto("XChaCha20-Poly1305 seal"))?;
                tag_out.copy_from_slice(&tag);
            }
        }
        Ok(())
    }

    /// Seals `plaintext` into `out`, which must be exactly
    /// `plaintext.len() + overhead()` bytes.
    pub fn seal_into(&self, aad: &[u8], plaintext: &[u8], out: &mut [u8]) -> Result<()> {
        let nl = self.suite.nonce_len();
        if out.len() != plaintext.len() + nl + TAG_LEN {
            return Err(Error::Crypto("seal output length"));
        }
        out[nl..nl + plaintext.len()].copy_from_slice(plaintext);
        self.seal_in_place(aad, out)
    }

    /// Seals `plaintext` and returns the whole message.
    pub fn seal(&self, aad: &[u8], plaintext: &[u8]) -> Result<Vec<u8>> {
        let mut out = vec![0u8; plaintext.len() + self.suite.overhead()];
        self.seal_into(aad, plaintext, &mut out)?;
        Ok(out)
    }

    /// Opens a message in place: on success the plaintext is
    /// `message[nonce_len..len - 16]`. On failure that region is zeroed, so
    /// no unauthenticated plaintext is ever released. Returns false when
    /// authentication fails.
    pub fn open_in_place(&self, aad: &[u8], message: &mut [u8]) -> bool {
        let nl = self.suite.nonce_len();
        if message.len() < nl + TAG_LEN {
            return false;
        }
        let (nonce, rest) = message.split_at_mut(nl);
        let body_len = rest.len() - TAG_LEN;
        let (body, tag) = rest.split_at_mut(body_len);
        self.open_detached(aad, nonce, body, tag)
    }

    /// Decrypts `body` in place given its message's nonce and tag (which
    /// may live elsewhere: the content format decrypts straight into the
    /// caller's buffer). `body` is zeroed when authentication fails.
    pub fn open_detached(&self, aad: &[u8], nonce: &[u8], body: &mut [u8], tag: &[u8]) -> bool {
        if nonce.len() != self.suite.nonce_len() || tag.len() != TAG_LEN {
            body.fill(0);
            return false;
        }
        let ok = match &self.engine {
            Engine::Gcm(key) => {
                let n = aead::Nonce::try_assume_unique_for_key(nonce).expect("12-byte nonce");
                let tag = aead::Tag::try_from(tag).expect("16-byte tag");
                key.open_in_place_separate_tag(n, aead::Aad::from(aad), tag, body, 0..)
                    .is_ok()
            }
            Engine::XChaCha(c) => c
                .decrypt_in_place_detached(
                    XNonce::from_slice(nonce),
                    aad,
                    body,
                    XTag::from_slice(tag),
                )
                .is_ok(),
        };
        if !ok {
            body.fill(0);
        }
        ok
    }

    /// Opens `message` into `out` (exactly `message.len() - overhead()`
    /// bytes); `out` is zeroed on failure. The ciphertext is copied into
    /// `out` and decrypted there: no other buffer ever holds the plaintext,
    /// so the caller's (zeroizing) buffer is its only copy.
    pub fn open_into(&self, aad: &[u8], message: &[u8], out: &mut [u8]) -> bool {
        let oh = self.suite.overhead();
        if message.len() < oh || out.len() != message.len() - oh {
            out.fill(0);
            return false;
        }
        let nl = self.suite.nonce_len();
        let (nonce, rest) = message.split_at(nl);
        let (body, tag) = rest.split_at(out.len());
        out.copy_from_slice(body);
        self.open_detached(aad, nonce, out, tag)
    }

    /// Opens a whole message; `None` when authentication fails.
    pub fn open(&self, aad: &[u8], message: &[u8]) -> Option<Vec<u8>> {
        let len = message.len().checked_sub(self.suite.overhead())?;
        let mut out = vec![0u8; len];
        self.open_into(aad, message, &mut out).then_some(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_suites_round_trip_and_reject_tampering() {
        for suite in [Suite::Aes256Gcm, Suite::XChaCha20Poly1305] {
            let a = Aead::new(suite, &SecretKey::random().unwrap()).unwrap();
            let mut m = a.seal(b"aad", b"hello").unwrap();
            assert_eq!(m.len(), 5 + suite.overhead());
            assert_eq!(a.open(b"aad", &m).unwrap(), b"hello");
            assert!(a.open(b"aaD", &m).is_none());
            let last = m.len() - 1;
            m[last] ^= 1;
            assert!(a.open(b"aad", &m).is_none());
        }
    }

    #[test]
    fn counted_nonces_differ_and_open() {
        let a = Aead::new(Suite::Aes256Gcm, &SecretKey::random().unwrap()).unwrap();
        let m1 = a.seal(b"", b"x").unwrap();
        let m2 = a.seal(b"", b"x").unwrap();
        assert_ne!(m1[..12], m2[..12]);
        assert_eq!(a.open(b"", &m2).unwrap(), b"x");
    }

    #[test]
    fn names_parse() {
        assert_eq!(Suite::from_name("aes-gcm"), Some(Suite::Aes256Gcm));
        assert_eq!(Suite::from_name("xchacha"), Some(Suite::XChaCha20Poly1305));
        assert_eq!(
            Suite::from_id(Suite::XChaCha20Poly1305.id()),
            Some(Suite::XChaCha20Poly1305)
        );
        assert_eq!(Suite::from_id(9), None);
    }
}
