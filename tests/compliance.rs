//! `pivault compliance report` through the real binary: the report's
//! content is checked against a vault whose state the test set up (slots,
//! policy, rotation, a failed unseal), a tampered audit log, and a gateway
//! configuration; the HTML form is self-contained and escaped; the report
//! never needs a secret and never changes the vault. `pivault compliance
//! merge` makes one report of several machines' (distinct vaults, gateway
//! configurations and host names) and refuses what it cannot merge
//! without writing anything.

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

/// `pivault compliance merge ARGS...`.
fn merge<I, S>(args: I) -> Out
where
    I: IntoIterator<Item = S>,
    S: AsRef<OsStr>,
{
    let mut c = pv();
    c.arg("compliance").arg("merge").args(args);
    run(&mut c)
}

/// Writes `pivault compliance report VAULT --format json [extra]` to
/// `out`, with `env` set (PIVAULT_HOSTNAME), and returns it parsed.
fn machine_report(vault: &Path, out: &Path, extra: &[&OsStr], env: &[(&str, &str)]) -> Value {
    let mut c = pv();
    c.args(["compliance", "report"])
        .arg(vault)
        .args(["--format", "json", "--out"])
        .arg(out)
        .args(extra);
    for (k, v) in env {
        c.env(k, v);
    }
    ok(run(&mut c));
    serde_json::from_str(&fs::read_to_string(out).unwrap()).unwrap()
}

/// Three machines, each with its own vault and host name: ws-alpha (a
/// test-only KDF), ws-beta (a vault at the default Argon2id cost behind a
/// gateway that takes plaintext from the network) and srv-gamma (a test
/// KDF, a tampered audit log, and a report years old).
struct Fleet {
    alpha: Fixture,
    beta: Fixture,
    gamma: Fixture,
    reports: Vec<PathBuf>,
}

fn fleet() -> Fleet {
    let alpha = prepared();
    let a = alpha.path("alpha.json");
    let r = machine_report(
        &alpha.vault,
        &a,
        &[OsStr::new("--hostname"), OsStr::new("ws-alpha")],
        &[],
    );
    assert_eq!(r["host"], "ws-alpha");

    // The default KDF: no weak-KDF finding on this machine.
    let beta = Fixture::new();
    ok(pv_run([
        OsStr::new("init"),
        beta.vault.as_os_str(),
        OsStr::new("--passphrase-file"),
        beta.pass.as_os_str(),
    ]));
    let gw = beta.path("gw.toml");
    fs::write(
        &gw,
        "[[listener]]\nmode = \"originate\"\nlisten = \"0.0.0.0:5433\"\nupstream = \"db.example:5432\"\n",
    )
    .unwrap();
    let b = beta.path("beta.json");
    let r = machine_report(
        &beta.vault,
        &b,
        &[OsStr::new("--proxy-config"), gw.as_os_str()],
        &[("PIVAULT_HOSTNAME", "ws-beta")],
    );
    assert_eq!(r["host"], "ws-beta");
    assert_eq!(r["vaults"][0]["slots"][0]["kdf"]["test_only"], false);

    let gamma = Fixture::with_vault("aes-gcm");
    let log = gamma.vault.join("audit.log");
    let text = fs::read_to_string(&log).unwrap();
    fs::write(&log, text.replacen("\"host\":\"", "\"host\":\"x", 1)).unwrap();
    let g = gamma.path("gamma.json");
    let mut r = machine_report(
        &gamma.vault,
        &g,
        &[OsStr::new("--hostname"), OsStr::new("srv-gamma")],
        &[],
    );
    assert_eq!(r["vaults"][0]["audit"]["intact"], false);
    // As if this machine had last reported years before the merge.
    r["generated"] = "2020-01-01T00:00:00Z".into();
    fs::write(&g, r.to_string()).unwrap();
    Fleet {
        reports: vec![a, b, g],
        alpha,
        beta,
        gamma,
    }
}

