//! `http` mode: HTTPS (HTTP/1.1 and HTTP/2 by ALPN) in, plaintext HTTP/1.1
//! to the upstream over a pooled keep-alive client.
//!
//! Per request: hop-by-hop headers are removed both ways; `X-Forwarded-For`,
//! `X-Forwarded-Proto` and `Forwarded` are set from the connection (whatever
//! the client sent in them is dropped, never trusted); bodies are streamed;
//! `Upgrade` requests (WebSocket) are passed through and the two upgraded
//! streams spliced; HSTS is added when asked. Upstream failures: 502 with a
//! log line naming the upstream, 504 after `upstream_timeout_s`.

use crate::config::{AllowRule, HttpUpstream};
use crate::listener::{idle_guard, tls_accept, ConnInfo, Handler, IdleIo, Shared};
use crate::log::Entry;
use crate::tls::ServerTls;
use bytes::Bytes;
use http_body_util::{combinators::BoxBody, BodyExt, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use hyper::header::{self, HeaderMap, HeaderName, HeaderValue};
use hyper::{Request, Response, StatusCode, Uri};
use hyper_util::client::legacy::{connect::HttpConnector, Client};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::net::TcpStream;

type RespBody = BoxBody<Bytes, hyper::Error>;

const X_FORWARDED_FOR: HeaderName = HeaderName::from_static("x-forwarded-for");
const X_FORWARDED_PROTO: HeaderName = HeaderName::from_static("x-forwarded-proto");
const X_FORWARDED_HOST: HeaderName = HeaderName::from_static("x-forwarded-host");
const X_REAL_IP: HeaderName = HeaderName::from_static("x-real-ip");
const KEEP_ALIVE: HeaderName = HeaderName::from_static("keep-alive");
const PROXY_CONNECTION: HeaderName = HeaderName::from_static("proxy-connection");

/// Hop-by-hop headers (RFC 9110 7.6.1 and the common non-standard ones).
const HOP_BY_HOP: [HeaderName; 9] = [
    header::CONNECTION,
    KEEP_ALIVE,
    PROXY_CONNECTION,
    header::PROXY_AUTHENTICATE,
    header::PROXY_AUTHORIZATION,
    header::TE,
    header::TRAILER,
    header::TRANSFER_ENCODING,
    header::UPGRADE,
];

/// One `http` listener.
pub struct HttpProxy {
    tls: Arc<ServerTls>,
    rules: Vec<AllowRule>,
    upstream: HttpUpstream,
    upstream_str: String,
    hsts: bool,
    client: Client<HttpConnector, Counted<Incoming>>,
}

impl HttpProxy {
    /// A proxy to `upstream` behind `tls`.
    pub fn new(
        tls: Arc<ServerTls>,
        rules: Vec<AllowRule>,
        upstream: HttpUpstream,
        hsts: bool,
        sh: &Shared,
    ) -> Self {
        let mut conn = HttpConnector::new();
        conn.set_nodelay(true);
        conn.set_connect_timeout(Some(Duration::from_secs(sh.limits.connect_timeout_s)));
        conn.enforce_http(true);
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(1024)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(conn);
        let upstream_str = format!(
            "{}://{}{}",
            upstream.scheme, upstream.authority, upstream.prefix
        );
        HttpProxy {
            tls,
            rules,
            upstream,
            upstream_str,
            hsts,
            client,
        }
    }
}

/// A body that counts the bytes passing through and calls `done` with the
/// count when it is dropped (finished or abandoned).
pub struct Counted<B> {
    inner: B,
    n: Arc<AtomicU64>,
    done: Option<Box<dyn FnOnce(u64) + Send + Sync>>,
}

impl<B> Counted<B> {
    fn new(inner: B, n: Arc<AtomicU64>) -> Self {
        Counted {
            inner,
            n,
            done: None,
        }
    }
}

impl<B: Body<Data = Bytes> + Unpin> Body for Counted<B> {
    type Data = Bytes;
    type Error = B::Error;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let r = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(f))) = &r {
            if let Some(d) = f.data_ref() {
                self.n.fetch_add(d.len() as u64, Relaxed);
            }
        }
        r
    }
    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }
    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

impl<B> Drop for Counted<B> {
    fn drop(&mut self) {
        if let Some(f) = self.done.take() {
            f(self.n.load(Relaxed));
        }
    }
}

fn full(status: StatusCode, msg: &'static str) -> Response<RespBody> {
    let mut r = Response::new(
        Full::new(Bytes::from_static(msg.as_bytes()))
            .map_err(|n| match n {})
            .boxed(),
    );
    *r.status_mut() = status;
    r.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    r
}

/// Removes `Connection`, the headers it names, and the fixed hop-by-hop set.
fn strip_hop_by_hop(h: &mut HeaderMap) {
    let named: Vec<HeaderName> = h
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|n| HeaderName::from_bytes(n.trim().as_bytes()).ok())
        .collect();
    for n in named {
        h.remove(n);
    }
    for n in HOP_BY_HOP {
        h.remove(n);
    }
}

