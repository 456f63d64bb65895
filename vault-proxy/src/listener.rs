//! The accept loop and what every connection shares: the connection caps
//! (process-wide and per listener, slots taken *before* `accept`, so a
//! flood waits in the kernel backlog instead of costing handshakes; per
//! client address, checked once the address is known, so one client
//! cannot hold every slot), the TLS handshake deadline, the
//! client-certificate access check, and the shutdown signal for draining.

use crate::access::{PeerCert, Refusal};
use crate::balance::{Balancer, Handoff};
use crate::config::Limits;
use crate::log::AccessLog;
use crate::metrics::{HandshakeFailure, ListenerMetrics, Metrics};
use crate::tls::ServerTls;
use crate::watch::IdleIo;
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio_rustls::server::TlsStream;

/// State shared by every listener of the process.
pub struct Shared {
    /// `[limits]`.
    pub limits: Limits,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// The access log, if configured.
    pub log: Option<Arc<AccessLog>>,
    /// One permit per open client connection.
    pub conns: Arc<Semaphore>,
    /// The same per listener, in config order.
    pub listener_conns: Vec<Arc<Semaphore>>,
    /// Open connections per (listener, client address).
    pub clients: Arc<ClientCounts>,
    /// Becomes true on SIGTERM/SIGINT.
    pub shutdown: watch::Receiver<bool>,
    /// Number of worker threads.
    pub workers: usize,
    /// Open connections per worker, and the hand-off between workers.
    pub balance: Arc<Balancer>,
    /// Refused handshakes logged per client address (rate limit).
    pub refusals: Arc<crate::refusal::RefusalLog>,
}

thread_local! {
    static WORKER: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// Marks the calling thread as worker `w` (1-based).
pub fn set_worker(w: usize) {
    WORKER.with(|c| c.set(w));
}

/// The calling thread's worker number; 0 off the worker threads.
pub fn worker() -> usize {
    WORKER.with(|c| c.get())
}

/// What a handler knows about an accepted connection.
#[derive(Clone)]
pub struct ConnInfo {
    /// Client address.
    pub peer: SocketAddr,
    /// Local address the client connected to.
    pub local: SocketAddr,
    /// Index of the listener in the config.
    pub index: usize,
    /// The listener's configured address.
    pub listener: String,
    /// Negotiated TLS version ("TLSv1_3"), empty for plaintext.
    pub tls_version: String,
    /// Negotiated suite, empty for plaintext.
    pub tls_suite: String,
    /// The client certificate, when one was presented.
    pub cert: Option<PeerCert>,
    /// Its chain, kept when the listener has `client_crl`, so that a
    /// reload that revokes it ends the connection ([`unless_revoked`]).
    pub revocable: Option<Arc<crate::tls::Revocable>>,
}

impl ConnInfo {
    /// This listener's counters.
    pub fn metrics<'a>(&self, sh: &'a Shared) -> &'a ListenerMetrics {
        &sh.metrics.listeners[self.index]
    }
}

/// Resolves once shutdown has been signalled.
pub async fn stopped(rx: &mut watch::Receiver<bool>) {
    let _ = rx.wait_for(|v| *v).await;
}

/// The client side of a TLS-terminating listener after the handshake.
pub type ClientTls = TlsStream<IdleIo<TcpStream>>;

