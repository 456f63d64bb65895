//! The keystore file of docs/FORMAT.md ("Keystore file"), checked against
//! the code with an independent reader: the framing, the checksum line, the
//! JSON fields, the slot wrapping (Argon2id, then the vault suite's AEAD
//! from RustCrypto with the documented AAD), the keyring TLV inside, and the
//! MAC over the documented compact serialization. The document's example
//! keystore must be exactly what the documented construction gives, and
//! must unseal with `keys`.
//!
//! `cargo test -p pivault-keys --test keystore_format -- --ignored --nocapture`
//! prints the example as FORMAT.md carries it.

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use keys::{Error, KdfParams, Keystore, Passphrase};
use ring::{digest, hmac};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use vault_core::{Keyring, Suite};

mod reader;
use reader::*;

const DOC: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/FORMAT.md");
const PASS: &str = "correct horse battery staple";

// ---------------------------------------------------------------------------
// The body as FORMAT.md lists it, fields in the documented order. Serialized
// compactly (mac omitted) it is the MAC input; pretty, the file's body.

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
struct DocBody {
    vault_id: String,
    suite: String,
    created: u64,
    data_key_versions: Vec<u32>,
    next_slot: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    keyring: Option<String>,
    slots: Vec<DocSlot>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    audit: Option<DocAudit>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    stale_auth: Vec<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mac: Option<String>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
struct DocAudit {
    key: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    seq: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    hash: Option<String>,
    /// Format 3: keys a rotation replaced, with their last record.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    previous: Vec<DocPreviousKey>,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
struct DocPreviousKey {
    key: String,
    last_seq: u64,
}

#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
struct DocSlot {
    id: u32,
    kind: String,
    created: u64,
    kdf: DocKdf,
    salt: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wraps: Option<String>,
    /// Accepted below the passphrase strength rule (absent: false).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    weak: bool,
    /// Format 3: the slot's age X25519 recipient.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    public: Option<String>,
    /// Format 3: base64 of an age file holding the KWK for `public`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    kwk: Option<String>,
    /// Format 3: the slot's authenticator.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    auth: Option<String>,
    wrapped: String,
}

#[derive(Serialize, Deserialize, Clone, Copy, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
struct DocKdf {
    m_kib: u32,
    t: u32,
    p: u32,
    test_only: bool,
}

/// Every top-level member in the documented order, optional ones included.
const TOP_ORDER: &[&str] = &[
    "vault_id",
    "suite",
    "created",
    "data_key_versions",
    "next_slot",
    "keyring",
    "slots",
    "audit",
    "stale_auth",
    "mac",
];
/// The members of a new keystore.
const TOP_FIELDS: &[&str] = &[
    "vault_id",
    "suite",
    "created",
    "data_key_versions",
    "next_slot",
    "keyring",
    "slots",
    "audit",
    "mac",
];
const SLOT_FIELDS: &[&str] = &[
    "id", "kind", "created", "kdf", "salt", "public", "kwk", "auth", "wrapped",
];
const KDF_FIELDS: &[&str] = &["m_kib", "t", "p", "test_only"];

// ---------------------------------------------------------------------------
// The construction, from FORMAT.md

fn argon2id(pass: &[u8], salt: &[u8], kdf: DocKdf) -> [u8; 32] {
    let params = argon2::Params::new(kdf.m_kib, kdf.t, kdf.p, Some(32)).unwrap();
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = [0u8; 32];
    a.hash_password_into(pass, salt, &mut out).unwrap();
    out
}

fn keyring_tlv(master: &[u8; 32], data: &[(u32, [u8; 32])]) -> Vec<u8> {
    let mut out = b"PVKR\x01\x01\x00\x20".to_vec();
    out.extend_from_slice(master);
    for (v, k) in data {
        out.extend_from_slice(&[0x02, 0x00, 0x24]);
        out.extend_from_slice(&v.to_be_bytes());
        out.extend_from_slice(k);
    }
    out
}

/// HMAC-SHA256 under the keyring's keystore MAC key over the compact JSON
/// of the body without `mac`, base64.
fn mac_of(keyring: &[u8], body: &DocBody) -> String {
    let mut b = body.clone();
    b.mac = None;
    let input = serde_json::to_string(&b).unwrap();
    assert!(!input.contains([' ', '\n']), "compact: {input}");
    let key = mac_key_of(keyring);
    B64.encode(hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, &key), input.as_bytes()).as_ref())
}

