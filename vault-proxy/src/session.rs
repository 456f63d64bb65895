//! One client connection of an `http` listener, from accept to close: the
//! TLS handshake, the deadlines, HTTP/2 through hyper, and HTTP/1.1 in
//! episodes.
//!
//! hyper keeps, per HTTP/1.1 connection and for its whole life, an 8 KiB
//! read buffer, an 8 KiB write buffer and a box for the request in flight;
//! nginx frees its buffers between keep-alive requests. So a connection
//! that has waited [`DEMOTE_AFTER`] for its next request is shut down
//! inside hyper only (nothing goes on the wire; the client sees an open
//! keep-alive connection), its socket is taken back, and it waits holding
//! only its TLS state. Its next byte starts a new hyper connection. A busy
//! connection never pays for this. An upgrade (WebSocket) hands the socket
//! back the same way, and it is spliced to the upstream here, under the
//! idle timeout.

use crate::http::{ConnCtx, HttpProxy};
use crate::listener::{stopped, tls_accept, ClientTls, ConnInfo, Handler, Shared};
use crate::log::Entry;
use crate::watch::{guard, Ended, HeadDeadline, IdleIo};
use bytes::{Buf, Bytes};
use hyper_util::rt::TokioIo;
use std::future::Future;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::Duration;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
use tokio::sync::watch;

/// How long an HTTP/1.1 connection waits for its next request before its
/// hyper state is dropped.
pub const DEMOTE_AFTER: Duration = Duration::from_secs(1);

type BoxError = Box<dyn std::error::Error + Send + Sync>;

impl Handler for HttpProxy {
    async fn serve(self: Arc<Self>, sock: TcpStream, info: ConnInfo, sh: Arc<Shared>) {
        let head = Arc::new(HeadDeadline::default());
        let (io, moves) = IdleIo::with_head(sock, head.clone());
        let idle = Duration::from_secs(sh.limits.idle_timeout_s);
        let header = Duration::from_secs(sh.limits.header_timeout_s);
        // Boxed: the handshake's state is freed when it ends, so the task
        // of an idle connection is small.
        let Some((tls, info)) = Box::pin(tls_accept(&self.tls, io, info, &sh)).await else {
            return;
        };
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        if h2 {
            head.http2(Duration::from_secs(sh.limits.h2_idle_timeout_s));
        }
        let proto = if h2 { "HTTP/2" } else { "HTTP/1.1" };
        let ctx = Arc::new(ConnCtx::new(
            info,
            head.clone(),
            proto,
            self.clone(),
            sh.clone(),
        ));
        let stop = sh.shutdown.clone();
        // Boxed once here rather than copied into `guard`'s state.
        let fut: Pin<Box<dyn Future<Output = Result<(), BoxError>> + Send + '_>> = if h2 {
            Box::pin(self.serve_h2(tls, ctx.clone(), stop))
        } else {
            Box::pin(self.serve_h1(tls, ctx.clone(), stop))
        };
        // A reload that revokes the client certificate ends the
        // connection, as if it had closed (logged by unless_revoked).
        let fut = async {
            crate::listener::unless_revoked(fut, &self.tls, &ctx.info, &sh)
                .await
                .unwrap_or(Ok(()))
        };
        let ended = guard(fut, moves, idle, Some((&head, header))).await;
        let info = &ctx.info;
        match ended {
            Ended::Done(Err(e)) => {
                // hyper answered a malformed or oversized header itself.
                let status = match e.downcast_ref::<hyper::Error>() {
                    Some(he) if he.is_parse_too_large() => Some(431),
                    Some(he) if he.is_parse() => Some(400),
                    _ => None,
                };
                if let Some(status) = status {
                    rejected(&ctx, &sh, status);
                }
                tracing::debug!(listener = %info.listener, client = %info.peer, "connection ended: {e}")
            }
            Ended::Idle => {
                tracing::debug!(listener = %info.listener, client = %info.peer, "idle timeout")
            }
            Ended::HeaderTimeout => {
                // As nginx: recorded as 408, the connection closed unanswered.
                rejected(&ctx, &sh, 408);
                tracing::debug!(listener = %info.listener, client = %info.peer, "request header deadline passed")
            }
            Ended::Done(Ok(())) => {}
        }
    }
}

impl HttpProxy {
    async fn serve_h2(
        self: &Arc<Self>,
        mut tls: ClientTls,
        ctx: Arc<ConnCtx>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), BoxError> {
        if !wait_for_bytes(&mut tls, &[], &mut stop).await? {
            return Ok(());
        }
        let svc = hyper::service::service_fn(move |req| HttpProxy::handle(ctx.clone(), req));
        let mut conn = Box::pin(self.h2.serve_connection(TokioIo::new(tls), svc));
        let r = tokio::select! {
            r = conn.as_mut() => r,
            _ = stopped(&mut stop) => {
                conn.as_mut().graceful_shutdown();
                conn.await
            }
        };
        Ok(r?)
    }

