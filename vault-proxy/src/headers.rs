//! Header rules of `http` mode: which headers are hop-by-hop (removed both
//! ways), which forwarding and identity headers a client may not set,
//! the identity headers the gateway sets itself, whether a request asks
//! for an upgrade, and how big a header is.
//!
//! These run on every request and every response, so they look at each
//! header name once and hash only what they remove.
//!
//! Identity: apps behind other terminators read the client certificate
//! from headers such as `X-Forwarded-Client-Cert` or `X-SSL-Client-S-DN`,
//! and routing from `X-Original-URL` or `X-Forwarded-Prefix`. A client
//! could set them: every request loses them (the list is [`STRIPPED`] and
//! [`family`]), and the gateway sends its own, `<base>-Subject`, `-SAN`
//! and `-SPKI` (`base` is the listener's `client_identity_header`,
//! default `X-Pivault-Client`), only when a verified certificate was
//! presented. Those are the only identity the upstream may trust. The
//! same holds for the signed-in user of `[listener.oidc]`:
//! `X-Forwarded-User`, `-Email`, `-Groups` and `Remote-User` (and
//! oauth2-proxy's `X-Auth-Request-*`) are removed from every request, on
//! every listener, and set by the gateway only from a valid session.

use crate::access::PeerCert;
use crate::config::IdentityHeader;
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::Request;

pub(crate) const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
pub(crate) const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
pub(crate) const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
/// The signed-in user's headers (`[listener.oidc]`): only the gateway
/// sets them; a client's are removed on every listener.
pub(crate) const X_FORWARDED_USER: HeaderName = HeaderName::from_static("x-forwarded-user");
pub(crate) const X_FORWARDED_EMAIL: HeaderName = HeaderName::from_static("x-forwarded-email");
pub(crate) const X_FORWARDED_GROUPS: HeaderName = HeaderName::from_static("x-forwarded-groups");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
/// The default base of the identity headers (`client_identity_header`).
pub const DEFAULT_IDENTITY_HEADER: &str = "X-Pivault-Client";
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// The headers removed on the way through: hop-by-hop ones (RFC 9110
/// 7.6.1 and the common non-standard ones) both ways, then the forwarding
/// headers a client may not set (the proxy writes its own), then headers
/// other terminators use for the client's certificate or the original
/// URL, which only a terminator may set. Bit `i` of a mask is
/// `STRIPPED[i]`; [`bit`] maps a name to its bit.
const STRIPPED: [HeaderName; 31] = [
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
    HeaderName::from_static("x-forwarded-client-cert"),
    HeaderName::from_static("x-forwarded-port"),
    HeaderName::from_static("x-forwarded-prefix"),
    HeaderName::from_static("x-forwarded-ssl"),
    HeaderName::from_static("x-forwarded-scheme"),
    HeaderName::from_static("x-forwarded-uri"),
    HeaderName::from_static("x-original-url"),
    HeaderName::from_static("x-original-uri"),
    HeaderName::from_static("x-rewrite-url"),
    HeaderName::from_static("x-client-cert"),
    HeaderName::from_static("x-client-verify"),
    HeaderName::from_static("x-client-dn"),
    HeaderName::from_static("ssl-client-cert"),
    X_FORWARDED_USER,
    X_FORWARDED_EMAIL,
    X_FORWARDED_GROUPS,
    HeaderName::from_static("remote-user"),
];

/// The hop-by-hop bits of [`STRIPPED`].
const HOP_BY_HOP: u32 = (1 << 9) - 1;
/// The bit of every name of [`family`].
const FAMILY: u32 = 1 << 31;
/// Everything a request loses.
const REQUEST: u32 = ((1 << 31) - 1) | FAMILY;

/// The bit of a (lower-case) header name in [`STRIPPED`], or 0. A string
/// match compiles to a length switch and a compare, cheaper than comparing
/// the name with each of them.
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
        "x-forwarded-client-cert" => 1 << 14,
        "x-forwarded-port" => 1 << 15,
        "x-forwarded-prefix" => 1 << 16,
        "x-forwarded-ssl" => 1 << 17,
        "x-forwarded-scheme" => 1 << 18,
        "x-forwarded-uri" => 1 << 19,
        "x-original-url" => 1 << 20,
        "x-original-uri" => 1 << 21,
        "x-rewrite-url" => 1 << 22,
        "x-client-cert" => 1 << 23,
        "x-client-verify" => 1 << 24,
        "x-client-dn" => 1 << 25,
        "ssl-client-cert" => 1 << 26,
        "x-forwarded-user" => 1 << 27,
        "x-forwarded-email" => 1 << 28,
        "x-forwarded-groups" => 1 << 29,
        "remote-user" => 1 << 30,
        _ => 0,
    }
}

