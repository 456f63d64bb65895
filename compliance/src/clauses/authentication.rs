//! 17.04(1): secure user authentication protocols. Every slot is a way to
//! unseal a vault; a cheap KDF or a passphrase accepted below the strength
//! rule is a finding, a slot without a lockout a gap.

use super::{base, kdf_text, section, weak_kdf, Clause, Found};
use crate::model::*;

const CLAUSE: Clause = Clause {
    id: "17.04(1)",
    key: "authentication",
    title: "Secure user authentication protocols",
    requirement: "control of user IDs; secure selection of passwords or token devices; passwords kept in a form that does not compromise the data; access for active users only; blocking after multiple unsuccessful attempts",
    firm_duty: "control of user IDs and accounts on laptops and servers (17.04(1)(a)), a password policy for OS and application accounts, and removing the slots of people who leave (`pivault keys remove`)",
};

/// One finding per slot whose KDF makes a guess cheap; 17.04(5) repeats
/// them, since a copied vault is then open to guessing.
pub(super) fn weak_kdf_findings(vaults: &[VaultEvidence]) -> Vec<String> {
    vaults
        .iter()
        .flat_map(|v| {
            v.slots.iter().filter(|s| weak_kdf(s)).map(move |s| {
                format!(
                    "slot {} of {} uses {} parameters ({}): a passphrase guess costs almost nothing; replace it with `pivault keys change-passphrase` without --insecure-test-kdf",
                    s.id,
                    v.path,
                    if s.kdf.test_only { "test-only KDF" } else { "KDF below RFC 9106's minimum" },
                    kdf_text(&s.kdf)
                )
            })
        })
        .collect()
}

/// 17.04(1), from every slot of every vault.
pub fn authentication(vaults: &[VaultEvidence]) -> Section {
    let mut f = Found {
        findings: weak_kdf_findings(vaults),
        ..Found::default()
    };
    // 17.04(1)(b): passphrases accepted below the strength rule.
    for v in vaults {
        for sl in v.slots.iter().filter(|s| s.weak_passphrase) {
            f.findings.push(format!(
                "slot {} of {} has a weak passphrase, accepted below the strength rule with --allow-weak-passphrase (17.04(1)(b)): replace it with `pivault keys change-passphrase {} --slot {}`",
                sl.id, v.path, v.path, sl.id
            ));
        }
    }
    for v in vaults {
        for sl in &v.slots {
            f.evidence.push(slot_line(v, sl));
            // An escrow identity is IT's, kept offline: no one types it
            // at a prompt, so there is nothing to lock out.
            if sl.policy.max_failures.is_none() && sl.kind != SlotKind::Escrow {
                f.cautions.push(format!(
                    "slot {} of {} has no lockout after failed unseals (17.04(1)(e)): `pivault keys policy {} --slot {} --max-failures N`",
                    sl.id, v.path, v.path, sl.id
                ));
            }
        }
    }
    if !vaults.is_empty() {
        f.evidence.push("passphrases are never stored: each slot keeps only a salt and the keyring wrapped under the stretched key (17.04(1)(c))".into());
    }
    section(&CLAUSE, base(!vaults.is_empty()), f)
}

/// A slot in words: its kind, secret, last use, lockout and failures.
fn slot_line(v: &VaultEvidence, sl: &SlotEvidence) -> String {
    let secret = match (sl.threshold, sl.shares, &sl.recipient) {
        (Some(k), Some(n), _) => format!("any {k} of {n} shares, {}", kdf_text(&sl.kdf)),
        (_, _, Some(r)) => format!("age identity of {r}"),
        _ => kdf_text(&sl.kdf),
    };
    let mut line = format!(
        "{}: slot {} ({}), {secret}, last used {}",
        v.path,
        sl.id,
        sl.kind,
        sl.last_use.as_deref().unwrap_or("never")
    );
    if let Some(m) = sl.policy.max_failures {
        line.push_str(&format!(", locks after {m} failed unseals in a row"));
    }
    if sl.locked {
        line.push_str(&format!(", LOCKED after {} failures", sl.failures));
    } else if sl.failures > 0 {
        line.push_str(&format!(
            ", {} failed unseal{} in a row",
            sl.failures,
            if sl.failures == 1 { "" } else { "s" }
        ));
    }
    if sl.weak_passphrase {
        line.push_str(", WEAK PASSPHRASE (accepted with --allow-weak-passphrase)");
    }
    line
}

