//! Putting it together: load every listener's TLS material, bind every
//! socket (nothing is bound if anything fails to load), run the accept
//! loops, the metrics listener and the certificate reloader, and on SIGTERM
//! or SIGINT drain: stop accepting, let open connections finish (HTTP
//! keep-alive connections are closed after their current request) up to
//! `drain_timeout_s`, then return.

use crate::config::{split_host_port, Config, Mode};
use crate::error::{Error, Result};
use crate::http::HttpProxy;
use crate::listener::{accept_loop, Shared};
use crate::log::AccessLog;
use crate::metrics::Metrics;
use crate::originate::Originate;
use crate::redirect::Redirect;
use crate::tcp::TcpTunnel;
use crate::tls::{client_config, SealedKeyLoader, ServerTls};
use hyper_util::rt::TokioIo;
use rustls::pki_types::ServerName;
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

enum Kind {
    Http(Arc<HttpProxy>),
    Tcp(Arc<TcpTunnel>),
    Redirect(Arc<Redirect>),
    Originate(Arc<Originate>),
}

/// A bound, ready gateway.
pub struct Gateway {
    shared: Arc<Shared>,
    stop: watch::Sender<bool>,
    listeners: Vec<(TcpListener, String, Kind)>,
    tls: Vec<Arc<ServerTls>>,
    metrics: Option<TcpListener>,
    bound: Vec<(String, Mode, SocketAddr)>,
}

impl Gateway {
    /// Loads certificates and keys for every listener, then binds them all.
    pub async fn bind(cfg: &Config, sealed: Option<SealedKeyLoader>) -> Result<Gateway> {
        let (stop, shutdown) = watch::channel(false);
        let metrics = Arc::new(Metrics::new(
            cfg.listener
                .iter()
                .map(|l| (l.listen.clone(), l.mode.as_str())),
        ));
        let log = match &cfg.access_log {
            Some(t) => Some(Arc::new(AccessLog::open(t)?)),
            None => None,
        };
        let shared = Arc::new(Shared {
            limits: cfg.limits.clone(),
            metrics,
            log,
            conns: Arc::new(Semaphore::new(cfg.limits.max_connections)),
            shutdown,
        });
        let mut kinds = Vec::new();
        let mut tls_all = Vec::new();
        for li in &cfg.listener {
            let kind = match li.mode {
                Mode::Http => {
                    let tls = Arc::new(ServerTls::new(li, &[b"h2", b"http/1.1"], sealed.clone())?);
                    tls_all.push(tls.clone());
                    let up = li.http_upstream().expect("validated");
                    Kind::Http(Arc::new(HttpProxy::new(
                        tls,
                        li.allow_rules(),
                        up,
                        li.hsts,
                        &shared,
                    )))
                }
                Mode::Tcp => {
                    let tls = Arc::new(ServerTls::new(li, &[], sealed.clone())?);
                    tls_all.push(tls.clone());
                    let up = li.upstream.clone().expect("validated");
                    Kind::Tcp(Arc::new(TcpTunnel::new(
                        tls,
                        li.allow_rules(),
                        up,
                        li.proxy_protocol,
                    )))
                }
                Mode::Redirect => {
                    let to = li.to.as_deref().expect("validated");
                    let to = crate::config::parse_https(to).expect("validated");
                    Kind::Redirect(Arc::new(Redirect::new(&to)))
                }
                Mode::Originate => {
                    let up = li.upstream.clone().expect("validated");
                    let host = li
                        .server_name
                        .clone()
                        .unwrap_or_else(|| split_host_port(&up).expect("validated").0);
                    let name = ServerName::try_from(host.clone()).map_err(|_| Error::Config {
                        file: cfg.path.clone(),
                        line: 0,
                        col: 0,
                        key: Some("server_name".into()),
                        msg: format!("`{host}` is not a valid server name"),
                    })?;
                    Kind::Originate(Arc::new(Originate::new(client_config(li)?, up, name)))
                }
            };
            kinds.push(kind);
        }
        let mut listeners = Vec::new();
        let mut bound = Vec::new();
        for (li, kind) in cfg.listener.iter().zip(kinds) {
            let addr = li.addr.expect("validated");
            let l = TcpListener::bind(addr)
                .await
                .map_err(|e| Error::Bind { addr, source: e })?;
            let local = l
                .local_addr()
                .map_err(|e| Error::Bind { addr, source: e })?;
            bound.push((li.listen.clone(), li.mode, local));
            listeners.push((l, li.listen.clone(), kind));
        }
        let metrics = match &cfg.metrics {
            Some(m) => {
                let addr: SocketAddr = m.listen.parse().expect("validated");
                let l = TcpListener::bind(addr)
                    .await
                    .map_err(|e| Error::Bind { addr, source: e })?;
                Some(l)
            }
            None => None,
        };
        Ok(Gateway {
            shared,
            stop,
            listeners,
            tls: tls_all,
            metrics,
            bound,
        })
    }

    /// (configured address, mode, bound address) of every listener.
    pub fn bound(&self) -> &[(String, Mode, SocketAddr)] {
        &self.bound
    }

