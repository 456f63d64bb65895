//! The gateway's TOML configuration (`pivault proxy --config FILE`).
//!
//! Parsing is strict: unknown keys are errors, and every error names the
//! file, line, column and key with what was expected. [`Config::load`]
//! parses and validates the shape (addresses, URLs, which keys each mode
//! takes); it opens no socket and reads no certificate. docs/PROXY.md
//! explains every key.

pub use crate::access::AllowRule;
use crate::error::{Error, Result};
use crate::span::{key_at, line_col, locate};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

/// The whole file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// JSON-lines access log: a path, or "-" for stdout. None: no access log.
    pub access_log: Option<String>,
    /// Worker threads. None (or `"auto"`): one per CPU.
    #[serde(default, deserialize_with = "workers")]
    pub workers: Option<usize>,
    /// Connection and request limits.
    #[serde(default)]
    pub limits: Limits,
    /// The monitoring listener (GET /metrics, GET /status).
    pub metrics: Option<Metrics>,
    /// The listeners; at least one.
    #[serde(default)]
    pub listener: Vec<Listener>,
    /// Certificates from an ACME CA for listeners with `cert = "acme"`.
    pub acme: Option<crate::acme::AcmeConfig>,
    /// Where the file was read from (for messages).
    #[serde(skip)]
    pub path: PathBuf,
}

/// The most worker threads `workers` may ask for.
pub const MAX_WORKERS: usize = 512;

/// `workers`: a count, or `"auto"` (nginx's spelling) for one per CPU.
fn workers<'de, D: serde::Deserializer<'de>>(d: D) -> std::result::Result<Option<usize>, D::Error> {
    struct Count;
    impl serde::de::Visitor<'_> for Count {
        type Value = Option<usize>;
        fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
            f.write_str("a number of worker threads or \"auto\"")
        }
        fn visit_i64<E: serde::de::Error>(self, v: i64) -> std::result::Result<Self::Value, E> {
            // Out of range is validation's to say, with the bounds.
            Ok(Some(usize::try_from(v).unwrap_or(0)))
        }
        fn visit_str<E: serde::de::Error>(self, v: &str) -> std::result::Result<Self::Value, E> {
            match v {
                "auto" => Ok(None),
                _ => Err(E::invalid_value(serde::de::Unexpected::Str(v), &self)),
            }
        }
    }
    d.deserialize_any(Count)
}

/// The largest value of a `[limits]` timeout, in seconds (a day).
const MAX_SECONDS: u64 = 86_400;
/// The largest value of a `[limits]` count.
const MAX_COUNT: u64 = 10_000_000;

/// `[limits]`: every one has a default.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct Limits {
    /// Open client connections per process, taken before the TLS handshake.
    pub max_connections: usize,
    /// Seconds a client has to finish the TLS handshake.
    pub handshake_timeout_s: u64,
    /// Seconds a client has to send a whole request header (slowloris).
    pub header_timeout_s: u64,
    /// Seconds without a byte either way before a connection is closed.
    pub idle_timeout_s: u64,
    /// Largest request header block in bytes; larger gets 431.
    pub max_header_bytes: usize,
    /// Seconds the upstream has to begin its response once the request
    /// (with its whole body) is sent; then 504.
    pub upstream_timeout_s: u64,
    /// Seconds a request body may pause between two bytes; then 408.
    pub body_timeout_s: u64,
    /// Seconds to connect to an upstream; then 502.
    pub connect_timeout_s: u64,
    /// Idle keep-alive upstream connections kept per worker thread and
    /// `http` listener (nginx's `keepalive`); 0 opens one per request.
    pub upstream_idle: usize,
    /// Seconds in-flight work may take to finish after SIGTERM.
    pub drain_timeout_s: u64,
    /// Open client connections per listener (so that one listener's
    /// clients cannot take every slot of `max_connections`).
    pub max_connections_per_listener: usize,
    /// Open client connections per client IP address, per listener.
    pub max_connections_per_client: usize,
    /// Seconds an HTTP/2 connection may stay open with no stream open;
    /// PINGs and window updates do not count as activity.
    pub h2_idle_timeout_s: u64,
    /// Open upstream connections per `http` listener, idle or busy; at
    /// the cap a request waits (up to `upstream_timeout_s`) for one, then
    /// gets 503.
    pub max_upstream_connections: usize,
    /// Requests of one HTTP/2 client connection that go upstream at once;
    /// its other streams wait their turn.
    pub max_upstream_per_connection: usize,
    /// Lines logged per client address and window for refused TLS
    /// handshakes; beyond that they are counted and the next line says
    /// how many were not logged.
    pub refusal_log_burst: u32,
    /// The window of `refusal_log_burst`, in seconds.
    pub refusal_log_window_s: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_connections: 10_000,
            handshake_timeout_s: 10,
            header_timeout_s: 10,
            idle_timeout_s: 75,
            max_header_bytes: 65_536,
            upstream_timeout_s: 60,
            body_timeout_s: 60,
            connect_timeout_s: 5,
            upstream_idle: 64,
            drain_timeout_s: 30,
            max_connections_per_listener: 5_000,
            max_connections_per_client: 512,
            h2_idle_timeout_s: 75,
            max_upstream_connections: 512,
            max_upstream_per_connection: 16,
            refusal_log_burst: 5,
            refusal_log_window_s: 60,
        }
    }
}

