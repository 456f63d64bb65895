//! Header rules of `http` mode that do not depend on a connection: which
//! headers are hop-by-hop (removed both ways), which forwarding headers a
//! client may not set, whether a request asks for an upgrade, and how big
//! a header is.
//!
//! These run on every request and every response, so they look at each
//! header name once and hash only what they remove.

use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::Request;

pub(crate) const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub(crate) const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub(crate) const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// The headers removed on the way through: hop-by-hop ones (RFC 9110
/// 7.6.1 and the common non-standard ones) both ways, then the forwarding
/// headers a client may not set (the proxy writes its own). Bit `i` of a
/// mask is `STRIPPED[i]`; [`bit`] maps a name to its bit.
const STRIPPED: [HeaderName; 14] = [
    header::CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
    X_FORWARDED_FOR,
    X_FORWARDED_PROTO,
    X_FORWARDED_HOST,
    header::FORWARDED,
    X_REAL_IP,
];

/// The hop-by-hop bits of [`STRIPPED`].
const HOP_BY_HOP: u32 = (1 << 9) - 1;
/// The hop-by-hop and forwarding bits.
const HOP_AND_FORWARDING: u32 = (1 << 14) - 1;

/// The bit of a (lower-case) header name in [`STRIPPED`], or 0. A string
/// match compiles to a length switch and a compare, cheaper than comparing
/// the name with each of the fourteen.
fn bit(name: &str) -> u32 {
    match name {
        "connection" => 1 << 0,
        "keep-alive" => 1 << 1,
        "proxy-connection" => 1 << 2,
        "proxy-authenticate" => 1 << 3,
        "proxy-authorization" => 1 << 4,
        "te" => 1 << 5,
        "trailer" => 1 << 6,
        "transfer-encoding" => 1 << 7,
        "upgrade" => 1 << 8,
        "x-forwarded-for" => 1 << 9,
        "x-forwarded-proto" => 1 << 10,
        "x-forwarded-host" => 1 << 11,
        "forwarded" => 1 << 12,
        "x-real-ip" => 1 << 13,
        _ => 0,
    }
}

/// Removes a request's hop-by-hop headers (see [`strip_response`]) and
/// any forwarding headers the client sent (`X-Forwarded-For`, `-Proto`,
/// `-Host`, `Forwarded`, `X-Real-IP`): never trusted, replaced by ours.
pub(crate) fn strip_request(h: &mut HeaderMap) {
    strip(h, HOP_AND_FORWARDING);
}

/// Removes `Connection`, the headers it names and the fixed hop-by-hop set
/// (`Keep-Alive`, `Proxy-Connection`, `Proxy-Authenticate`,
/// `Proxy-Authorization`, `TE`, `Trailer`, `Transfer-Encoding`,
/// `Upgrade`).
pub(crate) fn strip_response(h: &mut HeaderMap) {
    strip(h, HOP_BY_HOP);
}

/// One pass over the names notes which of `mask`'s are present; only those
/// are removed (a removal hashes its name). The usual message carries none,
/// or only `Connection: keep-alive`, whose token names a header in the set,
/// so nothing is allocated for it.
fn strip(h: &mut HeaderMap, mask: u32) {
    let present = h.keys().fold(0, |p, k| p | bit(k.as_str())) & mask;
    if present == 0 {
        return;
    }
    if present & 1 != 0 {
        // Named by `Connection`: those not removed anyway. "close" names
        // no header; "keep-alive", the usual token, is in every mask.
        let mut named = Vec::new();
        for v in h.get_all(header::CONNECTION) {
            for t in v.as_bytes().split(|&b| b == b',') {
                let t = t.trim_ascii();
                if t.is_empty()
                    || t.eq_ignore_ascii_case(b"keep-alive")
                    || t.eq_ignore_ascii_case(b"close")
                {
                    continue;
                }
                if let Ok(n) = HeaderName::from_bytes(t) {
                    if bit(n.as_str()) & mask == 0 {
                        named.push(n);
                    }
                }
            }
        }
        for n in &named {
            h.remove(n);
        }
    }
    for (i, n) in STRIPPED.iter().enumerate() {
        if present & (1 << i) != 0 {
            h.remove(n);
        }
    }
}

