//! Requests `http` mode refuses before anything reaches the upstream, and
//! the request path it forwards. Each rule closes a way for a client to
//! make the upstream see something other than what the gateway checked:
//!
//! - `CONNECT` (405): the gateway is no forward proxy; forwarded, it went
//!   out as `CONNECT /`.
//! - HTTP/1.1 without `Host`, or any request with two (400, RFC 9112
//!   section 3.2): which one the app reads is the app's guess.
//! - dot segments, also percent-encoded (`/../`, `/%2e%2e/`): resolved
//!   here, before the path is joined under the upstream's prefix, so
//!   `/app/../secret` cannot leave `/app`; one that climbs above the root,
//!   or a segment that decodes to `..` beside a `/` or `\` (`..%2f`), is
//!   refused (400).
//!
//! Cheap on the usual request: a path without `.` is not looked at twice,
//! and a path is copied only when it had something to resolve.

use hyper::header;
use hyper::http::uri::{self, PathAndQuery};
use hyper::{Method, Request, StatusCode, Uri};
use percent_encoding::percent_decode_str;

/// A refused request: its status and the body sent back.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Refused {
    pub(crate) status: StatusCode,
    pub(crate) msg: &'static str,
}

const fn refused(status: StatusCode, msg: &'static str) -> Refused {
    Refused { status, msg }
}

/// The methods a 405 names in `Allow`: everything but `CONNECT` is
/// forwarded, and these are the ones a client can expect.
pub(crate) const ALLOW: &str = "GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS";

/// Checks `req` against the rules of the module doc; on success, the
/// request target with its dot segments resolved when it had any.
pub(crate) fn check<B>(req: &Request<B>) -> Result<Option<Uri>, Refused> {
    if req.method() == Method::CONNECT {
        return Err(refused(
            StatusCode::METHOD_NOT_ALLOWED,
            "405 method not allowed: CONNECT (this gateway is not a forward proxy)\n",
        ));
    }
    let mut hosts = req.headers().get_all(header::HOST).iter();
    let first = hosts.next();
    if hosts.next().is_some() {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "400 bad request: more than one Host header\n",
        ));
    }
    if first.is_none() && req.version() == hyper::Version::HTTP_11 {
        return Err(refused(
            StatusCode::BAD_REQUEST,
            "400 bad request: HTTP/1.1 request without Host\n",
        ));
    }
    let Some(pq) = req.uri().path_and_query() else {
        return Ok(None);
    };
    let Some(path) = normalise(pq.path())? else {
        return Ok(None);
    };
    let pq = match pq.query() {
        Some(q) => format!("{path}?{q}"),
        None => path,
    };
    let mut parts = uri::Parts::default();
    parts.path_and_query =
        Some(PathAndQuery::from_maybe_shared(bytes::Bytes::from(pq)).map_err(|_| BAD_PATH)?);
    Uri::from_parts(parts).map(Some).map_err(|_| BAD_PATH)
}

const BAD_PATH: Refused = refused(
    StatusCode::BAD_REQUEST,
    "400 bad request: the path climbs above the root or hides a `..`\n",
);

/// What a path segment is once percent-decoded.
#[derive(PartialEq)]
enum Seg {
    Plain,
    Dot,
    DotDot,
}

/// Classifies one segment; Err for a segment that decodes to `..` next to
/// a `/` or `\` (`..%2f`, `%2e%2e%5c`): an app that decodes before it
/// splits would climb with it.
fn segment(s: &str) -> Result<Seg, Refused> {
    if !s.contains(['.', '%']) {
        return Ok(Seg::Plain);
    }
    // Decoded only when encoded: `/app.js` costs no allocation.
    let decoded;
    let d: &[u8] = if s.contains('%') {
        decoded = percent_decode_str(s).collect::<Vec<u8>>();
        &decoded
    } else {
        s.as_bytes()
    };
    match d {
        b"." => return Ok(Seg::Dot),
        b".." => return Ok(Seg::DotDot),
        _ => {}
    }
    // Servlet containers drop `;params` from a segment and C code stops at
    // NUL: `..;x` or `..%00` is a `..` to them. Refused, not resolved.
    let head = d.split(|&b| b == b';' || b == 0).next().unwrap_or(d);
    if head == b"." || head == b".." {
        return Err(BAD_PATH);
    }
    if d.split(|&b| b == b'/' || b == b'\\').any(|p| p == b"..") {
        return Err(BAD_PATH);
    }
    Ok(Seg::Plain)
}

