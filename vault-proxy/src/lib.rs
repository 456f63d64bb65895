//! vault-proxy: pivault's TLS gateway in front of legacy applications.
//!
//! One process runs many listeners, each in one mode:
//!
//! - `http`: HTTPS (HTTP/1.1 and HTTP/2) in, plaintext HTTP to the app;
//! - `tcp`: TLS in, raw bytes to the app (optionally with a PROXY v2 header);
//! - `originate`: plaintext in from a legacy client, verified TLS out;
//! - `redirect`: plaintext HTTP in, a redirect to HTTPS out.
//!
//! TLS is rustls with the *ring* provider, TLS 1.2 and 1.3 with ECDHE AEAD
//! suites only. Client certificates can be required (`client_ca`),
//! filtered (`allow`) and checked against CRLs (`client_crl`, fail
//! closed). Certificates and CRLs reload on SIGHUP and on file change, or
//! come from an ACME CA (`cert = "acme"`, [`acme`]) and renew themselves.
//!
//! ```no_run
//! let cfg = vault_proxy::Config::load(std::path::Path::new("gw.toml"))?;
//! vault_proxy::tls::check_files(&cfg, None)?;           // what `proxy check` does
//! vault_proxy::run_blocking(&cfg, None, |bound, _| {
//!     for (name, mode, addr) in bound {
//!         eprintln!("{} {name} on {addr}", mode.as_str());
//!     }
//! })?;                                                   // until SIGTERM, then drains
//! # Ok::<(), vault_proxy::Error>(())
//! ```
//!
//! Modules: [`config`] (the TOML file, parsed into one typed listener per mode), [`acme`] (certificates from an ACME CA: account, orders, HTTP-01 and TLS-ALPN-01, renewal), [`tls`] (policy, certificate
//! and CRL loading and reload), [`listener`] (accept loop, limits), [`balance`] (connections spread over worker threads), [`access`]
//! (client certificate rules), [`http`], [`tcp`], [`originate`],
//! [`redirect`] (the modes), `headers` (hop-by-hop, forwarding and identity headers), `request` (requests refused, paths resolved), [`oidc`] (single sign-on with OpenID Connect), [`upstream`] (keep-alive upstream connections), [`watch`] (idle and header deadlines), [`metrics`], [`log`] (monitoring), [`server`]
//! (start, signals, drain), [`devcert`], [`filecheck`] (what `proxy check` warns about).
#![forbid(unsafe_code)]
#![deny(missing_docs)]

pub mod access;
pub mod acme;
pub mod balance;
mod body;
pub mod config;
pub mod devcert;
mod error;
mod exchange;
pub mod filecheck;
mod headers;
pub mod http;
pub mod listener;
pub mod log;
pub mod metrics;
mod notify;
pub mod oidc;
pub mod originate;
pub mod redirect;
mod refusal;
mod request;
pub mod server;
mod session;
mod span;
pub mod tcp;
pub mod tls;
pub mod upstream;
pub mod watch;

pub use config::Config;
pub use error::{Error, Result};
pub use server::{run_blocking, Gateway};

/// Entry points for the fuzz targets (`fuzz/`): the gateway's own checks
/// of a request head, before routing. Not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    /// Runs the request checks (method, Host, path dot segments, header
    /// names); true when the request would be let through.
    pub fn check<B>(req: &hyper::Request<B>) -> bool {
        crate::request::check(req).is_ok()
    }

    /// Resolves a path's dot segments: `None` when the gateway refuses
    /// the path, `Some(None)` when it had none.
    pub fn normalise(path: &str) -> Option<Option<String>> {
        crate::request::normalise(path).ok()
    }
}
