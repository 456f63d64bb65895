//! Leavers through the real binary (issue: "rotation does not revoke"):
//! a former holder keeps a copy of the keystore from before `pivault keys
//! remove` and their passphrase. After remove + rotate + `reencrypt
//! --retire`, a reader that follows docs/FORMAT.md (keys/tests/reader, not
//! pivault's code) with only that copy and passphrase opens no current key
//! and no current file. And a vault written by the previous release
//! (keystore format 2, tests/fixtures/keystore-format-2) is read, upgraded
//! slot by slot as its holders unseal, and then revokes the same way.

mod common;
#[path = "../keys/tests/reader/mod.rs"]
mod reader;

use common::*;
use reader::*;
use serde_json::Value;
use std::fs;
use std::path::{Path, PathBuf};

const LEAVER: &str = "leaver passphrase, kept after leaving";

fn keys_cmd(vault: &Path, args: &[&str], pass: &Path) -> Out {
    run(pv()
        .arg("keys")
        .arg(args[0])
        .arg(vault)
        .args(&args[1..])
        .arg("--passphrase-file")
        .arg(pass))
}

/// Adds the leaver's passphrase slot (slot 1) to `f`'s vault; returns the
/// file holding their passphrase.
fn add_leaver(f: &Fixture) -> PathBuf {
    let leaver = pass_file(f.tmp.path(), "leaver.txt", LEAVER);
    ok(run(pv()
        .args(["keys", "add-passphrase"])
        .arg(&f.vault)
        .arg("--insecure-test-kdf")
        .arg("--allow-weak-passphrase")
        .arg("--passphrase-file")
        .arg(&f.pass)
        .arg("--new-passphrase-file")
        .arg(&leaver)));
    leaver
}

fn content_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for e in fs::read_dir(dir).unwrap() {
        let e = e.unwrap();
        let name = e.file_name().to_string_lossy().into_owned();
        let t = e.file_type().unwrap();
        if t.is_dir() {
            content_files(&e.path(), out);
        } else if t.is_file() && !name.starts_with("pivault.") && name != "audit.log" {
            out.push(e.path());
        }
    }
}

/// The data-key version in a content file's header (FORMAT.md §6.1).
fn header_version(path: &Path) -> u32 {
    let b = fs::read(path).unwrap();
    assert_eq!(&b[..4], b"PVLT", "{}", path.display());
    u32::from_be_bytes(b[8..12].try_into().unwrap())
}

/// What a holder of `pass` for slot `id` opens in a keystore file, by the
/// independent reader: the KWK (formats 2 and 3) and the keyring bytes.
fn opens(file: &[u8], id: u64, pass: &str) -> Option<([u8; 32], Vec<u8>)> {
    let body = read_body(file);
    let s = slot(&body, id);
    match slot_key_material(&body, s, &passphrase_kek(s, pass.as_bytes()))? {
        SlotOpened::Identity(_, kwk) | SlotOpened::Kwk(kwk) => {
            Some((kwk, open_keyring_with(&body, &kwk)?))
        }
        SlotOpened::Keyring(_) => panic!("no format-1 slots here"),
    }
}

/// Every encrypted entry name of the vault's tree (FORMAT.md §9), with the
/// ID of its directory: (directory ID, the base64url name).
fn tree_names(vault: &Path) -> Vec<([u8; 16], String)> {
    fn walk(dir: &Path, out: &mut Vec<([u8; 16], String)>) {
        let id: [u8; 16] = fs::read(dir.join("pivault.dirid")).unwrap()[8..24]
            .try_into()
            .unwrap();
        for e in fs::read_dir(dir).unwrap() {
            let e = e.unwrap();
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("pivault.") && !name.starts_with("pivault.long.")
                || name == "audit.log"
                || name.ends_with(".name")
                || name.starts_with(".pivault-tmp-")
            {
                continue;
            }
            let full = if name.starts_with("pivault.long.") {
                fs::read_to_string(dir.join(format!("{name}.name"))).unwrap()
            } else {
                name
            };
            out.push((id, full));
            if e.file_type().unwrap().is_dir() {
                walk(&e.path(), out);
            }
        }
    }
    let mut out = Vec::new();
    walk(vault, &mut out);
    out
}

/// How many of `names` the name key of `keyring` (AES-SIV under
/// HKDF(tree secret, "pivault v1 names"), associated data the directory
/// ID) decrypts.
fn names_opened(names: &[([u8; 16], String)], keyring: &[u8]) -> usize {
    use aes_siv::KeyInit;
    use base64::Engine as _;
    let key = hkdf64(&tree_secret_of(keyring), "pivault v1 names", b"");
    names
        .iter()
        .filter(|(id, enc)| {
            let ct = base64::engine::general_purpose::URL_SAFE_NO_PAD
                .decode(enc)
                .unwrap();
            aes_siv::siv::Aes256Siv::new((&key).into())
                .decrypt([&id[..]], &ct)
                .is_ok()
        })
        .count()
}

