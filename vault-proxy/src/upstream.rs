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
//!
//! A connection is only ever reused in a known state: the caller puts it
//! back only when its request body was sent whole before the response
//! began and the response was read to its end (see `body`). Any other
//! connection is dropped, and dropping a [`Conn`] aborts its I/O task, so
//! the socket closes at once: bytes a client sends after the response
//! (a request smuggled as a late body) never reach the upstream.
//!
//! Connections per listener are capped (`max_upstream_connections`): at
//! the cap a request takes an idle connection of another worker, or waits
//! for a slot.

use crate::http::Counting;
use hyper::body::Incoming;
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use std::io;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering::Relaxed};
use std::sync::{Arc, Mutex, Weak};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio::task::AbortHandle;

/// The sending half of one upstream connection.
pub type Sender = http1::SendRequest<Counting<Incoming>>;

/// One upstream connection: its sending half, its I/O task and its slot
/// under the listener's cap. Dropped, it closes: the I/O task is aborted
/// (a body still being relayed stops there) and the slot is freed.
pub struct Conn {
    /// The sending half.
    pub tx: Sender,
    io: Option<AbortHandle>,
    _slot: OwnedSemaphorePermit,
}

impl Conn {
    /// Lets the I/O task run to its own end when this is dropped: after a
    /// `101`, hyper hands the socket over from that task, and aborting it
    /// early would lose the upgrade.
    pub fn keep_task(&mut self) {
        self.io = None;
    }
}

impl Drop for Conn {
    fn drop(&mut self) {
        if let Some(io) = self.io.take() {
            io.abort();
        }
    }
}

/// Why no connection could be had.
#[derive(Debug)]
pub enum OpenError {
    /// Connecting failed or timed out.
    Connect(io::Error),
    /// The listener's connection cap stayed reached for the whole wait.
    Full,
}

/// The most of a response read from the upstream at once. hyper's default
/// (~400 KiB) let each slow reader of a large response hold about 1 MB of
/// the gateway's memory (a full read buffer, and the chunk before it
/// waiting for the client); reads of this size keep it near a few times
/// this while bulk transfers still take few system calls (the client
/// side's read-ahead is the same size).
const READ_MAX: usize = 64 * 1024;

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
    /// One permit per open connection, idle or busy.
    slots: Arc<Semaphore>,
    max_open: usize,
    /// Requests waiting for a slot: a connection given back then closes
    /// instead, freeing its slot for them.
    waiting: AtomicUsize,
    /// The longest wait for a slot at the cap.
    slot_wait: Duration,
    /// Idle connections by worker thread (index 0: any other thread).
    idle: Box<[Own]>,
    /// Whole ticks since `born`, set by the janitor: the clock of the idle
    /// stacks.
    tick: AtomicU64,
    born: Instant,
}

/// Idle connections and the tick at which each was put back.
type Stack = Vec<(Conn, u64)>;

/// One worker's stack on cache lines of its own: two workers' locks side
/// by side would move one line between the cores at every request.
#[derive(Default)]
#[repr(align(128))]
struct Own(Mutex<Stack>);

impl Upstream {
    /// An upstream at `authority` (host:port) for `workers` worker threads,
    /// keeping up to `max_idle` idle connections per worker and at most
    /// `max_open` connections in all (a request waits up to `slot_wait`
    /// for one). Starts the janitor, so it must be called inside a runtime.
    pub fn new(
        authority: String,
        connect_timeout: Duration,
        workers: usize,
        max_idle: usize,
        max_open: usize,
        slot_wait: Duration,
    ) -> Arc<Self> {
        let up = Arc::new(Upstream {
            authority,
            connect_timeout,
            max_idle,
            slots: Arc::new(Semaphore::new(max_open)),
            max_open,
            waiting: AtomicUsize::new(0),
            slot_wait,
            idle: (0..=workers).map(|_| Own::default()).collect(),
            tick: AtomicU64::new(0),
            born: Instant::now(),
        });
        tokio::spawn(janitor(Arc::downgrade(&up)));
        up
    }

