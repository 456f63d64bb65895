//! 17.04(4): reasonable monitoring of systems. Each vault's audit log as
//! `pivault audit verify` sees it, the unseals and failures in the period,
//! and the gateway's access log; a log that fails verification is a
//! finding, an unsigned log or a gateway without an access log a gap.

use super::{audit_broken, audit_unsigned, section, Clause, Found};
use crate::model::*;

const CLAUSE: Clause = Clause {
    id: "17.04(4)",
    key: "monitoring",
    title: "Reasonable monitoring of systems",
    requirement: "reasonable monitoring of systems for unauthorized use of or access to personal information",
    firm_duty: "someone reviews the audit logs and failed unseals regularly (17.03(2)(h)); forward them to syslog/SIEM with `--syslog`; keep the audit verifying-key fingerprint off the laptop to compare with",
};

/// 17.04(4), from the audit logs and the gateway configuration.
pub fn monitoring(vaults: &[VaultEvidence], proxy: Option<&ProxyEvidence>) -> Section {
    let mut f = Found::default();
    for v in vaults {
        let a = &v.audit;
        match &a.problem {
            Some(p) => f.findings.push(format!(
                "the audit log of {} fails verification at record {}: {}",
                v.path, p.record, p.what
            )),
            // Not intact without a named record: never made by gather, but
            // a report read back could say so; it is still a finding.
            None if audit_broken(v) => f
                .findings
                .push(format!("the audit log of {} fails verification", v.path)),
            None => f.evidence.push(format!(
                "{}: audit log verified intact: {} records, {} signed{}",
                v.path,
                a.records,
                a.signed,
                a.key_fingerprint
                    .as_deref()
                    .map(|k| format!(", verifying key sha256:{k}"))
                    .unwrap_or_default()
            )),
        }
        if audit_unsigned(v) {
            f.cautions.push(format!(
                "{} has no audit signing key yet: records are chained but not signed (the next unseal adds one)",
                v.path
            ));
        }
        f.evidence.push(format!(
            "{}: {} unseals and {} failed unseals in the period",
            v.path, v.unseals_in_period, v.failed_unseals_in_period
        ));
        for sl in v.slots.iter().filter(|s| s.locked) {
            f.evidence.push(format!(
                "{}: slot {} is locked after {} failed unseals",
                v.path, sl.id, sl.failures
            ));
        }
    }
    if let Some(p) = proxy {
        match &p.access_log {
            Some(l) => f.evidence.push(format!("gateway access log (JSON lines: client, certificate subject, request, status, TLS version and suite): {l}")),
            None => f.cautions.push(format!("the gateway configuration {} sets no access_log: connections through it are not logged", p.config)),
        }
        if let Some(m) = &p.metrics_listen {
            f.evidence.push(format!(
                "gateway metrics (handshake failures, requests by status): {m}"
            ));
        }
    }
    let base = if vaults.is_empty() && proxy.is_none() {
        Status::FirmsDuty
    } else {
        Status::Met
    };
    section(&CLAUSE, base, f)
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn status_from_the_logs() {
        let tampered = {
            let mut v = good_vault();
            v.audit.intact = false;
            v.audit.problem = Some(AuditProblem {
                record: 2,
                what: "hash chain broken".into(),
            });
            v
        };
        let unsigned = {
            let mut v = good_vault();
            v.audit.key_fingerprint = None;
            v.audit.signed = 0;
            v
        };
        let no_access_log = {
            let mut g = gateway(vec![]);
            g.access_log = None;
            g
        };
        // (case, vaults, gateway, status, text)
        type Case<'a> = (
            &'a str,
            Vec<VaultEvidence>,
            Option<ProxyEvidence>,
            Status,
            &'a str,
        );
        let cases: Vec<Case> = vec![
            ("nothing", vec![], None, Status::FirmsDuty, "firm's duty"),
            (
                "intact signed log",
                vec![good_vault()],
                None,
                Status::Met,
                "met by pivault",
            ),
            (
                "gateway with access log",
                vec![],
                Some(gateway(vec![])),
                Status::Met,
                "met by pivault",
            ),
            (
                "tampered",
                vec![tampered.clone()],
                None,
                Status::Finding,
                "fails verification at record 2: hash chain broken",
            ),
            (
                "tampered and unsigned",
                vec![tampered, unsigned.clone()],
                None,
                Status::Finding,
                "(+1 more)",
            ),
            (
                "unsigned",
                vec![unsigned],
                None,
                Status::Partly,
                "no audit signing key yet",
            ),
            (
                "no access log",
                vec![good_vault()],
                Some(no_access_log),
                Status::Partly,
                "sets no access_log",
            ),
        ];
        for (name, vaults, gw, want, text) in cases {
            let s = monitoring(&vaults, gw.as_ref());
            assert_eq!(s.status, want, "{name}: {s:#?}");
            assert!(s.status_text.contains(text), "{name}: {}", s.status_text);
        }
    }

    #[test]
    fn evidence_counts_unseals_and_locked_slots() {
        let mut locked = slot(0);
        locked.locked = true;
        locked.failures = 5;
        let mut v = vault("a", vec![locked]);
        v.unseals_in_period = 7;
        v.failed_unseals_in_period = 5;
        let ev = monitoring(&[v], Some(&gateway(vec![]))).evidence.join("\n");
        for want in [
            "/v/a: audit log verified intact: 3 records, 3 signed, verifying key sha256:abab",
            "/v/a: 7 unseals and 5 failed unseals in the period",
            "/v/a: slot 0 is locked after 5 failed unseals",
            "gateway access log (JSON lines: client, certificate subject, request, status, TLS version and suite): /var/log/pivault/access.log",
            "gateway metrics (handshake failures, requests by status): 127.0.0.1:9100",
        ] {
            assert!(ev.contains(want), "{want} not in\n{ev}");
        }
    }
}
