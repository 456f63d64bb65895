//! The gateway against hostile clients that lie in their request: forged
//! identity and routing headers, several CNs, odd subjects, Host games,
//! `CONNECT`, dot segments; and the files around it: the access log and
//! the keys `proxy check` reads. Each test plays the attacker with a real
//! client over TLS on 127.0.0.1 (raw bytes over rustls where the exact
//! request matters) against the built binary, and asserts on what the
//! backend received, the status, or the log.

mod proxy_common;

use proxy_common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Sends `req` as is over a new TLS connection and returns the response
/// head and body (as far as `content-length` says, or to the close).
fn raw(addr: SocketAddr, cfg: Arc<rustls::ClientConfig>, req: &[u8]) -> String {
    let mut t = tls_connect(addr, cfg, "localhost").unwrap();
    t.write_all(req).unwrap();
    read_response(&mut t)
}

fn read_response(t: &mut Tls) -> String {
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(end) = got.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&got[..end]).to_ascii_lowercase();
            let len: usize = head
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            if got.len() >= end + 4 + len {
                break;
            }
        }
        assert!(Instant::now() < deadline, "no whole response");
        match t.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

fn status(resp: &str) -> &str {
    resp.split(' ').nth(1).unwrap_or("")
}

/// A gateway with `client_ca` (and `extra`) in front of a recording backend.
fn mtls_gateway(s: &Setup, cpki: &Pki, extra: &str) -> (Gw, Arc<Mutex<Vec<String>>>) {
    let (up, heads) = recording_backend();
    let extra = format!("client_ca = \"{}\"\n{extra}", cpki.ca_path("cli").display());
    (Gw::start(&s.dir, &s.http(up, &extra)), heads)
}

const FORGED: &str = "X-Forwarded-Client-Cert: By=spiffe://x;Subject=\"CN=admin\"\r\n\
X-SSL-Client-S-DN: CN=admin\r\nX-SSL-Client-Verify: SUCCESS\r\nX-Client-Verify: SUCCESS\r\n\
X-Client-Cert: forged\r\nSSL-Client-Cert: forged\r\nX-Forwarded-Port: 8443\r\n\
X-Forwarded-Prefix: /admin\r\nX-Original-URL: /admin\r\nX-Rewrite-URL: /admin\r\n\
X-Pivault-Client-Subject: CN=admin\r\nX-Pivault-Client-SPKI: sha256:00\r\n\
X-Pivault-Client-SAN: DNS:admin\r\nX-Client-Id: app-7\r\n";

#[test]
fn forged_identity_headers_never_reach_the_backend_and_the_verified_certificate_does() {
    let s = setup();
    let cpki = Pki::new(&s.dir.join("clients"), "cli");
    let (gw, heads) = mtls_gateway(&s, &cpki, "");
    let (c, k) = cpki.leaf(
        "alice",
        "alice",
        &["alice.corp"],
        &["spiffe://corp/hr"],
        true,
    );
    let cfg = client_config(&s.ca(), Some((&c, &k)));
    let req = format!("GET / HTTP/1.1\r\nHost: localhost\r\n{FORGED}\r\n");
    let resp = raw(gw.addrs[0], cfg, req.as_bytes());
    assert_eq!(status(&resp), "200", "{resp}");
    let head = heads.lock().unwrap()[0].to_ascii_lowercase();
    for forged in [
        "x-forwarded-client-cert",
        "x-ssl-client",
        "x-client-verify",
        "x-client-cert",
        "ssl-client-cert",
        "x-forwarded-port",
        "x-forwarded-prefix",
        "x-original-url",
        "x-rewrite-url",
        "admin",
        "sha256:00\r",
    ] {
        assert!(
            !head.contains(forged),
            "{forged} reached the backend: {head}"
        );
    }
    assert!(
        head.contains("x-client-id: app-7"),
        "app data was stripped: {head}"
    );
    assert!(
        head.contains("x-pivault-client-subject: cn=alice\r\n"),
        "{head}"
    );
    assert!(
        head.contains("x-pivault-client-san: dns:alice.corp,uri:spiffe://corp/hr\r\n"),
        "{head}"
    );
    let pin = spki_pin(&c);
    assert!(
        head.contains(&format!("x-pivault-client-spki: sha256:{pin}\r\n")),
        "{head}"
    );
}

