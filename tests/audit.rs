//! The audit log through the real binary: what is recorded, and
//! `pivault audit verify` (no passphrase) naming the first record that was
//! edited, deleted, inserted, reordered, or cut off.

mod common;

use common::*;
use serde_json::Value;
use std::ffi::OsStr;
use std::fs;
use std::path::PathBuf;

/// A vault whose log holds, in order: 0 init, 1 unseal (import), 2 a
/// failed unseal (unsigned), 3 unseal (keys rotate), 4 the hand-over to
/// the new audit key (signed by the old one), 5 rotate, 6 unseal (fsck).
/// The keystore's anchor is record 4 (the last one when rotate wrote it).
fn vault_with_history() -> Fixture {
    let f = Fixture::with_vault("aes-gcm");
    let src = f.path("src");
    fs::create_dir_all(&src).unwrap();
    fs::write(src.join("a"), b"data").unwrap();
    ok(f.import(&src));
    let wrong = pass_file(f.tmp.path(), "wrong.txt", "not the passphrase");
    failed(run(pv()
        .arg("fsck")
        .arg(&f.vault)
        .arg("--passphrase-file")
        .arg(&wrong)));
    ok(run(pv()
        .args(["keys", "rotate"])
        .arg(&f.vault)
        .arg("--passphrase-file")
        .arg(&f.pass)));
    ok(f.fsck());
    assert_eq!(
        events(&f),
        [
            "init",
            "unseal",
            "unseal-failed",
            "unseal",
            "audit-key-rotated",
            "rotate",
            "unseal"
        ]
    );
    f
}

fn log(f: &Fixture) -> PathBuf {
    f.vault.join("audit.log")
}

