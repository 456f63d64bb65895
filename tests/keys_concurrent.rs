//! Key commands run at the same time on one vault (issue 15, point 6): no
//! command's change is silently lost. Each either reports success and its
//! change is in the keystore at the end, or says that another command
//! changed the keystore meanwhile and changes nothing. Every recovery key
//! printed by a command that succeeded opens the vault, and every file
//! imported between the rotations reads back.

mod common;

use common::*;
use std::ffi::OsString;
use std::process::Output;

/// Starts `pivault ARGS`; the children run at the same time.
fn spawn(args: &[OsString]) -> std::process::Child {
    std_cmd(bin())
        .args(args)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap()
}

const LOST_RACE: &str = "was changed by another pivault command while this one ran";

#[test]
fn parallel_key_changes_never_lose_a_reported_success() {
    let f = Fixture::with_vault("aes-gcm");
    let new_pass = pass_file(f.tmp.path(), "new.txt", "another long test passphrase");
    let unlock = |sub: &str, extra: &[&str]| -> Vec<OsString> {
        let mut a: Vec<OsString> = vec!["keys".into(), sub.into(), f.vault.clone().into()];
        a.extend(extra.iter().map(OsString::from));
        a.push("--passphrase-file".into());
        a.push(f.pass.clone().into());
        a
    };
    let add_pass = {
        let mut a = unlock("add-passphrase", &["--insecure-test-kdf"]);
        a.push("--new-passphrase-file".into());
        a.push(new_pass.clone().into());
        a
    };
    let mut kids = Vec::new();
    for round in 0..3 {
        kids.push(("rotate", spawn(&unlock("rotate", &[]))));
        kids.push(("add-recovery", spawn(&unlock("add-recovery", &[]))));
        kids.push(("add-passphrase", spawn(&add_pass)));
        if round == 1 {
            // A file written in the middle of it, under whatever data key is
            // the newest then.
            let src = f.path("src");
            std::fs::create_dir_all(&src).unwrap();
            std::fs::write(src.join("mid.txt"), b"written mid-race").unwrap();
            kids.push(("import", {
                let mut a: Vec<OsString> =
                    vec!["import".into(), src.into(), f.vault.clone().into()];
                a.push("--passphrase-file".into());
                a.push(f.pass.clone().into());
                spawn(&a)
            }));
        }
    }
    let outs: Vec<(&str, Output)> = kids
        .into_iter()
        .map(|(k, c)| (k, c.wait_with_output().unwrap()))
        .collect();
    let mut won = std::collections::HashMap::<&str, usize>::new();
    let mut recovery_keys = Vec::new();
    for (kind, o) in &outs {
        let err = String::from_utf8_lossy(&o.stderr);
        if o.status.success() {
            *won.entry(kind).or_default() += 1;
            if *kind == "add-recovery" {
                recovery_keys.push(String::from_utf8_lossy(&o.stdout).trim().to_string());
            }
        } else {
            assert!(
                err.contains(LOST_RACE),
                "{kind} failed for another reason: {err}"
            );
        }
    }
    // The first writer always wins; which one that is, is a race.
    assert!(won.values().sum::<usize>() >= 1, "{outs:?}");
    let keys = f.keys_json();
    let slots = keys["slots"].as_array().unwrap().len();
    let data_keys = keys["data_keys"].as_array().unwrap().len();
    assert_eq!(
        data_keys,
        1 + won.get("rotate").copied().unwrap_or(0),
        "every rotation reported as done is in the keystore: {keys}"
    );
    assert_eq!(
        slots,
        1 + won.get("add-recovery").copied().unwrap_or(0)
            + won.get("add-passphrase").copied().unwrap_or(0),
        "every slot reported as added is in the keystore: {keys}"
    );
    for (i, k) in recovery_keys.iter().enumerate() {
        let file = pass_file(f.tmp.path(), &format!("rk{i}"), k);
        let out = run(pv()
            .arg("fsck")
            .arg(&f.vault)
            .arg("--recovery-key-file")
            .arg(&file));
        assert!(out.ok(), "printed recovery key {i} does not open: {out:?}");
    }
    // Everything that is in the vault reads back.
    let out = f.fsck();
    assert!(out.ok(), "{out:?}");
    assert_contains(&out.stdout, "0 damaged");
    if won.contains_key("import") {
        let dest = f.path("out");
        ok(f.export(&dest));
        assert_eq!(
            std::fs::read(dest.join("mid.txt")).unwrap(),
            b"written mid-race"
        );
    }
}
