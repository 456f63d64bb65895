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
        .map(|(i, l)| {
            use vault_proxy::config::Mode;
            let tls_in = matches!(l.mode, Mode::Http | Mode::Tcp);
            let tls = tls_in || l.mode == Mode::Originate;
            let upstream_host = match l.mode {
                Mode::Http => l.http_upstream().map(|u| {
                    vault_proxy::config::split_host_port(&u.authority)
                        .map(|(h, _)| h)
                        .unwrap_or(u.authority)
                }),
                Mode::Tcp | Mode::Originate => l
                    .upstream
                    .as_deref()
                    .and_then(vault_proxy::config::split_host_port)
                    .map(|(h, _)| h),
                Mode::Redirect => None,
            };
            let mut sni_names: Vec<String> = l.sni.iter().flat_map(|s| s.names.clone()).collect();
            sni_names.sort();
            ListenerEvidence {
                index: i + 1,
                mode: ListenerMode::of(l.mode),
                listen: l.listen.clone(),
                tls_in,
                plaintext_in: !tls_in,
                redirect_only: l.mode == Mode::Redirect,
                tls_versions: if tls { versions.clone() } else { Vec::new() },
                cipher_suites: if tls { suites.clone() } else { Vec::new() },
                client_certificates: match (tls_in, &l.client_ca) {
                    (false, _) => ClientCertificates::NotApplicable,
                    (true, Some(_)) => ClientCertificates::Required,
                    (true, None) => ClientCertificates::NotRequested,
                },
                client_ca: l.client_ca.as_ref().map(|p| p.display().to_string()),
                allow: l.allow.clone(),
                client_crl: l
                    .client_crl
                    .iter()
                    .map(|p| p.display().to_string())
                    .collect(),
                hsts: (l.mode == Mode::Http).then_some(l.hsts),
                redirect_to: l.to.clone(),
                upstream: l.upstream.clone(),
                upstream_loopback: upstream_host.as_deref().map(is_loopback),
                upstream_tls: l.mode == Mode::Originate,
                upstream_ca: (l.mode == Mode::Originate).then(|| {
                    l.ca.as_ref()
                        .map_or_else(|| "system roots".to_string(), |p| p.display().to_string())
                }),
                upstream_client_certificate: l.client_cert.is_some(),
                key_sealed: l.key.as_deref().is_some_and(|k| k.starts_with("sealed:")),
                sni_names,
            }
        })
        .collect();
    Ok(ProxyEvidence {
        config: path.display().to_string(),
        access_log: cfg.access_log.clone(),
        metrics_listen: cfg.metrics.as_ref().map(|m| m.listen.to_string()),
        listeners,
    })
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
