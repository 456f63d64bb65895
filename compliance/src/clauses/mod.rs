//! One function per clause of 17.04 (and the duties of 17.03): each takes
//! the evidence gathered from the machine and returns its section, status
//! included. Nothing here reads the disk, so each clause is tested on
//! evidence built in memory (evidence in, status out).
//!
//! The predicates the fleet totals count (weak KDF, stale rotation, audit
//! log broken or unsigned, plaintext from the network) live here too, so a
//! fleet report counts exactly what the machines' own reports flagged.

mod access_control;
mod at_rest;
mod authentication;
mod firm;
#[cfg(test)]
pub(crate) mod fixtures;
mod monitoring;
mod transit;

pub use access_control::access_control;
pub use at_rest::encryption_at_rest;
pub use authentication::authentication;
pub use firm::{firewall_and_patches, firm_duties, security_agent_software, training};
pub use monitoring::monitoring;
pub use transit::{encryption_in_transit, plaintext_from_network};

use crate::model::*;

/// Every section of the report, 17.04(1) to (8) in order.
pub fn sections(vaults: &[VaultEvidence], proxy: Option<&ProxyEvidence>) -> Vec<Section> {
    vec![
        authentication(vaults),
        access_control(vaults, proxy),
        encryption_in_transit(proxy),
        monitoring(vaults, proxy),
        encryption_at_rest(vaults, ROTATION_MAX_AGE_DAYS),
        firewall_and_patches(),
        security_agent_software(),
        training(),
    ]
}

/// A data key `age_days` old is stale past `max_days` (the report's
/// `rotation_max_age_days`): the day itself still counts as current.
pub fn rotation_is_stale(age_days: u64, max_days: u64) -> bool {
    age_days > max_days
}

/// A slot whose KDF makes a passphrase guess cheap: deliberately weak test
/// parameters, or below RFC 9106's second recommendation.
pub fn weak_kdf(s: &SlotEvidence) -> bool {
    s.kdf.test_only || s.kdf.below_minimum
}

/// An audit log that failed verification (edited, cut, reordered).
pub fn audit_broken(v: &VaultEvidence) -> bool {
    v.audit.problem.is_some() || !v.audit.intact
}

/// An audit log with no signing key yet: chained, but nothing signed to
/// check it against.
pub fn audit_unsigned(v: &VaultEvidence) -> bool {
    v.audit.key_fingerprint.is_none()
}

/// The fixed texts of a section.
struct Clause {
    id: &'static str,
    key: &'static str,
    title: &'static str,
    requirement: &'static str,
    firm_duty: &'static str,
}

/// What was found for a clause.
#[derive(Default)]
struct Found {
    evidence: Vec<String>,
    findings: Vec<String>,
    cautions: Vec<String>,
}

/// Builds a section; the status is the worst of what was found: a finding
/// makes it `finding`, a caution turns `met` into `partly`.
fn section(c: &Clause, base: Status, f: Found) -> Section {
    let status = if !f.findings.is_empty() {
        Status::Finding
    } else if !f.cautions.is_empty() && base == Status::Met {
        Status::Partly
    } else {
        base
    };
    let first = f.findings.first().or(f.cautions.first());
    let more = (f.findings.len() + f.cautions.len()).saturating_sub(1);
    let status_text = match (status, first) {
        (Status::Finding | Status::Partly, Some(x)) if more > 0 => {
            format!("{}: {x} (+{more} more)", status.label())
        }
        (Status::Finding | Status::Partly, Some(x)) => format!("{}: {x}", status.label()),
        _ => status.label().to_string(),
    };
    Section {
        id: c.id.to_string(),
        key: c.key.to_string(),
        title: c.title.to_string(),
        requirement: c.requirement.to_string(),
        status,
        status_text,
        evidence: f.evidence,
        findings: f.findings,
        cautions: f.cautions,
        firm_duty: vec![c.firm_duty.to_string()],
        enforcement: enforcement_of(c.key),
    }
}

