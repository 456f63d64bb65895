//! `http` mode's requests: HTTPS (HTTP/1.1 and HTTP/2 by ALPN) in,
//! plaintext HTTP/1.1 to the upstream over kept-alive connections
//! ([`crate::upstream`]). The connection around them is `session`'s.
//!
//! Per request: what `crate::request` refuses gets its 400 or 405 and
//! never reaches the upstream, and dot segments are resolved before the
//! path goes under the upstream's prefix; hop-by-hop headers are removed
//! both ways; `X-Forwarded-For`, `X-Forwarded-Proto` and `Forwarded` are
//! set from the connection (whatever the client sent in them is dropped,
//! never trusted), and so are the identity headers (`headers`); bodies
//! are streamed;
//! `Upgrade` requests (WebSocket) are passed to the upstream, and on `101`
//! `session` splices the two streams; HSTS is added when asked. Upstream failures: 502 with a
//! log line naming the upstream, 504 after `upstream_timeout_s`.

pub use crate::body::{Counting, Logged};
use crate::body::{Finish, InFlight, Progress};
use crate::config::{HttpUpstream, IdentityHeader};
use crate::exchange::{exchange, Failure};
use crate::headers::{
    header_bytes, is_upgrade, strip_request, strip_response, IdentityNames, X_FORWARDED_EMAIL,
    X_FORWARDED_FOR, X_FORWARDED_GROUPS, X_FORWARDED_HOST, X_FORWARDED_PROTO, X_FORWARDED_USER,
};
use crate::listener::{ConnInfo, Shared};
use crate::log::Entry;
use crate::tls::ServerTls;
use crate::upstream::{Conn, Upstream};
use crate::watch::HeadDeadline;
use bytes::Bytes;
use http_body_util::{Either, Full};
use hyper::body::{Body, Incoming};
use hyper::header::{self, HeaderName, HeaderValue};
use hyper::http::uri::{self, PathAndQuery};
use hyper::upgrade::OnUpgrade;
use hyper::{Method, Request, Response, StatusCode, Uri};
use hyper_util::rt::{TokioExecutor, TokioTimer};
use std::convert::Infallible;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// What goes back to the client: the upstream's body or one of ours.
pub(crate) type Reply = Either<Incoming, Full<Bytes>>;

/// One `http` listener.
pub struct HttpProxy {
    pub(crate) tls: Arc<ServerTls>,
    upstream: HttpUpstream,
    upstream_str: String,
    hsts: bool,
    identity: IdentityNames,
    pub(crate) pool: Arc<Upstream>,
    /// Single sign-on (`[listener.oidc]`).
    oidc: Option<Arc<crate::oidc::Oidc>>,
    /// For HTTP/2 clients (ALPN `h2`).
    pub(crate) h2: hyper::server::conn::http2::Builder<TokioExecutor>,
    /// For HTTP/1.1 clients.
    pub(crate) h1: hyper::server::conn::http1::Builder,
}

impl HttpProxy {
    /// A proxy to `upstream` behind `tls`, sending a verified client's
    /// identity under `identity_header`'s names. Must be called inside the
    /// runtime.
    pub fn new(
        tls: Arc<ServerTls>,
        upstream: HttpUpstream,
        hsts: bool,
        identity_header: &IdentityHeader,
        sh: &Shared,
    ) -> Self {
        let pool = Upstream::new(
            upstream.addr().to_string(),
            Duration::from_secs(sh.limits.connect_timeout_s),
            sh.workers,
            sh.limits.upstream_idle,
            sh.limits.max_upstream_connections,
            Duration::from_secs(sh.limits.upstream_timeout_s),
        );
        let upstream_str = upstream.to_string();
        let mut h2 = hyper::server::conn::http2::Builder::new(TokioExecutor::new());
        h2.timer(TokioTimer::new())
            .max_header_list_size(sh.limits.max_header_bytes as u32)
            .max_concurrent_streams(256);
        // No timer for HTTP/1.1: hyper uses it only for its own header
        // deadline, on by default (30 s) once a timer is set, which armed
        // a sleep for every request and would cut a header that
        // `header_timeout_s` allows beyond 30 s. The deadline is `guard`'s.
        let identity = IdentityNames::new(identity_header);
        let mut h1 = hyper::server::conn::http1::Builder::new();
        h1.max_buf_size(sh.limits.max_header_bytes.max(8192))
            .keep_alive(true);
        HttpProxy {
            tls,
            upstream,
            upstream_str,
            hsts,
            identity,
            pool,
            oidc: None,
            h2,
            h1,
        }
    }