#[test]
fn merge_gives_a_row_per_machine_and_fleet_totals_in_every_format() {
    let f = fleet();
    let out = ok(merge(
        f.reports
            .iter()
            .map(|p| p.as_os_str())
            .chain([OsStr::new("--format"), OsStr::new("json")]),
    ));
    let j: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(j["report"], "pivault compliance fleet report");
    assert_eq!(j["schema"], 1);
    assert_eq!(j["max_report_age_days"], 7);
    let t = &j["totals"];
    for (k, n) in [
        ("machines", 3),
        ("with_findings", 3),
        ("weak_kdf", 2),
        ("stale_rotations", 0),
        ("audit_unverified", 1),
        ("audit_broken", 1),
        ("audit_unsigned", 0),
        ("plaintext_gateways", 1),
        ("stale_reports", 1),
    ] {
        assert_eq!(t[k], n, "{k}: {t:#}");
    }
    let auth = &t["sections"][0];
    assert_eq!(auth["id"], "17.04(1)");
    assert_eq!(auth["finding"], 2);
    let m = j["machines"].as_array().unwrap();
    let hosts: Vec<&str> = m.iter().map(|r| r["host"].as_str().unwrap()).collect();
    assert_eq!(hosts, ["srv-gamma", "ws-alpha", "ws-beta"]);
    let (gamma, alpha, beta) = (&m[0], &m[1], &m[2]);
    assert_eq!(gamma["generated"], "2020-01-01T00:00:00Z");
    assert_eq!(gamma["stale_report"], true);
    assert_eq!(gamma["overall"], "finding");
    assert_eq!(gamma["file"], f.reports[2].display().to_string());
    assert!(
        gamma["audit_broken"][0]
            .as_str()
            .unwrap()
            .starts_with(&format!("{}: record ", f.gamma.vault.display())),
        "{gamma:#}"
    );
    assert_eq!(
        alpha["weak_kdf"],
        serde_json::json!([
            format!("{} slot 0", f.alpha.vault.display()),
            format!("{} slot 1", f.alpha.vault.display())
        ])
    );
    assert_eq!(alpha["stale_report"], false);
    assert_eq!(alpha["sections"][1]["status"], "partly");
    assert_eq!(alpha["rotation_max_age_days"], 365);
    assert_eq!(beta["weak_kdf"], serde_json::json!([]));
    assert_eq!(
        beta["plaintext_listeners"],
        serde_json::json!(["listener 1 (originate) on 0.0.0.0:5433"])
    );
    assert_eq!(
        beta["proxy_config"],
        f.beta.path("gw.toml").display().to_string()
    );
    assert_eq!(beta["vaults"], 1);

    // Markdown to a file.
    let md_file = f.alpha.path("fleet.md");
    let out = ok(merge(
        f.reports
            .iter()
            .map(|p| p.as_os_str())
            .chain([OsStr::new("--out"), md_file.as_os_str()]),
    ));
    assert!(out.stdout.is_empty(), "{out:?}");
    let md = fs::read_to_string(&md_file).unwrap();
    for needle in [
        "# pivault fleet compliance report: 201 CMR 17.04",
        "from 3 machine reports",
        "| with findings | 3 of 3 |",
        "| weak KDFs | 2 of 3 |",
        "| stale rotations | 0 of 3 | a vault whose current data key is older than 365 days",
        "| audit logs not verified | 1 of 3 |",
        "| gateways allowing plaintext | 1 of 3 |",
        "| stale reports | 1 of 3 | the machine's report is older than 7 days",
        "| srv-gamma | 2020-01-01T00:00:00Z **STALE** | **FINDING** | 1 | **1** | - | **1 FAIL** | - |",
        "| ws-beta | ",
        "| 17.04(3) | Encryption of transmitted records | 1 | 0 | 0 | 2 |",
        "## ws-alpha",
        "- plaintext from the network: listener 1 (originate) on 0.0.0.0:5433",
    ] {
        assert_contains(&md, needle);
    }
    assert_contains(
        &md,
        &format!(
            "| ws-alpha | {} | **FINDING** | 1 | **2** | - | verified | - |",
            alpha["generated"].as_str().unwrap()
        ),
    );

    let html = ok(merge(
        f.reports
            .iter()
            .map(|p| p.as_os_str())
            .chain([OsStr::new("--format"), OsStr::new("html")]),
    ))
    .stdout;
    for needle in [
        "<!DOCTYPE html>",
        "<style>",
        "<tr><td>with findings</td><td><span class=\"bad\">3</span> of 3</td>",
        "<tr><td>stale reports</td><td><span class=\"bad\">1</span> of 3</td>",
        "<td><a href=\"#machine-1\">srv-gamma</a></td><td>2020-01-01T00:00:00Z <span class=\"badge finding\">stale</span></td>",
        "<a href=\"#machine-2\">ws-alpha</a>",
        "<a href=\"#machine-3\">ws-beta</a>",
        "<div class=\"section finding\" id=\"machine-3\">",
    ] {
        assert_contains(&html, needle);
    }
    assert!(!html.to_ascii_lowercase().contains("<script"));

    // --max-age: a report years old is fresh enough at 100000 days.
    let out = ok(merge(f.reports.iter().map(|p| p.as_os_str()).chain([
        OsStr::new("--format"),
        OsStr::new("json"),
        OsStr::new("--max-age"),
        OsStr::new("100000"),
    ])));
    let j: Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(j["totals"]["stale_reports"], 0);
    assert_eq!(j["max_report_age_days"], 100000);
}

