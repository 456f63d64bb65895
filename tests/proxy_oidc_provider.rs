//! Single sign-on against a real OpenID provider: `oidc-provider-mock`
//! (PyPI, a maintained Authlib-based provider), started here on
//! 127.0.0.1. The test plays the browser with curl and a cookie jar: the
//! gateway sends it to the provider, it submits the provider's sign-in
//! form, follows the provider back to the gateway and reaches the app.
//! The provider runs under `$PIVAULT_OIDC_PYTHON` (default `python3`);
//! without it installed the test skips loudly (fails under
//! PIVAULT_TESTS_STRICT, which CI sets: .ci/run installs it).

mod common;
mod oidc_common;
mod proxy_common;

use oidc_common::*;
use proxy_common::*;
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Provider {
    child: Child,
    issuer: String,
}

impl Drop for Provider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn python() -> String {
    std::env::var("PIVAULT_OIDC_PYTHON").unwrap_or_else(|_| "python3".into())
}

/// Starts the provider with alice (group staff) and bob (group guests);
/// None (after a loud skip) when it is not installed.
fn provider() -> Option<Provider> {
    let py = python();
    let has = Command::new(&py)
        .args(["-c", "import oidc_provider_mock"])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success());
    if !has {
        common::skip(&format!(
            "{py} has no oidc_provider_mock: pip install oidc-provider-mock==0.3.4 (or set PIVAULT_OIDC_PYTHON)"
        ));
        return None;
    }
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let alice =
        r#"{"sub":"alice","email":"alice@example.com","email_verified":true,"groups":["staff"]}"#;
    let bob =
        r#"{"sub":"bob","email":"bob@example.com","email_verified":true,"groups":["guests"]}"#;
    let child = Command::new(&py)
        .args([
            "-m",
            "oidc_provider_mock",
            "-H",
            "127.0.0.1",
            "-p",
            &port.to_string(),
        ])
        .args([
            "--require-nonce",
            "true",
            "--user-claims",
            alice,
            "--user-claims",
            bob,
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let p = Provider {
        child,
        issuer: format!("http://127.0.0.1:{port}"),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (rc, out, _) = curl(&[&format!("{}/.well-known/openid-configuration", p.issuer)]);
        if rc == 0 && out.contains("\"issuer\"") {
            return Some(p);
        }
        assert!(Instant::now() < deadline, "the provider did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Submits the provider's sign-in form at `authorize` (the URL the gateway
/// sent the browser to) as `sub`, or presses Deny; where the provider
/// sends the browser next.
fn sign_in(authorize: &str, form: &str) -> String {
    let page = curl(&[authorize]).1;
    assert!(
        page.contains("<form") && page.contains("name=\"sub\""),
        "no sign-in form: {page}"
    );
    let r = curl_head(&["--data", form, authorize]);
    assert!(
        r.header("location").is_some(),
        "the provider did not redirect: {} {:?}",
        r.status,
        r.headers
    );
    r.location()
}

#[test]
fn sign_in_through_a_real_provider() {
    let Some(idp) = provider() else { return };
    let s = setup();
    let (up, heads) = recording_backend();
    let log = s.dir.join("access.log");
    let table = oidc_table(&s.dir, &idp.issuer, &[KEY_A], "allow_groups = [\"staff\"]");
    let toml = format!(
        "access_log = \"{}\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n{}{table}",
        log.display(),
        s.http(up, "")
    );
    let gw = Gw::start(&s.dir, &toml);
    let gw_addr = gw.addrs[0];

    // Alice: to the provider and back, then the app.
    let b = Browser::new(&s, "alice");
    let r = b.get(&url(gw_addr, "/reports?q=1"));
    assert_eq!(r.status, 302);
    assert!(
        r.location()
            .starts_with(&format!("{}/oauth2/authorize?", idp.issuer)),
        "{}",
        r.location()
    );
    let back = sign_in(&r.location(), "sub=alice");
    assert!(
        back.starts_with(&format!(
            "https://localhost:{}/.pivault/oidc/callback?code=",
            gw_addr.port()
        )),
        "{back}"
    );
    let cb = b.get(&back);
    assert_eq!(cb.status, 302, "{}", cb.body);
    assert_eq!(cb.location(), "/reports?q=1");
    let r = b.fetch(
        &url(gw_addr, "/reports?q=1"),
        &["-H", "X-Forwarded-User: root"],
    );
    assert_eq!(r.status, 200, "{}", r.body);
    let h = heads.lock().unwrap()[0].to_ascii_lowercase();
    assert!(
        h.contains("x-forwarded-user: alice\r\n") && !h.contains("root"),
        "{h}"
    );
    assert!(
        h.contains("x-forwarded-email: alice@example.com\r\n"),
        "{h}"
    );
    let text = std::fs::read_to_string(&log).unwrap();
    assert!(text.contains("\"user\":\"alice\""), "{text}");

    // Bob signs in at the provider but is not in allow_groups.
    let b2 = Browser::new(&s, "bob");
    let r = b2.get(&url(gw_addr, "/"));
    let cb = b2.get(&sign_in(&r.location(), "sub=bob"));
    assert_eq!(cb.status, 403, "{}", cb.body);
    assert!(cb.body.contains("not_allowed"));
    // Carol presses Deny at the provider.
    let b3 = Browser::new(&s, "carol");
    let r = b3.get(&url(gw_addr, "/"));
    let cb = b3.get(&sign_in(&r.location(), "action=deny"));
    assert_eq!(cb.status, 403, "{}", cb.body);
    assert!(cb.body.contains("idp_error"));
    let m = metrics(gw.metrics.unwrap());
    assert!(
        m.contains("reason=\"not_allowed\"} 1") && m.contains("reason=\"idp_error\"} 1"),
        "{m}"
    );
    assert!(
        m.contains("pivault_oidc_logins_total{listener=\"127.0.0.1:0\"} 1"),
        "{m}"
    );
    assert_eq!(heads.lock().unwrap().len(), 1, "only alice reached the app");

    // Logout goes to the provider's end-session endpoint.
    let r = b.get(&url(gw_addr, "/.pivault/oidc/logout"));
    assert_eq!(r.status, 302);
    assert!(
        r.location()
            .starts_with(&format!("{}/oauth2/end_session?client_id=", idp.issuer)),
        "{}",
        r.location()
    );
    assert!(r
        .all("set-cookie")
        .iter()
        .any(|c| c.starts_with("__Host-pivault-session=;")));
}