/// `[metrics]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    /// Plaintext address for GET /metrics and GET /status (keep it private),
    /// parsed as the file is read.
    pub listen: SocketAddr,
}

/// What a listener does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// TLS in, HTTP reverse proxy to a plaintext upstream.
    Http,
    /// TLS in, raw bytes to a plaintext upstream.
    Tcp,
    /// Plaintext in, TLS out to the upstream.
    Originate,
    /// Plaintext HTTP in, redirect to `to`.
    Redirect,
}

impl Mode {
    /// The name used in the config.
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Http => "http",
            Mode::Tcp => "tcp",
            Mode::Originate => "originate",
            Mode::Redirect => "redirect",
        }
    }
}

/// One `[[listener]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Listener {
    /// http | tcp | originate | redirect.
    pub mode: Mode,
    /// address:port to accept on.
    pub listen: String,
    /// http: base URL "http://host:port"; tcp, originate: "host:port".
    pub upstream: Option<String>,
    /// PEM chain, leaf first, or `"acme"` (http, tcp).
    pub cert: Option<CertSource>,
    /// PEM private key, or "sealed:VAULT_DIR:NAME" (http, tcp; not with
    /// `cert = "acme"`).
    pub key: Option<String>,
    /// More certificates chosen by SNI.
    #[serde(default)]
    pub sni: Vec<Sni>,
    /// PEM CA bundle: client certificates are required and checked against it.
    pub client_ca: Option<PathBuf>,
    /// Allow-list of client certificates (needs `client_ca`).
    #[serde(default)]
    pub allow: Vec<String>,
    /// CRL files (PEM or DER) every client certificate is checked against
    /// (needs `client_ca`); reloaded with the certificates. docs/PROXY.md
    /// gives the policy: whole chain, unknown status and expired CRLs
    /// refused.
    #[serde(default)]
    pub client_crl: Vec<PathBuf>,
    /// http: send Strict-Transport-Security.
    #[serde(default)]
    pub hsts: bool,
    /// http: base name of the identity headers the upstream gets for a
    /// verified client certificate (`<base>-Subject`, `-SAN`, `-SPKI`);
    /// a client's copies of them are removed. None: `X-Pivault-Client`.
    pub client_identity_header: Option<String>,
    /// http: single sign-on with OpenID Connect (`[listener.oidc]`),
    /// checked while parsing (see [`crate::oidc::config`]).
    pub oidc: Option<crate::oidc::OidcConfig>,
    /// tcp: send a PROXY protocol v2 header to the upstream.
    #[serde(default)]
    pub proxy_protocol: bool,
    /// redirect: target base URL, `https://host[:port]`.
    pub to: Option<String>,
    /// originate: PEM CA bundle for the upstream (default: system roots).
    pub ca: Option<PathBuf>,
    /// originate: name to verify the upstream against (default: its host).
    pub server_name: Option<String>,
    /// originate: client certificate chain to present.
    pub client_cert: Option<PathBuf>,
    /// originate: its private key.
    pub client_key: Option<PathBuf>,
    /// Parsed `listen` (filled by validation).
    #[serde(skip)]
    pub addr: Option<SocketAddr>,
}

pub use crate::acme::config::CertSource;

/// One `[[listener.sni]]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Sni {
    /// Server names this certificate is for ("*.example.com" allowed).
    pub names: Vec<String>,
    /// PEM chain, leaf first.
    pub cert: PathBuf,
    /// PEM private key or "sealed:VAULT_DIR:NAME".
    pub key: String,
}

