//! The gateway configuration's evidence: each listener's mode, TLS, client
//! certificate rule and upstream, read with vault-proxy's own strict parser
//! so a file the gateway would refuse is refused here too.

use crate::error::{Error, Result};
use crate::model::*;
use std::net::IpAddr;
use std::path::Path;

/// The evidence of the gateway configuration file at `path`.
pub fn proxy_config(path: &Path) -> Result<ProxyEvidence> {
    let cfg = vault_proxy::Config::load(path).map_err(|e| match e {
        e @ vault_proxy::Error::Config { .. } => Error::ProxyConfig(e),
        e => Error::ProxyUnreadable(e),
    })?;
    let provider = vault_proxy::tls::provider();
    let suites: Vec<String> = provider
        .cipher_suites
        .iter()
        .map(|s| {
            let name = format!("{:?}", s.suite());
            // TLS13_... are IANA's TLS_... names without the version.
            name.strip_prefix("TLS13_")
                .map(|n| format!("TLS_{n}"))
                .unwrap_or(name)
        })
        .collect();
    let mut versions = Vec::new();
    if provider.cipher_suites.iter().any(|s| s.tls13().is_some()) {
        versions.push("1.3".to_string());
    }
    if provider.cipher_suites.iter().any(|s| s.tls13().is_none()) {
        versions.push("1.2".to_string());
    }
    let listeners = cfg
        .listener
        .iter()
        .enumerate()
        .map(|(i, l)| listener(i, l, &versions, &suites))
        .collect();
    Ok(ProxyEvidence {
        config: path.display().to_string(),
        access_log: cfg.access_log.clone(),
        metrics_listen: cfg.metrics.as_ref().map(|m| m.listen.to_string()),
        listeners,
    })
}

/// The evidence of the `i`-th listener, read from its typed settings.
fn listener(
    i: usize,
    l: &vault_proxy::config::Listener,
    versions: &[String],
    suites: &[String],
) -> ListenerEvidence {
    use vault_proxy::config::{Access, KeySource, ListenerKind, ServerCert};
    let mode = l.mode();
    let tls = l.tls_in();
    let tls_in = tls.is_some();
    // TLS on either side: in (http, tcp) or out (originate).
    let any_tls = tls_in || matches!(l.kind, ListenerKind::Originate { .. });
    let clients = tls.and_then(|t| t.clients.as_ref());
    let (upstream, upstream_host) = match &l.kind {
        ListenerKind::Http { upstream, .. } => (
            Some(upstream.to_string()),
            Some(upstream.addr().host().to_string()),
        ),
        ListenerKind::Tcp { upstream, .. } | ListenerKind::Originate { upstream, .. } => (
            Some(upstream.to_string()),
            Some(upstream.host().to_string()),
        ),
        ListenerKind::Redirect { .. } => (None, None),
    };
    let (upstream_ca, upstream_client_certificate) = match &l.kind {
        ListenerKind::Originate {
            ca, client_cert, ..
        } => (
            Some(
                ca.as_ref()
                    .map_or_else(|| "system roots".to_string(), |p| p.display().to_string()),
            ),
            client_cert.is_some(),
        ),
        _ => (None, false),
    };
    let mut sni_names: Vec<String> = tls
        .iter()
        .flat_map(|t| &t.sni)
        .flat_map(|s| s.names.clone())
        .collect();
    sni_names.sort();
    ListenerEvidence {
        index: i + 1,
        mode: ListenerMode::of(mode),
        listen: l.listen.clone(),
        tls_in,
        plaintext_in: !tls_in,
        redirect_only: matches!(l.kind, ListenerKind::Redirect { .. }),
        tls_versions: if any_tls {
            versions.to_vec()
        } else {
            Vec::new()
        },
        cipher_suites: if any_tls { suites.to_vec() } else { Vec::new() },
        client_certificates: match (tls_in, clients) {
            (false, _) => ClientCertificates::NotApplicable,
            (true, Some(_)) => ClientCertificates::Required,
            (true, None) => ClientCertificates::NotRequested,
        },
        client_ca: clients.map(|c| c.ca.display().to_string()),
        allow: match clients.map(|c| &c.access) {
            Some(Access::Only(list)) => list.rules().iter().map(|r| r.to_string()).collect(),
            Some(Access::AnyVerifiedClient) | None => Vec::new(),
        },
        client_crl: clients
            .iter()
            .flat_map(|c| &c.crl)
            .map(|p| p.display().to_string())
            .collect(),
        hsts: match &l.kind {
            ListenerKind::Http { hsts, .. } => Some(*hsts),
            _ => None,
        },
        redirect_to: match &l.kind {
            ListenerKind::Redirect { to } => Some(to.to_string()),
            _ => None,
        },
        upstream,
        upstream_loopback: upstream_host.as_deref().map(is_loopback),
        upstream_tls: matches!(l.kind, ListenerKind::Originate { .. }),
        upstream_ca,
        upstream_client_certificate,
        key_sealed: tls.is_some_and(|t| {
            matches!(
                &t.cert,
                ServerCert::Files {
                    key: KeySource::Sealed(_),
                    ..
                }
            )
        }),
        sni_names,
    }
}

/// An upstream host on this machine: its link carries no PI off the host.
pub fn is_loopback(host: &str) -> bool {
    let h = host.trim_start_matches('[').trim_end_matches(']');
    h.eq_ignore_ascii_case("localhost") || h.parse::<IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

/// A listen address only this machine can reach.
pub fn listen_is_loopback(listen: &str) -> bool {
    listen
        .parse::<std::net::SocketAddr>()
        .is_ok_and(|a| a.ip().is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_and_listeners() {
        for (host, want) in [
            ("127.0.0.1", true),
            ("127.8.9.10", true),
            ("[::1]", true),
            ("localhost", true),
            ("LOCALHOST", true),
            ("10.0.0.5", false),
            ("db.example", false),
            ("", false),
        ] {
            assert_eq!(is_loopback(host), want, "{host}");
        }
        for (listen, want) in [
            ("127.0.0.1:5433", true),
            ("[::1]:5433", true),
            ("0.0.0.0:5433", false),
            ("[::]:5433", false),
            ("192.168.1.2:80", false),
            // Not an address the gateway would take: not loopback either.
            ("localhost:80", false),
            ("nonsense", false),
        ] {
            assert_eq!(listen_is_loopback(listen), want, "{listen}");
        }
    }
}