/// First line, pretty JSON body and newline, checksum line. A body with a
/// sealed keyring is format 2.
fn frame(body: &DocBody) -> Vec<u8> {
    let version = match (&body.keyring, body.slots.iter().any(|s| s.public.is_some())) {
        (None, _) => 1,
        (Some(_), false) => 2,
        (Some(_), true) => 3,
    };
    let mut out = format!("pivault-keystore {version}\n").into_bytes();
    out.extend_from_slice(serde_json::to_string_pretty(body).unwrap().as_bytes());
    out.push(b'\n');
    let sum = digest::digest(&digest::SHA256, &out);
    out.extend_from_slice(format!("sha256 {}\n", hex::encode(sum.as_ref())).as_bytes());
    out
}

// ---------------------------------------------------------------------------
// Reading a keystore file the documented way

struct Read {
    body: DocBody,
    raw: Value,
    json_text: String,
}

fn read_framing(bytes: &[u8]) -> Read {
    let text = std::str::from_utf8(bytes).expect("a keystore is UTF-8 text");
    let (first, rest) = text.split_once('\n').expect("first line");
    let version = match first {
        "pivault-keystore 1" => 1,
        "pivault-keystore 2" => 2,
        "pivault-keystore 3" => 3,
        other => panic!("first line {other:?}"),
    };
    assert!(text.ends_with('\n'));
    let without_nl = &text[..text.len() - 1];
    let cut = without_nl.rfind('\n').expect("a checksum line") + 1;
    let last = &without_nl[cut..];
    let hex_sum = last
        .strip_prefix("sha256 ")
        .expect("last line `sha256 <hex>`");
    assert_eq!(hex_sum.len(), 64);
    assert!(hex_sum
        .bytes()
        .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)));
    let sum = digest::digest(&digest::SHA256, &bytes[..cut]);
    assert_eq!(
        hex::encode(sum.as_ref()),
        hex_sum,
        "checksum over all preceding bytes"
    );
    let json_text = rest[..cut - first.len() - 1].to_string();
    let raw: Value = serde_json::from_str(&json_text).expect("JSON body");
    let body: DocBody = serde_json::from_value(raw.clone()).expect("documented fields only");
    assert_eq!(
        version >= 2,
        body.keyring.is_some(),
        "formats 2 and 3 have `keyring`"
    );
    for slot in &body.slots {
        let key_pair = slot.public.is_some() && slot.kwk.is_some();
        assert_eq!(
            version == 3 && slot.wraps.is_none(),
            key_pair,
            "format-3 slots, and only they, have `public` and `kwk`"
        );
    }
    Read {
        body,
        raw,
        json_text,
    }
}

fn object_keys(v: &Value) -> Vec<&str> {
    let mut k: Vec<&str> = v
        .as_object()
        .expect("object")
        .keys()
        .map(String::as_str)
        .collect();
    k.sort_unstable();
    k
}

