//! Keep-alive HTTP/1.1 connections to the upstream of one `http` listener.
//!
//! A request takes an idle connection from its worker thread's stack, or
//! opens one, and puts it back when the response body has been read to the
//! end. One stack per worker thread, because a connection's I/O task runs
//! on the thread that opened it: taking and putting back is an uncontended
//! lock and a push or pop, with no hashing and no cross-thread wake-up.
//! Idle client connections hold no upstream connection, so a legacy app
//! sees at most `upstream_idle` idle connections per worker (nginx's
//! `keepalive`). Stacks are LIFO so the warmest connections are reused and
//! the coldest age out: a janitor drops those idle longer than
//! [`IDLE_FOR`]. Ages are in the janitor's ticks (it reads the clock every
//! 10 s): taking and putting back cost no clock read per request.

use crate::http::Counting;
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;

/// The sending half of one upstream connection.
pub type Sender = http1::SendRequest<Counting<Incoming>>;

/// How long an unused upstream connection is kept.
pub const IDLE_FOR: Duration = Duration::from_secs(90);

/// The janitor's period: a connection is dropped after between
/// `IDLE_FOR - TICK` and `IDLE_FOR` unused.
const TICK: Duration = Duration::from_secs(10);

/// [`IDLE_FOR`] in ticks.
const MAX_AGE: u64 = IDLE_FOR.as_secs() / TICK.as_secs();
const _: () = assert!(MAX_AGE > 0, "IDLE_FOR must be at least one TICK");

/// The upstream of one listener and its idle connections.
pub struct Upstream {
    authority: String,
    connect_timeout: Duration,
    max_idle: usize,
    /// Idle connections by worker thread (index 0: any other thread).
    idle: Box<[Own]>,
    /// Whole ticks since `born`, set by the janitor: the clock of the idle
    /// stacks.
    tick: AtomicU64,
    born: Instant,
}

/// Idle connections and the tick at which each was put back.
type Stack = Vec<(Sender, u64)>;

/// One worker's stack on cache lines of its own: two workers' locks side
/// by side would move one line between the cores at every request.
#[derive(Default)]
#[repr(align(128))]
struct Own(Mutex<Stack>);

impl Upstream {
    /// An upstream at `authority` (host:port) for `workers` worker threads,
    /// keeping up to `max_idle` idle connections per worker. Starts the
    /// janitor, so it must be called inside a runtime.
    pub fn new(
        authority: String,
        connect_timeout: Duration,
        workers: usize,
        max_idle: usize,
    ) -> Arc<Self> {
        let up = Arc::new(Upstream {
            authority,
            connect_timeout,
            max_idle,
            idle: (0..=workers).map(|_| Own::default()).collect(),
            tick: AtomicU64::new(0),
            born: Instant::now(),
        });
        tokio::spawn(janitor(Arc::downgrade(&up)));
        up
    }

    /// The most recently used idle connection that is still open.
    pub fn take(&self) -> Option<Sender> {
        let now = self.tick.load(Relaxed);
        let mut idle = self.stack();
        while let Some((tx, since)) = idle.pop() {
            if fresh(&tx, since, now) {
                return Some(tx);
            }
        }
        None
    }

    /// Keeps `tx` for a later request, unless it is closed or the stack is
    /// full (then dropping it closes the connection).
    pub fn put(&self, tx: Sender) {
        if tx.is_closed() {
            return;
        }
        let now = self.tick.load(Relaxed);
        let mut idle = self.stack();
        if idle.len() >= self.max_idle {
            evict(&mut idle, now);
            if idle.len() >= self.max_idle {
                return;
            }
        }
        idle.push((tx, now));
    }

