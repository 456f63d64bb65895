//! 17.04(3): encryption of transmitted records, from the gateway
//! configuration. A listener taking plaintext from the network is a
//! finding; plaintext to an upstream off the host, no HSTS, or metrics off
//! loopback are gaps.

use super::{section, Clause, Found};
use crate::gather::listen_is_loopback;
use crate::model::*;

const CLAUSE: Clause = Clause {
    id: "17.04(3)",
    key: "encryption_in_transit",
    title: "Encryption of transmitted records",
    requirement: "encryption of all records and files with PI that travel across public networks, and of all data with PI transmitted wirelessly",
    firm_duty: "every other channel PI travels over: e-mail, file transfer, vendor portals, Wi-Fi (WPA2/WPA3), VPN for remote staff",
};

/// A listener that takes plaintext (PI, unlike a redirect) from other
/// machines: an `originate` listener on an address other than loopback.
/// The 17.04(3) finding, and the fleet's "gateways allowing plaintext".
pub fn plaintext_from_network(l: &ListenerEvidence) -> bool {
    l.plaintext_in && !l.redirect_only && !listen_is_loopback(&l.listen)
}

/// 17.04(3), from the gateway configuration (the firm's duty without one).
pub fn encryption_in_transit(proxy: Option<&ProxyEvidence>) -> Section {
    let mut f = Found::default();
    let Some(p) = proxy else {
        f.evidence.push("no gateway configuration given (--proxy-config): nothing read about encryption in transit".into());
        return section(&CLAUSE, Status::FirmsDuty, f);
    };
    for l in &p.listeners {
        f.evidence.push(listener_line(l));
        if plaintext_from_network(l) {
            f.findings.push(format!(
                "listener {} ({}) accepts plaintext on {}, not a loopback address: PI may cross the network unencrypted before it is encrypted",
                l.index, l.mode, l.listen
            ));
        }
        if l.tls_in && l.upstream_loopback == Some(false) {
            f.cautions.push(format!(
                "listener {} sends plaintext to {}, not on this host: that link must be trusted (not a public or wireless network)",
                l.index,
                l.upstream.as_deref().unwrap_or("?")
            ));
        }
        if l.hsts == Some(false) {
            f.cautions.push(format!(
                "listener {} (http) does not send HSTS: set `hsts = true` so browsers never fall back to plaintext",
                l.index
            ));
        }
    }
    if let Some(m) = &p.metrics_listen {
        if !listen_is_loopback(m) {
            f.cautions.push(format!("the metrics listener {m} is plaintext and not on loopback (it carries no PI, but keep it private)"));
        }
    }
    section(&CLAUSE, Status::Met, f)
}

