//! A former key holder against keystore format 3 (docs/THREAT-MODEL.md,
//! "Leavers"): they kept a copy of the keystore from before their slot
//! was removed, and their passphrase. With only those, and a reader that
//! follows docs/FORMAT.md (tests/reader, not `keys`), they must open
//! nothing the keystore holds after `remove` + `rotate`: not the new
//! keyring, not the new data key, and they must not be able to forge the
//! keystore's MAC or sign audit records.

mod reader;

use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use keys::{Error, KdfParams, Keystore, Passphrase, Role};
use reader::*;
use serde_json::Value;
use vault_core::{Keyring, Suite};

const ADMIN: &[u8] = b"admin passphrase for the test";
const LEAVER: &[u8] = b"leaver passphrase for the test";

fn pass(p: &[u8]) -> Passphrase {
    Passphrase::new(p.to_vec())
}

/// The compact MAC input of §4.4 from the file's pretty body: the `mac`
/// member dropped and whitespace outside strings removed (every string in
/// these keystores is base64 or an ASCII name without whitespace).
fn canonical(file: &[u8]) -> String {
    let text = std::str::from_utf8(file).unwrap();
    let body = &text[text.find('\n').unwrap() + 1..text.len() - 72];
    let body: String = body
        .lines()
        .filter(|l| !l.trim_start().starts_with("\"mac\""))
        .collect();
    let compact: String = body.chars().filter(|c| !c.is_whitespace()).collect();
    // The member before `mac` kept its trailing comma.
    compact.replace(",}", "}")
}

/// `text` (a keystore file) with its MAC recomputed under `key` and its
/// checksum line recomputed, as an attacker holding `key` would.
fn remac(text: &str, key: &[u8; 32]) -> String {
    let mac = hmac_b64(key, canonical(text.as_bytes()).as_bytes());
    let start = text.find("\"mac\": \"").unwrap() + 8;
    let end = start + text[start..].find('"').unwrap();
    let mut out = format!("{}{}{}", &text[..start], mac, &text[end..]);
    out.truncate(out.len() - 72);
    let sum = ring::digest::digest(&ring::digest::SHA256, out.as_bytes());
    out.push_str(&format!("sha256 {}\n", hex::encode(sum.as_ref())));
    out
}

/// What the leaver gets from the old copy with their passphrase: the
/// slot's identity, the KWK, and the keyring bytes.
fn leaver_opens(old: &Value) -> (age::x25519::Identity, [u8; 32], Vec<u8>) {
    let s = slot(old, 1);
    match slot_key_material(old, s, &passphrase_kek(s, LEAVER)) {
        Some(SlotOpened::Identity(id, kwk)) => {
            let keyring = open_keyring_with(old, &kwk).expect("the old copy opens for its holder");
            (id, kwk, keyring)
        }
        _ => panic!("slot 1 of the old copy is a format-3 slot that opens with its passphrase"),
    }
}