    /// Requires a signed-in user for every request ([`crate::oidc`]).
    pub fn with_oidc(mut self, oidc: Option<crate::oidc::Oidc>) -> Self {
        self.oidc = oidc.map(Arc::new);
        self
    }
}

/// Per client connection: what every request on it shares.
///
/// It also holds the listener and the process state, cloned once per
/// connection, so that a request clones only this: a per-request clone of
/// an `Arc` that every worker thread shares moves its counter's cache
/// line between the cores at every request.
pub(crate) struct ConnCtx {
    pub(crate) info: ConnInfo,
    /// The listener.
    pub(crate) proxy: Arc<HttpProxy>,
    /// The process.
    pub(crate) sh: Arc<Shared>,
    fwd: Forwarding,
    /// The identity headers of the client's verified certificate (none
    /// without one), built once for the connection's requests.
    identity: Vec<(HeaderName, HeaderValue)>,
    /// The request header deadline's view of this connection.
    pub(crate) head: Arc<HeadDeadline>,
    /// "HTTP/1.1" or "HTTP/2", for records of requests hyper refused.
    pub(crate) proto: &'static str,
    /// The upstream's side of a WebSocket (or other) upgrade the upstream
    /// accepted, and its connection; the client's side is taken over by
    /// `session`.
    pub(crate) upgrade: Mutex<Option<(OnUpgrade, Conn)>>,
    /// HTTP/2: slots for this connection's requests upstream
    /// (`max_upstream_per_connection`). HTTP/1.1 has one at a time.
    slots: Option<Arc<Semaphore>>,
}

impl ConnCtx {
    pub(crate) fn new(
        info: ConnInfo,
        head: Arc<HeadDeadline>,
        proto: &'static str,
        proxy: Arc<HttpProxy>,
        sh: Arc<Shared>,
    ) -> Self {
        let slots = (proto == "HTTP/2")
            .then(|| Arc::new(Semaphore::new(sh.limits.max_upstream_per_connection)));
        let identity = info
            .cert
            .as_ref()
            .map(|c| proxy.identity.headers(c))
            .unwrap_or_default();
        ConnCtx {
            fwd: Forwarding::new(info.peer.ip()),
            slots,
            identity,
            info,
            proxy,
            sh,
            head,
            proto,
            upgrade: Mutex::new(None),
        }
    }

    /// HTTP/2: a slot for one more of this connection's requests upstream,
    /// waiting up to `upstream_timeout_s` for one (the connection's other
    /// streams queue here). HTTP/1.1 needs none.
    async fn upstream_slot(&self) -> Result<Option<OwnedSemaphorePermit>, Failure> {
        let Some(s) = &self.slots else {
            return Ok(None);
        };
        if let Ok(p) = s.clone().try_acquire_owned() {
            return Ok(Some(p));
        }
        let wait = Duration::from_secs(self.sh.limits.upstream_timeout_s);
        match tokio::time::timeout(wait, s.clone().acquire_owned()).await {
            Ok(Ok(p)) => Ok(Some(p)),
            _ => Err(Failure::Full("max_upstream_per_connection")),
        }
    }

    /// An access-log record with what the connection knows filled in.
    pub(crate) fn entry(&self) -> Entry {
        Entry {
            client: self.info.peer.to_string(),
            client_cert: self.info.cert.as_ref().map(|c| c.subject.clone()),
            listener: self.info.listener.clone(),
            mode: "http",
            proto: self.proto.to_string(),
            tls_version: self.info.tls_version.clone(),
            tls_suite: self.info.tls_suite.clone(),
            ..Default::default()
        }
    }
}

/// The forwarding headers' values for one client.
struct Forwarding {
    /// `X-Forwarded-For` value: the client's IP.
    xff: HeaderValue,
    /// `Forwarded` value without the host: `for=...;proto=https`.
    forwarded: String,
    /// The last `Host` and its full `Forwarded` value: a connection's
    /// requests almost always name the same host.
    last_forwarded: Mutex<Option<(HeaderValue, HeaderValue)>>,
}

