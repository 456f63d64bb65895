//! `tcp` mode: TLS terminated, then bytes relayed both ways to a plaintext
//! upstream, with half-close (a client's EOF becomes a write shutdown
//! upstream and the other way). With `proxy_protocol = true` the upstream
//! first gets a PROXY protocol v2 header carrying the client address and,
//! when one was presented, the client certificate's subject CN (only when
//! the subject has exactly one).
//!
//! The access record and the byte counters get the bytes actually moved,
//! also when the relay ends in an error or is cut (idle timeout, drain):
//! each side is wrapped in a counter, and the record is written when the
//! relay ends or is dropped.

use crate::config::HostPort;
use crate::listener::{tls_accept, ConnInfo, Handler, Shared};
use crate::log::Entry;
use crate::tls::ServerTls;
use crate::watch::{idle_guard, IdleIo};
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{Duration, Instant};
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadBuf};
use tokio::net::TcpStream;

/// One `tcp` listener.
pub struct TcpTunnel {
    tls: Arc<ServerTls>,
    upstream: HostPort,
    /// `upstream` as logs show it.
    upstream_name: String,
    proxy_protocol: bool,
}

impl TcpTunnel {
    /// A tunnel to `upstream` behind `tls`.
    pub fn new(tls: Arc<ServerTls>, upstream: HostPort, proxy_protocol: bool) -> Self {
        TcpTunnel {
            tls,
            upstream_name: upstream.to_string(),
            upstream,
            proxy_protocol,
        }
    }
}

/// The PROXY protocol v2 header for a TCP connection from `src` to `dst`,
/// with a PP2_TYPE_SSL TLV (version and CN sub-TLVs) when TLS was used.
pub fn proxy_v2_header(
    src: SocketAddr,
    dst: SocketAddr,
    tls_version: &str,
    cn: Option<&str>,
) -> Vec<u8> {
    let mut h = b"\r\n\r\n\0\r\nQUIT\n".to_vec();
    h.push(0x21); // version 2, PROXY command
    let mut body = Vec::new();
    let (src, dst) = match (src, dst) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => (SocketAddr::V4(s), SocketAddr::V4(d)),
        (s, d) => (to_v6(s), to_v6(d)),
    };
    match (src, dst) {
        (SocketAddr::V4(s), SocketAddr::V4(d)) => {
            h.push(0x11); // AF_INET, STREAM
            body.extend_from_slice(&s.ip().octets());
            body.extend_from_slice(&d.ip().octets());
        }
        (SocketAddr::V6(s), SocketAddr::V6(d)) => {
            h.push(0x21); // AF_INET6, STREAM
            body.extend_from_slice(&s.ip().octets());
            body.extend_from_slice(&d.ip().octets());
        }
        _ => unreachable!("both mapped to the same family"),
    }
    body.extend_from_slice(&src.port().to_be_bytes());
    body.extend_from_slice(&dst.port().to_be_bytes());
    if !tls_version.is_empty() {
        let mut ssl = vec![0x01 | if cn.is_some() { 0x02 | 0x04 } else { 0 }];
        ssl.extend_from_slice(&0u32.to_be_bytes()); // verify: 0 = success
        tlv(&mut ssl, 0x21, tls_version.as_bytes());
        if let Some(cn) = cn {
            tlv(&mut ssl, 0x22, cn.as_bytes());
        }
        tlv(&mut body, 0x20, &ssl);
    }
    h.extend_from_slice(&(body.len() as u16).to_be_bytes());
    h.extend_from_slice(&body);
    h
}

fn tlv(out: &mut Vec<u8>, kind: u8, v: &[u8]) {
    let v = &v[..v.len().min(u16::MAX as usize - 64)];
    out.push(kind);
    out.extend_from_slice(&(v.len() as u16).to_be_bytes());
    out.extend_from_slice(v);
}

fn to_v6(a: SocketAddr) -> SocketAddr {
    match a {
        SocketAddr::V4(v4) => SocketAddr::new(v4.ip().to_ipv6_mapped().into(), v4.port()),
        v6 => v6,
    }
}

/// Connects to `upstream` within the configured connect timeout.
pub async fn connect_upstream(upstream: &HostPort, sh: &Shared) -> std::io::Result<TcpStream> {
    let t = Duration::from_secs(sh.limits.connect_timeout_s);
    let to = (upstream.host(), upstream.port());
    match tokio::time::timeout(t, TcpStream::connect(to)).await {
        Ok(r) => {
            let s = r?;
            let _ = s.set_nodelay(true);
            Ok(s)
        }
        Err(_) => Err(std::io::Error::new(
            std::io::ErrorKind::TimedOut,
            format!("no connection within {}s", t.as_secs()),
        )),
    }
}

/// Relay buffer per direction: a full TLS record (16 KiB) several times
/// over, so one read drains what the kernel and rustls have ready.
const RELAY_BUF: usize = 64 * 1024;

/// Relays both ways until both sides closed; logs and counts the bytes
/// moved, however the relay ends (see the module doc).
pub async fn relay<A, B>(
    mut client: A,
    mut upstream: B,
    info: &ConnInfo,
    sh: &Shared,
    upstream_name: &str,
    mode: &'static str,
    start: Instant,
) where
    A: AsyncRead + AsyncWrite + Unpin,
    B: AsyncRead + AsyncWrite + Unpin,
{
    let tally = Tally {
        bin: AtomicU64::new(0),
        bout: AtomicU64::new(0),
        info,
        sh,
        upstream_name,
        mode,
        start,
    };
    // Bytes in are those written to the upstream, bytes out those written
    // to the client: what was moved, not what was read and then lost.
    let mut c = Counted {
        io: &mut client,
        n: &tally.bout,
    };
    let mut u = Counted {
        io: &mut upstream,
        n: &tally.bin,
    };
    if let Err(e) =
        tokio::io::copy_bidirectional_with_sizes(&mut c, &mut u, RELAY_BUF, RELAY_BUF).await
    {
        tracing::debug!(listener = %info.listener, client = %info.peer, "relay ended: {e}");
    }
}

