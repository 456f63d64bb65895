//! Sealed TLS keys: `pivault cert import` stores a key in a vault, the
//! gateway opens `key = "sealed:VAULT:NAME"` with the usual passphrase
//! sources, and a wrong passphrase or name stops it with a clear error.

mod proxy_common;

use proxy_common::*;
use std::process::Command;

const PASS: &str = "gateway passphrase for tests";

fn pivault(args: &[&str], dir: &std::path::Path, pass: &str) -> std::process::Output {
    Command::new(bin())
        .args(args)
        .current_dir(dir)
        .env("PIVAULT_PASSPHRASE", pass)
        .env_remove("PIVAULT_PASSPHRASE_FILE")
        .stdin(std::process::Stdio::null())
        .output()
        .unwrap()
}

#[test]
fn a_sealed_key_serves_tls_and_wrong_secrets_are_refused() {
    let d = tempfile::tempdir().unwrap();
    let dir = d.path();
    let pki = Pki::new(dir, "srv");
    let (cert, key) = pki.leaf("gw", "gw", &["localhost"], &[], false);
    let vault = dir.join("vault");
    let v = vault.to_str().unwrap();
    let out = pivault(&["init", v, "--insecure-test-kdf"], dir, PASS);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = pivault(
        &["cert", "import", v, "gw", key.to_str().unwrap()],
        dir,
        PASS,
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stored = std::fs::read_to_string(vault.join("pivault.tls-keys")).unwrap();
    assert!(!stored.contains("PRIVATE KEY"), "stored in plaintext");
    // The vault's tree does not see the file (fsck finds no foreign entry).
    let out = pivault(&["fsck", v], dir, PASS);
    assert!(
        out.status.success(),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    // Not a key: refused before anything is stored.
    let out = pivault(
        &["cert", "import", v, "bad", cert.to_str().unwrap()],
        dir,
        PASS,
    );
    assert_eq!(out.status.code(), Some(1));
    std::fs::remove_file(&key).unwrap();

    let backend = http_backend();
    let toml = format!(
        "[[listener]]\nmode = \"http\"\nlisten = \"127.0.0.1:0\"\nupstream = \"http://{backend}\"\ncert = \"{}\"\nkey = \"sealed:{v}:gw\"\n",
        cert.display()
    );
    std::fs::write(dir.join("gw.toml"), &toml).unwrap();
    let out = Command::new(bin())
        .args(["proxy", "check", "--config"])
        .arg(dir.join("gw.toml"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let gw = Gw::start_env(dir, &toml, &[("PIVAULT_PASSPHRASE", PASS)]);
    let port = gw.addrs[0].port();
    let (rc, out, err) = curl(&[
        "--resolve",
        &format!("localhost:{port}:127.0.0.1"),
        "--cacert",
        pki.ca_path("srv").to_str().unwrap(),
        &format!("https://localhost:{port}/"),
    ]);
    assert_eq!(rc, 0, "{err}");
    assert_eq!(out, "hello from the legacy app\n");
    drop(gw);
    // The start with a sealed key is in the vault's audit log.
    let out = pivault(&["audit", "show", v, "--json"], dir, PASS);
    let log = String::from_utf8_lossy(&out.stdout);
    assert!(
        log.lines().any(|l| l.contains("\"event\":\"proxy-start\"")),
        "{log}"
    );

    let cfg = dir.join("gw.toml");
    let run = |pass: &str| {
        Command::new(bin())
            .args(["proxy", "--config"])
            .arg(&cfg)
            .env("PIVAULT_PASSPHRASE", pass)
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    let out = run("wrong passphrase");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("passphrase"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    std::fs::write(&cfg, toml.replace(":gw\"", ":nope\"")).unwrap();
    let out = run(PASS);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("no sealed key named `nope`"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
