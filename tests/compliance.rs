//! `pivault compliance report` through the real binary: the report's
//! content is checked against a vault whose state the test set up (slots,
//! policy, rotation, a failed unseal), a tampered audit log, and a gateway
//! configuration; the HTML form is self-contained and escaped; the report
//! never needs a secret and never changes the vault.

mod common;

use common::*;
use serde_json::Value;
use std::ffi::OsStr;
use std::fs;
use std::path::{Path, PathBuf};

/// `pivault keys SUB VAULT [extra]`, unsealing with PIVAULT_PASSPHRASE.
fn keys_env(vault: &Path, sub: &str, pass: &str, extra: &[&OsStr]) -> Out {
    let mut c = pv();
    c.arg("keys").arg(sub).arg(vault).args(extra);
    c.env("PIVAULT_PASSPHRASE", pass);
    run(&mut c)
}

/// `pivault compliance report ARGS...` with no PIVAULT_* variable and
/// stdin from /dev/null (common::pv): it must need no secret.
fn report<I, S>(args: I) -> Out
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut c = pv();
    c.arg("compliance").arg("report").args(args);
    run(&mut c)
}

fn report_json(vault: &Path, extra: &[&OsStr]) -> Value {
    let mut args: Vec<&OsStr> = vec![
        vault.as_os_str(),
        OsStr::new("--format"),
        OsStr::new("json"),
    ];
    args.extend_from_slice(extra);
    let out = ok(report(args));
    serde_json::from_str(&out.stdout)
        .unwrap_or_else(|e| panic!("--format json is not JSON ({e}): {out:?}"))
}

