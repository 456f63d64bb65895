//! The gateway's TOML configuration (`pivault proxy --config FILE`):
//! read, checked and turned into typed values in one step.
//!
//! Parse, don't validate: [`Config::load`] returns either an error naming
//! the file, line, column and key with what was expected, or a [`Config`]
//! whose every value is of the type the gateway uses: `listen` a
//! [`SocketAddr`], each listener a [`ListenerKind`] variant with exactly
//! its mode's settings, upstreams and redirect targets parsed URLs and
//! `host:port` pairs, `allow` an [`Access`]. Nothing downstream parses
//! the text again or expects a check to have happened. It opens no socket
//! and reads no certificate. docs/PROXY.md explains every key.
//!
//! Modules: `raw` (serde's view of the file), [`limits`], [`addr`]
//! (upstreams and URLs), [`listener`] (the typed listener, one variant
//! per mode), [`tls_in`] (certificates, keys and client certificate
//! rules of a TLS-terminating listener); this one loads, locates errors
//! and checks what spans listeners.

pub mod addr;
pub mod limits;
pub mod listener;
mod raw;
pub mod tls_in;

pub use crate::access::{Access, AllowList, AllowRule};
pub use addr::{HostPort, HttpUpstream, HttpsUrl};
pub use limits::Limits;
pub use listener::{ClientCert, IdentityHeader, Listener, ListenerKind};
pub use raw::Mode;
pub use tls_in::{ClientAuth, KeySource, ServerCert, Sni, TlsIn};

use crate::error::{Error, Result};
use crate::span::{key_at, line_col, locate};
use serde::Deserialize;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// The whole file, checked.
#[derive(Debug, Clone)]
pub struct Config {
    /// JSON-lines access log: a path, or "-" for stdout. None: no access log.
    pub access_log: Option<String>,
    /// Worker threads, 1 to [`MAX_WORKERS`]. None (or `"auto"`): one per CPU.
    pub workers: Option<usize>,
    /// Connection and request limits, in range.
    pub limits: Limits,
    /// The monitoring listener (GET /metrics, GET /status).
    pub metrics: Option<Metrics>,
    /// The listeners: at least one, no two on one address.
    pub listener: Vec<Listener>,
    /// Certificates from an ACME CA for listeners with `cert = "acme"`.
    pub acme: Option<crate::acme::AcmeConfig>,
    /// Where the file was read from (for messages).
    pub path: PathBuf,
}

/// The most worker threads `workers` may ask for.
pub const MAX_WORKERS: usize = 512;

/// `[metrics]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Metrics {
    /// Plaintext address for GET /metrics and GET /status (keep it private),
    /// parsed as the file is read.
    pub listen: SocketAddr,
}

/// The text being loaded, to turn a key or a value's span into an error
/// at file:line:col.
pub(crate) struct Source<'a> {
    text: &'a str,
    file: &'a Path,
}

impl Source<'_> {
    /// An error at `key` of the `listener`-th `[[listener]]` (None: outside
    /// listeners); at the listener's header when the key is not written.
    pub(crate) fn key(&self, listener: Option<usize>, key: &str, msg: impl Into<String>) -> Error {
        self.at(locate(self.text, listener, key), key, msg)
    }

    /// An error at the value spanning `span`, which `key` holds.
    pub(crate) fn span(&self, span: Range<usize>, key: &str, msg: impl Into<String>) -> Error {
        self.at(line_col(self.text, span.start), key, msg)
    }

    fn at(&self, (line, col): (usize, usize), key: &str, msg: impl Into<String>) -> Error {
        Error::Config {
            file: self.file.to_path_buf(),
            line,
            col,
            key: Some(key.to_string()),
            msg: msg.into(),
        }
    }
}

impl Config {
    /// Reads and parses `path`.
    pub fn load(path: &Path) -> Result<Config> {
        let src = std::fs::read_to_string(path).map_err(|e| Error::io(path, e))?;
        Config::parse(&src, path)
    }

    /// Parses `src` (read from `path`, used in messages).
    pub fn parse(src: &str, path: &Path) -> Result<Config> {
        let raw: raw::RawConfig = toml::from_str(src).map_err(|e| {
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
        let at = Source {
            text: src,
            file: path,
        };
        raw.limits.check(&at)?;
        let workers = match raw.workers {
            None => None,
            Some(w) => Some(
                usize::try_from(w)
                    .ok()
                    .filter(|w| (1..=MAX_WORKERS).contains(w))
                    .ok_or_else(|| {
                        at.key(
                            None,
                            "workers",
                            format!("expected 1 to {MAX_WORKERS} worker threads (leave it out for one per CPU)"),
                        )
                    })?,
            ),
        };
        if raw.listener.is_empty() {
            return Err(at.key(None, "listener", "no [[listener]]: expected at least one"));
        }
        let has_acme = raw.acme.is_some();
        let mut listener: Vec<Listener> = Vec::with_capacity(raw.listener.len());
        for (i, r) in raw.listener.into_iter().enumerate() {
            let li = Listener::from_raw(r, i, has_acme, &at)?;
            // Port 0 picks a free port per listener: no clash.
            if li.addr.port() != 0 && listener.iter().any(|o| o.addr == li.addr) {
                return Err(at.key(
                    Some(i),
                    "listen",
                    format!("{} is used by an earlier listener", li.addr),
                ));
            }
            listener.push(li);
        }
        if let Some(acme) = &raw.acme {
            acme.check_listeners(&listener)
                .map_err(|e| at.key(None, "acme", e))?;
        }
        Ok(Config {
            access_log: raw.access_log,
            workers,
            limits: raw.limits,
            metrics: raw.metrics,
            listener,
            acme: raw.acme,
            path: path.to_path_buf(),
        })
    }
}

#[cfg(test)]
mod tests;