/// Name prefixes whose whole family is stripped from requests: the
/// certificate headers of nginx, Apache, HAProxy and F5 configurations
/// (`X-SSL-Client-S-DN`, `X-SSL-Cert`, `X-Client-Cert-Chain`,
/// `X-Client-S-DN`, `SSL-Client-Verify`...), and oauth2-proxy's user
/// headers (`X-Auth-Request-User`, `-Email`...). Not all of `X-Client-*`:
/// `X-Client-Id` or `X-Client-Version` are ordinary app data.
const FAMILIES: [&str; 8] = [
    "x-ssl-",
    "x-client-cert-",
    "x-client-s-",
    "x-client-i-",
    "x-client-verify-",
    "x-tls-client-",
    "ssl-client-",
    "x-auth-request-",
];

/// [`FAMILY`] when `name` (lower-case) is in one of [`FAMILIES`] or starts
/// with `own`, the listener's own identity base (lower-case), or when it
/// is such a name, or a stripped one, spelt with `_` for `-` (CGI, WSGI,
/// PHP and Rack read `X_SSL_CLIENT_S_DN` as `X-SSL-Client-S-DN`); else 0.
/// Most names fail the first byte compares.
fn family(name: &str, own: &str) -> u32 {
    let hit = ((name.starts_with("x-") || name.starts_with("ssl-"))
        && FAMILIES.iter().any(|f| name.starts_with(f)))
        || (!own.is_empty() && name.starts_with(own));
    if hit {
        return FAMILY;
    }
    if name.contains('_') {
        let dashed = name.replace('_', "-");
        if bit(&dashed) & REQUEST != 0 || family(&dashed, own) != 0 {
            return FAMILY;
        }
    }
    0
}

/// Removes a request's hop-by-hop headers (see [`strip_response`]), any
/// forwarding headers the client sent (`X-Forwarded-For`, `-Proto`,
/// `-Host`, `Forwarded`, `X-Real-IP`: replaced by ours) and every
/// identity or original-URL header ([`STRIPPED`], [`FAMILIES`], and any
/// name starting with `own`, the lower-case identity base).
pub(crate) fn strip_request(h: &mut HeaderMap, own: &str) {
    strip(h, REQUEST, own);
}

/// Removes `Connection`, the headers it names and the fixed hop-by-hop set
/// (`Keep-Alive`, `Proxy-Connection`, `Proxy-Authenticate`,
/// `Proxy-Authorization`, `TE`, `Trailer`, `Transfer-Encoding`,
/// `Upgrade`).
pub(crate) fn strip_response(h: &mut HeaderMap) {
    strip(h, HOP_BY_HOP, "");
}

/// One pass over the names notes which of `mask`'s are present; only those
/// are removed (a removal hashes its name). The usual message carries none,
/// or only `Connection: keep-alive`, whose token names a header in the set,
/// so nothing is allocated for it.
fn strip(h: &mut HeaderMap, mask: u32, own: &str) {
    let fam = mask & FAMILY != 0;
    let present = h.keys().fold(0, |p, k| {
        let b = bit(k.as_str());
        p | if b == 0 && fam {
            family(k.as_str(), own)
        } else {
            b
        }
    }) & mask;
    if present == 0 {
        return;
    }
    let mut named = Vec::new();
    if present & 1 != 0 {
        // Named by `Connection`: those not removed anyway. "close" names
        // no header; "keep-alive", the usual token, is in every mask.
        // `Host` is end-to-end whatever a client says: removing it would
        // send the upstream a request without one.
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
                    if n != header::HOST && bit(n.as_str()) & mask == 0 {
                        named.push(n);
                    }
                }
            }
        }
    }
    if present & FAMILY != 0 {
        named.extend(
            h.keys()
                .filter(|k| bit(k.as_str()) == 0 && family(k.as_str(), own) != 0)
                .cloned(),
        );
    }
    for n in &named {
        h.remove(n);
    }
    for (i, n) in STRIPPED.iter().enumerate() {
        if present & (1 << i) != 0 {
            h.remove(n);
        }
    }
}

/// A listener's identity header names (`client_identity_header`).
pub(crate) struct IdentityNames {
    /// The base, lower-case: names starting with it are stripped.
    pub(crate) base: String,
    subject: HeaderName,
    san: HeaderName,
    spki: HeaderName,
}

impl IdentityNames {
    /// The names the listener's configuration made.
    pub(crate) fn new(h: &IdentityHeader) -> Self {
        let [subject, san, spki] = h.names().clone();
        IdentityNames {
            base: h.base().to_ascii_lowercase(),
            subject,
            san,
            spki,
        }
    }