    /// The bound metrics address, if any.
    pub fn metrics_addr(&self) -> Option<SocketAddr> {
        self.metrics.as_ref().and_then(|l| l.local_addr().ok())
    }

    /// Serves until SIGTERM or SIGINT, then drains and returns.
    pub async fn run(self) -> Result<()> {
        use tokio::signal::unix::{signal, SignalKind};
        let sig = |k| signal(k).map_err(|e| Error::io("signal handler", e));
        let mut term = sig(SignalKind::terminate())?;
        let mut int = sig(SignalKind::interrupt())?;
        let hup = sig(SignalKind::hangup())?;
        let sh = self.shared.clone();
        let mut loops = Vec::new();
        for (i, (l, name, kind)) in self.listeners.into_iter().enumerate() {
            let sh = sh.clone();
            loops.push(match kind {
                Kind::Http(h) => tokio::spawn(accept_loop(l, i, name, h, sh)),
                Kind::Tcp(h) => tokio::spawn(accept_loop(l, i, name, h, sh)),
                Kind::Redirect(h) => tokio::spawn(accept_loop(l, i, name, h, sh)),
                Kind::Originate(h) => tokio::spawn(accept_loop(l, i, name, h, sh)),
            });
        }
        if let Some(ml) = self.metrics {
            tokio::spawn(serve_metrics(ml, sh.clone()));
        }
        tokio::spawn(reloader(self.tls.clone(), hup, sh.clone()));
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: draining"),
            _ = int.recv() => tracing::info!("SIGINT: draining"),
        }
        let _ = self.stop.send(true);
        for l in loops {
            let _ = l.await;
        }
        let deadline = Instant::now() + Duration::from_secs(sh.limits.drain_timeout_s);
        let max = sh.limits.max_connections;
        while sh.conns.available_permits() < max && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let left = max - sh.conns.available_permits();
        if left > 0 {
            tracing::warn!(
                "drain deadline reached with {left} connection(s) still open; closing them"
            );
        } else {
            tracing::info!("drained");
        }
        Ok(())
    }
}

/// Reloads certificates on SIGHUP (all) and when files change (polled
/// every 2 s). A failed reload keeps the old config and says why.
async fn reloader(tls: Vec<Arc<ServerTls>>, mut hup: tokio::signal::unix::Signal, sh: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    let mut stop = sh.shutdown.clone();
    loop {
        let forced = tokio::select! {
            _ = hup.recv() => true,
            _ = tick.tick() => false,
            _ = crate::listener::stopped(&mut stop) => return,
        };
        for t in &tls {
            let changed = t.changed_on_disk();
            if !(forced || changed) {
                continue;
            }
            let m = sh.metrics.listeners.iter().find(|m| m.name == t.name());
            match t.reload() {
                Ok(()) => {
                    if let Some(m) = m {
                        m.reloads_ok.fetch_add(1, Relaxed);
                    }
                    tracing::warn!(
                        "listener {}: certificates reloaded ({})",
                        t.name(),
                        if forced { "SIGHUP" } else { "file changed" }
                    );
                }
                Err(e) => {
                    if let Some(m) = m {
                        m.reloads_failed.fetch_add(1, Relaxed);
                    }
                    tracing::error!(
                        "listener {}: reload failed, keeping the old certificate: {e}",
                        t.name()
                    );
                }
            }
        }
    }
}

async fn serve_metrics(l: TcpListener, sh: Arc<Shared>) {
    let mut stop = sh.shutdown.clone();
    loop {
        let (s, _) = tokio::select! {
            r = l.accept() => match r { Ok(x) => x, Err(_) => { tokio::time::sleep(Duration::from_millis(50)).await; continue } },
            _ = crate::listener::stopped(&mut stop) => return,
        };
        let m = sh.metrics.clone();
        tokio::spawn(async move {
            let svc = hyper::service::service_fn(move |req| {
                let r = crate::metrics::respond(&m, &req);
                async move { Ok::<_, std::convert::Infallible>(r) }
            });
            let conn =
                hyper::server::conn::http1::Builder::new().serve_connection(TokioIo::new(s), svc);
            let _ = tokio::time::timeout(Duration::from_secs(30), conn).await;
        });
    }
}

/// Builds a runtime, binds, reports the bound addresses through `ready`,
/// and serves until SIGTERM/SIGINT.
pub fn run_blocking(
    cfg: &Config,
    sealed: Option<SealedKeyLoader>,
    ready: impl FnOnce(&[(String, Mode, SocketAddr)], Option<SocketAddr>),
) -> Result<()> {
    let mut b = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = std::env::var("PIVAULT_PROXY_THREADS")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        b.worker_threads(n);
    }
    let rt = b
        .enable_all()
        .thread_name("pivault-proxy")
        .build()
        .map_err(|e| Error::io("tokio runtime", e))?;
    let res = rt.block_on(async {
        let gw = Gateway::bind(cfg, sealed).await?;
        ready(gw.bound(), gw.metrics_addr());
        gw.run().await
    });
    rt.shutdown_timeout(Duration::from_millis(500));
    res
}
