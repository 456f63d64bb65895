//! Extended attributes: names and values encrypted, bound to the object
//! (file or directory) they belong to.
//!
//! A plaintext attribute `user.NAME` of an object with 128-bit ID `OID` (a
//! file's header file ID, or a directory's ID) is stored as the host user
//! attribute `user.pv.` + base64url(AES-SIV-256(k_names, AD = [kind || OID],
//! plaintext name)). Names are deterministic so a get by name is one host
//! call. Values are sealed with the vault's AEAD suite under `k_values`,
//! AAD = `PVXA` || kind || OID || plaintext name, and stored as
//! `0x01 || suite id || nonce || ciphertext || tag`. Moving an attribute to
//! another object, or a value to another name, fails authentication.

use crate::kdf::{self, label};
use crate::{Aead, Error, Result, Suite, VaultCipher};
use aes_siv::siv::Aes256Siv;
use aes_siv::KeyInit;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use zeroize::Zeroizing;

/// Prefix of every host attribute pivault writes.
pub const XATTR_HOST_PREFIX: &str = "user.pv.";
/// Longest host attribute name Linux accepts.
const HOST_NAME_MAX: usize = 255;
/// Longest plaintext attribute name that fits: base64 of (16 + n) bytes
/// must fit in 255 - 8 characters, so 185 ciphertext bytes.
pub const XATTR_MAX_NAME: usize = 169;
const VALUE_VERSION: u8 = 1;

/// What kind of object an attribute hangs off (keeps file and directory
/// IDs in separate domains).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum XattrObject<'a> {
    /// A regular file, by its header's file ID.
    File(&'a [u8; 16]),
    /// A directory, by its directory ID.
    Dir(&'a [u8; 16]),
}

impl XattrObject<'_> {
    fn ad(&self) -> [u8; 17] {
        let (kind, id) = match self {
            XattrObject::File(id) => (b'F', id),
            XattrObject::Dir(id) => (b'D', id),
        };
        let mut out = [0u8; 17];
        out[0] = kind;
        out[1..].copy_from_slice(&id[..]);
        out
    }
}

/// Seals and opens extended attribute names and values of one vault.
pub struct XattrCipher {
    names: Zeroizing<[u8; 64]>,
    values: Aead,
    suite: Suite,
}

impl std::fmt::Debug for XattrCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("XattrCipher").finish_non_exhaustive()
    }
}

impl XattrCipher {
    pub(crate) fn new(cipher: &VaultCipher) -> Result<XattrCipher> {
        let keyring = cipher.keyring();
        let tree = keyring.tree_secret();
        let mut names = Zeroizing::new([0u8; 64]);
        kdf::derive(tree.expose(), label::XATTR_NAMES, b"", names.as_mut())?;
        let vk = kdf::derive_key(tree, label::XATTR_VALUES, b"")?;
        Ok(XattrCipher {
            names,
            values: Aead::new(cipher.suite(), &vk)?,
            suite: cipher.suite(),
        })
    }

    fn siv(&self) -> Aes256Siv {
        Aes256Siv::new(self.names.as_ref().into())
    }

    /// The host attribute name for plaintext `name` on `obj`.
    pub fn host_name(&self, obj: XattrObject<'_>, name: &[u8]) -> Result<String> {
        if name.is_empty() || name.contains(&0) {
            return Err(Error::InvalidName("attribute name is empty or has NUL"));
        }
        if name.len() > XATTR_MAX_NAME {
            return Err(Error::Range("attribute name longer than 169 bytes"));
        }
        let ct = self
            .siv()
            .encrypt([&obj.ad()[..]], name)
            .map_err(|_| Error::Crypto("AES-SIV encrypt"))?;
        let out = format!("{XATTR_HOST_PREFIX}{}", B64.encode(ct));
        debug_assert!(out.len() <= HOST_NAME_MAX);
        Ok(out)
    }

    /// The plaintext name of host attribute `host` on `obj`; `Ok(None)` when
    /// the attribute is not one of pivault's, an error when it is but does
    /// not decrypt for this object (moved or edited).
    pub fn plain_name(&self, obj: XattrObject<'_>, host: &[u8]) -> Result<Option<Vec<u8>>> {
        let Some(enc) = host.strip_prefix(XATTR_HOST_PREFIX.as_bytes()) else {
            return Ok(None);
        };
        let ct = B64
            .decode(enc)
            .map_err(|_| Error::NameEncoding("attribute name is not base64url"))?;
        self.siv()
            .decrypt([&obj.ad()[..]], &ct)
            .map(Some)
            .map_err(|_| Error::Name)
    }

    fn aad(obj: XattrObject<'_>, name: &[u8]) -> Vec<u8> {
        let mut aad = Vec::with_capacity(21 + name.len());
        aad.extend_from_slice(b"PVXA");
        aad.extend_from_slice(&obj.ad());
        aad.extend_from_slice(name);
        aad
    }

    /// Seals `value` of attribute `name` on `obj`.
    pub fn seal_value(&self, obj: XattrObject<'_>, name: &[u8], value: &[u8]) -> Result<Vec<u8>> {
        let mut out = vec![VALUE_VERSION, self.suite.id()];
        out.extend_from_slice(&self.values.seal(&Self::aad(obj, name), value)?);
        Ok(out)
    }

    /// Opens a value sealed by [`XattrCipher::seal_value`].
    pub fn open_value(&self, obj: XattrObject<'_>, name: &[u8], sealed: &[u8]) -> Result<Vec<u8>> {
        match sealed {
            [VALUE_VERSION, sid, msg @ ..] if *sid == self.suite.id() => self
                .values
                .open(&Self::aad(obj, name), msg)
                .ok_or(Error::Crypto("attribute value failed authentication")),
            _ => Err(Error::Header(
                "attribute value has an unknown version or suite",
            )),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Keyring;

    #[test]
    fn names_and_values_round_trip_and_are_bound() {
        let v = VaultCipher::new(Keyring::generate().unwrap(), Suite::Aes256Gcm);
        let x = v.xattr_cipher().unwrap();
        let a = XattrObject::File(&[1; 16]);
        let b = XattrObject::Dir(&[1; 16]);
        let h = x.host_name(a, b"user.color").unwrap();
        assert!(h.starts_with(XATTR_HOST_PREFIX) && h.len() <= 255);
        assert_eq!(h, x.host_name(a, b"user.color").unwrap());
        assert_eq!(
            x.plain_name(a, h.as_bytes()).unwrap().unwrap(),
            b"user.color"
        );
        assert!(x.plain_name(b, h.as_bytes()).is_err());
        assert_eq!(x.plain_name(a, b"user.other").unwrap(), None);
        let s = x.seal_value(a, b"user.color", b"red").unwrap();
        assert_eq!(x.open_value(a, b"user.color", &s).unwrap(), b"red");
        assert!(x.open_value(a, b"user.size", &s).is_err());
        assert!(x.open_value(b, b"user.color", &s).is_err());
        let long = vec![b'n'; XATTR_MAX_NAME];
        assert!(x.host_name(a, &long).unwrap().len() <= 255);
        assert!(x.host_name(a, &[b'n'; XATTR_MAX_NAME + 1]).is_err());
    }
}
