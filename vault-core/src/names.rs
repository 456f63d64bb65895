//! Name format: deterministic authenticated encryption (AES-SIV) of each
//! entry name, bound to its parent directory's ID, encoded base64url; the
//! long-name scheme for names whose encoding exceeds the host's 255-byte
//! limit; and the directory ID file that every ciphertext directory holds.
//!
//! Lookup stays cheap: encrypting a name is deterministic, so the
//! ciphertext entry for a plaintext name is computed, never searched for.

use crate::keyring::VaultCipher;
use crate::{random, Error, Result};
use aes_siv::siv::Aes256Siv;
use aes_siv::KeyInit;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine as _;
use subtle::ConstantTimeEq;
use zeroize::Zeroizing;

/// A directory's random 128-bit ID.
pub type DirId = [u8; 16];

/// Name of the directory ID file inside every ciphertext directory.
pub const DIRID_FILE: &str = "pivault.dirid";
/// Prefix of a long-name entry (`pivault.long.<hash>`).
pub const LONG_NAME_PREFIX: &str = "pivault.long.";
/// Suffix of a long-name entry's side file, which holds the full encrypted name.
pub const LONG_NAME_SUFFIX: &str = ".name";
/// Longest encoded name stored as the entry's own host name.
pub const MAX_SHORT_NAME: usize = 255;
/// Longest plaintext name (Linux NAME_MAX).
pub const MAX_NAME: usize = 255;

const SIV_TAG: usize = 16;

/// An entry's identity for binding: the parent directory's ID and the
/// plaintext name. Contents and directory ID files carry a tag over it, so a
/// ciphertext moved or swapped to another name is detected.
#[derive(Clone, Copy, Debug)]
pub struct NameContext<'a> {
    /// Parent directory ID.
    pub dir_id: &'a DirId,
    /// Plaintext name within the parent.
    pub name: &'a [u8],
}

impl<'a> NameContext<'a> {
    /// An entry `name` in directory `dir_id`.
    pub fn new(dir_id: &'a DirId, name: &'a [u8]) -> Self {
        NameContext { dir_id, name }
    }
}

/// How an encrypted name appears on the host.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EncodedName {
    /// The encoded name is the host entry name.
    Short(String),
    /// The host entry is `pivault.long.<hash>`; `full` goes in its side file
    /// `pivault.long.<hash>.name`.
    Long {
        /// Host entry name.
        entry: String,
        /// The full base64url encrypted name.
        full: String,
    },
}

impl EncodedName {
    /// The host entry name.
    pub fn entry(&self) -> &str {
        match self {
            EncodedName::Short(s) => s,
            EncodedName::Long { entry, .. } => entry,
        }
    }

    /// The side file's name, for long names.
    pub fn side_file(&self) -> Option<String> {
        match self {
            EncodedName::Short(_) => None,
            EncodedName::Long { entry, .. } => Some(format!("{entry}{LONG_NAME_SUFFIX}")),
        }
    }
}

/// The long-name entry for an encoded name: `pivault.long.` and the
/// base64url SHA-256 of the full encoded name.
pub fn long_entry_for(full: &str) -> String {
    let h = ring::digest::digest(&ring::digest::SHA256, full.as_bytes());
    format!("{LONG_NAME_PREFIX}{}", B64.encode(h.as_ref()))
}

/// AES-SIV-256 (RFC 5297) over names.
pub struct NameCipher {
    key: Zeroizing<[u8; 64]>,
}

impl NameCipher {
    pub(crate) fn new(key: &[u8; 64]) -> NameCipher {
        NameCipher {
            key: Zeroizing::new(*key),
        }
    }

    fn siv(&self) -> Aes256Siv {
        Aes256Siv::new(self.key.as_ref().into())
    }

    /// Checks a plaintext name is storable.
    pub fn validate(name: &[u8]) -> Result<()> {
        if name.is_empty() {
            return Err(Error::InvalidName("empty"));
        }
        if name == b"." || name == b".." {
            return Err(Error::InvalidName("'.' and '..' are not entries"));
        }
        if name.contains(&b'/') || name.contains(&0) {
            return Err(Error::InvalidName("contains '/' or NUL"));
        }
        if name.len() > MAX_NAME {
            return Err(Error::NameTooLong(name.len()));
        }
        Ok(())
    }

    /// Encrypts `name` for directory `dir_id`.
    pub fn encrypt(&self, dir_id: &DirId, name: &[u8]) -> Result<EncodedName> {
        Self::validate(name)?;
        let ct = self
            .siv()
            .encrypt([&dir_id[..]], name)
            .map_err(|_| Error::Crypto("AES-SIV encrypt"))?;
        let full = B64.encode(ct);
        Ok(if full.len() <= MAX_SHORT_NAME {
            EncodedName::Short(full)
        } else {
            EncodedName::Long {
                entry: long_entry_for(&full),
                full,
            }
        })
    }

    /// Decrypts a full encoded name found in directory `dir_id`.
    pub fn decrypt(&self, dir_id: &DirId, encoded: &str) -> Result<Vec<u8>> {
        let ct = B64
            .decode(encoded)
            .map_err(|_| Error::NameEncoding("not base64url"))?;
        if ct.len() <= SIV_TAG {
            return Err(Error::NameEncoding("too short"));
        }
        let name = self
            .siv()
            .decrypt([&dir_id[..]], &ct)
            .map_err(|_| Error::Name)?;
        Self::validate(&name).map_err(|_| Error::Name)?;
        Ok(name)
    }

    /// True when a host entry name could be an encrypted short name (as
    /// opposed to pivault's own files or foreign files).
    pub fn is_encoded_entry(entry: &str) -> bool {
        !entry.is_empty()
            && entry.len() <= MAX_SHORT_NAME
            && entry
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    }
}

