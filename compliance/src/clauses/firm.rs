//! The clauses software on the device cannot show: 17.04(6) firewalls and
//! patches, 17.04(7) security agent software, 17.04(8) training, and the
//! duties of the Written Information Security Program (17.03), each with
//! what pivault offers towards it.

use super::{section, Clause, Found};
use crate::model::*;

/// 17.04(6): always the firm's; the report states the pivault version so
/// an out-of-date one can be spotted.
pub fn firewall_and_patches() -> Section {
    section(
        &Clause {
            id: "17.04(6)",
            key: "firewall_and_patches",
            title: "Up-to-date firewall protection and security patches",
            requirement: "reasonably up-to-date firewall protection and operating system security patches for systems with PI connected to the Internet",
            firm_duty: "host and network firewalls, OS security updates on every device, and updating pivault itself when a new release fixes a security issue",
        },
        Status::FirmsDuty,
        Found {
            evidence: vec![format!(
                "this report was made by pivault {}; the gateway accepts only TLS 1.2/1.3 with forward-secret AEAD suites",
                crate::VERSION
            )],
            ..Found::default()
        },
    )
}

/// 17.04(7): always the firm's.
pub fn security_agent_software() -> Section {
    section(
        &Clause {
            id: "17.04(7)",
            key: "security_agent_software",
            title: "Current system security agent software",
            requirement: "reasonably up-to-date security agent software with malware protection, patches and virus definitions, set to update regularly",
            firm_duty: "anti-malware / endpoint protection on every device, set to receive updates automatically",
        },
        Status::FirmsDuty,
        Found::default(),
    )
}

/// 17.04(8): always the firm's.
pub fn training() -> Section {
    section(
        &Clause {
            id: "17.04(8)",
            key: "training",
            title: "Education and training",
            requirement: "education and training of employees on the proper use of the computer security system and the importance of PI security",
            firm_duty: "training staff (how to use vaults, passphrases and recovery keys, never to copy PI out of a vault, how to report a lost laptop), with records of who was trained when",
        },
        Status::FirmsDuty,
        Found::default(),
    )
}

/// 17.03 and the duties of 17.04 that stay with the firm.
pub fn firm_duties() -> Vec<Duty> {
    let d = |key: &str, topic: &str, regulation: &str, what: &str, help: Option<&str>| Duty {
        key: key.to_string(),
        topic: topic.to_string(),
        regulation: regulation.to_string(),
        what: what.to_string(),
        pivault_help: help.map(str::to_string),
    };
    vec![
        d(
            "wisp_ownership",
            "WISP ownership",
            "17.03(1), 17.03(2)(a)",
            "a written information security program, and one or more employees designated to maintain it",
            Some("this report, attached to the WISP as evidence of the technical controls"),
        ),
        d(
            "risk_assessment",
            "Risk assessment",
            "17.03(2)(b)",
            "identify and assess reasonably foreseeable internal and external risks to PI, including ongoing employee training and means for detecting failures",
            Some("`pivault scan` finds unprotected PI on a device"),
        ),
        d(
            "policies_and_discipline",
            "Employee policies and discipline",
            "17.03(2)(c), (d)",
            "policies on keeping, accessing and transporting records with PI off premises; disciplinary measures for violations",
            None,
        ),
        d(
            "terminated_employees",
            "Terminated employees",
            "17.03(2)(e)",
            "prevent terminated employees from accessing records with PI",
            Some("remove their slots (`pivault keys remove`), rotate the data key (`pivault keys rotate`, `pivault reencrypt --retire`), slot expiry (`pivault keys policy --expires`)"),
        ),
        d(
            "vendor_contracts",
            "Service providers",
            "17.03(2)(f)",
            "select service providers able to protect PI and require it of them by contract",
            None,
        ),
        d(
            "physical_security",
            "Physical security",
            "17.03(2)(g)",
            "reasonable restrictions on physical access to records with PI, and storage in locked facilities, areas or containers (paper records included)",
            None,
        ),
        d(
            "monitoring_and_review",
            "Monitoring and annual review",
            "17.03(2)(h), (i)",
            "regular monitoring that the program works, and a review of its scope at least annually or on a material change in business practices",
            Some("run this report on a schedule and compare; `pivault audit verify`"),
        ),
        d(
            "incident_response",
            "Incident response",
            "17.03(2)(j)",
            "document responsive actions taken after any incident involving a breach of security, with a post-incident review",
            Some("the signed audit log shows unseals, failed unseals and key changes for the incident record"),
        ),
        d(
            "patching",
            "Patching and security software",
            "17.04(6), (7)",
            "firewalls, OS security patches and anti-malware kept up to date on every system holding PI",
            None,
        ),
        d(
            "training",
            "Training",
            "17.04(8)",
            "educate and train employees on the security system and the importance of PI security",
            None,
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_firms_clauses_are_always_the_firms() {
        for s in [
            firewall_and_patches(),
            security_agent_software(),
            training(),
        ] {
            assert_eq!(s.status, Status::FirmsDuty, "{}", s.id);
            assert!(s.findings.is_empty() && s.cautions.is_empty());
            assert_eq!(s.firm_duty.len(), 1);
        }
        assert!(firewall_and_patches().evidence[0].contains(crate::VERSION));
    }

    #[test]
    fn duties_cover_17_03_with_unique_keys() {
        let d = firm_duties();
        let mut keys: Vec<&str> = d.iter().map(|x| x.key.as_str()).collect();
        keys.sort_unstable();
        keys.dedup();
        assert_eq!(keys.len(), d.len(), "duplicate key");
        for part in [
            "17.03(1)",
            "17.03(2)(b)",
            "17.03(2)(e)",
            "17.03(2)(j)",
            "17.04(8)",
        ] {
            assert!(d.iter().any(|x| x.regulation.contains(part)), "{part}");
        }
    }
}