impl Forwarding {
    fn new(ip: std::net::IpAddr) -> Self {
        let forwarded = if ip.is_ipv6() {
            format!("for=\"[{ip}]\";proto=https")
        } else {
            format!("for={ip};proto=https")
        };
        Forwarding {
            xff: HeaderValue::from_str(&ip.to_string()).expect("an IP is a valid header"),
            forwarded,
            last_forwarded: Mutex::new(None),
        }
    }

    /// The `Forwarded` value for a request naming `host` (already checked
    /// to be plain ASCII).
    fn forwarded_for(&self, host: Option<&HeaderValue>) -> HeaderValue {
        let Some(h) = host else {
            return HeaderValue::from_str(&self.forwarded).expect("ascii");
        };
        let mut last = self
            .last_forwarded
            .lock()
            .unwrap_or_else(|p| p.into_inner());
        if let Some((_, v)) = last.as_ref().filter(|(lh, _)| lh == h) {
            return v.clone();
        }
        let v = format!(
            "{};host=\"{}\"",
            self.forwarded,
            h.to_str().expect("checked ascii")
        );
        let v = HeaderValue::from_maybe_shared(Bytes::from(v)).expect("ascii");
        // A copy, not a clone: the request's value is a slice of hyper's
        // read buffer, and keeping it would pin that 8 KiB buffer for the
        // connection's life, also while it waits demoted (`session`).
        let own = HeaderValue::from_bytes(h.as_bytes()).expect("a valid value");
        *last = Some((own, v.clone()));
        v
    }
}

/// The body the gateway does not forward, read (up to 64 KiB, within
/// `body_timeout_s`) before it answers: an HTTP/2 stream whose body is
/// dropped unread is reset, and the client would lose the answer too.
async fn drain(body: Incoming, limits: &crate::config::Limits) {
    use http_body_util::BodyExt;
    let read = http_body_util::Limited::new(body, 64 * 1024).collect();
    let _ = tokio::time::timeout(Duration::from_secs(limits.body_timeout_s), read).await;
}