/// Performs the server handshake under the deadline and applies `allow`.
/// Failures are counted and logged at debug (they are client mistakes or
/// probes), refusals by `allow` at warn.
pub async fn tls_accept(
    tls: &ServerTls,
    io: IdleIo<TcpStream>,
    mut info: ConnInfo,
    sh: &Shared,
) -> Option<(ClientTls, ConnInfo)> {
    // Read before the config: which reload the handshake's CRLs are from.
    let generation = tls.generation();
    let acceptor = tokio_rustls::TlsAcceptor::from(tls.config());
    let deadline = Duration::from_secs(sh.limits.handshake_timeout_s);
    let m = info.metrics(sh);
    crate::refusal::clear_presented();
    let accept = async {
        match tls.tls_alpn() {
            None => acceptor.accept(io).await.map(Some),
            Some(ch) => crate::acme::tls_alpn::accept(io, ch, tls.config()).await,
        }
    };
    let stream = match tokio::time::timeout(deadline, accept).await {
        Ok(Ok(Some(s))) => s,
        Ok(Ok(None)) => {
            tracing::debug!(
                "{}: answered a tls-alpn-01 check from {}",
                info.listener,
                info.peer
            );
            return None;
        }
        Ok(Err(e)) => {
            let why = HandshakeFailure::classify(&e);
            m.handshake_failed(why);
            let cert = crate::refusal::take_presented();
            refused_tls(sh, &info, why, &crate::refusal::words(&e), cert.as_ref());
            return None;
        }
        Err(_) => {
            m.handshake_failed(HandshakeFailure::Timeout);
            let words = format!(
                "the handshake did not finish within handshake_timeout_s ({} s)",
                sh.limits.handshake_timeout_s
            );
            refused_tls(sh, &info, HandshakeFailure::Timeout, &words, None);
            return None;
        }
    };
    let (_, conn) = stream.get_ref();
    info.tls_version = conn
        .protocol_version()
        .map(|v| format!("{v:?}"))
        .unwrap_or_default();
    info.tls_suite = conn
        .negotiated_cipher_suite()
        .map(|s| format!("{:?}", s.suite()))
        .unwrap_or_default();
    info.cert = conn
        .peer_certificates()
        .and_then(|c| c.first())
        .and_then(|c| PeerCert::parse(c.as_ref()));
    info.revocable = tls.revocable(conn, generation).map(Arc::new);
    if let Some(list) = tls.allow_list() {
        let refused = match &info.cert {
            Some(c) => c.admit(list).err(),
            None => Some(Refusal::NotAllowed),
        };
        if let Some(why) = refused {
            m.handshake_failed(HandshakeFailure::NotAllowed);
            let words = format!("client certificate {why}");
            refused_tls(
                sh,
                &info,
                HandshakeFailure::NotAllowed,
                &words,
                info.cert.as_ref(),
            );
            let mut s = stream;
            let _ = tokio::io::AsyncWriteExt::shutdown(&mut s).await;
            return None;
        }
    }
    Some((stream, info))
}

/// Runs a connection's `fut` until it ends, or until a reload brings a CRL
/// that revokes the connection's client certificate: then the connection
/// is dropped (closed), logged like a refused handshake (reason `revoked`)
/// and counted in `pivault_revoked_closed_total`, and None is returned.
pub async fn unless_revoked<F: Future>(
    fut: F,
    tls: &ServerTls,
    info: &ConnInfo,
    sh: &Shared,
) -> Option<F::Output> {
    let Some(r) = &info.revocable else {
        return Some(fut.await);
    };
    tokio::select! {
        out = fut => Some(out),
        e = tls.revoked(r) => {
            info.metrics(sh).revoked_closed.fetch_add(1, Relaxed);
            let words = format!(
                "open connection closed after a reload: {}",
                crate::refusal::words(&std::io::Error::new(std::io::ErrorKind::InvalidData, e))
            );
            log_refusal(
                sh,
                info,
                "connection closed",
                HandshakeFailure::Revoked,
                &words,
                info.cert.as_ref(),
            );
            None
        }
    }
}

/// Writes the line of one refused handshake to the access log and the
/// gateway's log, unless this client address has had its share of lines
/// for the window (then it is counted, and the next line says so).
fn refused_tls(
    sh: &Shared,
    info: &ConnInfo,
    why: HandshakeFailure,
    words: &str,
    cert: Option<&PeerCert>,
) {
    log_refusal(sh, info, "TLS handshake refused", why, words, cert)
}

