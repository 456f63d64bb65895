//! `pivault keys ...` and the passphrase sources, through the real binary.
//! `fsck` is the unseal probe: it exits 0 only when the passphrase opens.

mod common;

use common::*;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

/// `pivault fsck VAULT --passphrase-file PASS`.
fn probe(f: &Fixture, pass: &Path) -> Out {
    run(pv()
        .arg("fsck")
        .arg(&f.vault)
        .arg("--passphrase-file")
        .arg(pass))
}

#[track_caller]
fn assert_opens(f: &Fixture, pass: &Path) {
    let out = probe(f, pass);
    assert!(
        out.ok(),
        "{} should open the vault: {out:?}",
        pass.display()
    );
    assert_contains(&out.stdout, "0 damaged");
}

#[track_caller]
fn assert_rejected(f: &Fixture, pass: &Path) {
    let out = failed(probe(f, pass));
    assert_contains(&out.stderr, "passphrase is wrong");
}

/// `pivault keys SUB VAULT [extra] --passphrase-file UNLOCK`.
fn keys(f: &Fixture, sub: &str, unlock: &Path, extra: &[&OsStr]) -> Out {
    let mut c = pv();
    c.arg("keys").arg(sub).arg(&f.vault);
    c.args(extra);
    c.arg("--passphrase-file").arg(unlock);
    run(&mut c)
}

/// Adds a test-KDF passphrase slot holding `new`.
fn add_slot(f: &Fixture, unlock: &Path, new: &Path) -> Out {
    ok(keys(
        f,
        "add-passphrase",
        unlock,
        &[
            OsStr::new("--new-passphrase-file"),
            new.as_os_str(),
            OsStr::new("--insecure-test-kdf"),
        ],
    ))
}

fn slot_ids(f: &Fixture) -> Vec<u64> {
    f.keys_json()["slots"]
        .as_array()
        .expect("slots array")
        .iter()
        .map(|s| s["id"].as_u64().expect("numeric id"))
        .collect()
}

/// A vault holding one small file, plus two more passphrase files.
fn vault_with_data() -> (Fixture, PathBuf, PathBuf) {
    let f = Fixture::with_vault("aes-gcm");
    let src = f.path("src");
    fs::create_dir(&src).unwrap();
    fs::write(src.join("data.txt"), b"payload that must stay readable\n").unwrap();
    ok(f.import(&src));
    let p2 = pass_file(f.tmp.path(), "p2", "second passphrase");
    let p3 = pass_file(f.tmp.path(), "p3", "third passphrase");
    (f, p2, p3)
}

#[test]
fn keys_list_text_and_json() {
    let f = Fixture::with_vault("aes-gcm");
    let before = snapshot(&f.vault);
    // No passphrase source and no terminal: list needs none.
    let out = ok(pv_run([
        OsStr::new("keys"),
        OsStr::new("list"),
        f.vault.as_os_str(),
    ]));
    let lines: Vec<&str> = out.stdout.lines().collect();
    assert_eq!(lines[0], "cipher: aes-256-gcm", "{out:?}");
    assert!(lines[1].starts_with("SLOT"), "{out:?}");
    assert_eq!(lines.len(), 4, "{out:?}");
    let slot = lines[2];
    assert!(slot.starts_with("0 "), "{out:?}");
    assert_contains(slot, "passphrase");
    assert_contains(slot, "argon2id m=64KiB t=1 p=1");
    assert_contains(slot, "TEST-ONLY");
    assert_eq!(lines[3], "data keys: 1 (current)");

    let v = f.keys_json();
    assert_eq!(v["suite"], "aes-256-gcm");
    let slots = v["slots"].as_array().expect("slots");
    assert_eq!(slots.len(), 1, "{v}");
    let s = &slots[0];
    assert_eq!(s["id"], 0, "{v}");
    assert_eq!(s["kind"], "passphrase", "{v}");
    assert_eq!(s["kdf"]["algorithm"], "argon2id", "{v}");
    assert_eq!(s["kdf"]["m_kib"], 64, "{v}");
    assert_eq!(s["kdf"]["t"], 1, "{v}");
    assert_eq!(s["kdf"]["p"], 1, "{v}");
    assert_eq!(s["kdf"]["test_only"], true, "{v}");
    assert!(
        s["created"].as_u64().is_some_and(|c| c > 1_600_000_000),
        "{v}"
    );
    assert_eq!(
        v["data_keys"],
        serde_json::json!([{"version": 1, "current": true}]),
        "{v}"
    );
    assert_unchanged(&f.vault, &before);
}