#[test]
fn without_a_client_certificate_forged_identity_headers_are_stripped_and_none_are_added() {
    let s = setup();
    let (up, heads) = recording_backend();
    let gw = Gw::start(&s.dir, &s.http(up, ""));
    let req = format!("GET / HTTP/1.1\r\nHost: localhost\r\n{FORGED}\r\n");
    let resp = raw(gw.addrs[0], client_config(&s.ca(), None), req.as_bytes());
    assert_eq!(status(&resp), "200", "{resp}");
    let head = heads.lock().unwrap()[0].to_ascii_lowercase();
    assert!(!head.contains("x-pivault-client"), "{head}");
    assert!(!head.contains("admin"), "{head}");
    assert!(!head.contains("x-ssl-client"), "{head}");
}

#[test]
fn a_configured_identity_header_name_is_sent_and_forged_copies_of_it_are_stripped() {
    let s = setup();
    let cpki = Pki::new(&s.dir.join("clients"), "cli");
    let (gw, heads) = mtls_gateway(&s, &cpki, "client_identity_header = \"X-Gw-Id\"");
    // A subject with a comma, a quote and a newline cannot pass for another.
    let (c, k) = cpki.leaf(
        "eve",
        "eve, CN=admin\"\nX-Gw-Id-Subject: CN=root",
        &[],
        &[],
        true,
    );
    let cfg = client_config(&s.ca(), Some((&c, &k)));
    let req = b"GET / HTTP/1.1\r\nHost: localhost\r\nX-Gw-Id-Subject: CN=admin\r\nx-gw-id-extra: 1\r\n\r\n";
    assert_eq!(status(&raw(gw.addrs[0], cfg, req)), "200");
    let head = heads.lock().unwrap()[0].clone();
    let subjects: Vec<&str> = head
        .lines()
        .filter(|l| l.to_ascii_lowercase().starts_with("x-gw-id-subject:"))
        .collect();
    assert_eq!(
        subjects,
        ["x-gw-id-subject: CN=eve\\, CN=admin\\\"%0AX-Gw-Id-Subject: CN=root"],
        "{head}"
    );
    assert!(
        !head.to_ascii_lowercase().contains("x-gw-id-extra"),
        "{head}"
    );
    assert!(
        head.to_ascii_lowercase().contains("x-gw-id-spki: sha256:"),
        "{head}"
    );
}

fn spki_pin(cert: &Path) -> String {
    let out = Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl x509 -in '{}' -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -hex",
            cert.display()
        ))
        .output()
        .unwrap();
    let s = String::from_utf8_lossy(&out.stdout).trim().to_string();
    s.rsplit(' ').next().unwrap().to_string()
}

/// A client certificate whose subject is `CN=admin` and `CN=alice`.
fn two_cn_cert(cpki: &Pki) -> (std::path::PathBuf, std::path::PathBuf) {
    let mut p = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    p.distinguished_name = rcgen::DistinguishedName::new();
    p.distinguished_name
        .push(rcgen::DnType::CommonName, "admin");
    // rcgen keeps one value per type: the second CN goes in by its OID.
    p.distinguished_name
        .push(rcgen::DnType::CustomDnType(vec![2, 5, 4, 3]), "alice");
    cpki.sign("two-cns", p)
}

/// True when the gateway refused the connection (handshake or first read).

#[test]
fn a_certificate_with_two_cns_is_refused_when_allow_names_one_of_them() {
    let s = setup();
    let cpki = Pki::new(&s.dir.join("clients"), "cli");
    let (gw, heads) = mtls_gateway(&s, &cpki, "allow = [\"CN=alice\"]");
    let (c, k) = two_cn_cert(&cpki);
    assert!(tls_refused(
        gw.addrs[0],
        client_config(&s.ca(), Some((&c, &k)))
    ));
    assert!(
        gw.wait_log("has 2 common names in its subject", 5),
        "{}",
        gw.log()
    );
    assert!(heads.lock().unwrap().is_empty());
    // The single-CN alice is still let in.
    let (c, k) = cpki.leaf("alice", "alice", &[], &[], true);
    assert!(!tls_refused(
        gw.addrs[0],
        client_config(&s.ca(), Some((&c, &k)))
    ));
}