#[test]
fn removed_holder_with_an_old_keystore_copy_opens_no_later_keyring() {
    let dir = tempfile::tempdir().unwrap();
    let kdf = KdfParams::insecure_test();
    Keystore::create(dir.path(), Suite::Aes256Gcm, &pass(ADMIN), kdf).unwrap();
    let mut ks = Keystore::load(dir.path()).unwrap();
    let mut u = ks.unseal_passphrase(&pass(ADMIN), None).unwrap();
    assert_eq!(
        ks.add_passphrase(&mut u, &pass(LEAVER), kdf, Role::Admin)
            .unwrap(),
        1
    );
    let path = dir.path().join("pivault.keystore");
    let old_file = std::fs::read(&path).unwrap();

    // The leaver's slot is removed and the keys rotated.
    ks.remove_slot(&mut u, 1).unwrap();
    assert_eq!(ks.rotate(&mut u).unwrap(), 2);
    let new_file = std::fs::read(&path).unwrap();

    let old = read_body(&old_file);
    let new = read_body(&new_file);
    let (identity, old_kwk, old_keyring) = leaver_opens(&old);

    // The old wrapping key does not open the new keyring, and the old
    // identity decrypts none of the remaining slots' wrapped keys.
    assert!(open_keyring_with(&new, &old_kwk).is_none());
    for s in new["slots"].as_array().unwrap() {
        assert_ne!(s["id"], 1, "the slot is gone");
        let file = b64(s["kwk"].as_str().unwrap());
        assert!(
            age::decrypt(&identity, &file).is_err(),
            "slot {}'s wrapped key opens with the leaver's identity",
            s["id"]
        );
    }

    // The admin's view of the new keyring, by the same reader: a new data
    // key, a new MAC key and a new audit signing key, none of which the
    // old keyring holds.
    let admin = slot(&new, 0);
    let new_keyring = open_with_kek(&new, admin, &passphrase_kek(admin, ADMIN)).unwrap();
    let (_, old_data, old_seed) = parse_keyring_all(&old_keyring);
    let (_, new_data, new_seed) = parse_keyring_all(&new_keyring);
    assert_eq!(new_data.iter().map(|d| d.0).collect::<Vec<_>>(), vec![1, 2]);
    let v2 = new_data.iter().find(|d| d.0 == 2).unwrap().1;
    assert!(old_data.iter().all(|d| d.1 != v2));
    assert_ne!(mac_key_of(&old_keyring), mac_key_of(&new_keyring));
    assert_ne!(old_seed, new_seed);
    assert!(new_seed.is_some());

    // The independent MAC recomputation agrees with the file under the new
    // key, and the old key does not produce it.
    let input = canonical(&new_file);
    assert_eq!(
        new["mac"].as_str().unwrap(),
        hmac_b64(&mac_key_of(&new_keyring), input.as_bytes())
    );
    assert_ne!(
        new["mac"].as_str().unwrap(),
        hmac_b64(&mac_key_of(&old_keyring), input.as_bytes())
    );
}

/// A vault whose slot 1 (the leaver's) was removed and the keys rotated,
/// with the keyring the leaver read from their copy of the keystore.
struct Left {
    dir: tempfile::TempDir,
    path: std::path::PathBuf,
    old_keyring: Vec<u8>,
    u: keys::Unsealed,
}

fn leaver_removed_and_rotated() -> Left {
    let dir = tempfile::tempdir().unwrap();
    let kdf = KdfParams::insecure_test();
    Keystore::create(dir.path(), Suite::Aes256Gcm, &pass(ADMIN), kdf).unwrap();
    let mut ks = Keystore::load(dir.path()).unwrap();
    let mut u = ks.unseal_passphrase(&pass(ADMIN), None).unwrap();
    ks.add_passphrase(&mut u, &pass(LEAVER), kdf, Role::Admin)
        .unwrap();
    let path = dir.path().join("pivault.keystore");
    let (_, _, old_keyring) = leaver_opens(&read_body(&std::fs::read(&path).unwrap()));
    ks.remove_slot(&mut u, 1).unwrap();
    ks.rotate(&mut u).unwrap();
    Left {
        dir,
        path,
        old_keyring,
        u,
    }
}

#[test]
fn removed_holder_cannot_forge_the_keystore_with_the_old_mac_key() {
    let Left {
        dir,
        path,
        old_keyring,
        u: _,
    } = leaver_removed_and_rotated();

    // The leaver edits the current keystore (making the admin slot
    // restricted) and re-computes MAC and checksum with what they kept.
    let text = String::from_utf8(std::fs::read(&path).unwrap()).unwrap();
    // `role` follows `salt` (no policy) in the canonical order.
    let salt_end = text.find("\"salt\"").unwrap();
    let salt_end = salt_end + text[salt_end..].find('\n').unwrap() + 1;
    let edited = format!(
        "{}      \"role\": \"restricted\",\n{}",
        &text[..salt_end],
        &text[salt_end..]
    );
    std::fs::write(&path, remac(&edited, &mac_key_of(&old_keyring))).unwrap();

    let ks = Keystore::load(dir.path()).expect("framing and checksum are valid");
    match ks.unseal_passphrase(&pass(ADMIN), None) {
        Err(Error::Corrupt { reason, .. }) => assert!(
            reason.contains("authenticator") || reason.contains("integrity tag"),
            "{reason}"
        ),
        other => panic!("the forged keystore must not unseal: {other:?}"),
    }
}

