//! Key rotation, re-encryption and retirement through the real binary:
//! the whole rotate → reencrypt → retire cycle, a re-encryption killed
//! mid-way, a stale keystore put back after a rotation, and the refusals.

mod common;

use common::*;
use serde_json::Value;
use std::collections::BTreeMap;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

/// Every regular file under `root`, by relative path, with its bytes.
fn files_under(root: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in fs::read_dir(&d).unwrap() {
            let e = e.unwrap();
            let t = e.file_type().unwrap();
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file() {
                let rel = e.path().strip_prefix(root).unwrap().to_path_buf();
                out.insert(rel, fs::read(e.path()).unwrap());
            }
        }
    }
    out
}

/// The data-key version in a ciphertext file's header (bytes 8..12).
fn key_version(host: &Path) -> u32 {
    let b = fs::read(host).unwrap();
    u32::from_be_bytes(b[8..12].try_into().unwrap())
}

/// Content files of the vault by data-key version. Tolerates files that
/// vanish while it looks (a re-encryption may be running).
fn versions(vault: &Path) -> BTreeMap<u32, usize> {
    let mut m = BTreeMap::new();
    let mut stack = vec![vault.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = fs::read_dir(&d) else { continue };
        for e in rd.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(t) = e.file_type() else { continue };
            if t.is_dir() {
                stack.push(e.path());
            } else if t.is_file()
                && !name.starts_with('.')
                && !name.starts_with("pivault.")
                && name != "audit.log"
            {
                let mut b = [0u8; 12];
                let read = fs::File::open(e.path())
                    .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut b));
                if read.is_ok() {
                    *m.entry(u32::from_be_bytes(b[8..12].try_into().unwrap()))
                        .or_default() += 1;
                }
            }
        }
    }
    m
}

fn data_keys(f: &Fixture) -> Vec<u64> {
    f.keys_json()["data_keys"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k["version"].as_u64().unwrap())
        .collect()
}

fn rotate(f: &Fixture) -> Out {
    let mut c = pv();
    c.args(["keys", "rotate"]).arg(&f.vault);
    c.arg("--passphrase-file").arg(&f.pass);
    run(&mut c)
}

fn reencrypt(f: &Fixture, retire: bool) -> Out {
    let extra: &[&OsStr] = if retire {
        &[OsStr::new("--retire")]
    } else {
        &[]
    };
    f.unlocked("reencrypt", extra)
}

fn small_tree(root: &Path, seed: u64) {
    fs::create_dir_all(root.join("sub/deeper")).unwrap();
    fs::write(root.join("empty"), b"").unwrap();
    fs::write(root.join("one-block"), random_bytes(seed, 4096)).unwrap();
    fs::write(root.join("sub/odd"), random_bytes(seed + 1, 70_001)).unwrap();
    fs::write(root.join("sub/deeper/big"), random_bytes(seed + 2, 1 << 20)).unwrap();
    std::os::unix::fs::symlink("sub/odd", root.join("link")).unwrap();
}

#[track_caller]
fn assert_exports_equal(f: &Fixture, src: &Path, dest_name: &str) {
    let dest = f.path(dest_name);
    ok(f.export(&dest));
    assert_eq!(files_under(&dest), files_under(src), "exported tree");
}

