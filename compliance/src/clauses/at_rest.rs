//! 17.04(5): encryption of PI on laptops and portable devices. Each
//! vault's suite, data keys and rotations; a KDF that makes a copied vault
//! guessable is a finding, a data key older than the rotation threshold a
//! gap.

use super::authentication::weak_kdf_findings;
use super::{base, section, Clause, Found};
use crate::model::*;

const CLAUSE: Clause = Clause {
    id: "17.04(5)",
    key: "encryption_at_rest",
    title: "Encryption of PI on laptops and portable devices",
    requirement: "encryption of all personal information stored on laptops or other portable devices",
    firm_duty: "keep PI only inside vaults (find it elsewhere with `pivault scan PATH... --move-into MOUNTPOINT`), full-disk encryption for the rest of the device, encrypted USB drives and backups, and an inventory of portable devices",
};

/// 17.04(5), from the vaults' keystores and rotations. `max_age_days` is
/// the report's `rotation_max_age_days`, named in the caution.
pub fn encryption_at_rest(vaults: &[VaultEvidence], max_age_days: u64) -> Section {
    let mut f = Found {
        findings: weak_kdf_findings(vaults),
        ..Found::default()
    };
    for v in vaults {
        let current = v
            .data_keys
            .iter()
            .find(|d| d.current)
            .map_or(0, |d| d.version);
        f.evidence.push(format!(
            "{}: contents, names and symlink targets encrypted with {} (keystore format {}); data key versions {} (current {current})",
            v.path,
            v.suite,
            v.keystore_format,
            v.data_keys.iter().map(|d| d.version.to_string()).collect::<Vec<_>>().join(", ")
        ));
        if v.rotations.is_empty() {
            f.evidence.push(format!(
                "{}: no key rotation recorded since {}",
                v.path, v.created
            ));
        } else {
            let r: Vec<String> = v
                .rotations
                .iter()
                .map(|r| {
                    format!(
                        "{} (version {})",
                        r.time,
                        r.new_version
                            .map_or_else(|| "?".to_string(), |n| n.to_string())
                    )
                })
                .collect();
            f.evidence
                .push(format!("{}: rotations: {}", v.path, r.join(", ")));
        }
        if v.rotation_stale {
            f.cautions.push(format!(
                "the data key of {} dates from {} ({} days, more than {max_age_days}): rotate it with `pivault keys rotate {}` and `pivault reencrypt {} --retire`",
                v.path, v.data_key_since, v.data_key_age_days, v.path, v.path
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
    fn status_from_the_keys() {
        let stale = {
            let mut v = good_vault();
            v.data_key_age_days = 400;
            v.rotation_stale = true;
            v
        };
        let test_kdf = {
            let mut s = slot(0);
            s.kdf.test_only = true;
            vault("t", vec![s])
        };
        // (case, vaults, status, text)
        let cases: Vec<(&str, Vec<VaultEvidence>, Status, &str)> = vec![
            ("no vault", vec![], Status::FirmsDuty, "firm's duty"),
            (
                "fresh key",
                vec![good_vault()],
                Status::Met,
                "met by pivault",
            ),
            (
                "stale key",
                vec![stale.clone()],
                Status::Partly,
                "dates from 2026-01-01T00:00:00Z (400 days, more than 365)",
            ),
            (
                "test KDF",
                vec![test_kdf.clone()],
                Status::Finding,
                "slot 0 of /v/t uses test-only KDF",
            ),
            ("both", vec![stale, test_kdf], Status::Finding, "(+1 more)"),
        ];
        for (name, vaults, want, text) in cases {
            let s = encryption_at_rest(&vaults, 365);
            assert_eq!(s.status, want, "{name}: {s:#?}");
            assert!(s.status_text.contains(text), "{name}: {}", s.status_text);
        }
    }

    #[test]
    fn evidence_lists_keys_and_rotations() {
        let mut v = good_vault();
        v.data_keys = vec![
            DataKey {
                version: 1,
                current: false,
            },
            DataKey {
                version: 2,
                current: true,
            },
        ];
        v.rotations = vec![Rotation {
            time: "2026-01-20T00:00:00Z".into(),
            new_version: Some(2),
            user: "alice".into(),
        }];
        let ev = encryption_at_rest(&[v, good_vault()], 365)
            .evidence
            .join("\n");
        for want in [
            "/v/good: contents, names and symlink targets encrypted with aes-256-gcm (keystore format 3); data key versions 1, 2 (current 2)",
            "/v/good: rotations: 2026-01-20T00:00:00Z (version 2)",
            "/v/good: no key rotation recorded since 2026-01-01T00:00:00Z",
        ] {
            assert!(ev.contains(want), "{want} not in\n{ev}");
        }
    }
}