#[test]
fn removed_holder_cannot_sign_audit_records_after_the_rotation() {
    let Left {
        dir,
        path: _,
        old_keyring,
        u,
    } = leaver_removed_and_rotated();
    let v = keys::audit::verify(dir.path()).unwrap();
    assert!(v.is_intact(), "{:?}", v.problem);
    let records = v.records;

    // The log names the hand-over, signed by the old key, and names the
    // new one.
    let log = keys::audit::read(dir.path()).unwrap();
    let handover = log
        .iter()
        .find(|r| r.event == "audit-key-rotated")
        .expect("a hand-over record");
    let new_key = keys::audit::verifying_key(&u.keyring).unwrap();
    assert_eq!(handover.details["to"], B64.encode(new_key));

    // pivault itself refuses to sign with a key a rotation replaced.
    let old = Keyring::from_bytes(&old_keyring).unwrap();
    assert!(matches!(
        keys::audit::append(
            dir.path(),
            Some(&old),
            keys::audit::Event::new("unseal").slot(0)
        ),
        Err(Error::StaleAuditKey(_))
    ));
    // The leaver forges a record by hand, chained to the last line and
    // signed with the old keyring's audit key.
    let log_path = dir.path().join("audit.log");
    let text = std::fs::read_to_string(&log_path).unwrap();
    let last = text.lines().last().unwrap();
    let mut rec: keys::audit::Record = serde_json::from_str(last).unwrap();
    rec.seq += 1;
    rec.event = "unseal".into();
    rec.details = Default::default();
    rec.prev = hex::encode(ring::digest::digest(&ring::digest::SHA256, last.as_bytes()).as_ref());
    rec.sig = None;
    let (_, _, seed) = parse_keyring_all(&old_keyring);
    let pair = ring::signature::Ed25519KeyPair::from_seed_unchecked(&seed.unwrap()).unwrap();
    rec.sig = Some(B64.encode(pair.sign(&rec.signed_bytes()).as_ref()));
    std::fs::write(&log_path, format!("{text}{}\n", rec.line())).unwrap();
    let v = keys::audit::verify(dir.path()).unwrap();
    let problem = v.problem.expect("the forged record is caught");
    assert_eq!(problem.record, records);
    assert!(
        problem.what.contains("signature does not verify"),
        "{}",
        problem.what
    );
}