fn sorted(fields: &[&'static str]) -> Vec<&'static str> {
    let mut f = fields.to_vec();
    f.sort_unstable();
    f
}

/// The top-level members appear in the documented order.
fn assert_top_level_order(json_text: &str) {
    let found: Vec<&str> = json_text
        .lines()
        .filter_map(|l| l.strip_prefix("  \""))
        .filter_map(|l| l.split_once('"').map(|(k, _)| k))
        .collect();
    // The documented order, `stale_auth` (present only after a removal)
    // between `audit` and `mac`.
    let expected: Vec<&str> = TOP_ORDER
        .iter()
        .copied()
        .filter(|k| found.contains(k))
        .collect();
    assert_eq!(found, expected, "top-level members in documented order");
    assert!(
        TOP_FIELDS
            .iter()
            .all(|k| *k == "keyring" || *k == "audit" || found.contains(k)),
        "{found:?}"
    );
}

/// Unwraps slot `slot` of `body` with `pass`, independently of `keys`,
/// and returns the keyring bytes (see `open_with_kek`).
fn unwrap_slot(body: &DocBody, slot: &DocSlot, pass: &[u8]) -> Option<Vec<u8>> {
    let kek = argon2id(pass, &b64(&slot.salt), slot.kdf);
    open_with_kek(
        &serde_json::to_value(body).unwrap(),
        &serde_json::to_value(slot).unwrap(),
        &kek,
    )
}

// ---------------------------------------------------------------------------
// A keystore written by `keys`

fn check_created(suite: Suite) {
    let dir = tempfile::tempdir().unwrap();
    let pass = Passphrase::new(PASS.as_bytes().to_vec());
    let before = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let (ks, keyring) =
        Keystore::create(dir.path(), suite, &pass, KdfParams::insecure_test()).unwrap();
    let path = dir.path().join("pivault.keystore");
    assert_eq!(ks.path(), path);
    let bytes = std::fs::read(&path).unwrap();
    let Read {
        body,
        raw,
        json_text,
    } = read_framing(&bytes);

    // Fields, exactly as documented.
    assert_eq!(object_keys(&raw), sorted(TOP_FIELDS));
    assert_top_level_order(&json_text);
    let vault_id: [u8; 16] = b64(&body.vault_id).try_into().expect("16-byte vault_id");
    assert_eq!(vault_id, ks.vault_id());
    assert_eq!(body.suite, suite.name());
    assert!(body.created >= before && body.created <= before + 60);
    assert_eq!(body.data_key_versions, vec![1]);
    assert_eq!(body.next_slot, 1);
    assert_eq!(body.slots.len(), 1);
    let slot_raw = &raw["slots"][0];
    assert_eq!(object_keys(slot_raw), sorted(SLOT_FIELDS));
    assert_eq!(object_keys(&slot_raw["kdf"]), sorted(KDF_FIELDS));
    let slot = &body.slots[0];
    assert_eq!(slot.id, 0);
    assert_eq!(slot.kind, "passphrase");
    assert!(slot.created >= before && slot.created <= before + 60);
    assert_eq!(
        slot.kdf,
        DocKdf {
            m_kib: 64,
            t: 1,
            p: 1,
            test_only: true
        }
    );
    assert_eq!(b64(&slot.salt).len(), 16);
    // The slot seals its authenticator key and its age identity (32 + 74
    // bytes); the body's `keyring` seals a keyring of one data key, the
    // audit key, the MAC key and the slot's authenticator key: 5 + 35 +
    // 39 + 35 + 35 + 39 bytes. Each plus nonce and tag.
    assert_eq!(
        b64(&slot.wrapped).len(),
        nonce_len(&body.suite) + 32 + 74 + 16
    );
    assert_eq!(
        b64(body.keyring.as_deref().unwrap()).len(),
        nonce_len(&body.suite) + 79 + 35 + 35 + 39 + 16
    );
    // The authenticator, recomputed from the documented canonical body
    // with the key the slot's KEK sealed.
    let mut canon = body.clone();
    canon.mac = None;
    for s in &mut canon.slots {
        s.auth = None;
    }
    let canon = serde_json::to_vec(&canon).unwrap();
    let key = slot_auth_key(
        &serde_json::to_value(&body).unwrap(),
        &serde_json::to_value(slot).unwrap(),
        &argon2id(PASS.as_bytes(), &b64(&slot.salt), slot.kdf),
    );
    assert_eq!(slot.auth, Some(slot_auth_tag(&key, slot.id, &canon)));
    assert!(slot.public.as_deref().unwrap().starts_with("age1"));
    assert!(slot.wraps.is_none());
    assert_eq!(b64(body.mac.as_deref().unwrap()).len(), 32);

    // Independent unwrap: Argon2id, then the suite's AEAD with the AAD.
    let plain = unwrap_slot(&body, slot, PASS.as_bytes()).expect("slot 0 opens independently");
    let (master, data, seed) = parse_keyring_all(&plain);
    assert_eq!(&master, keyring.master().expose());
    // The audit member: the Ed25519 public key of the keyring's seed, and
    // no anchor yet (the log is empty).
    let seed = seed.expect("a new keyring has an audit signing key");
    let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed).unwrap();
    let audit = body.audit.clone().expect("an audit member");
    assert_eq!(
        b64(&audit.key),
        ring::signature::KeyPair::public_key(&pair).as_ref()
    );
    assert_eq!((audit.seq, audit.hash), (None, None));
    assert_eq!(object_keys(&raw["audit"]), vec!["key"]);
    assert_eq!(data.len(), 1);
    assert_eq!(data[0].0, 1);
    assert_eq!(plain, keyring.to_bytes().expose());
    assert_eq!(
        Keyring::from_bytes(&plain).unwrap().master(),
        keyring.master()
    );
    // The AAD binds the slot id, its kind and the vault.
    let kek = argon2id(PASS.as_bytes(), &b64(&slot.salt), slot.kdf);
    let wrapped = b64(&slot.wrapped);
    assert!(aead_open(
        &body.suite,
        &kek,
        &slot_aad(3, &vault_id, 0, "passphrase"),
        &wrapped
    )
    .is_some());
    for aad in [
        slot_aad(3, &vault_id, 1, "passphrase"),
        slot_aad(3, &vault_id, 0, "recovery"),
        slot_aad(3, &[0; 16], 0, "passphrase"),
        slot_aad(2, &vault_id, 0, "passphrase"),
        slot_aad(1, &vault_id, 0, "passphrase"),
    ] {
        assert!(aead_open(&body.suite, &kek, &aad, &wrapped).is_none());
    }
    assert!(unwrap_slot(&body, slot, b"wrong").is_none());

    // The MAC, recomputed from the documented compact serialization.
    assert_eq!(body.mac, Some(mac_of(&plain, &body)));

    // The file is private, alone (no temp files left), and `create` never
    // replaces it.
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, vec!["pivault.keystore"]);
    let again = Keystore::create(dir.path(), suite, &pass, KdfParams::insecure_test());
    assert!(matches!(again, Err(Error::AlreadyInitialised(_))));
    assert_eq!(std::fs::read(&path).unwrap(), bytes);

    // Damage without a secret is caught by the checksum.
    let mut damaged = bytes.clone();
    let at = bytes.len() / 2;
    damaged[at] ^= 0x01;
    assert!(matches!(
        Keystore::parse(path.clone(), &damaged),
        Err(Error::Corrupt { .. })
    ));
}

