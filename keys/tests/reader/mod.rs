//! An independent reader of the keystore as docs/FORMAT.md §4-5 describes
//! it, written from the document and not from `keys`: HKDF, Argon2id and
//! the suites' AEADs from other crates, the keyring TLV, the MAC key, and
//! the three slot forms (format 1 sealing the keyring, format 2 sealing
//! the keyring wrapping key, format 3 sealing an age X25519 identity to
//! which the wrapping key is encrypted). Shared by keys/tests and the
//! root crate's tests (`#[path]`), which play a former key holder with it.
#![allow(dead_code)]

use aes_gcm::aead::{AeadInPlace, KeyInit};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ring::hmac;
use serde_json::Value;

/// Argon2id as §4.3 gives it.
pub fn argon2id_raw(pass: &[u8], salt: &[u8], m_kib: u32, t: u32, p: u32) -> [u8; 32] {
    let params = argon2::Params::new(m_kib, t, p, Some(32)).unwrap();
    let a = argon2::Argon2::new(argon2::Algorithm::Argon2id, argon2::Version::V0x13, params);
    let mut out = [0u8; 32];
    a.hash_password_into(pass, salt, &mut out).unwrap();
    out
}

/// A passphrase slot's KEK from the slot's JSON (`salt`, `kdf`).
pub fn passphrase_kek(slot: &Value, pass: &[u8]) -> [u8; 32] {
    let k = &slot["kdf"];
    let n = |f: &str| k[f].as_u64().unwrap() as u32;
    argon2id_raw(
        pass,
        &b64(slot["salt"].as_str().unwrap()),
        n("m_kib"),
        n("t"),
        n("p"),
    )
}

/// The JSON body of a keystore file, after checking its first line and
/// checksum line (§4.1).
pub fn read_body(bytes: &[u8]) -> Value {
    let text = std::str::from_utf8(bytes).expect("UTF-8");
    let (first, rest) = text.split_once('\n').expect("a first line");
    assert!(first.starts_with("pivault-keystore "), "{first}");
    let body = &rest[..rest.len() - 72];
    let sum = ring::digest::digest(&ring::digest::SHA256, &bytes[..bytes.len() - 72]);
    assert_eq!(
        &text[text.len() - 72..],
        format!("sha256 {}\n", hex::encode(sum.as_ref()))
    );
    serde_json::from_str(body).expect("a JSON body")
}

/// The slot with id `id` of a body.
pub fn slot(body: &Value, id: u64) -> &Value {
    body["slots"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no slot {id}"))
}

/// base64 of HMAC-SHA256(`key`, `input`): the MAC of §4.4 when `input` is
/// the canonical body.
pub fn hmac_b64(key: &[u8; 32], input: &[u8]) -> String {
    B64.encode(hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, key), input).as_ref())
}

pub fn hkdf32(ikm: &[u8], label: &str, context: &[u8]) -> [u8; 32] {
    let prk = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, b"pivault-hkdf-v1"), ikm);
    let mut info = label.as_bytes().to_vec();
    info.push(0);
    info.extend_from_slice(context);
    info.push(1);
    let t1 = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, prk.as_ref()), &info);
    t1.as_ref().try_into().unwrap()
}

pub fn slot_aad(version: u32, vault_id: &[u8; 16], slot: u32, kind: &str) -> Vec<u8> {
    let mut aad = format!("pivault keystore slot v{version}").into_bytes();
    aad.extend_from_slice(vault_id);
    aad.extend_from_slice(&slot.to_be_bytes());
    aad.extend_from_slice(kind.as_bytes());
    aad
}

pub fn nonce_len(suite: &str) -> usize {
    match suite {
        "aes-256-gcm" => 12,
        "xchacha20-poly1305" => 24,
        s => panic!("suite {s}"),
    }
}

pub fn aead_seal(suite: &str, key: &[u8; 32], nonce: &[u8], aad: &[u8], plain: &[u8]) -> Vec<u8> {
    assert_eq!(nonce.len(), nonce_len(suite));
    let mut body = plain.to_vec();
    let tag = match suite {
        "aes-256-gcm" => aes_gcm::Aes256Gcm::new(key.into())
            .encrypt_in_place_detached(nonce.into(), aad, &mut body)
            .unwrap()
            .to_vec(),
        _ => chacha20poly1305::XChaCha20Poly1305::new(key.into())
            .encrypt_in_place_detached(nonce.into(), aad, &mut body)
            .unwrap()
            .to_vec(),
    };
    [nonce, &body, &tag].concat()
}

