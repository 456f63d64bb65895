//! Connections spread over the worker threads: a burst that lands in the
//! backlog at once ends up evenly on two workers (`/metrics` and `/status`
//! say so), every connection, handed off or not, is served to its end,
//! and the per-worker gauges fall back to zero when the clients go.

mod proxy_common;

use proxy_common::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

const TWO_WORKERS: &[(&str, &str)] = &[("PIVAULT_PROXY_THREADS", "2")];

/// The value of `series` (name and labels) in a Prometheus page.
fn gauge(page: &str, series: &str) -> u64 {
    page.lines()
        .find_map(|l| l.strip_prefix(series))
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("{series} missing from:\n{page}"))
}

fn worker_loads(m: std::net::SocketAddr) -> (u64, u64) {
    let page = metrics(m);
    (
        gauge(&page, "pivault_worker_connections{worker=\"1\"}"),
        gauge(&page, "pivault_worker_connections{worker=\"2\"}"),
    )
}

/// `n` connections, all in the backlog before any handshake (whichever
/// worker wakes first accepts the lot), then a TLS session on each.
fn burst(a: std::net::SocketAddr, n: usize, s: &Setup) -> Vec<Tls> {
    let socks: Vec<TcpStream> = (0..n).map(|_| TcpStream::connect(a).unwrap()).collect();
    let cfg = client_config(&s.ca(), None);
    socks
        .into_iter()
        .map(|sock| tls_over(sock, cfg.clone(), "localhost").unwrap())
        .collect()
}

#[test]
fn a_burst_of_connections_is_spread_evenly_and_each_is_served() {
    let s = setup();
    let cfg = format!(
        "[metrics]\nlisten = \"127.0.0.1:0\"\n{}",
        s.tcp(eof_backend(false), "")
    );
    let gw = Gw::start_env(&s.dir, &cfg, TWO_WORKERS);
    let (a, m) = (gw.addrs[0], gw.metrics.unwrap());
    let mut tls = burst(a, 20, &s);
    let deadline = Instant::now() + Duration::from_secs(10);
    let (w1, w2) = loop {
        let (w1, w2) = worker_loads(m);
        if w1 + w2 == 20 || Instant::now() > deadline {
            break (w1, w2);
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(w1 + w2, 20, "every open connection is counted on a worker");
    assert!(
        w1.abs_diff(w2) <= 2,
        "20 connections split {w1}/{w2} between two workers: {}",
        metrics(m)
    );
    let (_, status, _) = curl(&[&format!("http://{m}/status")]);
    let st: serde_json::Value = serde_json::from_str(&status).unwrap();
    assert_eq!(st["workers"], serde_json::json!([w1, w2]), "{status}");
    // Each connection, wherever it is served, relays to its end.
    for (i, t) in tls.iter_mut().enumerate() {
        t.write_all(&vec![b'x'; 1000 + i]).unwrap();
        finish_writing(t);
        let mut out = String::new();
        let _ = t.read_to_string(&mut out);
        assert_eq!(out, format!("got {} bytes", 1000 + i), "connection {i}");
    }
    drop(tls);
    let deadline = Instant::now() + Duration::from_secs(10);
    while worker_loads(m) != (0, 0) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(worker_loads(m), (0, 0), "{}", metrics(m));
    let page = metrics(m);
    assert_eq!(
        gauge(
            &page,
            "pivault_connections_active{listener=\"127.0.0.1:0\",mode=\"tcp\"}"
        ),
        0
    );
}

#[test]
fn keep_alive_https_clients_on_two_workers_all_get_their_answers() {
    let s = setup();
    let cfg = format!(
        "[metrics]\nlisten = \"127.0.0.1:0\"\n{}",
        s.http(http_backend(), "")
    );
    let gw = Gw::start_env(&s.dir, &cfg, TWO_WORKERS);
    let (a, m) = (gw.addrs[0], gw.metrics.unwrap());
    let mut tls = burst(a, 12, &s);
    // Three requests on each connection, interleaved across connections.
    for round in 0..3 {
        for (i, t) in tls.iter_mut().enumerate() {
            write!(
                t,
                "GET /echo HTTP/1.1\r\nhost: localhost\r\ncontent-length: 6\r\n\r\n{round}:{i:04}"
            )
            .unwrap();
            t.flush().unwrap();
            let want = format!("{round}:{i:04}");
            let mut got = Vec::new();
            let mut buf = [0u8; 4096];
            while !got.ends_with(want.as_bytes()) {
                let n = t.read(&mut buf).unwrap();
                assert!(n > 0, "connection {i} closed in round {round}");
                got.extend_from_slice(&buf[..n]);
            }
            let text = String::from_utf8_lossy(&got);
            assert!(text.starts_with("HTTP/1.1 200"), "{text}");
        }
    }
    let (w1, w2) = worker_loads(m);
    assert_eq!(w1 + w2, 12);
    assert!(w1.abs_diff(w2) <= 2, "12 connections split {w1}/{w2}");
}

#[test]
fn workers_in_the_config_sets_the_thread_count_and_the_environment_overrides_it() {
    let s = setup();
    let cfg = format!(
        "workers = 3\n[metrics]\nlisten = \"127.0.0.1:0\"\n{}",
        s.http(http_backend(), "")
    );
    let series = |page: &str| {
        page.lines()
            .filter(|l| l.starts_with("pivault_worker_connections{"))
            .count()
    };
    let gw = Gw::start_env(&s.dir, &cfg, &[("PIVAULT_PROXY_THREADS", "")]);
    let (rc, out, err) = s.curl(gw.addrs[0], "/", &[]);
    assert_eq!(
        (rc, out.as_str()),
        (0, "hello from the legacy app\n"),
        "{err}"
    );
    assert_eq!(series(&metrics(gw.metrics.unwrap())), 3);
    drop(gw);
    let gw = Gw::start_env(&s.dir, &cfg, &[("PIVAULT_PROXY_THREADS", "1")]);
    assert_eq!(series(&metrics(gw.metrics.unwrap())), 1);
    drop(gw);
    // A bad override is said, and the config's count stands.
    let gw = Gw::start_env(&s.dir, &cfg, &[("PIVAULT_PROXY_THREADS", "zero")]);
    assert_eq!(series(&metrics(gw.metrics.unwrap())), 3);
    assert!(
        gw.wait_log(
            "PIVAULT_PROXY_THREADS=\"zero\" ignored: expected 1 to 512",
            5
        ),
        "{}",
        gw.log()
    );
}