    async fn serve_h1(
        self: &Arc<Self>,
        tls: ClientTls,
        ctx: Arc<ConnCtx>,
        mut stop: watch::Receiver<bool>,
    ) -> Result<(), BoxError> {
        // Boxed: the stream moves between hyper and this loop, and each
        // move would otherwise take its own room in this future.
        let mut io = Prefixed {
            prefix: Bytes::new(),
            inner: Box::new(tls),
        };
        loop {
            if !wait_for_bytes(&mut io.inner, &io.prefix, &mut stop).await? {
                return Ok(());
            }
            let ctx2 = ctx.clone();
            // Boxed so that hyper can hand the connection back (it needs an
            // Unpin future); hyper boxes the request in flight anyway.
            let svc = hyper::service::service_fn(move |req| {
                Box::pin(HttpProxy::handle(ctx2.clone(), req))
            });
            // Boxed, with its timer: a waiting connection's future then
            // holds no room for them.
            let mut conn = Box::new(self.h1.serve_connection(TokioIo::new(io), svc));
            let mut demote = Box::pin(tokio::time::sleep(DEMOTE_AFTER));
            let mut stopping = std::pin::pin!(stopped(&mut stop));
            let (mut closing, mut demoted) = (false, false);
            std::future::poll_fn(|cx| {
                if !closing {
                    if stopping.as_mut().poll(cx).is_ready() {
                        closing = true;
                        Pin::new(&mut *conn).graceful_shutdown();
                    } else {
                        while demote.as_mut().poll(cx).is_ready() {
                            let now = tokio::time::Instant::now();
                            match ctx.head.waiting_since() {
                                Some(t) if now >= t + DEMOTE_AFTER => {
                                    (closing, demoted) = (true, true);
                                    Pin::new(&mut *conn).graceful_shutdown();
                                    break;
                                }
                                Some(t) => demote.as_mut().reset(t + DEMOTE_AFTER),
                                None => demote.as_mut().reset(now + DEMOTE_AFTER),
                            }
                        }
                    }
                }
                conn.poll_without_shutdown(cx)
            })
            .await?;
            let parts = (*conn).into_parts();
            let mut back = parts.io.into_inner();
            if !parts.read_buf.is_empty() {
                back.unread(parts.read_buf);
            }
            let upgrade = ctx.upgrade.lock().unwrap_or_else(|p| p.into_inner()).take();
            if let Some((up, conn)) = upgrade {
                let r = Box::pin(splice(back, up)).await;
                // Its slot under the upstream cap is held until here.
                drop(conn);
                return r;
            }
            if !demoted {
                // The client closed or asked to, or the gateway is draining:
                // hyper has answered its last request.
                let _ = tokio::io::AsyncWriteExt::shutdown(&mut back).await;
                return Ok(());
            }
            io = back;
        }
    }
}

/// Relays an upgraded connection (WebSocket) both ways until either side
/// closes.
async fn splice(mut client: Prefixed, up: hyper::upgrade::OnUpgrade) -> Result<(), BoxError> {
    let mut up = TokioIo::new(up.await?);
    tokio::io::copy_bidirectional(&mut client, &mut up).await?;
    Ok(())
}

/// Waits until the client has sent something: bytes already read (in
/// `prefix`, in the read-ahead, or decrypted by TLS) or readable on the
/// socket. False when the gateway is shutting down first.
async fn wait_for_bytes(
    tls: &mut ClientTls,
    prefix: &[u8],
    stop: &mut watch::Receiver<bool>,
) -> io::Result<bool> {
    if !prefix.is_empty() || has_plaintext(tls) {
        return Ok(true);
    }
    tokio::select! {
        r = tls.get_ref().0.get_ref().readable() => r.map(|_| true),
        _ = stopped(stop) => Ok(false),
    }
}

/// Whether the client already sent bytes that wait above the socket: in
/// the read-ahead, or decrypted by TLS (a request in the same flight as its
/// Finished). A TLS error counts as yes: hyper's read reports it.
fn has_plaintext(tls: &mut ClientTls) -> bool {
    if tls.get_ref().0.has_buffered() {
        return true;
    }
    match tls.get_mut().1.process_new_packets() {
        Ok(st) => st.plaintext_bytes_to_read() > 0 || st.peer_has_closed(),
        Err(_) => true,
    }
}

/// Counts and logs a request refused before it reached the proxy.
fn rejected(ctx: &ConnCtx, sh: &Shared, status: u16) {
    ctx.info.metrics(sh).request(status);
    if let Some(log) = &sh.log {
        log.write(Entry {
            status,
            ..ctx.entry()
        });
    }
}

/// The client's stream with bytes hyper had read but not used put back in
/// front (a request that arrived as its connection was handed back).
struct Prefixed {
    prefix: Bytes,
    inner: Box<ClientTls>,
}

impl Prefixed {
    fn unread(&mut self, bytes: Bytes) {
        if self.prefix.is_empty() {
            self.prefix = bytes;
        } else {
            let mut all = bytes::BytesMut::from(&bytes[..]);
            all.extend_from_slice(&self.prefix);
            self.prefix = all.freeze();
        }
    }
}

impl AsyncRead for Prefixed {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        if !self.prefix.is_empty() {
            let n = buf.remaining().min(self.prefix.len());
            buf.put_slice(&self.prefix[..n]);
            self.prefix.advance(n);
            return Poll::Ready(Ok(()));
        }
        Pin::new(&mut *self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for Prefixed {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.inner).poll_write(cx, buf)
    }
    fn poll_write_vectored(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut *self.inner).poll_write_vectored(cx, bufs)
    }
    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.inner).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut *self.inner).poll_shutdown(cx)
    }
}
