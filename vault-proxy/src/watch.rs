//! Deadlines on a client connection, checked by a watchdog that runs beside
//! the connection's future: the idle timeout (no byte either way for
//! `idle_timeout_s`) and, for `http` mode, the request header deadline
//! (`header_timeout_s` from the first byte of a request, or from the end
//! of the TLS handshake for a connection's first request, to its complete
//! header).
//!
//! The hot path stays cheap: the stream wrapper bumps a counter per read
//! or write and, on the first byte of an HTTP/1.1 request, notes the time;
//! nothing wakes the watchdog, which reads the clock and the counters on
//! its own schedule.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::atomic::Ordering::{Acquire, Relaxed, Release};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicU8};
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::time::Instant;

/// Read-ahead size for bulk transfers.
const AHEAD: usize = 64 * 1024;

/// A stream that counts the reads and writes that moved bytes, so the idle
/// watchdog can tell a quiet connection without a clock read per I/O.
///
/// It also reads ahead during bulk transfers: rustls reads TLS records
/// 4 KiB at a time, a syscall per 4 KiB. Once a read fills the caller's
/// buffer (more is likely waiting), reads go through a 64 KiB buffer until
/// the socket has nothing more; then the buffer goes back to a small
/// per-thread spare list, so quiet connections hold none.
pub struct IdleIo<T> {
    inner: T,
    moves: Arc<AtomicU64>,
    head: Option<Arc<HeadDeadline>>,
    ahead: Option<Ahead>,
    bulk: bool,
}

struct Ahead {
    buf: Box<[u8]>,
    start: usize,
    end: usize,
}

thread_local! {
    /// Read-ahead buffers not in use on this thread, so a burst does not
    /// allocate and zero 64 KiB.
    static SPARE: std::cell::RefCell<Vec<Box<[u8]>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// Spare buffers kept per thread.
const SPARES: usize = 8;

impl Ahead {
    fn new() -> Self {
        let buf = SPARE
            .try_with(|s| s.borrow_mut().pop())
            .ok()
            .flatten()
            .unwrap_or_else(|| vec![0; AHEAD].into_boxed_slice());
        Ahead {
            buf,
            start: 0,
            end: 0,
        }
    }
}

impl Drop for Ahead {
    fn drop(&mut self) {
        let buf = std::mem::take(&mut self.buf);
        // During thread exit the list may be gone: then just free.
        let _ = SPARE.try_with(|s| {
            let mut s = s.borrow_mut();
            if s.len() < SPARES {
                s.push(buf);
            }
        });
    }
}

impl<T> IdleIo<T> {
    /// Wraps `inner`; the returned counter is what [`idle_guard`] watches.
    pub fn new(inner: T) -> (Self, Arc<AtomicU64>) {
        let moves = Arc::new(AtomicU64::new(0));
        (
            IdleIo {
                inner,
                moves: moves.clone(),
                head: None,
                ahead: None,
                bulk: false,
            },
            moves,
        )
    }
    /// As [`IdleIo::new`], and bytes read between requests start `head`'s
    /// deadline.
    pub fn with_head(inner: T, head: Arc<HeadDeadline>) -> (Self, Arc<AtomicU64>) {
        let (mut io, moves) = IdleIo::new(inner);
        io.head = Some(head);
        (io, moves)
    }
    /// The wrapped stream.
    pub fn get_ref(&self) -> &T {
        &self.inner
    }
    /// Whether bytes already read from the stream wait in the read-ahead.
    pub fn has_buffered(&self) -> bool {
        self.ahead.as_ref().is_some_and(|a| a.start < a.end)
    }
    fn moved(&self) {
        self.moves.fetch_add(1, Relaxed);
        if let Some(h) = &self.head {
            h.bytes_arrived();
        }
    }
}

impl<T: AsyncRead + Unpin> AsyncRead for IdleIo<T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = &mut *self;
        if let Some(a) = this.ahead.as_mut().filter(|a| a.start < a.end) {
            let n = buf.remaining().min(a.end - a.start);
            buf.put_slice(&a.buf[a.start..a.start + n]);
            a.start += n;
            return Poll::Ready(Ok(()));
        }
        if !this.bulk || buf.remaining() >= AHEAD {
            let (before, room) = (buf.filled().len(), buf.remaining());
            let r = Pin::new(&mut this.inner).poll_read(cx, buf);
            let n = buf.filled().len() - before;
            if n > 0 {
                this.moved();
                this.bulk = n == room;
            }
            return r;
        }
        let a = this.ahead.get_or_insert_with(Ahead::new);
        let mut rb = ReadBuf::new(&mut a.buf);
        match Pin::new(&mut this.inner).poll_read(cx, &mut rb) {
            Poll::Ready(Ok(())) if !rb.filled().is_empty() => {
                let got = rb.filled().len();
                let n = buf.remaining().min(got);
                buf.put_slice(&a.buf[..n]);
                (a.start, a.end) = (n, got);
                this.moved();
                Poll::Ready(Ok(()))
            }
            other => {
                // Drained (or EOF, or an error): back to direct reads.
                this.ahead = None;
                this.bulk = false;
                other
            }
        }
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for IdleIo<T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let r = Pin::new(&mut self.inner).poll_write(cx, buf);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.moves.fetch_add(1, Relaxed);
        }
        r
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        if let Some(one) = only_buffer(bufs) {
            return self.poll_write(cx, one);
        }
        let r = Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        if matches!(r, Poll::Ready(Ok(n)) if n > 0) {
            self.moves.fetch_add(1, Relaxed);
        }
        r
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

