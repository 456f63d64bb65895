//! Counters for monitoring (201 CMR 17.04 "monitoring of systems") and the
//! plaintext `[metrics]` listener: `GET /metrics` in the Prometheus text
//! format (every name starts `pivault_`) and `GET /status` as JSON.
//!
//! Counters are plain atomics per listener, so the hot path takes no lock;
//! those bumped per request are split by worker thread ([`Counter`]) so
//! two cores never fight over one cache line.

use crate::balance::Balancer;
use crate::oidc::Denied;
use bytes::Bytes;
use http_body_util::Full;
use hyper::{Request, Response, StatusCode};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Arc;
use std::time::Instant;

/// Why a TLS handshake (or the access check right after it) failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HandshakeFailure {
    /// Not finished within `handshake_timeout_s`.
    Timeout,
    /// The client offered no TLS version we accept (1.0, 1.1, SSLv3).
    ProtocolVersion,
    /// No cipher suite or key exchange group in common (CBC, RSA key exchange...).
    NoSharedCipher,
    /// `client_ca` is set and the client sent no certificate.
    NoClientCert,
    /// The client certificate did not verify against `client_ca`.
    BadClientCert,
    /// The client certificate, or a CA certificate of its chain, is listed
    /// in a `client_crl` CRL.
    Revoked,
    /// `client_crl` cannot say whether the client certificate is revoked:
    /// no CRL from its issuer, the issuer's CRL is past its nextUpdate, or
    /// the CRL does not verify against the issuer. Refused (fail closed).
    RevocationUnknown,
    /// The client certificate verified but is not in `allow`.
    NotAllowed,
    /// Not TLS, or a malformed message.
    BadMessage,
    /// The client closed the connection during the handshake.
    Eof,
    /// Anything else.
    Other,
}

impl HandshakeFailure {
    const COUNT: usize = 11;
    const ALL: [HandshakeFailure; Self::COUNT] = [
        Self::Timeout,
        Self::ProtocolVersion,
        Self::NoSharedCipher,
        Self::NoClientCert,
        Self::BadClientCert,
        Self::Revoked,
        Self::RevocationUnknown,
        Self::NotAllowed,
        Self::BadMessage,
        Self::Eof,
        Self::Other,
    ];
    /// The label value in metrics.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Timeout => "timeout",
            Self::ProtocolVersion => "protocol_version",
            Self::NoSharedCipher => "no_shared_cipher",
            Self::NoClientCert => "no_client_cert",
            Self::BadClientCert => "bad_client_cert",
            Self::Revoked => "revoked",
            Self::RevocationUnknown => "revocation_unknown",
            Self::NotAllowed => "not_allowed",
            Self::BadMessage => "bad_message",
            Self::Eof => "eof",
            Self::Other => "other",
        }
    }
    /// Classifies an error from `TlsAcceptor::accept`.
    pub fn classify(e: &std::io::Error) -> Self {
        use rustls::{CertificateError as C, Error as E, PeerIncompatible as P};
        if let Some(t) = e.get_ref().and_then(|r| r.downcast_ref::<E>()) {
            return match t {
                E::PeerIncompatible(p) => match p {
                    P::Tls12NotOffered
                    | P::Tls12NotOfferedOrEnabled
                    | P::Tls13RequiredForQuic
                    | P::SupportedVersionsExtensionRequired => Self::ProtocolVersion,
                    _ => Self::NoSharedCipher,
                },
                E::NoCertificatesPresented => Self::NoClientCert,
                E::InvalidCertificate(C::Revoked) => Self::Revoked,
                E::InvalidCertificate(
                    C::UnknownRevocationStatus
                    | C::ExpiredRevocationList
                    | C::ExpiredRevocationListContext { .. },
                )
                | E::InvalidCertRevocationList(_) => Self::RevocationUnknown,
                E::InvalidCertificate(_) => Self::BadClientCert,
                E::InvalidMessage(_)
                | E::InappropriateHandshakeMessage { .. }
                | E::InappropriateMessage { .. } => Self::BadMessage,
                _ => Self::Other,
            };
        }
        match e.kind() {
            std::io::ErrorKind::UnexpectedEof
            | std::io::ErrorKind::ConnectionReset
            | std::io::ErrorKind::BrokenPipe => Self::Eof,
            std::io::ErrorKind::InvalidData => Self::BadMessage,
            _ => Self::Other,
        }
    }
}

/// Shards of a per-request counter: worker threads beyond this share.
const SHARDS: usize = 16;

#[derive(Default)]
#[repr(align(128))]
struct Slot(AtomicU64);

