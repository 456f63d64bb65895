//! The gateway end to end: the built binary with a generated config, real
//! clients (curl, openssl s_client, a rustls client) and small backends,
//! all on 127.0.0.1. One test per behaviour or refusal.

mod proxy_common;

use proxy_common::*;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::time::{Duration, Instant};

#[test]
fn http_mode_proxies_h1_and_h2_with_forwarded_headers_and_hsts() {
    let s = setup();
    let gw = Gw::start(&s.dir, &s.http(http_backend(), "hsts = true"));
    let a = gw.addrs[0];
    let (rc, out, err) = s.curl(
        a,
        "/headers?x=1",
        &[
            "--http1.1",
            "-i",
            "-H",
            "X-Forwarded-For: 6.6.6.6",
            "-H",
            "Forwarded: for=6.6.6.6",
            "-H",
            "Connection: keep-alive, X-Secret",
            "-H",
            "X-Secret: hop",
        ],
    );
    assert_eq!(rc, 0, "{err}");
    let lower = out.to_ascii_lowercase();
    assert!(lower.contains("http/1.1 200"), "{out}");
    assert!(
        lower.contains("strict-transport-security: max-age="),
        "{out}"
    );
    assert!(lower.contains("x-forwarded-for: 127.0.0.1"), "{out}");
    assert!(lower.contains("x-forwarded-proto: https"), "{out}");
    assert!(
        lower.contains("forwarded: for=127.0.0.1;proto=https"),
        "{out}"
    );
    assert!(
        !lower.contains("6.6.6.6"),
        "client's forwarding headers trusted: {out}"
    );
    assert!(
        !lower.contains("x-secret"),
        "hop-by-hop header passed: {out}"
    );
    assert!(
        lower.contains("get /headers?x=1 http/1.1"),
        "path not forwarded unchanged: {out}"
    );
    assert!(
        !lower.contains("keep-alive: timeout"),
        "upstream hop-by-hop header passed: {out}"
    );
    let (rc, out) = s.h2_get(a, "/");
    assert_eq!((rc, out.as_str()), (0, "2 200"));
    let (rc, out, _) = s.curl(a, "/echo", &["--http2", "--data-binary", "streamed body"]);
    assert_eq!((rc, out.as_str()), (0, "streamed body"));
    let (rc, out, _) = s.curl(a, "/big", &["-o", "/dev/null", "-w", "%{size_download}"]);
    assert_eq!((rc, out.as_str()), (0, "1048576"));
    // Two requests on one connection: the client connection is kept alive.
    let (rc, _, err) = s.curl(
        a,
        "/",
        &[
            "-v",
            "-o",
            "/dev/null",
            "--http1.1",
            &format!("https://localhost:{}/", a.port()),
        ],
    );
    assert_eq!(rc, 0);
    assert!(
        err.contains("Re-using existing connection") || err.contains("Reusing existing"),
        "{err}"
    );
}

#[test]
fn websocket_upgrade_is_passed_through() {
    let s = setup();
    let gw = Gw::start(&s.dir, &s.http(http_backend(), ""));
    let mut t = tls_connect(gw.addrs[0], client_config(&s.ca(), None), "localhost").unwrap();
    t.write_all(b"GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\n\r\n")
        .unwrap();
    let mut buf = vec![0u8; 4096];
    let mut got = Vec::new();
    while !got.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = t.read(&mut buf).unwrap();
        assert!(n > 0, "closed before 101");
        got.extend_from_slice(&buf[..n]);
    }
    let head = String::from_utf8_lossy(&got).to_ascii_lowercase();
    assert!(head.starts_with("http/1.1 101"), "{head}");
    assert!(head.contains("upgrade: websocket"), "{head}");
    t.write_all(b"frame-one").unwrap();
    let mut echo = [0u8; 9];
    t.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"frame-one");
}

#[test]
fn upstream_down_is_502_with_a_log_line_naming_it() {
    let s = setup();
    let dead = dead_addr();
    let gw = Gw::start(&s.dir, &s.http(dead, ""));
    let (_, out, _) = s.curl(gw.addrs[0], "/", &["-o", "/dev/null", "-w", "%{http_code}"]);
    assert_eq!(out, "502");
    assert!(
        gw.wait_log(&format!("upstream http://{dead} failed"), 5),
        "{}",
        gw.log()
    );
}