/// Asserts that a former holder with `old_file` and their passphrase
/// (slot `id`) opens nothing of the vault as it is now.
fn assert_cut_off(vault: &Path, old_file: &[u8], id: u64, pass: &str) {
    let (old_kwk, old_keyring) = opens(old_file, id, pass).expect("the old copy opens for them");
    let now: Value = read_body(&fs::read(vault.join("pivault.keystore")).unwrap());
    assert!(
        now["slots"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["id"] != id),
        "slot {id} is gone"
    );
    assert!(
        open_keyring_with(&now, &old_kwk).is_none(),
        "the old wrapping key opens the current keyring"
    );
    // Every file is under a data-key version the old keyring lacks.
    let (_, old_data, _) = parse_keyring_all(&old_keyring);
    let mut files = Vec::new();
    content_files(vault, &mut files);
    assert!(!files.is_empty());
    for f in &files {
        let v = header_version(f);
        assert!(
            old_data.iter().all(|(ov, _)| *ov != v),
            "{} is under version {v}, which the old keyring holds",
            f.display()
        );
    }
    // Their names key decrypts no current name.
    let names = tree_names(vault);
    assert!(!names.is_empty());
    assert_eq!(names_opened(&names, &old_keyring), 0, "{names:?}");
}

#[test]
fn leaver_with_an_old_keystore_copy_reads_nothing_after_remove_rotate_retire() {
    let f = Fixture::with_vault("aes-gcm");
    let leaver = add_leaver(&f);
    let src = f.path("src");
    fs::create_dir_all(src.join("hr")).unwrap();
    fs::write(src.join("hr/roe.txt"), b"Jane Roe 078-05-1120\n").unwrap();
    ok(f.import(&src));
    // The copy the leaver keeps (from the vault directory or a backup).
    let old_file = fs::read(f.keystore()).unwrap();
    // With it, today, the independent reader decrypts every name (which
    // shows the reader follows the format).
    let names = tree_names(&f.vault);
    assert_eq!(names.len(), 2, "hr and roe.txt: {names:?}");
    let (_, kept) = opens(&old_file, 1, LEAVER).unwrap();
    assert_eq!(names_opened(&names, &kept), 2);

    ok(keys_cmd(&f.vault, &["remove", "--slot", "1"], &f.pass));
    ok(keys_cmd(&f.vault, &["rotate"], &f.pass));
    ok(f.unlocked("reencrypt", &[std::ffi::OsStr::new("--retire")]));
    assert_cut_off(&f.vault, &old_file, 1, LEAVER);
    // Their passphrase no longer unseals the vault either.
    failed(run(pv()
        .arg("fsck")
        .arg(&f.vault)
        .arg("--passphrase-file")
        .arg(&leaver)));
    // The vault still works for everyone else, and the log verifies
    // across the audit key's hand-over.
    let out = f.export(&f.path("out"));
    ok(out);
    assert_eq!(
        fs::read(f.path("out/hr/roe.txt")).unwrap(),
        b"Jane Roe 078-05-1120\n"
    );
    ok(pv_run([
        std::ffi::OsStr::new("audit"),
        std::ffi::OsStr::new("verify"),
        f.vault.as_os_str(),
    ]));
}

#[test]
fn leaver_is_cut_off_by_remove_alone() {
    // Without a rotation, the removal draws a new wrapping key: the old
    // copy's key opens nothing current (the data keys themselves are
    // replaced only by a rotation and retirement, as docs/THREAT-MODEL.md
    // says).
    let f = Fixture::with_vault("aes-gcm");
    add_leaver(&f);
    let old_file = fs::read(f.keystore()).unwrap();
    ok(keys_cmd(&f.vault, &["remove", "--slot", "1"], &f.pass));
    let (old_kwk, _) = opens(&old_file, 1, LEAVER).unwrap();
    let now = read_body(&fs::read(f.keystore()).unwrap());
    assert!(open_keyring_with(&now, &old_kwk).is_none());
}

#[test]
fn changed_passphrase_cuts_off_the_copy_that_the_old_one_opens() {
    let f = Fixture::with_vault("aes-gcm");
    let old_file = fs::read(f.keystore()).unwrap();
    let new_pass = pass_file(
        f.tmp.path(),
        "new.txt",
        "a new passphrase after the old one leaked",
    );
    ok(run(pv()
        .args(["keys", "change-passphrase"])
        .arg(&f.vault)
        .arg("--insecure-test-kdf")
        .arg("--passphrase-file")
        .arg(&f.pass)
        .arg("--new-passphrase-file")
        .arg(&new_pass)));
    let (old_kwk, _) = opens(&old_file, 0, PASS).expect("the leaked copy opens");
    let now = read_body(&fs::read(f.keystore()).unwrap());
    assert!(open_keyring_with(&now, &old_kwk).is_none());
    assert_ne!(
        slot(&now, 0)["public"],
        slot(&read_body(&old_file), 0)["public"]
    );
}