fn section<'a>(r: &'a Value, id: &str) -> &'a Value {
    r["sections"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no section {id} in {r:#}"))
}

/// A vault with: slot 0 (passphrase, test KDF, policy alice,bob / 5
/// failures / expiry), slot 1 (passphrase), slot 2 (recovery), slot 3
/// (2 of 3 shares), data key
/// version 2 from a rotation, and one failed unseal (a wrong passphrase).
fn prepared() -> Fixture {
    let f = Fixture::with_vault("xchacha");
    let p2 = pass_file(f.tmp.path(), "p2", "second passphrase");
    ok(keys_env(
        &f.vault,
        "add-passphrase",
        PASS,
        &[
            OsStr::new("--new-passphrase-file"),
            p2.as_os_str(),
            OsStr::new("--insecure-test-kdf"),
        ],
    ));
    let rk = ok(keys_env(&f.vault, "add-recovery", PASS, &[]));
    assert!(rk.stdout.starts_with("PVRK-"), "{rk:?}");
    let shares = f.path("shares");
    ok(keys_env(
        &f.vault,
        "add-shares",
        PASS,
        &[
            OsStr::new("--threshold"),
            OsStr::new("2"),
            OsStr::new("--shares"),
            OsStr::new("3"),
            OsStr::new("--out-dir"),
            shares.as_os_str(),
        ],
    ));
    ok(keys_env(&f.vault, "rotate", PASS, &[]));
    // The policy comes last among the successes: this OS user is neither
    // alice nor bob, so slot 0 refuses it from now on.
    ok(keys_env(
        &f.vault,
        "policy",
        PASS,
        &[
            OsStr::new("--slot"),
            OsStr::new("0"),
            OsStr::new("--users"),
            OsStr::new("alice,bob"),
            OsStr::new("--max-failures"),
            OsStr::new("5"),
            OsStr::new("--expires"),
            OsStr::new("2030-06-30"),
        ],
    ));
    failed(keys_env(&f.vault, "rotate", "not the passphrase", &[]));
    f
}

#[test]
fn report_shows_the_vault_state_in_every_format() {
    let f = prepared();
    let before = snapshot(&f.vault);

    let r = report_json(&f.vault, &[]);
    assert_eq!(r["report"], "pivault compliance report");
    assert_eq!(r["schema"], 1);
    assert_eq!(r["pivault_version"], env!("CARGO_PKG_VERSION"));
    assert!(r["proxy"].is_null());
    let v = &r["vaults"][0];
    assert_eq!(v["path"], f.vault.display().to_string());
    assert_eq!(v["suite"], "xchacha20-poly1305");
    let kinds: Vec<&str> = v["slots"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["passphrase", "passphrase", "recovery", "shares"]);
    let s0 = &v["slots"][0];
    assert_eq!(s0["kdf"]["algorithm"], "argon2id");
    assert_eq!(s0["kdf"]["test_only"], true);
    assert_eq!(s0["kdf"]["m_kib"], 64);
    assert_eq!(s0["policy"]["users"], serde_json::json!(["alice", "bob"]));
    assert_eq!(s0["policy"]["max_failures"], 5);
    assert_eq!(s0["policy"]["expires"], "2030-06-30T23:59:59Z");
    assert_eq!(s0["locked"], false);
    assert!(s0["last_use"].is_string(), "slot 0 unsealed: {s0}");
    assert_eq!(v["slots"][2]["kdf"]["algorithm"], "hkdf-sha256");
    assert_eq!(v["slots"][2]["kdf"]["test_only"], false);
    assert!(v["slots"][1]["policy"]["users"]
        .as_array()
        .unwrap()
        .is_empty());
    assert_eq!(
        v["data_keys"],
        serde_json::json!([{"version": 1, "current": false}, {"version": 2, "current": true}])
    );
    let rot = v["rotations"].as_array().unwrap();
    assert_eq!(rot.len(), 1, "{v:#}");
    assert_eq!(rot[0]["new_version"], 2);
    assert!(rot[0]["time"].as_str().unwrap().starts_with("20"));
    let events: Vec<&str> = v["key_history"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["event"].as_str().unwrap())
        .collect();
    assert_eq!(
        events,
        ["init", "slot-add", "slot-add", "slot-add", "rotate", "policy"]
    );
    assert_eq!(v["audit"]["intact"], true);
    assert!(v["audit"]["problem"].is_null());
    assert!(v["audit"]["key_fingerprint"].is_string());
    assert_eq!(v["failed_unseals_in_period"], 1);
    assert_eq!(v["failed_unseals"][0]["tried"], serde_json::json!([1]));
    assert_eq!(v["slots"][3]["threshold"], 2);
    assert_eq!(v["slots"][3]["shares"], 3);
    assert_eq!(v["unseals_in_period"], 5);
    assert_eq!(v["slots"][1]["failures"], 1);

    // Statuses computed from that state.
    let auth = section(&r, "17.04(1)");
    assert_eq!(auth["status"], "finding");
    assert!(
        auth["status_text"]
            .as_str()
            .unwrap()
            .contains("test-only KDF"),
        "{auth}"
    );
    assert_eq!(section(&r, "17.04(5)")["status"], "finding");
    assert_eq!(section(&r, "17.04(2)")["status"], "partly");
    assert_eq!(section(&r, "17.04(3)")["status"], "firms_duty");
    assert_eq!(section(&r, "17.04(4)")["status"], "met");
    for id in ["17.04(6)", "17.04(7)", "17.04(8)"] {
        assert_eq!(section(&r, id)["status"], "firms_duty");
    }
    let duties: Vec<&str> = r["firm_duties"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["key"].as_str().unwrap())
        .collect();
    for k in [
        "training",
        "vendor_contracts",
        "physical_security",
        "wisp_ownership",
        "patching",
        "incident_response",
    ] {
        assert!(duties.contains(&k), "{k} missing from {duties:?}");
    }

    // --since after everything: nothing failed in that period.
    let later = report_json(&f.vault, &[OsStr::new("--since"), OsStr::new("2099-01-01")]);
    assert_eq!(later["vaults"][0]["failed_unseals_in_period"], 0);
    assert_eq!(later["period"]["since"], "2099-01-01T00:00:00Z");

    let md = ok(report([f.vault.as_os_str()])).stdout;
    for needle in [
        "# pivault compliance report",
        "| 17.04(1) | Secure user authentication protocols | **FINDING** |",
        "| 17.04(4) | Reasonable monitoring of systems | **met by pivault** |",
        "- Cipher suite: xchacha20-poly1305",
        "| 0 | passphrase | argon2id m=64 KiB t=1 p=1 **TEST-ONLY** | alice, bob | 2030-06-30T23:59:59Z | 5 | no |",
        "| 2 | recovery | hkdf-sha256 | any |",
        "data key version 2 added",
        "policy of slot 0 set: users alice, bob; expires 2030-06-30T23:59:59Z; locks after 5 failures",
        "- Data key versions: 1, 2 (current)",
        "- Audit log: verified intact",
        "- In the period: 5 unseals, 1 failed unseals",
        "slot 3 (shares), any 2 of 3 shares, hkdf-sha256",
        "What remains the firm's duty",
    ] {
        assert_contains(&md, needle);
    }

    let out = f.path("report.html");
    ok(report([
        f.vault.as_os_str(),
        OsStr::new("--format"),
        OsStr::new("html"),
        OsStr::new("--out"),
        out.as_os_str(),
    ]));
    let html = fs::read_to_string(&out).unwrap();
    for needle in [
        "<style>",
        "<span class=\"badge finding\">finding</span>",
        "<span class=\"badge met\">met by pivault</span>",
        "<td>Cipher suite</td><td>xchacha20-poly1305</td>",
        "<td>0</td><td>passphrase</td><td>argon2id m=64 KiB t=1 p=1 <span class=\"badge finding\">TEST-ONLY</span></td><td>alice, bob</td>",
        "data key version 2 added",
        "<span class=\"ok\">verified intact</span>",
        "5 unseals, 1 failed unseals",
    ] {
        assert_contains(&html, needle);
    }

    // Reading is all it did: no audit record, no keystore write.
    assert_unchanged(&f.vault, &before);
}

#[test]
fn tampered_audit_log_is_a_finding_naming_the_record() {
    let f = prepared();
    let log = f.vault.join("audit.log");
    let text = fs::read_to_string(&log).unwrap();
    let mut lines: Vec<String> = text.lines().map(str::to_string).collect();
    assert!(lines.len() > 3);
    assert!(lines[2].contains("\"host\":\""), "{}", lines[2]);
    lines[2] = lines[2].replacen("\"host\":\"", "\"host\":\"x", 1);
    fs::write(&log, lines.join("\n") + "\n").unwrap();

    let r = report_json(&f.vault, &[]);
    let a = &r["vaults"][0]["audit"];
    assert_eq!(a["intact"], false);
    assert_eq!(a["problem"]["record"], 2, "{a}");
    let mon = section(&r, "17.04(4)");
    assert_eq!(mon["status"], "finding");
    assert!(
        mon["status_text"]
            .as_str()
            .unwrap()
            .contains("fails verification at record 2"),
        "{mon}"
    );
    let md = ok(report([f.vault.as_os_str()])).stdout;
    assert_contains(
        &md,
        "| 17.04(4) | Reasonable monitoring of systems | **FINDING** |",
    );
    assert_contains(&md, "- Audit log: **FAILS VERIFICATION at record 2**");
    let html = ok(report([
        f.vault.as_os_str(),
        OsStr::new("--format"),
        OsStr::new("html"),
    ]))
    .stdout;
    assert_contains(
        &html,
        "<span class=\"bad\">FAILS VERIFICATION at record 2</span>",
    );
}

const GATEWAY: &str = r#"access_log = "/var/log/pivault/access.log"
[metrics]
listen = "127.0.0.1:9100"
[[listener]]
mode = "http"
listen = "0.0.0.0:8443"
upstream = "http://127.0.0.1:8080"
cert = "/etc/pivault/gw.pem"
key = "sealed:/srv/vault:gw"
client_ca = "/etc/pivault/clients-ca.pem"
allow = ["CN=alice", "URI:spiffe://corp/hr"]
client_crl = ["/etc/pivault/clients.crl"]
hsts = true
[[listener]]
mode = "redirect"
listen = "0.0.0.0:8080"
to = "https://app.example"
"#;

#[test]
fn proxy_listeners_are_reported() {
    let f = prepared();
    let cfg = f.path("gw.toml");
    fs::write(&cfg, GATEWAY).unwrap();
    let r = report_json(&f.vault, &[OsStr::new("--proxy-config"), cfg.as_os_str()]);
    let p = &r["proxy"];
    assert_eq!(p["config"], cfg.display().to_string());
    assert_eq!(p["access_log"], "/var/log/pivault/access.log");
    let l = p["listeners"].as_array().unwrap();
    assert_eq!(l.len(), 2);
    assert_eq!(l[0]["mode"], "http");
    assert_eq!(l[0]["listen"], "0.0.0.0:8443");
    assert_eq!(l[0]["tls_in"], true);
    assert_eq!(l[0]["tls_versions"], serde_json::json!(["1.3", "1.2"]));
    let suites: Vec<&str> = l[0]["cipher_suites"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap())
        .collect();
    assert!(suites.contains(&"TLS_AES_256_GCM_SHA384"), "{suites:?}");
    assert!(
        suites.contains(&"TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"),
        "{suites:?}"
    );
    assert!(suites
        .iter()
        .all(|s| s.contains("GCM") || s.contains("CHACHA20_POLY1305")));
    assert!(suites
        .iter()
        .filter(|s| !s.starts_with("TLS_AES") && !s.starts_with("TLS_CHACHA"))
        .all(|s| s.starts_with("TLS_ECDHE_")));
    assert_eq!(l[0]["client_certificates"], "required");
    assert_eq!(l[0]["client_ca"], "/etc/pivault/clients-ca.pem");
    assert_eq!(
        l[0]["allow"],
        serde_json::json!(["CN=alice", "URI:spiffe://corp/hr"])
    );
    assert_eq!(
        l[0]["client_crl"],
        serde_json::json!(["/etc/pivault/clients.crl"])
    );
    assert_eq!(l[1]["client_crl"], serde_json::json!([]));
    assert_eq!(l[0]["hsts"], true);
    assert_eq!(l[0]["key_sealed"], true);
    assert_eq!(l[0]["upstream_loopback"], true);
    assert_eq!(l[1]["mode"], "redirect");
    assert_eq!(l[1]["plaintext_in"], true);
    assert_eq!(l[1]["redirect_only"], true);
    assert_eq!(l[1]["redirect_to"], "https://app.example");
    assert_eq!(l[1]["tls_versions"], serde_json::json!([]));
    assert_eq!(section(&r, "17.04(3)")["status"], "met");

    let md = ok(report([
        f.vault.as_os_str(),
        OsStr::new("--proxy-config"),
        cfg.as_os_str(),
    ]))
    .stdout;
    assert_contains(
        &md,
        "| 17.04(3) | Encryption of transmitted records | **met by pivault** |",
    );
    assert_contains(&md, "| 1 | http | 0.0.0.0:8443 | 1.3, 1.2 in | required (CA /etc/pivault/clients-ca.pem); allow CN=alice, URI:spiffe://corp/hr; revocation checked (CRL /etc/pivault/clients.crl) | on | http://127.0.0.1:8080 |");
    assert_contains(&md, "| 2 | redirect | 0.0.0.0:8080 | plaintext, redirect only | n/a | - | https://app.example |");
    let html = ok(report([
        f.vault.as_os_str(),
        OsStr::new("--proxy-config"),
        cfg.as_os_str(),
        OsStr::new("--format"),
        OsStr::new("html"),
    ]))
    .stdout;
    assert_contains(&html, "<td>TLS 1.3, 1.2 in</td><td>required (CA <span class=\"mono\">/etc/pivault/clients-ca.pem</span>); allow CN=alice, URI:spiffe://corp/hr; revocation checked (CRL <span class=\"mono\">/etc/pivault/clients.crl</span>)</td><td>on</td>");
    assert_contains(&html, "<td>plaintext, redirect only</td>");

    // A plaintext originate listener open to the network, an upstream off
    // the host and no HSTS: a finding and gaps.
    let risky = f.path("risky.toml");
    fs::write(
        &risky,
        r#"[[listener]]
mode = "originate"
listen = "0.0.0.0:5433"
upstream = "db.example:5432"
[[listener]]
mode = "http"
listen = "0.0.0.0:8443"
upstream = "http://10.1.2.3:8080"
cert = "c.pem"
key = "k.pem"
"#,
    )
    .unwrap();
    let r = report_json(&f.vault, &[OsStr::new("--proxy-config"), risky.as_os_str()]);
    let t = section(&r, "17.04(3)");
    assert_eq!(t["status"], "finding");
    assert!(
        t["findings"][0]
            .as_str()
            .unwrap()
            .contains("listener 1 (originate) accepts plaintext on 0.0.0.0:5433"),
        "{t}"
    );
    let cautions = t["cautions"].to_string();
    assert!(
        cautions.contains("http://10.1.2.3:8080") && cautions.contains("HSTS"),
        "{t}"
    );
    assert_eq!(r["proxy"]["listeners"][0]["client_certificates"], "n/a");
    assert_eq!(
        r["proxy"]["listeners"][1]["client_certificates"],
        "not requested"
    );
    assert_eq!(section(&r, "17.04(4)")["status"], "partly");
}

#[test]
fn bad_proxy_config_and_bad_vault_paths_fail_clearly() {
    let f = prepared();
    let cfg = f.path("bad.toml");
    fs::write(
        &cfg,
        format!("{GATEWAY}[[listener]]\nmode = \"http\"\nlisten = \"nonsense\"\n"),
    )
    .unwrap();
    let out = failed(report([
        f.vault.as_os_str(),
        OsStr::new("--proxy-config"),
        cfg.as_os_str(),
    ]));
    assert_contains(&out.stderr, &format!("{}:20:", cfg.display()));
    assert_contains(&out.stderr, "listen");
    assert!(out.stdout.is_empty(), "{out:?}");

    let garbage = f.path("garbage.toml");
    fs::write(&garbage, "[[listener]\nmode = \n").unwrap();
    let out = failed(report([
        f.vault.as_os_str(),
        OsStr::new("--proxy-config"),
        garbage.as_os_str(),
    ]));
    assert_contains(&out.stderr, &format!("{}:1:", garbage.display()));

    let missing = f.path("missing.toml");
    let out = failed(report([
        f.vault.as_os_str(),
        OsStr::new("--proxy-config"),
        missing.as_os_str(),
    ]));
    assert_contains(&out.stderr, &missing.display().to_string());

    let nowhere = f.path("no-such-vault");
    let out = failed(report([nowhere.as_os_str()]));
    assert_contains(
        &out.stderr,
        &format!("{}: no such vault directory", nowhere.display()),
    );

    let empty = f.path("empty");
    fs::create_dir(&empty).unwrap();
    let out = failed(report([f.vault.as_os_str(), empty.as_os_str()]));
    assert_contains(&out.stderr, &empty.display().to_string());
    assert_contains(&out.stderr, "not a pivault vault");

    let out = failed(report([f.pass.as_os_str()]));
    assert_contains(&out.stderr, &format!("{}: not a vault", f.pass.display()));

    let out = failed(report([
        f.vault.as_os_str(),
        OsStr::new("--since"),
        OsStr::new("yesterday-ish"),
    ]));
    assert_contains(&out.stderr, "yesterday-ish");
}

#[test]
fn html_is_self_contained_and_escapes_everything() {
    let f = Fixture::new();
    // A `/` cannot be in a name: the script tag spans two levels.
    let parent: PathBuf = f.path("a<script>alert('x')<");
    fs::create_dir(&parent).unwrap();
    let vault = parent.join("script>&\"b");
    ok(pv_run([
        OsStr::new("init"),
        vault.as_os_str(),
        OsStr::new("--insecure-test-kdf"),
        OsStr::new("--passphrase-file"),
        f.pass.as_os_str(),
    ]));
    let html = ok(report([
        vault.as_os_str(),
        OsStr::new("--format"),
        OsStr::new("html"),
    ]))
    .stdout;
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_contains(&html, "<style>");
    assert_contains(
        &html,
        "&lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;&amp;&quot;b",
    );
    let lower = html.to_ascii_lowercase();
    assert!(!lower.contains("<script"), "unescaped script tag");
    for banned in [
        "src=", "<link", "@import", "url(", "<iframe", "<img", "<object", "http://", "https://",
    ] {
        assert!(
            !lower.contains(banned),
            "html refers to an outside resource ({banned})"
        );
    }
    for (i, _) in lower.match_indices("href=") {
        assert!(
            lower[i..].starts_with("href=\"#"),
            "only in-page links: {}",
            &lower[i..i + 40]
        );
    }
    let md = ok(report([vault.as_os_str()])).stdout;
    assert!(
        !md.replace("\\<", "").contains("<script"),
        "markdown passes HTML through"
    );
    assert_contains(&md, "\\<script\\>");
    let json = ok(report([
        vault.as_os_str(),
        OsStr::new("--format"),
        OsStr::new("json"),
    ]))
    .stdout;
    let r: Value = serde_json::from_str(&json).unwrap();
    assert_eq!(r["vaults"][0]["path"], vault.display().to_string());
}

#[test]
fn each_control_says_whether_the_cryptography_or_pivault_enforces_it() {
    let f = Fixture::with_vault("aes-gcm");
    let r = report_json(&f.vault, &[]);
    let by = |id: &str| -> Vec<(String, String)> {
        section(&r, id)["enforcement"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| {
                (
                    e["by"].as_str().unwrap().to_string(),
                    e["control"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    };
    let auth = by("17.04(1)");
    assert!(auth
        .iter()
        .any(|(b, c)| b == "cryptographic" && c.contains("Argon2id")));
    assert!(auth
        .iter()
        .any(|(b, c)| b == "enforced by pivault on this machine"
            && c.contains("lockout")
            && c.contains("roles")));
    assert!(by("17.04(5)").iter().all(|(b, _)| b == "cryptographic"));
    let md = ok(report(vec![f.vault.as_os_str()])).stdout;
    assert!(
        md.contains("enforced by pivault on this machine: slot policies"),
        "{md}"
    );
}