#[test]
fn slow_upstream_is_504_after_the_configured_timeout() {
    let s = setup();
    let gw = Gw::start(
        &s.dir,
        &format!(
            "[limits]\nupstream_timeout_s = 1\n{}",
            s.http(http_backend(), "")
        ),
    );
    let t0 = Instant::now();
    let (_, out, _) = s.curl(
        gw.addrs[0],
        "/slow",
        &["-o", "/dev/null", "-w", "%{http_code}"],
    );
    assert_eq!(out, "504");
    assert!(
        t0.elapsed() < Duration::from_millis(2900),
        "{:?}",
        t0.elapsed()
    );
    assert!(gw.wait_log("timed out after 1s", 5), "{}", gw.log());
}

#[test]
fn oversize_header_is_431() {
    let s = setup();
    let gw = Gw::start(
        &s.dir,
        &format!(
            "[limits]\nmax_header_bytes = 8192\n{}",
            s.http(http_backend(), "")
        ),
    );
    let big = format!("X-Big: {}", "a".repeat(10_000));
    for v in ["--http1.1", "--http2"] {
        let (_, out, err) = s.curl(
            gw.addrs[0],
            "/",
            &[v, "-o", "/dev/null", "-w", "%{http_code}", "-H", &big],
        );
        assert_eq!(out, "431", "{v}: {err}");
    }
    let (_, out, _) = s.curl(gw.addrs[0], "/", &["-o", "/dev/null", "-w", "%{http_code}"]);
    assert_eq!(out, "200");
}

#[test]
fn slowloris_header_is_cut_and_others_are_served() {
    let s = setup();
    let gw = Gw::start(
        &s.dir,
        &format!(
            "[limits]\nheader_timeout_s = 1\n{}",
            s.http(http_backend(), "")
        ),
    );
    let mut slow = tls_connect(gw.addrs[0], client_config(&s.ca(), None), "localhost").unwrap();
    slow.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n")
        .unwrap();
    let t0 = Instant::now();
    let (_, out, _) = s.curl(gw.addrs[0], "/", &["-o", "/dev/null", "-w", "%{http_code}"]);
    assert_eq!(out, "200");
    let mut buf = [0u8; 512];
    let r = slow.read(&mut buf);
    // Either a 408 or the connection closed; never a 200 for the half header.
    let got = match r {
        Ok(n) => String::from_utf8_lossy(&buf[..n]).into_owned(),
        Err(e) => e.to_string(),
    };
    assert!(!got.contains("200 OK"), "{got}");
    assert!(
        t0.elapsed() < Duration::from_secs(5),
        "not cut: {:?}",
        t0.elapsed()
    );
}

#[test]
fn old_protocols_and_weak_suites_are_refused() {
    let s = setup();
    let gw = Gw::start(&s.dir, &s.http(http_backend(), ""));
    let a = gw.addrs[0];
    let (ok, text) = s_client(a, &["-tls1_3"]);
    assert!(ok, "TLS 1.3 refused: {text}");
    let (ok, text) = s_client(a, &["-tls1_2"]);
    assert!(ok, "TLS 1.2 refused: {text}");
    for (what, args) in [
        ("TLS 1.1", &["-tls1_1", "-cipher", "DEFAULT@SECLEVEL=0"][..]),
        ("TLS 1.0", &["-tls1", "-cipher", "DEFAULT@SECLEVEL=0"][..]),
        (
            "CBC with ECDHE",
            &[
                "-tls1_2",
                "-cipher",
                "ECDHE-ECDSA-AES128-SHA:ECDHE-ECDSA-AES256-SHA384",
            ][..],
        ),
        (
            "static RSA key exchange",
            &["-tls1_2", "-cipher", "AES128-GCM-SHA256:AES256-SHA"][..],
        ),
        (
            "finite-field DHE",
            &["-tls1_2", "-cipher", "DHE-RSA-AES128-GCM-SHA256"][..],
        ),
    ] {
        let (ok, text) = s_client(a, args);
        assert!(!ok, "{what} was accepted: {text}");
    }
    let m = gw.metrics;
    assert!(m.is_none());
}