    /// The most recently used idle connection of this worker that is
    /// still open.
    pub fn take(&self) -> Option<Conn> {
        pop_fresh(&mut self.stack(), self.tick.load(Relaxed))
    }

    /// Keeps `c` for a later request, unless it is closed, the stack is
    /// full, or requests wait for a slot (then one of them gets it);
    /// otherwise dropping it closes the connection.
    pub fn put(&self, c: Conn) {
        if c.tx.is_closed() || self.waiting.load(Relaxed) > 0 {
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
        idle.push((c, now));
    }

    /// Upstream connections open now, idle or busy.
    pub fn open_count(&self) -> usize {
        self.max_open - self.slots.available_permits()
    }

    /// This thread's idle stack.
    fn stack(&self) -> std::sync::MutexGuard<'_, Stack> {
        let i = crate::listener::worker().min(self.idle.len() - 1);
        lock(&self.idle[i])
    }

    /// A new connection, or at the cap an idle one of another worker, or
    /// one opened once a slot frees within the wait.
    pub async fn open(&self) -> Result<Conn, OpenError> {
        let slot = match self.slots.clone().try_acquire_owned() {
            Ok(s) => s,
            Err(_) => {
                let now = self.tick.load(Relaxed);
                if let Some(c) = self.idle.iter().find_map(|o| pop_fresh(&mut lock(o), now)) {
                    return Ok(c);
                }
                // Counted while it waits, however the wait ends (a client
                // that cancels must not leave the count up for good).
                let _waiting = Waiting::new(&self.waiting);
                let got =
                    tokio::time::timeout(self.slot_wait, self.slots.clone().acquire_owned()).await;
                match got {
                    Ok(Ok(s)) => s,
                    _ => return Err(OpenError::Full),
                }
            }
        };
        self.connect(slot).await.map_err(OpenError::Connect)
    }

    /// Opens a new connection in `slot` under the connect timeout; its I/O
    /// runs in a task of its own until either side closes it or the
    /// [`Conn`] is dropped.
    async fn connect(&self, slot: OwnedSemaphorePermit) -> io::Result<Conn> {
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
            .max_buf_size(READ_MAX)
            .handshake(TokioIo::new(Plain(s)))
            .await
            .map_err(io::Error::other)?;
        let authority = self.authority.clone();
        let io = tokio::spawn(async move {
            if let Err(e) = conn.with_upgrades().await {
                tracing::debug!("upstream connection to {authority} ended: {e}");
            }
        });
        Ok(Conn {
            tx,
            io: Some(io.abort_handle()),
            _slot: slot,
        })
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

/// One request counted in [`Upstream::waiting`] while it lives.
struct Waiting<'a>(&'a AtomicUsize);

impl<'a> Waiting<'a> {
    fn new(n: &'a AtomicUsize) -> Self {
        n.fetch_add(1, Relaxed);
        Waiting(n)
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Relaxed);
    }
}

fn lock(o: &Own) -> std::sync::MutexGuard<'_, Stack> {
    o.0.lock().unwrap_or_else(|p| p.into_inner())
}

/// The newest fresh connection of `idle`; the stale ones above it go.
fn pop_fresh(idle: &mut Stack, now: u64) -> Option<Conn> {
    while let Some((c, since)) = idle.pop() {
        if fresh(&c, since, now) {
            return Some(c);
        }
    }
    None
}

/// Open and put back fewer than [`MAX_AGE`] ticks before `now`.
fn fresh(c: &Conn, since: u64, now: u64) -> bool {
    !c.tx.is_closed() && now.saturating_sub(since) < MAX_AGE
}

