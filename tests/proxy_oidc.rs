//! Single sign-on (`[listener.oidc]`) through the real binary against a
//! stub OpenID provider in this process, for what a real provider will not
//! produce: expired, wrongly signed, wrong-audience, wrong-issuer, HS256,
//! unsigned and replayed tokens, a JWKS rotation, tampered and foreign
//! cookies, forged identity headers; and the refusal's log line and count.
//! tests/proxy_oidc_provider.rs runs a real provider.

mod oidc_common;
mod proxy_common;

use oidc_common::*;
use proxy_common::*;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

struct World {
    s: Setup,
    stub: Stub,
    heads: Arc<Mutex<Vec<String>>>,
    upstream: SocketAddr,
    log: PathBuf,
}

fn world() -> World {
    let s = setup();
    let stub = Stub::start();
    let (upstream, heads) = recording_backend();
    let log = s.dir.join("access.log");
    World {
        s,
        stub,
        heads,
        upstream,
        log,
    }
}

impl World {
    /// A gateway with one OIDC listener whose cookie keys are `keys`.
    fn gateway(&self, keys: &[&str], extra: &str) -> Gw {
        let table = oidc_table(&self.s.dir, &self.stub.issuer, keys, extra);
        let toml = format!(
            "access_log = \"{}\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n[limits]\nrefusal_log_burst = 1000\n{}{table}",
            self.log.display(),
            self.s.http(self.upstream, "")
        );
        Gw::start(&self.s.dir, &toml)
    }
    fn access(&self) -> Vec<serde_json::Value> {
        std::fs::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect()
    }
    fn upstream_saw(&self) -> Vec<String> {
        self.heads.lock().unwrap().clone()
    }
}

fn staff() -> &'static str {
    "allow_groups = [\"staff\"]"
}

/// The refusal count of `reason` on the gateway's only listener.
fn refusals(gw: &Gw, reason: &str) -> u64 {
    let m = metrics(gw.metrics.unwrap());
    m.lines()
        .find(|l| {
            l.starts_with("pivault_oidc_refusals_total{")
                && l.contains(&format!("reason=\"{reason}\""))
        })
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0, |v| v.parse().unwrap())
}

