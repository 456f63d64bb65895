//! Putting it together: load every listener's TLS material, bind every
//! socket (nothing is bound if anything fails to load), run the accept
//! loops, the metrics listener and the certificate reloader, and on SIGTERM
//! or SIGINT drain: stop accepting, let open connections finish (HTTP
//! keep-alive connections are closed after their current request) up to
//! `drain_timeout_s`, then return.
//!
//! Threads: one single-threaded runtime per worker (one per CPU unless
//! `workers` or `PIVAULT_PROXY_THREADS` says otherwise), each accepting on
//! every listening socket and serving its connections to the end, as
//! nginx's worker processes do. A connection, its upstream connection and
//! their tasks stay on one thread: no work stealing and no cross-thread
//! wake-ups on the request path, which measured 5-8% less CPU per request
//! than one work-stealing runtime. A worker that accepts more than its
//! share hands the socket to the least loaded one ([`crate::balance`]).
//! Signals, certificate reloads, ACME orders and renewals ([`crate::acme`])
//! and `/metrics` run on the calling thread's runtime.

use crate::balance::{serve_inbox, Balancer, Inbox};
use crate::config::{Config, Listener, ListenerKind, Mode};
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
use std::net::SocketAddr;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};

#[derive(Clone)]
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
    listeners: Vec<(std::net::TcpListener, String, Kind)>,
    tls: Vec<Arc<ServerTls>>,
    metrics: Option<TcpListener>,
    bound: Vec<(String, Mode, SocketAddr)>,
    inboxes: Vec<Inbox>,
    acme: Option<Arc<crate::acme::Acme>>,
}