#[test]
fn aes_gcm_keystore_has_the_documented_layout() {
    check_created(Suite::Aes256Gcm);
}

#[test]
fn xchacha_keystore_has_the_documented_layout() {
    check_created(Suite::XChaCha20Poly1305);
}

/// A re-wrapped slot after a passphrase change, and a second slot, keep the
/// documented layout; slot ids are never reused.
#[test]
fn slot_changes_keep_the_layout() {
    let dir = tempfile::tempdir().unwrap();
    let one = Passphrase::new(b"one".to_vec());
    let two = Passphrase::new(b"two".to_vec());
    let kdf = KdfParams::insecure_test();
    let (mut ks, keyring) = Keystore::create(dir.path(), Suite::Aes256Gcm, &one, kdf).unwrap();
    let mut u = ks.unseal_passphrase(&one, None).unwrap();
    assert_eq!(
        ks.add_passphrase(&mut u, &two, kdf, keys::Role::Admin)
            .unwrap(),
        1
    );
    ks.remove_slot(&mut u, 0).unwrap();
    assert_eq!(
        ks.add_passphrase(&mut u, &one, kdf, keys::Role::Admin)
            .unwrap(),
        2
    );
    let read = read_framing(&std::fs::read(dir.path().join("pivault.keystore")).unwrap());
    assert_top_level_order(&read.json_text);
    assert_eq!(read.body.next_slot, 3);
    let ids: Vec<u32> = read.body.slots.iter().map(|s| s.id).collect();
    assert_eq!(ids, vec![1, 2]);
    // The same master and data keys (the slots' authenticator keys in the
    // keyring follow the slots).
    let mut plain = Vec::new();
    for (slot, pass) in read.body.slots.iter().zip([b"two", b"one"]) {
        plain = unwrap_slot(&read.body, slot, pass).expect("slot opens");
        assert_eq!(
            parse_keyring(&plain),
            parse_keyring(keyring.to_bytes().expose())
        );
    }
    assert_eq!(read.body.mac, Some(mac_of(&plain, &read.body)));
}

// ---------------------------------------------------------------------------
// The document's example keystore

struct Example {
    body: DocBody,
    keyring: Vec<u8>,
    nonce: Vec<u8>,
    /// The ```` ```pivault-keystore ```` block, when the document has one.
    file: Option<Vec<u8>>,
}