#[test]
fn add_passphrase_then_both_passphrases_unseal() {
    let (f, p2, _) = vault_with_data();
    let out = add_slot(&f, &f.pass, &p2);
    assert_contains(&out.stderr, "Added passphrase slot 1");
    assert_eq!(slot_ids(&f), [0, 1]);
    let v = f.keys_json();
    assert_eq!(v["slots"][1]["kind"], "passphrase");
    assert_eq!(v["slots"][1]["kdf"]["test_only"], true);

    assert_opens(&f, &f.pass);
    assert_opens(&f, &p2);
    assert_rejected(&f, &pass_file(f.tmp.path(), "bad", "not it"));
    // The new slot unwraps the same keys: the data reads back.
    let dest = f.path("out");
    ok(run(pv()
        .arg("export")
        .arg(&f.vault)
        .arg(&dest)
        .arg("--passphrase-file")
        .arg(&p2)));
    assert_eq!(
        fs::read(dest.join("data.txt")).unwrap(),
        b"payload that must stay readable\n"
    );
}

#[test]
fn change_passphrase_defaults_to_the_slot_that_opened() {
    let (f, p2, p3) = vault_with_data();
    add_slot(&f, &f.pass, &p2);
    // Unseal with slot 1's passphrase and change it (no --slot).
    let out = ok(keys(
        &f,
        "change-passphrase",
        &p2,
        &[
            OsStr::new("--new-passphrase-file"),
            p3.as_os_str(),
            OsStr::new("--insecure-test-kdf"),
        ],
    ));
    assert_contains(&out.stderr, "Changed the passphrase of slot 1");
    assert_eq!(slot_ids(&f), [0, 1]);
    assert_rejected(&f, &p2);
    assert_opens(&f, &p3);
    assert_opens(&f, &f.pass); // slot 0 untouched

    // And with slot 0's passphrase, slot 0 changes.
    let p4 = pass_file(f.tmp.path(), "p4", "fourth passphrase, plinth saffron");
    let out = ok(keys(
        &f,
        "change-passphrase",
        &f.pass,
        &[
            OsStr::new("--new-passphrase-file"),
            p4.as_os_str(),
            OsStr::new("--insecure-test-kdf"),
        ],
    ));
    assert_contains(&out.stderr, "Changed the passphrase of slot 0");
    assert_rejected(&f, &f.pass);
    assert_opens(&f, &p4);
    assert_opens(&f, &p3);
}

#[test]
fn change_passphrase_of_a_named_slot() {
    let (f, p2, p3) = vault_with_data();
    add_slot(&f, &f.pass, &p2);
    let out = ok(keys(
        &f,
        "change-passphrase",
        &f.pass,
        &[
            OsStr::new("--slot"),
            OsStr::new("1"),
            OsStr::new("--new-passphrase-file"),
            p3.as_os_str(),
            OsStr::new("--insecure-test-kdf"),
        ],
    ));
    assert_contains(&out.stderr, "Changed the passphrase of slot 1");
    assert_rejected(&f, &p2);
    assert_opens(&f, &p3);
    assert_opens(&f, &f.pass);

    // A slot that does not exist: refused, keystore untouched.
    let before = snapshot(&f.vault);
    let out = failed(keys(
        &f,
        "change-passphrase",
        &f.pass,
        &[
            OsStr::new("--slot"),
            OsStr::new("9"),
            OsStr::new("--new-passphrase-file"),
            p2.as_os_str(),
            OsStr::new("--insecure-test-kdf"),
        ],
    ));
    assert_contains(&out.stderr, "slot 9 does not exist");
    assert_unchanged(&f.vault, &before);
}