/// The one non-empty buffer of `bufs`, if there is exactly one.
///
/// rustls hands its records over as an `IoSlice` list, usually of one, and
/// hyper its queued head and body. For a socket, one buffer is better sent
/// with `send(2)` (what tokio's `poll_write` does) than `writev(2)`, which
/// goes through the VFS write path (iovec import, `rw_verify_area`,
/// fsnotify) for nothing: about 3% of the gateway's samples per 1 KiB
/// request, against 0.5% for `send(2)` (docs/PERFORMANCE.md).
pub(crate) fn only_buffer<'a>(bufs: &'a [io::IoSlice<'_>]) -> Option<&'a [u8]> {
    let mut full = bufs.iter().filter(|b| !b.is_empty());
    match (full.next(), full.next()) {
        (Some(one), None) => Some(one),
        _ => None,
    }
}

/// Between requests: the next byte read starts a header.
const WAIT: u8 = 0;
/// A request header is awaited: the deadline runs.
const HEAD: u8 = 1;
/// Requests in flight, or an HTTP/2 connection past its first request.
const BUSY: u8 = 2;

/// Whether a request header is being awaited on one HTTP connection.
///
/// A connection starts awaiting its first header. Over HTTP/1.1 the
/// deadline starts again with the first byte after the last response; the
/// wait between requests is the idle timeout's, not the header deadline's
/// (nginx's `keepalive_timeout` against `client_header_timeout`). Over
/// HTTP/2 only the first request has a deadline: later frames may be
/// pings and window updates, and h2 bounds header size itself.
///
/// The watchdog is not woken when a header starts (that would re-poll the
/// whole connection once per request); it looks at least once per deadline
/// length and then sleeps until the exact deadline.
pub struct HeadDeadline {
    state: AtomicU8,
    in_flight: AtomicU32,
    rearm: AtomicBool,
    /// HTTP/2: how long the connection may have no stream open, in ms
    /// (0: no such limit), and since when it has had none.
    streamless_for_ms: AtomicU64,
    streamless_since_ms: AtomicU64,
    /// When the awaited header started (HEAD) or the wait for the next
    /// request began (WAIT), in ms since [`base`].
    since_ms: AtomicU64,
}

impl Default for HeadDeadline {
    fn default() -> Self {
        HeadDeadline {
            state: AtomicU8::new(HEAD),
            in_flight: AtomicU32::new(0),
            rearm: AtomicBool::new(true),
            streamless_for_ms: AtomicU64::new(0),
            streamless_since_ms: AtomicU64::new(0),
            since_ms: AtomicU64::new(now_ms()),
        }
    }
}

fn base() -> std::time::Instant {
    static BASE: OnceLock<std::time::Instant> = OnceLock::new();
    *BASE.get_or_init(std::time::Instant::now)
}

/// Milliseconds since a process-wide base: a clock reading that fits an
/// atomic.
pub(crate) fn now_ms() -> u64 {
    base().elapsed().as_millis() as u64
}

/// The instant `ms` milliseconds after the base of [`now_ms`].
pub(crate) fn instant_at(ms: u64) -> Instant {
    Instant::from_std(base() + Duration::from_millis(ms))
}

impl HeadDeadline {
    /// HTTP/2: only the first request is timed, and the connection ends
    /// once it has had no stream open for `streamless` (PINGs and window
    /// updates move bytes, so the idle timeout alone would never end it).
    pub fn http2(&self, streamless: Duration) {
        self.rearm.store(false, Relaxed);
        self.streamless_since_ms.store(now_ms(), Relaxed);
        self.streamless_for_ms
            .store(streamless.as_millis().max(1) as u64, Relaxed);
    }
    /// A request header is complete and its request is being served.
    pub fn request_started(&self) {
        self.in_flight.fetch_add(1, Relaxed);
        self.state.store(BUSY, Relaxed);
    }
    /// A request's response is done (sent or abandoned).
    pub fn request_done(&self) {
        // HTTP/2: the time is stored *before* the count can reach zero, so
        // the watchdog never sees no stream with an old time (Release here,
        // Acquire there).
        if self.streamless_for_ms.load(Relaxed) != 0 {
            let stored = self.in_flight.load(Relaxed) == 1;
            if stored {
                self.streamless_since_ms.store(now_ms(), Relaxed);
            }
            // Another stream ended at the same moment: store it late.
            if self.in_flight.fetch_sub(1, Release) == 1 && !stored {
                self.streamless_since_ms.store(now_ms(), Relaxed);
            }
            return;
        }
        if self.in_flight.fetch_sub(1, Relaxed) == 1 && self.rearm.load(Relaxed) {
            self.since_ms.store(now_ms(), Relaxed);
            self.state.store(WAIT, Relaxed);
        }
    }
    /// HTTP/2: when the connection will have been without a stream for
    /// too long, if it has none open now.
    fn streamless_until(&self) -> Option<Instant> {
        let limit = self.streamless_for_ms.load(Relaxed);
        (limit != 0 && self.in_flight.load(Acquire) == 0)
            .then(|| instant_at(self.streamless_since_ms.load(Relaxed) + limit))
    }
    /// The connection became a tunnel (a WebSocket upgrade): no more
    /// headers, only the idle timeout.
    pub fn upgraded(&self) {
        self.rearm.store(false, Relaxed);
        self.state.store(BUSY, Relaxed);
    }
    /// Since when the connection has waited for its next request with
    /// nothing in flight and no byte of it read, if it has.
    pub fn waiting_since(&self) -> Option<Instant> {
        (self.state.load(Relaxed) == WAIT).then(|| self.at(self.since_ms.load(Relaxed)))
    }
    fn at(&self, ms: u64) -> Instant {
        instant_at(ms)
    }
    fn bytes_arrived(&self) {
        if self.state.load(Relaxed) == WAIT {
            self.since_ms.store(now_ms(), Relaxed);
            self.state.store(HEAD, Relaxed);
        }
    }
    /// When the header being awaited started, if one is.
    fn awaiting_since(&self) -> Option<Instant> {
        (self.state.load(Relaxed) == HEAD).then(|| self.at(self.since_ms.load(Relaxed)))
    }
}

/// How a guarded connection ended.
pub enum Ended<T> {
    /// Its future finished.
    Done(T),
    /// Nothing moved for the idle timeout, or an HTTP/2 connection had no
    /// stream open for `h2_idle_timeout_s`.
    Idle,
    /// A request header did not complete within the header deadline.
    HeaderTimeout,
}

/// Runs `fut` until it ends or `moves` stood still for `idle`; returns None
/// when the connection was cut for idleness. See [`guard`].
pub async fn idle_guard<F: Future>(
    fut: F,
    moves: Arc<AtomicU64>,
    idle: Duration,
) -> Option<F::Output> {
    match guard(fut, moves, idle, None).await {
        Ended::Done(out) => Some(out),
        _ => None,
    }
}

/// Runs `fut` under the idle timeout and, with `head`, the header deadline.
/// The watchdog looks every eighth of `idle` (and at least once per header
/// deadline), so a connection is cut between `idle` and `idle * 9/8` after
/// its last byte; the header deadline is exact.
pub async fn guard<F: Future>(
    fut: F,
    moves: Arc<AtomicU64>,
    idle: Duration,
    head: Option<(&HeadDeadline, Duration)>,
) -> Ended<F::Output> {
    let mut tick = (idle / 8).max(Duration::from_millis(10));
    if let Some((h, limit)) = head {
        tick = tick.min(limit);
        // An HTTP/2 connection that ends its last stream is looked at
        // again within its stream-less limit, not an eighth of `idle`.
        let streamless = h.streamless_for_ms.load(Relaxed);
        if streamless != 0 {
            tick = tick.min(Duration::from_millis(streamless));
        }
    }
    let watchdog = async {
        let mut seen = moves.load(Relaxed);
        let mut quiet_since = Instant::now();
        let first = match head.and_then(|(h, limit)| Some(h.awaiting_since()? + limit)) {
            Some(deadline) => deadline.min(quiet_since + tick),
            None => quiet_since + tick,
        };
        // One timer for the connection's life, moved once per wake.
        let sleep = tokio::time::sleep_until(first);
        tokio::pin!(sleep);
        loop {
            sleep.as_mut().await;
            let now = Instant::now();
            let m = moves.load(Relaxed);
            if m != seen {
                seen = m;
                quiet_since = now;
            } else if now - quiet_since >= idle {
                return Ended::Idle;
            }
            let mut wake = now + tick;
            if let Some((h, limit)) = head {
                if let Some(until) = h.streamless_until() {
                    if now >= until {
                        return Ended::Idle;
                    }
                    wake = wake.min(until);
                }
                if let Some(since) = h.awaiting_since() {
                    if now >= since + limit {
                        return Ended::HeaderTimeout;
                    }
                    wake = wake.min(since + limit);
                }
            }
            sleep.as_mut().reset(wake);
        }
    };
    tokio::select! {
        out = fut => Ended::Done(out),
        cut = watchdog => cut,
    }
}

#[cfg(test)]
mod tests {
    use super::only_buffer;
    use std::io::IoSlice;

    #[test]
    fn only_buffer_is_the_single_non_empty_slice() {
        let (a, b, e) = (b"record".as_slice(), b"body".as_slice(), b"".as_slice());
        assert_eq!(only_buffer(&[IoSlice::new(a)]), Some(a));
        assert_eq!(
            only_buffer(&[IoSlice::new(e), IoSlice::new(a), IoSlice::new(e)]),
            Some(a)
        );
        assert_eq!(only_buffer(&[IoSlice::new(a), IoSlice::new(b)]), None);
        assert_eq!(only_buffer(&[IoSlice::new(e)]), None);
        assert_eq!(only_buffer(&[]), None);
    }
}