/// The `kind: keystore` vector and the `pivault-keystore` block after it.
fn doc_example() -> Example {
    let doc = std::fs::read_to_string(DOC).unwrap_or_else(|e| panic!("reading {DOC}: {e}"));
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut file = None;
    let mut lines = doc.lines();
    while let Some(line) = lines.next() {
        match line.trim_end() {
            "```vectors" => {
                let mut block = Vec::new();
                for l in lines.by_ref() {
                    if l.trim_end() == "```" {
                        break;
                    }
                    block.push(l.trim_end());
                }
                if block.first() == Some(&"kind: keystore") {
                    for l in block {
                        if let Some(cont) = l.strip_prefix("    ") {
                            fields.last_mut().unwrap().1.push_str(cont.trim());
                        } else {
                            let (k, v) = l.split_once(':').unwrap();
                            fields.push((k.to_string(), v.trim().to_string()));
                        }
                    }
                }
            }
            "```pivault-keystore" => {
                let mut bytes = Vec::new();
                for l in lines.by_ref() {
                    if l == "```" {
                        break;
                    }
                    bytes.extend_from_slice(l.as_bytes());
                    bytes.push(b'\n');
                }
                file = Some(bytes);
            }
            _ => {}
        }
    }
    let get = |k: &str| -> &str {
        let v: Vec<&str> = fields
            .iter()
            .filter(|(f, _)| f == k)
            .map(|(_, v)| v.as_str())
            .collect();
        assert_eq!(v.len(), 1, "FORMAT.md keystore vector: field `{k}`");
        v[0]
    };
    assert_eq!(get("passphrase"), PASS);
    let vault_id = hex::decode(get("vault_id")).unwrap();
    let salt = hex::decode(get("salt")).unwrap();
    let keyring = hex::decode(get("keyring")).unwrap();
    let nonce = hex::decode(get("nonce")).unwrap();
    let kdf = DocKdf {
        m_kib: get("m_kib").parse().unwrap(),
        t: get("t").parse().unwrap(),
        p: get("p").parse().unwrap(),
        test_only: get("test_only").parse().unwrap(),
    };
    let created: u64 = get("created").parse().unwrap();
    let suite = get("suite").to_string();
    let vid: [u8; 16] = vault_id.clone().try_into().unwrap();
    let kek = argon2id(PASS.as_bytes(), &salt, kdf);
    let wrapped = aead_seal(
        &suite,
        &kek,
        &nonce,
        &slot_aad(1, &vid, 0, "passphrase"),
        &keyring,
    );
    let (master, data) = parse_keyring(&keyring);
    assert_eq!(
        keyring_tlv(&master, &data),
        keyring,
        "keyring in writer order"
    );
    let mut body = DocBody {
        vault_id: B64.encode(&vault_id),
        suite,
        created,
        data_key_versions: data.iter().map(|d| d.0).collect(),
        next_slot: 1,
        keyring: None,
        audit: None,
        stale_auth: Vec::new(),
        slots: vec![DocSlot {
            id: 0,
            kind: "passphrase".into(),
            created,
            kdf,
            salt: B64.encode(&salt),
            wraps: None,
            weak: false,
            public: None,
            kwk: None,
            auth: None,
            wrapped: B64.encode(&wrapped),
        }],
        mac: None,
    };
    body.mac = Some(mac_of(&keyring, &body));
    Example {
        body,
        keyring,
        nonce,
        file,
    }
}

#[test]
fn documented_example_keystore_is_exact_and_unseals() {
    let ex = doc_example();
    let file = ex.file.expect("FORMAT.md has a ```pivault-keystore block");
    assert_eq!(
        String::from_utf8(file.clone()).unwrap(),
        String::from_utf8(frame(&ex.body)).unwrap(),
        "the example is the documented construction of its vector"
    );
    assert_eq!(ex.nonce.len(), 12);
    let read = read_framing(&file);
    assert_eq!(read.body, ex.body);

    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pivault.keystore");
    std::fs::write(&path, &file).unwrap();
    let ks = Keystore::load(dir.path()).unwrap();
    assert_eq!(ks.suite(), Suite::Aes256Gcm);
    assert_eq!(ks.created(), ex.body.created);
    let u = ks
        .unseal_passphrase(&Passphrase::new(PASS.as_bytes().to_vec()), None)
        .unwrap();
    assert_eq!(u.slot, 0);
    assert!(u.weak_kdf, "test_only slots are reported as weak");
    assert_eq!(u.keyring.to_bytes().expose(), &ex.keyring[..]);
    assert!(matches!(
        ks.unseal_passphrase(&Passphrase::new(b"Correct horse".to_vec()), None),
        Err(Error::WrongPassphrase)
    ));

    // A public field edited and the checksum recomputed: the MAC catches it.
    let mut edited = ex.body.clone();
    edited.next_slot = 7;
    let forged = frame(&edited);
    let ks = Keystore::parse(path, &forged).expect("checksum is valid");
    assert!(matches!(
        ks.unseal_passphrase(&Passphrase::new(PASS.as_bytes().to_vec()), None),
        Err(Error::Corrupt { .. })
    ));
}

#[test]
#[ignore = "prints the example keystore for FORMAT.md"]
fn print_example_keystore() {
    let ex = doc_example();
    print!("{}", String::from_utf8(frame(&ex.body)).unwrap());
}

/// The format-1 example is upgraded to format 3 by its first write: the
/// slot that unsealed gets a key pair that receives a new keyring wrapping key, and
/// a rotation then reaches every slot.
#[test]
fn format_1_keystore_is_upgraded_on_the_next_write() {
    let ex = doc_example();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pivault.keystore");
    std::fs::write(&path, ex.file.unwrap()).unwrap();
    let one = Passphrase::new(PASS.as_bytes().to_vec());
    let two = Passphrase::new(b"two".to_vec());
    let mut ks = Keystore::load(dir.path()).unwrap();
    assert_eq!(ks.format_version(), 1);
    let mut u = ks.unseal_passphrase(&one, None).unwrap();
    ks.add_passphrase(&mut u, &two, KdfParams::insecure_test(), keys::Role::Admin)
        .unwrap();
    let read = read_framing(&std::fs::read(&path).unwrap());
    assert_top_level_order(&read.json_text);
    assert!(read.body.slots.iter().all(|s| s.wraps.is_none()));
    // The keys are the same; the upgrade adds the audit signing key.
    for (slot, pass) in read.body.slots.iter().zip([PASS.as_bytes(), b"two"]) {
        let plain = unwrap_slot(&read.body, slot, pass).unwrap();
        let (master, data, seed) = parse_keyring_all(&plain);
        assert_eq!(keyring_tlv(&master, &data), ex.keyring);
        assert!(seed.is_some());
    }
    assert!(read.body.audit.is_some());
    assert_eq!(
        read.body.mac,
        Some(mac_of(u.keyring.to_bytes().expose(), &read.body))
    );
    assert_eq!(ks.rotate(&mut u).unwrap(), 2);
    let ks = Keystore::load(dir.path()).unwrap();
    assert_eq!(ks.format_version(), 3);
    let u2 = ks.unseal_passphrase(&two, None).unwrap();
    assert_eq!(u2.keyring.versions(), vec![1, 2]);
}