/// A parsed `upstream` for http mode.
#[derive(Debug, Clone)]
pub struct HttpUpstream {
    /// "http".
    pub scheme: String,
    /// host:port.
    pub authority: String,
    /// Path prefix without a trailing slash ("" for none).
    pub prefix: String,
}

impl Listener {
    /// The certificate file, unless the certificate comes from ACME.
    pub fn cert_file(&self) -> Option<&Path> {
        match &self.cert {
            Some(CertSource::File(p)) => Some(p),
            _ => None,
        }
    }
    /// True for `cert = "acme"`.
    pub fn uses_acme(&self) -> bool {
        self.cert == Some(CertSource::Acme)
    }
    /// Parsed `upstream` of an http listener.
    pub fn http_upstream(&self) -> Option<HttpUpstream> {
        let u = self.upstream.as_deref()?;
        parse_http_url(u, "http").ok()
    }
    /// Parsed `allow` rules.
    pub fn allow_rules(&self) -> Vec<AllowRule> {
        self.allow
            .iter()
            .filter_map(|a| AllowRule::parse(a).ok())
            .collect()
    }
}

fn parse_http_url(u: &str, scheme: &str) -> std::result::Result<HttpUpstream, String> {
    let rest = u
        .strip_prefix(&format!("{scheme}://"))
        .ok_or_else(|| format!("`{u}`: expected a {scheme}:// URL"))?;
    let (auth, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    if auth.is_empty() || auth.contains('@') || auth.contains('?') || auth.contains('#') {
        return Err(format!("`{u}`: expected {scheme}://host[:port][/path]"));
    }
    auth.parse::<hyper::http::uri::Authority>()
        .map_err(|_| format!("`{u}`: `{auth}` is not a valid host[:port]"))?;
    if path.contains('?') || path.contains('#') {
        return Err(format!("`{u}`: no query or fragment allowed"));
    }
    Ok(HttpUpstream {
        scheme: scheme.into(),
        authority: auth.into(),
        prefix: path.trim_end_matches('/').into(),
    })
}

/// Parses a validated `to` (`https://host[:port][/prefix]`).
pub fn parse_https(u: &str) -> Option<HttpUpstream> {
    parse_http_url(u, "https").ok()
}

/// Splits `host:port` (IPv6 as `[::1]:port`).
pub fn split_host_port(s: &str) -> Option<(String, u16)> {
    let (host, port) = s.rsplit_once(':')?;
    let port: u16 = port.parse().ok()?;
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if host.is_empty() || port == 0 {
        return None;
    }
    Some((host.to_string(), port))
}

impl Config {
    /// Reads, parses and validates `path`.
    pub fn load(path: &Path) -> Result<Config> {
        let src = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Config::parse(&src, path)
    }

    /// Parses and validates `src` (read from `path`, used in messages).
    pub fn parse(src: &str, path: &Path) -> Result<Config> {
        let mut cfg: Config = toml::from_str(src).map_err(|e| {
            let (line, col) = e.span().map(|s| line_col(src, s.start)).unwrap_or((0, 0));
            let key = e.span().and_then(|s| key_at(src, s.start));
            Error::Config {
                file: path.to_path_buf(),
                line,
                col,
                key,
                msg: e.message().trim().to_string(),
            }
        })?;
        cfg.path = path.to_path_buf();
        cfg.validate(src)?;
        Ok(cfg)
    }

    fn validate(&mut self, src: &str) -> Result<()> {
        let file = self.path.clone();
        let err = |idx: Option<usize>, key: &str, msg: String| {
            let (line, col) = locate(src, idx, key);
            Error::Config {
                file: file.clone(),
                line,
                col,
                key: Some(key.to_string()),
                msg,
            }
        };
        let l = &self.limits;
        for (k, v) in [
            ("max_connections", l.max_connections as u64),
            ("handshake_timeout_s", l.handshake_timeout_s),
            ("header_timeout_s", l.header_timeout_s),
            ("idle_timeout_s", l.idle_timeout_s),
            ("upstream_timeout_s", l.upstream_timeout_s),
            ("connect_timeout_s", l.connect_timeout_s),
            ("body_timeout_s", l.body_timeout_s),
            (
                "max_connections_per_listener",
                l.max_connections_per_listener as u64,
            ),
            (
                "max_connections_per_client",
                l.max_connections_per_client as u64,
            ),
            ("h2_idle_timeout_s", l.h2_idle_timeout_s),
            (
                "max_upstream_connections",
                l.max_upstream_connections as u64,
            ),
            (
                "max_upstream_per_connection",
                l.max_upstream_per_connection as u64,
            ),
        ] {
            if v == 0 {
                return Err(err(None, k, "expected a number greater than 0".into()));
            }
            // Bounded so that deadlines and semaphores cannot overflow.
            let (max, what) = if k.ends_with("_s") {
                (MAX_SECONDS, "seconds (a day)")
            } else {
                (MAX_COUNT, "")
            };
            if v > max {
                return Err(err(
                    None,
                    k,
                    format!("expected at most {max} {what}")
                        .trim_end()
                        .to_string(),
                ));
            }
        }
        if self
            .workers
            .is_some_and(|w| !(1..=MAX_WORKERS).contains(&w))
        {
            return Err(err(
                None,
                "workers",
                format!(
                    "expected 1 to {MAX_WORKERS} worker threads (leave it out for one per CPU)"
                ),
            ));
        }
        if l.max_header_bytes < 1024 {
            return Err(err(
                None,
                "max_header_bytes",
                "expected at least 1024 bytes".into(),
            ));
        }
        if self.listener.is_empty() {
            return Err(err(
                None,
                "listener",
                "no [[listener]]: expected at least one".into(),
            ));
        }
        let mut seen = Vec::new();
        for (i, li) in self.listener.iter_mut().enumerate() {
            let at = Some(i);
            let addr: SocketAddr = li.listen.parse().map_err(|_| {
                err(
                    at,
                    "listen",
                    format!(
                        "`{}`: expected address:port such as 127.0.0.1:8443",
                        li.listen
                    ),
                )
            })?;
            if addr.port() != 0 && seen.contains(&addr) {
                return Err(err(
                    at,
                    "listen",
                    format!("{addr} is used by an earlier listener"),
                ));
            }
            seen.push(addr);
            li.addr = Some(addr);
            let m = li.mode.as_str();
            let forbid = |key: &str, present: bool| {
                if present {
                    Err(err(at, key, format!("not used in mode \"{m}\"; remove it")))
                } else {
                    Ok(())
                }
            };
            let tls_in = matches!(li.mode, Mode::Http | Mode::Tcp);
            if tls_in {
                if li.cert.is_none() {
                    return Err(err(
                        at,
                        "cert",
                        format!("mode \"{m}\" needs `cert` (PEM chain)"),
                    ));
                }
                if li.uses_acme() {
                    if li.key.is_some() {
                        return Err(err(at, "key", crate::acme::config::NO_KEY.into()));
                    }
                    if self.acme.is_none() {
                        return Err(err(
                            at,
                            "cert",
                            "`cert = \"acme\"` needs an [acme] table (directory, domains, storage)"
                                .into(),
                        ));
                    }
                } else if li.key.is_none() {
                    return Err(err(
                        at,
                        "key",
                        format!("mode \"{m}\" needs `key` (PEM file or sealed:VAULT_DIR:NAME)"),
                    ));
                }
                if let Some(k) = &li.key {
                    check_key_spec(k).map_err(|e| err(at, "key", e))?;
                }
                for s in &li.sni {
                    check_key_spec(&s.key).map_err(|e| err(at, "sni", e))?;
                    if s.names.is_empty() {
                        return Err(err(
                            at,
                            "sni",
                            "`names` is empty: expected at least one server name".into(),
                        ));
                    }
                }
                if !li.allow.is_empty() && li.client_ca.is_none() {
                    return Err(err(
                        at,
                        "allow",
                        "needs `client_ca` (client certificates are checked against it first)"
                            .into(),
                    ));
                }
                for a in &li.allow {
                    AllowRule::parse(a).map_err(|e| err(at, "allow", e))?;
                }
                if !li.client_crl.is_empty() && li.client_ca.is_none() {
                    return Err(err(
                        at,
                        "client_crl",
                        "needs `client_ca` (the CRLs revoke certificates of the CAs in it; without it no client certificate is asked for)"
                            .into(),
                    ));
                }
                if li.client_crl.iter().any(|p| p.as_os_str().is_empty()) {
                    return Err(err(
                        at,
                        "client_crl",
                        "an empty path: expected CRL files such as [\"ca.crl\"]".into(),
                    ));
                }
            } else {
                forbid("cert", li.cert.is_some())?;
                forbid("key", li.key.is_some())?;
                forbid("sni", !li.sni.is_empty())?;
                forbid("client_ca", li.client_ca.is_some())?;
                forbid("allow", !li.allow.is_empty())?;
                forbid("client_crl", !li.client_crl.is_empty())?;
            }
            if li.mode != Mode::Http {
                forbid("hsts", li.hsts)?;
                forbid(
                    "client_identity_header",
                    li.client_identity_header.is_some(),
                )?;
                forbid("oidc", li.oidc.is_some())?;
            }
            if let Some(b) = &li.client_identity_header {
                check_identity_base(b).map_err(|e| err(at, "client_identity_header", e))?;
            }
            if li.mode != Mode::Tcp {
                forbid("proxy_protocol", li.proxy_protocol)?;
            }
            if li.mode != Mode::Originate {
                forbid("ca", li.ca.is_some())?;
                forbid("server_name", li.server_name.is_some())?;
                forbid("client_cert", li.client_cert.is_some())?;
                forbid("client_key", li.client_key.is_some())?;
            }
            match li.mode {
                Mode::Redirect => {
                    forbid("upstream", li.upstream.is_some())?;
                    let to = li.to.as_deref().ok_or_else(|| {
                        err(
                            at,
                            "to",
                            "mode \"redirect\" needs `to` (https://host)".into(),
                        )
                    })?;
                    parse_http_url(to, "https").map_err(|e| err(at, "to", e))?;
                }
                Mode::Http => {
                    forbid("to", li.to.is_some())?;
                    let u = li.upstream.as_deref().ok_or_else(|| {
                        err(
                            at,
                            "upstream",
                            "mode \"http\" needs `upstream` (http://host:port)".into(),
                        )
                    })?;
                    parse_http_url(u, "http").map_err(|e| err(at, "upstream", e))?;
                }
                Mode::Tcp | Mode::Originate => {
                    forbid("to", li.to.is_some())?;
                    let u = li.upstream.as_deref().ok_or_else(|| {
                        err(
                            at,
                            "upstream",
                            format!("mode \"{m}\" needs `upstream` (host:port)"),
                        )
                    })?;
                    if split_host_port(u).is_none() {
                        return Err(err(at, "upstream", format!("`{u}`: expected host:port")));
                    }
                    if li.client_cert.is_some() != li.client_key.is_some() {
                        return Err(err(
                            at,
                            "client_key",
                            "`client_cert` and `client_key` go together".into(),
                        ));
                    }
                }
            }
        }
        if let Some(acme) = &self.acme {
            acme.check_listeners(&self.listener)
                .map_err(|e| err(None, "acme", e))?;
        }
        Ok(())
    }
}

/// A base for the identity header names: a header token that the
/// suffixes keep valid, and no name the gateway strips or sets for other
/// reasons (it would be stripped before the upstream saw it, or stand for
/// a forwarding header).
fn check_identity_base(b: &str) -> std::result::Result<(), String> {
    let token = !b.is_empty()
        && b.len() <= 64
        && b.bytes().all(|c| c.is_ascii_alphanumeric() || c == b'-')
        && !b.starts_with('-')
        && !b.ends_with('-');
    if !token {
        return Err(format!(
            "`{b}`: expected a header name of letters, digits and inner `-` (at most 64), such as \"X-Pivault-Client\""
        ));
    }
    let l = b.to_ascii_lowercase();
    if [
        "x-forwarded",
        "forwarded",
        "x-real-ip",
        "x-ssl",
        "x-client",
        "ssl-client",
        "x-original",
        "x-rewrite",
        "x-tls-client",
        "proxy",
        "connection",
        "host",
    ]
    .iter()
    .any(|p| l.starts_with(p))
    {
        return Err(format!(
            "`{b}`: a name other proxies use; pick one of your own such as \"X-Pivault-Client\""
        ));
    }
    Ok(())
}

fn check_key_spec(k: &str) -> std::result::Result<(), String> {
    if let Some(rest) = k.strip_prefix("sealed:") {
        match rest.rsplit_once(':') {
            Some((v, n)) if !v.is_empty() && !n.is_empty() => Ok(()),
            _ => Err(format!("`{k}`: expected sealed:VAULT_DIR:NAME")),
        }
    } else if k.is_empty() {
        Err("empty key path".into())
    } else {
        Ok(())
    }
}

#[cfg(test)]
mod tests;