impl Gateway {
    /// Loads certificates and keys for every listener, then binds them all.
    pub async fn bind(cfg: &Config, sealed: Option<SealedKeyLoader>) -> Result<Gateway> {
        raise_fd_limit(cfg);
        let (stop, shutdown) = watch::channel(false);
        let workers = worker_count(cfg.workers);
        let (balance, inboxes) = Balancer::new(workers);
        let balance = Arc::new(balance);
        let mut metrics = Metrics::new(
            cfg.listener
                .iter()
                .map(|l| (l.listen.clone(), l.mode().as_str())),
        )
        .with_workers(balance.clone());
        for (m, li) in metrics.listeners.iter_mut().zip(&cfg.listener) {
            m.acme = li.uses_acme();
        }
        let metrics = Arc::new(metrics);
        // Before any socket is bound: a first start that cannot open the
        // ACME account (or has a bad storage directory) stops here.
        let acme = match &cfg.acme {
            Some(a) => {
                let acme = Arc::new(crate::acme::Acme::open(a)?);
                acme.prepare().await?;
                Some(acme)
            }
            None => None,
        };
        let slot = |li: &Listener| acme.as_ref().filter(|_| li.uses_acme()).map(|a| a.slot());
        let tls_alpn = |li: &Listener| {
            acme.as_ref()
                .filter(|_| li.uses_acme())
                .and_then(|a| a.tls_alpn())
        };
        let log = match &cfg.access_log {
            Some(t) => Some(Arc::new(AccessLog::open(t)?)),
            None => None,
        };
        let shared = Arc::new(Shared {
            limits: cfg.limits.clone(),
            metrics,
            log,
            conns: Arc::new(Semaphore::new(cfg.limits.max_connections)),
            listener_conns: cfg
                .listener
                .iter()
                .map(|_| Arc::new(Semaphore::new(cfg.limits.max_connections_per_listener)))
                .collect(),
            clients: Default::default(),
            shutdown,
            workers,
            balance,
            refusals: Default::default(),
        });
        let mut kinds = Vec::new();
        let mut tls_all = Vec::new();
        for li in &cfg.listener {
            let name = li.listen.as_str();
            let kind = match &li.kind {
                ListenerKind::Http {
                    tls,
                    upstream,
                    hsts,
                    client_identity_header,
                    oidc,
                } => {
                    let tls = Arc::new(
                        ServerTls::with_acme(
                            name,
                            tls,
                            &[b"h2", b"http/1.1"],
                            sealed.clone(),
                            slot(li),
                        )?
                        .answering_tls_alpn(tls_alpn(li)),
                    );
                    tls_all.push(tls.clone());
                    let oidc = oidc
                        .as_ref()
                        .map(|o| crate::oidc::Oidc::load(o, sealed.as_ref()))
                        .transpose()?;
                    Kind::Http(Arc::new(
                        HttpProxy::new(
                            tls,
                            upstream.clone(),
                            *hsts,
                            client_identity_header,
                            &shared,
                        )
                        .with_oidc(oidc),
                    ))
                }
                ListenerKind::Tcp {
                    tls,
                    upstream,
                    proxy_protocol,
                } => {
                    let tls = Arc::new(
                        ServerTls::with_acme(name, tls, &[], sealed.clone(), slot(li))?
                            .answering_tls_alpn(tls_alpn(li)),
                    );
                    tls_all.push(tls.clone());
                    Kind::Tcp(Arc::new(TcpTunnel::new(
                        tls,
                        upstream.clone(),
                        *proxy_protocol,
                    )))
                }
                ListenerKind::Redirect { to } => Kind::Redirect(Arc::new(
                    Redirect::new(to).with_acme(acme.as_ref().map(|a| a.challenges())),
                )),
                ListenerKind::Originate {
                    upstream,
                    server_name,
                    ca,
                    client_cert,
                } => Kind::Originate(Arc::new(Originate::new(
                    client_config(name, ca.as_deref(), client_cert.as_ref())?,
                    upstream.clone(),
                    server_name.clone(),
                ))),
            };
            kinds.push(kind);
        }
        let mut listeners = Vec::new();
        let mut bound = Vec::new();
        for (li, kind) in cfg.listener.iter().zip(kinds) {
            let addr = li.addr;
            let l = TcpListener::bind(addr)
                .await
                .map_err(|e| Error::Bind { addr, source: e })?;
            let local = l
                .local_addr()
                .map_err(|e| Error::Bind { addr, source: e })?;
            bound.push((li.listen.clone(), li.mode(), local));
            let l = l.into_std().map_err(|e| Error::Bind { addr, source: e })?;
            listeners.push((l, li.listen.clone(), kind));
        }
        let metrics = match &cfg.metrics {
            Some(m) => {
                let addr = m.listen;
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
            inboxes,
            acme,
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
        let (exit, exit_rx) = watch::channel(false);
        let mut workers = Vec::new();
        for (w, inbox) in (1..=sh.workers).zip(self.inboxes) {
            let mut socks = Vec::new();
            for (l, name, kind) in &self.listeners {
                let l = l
                    .try_clone()
                    .map_err(|e| Error::io("listening socket", e))?;
                socks.push((l, name.clone(), kind.clone()));
            }
            let (sh, exit) = (sh.clone(), exit_rx.clone());
            let t = std::thread::Builder::new()
                .name(format!("pivault-proxy-{w}"))
                .spawn(move || worker(w, socks, inbox, sh, exit))
                .map_err(|e| Error::io("worker thread", e))?;
            workers.push(t);
        }
        // Only the workers' copies may keep the sockets open: when their
        // accept loops end on SIGTERM, new connections must be refused.
        drop(self.listeners);
        if let Some(ml) = self.metrics {
            tokio::spawn(serve_metrics(ml, sh.clone()));
        }
        tokio::spawn(reloader(self.tls.clone(), hup, sh.clone()));
        if let Some(a) = self.acme.clone() {
            tokio::spawn(a.run(sh.clone()));
        }
        let watchdog = tokio::spawn(crate::notify::watchdog());
        crate::notify::ready(&format!("serving {} listener(s)", self.bound.len()));
        tokio::select! {
            _ = term.recv() => tracing::info!("SIGTERM: draining"),
            _ = int.recv() => tracing::info!("SIGINT: draining"),
        }
        crate::notify::stopping();
        watchdog.abort();
        let _ = self.stop.send(true);
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
        let _ = exit.send(true);
        for t in workers {
            let _ = t.join();
        }
        Ok(())
    }
}

/// One worker thread: a single-threaded runtime accepting on every
/// listener until shutdown, then serving what is open until `exit`.
fn worker(
    w: usize,
    socks: Vec<(std::net::TcpListener, String, Kind)>,
    inbox: Inbox,
    sh: Arc<Shared>,
    mut exit: watch::Receiver<bool>,
) {
    crate::listener::set_worker(w);
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            tracing::error!("worker {w}: cannot start a runtime: {e}");
            sh.balance.retire(w - 1);
            return;
        }
    };
    rt.block_on(async {
        tokio::spawn(serve_inbox(inbox));
        for (i, (l, name, kind)) in socks.into_iter().enumerate() {
            let l = match TcpListener::from_std(l) {
                Ok(l) => l,
                Err(e) => {
                    tracing::error!("worker {w}: listener {name}: {e}");
                    continue;
                }
            };
            let sh = sh.clone();
            match kind {
                Kind::Http(h) => tokio::spawn(accept_loop(l, i, name, h, sh)),
                Kind::Tcp(h) => tokio::spawn(accept_loop(l, i, name, h, sh)),
                Kind::Redirect(h) => tokio::spawn(accept_loop(l, i, name, h, sh)),
                Kind::Originate(h) => tokio::spawn(accept_loop(l, i, name, h, sh)),
            };
        }
        crate::listener::stopped(&mut exit).await;
    });
    rt.shutdown_timeout(Duration::from_millis(500));
}