/// A format-1 keystore with two slots: the slot that unseals is upgraded
/// on the first write; the other keeps sealing the keyring itself (marked
/// `"wraps": "keyring"`), still opens, and blocks a rotation (naming it)
/// until another slot's holder re-wraps it; no change is made through it.
#[test]
fn format_1_slots_that_cannot_be_upgraded_block_key_changes() {
    let ex = doc_example();
    let vid: [u8; 16] = b64(&ex.body.vault_id).try_into().unwrap();
    let mut body = ex.body.clone();
    let salt2 = [0x42u8; 16];
    let kdf = body.slots[0].kdf;
    let kek2 = argon2id(b"two", &salt2, kdf);
    let wrapped2 = aead_seal(
        &body.suite,
        &kek2,
        &[0x24; 12],
        &slot_aad(1, &vid, 1, "passphrase"),
        &ex.keyring,
    );
    body.slots.push(DocSlot {
        id: 1,
        salt: B64.encode(salt2),
        wrapped: B64.encode(&wrapped2),
        ..body.slots[0].clone()
    });
    body.next_slot = 2;
    body.mac = None;
    body.mac = Some(mac_of(&ex.keyring, &body));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("pivault.keystore");
    std::fs::write(&path, frame(&body)).unwrap();

    let one = Passphrase::new(PASS.as_bytes().to_vec());
    let two = Passphrase::new(b"two".to_vec());
    let three = Passphrase::new(b"three".to_vec());
    let mut ks = Keystore::load(dir.path()).unwrap();
    assert_eq!(ks.unseal_passphrase(&two, None).unwrap().slot, 1);
    let mut u = ks.unseal_passphrase(&one, None).unwrap();
    let before = std::fs::read(&path).unwrap();
    match ks.rotate(&mut u) {
        Err(Error::LegacySlot { slots, .. }) => assert_eq!(slots, vec![1]),
        other => panic!("rotation must be refused: {other:?}"),
    }
    assert_eq!(std::fs::read(&path).unwrap(), before, "nothing written");

    // An unrelated write upgrades slot 0 and marks slot 1.
    let mut ks = Keystore::load(dir.path()).unwrap();
    let mut u = ks.unseal_passphrase(&one, None).unwrap();
    ks.add_passphrase(
        &mut u,
        &three,
        KdfParams::insecure_test(),
        keys::Role::Admin,
    )
    .unwrap();
    let read = read_framing(&std::fs::read(&path).unwrap());
    let wraps: Vec<Option<&str>> = read.body.slots.iter().map(|s| s.wraps.as_deref()).collect();
    assert_eq!(wraps, [None, Some("keyring"), None]);
    let ks2 = Keystore::load(dir.path()).unwrap();
    let mut u2 = ks2.unseal_passphrase(&two, None).unwrap();
    assert_eq!(u2.slot, 1, "the carried-over slot still opens");
    assert!(ks2.slots()[1].legacy);
    // Through it, no change can be made: its keyring copy is stale (it
    // lacks the keys a write needs, such as the other slots'
    // authenticator keys).
    let mut ks2 = ks2;
    assert!(matches!(
        ks2.add_passphrase(
            &mut u2,
            &Passphrase::new(b"four".to_vec()),
            KdfParams::insecure_test(),
            keys::Role::Admin
        ),
        Err(Error::LegacySlot { .. })
    ));
    // Re-wrapped by a holder of another slot, it follows rotations.
    ks.change_passphrase(&mut u, 1, &two, KdfParams::insecure_test())
        .unwrap();
    let read = read_framing(&std::fs::read(&path).unwrap());
    assert!(read.body.slots.iter().all(|s| s.wraps.is_none()));
    assert_eq!(ks.rotate(&mut u).unwrap(), 2);
    let ks = Keystore::load(dir.path()).unwrap();
    for p in [&one, &two, &three] {
        assert_eq!(
            ks.unseal_passphrase(p, None).unwrap().keyring.versions(),
            vec![1, 2]
        );
    }
}