/// A counter bumped on every request, split by worker thread; reading sums
/// the shards.
#[derive(Default)]
pub struct Counter([Slot; SHARDS]);

impl Counter {
    /// Adds `n` to this thread's shard.
    pub fn add(&self, n: u64) {
        self.0[crate::listener::worker() % SHARDS]
            .0
            .fetch_add(n, Relaxed);
    }
    /// The total.
    pub fn get(&self) -> u64 {
        self.0.iter().map(|s| s.0.load(Relaxed)).sum()
    }
}

/// (name, type, help, read) of a per-listener series.
type Gauge = (
    &'static str,
    &'static str,
    &'static str,
    fn(&ListenerMetrics) -> u64,
);

/// Counters of one listener.
pub struct ListenerMetrics {
    /// The configured address.
    pub name: String,
    /// The mode name.
    pub mode: &'static str,
    /// Connections accepted.
    pub connections: AtomicU64,
    /// Connections open now.
    pub active: AtomicU64,
    /// Responses by status (100..600), one array per shard.
    requests: Box<[Box<[AtomicU64]>]>,
    handshake_failures: [AtomicU64; HandshakeFailure::COUNT],
    /// Upstream connect errors (502).
    pub upstream_errors: AtomicU64,
    /// Upstream timeouts (504).
    pub upstream_timeouts: AtomicU64,
    /// Requests the client broke (a malformed or aborted body, a body
    /// that stalled): 400 or 408, never counted as upstream failures.
    pub client_errors: AtomicU64,
    /// Connections and requests refused by a limit of `[limits]`: per
    /// listener, per client address, upstream connections (503).
    pub limited: AtomicU64,
    /// Bytes from clients (request bodies, tunnel bytes).
    pub bytes_in: Counter,
    /// Bytes to clients.
    pub bytes_out: Counter,
    /// Successful certificate reloads.
    pub reloads_ok: AtomicU64,
    /// Failed certificate reloads (old certificate kept).
    pub reloads_failed: AtomicU64,
    /// Open connections closed because a reload revoked their client
    /// certificate (`client_crl`).
    pub revoked_closed: AtomicU64,
    /// OIDC logins completed (`[listener.oidc]`).
    pub oidc_logins: AtomicU64,
    /// True for `cert = "acme"`: the ACME series are reported for it.
    pub acme: bool,
    /// ACME certificates obtained (first issue and renewals).
    pub acme_ok: AtomicU64,
    /// ACME issues or renewals that failed (old certificate kept).
    pub acme_failed: AtomicU64,
    /// notAfter of the ACME certificate served now (Unix seconds; 0: a
    /// temporary self-signed one).
    pub acme_not_after: AtomicU64,
    oidc_denied: [AtomicU64; Denied::COUNT],
}

impl ListenerMetrics {
    fn new(name: String, mode: &'static str) -> Self {
        ListenerMetrics {
            name,
            mode,
            connections: AtomicU64::new(0),
            active: AtomicU64::new(0),
            requests: (0..SHARDS)
                .map(|_| (100..600).map(|_| AtomicU64::new(0)).collect())
                .collect(),
            handshake_failures: Default::default(),
            upstream_errors: AtomicU64::new(0),
            upstream_timeouts: AtomicU64::new(0),
            client_errors: AtomicU64::new(0),
            limited: AtomicU64::new(0),
            bytes_in: Counter::default(),
            bytes_out: Counter::default(),
            reloads_ok: AtomicU64::new(0),
            reloads_failed: AtomicU64::new(0),
            revoked_closed: AtomicU64::new(0),
            oidc_logins: AtomicU64::new(0),
            acme: false,
            acme_ok: AtomicU64::new(0),
            acme_failed: AtomicU64::new(0),
            acme_not_after: AtomicU64::new(0),
            oidc_denied: Default::default(),
        }
    }
    /// Counts one response with `status`.
    pub fn request(&self, status: u16) {
        let shard = &self.requests[crate::listener::worker() % SHARDS];
        if let Some(c) = shard.get(usize::from(status).wrapping_sub(100)) {
            c.fetch_add(1, Relaxed);
        }
    }
    /// Counts one refused OIDC login (or session cookie).
    pub fn oidc_denied(&self, why: Denied) {
        self.oidc_denied[why.index()].fetch_add(1, Relaxed);
    }
    /// Counts one failed handshake.
    pub fn handshake_failed(&self, why: HandshakeFailure) {
        let i = HandshakeFailure::ALL
            .iter()
            .position(|w| *w == why)
            .unwrap_or(HandshakeFailure::COUNT - 1);
        self.handshake_failures[i].fetch_add(1, Relaxed);
    }
}

