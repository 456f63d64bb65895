//! The passphrase strength rule (issue 15 point 4) through the real binary:
//! weak new passphrases are refused at init, add-passphrase,
//! change-passphrase and recover with the estimator's feedback, exit code 1
//! and nothing changed on disk; `--allow-weak-passphrase` records the
//! exception in the slot, where `keys list`, the compliance report and
//! every unseal show it; clearing the recorded flag fails the keystore MAC.

mod common;

use common::*;
use serde_json::Value;
use std::fs;
use std::path::Path;

/// A passphrase the rule accepts (four random words).
const STRONG: &str = "marble quantum orchid tundra";

/// The OS user name of this process (what pivault compares against).
fn os_user() -> String {
    let out = std::process::Command::new("id")
        .arg("-un")
        .output()
        .unwrap();
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// `pivault init DIR --insecure-test-kdf --passphrase-file FILE [extra]`.
fn init(vault: &Path, pass: &Path, extra: &[&str]) -> Out {
    let mut c = pv();
    c.arg("init").arg(vault).arg("--insecure-test-kdf");
    c.arg("--passphrase-file").arg(pass).args(extra);
    run(&mut c)
}

/// `pivault keys SUB VAULT --passphrase-file PASS --new-passphrase-file NEW
/// --insecure-test-kdf [extra]`.
fn new_slot_pass(f: &Fixture, sub: &str, pass: &Path, new: &Path, extra: &[&str]) -> Out {
    let mut c = pv();
    c.args(["keys", sub]).arg(&f.vault);
    c.arg("--passphrase-file").arg(pass);
    c.arg("--new-passphrase-file").arg(new);
    c.arg("--insecure-test-kdf").args(extra);
    run(&mut c)
}

fn keys_json(vault: &Path) -> Value {
    let out = ok(run(pv().args(["keys", "list"]).arg(vault).arg("--json")));
    serde_json::from_str(&out.stdout).unwrap()
}

/// Asserts a refusal by the strength rule: exit code 1, what is wrong,
/// what to do, and never the passphrase itself.
#[track_caller]
fn assert_weak_refusal(out: &Out, problem: &str, pass: &str) {
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_contains(&out.stderr, "the new passphrase is too weak");
    assert_contains(&out.stderr, problem);
    assert_contains(&out.stderr, "four or more random words");
    assert_contains(&out.stderr, "--allow-weak-passphrase");
    assert_contains(&out.stderr, "nothing was changed");
    if pass.len() > 8 {
        // (a short or common one may occur in the estimator's text)
        assert!(
            !out.stderr.contains(pass),
            "the secret was printed: {out:?}"
        );
    }
}

#[test]
fn weak_passphrases_are_refused_at_init_and_nothing_is_created() {
    let user = os_user();
    let tmp = tempfile::tempdir().unwrap();
    let named = "client-files-2024";
    let cases: [(&str, &str, &str); 5] = [
        (
            "1234",
            "vault",
            "it has 4 characters (at least 12 are needed)",
        ),
        ("password", "vault", "zxcvbn: \""),
        (&user, "vault", "it is the OS user name"),
        (named, named, "it is the vault's name"),
        ("q7#Vx9!mZ2p", "vault", "it has 11 characters"),
    ];
    for (i, (pass, dir, problem)) in cases.into_iter().enumerate() {
        let pass_path = pass_file(tmp.path(), &format!("p{i}"), pass);
        // Into a missing directory: nothing is created.
        let parent = tmp.path().join(format!("missing{i}"));
        fs::create_dir(&parent).unwrap();
        let vault = parent.join(dir);
        let before = snapshot(&parent);
        let out = init(&vault, &pass_path, &[]);
        assert_weak_refusal(&out, problem, pass);
        assert!(!vault.exists(), "init left {} behind", vault.display());
        assert_unchanged(&parent, &before);
        // Into an empty directory: it stays as it was.
        fs::create_dir(&vault).unwrap();
        let before = snapshot(&vault);
        let out = init(&vault, &pass_path, &[]);
        assert_weak_refusal(&out, problem, pass);
        assert_unchanged(&vault, &before);
    }
    // From the environment as well.
    let vault = tmp.path().join("env-vault");
    let out = run(pv()
        .arg("init")
        .arg(&vault)
        .arg("--insecure-test-kdf")
        .env("PIVAULT_PASSPHRASE", "password"));
    assert_weak_refusal(&out, "it has 8 characters", "password");
    assert!(!vault.exists());
}

#[test]
fn a_strong_passphrase_is_accepted_without_a_warning() {
    let f = Fixture::new();
    let pass = pass_file(f.tmp.path(), "strong", STRONG);
    let out = ok(init(&f.vault, &pass, &[]));
    assert!(!out.stderr.contains("weak passphrase"), "{out:?}");
    let v = keys_json(&f.vault);
    assert_eq!(v["slots"][0]["weak_passphrase"], false, "{v}");
    let keystore = fs::read_to_string(f.keystore()).unwrap();
    assert!(!keystore.contains("\"weak\""), "{keystore}");
    let out = ok(run(pv()
        .arg("fsck")
        .arg(&f.vault)
        .arg("--passphrase-file")
        .arg(&pass)));
    assert!(!out.stderr.contains("weak passphrase"), "{out:?}");
}

#[test]
fn weak_passphrases_are_refused_by_add_change_and_recover() {
    use age::secrecy::ExposeSecret;
    let f = Fixture::with_vault("aes-gcm");
    let id = age::x25519::Identity::generate();
    let id_file = f.path("org.agekey");
    fs::write(&id_file, format!("{}\n", id.to_string().expose_secret())).unwrap();
    let recipient = id.to_public().to_string();
    let mut c = pv();
    c.args(["keys", "add-escrow"]).arg(&f.vault);
    c.arg("--passphrase-file").arg(&f.pass);
    c.args(["--recipient", &recipient]);
    ok(run(&mut c));

    let weak = pass_file(f.tmp.path(), "weak", "password");
    let before = snapshot(&f.vault);
    for sub in ["add-passphrase", "change-passphrase"] {
        let out = new_slot_pass(&f, sub, &f.pass, &weak, &[]);
        assert_weak_refusal(&out, "it has 8 characters", "password");
        assert_unchanged(&f.vault, &before);
    }
    let out = run(pv()
        .args(["keys", "recover"])
        .arg(&f.vault)
        .arg("--identity")
        .arg(&id_file)
        .arg("--new-passphrase-file")
        .arg(&weak)
        .arg("--insecure-test-kdf"));
    assert_weak_refusal(&out, "it has 8 characters", "password");
    assert_unchanged(&f.vault, &before);
    // The old passphrase still opens; the weak one does not.
    ok(f.fsck());
    failed(run(pv()
        .arg("fsck")
        .arg(&f.vault)
        .arg("--passphrase-file")
        .arg(&weak)));
}

#[test]
fn allow_weak_passphrase_is_recorded_listed_reported_and_warned_about() {
    let f = Fixture::new();
    let weak = pass_file(f.tmp.path(), "weak", "1234");
    let out = ok(init(&f.vault, &weak, &["--allow-weak-passphrase"]));
    assert_contains(&out.stderr, "slot 0 has a weak passphrase");
    let keystore = fs::read_to_string(f.keystore()).unwrap();
    assert!(keystore.contains("\"weak\": true"), "{keystore}");

    // keys list, JSON and text.
    let v = keys_json(&f.vault);
    assert_eq!(v["slots"][0]["weak_passphrase"], true, "{v}");
    let out = ok(run(pv().args(["keys", "list"]).arg(&f.vault)));
    assert_contains(&out.stdout, "WEAK PASSPHRASE");

    // Every unseal warns, naming the slot and the fix.
    for _ in 0..2 {
        let out = ok(run(pv()
            .arg("fsck")
            .arg(&f.vault)
            .arg("--passphrase-file")
            .arg(&weak)));
        assert_contains(&out.stderr, "warning: slot 0 of");
        assert_contains(&out.stderr, "has a weak passphrase");
        assert_contains(&out.stderr, "pivault keys change-passphrase");
        assert_contains(&out.stderr, "--slot 0");
    }

    // The compliance report lists it as a finding under 17.04(1).
    let out = ok(run(pv()
        .args(["compliance", "report"])
        .arg(&f.vault)
        .args(["--format", "json"])));
    let r: Value = serde_json::from_str(&out.stdout).unwrap();
    let s = r["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == "17.04(1)")
        .unwrap();
    assert_eq!(s["status"], "finding", "{s:#}");
    let findings = s["findings"].to_string();
    assert!(
        findings.contains("slot 0") && findings.contains("weak passphrase"),
        "{findings}"
    );
    assert!(findings.contains("17.04(1)(b)"), "{findings}");

    // A weak slot added with the flag is recorded too; replacing the
    // passphrase with a strong one clears it.
    let weak2 = pass_file(f.tmp.path(), "weak2", "password");
    ok(new_slot_pass(
        &f,
        "add-passphrase",
        &weak,
        &weak2,
        &["--allow-weak-passphrase"],
    ));
    let strong = pass_file(f.tmp.path(), "strong", STRONG);
    let out = ok(new_slot_pass(&f, "change-passphrase", &weak, &strong, &[]));
    assert_contains(&out.stderr, "Changed the passphrase of slot 0");
    let v = keys_json(&f.vault);
    assert_eq!(v["slots"][0]["weak_passphrase"], false, "{v}");
    assert_eq!(v["slots"][1]["weak_passphrase"], true, "{v}");
    // Unsealing with the strong slot still warns about the weak one: the
    // vault is as easy to guess as its weakest slot.
    let out = ok(run(pv()
        .arg("fsck")
        .arg(&f.vault)
        .arg("--passphrase-file")
        .arg(&strong)));
    let weak_lines: Vec<&str> = out
        .stderr
        .lines()
        .filter(|l| l.contains("has a weak passphrase"))
        .collect();
    assert_eq!(weak_lines.len(), 1, "{out:?}");
    assert_contains(weak_lines[0], "slot 1 of");
}

/// The attack: someone without the keys removes `"weak": true` from the
/// keystore (and recomputes the checksum) so the weak slot is no longer
/// warned about or reported. The flag is under the MAC: the next unseal
/// fails closed.
#[test]
fn an_attacker_who_clears_the_weak_flag_makes_the_keystore_mac_fail() {
    let f = Fixture::new();
    let weak = pass_file(f.tmp.path(), "weak", "1234");
    ok(init(&f.vault, &weak, &["--allow-weak-passphrase"]));
    let path = f.keystore();
    let text = fs::read_to_string(&path).unwrap();
    let edited: String = text
        .split_inclusive('\n')
        .filter(|l| l.trim() != "\"weak\": true,")
        .collect();
    assert_ne!(edited, text);
    let body = &edited[..edited.len() - 72];
    let sum = ring::digest::digest(&ring::digest::SHA256, body.as_bytes());
    let hex: String = sum.as_ref().iter().map(|b| format!("{b:02x}")).collect();
    fs::write(&path, format!("{body}sha256 {hex}\n")).unwrap();
    let before = snapshot(&f.vault);
    let out = failed(run(pv()
        .arg("fsck")
        .arg(&f.vault)
        .arg("--passphrase-file")
        .arg(&weak)));
    assert_contains(&out.stderr, "by someone without the keys");
    assert_unchanged(&f.vault, &before);
}