/// The directory ID file (`pivault.dirid`, 40 bytes): magic `PVDI`,
/// version 1, three zero bytes, the directory ID, and a binding tag over the
/// ID, the parent's ID and the directory's plaintext name.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct DirIdFile {
    /// The directory's ID.
    pub id: DirId,
    binding: [u8; 16],
}

const DIRID_MAGIC: &[u8; 4] = b"PVDI";
const DIRID_VERSION: u8 = 1;
/// Length of a directory ID file.
pub const DIRID_LEN: usize = 40;
/// The parent ID used for the vault's root directory.
pub const ROOT_PARENT: DirId = [0u8; 16];

impl DirIdFile {
    /// A new random directory ID, bound to `at` (for the root: parent
    /// [`ROOT_PARENT`] and the empty name).
    pub fn generate(cipher: &VaultCipher, at: NameContext<'_>) -> Result<DirIdFile> {
        let id = random::array::<16>()?;
        Ok(Self::with_id(cipher, id, at))
    }

    /// A directory ID file for a known ID bound to `at` (used when a
    /// directory is renamed: its ID stays, its binding changes).
    pub fn with_id(cipher: &VaultCipher, id: DirId, at: NameContext<'_>) -> DirIdFile {
        let binding = cipher.binding_tag(b"pivault dir v1", &[&id, at.dir_id, at.name]);
        DirIdFile { id, binding }
    }

    /// Serializes the file.
    pub fn to_bytes(&self) -> [u8; DIRID_LEN] {
        let mut out = [0u8; DIRID_LEN];
        out[..4].copy_from_slice(DIRID_MAGIC);
        out[4] = DIRID_VERSION;
        out[8..24].copy_from_slice(&self.id);
        out[24..40].copy_from_slice(&self.binding);
        out
    }

    /// Parses and checks the file found for the directory reached by `at`.
    pub fn open(cipher: &VaultCipher, bytes: &[u8], at: NameContext<'_>) -> Result<DirIdFile> {
        if bytes.len() != DIRID_LEN {
            return Err(Error::DirId("wrong length"));
        }
        if &bytes[..4] != DIRID_MAGIC {
            return Err(Error::DirId("bad magic"));
        }
        if bytes[4] != DIRID_VERSION || bytes[5..8] != [0, 0, 0] {
            return Err(Error::DirId("unsupported version"));
        }
        let mut id = [0u8; 16];
        id.copy_from_slice(&bytes[8..24]);
        let want = Self::with_id(cipher, id, at);
        if !bool::from(want.binding.ct_eq(&bytes[24..40])) {
            return Err(Error::DirId(
                "it does not belong to this directory (replaced, or the directory was moved)",
            ));
        }
        Ok(want)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Keyring, Suite};

    fn cipher() -> VaultCipher {
        VaultCipher::new(Keyring::generate().unwrap(), Suite::Aes256Gcm)
    }

    #[test]
    fn names_round_trip_and_are_deterministic() {
        let c = cipher();
        let d = [9u8; 16];
        let a = c.names().encrypt(&d, b"payroll.csv").unwrap();
        assert_eq!(a, c.names().encrypt(&d, b"payroll.csv").unwrap());
        let EncodedName::Short(s) = &a else {
            panic!("short")
        };
        assert!(NameCipher::is_encoded_entry(s));
        assert_eq!(c.names().decrypt(&d, s).unwrap(), b"payroll.csv");
    }

    #[test]
    fn name_moved_to_another_directory_fails() {
        let c = cipher();
        let s = c.names().encrypt(&[1; 16], b"ssn.txt").unwrap();
        assert!(matches!(
            c.names().decrypt(&[2; 16], s.entry()),
            Err(Error::Name)
        ));
    }

    #[test]
    fn long_names_at_exactly_255_bytes() {
        let c = cipher();
        let d = [4u8; 16];
        let name = vec![b'x'; 255];
        let e = c.names().encrypt(&d, &name).unwrap();
        let EncodedName::Long { entry, full } = &e else {
            panic!("long")
        };
        assert!(entry.len() <= 255 && e.side_file().unwrap().len() <= 255);
        assert_eq!(entry, &long_entry_for(full));
        assert_eq!(c.names().decrypt(&d, full).unwrap(), name);
        assert!(c.names().encrypt(&d, &[b'x'; 256]).is_err());
    }

    #[test]
    fn short_long_threshold() {
        let c = cipher();
        // 16-byte SIV tag + n bytes, base64: 4*ceil((16+n)/3) minus padding.
        let short = c.names().encrypt(&[0; 16], &[b'a'; 175]).unwrap();
        assert!(matches!(short, EncodedName::Short(ref s) if s.len() == 255));
        let long = c.names().encrypt(&[0; 16], &[b'a'; 176]).unwrap();
        assert!(matches!(long, EncodedName::Long { .. }));
    }

    #[test]
    fn dirid_file_detects_replacement() {
        let c = cipher();
        let root = DirIdFile::generate(&c, NameContext::new(&ROOT_PARENT, b"")).unwrap();
        let sub = DirIdFile::generate(&c, NameContext::new(&root.id, b"hr")).unwrap();
        let other = DirIdFile::generate(&c, NameContext::new(&root.id, b"it")).unwrap();
        let at = NameContext::new(&root.id, b"hr");
        assert_eq!(DirIdFile::open(&c, &sub.to_bytes(), at).unwrap().id, sub.id);
        assert!(matches!(
            DirIdFile::open(&c, &other.to_bytes(), at),
            Err(Error::DirId(_))
        ));
        let mut bad = sub.to_bytes();
        bad[10] ^= 1;
        assert!(DirIdFile::open(&c, &bad, at).is_err());
    }
}