/// What enforces each of pivault's controls for the section `key`
/// (docs/THREAT-MODEL.md §6, §11, §12 say why).
fn enforcement_of(key: &str) -> Vec<Enforcement> {
    use EnforcedBy::{Cryptography, Pivault};
    let c = |control: &str, by| Enforcement {
        control: control.to_string(),
        by,
    };
    match key {
        "authentication" => vec![
            c("a guess at a passphrase costs Argon2id at the slot's parameters; recovery keys and escrow identities are 256-bit secrets", Cryptography),
            c("slot policies (OS users, expiry), the failed-unseal lockout, admin and restricted roles, the passphrase strength rule", Pivault),
        ],
        "access_control" => vec![
            c("only a slot's secret opens the keyring, and only the keyring decrypts the vault", Cryptography),
            c("which slot may do what (roles), who may unseal with it and until when (policies)", Pivault),
            c("the gateway's client-certificate verification (TLS)", Cryptography),
            c("the gateway's `allow` rules on verified certificates", Pivault),
        ],
        "encryption_in_transit" => vec![c("TLS 1.2/1.3 with forward-secret AEAD suites", Cryptography)],
        "monitoring" => vec![
            c("audit records are hash-chained and Ed25519-signed: an edit, deletion or insertion is detected by `pivault audit verify`", Cryptography),
            c("failed-unseal counts are read from the log; a writer of the vault folder can cut the records since the keystore's last write", Pivault),
        ],
        "encryption_at_rest" => vec![c("file contents, names, symlink targets and extended attributes under AES-256-GCM or XChaCha20-Poly1305 and AES-SIV", Cryptography)],
        _ => Vec::new(),
    }
}

/// A slot's KDF in words: "argon2id m=65536 KiB t=3 p=4", "hkdf-sha256".
fn kdf_text(k: &KdfEvidence) -> String {
    match (k.m_kib, k.t, k.p) {
        (Some(m), Some(t), Some(p)) => format!(
            "argon2id m={m} KiB t={t} p={p}{}",
            if k.test_only { " (TEST-ONLY)" } else { "" }
        ),
        _ => k.algorithm.to_string(),
    }
}

/// The status of a clause that has something to read when `any` holds,
/// and is otherwise the firm's alone.
fn base(any: bool) -> Status {
    if any {
        Status::Met
    } else {
        Status::FirmsDuty
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_is_the_worst_found() {
        let c = Clause {
            id: "x",
            key: "x",
            title: "x",
            requirement: "x",
            firm_duty: "x",
        };
        let s = |base, findings: &[&str], cautions: &[&str]| {
            section(
                &c,
                base,
                Found {
                    evidence: Vec::new(),
                    findings: findings.iter().map(|x| x.to_string()).collect(),
                    cautions: cautions.iter().map(|x| x.to_string()).collect(),
                },
            )
        };
        // (base, findings, cautions) -> (status, status_text)
        type Case<'a> = (Status, &'a [&'a str], &'a [&'a str], Status, &'a str);
        let cases: &[Case] = &[
            (Status::Met, &[], &[], Status::Met, "met by pivault"),
            (Status::Met, &[], &["c"], Status::Partly, "partly: c"),
            (
                Status::Met,
                &["f"],
                &["c"],
                Status::Finding,
                "finding: f (+1 more)",
            ),
            (
                Status::Met,
                &["f", "g"],
                &[],
                Status::Finding,
                "finding: f (+1 more)",
            ),
            // A caution cannot make the firm's duty "partly"...
            (
                Status::FirmsDuty,
                &[],
                &["c"],
                Status::FirmsDuty,
                "firm's duty",
            ),
            // ...but a finding is a finding wherever it is.
            (
                Status::FirmsDuty,
                &["f"],
                &[],
                Status::Finding,
                "finding: f",
            ),
        ];
        for (base, f, c, want, text) in cases {
            let got = s(*base, f, c);
            assert_eq!(got.status, *want, "{base:?} {f:?} {c:?}");
            assert_eq!(got.status_text, *text);
        }
    }

    #[test]
    fn rotation_staleness_at_the_threshold() {
        for (age, max, stale) in [
            (0, 365, false),
            (365, 365, false),
            (366, 365, true),
            (10_000, 365, true),
            (1, 0, true),
            (0, 0, false),
        ] {
            assert_eq!(rotation_is_stale(age, max), stale, "{age} of {max}");
        }
    }

    #[test]
    fn every_section_in_order() {
        let ids: Vec<String> = sections(&[], None).into_iter().map(|s| s.id).collect();
        assert_eq!(
            ids,
            [
                "17.04(1)", "17.04(2)", "17.04(3)", "17.04(4)", "17.04(5)", "17.04(6)", "17.04(7)",
                "17.04(8)"
            ]
        );
    }
}
