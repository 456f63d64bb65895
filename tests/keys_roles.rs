//! Admin and restricted slots (issue 15, point 2), through the binary: a
//! restricted slot may unseal and change its own passphrase, nothing
//! else; the last admin slot stays; and the role cannot be edited in the
//! keystore by its holder.

mod common;

use common::*;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

const RESTRICTED_PASS: &str = "the restricted holder's own passphrase";

/// `pivault keys SUB VAULT ARGS --passphrase-file PASS`.
fn keys(f: &Fixture, sub: &str, args: &[&str], pass: &Path) -> Out {
    let mut c = pv();
    c.arg("keys").arg(sub).arg(&f.vault);
    c.args(args.iter().map(OsStr::new));
    c.arg("--passphrase-file").arg(pass);
    run(&mut c)
}

/// A vault with admin slot 0 and restricted slot 1.
fn with_restricted() -> (Fixture, PathBuf) {
    let f = Fixture::with_vault("aes-gcm");
    let p1 = pass_file(f.tmp.path(), "p1", RESTRICTED_PASS);
    let p1s = p1.to_str().unwrap().to_string();
    ok(keys(
        &f,
        "add-passphrase",
        &[
            "--restricted",
            "--insecure-test-kdf",
            "--new-passphrase-file",
            &p1s,
        ],
        &f.pass,
    ));
    (f, p1)
}

#[test]
fn a_restricted_slot_cannot_manage_keys_or_promote_itself() {
    let (f, p1) = with_restricted();
    let slots = f.keys_json()["slots"].clone();
    assert_eq!(slots[0]["role"], "admin");
    assert_eq!(slots[1]["role"], "restricted");
    let other = pass_file(
        f.tmp.path(),
        "other",
        "an attacker's chosen passphrase here",
    );
    let other = other.to_str().unwrap().to_string();
    let attempts: [(&str, Vec<&str>); 6] = [
        (
            "add-passphrase",
            vec!["--insecure-test-kdf", "--new-passphrase-file", &other],
        ),
        ("rotate", vec![]),
        ("remove", vec!["--slot", "0"]),
        ("policy", vec!["--slot", "1", "--clear", "--admin"]),
        (
            "change-passphrase",
            vec![
                "--slot",
                "0",
                "--insecure-test-kdf",
                "--new-passphrase-file",
                &other,
            ],
        ),
        ("add-recovery", vec![]),
    ];
    for (sub, args) in &attempts {
        let ks = std::fs::read(f.keystore()).unwrap();
        let out = failed(keys(&f, sub, args, &p1));
        assert_contains(&out.stderr, "slot 1 is a restricted slot");
        assert_eq!(
            std::fs::read(f.keystore()).unwrap(),
            ks,
            "`keys {sub}` by a restricted slot changed the keystore"
        );
    }
    // Each refusal is in the audit log, signed.
    let log = std::fs::read_to_string(f.vault.join("audit.log")).unwrap();
    let refused = log
        .lines()
        .filter(|l| l.contains("\"event\":\"refused\"") && l.contains("\"sig\""))
        .count();
    assert_eq!(refused, attempts.len(), "{log}");
    // Its own passphrase it may change.
    let mine = pass_file(f.tmp.path(), "mine", "a new passphrase for slot one");
    let mine_s = mine.to_str().unwrap().to_string();
    ok(keys(
        &f,
        "change-passphrase",
        &["--insecure-test-kdf", "--new-passphrase-file", &mine_s],
        &p1,
    ));
    ok(run(pv()
        .arg("fsck")
        .arg(&f.vault)
        .arg("--passphrase-file")
        .arg(&mine)));
    assert_eq!(f.keys_json()["slots"][1]["role"], "restricted");
}

#[test]
fn the_last_admin_slot_cannot_be_removed_or_restricted() {
    let (f, _p1) = with_restricted();
    let ks = std::fs::read(f.keystore()).unwrap();
    let out = failed(keys(
        &f,
        "policy",
        &["--slot", "0", "--max-failures", "3"],
        &f.pass,
    ));
    assert_contains(&out.stderr, "slot 0 is the last admin slot");
    assert_eq!(std::fs::read(f.keystore()).unwrap(), ks);
    // With --admin it keeps its role.
    ok(keys(
        &f,
        "policy",
        &["--slot", "0", "--max-failures", "3", "--admin"],
        &f.pass,
    ));
    assert_eq!(f.keys_json()["slots"][0]["role"], "admin");
    // Promote slot 1; then slot 0 may go.
    ok(keys(
        &f,
        "policy",
        &["--slot", "1", "--clear", "--admin"],
        &f.pass,
    ));
    ok(keys(&f, "remove", &["--slot", "0"], &f.pass));
}

/// Rewrites the keystore's checksum line after an edit, as an attacker
/// can (it is a plain SHA-256).
fn reframe(path: &Path, edit: impl Fn(&str) -> String) {
    let text = std::fs::read_to_string(path).unwrap();
    let cut = text.trim_end_matches('\n').rfind('\n').unwrap() + 1;
    let body = edit(&text[..cut]);
    let sum = ring::digest::digest(&ring::digest::SHA256, body.as_bytes());
    let hex: String = sum.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    std::fs::write(path, format!("{body}sha256 {hex}\n")).unwrap();
}

#[test]
fn a_holder_who_deletes_the_restricted_role_from_the_keystore_is_refused_by_the_mac() {
    let (f, p1) = with_restricted();
    reframe(&f.keystore(), |body| {
        assert!(body.contains("\"role\": \"restricted\""), "{body}");
        body.replace(",\n      \"role\": \"restricted\"", "")
    });
    assert!(!std::fs::read_to_string(f.keystore())
        .unwrap()
        .contains("restricted"));
    let out = failed(run(pv()
        .arg("fsck")
        .arg(&f.vault)
        .arg("--passphrase-file")
        .arg(&p1)));
    assert_contains(&out.stderr, "by someone without the keys");
}
