//! Client-certificate revocation (issue 17 point 3): a listener's
//! `client_crl` CRLs are checked for every client certificate, through the
//! real binary, real sockets and real clients (curl, and rustls where a
//! session cache matters). A revoked certificate is refused, logged with
//! the reason `revoked`, its subject and SPKI pin, and counted; its
//! neighbour from the same CA is admitted. A CRL file that changes is
//! reloaded like a certificate, so a certificate admitted a moment ago is
//! refused without a restart, also to a client that would resume its TLS
//! session; a bad CRL at reload keeps the old one in service, and at
//! startup stops the gateway with the file named. The fail-closed policy
//! (docs/PROXY.md): an expired CRL, or a CA without a CRL, refuses its
//! clients as `revocation_unknown`.

mod proxy_common;

use proxy_common::*;
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

/// Serial numbers of the two client certificates.
const ALICE: u64 = 1001;
const MALLORY: u64 = 1002;

struct Crl {
    s: Setup,
    cli: Pki,
    alice: (PathBuf, PathBuf),
    mallory: (PathBuf, PathBuf),
    crl: PathBuf,
    log: PathBuf,
}

/// A client CA with alice's and mallory's certificates, and a CRL file
/// revoking `revoked`.
fn pki(revoked: &[u64]) -> Crl {
    let s = setup();
    let cli = Pki::new(&s.dir.join("clients"), "cli");
    let alice = cli.client_serial("alice", "alice", ALICE);
    let mallory = cli.client_serial("mallory", "mallory", MALLORY);
    let crl = s.dir.join("clients/cli.crl");
    cli.write_crl(&crl, revoked, 2099);
    let log = s.dir.join("access.log");
    Crl {
        s,
        cli,
        alice,
        mallory,
        crl,
        log,
    }
}

impl Crl {
    /// The gateway config: an http listener with `client_ca`, the given
    /// `client_crl` files, an access log and metrics.
    fn toml(&self, crls: &[&Path], extra_ca: &[&Path]) -> String {
        let list: Vec<String> = crls
            .iter()
            .map(|p| format!("\"{}\"", p.display()))
            .collect();
        let mut ca = self.cli.ca_path("cli");
        if !extra_ca.is_empty() {
            // One bundle of every CA: client_ca is a single file.
            let mut pem = std::fs::read_to_string(&ca).unwrap();
            for c in extra_ca {
                pem.push_str(&std::fs::read_to_string(c).unwrap());
            }
            ca = self.s.dir.join("bundle.pem");
            std::fs::write(&ca, pem).unwrap();
        }
        format!(
            "access_log = \"{}\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n{}",
            self.log.display(),
            self.s.http(
                http_backend(),
                &format!(
                    "client_ca = \"{}\"\nclient_crl = [{}]",
                    ca.display(),
                    list.join(", ")
                )
            )
        )
    }
    fn start(&self) -> Gw {
        Gw::start(&self.s.dir, &self.toml(&[&self.crl], &[]))
    }
    /// GET / with curl presenting `who`; (exit code, body, stderr).
    fn get(&self, gw: &Gw, who: &(PathBuf, PathBuf)) -> (i32, String, String) {
        self.s.curl(
            gw.addrs[0],
            "/",
            &[
                "--cert",
                who.0.to_str().unwrap(),
                "--key",
                who.1.to_str().unwrap(),
            ],
        )
    }
    fn admitted(&self, gw: &Gw, who: &(PathBuf, PathBuf)) -> bool {
        let (rc, out, err) = self.get(gw, who);
        match rc {
            0 => {
                assert_eq!(out, "hello from the legacy app\n", "{err}");
                true
            }
            _ => false,
        }
    }
}

