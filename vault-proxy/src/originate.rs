//! `originate` mode: a legacy client speaks plaintext to a local listener;
//! the gateway opens TLS to the real server with full certificate
//! verification (system roots or `ca`, name from `server_name` or the
//! upstream host) and an optional client certificate, then relays bytes.

use crate::config::HostPort;
use crate::listener::{ConnInfo, Handler, Shared};
use crate::tcp::{connect_upstream, relay};
use crate::upstream::Plain;
use crate::watch::{idle_guard, IdleIo};
use rustls::pki_types::ServerName;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// One `originate` listener.
pub struct Originate {
    connector: TlsConnector,
    upstream: HostPort,
    /// `upstream` as logs show it.
    upstream_name: String,
    name: ServerName<'static>,
}

impl Originate {
    /// TLS to `upstream`, verifying it as `name`.
    pub fn new(cfg: rustls::ClientConfig, upstream: HostPort, name: ServerName<'static>) -> Self {
        Originate {
            connector: TlsConnector::from(Arc::new(cfg)),
            upstream_name: upstream.to_string(),
            upstream,
            name,
        }
    }
}

impl Handler for Originate {
    async fn serve(self: Arc<Self>, sock: TcpStream, mut info: ConnInfo, sh: Arc<Shared>) {
        let start = Instant::now();
        let (io, last) = IdleIo::new(sock);
        let idle = Duration::from_secs(sh.limits.idle_timeout_s);
        let fail = |what: String| {
            info.metrics(&sh).upstream_errors.fetch_add(1, Relaxed);
            tracing::warn!(
                "listener {}: upstream {} for client {}: {what}",
                info.listener,
                self.upstream_name,
                info.peer
            );
        };
        let tcp = match connect_upstream(&self.upstream, &sh).await {
            Ok(s) => s,
            Err(e) => return fail(format!("unreachable: {e}")),
        };
        let hs = Duration::from_secs(sh.limits.handshake_timeout_s);
        let tls =
            match tokio::time::timeout(hs, self.connector.connect(self.name.clone(), Plain(tcp)))
                .await
            {
                Ok(Ok(t)) => t,
                Ok(Err(e)) => return fail(format!("TLS handshake failed: {e}")),
                Err(_) => return fail("TLS handshake timed out".into()),
            };
        let (_, c) = tls.get_ref();
        info.tls_version = c
            .protocol_version()
            .map(|v| format!("{v:?}"))
            .unwrap_or_default();
        info.tls_suite = c
            .negotiated_cipher_suite()
            .map(|s| format!("{:?}", s.suite()))
            .unwrap_or_default();
        let fut = relay(io, tls, &info, &sh, &self.upstream_name, "originate", start);
        let _ = idle_guard(fut, last, idle).await;
    }
}
