//! The bodies `http` mode wraps around a request: the request body
//! counts the bytes in; the response body counts the bytes out and, when
//! it is dropped (sent to the end or abandoned), records the request in
//! the metrics and the access log, gives the upstream connection back if
//! it was read to its end, and ends the request for the header deadline.

use crate::http::{ConnCtx, Reply};
use crate::log::Entry;
use crate::upstream::Sender;
use bytes::Bytes;
use hyper::body::{Body, Frame, SizeHint};
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Instant;

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

/// A request body that counts the bytes passing through.
pub struct Counting<B> {
    pub(crate) inner: B,
    /// None for a request without a body: nothing to count.
    pub(crate) n: Option<Arc<AtomicU64>>,
}

impl<B: Body<Data = Bytes> + Unpin> Body for Counting<B> {
    type Data = Bytes;
    type Error = B::Error;
    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let r = Pin::new(&mut self.inner).poll_frame(cx);
        if let Poll::Ready(Some(Ok(f))) = &r {
            if let (Some(d), Some(n)) = (f.data_ref(), &self.n) {
                n.fetch_add(d.len() as u64, Relaxed);
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
/// gives the upstream connection back if the body was read to its end.
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
    pub(crate) tx: Option<Sender>,
    pub(crate) status: u16,
    /// When the request arrived; kept only for the access log.
    pub(crate) start: Option<Instant>,
    pub(crate) bytes_in: Option<Arc<AtomicU64>>,
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
        if let (Some(tx), true) = (f.tx, complete) {
            ctx.proxy.pool.put(tx);
        }
        let lm = ctx.info.metrics(&ctx.sh);
        let bin = f.bytes_in.as_ref().map_or(0, |n| n.load(Relaxed));
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