pub fn aead_open(suite: &str, key: &[u8; 32], aad: &[u8], msg: &[u8]) -> Option<Vec<u8>> {
    let nl = nonce_len(suite);
    if msg.len() < nl + 16 {
        return None;
    }
    let (nonce, rest) = msg.split_at(nl);
    let (ct, tag) = rest.split_at(rest.len() - 16);
    let mut body = ct.to_vec();
    let ok = match suite {
        "aes-256-gcm" => aes_gcm::Aes256Gcm::new(key.into())
            .decrypt_in_place_detached(nonce.into(), aad, &mut body, tag.into())
            .is_ok(),
        _ => chacha20poly1305::XChaCha20Poly1305::new(key.into())
            .decrypt_in_place_detached(nonce.into(), aad, &mut body, tag.into())
            .is_ok(),
    };
    ok.then_some(body)
}

/// The keyring TLV: "PVKR", 0x01, then entries tag u8 || length u16 BE ||
/// value; 0x01 master (32), 0x02 data key (u32 BE version || 32), 0x03
/// audit signing key seed (32, at most one).
pub fn parse_keyring(b: &[u8]) -> ([u8; 32], Vec<(u32, [u8; 32])>) {
    let (master, data, _) = parse_keyring_all(b);
    (master, data)
}

pub type DataKeys = Vec<(u32, [u8; 32])>;

pub fn parse_keyring_all(b: &[u8]) -> ([u8; 32], DataKeys, Option<[u8; 32]>) {
    assert_eq!(&b[..5], b"PVKR\x01", "keyring magic and version");
    let mut rest = &b[5..];
    let mut master = None;
    let mut seed = None;
    let mut data = Vec::new();
    while !rest.is_empty() {
        let tag = rest[0];
        let len = u16::from_be_bytes([rest[1], rest[2]]) as usize;
        let value = &rest[3..3 + len];
        match (tag, len) {
            (0x01, 32) => {
                assert!(master.is_none(), "one master entry");
                master = Some(value.try_into().unwrap());
            }
            (0x02, 36) => data.push((
                u32::from_be_bytes(value[..4].try_into().unwrap()),
                value[4..].try_into().unwrap(),
            )),
            (0x03, 32) => {
                assert!(seed.is_none(), "one audit key entry");
                seed = Some(value.try_into().unwrap());
            }
            (0x04, 32) => {} // the keystore MAC key: see `mac_key_of`
            (0x05, 36) => {} // a tree key: see `tree_secret_of`
            (0x06, 36) => {} // a slot's authenticator key
            _ => panic!("unexpected keyring entry {tag:#04x} of {len} bytes"),
        }
        rest = &rest[3 + len..];
    }
    (master.expect("master entry"), data, seed)
}

/// The keystore MAC key of a keyring: its tag-0x04 entry, or for a
/// keyring without one, HKDF(master, "pivault v1 keystore mac").
pub fn mac_key_of(keyring: &[u8]) -> [u8; 32] {
    let mut rest = &keyring[5..];
    while !rest.is_empty() {
        let len = u16::from_be_bytes([rest[1], rest[2]]) as usize;
        if rest[0] == 0x04 {
            return rest[3..3 + len].try_into().unwrap();
        }
        rest = &rest[3 + len..];
    }
    hkdf32(&parse_keyring(keyring).0, "pivault v1 keystore mac", b"")
}

pub fn keyring_aad(vault_id: &[u8; 16]) -> Vec<u8> {
    [b"pivault keystore keyring v2".as_slice(), vault_id].concat()
}

pub fn b64(s: &str) -> Vec<u8> {
    B64.decode(s).expect("standard base64 with padding")
}

/// What a slot's KEK opens, by FORMAT.md §4.3: a format-1 slot (or one
/// marked `"wraps": "keyring"`) seals the keyring; a format-2 slot (or
/// `"wraps": "kwk"`) seals the keyring wrapping key (KWK); a format-3 slot
/// seals its age X25519 identity, which decrypts the slot's `kwk` age file
/// into the KWK. The KWK opens the body's `keyring`.
pub fn slot_key_material(body: &Value, slot: &Value, kek: &[u8; 32]) -> Option<SlotOpened> {
    let suite = body["suite"].as_str().unwrap();
    let vid: [u8; 16] = b64(body["vault_id"].as_str().unwrap()).try_into().unwrap();
    let id = slot["id"].as_u64().unwrap() as u32;
    let kind = slot["kind"].as_str().unwrap();
    let wraps = slot["wraps"].as_str();
    let form = if body.get("keyring").is_none() || wraps == Some("keyring") {
        1
    } else if slot.get("public").is_none() {
        2
    } else {
        3
    };
    let plain = aead_open(
        suite,
        kek,
        &slot_aad(form, &vid, id, kind),
        &b64(slot["wrapped"].as_str().unwrap()),
    )?;
    match form {
        1 => Some(SlotOpened::Keyring(plain)),
        2 => Some(SlotOpened::Kwk(plain.try_into().ok()?)),
        _ => {
            // The slot's authenticator key (32 bytes), then its identity.
            assert!(plain.len() > 32, "an authenticator key and an identity");
            let text =
                String::from_utf8(plain[32..].to_vec()).expect("an identity in its text form");
            assert!(text.starts_with("AGE-SECRET-KEY-1"), "an age identity");
            let identity: age::x25519::Identity = text.parse().expect("an age identity");
            assert_eq!(
                identity.to_public().to_string(),
                slot["public"].as_str().unwrap(),
                "`public` is the sealed identity's recipient"
            );
            let kwk = age::decrypt(&identity, &b64(slot["kwk"].as_str().unwrap()))
                .expect("`kwk` is encrypted to the slot's public key");
            Some(SlotOpened::Identity(identity, kwk.try_into().ok()?))
        }
    }
}

