//! `redirect` mode: the one plaintext listener allowed. Every request gets
//! a redirect to the same path under `to`: 301 for GET and HEAD, 308 for
//! other methods (so a POST stays a POST). Nothing is proxied.
//!
//! With `[acme]` it also answers the CA's HTTP-01 checks:
//! `GET /.well-known/acme-challenge/TOKEN` for a token of an order under
//! way gets the key authorization (200, text/plain); any other path,
//! including unknown tokens, is redirected as usual.

use crate::config::HttpsUrl;
use crate::listener::{ConnInfo, Handler, Shared};
use crate::log::Entry;
use crate::watch::{guard, Ended, HeadDeadline, IdleIo};
use bytes::Bytes;
use http_body_util::Full;
use hyper::{header, Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpStream;

/// One `redirect` listener.
pub struct Redirect {
    base: String,
    acme: Option<Arc<crate::acme::Challenges>>,
}

/// Where HTTP-01 tokens are asked for (RFC 8555 §8.3).
const CHALLENGE_PREFIX: &str = "/.well-known/acme-challenge/";

impl Redirect {
    /// Redirects to `to`.
    pub fn new(to: &HttpsUrl) -> Self {
        Redirect {
            base: to.to_string(),
            acme: None,
        }
    }

    /// Also answers the HTTP-01 tokens of `acme`'s orders.
    pub fn with_acme(mut self, acme: Option<Arc<crate::acme::Challenges>>) -> Self {
        self.acme = acme;
        self
    }

    fn challenge<B>(&self, req: &Request<B>) -> Option<Response<Full<Bytes>>> {
        let token = req.uri().path().strip_prefix(CHALLENGE_PREFIX)?;
        if req.method() != Method::GET {
            return None;
        }
        let key_auth = self.acme.as_ref()?.answer(token)?;
        let mut r = Response::new(Full::new(Bytes::from(key_auth)));
        r.headers_mut().insert(
            header::CONTENT_TYPE,
            header::HeaderValue::from_static("text/plain"),
        );
        Some(r)
    }

    fn answer<B>(&self, req: &Request<B>) -> Response<Full<Bytes>> {
        if let Some(r) = self.challenge(req) {
            return r;
        }
        let path = req
            .uri()
            .path_and_query()
            .map(|p| p.as_str())
            .unwrap_or("/");
        let status = if req.method() == Method::GET || req.method() == Method::HEAD {
            StatusCode::MOVED_PERMANENTLY
        } else {
            StatusCode::PERMANENT_REDIRECT
        };
        let loc = format!("{}{}", self.base, path);
        let mut r = Response::new(Full::new(Bytes::from(format!("moved to {loc}\n"))));
        *r.status_mut() = status;
        if let Ok(v) = header::HeaderValue::from_str(&loc) {
            r.headers_mut().insert(header::LOCATION, v);
        }
        r
    }
}

impl Handler for Redirect {
    async fn serve(self: Arc<Self>, sock: TcpStream, info: ConnInfo, sh: Arc<Shared>) {
        let head = Arc::new(HeadDeadline::default());
        let (io, moves) = IdleIo::with_head(sock, head.clone());
        let idle = Duration::from_secs(sh.limits.idle_timeout_s);
        let header = Duration::from_secs(sh.limits.header_timeout_s);
        let this = self.clone();
        let (info2, sh2, head2) = (info.clone(), sh.clone(), head.clone());
        let svc = hyper::service::service_fn(move |req: Request<hyper::body::Incoming>| {
            // The answer is immediate: the request is done once it is made.
            head2.request_started();
            head2.request_done();
            let r = this.answer(&req);
            info2.metrics(&sh2).request(r.status().as_u16());
            if let Some(log) = &sh2.log {
                log.write(Entry {
                    client: info2.peer.to_string(),
                    listener: info2.listener.clone(),
                    mode: "redirect",
                    method: req.method().to_string(),
                    path: req
                        .uri()
                        .path_and_query()
                        .map(|p| p.to_string())
                        .unwrap_or_default(),
                    status: r.status().as_u16(),
                    ..Default::default()
                });
            }
            async move { Ok::<_, std::convert::Infallible>(r) }
        });
        // No hyper timer: its default 30 s header deadline would override
        // a longer `header_timeout_s`; the deadline is `guard`'s.
        let mut b = hyper::server::conn::http1::Builder::new();
        b.max_buf_size(sh.limits.max_header_bytes.max(8192));
        let conn = b.serve_connection(TokioIo::new(io), svc);
        let mut stop = sh.shutdown.clone();
        let fut = async move {
            tokio::pin!(conn);
            tokio::select! {
                r = conn.as_mut() => r,
                _ = crate::listener::stopped(&mut stop) => { conn.as_mut().graceful_shutdown(); conn.await }
            }
        };
        if let Ended::HeaderTimeout = guard(fut, moves, idle, Some((&head, header))).await {
            info.metrics(&sh).request(408);
        }
    }
}
