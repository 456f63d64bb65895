//! HTTP request heads through the gateway's own checks (method, Host,
//! dot segments, header names), parsed with httparse as hyper does. Dot
//! segments resolved once have none left.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let mut headers = [httparse::EMPTY_HEADER; 32];
    let mut req = httparse::Request::new(&mut headers);
    let Ok(httparse::Status::Complete(_)) = req.parse(data) else {
        return;
    };
    let (Some(method), Some(path)) = (req.method, req.path) else {
        return;
    };
    if let Some(Some(p)) = vault_proxy::fuzzing::normalise(path) {
        assert_eq!(
            vault_proxy::fuzzing::normalise(&p),
            Some(None),
            "{path:?} -> {p:?}"
        );
    }
    let mut b =
        http::Request::builder()
            .method(method)
            .uri(path)
            .version(if req.version == Some(0) {
                http::Version::HTTP_10
            } else {
                http::Version::HTTP_11
            });
    for h in req.headers.iter() {
        b = b.header(h.name, h.value);
    }
    if let Ok(r) = b.body(()) {
        let _ = vault_proxy::fuzzing::check(&r);
    }
});