    /// This thread's idle stack.
    fn stack(&self) -> std::sync::MutexGuard<'_, Stack> {
        let i = crate::listener::worker().min(self.idle.len() - 1);
        self.idle[i].0.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens a new connection under the connect timeout; its I/O runs in a
    /// task of its own until either side closes it.
    pub async fn connect(&self) -> io::Result<Sender> {
        let s = tokio::time::timeout(self.connect_timeout, TcpStream::connect(&self.authority))
            .await
            .map_err(|_| {
                io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "connect timed out after {}s",
                        self.connect_timeout.as_secs()
                    ),
                )
            })??;
        s.set_nodelay(true)?;
        let (tx, conn) = http1::Builder::new()
            .handshake(TokioIo::new(Plain(s)))
            .await
            .map_err(io::Error::other)?;
        let authority = self.authority.clone();
        tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!("upstream connection to {authority} ended: {e}");
            }
        });
        Ok(tx)
    }
}

/// An upstream socket whose single-buffer vectored writes (hyper's usual
/// request head, rustls's usual record in `originate` mode) go out by
/// `send(2)`, not `writev(2)`: see [`crate::watch::only_buffer`].
pub(crate) struct Plain(pub(crate) TcpStream);

impl AsyncRead for Plain {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_read(cx, buf)
    }
}

impl AsyncWrite for Plain {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.0).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match crate::watch::only_buffer(bufs) {
            Some(one) => Pin::new(&mut self.0).poll_write(cx, one),
            None => Pin::new(&mut self.0).poll_write_vectored(cx, bufs),
        }
    }
    fn is_write_vectored(&self) -> bool {
        true
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.0).poll_shutdown(cx)
    }
}

/// Open and put back fewer than [`MAX_AGE`] ticks before `now`.
fn fresh(tx: &Sender, since: u64, now: u64) -> bool {
    !tx.is_closed() && now.saturating_sub(since) < MAX_AGE
}

/// Drops closed and expired connections; the oldest are at the bottom.
fn evict(idle: &mut Stack, now: u64) {
    idle.retain(|(tx, since)| fresh(tx, *since, now));
}

async fn janitor(up: Weak<Upstream>) {
    let mut every = tokio::time::interval_at(tokio::time::Instant::now() + TICK, TICK);
    every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        every.tick().await;
        let Some(up) = up.upgrade() else { return };
        // From the clock, not counted: a stalled janitor must not make
        // idle connections younger than they are.
        let now = up.born.elapsed().as_secs() / TICK.as_secs();
        up.tick.store(now, Relaxed);
        for Own(stack) in up.idle.iter() {
            evict(&mut stack.lock().unwrap_or_else(|p| p.into_inner()), now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A sender on an in-memory connection whose I/O task runs.
    async fn sender() -> Sender {
        let (a, _b) = tokio::io::duplex(1024);
        let (tx, conn) = http1::handshake(TokioIo::new(a)).await.unwrap();
        tokio::spawn(async move {
            let _keep_peer_open = _b;
            let _ = conn.await;
        });
        tx
    }

    #[tokio::test]
    async fn an_idle_connection_is_reused_until_it_is_max_age_ticks_old() {
        let up = Upstream::new("127.0.0.1:9".into(), Duration::from_secs(1), 1, 4);
        up.put(sender().await);
        assert!(up.take().is_some(), "just put back");
        up.put(sender().await);
        up.tick.store(MAX_AGE - 1, Relaxed);
        assert!(up.take().is_some(), "one tick short of IDLE_FOR");
        up.put(sender().await);
        up.tick.fetch_add(MAX_AGE, Relaxed);
        assert!(up.take().is_none(), "IDLE_FOR old: dropped, not reused");
    }

    #[tokio::test]
    async fn a_full_stack_makes_room_by_dropping_the_expired() {
        let up = Upstream::new("127.0.0.1:9".into(), Duration::from_secs(1), 1, 2);
        up.put(sender().await);
        up.put(sender().await);
        up.tick.store(MAX_AGE, Relaxed);
        up.put(sender().await);
        assert_eq!(up.stack().len(), 1, "the two expired ones made room");
        assert!(up.take().is_some());
        assert!(up.take().is_none());
    }
}
