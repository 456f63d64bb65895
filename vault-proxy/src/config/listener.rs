//! A `[[listener]]` as the gateway runs it: one [`ListenerKind`] variant
//! per mode, holding exactly what that mode needs, parsed. A listener in
//! `http` mode has an [`HttpUpstream`], a `redirect` one an [`HttpsUrl`],
//! a TLS-terminating one a [`TlsIn`] (module [`super::tls_in`]); no field is optional because another mode leaves it out,
//! so nothing downstream checks or parses the file's text again.
//!
//! Loading (`Listener::from_raw`, for [`super::Config::parse`]) refuses
//! keys the mode does not take, a missing key the mode needs, and any
//! value that does not parse, each at its file:line:col. The values with
//! rules of their own (addresses, URLs, allow-lists) have private fields,
//! so they exist only parsed.

use super::addr::{HostPort, HttpUpstream, HttpsUrl};
use super::raw::{Mode, RawListener};
use super::tls_in::{tls_in, ServerCert, TlsIn};
use super::Source;
use crate::error::Result;
use crate::oidc::OidcConfig;
use hyper::header::HeaderName;
use rustls_pki_types::ServerName;
use std::net::SocketAddr;
use std::path::PathBuf;

/// One listener.
#[derive(Debug, Clone)]
pub struct Listener {
    /// `listen` as written: the listener's name in logs and metrics.
    pub listen: String,
    /// `listen`, parsed.
    pub addr: SocketAddr,
    /// The mode and what it needs.
    pub kind: ListenerKind,
}

/// A listener's mode with its settings.
#[derive(Debug, Clone)]
pub enum ListenerKind {
    /// TLS in, HTTP reverse proxy to a plaintext upstream.
    Http {
        /// Certificates and client certificate rules.
        tls: TlsIn,
        /// The app.
        upstream: HttpUpstream,
        /// Send Strict-Transport-Security.
        hsts: bool,
        /// The client identity headers' names (`X-Pivault-Client-*`
        /// unless `client_identity_header` says otherwise).
        client_identity_header: IdentityHeader,
        /// Single sign-on (`[listener.oidc]`); boxed, as most listeners
        /// have none and it is most of the variant's size.
        oidc: Option<Box<OidcConfig>>,
    },
    /// TLS in, raw bytes to a plaintext upstream.
    Tcp {
        /// Certificates and client certificate rules.
        tls: TlsIn,
        /// The app.
        upstream: HostPort,
        /// Send a PROXY protocol v2 header first.
        proxy_protocol: bool,
    },
    /// Plaintext in, verified TLS out.
    Originate {
        /// The server.
        upstream: HostPort,
        /// The name its certificate must carry (`server_name`, else the
        /// upstream's host).
        server_name: ServerName<'static>,
        /// PEM CA bundle to verify it with; None: the system roots.
        ca: Option<PathBuf>,
        /// A client certificate to present.
        client_cert: Option<ClientCert>,
    },
    /// Plaintext HTTP in, a redirect to HTTPS out.
    Redirect {
        /// The base URL redirected to.
        to: HttpsUrl,
    },
}

/// `client_identity_header`: the base name and the three header names
/// made from it (`<base>-Subject`, `<base>-SAN`, `<base>-SPKI`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentityHeader {
    base: String,
    names: [HeaderName; 3],
}

impl IdentityHeader {
    /// Parses a base: a header token no other proxy uses (see
    /// docs/PROXY.md).
    pub fn parse(base: &str) -> std::result::Result<IdentityHeader, String> {
        check_identity_base(base)?;
        let name = |suffix: &str| {
            HeaderName::from_bytes(format!("{base}-{suffix}").as_bytes())
                .map_err(|_| format!("`{base}-{suffix}` is not a header name"))
        };
        Ok(IdentityHeader {
            base: base.to_string(),
            names: [name("Subject")?, name("SAN")?, name("SPKI")?],
        })
    }

    /// The base as written.
    pub fn base(&self) -> &str {
        &self.base
    }

    /// `<base>-Subject`, `<base>-SAN` and `<base>-SPKI`, lower case.
    pub fn names(&self) -> &[HeaderName; 3] {
        &self.names
    }
}

impl Default for IdentityHeader {
    /// `X-Pivault-Client`.
    fn default() -> Self {
        IdentityHeader {
            base: crate::headers::DEFAULT_IDENTITY_HEADER.to_string(),
            names: [
                HeaderName::from_static("x-pivault-client-subject"),
                HeaderName::from_static("x-pivault-client-san"),
                HeaderName::from_static("x-pivault-client-spki"),
            ],
        }
    }
}

/// An `originate` listener's client certificate.
#[derive(Debug, Clone)]
pub struct ClientCert {
    /// PEM chain.
    pub chain: PathBuf,
    /// Its private key (a PEM file).
    pub key: PathBuf,
}

/// The keys each mode takes beyond `mode` and `listen`.
fn takes(mode: Mode) -> &'static [&'static str] {
    match mode {
        Mode::Http => &[
            "upstream",
            "cert",
            "key",
            "sni",
            "client_ca",
            "allow",
            "client_crl",
            "hsts",
            "client_identity_header",
            "oidc",
        ],
        Mode::Tcp => &[
            "upstream",
            "cert",
            "key",
            "sni",
            "client_ca",
            "allow",
            "client_crl",
            "proxy_protocol",
        ],
        Mode::Originate => &["upstream", "ca", "server_name", "client_cert", "client_key"],
        Mode::Redirect => &["to"],
    }
}