#[cfg(test)]
mod tests {
    use super::super::fixtures::*;
    use super::*;

    #[test]
    fn status_from_the_slots() {
        let test_kdf = {
            let mut s = slot(0);
            s.kdf.test_only = true;
            s.kdf.m_kib = Some(64);
            s
        };
        let below = {
            let mut s = slot(0);
            s.kdf.below_minimum = true;
            s
        };
        let weak_pass = {
            let mut s = slot(0);
            s.weak_passphrase = true;
            s
        };
        let no_lockout = {
            let mut s = slot(0);
            s.policy.max_failures = None;
            s
        };
        let open_recovery = {
            let mut s = recovery(1);
            s.policy.max_failures = None;
            s
        };
        // (case, vaults, status, text the status or first finding holds)
        let cases: Vec<(&str, Vec<VaultEvidence>, Status, &str)> = vec![
            ("no vault", vec![], Status::FirmsDuty, "firm's duty"),
            (
                "good slot",
                vec![good_vault()],
                Status::Met,
                "met by pivault",
            ),
            (
                "test KDF",
                vec![vault("a", vec![test_kdf])],
                Status::Finding,
                "test-only KDF parameters (argon2id m=64 KiB t=3 p=4 (TEST-ONLY))",
            ),
            (
                "below minimum",
                vec![vault("a", vec![below])],
                Status::Finding,
                "KDF below RFC 9106's minimum",
            ),
            (
                "weak passphrase",
                vec![vault("a", vec![weak_pass])],
                Status::Finding,
                "weak passphrase",
            ),
            (
                "no lockout",
                vec![vault("a", vec![no_lockout.clone()])],
                Status::Partly,
                "no lockout after failed unseals",
            ),
            (
                "recovery without lockout",
                vec![vault("a", vec![open_recovery])],
                Status::Partly,
                "slot 1 of /v/a has no lockout",
            ),
            // Escrow slots have no prompt to guess at.
            (
                "escrow without lockout",
                vec![vault("a", vec![slot(0), escrow(1)])],
                Status::Met,
                "met by pivault",
            ),
            (
                "one bad vault of two",
                vec![good_vault(), vault("b", vec![no_lockout])],
                Status::Partly,
                "/v/b",
            ),
        ];
        for (name, vaults, want, text) in cases {
            let s = authentication(&vaults);
            assert_eq!(s.status, want, "{name}: {s:#?}");
            assert!(s.status_text.contains(text), "{name}: {}", s.status_text);
        }
    }

    #[test]
    fn evidence_names_shares_escrow_and_lockouts() {
        let mut shares = recovery(2);
        shares.kind = SlotKind::Shares;
        shares.threshold = Some(2);
        shares.shares = Some(3);
        let mut locked = slot(0);
        locked.locked = true;
        locked.failures = 5;
        let mut failing = slot(3);
        failing.failures = 1;
        let v = vault("a", vec![locked, escrow(1), shares, failing]);
        let ev = authentication(&[v]).evidence.join("\n");
        for want in [
            "/v/a: slot 0 (passphrase), argon2id m=262144 KiB t=3 p=4, last used 2026-02-01T00:00:00Z, locks after 5 failed unseals in a row, LOCKED after 5 failures",
            "slot 1 (escrow), age identity of age1example",
            "slot 2 (shares), any 2 of 3 shares, hkdf-sha256",
            "slot 3 (passphrase), argon2id m=262144 KiB t=3 p=4, last used 2026-02-01T00:00:00Z, locks after 5 failed unseals in a row, 1 failed unseal in a row",
            "passphrases are never stored",
        ] {
            assert!(ev.contains(want), "{want} not in\n{ev}");
        }
    }
}