#[test]
fn remove_a_slot() {
    let (f, p2, _) = vault_with_data();
    add_slot(&f, &f.pass, &p2);
    let out = ok(keys(
        &f,
        "remove",
        &f.pass,
        &[OsStr::new("--slot"), OsStr::new("1")],
    ));
    assert_contains(&out.stderr, "Removed slot 1");
    assert_eq!(slot_ids(&f), [0]);
    assert_rejected(&f, &p2);
    assert_opens(&f, &f.pass);

    // Removing the slot that opened is allowed while another remains.
    let p5 = pass_file(f.tmp.path(), "p5", "fifth passphrase, ozone wicket");
    let out = add_slot(&f, &f.pass, &p5);
    assert_contains(&out.stderr, "Added passphrase slot 2");
    ok(keys(
        &f,
        "remove",
        &f.pass,
        &[OsStr::new("--slot"), OsStr::new("0")],
    ));
    assert_eq!(slot_ids(&f), [2]);
    assert_rejected(&f, &f.pass);
    assert_opens(&f, &p5);
}

#[test]
fn removing_the_last_slot_is_refused() {
    let f = Fixture::with_vault("aes-gcm");
    let ks_before = fs::read(f.keystore()).unwrap();
    let before = snapshot(&f.vault);
    let out = failed(keys(
        &f,
        "remove",
        &f.pass,
        &[OsStr::new("--slot"), OsStr::new("0")],
    ));
    assert_contains(&out.stderr, "last slot");
    assert_eq!(fs::read(f.keystore()).unwrap(), ks_before);
    assert_unchanged(&f.vault, &before);
    assert_opens(&f, &f.pass);

    let out = failed(keys(
        &f,
        "remove",
        &f.pass,
        &[OsStr::new("--slot"), OsStr::new("3")],
    ));
    assert_contains(&out.stderr, "slot 3 does not exist");
    assert_unchanged(&f.vault, &before);
}

#[test]
fn slot_changes_with_a_wrong_passphrase_change_nothing() {
    let (f, p2, p3) = vault_with_data();
    let before = snapshot(&f.vault);
    let new = [
        OsStr::new("--new-passphrase-file"),
        p3.as_os_str(),
        OsStr::new("--insecure-test-kdf"),
    ];
    for (sub, extra) in [
        ("add-passphrase", &new[..]),
        ("change-passphrase", &new[..]),
        ("remove", &[OsStr::new("--slot"), OsStr::new("0")][..]),
    ] {
        let out = failed(keys(&f, sub, &p2, extra));
        assert_contains(&out.stderr, "passphrase is wrong");
        assert_unchanged(&f.vault, &before);
    }
}

#[test]
fn backup_copies_the_keystore_and_never_overwrites() {
    let f = Fixture::with_vault("xchacha");
    let before = snapshot(&f.vault);
    let copy = f.path("keystore.backup");
    let out = ok(pv_run([
        OsStr::new("keys"),
        OsStr::new("backup"),
        f.vault.as_os_str(),
        copy.as_os_str(),
    ]));
    assert_contains(&out.stderr, &copy.display().to_string());
    assert_eq!(
        fs::read(&copy).unwrap(),
        fs::read(f.keystore()).unwrap(),
        "backup is not byte-identical"
    );
    use std::os::unix::fs::PermissionsExt;
    assert_eq!(
        fs::metadata(&copy).unwrap().permissions().mode() & 0o777,
        0o600
    );
    assert_unchanged(&f.vault, &before);

    // An existing FILE is never overwritten, whatever it holds.
    let precious = f.path("precious");
    fs::write(&precious, b"do not touch").unwrap();
    for target in [&copy, &precious] {
        let was = fs::read(target).unwrap();
        let out = failed(pv_run([
            OsStr::new("keys"),
            OsStr::new("backup"),
            f.vault.as_os_str(),
            target.as_os_str(),
        ]));
        assert_contains(&out.stderr, &target.display().to_string());
        assert_eq!(fs::read(target).unwrap(), was);
    }
    // No temporary files were left next to the targets.
    let mut names: Vec<String> = fs::read_dir(f.tmp.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["keystore.backup", "pass.txt", "precious", "vault"]);
    assert_unchanged(&f.vault, &before);
}