/// The modes that take `key`, for "used only in ..." messages.
fn modes_taking(key: &str) -> String {
    let m: Vec<&str> = [Mode::Http, Mode::Tcp, Mode::Originate, Mode::Redirect]
        .into_iter()
        .filter(|m| takes(*m).contains(&key))
        .map(Mode::as_str)
        .collect();
    m.join(" and ")
}

impl Listener {
    /// The typed listener of `raw`, the `idx`-th in the file; `has_acme`
    /// says whether the file has an `[acme]` table.
    pub(super) fn from_raw(
        raw: RawListener,
        idx: usize,
        has_acme: bool,
        at: &Source<'_>,
    ) -> Result<Listener> {
        let here = Some(idx);
        let mode = raw.mode;
        let m = mode.as_str();
        let listen = raw.listen.get_ref().clone();
        let addr: SocketAddr = listen.parse().map_err(|_| {
            at.span(
                raw.listen.span(),
                "listen",
                format!("`{listen}`: expected address:port such as 127.0.0.1:8443 or [::]:443"),
            )
        })?;
        if let Some((key, _)) = raw
            .written()
            .into_iter()
            .find(|(k, present)| *present && !takes(mode).contains(k))
        {
            return Err(at.key(
                here,
                key,
                format!(
                    "not used in mode \"{m}\" (only in {}); remove it",
                    modes_taking(key)
                ),
            ));
        }
        let needs = |key: &str, what: &str| {
            at.key(here, key, format!("mode \"{m}\" needs `{key}` ({what})"))
        };
        let host_port = |u: &Option<toml::Spanned<String>>| match u {
            None => Err(needs("upstream", "host:port")),
            Some(u) => HostPort::parse(u.get_ref()).map_err(|e| at.span(u.span(), "upstream", e)),
        };
        let kind = match mode {
            Mode::Http => {
                let upstream = match &raw.upstream {
                    None => return Err(needs("upstream", "http://host:port")),
                    Some(u) => HttpUpstream::parse(u.get_ref())
                        .map_err(|e| at.span(u.span(), "upstream", e))?,
                };
                let client_identity_header = match &raw.client_identity_header {
                    None => IdentityHeader::default(),
                    Some(b) => IdentityHeader::parse(b.get_ref())
                        .map_err(|e| at.span(b.span(), "client_identity_header", e))?,
                };
                let tls = tls_in(&raw, here, has_acme, at)?;
                ListenerKind::Http {
                    tls,
                    upstream,
                    hsts: raw.hsts,
                    client_identity_header,
                    oidc: raw.oidc.map(Box::new),
                }
            }
            Mode::Tcp => {
                let upstream = host_port(&raw.upstream)?;
                ListenerKind::Tcp {
                    tls: tls_in(&raw, here, has_acme, at)?,
                    upstream,
                    proxy_protocol: raw.proxy_protocol,
                }
            }
            Mode::Originate => {
                let upstream = host_port(&raw.upstream)?;
                let server_name = match &raw.server_name {
                    Some(n) => {
                        server_name(n.get_ref()).map_err(|e| at.span(n.span(), "server_name", e))?
                    }
                    None => server_name(upstream.host()).map_err(|e| {
                        at.key(
                            here,
                            "upstream",
                            format!("{e}; set `server_name` to the name its certificate carries"),
                        )
                    })?,
                };
                let client_cert = match (raw.client_cert, raw.client_key) {
                    (Some(chain), Some(key)) => Some(ClientCert { chain, key }),
                    (None, None) => None,
                    (Some(_), None) => {
                        return Err(at.key(
                            here,
                            "client_cert",
                            "`client_cert` needs `client_key` (they go together)",
                        ))
                    }
                    (None, Some(_)) => {
                        return Err(at.key(
                            here,
                            "client_key",
                            "`client_key` needs `client_cert` (they go together)",
                        ))
                    }
                };
                ListenerKind::Originate {
                    upstream,
                    server_name,
                    ca: raw.ca,
                    client_cert,
                }
            }
            Mode::Redirect => ListenerKind::Redirect {
                to: match &raw.to {
                    None => return Err(needs("to", "https://host")),
                    Some(t) => {
                        HttpsUrl::parse(t.get_ref()).map_err(|e| at.span(t.span(), "to", e))?
                    }
                },
            },
        };
        Ok(Listener { listen, addr, kind })
    }

    /// The mode.
    pub fn mode(&self) -> Mode {
        match self.kind {
            ListenerKind::Http { .. } => Mode::Http,
            ListenerKind::Tcp { .. } => Mode::Tcp,
            ListenerKind::Originate { .. } => Mode::Originate,
            ListenerKind::Redirect { .. } => Mode::Redirect,
        }
    }

    /// Certificates and client rules of an `http` or `tcp` listener.
    pub fn tls_in(&self) -> Option<&TlsIn> {
        match &self.kind {
            ListenerKind::Http { tls, .. } | ListenerKind::Tcp { tls, .. } => Some(tls),
            _ => None,
        }
    }

    /// True for `cert = "acme"`.
    pub fn uses_acme(&self) -> bool {
        self.tls_in().is_some_and(|t| t.cert == ServerCert::Acme)
    }
}

/// The name an upstream's certificate must carry: a DNS name or an IP
/// address.
fn server_name(n: &str) -> std::result::Result<ServerName<'static>, String> {
    ServerName::try_from(n.to_string())
        .map_err(|_| format!("`{n}` is not a valid server name (a DNS name or IP address)"))
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_identity_header_is_what_parsing_its_base_gives() {
        let d = IdentityHeader::default();
        assert_eq!(IdentityHeader::parse(d.base()).unwrap(), d);
    }
}