#[test]
fn a_login_passes_the_user_and_no_client_can_claim_one() {
    let w = world();
    let gw = w.gateway(&[KEY_A], staff());
    let b = Browser::new(&w.s, "alice");
    // Without a session, forged identity headers reach nothing: the
    // browser is sent to the provider.
    let r = b.fetch(
        &url(gw.addrs[0], "/app?x=1"),
        &["-H", "X-Forwarded-User: mallory"],
    );
    assert_eq!(r.status, 302);
    assert!(
        r.location()
            .starts_with(&format!("{}/authorize?", w.stub.issuer)),
        "{}",
        r.location()
    );
    for p in [
        "code_challenge_method=S256",
        "code_challenge=",
        "nonce=",
        "state=",
        "scope=openid",
    ] {
        assert!(r.location().contains(p), "{p} missing: {}", r.location());
    }
    assert!(w.upstream_saw().is_empty());
    // The stub checks the PKCE verifier and the client secret: a
    // successful login shows both were sent.
    let cb = login(&b, gw.addrs[0], "/app?x=1");
    assert_eq!(cb.status, 302, "{}", cb.body);
    assert_eq!(cb.location(), "/app?x=1");
    let set: Vec<&str> = cb.all("set-cookie");
    let session = set
        .iter()
        .find(|c| c.starts_with("__Host-pivault-session="))
        .expect("a session cookie");
    for attr in [
        "Secure",
        "HttpOnly",
        "SameSite=Lax",
        "Path=/",
        "Max-Age=28800",
    ] {
        assert!(session.contains(attr), "{attr}: {session}");
    }
    assert!(set
        .iter()
        .any(|c| c.starts_with("__Host-pivault-session-login=;") && c.contains("Max-Age=0")));
    // Now the app gets the user, and only the gateway's word for it.
    let r = b.fetch(
        &url(gw.addrs[0], "/app?x=1"),
        &[
            "-H",
            "X-Forwarded-User: mallory",
            "-H",
            "X-Forwarded-Email: mallory@evil.example",
            "-H",
            "X_Forwarded_User: mallory",
            "-H",
            "Remote-User: mallory",
            "-H",
            "X-Auth-Request-User: mallory",
            "-H",
            "Cookie: theme=dark",
        ],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let heads = w.upstream_saw();
    assert_eq!(heads.len(), 1, "{heads:?}");
    let h = heads[0].to_ascii_lowercase();
    assert!(!h.contains("mallory"), "{h}");
    assert_eq!(h.matches("x-forwarded-user: alice\r\n").count(), 1, "{h}");
    assert!(
        h.contains("x-forwarded-email: alice@example.com\r\n"),
        "{h}"
    );
    assert!(h.contains("x-forwarded-groups: staff\r\n"), "{h}");
    assert!(h.contains("theme=dark"), "other cookies go on: {h}");
    assert!(
        !h.contains("pivault-session"),
        "the gateway's cookie does not: {h}"
    );
    // The access log names the user; the code is not logged.
    let log = w.access();
    assert!(
        log.iter()
            .any(|e| e["user"] == "alice" && e["status"] == 200),
        "{log:?}"
    );
    let cb_line = log
        .iter()
        .find(|e| {
            e["path"]
                .as_str()
                .unwrap_or("")
                .starts_with("/.pivault/oidc/callback")
        })
        .unwrap();
    assert_eq!(cb_line["path"], "/.pivault/oidc/callback?(redacted)");
    assert!(!std::fs::read_to_string(&w.log).unwrap().contains("code-"));
    assert!(metrics(gw.metrics.unwrap())
        .contains("pivault_oidc_logins_total{listener=\"127.0.0.1:0\"} 1"));
    // A form post without a session is not sent through a login.
    let other = Browser::new(&w.s, "nobody");
    let r = other.fetch(&url(gw.addrs[0], "/app"), &["-d", "a=1"]);
    assert_eq!(r.status, 401);
}

#[test]
fn tokens_a_real_provider_would_not_issue_are_refused() {
    let w = world();
    let gw = w.gateway(&[KEY_A], staff());
    let cases = [
        (
            "expired",
            Spec {
                exp: -60,
                ..Spec::default()
            },
        ),
        (
            "bad_signature",
            Spec {
                signer: Signer::Rogue,
                ..Spec::default()
            },
        ),
        (
            "wrong_audience",
            Spec {
                aud: "another-app".into(),
                ..Spec::default()
            },
        ),
        (
            "wrong_issuer",
            Spec {
                iss: Some("http://127.0.0.1:1".into()),
                ..Spec::default()
            },
        ),
        (
            "bad_nonce",
            Spec {
                nonce: Some("an-old-nonce".into()),
                ..Spec::default()
            },
        ),
        (
            "alg_not_allowed",
            Spec {
                signer: Signer::Hs256,
                ..Spec::default()
            },
        ),
        (
            "alg_not_allowed",
            Spec {
                signer: Signer::Unsigned,
                ..Spec::default()
            },
        ),
    ];
    for (i, (reason, spec)) in cases.into_iter().enumerate() {
        w.stub.set(spec.clone());
        let before = refusals(&gw, reason);
        let b = Browser::new(&w.s, &format!("case{i}"));
        let cb = login(&b, gw.addrs[0], "/");
        assert_eq!(cb.status, 403, "{reason} ({spec:?}): {}", cb.body);
        assert!(cb.body.contains(reason), "{reason}: {}", cb.body);
        assert!(
            b.cookie("__Host-pivault-session").is_none(),
            "{reason}: a session was set"
        );
        assert_eq!(refusals(&gw, reason), before + 1, "{reason}");
        // The session was never made: the app stays behind the login.
        assert_eq!(b.get(&url(gw.addrs[0], "/")).status, 302, "{reason}");
    }
    assert!(w.upstream_saw().is_empty(), "{:?}", w.upstream_saw());
    // One line each in the gateway's log and the access log.
    assert!(gw.wait_log("OIDC login refused", 5));
    let lines = gw.log();
    for reason in [
        "expired",
        "bad_signature",
        "wrong_audience",
        "wrong_issuer",
        "bad_nonce",
        "alg_not_allowed",
    ] {
        assert!(
            lines.contains(&format!("reason=\"{reason}\""))
                || lines.contains(&format!("reason={reason}")),
            "{reason}: {lines}"
        );
    }
    let refused: Vec<_> = w
        .access()
        .into_iter()
        .filter(|e| e["refused"].is_string())
        .collect();
    assert_eq!(refused.len(), 7, "{refused:?}");
    assert!(refused
        .iter()
        .all(|e| e["client"].as_str().unwrap().starts_with("127.0.0.1:")
            && e["listener"] == "127.0.0.1:0"));
    assert!(
        refused[0]["refused"]
            .as_str()
            .unwrap()
            .starts_with("oidc expired: ID token refused: Expired"),
        "{:?}",
        refused[0]
    );
}

#[test]
fn a_replayed_callback_is_refused() {
    let w = world();
    let gw = w.gateway(&[KEY_A], staff());
    let b = Browser::new(&w.s, "replay");
    let first = b.get(&url(gw.addrs[0], "/"));
    assert_eq!(first.status, 302);
    let login_cookie = b.cookie("__Host-pivault-session-login").unwrap();
    let out = std::process::Command::new("curl")
        .args(["-sS", "-D", "-", "-o", "/dev/null", &first.location()])
        .output()
        .unwrap();
    let callback = String::from_utf8_lossy(&out.stdout)
        .lines()
        .find_map(|l| l.strip_prefix("location: "))
        .unwrap()
        .trim()
        .to_string();
    assert_eq!(b.get(&callback).status, 302, "the first use logs in");
    // The same callback with the same login cookie again (this stub, unlike
    // a real provider, redeems a code twice).
    let again = Browser::new(&w.s, "attacker");
    std::fs::copy(&b.jar, &again.jar).unwrap();
    again.set_cookie("__Host-pivault-session", "");
    again.set_cookie("__Host-pivault-session-login", &login_cookie);
    let r = again.get(&callback);
    assert_eq!(r.status, 403, "{}", r.body);
    assert!(r.body.contains("replayed"), "{}", r.body);
    assert_eq!(refusals(&gw, "replayed"), 1);
    assert_eq!(w.stub.token_hits(), 2, "the code was redeemed twice");
}

#[test]
fn a_jwks_rotation_fetches_the_new_key_once() {
    let w = world();
    let gw = w.gateway(&[KEY_A], "allow_any_user = true");
    let a = Browser::new(&w.s, "a");
    assert_eq!(login(&a, gw.addrs[0], "/").status, 302);
    assert_eq!(w.stub.jwks_hits(), 1, "discovery fetched the keys once");
    // The provider rotates: it publishes k1 and signs with it.
    w.stub.publish(&[0, 1]);
    w.stub.set(Spec {
        signer: Signer::Key(1),
        ..Spec::default()
    });
    let b = Browser::new(&w.s, "b");
    let cb = login(&b, gw.addrs[0], "/");
    assert_eq!(cb.status, 302, "{}", cb.body);
    assert_eq!(w.stub.jwks_hits(), 2, "the unknown kid made one more fetch");
    let c = Browser::new(&w.s, "c");
    assert_eq!(login(&c, gw.addrs[0], "/").status, 302);
    assert_eq!(w.stub.jwks_hits(), 2, "no fetch for a known kid");
    // A kid the new set does not have either: one fetch, then refused.
    w.stub.set(Spec {
        signer: Signer::Unknown,
        ..Spec::default()
    });
    w.stub.publish(&[1]);
    let d = Browser::new(&w.s, "d");
    assert_eq!(login(&d, gw.addrs[0], "/").status, 403);
    assert_eq!(w.stub.jwks_hits(), 3);
}

#[test]
fn tampered_and_foreign_cookies_are_refused_and_key_rotation_keeps_sessions() {
    let w = world();
    let gw = w.gateway(&[KEY_A], staff());
    let b = Browser::new(&w.s, "b");
    assert_eq!(login(&b, gw.addrs[0], "/").status, 302);
    let good = b.cookie("__Host-pivault-session").unwrap();
    assert_eq!(b.get(&url(gw.addrs[0], "/")).status, 200);
    // One character changed.
    let mut t: Vec<char> = good.chars().collect();
    let i = t.len() / 2;
    t[i] = if t[i] == 'A' { 'B' } else { 'A' };
    b.set_cookie("__Host-pivault-session", &t.into_iter().collect::<String>());
    let r = b.get(&url(gw.addrs[0], "/"));
    assert_eq!(r.status, 302, "a tampered cookie is no session");
    assert!(
        r.all("set-cookie")
            .iter()
            .any(|c| c.starts_with("__Host-pivault-session=;")),
        "and it is cleared"
    );
    assert_eq!(refusals(&gw, "bad_session_cookie"), 1);
    assert!(gw.wait_log("the session cookie does not open", 5));
    // A cookie sealed by another deployment's key.
    let foreign = {
        let s2 = world();
        let g2 = s2.gateway(&[KEY_B], staff());
        let b2 = Browser::new(&s2.s, "b2");
        assert_eq!(login(&b2, g2.addrs[0], "/").status, 302);
        b2.cookie("__Host-pivault-session").unwrap()
    };
    b.set_cookie("__Host-pivault-session", &foreign);
    assert_eq!(b.get(&url(gw.addrs[0], "/")).status, 302);
    assert_eq!(refusals(&gw, "bad_session_cookie"), 2);
    assert!(gw.wait_log("sealed with a key not in cookie_key_file", 5));
    drop(gw);
    // Rotation: a new key first, the old one still listed. The old
    // session still opens, on this copy and on a second one behind the
    // same load balancer (no state but the keys).
    let rotated = w.gateway(&[KEY_B, KEY_A], staff());
    let copy = w.gateway(&[KEY_B, KEY_A], staff());
    for g in [&rotated, &copy] {
        b.set_cookie("__Host-pivault-session", &good);
        assert_eq!(
            b.get(&url(g.addrs[0], "/")).status,
            200,
            "the old key still opens"
        );
    }
    // New sessions are sealed with the new key: without the old key they
    // still open.
    let n = Browser::new(&w.s, "n");
    assert_eq!(login(&n, rotated.addrs[0], "/").status, 302);
    drop(rotated);
    let only_new = w.gateway(&[KEY_B], staff());
    assert_eq!(n.get(&url(only_new.addrs[0], "/")).status, 200);
    b.set_cookie("__Host-pivault-session", &good);
    assert_eq!(
        b.get(&url(only_new.addrs[0], "/")).status,
        302,
        "the removed key's sessions end"
    );
}

#[test]
fn a_user_not_admitted_is_refused_with_a_log_line_and_a_count() {
    let w = world();
    let gw = w.gateway(
        &[KEY_A],
        "allow_groups = [\"staff\"]\nallow_emails = [\"@corp.example\"]",
    );
    w.stub.set(Spec {
        sub: "bob".into(),
        email: Some("bob@example.com".into()),
        groups: vec!["guests".into()],
        ..Spec::default()
    });
    let b = Browser::new(&w.s, "bob");
    let cb = login(&b, gw.addrs[0], "/");
    assert_eq!(cb.status, 403, "{}", cb.body);
    assert!(cb.body.contains("not_allowed"));
    assert_eq!(refusals(&gw, "not_allowed"), 1);
    assert!(
        gw.wait_log(
            "OIDC login refused: user bob (email bob@example.com, 1 groups) is not admitted",
            5
        ),
        "{}",
        gw.log()
    );
    let line = gw
        .log()
        .lines()
        .find(|l| l.contains("OIDC login refused"))
        .unwrap()
        .to_string();
    assert!(
        line.contains("127.0.0.1:0") && line.contains("client=127.0.0.1:"),
        "{line}"
    );
    let e = w
        .access()
        .into_iter()
        .find(|e| e["refused"].is_string())
        .unwrap();
    assert!(
        e["refused"]
            .as_str()
            .unwrap()
            .starts_with("oidc not_allowed:"),
        "{e}"
    );
    assert_eq!(e["status"], 403);
    // Admitted by domain.
    w.stub.set(Spec {
        sub: "carol".into(),
        email: Some("carol@corp.example".into()),
        groups: vec![],
        ..Spec::default()
    });
    let c = Browser::new(&w.s, "carol");
    assert_eq!(login(&c, gw.addrs[0], "/").status, 302);
    assert_eq!(c.get(&url(gw.addrs[0], "/")).status, 200);
    assert!(w.upstream_saw()[0].contains("x-forwarded-user: carol\r\n"));
}

#[test]
fn logout_clears_the_session_and_goes_to_the_provider() {
    let w = world();
    let gw = w.gateway(
        &[KEY_A],
        &format!("{}\npost_logout_url = \"https://localhost/bye\"", staff()),
    );
    let b = Browser::new(&w.s, "b");
    assert_eq!(login(&b, gw.addrs[0], "/").status, 302);
    assert_eq!(b.get(&url(gw.addrs[0], "/")).status, 200);
    let r = b.get(&url(gw.addrs[0], "/.pivault/oidc/logout"));
    assert_eq!(r.status, 302);
    assert!(r.location().starts_with(&format!("{}/logout?client_id={CLIENT_ID}&post_logout_redirect_uri=https%3A%2F%2Flocalhost%2Fbye", w.stub.issuer)), "{}", r.location());
    assert!(r
        .all("set-cookie")
        .iter()
        .any(|c| c.starts_with("__Host-pivault-session=;") && c.contains("Max-Age=0")));
    // The browser drops the cookie as told (curl 7.88 leaves a jar file
    // unwritten once its last cookie expires, so the jar is edited here).
    b.set_cookie("__Host-pivault-session", "");
    assert_eq!(b.get(&url(gw.addrs[0], "/")).status, 302, "signed out");
}

#[test]
fn a_bad_oidc_table_is_refused_at_start() {
    let s = setup();
    let (up, _) = recording_backend();
    for (extra, needle) in [
        ("issuer = \"http://idp.example\"\nclient_id = \"a\"\nclient_secret_file = \"s\"\ncookie_key_file = \"k\"\nallow_any_user = true", "only for a loopback"),
        ("issuer = \"https://idp.example\"\nclient_id = \"a\"\nclient_secret_file = \"s\"\ncookie_key_file = \"k\"", "allow_any_user"),
    ] {
        let toml = format!("{}[listener.oidc]\n{extra}\n", s.http(up, ""));
        let cfg = s.dir.join("bad.toml");
        std::fs::write(&cfg, toml).unwrap();
        let out = std::process::Command::new(bin()).args(["proxy", "check", "--config"]).arg(&cfg).output().unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && err.contains(needle), "{err}");
        assert!(err.contains("[listener.oidc]"), "{err}");
    }
    // A short cookie key is named with its line.
    let keys = s.dir.join("short.keys");
    std::fs::write(&keys, "# k\nc2hvcnQ=\n").unwrap();
    std::fs::write(s.dir.join("secret"), "x").unwrap();
    let toml = format!(
        "{}[listener.oidc]\nissuer = \"https://idp.example\"\nclient_id = \"a\"\nclient_secret_file = \"{}\"\ncookie_key_file = \"{}\"\nallow_any_user = true\n",
        s.http(up, ""),
        s.dir.join("secret").display(),
        keys.display()
    );
    let cfg = s.dir.join("short.toml");
    std::fs::write(&cfg, toml).unwrap();
    let out = std::process::Command::new(bin())
        .args(["proxy", "check", "--config"])
        .arg(&cfg)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && err.contains("line 2: expected 32 random bytes"),
        "{err}"
    );
}