fn client_cert_setup(s: &Setup, allow: &str) -> (Gw, Pki) {
    let cpki = Pki::new(&s.dir.join("clients"), "cli");
    let extra = format!(
        "client_ca = \"{}\"\nallow = [{allow}]",
        cpki.ca_path("cli").display()
    );
    let gw = Gw::start(&s.dir, &s.http(http_backend(), &extra));
    (gw, cpki)
}

fn spki_pin(cert: &Path) -> String {
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(format!(
            "openssl x509 -in '{}' -pubkey -noout | openssl pkey -pubin -outform der | openssl dgst -sha256 -hex",
            cert.display()
        ))
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .trim()
        .rsplit(' ')
        .next()
        .unwrap()
        .to_string()
}

#[test]
fn client_certificates_are_required_and_filtered_by_allow() {
    let s = setup();
    let cpki = Pki::new(&s.dir.join("clients"), "cli");
    let (dave_c, dave_k) = cpki.leaf("dave", "dave", &[], &[], true);
    let pin = spki_pin(&dave_c);
    assert_eq!(pin.len(), 64);
    let extra = format!(
        "client_ca = \"{}\"\nallow = [\"CN=alice\", \"URI:spiffe://corp/hr\", \"DNS:svc.corp\", \"SPKI:{pin}\"]",
        cpki.ca_path("cli").display()
    );
    let gw = Gw::start(&s.dir, &s.http(http_backend(), &extra));
    let a = gw.addrs[0];
    let with = |c: &Path, k: &Path| {
        s.curl(
            a,
            "/",
            &[
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--cert",
                c.to_str().unwrap(),
                "--key",
                k.to_str().unwrap(),
            ],
        )
    };
    let (c, k) = cpki.leaf("alice", "alice", &[], &[], true);
    assert_eq!(with(&c, &k).1, "200", "CN rule");
    let (c, k) = cpki.leaf("carol", "carol", &[], &["spiffe://corp/hr"], true);
    assert_eq!(with(&c, &k).1, "200", "URI rule");
    let (c, k) = cpki.leaf("svc", "svc", &["svc.corp"], &[], true);
    assert_eq!(with(&c, &k).1, "200", "DNS rule");
    assert_eq!(with(&dave_c, &dave_k).1, "200", "SPKI rule");
    let (c, k) = cpki.leaf(
        "bob",
        "bob",
        &["bob.corp"],
        &["spiffe://corp/finance"],
        true,
    );
    let (rc, out, _) = with(&c, &k);
    assert!(rc != 0 && out != "200", "bob was let in");
    assert!(gw.wait_log("is not in `allow`", 5), "{}", gw.log());
    let (rc, out, _) = s.curl(a, "/", &["-o", "/dev/null", "-w", "%{http_code}"]);
    assert!(rc != 0 && out != "200", "no certificate was let in");
    let other = Pki::new(&s.dir.join("other"), "evil");
    let (c, k) = other.leaf("alice2", "alice", &[], &[], true);
    let (rc, out, _) = with(&c, &k);
    assert!(
        rc != 0 && out != "200",
        "certificate from another CA was let in"
    );
    // The same refusals with the in-test rustls client.
    let cfg = client_config(&s.ca(), Some((&c, &k)));
    let refused = match tls_connect(a, cfg, "localhost") {
        Err(_) => true,
        Ok(mut t) => {
            let _ = t.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
            let mut b = [0u8; 64];
            !matches!(t.read(&mut b), Ok(n) if n > 0)
        }
    };
    assert!(refused);
    let _ = client_cert_setup;
}