/// A writer of the vault directory with no secret at all: every slot's
/// public key is in plain view, so they can encrypt a wrapping key of
/// their own to each slot, seal a keyring of their own under it, and MAC
/// the result with that keyring's MAC key. Each slot's authenticator,
/// under a key only its KEK opens, refuses the assembled keystore.
#[test]
fn writer_cannot_assemble_a_keystore_around_a_keyring_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let kdf = KdfParams::insecure_test();
    Keystore::create(dir.path(), Suite::Aes256Gcm, &pass(ADMIN), kdf).unwrap();
    let path = dir.path().join("pivault.keystore");
    let text = String::from_utf8(std::fs::read(&path).unwrap()).unwrap();
    let body = read_body(text.as_bytes());

    // The attacker's keyring and wrapping key.
    let theirs = Keyring::generate().unwrap();
    let kwk = [0x5au8; 32];
    let vid: [u8; 16] = b64(body["vault_id"].as_str().unwrap()).try_into().unwrap();
    let sealed_keyring = {
        use aes_gcm::aead::{Aead, KeyInit};
        let nonce = [7u8; 12];
        let ct = aes_gcm::Aes256Gcm::new((&kwk).into())
            .encrypt(
                (&nonce).into(),
                aes_gcm::aead::Payload {
                    msg: theirs.to_bytes().expose(),
                    aad: &[b"pivault keystore keyring v2".as_slice(), &vid].concat(),
                },
            )
            .unwrap();
        B64.encode([nonce.as_slice(), &ct].concat())
    };
    let recipient: age::x25519::Recipient =
        slot(&body, 0)["public"].as_str().unwrap().parse().unwrap();
    let wrapped_kwk = B64.encode(age::encrypt(&recipient, &kwk).unwrap());
    let mut forged = text.clone();
    for (member, value) in [
        ("keyring", sealed_keyring.as_str()),
        ("kwk", wrapped_kwk.as_str()),
    ] {
        let key = format!("\"{member}\": \"");
        let start = forged.find(&key).unwrap() + key.len();
        let end = start + forged[start..].find('"').unwrap();
        forged = format!("{}{}{}", &forged[..start], value, &forged[end..]);
    }
    std::fs::write(
        &path,
        remac(&forged, &mac_key_of(theirs.to_bytes().expose())),
    )
    .unwrap();

    let ks = Keystore::load(dir.path()).expect("framing and checksum are valid");
    match ks.unseal_passphrase(&pass(ADMIN), None) {
        Err(Error::Corrupt { reason, .. }) => {
            assert!(reason.contains("authenticator does not match"), "{reason}")
        }
        Ok(u) => panic!(
            "the assembled keystore unsealed, to {} keyring",
            if u.keyring.master() == theirs.master() {
                "the attacker's"
            } else {
                "some"
            }
        ),
        Err(e) => panic!("refused for another reason: {e}"),
    }
}

/// A removed holder kept every slot's authenticator key (they are in the
/// keyring). The removal marks the remaining slots, and each holder's next
/// unseal replaces its slot's key, sealed under its own KEK: from then on
/// the key the leaver kept authenticates nothing for that slot.
#[test]
fn each_remaining_slot_replaces_the_authenticator_key_a_leaver_kept() {
    const VICTIM: &[u8] = b"victim passphrase for the test";
    let dir = tempfile::tempdir().unwrap();
    let kdf = KdfParams::insecure_test();
    Keystore::create(dir.path(), Suite::Aes256Gcm, &pass(ADMIN), kdf).unwrap();
    let mut ks = Keystore::load(dir.path()).unwrap();
    let mut u = ks.unseal_passphrase(&pass(ADMIN), None).unwrap();
    ks.add_passphrase(&mut u, &pass(VICTIM), kdf, Role::Admin)
        .unwrap();
    ks.add_passphrase(&mut u, &pass(LEAVER), kdf, Role::Admin)
        .unwrap();
    let path = dir.path().join("pivault.keystore");
    let before = read_body(&std::fs::read(&path).unwrap());
    let kept = slot_auth_key(
        &before,
        slot(&before, 1),
        &passphrase_kek(slot(&before, 1), VICTIM),
    );

    ks.remove_slot(&mut u, 2).unwrap();
    let after = read_body(&std::fs::read(&path).unwrap());
    // The admin's slot was replaced at once (its KEK was at hand); the
    // victim's is marked.
    assert_eq!(after["stale_auth"], serde_json::json!([1]));

    let mut ks = Keystore::load(dir.path()).unwrap();
    let mut v = ks.unseal_passphrase(&pass(VICTIM), None).unwrap();
    assert!(ks.upgrade(&mut v).unwrap(), "the victim's unseal writes");
    let now = read_body(&std::fs::read(&path).unwrap());
    assert!(now.get("stale_auth").is_none(), "{now}");
    let fresh = slot_auth_key(&now, slot(&now, 1), &passphrase_kek(slot(&now, 1), VICTIM));
    assert_ne!(
        fresh, kept,
        "the victim's authenticator key was not replaced"
    );
    // Everyone still opens the vault.
    let ks = Keystore::load(dir.path()).unwrap();
    for p in [ADMIN, VICTIM] {
        ks.unseal_passphrase(&pass(p), None).unwrap();
    }
    assert!(ks.unseal_passphrase(&pass(LEAVER), None).is_err());
}