/// All counters of the process.
pub struct Metrics {
    start: Instant,
    /// Per listener, in config order.
    pub listeners: Vec<ListenerMetrics>,
    workers: Option<Arc<Balancer>>,
}

impl Metrics {
    /// Counters for the given (address, mode) listeners.
    pub fn new(listeners: impl IntoIterator<Item = (String, &'static str)>) -> Self {
        Metrics {
            start: Instant::now(),
            listeners: listeners
                .into_iter()
                .map(|(n, m)| ListenerMetrics::new(n, m))
                .collect(),
            workers: None,
        }
    }

    /// Also reports the connections open on each worker thread.
    pub fn with_workers(mut self, b: Arc<Balancer>) -> Self {
        self.workers = Some(b);
        self
    }

    fn worker_loads(&self) -> Vec<(u64, u64)> {
        self.workers.as_ref().map(|b| b.loads()).unwrap_or_default()
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut o = String::new();
        let _ = writeln!(o, "# HELP pivault_uptime_seconds Seconds since the gateway started.\n# TYPE pivault_uptime_seconds gauge\npivault_uptime_seconds {}", self.start.elapsed().as_secs());
        let simple: [Gauge; 11] = [
            (
                "pivault_connections_total",
                "counter",
                "Client connections accepted.",
                |m| m.connections.load(Relaxed),
            ),
            (
                "pivault_connections_active",
                "gauge",
                "Client connections open now.",
                |m| m.active.load(Relaxed),
            ),
            (
                "pivault_upstream_errors_total",
                "counter",
                "Upstream connections that failed (502).",
                |m| m.upstream_errors.load(Relaxed),
            ),
            (
                "pivault_upstream_timeouts_total",
                "counter",
                "Upstream responses that timed out (504).",
                |m| m.upstream_timeouts.load(Relaxed),
            ),
            (
                "pivault_client_errors_total",
                "counter",
                "Requests whose client broke them: a malformed, aborted or stalled body (400, 408).",
                |m| m.client_errors.load(Relaxed),
            ),
            (
                "pivault_limited_total",
                "counter",
                "Connections or requests refused by a limit: per listener, per client address, upstream connections (503).",
                |m| m.limited.load(Relaxed),
            ),
            (
                "pivault_bytes_in_total",
                "counter",
                "Bytes received from clients (bodies, tunnel data).",
                |m| m.bytes_in.get(),
            ),
            (
                "pivault_bytes_out_total",
                "counter",
                "Bytes sent to clients (bodies, tunnel data).",
                |m| m.bytes_out.get(),
            ),
            (
                "pivault_cert_reloads_total",
                "counter",
                "Certificate reloads that succeeded.",
                |m| m.reloads_ok.load(Relaxed),
            ),
            (
                "pivault_cert_reload_failures_total",
                "counter",
                "Certificate reloads that failed (old certificate kept).",
                |m| m.reloads_failed.load(Relaxed),
            ),
            (
                "pivault_revoked_closed_total",
                "counter",
                "Open connections closed because a reload revoked their client certificate (client_crl).",
                |m| m.revoked_closed.load(Relaxed),
            ),
        ];
        for (name, kind, help, get) in simple {
            let _ = writeln!(o, "# HELP {name} {help}\n# TYPE {name} {kind}");
            for m in &self.listeners {
                let _ = writeln!(
                    o,
                    "{name}{{listener=\"{}\",mode=\"{}\"}} {}",
                    m.name,
                    m.mode,
                    get(m)
                );
            }
        }
        let loads = self.worker_loads();
        if !loads.is_empty() {
            let _ = writeln!(o, "# HELP pivault_worker_connections Client connections open on each worker thread (all listeners).\n# TYPE pivault_worker_connections gauge");
            for (w, (open, _)) in loads.iter().enumerate() {
                let _ = writeln!(
                    o,
                    "pivault_worker_connections{{worker=\"{}\"}} {open}",
                    w + 1
                );
            }
            let _ = writeln!(o, "# HELP pivault_worker_handoffs_total Connections accepted by one worker and handed to a less loaded one.\n# TYPE pivault_worker_handoffs_total counter");
            for (w, (_, handed)) in loads.iter().enumerate() {
                let _ = writeln!(
                    o,
                    "pivault_worker_handoffs_total{{worker=\"{}\"}} {handed}",
                    w + 1
                );
            }
        }
        let _ = writeln!(o, "# HELP pivault_http_requests_total HTTP responses by status code.\n# TYPE pivault_http_requests_total counter");
        for m in &self.listeners {
            for i in 0..500 {
                let v: u64 = m.requests.iter().map(|s| s[i].load(Relaxed)).sum();
                if v > 0 {
                    let _ = writeln!(
                        o,
                        "pivault_http_requests_total{{listener=\"{}\",code=\"{}\"}} {v}",
                        m.name,
                        i + 100
                    );
                }
            }
        }
        let _ = writeln!(o, "# HELP pivault_handshake_failures_total TLS handshakes refused or failed, by reason.\n# TYPE pivault_handshake_failures_total counter");
        for m in &self.listeners {
            for (i, why) in HandshakeFailure::ALL.iter().enumerate() {
                let v = m.handshake_failures[i].load(Relaxed);
                if v > 0 {
                    let _ = writeln!(
                        o,
                        "pivault_handshake_failures_total{{listener=\"{}\",reason=\"{}\"}} {v}",
                        m.name,
                        why.as_str()
                    );
                }
            }
        }
        if self.listeners.iter().any(|m| m.acme) {
            let _ = writeln!(o, "# HELP pivault_acme_renewals_total ACME certificate issues and renewals, by result (a failure keeps the old certificate).\n# TYPE pivault_acme_renewals_total counter");
            for m in self.listeners.iter().filter(|m| m.acme) {
                for (result, v) in [("ok", &m.acme_ok), ("failed", &m.acme_failed)] {
                    let _ = writeln!(
                        o,
                        "pivault_acme_renewals_total{{listener=\"{}\",result=\"{result}\"}} {}",
                        m.name,
                        v.load(Relaxed)
                    );
                }
            }
            let _ = writeln!(o, "# HELP pivault_acme_cert_not_after_seconds notAfter of the ACME certificate served (Unix time; 0 while a temporary one is served).\n# TYPE pivault_acme_cert_not_after_seconds gauge");
            for m in self.listeners.iter().filter(|m| m.acme) {
                let _ = writeln!(
                    o,
                    "pivault_acme_cert_not_after_seconds{{listener=\"{}\"}} {}",
                    m.name,
                    m.acme_not_after.load(Relaxed)
                );
            }
        }
        let _ = writeln!(o, "# HELP pivault_oidc_logins_total OIDC logins completed (session cookie set).\n# TYPE pivault_oidc_logins_total counter");
        for m in &self.listeners {
            let v = m.oidc_logins.load(Relaxed);
            if v > 0 {
                let _ = writeln!(
                    o,
                    "pivault_oidc_logins_total{{listener=\"{}\"}} {v}",
                    m.name
                );
            }
        }
        let _ = writeln!(o, "# HELP pivault_oidc_refusals_total OIDC logins and session cookies refused, by reason.\n# TYPE pivault_oidc_refusals_total counter");
        for m in &self.listeners {
            for why in Denied::ALL {
                let v = m.oidc_denied[why.index()].load(Relaxed);
                if v > 0 {
                    let _ = writeln!(
                        o,
                        "pivault_oidc_refusals_total{{listener=\"{}\",reason=\"{}\"}} {v}",
                        m.name,
                        why.as_str()
                    );
                }
            }
        }
        o
    }

    /// The `/status` document.
    pub fn status(&self) -> serde_json::Value {
        serde_json::json!({
            "status": "ok",
            "version": env!("CARGO_PKG_VERSION"),
            "uptime_s": self.start.elapsed().as_secs(),
            "listeners": self.listeners.iter().map(|m| serde_json::json!({
                "listen": m.name,
                "mode": m.mode,
                "connections_active": m.active.load(Relaxed),
                "connections_total": m.connections.load(Relaxed),
            })).collect::<Vec<_>>(),
            "workers": self.worker_loads().iter().map(|(open, _)| open).collect::<Vec<_>>(),
        })
    }
}

/// Answers one request on the metrics listener.
pub fn respond<B>(m: &Arc<Metrics>, req: &Request<B>) -> Response<Full<Bytes>> {
    let (status, ctype, body) = match (req.method() == hyper::Method::GET, req.uri().path()) {
        (true, "/metrics") => (StatusCode::OK, "text/plain; version=0.0.4", m.render()),
        (true, "/status") => (StatusCode::OK, "application/json", m.status().to_string()),
        (false, "/metrics" | "/status") => (
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "GET only\n".into(),
        ),
        _ => (
            StatusCode::NOT_FOUND,
            "text/plain",
            "try /metrics or /status\n".into(),
        ),
    };
    let mut r = Response::new(Full::new(Bytes::from(body)));
    *r.status_mut() = status;
    r.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(ctype),
    );
    r
}
