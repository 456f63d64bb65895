//! One request's exchange with the upstream in `http` mode: a connection
//! from the pool (or a new one under the listener's cap), the request
//! sent, the deadlines while it goes, and what each failure becomes.
//!
//! Two deadlines, so that a healthy slow upload is never cut:
//!
//! - while the request body is still being sent, the client may keep the
//!   upstream side waiting for its next bytes at most `body_timeout_s`
//!   (it stalled: 408; an app that reads slowly is not a stalled client);
//! - once it is sent (at once for a request without a body),
//!   the upstream has `upstream_timeout_s` to begin its response (504).
//!
//! Before either, a connection: an idle one of this worker, or a new one
//! (a connect that takes longer than `connect_timeout_s` is a 502); at the
//! listener's cap, a request waits up to `upstream_timeout_s` for one to
//! free up, then gets 503. Who broke a request decides how it is
//! counted: a client whose body was malformed or aborted gets 400 and
//! counts as a client error, never as an upstream failure.

use crate::body::Counting;
use crate::http::ConnCtx;
use crate::upstream::{Conn, OpenError, Upstream};
use crate::watch::instant_at;
use hyper::body::Incoming;
use hyper::{Request, Response, StatusCode};
use std::sync::atomic::Ordering::Relaxed;
use std::time::Duration;
use tokio::time::Instant;

/// How an exchange failed, and so what the client is told.
pub(crate) enum Failure {
    /// The upstream could not be reached or broke the exchange: 502.
    Upstream(String),
    /// The upstream did not begin its response in time: 504.
    Timeout(Duration),
    /// A cap on requests upstream (the named limit) stayed reached for the
    /// whole wait: 503.
    Full(&'static str),
    /// The client's body stalled past `body_timeout_s`: 408.
    BodyStalled(Duration),
    /// The client's body was malformed or aborted: 400.
    Client(String),
}

impl Failure {
    /// The status the client gets.
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            Failure::Upstream(_) => StatusCode::BAD_GATEWAY,
            Failure::Timeout(_) => StatusCode::GATEWAY_TIMEOUT,
            Failure::Full(_) => StatusCode::SERVICE_UNAVAILABLE,
            Failure::BodyStalled(_) => StatusCode::REQUEST_TIMEOUT,
            Failure::Client(_) => StatusCode::BAD_REQUEST,
        }
    }

    /// The body of the error response.
    pub(crate) fn message(&self) -> &'static str {
        match self {
            Failure::Upstream(_) => "502 bad gateway: the upstream is unreachable\n",
            Failure::Timeout(_) => "504 gateway timeout: the upstream did not answer in time\n",
            Failure::Full(_) => {
                "503 service unavailable: too many requests to the upstream; retry later\n"
            }
            Failure::BodyStalled(_) => "408 request timeout: the request body stopped arriving\n",
            Failure::Client(_) => "400 bad request: the request body was malformed or cut off\n",
        }
    }

    /// Counts the failure against the right side, and says it in the log.
    pub(crate) fn record(&self, ctx: &ConnCtx, upstream: &str, what: &dyn std::fmt::Display) {
        let m = ctx.info.metrics(&ctx.sh);
        let l = &ctx.info.listener;
        match self {
            Failure::Upstream(e) => {
                m.upstream_errors.fetch_add(1, Relaxed);
                tracing::warn!("listener {l}: upstream {upstream} failed for {what}: {e}");
            }
            Failure::Timeout(t) => {
                m.upstream_timeouts.fetch_add(1, Relaxed);
                tracing::warn!(
                    "listener {l}: upstream {upstream} timed out after {}s for {what}",
                    t.as_secs()
                );
            }
            Failure::Full(limit) => {
                m.limited.fetch_add(1, Relaxed);
                if crate::listener::log_refusal_now() {
                    tracing::warn!(
                        "listener {l}: {limit} reached for upstream {upstream}; refused {what} with 503"
                    );
                }
            }
            Failure::BodyStalled(t) => {
                m.client_errors.fetch_add(1, Relaxed);
                tracing::debug!(
                    "listener {l}: client {} sent no body byte for {}s in {what}",
                    ctx.info.peer,
                    t.as_secs()
                );
            }
            Failure::Client(e) => {
                m.client_errors.fetch_add(1, Relaxed);
                tracing::debug!(
                    "listener {l}: client {} broke its request body in {what}: {e}",
                    ctx.info.peer
                );
            }
        }
    }
}