fn full(status: StatusCode, msg: &'static str) -> Response<Reply> {
    let mut r = Response::new(Either::Right(Full::new(Bytes::from_static(msg.as_bytes()))));
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

impl HttpProxy {
    /// Serves one request of the connection `ctx`.
    pub(crate) async fn handle(
        ctx: Arc<ConnCtx>,
        req: Request<Incoming>,
    ) -> Result<Response<Logged>, Infallible> {
        let (this, sh) = (&*ctx.proxy, &*ctx.sh);
        let req_guard = InFlight::new(ctx.clone());
        // Most requests (GET) have no body: then there is nothing to note.
        let body = (!req.body().is_end_stream()).then(|| Arc::new(Progress::new()));
        let start = sh.log.as_ref().map(|_| Instant::now());
        // The access-log record is built only when there is a log.
        let mut entry = sh.log.as_ref().map(|_| Entry {
            method: req.method().to_string(),
            path: req
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_string(),
            proto: format!("{:?}", req.version()),
            upstream: this.upstream_str.clone(),
            ..ctx.entry()
        });
        // Single sign-on: a request with a valid session goes on as its
        // user; the gate answers the others (its slow path is boxed, so
        // that this future stays small for every request).
        let mut who = None;
        let mut gated = None;
        if let Some(o) = &this.oidc {
            match o.pass(req.uri(), req.headers()) {
                Some(s) => who = Some(s),
                None => {
                    let g =
                        Box::pin(o.answer(req.method(), req.uri(), req.headers(), &ctx.info, sh));
                    gated = Some(g.await);
                }
            }
            if let Some(e) = &mut entry {
                if o.is_callback(req.uri()) {
                    // The code in its query is not for the log.
                    e.path = format!("{}?(redacted)", req.uri().path());
                }
                e.user = who.as_ref().map(|s| s.user.clone());
                e.refused = gated.as_mut().and_then(|g| g.refused.take());
            }
        }
        let slot = match gated {
            Some(_) => Ok(None),
            None => ctx.upstream_slot().await,
        };

        let (slot, (mut resp, up)) = match slot {
            Ok(slot) => (
                slot,
                match gated {
                    Some(g) => {
                        if !req.body().is_end_stream() {
                            Box::pin(drain(req.into_body(), &sh.limits)).await;
                        }
                        (g.resp.map(Either::Right), None)
                    }
                    None => match this.forward(req, &ctx, body.clone(), who.as_ref()).await {
                        Ok((r, up)) => (r.map(Either::Left), up),
                        Err(r) => (r, None),
                    },
                },
            ),
            Err(f) => {
                f.record(
                    &ctx,
                    &this.upstream_str,
                    &format_args!("{} {}", req.method(), req.uri()),
                );
                (None, (full(f.status(), f.message()), None))
            }
        };
        if this.hsts {
            resp.headers_mut().insert(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static("max-age=63072000; includeSubDomains"),
            );
        }
        let status = resp.status().as_u16();
        ctx.info.metrics(sh).request(status);
        let (parts, reply) = resp.into_parts();
        let finish = Finish {
            req: req_guard,
            up,
            _slot: slot,
            status,
            start,
            body,
            entry,
        };
        Ok(Response::from_parts(
            parts,
            Logged {
                inner: reply,
                out: 0,
                ended: false,
                finish: Some(finish),
            },
        ))
    }

    /// The upstream URI: the client's path and query under the prefix.
    fn upstream_uri(&self, uri: &Uri) -> Option<Uri> {
        let pq = uri.path_and_query();
        if self.upstream.prefix().is_empty() {
            // The usual HTTP/1.1 request target is already a bare path:
            // then it goes as is (a clone shares its bytes).
            if uri.scheme().is_none() && uri.authority().is_none() && pq.is_some() {
                return Some(uri.clone());
            }
            let mut parts = uri::Parts::default();
            parts.path_and_query = Some(
                pq.cloned()
                    .unwrap_or_else(|| PathAndQuery::from_static("/")),
            );
            Uri::from_parts(parts).ok()
        } else {
            let pq = pq.map_or("/", |p| p.as_str());
            format!("{}{pq}", self.upstream.prefix()).parse().ok()
        }
    }

    async fn forward(
        &self,
        req: Request<Incoming>,
        ctx: &ConnCtx,
        body: Option<Arc<Progress>>,
        who: Option<&crate::oidc::cookie::Session>,
    ) -> Result<(Response<Incoming>, Option<(Conn, bool)>), Response<Reply>> {
        let sh = &*ctx.sh;
        if header_bytes(req.headers()) > sh.limits.max_header_bytes {
            return Err(full(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "request header too large\n",
            ));
        }
        let resolved = crate::request::check(&req).map_err(|r| {
            let mut resp = full(r.status, r.msg);
            if r.status == StatusCode::METHOD_NOT_ALLOWED {
                resp.headers_mut().insert(
                    header::ALLOW,
                    HeaderValue::from_static(crate::request::ALLOW),
                );
            }
            resp
        })?;
        let upgrade = is_upgrade(&req);
        let uri = self
            .upstream_uri(resolved.as_ref().unwrap_or(req.uri()))
            .ok_or_else(|| full(StatusCode::BAD_REQUEST, "bad request target\n"))?;
        let (mut parts, req_body) = req.into_parts();
        let method: Method = parts.method.clone();
        let orig_uri = std::mem::replace(&mut parts.uri, uri);
        parts.version = hyper::Version::HTTP_11;
        // What hyper's server attached for itself is not the upstream's.
        parts.extensions.clear();
        let headers = &mut parts.headers;
        // HTTP/2 clients name the host in the URI, HTTP/1.1 in `Host`.
        if !headers.contains_key(header::HOST) {
            let host = orig_uri
                .authority()
                .map_or(self.upstream.authority(), |a| a.as_str());
            if let Ok(v) = HeaderValue::from_str(host) {
                headers.insert(header::HOST, v);
            }
        }
        strip_request(headers, &self.identity.base);
        if let Some(o) = &self.oidc {
            o.strip_cookies(headers);
        }
        if let Some(s) = who {
            // Header-safe by construction (`oidc::validate`); a value that
            // were not is left out rather than sent half.
            if let Ok(v) = HeaderValue::from_str(&s.user) {
                headers.insert(X_FORWARDED_USER, v);
            }
            if let Some(Ok(v)) = s.email.as_deref().map(HeaderValue::from_str) {
                headers.insert(X_FORWARDED_EMAIL, v);
            }
            if !s.groups.is_empty() {
                if let Ok(v) = HeaderValue::from_str(&s.groups.join(",")) {
                    headers.insert(X_FORWARDED_GROUPS, v);
                }
            }
        }
        // Room for the forwarding and identity headers at once, not a
        // regrowth midway.
        headers.reserve(4 + ctx.identity.len());
        for (n, v) in &ctx.identity {
            headers.insert(n.clone(), v.clone());
        }
        headers.insert(X_FORWARDED_FOR, ctx.fwd.xff.clone());
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("https"));
        let host = headers
            .get(header::HOST)
            .filter(|h| {
                h.as_bytes()
                    .iter()
                    .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(b))
            })
            .cloned();
        let forwarded = ctx.fwd.forwarded_for(host.as_ref());
        if let Some(h) = host {
            headers.insert(X_FORWARDED_HOST, h);
        }
        headers.insert(header::FORWARDED, forwarded);
        if let Some(u) = &upgrade {
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            headers.insert(header::UPGRADE, u.clone());
        }
        // Built from the client's own parts, edited in place: no header
        // map or URI is moved into a second request.
        let up = Request::from_parts(
            parts,
            Counting {
                inner: req_body,
                p: body,
            },
        );
        let (mut resp, mut conn, whole) = match exchange(&self.pool, up, ctx).await {
            Ok(a) => a,
            Err(f) => {
                let path = orig_uri.path_and_query().map_or("/", |p| p.as_str());
                f.record(ctx, &self.upstream_str, &format_args!("{method} {path}"));
                return Err(full(f.status(), f.message()));
            }
        };
        if resp.status() == StatusCode::SWITCHING_PROTOCOLS && upgrade.is_some() {
            // The upstream connection becomes the tunnel: it is not given
            // back. `session` splices the two sides once the 101 is out.
            // Its I/O task hands the socket over; the connection keeps its
            // slot under the cap until the tunnel ends.
            conn.keep_task();
            *ctx.upgrade.lock().unwrap_or_else(|p| p.into_inner()) =
                Some((hyper::upgrade::on(&mut resp), conn));
            ctx.head.upgraded();
            let (parts, _) = resp.into_parts();
            let mut r = Response::from_parts(parts, Either::Right(Full::new(Bytes::new())));
            // Keep the upgrade headers the upstream agreed to.
            r.headers_mut()
                .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            return Err(r);
        }
        strip_response(resp.headers_mut());
        // The client talks to us, not to an HTTP/1.0 upstream.
        *resp.version_mut() = hyper::Version::HTTP_11;
        Ok((resp, Some((conn, whole))))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> Forwarding {
        Forwarding::new("192.0.2.7".parse().unwrap())
    }

    #[test]
    fn forwarded_names_each_requests_host() {
        let c = ctx();
        let a = HeaderValue::from_static("a.example");
        let b = HeaderValue::from_static("b.example:8443");
        assert_eq!(
            c.forwarded_for(Some(&a)),
            "for=192.0.2.7;proto=https;host=\"a.example\""
        );
        assert_eq!(
            c.forwarded_for(Some(&a)),
            "for=192.0.2.7;proto=https;host=\"a.example\""
        );
        assert_eq!(
            c.forwarded_for(Some(&b)),
            "for=192.0.2.7;proto=https;host=\"b.example:8443\""
        );
        assert_eq!(c.forwarded_for(None), "for=192.0.2.7;proto=https");
    }

    #[test]
    fn the_cached_host_does_not_share_the_requests_buffer() {
        // A request's header values are slices of hyper's read buffer.
        let buf = Bytes::from(b"GET / HTTP/1.1\r\nHost: a.example\r\n\r\n".to_vec());
        let host = HeaderValue::from_maybe_shared(buf.slice(22..31)).unwrap();
        assert_eq!(host, "a.example");
        let c = ctx();
        c.forwarded_for(Some(&host));
        let last = c.last_forwarded.lock().unwrap();
        let kept = &last.as_ref().unwrap().0;
        assert_eq!(kept, &host);
        let within = buf.as_ptr_range();
        assert!(
            !within.contains(&kept.as_bytes().as_ptr()),
            "the cache keeps the request buffer alive"
        );
    }
}