pub enum SlotOpened {
    Keyring(Vec<u8>),
    Kwk([u8; 32]),
    Identity(age::x25519::Identity, [u8; 32]),
}

/// Opens the body's sealed keyring with a KWK.
pub fn open_keyring_with(body: &Value, kwk: &[u8; 32]) -> Option<Vec<u8>> {
    let vid: [u8; 16] = b64(body["vault_id"].as_str().unwrap()).try_into().unwrap();
    aead_open(
        body["suite"].as_str().unwrap(),
        kwk,
        &keyring_aad(&vid),
        &b64(body["keyring"].as_str()?),
    )
}

/// The keyring bytes slot `slot` leads to with its KEK.
pub fn open_with_kek(body: &Value, slot: &Value, kek: &[u8; 32]) -> Option<Vec<u8>> {
    match slot_key_material(body, slot, kek)? {
        SlotOpened::Keyring(k) => Some(k),
        SlotOpened::Kwk(kwk) | SlotOpened::Identity(_, kwk) => open_keyring_with(body, &kwk),
    }
}

/// HKDF-SHA256 as §3 gives it, 64 bytes (T1 || T2).
pub fn hkdf64(ikm: &[u8], label: &str, context: &[u8]) -> [u8; 64] {
    let prk = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, b"pivault-hkdf-v1"), ikm);
    let key = hmac::Key::new(hmac::HMAC_SHA256, prk.as_ref());
    let mut info = label.as_bytes().to_vec();
    info.push(0);
    info.extend_from_slice(context);
    let t1 = hmac::sign(&key, &[info.as_slice(), &[1]].concat());
    let t2 = hmac::sign(&key, &[t1.as_ref(), info.as_slice(), &[2]].concat());
    let mut out = [0u8; 64];
    out[..32].copy_from_slice(t1.as_ref());
    out[32..].copy_from_slice(t2.as_ref());
    out
}

/// The secret the tree's keys derive from (§5): the highest tag-0x05
/// generation, or the master secret when there is none.
pub fn tree_secret_of(keyring: &[u8]) -> [u8; 32] {
    let mut rest = &keyring[5..];
    let mut best: Option<(u32, [u8; 32])> = None;
    while !rest.is_empty() {
        let len = u16::from_be_bytes([rest[1], rest[2]]) as usize;
        let value = &rest[3..3 + len];
        if rest[0] == 0x05 {
            let g = u32::from_be_bytes(value[..4].try_into().unwrap());
            if best.is_none_or(|(b, _)| g > b) {
                best = Some((g, value[4..].try_into().unwrap()));
            }
        }
        rest = &rest[3 + len..];
    }
    best.map(|b| b.1)
        .unwrap_or_else(|| parse_keyring(keyring).0)
}

/// Slot `id`'s authenticator key, as its KEK sealed it (format 3): the
/// first 32 bytes of what `wrapped` opens to.
pub fn slot_auth_key(body: &Value, slot: &Value, kek: &[u8; 32]) -> [u8; 32] {
    let suite = body["suite"].as_str().unwrap();
    let vid: [u8; 16] = b64(body["vault_id"].as_str().unwrap()).try_into().unwrap();
    let id = slot["id"].as_u64().unwrap() as u32;
    let plain = aead_open(
        suite,
        kek,
        &slot_aad(3, &vid, id, slot["kind"].as_str().unwrap()),
        &b64(slot["wrapped"].as_str().unwrap()),
    )
    .expect("the slot opens");
    plain[..32].try_into().unwrap()
}

/// The authenticator of slot `id` over `canonical` (the compact body
/// without `mac` and without any slot's `auth`), base64.
pub fn slot_auth_tag(key: &[u8; 32], id: u32, canonical: &[u8]) -> String {
    let mut m = b"pivault keystore slot auth v1".to_vec();
    m.extend_from_slice(&id.to_be_bytes());
    m.extend_from_slice(canonical);
    hmac_b64(key, &m)
}
