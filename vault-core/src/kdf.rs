//! HKDF-SHA256 (ring): every key pivault uses is derived from a keyring
//! secret under a distinct label, so no key serves two purposes.

use crate::{Error, Result, SecretKey};
use ring::hkdf;

/// Salt of the extract step, fixed: the input keys are uniformly random, so
/// the salt only separates pivault's derivations from any other use.
const SALT: &[u8] = b"pivault-hkdf-v1";

struct Len(usize);
impl hkdf::KeyType for Len {
    fn len(&self) -> usize {
        self.0
    }
}

/// Derives `out.len()` bytes from `ikm` for `label` and `context`
/// (HKDF-SHA256, info = `label || 0x00 || context`).
pub fn derive(ikm: &[u8], label: &str, context: &[u8], out: &mut [u8]) -> Result<()> {
    let prk = hkdf::Salt::new(hkdf::HKDF_SHA256, SALT).extract(ikm);
    let info = [label.as_bytes(), &[0u8], context];
    prk.expand(&info, Len(out.len()))
        .and_then(|okm| okm.fill(out))
        .map_err(|_| Error::Crypto("HKDF output length"))
}

/// Derives a 256-bit key.
pub(crate) fn derive_key(ikm: &SecretKey, label: &str, context: &[u8]) -> Result<SecretKey> {
    let mut out = zeroize::Zeroizing::new([0u8; 32]);
    derive(ikm.expose(), label, context, out.as_mut())?;
    Ok(SecretKey::from_bytes(*out))
}

/// The labels, one per purpose (FORMAT.md lists them).
pub(crate) mod label {
    pub const CONTENT: &str = "pivault v1 file content";
    pub const NAMES: &str = "pivault v1 names";
    pub const BINDING: &str = "pivault v1 bindings";
    pub const SYMLINK: &str = "pivault v1 symlink targets";
    pub const XATTR_NAMES: &str = "pivault v1 xattr names";
    pub const XATTR_VALUES: &str = "pivault v1 xattr values";
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_and_contexts_separate_keys() {
        let k = SecretKey::from_bytes([3; 32]);
        let a = derive_key(&k, label::CONTENT, b"x").unwrap();
        let b = derive_key(&k, label::NAMES, b"x").unwrap();
        let c = derive_key(&k, label::CONTENT, b"y").unwrap();
        assert_ne!(a, b);
        assert_ne!(a, c);
        assert_eq!(a, derive_key(&k, label::CONTENT, b"x").unwrap());
    }
}