#[test]
fn sealed_oidc_secrets_are_opened_from_the_vault() {
    let w = world();
    let dir = &w.s.dir;
    let vault = dir.join("vault");
    let v = vault.to_str().unwrap();
    let pv = |args: &[&str]| {
        std::process::Command::new(bin())
            .args(args)
            .env("PIVAULT_PASSPHRASE", "oidc test passphrase")
            .env_remove("PIVAULT_PASSPHRASE_FILE")
            .stdin(std::process::Stdio::null())
            .output()
            .unwrap()
    };
    assert!(pv(&["init", v, "--insecure-test-kdf"]).status.success());
    let keys = dir.join("plain.keys");
    std::fs::write(&keys, format!("{KEY_A}\n{KEY_B}\n")).unwrap();
    let secret = dir.join("plain.secret");
    std::fs::write(&secret, format!("{SECRET}\n")).unwrap();
    let bad = dir.join("bad.keys");
    std::fs::write(&bad, "not a key\nnor this\n").unwrap();
    for (name, file, ok) in [
        ("cookie", &keys, true),
        ("secret", &secret, true),
        ("bad", &bad, false),
    ] {
        let out = pv(&["cert", "import", "--oidc", v, name, file.to_str().unwrap()]);
        assert_eq!(
            out.status.success(),
            ok,
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    std::fs::remove_file(&keys).unwrap();
    std::fs::remove_file(&secret).unwrap();
    let toml = format!(
        "{}[listener.oidc]\nissuer = \"{}\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret_file = \"sealed:{v}:secret\"\ncookie_key_file = \"sealed:{v}:cookie\"\nallow_any_user = true\n",
        w.s.http(w.upstream, ""),
        w.stub.issuer
    );
    let gw = Gw::start_env(
        dir,
        &toml,
        &[("PIVAULT_PASSPHRASE", "oidc test passphrase")],
    );
    let b = Browser::new(&w.s, "sealed");
    assert_eq!(
        login(&b, gw.addrs[0], "/").status,
        302,
        "the sealed secret reached the token endpoint"
    );
    assert_eq!(
        b.get(&url(gw.addrs[0], "/")).status,
        200,
        "the sealed keys seal and open"
    );
}