/// [`refused_tls`], with the gateway log line's `headline`.
fn log_refusal(
    sh: &Shared,
    info: &ConnInfo,
    headline: &str,
    why: HandshakeFailure,
    words: &str,
    cert: Option<&PeerCert>,
) {
    let v = sh.refusals.note(
        info.peer.ip(),
        sh.limits.refusal_log_burst,
        sh.limits.refusal_log_window_s,
    );
    if !v.log {
        return;
    }
    let (subject, pin) = match cert {
        Some(c) => (Some(c.subject.clone()), Some(c.spki_pin())),
        None => (None, None),
    };
    let unlogged = (v.unlogged_before > 0).then_some(v.unlogged_before);
    tracing::warn!(
        listener = %info.listener,
        client = %info.peer,
        reason = why.as_str(),
        cert_subject = %subject.as_deref().unwrap_or("-"),
        cert_spki = %pin.as_deref().unwrap_or("-"),
        unlogged_before = unlogged.unwrap_or(0),
        "{headline}: {words}"
    );
    if let Some(log) = &sh.log {
        log.write(crate::log::Entry {
            client: info.peer.to_string(),
            client_cert: subject,
            client_spki: pin,
            listener: info.listener.clone(),
            mode: "tls",
            refused: Some(format!("{}: {words}", why.as_str())),
            refusals_not_logged: unlogged,
            ..Default::default()
        });
    }
}

/// A connection handler for one mode.
pub trait Handler: Send + Sync + 'static {
    /// Serves one accepted connection to the end.
    fn serve(
        self: Arc<Self>,
        sock: TcpStream,
        info: ConnInfo,
        sh: Arc<Shared>,
    ) -> impl Future<Output = ()> + Send;
}

/// Open connections per listener and client IP address.
#[derive(Default)]
pub struct ClientCounts(Mutex<HashMap<(usize, IpAddr), usize>>);

/// The address a client is counted under: an IPv4 address, or the /64 of
/// an IPv6 one (one host commonly holds a whole /64, and could otherwise
/// be 2^64 clients).
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let s = v6.segments();
                IpAddr::V6(std::net::Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
            }
        },
        v4 => v4,
    }
}

/// One connection counted in [`ClientCounts`] while it lives.
pub struct ClientSlot(Arc<ClientCounts>, (usize, IpAddr));

impl ClientCounts {
    /// Counts a connection of `ip` on listener `index`, unless it already
    /// has `max` open there.
    pub fn take(self: &Arc<Self>, index: usize, ip: IpAddr, max: usize) -> Option<ClientSlot> {
        let ip = client_key(ip);
        let mut m = self.0.lock().unwrap_or_else(|p| p.into_inner());
        let n = m.entry((index, ip)).or_insert(0);
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(ClientSlot(self.clone(), (index, ip)))
    }
}

impl Drop for ClientSlot {
    fn drop(&mut self) {
        let mut m = (self.0).0.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(n) = m.get_mut(&self.1) {
            *n -= 1;
            if *n == 0 {
                m.remove(&self.1);
            }
        }
    }
}

/// When a limit's refusal was last logged, in [`crate::watch::now_ms`]
/// terms: a flood is logged once a second, not once a connection.
static LAST_REFUSAL_LOG: AtomicU64 = AtomicU64::new(0);

/// Whether a refusal should be logged now.
pub(crate) fn log_refusal_now() -> bool {
    let now = crate::watch::now_ms() + 1000;
    let last = LAST_REFUSAL_LOG.load(Relaxed);
    now >= last + 1000
        && LAST_REFUSAL_LOG
            .compare_exchange(last, now, Relaxed, Relaxed)
            .is_ok()
}

/// Counts a connection in its listener's `active` gauge while it lives,
/// however it ends (served, or dropped before it could be).
struct Open(Arc<Shared>, usize);

impl Drop for Open {
    fn drop(&mut self) {
        self.0.metrics.listeners[self.1]
            .active
            .fetch_sub(1, Relaxed);
    }
}