/// Reloads certificates (and CRLs) on SIGHUP (all) and when files change (polled
/// every 2 s), and reopens the access log on SIGHUP. A failed reload keeps
/// the old certificate or log file and says why.
async fn reloader(tls: Vec<Arc<ServerTls>>, mut hup: tokio::signal::unix::Signal, sh: Arc<Shared>) {
    let mut tick = tokio::time::interval(Duration::from_secs(2));
    let mut stop = sh.shutdown.clone();
    loop {
        let forced = tokio::select! {
            _ = hup.recv() => true,
            _ = tick.tick() => false,
            _ = crate::listener::stopped(&mut stop) => return,
        };
        if forced {
            crate::notify::reloading();
        }
        if let (true, Some(log)) = (forced, &sh.log) {
            match log.reopen() {
                Ok(()) => tracing::info!("access log {} reopened", log.target()),
                Err(e) => {
                    tracing::error!("access log not reopened, still writing the old file: {e}")
                }
            }
        }
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
                    tracing::info!(
                        "listener {}: certificates reloaded ({})",
                        t.name(),
                        if forced { "SIGHUP" } else { "file changed" }
                    );
                    // A CRL that loads may still be expired: say so now,
                    // not at the first refused client.
                    for w in crate::filecheck::crl_warnings(t.settings()) {
                        tracing::warn!("listener {}: {w}", t.name());
                    }
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
        if forced {
            crate::notify::ready("reloaded");
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

/// Builds the control runtime, binds, reports the bound addresses through
/// `ready`, and serves on the worker threads until SIGTERM/SIGINT.
pub fn run_blocking(
    cfg: &Config,
    sealed: Option<SealedKeyLoader>,
    ready: impl FnOnce(&[(String, Mode, SocketAddr)], Option<SocketAddr>),
) -> Result<()> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
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

/// Worker threads: `PIVAULT_PROXY_THREADS` (an override, for tests and
/// benchmarks), else the config's `workers`, else one per CPU.
fn worker_count(configured: Option<usize>) -> usize {
    let max = crate::config::MAX_WORKERS;
    let env = std::env::var("PIVAULT_PROXY_THREADS")
        .ok()
        .filter(|v| !v.is_empty());
    let forced = env.as_deref().and_then(|v| {
        let n = v.parse().ok().filter(|n| (1..=max).contains(n));
        if n.is_none() {
            tracing::warn!(
                "PIVAULT_PROXY_THREADS={v:?} ignored: expected 1 to {max}; unset it or set a count"
            );
        }
        n
    });
    forced
        .or(configured)
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
}

/// Raises the soft limit on open files to the hard one: each client
/// connection can hold a socket to the client and, in `http` mode, up to
/// `max_upstream_per_connection` to the upstream, and the usual soft limit
/// (1024) is far below `max_connections`. Warns when even the hard limit
/// is below what the limits can use.
fn raise_fd_limit(cfg: &Config) {
    use rustix::process::{getrlimit, setrlimit, Resource};
    let mut lim = getrlimit(Resource::Nofile);
    if lim.current != lim.maximum {
        lim.current = lim.maximum;
        if let Err(e) = setrlimit(Resource::Nofile, lim) {
            tracing::warn!("cannot raise the open-file limit to the hard limit: {e}");
        }
    }
    let now = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    let l = &cfg.limits;
    let http = cfg
        .listener
        .iter()
        .filter(|li| li.mode() == Mode::Http)
        .count() as u64;
    let need = (l.max_connections as u64)
        .saturating_add(http.saturating_mul(l.max_upstream_connections as u64))
        .saturating_add(64);
    if now < need {
        tracing::warn!(
            "the open-file limit is {now}, below the {need} descriptors that max_connections and max_upstream_connections allow: raise it (LimitNOFILE= under systemd, `ulimit -n` in a shell) or lower the limits; accept backs off while no descriptor is free"
        );
    }
}
