//! `http` mode's deadlines and the requests refused before they reach the
//! proxy: a keep-alive connection may wait between requests for the idle
//! timeout, not the header deadline; a header that does not complete in
//! `header_timeout_s` (HTTP/1.1, or an HTTP/2 connection's first request)
//! is cut and recorded as 408; a header hyper refuses as too large is
//! recorded as 431; SIGHUP reopens the access log for logrotate.

mod proxy_common;

use proxy_common::*;
use std::io::{Read, Write};
use std::path::Path;
use std::time::{Duration, Instant};

/// The access log's records once it has at least `n` (waits up to 5 s).
fn records(log: &Path, n: usize) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let t = std::fs::read_to_string(log).unwrap_or_default();
        let v: Vec<serde_json::Value> = t
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        if v.len() >= n || Instant::now() > deadline {
            return v;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Reads until the peer closes; returns what came and how long it took.
fn read_to_close(t: &mut Tls) -> (Vec<u8>, Duration) {
    let t0 = Instant::now();
    let mut got = Vec::new();
    let mut b = [0u8; 4096];
    loop {
        match t.read(&mut b) {
            Ok(0) | Err(_) => return (got, t0.elapsed()),
            Ok(n) => got.extend_from_slice(&b[..n]),
        }
        assert!(t0.elapsed() < Duration::from_secs(15), "never closed");
    }
}

fn code_count(m: &str, code: u16) -> u64 {
    m.lines()
        .find(|l| {
            l.starts_with("pivault_http_requests_total{") && l.contains(&format!("code=\"{code}\""))
        })
        .and_then(|l| l.rsplit(' ').next())
        .map_or(0, |v| v.parse().unwrap())
}

fn gateway(s: &Setup, limits: &str) -> (Gw, std::path::PathBuf) {
    let log = s.dir.join("access.log");
    let cfg = format!(
        "access_log = \"{}\"\n[limits]\n{limits}\n[metrics]\nlisten = \"127.0.0.1:0\"\n{}",
        log.display(),
        s.http(http_backend(), "")
    );
    (Gw::start(&s.dir, &cfg), log)
}

/// Sends `rest` (a request or its end) and reads the backend's answer.
fn get_rest(t: &mut Tls, rest: &[u8]) -> String {
    t.write_all(rest).unwrap();
    let mut got = Vec::new();
    let mut b = [0u8; 4096];
    while !String::from_utf8_lossy(&got).contains("legacy app\n") {
        let n = t.read(&mut b).unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&b[..n]);
    }
    String::from_utf8_lossy(&got).into_owned()
}

fn get(t: &mut Tls) -> String {
    get_rest(t, b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
}

#[test]
fn a_keep_alive_connection_may_wait_between_requests_longer_than_the_header_deadline() {
    let s = setup();
    let (gw, _) = gateway(&s, "header_timeout_s = 1\nidle_timeout_s = 30");
    let mut t = tls_connect(gw.addrs[0], client_config(&s.ca(), None), "localhost").unwrap();
    assert!(get(&mut t).starts_with("HTTP/1.1 200"));
    std::thread::sleep(Duration::from_millis(2500));
    assert!(get(&mut t).starts_with("HTTP/1.1 200"));
}

#[test]
fn a_slow_header_is_cut_at_the_deadline_and_recorded_as_408() {
    let s = setup();
    let (gw, log) = gateway(&s, "header_timeout_s = 1\nidle_timeout_s = 30");
    let cfg = client_config(&s.ca(), None);
    // A complete request first: the deadline also runs for later ones.
    let mut t = tls_connect(gw.addrs[0], cfg.clone(), "localhost").unwrap();
    assert!(get(&mut t).starts_with("HTTP/1.1 200"));
    t.write_all(b"GET / HTTP/1.1\r\nHost: local").unwrap();
    let (got, took) = read_to_close(&mut t);
    assert!(got.is_empty(), "{}", String::from_utf8_lossy(&got));
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(4),
        "{took:?}"
    );
    // A connection that never sends a byte after the handshake.
    let mut silent = tls_connect(gw.addrs[0], cfg, "localhost").unwrap();
    let (_, took) = read_to_close(&mut silent);
    assert!(took < Duration::from_secs(4), "{took:?}");
    let recs = records(&log, 3);
    let cut: Vec<_> = recs.iter().filter(|r| r["status"] == 408).collect();
    assert_eq!(cut.len(), 2, "{recs:?}");
    assert_eq!(cut[0]["proto"], "HTTP/1.1");
    assert_eq!(cut[0]["tls_version"], "TLSv1_3");
    assert_eq!(code_count(&metrics(gw.metrics.unwrap()), 408), 2);
}

#[test]
fn an_http2_connection_that_never_completes_a_request_is_cut_at_the_deadline() {
    let s = setup();
    let (gw, log) = gateway(&s, "header_timeout_s = 1\nidle_timeout_s = 30");
    let mut cfg = (*client_config(&s.ca(), None)).clone();
    cfg.alpn_protocols = vec![b"h2".to_vec()];
    let mut t = tls_connect(gw.addrs[0], std::sync::Arc::new(cfg), "localhost").unwrap();
    assert_eq!(t.conn.alpn_protocol(), Some(&b"h2"[..]));
    // The preface and an empty SETTINGS frame, then nothing: the shape of
    // an HTTP/2 slowloris.
    t.write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\0\0\0\x04\0\0\0\0\0")
        .unwrap();
    let (_, took) = read_to_close(&mut t);
    assert!(
        took >= Duration::from_millis(800) && took < Duration::from_secs(4),
        "{took:?}"
    );
    let recs = records(&log, 1);
    assert_eq!(recs[0]["status"], 408, "{recs:?}");
    assert_eq!(recs[0]["proto"], "HTTP/2");
    // Ordinary HTTP/2 clients are served.
    let (rc, out) = s.h2_get(gw.addrs[0], "/");
    assert_eq!((rc, out.as_str()), (0, "2 200"));
}

