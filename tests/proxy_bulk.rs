//! Bulk transfers through the gateway are byte-exact in both directions:
//! megabytes of patterned data through a `tcp` tunnel to an echoing
//! backend, and a large request body echoed back through `http` mode. These
//! go through the read-ahead that bulk TLS reads use.

mod proxy_common;

use proxy_common::*;
use std::io::{Read, Write};

/// Bytes that differ at every offset modulo a prime, so a dropped, doubled
/// or reordered chunk shows.
fn pattern(n: usize) -> Vec<u8> {
    (0..n).map(|i| (i % 251) as u8 ^ (i / 251) as u8).collect()
}

#[test]
fn a_tcp_tunnel_carries_megabytes_both_ways_unchanged() {
    let s = setup();
    let gw = Gw::start(&s.dir, &s.tcp(eof_backend(true), ""));
    let data = pattern(6 << 20);
    let mut t = tls_connect(gw.addrs[0], client_config(&s.ca(), None), "localhost").unwrap();
    t.sock
        .set_read_timeout(Some(std::time::Duration::from_secs(30)))
        .unwrap();
    t.write_all(&data).unwrap();
    finish_writing(&mut t);
    let mut back = Vec::new();
    let _ = t.read_to_end(&mut back);
    assert_eq!(back.len(), data.len());
    assert!(back == data, "the echoed bytes differ");
}

#[test]
fn an_http_request_body_of_megabytes_is_streamed_unchanged() {
    let s = setup();
    let gw = Gw::start(&s.dir, &s.http(http_backend(), ""));
    let body = s.dir.join("body.bin");
    let data = pattern(4 << 20);
    std::fs::write(&body, &data).unwrap();
    let out = s.dir.join("out.bin");
    for v in ["--http1.1", "--http2"] {
        let arg = format!("@{}", body.display());
        let (rc, code, err) = s.curl(
            gw.addrs[0],
            "/echo",
            &[
                v,
                "--data-binary",
                &arg,
                "-o",
                out.to_str().unwrap(),
                "-w",
                "%{http_code}",
            ],
        );
        assert_eq!((rc, code.as_str()), (0, "200"), "{v}: {err}");
        assert!(std::fs::read(&out).unwrap() == data, "{v}: body differs");
    }
}