fn lines(f: &Fixture) -> Vec<String> {
    fs::read_to_string(log(f))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

fn write_lines(f: &Fixture, lines: &[String]) {
    fs::write(
        log(f),
        lines.iter().map(|l| format!("{l}\n")).collect::<String>(),
    )
    .unwrap();
}

fn records(f: &Fixture) -> Vec<Value> {
    lines(f)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn events(f: &Fixture) -> Vec<String> {
    records(f)
        .iter()
        .map(|r| r["event"].as_str().unwrap().to_string())
        .collect()
}

/// `pivault audit verify VAULT --json` (no passphrase anywhere).
fn verify(f: &Fixture) -> (Out, Value) {
    let out = pv_run([
        OsStr::new("audit"),
        OsStr::new("verify"),
        f.vault.as_os_str(),
        OsStr::new("--json"),
    ]);
    let v = serde_json::from_str(out.stdout.trim())
        .unwrap_or_else(|e| panic!("verify --json is not JSON ({e}): {out:?}"));
    (out, v)
}

/// Asserts verify fails (exit 3) naming `record`, with `words` in the reason.
#[track_caller]
fn assert_tampered_at(f: &Fixture, record: u64, words: &str) {
    let (out, v) = verify(f);
    assert_eq!(out.code, Some(3), "{out:?}");
    assert_eq!(v["intact"], false);
    assert_eq!(v["problem"]["record"], record, "{v}");
    let what = v["problem"]["what"].as_str().unwrap();
    assert!(what.contains(words), "{what:?} should say {words:?}");
    // The text form names it too.
    let text = pv_run([
        OsStr::new("audit"),
        OsStr::new("verify"),
        f.vault.as_os_str(),
    ]);
    assert_eq!(text.code, Some(3));
    assert_contains(&text.stdout, &format!("TAMPERED at record {record}"));
}

/// Replaces `from` by `to` inside record `i` (the edit must apply).
fn edit_record(f: &Fixture, i: usize, from: &str, to: &str) {
    let mut l = lines(f);
    assert!(l[i].contains(from), "record {i}: {}", l[i]);
    l[i] = l[i].replacen(from, to, 1);
    write_lines(f, &l);
}

#[test]
fn records_name_event_slot_user_host_and_reason() {
    let f = vault_with_history();
    let r = records(&f);
    assert_eq!(r[1]["reason"], "import");
    assert_eq!(r[1]["slot"], 0);
    assert_eq!(r[1]["ok"], true);
    assert!(r[1]["user"].as_str().is_some_and(|u| !u.is_empty()));
    assert!(r[1]["host"].as_str().is_some_and(|h| !h.is_empty()));
    assert_eq!(r[2]["ok"], false);
    assert!(r[2]["reason"]
        .as_str()
        .unwrap()
        .contains("passphrase is wrong"));
    assert!(
        r[2].get("sig").is_none(),
        "a failed unseal has no key to sign with"
    );
    assert!(r[3]["sig"].is_string());
    assert_eq!(r[5]["details"]["new_version"], 2);
    for (i, rec) in r.iter().enumerate() {
        assert_eq!(rec["seq"], i as u64);
    }
    let (out, v) = verify(&f);
    assert!(out.ok(), "{out:?}");
    assert_eq!(v["intact"], true);
    assert_eq!(
        (v["records"].as_u64(), v["signed"].as_u64()),
        (Some(7), Some(6))
    );
    // Nothing secret in the log.
    let text = fs::read_to_string(log(&f)).unwrap();
    assert!(!text.contains(PASS) && !text.contains("not the passphrase"));
}

#[test]
fn a_trailing_failed_unseal_is_reported_until_a_signed_record_covers_it() {
    let f = vault_with_history();
    let wrong = pass_file(f.tmp.path(), "wrong2.txt", "nope");
    failed(run(pv()
        .arg("fsck")
        .arg(&f.vault)
        .arg("--passphrase-file")
        .arg(&wrong)));
    let (out, v) = verify(&f);
    assert!(out.ok(), "{out:?}");
    assert_eq!(v["uncovered"], 1);
    ok(f.fsck());
    let (_, v) = verify(&f);
    assert_eq!(v["uncovered"], 0);
    assert_eq!(v["intact"], true);
}

#[test]
fn tampered_first_record_is_named() {
    let f = vault_with_history();
    edit_record(&f, 0, "\"event\":\"init\"", "\"event\":\"inix\"");
    assert_tampered_at(&f, 0, "signature does not verify");
}

#[test]
fn tampered_middle_record_is_named() {
    let f = vault_with_history();
    edit_record(&f, 5, "\"new_version\":2", "\"new_version\":3");
    assert_tampered_at(&f, 5, "edited");
}

#[test]
fn tampered_last_record_is_named() {
    let f = vault_with_history();
    edit_record(&f, 6, "\"reason\":\"fsck\"", "\"reason\":\"export\"");
    assert_tampered_at(&f, 6, "signature does not verify");
}

#[test]
fn tampered_unsigned_record_is_caught_by_the_next_signed_one() {
    let f = vault_with_history();
    edit_record(&f, 2, "passphrase is wrong", "passphrase is right");
    assert_tampered_at(&f, 2, "edited");
}

#[test]
fn stripping_a_signature_is_named() {
    let f = vault_with_history();
    let mut l = lines(&f);
    let cut = l[4].find(",\"sig\":").unwrap();
    l[4] = format!("{}}}", &l[4][..cut]);
    write_lines(&f, &l);
    assert_tampered_at(&f, 4, "unsigned");
}

#[test]
fn deleted_record_is_named() {
    let f = vault_with_history();
    let mut l = lines(&f);
    l.remove(3);
    write_lines(&f, &l);
    assert_tampered_at(&f, 3, "deleted");
}

#[test]
fn inserted_record_is_named() {
    let f = vault_with_history();
    let mut l = lines(&f);
    let copy = l[2].clone();
    l.insert(5, copy);
    write_lines(&f, &l);
    assert_tampered_at(&f, 5, "inserted");
}

#[test]
fn reordered_records_are_named() {
    let f = vault_with_history();
    let mut l = lines(&f);
    l.swap(3, 4);
    write_lines(&f, &l);
    assert_tampered_at(&f, 3, "reordered");
}

#[test]
fn truncated_tail_is_detected_through_the_keystore_anchor() {
    let f = vault_with_history();
    let mut l = lines(&f);
    l.truncate(3);
    write_lines(&f, &l);
    assert_tampered_at(&f, 3, "truncated");
    // An emptied log too.
    fs::write(log(&f), b"").unwrap();
    assert_tampered_at(&f, 0, "truncated");
}

#[test]
fn rewritten_anchor_record_is_detected() {
    let f = vault_with_history();
    // Cut back to the anchor and replace it by a copy of an earlier
    // record renumbered: chain and anchor both break at record 3.
    let mut l = lines(&f);
    l.truncate(3);
    l.push(l[1].replacen("\"seq\":1", "\"seq\":3", 1));
    write_lines(&f, &l);
    let (out, _) = verify(&f);
    assert_eq!(out.code, Some(3), "{out:?}");
}

#[test]
fn show_lists_records_and_filters_by_date() {
    let f = vault_with_history();
    let out = ok(pv_run([
        OsStr::new("audit"),
        OsStr::new("show"),
        f.vault.as_os_str(),
    ]));
    assert_eq!(out.stdout.lines().count(), 7, "{out:?}");
    assert_contains(&out.stdout, "unseal-failed");
    assert_contains(&out.stdout, "(unsigned)");
    let json = ok(pv_run([
        OsStr::new("audit"),
        OsStr::new("show"),
        f.vault.as_os_str(),
        OsStr::new("--json"),
        OsStr::new("--since"),
        OsStr::new("2000-01-01"),
    ]));
    assert_eq!(json.stdout.lines().collect::<Vec<_>>(), lines(&f));
    let none = ok(pv_run([
        OsStr::new("audit"),
        OsStr::new("show"),
        f.vault.as_os_str(),
        OsStr::new("--since"),
        OsStr::new("2999-01-01"),
    ]));
    assert!(none.stdout.is_empty());
    let bad = failed(pv_run([
        OsStr::new("audit"),
        OsStr::new("show"),
        f.vault.as_os_str(),
        OsStr::new("--since"),
        OsStr::new("yesterday-ish"),
    ]));
    assert_contains(&bad.stderr, "is not a date");
}

#[test]
fn records_also_go_to_syslog_when_asked() {
    let f = Fixture::with_vault("aes-gcm");
    let sock_path = f.path("syslog.sock");
    let sock = std::os::unix::net::UnixDatagram::bind(&sock_path).unwrap();
    sock.set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .unwrap();
    let out = run(pv()
        .env("PIVAULT_SYSLOG", "1")
        .env("PIVAULT_SYSLOG_SOCKET", &sock_path)
        .arg("fsck")
        .arg(&f.vault)
        .arg("--passphrase-file")
        .arg(&f.pass));
    assert!(out.ok(), "{out:?}");
    let mut buf = vec![0u8; 65536];
    let n = sock.recv(&mut buf).unwrap();
    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(msg.starts_with("<86>pivault["), "{msg}");
    assert_contains(&msg, "pivault-audit {\"seq\":1,");
    assert_contains(&msg, "\"event\":\"unseal\"");
    // --syslog does the same; a failed unseal is a warning (<84>).
    let wrong = pass_file(f.tmp.path(), "wrong.txt", "nope");
    failed(run(pv()
        .env("PIVAULT_SYSLOG_SOCKET", &sock_path)
        .args(["--syslog", "fsck"])
        .arg(&f.vault)
        .arg("--passphrase-file")
        .arg(&wrong)));
    let n = sock.recv(&mut buf).unwrap();
    let msg = String::from_utf8_lossy(&buf[..n]).into_owned();
    assert!(msg.starts_with("<84>pivault["), "{msg}");
    assert_contains(&msg, "unseal-failed");
}

fn sha256_hex(b: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, b)
        .as_ref()
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

/// Points the keystore's audit anchor at record `seq` of the current log
/// and recomputes the checksum line: what anyone who can write the vault
/// folder can do without a key (only the MAC, under the keyring, notices).
fn forge_anchor(f: &Fixture, seq: u64) {
    let text = fs::read_to_string(f.keystore()).unwrap();
    let line = lines(f)[seq as usize].clone();
    let (head, rest) = text.split_once("\"seq\": ").expect("an anchored keystore");
    let rest = &rest[rest.find(',').unwrap()..];
    let (mid, tail) = rest.split_once("\"hash\": \"").unwrap();
    let tail = &tail[64..];
    let edited = format!(
        "{head}\"seq\": {seq}{mid}\"hash\": \"{}{tail}",
        sha256_hex(line.as_bytes())
    );
    let body = &edited[..edited.len() - 72];
    fs::write(
        f.keystore(),
        format!("{body}sha256 {}\n", sha256_hex(body.as_bytes())),
    )
    .unwrap();
}

/// `pivault audit verify VAULT [extra...]`.
fn verify_with(f: &Fixture, extra: &[&OsStr]) -> Out {
    let mut c = pv();
    c.args(["audit", "verify"]).arg(&f.vault).args(extra);
    run(&mut c)
}

#[test]
fn truncated_log_with_a_forged_anchor_is_caught_only_with_a_passphrase() {
    let f = vault_with_history();
    // Genuine: with a passphrase the MAC vouches for key and anchor.
    let out = ok(verify_with(
        &f,
        &[OsStr::new("--passphrase-file"), f.pass.as_os_str()],
    ));
    assert_contains(&out.stdout, "keystore MAC verified (unsealed with slot 0)");
    assert_eq!(
        events(&f).last().unwrap(),
        "unseal",
        "the unseal is recorded"
    );
    // --unseal takes the passphrase from the environment; without it (or
    // another unlock option) a passphrase in the environment is not used.
    let out = ok(run(pv()
        .env("PIVAULT_PASSPHRASE", PASS)
        .args(["audit", "verify"])
        .arg(&f.vault)
        .arg("--unseal")));
    assert_contains(&out.stdout, "keystore MAC verified");
    let n = lines(&f).len();
    let out = ok(run(pv()
        .env("PIVAULT_PASSPHRASE", PASS)
        .args(["audit", "verify"])
        .arg(&f.vault)));
    assert_contains(&out.stdout, "NOT CHECKED");
    assert_eq!(lines(&f).len(), n, "verify without a secret writes nothing");

    // The attacker cuts the log back to record 1 (hiding the failed
    // unseal, the rotation and what came after) and moves the keystore's
    // anchor to match.
    let mut l = lines(&f);
    l.truncate(2);
    write_lines(&f, &l);
    forge_anchor(&f, 1);
    let keystore = fs::read(f.keystore()).unwrap();
    let before = snapshot(&f.vault);

    // Without a secret the log looks intact, and the output says plainly
    // that the anchor was not authenticated.
    let out = ok(verify_with(&f, &[]));
    assert_contains(&out.stdout, "intact: 2 records");
    assert_contains(
        &out.stdout,
        "NOT CHECKED: the keystore's MAC (no passphrase given)",
    );
    assert_contains(&out.stdout, "--passphrase-file");
    let (out, v) = verify(&f);
    assert!(out.ok(), "{out:?}");
    assert_eq!(v["intact"], true);
    assert_eq!(v["keystore_mac"], "not-checked");

    // With the passphrase the forgery shows: exit 3, named.
    let out = verify_with(&f, &[OsStr::new("--passphrase-file"), f.pass.as_os_str()]);
    assert_eq!(out.code, Some(3), "{out:?}");
    assert_contains(&out.stdout, "FORGED keystore");
    assert_contains(&out.stdout, "by someone without the keys");
    assert!(!out.stdout.contains("keystore MAC verified"), "{out:?}");
    let json = verify_with(
        &f,
        &[
            OsStr::new("--json"),
            OsStr::new("--passphrase-file"),
            f.pass.as_os_str(),
        ],
    );
    assert_eq!(json.code, Some(3), "{json:?}");
    let v: Value = serde_json::from_str(json.stdout.trim()).unwrap();
    assert_eq!(v["keystore_mac"], "failed");
    assert_eq!(v["intact"], false);
    assert!(v["keystore_problem"]
        .as_str()
        .unwrap()
        .contains("someone without the keys"));
    // Nothing but the log's failed-unseal records changed: the keystore
    // was not rewritten (a rewrite would re-anchor the cut log).
    assert_unchanged(&f.vault, &before);
    assert_eq!(fs::read(f.keystore()).unwrap(), keystore);
    // A wrong passphrase is an error, not a finding.
    let wrong = pass_file(f.tmp.path(), "wrong.txt", "not it");
    let out = failed(verify_with(
        &f,
        &[OsStr::new("--passphrase-file"), wrong.as_os_str()],
    ));
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_contains(&out.stderr, "passphrase is wrong");
}
