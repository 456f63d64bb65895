//! TLS private keys sealed in a vault (`pivault cert import`, and
//! `key = "sealed:VAULT_DIR:NAME"` in the gateway's config).
//!
//! They live in one file beside the keystore, `VAULT/pivault.tls-keys`
//! (JSON: `{"version":1,"keys":{NAME: base64(nonce || ciphertext || tag)}}`),
//! each PEM sealed with AES-256-GCM under
//! `HKDF-SHA256(keyring master, "pivault v1 sealed tls key", NAME)`, a fresh
//! random 96-bit nonce per seal, and `"pivault tls key v1" || 0x00 || NAME`
//! as associated data, so a blob moved to another name or vault does not
//! open. docs/FORMAT.md ("Sealed TLS keys") is the normative description.

use crate::{write_atomic, Error, Keyring, Result};
use base64::Engine as _;
use ring::aead::{Aad, LessSafeKey, Nonce, UnboundKey, AES_256_GCM};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use zeroize::Zeroizing;

/// The file in the vault root that holds sealed TLS keys.
pub const TLS_KEYS_FILE: &str = "pivault.tls-keys";
const LABEL: &str = "pivault v1 sealed tls key";
const AAD_PREFIX: &[u8] = b"pivault tls key v1\0";

#[derive(serde::Serialize, serde::Deserialize, Default)]
struct File {
    version: u32,
    keys: BTreeMap<String, String>,
}

fn path(vault: &Path) -> PathBuf {
    vault.join(TLS_KEYS_FILE)
}

fn bad(vault: &Path, reason: impl Into<String>) -> Error {
    Error::Io {
        path: path(vault),
        source: std::io::Error::new(std::io::ErrorKind::InvalidData, reason.into()),
    }
}

/// A name is 1 to 64 of `A-Z a-z 0-9 . _ -`, not starting with a dot.
pub fn valid_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && !name.starts_with('.')
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

fn load(vault: &Path) -> Result<File> {
    match crate::read_regular(&path(vault)) {
        Ok(b) => {
            let f: File = serde_json::from_slice(&b)
                .map_err(|e| bad(vault, format!("not a sealed-keys file: {e}")))?;
            if f.version != 1 {
                return Err(bad(
                    vault,
                    format!(
                        "version {} is not supported (this pivault reads 1)",
                        f.version
                    ),
                ));
            }
            Ok(f)
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(File {
            version: 1,
            keys: BTreeMap::new(),
        }),
        Err(e) => Err(Error::io(path(vault), e)),
    }
}

fn aead_key(keyring: &Keyring, name: &str) -> Result<LessSafeKey> {
    let mut k = Zeroizing::new([0u8; 32]);
    vault_core::derive(
        keyring.tree_secret().expose(),
        LABEL,
        name.as_bytes(),
        k.as_mut(),
    )?;
    let unbound = UnboundKey::new(&AES_256_GCM, k.as_ref())
        .map_err(|_| Error::Core(vault_core::Error::Crypto("AES-256-GCM key")))?;
    Ok(LessSafeKey::new(unbound))
}

fn aad(name: &str) -> Vec<u8> {
    [AAD_PREFIX, name.as_bytes()].concat()
}

/// Seals `pem` under `name` (replacing a key of that name) and writes the
/// file atomically (mode 0600).
pub fn seal(vault: &Path, keyring: &Keyring, name: &str, pem: &[u8]) -> Result<PathBuf> {
    if !valid_name(name) {
        return Err(bad(
            vault,
            format!("`{name}` is not a valid key name (1-64 of A-Z a-z 0-9 . _ -)"),
        ));
    }
    let mut f = load(vault)?;
    let key = aead_key(keyring, name)?;
    let nonce = vault_core::random::array::<12>()?;
    let mut buf = pem.to_vec();
    key.seal_in_place_append_tag(
        Nonce::assume_unique_for_key(nonce),
        Aad::from(aad(name)),
        &mut buf,
    )
    .map_err(|_| Error::Core(vault_core::Error::Crypto("seal")))?;
    let mut blob = nonce.to_vec();
    blob.extend_from_slice(&buf);
    f.keys.insert(
        name.to_string(),
        base64::engine::general_purpose::STANDARD.encode(blob),
    );
    let json = serde_json::to_vec_pretty(&f).expect("serialisable");
    write_atomic(&path(vault), &json, 0o600)?;
    Ok(path(vault))
}

/// Opens the key stored as `name`.
pub fn open(vault: &Path, keyring: &Keyring, name: &str) -> Result<Zeroizing<Vec<u8>>> {
    let f = load(vault)?;
    let b64 = f.keys.get(name).ok_or_else(|| {
        bad(
            vault,
            format!(
                "no sealed key named `{name}` (stored: {})",
                f.keys.keys().cloned().collect::<Vec<_>>().join(", ")
            ),
        )
    })?;
    let blob = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| bad(vault, format!("key `{name}` is not base64")))?;
    if blob.len() < 12 + 16 {
        return Err(bad(vault, format!("key `{name}` is truncated")));
    }
    let nonce: [u8; 12] = blob[..12].try_into().expect("length checked");
    let mut buf = Zeroizing::new(blob[12..].to_vec());
    let key = aead_key(keyring, name)?;
    let n = key
        .open_in_place(
            Nonce::assume_unique_for_key(nonce),
            Aad::from(aad(name)),
            buf.as_mut_slice(),
        )
        .map_err(|_| {
            bad(
                vault,
                format!("key `{name}` does not open: damaged, or sealed by another vault"),
            )
        })?
        .len();
    buf.truncate(n);
    Ok(buf)
}

