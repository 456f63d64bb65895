//! Each slot's X25519 key pair (keystore format 3): how a fresh keyring
//! wrapping key (KWK) reaches every slot without its holder's secret, so
//! that removing a slot, rotating or changing a passphrase can draw a new
//! KWK and cut off every copy of the old keystore.
//!
//! A slot's KEK seals its age X25519 identity (`AGE-SECRET-KEY-1…`); the
//! slot's public half (`age1…`) sits in the keystore under the MAC, and the
//! KWK is encrypted to it as a binary age file (one X25519 recipient
//! stanza). age is an audited, specified format (age-encryption.org/v1)
//! the escrow slots already use, so no construction here is our own and
//! an independent reader needs only an age implementation
//! (docs/FORMAT.md §4.3).

use crate::{Error, Result};
use age::secrecy::ExposeSecret;
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use std::path::Path;
use std::str::FromStr;
use vault_core::{SecretBytes, SecretKey};
use zeroize::Zeroizing;

/// A slot's X25519 identity, held after an unseal so that a running
/// process can follow a KWK re-drawn by another one. Never printed.
pub(crate) struct SlotIdentity(age::x25519::Identity);

impl std::fmt::Debug for SlotIdentity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_tuple("SlotIdentity").field(&self.public()).finish()
    }
}

impl SlotIdentity {
    /// A new random key pair.
    pub(crate) fn generate() -> SlotIdentity {
        SlotIdentity(age::x25519::Identity::generate())
    }

    /// The public half, as the slot's `public` member (`age1…`).
    pub(crate) fn public(&self) -> String {
        self.0.to_public().to_string()
    }

    /// The bytes a slot's KEK seals: the slot's authenticator key (32
    /// bytes), then the identity's standard encoding.
    pub(crate) fn sealed_form(&self, auth: &SecretKey) -> SecretBytes {
        let text = self.0.to_string();
        let text = text.expose_secret().as_bytes();
        let mut out = SecretBytes::new(Vec::with_capacity(32 + text.len()));
        out.expose_mut().extend_from_slice(auth.expose());
        out.expose_mut().extend_from_slice(text);
        out
    }

    /// Reads the bytes a slot's KEK opened: the authenticator key and the
    /// identity; `None` when they are not that.
    pub(crate) fn from_sealed_form(bytes: &[u8]) -> Option<(SecretKey, SlotIdentity)> {
        let auth = SecretKey::from_slice(bytes.get(..32)?)?;
        let text = std::str::from_utf8(&bytes[32..]).ok()?;
        let identity = age::x25519::Identity::from_str(text)
            .ok()
            .map(SlotIdentity)?;
        Some((auth, identity))
    }

    /// Opens a slot's `kwk` member (base64 of an age file) into the KWK;
    /// `None` when it is not encrypted to this identity.
    pub(crate) fn open_kwk(&self, path: &Path, slot: u32, b64: &str) -> Result<Option<SecretKey>> {
        let file = B64.decode(b64).map_err(|_| {
            Error::corrupt(
                path,
                format!("slot {slot}'s wrapped key is not valid base64"),
            )
        })?;
        match age::decrypt(&self.0, &file) {
            Ok(plain) => {
                let plain = Zeroizing::new(plain);
                SecretKey::from_slice(&plain).map(Some).ok_or_else(|| {
                    Error::corrupt(
                        path,
                        format!("slot {slot} holds a wrapping key of the wrong length"),
                    )
                })
            }
            Err(age::DecryptError::NoMatchingKeys) => Ok(None),
            Err(e) => Err(Error::corrupt(
                path,
                format!("slot {slot}'s wrapped key is not a valid age file ({e})"),
            )),
        }
    }
}

/// Encrypts the KWK to a slot's public key: base64 of a binary age file.
pub(crate) fn wrap_kwk_to(path: &Path, slot: u32, public: &str, kwk: &SecretKey) -> Result<String> {
    let recipient = age::x25519::Recipient::from_str(public).map_err(|_| {
        Error::corrupt(
            path,
            format!("slot {slot}'s public key is not an age X25519 recipient"),
        )
    })?;
    let file = age::encrypt(&recipient, kwk.expose()).map_err(|e| {
        Error::corrupt(
            path,
            format!("encrypting to slot {slot}'s public key failed ({e})"),
        )
    })?;
    Ok(B64.encode(file))
}
