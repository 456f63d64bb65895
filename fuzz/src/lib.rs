//! Fixtures shared by the fuzz targets and the seed maker: a fixed
//! keyring (so a fuzzed ciphertext can be opened, and any plaintext it
//! opens to checked), the plaintext every seed content file holds, and the
//! keystore example of docs/FORMAT.md §13.9 with its passphrase and
//! keyring.

use std::collections::BTreeMap;
use vault_core::{Keyring, SecretKey, Suite, VaultCipher};

/// The passphrase of the FORMAT.md format-3 example keystore.
pub const PASS: &str = "correct horse battery staple";
/// The keyring that example holds (hex).
pub const KEYRING3_HEX: &str = "50564b52010100209b59e4bb8c55ae02f72b6ac11236815558db692fc4ea31fdd7f69da3c99562c2020024000000010178a0ab1c32894a09159f4008316279856b21d9b3e5f8f5e3db474f171e7f8603002026a1b00463bcb6a49effe3b9a94a0ca1357101dfbc2793a81964135d228ef8d1040020d916e004a9aba9a98e7cf093b7354a505976df5e792f8479a6894c6c5f70d9f8";

/// The keyring of the FORMAT.md format-1 example (same passphrase).
pub const KEYRING1_HEX: &str = "50564b5201010020000102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f02002400000001202122232425262728292a2b2c2d2e2f303132333435363738393a3b3c3d3e3f";

/// The directory ID and name every seed is bound to.
pub const DIR_ID: [u8; 16] = [0x33; 16];
/// See [`DIR_ID`].
pub const NAME: &[u8] = b"fuzzed.txt";
/// The target of the seed symlink, the only one ever sealed.
pub const LINK_TARGET: &[u8] = b"../reports/2026/q4.xlsx";
/// The extended attribute of the seeds, and its only value.
pub const XATTR_NAME: &[u8] = b"user.classification";
/// See [`XATTR_NAME`].
pub const XATTR_VALUE: &[u8] = b"confidential-PI";
/// The file ID of the seed files' attributes.
pub const FILE_ID: [u8; 16] = [0x44; 16];

/// A keyring fixed for the fuzz run: master 0x11.., data key 1 0x22...
pub fn keyring() -> Keyring {
    let mut data = BTreeMap::new();
    data.insert(1, SecretKey::from_bytes([0x22; 32]));
    Keyring::from_parts(SecretKey::from_bytes([0x11; 32]), data).expect("a valid keyring")
}

/// The fixed keyring's cipher for `suite` (even: AES-256-GCM, odd:
/// XChaCha20-Poly1305).
pub fn cipher(suite: u8) -> VaultCipher {
    let suite = if suite % 2 == 0 {
        Suite::Aes256Gcm
    } else {
        Suite::XChaCha20Poly1305
    };
    VaultCipher::new(keyring(), suite)
}

/// Byte `offset` of every seed content file's plaintext (and so of any
/// plaintext a fuzzed ciphertext may open to).
pub fn pattern(offset: u64) -> u8 {
    (offset % 251) as u8
}