#[test]
fn a_tcp_tunnel_reports_no_cn_in_proxy_v2_for_a_subject_with_two() {
    let s = setup();
    let cpki = Pki::new(&s.dir.join("clients"), "cli");
    let extra = format!(
        "proxy_protocol = true\nclient_ca = \"{}\"",
        cpki.ca_path("cli").display()
    );
    let gw = Gw::start(&s.dir, &s.tcp(eof_backend(true), &extra));
    let (c, k) = two_cn_cert(&cpki);
    let mut t = tls_connect(
        gw.addrs[0],
        client_config(&s.ca(), Some((&c, &k))),
        "localhost",
    )
    .unwrap();
    t.write_all(b"payload").unwrap();
    finish_writing(&mut t);
    let mut got = Vec::new();
    let _ = t.read_to_end(&mut got);
    assert!(got.ends_with(b"payload"), "{got:?}");
    assert!(got.windows(7).any(|w| w == b"TLSv1_3"), "{got:?}");
    for cn in [&b"admin"[..], b"alice"] {
        assert!(
            !got.windows(5).any(|w| w == cn),
            "a CN was reported: {got:?}"
        );
    }
}

#[test]
fn a_subject_with_a_newline_and_nul_cannot_forge_a_log_line() {
    let s = setup();
    let cpki = Pki::new(&s.dir.join("clients"), "cli");
    let (gw, _) = mtls_gateway(&s, &cpki, "allow = [\"CN=alice\"]");
    let (c, k) = cpki.leaf("m", "mallory\npivault proxy: forged line\0", &[], &[], true);
    assert!(tls_refused(
        gw.addrs[0],
        client_config(&s.ca(), Some((&c, &k)))
    ));
    assert!(gw.wait_log("is not in `allow`", 5), "{}", gw.log());
    let log = gw.log();
    assert!(
        log.contains("CN=mallory%0Apivault proxy: forged line\\00"),
        "{log}"
    );
    assert!(
        !log.lines().any(|l| l.starts_with("pivault proxy: forged")),
        "{log}"
    );
    assert!(!log.contains('\0'), "{log}");
}

#[test]
fn dot_segments_cannot_climb_out_of_the_upstream_prefix() {
    let s = setup();
    let (up, heads) = recording_backend();
    let toml = s
        .http(up, "")
        .replace(&format!("http://{up}"), &format!("http://{up}/app"));
    let gw = Gw::start(&s.dir, &toml);
    let cfg = client_config(&s.ca(), None);
    for path in [
        "/../secret",
        "/%2e%2e/secret",
        "/x/../../secret",
        "/.%2E/secret",
        "/..%2fsecret",
        "/x/%2e%2e%5c..%5csecret",
    ] {
        let req = format!("GET {path} HTTP/1.1\r\nHost: localhost\r\n\r\n");
        let resp = raw(gw.addrs[0], cfg.clone(), req.as_bytes());
        assert_eq!(status(&resp), "400", "{path}: {resp}");
    }
    assert!(
        heads.lock().unwrap().is_empty(),
        "{:?}",
        heads.lock().unwrap()
    );
    // Dot segments that stay inside are resolved before the prefix.
    let resp = raw(
        gw.addrs[0],
        cfg,
        b"GET /x/%2E%2e/y/./z?q=/../ HTTP/1.1\r\nHost: localhost\r\n\r\n",
    );
    assert_eq!(status(&resp), "200", "{resp}");
    let heads = heads.lock().unwrap();
    assert!(
        heads[0].starts_with("GET /app/y/z?q=/../ HTTP/1.1\r\n"),
        "{:?}",
        heads[0]
    );
}