#[test]
fn restoring_the_backup_reopens_a_vault_with_a_corrupted_keystore() {
    let (f, _, _) = vault_with_data();
    let copy = f.path("ks.bak");
    ok(pv_run([
        OsStr::new("keys"),
        OsStr::new("backup"),
        f.vault.as_os_str(),
        copy.as_os_str(),
    ]));
    let len = fs::metadata(f.keystore()).unwrap().len();
    flip_byte(&f.keystore(), len / 2);
    let out = failed(probe(&f, &f.pass));
    assert_contains(&out.stderr, "pivault.keystore");
    assert_contains(&out.stderr, "keys backup");

    fs::copy(&copy, f.keystore()).unwrap();
    assert_opens(&f, &f.pass);
    let dest = f.path("out");
    ok(f.export(&dest));
    assert_eq!(
        fs::read(dest.join("data.txt")).unwrap(),
        b"payload that must stay readable\n"
    );
}

#[test]
fn passphrase_from_environment_sources() {
    let f = Fixture::new();
    // init from PIVAULT_PASSPHRASE.
    ok(run(pv()
        .args([OsStr::new("init"), f.vault.as_os_str()])
        .arg("--insecure-test-kdf")
        .env("PIVAULT_PASSPHRASE", PASS)));
    assert_opens(&f, &f.pass);

    // PIVAULT_PASSPHRASE_FILE.
    ok(run(pv()
        .arg("fsck")
        .arg(&f.vault)
        .env("PIVAULT_PASSPHRASE_FILE", &f.pass)));
    let wrong = pass_file(f.tmp.path(), "wrong", "wrong one");
    let out = failed(run(pv()
        .arg("fsck")
        .arg(&f.vault)
        .env("PIVAULT_PASSPHRASE_FILE", &wrong)));
    assert_contains(&out.stderr, "passphrase is wrong");
    // PIVAULT_PASSPHRASE_FILE comes before PIVAULT_PASSPHRASE.
    ok(run(pv()
        .arg("fsck")
        .arg(&f.vault)
        .env("PIVAULT_PASSPHRASE_FILE", &f.pass)
        .env("PIVAULT_PASSPHRASE", "wrong one")));

    // PIVAULT_NEW_PASSPHRASE for a new slot.
    let out = ok(run(pv()
        .args(["keys", "add-passphrase"])
        .arg(&f.vault)
        .arg("--insecure-test-kdf")
        .env("PIVAULT_PASSPHRASE", PASS)
        .env("PIVAULT_NEW_PASSPHRASE", "from the environment")));
    assert_contains(&out.stderr, "Added passphrase slot 1");
    assert_opens(&f, &pass_file(f.tmp.path(), "envp", "from the environment"));

    // PIVAULT_NEW_PASSPHRASE_FILE for a changed slot.
    let newf = pass_file(f.tmp.path(), "newf", "from a file named in the env");
    ok(run(pv()
        .args(["keys", "change-passphrase"])
        .arg(&f.vault)
        .args(["--slot", "1", "--insecure-test-kdf"])
        .env("PIVAULT_PASSPHRASE", PASS)
        .env("PIVAULT_NEW_PASSPHRASE_FILE", &newf)));
    assert_opens(&f, &newf);
}

