//! Two `pivault init` runs on one empty directory at once: one makes the
//! vault, the other fails with a message and changes nothing (its rollback
//! must never delete the winner's files).

mod common;

use common::*;
use std::fs;
use std::process::Stdio;

#[test]
fn concurrent_inits_leave_exactly_one_working_vault() {
    let tmp = tempfile::tempdir().unwrap();
    for round in 0..10 {
        // Even rounds: an existing empty directory; odd rounds: a missing
        // one, which both runs try to create.
        let dir = tmp.path().join(format!("v{round}"));
        if round % 2 == 0 {
            fs::create_dir(&dir).unwrap();
        }
        let passes: Vec<_> = (0..2)
            .map(|i| pass_file(tmp.path(), &format!("p{round}-{i}"), &format!("{PASS} {i}")))
            .collect();
        let children: Vec<_> = passes
            .iter()
            .map(|p| {
                std_cmd(bin())
                    .arg("init")
                    .arg(&dir)
                    .arg("--insecure-test-kdf")
                    .arg("--passphrase-file")
                    .arg(p)
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()
                    .unwrap()
            })
            .collect();
        let outs: Vec<_> = children
            .into_iter()
            .map(|c| c.wait_with_output().unwrap())
            .collect();
        let won: Vec<usize> = (0..2).filter(|&i| outs[i].status.success()).collect();
        assert_eq!(
            won.len(),
            1,
            "round {round}: exactly one init succeeds: {outs:?}"
        );
        let (w, l) = (won[0], 1 - won[0]);
        let err = String::from_utf8_lossy(&outs[l].stderr);
        assert!(
            err.contains("another `pivault init`")
                || err.contains("not empty")
                || err.contains("already a pivault vault"),
            "round {round}: the loser's message: {err}"
        );
        // The winner's vault is whole: its passphrase unseals it and fsck
        // finds nothing wrong; the loser's passphrase opens nothing.
        let out = run(pv()
            .arg("fsck")
            .arg(&dir)
            .arg("--passphrase-file")
            .arg(&passes[w]));
        assert!(out.ok(), "round {round}: the winner's vault: {out:?}");
        failed(run(pv()
            .arg("fsck")
            .arg(&dir)
            .arg("--passphrase-file")
            .arg(&passes[l])));
    }
}