/// A listener in words: what comes in, what goes out.
fn listener_line(l: &ListenerEvidence) -> String {
    let mut line = format!("listener {} ({}) on {}", l.index, l.mode, l.listen);
    if l.tls_in {
        line.push_str(&format!(
            ": TLS {} in, {} suites (ECDHE, AEAD only), client certificates {}",
            l.tls_versions.join(" and "),
            l.cipher_suites.len(),
            l.client_certificates
        ));
        if let Some(h) = l.hsts {
            line.push_str(if h { ", HSTS on" } else { ", HSTS off" });
        }
        if let Some(u) = &l.upstream {
            line.push_str(&format!(", plaintext to {u}"));
        }
    } else if l.redirect_only {
        line.push_str(&format!(
            ": plaintext, redirect only to {}",
            l.redirect_to.as_deref().unwrap_or("?")
        ));
    } else {
        line.push_str(&format!(
            ": plaintext in from local clients, TLS {} out to {}",
            l.tls_versions.join(" and "),
            l.upstream.as_deref().unwrap_or("?")
        ));
    }
    line
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;
    use ListenerMode::{Originate, Redirect};

    #[test]
    fn status_from_the_listeners() {
        let https_local = || https(1, "0.0.0.0:443", "http://127.0.0.1:8080", true);
        let no_hsts = {
            let mut l = https_local();
            l.hsts = Some(false);
            l
        };
        let public_metrics = {
            let mut g = gateway(vec![https_local()]);
            g.metrics_listen = Some("0.0.0.0:9100".into());
            g
        };
        // (case, gateway, status, text)
        let cases: Vec<(&str, Option<ProxyEvidence>, Status, &str)> = vec![
            ("no configuration", None, Status::FirmsDuty, "firm's duty"),
            (
                "no listeners",
                Some(gateway(vec![])),
                Status::Met,
                "met by pivault",
            ),
            (
                "https to loopback",
                Some(gateway(vec![https_local()])),
                Status::Met,
                "met by pivault",
            ),
            (
                "redirect on any address",
                Some(gateway(vec![
                    https_local(),
                    plaintext(2, Redirect, "0.0.0.0:80"),
                ])),
                Status::Met,
                "met by pivault",
            ),
            (
                "originate on loopback",
                Some(gateway(vec![plaintext(1, Originate, "127.0.0.1:5433")])),
                Status::Met,
                "met by pivault",
            ),
            (
                "originate on the network",
                Some(gateway(vec![plaintext(1, Originate, "0.0.0.0:5433")])),
                Status::Finding,
                "listener 1 (originate) accepts plaintext on 0.0.0.0:5433",
            ),
            (
                "originate on ::",
                Some(gateway(vec![plaintext(1, Originate, "[::]:5433")])),
                Status::Finding,
                "accepts plaintext on [::]:5433",
            ),
            (
                "upstream off the host",
                Some(gateway(vec![https(
                    1,
                    "0.0.0.0:443",
                    "http://10.1.2.3:80",
                    false,
                )])),
                Status::Partly,
                "sends plaintext to http://10.1.2.3:80",
            ),
            (
                "no HSTS",
                Some(gateway(vec![no_hsts])),
                Status::Partly,
                "does not send HSTS",
            ),
            (
                "metrics off loopback",
                Some(public_metrics),
                Status::Partly,
                "metrics listener 0.0.0.0:9100",
            ),
        ];
        for (name, gw, want, text) in cases {
            let s = encryption_in_transit(gw.as_ref());
            assert_eq!(s.status, want, "{name}: {s:#?}");
            assert!(s.status_text.contains(text), "{name}: {}", s.status_text);
        }
    }

    #[test]
    fn plaintext_from_the_network_is_only_a_public_non_redirect() {
        for (l, want) in [
            (plaintext(1, Originate, "0.0.0.0:5433"), true),
            (plaintext(1, Originate, "10.0.0.1:5433"), true),
            (plaintext(1, Originate, "127.0.0.1:5433"), false),
            (plaintext(1, Originate, "[::1]:5433"), false),
            (plaintext(1, Redirect, "0.0.0.0:80"), false),
            (https(1, "0.0.0.0:443", "http://127.0.0.1:1", true), false),
        ] {
            assert_eq!(plaintext_from_network(&l), want, "{l:?}");
        }
    }

    #[test]
    fn evidence_describes_each_listener() {
        let gw = gateway(vec![
            https(1, "0.0.0.0:443", "http://127.0.0.1:8080", true),
            plaintext(2, Redirect, "0.0.0.0:80"),
            plaintext(3, Originate, "127.0.0.1:5433"),
        ]);
        let ev = encryption_in_transit(Some(&gw)).evidence.join("\n");
        for want in [
            "listener 1 (http) on 0.0.0.0:443: TLS 1.3 and 1.2 in, 1 suites (ECDHE, AEAD only), client certificates required, HSTS on, plaintext to http://127.0.0.1:8080",
            "listener 2 (redirect) on 0.0.0.0:80: plaintext, redirect only to https://app.example",
            "listener 3 (originate) on 127.0.0.1:5433: plaintext in from local clients, TLS 1.3 and 1.2 out to db.example:5432",
        ] {
            assert!(ev.contains(want), "{want} not in\n{ev}");
        }
    }
}