    /// The identity headers of a verified client certificate: its subject
    /// and SANs (already escaped, see [`crate::access::PeerCert`]) and
    /// `sha256:<hex>` of its SPKI. Built once per connection.
    pub(crate) fn headers(&self, c: &PeerCert) -> Vec<(HeaderName, HeaderValue)> {
        // The values are visible ASCII by construction; one that were not
        // would be left out rather than sent half.
        let v = |s: &str| HeaderValue::from_str(s).ok();
        [
            (self.subject.clone(), v(&c.subject)),
            (self.san.clone(), v(&c.sans)),
            (self.spki.clone(), v(&c.spki_sha256_hex())),
        ]
        .into_iter()
        .filter_map(|(n, v)| Some((n, v?)))
        .filter(|(_, v)| !v.is_empty())
        .collect()
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
    fn user_headers_only_the_gateway_may_set_are_stripped() {
        let mut h = map(&[
            ("x-forwarded-user", "mallory"),
            ("X-Forwarded-Email", "m@evil.example"),
            ("x-forwarded-groups", "admins"),
            ("remote-user", "mallory"),
            ("x-auth-request-user", "mallory"),
            ("x_forwarded_user", "mallory"),
            ("x-request-id", "7"),
        ]);
        strip_request(&mut h, "x-pivault-client");
        assert_eq!(names(&h), ["x-request-id"]);
    }

    #[test]
    fn identity_names_spelt_with_underscores_are_stripped() {
        let mut h = HeaderMap::new();
        for n in [
            "x_pivault_client_subject",
            "x_ssl_client_s_dn",
            "x_forwarded_for",
            "x_forwarded_client_cert",
            "x_request_id",
        ] {
            h.insert(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_static("forged"),
            );
        }
        strip_request(&mut h, "x-pivault-client");
        let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["x_request_id"], "only the unrelated one is kept");
    }

    #[test]
    fn an_identity_base_without_x_is_stripped_too() {
        let mut h = HeaderMap::new();
        h.insert(
            HeaderName::from_static("pivault-client-subject"),
            HeaderValue::from_static("CN=admin"),
        );
        h.insert(
            HeaderName::from_static("pivault-client-san"),
            HeaderValue::from_static("DNS:x"),
        );
        h.insert(
            HeaderName::from_static("accept"),
            HeaderValue::from_static("*/*"),
        );
        strip_request(&mut h, "pivault-client");
        let left: Vec<&str> = h.keys().map(|k| k.as_str()).collect();
        assert_eq!(left, ["accept"]);
    }

    #[test]
    fn every_stripped_name_has_its_own_bit() {
        for (i, n) in STRIPPED.iter().enumerate() {
            assert_eq!(bit(n.as_str()), 1 << i, "{n}");
        }
        assert_eq!(bit("content-type"), 0);
        assert_eq!(HOP_BY_HOP, 0x1ff);
        assert_eq!(REQUEST & !FAMILY, (1 << STRIPPED.len()) - 1);
    }

    #[test]
    fn forged_identity_and_original_url_headers_are_stripped_from_requests() {
        let mut h = map(&[
            ("x-forwarded-client-cert", "By=x;Subject=\"CN=admin\""),
            ("x-ssl-client-s-dn", "CN=admin"),
            ("x-ssl-client-verify", "SUCCESS"),
            ("x-client-verify", "SUCCESS"),
            ("x-client-cert", "x"),
            ("x-client-s-dn", "CN=admin"),
            ("ssl-client-cert", "x"),
            ("x-forwarded-port", "443"),
            ("x-forwarded-prefix", "/admin"),
            ("x-original-url", "/admin"),
            ("x-rewrite-url", "/admin"),
            ("x-pivault-client-subject", "CN=admin"),
            ("x-pivault-client-spki", "sha256:00"),
            ("x-gw-id-subject", "CN=admin"),
            ("x-client-id", "app-7"),
            ("x-sslx", "kept"),
            ("accept", "*/*"),
        ]);
        strip_request(&mut h, "x-gw-id");
        assert_eq!(
            names(&h),
            [
                "accept",
                "x-client-id",
                "x-pivault-client-spki",
                "x-pivault-client-subject",
                "x-sslx"
            ]
        );
        strip_request(&mut h, "x-pivault-client");
        assert_eq!(names(&h), ["accept", "x-client-id", "x-sslx"]);
    }

    #[test]
    fn connection_cannot_name_host_away() {
        let mut h = map(&[("connection", "host, x-a"), ("host", "h"), ("x-a", "1")]);
        strip_request(&mut h, "x-pivault-client");
        assert_eq!(names(&h), ["host"]);
    }

    #[test]
    fn identity_names_follow_the_configured_base() {
        let n = IdentityNames::new(&IdentityHeader::parse("X-Gw").unwrap());
        let mut c = PeerCert {
            subject: "CN=a\\,b".into(),
            sans: "DNS:a".into(),
            ..Default::default()
        };
        c.spki_sha256[0] = 0xab;
        let h = n.headers(&c);
        assert_eq!(h[0].0, "x-gw-subject");
        assert_eq!(h[0].1, "CN=a\\,b");
        assert_eq!(h[1].0, "x-gw-san");
        assert_eq!(h[2].0, "x-gw-spki");
        assert!(h[2].1.to_str().unwrap().starts_with("sha256:ab00"));
        c.sans.clear();
        assert_eq!(n.headers(&c).len(), 2, "no empty SAN header");
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
        strip_request(&mut h, "x-pivault-client");
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
        strip_request(&mut h, "x-pivault-client");
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
