//! Slot lockouts against a writer of the vault directory (issue 15, point
//! 3): whoever can write `audit.log` may lock a slot (denial of service),
//! but must never gain guesses. Each test plays one attack through the
//! real binary.

mod common;

use common::*;
use std::ffi::OsStr;
use std::path::{Path, PathBuf};

const SLOT1_PASS: &str = "slot one has its own long passphrase";

/// `pivault keys ARGS --passphrase-file PASS` (unsealed with slot 0).
fn keys(f: &Fixture, args: &[&OsStr]) -> Out {
    let mut c = pv();
    c.arg("keys")
        .args(args)
        .arg("--passphrase-file")
        .arg(&f.pass);
    run(&mut c)
}

fn fsck_with(f: &Fixture, pass: &Path) -> Out {
    run(pv()
        .arg("fsck")
        .arg(&f.vault)
        .arg("--passphrase-file")
        .arg(pass))
}

/// A vault whose slot 1 (passphrase [`SLOT1_PASS`]) locks after two
/// failed unseals; returns the fixture and slot 1's passphrase file.
fn vault_with_lockout() -> (Fixture, PathBuf) {
    let f = Fixture::with_vault("aes-gcm");
    let p1 = pass_file(f.tmp.path(), "p1", SLOT1_PASS);
    ok(keys(
        &f,
        &[
            OsStr::new("add-passphrase"),
            f.vault.as_os_str(),
            OsStr::new("--insecure-test-kdf"),
            OsStr::new("--new-passphrase-file"),
            p1.as_os_str(),
        ],
    ));
    ok(keys(
        &f,
        &[
            OsStr::new("policy"),
            f.vault.as_os_str(),
            OsStr::new("--slot"),
            OsStr::new("1"),
            OsStr::new("--max-failures"),
            OsStr::new("2"),
        ],
    ));
    // Slot 1 opens before any failure.
    ok(fsck_with(&f, &p1));
    (f, p1)
}

/// Two failed unseals, one backoff apart: slot 1 is locked after them.
fn lock_slot1(f: &Fixture, p1: &Path) {
    let wrong = pass_file(f.tmp.path(), "wrong", "not the passphrase of any slot");
    failed(fsck_with(f, &wrong));
    std::thread::sleep(std::time::Duration::from_millis(1100));
    failed(fsck_with(f, &wrong));
    let out = failed(fsck_with(f, p1));
    assert_contains(&out.stderr, "slot 1 is locked");
}

#[test]
fn appended_unsigned_success_lines_do_not_unlock_a_locked_slot() {
    let (f, p1) = vault_with_lockout();
    lock_slot1(&f, &p1);
    // The attacker appends, unsigned, what a success and an unlock of slot
    // 1 look like, chained to the log's last line.
    let log = f.vault.join("audit.log");
    let text = std::fs::read_to_string(&log).unwrap();
    let last: serde_json::Value = serde_json::from_str(text.lines().last().unwrap()).unwrap();
    let mut forged = String::new();
    for (i, event) in ["unseal", "slot-unlock"].iter().enumerate() {
        let mut r = last.clone();
        r["seq"] = (last["seq"].as_u64().unwrap() + 1 + i as u64).into();
        r["event"] = (*event).into();
        r["ok"] = true.into();
        r["slot"] = 1.into();
        r.as_object_mut().unwrap().remove("sig");
        forged.push_str(&serde_json::to_string(&r).unwrap());
        forged.push('\n');
    }
    std::fs::write(&log, format!("{text}{forged}")).unwrap();
    let out = failed(fsck_with(&f, &p1));
    assert_contains(&out.stderr, "slot 1 is locked");
}

#[test]
fn deleted_audit_log_does_not_unlock_a_locked_slot() {
    let (f, p1) = vault_with_lockout();
    lock_slot1(&f, &p1);
    std::fs::remove_file(f.vault.join("audit.log")).unwrap();
    let out = failed(fsck_with(&f, &p1));
    assert_contains(&out.stderr, "slot 1 has a lockout");
    assert_contains(&out.stderr, "cut or deleted");
    assert_contains(&out.stderr, "pivault keys unlock");
}

#[test]
fn audit_log_cut_before_the_keystores_anchor_does_not_unlock() {
    let (f, p1) = vault_with_lockout();
    lock_slot1(&f, &p1);
    // Keep only the first record: everything the keystore knows of is gone.
    let log = f.vault.join("audit.log");
    let text = std::fs::read_to_string(&log).unwrap();
    let first = text.lines().next().unwrap();
    std::fs::write(&log, format!("{first}\n")).unwrap();
    let out = failed(fsck_with(&f, &p1));
    assert_contains(&out.stderr, "slot 1 has a lockout");
    // An administrator with another slot unlocks it, which moves the
    // keystore's anchor; then slot 1 opens again.
    ok(keys(
        &f,
        &[
            OsStr::new("unlock"),
            f.vault.as_os_str(),
            OsStr::new("--slot"),
            OsStr::new("1"),
        ],
    ));
    ok(fsck_with(&f, &p1));
}

/// Runs `cmd`; true when it succeeded.
fn sh(cmd: &str, args: &[&OsStr]) -> bool {
    std::process::Command::new(cmd)
        .args(args)
        .status()
        .is_ok_and(|s| s.success())
}

#[test]
fn an_attempt_that_cannot_be_recorded_is_not_made() {
    if !is_root() {
        skip("an_attempt_that_cannot_be_recorded_is_not_made: needs root (a read-only bind mount of audit.log)");
        return;
    }
    let (f, p1) = vault_with_lockout();
    // The attacker makes audit.log unwritable while it still reads as it
    // did: a read-only bind mount over it (file modes do not stop root).
    let log = f.vault.join("audit.log");
    let l = log.as_os_str();
    assert!(sh("mount", &[OsStr::new("--bind"), l, l]));
    let ro = sh(
        "mount",
        &[OsStr::new("-o"), OsStr::new("remount,ro,bind"), l],
    );
    let ks = std::fs::read(f.keystore()).unwrap();
    let logged = std::fs::read(&log).unwrap();
    let out = fsck_with(&f, &p1);
    sh("umount", &[l]);
    assert!(ro, "could not remount audit.log read-only");
    let out = failed(out);
    assert_contains(&out.stderr, "slot 1 has a lockout");
    assert_contains(&out.stderr, "could not be recorded");
    assert_eq!(std::fs::read(f.keystore()).unwrap(), ks, "keystore changed");
    assert_eq!(std::fs::read(&log).unwrap(), logged, "audit.log changed");
}

/// The leaver procedure's rotation hands the audit log to a new signing
/// key; the unseals that reset a slot's failure count before it stay
/// signed by the old key and must still count as signed: a slot with a
/// lockout that was used more times than its limit keeps opening after
/// `keys rotate`.
#[test]
fn a_rotation_does_not_lock_a_slot_that_was_used_often() {
    let (f, p1) = vault_with_lockout();
    for _ in 0..4 {
        ok(fsck_with(&f, &p1));
    }
    ok(keys(&f, &[OsStr::new("rotate"), f.vault.as_os_str()]));
    ok(fsck_with(&f, &p1));
    ok(fsck_with(&f, &p1));
    let list = ok(run(pv().args(["keys", "list"]).arg(&f.vault)));
    assert!(!list.stdout.contains("LOCKED"), "{}", list.stdout);
}