/// The `Upgrade` value of an HTTP/1.1 request whose `Connection` asks for
/// an upgrade (a WebSocket handshake).
pub(crate) fn is_upgrade<B>(req: &Request<B>) -> Option<HeaderValue> {
    if req.version() != hyper::Version::HTTP_11 {
        return None;
    }
    let up = req.headers().get(header::UPGRADE)?;
    let conn_has_upgrade = req
        .headers()
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
        });
    conn_has_upgrade.then(|| up.clone())
}

/// The size of a header block as sent: names, values, ": " and CRLF.
pub(crate) fn header_bytes(h: &HeaderMap) -> usize {
    h.iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.append(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        h
    }

    fn names(h: &HeaderMap) -> Vec<&str> {
        let mut v: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        v.sort();
        v
    }

    #[test]
    fn every_stripped_name_has_its_own_bit() {
        for (i, n) in STRIPPED.iter().enumerate() {
            assert_eq!(bit(n.as_str()), 1 << i, "{n}");
        }
        assert_eq!(bit("content-type"), 0);
        assert_eq!(HOP_BY_HOP, 0x1ff);
        assert_eq!(HOP_AND_FORWARDING, (1 << STRIPPED.len()) - 1);
    }

    #[test]
    fn forwarding_headers_survive_in_responses() {
        let mut h = map(&[("x-forwarded-for", "1.2.3.4"), ("connection", "close")]);
        strip_response(&mut h);
        assert_eq!(names(&h), ["x-forwarded-for"]);
    }

    #[test]
    fn end_to_end_headers_are_untouched() {
        let mut h = map(&[("host", "a"), ("accept", "*/*"), ("x-app", "1")]);
        strip_request(&mut h);
        assert_eq!(names(&h), ["accept", "host", "x-app"]);
    }

    #[test]
    fn fixed_set_and_also_are_removed() {
        let mut h = map(&[
            ("connection", "keep-alive"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("transfer-encoding", "chunked"),
            ("upgrade", "websocket"),
            ("proxy-authorization", "Basic x"),
            ("x-forwarded-for", "6.6.6.6"),
            ("x-real-ip", "6.6.6.6"),
            ("forwarded", "for=6.6.6.6"),
            ("content-type", "text/plain"),
        ]);
        strip_request(&mut h);
        assert_eq!(names(&h), ["content-type"]);
    }

    #[test]
    fn headers_named_by_connection_are_removed_in_any_case() {
        let mut h = map(&[
            ("connection", "close, X-Secret"),
            ("connection", " x-other ,"),
            ("x-secret", "s"),
            ("x-other", "o"),
            ("x-kept", "k"),
        ]);
        strip_response(&mut h);
        assert_eq!(names(&h), ["x-kept"]);
    }

    #[test]
    fn repeated_values_of_a_hop_header_all_go() {
        let mut h = map(&[("te", "a"), ("te", "b"), ("x", "1")]);
        strip_response(&mut h);
        assert_eq!(names(&h), ["x"]);
    }

    #[test]
    fn connection_naming_a_header_that_is_absent_or_invalid_is_harmless() {
        let mut h = map(&[("connection", "x-absent, bad name, close"), ("a", "1")]);
        strip_response(&mut h);
        assert_eq!(names(&h), ["a"]);
    }

    #[test]
    fn upgrade_needs_both_headers_on_http11() {
        let req = |conn: Option<&str>, up: Option<&str>, v| {
            let mut b = Request::builder().version(v);
            if let Some(c) = conn {
                b = b.header("connection", c);
            }
            if let Some(u) = up {
                b = b.header("upgrade", u);
            }
            b.body(()).unwrap()
        };
        let v11 = hyper::Version::HTTP_11;
        assert_eq!(
            is_upgrade(&req(Some("keep-alive, Upgrade"), Some("websocket"), v11)).unwrap(),
            "websocket"
        );
        assert!(is_upgrade(&req(Some("keep-alive"), Some("websocket"), v11)).is_none());
        assert!(is_upgrade(&req(Some("upgrade"), None, v11)).is_none());
        assert!(is_upgrade(&req(
            Some("upgrade"),
            Some("websocket"),
            hyper::Version::HTTP_10
        ))
        .is_none());
    }

    #[test]
    fn header_bytes_counts_names_values_and_separators() {
        let h = map(&[("ab", "cde"), ("f", "")]);
        assert_eq!(header_bytes(&h), (2 + 3 + 4) + (1 + 4));
    }
}