/// The acceptance test of rotation: files stay readable across a rotation,
/// re-encryption moves them all to the new version, and after retirement
/// a ciphertext copy taken before the rotation no longer decrypts.
#[test]
fn rotate_reencrypt_retire_cycle_retires_the_old_key() {
    let f = Fixture::with_vault("aes-gcm");
    let src = f.path("src");
    small_tree(&src, 1);
    ok(f.import(&src));
    assert_eq!(data_keys(&f), vec![1]);
    let big = content_file_of_len(&f.vault, ct_len(1 << 20, AES_OVERHEAD));
    let old_copy = fs::read(&big).unwrap();
    assert_eq!(key_version(&big), 1);

    let out = ok(rotate(&f));
    assert_contains(&out.stderr, "Added data key version 2");
    assert_eq!(data_keys(&f), vec![1, 2]);
    // Old files stay readable; new files use the new version.
    assert_exports_equal(&f, &src, "out1");
    let src2 = f.path("src2");
    fs::create_dir_all(&src2).unwrap();
    fs::write(src2.join("after-rotation"), b"written under version 2").unwrap();
    ok(f.import(&src2));
    let v = versions(&f.vault);
    assert_eq!(v.get(&2), Some(&1), "{v:?}");

    // Re-encrypt without retiring: everything moves, both keys remain.
    let out = ok(reencrypt(&f, false));
    assert_contains(&out.stderr, "Re-encrypted 4 files");
    assert_eq!(
        versions(&f.vault).keys().copied().collect::<Vec<_>>(),
        vec![2]
    );
    assert_eq!(data_keys(&f), vec![1, 2]);
    let mut both = files_under(&src);
    both.extend(files_under(&src2));
    let dest = f.path("out2");
    ok(f.export(&dest));
    assert_eq!(files_under(&dest), both);

    // Before retirement an old copy still opens...
    let new_bytes = fs::read(&big).unwrap();
    fs::write(&big, &old_copy).unwrap();
    ok(f.fsck());
    // ...and a second run moves it again, then retires version 1.
    let out = ok(reencrypt(&f, true));
    assert_contains(&out.stderr, "Re-encrypted 1 files");
    assert_contains(&out.stderr, "Retired data key versions [1]");
    assert_eq!(data_keys(&f), vec![2]);
    // Retiring also moved the names to a new key: the file has a new host
    // name.
    assert_contains(&out.stderr, "Moved");
    assert!(!big.exists(), "the host name did not change");
    let big = content_file_of_len(&f.vault, ct_len(1 << 20, AES_OVERHEAD));
    assert_ne!(fs::read(&big).unwrap(), new_bytes, "a fresh rewrite");

    // The retired key is gone: the old ciphertext put back is damage.
    fs::write(&big, &old_copy).unwrap();
    let out = f.export(&f.path("out3"));
    assert_eq!(out.code, Some(3), "{out:?}");
    assert_contains(&out.stderr, "data key version 1 is not in the keyring");
    assert_contains(&out.stderr, "sub/deeper/big");
    let out = f.fsck();
    assert_eq!(out.code, Some(3), "{out:?}");
    assert_contains(&out.stdout, "1 damaged");
}