#[test]
fn sni_chooses_the_certificate_and_no_sni_gets_the_default() {
    let s = setup();
    let (oc, ok) = s
        .pki
        .leaf("other", "other.test", &["other.test"], &[], false);
    let extra = format!(
        "[[listener.sni]]\nnames = [\"other.test\"]\ncert = \"{}\"\nkey = \"{}\"\n",
        oc.display(),
        ok.display()
    );
    let gw = Gw::start(&s.dir, &s.http(http_backend(), &extra));
    let cfg = client_config(&s.ca(), None);
    let leaf = |name: &str| {
        let t = tls_connect(gw.addrs[0], cfg.clone(), name).unwrap();
        t.conn.peer_certificates().unwrap()[0].as_ref().to_vec()
    };
    let der = |p: &Path| {
        use rustls::pki_types::pem::PemObject;
        rustls::pki_types::CertificateDer::from_pem_file(p)
            .unwrap()
            .as_ref()
            .to_vec()
    };
    assert_eq!(leaf("other.test"), der(&oc));
    assert_eq!(leaf("localhost"), der(&s.cert));
    assert_eq!(
        leaf("127.0.0.1"),
        der(&s.cert),
        "IP literal (no SNI) must get the default"
    );
}

#[test]
fn tcp_mode_relays_with_half_close() {
    let s = setup();
    let gw = Gw::start(&s.dir, &s.tcp(eof_backend(false), ""));
    let mut t = tls_connect(gw.addrs[0], client_config(&s.ca(), None), "localhost").unwrap();
    t.write_all(&[7u8; 100_000]).unwrap();
    finish_writing(&mut t);
    let mut out = String::new();
    let _ = t.read_to_string(&mut out);
    assert_eq!(out, "got 100000 bytes");
}

#[test]
fn tcp_mode_sends_a_proxy_v2_header() {
    let s = setup();
    let gw = Gw::start(&s.dir, &s.tcp(eof_backend(true), "proxy_protocol = true"));
    let mut t = tls_connect(gw.addrs[0], client_config(&s.ca(), None), "localhost").unwrap();
    let local = t.sock.local_addr().unwrap();
    t.write_all(b"payload").unwrap();
    finish_writing(&mut t);
    let mut got = Vec::new();
    let _ = t.read_to_end(&mut got);
    assert!(got.starts_with(b"\r\n\r\n\0\r\nQUIT\n\x21\x11"), "{got:?}");
    assert_eq!(&got[16..20], &[127, 0, 0, 1]);
    assert_eq!(u16::from_be_bytes([got[24], got[25]]), local.port());
    assert!(got.ends_with(b"payload"));
    assert!(got.windows(7).any(|w| w == b"TLSv1_3"));
}

#[test]
fn redirect_mode_sends_301_for_get_and_308_for_post() {
    let s = setup();
    let gw = Gw::start(&s.dir, "[[listener]]\nmode = \"redirect\"\nlisten = \"127.0.0.1:0\"\nto = \"https://app.example\"\n");
    let url = format!("http://{}/a/b?c=d", gw.addrs[0]);
    let (_, out, _) = curl(&[
        "-o",
        "/dev/null",
        "-w",
        "%{http_code} %{redirect_url}",
        &url,
    ]);
    assert_eq!(out, "301 https://app.example/a/b?c=d");
    let (_, out, _) = curl(&["-o", "/dev/null", "-X", "POST", "-w", "%{http_code}", &url]);
    assert_eq!(out, "308");
}

#[test]
fn originate_mode_verifies_the_upstream_and_relays() {
    let s = setup();
    let inner = Gw::start(&s.dir, &s.tcp(eof_backend(false), ""));
    let d2 = s.dir.join("orig");
    std::fs::create_dir_all(&d2).unwrap();
    let cfg = format!(
        "[[listener]]\nmode = \"originate\"\nlisten = \"127.0.0.1:0\"\nupstream = \"localhost:{}\"\nca = \"{}\"\n\n[[listener]]\nmode = \"originate\"\nlisten = \"127.0.0.1:0\"\nupstream = \"127.0.0.1:{}\"\nserver_name = \"wrong.name\"\nca = \"{}\"\n",
        inner.addrs[0].port(),
        s.ca().display(),
        inner.addrs[0].port(),
        s.ca().display()
    );
    let gw = Gw::start(&d2, &cfg);
    let talk = |a: SocketAddr| plain_talk(a, b"plaintext from a legacy client");
    assert_eq!(talk(gw.addrs[0]), "got 30 bytes");
    assert_eq!(
        talk(gw.addrs[1]),
        "",
        "a wrong server name must not connect"
    );
    assert!(gw.wait_log("TLS handshake failed", 5), "{}", gw.log());
}

