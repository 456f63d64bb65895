//! The bodies `http` mode wraps around a request: the request body
//! notes its progress (bytes, when the last moved, whether it ended); the
//! response body counts the bytes out and, when it is dropped (sent to
//! the end or abandoned), records the request in the metrics and the
//! access log, decides the upstream connection's fate, and ends the
//! request for the header deadline.
//!
//! An upstream connection is reused only in a known state: its request
//! had no body, and the response was read to its end. After a request with
//! a body the connection is closed: an app that answers without reading
//! the whole body (a 401 or 413 handler, Python's `http.server`) reads the
//! rest as its next request, and whether it did cannot be seen from
//! outside; on a reused connection a client could so smuggle a request
//! whose response another client receives. And once the response has
//! begun, the rest of a body still arriving is not passed on at all
//! (`Progress::cut`), so bytes a client sends after the answer never
//! reach the app. A response the client abandoned (a cancelled HTTP/2
//! stream) is read to its end in the background, within [`DRAIN_MAX`]
//! bytes and [`DRAIN_FOR`], so that cancelling does not cost a new
//! upstream connection; past either bound the connection is closed.

use crate::http::{ConnCtx, Reply};
use crate::log::Entry;
use crate::upstream::{Conn, Upstream};
use crate::watch::now_ms;
use bytes::Bytes;
use http_body_util::{BodyExt, Either, Full};
use hyper::body::{Body, Frame, Incoming, SizeHint};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::sync::OwnedSemaphorePermit;

/// The most of an abandoned response read to keep its connection.
pub(crate) const DRAIN_MAX: u64 = 256 * 1024;
/// The longest an abandoned response is read to keep its connection.
pub(crate) const DRAIN_FOR: Duration = Duration::from_secs(2);

/// One request being served: started when hyper hands it over, done when
/// dropped (its response sent or abandoned), for the header deadline.
pub(crate) struct InFlight(pub(crate) Arc<ConnCtx>);

impl InFlight {
    pub(crate) fn new(ctx: Arc<ConnCtx>) -> Self {
        ctx.head.request_started();
        InFlight(ctx)
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.0.head.request_done();
    }
}

/// How far a request body has gone towards the upstream.
pub(crate) struct Progress {
    /// Bytes passed on.
    pub(crate) bytes: AtomicU64,
    /// When bytes last passed (or the request began), see [`now_ms`].
    last_ms: AtomicU64,
    /// Since when the upstream side has been waiting for the client's next
    /// bytes, see [`now_ms`]; 0 while it is not (an app that reads slowly
    /// is not a client that stalled).
    waiting_ms: AtomicU64,
    /// All of it passed on.
    ended: AtomicBool,
    /// The response began before the body ended: no more of the body is
    /// passed on (an app that answers unread bodies would read the rest as
    /// a request of its own).
    cut: AtomicBool,
}

impl Progress {
    /// A body that has not started.
    pub(crate) fn new() -> Self {
        Progress {
            bytes: AtomicU64::new(0),
            last_ms: AtomicU64::new(now_ms()),
            waiting_ms: AtomicU64::new(0),
            ended: AtomicBool::new(false),
            cut: AtomicBool::new(false),
        }
    }
    /// Whether the whole body has been passed on.
    pub(crate) fn ended(&self) -> bool {
        self.ended.load(Relaxed)
    }
    /// When bytes last moved (or the body ended), in [`now_ms`] terms.
    pub(crate) fn last_ms(&self) -> u64 {
        self.last_ms.load(Relaxed)
    }
    /// Since when the client has been awaited, if it is.
    pub(crate) fn waiting_ms(&self) -> Option<u64> {
        Some(self.waiting_ms.load(Relaxed)).filter(|&t| t != 0)
    }
    /// Passes nothing more on.
    pub(crate) fn cut(&self) {
        self.cut.store(true, Relaxed);
    }
}

/// A request body that notes its `Progress`.
pub struct Counting<B> {
    pub(crate) inner: B,
    /// None for a request without a body: nothing to note.
    pub(crate) p: Option<Arc<Progress>>,
}