/// A re-encryption killed with SIGKILL mid-way leaves every file whole
/// under one version; the re-run cleans up and completes.
#[test]
fn killed_reencrypt_leaves_every_file_whole_and_rerun_completes() {
    let f = Fixture::with_vault("aes-gcm");
    let src = f.path("src");
    for d in 0..4 {
        let dir = src.join(format!("d{d}"));
        fs::create_dir_all(&dir).unwrap();
        for i in 0..150 {
            let seed = (d * 1000 + i) as u64;
            fs::write(dir.join(format!("f{i}")), random_bytes(seed, 65_536 + i)).unwrap();
        }
    }
    ok(f.import(&src));
    ok(rotate(&f));

    let mut child = std_cmd(bin())
        .arg("reencrypt")
        .arg(&f.vault)
        .arg("--passphrase-file")
        .arg(&f.pass)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Kill it as soon as the first rewritten files are in place.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if versions(&f.vault).contains_key(&2) {
            break;
        }
        if child.try_wait().unwrap().is_some() {
            panic!("reencrypt finished before it could be killed mid-way");
        }
        assert!(Instant::now() < deadline, "no file was rewritten in time");
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let v = versions(&f.vault);
    assert!(
        v.get(&1).copied().unwrap_or(0) > 0,
        "killed mid-way, some files are still under version 1: {v:?}"
    );

    // Every file exports correctly, whichever version it is under.
    assert_exports_equal(&f, &src, "after-kill");
    let out = ok(f.fsck());
    assert_contains(&out.stdout, "0 damaged");

    // The re-run finishes the job and retires the old key.
    let out = ok(reencrypt(&f, true));
    assert_contains(&out.stderr, "Retired data key versions [1]");
    assert_eq!(
        versions(&f.vault).keys().copied().collect::<Vec<_>>(),
        vec![2]
    );
    let leftovers: Vec<_> = snapshot(&f.vault)
        .into_keys()
        .filter(|p| p.to_string_lossy().contains(".pivault-tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "temporary files left: {leftovers:?}");
    assert_exports_equal(&f, &src, "after-rerun");
}

/// A keystore backup from before a rotation, put back, lacks the new data
/// key: files written under it are reported as damaged, never
/// mis-decrypted, and the older files still export.
#[test]
fn stale_keystore_put_back_reports_newer_files_as_damaged() {
    let f = Fixture::with_vault("xchacha");
    let src = f.path("src");
    small_tree(&src, 7);
    ok(f.import(&src));
    let stale = f.path("stale.keystore");
    ok(pv_run([
        OsStr::new("keys"),
        OsStr::new("backup"),
        f.vault.as_os_str(),
        stale.as_os_str(),
    ]));
    ok(rotate(&f));
    let src2 = f.path("src2");
    fs::create_dir_all(&src2).unwrap();
    fs::write(src2.join("new-under-v2"), random_bytes(9, 10_000)).unwrap();
    ok(f.import(&src2));

    fs::copy(&stale, f.keystore()).unwrap();
    assert_eq!(data_keys(&f), vec![1]);
    let dest = f.path("out");
    let out = f.export(&dest);
    assert_eq!(out.code, Some(3), "{out:?}");
    assert_contains(&out.stderr, "new-under-v2");
    assert_contains(&out.stderr, "data key version 2 is not in the keyring");
    assert_eq!(files_under(&dest), files_under(&src), "older files export");
}

/// While something holds the vault lock (a mount), reencrypt refuses and
/// changes nothing.
#[test]
fn reencrypt_refuses_while_the_vault_is_in_use() {
    let f = Fixture::with_vault("aes-gcm");
    let src = f.path("src");
    small_tree(&src, 3);
    ok(f.import(&src));
    ok(rotate(&f));
    let lock = f.vault.join("pivault.lock");
    fs::write(&lock, b"").unwrap();
    let mut holder = std::process::Command::new("flock")
        .arg(&lock)
        .args(["sleep", "60"])
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    // Wait until flock(1) holds the lock.
    loop {
        let probe = std::process::Command::new("flock")
            .args(["-n"])
            .arg(&lock)
            .arg("true")
            .status()
            .unwrap();
        if !probe.success() {
            break;
        }
        assert!(Instant::now() < deadline, "flock(1) did not take the lock");
        std::thread::sleep(Duration::from_millis(20));
    }
    let before = snapshot(&f.vault);
    let out = failed(reencrypt(&f, true));
    assert_contains(&out.stderr, "pivault.lock");
    assert_contains(&out.stderr, "in use");
    assert_unchanged(&f.vault, &before);
    holder.kill().unwrap();
    holder.wait().unwrap();
}

/// A damaged file under the old version cannot be moved: retirement is
/// refused and the keystore is left exactly as it was.
#[test]
fn retire_is_refused_while_a_damaged_old_file_may_need_the_old_key() {
    let f = Fixture::with_vault("aes-gcm");
    let src = f.path("src");
    small_tree(&src, 5);
    ok(f.import(&src));
    ok(rotate(&f));
    let big = content_file_of_len(&f.vault, ct_len(1 << 20, AES_OVERHEAD));
    flip_byte(&big, HEADER_LEN + 5 * (BLOCK + AES_OVERHEAD) + 40);
    let keystore = fs::read(f.keystore()).unwrap();
    let out = failed(reencrypt(&f, true));
    assert_contains(&out.stderr, "sub/deeper/big");
    assert_contains(&out.stderr, "not retiring data key versions [1]");
    assert_eq!(fs::read(f.keystore()).unwrap(), keystore);
    assert_eq!(data_keys(&f), vec![1, 2]);
    assert_eq!(key_version(&big), 1, "the damaged file is left as it was");
}

fn add_recovery(f: &Fixture) -> (Out, String) {
    let mut c = pv();
    c.args(["keys", "add-recovery"]).arg(&f.vault);
    c.arg("--passphrase-file").arg(&f.pass);
    let out = ok(run(&mut c));
    let key = out.stdout.trim_end().to_string();
    (out, key)
}

/// `pivault fsck VAULT --recovery-key-file FILE`.
fn fsck_with_recovery(f: &Fixture, key_file: &Path) -> Out {
    run(pv()
        .arg("fsck")
        .arg(&f.vault)
        .arg("--recovery-key-file")
        .arg(key_file))
}

#[test]
fn recovery_key_is_printed_once_and_unseals_across_a_rotation() {
    let f = Fixture::with_vault("aes-gcm");
    let (out, key) = add_recovery(&f);
    // The key is the only line on stdout: PVRK- and 11 groups of 5.
    assert_eq!(out.stdout.lines().count(), 1, "{out:?}");
    let groups: Vec<&str> = key.split('-').collect();
    assert_eq!(groups[0], "PVRK");
    assert_eq!(groups.len(), 12);
    assert!(groups[1..].iter().all(|g| g.len() == 5));
    assert_contains(&out.stderr, "shown only this once");
    assert!(
        !out.stderr.contains(&key),
        "the key is not repeated on stderr"
    );
    let kinds: Vec<String> = f.keys_json()["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(kinds, ["passphrase", "recovery"]);
    // Never in the keystore or the log.
    for file in ["pivault.keystore", "audit.log"] {
        let text = fs::read_to_string(f.vault.join(file)).unwrap();
        assert!(!text.contains(&key[5..]), "{file} holds the key");
    }

    let key_file = f.path("recovery.txt");
    fs::write(&key_file, format!("{key}\n")).unwrap();
    ok(fsck_with_recovery(&f, &key_file));
    // Typed loosely (lower case, spaces) it still opens; from the environment too.
    fs::write(&key_file, key.to_lowercase().replace('-', " ")).unwrap();
    ok(fsck_with_recovery(&f, &key_file));
    ok(run(pv()
        .env("PIVAULT_RECOVERY_KEY", &key)
        .arg("fsck")
        .arg(&f.vault)));

    // A rotation made with the passphrase reaches the recovery slot.
    ok(rotate(&f));
    let out = ok(run(pv()
        .env("PIVAULT_RECOVERY_KEY", &key)
        .args(["keys", "rotate"])
        .arg(&f.vault)));
    assert_contains(&out.stderr, "Added data key version 3");
    assert_eq!(data_keys(&f), vec![1, 2, 3]);
}

#[test]
fn recovery_key_typo_is_caught_by_the_checksum_and_changes_nothing() {
    let f = Fixture::with_vault("aes-gcm");
    let (_, key) = add_recovery(&f);
    // One character changed in the third group.
    let mut chars: Vec<char> = key.chars().collect();
    let at = 5 + 6 * 2 + 2;
    chars[at] = if chars[at] == 'X' { 'Y' } else { 'X' };
    let typo: String = chars.into_iter().collect();
    let key_file = f.path("typo.txt");
    fs::write(&key_file, &typo).unwrap();
    let before = snapshot(&f.vault);
    let out = failed(fsck_with_recovery(&f, &key_file));
    assert_contains(&out.stderr, "recovery key has a typo");
    assert_contains(&out.stderr, "checksum");
    assert_contains(&out.stderr, "nothing was tried");
    // A key of the wrong length, and a character recovery keys never use.
    fs::write(&key_file, &key[..key.len() - 6]).unwrap();
    let out = failed(fsck_with_recovery(&f, &key_file));
    assert_contains(&out.stderr, "characters where a recovery key has 55");
    fs::write(&key_file, key.replacen('-', "-U", 1)).unwrap();
    failed(fsck_with_recovery(&f, &key_file));
    assert_unchanged(&f.vault, &before);
    // The attempts are in the audit log as failed unseals.
    let log = fs::read_to_string(f.vault.join("audit.log")).unwrap();
    assert_eq!(log.matches("\"unseal-failed\"").count(), 3);
}

#[test]
fn a_well_formed_but_wrong_recovery_key_is_refused() {
    let f = Fixture::with_vault("xchacha");
    let key_file = f.path("k.txt");
    // No recovery slot yet: said so.
    let (_, other_vault_key) = {
        let g = Fixture::with_vault("aes-gcm");
        add_recovery(&g)
    };
    fs::write(&key_file, &other_vault_key).unwrap();
    let out = failed(fsck_with_recovery(&f, &key_file));
    assert_contains(&out.stderr, "has no recovery slot");
    add_recovery(&f);
    let before = snapshot(&f.vault);
    let out = failed(fsck_with_recovery(&f, &key_file));
    assert_contains(&out.stderr, "recovery key is wrong");
    assert_unchanged(&f.vault, &before);
}

/// `pivault keys SUB VAULT [extra] --passphrase-file PASS`.
fn keys_cmd(f: &Fixture, sub: &str, pass: &Path, extra: &[&str]) -> Out {
    let mut c = pv();
    c.arg("keys").arg(sub).arg(&f.vault).args(extra);
    c.arg("--passphrase-file").arg(pass);
    run(&mut c)
}

/// A vault with a second passphrase slot (slot 1, passphrase
/// "second passphrase, marble tundra").
fn two_slots() -> (Fixture, PathBuf) {
    let f = Fixture::with_vault("aes-gcm");
    let second = pass_file(
        f.tmp.path(),
        "second.txt",
        "second passphrase, marble tundra",
    );
    let mut c = pv();
    c.args(["keys", "add-passphrase"]).arg(&f.vault);
    c.arg("--passphrase-file").arg(&f.pass);
    c.arg("--new-passphrase-file").arg(&second);
    c.arg("--insecure-test-kdf");
    ok(run(&mut c));
    (f, second)
}

fn fsck_with(f: &Fixture, pass: &Path) -> Out {
    run(pv()
        .arg("fsck")
        .arg(&f.vault)
        .arg("--passphrase-file")
        .arg(pass))
}

fn slot_json(f: &Fixture, id: usize) -> Value {
    f.keys_json()["slots"][id].clone()
}

#[test]
fn policy_restricts_users_and_expiry_and_list_shows_it() {
    let (f, second) = two_slots();
    ok(keys_cmd(
        &f,
        "policy",
        &f.pass,
        &["--slot", "1", "--users", "nobody-else,auditor"],
    ));
    let s = slot_json(&f, 1);
    assert_eq!(
        s["policy"]["users"],
        serde_json::json!(["nobody-else", "auditor"])
    );
    let text = ok(pv_run([
        OsStr::new("keys"),
        OsStr::new("list"),
        f.vault.as_os_str(),
    ]));
    assert_contains(&text.stdout, "LAST USE");
    assert_contains(&text.stdout, "users=nobody-else,auditor");

    let before = fs::read(f.keystore()).unwrap();
    let out = failed(fsck_with(&f, &second));
    assert_contains(
        &out.stderr,
        "slot 1 may only be unsealed by nobody-else, auditor",
    );
    assert_eq!(fs::read(f.keystore()).unwrap(), before);
    // The other slot is unaffected, and its use shows in the list.
    ok(f.fsck());
    assert!(slot_json(&f, 0)["last_use"].as_u64().is_some());
    assert!(slot_json(&f, 1)["last_use"].is_null());

    // Expiry: a date in the past refuses, `never` lifts it.
    ok(keys_cmd(
        &f,
        "policy",
        &f.pass,
        &["--slot", "1", "--users", "", "--expires", "2001-01-01"],
    ));
    let out = failed(fsck_with(&f, &second));
    assert_contains(&out.stderr, "slot 1 expired at 2001-01-01T23:59:59Z");
    ok(keys_cmd(
        &f,
        "policy",
        &f.pass,
        &["--slot", "1", "--expires", "never"],
    ));
    ok(fsck_with(&f, &second));
    assert!(
        slot_json(&f, 1)["policy"].is_null(),
        "nothing left to restrict"
    );
    let bad = failed(keys_cmd(
        &f,
        "policy",
        &f.pass,
        &["--slot", "1", "--expires", "soon"],
    ));
    assert_contains(&bad.stderr, "is not a date");
    let bad = failed(keys_cmd(
        &f,
        "policy",
        &f.pass,
        &["--slot", "7", "--max-failures", "2"],
    ));
    assert_contains(&bad.stderr, "slot 7 does not exist");
}

#[test]
fn failures_back_off_then_lock_until_another_slot_unlocks() {
    let (f, second) = two_slots();
    ok(keys_cmd(
        &f,
        "policy",
        &f.pass,
        &["--slot", "1", "--max-failures", "2"],
    ));
    let wrong = pass_file(f.tmp.path(), "wrong.txt", "wrong");
    // Slot 0 is tried too (no policy): name slot 1 explicitly via its own
    // failures only; the count is per slot.
    failed(fsck_with(&f, &wrong));
    assert_eq!(slot_json(&f, 1)["failures"], 1);
    // Right away, slot 1 is in its back-off: not tried, not counted.
    let out = failed(fsck_with(&f, &second));
    assert_contains(
        &out.stderr,
        "slot 1 had 1 failed unseals in a row; try again in",
    );
    assert_eq!(slot_json(&f, 1)["failures"], 1);
    std::thread::sleep(Duration::from_millis(1100));
    failed(fsck_with(&f, &wrong));
    let s = slot_json(&f, 1);
    assert_eq!(
        (s["failures"].as_u64(), s["locked"].as_bool()),
        (Some(2), Some(true))
    );
    let text = ok(pv_run([
        OsStr::new("keys"),
        OsStr::new("list"),
        f.vault.as_os_str(),
    ]));
    assert_contains(&text.stdout, "LOCKED after 2 failures");

    // Locked: even the right passphrase is refused, long after the back-off.
    std::thread::sleep(Duration::from_millis(2100));
    let out = failed(fsck_with(&f, &second));
    assert_contains(&out.stderr, "slot 1 is locked after 2 failed unseals");
    assert_contains(&out.stderr, "pivault keys unlock VAULT --slot 1");
    // Another slot's holder unlocks it.
    let out = ok(keys_cmd(&f, "unlock", &f.pass, &["--slot", "1"]));
    assert_contains(&out.stderr, "Unlocked slot 1");
    ok(fsck_with(&f, &second));
    assert_eq!(slot_json(&f, 1)["failures"], 0);
    // A slot cannot unlock itself.
    let out = failed(keys_cmd(&f, "unlock", &second, &["--slot", "1"]));
    assert_contains(&out.stderr, "cannot unlock itself");
    // All of it is in the audit log, which still verifies.
    let log = fs::read_to_string(f.vault.join("audit.log")).unwrap();
    assert!(log.contains("\"event\":\"policy\"") && log.contains("\"event\":\"slot-unlock\""));
    ok(pv_run([
        OsStr::new("audit"),
        OsStr::new("verify"),
        f.vault.as_os_str(),
    ]));
}

#[test]
fn a_policy_removed_by_editing_the_keystore_fails_closed() {
    let (f, second) = two_slots();
    ok(keys_cmd(
        &f,
        "policy",
        &f.pass,
        &["--slot", "1", "--users", "nobody-else"],
    ));
    let ks = fs::read_to_string(f.keystore()).unwrap();
    let start = ks.find("\"policy\"").unwrap();
    let end = start + ks[start..].find('}').unwrap() + 1;
    let mut edited = format!("{}{}", &ks[..start], &ks[end..]);
    // Drop the comma the member left behind, then re-checksum as an attacker would.
    edited = edited
        .replacen(",\n      \n", "\n", 1)
        .replacen(",\n      ,", ",", 1);
    let body = &edited[..edited.len() - 72];
    let sum = hex_sha256(body.as_bytes());
    let forged = format!("{body}sha256 {sum}\n");
    fs::write(f.keystore(), forged).unwrap();
    let out = failed(fsck_with(&f, &second));
    assert_contains(&out.stderr, "by someone without the keys");
}

fn hex_sha256(b: &[u8]) -> String {
    ring::digest::digest(&ring::digest::SHA256, b)
        .as_ref()
        .iter()
        .map(|x| format!("{x:02x}"))
        .collect()
}

fn add_shares(f: &Fixture, k: &str, n: &str, dir: &Path) -> Out {
    keys_cmd(
        f,
        "add-shares",
        &f.pass,
        &[
            "--threshold",
            k,
            "--shares",
            n,
            "--out-dir",
            dir.to_str().unwrap(),
        ],
    )
}

fn fsck_with_shares(f: &Fixture, shares: &[&Path]) -> Out {
    let mut c = pv();
    c.arg("fsck").arg(&f.vault);
    for s in shares {
        c.arg("--share-file").arg(s);
    }
    run(&mut c)
}

/// Rewrites a share file's JSON line through `edit`, recomputing the
/// checksum when `rechecksum` (as a forger would).
fn edit_share(path: &Path, edit: impl FnOnce(&mut Value), rechecksum: bool) {
    let text = fs::read_to_string(path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    let mut v: Value = serde_json::from_str(lines[1]).unwrap();
    edit(&mut v);
    let head = format!("{}\n{}\n", lines[0], serde_json::to_string(&v).unwrap());
    let sum = if rechecksum {
        hex_sha256(head.as_bytes())
    } else {
        lines[2].trim_start_matches("sha256 ").to_string()
    };
    fs::write(path, format!("{head}sha256 {sum}\n")).unwrap();
}

#[test]
fn any_k_of_n_shares_unseal_and_fewer_are_refused() {
    let f = Fixture::with_vault("aes-gcm");
    let dir = f.path("shares");
    let out = ok(add_shares(&f, "2", "3", &dir));
    let files: Vec<PathBuf> = out.stdout.lines().map(PathBuf::from).collect();
    assert_eq!(files.len(), 3, "{out:?}");
    assert_contains(&out.stderr, "any 2 of the 3 share files");
    let s = slot_json(&f, 1);
    assert_eq!(
        (
            s["kind"].as_str(),
            s["threshold"].as_u64(),
            s["shares"].as_u64()
        ),
        (Some("shares"), Some(2), Some(3))
    );
    for pair in [[0, 1], [1, 2], [0, 2]] {
        ok(fsck_with_shares(&f, &[&files[pair[0]], &files[pair[1]]]));
    }
    ok(fsck_with_shares(&f, &[&files[0], &files[1], &files[2]]));
    let before = snapshot(&f.vault);
    let out = failed(fsck_with_shares(&f, &[&files[2]]));
    assert_contains(&out.stderr, "slot 1 needs 2 shares, 1 given: 1 more needed");
    let out = failed(fsck_with_shares(&f, &[&files[0], &files[0]]));
    assert_contains(&out.stderr, "it is the same share (number 1)");
    assert_unchanged(&f.vault, &before);
    // Refusals of missing shares are not counted as failed attempts.
    assert_eq!(slot_json(&f, 1)["failures"], 0);
}

#[test]
fn damaged_forged_and_foreign_shares_are_named() {
    let f = Fixture::with_vault("aes-gcm");
    let dir = f.path("shares");
    let files: Vec<PathBuf> = ok(add_shares(&f, "2", "3", &dir))
        .stdout
        .lines()
        .map(PathBuf::from)
        .collect();
    let before = snapshot(&f.vault);

    // Damaged: a byte changed, checksum left as it was.
    let damaged = f.path("damaged.pvshare");
    fs::copy(&files[1], &damaged).unwrap();
    edit_share(&damaged, |v| v["x"] = 3.into(), false);
    let out = failed(fsck_with_shares(&f, &[&files[0], &damaged]));
    assert_contains(&out.stderr, "damaged.pvshare: it is damaged");

    // Forged: a different value with a valid checksum.
    let forged = f.path("forged.pvshare");
    fs::copy(&files[1], &forged).unwrap();
    edit_share(
        &forged,
        |v| v["y"] = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=".into(),
        true,
    );
    let out = failed(fsck_with_shares(&f, &[&files[0], &forged]));
    assert_contains(
        &out.stderr,
        "forged.pvshare: it is not one of slot 1's shares",
    );

    // Foreign: a share of another vault.
    let g = Fixture::with_vault("aes-gcm");
    let other: Vec<PathBuf> = ok(add_shares(&g, "2", "2", &g.path("s")))
        .stdout
        .lines()
        .map(PathBuf::from)
        .collect();
    let out = failed(fsck_with_shares(&f, &[&files[0], &other[0]]));
    assert_contains(&out.stderr, "it belongs to another vault");

    // Not a share file at all.
    let out = failed(fsck_with_shares(&f, &[&files[0], &f.pass]));
    assert_contains(&out.stderr, "it is not a pivault share file");
    assert_unchanged(&f.vault, &before);

    // Shares of a slot that was removed and made again are stale.
    ok(keys_cmd(&f, "remove", &f.pass, &["--slot", "1"]));
    let fresh: Vec<PathBuf> = ok(add_shares(&f, "2", "3", &f.path("fresh")))
        .stdout
        .lines()
        .map(PathBuf::from)
        .collect();
    let out = failed(fsck_with_shares(&f, &[&files[0], &fresh[0]]));
    assert_contains(&out.stderr, "it is a share of slot 2, the others of slot 1");
    let out = failed(fsck_with_shares(&f, &[&files[0], &files[1]]));
    assert_contains(&out.stderr, "slot 1 does not exist");
    ok(fsck_with_shares(&f, &[&fresh[0], &fresh[2]]));
}

#[test]
fn bad_share_parameters_and_existing_files_change_nothing() {
    let f = Fixture::with_vault("aes-gcm");
    let dir = f.path("shares");
    let before = snapshot(&f.vault);
    let out = failed(add_shares(&f, "1", "3", &dir));
    assert_contains(&out.stderr, "need 2 <= threshold <= shares");
    let out = failed(add_shares(&f, "4", "3", &dir));
    assert_contains(&out.stderr, "need 2 <= threshold <= shares");
    assert!(!dir.exists());
    fs::create_dir(&dir).unwrap();
    fs::write(dir.join("pivault-slot1-share2-of-3.pvshare"), b"keep me").unwrap();
    failed(add_shares(&f, "2", "3", &dir));
    assert_eq!(
        fs::read(dir.join("pivault-slot1-share2-of-3.pvshare")).unwrap(),
        b"keep me"
    );
    assert_eq!(
        fs::read_dir(&dir).unwrap().count(),
        1,
        "no share left behind"
    );
    assert_unchanged(&f.vault, &before);
}

#[test]
fn escrow_identity_recovers_the_vault_with_a_new_passphrase() {
    use age::secrecy::ExposeSecret;
    let f = Fixture::with_vault("aes-gcm");
    let id = age::x25519::Identity::generate();
    let recipient = id.to_public().to_string();
    let id_file = f.path("org.agekey");
    fs::write(
        &id_file,
        format!("# IT escrow key\n{}\n", id.to_string().expose_secret()),
    )
    .unwrap();
    let out = ok(keys_cmd(
        &f,
        "add-escrow",
        &f.pass,
        &["--recipient", &recipient],
    ));
    assert_contains(&out.stderr, "Added escrow slot 1");
    assert_eq!(slot_json(&f, 1)["recipient"], recipient.as_str());

    // IT recovers without the user's passphrase and sets a new one.
    let new_pass = pass_file(f.tmp.path(), "new.txt", "set by IT: velvet cactus harbor");
    let out = ok(run(pv()
        .args(["keys", "recover"])
        .arg(&f.vault)
        .arg("--identity")
        .arg(&id_file)
        .arg("--new-passphrase-file")
        .arg(&new_pass)
        .arg("--insecure-test-kdf")));
    assert_contains(&out.stderr, "passphrase slot 0 has the new passphrase");
    ok(fsck_with(&f, &new_pass));
    failed(f.fsck());
    let log = fs::read_to_string(f.vault.join("audit.log")).unwrap();
    assert!(log.contains("\"event\":\"recovery\""));

    // Another organisation's identity, and bad input, change nothing.
    let other = age::x25519::Identity::generate();
    let other_file = f.path("other.agekey");
    fs::write(&other_file, other.to_string().expose_secret()).unwrap();
    let before = snapshot(&f.vault);
    let out = failed(run(pv()
        .args(["keys", "recover"])
        .arg(&f.vault)
        .arg("--identity")
        .arg(&other_file)
        .arg("--new-passphrase-file")
        .arg(&new_pass)));
    assert_contains(&out.stderr, "does not open any escrow slot");
    fs::write(&other_file, "not a key\n").unwrap();
    let out = failed(run(pv()
        .args(["keys", "recover"])
        .arg(&f.vault)
        .arg("--identity")
        .arg(&other_file)
        .arg("--new-passphrase-file")
        .arg(&new_pass)));
    assert_contains(&out.stderr, "is not an age X25519 identity");
    let out = failed(keys_cmd(
        &f,
        "add-escrow",
        &new_pass,
        &["--recipient", "age1notakey"],
    ));
    assert_contains(&out.stderr, "invalid age recipient");
    assert_unchanged(&f.vault, &before);
}