/// Re-seals every stored key from `old`'s tree secret to `new`'s (a move
/// of the tree, `Keystore::finish_tree_move`), one atomic write per key; a key
/// that already opens under `new` (a resumed move) is kept. Returns how
/// many were re-sealed.
pub fn reseal_all(vault: &Path, old: &Keyring, new: &Keyring) -> Result<usize> {
    let names = list(vault)?;
    let mut moved = 0;
    let mut plain = Vec::new();
    for name in &names {
        if open(vault, new, name).is_ok() {
            continue;
        }
        plain.push((name.clone(), open(vault, old, name)?));
    }
    for (name, pem) in &plain {
        seal(vault, new, name, pem)?;
        moved += 1;
    }
    Ok(moved)
}

/// The names of the sealed keys (no secret needed).
pub fn list(vault: &Path) -> Result<Vec<String>> {
    Ok(load(vault)?.keys.into_keys().collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_open_and_tamper() {
        let d = tempfile::tempdir().unwrap();
        let kr = Keyring::generate().unwrap();
        seal(d.path(), &kr, "gw", b"-----BEGIN PRIVATE KEY-----\nabc\n").unwrap();
        seal(d.path(), &kr, "other", b"two").unwrap();
        assert_eq!(
            &open(d.path(), &kr, "gw").unwrap()[..],
            b"-----BEGIN PRIVATE KEY-----\nabc\n"
        );
        assert_eq!(
            list(d.path()).unwrap(),
            vec!["gw".to_string(), "other".to_string()]
        );
        let other = Keyring::generate().unwrap();
        assert!(
            open(d.path(), &other, "gw").is_err(),
            "another vault's keyring opened it"
        );
        // A blob moved to another name does not open.
        let p = d.path().join(TLS_KEYS_FILE);
        let mut f: File = serde_json::from_slice(&std::fs::read(&p).unwrap()).unwrap();
        let gw = f.keys["gw"].clone();
        f.keys.insert("other".into(), gw);
        std::fs::write(&p, serde_json::to_vec(&f).unwrap()).unwrap();
        assert!(open(d.path(), &kr, "other")
            .unwrap_err()
            .to_string()
            .contains("does not open"));
        assert!(!valid_name("../x") && !valid_name("") && valid_name("gw.example-1"));
    }
}