#[test]
fn passphrase_file_flag_takes_precedence_over_the_environment() {
    let f = Fixture::with_vault("aes-gcm");
    let wrong = pass_file(f.tmp.path(), "wrong", "wrong one");
    // Right file, wrong environment: opens.
    let out = ok(run(pv()
        .arg("fsck")
        .arg(&f.vault)
        .arg("--passphrase-file")
        .arg(&f.pass)
        .env("PIVAULT_PASSPHRASE", "wrong one")
        .env("PIVAULT_PASSPHRASE_FILE", &wrong)));
    assert_contains(&out.stdout, "0 damaged");
    // Wrong file, right environment: the file is what counts.
    let out = failed(run(pv()
        .arg("fsck")
        .arg(&f.vault)
        .arg("--passphrase-file")
        .arg(&wrong)
        .env("PIVAULT_PASSPHRASE", PASS)));
    assert_contains(&out.stderr, "passphrase is wrong");
    // Likewise --new-passphrase-file over PIVAULT_NEW_PASSPHRASE.
    let p2 = pass_file(f.tmp.path(), "p2", "second passphrase, marble tundra");
    ok(run(pv()
        .args(["keys", "add-passphrase"])
        .arg(&f.vault)
        .arg("--passphrase-file")
        .arg(&f.pass)
        .arg("--new-passphrase-file")
        .arg(&p2)
        .arg("--insecure-test-kdf")
        .env("PIVAULT_NEW_PASSPHRASE", "the environment")));
    assert_opens(&f, &p2);
    assert_rejected(&f, &pass_file(f.tmp.path(), "envnew", "the environment"));
}

#[test]
fn one_trailing_newline_in_a_passphrase_file_is_ignored() {
    let f = Fixture::with_vault("aes-gcm");
    assert_opens(&f, &pass_file(f.tmp.path(), "lf", &format!("{PASS}\n")));
    assert_opens(&f, &pass_file(f.tmp.path(), "crlf", &format!("{PASS}\r\n")));
    assert_rejected(&f, &pass_file(f.tmp.path(), "lflf", &format!("{PASS}\n\n")));
    assert_rejected(&f, &pass_file(f.tmp.path(), "sp", &format!("{PASS} ")));
    // The environment variable is taken verbatim.
    ok(run(pv()
        .arg("fsck")
        .arg(&f.vault)
        .env("PIVAULT_PASSPHRASE", PASS)));
    let out = failed(run(pv()
        .arg("fsck")
        .arg(&f.vault)
        .env("PIVAULT_PASSPHRASE", format!("{PASS}\n"))));
    assert_contains(&out.stderr, "passphrase is wrong");
}

#[test]
fn weak_kdf_is_warned_about_on_init_and_every_unseal() {
    let f = Fixture::new();
    let out = ok(pv_run([
        OsStr::new("init"),
        f.vault.as_os_str(),
        OsStr::new("--insecure-test-kdf"),
        OsStr::new("--passphrase-file"),
        f.pass.as_os_str(),
    ]));
    assert_contains(&out.stderr, "test-only");
    for _ in 0..2 {
        let out = ok(probe(&f, &f.pass));
        assert_contains(&out.stderr, "warning: slot 0 of");
        assert_contains(&out.stderr, "test-only");
        assert_contains(&out.stderr, "change-passphrase");
    }
    // The slot that opened is the one named.
    let p2 = pass_file(f.tmp.path(), "p2", "second passphrase, marble tundra");
    add_slot(&f, &f.pass, &p2);
    let out = ok(probe(&f, &p2));
    assert_contains(&out.stderr, "warning: slot 1 of");
    assert_contains(&out.stderr, "test-only");
    // A wrong passphrase gets no such warning (nothing was unsealed).
    let out = failed(probe(&f, &pass_file(f.tmp.path(), "w", "wrong")));
    assert!(!out.stderr.contains("test-only"), "{out:?}");
}
