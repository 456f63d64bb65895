//! Edits of the keystore by someone who can write the vault folder but
//! holds no key, through the real binary: each is refused with an error
//! naming what is wrong, a non-zero exit, and nothing changed on disk.

mod common;

use common::*;
use std::ffi::OsStr;
use std::fs;
use std::os::unix::process::CommandExt;
use std::time::{Duration, Instant};

/// Replaces `from` by `to` in the keystore body and recomputes the
/// checksum line (it is not secret: anyone can).
fn edit_keystore(f: &Fixture, from: &str, to: &str) {
    let text = fs::read_to_string(f.keystore()).unwrap();
    let edited = text.replacen(from, to, 1);
    assert_ne!(edited, text, "{from} is not in the keystore");
    let body = &edited[..edited.len() - 72];
    let sum = hex(ring::digest::digest(&ring::digest::SHA256, body.as_bytes()).as_ref());
    fs::write(f.keystore(), format!("{body}sha256 {sum}\n")).unwrap();
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[test]
fn slot_edited_to_demand_4_tib_of_argon2_memory_is_refused_at_once() {
    let f = Fixture::with_vault("aes-gcm");
    edit_keystore(&f, "\"m_kib\": 64,", "\"m_kib\": 4294967295,");
    let before = snapshot(&f.vault);
    let log_before = fs::read(f.vault.join("audit.log")).unwrap();
    let mut cmd = std_cmd(bin());
    cmd.arg("fsck")
        .arg(&f.vault)
        .arg("--passphrase-file")
        .arg(&f.pass);
    // An address-space limit far below 4 TiB: a derivation that tried to
    // allocate the edited amount would die of it instead of failing cleanly.
    // SAFETY: setrlimit(2) is async-signal-safe and touches no Rust state.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 16 << 30,
                rlim_max: 16 << 30,
            };
            libc::setrlimit(libc::RLIMIT_AS, &lim);
            Ok(())
        });
    }
    let mut cmd = assert_cmd::Command::from_std(cmd);
    cmd.timeout(TIMEOUT);
    let start = Instant::now();
    let out = failed(run(&mut cmd));
    let took = start.elapsed();
    assert_eq!(out.code, Some(1), "{out:?}");
    assert_contains(
        &out.stderr,
        "slot 0's Argon2id memory (m_kib, in KiB) is 4294967295",
    );
    assert_contains(&out.stderr, "above pivault's limit of 4194304");
    assert_contains(&out.stderr, "pivault keys backup");
    assert!(took < Duration::from_secs(10), "took {took:?}");
    assert_unchanged(&f.vault, &before);
    assert_eq!(
        fs::read(f.vault.join("audit.log")).unwrap(),
        log_before,
        "the audit log changed"
    );
    // `keys list` (no secret) names the same problem.
    let out = failed(pv_run([
        OsStr::new("keys"),
        OsStr::new("list"),
        f.vault.as_os_str(),
    ]));
    assert_contains(&out.stderr, "above pivault's limit of 4194304");
}
