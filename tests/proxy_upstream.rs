//! `http` mode's upstream connections, seen from a backend that counts the
//! connections it accepts: a keep-alive client's requests share one
//! upstream connection, the next client reuses it, a connection the
//! upstream closed is replaced without an error, and HTTP/2 requests in
//! parallel each get an answer; `upstream_idle` bounds the idle
//! connections kept open to the app, and 0 keeps none.

mod proxy_common;

use proxy_common::*;
use std::sync::atomic::Ordering;
use std::time::Duration;

const HELLO: &str = "hello from the legacy app\n";

/// One worker thread, so every client draws from the same idle stack.
const ONE_WORKER: &[(&str, &str)] = &[("PIVAULT_PROXY_THREADS", "1")];

#[test]
fn keep_alive_requests_share_one_upstream_connection_and_the_next_client_reuses_it() {
    let s = setup();
    let (backend, accepted) = counting_backend(Duration::from_secs(30));
    let gw = Gw::start_env(&s.dir, &s.http(backend, ""), ONE_WORKER);
    let a = gw.addrs[0];
    // One curl, five URLs: curl sends them on one TLS connection.
    let url = format!("https://localhost:{}/", a.port());
    let urls = vec![url.as_str(); 4];
    let (rc, out, err) = s.curl(a, "/", &urls);
    assert_eq!(rc, 0, "{err}");
    assert_eq!(out, HELLO.repeat(5));
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "{}", gw.log());
    // A new client connection takes the idle upstream connection.
    let (rc, out, err) = s.curl(a, "/", &[]);
    assert_eq!((rc, out.as_str()), (0, HELLO), "{err}");
    assert_eq!(accepted.load(Ordering::SeqCst), 1, "{}", gw.log());
}

#[test]
fn an_upstream_connection_closed_by_the_upstream_is_replaced_without_an_error() {
    let s = setup();
    let (backend, accepted) = counting_backend(Duration::from_millis(300));
    let cfg = format!(
        "[metrics]\nlisten = \"127.0.0.1:0\"\n{}",
        s.http(backend, "")
    );
    let gw = Gw::start_env(&s.dir, &cfg, ONE_WORKER);
    let a = gw.addrs[0];
    for round in 1..=3 {
        let (rc, out, err) = s.curl(a, "/", &[]);
        assert_eq!((rc, out.as_str()), (0, HELLO), "round {round}: {err}");
        // The backend drops the idle connection after 300 ms.
        std::thread::sleep(Duration::from_millis(800));
    }
    assert_eq!(accepted.load(Ordering::SeqCst), 3, "{}", gw.log());
    let m = metrics(gw.metrics.unwrap());
    assert!(
        m.lines()
            .filter(|l| l.starts_with("pivault_upstream_errors_total"))
            .all(|l| l.ends_with(" 0")),
        "{m}"
    );
}

#[test]
fn parallel_http2_requests_each_get_their_answer() {
    let s = setup();
    let (backend, accepted) = counting_backend(Duration::from_secs(30));
    let gw = Gw::start_env(&s.dir, &s.http(backend, ""), ONE_WORKER);
    let a = gw.addrs[0];
    let urls: Vec<String> = (0..8)
        .map(|i| format!("https://localhost:{}/echo?{i}", a.port()))
        .collect();
    let mut args = vec![
        "--http2",
        "--parallel",
        "--parallel-immediate",
        "-w",
        "%{http_version} %{http_code}\n",
        "-d",
        "body",
    ];
    args.extend(urls.iter().skip(1).map(String::as_str));
    let (rc, out, err) = s.curl(a, "/echo?0", &args);
    assert_eq!(rc, 0, "{err}");
    assert_eq!(out.matches("2 200\n").count(), 8, "{out}");
    assert_eq!(out.matches("body").count(), 8, "{out}");
    let n = accepted.load(Ordering::SeqCst);
    assert!((1..=8).contains(&n), "{n} upstream connections");
}

#[test]
fn upstream_idle_zero_opens_a_connection_per_request() {
    let s = setup();
    let (backend, accepted) = counting_backend(Duration::from_secs(30));
    let cfg = format!("[limits]\nupstream_idle = 0\n{}", s.http(backend, ""));
    let gw = Gw::start_env(&s.dir, &cfg, ONE_WORKER);
    let a = gw.addrs[0];
    let url = format!("https://localhost:{}/", a.port());
    let (rc, out, err) = s.curl(a, "/", &[url.as_str(), url.as_str()]);
    assert_eq!(rc, 0, "{err}");
    assert_eq!(out, HELLO.repeat(3));
    assert_eq!(accepted.load(Ordering::SeqCst), 3, "{}", gw.log());
}

#[test]
fn no_more_than_upstream_idle_connections_stay_open_to_the_app() {
    let s = setup();
    let (backend, accepted, open) = gauged_backend(Duration::from_secs(30));
    let cfg = format!("[limits]\nupstream_idle = 1\n{}", s.http(backend, ""));
    let gw = Gw::start_env(&s.dir, &cfg, ONE_WORKER);
    let a = gw.addrs[0];
    // Four slow requests at once need four upstream connections...
    let urls: Vec<String> = (0..3)
        .map(|i| format!("https://localhost:{}/slow?{i}", a.port()))
        .collect();
    let mut args = vec!["--http2", "--parallel", "--parallel-immediate"];
    args.extend(urls.iter().map(String::as_str));
    let (rc, out, err) = s.curl(a, "/slow", &args);
    assert_eq!((rc, out.as_str()), (0, "slow".repeat(4).as_str()), "{err}");
    assert_eq!(accepted.load(Ordering::SeqCst), 4, "{}", gw.log());
    // ...and once they are answered only one is kept.
    let deadline = std::time::Instant::now() + Duration::from_secs(5);
    while open.load(Ordering::SeqCst) > 1 {
        assert!(
            std::time::Instant::now() < deadline,
            "{} upstream connections still open",
            open.load(Ordering::SeqCst)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert_eq!(open.load(Ordering::SeqCst), 1);
}
