//! The gateway's limits against clients that try to outlast or outnumber
//! it (issue 14), each on 127.0.0.1 against the built binary: a slow but
//! healthy upload longer than `upstream_timeout_s`, a stalled upload, a
//! malformed body (a client error, not an upstream failure), one client
//! address opening connection after connection, one listener's clients
//! against another listener, an HTTP/2 connection kept open by PINGs, and
//! slow readers of large responses. Every wait is bounded.

mod proxy_common;

use proxy_common::h2c::*;
use proxy_common::*;
use std::io::{BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::time::{Duration, Instant};

/// The value of a metric of the first listener.
fn metric(gw: &Gw, name: &str) -> u64 {
    let m = metrics(gw.metrics.unwrap());
    m.lines()
        .find(|l| l.starts_with(&format!("{name}{{")))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no {name} in {m}"))
}

/// Waits up to `secs` for `f` to hold.
fn eventually(secs: u64, mut f: impl FnMut() -> bool) -> bool {
    let end = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < end {
        if f() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    f()
}

/// Reads one response; its status.
fn status_of(t: &mut Tls) -> u16 {
    read_response(t).0
}

/// `listeners` with a metrics endpoint.
fn with_metrics(listeners: &str) -> String {
    format!("[metrics]\nlisten = \"127.0.0.1:0\"\n{listeners}")
}

#[test]
fn slow_upload_longer_than_upstream_timeout_is_answered_not_cut() {
    let s = setup();
    let backend = http_backend();
    let cfg = s.http(
        backend,
        "[limits]\nupstream_timeout_s = 1\nbody_timeout_s = 5\n",
    );
    let gw = Gw::start(&s.dir, &cfg);
    let mut t = tls_connect(gw.addrs[0], client_config(&s.ca(), None), "localhost").unwrap();
    let body: Vec<u8> = (0..40u8).map(|i| b'a' + i % 26).collect();
    write!(
        t,
        "POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    // 3.2 s of upload, more than three times upstream_timeout_s.
    for chunk in body.chunks(5) {
        t.write_all(chunk).unwrap();
        t.flush().unwrap();
        std::thread::sleep(Duration::from_millis(400));
    }
    let (code, echo) = read_response(&mut t);
    assert_eq!(code, 200, "{}", gw.log());
    assert_eq!(echo.as_bytes(), body, "the echo");
}

#[test]
fn stalled_upload_gets_408_and_counts_as_a_client_error() {
    let s = setup();
    let backend = http_backend();
    let cfg = with_metrics(&s.http(backend, "[limits]\nbody_timeout_s = 1\n"));
    let gw = Gw::start(&s.dir, &cfg);
    let mut t = tls_connect(gw.addrs[0], client_config(&s.ca(), None), "localhost").unwrap();
    t.write_all(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 100\r\n\r\nonly ten b")
        .unwrap();
    t.flush().unwrap();
    let began = Instant::now();
    assert_eq!(status_of(&mut t), 408, "{}", gw.log());
    assert!(began.elapsed() < Duration::from_secs(5));
    assert_eq!(metric(&gw, "pivault_client_errors_total"), 1);
    assert_eq!(metric(&gw, "pivault_upstream_errors_total"), 0);
    assert_eq!(metric(&gw, "pivault_upstream_timeouts_total"), 0);
}

/// A backend that reads forever and never answers: only the request body
/// can end the exchange.
fn silent_backend() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().take(100).flatten() {
            std::thread::spawn(move || {
                let mut s = s;
                let _ = s.set_read_timeout(Some(Duration::from_secs(30)));
                let mut buf = [0; 4096];
                while matches!(s.read(&mut buf), Ok(n) if n > 0) {}
            });
        }
    });
    addr
}

#[test]
fn malformed_chunked_body_is_a_client_error_not_an_upstream_failure() {
    let s = setup();
    let cfg = with_metrics(&s.http(silent_backend(), ""));
    let gw = Gw::start(&s.dir, &cfg);
    let mut t = tls_connect(gw.addrs[0], client_config(&s.ca(), None), "localhost").unwrap();
    t.write_all(
        b"POST /up HTTP/1.1\r\nHost: localhost\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\nZZ-not-a-size\r\n",
    )
    .unwrap();
    t.flush().unwrap();
    assert!(
        eventually(10, || metric(&gw, "pivault_client_errors_total") == 1),
        "{}",
        gw.log()
    );
    assert_eq!(metric(&gw, "pivault_upstream_errors_total"), 0);
}

/// A TCP connection to `a` from `src` (any 127.0.0.0/8 address).
fn connect_from(src: &str, a: SocketAddr) -> std::io::Result<TcpStream> {
    // std has no bind-before-connect: a tokio socket does it.
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let s = rt.block_on(async {
        let s = tokio::net::TcpSocket::new_v4()?;
        s.bind(format!("{src}:0").parse().unwrap())?;
        tokio::time::timeout(Duration::from_secs(5), s.connect(a)).await?
    })?;
    let s = s.into_std()?;
    s.set_nonblocking(false)?;
    Ok(s)
}

/// A TLS connection from `src`; None when the gateway closed it or did
/// not finish the handshake within `wait`.
fn tls_from(a: SocketAddr, s: &Setup, src: &str, wait: Duration) -> Option<Tls> {
    let sock = connect_from(src, a).ok()?;
    sock.set_read_timeout(Some(wait)).unwrap();
    let cfg = client_config(&s.ca(), None);
    let conn = rustls::ClientConnection::new(cfg, "localhost".try_into().unwrap()).unwrap();
    let mut t = rustls::StreamOwned::new(conn, sock);
    while t.conn.is_handshaking() {
        t.conn.complete_io(&mut t.sock).ok()?;
    }
    t.sock
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    Some(t)
}

/// A GET / on `t` answers 200.
fn served(t: &mut Tls) -> bool {
    t.write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .is_ok()
        && t.flush().is_ok()
        && status_of(t) == 200
}

#[test]
fn one_client_address_cannot_hold_every_connection_slot() {
    let s = setup();
    let cfg = with_metrics(&s.http(http_backend(), "[limits]\nmax_connections_per_client = 4\n"));
    let gw = Gw::start(&s.dir, &cfg);
    let a = gw.addrs[0];
    let short = Duration::from_secs(2);
    let mut held: Vec<Tls> = (0..4)
        .map(|i| tls_from(a, &s, "127.0.0.1", short).unwrap_or_else(|| panic!("connection {i}")))
        .collect();
    assert!(
        tls_from(a, &s, "127.0.0.1", short).is_none(),
        "a fifth connection from the same address was served"
    );
    assert!(metric(&gw, "pivault_limited_total") >= 1);
    assert!(
        gw.wait_log("max_connections_per_client = 4", 5),
        "{}",
        gw.log()
    );
    // Another address is served meanwhile, and the first four still are.
    let mut other = tls_from(a, &s, "127.0.0.2", short).expect("another client address");
    assert!(served(&mut other));
    assert!(held.iter_mut().all(served));
    // One closed: the address may open one again.
    drop(held.pop());
    assert!(eventually(5, || tls_from(a, &s, "127.0.0.1", short)
        .is_some_and(|mut t| served(&mut t))));
}

#[test]
fn one_listeners_clients_cannot_take_another_listeners_slots() {
    let s = setup();
    let b = http_backend();
    let cfg = format!(
        "[limits]\nmax_connections = 100\nmax_connections_per_listener = 3\n{}{}",
        s.http(b, ""),
        s.http(b, "")
    );
    let gw = Gw::start(&s.dir, &cfg);
    let (a, other) = (gw.addrs[0], gw.addrs[1]);
    let short = Duration::from_secs(1);
    let mut held: Vec<Tls> = ["127.0.0.1", "127.0.0.2", "127.0.0.3"]
        .iter()
        .map(|src| tls_from(a, &s, src, short).expect("within the listener's cap"))
        .collect();
    // The fourth waits in the backlog: no handshake within the wait.
    assert!(tls_from(a, &s, "127.0.0.4", short).is_none());
    let mut t = tls_from(other, &s, "127.0.0.4", short).expect("the other listener has room");
    assert!(served(&mut t));
    drop(held.pop());
    assert!(eventually(5, || tls_from(a, &s, "127.0.0.5", short).is_some()));
    assert!(held.iter_mut().all(served));
}

#[test]
fn http2_connection_kept_open_by_pings_closes_once_it_has_no_stream() {
    let s = setup();
    let cfg = s.http(
        http_backend(),
        "[limits]\nh2_idle_timeout_s = 1\nidle_timeout_s = 60\n",
    );
    let gw = Gw::start(&s.dir, &cfg);
    let a = gw.addrs[0];
    let tls = client_config(&s.ca(), None);
    rt().block_on(async {
        // A stream open longer than h2_idle_timeout_s is not cut.
        let (tx, mut done, ping) = h2_connect(a, &tls, None).await;
        let mut tx = tx.ready().await.unwrap();
        let (resp, _) = tx.send_request(h2_req("GET", "/slow", None), true).unwrap();
        let resp = tokio::time::timeout(Duration::from_secs(10), resp)
            .await
            .expect("/slow answered")
            .unwrap();
        assert_eq!(h2_body(resp).await, (200, "slow".to_string()));
        // Then nothing but PINGs, every 200 ms: the connection still ends.
        let mut ping = ping.unwrap();
        let began = Instant::now();
        let closed = loop {
            if done.try_recv().is_ok() || began.elapsed() > Duration::from_secs(8) {
                break began.elapsed();
            }
            let pinged =
                tokio::time::timeout(Duration::from_millis(500), ping.ping(h2::Ping::opaque()))
                    .await;
            if !matches!(pinged, Ok(Ok(_))) {
                break began.elapsed();
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        };
        assert!(
            closed < Duration::from_secs(5),
            "the PINGing connection stayed open {closed:?}"
        );
        drop(tx);
    });
    drop(gw);
}

/// A backend whose `/huge` sends 64 MiB in 64 KiB writes.
fn huge_backend() -> SocketAddr {
    let l = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = l.local_addr().unwrap();
    std::thread::spawn(move || {
        for s in l.incoming().take(1000).flatten() {
            std::thread::spawn(move || {
                let mut r = BufReader::new(s.try_clone().unwrap());
                let mut w = s;
                while read_head(&mut r).is_some() {
                    let chunk = vec![b'x'; 64 * 1024];
                    let total = 1024 * chunk.len();
                    if write!(w, "HTTP/1.1 200 OK\r\ncontent-length: {total}\r\n\r\n").is_err() {
                        return;
                    }
                    for _ in 0..1024 {
                        if w.write_all(&chunk).is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    addr
}

/// The gateway's resident memory in KiB.
fn rss_kib(gw: &Gw) -> u64 {
    let st = std::fs::read_to_string(format!("/proc/{}/status", gw.child.id())).unwrap();
    st.lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse().ok())
        .unwrap()
}

#[test]
fn slow_readers_of_large_responses_hold_bounded_memory() {
    let s = setup();
    let gw = Gw::start_env(
        &s.dir,
        &s.http(huge_backend(), ""),
        &[("PIVAULT_PROXY_THREADS", "1")],
    );
    let a = gw.addrs[0];
    let cfg = client_config(&s.ca(), None);
    let start_slow = |n: usize| -> Vec<Tls> {
        (0..n)
            .map(|_| {
                let mut t = tls_connect(a, cfg.clone(), "localhost").unwrap();
                t.write_all(b"GET /huge HTTP/1.1\r\nHost: localhost\r\n\r\n")
                    .unwrap();
                t.flush().unwrap();
                // The head and a first bite; then the client reads no more.
                let mut first = [0u8; 16];
                t.read_exact(&mut first).unwrap();
                t
            })
            .collect()
    };
    // Warm up the allocator and the buffers' spare lists.
    let warm = start_slow(10);
    std::thread::sleep(Duration::from_secs(1));
    drop(warm);
    std::thread::sleep(Duration::from_millis(500));
    let before = rss_kib(&gw);
    const N: usize = 60;
    let slow = start_slow(N);
    // Time for every buffer on the way to fill.
    std::thread::sleep(Duration::from_secs(3));
    let after = rss_kib(&gw);
    let per = (after.saturating_sub(before)) as f64 / N as f64;
    eprintln!("slow readers: {before} KiB -> {after} KiB, {per:.0} KiB each");
    assert!(
        // ~330 KiB measured; it was ~1000 before reads were bounded.
        per < 600.0,
        "each slow reader holds {per:.0} KiB of the gateway's memory"
    );
    drop(slow);
}

#[test]
fn accept_backs_off_when_out_of_descriptors_and_recovers() {
    let s = setup();
    let gw = Gw::start_env(
        &s.dir,
        &s.http(http_backend(), ""),
        &[("PIVAULT_PROXY_THREADS", "1")],
    );
    let a = gw.addrs[0];
    let open_fds = || {
        std::fs::read_dir(format!("/proc/{}/fd", gw.child.id()))
            .unwrap()
            .count()
    };
    // Room for eight more descriptors: client sockets and upstream ones.
    let limit = open_fds() + 8;
    limit_files(&gw, limit);
    let short = Duration::from_millis(700);
    let held: Vec<Tls> = (0..16)
        .filter_map(|_| tls_from(a, &s, "127.0.0.1", short))
        .collect();
    assert!(
        held.len() < 16,
        "16 connections were served under a limit of {limit} descriptors"
    );
    assert!(gw.wait_log("accept failed", 5), "{}", gw.log());
    drop(held);
    // Descriptors free again: the gateway serves, it did not spin or die.
    assert!(
        eventually(10, || tls_from(a, &s, "127.0.0.1", short)
            .is_some_and(|mut t| served(&mut t))),
        "{}",
        gw.log()
    );
}

#[test]
fn upstream_connections_stay_within_the_listeners_cap_and_the_excess_gets_503() {
    let s = setup();
    let (backend, _, open) = gauged_backend(Duration::from_secs(30));
    let cfg = with_metrics(&s.http(
        backend,
        "[limits]\nmax_upstream_connections = 2\nupstream_timeout_s = 1\nbody_timeout_s = 30\n",
    ));
    let gw = Gw::start(&s.dir, &cfg);
    let a = gw.addrs[0];
    let tls = client_config(&s.ca(), None);
    // Two uploads that announce a body and hold back its last byte: each
    // holds an upstream connection.
    let mut uploads: Vec<Tls> = (0..2)
        .map(|_| {
            let mut t = tls_connect(a, tls.clone(), "localhost").unwrap();
            t.write_all(b"POST /echo HTTP/1.1\r\nHost: localhost\r\nContent-Length: 4\r\n\r\nabc")
                .unwrap();
            t.flush().unwrap();
            t
        })
        .collect();
    assert!(eventually(5, || open
        .load(std::sync::atomic::Ordering::SeqCst)
        == 2));
    let mut third = tls_connect(a, tls.clone(), "localhost").unwrap();
    third
        .write_all(b"GET / HTTP/1.1\r\nHost: localhost\r\n\r\n")
        .unwrap();
    third.flush().unwrap();
    assert_eq!(read_response(&mut third).0, 503, "{}", gw.log());
    assert_eq!(open.load(std::sync::atomic::Ordering::SeqCst), 2);
    assert!(metric(&gw, "pivault_limited_total") >= 1);
    assert!(
        gw.log().contains("max_upstream_connections"),
        "{}",
        gw.log()
    );
    // One upload ends: its connection serves the next request.
    uploads[0].write_all(b"d").unwrap();
    uploads[0].flush().unwrap();
    assert_eq!(read_response(&mut uploads[0]), (200, "abcd".to_string()));
    let mut fourth = tls_connect(a, tls, "localhost").unwrap();
    assert!(served(&mut fourth));
    // The backend sees a pooled connection's close after the gateway
    // has let it go (its count may lag by one under load).
    assert!(eventually(5, || open
        .load(std::sync::atomic::Ordering::SeqCst)
        <= 2));
}
