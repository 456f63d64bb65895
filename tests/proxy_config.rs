//! `pivault proxy check` and config refusals through the real binary: a bad
//! config names the file, line and key and exits 1; nothing is bound.

mod proxy_common;

use proxy_common::*;
use std::process::Command;

fn check(dir: &std::path::Path, toml: &str) -> (i32, String, String) {
    let p = dir.join("gw.toml");
    std::fs::write(&p, toml).unwrap();
    let out = Command::new(bin())
        .args(["proxy", "check", "--config"])
        .arg(&p)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn good(dir: &std::path::Path) -> String {
    let pki = Pki::new(dir, "srv");
    let (c, k) = pki.leaf("gw", "gw", &["localhost"], &[], false);
    format!(
        "access_log = \"-\"\n[limits]\nmax_connections = 100\n\n[[listener]]\nmode = \"http\"\nlisten = \"127.0.0.1:0\"\nupstream = \"http://127.0.0.1:9\"\ncert = \"{}\"\nkey = \"{}\"\nhsts = true\n\n[[listener]]\nmode = \"redirect\"\nlisten = \"127.0.0.1:0\"\nto = \"https://localhost\"\n",
        c.display(),
        k.display()
    )
}

#[test]
fn check_accepts_a_good_config_and_exits_0() {
    let d = tempfile::tempdir().unwrap();
    let (rc, out, err) = check(d.path(), &good(d.path()));
    assert_eq!(rc, 0, "{out}{err}");
    assert!(out.contains("OK (2 listener(s)"), "{out}");
}

#[test]
fn unknown_key_is_an_error_naming_file_line_and_key() {
    let d = tempfile::tempdir().unwrap();
    let toml = good(d.path()).replace("hsts = true", "hsts = true\nupstrem = \"x\"");
    let (rc, _, err) = check(d.path(), &toml);
    assert_eq!(rc, 1, "{err}");
    assert!(
        err.contains("gw.toml:12:") && err.contains("upstrem"),
        "{err}"
    );
}

#[test]
fn wrong_type_names_the_key_and_what_is_expected() {
    let d = tempfile::tempdir().unwrap();
    let toml = good(d.path()).replace("max_connections = 100", "max_connections = \"lots\"");
    let (rc, _, err) = check(d.path(), &toml);
    assert_eq!(rc, 1);
    assert!(
        err.contains("gw.toml:3:") && err.contains("max_connections"),
        "{err}"
    );
}

#[test]
fn missing_and_misplaced_keys_are_located() {
    let d = tempfile::tempdir().unwrap();
    let g = good(d.path());
    let (rc, _, err) = check(
        d.path(),
        &g.replace("to = \"https://localhost\"", "to = \"http://localhost\""),
    );
    assert_eq!(rc, 1);
    assert!(
        err.contains("gw.toml:16:") && err.contains("`to`") && err.contains("https://"),
        "{err}"
    );
    let (rc, _, err) = check(d.path(), &format!("{g}proxy_protocol = true\n"));
    assert_eq!(rc, 1);
    assert!(
        err.contains("proxy_protocol") && err.contains("redirect"),
        "{err}"
    );
    let (rc, _, err) = check(
        d.path(),
        &g.replace(
            "listen = \"127.0.0.1:0\"\nupstream",
            "listen = \"everywhere\"\nupstream",
        ),
    );
    assert_eq!(rc, 1);
    assert!(
        err.contains("gw.toml:7:") && err.contains("listen"),
        "{err}"
    );
}

#[test]
fn an_empty_allow_list_is_refused_with_what_to_write_instead() {
    let d = tempfile::tempdir().unwrap();
    let g = good(d.path()).replace(
        "hsts = true",
        "hsts = true\nclient_ca = \"ca.pem\"\nallow = []",
    );
    for args in [&["proxy", "check", "--config"][..], &["proxy", "--config"]] {
        let p = d.path().join("gw.toml");
        std::fs::write(&p, &g).unwrap();
        let out = Command::new(bin()).args(args).arg(&p).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {err}");
        assert!(
            err.contains("gw.toml:13:9: key `allow`: an empty list would admit no one")
                && err.contains("remove `allow` to admit every client certificate"),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn a_bad_allow_rule_is_refused_at_the_rule_not_skipped() {
    let d = tempfile::tempdir().unwrap();
    let g = good(d.path()).replace(
        "hsts = true",
        "hsts = true\nclient_ca = \"ca.pem\"\nallow = [\n  \"CN=alice\",\n  \"SPKI:00ff\",\n]",
    );
    let (rc, out, err) = check(d.path(), &g);
    assert_eq!(rc, 1, "{out}{err}");
    assert!(
        err.contains("gw.toml:15:3: key `allow`: `SPKI:00ff`: an SPKI pin is 64 hex digits"),
        "{err}"
    );
    assert!(!out.contains("OK"), "{out}");
}

#[test]
fn unreadable_or_mismatched_certificates_fail_the_check() {
    let d = tempfile::tempdir().unwrap();
    let g = good(d.path());
    let (rc, _, err) = check(d.path(), &g.replace("gw.key", "missing.key"));
    assert_eq!(rc, 1);
    assert!(err.contains("missing.key"), "{err}");
    let pki = Pki::new(&d.path().join("other"), "o");
    let (_, other_key) = pki.leaf("o", "o", &["localhost"], &[], false);
    let k = d.path().join("gw.key");
    std::fs::copy(&other_key, &k).unwrap();
    let (rc, _, err) = check(d.path(), &g);
    assert_eq!(rc, 1);
    assert!(err.contains("do not match"), "{err}");
    std::fs::write(&k, "not a key").unwrap();
    let (rc, _, err) = check(d.path(), &g);
    assert_eq!(rc, 1);
    assert!(
        err.contains("gw.key") && err.contains("private key"),
        "{err}"
    );
}

#[test]
fn run_with_a_bad_config_exits_1_without_binding() {
    let d = tempfile::tempdir().unwrap();
    let p = d.path().join("gw.toml");
    std::fs::write(&p, "[[listener]]\nmode = \"ftp\"\n").unwrap();
    let out = Command::new(bin())
        .args(["proxy", "--config"])
        .arg(&p)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("gw.toml:2:") && err.contains("mode"), "{err}");
}

#[test]
fn cert_dev_writes_a_usable_pair_and_says_development_only() {
    let d = tempfile::tempdir().unwrap();
    let out = Command::new(bin())
        .args(["cert", "dev", "--out"])
        .arg(d.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("DEVELOPMENT ONLY"));
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(d.path().join("key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "key readable by others: {mode:o}");
    let again = Command::new(bin())
        .args(["cert", "dev", "--out"])
        .arg(d.path())
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(1), "overwrote without --force");
    let toml = format!(
        "[[listener]]\nmode = \"tcp\"\nlisten = \"127.0.0.1:0\"\nupstream = \"127.0.0.1:9\"\ncert = \"{0}/cert.pem\"\nkey = \"{0}/key.pem\"\n",
        d.path().display()
    );
    let (rc, out, err) = check(d.path(), &toml);
    assert_eq!(rc, 0, "{out}{err}");
}
