//! 17.04(2): secure access control measures. Who each slot unseals for,
//! who did unseal in the period, and each TLS listener's client
//! certificate rule; a slot open to any OS user is a gap.

use super::{base, section, Clause, Found};
use crate::model::*;

const CLAUSE: Clause = Clause {
    id: "17.04(2)",
    key: "access_control",
    title: "Secure access control measures",
    requirement: "restrict access to records with PI to those who need it for their job; unique IDs plus passwords that are not vendor defaults",
    firm_duty: "deciding who needs access to which records, unique OS and application accounts for each person, no vendor default passwords",
};

/// 17.04(2), from the slots' policies, the unseals and the gateway.
pub fn access_control(vaults: &[VaultEvidence], proxy: Option<&ProxyEvidence>) -> Section {
    let mut f = Found::default();
    for v in vaults {
        for sl in &v.slots {
            let who = if sl.policy.users.is_empty() {
                "any OS user holding the secret".to_string()
            } else {
                format!("OS users {}", sl.policy.users.join(", "))
            };
            let exp = match (&sl.policy.expires, sl.policy.expired) {
                (Some(e), true) => format!(", EXPIRED at {e}"),
                (Some(e), false) => format!(", until {e}"),
                (None, _) => String::new(),
            };
            f.evidence.push(format!(
                "{}: slot {} ({}) unseals for {who}{exp}",
                v.path, sl.id, sl.kind
            ));
            // Escrow is IT's break-glass; an expired slot opens for no one.
            if sl.policy.users.is_empty() && sl.kind != SlotKind::Escrow && !sl.policy.expired {
                f.cautions.push(format!(
                    "slot {} of {} is not restricted to named OS users: `pivault keys policy {} --slot {} --users NAME`",
                    sl.id, v.path, v.path, sl.id
                ));
            }
        }
        if v.unseals_by_user.is_empty() {
            f.evidence
                .push(format!("{}: no unseals in the period", v.path));
        } else {
            let users: Vec<String> = v
                .unseals_by_user
                .iter()
                .map(|u| format!("{} ({})", u.user, u.count))
                .collect();
            f.evidence.push(format!(
                "{}: unsealed in the period by {}",
                v.path,
                users.join(", ")
            ));
        }
    }
    if let Some(p) = proxy {
        for l in p.listeners.iter().filter(|l| l.tls_in) {
            f.evidence.push(format!(
                "gateway listener {} ({} {}): client certificates {}{}",
                l.index,
                l.mode,
                l.listen,
                l.client_certificates,
                if l.allow.is_empty() {
                    String::new()
                } else {
                    format!(", allowed: {}", l.allow.join(", "))
                }
            ));
        }
    }
    section(&CLAUSE, base(!vaults.is_empty()), f)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn status_from_the_policies() {
        let open = {
            let mut s = slot(0);
            s.policy.users.clear();
            s
        };
        let expired_open = {
            let mut s = open.clone();
            s.policy.expires = Some("2026-01-15T00:00:00Z".into());
            s.policy.expired = true;
            s
        };
        let gw = gateway(vec![https(1, "0.0.0.0:443", "http://127.0.0.1:8080", true)]);
        // (case, vaults, gateway, status, text)
        type Case<'a> = (
            &'a str,
            Vec<VaultEvidence>,
            Option<&'a ProxyEvidence>,
            Status,
            &'a str,
        );
        let cases: Vec<Case> = vec![
            ("nothing", vec![], None, Status::FirmsDuty, "firm's duty"),
            // The gateway alone says nothing about who opens records.
            (
                "gateway only",
                vec![],
                Some(&gw),
                Status::FirmsDuty,
                "firm's duty",
            ),
            (
                "restricted",
                vec![good_vault()],
                None,
                Status::Met,
                "met by pivault",
            ),
            (
                "open slot",
                vec![vault("a", vec![open])],
                None,
                Status::Partly,
                "slot 0 of /v/a is not restricted",
            ),
            (
                "expired open slot",
                vec![vault("a", vec![expired_open])],
                None,
                Status::Met,
                "met by pivault",
            ),
            (
                "escrow is open by design",
                vec![vault("a", vec![slot(0), escrow(1)])],
                None,
                Status::Met,
                "met by pivault",
            ),
        ];
        for (name, vaults, gw, want, text) in cases {
            let s = access_control(&vaults, gw);
            assert_eq!(s.status, want, "{name}: {s:#?}");
            assert!(s.status_text.contains(text), "{name}: {}", s.status_text);
        }
    }

    #[test]
    fn evidence_lists_users_expiry_and_certificates() {
        let mut s = slot(0);
        s.policy.users = vec!["alice".into(), "bob".into()];
        s.policy.expires = Some("2030-06-30T23:59:59Z".into());
        let mut v = vault("a", vec![s]);
        let quiet = vault("b", vec![slot(0)]);
        let mut quiet = quiet;
        quiet.unseals_by_user.clear();
        v.unseals_by_user.push(UserCount {
            user: "bob".into(),
            count: 2,
        });
        let mut l = https(1, "0.0.0.0:443", "http://127.0.0.1:8080", true);
        l.allow = vec!["CN=alice".into()];
        let gw = gateway(vec![l]);
        let ev = access_control(&[v, quiet], Some(&gw)).evidence.join("\n");
        for want in [
            "/v/a: slot 0 (passphrase) unseals for OS users alice, bob, until 2030-06-30T23:59:59Z",
            "/v/a: unsealed in the period by alice (1), bob (2)",
            "/v/b: no unseals in the period",
            "gateway listener 1 (http 0.0.0.0:443): client certificates required, allowed: CN=alice",
        ] {
            assert!(ev.contains(want), "{want} not in\n{ev}");
        }
    }
}