/// `path` with its `.` and `..` segments (also percent-encoded) resolved
/// (RFC 3986 section 5.2.4); None when there were none (the usual case:
/// nothing is copied). Err when a `..` climbs above the root or a segment
/// hides one. A path that is not absolute (`*`) is left alone.
pub(crate) fn normalise(path: &str) -> Result<Option<String>, Refused> {
    let Some(rest) = path.strip_prefix('/') else {
        return Ok(None);
    };
    if !rest.contains(['.', '%']) {
        return Ok(None);
    }
    let mut any = false;
    for s in rest.split('/') {
        any |= segment(s)? != Seg::Plain;
    }
    if !any {
        return Ok(None);
    }
    let mut out: Vec<&str> = Vec::new();
    // A path ending in a dot segment names a directory: `/a/b/..` is `/a/`.
    let mut dir = false;
    for s in rest.split('/') {
        dir = true;
        match segment(s)? {
            Seg::Dot => {}
            Seg::DotDot => {
                out.pop().ok_or(BAD_PATH)?;
            }
            Seg::Plain => {
                out.push(s);
                dir = false;
            }
        }
    }
    let mut p = String::with_capacity(path.len());
    for s in &out {
        p.push('/');
        p.push_str(s);
    }
    if dir || out.is_empty() {
        p.push('/');
    }
    Ok(Some(p))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(p: &str) -> Result<Option<String>, Refused> {
        normalise(p)
    }

    #[test]
    fn plain_paths_are_not_copied() {
        for p in [
            "/",
            "/a/b",
            "/style.css",
            "/a.b/c.d?",
            "/%41b",
            "*",
            "/a//b",
        ] {
            assert_eq!(n(p), Ok(None), "{p}");
        }
    }

    #[test]
    fn dot_segments_are_resolved_also_when_encoded() {
        assert_eq!(n("/a/../b").unwrap().unwrap(), "/b");
        assert_eq!(n("/a/./b").unwrap().unwrap(), "/a/b");
        assert_eq!(n("/a/%2e%2E/b").unwrap().unwrap(), "/b");
        assert_eq!(n("/a/.%2e/b/%2E").unwrap().unwrap(), "/b/");
        assert_eq!(n("/a/b/..").unwrap().unwrap(), "/a/");
        assert_eq!(n("/a/..").unwrap().unwrap(), "/");
        assert_eq!(n("/./").unwrap().unwrap(), "/");
        // Other segments keep their encoding.
        assert_eq!(n("/x%2Fy/./z%20").unwrap().unwrap(), "/x%2Fy/z%20");
    }

    #[test]
    fn climbing_above_the_root_is_refused() {
        for p in [
            "/..",
            "/../secret",
            "/a/../../b",
            "/%2e%2e/x",
            "/a/%2E./.%2e",
        ] {
            assert_eq!(n(p), Err(BAD_PATH), "{p}");
        }
    }

    #[test]
    fn a_dot_dot_hidden_beside_an_encoded_slash_is_refused() {
        for p in [
            "/app/..%2fsecret",
            "/app/%2e%2e%2Fx",
            "/app/..%5csecret",
            "/a/x%2f..%2f",
        ] {
            assert_eq!(n(p), Err(BAD_PATH), "{p}");
        }
        assert_eq!(n("/a/x..%2fy"), Ok(None), "not a dot segment once split");
    }

    #[test]
    fn a_dot_dot_with_params_or_nul_is_refused() {
        for p in [
            "/app/..;/admin",
            "/app/..;x=1/admin",
            "/app/.%2e;/x",
            "/app/..%00/x",
            "/app/.;/x",
        ] {
            assert_eq!(n(p), Err(BAD_PATH), "{p}");
        }
        assert_eq!(
            n("/app/a;v=1/b"),
            Ok(None),
            "params on a plain segment pass"
        );
    }

    #[test]
    fn connect_and_host_rules() {
        let req = |m: Method, v, hosts: &[&str]| {
            let mut b = Request::builder().method(m).version(v).uri("/a/../b?q=1");
            for h in hosts {
                b = b.header("host", *h);
            }
            b.body(()).unwrap()
        };
        let v11 = hyper::Version::HTTP_11;
        let r = check(&req(Method::CONNECT, v11, &["a"])).unwrap_err();
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED);
        let r = check(&req(Method::GET, v11, &[])).unwrap_err();
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        let r = check(&req(Method::GET, hyper::Version::HTTP_2, &["a", "b"])).unwrap_err();
        assert_eq!(r.status, StatusCode::BAD_REQUEST);
        assert!(check(&req(Method::GET, hyper::Version::HTTP_10, &[])).is_ok());
        assert!(check(&req(Method::GET, hyper::Version::HTTP_2, &[])).is_ok());
        let u = check(&req(Method::GET, v11, &["a"])).unwrap().unwrap();
        assert_eq!(u, "/b?q=1");
    }
}