/// Accepts until shutdown; each connection holds one permit of `sh.conns`
/// for its whole life.
pub async fn accept_loop<H: Handler>(
    l: TcpListener,
    index: usize,
    name: String,
    h: Arc<H>,
    sh: Arc<Shared>,
) {
    let mut stop = sh.shutdown.clone();
    let mut backoff = Duration::from_millis(5);
    let local = l
        .local_addr()
        .unwrap_or_else(|_| SocketAddr::from(([0, 0, 0, 0], 0)));
    let mine = sh.listener_conns[index].clone();
    loop {
        let permit = tokio::select! {
            p = sh.conns.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = crate::listener::stopped(&mut stop) => break,
        };
        let own = tokio::select! {
            p = mine.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = crate::listener::stopped(&mut stop) => break,
        };
        let (sock, peer) = tokio::select! {
            r = l.accept() => match r {
                Ok(x) => { backoff = Duration::from_millis(5); x }
                Err(e) => {
                    // EMFILE and friends: back off instead of spinning.
                    tracing::warn!("listener {name}: accept failed: {e}; retrying in {backoff:?}");
                    tokio::time::sleep(backoff).await;
                    backoff = (backoff * 2).min(Duration::from_secs(1));
                    continue;
                }
            },
            _ = crate::listener::stopped(&mut stop) => break,
        };
        let m = &sh.metrics.listeners[index];
        let per_client = sh.limits.max_connections_per_client;
        let Some(client) = sh.clients.take(index, peer.ip(), per_client) else {
            m.limited.fetch_add(1, Relaxed);
            if log_refusal_now() {
                tracing::warn!("listener {name}: client {} refused: it has max_connections_per_client = {per_client} connections open", peer.ip());
            }
            continue;
        };
        let _ = sock.set_nodelay(true);
        m.connections.fetch_add(1, Relaxed);
        m.active.fetch_add(1, Relaxed);
        let info = ConnInfo {
            peer,
            local,
            index,
            listener: name.clone(),
            tls_version: String::new(),
            tls_suite: String::new(),
            cert: None,
            revocable: None,
        };
        let ticket = sh.balance.place(worker());
        let target = ticket.moved().then(|| ticket.slot());
        let open = Open(sh.clone(), index);
        let (h, sh2) = (h.clone(), sh.clone());
        let serve = move |sock: TcpStream| {
            tokio::spawn(async move {
                h.serve(sock, info, sh2).await;
                drop((open, permit, own, client, ticket));
            });
        };
        let Some(slot) = target else {
            serve(sock);
            continue;
        };
        // Off this reactor, onto the target's: the socket moves as a plain fd.
        let sock = match sock.into_std() {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!("listener {name}: cannot hand a connection to another worker: {e}");
                continue;
            }
        };
        let name2 = name.clone();
        let work: Handoff = Box::new(move || match TcpStream::from_std(sock) {
            Ok(s) => serve(s),
            Err(e) => tracing::warn!("listener {name2}: cannot take a handed-off connection: {e}"),
        });
        if let Err(back) = sh.balance.send(slot, work) {
            back();
        }
    }
    if worker() <= 1 {
        tracing::info!("listener {name}: no longer accepting");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_ipv6_64_counts_as_one_client() {
        let c = Arc::new(ClientCounts::default());
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let other: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        let _one = c.take(0, a, 2).unwrap();
        let _two = c.take(0, b, 2).unwrap();
        assert!(c.take(0, a, 2).is_none(), "the /64 is at its cap");
        assert!(c.take(0, other, 2).is_some(), "another /64 is not");
        assert!(c.take(1, a, 2).is_some(), "counted per listener");
        let mapped: IpAddr = "::ffff:192.0.2.1".parse().unwrap();
        let v4: IpAddr = "192.0.2.1".parse().unwrap();
        let _m = c.take(0, mapped, 1).unwrap();
        assert!(
            c.take(0, v4, 1).is_none(),
            "an IPv4-mapped address is its IPv4"
        );
    }
}