#[test]
fn a_header_too_large_for_hyper_is_answered_431_and_recorded() {
    let s = setup();
    let (gw, log) = gateway(&s, "max_header_bytes = 8192");
    let big = format!("X-Big: {}", "a".repeat(10_000));
    let (_, out, err) = s.curl(
        gw.addrs[0],
        "/",
        &[
            "--http1.1",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "-H",
            &big,
        ],
    );
    assert_eq!(out, "431", "{err}");
    let recs = records(&log, 1);
    assert_eq!(recs.len(), 1, "{recs:?}");
    assert_eq!(recs[0]["status"], 431);
    assert!(recs[0]["client"]
        .as_str()
        .unwrap()
        .starts_with("127.0.0.1:"));
    assert_eq!(code_count(&metrics(gw.metrics.unwrap()), 431), 1);
}

#[test]
fn sighup_reopens_the_access_log_after_logrotate_moved_it() {
    let s = setup();
    let (gw, log) = gateway(&s, "");
    let fetch = |path: &str| {
        let (_, out, _) = s.curl(
            gw.addrs[0],
            path,
            &["-o", "/dev/null", "-w", "%{http_code}"],
        );
        assert_eq!(out, "200");
    };
    fetch("/before");
    assert_eq!(records(&log, 1).len(), 1);
    let rotated = s.dir.join("access.log.1");
    std::fs::rename(&log, &rotated).unwrap();
    gw.signal("HUP");
    assert!(gw.wait_log("reopened", 5), "{}", gw.log());
    fetch("/after");
    let new = records(&log, 1);
    assert_eq!(new.len(), 1, "{new:?}");
    assert_eq!(new[0]["path"], "/after");
    let old = records(&rotated, 1);
    assert_eq!(old.len(), 1, "{old:?}");
    assert_eq!(old[0]["path"], "/before");
}

#[test]
fn a_websocket_tunnel_is_held_by_the_idle_timeout_not_the_header_deadline() {
    let s = setup();
    let (gw, _) = gateway(&s, "header_timeout_s = 1\nidle_timeout_s = 3");
    let mut t = tls_connect(gw.addrs[0], client_config(&s.ca(), None), "localhost").unwrap();
    // The first frame travels right behind the upgrade request.
    t.write_all(b"GET /ws HTTP/1.1\r\nHost: localhost\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nearly")
        .unwrap();
    let mut got = Vec::new();
    let mut b = [0u8; 4096];
    while !got.ends_with(b"early") {
        let n = t.read(&mut b).unwrap();
        assert!(n > 0, "closed: {}", String::from_utf8_lossy(&got));
        got.extend_from_slice(&b[..n]);
    }
    assert!(got.starts_with(b"HTTP/1.1 101"));
    // Quiet for longer than the header deadline, shorter than idle.
    std::thread::sleep(Duration::from_millis(1800));
    t.write_all(b"later").unwrap();
    let mut echo = [0u8; 5];
    t.read_exact(&mut echo).unwrap();
    assert_eq!(&echo, b"later");
    // Quiet for longer than the idle timeout: closed.
    let (_, took) = read_to_close(&mut t);
    assert!(took >= Duration::from_secs(2), "{took:?}");
}

#[test]
fn requests_after_a_long_keep_alive_wait_are_answered_on_the_same_connection() {
    let s = setup();
    let (gw, log) = gateway(&s, "idle_timeout_s = 30");
    let mut t = tls_connect(gw.addrs[0], client_config(&s.ca(), None), "localhost").unwrap();
    let local = t.sock.local_addr().unwrap().to_string();
    for _ in 0..3 {
        assert!(get(&mut t).starts_with("HTTP/1.1 200"));
        // Longer than the wait after which the connection's HTTP state is
        // dropped; the client must not notice.
        std::thread::sleep(Duration::from_millis(1300));
    }
    // A request sent in two pieces across a pause is still one request.
    t.write_all(b"GET / HTTP/1.1\r\nHo").unwrap();
    std::thread::sleep(Duration::from_millis(300));
    assert!(get_rest(&mut t, b"st: localhost\r\n\r\n").starts_with("HTTP/1.1 200"));
    let recs = records(&log, 4);
    assert_eq!(recs.len(), 4, "{recs:?}");
    assert!(recs
        .iter()
        .all(|r| r["client"] == local.as_str() && r["status"] == 200));
}

#[test]
fn a_header_deadline_above_hypers_own_30_s_is_honoured() {
    // hyper has a 30 s header deadline of its own once it is given a
    // timer; the gateway's `header_timeout_s` must be the only one.
    let s = setup();
    let (gw, _) = gateway(&s, "header_timeout_s = 60\nidle_timeout_s = 120");
    let mut t = tls_connect(gw.addrs[0], client_config(&s.ca(), None), "localhost").unwrap();
    t.write_all(b"GET / HTTP/1.1\r\nHo").unwrap();
    std::thread::sleep(Duration::from_secs(32));
    assert!(get_rest(&mut t, b"st: localhost\r\n\r\n").starts_with("HTTP/1.1 200"));
}