/// The keystore body as raw JSON, after checking the framing (for slot
/// kinds the strict `DocBody` above does not model).
fn raw_body(path: &std::path::Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap();
    let body = text.split_once('\n').unwrap().1;
    let body = &body[..body.len() - 72];
    serde_json::from_str(body).unwrap()
}

/// Crockford base32 as FORMAT.md §4.3 gives it, decoded independently.
fn decode_recovery_key(text: &str) -> Vec<u8> {
    const ALPHABET: &str = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";
    let body: String = text.strip_prefix("PVRK-").unwrap().replace('-', "");
    assert_eq!(body.len(), 55);
    let mut bits = String::new();
    for c in body.chars() {
        bits.push_str(&format!("{:05b}", ALPHABET.find(c).unwrap()));
    }
    assert_eq!(&bits[272..], "000", "padding bits are zero");
    (0..34)
        .map(|i| u8::from_str_radix(&bits[i * 8..i * 8 + 8], 2).unwrap())
        .collect()
}

#[test]
fn recovery_slot_has_the_documented_construction() {
    let dir = tempfile::tempdir().unwrap();
    let pass = Passphrase::new(PASS.as_bytes().to_vec());
    let (mut ks, keyring) = Keystore::create(
        dir.path(),
        Suite::Aes256Gcm,
        &pass,
        KdfParams::insecure_test(),
    )
    .unwrap();
    let mut u = ks.unseal_passphrase(&pass, None).unwrap();
    let (id, key) = ks.add_recovery(&mut u).unwrap();
    let bytes = decode_recovery_key(&key.encode());
    let (k, check) = bytes.split_at(32);
    let mut ctx = digest::Context::new(&digest::SHA256);
    ctx.update(b"pivault recovery key v1");
    ctx.update(k);
    assert_eq!(check, &ctx.finish().as_ref()[..2], "checksum");
    let body = raw_body(&dir.path().join("pivault.keystore"));
    let slot = &body["slots"][id as usize];
    assert_eq!(slot["kind"], "recovery");
    assert!(slot.get("kdf").is_none());
    let kek = hkdf32(
        k,
        "pivault v1 recovery slot",
        &b64(slot["salt"].as_str().unwrap()),
    );
    let plain = open_with_kek(&body, slot, &kek).expect("the recovery slot opens independently");
    assert_eq!(parse_keyring(&plain).0, *keyring.master().expose());
}

/// GF(2^8) multiplication modulo x^8+x^4+x^3+x^2+1 (0x11d).
fn gf_mul(mut a: u8, mut b: u8) -> u8 {
    let mut p = 0u8;
    while b != 0 {
        if b & 1 != 0 {
            p ^= a;
        }
        let carry = a & 0x80 != 0;
        a <<= 1;
        if carry {
            a ^= 0x1d;
        }
        b >>= 1;
    }
    p
}

fn gf_inv(a: u8) -> u8 {
    // a^254
    let mut r = 1u8;
    for _ in 0..254 {
        r = gf_mul(r, a);
    }
    r
}