/// A relay's byte counts; counted into the metrics and written to the
/// access log when dropped, so a relay cut short is recorded too.
struct Tally<'a> {
    bin: AtomicU64,
    bout: AtomicU64,
    info: &'a ConnInfo,
    sh: &'a Shared,
    upstream_name: &'a str,
    mode: &'static str,
    start: Instant,
}

impl Drop for Tally<'_> {
    fn drop(&mut self) {
        let (bin, bout) = (*self.bin.get_mut(), *self.bout.get_mut());
        let (info, sh) = (self.info, self.sh);
        let m = info.metrics(sh);
        m.bytes_in.add(bin);
        m.bytes_out.add(bout);
        if let Some(log) = &sh.log {
            log.write(Entry {
                client: info.peer.to_string(),
                client_cert: info.cert.as_ref().map(|c| c.subject.clone()),
                listener: info.listener.clone(),
                mode: self.mode,
                bytes_in: bin,
                bytes_out: bout,
                duration_ms: self.start.elapsed().as_millis() as u64,
                upstream: self.upstream_name.to_string(),
                tls_version: info.tls_version.clone(),
                tls_suite: info.tls_suite.clone(),
                ..Default::default()
            });
        }
    }
}

/// One side of a relay, counting the bytes written to it. An uncontended
/// relaxed add per write of up to 64 KiB: nothing next to the copy.
struct Counted<'a, T> {
    io: T,
    n: &'a AtomicU64,
}

impl<T: AsyncRead + Unpin> AsyncRead for Counted<'_, T> {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_read(cx, buf)
    }
}

impl<T: AsyncWrite + Unpin> AsyncWrite for Counted<'_, T> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let r = Pin::new(&mut self.io).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = r {
            self.n.fetch_add(n as u64, Relaxed);
        }
        r
    }
    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_flush(cx)
    }
    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.io).poll_shutdown(cx)
    }
}

impl Handler for TcpTunnel {
    async fn serve(self: Arc<Self>, sock: TcpStream, info: ConnInfo, sh: Arc<Shared>) {
        let start = Instant::now();
        let (io, last) = IdleIo::new(sock);
        let idle = Duration::from_secs(sh.limits.idle_timeout_s);
        let Some((mut tls, info)) = tls_accept(&self.tls, io, info, &sh).await else {
            return;
        };
        let mut up = match connect_upstream(&self.upstream, &sh).await {
            Ok(s) => s,
            Err(e) => {
                info.metrics(&sh).upstream_errors.fetch_add(1, Relaxed);
                tracing::warn!(
                    "listener {}: upstream {} unreachable for client {}: {e}",
                    info.listener,
                    self.upstream_name,
                    info.peer
                );
                let _ = tls.shutdown().await;
                return;
            }
        };
        if self.proxy_protocol {
            // Only an unambiguous CN: with `allow` CN rules, a subject with
            // several was refused at the handshake; without, the first of
            // several would name someone the rules never looked at.
            let cn = info.cert.as_ref().and_then(|c| c.sole_cn());
            let hdr = proxy_v2_header(info.peer, info.local, &info.tls_version, cn);
            if let Err(e) = up.write_all(&hdr).await {
                tracing::warn!(
                    "listener {}: upstream {}: writing the PROXY header: {e}",
                    info.listener,
                    self.upstream_name
                );
                return;
            }
        }
        let fut = async {
            // The relay buffers are allocated only once a byte waits on
            // either side, so thousands of idle tunnels hold none.
            let buffered = {
                let (_, c) = tls.get_mut();
                c.process_new_packets()
                    .map(|s| s.plaintext_bytes_to_read() > 0)
                    .unwrap_or(true)
            };
            if !buffered {
                let client = tls.get_ref().0.get_ref();
                tokio::select! {
                    _ = client.readable() => {}
                    _ = up.readable() => {}
                }
            }
            relay(tls, up, &info, &sh, &self.upstream_name, "tcp", start).await
        };
        // A reload that revokes the client certificate ends the tunnel
        // (logged by unless_revoked).
        let fut = crate::listener::unless_revoked(fut, &self.tls, &info, &sh);
        if idle_guard(fut, last, idle).await.is_none() {
            tracing::debug!(listener = %info.listener, client = %info.peer, "idle timeout");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn proxy_v2_ipv4_layout() {
        let h = proxy_v2_header(
            "10.0.0.1:1000".parse().unwrap(),
            "10.0.0.2:443".parse().unwrap(),
            "",
            None,
        );
        assert_eq!(&h[..12], b"\r\n\r\n\0\r\nQUIT\n");
        assert_eq!(h[12], 0x21);
        assert_eq!(h[13], 0x11);
        assert_eq!(u16::from_be_bytes([h[14], h[15]]), 12);
        assert_eq!(&h[16..20], &[10, 0, 0, 1]);
        assert_eq!(u16::from_be_bytes([h[24], h[25]]), 1000);
        assert_eq!(h.len(), 28);
    }

    #[test]
    fn proxy_v2_ssl_tlv_carries_cn() {
        let h = proxy_v2_header(
            "10.0.0.1:1".parse().unwrap(),
            "10.0.0.2:2".parse().unwrap(),
            "TLSv1_3",
            Some("alice"),
        );
        assert_eq!(h[28], 0x20);
        assert!(h.windows(5).any(|w| w == b"alice"));
        assert_eq!(
            usize::from(u16::from_be_bytes([h[14], h[15]])),
            h.len() - 16
        );
    }
}