/// The vault of the previous release, copied into a temporary directory.
fn previous_release() -> (tempfile::TempDir, PathBuf, PathBuf, PathBuf) {
    let fixture = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keystore-format-2");
    let tmp = tempfile::tempdir().unwrap();
    let vault = tmp.path().join("vault");
    fs::create_dir(&vault).unwrap();
    for e in fs::read_dir(fixture.join("vault")).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), vault.join(e.file_name())).unwrap();
    }
    let p0 = tmp.path().join("slot0.pass");
    let p1 = tmp.path().join("slot1.pass");
    fs::copy(fixture.join("slot0.pass"), &p0).unwrap();
    fs::copy(fixture.join("slot1.pass"), &p1).unwrap();
    (tmp, vault, p0, p1)
}

fn first_line(vault: &Path) -> String {
    let t = fs::read_to_string(vault.join("pivault.keystore")).unwrap();
    t.lines().next().unwrap().to_string()
}

#[test]
fn keystore_of_the_previous_release_is_upgraded_slot_by_slot_and_then_revokes() {
    let (tmp, vault, p0, p1) = previous_release();
    assert_eq!(first_line(&vault), "pivault-keystore 2");
    let old_file = fs::read(vault.join("pivault.keystore")).unwrap();
    let p1_text = fs::read_to_string(&p1).unwrap();

    // Read without a secret: both slots listed, each as of the older format.
    let list = ok(pv_run([
        std::ffi::OsStr::new("keys"),
        std::ffi::OsStr::new("list"),
        vault.as_os_str(),
    ]));
    assert_eq!(list.stdout.matches("OLDER FORMAT").count(), 2, "{list:?}");

    // The first unseal (an export) reads the file and upgrades the
    // keystore and its own slot.
    let out = tmp.path().join("out");
    ok(run(pv()
        .arg("export")
        .arg(&vault)
        .arg(&out)
        .arg("--passphrase-file")
        .arg(&p0)));
    assert_eq!(
        fs::read(out.join("record.txt")).unwrap(),
        b"Jane Roe 078-05-1120\n"
    );
    assert_eq!(first_line(&vault), "pivault-keystore 3");
    let body = read_body(&fs::read(vault.join("pivault.keystore")).unwrap());
    assert!(slot(&body, 0)["public"].is_string());
    assert_eq!(slot(&body, 1)["wraps"], "kwk");

    // Removing or rotating must draw a new wrapping key, which slot 1
    // cannot receive yet: refused, naming it, nothing changed.
    let before = snapshot(&vault);
    let refused = failed(keys_cmd(&vault, &["rotate"], &p0));
    assert_contains(&refused.stderr, "slot(s) 1");
    assert_contains(&refused.stderr, "older pivault");
    assert_contains(&refused.stderr, "nothing was changed");
    let after = snapshot(&vault);
    assert_eq!(
        before.get(Path::new("pivault.keystore")),
        after.get(Path::new("pivault.keystore")),
        "the keystore changed"
    );

    // Slot 1's holder unseals once: upgraded. Now the rotation works and
    // both slots follow it.
    ok(run(pv()
        .arg("fsck")
        .arg(&vault)
        .arg("--passphrase-file")
        .arg(&p1)));
    let body = read_body(&fs::read(vault.join("pivault.keystore")).unwrap());
    assert!(slot(&body, 1)["public"].is_string());
    let list = ok(pv_run([
        std::ffi::OsStr::new("keys"),
        std::ffi::OsStr::new("list"),
        vault.as_os_str(),
    ]));
    assert!(!list.stdout.contains("OLDER FORMAT"), "{list:?}");
    ok(keys_cmd(&vault, &["rotate"], &p0));
    for p in [&p0, &p1] {
        ok(run(pv()
            .arg("fsck")
            .arg(&vault)
            .arg("--passphrase-file")
            .arg(p)));
    }

    // Slot 1 leaves, with the copy of the previous release's keystore.
    ok(keys_cmd(&vault, &["remove", "--slot", "1"], &p0));
    ok(run(pv()
        .arg("reencrypt")
        .arg(&vault)
        .arg("--retire")
        .arg("--passphrase-file")
        .arg(&p0)));
    assert_cut_off(&vault, &old_file, 1, p1_text.trim_end());
    let log = ok(pv_run([
        std::ffi::OsStr::new("audit"),
        std::ffi::OsStr::new("verify"),
        vault.as_os_str(),
    ]));
    assert_contains(&log.stdout, "intact");
    let events = fs::read_to_string(vault.join("audit.log")).unwrap();
    assert_eq!(events.matches("\"event\":\"keystore-upgraded\"").count(), 2);
}