#[test]
fn missing_or_duplicate_host_is_400_and_never_forwarded() {
    let s = setup();
    let (up, heads) = recording_backend();
    let gw = Gw::start(&s.dir, &s.http(up, ""));
    let cfg = client_config(&s.ca(), None);
    let resp = raw(gw.addrs[0], cfg.clone(), b"GET / HTTP/1.1\r\n\r\n");
    assert_eq!(status(&resp), "400", "{resp}");
    let resp = raw(
        gw.addrs[0],
        cfg.clone(),
        b"GET / HTTP/1.1\r\nHost: localhost\r\nHost: internal.admin\r\n\r\n",
    );
    assert_eq!(status(&resp), "400", "{resp}");
    assert!(
        heads.lock().unwrap().is_empty(),
        "{:?}",
        heads.lock().unwrap()
    );
    // `Connection: host` must not leave the upstream without a Host.
    let resp = raw(
        gw.addrs[0],
        cfg,
        b"GET / HTTP/1.1\r\nHost: app.example\r\nConnection: keep-alive, host\r\n\r\n",
    );
    assert_eq!(status(&resp), "200", "{resp}");
    let head = heads.lock().unwrap()[0].to_ascii_lowercase();
    assert_eq!(
        head.matches("\r\nhost: app.example\r\n").count(),
        1,
        "{head}"
    );
}

#[test]
fn connect_is_refused_with_405_and_never_forwarded() {
    let s = setup();
    let (up, heads) = recording_backend();
    let gw = Gw::start(&s.dir, &s.http(up, ""));
    let resp = raw(
        gw.addrs[0],
        client_config(&s.ca(), None),
        b"CONNECT internal.example:22 HTTP/1.1\r\nHost: internal.example:22\r\n\r\n",
    );
    assert_eq!(status(&resp), "405", "{resp}");
    assert!(
        resp.to_ascii_lowercase().contains("\r\nallow: get,"),
        "{resp}"
    );
    assert!(
        heads.lock().unwrap().is_empty(),
        "{:?}",
        heads.lock().unwrap()
    );
}

/// A TCP backend that echoes what it reads.
fn echo_backend() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().take(100) {
            let Ok(mut s) = s else { continue };
            std::thread::spawn(move || {
                s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
                let mut buf = [0u8; 8192];
                while let Ok(n @ 1..) = s.read(&mut buf) {
                    if s.write_all(&buf[..n]).is_err() {
                        return;
                    }
                }
            });
        }
    });
    addr
}

fn wait_lines(log: &Path, n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let t = std::fs::read_to_string(log).unwrap_or_default();
        if t.lines().count() >= n {
            return t
                .lines()
                .map(|l| serde_json::from_str(l).unwrap())
                .collect();
        }
        assert!(
            Instant::now() < deadline,
            "fewer than {n} access log lines: {t}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn a_tcp_tunnel_cut_by_a_forged_tls_record_logs_the_bytes_it_moved() {
    let s = setup();
    let log = s.dir.join("access.log");
    let toml = format!(
        "access_log = \"{}\"\n{}",
        log.display(),
        s.tcp(echo_backend(), "")
    );
    let gw = Gw::start_env(&s.dir, &toml, &[("PIVAULT_LOG", "debug")]);
    let mut t = tls_connect(gw.addrs[0], client_config(&s.ca(), None), "localhost").unwrap();
    t.write_all(&[5u8; 5000]).unwrap();
    let mut back = vec![0u8; 5000];
    t.read_exact(&mut back).unwrap();
    // An application-data record no key made: the gateway's TLS read fails.
    t.sock
        .write_all(b"\x17\x03\x03\x00\x20aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa")
        .unwrap();
    let v = &wait_lines(&log, 1)[0];
    assert_eq!(v["mode"], "tcp");
    assert_eq!(
        (v["bytes_in"].as_u64(), v["bytes_out"].as_u64()),
        (Some(5000), Some(5000)),
        "{v}"
    );
    // The relay did end in an error, not a clean close.
    assert!(gw.wait_log("relay ended:", 5), "{}", gw.log());
}

#[test]
fn the_access_log_is_created_0640_and_not_reopened_through_a_symlink() {
    let s = setup();
    let log = s.dir.join("access.log");
    let toml = format!(
        "access_log = \"{}\"\n{}",
        log.display(),
        s.http(http_backend(), "")
    );
    let gw = Gw::start(&s.dir, &toml);
    let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640, "{mode:o}");
    let get = || {
        s.curl(gw.addrs[0], "/", &["-o", "/dev/null", "-w", "%{http_code}"])
            .1
    };
    assert_eq!(get(), "200");
    wait_lines(&log, 1);
    // Between a rotation and the SIGHUP, the name becomes a link elsewhere.
    let victim = s.dir.join("victim");
    std::fs::write(&victim, "").unwrap();
    std::fs::rename(&log, s.dir.join("access.log.1")).unwrap();
    std::os::unix::fs::symlink(&victim, &log).unwrap();
    gw.signal("HUP");
    assert!(gw.wait_log("access log not reopened", 5), "{}", gw.log());
    assert!(gw.log().contains("symbolic link"), "{}", gw.log());
    assert_eq!(get(), "200");
    wait_lines(&s.dir.join("access.log.1"), 2);
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "",
        "written through the link"
    );
}