#[test]
fn garbage_and_half_handshakes_do_not_stop_others() {
    let s = setup();
    let mcfg = format!(
        "[limits]\nhandshake_timeout_s = 2\n[metrics]\nlisten = \"127.0.0.1:0\"\n{}",
        s.http(http_backend(), "")
    );
    let gw = Gw::start(&s.dir, &mcfg);
    let a = gw.addrs[0];
    let mut held = Vec::new();
    for i in 0..40 {
        let mut c = TcpStream::connect(a).unwrap();
        if i % 2 == 0 {
            let _ = c.write_all(b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03garbage-garbage");
        } else {
            let _ = c.write_all(b"GET / HTTP/1.1\r\n\r\n\x00\xff\xfe");
        }
        held.push(c);
    }
    for _ in 0..3 {
        let (_, out, _) = s.curl(a, "/", &["-o", "/dev/null", "-w", "%{http_code}"]);
        assert_eq!(out, "200");
    }
    std::thread::sleep(Duration::from_millis(2500));
    let m = metrics(gw.metrics.unwrap());
    assert!(m.contains("pivault_handshake_failures_total{"), "{m}");
    assert!(m.contains("reason=\"bad_message\""), "{m}");
    assert!(m.contains("reason=\"timeout\""), "{m}");
    drop(held);
}

#[test]
fn max_connections_is_enforced_before_the_handshake() {
    let s = setup();
    let cfg = format!(
        "[limits]\nmax_connections = 2\nhandshake_timeout_s = 30\n{}",
        s.http(http_backend(), "")
    );
    let gw = Gw::start(&s.dir, &cfg);
    let a = gw.addrs[0];
    let hold: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(a).unwrap()).collect();
    std::thread::sleep(Duration::from_millis(300));
    let (rc, _, _) = s.curl(a, "/", &["-m", "2", "-o", "/dev/null"]);
    assert_ne!(rc, 0, "a third connection was served while two were held");
    drop(hold);
    let (rc, out, _) = s.curl(a, "/", &["-o", "/dev/null", "-w", "%{http_code}"]);
    assert_eq!((rc, out.as_str()), (0, "200"));
}