#[test]
fn share_files_have_the_documented_construction() {
    let dir = tempfile::tempdir().unwrap();
    let pass = Passphrase::new(PASS.as_bytes().to_vec());
    let (mut ks, keyring) = Keystore::create(
        dir.path(),
        Suite::Aes256Gcm,
        &pass,
        KdfParams::insecure_test(),
    )
    .unwrap();
    let mut u = ks.unseal_passphrase(&pass, None).unwrap();
    let out = dir.path().join("shares");
    let (id, files) = ks.add_shares(&mut u, 3, 5, &out).unwrap();
    let body = raw_body(&dir.path().join("pivault.keystore"));
    let slot = &body["slots"][id as usize];
    assert_eq!(slot["kind"], "shares");
    let info = &slot["shares"];
    assert_eq!(
        (info["threshold"].as_u64(), info["count"].as_u64()),
        (Some(3), Some(5))
    );
    let set = info["set"].as_str().unwrap();
    let mut points = Vec::new();
    for f in &files {
        let text = std::fs::read_to_string(f).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[0], "pivault-share 1");
        let sum = digest::digest(
            &digest::SHA256,
            format!("{}\n{}\n", lines[0], lines[1]).as_bytes(),
        );
        assert_eq!(lines[2], format!("sha256 {}", hex::encode(sum.as_ref())));
        let v: Value = serde_json::from_str(lines[1]).unwrap();
        assert_eq!(v["vault_id"], body["vault_id"]);
        assert_eq!(
            (v["slot"].as_u64(), v["set"].as_str()),
            (Some(id as u64), Some(set))
        );
        let x = v["x"].as_u64().unwrap() as u8;
        let y = b64(v["y"].as_str().unwrap());
        let mut ctx = digest::Context::new(&digest::SHA256);
        ctx.update(b"pivault share v1");
        ctx.update(set.as_bytes());
        ctx.update(&[x]);
        ctx.update(&y);
        assert_eq!(
            info["hashes"][x as usize - 1].as_str().unwrap(),
            hex::encode(ctx.finish().as_ref())
        );
        points.push((x, y));
    }
    // Any 3 shares: Lagrange interpolation at 0, byte by byte.
    for pick in [[0usize, 1, 2], [4, 2, 0], [1, 3, 4]] {
        let secret: Vec<u8> = (0..32)
            .map(|b| {
                let mut acc = 0u8;
                for &i in &pick {
                    let (xi, ref yi) = points[i];
                    let mut l = 1u8;
                    for &j in &pick {
                        if j != i {
                            let xj = points[j].0;
                            l = gf_mul(l, gf_mul(xj, gf_inv(xj ^ xi)));
                        }
                    }
                    acc ^= gf_mul(l, yi[b]);
                }
                acc
            })
            .collect();
        let kek = hkdf32(
            &secret,
            "pivault v1 share slot",
            &b64(slot["salt"].as_str().unwrap()),
        );
        let plain =
            open_with_kek(&body, slot, &kek).expect("any 3 shares open the slot independently");
        assert_eq!(parse_keyring(&plain).0, *keyring.master().expose());
    }
}

// ---------------------------------------------------------------------------
// The document's format-3 example

/// The ```` ```pivault-keystore-3 ```` block of FORMAT.md §13.9 and the
/// keyring (hex) its `keyring-3:` line gives.
fn doc_example_3() -> (Vec<u8>, Vec<u8>) {
    let doc = std::fs::read_to_string(DOC).unwrap();
    let start = doc
        .find("```pivault-keystore-3\n")
        .expect("FORMAT.md has a ```pivault-keystore-3 block")
        + "```pivault-keystore-3\n".len();
    let end = start + doc[start..].find("```").unwrap();
    let file = doc.as_bytes()[start..end].to_vec();
    let at = doc.find("keyring-3: ").expect("a keyring-3 line") + "keyring-3: ".len();
    let mut hex_text = String::new();
    for line in doc[at..].lines() {
        let t = line.trim();
        if t.is_empty() || !t.bytes().all(|b| b.is_ascii_hexdigit()) {
            break;
        }
        hex_text.push_str(t);
    }
    (file, hex::decode(hex_text).unwrap())
}

/// The format-3 example: the independent reader opens its slot with the
/// passphrase (Argon2id, the slot AAD v3, the age identity, the age file
/// holding the KWK, the sealed keyring) into exactly the documented
/// keyring, the MAC is the keyring's MAC key over the canonical body, and
/// `keys` unseals it to the same keyring.
#[test]
fn documented_format_3_example_opens_independently_and_with_keys() {
    let (file, keyring) = doc_example_3();
    let read = read_framing(&file);
    assert!(file.starts_with(b"pivault-keystore 3\n"));
    assert_top_level_order(&read.json_text);
    let slot0 = &read.body.slots[0];
    let plain = unwrap_slot(&read.body, slot0, PASS.as_bytes()).expect("slot 0 opens");
    assert_eq!(plain, keyring);
    assert_eq!(read.body.mac, Some(mac_of(&plain, &read.body)));
    assert!(unwrap_slot(&read.body, slot0, b"wrong").is_none());

    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("pivault.keystore"), &file).unwrap();
    let ks = Keystore::load(dir.path()).unwrap();
    assert_eq!(ks.format_version(), 3);
    let u = ks
        .unseal_passphrase(&Passphrase::new(PASS.as_bytes().to_vec()), None)
        .unwrap();
    assert_eq!(u.keyring.to_bytes().expose(), &keyring[..]);
}

#[test]
#[ignore = "prints a new format-3 example keystore and its keyring for FORMAT.md"]
fn print_format_3_example() {
    let dir = tempfile::tempdir().unwrap();
    let (_, keyring) = Keystore::create(
        dir.path(),
        Suite::Aes256Gcm,
        &Passphrase::new(PASS.as_bytes().to_vec()),
        KdfParams::insecure_test(),
    )
    .unwrap();
    let text = std::fs::read_to_string(dir.path().join("pivault.keystore")).unwrap();
    println!("keyring-3: {}", hex::encode(keyring.to_bytes().expose()));
    print!("{text}");
}