impl<B: Body<Data = Bytes> + Unpin> Body for Counting<B> {
    type Data = Bytes;
    type Error = B::Error;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        if self.p.as_ref().is_some_and(|p| p.cut.load(Relaxed)) {
            // Never woken: the connection is closed once the response is
            // done, and this body with it.
            return Poll::Pending;
        }
        let r = Pin::new(&mut self.inner).poll_frame(cx);
        if let Some(p) = &self.p {
            match &r {
                Poll::Ready(Some(Ok(f))) => {
                    if let Some(d) = f.data_ref() {
                        p.bytes.fetch_add(d.len() as u64, Relaxed);
                        p.last_ms.store(now_ms(), Relaxed);
                    }
                    p.waiting_ms.store(0, Relaxed);
                    // hyper may stop polling once the length is reached.
                    if self.inner.is_end_stream() {
                        p.ended.store(true, Relaxed);
                    }
                }
                Poll::Ready(None) => {
                    p.last_ms.store(now_ms(), Relaxed);
                    p.ended.store(true, Relaxed);
                }
                Poll::Ready(Some(Err(_))) => {}
                Poll::Pending => {
                    if p.waiting_ms.load(Relaxed) == 0 {
                        p.waiting_ms.store(now_ms().max(1), Relaxed);
                    }
                }
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

/// The response body: counts bytes out and, when dropped (finished or
/// abandoned), records the request in the metrics and the access log and
/// gives the upstream connection back if it is in a known state (see the
/// module's doc).
pub struct Logged {
    pub(crate) inner: Reply,
    pub(crate) out: u64,
    pub(crate) ended: bool,
    pub(crate) finish: Option<Finish>,
}

pub(crate) struct Finish {
    /// The request, and through it the connection, the listener (its
    /// upstream pool) and the process (metrics, log).
    pub(crate) req: InFlight,
    /// The upstream connection, and whether it may be reused once the
    /// response has been read to its end (its request had no body).
    pub(crate) up: Option<(Conn, bool)>,
    /// The client connection's slot for a request upstream (HTTP/2).
    pub(crate) _slot: Option<OwnedSemaphorePermit>,
    pub(crate) status: u16,
    /// When the request arrived; kept only for the access log.
    pub(crate) start: Option<Instant>,
    pub(crate) body: Option<Arc<Progress>>,
    pub(crate) entry: Option<Entry>,
}

impl Body for Logged {
    type Data = Bytes;
    type Error = Box<dyn std::error::Error + Send + Sync>;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        let r = Pin::new(&mut self.inner).poll_frame(cx);
        match &r {
            Poll::Ready(Some(Ok(f))) => {
                if let Some(d) = f.data_ref() {
                    self.out += d.len() as u64;
                }
            }
            Poll::Ready(None) => self.ended = true,
            _ => {}
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

impl Drop for Logged {
    fn drop(&mut self) {
        let Some(f) = self.finish.take() else { return };
        let complete = self.ended || self.inner.is_end_stream();
        let ctx = &f.req.0;
        match f.up {
            Some((c, true)) if complete => ctx.proxy.pool.put(c),
            Some((c, true)) => {
                let rest = std::mem::replace(&mut self.inner, Either::Right(Full::default()));
                if let Either::Left(rest) = rest {
                    // The client connection's slot goes with it: cancelled
                    // streams cannot hold more upstream connections than
                    // `max_upstream_per_connection`.
                    tokio::spawn(drain(c, rest, ctx.proxy.pool.clone(), f._slot));
                }
            }
            // Dropped: the connection closes.
            _ => {}
        }
        let lm = ctx.info.metrics(&ctx.sh);
        let bin = f.body.as_ref().map_or(0, |p| p.bytes.load(Relaxed));
        lm.bytes_out.add(self.out);
        lm.bytes_in.add(bin);
        if let (Some(log), Some(mut entry)) = (ctx.sh.log.as_ref(), f.entry) {
            entry.status = f.status;
            entry.bytes_in = bin;
            entry.bytes_out = self.out;
            entry.duration_ms = f.start.map_or(0, |t| t.elapsed().as_millis() as u64);
            log.write(entry);
        }
    }
}

/// Reads the rest of a response the client abandoned, within
/// [`DRAIN_MAX`] bytes and [`DRAIN_FOR`], then gives its connection back;
/// past either bound, or on an error, the connection closes.
async fn drain(
    c: Conn,
    mut rest: Incoming,
    pool: Arc<Upstream>,
    _slot: Option<OwnedSemaphorePermit>,
) {
    let read = async {
        let mut n = 0u64;
        while let Some(f) = rest.frame().await {
            let f = f.ok()?;
            n += f.data_ref().map_or(0, |d| d.len() as u64);
            if n > DRAIN_MAX {
                return None;
            }
        }
        Some(())
    };
    if let Ok(Some(())) = tokio::time::timeout(DRAIN_FOR, read).await {
        pool.put(c);
    }
}
