//! vault-core: the constant-time crypto core of pivault.
//!
//! It holds the secret types, the two AEAD suites, HKDF key derivation, the
//! keyring and the on-disk formats of file contents, names and directory IDs
//! (normative description: `docs/FORMAT.md`). It is I/O-free: contents are
//! read and written through the [`CipherStore`] trait, so the same code runs
//! over a `Vec<u8>` in tests and over a file in `vault-fuse`.
//!
//! ```
//! use vault_core::{Keyring, Suite, VaultCipher, ContentFile, NameContext};
//!
//! let cipher = VaultCipher::new(Keyring::generate().unwrap(), Suite::Aes256Gcm);
//! let root = [7u8; 16];
//! let at = NameContext::new(&root, b"payroll.csv");
//! let mut file = ContentFile::create(Vec::new(), &cipher, at).unwrap();
//! file.write_at(0, b"Jane Doe,123-45-6789").unwrap();
//! let store = file.into_store();
//! let file = ContentFile::open(store, &cipher, at).unwrap();
//! let mut buf = [0u8; 8];
//! assert_eq!(file.read_at(0, &mut buf).unwrap(), 8);
//! assert_eq!(&buf, b"Jane Doe");
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod content;
mod error;
mod kdf;
mod keyring;
mod names;
pub mod random;
mod secret;
mod store;
mod suite;
mod xattr;

pub use content::{
    block_aad_for, ContentFile, Geometry, Header, InterruptedGrow, BINDING_SLOTS, BLOCK_SIZE,
    HEADER_CORE_LEN, HEADER_LEN,
};
pub use error::{Error, Result};
pub use kdf::derive;
pub use keyring::{Keyring, VaultCipher};
pub use names::{
    long_entry_for, DirId, DirIdFile, EncodedName, NameCipher, NameContext, DIRID_FILE, DIRID_LEN,
    LONG_NAME_PREFIX, LONG_NAME_SUFFIX, MAX_SHORT_NAME, ROOT_PARENT,
};
pub use secret::{SecretBytes, SecretKey};
pub use store::CipherStore;
pub use suite::{Aead, Suite};
pub use xattr::{XattrCipher, XattrObject, XATTR_HOST_PREFIX, XATTR_MAX_NAME};