/// A counter of /metrics for the first listener: `name` with `label`.
fn counter(gw: &Gw, name: &str, label: &str) -> u64 {
    metrics(gw.metrics.unwrap())
        .lines()
        .find(|l| l.starts_with(&format!("{name}{{")) && l.contains(label))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn refused_for(gw: &Gw, reason: &str) -> u64 {
    counter(
        gw,
        "pivault_handshake_failures_total",
        &format!("reason=\"{reason}\""),
    )
}

#[test]
fn a_revoked_client_certificate_is_refused_logged_and_counted_and_its_neighbour_admitted() {
    let c = pki(&[MALLORY]);
    let gw = c.start();
    assert!(c.admitted(&gw, &c.alice), "{}", gw.log());
    let (rc, _, err) = c.get(&gw, &c.mallory);
    assert_ne!(rc, 0, "a revoked certificate was admitted: {err}");

    let r = wait_refusals(&c.log, 1);
    assert_eq!(r.len(), 1, "{r:?}");
    let line = &r[0];
    let why = line["refused"].as_str().unwrap();
    assert!(
        why.starts_with("revoked: client certificate revoked"),
        "{line}"
    );
    assert_eq!(line["client_cert"], "CN=mallory", "{line}");
    assert!(
        line["client_spki"].as_str().unwrap().starts_with("SPKI:"),
        "{line}"
    );
    assert!(gw.wait_log("reason=\"revoked\"", 5), "{}", gw.log());
    assert!(gw.log().contains("cert_subject=CN=mallory"), "{}", gw.log());
    assert_eq!(refused_for(&gw, "revoked"), 1);
    assert_eq!(refused_for(&gw, "bad_client_cert"), 0);
    // Alice's request went through and was not refused.
    assert!(
        counter(&gw, "pivault_http_requests_total", "code=\"200\"") >= 1,
        "{}",
        metrics(gw.metrics.unwrap())
    );
    // Refused again after that, and counted again: a CRL is not a
    // one-shot check.
    assert!(!c.admitted(&gw, &c.mallory));
    let end = Instant::now() + Duration::from_secs(5);
    while refused_for(&gw, "revoked") < 2 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(refused_for(&gw, "revoked"), 2);
    assert!(c.admitted(&gw, &c.alice));
}

/// A DER CRL works as well as a PEM one.
#[test]
fn a_der_crl_file_is_read_like_a_pem_one() {
    let c = pki(&[]);
    let der = c.s.dir.join("clients/cli.der");
    std::fs::write(&der, c.cli.crl(&[MALLORY], 2099).der().as_ref()).unwrap();
    let gw = Gw::start(&c.s.dir, &c.toml(&[&der], &[]));
    assert!(c.admitted(&gw, &c.alice), "{}", gw.log());
    assert!(!c.admitted(&gw, &c.mallory));
    assert!(gw.wait_log("reason=\"revoked\"", 5), "{}", gw.log());
}

#[test]
fn a_crl_that_changes_revokes_an_admitted_certificate_without_restart() {
    let c = pki(&[]);
    let gw = c.start();
    let pid = gw.child.id();
    // One rustls client config throughout: its session cache would resume
    // the session it had before the CRL changed, if the gateway let it.
    let rustls_mallory = client_config(&c.s.ca(), Some((&c.mallory.0, &c.mallory.1)));
    assert!(c.admitted(&gw, &c.mallory), "{}", gw.log());
    assert!(!tls_refused(gw.addrs[0], rustls_mallory.clone()));
    let t = tls_connect(gw.addrs[0], rustls_mallory.clone(), "localhost").unwrap();
    assert_eq!(
        t.conn.handshake_kind(),
        Some(rustls::HandshakeKind::Resumed),
        "the client does not resume, so the test below would prove nothing"
    );
    drop(t);

    // The CA revokes mallory; the new CRL lands in the file, no signal.
    c.cli.write_crl(&c.crl, &[MALLORY], 2099);
    assert!(
        gw.wait_log("certificates reloaded (file changed)", 8),
        "{}",
        gw.log()
    );
    assert!(!c.admitted(&gw, &c.mallory), "{}", gw.log());
    assert!(
        tls_refused(gw.addrs[0], rustls_mallory),
        "a resumed session slipped past the new CRL"
    );
    assert!(c.admitted(&gw, &c.alice));
    assert!(refused_for(&gw, "revoked") >= 2);
    let r = wait_refusals(&c.log, 1);
    assert!(
        r[0]["refused"].as_str().unwrap().starts_with("revoked:"),
        "{r:?}"
    );
    assert_eq!(
        counter(&gw, "pivault_cert_reloads_total", "listener="),
        1,
        "{}",
        gw.log()
    );
    // The same process throughout.
    assert_eq!(gw.child.id(), pid);
    assert!(gw.log().matches("pivault proxy: http listener").count() == 1);
}

#[test]
fn a_bad_crl_at_reload_keeps_the_old_one_in_service() {
    let c = pki(&[MALLORY]);
    let mut gw = c.start();
    assert!(!c.admitted(&gw, &c.mallory));
    std::fs::write(
        &c.crl,
        "-----BEGIN X509 CRL-----\nbm90IGEgQ1JM\n-----END X509 CRL-----\n",
    )
    .unwrap();
    gw.signal("HUP");
    assert!(
        gw.wait_log("reload failed, keeping the old certificate", 5),
        "{}",
        gw.log()
    );
    assert!(gw.log().contains("cli.crl"), "{}", gw.log());
    // At least one: the 2 s file watch may have tried it before the signal.
    let failed = counter(&gw, "pivault_cert_reload_failures_total", "listener=");
    assert!(failed >= 1, "{}", gw.log());
    // Nothing changed: mallory still refused as revoked, alice admitted,
    // no reload counted, the gateway still running.
    assert!(!c.admitted(&gw, &c.mallory));
    assert!(c.admitted(&gw, &c.alice));
    let end = Instant::now() + Duration::from_secs(5);
    while refused_for(&gw, "revoked") < 2 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(refused_for(&gw, "revoked"), 2);
    assert_eq!(refused_for(&gw, "revocation_unknown"), 0);
    assert_eq!(counter(&gw, "pivault_cert_reloads_total", "listener="), 0);
    assert!(
        gw.child.try_wait().unwrap().is_none(),
        "the gateway stopped"
    );
    // A missing file: the same.
    std::fs::remove_file(&c.crl).unwrap();
    gw.signal("HUP");
    let end = Instant::now() + Duration::from_secs(5);
    while counter(&gw, "pivault_cert_reload_failures_total", "listener=") <= failed {
        assert!(Instant::now() < end, "{}", gw.log());
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(!c.admitted(&gw, &c.mallory));
    assert!(c.admitted(&gw, &c.alice));
}

/// `pivault proxy --config` (and `check`) with `args`; (exit, stderr).
fn run(args: &[&str], config: &Path) -> (Option<i32>, String) {
    let mut child = Command::new(bin())
        .args(args)
        .arg(config)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let end = Instant::now() + Duration::from_secs(20);
    loop {
        if let Some(st) = child.try_wait().unwrap() {
            let mut err = String::new();
            std::io::Read::read_to_string(&mut child.stderr.take().unwrap(), &mut err).unwrap();
            return (st.code(), err);
        }
        if Instant::now() > end {
            let _ = child.kill();
            let _ = child.wait();
            return (None, "still running after 20 s".into());
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_bad_or_missing_crl_file_at_startup_exits_non_zero_naming_the_file() {
    let c = pki(&[]);
    let config = c.s.dir.join("gw.toml");
    let bad = c.s.dir.join("clients/garbage.crl");
    std::fs::write(&bad, "this is not a CRL\n").unwrap();
    let missing = c.s.dir.join("clients/missing.crl");
    for (file, says) in [
        (&bad, "no X509 CRL block found"),
        (&missing, "No such file"),
    ] {
        std::fs::write(&config, c.toml(&[&c.crl, file], &[])).unwrap();
        for args in [&["proxy", "--config"][..], &["proxy", "check", "--config"]] {
            let (rc, err) = run(args, &config);
            assert_eq!(rc, Some(1), "{args:?}: {err}");
            let name = file.file_name().unwrap().to_str().unwrap();
            assert!(err.contains(name) && err.contains(says), "{args:?}: {err}");
            assert!(!err.contains("listener 127.0.0.1"), "it bound: {err}");
        }
    }
    // A CRL whose DER is no CRL: named too, with what to do.
    std::fs::write(&bad, [0x30, 0x03, 0x02, 0x01, 0x01]).unwrap();
    std::fs::write(&config, c.toml(&[&bad], &[])).unwrap();
    let (rc, err) = run(&["proxy", "--config"], &config);
    assert_eq!(rc, Some(1), "{err}");
    assert!(
        err.contains("garbage.crl")
            && err.contains("not a usable CRL")
            && err.contains("openssl crl"),
        "{err}"
    );
    // client_crl without client_ca: a config error at the key.
    let toml = c.toml(&[&c.crl], &[]).replace(
        &format!("client_ca = \"{}\"\n", c.cli.ca_path("cli").display()),
        "",
    );
    std::fs::write(&config, toml).unwrap();
    let (rc, err) = run(&["proxy", "check", "--config"], &config);
    assert_eq!(rc, Some(1), "{err}");
    assert!(
        err.contains("gw.toml:") && err.contains("client_crl") && err.contains("needs `client_ca`"),
        "{err}"
    );
}

/// The fail-closed policy, end to end: an expired CRL refuses even the
/// clients it does not list, and a CA in `client_ca` without a CRL in
/// `client_crl` has its clients refused; both as `revocation_unknown`,
/// and `proxy check` and the startup log warn of the expired CRL.
#[test]
fn an_expired_crl_or_a_ca_without_one_refuses_as_revocation_unknown() {
    let c = pki(&[]);
    let old = c.s.dir.join("clients/old.crl");
    c.cli.write_crl(&old, &[], 2021);
    let config = c.s.dir.join("gw.toml");
    std::fs::write(&config, c.toml(&[&old], &[])).unwrap();
    let (rc, err) = run(&["proxy", "check", "--config"], &config);
    assert_eq!(rc, Some(0), "{err}");
    assert!(
        err.contains("warning: client_crl") && err.contains("old.crl") && err.contains("expired"),
        "{err}"
    );
    let gw = Gw::start(&c.s.dir, &c.toml(&[&old], &[]));
    assert!(gw.log().contains("old.crl"), "{}", gw.log());
    assert!(!c.admitted(&gw, &c.alice), "admitted under an expired CRL");
    let r = wait_refusals(&c.log, 1);
    assert!(
        r[0]["refused"]
            .as_str()
            .unwrap()
            .starts_with("revocation_unknown: client certificate revocation status unknown"),
        "{r:?}"
    );
    assert!(
        r[0]["refused"].as_str().unwrap().contains("2021-01-01"),
        "{r:?}"
    );
    assert_eq!(refused_for(&gw, "revocation_unknown"), 1);
    drop(gw);

    // Two CAs, a CRL for one: the other's clients are refused, the
    // first's admitted.
    let other = Pki::new(&c.s.dir.join("other"), "other");
    let bob = other.client_serial("bob", "bob", 7);
    let _ = std::fs::remove_file(&c.log);
    let gw = Gw::start(&c.s.dir, &c.toml(&[&c.crl], &[&other.ca_path("other")]));
    assert!(c.admitted(&gw, &c.alice), "{}", gw.log());
    assert!(!c.admitted(&gw, &bob), "admitted with no CRL from its CA");
    let r = wait_refusals(&c.log, 1);
    assert_eq!(r.len(), 1, "{r:?}");
    assert!(
        r[0]["refused"]
            .as_str()
            .unwrap()
            .contains("no CRL in client_crl from its issuer"),
        "{r:?}"
    );
    assert_eq!(r[0]["client_cert"], "CN=bob", "{r:?}");
    assert_eq!(refused_for(&gw, "revocation_unknown"), 1);
    // With the other CA's CRL as well, bob is admitted.
    let other_crl = c.s.dir.join("other/other.crl");
    other.write_crl(&other_crl, &[], 2099);
    drop(gw);
    let gw = Gw::start(
        &c.s.dir,
        &c.toml(&[&c.crl, &other_crl], &[&other.ca_path("other")]),
    );
    assert!(c.admitted(&gw, &bob), "{}", gw.log());
}

/// True when the gateway closed `t` (end of stream or a reset), false
/// when it is still open (the read timed out with nothing to read).
fn closed_by_gateway(t: &mut Tls) -> bool {
    use std::io::{ErrorKind, Read};
    t.sock
        .set_read_timeout(Some(Duration::from_secs(6)))
        .unwrap();
    let mut b = [0u8; 256];
    match t.read(&mut b) {
        Ok(0) => true,
        Ok(n) => panic!("unexpected bytes: {:?}", String::from_utf8_lossy(&b[..n])),
        Err(e) => !matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
    }
}

/// A request over an open connection; its status.
fn ask(t: &mut Tls) -> u16 {
    use std::io::Write;
    t.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    read_response(t).0
}

/// A revocation is not only for the next handshake: a reload that revokes
/// a certificate closes the connections it has open, over `http` and
/// `tcp`, logs each and counts it; other clients' connections stay.
#[test]
fn a_reload_that_revokes_a_certificate_closes_its_open_connections() {
    let c = pki(&[]);
    let extra = format!(
        "client_ca = \"{}\"\nclient_crl = [\"{}\"]",
        c.cli.ca_path("cli").display(),
        c.crl.display()
    );
    let toml = format!(
        "access_log = \"{}\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n{}{}",
        c.log.display(),
        c.s.http(http_backend(), &extra),
        c.s.tcp(http_backend(), &extra)
    );
    let gw = Gw::start(&c.s.dir, &toml);
    let cfg = |who: &(PathBuf, PathBuf)| client_config(&c.s.ca(), Some((&who.0, &who.1)));
    let open = |i: usize, who: &(PathBuf, PathBuf)| {
        let mut t = tls_connect(gw.addrs[i], cfg(who), "localhost").unwrap();
        assert_eq!(ask(&mut t), 200, "{}", gw.log());
        t
    };
    let (mut m_http, mut m_tcp) = (open(0, &c.mallory), open(1, &c.mallory));
    let (mut a_http, mut a_tcp) = (open(0, &c.alice), open(1, &c.alice));

    c.cli.write_crl(&c.crl, &[MALLORY], 2099);
    gw.signal("HUP");
    assert!(gw.wait_log("connection closed: ", 8), "{}", gw.log());
    assert!(closed_by_gateway(&mut m_http), "{}", gw.log());
    assert!(closed_by_gateway(&mut m_tcp), "{}", gw.log());
    // Alice's connections were not touched.
    assert_eq!(ask(&mut a_http), 200);
    assert_eq!(ask(&mut a_tcp), 200);

    let cut: Vec<Value> = wait_refusals(&c.log, 2)
        .into_iter()
        .filter(|v| {
            v["refused"].as_str().unwrap().starts_with(
                "revoked: open connection closed after a reload: client certificate revoked",
            )
        })
        .collect();
    assert_eq!(cut.len(), 2, "{cut:?}");
    assert!(
        cut.iter().all(|v| v["client_cert"] == "CN=mallory"),
        "{cut:?}"
    );
    let end = Instant::now() + Duration::from_secs(5);
    let closed = |i: usize| {
        metrics(gw.metrics.unwrap())
            .lines()
            .filter(|l| l.starts_with("pivault_revoked_closed_total{"))
            .nth(i)
            .and_then(|l| l.rsplit(' ').next()?.parse::<u64>().ok())
            .unwrap_or(0)
    };
    while closed(0) + closed(1) < 2 && Instant::now() < end {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!((closed(0), closed(1)), (1, 1));
    // And mallory cannot come back.
    assert!(tls_refused(gw.addrs[0], cfg(&c.mallory)));
    assert!(tls_refused(gw.addrs[1], cfg(&c.mallory)));
}