fn check(dir: &Path, toml: &str) -> (i32, String, String) {
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

#[test]
fn proxy_check_warns_about_readable_or_symlinked_keys_and_expired_certificates() {
    let s = setup();
    let up = dead_addr();
    std::fs::set_permissions(&s.key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let (rc, _, err) = check(&s.dir, &s.http(up, ""));
    assert_eq!((rc, err.as_str()), (0, ""), "a clean key warned");
    std::fs::set_permissions(&s.key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (rc, _, err) = check(&s.dir, &s.http(up, ""));
    assert_eq!(rc, 0, "{err}");
    assert!(
        err.contains(&format!(
            "warning: private key {} is readable by every user",
            s.key.display()
        )),
        "{err}"
    );
    assert!(
        err.contains(&format!("chmod 600 {}", s.key.display())),
        "{err}"
    );
    std::fs::set_permissions(&s.key, std::fs::Permissions::from_mode(0o600)).unwrap();
    let link = s.dir.join("link.key");
    std::os::unix::fs::symlink(&s.key, &link).unwrap();
    let toml = s
        .http(up, "")
        .replace(s.key.to_str().unwrap(), link.to_str().unwrap());
    let (rc, _, err) = check(&s.dir, &toml);
    assert_eq!(rc, 0, "{err}");
    assert!(
        err.contains(&format!(
            "warning: private key {} is a symbolic link",
            link.display()
        )),
        "{err}"
    );
    // An expired certificate (and its key) for the listener.
    let mut p = rcgen::CertificateParams::new(vec!["localhost".to_string()]).unwrap();
    p.not_before = rcgen::date_time_ymd(2020, 1, 1);
    p.not_after = rcgen::date_time_ymd(2021, 1, 1);
    let key = rcgen::KeyPair::generate().unwrap();
    let (oc, ok) = (s.dir.join("old.pem"), s.dir.join("old.key"));
    std::fs::write(&oc, p.self_signed(&key).unwrap().pem()).unwrap();
    std::fs::write(&ok, key.serialize_pem()).unwrap();
    std::fs::set_permissions(&ok, std::fs::Permissions::from_mode(0o600)).unwrap();
    let toml = s
        .http(up, "")
        .replace(s.cert.to_str().unwrap(), oc.to_str().unwrap())
        .replace(s.key.to_str().unwrap(), ok.to_str().unwrap());
    let (rc, _, err) = check(&s.dir, &toml);
    assert_eq!(rc, 0, "{err}");
    assert!(
        err.contains(&format!("warning: certificate {} expired on", oc.display())),
        "{err}"
    );
}

#[test]
fn client_identity_header_must_be_a_name_of_its_own() {
    let s = setup();
    let up = dead_addr();
    for bad in ["X-Forwarded-Client", "X-SSL-Id", "bad name", "X-Id-"] {
        let toml = s.http(up, &format!("client_identity_header = \"{bad}\""));
        let (rc, _, err) = check(&s.dir, &toml);
        assert_eq!(rc, 1, "{bad} accepted");
        assert!(err.contains("client_identity_header"), "{err}");
    }
    let toml = s.tcp(up, "client_identity_header = \"X-Gw\"");
    let (rc, _, err) = check(&s.dir, &toml);
    assert_eq!(rc, 1, "accepted in tcp mode");
    assert!(err.contains("not used in mode \"tcp\""), "{err}");
}