/// The response head, the connection it came on, and whether that
/// connection may be reused once the response is read (its request had no
/// body: see `body`).
pub(crate) type Answer = (Response<Incoming>, Conn, bool);

/// Sends `req` upstream under the deadlines of the module's doc.
pub(crate) async fn exchange(
    pool: &Upstream,
    req: Request<Counting<Incoming>>,
    ctx: &ConnCtx,
) -> Result<Answer, Failure> {
    let limits = &ctx.sh.limits;
    let answer_in = Duration::from_secs(limits.upstream_timeout_s);
    let body_gap = Duration::from_secs(limits.body_timeout_s);
    let body = req.body().p.clone();
    // A connection first: waiting for a slot at the cap has its own bound
    // (then 503), and no body byte moves while it lasts.
    let first = match pool.take() {
        Some(c) => (c, true),
        None => (open(pool).await?, false),
    };
    let began = Instant::now();
    // The deadline now, and whether it is the upstream's: while the body
    // is being sent, from when the client began to be awaited (if it is);
    // once it is sent, from when it ended (or the request began).
    let deadline = || match &body {
        Some(p) if !p.ended() => match p.waiting_ms() {
            Some(t) => (instant_at(t).max(began) + body_gap, false),
            None => (Instant::now() + body_gap, false),
        },
        Some(p) => (instant_at(p.last_ms()).max(began) + answer_in, true),
        None => (began + answer_in, true),
    };
    let send = send(pool, first, req);
    tokio::pin!(send);
    loop {
        let (at, sent) = deadline();
        tokio::select! {
            biased;
            r = &mut send => {
                let (resp, conn) = r?;
                if let Some(p) = body.as_ref().filter(|p| !p.ended()) {
                    p.cut();
                }
                return Ok((resp, conn, body.is_none()));
            }
            _ = tokio::time::sleep_until(at) => {
                // The body may have moved since the deadline was read.
                if Instant::now() >= deadline().0 {
                    return Err(if sent {
                        Failure::Timeout(answer_in)
                    } else {
                        Failure::BodyStalled(body_gap)
                    });
                }
            }
        }
    }
}

/// A new connection, or at the cap one that frees up in time.
async fn open(pool: &Upstream) -> Result<Conn, Failure> {
    // Boxed: a new connection is rare, and inline its future would grow
    // every in-flight request (hyper keeps one per client).
    Box::pin(pool.open()).await.map_err(|e| match e {
        OpenError::Full => Failure::Full("max_upstream_connections"),
        OpenError::Connect(e) => Failure::Upstream(format!("connect: {}", error_chain(&e))),
    })
}

/// Sends `req` on `first` (a reused connection, or not). A request that a
/// reused connection never sent (it closed under us) is sent once more on
/// a new connection.
async fn send(
    pool: &Upstream,
    first: (Conn, bool),
    mut req: Request<Counting<Incoming>>,
) -> Result<(Response<Incoming>, Conn), Failure> {
    let mut next = Some(first);
    loop {
        let (mut c, was_reused) = match next.take() {
            Some(c) => c,
            None => (open(pool).await?, false),
        };
        if let Err(e) = c.tx.ready().await {
            if was_reused {
                continue;
            }
            return Err(Failure::Upstream(error_chain(&e)));
        }
        match c.tx.try_send_request(req).await {
            Ok(resp) => return Ok((resp, c)),
            Err(mut e) => match e.take_message() {
                Some(r) if was_reused => req = r,
                _ => {
                    let e = e.into_error();
                    // hyper says "user" when the body we gave it failed:
                    // that body is the client's request.
                    return Err(if e.is_user() {
                        Failure::Client(error_chain(&e))
                    } else {
                        Failure::Upstream(error_chain(&e))
                    });
                }
            },
        }
    }
}

/// An error and its causes on one line.
pub(crate) fn error_chain(e: &dyn std::error::Error) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_failure_has_its_own_status() {
        let d = Duration::from_secs(1);
        let all = [
            Failure::Upstream(String::new()),
            Failure::Timeout(d),
            Failure::Full(""),
            Failure::BodyStalled(d),
            Failure::Client(String::new()),
        ];
        let codes: Vec<u16> = all.iter().map(|f| f.status().as_u16()).collect();
        assert_eq!(codes, [502, 504, 503, 408, 400]);
        for f in &all {
            assert!(f.message().starts_with(f.status().as_str()));
        }
    }
}