#[test]
fn a_report_names_its_machine() {
    let f = Fixture::with_vault("aes-gcm");
    let r = report_json(&f.vault, &[]);
    let host = r["host"].as_str().unwrap();
    assert!(!host.is_empty(), "{r:#}");
    let md = ok(report([
        f.vault.as_os_str(),
        OsStr::new("--hostname"),
        OsStr::new("laptop-7"),
    ]))
    .stdout;
    assert_contains(&md, "- Machine: laptop-7");
    let out = failed(report([
        f.vault.as_os_str(),
        OsStr::new("--hostname"),
        OsStr::new(" "),
    ]));
    assert_contains(&out.stderr, "--hostname");
    let v = &r["vaults"][0];
    assert_eq!(r["rotation_max_age_days"], 365);
    assert_eq!(v["data_key_age_days"], 0);
    assert_eq!(v["rotation_stale"], false);
    assert_eq!(v["data_key_since"], v["created"]);
}

#[test]
fn merge_refuses_what_it_cannot_merge_and_writes_nothing() {
    let f = fleet();
    let dir = f.alpha.tmp.path();
    let [a, b, _] = [&f.reports[0], &f.reports[1], &f.reports[2]];
    let alpha: Value = serde_json::from_str(&fs::read_to_string(a).unwrap()).unwrap();
    let write = |name: &str, text: String| {
        let p = dir.join(name);
        fs::write(&p, text).unwrap();
        p
    };
    let garbage = write("garbage.json", "this is not a report\n".into());
    let other_json = write(
        "other.json",
        "{\"report\": \"weekly sales\", \"schema\": 1}".into(),
    );
    let mut v = alpha.clone();
    v["schema"] = 99.into();
    let newer = write("newer.json", v.to_string());
    let mut v = alpha.clone();
    v.as_object_mut().unwrap().remove("host");
    let hostless = write("hostless.json", v.to_string());
    let mut v: Value = serde_json::from_str(&fs::read_to_string(b).unwrap()).unwrap();
    v["host"] = "WS-ALPHA".into();
    let same_machine = write("same-machine.json", v.to_string());
    let fleet_json = write(
        "fleet.json",
        ok(merge([
            a.as_os_str(),
            OsStr::new("--format"),
            OsStr::new("json"),
        ]))
        .stdout,
    );
    let missing = dir.join("missing.json");

    let cases: Vec<(&str, Vec<&Path>, String)> = vec![
        (
            "garbage",
            vec![a, &garbage],
            format!(
                "{}: not a pivault compliance report (not JSON",
                garbage.display()
            ),
        ),
        (
            "another JSON document",
            vec![&other_json, a],
            format!(
                "{}: not a pivault compliance report (its `report` is \"weekly sales\")",
                other_json.display()
            ),
        ),
        (
            "a fleet report",
            vec![a, &fleet_json],
            format!(
                "{}: not a pivault compliance report (it is a fleet report",
                fleet_json.display()
            ),
        ),
        (
            "newer schema",
            vec![a, b, &newer],
            format!(
                "{}: report schema 99 is newer than this pivault reads (schema 1)",
                newer.display()
            ),
        ),
        (
            "no host",
            vec![&hostless],
            format!(
                "{}: the report does not name its machine",
                hostless.display()
            ),
        ),
        (
            "the same report twice",
            vec![a, b, a],
            format!(
                "{}: machine \"ws-alpha\" is already in {}",
                a.display(),
                a.display()
            ),
        ),
        (
            "two reports of one machine",
            vec![a, &same_machine],
            format!(
                "{}: machine \"WS-ALPHA\" is already in {}",
                same_machine.display(),
                a.display()
            ),
        ),
        (
            "missing file",
            vec![a, &missing],
            format!("{}: cannot read the report", missing.display()),
        ),
    ];
    for (name, inputs, want) in cases {
        for format in ["md", "json", "html"] {
            let out_file = dir.join(format!("fleet-out.{format}"));
            let mut args: Vec<&OsStr> = inputs.iter().map(|p| p.as_os_str()).collect();
            args.extend([
                OsStr::new("--format"),
                OsStr::new(format),
                OsStr::new("--out"),
                out_file.as_os_str(),
            ]);
            let out = failed(merge(args));
            assert_contains(&out.stderr, &want);
            assert!(out.stdout.is_empty(), "{name}: {out:?}");
            assert!(
                !out_file.exists(),
                "{name}: {} was written",
                out_file.display()
            );
        }
    }
    // What to do is in the message.
    let out = failed(merge([a.as_os_str(), garbage.as_os_str()]));
    assert_contains(
        &out.stderr,
        "pivault compliance report VAULT... --format json",
    );
    let out = failed(merge([a.as_os_str(), a.as_os_str()]));
    assert_contains(&out.stderr, "--hostname NAME");
    let out = failed(merge(Vec::<&OsStr>::new()));
    assert_contains(&out.stderr, "REPORT.json");
}