/// Drops closed and expired connections; the oldest are at the bottom.
fn evict(idle: &mut Stack, now: u64) {
    idle.retain(|(c, since)| fresh(c, *since, now));
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
        for o in up.idle.iter() {
            evict(&mut lock(o), now);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A connection in one of `up`'s slots, on an in-memory stream whose
    /// I/O task runs.
    async fn conn(up: &Upstream) -> Conn {
        let (a, b) = tokio::io::duplex(1024);
        let (tx, c) = http1::handshake(TokioIo::new(a)).await.unwrap();
        let io = tokio::spawn(async move {
            let _keep_peer_open = b;
            let _ = c.await;
        });
        Conn {
            tx,
            io: Some(io.abort_handle()),
            _slot: up.slots.clone().try_acquire_owned().unwrap(),
        }
    }

    fn upstream(max_idle: usize, max_open: usize) -> Arc<Upstream> {
        let wait = Duration::from_millis(50);
        Upstream::new("127.0.0.1:9".into(), wait, 1, max_idle, max_open, wait)
    }

    #[tokio::test]
    async fn an_idle_connection_is_reused_until_it_is_max_age_ticks_old() {
        let up = upstream(4, 8);
        up.put(conn(&up).await);
        assert!(up.take().is_some(), "just put back");
        up.put(conn(&up).await);
        up.tick.store(MAX_AGE - 1, Relaxed);
        assert!(up.take().is_some(), "one tick short of IDLE_FOR");
        up.put(conn(&up).await);
        up.tick.fetch_add(MAX_AGE, Relaxed);
        assert!(up.take().is_none(), "IDLE_FOR old: dropped, not reused");
    }

    #[tokio::test]
    async fn a_full_stack_makes_room_by_dropping_the_expired() {
        let up = upstream(2, 8);
        up.put(conn(&up).await);
        up.put(conn(&up).await);
        up.tick.store(MAX_AGE, Relaxed);
        up.put(conn(&up).await);
        assert_eq!(up.stack().len(), 1, "the two expired ones made room");
        assert!(up.take().is_some());
        assert!(up.take().is_none());
    }

    #[tokio::test]
    async fn a_dropped_connection_frees_its_slot_and_stops_its_task() {
        let up = upstream(2, 1);
        let c = conn(&up).await;
        assert_eq!(up.open_count(), 1);
        let io = c.io.clone().unwrap();
        drop(c);
        assert_eq!(up.open_count(), 0, "the slot is free again");
        tokio::task::yield_now().await;
        assert!(io.is_finished(), "the I/O task was aborted");
    }

    #[tokio::test]
    async fn at_the_cap_an_idle_connection_is_taken_and_none_is_opened() {
        let up = upstream(2, 1);
        up.put(conn(&up).await);
        // At the cap: the idle connection is taken, nothing is opened.
        let held = up.open().await.expect("the idle connection");
        assert_eq!(up.open_count(), 1);
        assert!(up.take().is_none(), "it was taken, not copied");
        let t = Instant::now();
        assert!(matches!(up.open().await, Err(OpenError::Full)));
        assert!(t.elapsed() >= Duration::from_millis(50), "it waited");
        // A request that waits gets the slot of a connection given back.
        let up2 = up.clone();
        let waiter = tokio::spawn(async move { up2.open().await });
        while up.waiting.load(Relaxed) == 0 {
            tokio::task::yield_now().await;
        }
        up.put(held);
        assert!(
            matches!(waiter.await.unwrap(), Err(OpenError::Connect(_))),
            "the waiter got a slot and tried to connect"
        );
        assert!(up.take().is_none(), "the connection was closed, not kept");
        // A waiter that gives up (its client cancelled) is no longer
        // counted: connections given back are kept again.
        let held = up.open().await.err();
        assert!(held.is_some());
        let c = conn(&up).await;
        let up3 = up.clone();
        let gave_up = tokio::spawn(async move { up3.open().await.is_ok() });
        while up.waiting.load(Relaxed) == 0 {
            tokio::task::yield_now().await;
        }
        gave_up.abort();
        let _ = gave_up.await;
        assert_eq!(
            up.waiting.load(Relaxed),
            0,
            "a cancelled wait is still counted"
        );
        up.put(c);
        assert!(up.take().is_some(), "kept for reuse");
        // A slot free: `open` connects (to a closed port here, so it fails
        // to connect, which shows it got past the cap).
        assert!(matches!(up.open().await, Err(OpenError::Connect(_))));
    }
}