fn is_upgrade<B>(req: &Request<B>) -> Option<HeaderValue> {
    let conn_has_upgrade = req
        .headers()
        .get_all(header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .any(|v| {
            v.split(',')
                .any(|t| t.trim().eq_ignore_ascii_case("upgrade"))
        });
    if conn_has_upgrade && req.version() == hyper::Version::HTTP_11 {
        req.headers().get(header::UPGRADE).cloned()
    } else {
        None
    }
}

fn header_bytes(h: &HeaderMap) -> usize {
    h.iter().map(|(k, v)| k.as_str().len() + v.len() + 4).sum()
}

impl HttpProxy {
    async fn handle(
        self: Arc<Self>,
        req: Request<Incoming>,
        info: Arc<ConnInfo>,
        sh: Arc<Shared>,
    ) -> Result<Response<RespBody>, hyper::Error> {
        let start = Instant::now();
        let m = info.metrics(&sh);
        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        let bytes_in = Arc::new(AtomicU64::new(0));
        // The access-log record is built only when there is a log.
        let entry = sh.log.as_ref().map(|_| Entry {
            client: info.peer.to_string(),
            client_cert: info.cert.as_ref().map(|c| c.subject.clone()),
            listener: info.listener.clone(),
            mode: "http",
            method: req.method().to_string(),
            path: path.clone(),
            proto: format!("{:?}", req.version()),
            upstream: self.upstream_str.clone(),
            tls_version: info.tls_version.clone(),
            tls_suite: info.tls_suite.clone(),
            ..Default::default()
        });
        let resp = self.forward(req, &path, &info, &sh, bytes_in.clone()).await;
        let mut resp = match resp {
            Ok(r) => r,
            Err(r) => r,
        };
        if self.hsts {
            resp.headers_mut().insert(
                header::STRICT_TRANSPORT_SECURITY,
                HeaderValue::from_static("max-age=63072000; includeSubDomains"),
            );
        }
        let status = resp.status().as_u16();
        m.request(status);
        let (parts, body) = resp.into_parts();
        let out = Arc::new(AtomicU64::new(0));
        let mut counted = Counted::new(body, out);
        let log = sh.log.clone();
        let sh2 = sh.clone();
        let idx = info.index;
        counted.done = Some(Box::new(move |n| {
            let lm = &sh2.metrics.listeners[idx];
            let bin = bytes_in.load(Relaxed);
            lm.bytes_out.fetch_add(n, Relaxed);
            lm.bytes_in.fetch_add(bin, Relaxed);
            if let (Some(log), Some(mut entry)) = (log, entry) {
                entry.status = status;
                entry.bytes_in = bin;
                entry.bytes_out = n;
                entry.duration_ms = start.elapsed().as_millis() as u64;
                log.write(entry);
            }
        }));
        Ok(Response::from_parts(parts, counted.boxed()))
    }

    async fn forward(
        &self,
        mut req: Request<Incoming>,
        path: &str,
        info: &ConnInfo,
        sh: &Shared,
        bytes_in: Arc<AtomicU64>,
    ) -> Result<Response<RespBody>, Response<RespBody>> {
        if header_bytes(req.headers()) > sh.limits.max_header_bytes {
            return Err(full(
                StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE,
                "request header too large\n",
            ));
        }
        let upgrade = is_upgrade(&req);
        let host = req.headers().get(header::HOST).cloned().or_else(|| {
            req.uri()
                .authority()
                .and_then(|a| HeaderValue::from_str(a.as_str()).ok())
        });
        let uri: Uri = format!(
            "{}://{}{}{}",
            self.upstream.scheme, self.upstream.authority, self.upstream.prefix, path
        )
        .parse()
        .map_err(|_| full(StatusCode::BAD_REQUEST, "bad request target\n"))?;
        let client_upgrade = upgrade.as_ref().map(|_| hyper::upgrade::on(&mut req));
        let method = req.method().clone();
        let (parts, body) = req.into_parts();
        let mut headers = parts.headers;
        strip_hop_by_hop(&mut headers);
        for n in [
            X_FORWARDED_FOR,
            X_FORWARDED_PROTO,
            X_FORWARDED_HOST,
            header::FORWARDED,
            X_REAL_IP,
        ] {
            headers.remove(n);
        }
        let ip = info.peer.ip();
        headers.insert(
            X_FORWARDED_FOR,
            HeaderValue::from_str(&ip.to_string()).expect("an IP is a valid header"),
        );
        headers.insert(X_FORWARDED_PROTO, HeaderValue::from_static("https"));
        let for_ = if ip.is_ipv6() {
            format!("\"[{ip}]\"")
        } else {
            ip.to_string()
        };
        let mut fwd = format!("for={for_};proto=https");
        if let Some(h) = host.as_ref().and_then(|h| h.to_str().ok()) {
            if h.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:[]".contains(&b))
            {
                headers.insert(
                    X_FORWARDED_HOST,
                    HeaderValue::from_str(h).expect("checked ascii"),
                );
                fwd.push_str(";host=\"");
                fwd.push_str(h);
                fwd.push('"');
            }
        }
        headers.insert(
            header::FORWARDED,
            HeaderValue::from_str(&fwd).expect("ascii"),
        );
        if let Some(h) = host {
            headers.insert(header::HOST, h);
        }
        if let Some(u) = &upgrade {
            headers.insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
            headers.insert(header::UPGRADE, u.clone());
        }
        let mut up = Request::new(Counted::new(body, bytes_in));
        *up.method_mut() = method.clone();
        *up.uri_mut() = uri;
        *up.headers_mut() = headers;
        *up.version_mut() = hyper::Version::HTTP_11;
        let timeout = Duration::from_secs(sh.limits.upstream_timeout_s);
        let m = info.metrics(sh);
        let mut resp = match tokio::time::timeout(timeout, self.client.request(up)).await {
            Ok(Ok(r)) => r,
            Ok(Err(e)) => {
                m.upstream_errors.fetch_add(1, Relaxed);
                tracing::warn!(
                    "listener {}: upstream {} failed for {} {}: {}",
                    info.listener,
                    self.upstream_str,
                    method,
                    path,
                    error_chain(&e)
                );
                return Err(full(
                    StatusCode::BAD_GATEWAY,
                    "502 bad gateway: the upstream is unreachable\n",
                ));
            }
            Err(_) => {
                m.upstream_timeouts.fetch_add(1, Relaxed);
                tracing::warn!(
                    "listener {}: upstream {} timed out after {}s for {} {}",
                    info.listener,
                    self.upstream_str,
                    timeout.as_secs(),
                    method,
                    path
                );
                return Err(full(
                    StatusCode::GATEWAY_TIMEOUT,
                    "504 gateway timeout: the upstream did not answer in time\n",
                ));
            }
        };
        if resp.status() == StatusCode::SWITCHING_PROTOCOLS {
            if let Some(client_up) = client_upgrade {
                let upstream_up = hyper::upgrade::on(&mut resp);
                let name = info.listener.clone();
                tokio::spawn(async move {
                    match tokio::try_join!(client_up, upstream_up) {
                        Ok((c, u)) => {
                            let mut c = TokioIo::new(c);
                            let mut u = TokioIo::new(u);
                            let _ = tokio::io::copy_bidirectional(&mut c, &mut u).await;
                        }
                        Err(e) => tracing::debug!("listener {name}: upgrade failed: {e}"),
                    }
                });
                let (parts, _) = resp.into_parts();
                let mut r = Response::from_parts(
                    parts,
                    http_body_util::Empty::new().map_err(|n| match n {}).boxed(),
                );
                // Keep the upgrade headers the upstream agreed to.
                r.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("upgrade"));
                return Ok(r);
            }
        }
        strip_hop_by_hop(resp.headers_mut());
        Ok(resp.map(|b| b.boxed()))
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut cur = e.source();
    while let Some(c) = cur {
        let cs = c.to_string();
        if !s.contains(&cs) {
            s.push_str(": ");
            s.push_str(&cs);
        }
        cur = c.source();
    }
    s
}

impl Handler for HttpProxy {
    async fn serve(
        self: Arc<Self>,
        sock: TcpStream,
        info: crate::listener::ConnInfo,
        sh: Arc<Shared>,
    ) {
        let (io, last) = IdleIo::new(sock);
        let idle = Duration::from_secs(sh.limits.idle_timeout_s);
        let Some((tls, info)) = tls_accept(&self.tls, &self.rules, io, info, &sh).await else {
            return;
        };
        let info = Arc::new(info);
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .timer(TokioTimer::new())
            .header_read_timeout(Duration::from_secs(sh.limits.header_timeout_s))
            .max_buf_size(sh.limits.max_header_bytes.max(8192))
            .keep_alive(true);
        builder
            .http2()
            .timer(TokioTimer::new())
            .max_header_list_size(sh.limits.max_header_bytes as u32)
            .max_concurrent_streams(256);
        let this = self.clone();
        let (info2, sh2) = (info.clone(), sh.clone());
        let svc = hyper::service::service_fn(move |req| {
            this.clone().handle(req, info2.clone(), sh2.clone())
        });
        let conn = builder.serve_connection_with_upgrades(TokioIo::new(tls), svc);
        let mut stop = sh.shutdown.clone();
        let fut = async move {
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => r,
                _ = crate::listener::stopped(&mut stop) => {
                    conn.as_mut().graceful_shutdown();
                    conn.await
                }
            }
        };
        match idle_guard(fut, last, idle).await {
            Some(Err(e)) => {
                tracing::debug!(listener = %info.listener, client = %info.peer, "connection ended: {e}")
            }
            None => tracing::debug!(listener = %info.listener, client = %info.peer, "idle timeout"),
            _ => {}
        }
    }
}