#[test]
fn sigterm_drains_in_flight_requests_and_exits_0() {
    let s = setup();
    let mut gw = Gw::start(&s.dir, &s.http(http_backend(), ""));
    let a = gw.addrs[0];
    let ca = s.ca();
    let inflight = std::thread::spawn(move || {
        let resolve = format!("localhost:{}:127.0.0.1", a.port());
        curl(&[
            "--resolve",
            &resolve,
            "--cacert",
            ca.to_str().unwrap(),
            &format!("https://localhost:{}/slow", a.port()),
        ])
    });
    std::thread::sleep(Duration::from_millis(700));
    gw.signal("TERM");
    let deadline = Instant::now() + Duration::from_secs(2);
    while TcpStream::connect_timeout(&a, Duration::from_secs(1)).is_ok() {
        assert!(
            Instant::now() < deadline,
            "still accepting 2 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let (rc, out, err) = inflight.join().unwrap();
    assert_eq!((rc, out.as_str()), (0, "slow"), "{err}");
    assert_eq!(gw.wait_exit(10), Some(0), "{}", gw.log());
}

#[test]
fn sighup_and_file_changes_reload_certificates_and_bad_files_keep_the_old() {
    let s = setup();
    let gw = Gw::start(&s.dir, &s.http(http_backend(), ""));
    let cfg = client_config(&s.ca(), None);
    let leaf = || {
        let t = tls_connect(gw.addrs[0], cfg.clone(), "localhost").unwrap();
        t.conn.peer_certificates().unwrap()[0].as_ref().to_vec()
    };
    let der = |p: &Path| {
        use rustls::pki_types::pem::PemObject;
        rustls::pki_types::CertificateDer::from_pem_file(p)
            .unwrap()
            .as_ref()
            .to_vec()
    };
    let first = leaf();
    // An open connection survives the reload.
    let mut open = tls_connect(gw.addrs[0], cfg.clone(), "localhost").unwrap();
    let (c2, k2) = s.pki.leaf("two", "two", &["localhost"], &[], false);
    std::fs::copy(&c2, &s.cert).unwrap();
    std::fs::copy(&k2, &s.key).unwrap();
    gw.signal("HUP");
    assert!(gw.wait_log("certificates reloaded", 5), "{}", gw.log());
    assert_eq!(leaf(), der(&c2));
    assert_ne!(leaf(), first);
    open.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    let mut b = [0u8; 15];
    open.read_exact(&mut b).unwrap();
    assert_eq!(&b, b"HTTP/1.1 200 OK");
    // A bad key: the old certificate stays and the log says why.
    std::fs::write(&s.key, "garbage").unwrap();
    gw.signal("HUP");
    assert!(
        gw.wait_log("reload failed, keeping the old certificate", 5),
        "{}",
        gw.log()
    );
    assert_eq!(leaf(), der(&c2));
    // A file change without a signal.
    let (c3, k3) = s.pki.leaf("three", "three", &["localhost"], &[], false);
    std::fs::copy(&k3, &s.key).unwrap();
    std::fs::copy(&c3, &s.cert).unwrap();
    let deadline = Instant::now() + Duration::from_secs(8);
    while leaf() != der(&c3) {
        assert!(
            Instant::now() < deadline,
            "file change not picked up: {}",
            gw.log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn access_log_and_metrics_record_requests() {
    let s = setup();
    let log = s.dir.join("access.log");
    let cfg = format!(
        "access_log = \"{}\"\n[metrics]\nlisten = \"127.0.0.1:0\"\n{}",
        log.display(),
        s.http(http_backend(), "")
    );
    let gw = Gw::start(&s.dir, &cfg);
    let (_, out, _) = s.curl(
        gw.addrs[0],
        "/hello?x=1",
        &["--http1.1", "-o", "/dev/null", "-w", "%{http_code}"],
    );
    assert_eq!(out, "200");
    let deadline = Instant::now() + Duration::from_secs(5);
    let line = loop {
        let t = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(l) = t.lines().next() {
            break l.to_string();
        }
        assert!(Instant::now() < deadline, "no access log line");
        std::thread::sleep(Duration::from_millis(50));
    };
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(v["method"], "GET");
    assert_eq!(v["path"], "/hello?x=1");
    assert_eq!(v["status"], 200);
    assert_eq!(v["tls_version"], "TLSv1_3");
    assert!(v["client"].as_str().unwrap().starts_with("127.0.0.1:"));
    assert!(v["bytes_out"].as_u64().unwrap() > 0);
    assert_eq!(v["bytes_in"], 0, "a GET has no body");
    assert!(v["time"].as_str().unwrap().ends_with('Z'));
    // A request body is counted in and, echoed, out.
    let body = s.dir.join("body.bin");
    std::fs::write(&body, vec![b'b'; 3000]).unwrap();
    let data = format!("@{}", body.display());
    let (_, out, _) = s.curl(
        gw.addrs[0],
        "/echo",
        &[
            "--http1.1",
            "--data-binary",
            &data,
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
        ],
    );
    assert_eq!(out, "200");
    let line = loop {
        let t = std::fs::read_to_string(&log).unwrap_or_default();
        if let Some(l) = t.lines().nth(1) {
            break l.to_string();
        }
        assert!(Instant::now() < deadline, "no second access log line");
        std::thread::sleep(Duration::from_millis(50));
    };
    let v: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(
        (v["method"].as_str(), v["path"].as_str()),
        (Some("POST"), Some("/echo"))
    );
    assert_eq!(
        (v["bytes_in"].as_u64(), v["bytes_out"].as_u64()),
        (Some(3000), Some(3000))
    );
    let m = metrics(gw.metrics.unwrap());
    assert!(
        m.contains("pivault_bytes_in_total{listener=\"127.0.0.1:0\",mode=\"http\"} 3000"),
        "{m}"
    );
    assert!(
        m.contains("pivault_http_requests_total{listener=\"127.0.0.1:0\",code=\"200\"} 2"),
        "{m}"
    );
    assert!(m.contains("pivault_connections_total{"), "{m}");
    let (_, st, _) = curl(&[&format!("http://{}/status", gw.metrics.unwrap())]);
    let v: serde_json::Value = serde_json::from_str(&st).unwrap();
    assert_eq!(v["status"], "ok");
    assert_eq!(v["listeners"][0]["mode"], "http");
}

#[test]
fn idle_connections_are_closed_after_idle_timeout() {
    let s = setup();
    let cfg = format!(
        "[limits]\nidle_timeout_s = 1\n{}",
        s.tcp(eof_backend(false), "")
    );
    let gw = Gw::start(&s.dir, &cfg);
    let mut t = tls_connect(gw.addrs[0], client_config(&s.ca(), None), "localhost").unwrap();
    let t0 = Instant::now();
    let mut b = [0u8; 16];
    let r = t.read(&mut b);
    assert!(matches!(r, Ok(0) | Err(_)), "{r:?}");
    let took = t0.elapsed();
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(5),
        "{took:?}"
    );
}

#[test]
fn originate_presents_a_client_certificate_when_configured() {
    let s = setup();
    let cpki = Pki::new(&s.dir.join("clients"), "cli");
    let (cc, ck) = cpki.leaf("legacy", "legacy-client", &[], &[], true);
    let extra = format!(
        "client_ca = \"{}\"\nallow = [\"CN=legacy-client\"]",
        cpki.ca_path("cli").display()
    );
    let inner = Gw::start(&s.dir, &s.tcp(eof_backend(false), &extra));
    let d2 = s.dir.join("orig");
    std::fs::create_dir_all(&d2).unwrap();
    let listener = |cert: bool| {
        format!(
            "[[listener]]\nmode = \"originate\"\nlisten = \"127.0.0.1:0\"\nupstream = \"localhost:{}\"\nca = \"{}\"\n{}\n",
            inner.addrs[0].port(),
            s.ca().display(),
            if cert {
                format!("client_cert = \"{}\"\nclient_key = \"{}\"\n", cc.display(), ck.display())
            } else {
                String::new()
            }
        )
    };
    let gw = Gw::start(&d2, &format!("{}{}", listener(true), listener(false)));
    let talk = |a: SocketAddr| plain_talk(a, b"hello");
    assert_eq!(talk(gw.addrs[0]), "got 5 bytes");
    assert_eq!(talk(gw.addrs[1]), "", "served without a client certificate");
}

#[test]
fn forwarded_names_each_requests_own_host_on_one_connection() {
    let s = setup();
    let gw = Gw::start(&s.dir, &s.http(http_backend(), ""));
    let mut t = tls_connect(gw.addrs[0], client_config(&s.ca(), None), "localhost").unwrap();
    for host in ["a.example", "a.example", "b.example:8443"] {
        write!(t, "GET /headers HTTP/1.1\r\nHost: {host}\r\n\r\n").unwrap();
        // The backend echoes the request head it got as the body.
        let mut got = Vec::new();
        let mut b = [0u8; 4096];
        let complete = |got: &[u8]| {
            let text = String::from_utf8_lossy(got).to_ascii_lowercase();
            let Some(end) = text.find("\r\n\r\n") else {
                return false;
            };
            let len: usize = text[..end]
                .lines()
                .find_map(|l| l.strip_prefix("content-length:"))
                .map_or(0, |v| v.trim().parse().unwrap());
            got.len() >= end + 4 + len
        };
        while !complete(&got) {
            let n = t.read(&mut b).unwrap();
            assert!(n > 0, "closed");
            got.extend_from_slice(&b[..n]);
        }
        let text = String::from_utf8_lossy(&got).to_ascii_lowercase();
        assert!(
            text.contains(&format!(
                "forwarded: for=127.0.0.1;proto=https;host=\"{host}\""
            )),
            "{text}"
        );
        assert!(
            text.contains(&format!("x-forwarded-host: {host}")),
            "{text}"
        );
    }
}
