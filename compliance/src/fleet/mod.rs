//! One report for the fleet: the machines' own JSON reports, read back and
//! checked ([`read`]), become a row per machine and fleet totals. Every
//! total counts machines, by the same predicates the machine's own report
//! used for its findings and gaps (`crate::clauses`), so the fleet report
//! never disagrees with the report it was made from.

pub mod html;
pub mod md;
pub mod read;

pub use read::{read_reports, Input};

use crate::clauses::{audit_broken, audit_unsigned, plaintext_from_network, weak_kdf};
use crate::error::{Error, Result};
use crate::model::*;
use crate::render::Format;
use keys::audit::rfc3339;
use serde::{Deserialize, Serialize};

/// The `report` field of a fleet report.
pub const FLEET_REPORT_KIND: &str = "pivault compliance fleet report";

/// JSON schema version of the fleet report.
pub const FLEET_SCHEMA: u32 = 1;

/// A machine's report older than this many days is flagged as stale
/// unless `--max-age` says otherwise: a week, so a weekly schedule on
/// every machine never flags a report that is merely from last run.
pub const DEFAULT_MAX_REPORT_AGE_DAYS: u64 = 7;

const DAY: u64 = 86_400;

/// The fleet report.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct FleetReport {
    /// Always [`FLEET_REPORT_KIND`].
    pub report: String,
    /// [`FLEET_SCHEMA`].
    pub schema: u32,
    /// The regulation the sections map to.
    pub regulation: String,
    /// When the merge was made (RFC 3339 UTC).
    pub generated: String,
    /// The pivault version that merged.
    pub pivault_version: String,
    /// A machine's report older than this is flagged `stale_report`.
    pub max_report_age_days: u64,
    /// One row per machine, by host name.
    pub machines: Vec<MachineRow>,
    /// Machines counted by what needs action.
    pub totals: FleetTotals,
}

/// One machine, from its report.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct MachineRow {
    /// The machine (the report's `host`).
    pub host: String,
    /// The report file it was read from.
    pub file: String,
    /// When its report was made.
    pub generated: String,
    /// Whole days from then to the merge.
    pub report_age_days: u64,
    /// Older than the fleet report's `max_report_age_days`.
    pub stale_report: bool,
    /// The pivault version that made its report.
    pub pivault_version: String,
    /// The section that asks most: finding, then partly, then met.
    pub overall: Status,
    /// Each section's status, 17.04(1) to (8).
    pub sections: Vec<SectionStatus>,
    /// Vaults its report read.
    pub vaults: usize,
    /// The gateway configuration its report read, if any.
    pub proxy_config: Option<String>,
    /// Findings across its sections.
    pub findings: usize,
    /// Gaps (cautions) across its sections.
    pub cautions: usize,
    /// Slots with a test-only or below-minimum KDF: "VAULT slot N".
    pub weak_kdf: Vec<String>,
    /// Vaults whose current data key is older than its report's
    /// `rotation_max_age_days`: "VAULT (N days)".
    pub stale_rotations: Vec<String>,
    /// The threshold its report used.
    pub rotation_max_age_days: u64,
    /// Vaults whose audit log fails verification: "VAULT: record N: what".
    pub audit_broken: Vec<String>,
    /// Vaults whose audit log has no signing key yet.
    pub audit_unsigned: Vec<String>,
    /// Gateway listeners taking plaintext from the network:
    /// "listener N (mode) on ADDRESS".
    pub plaintext_listeners: Vec<String>,
}

/// One section of one machine.
#[derive(Serialize, Deserialize, Debug, Clone)]
pub struct SectionStatus {
    /// "17.04(1)" ...
    pub id: String,
    /// Short stable key.
    pub key: String,
    /// The status.
    pub status: Status,
    /// The status in words, with the first finding or gap.
    pub status_text: String,
}

/// Machines counted by what needs action (each machine once per total).
#[derive(Serialize, Deserialize, Debug, Clone, Default, PartialEq, Eq)]
pub struct FleetTotals {
    /// Machines merged.
    pub machines: usize,
    /// Machines with at least one finding (a section with status `finding`).
    pub with_findings: usize,
    /// Machines with at least one gap and no finding (overall `partly`).
    pub partly: usize,
    /// Machines with a slot whose KDF is test-only or below the minimum.
    pub weak_kdf: usize,
    /// Machines with a vault whose data key is older than the rotation
    /// threshold.
    pub stale_rotations: usize,
    /// Machines with an audit log that fails verification or is not signed.
    pub audit_unverified: usize,
    /// Of those, machines with a log that fails verification.
    pub audit_broken: usize,
    /// Of those, machines with a log that has no signing key yet.
    pub audit_unsigned: usize,
    /// Machines whose gateway takes plaintext from the network.
    pub plaintext_gateways: usize,
    /// Machines whose report is older than `max_report_age_days`.
    pub stale_reports: usize,
    /// Per section: how many machines have each status.
    pub sections: Vec<SectionTotals>,
}

/// One section across the fleet.
#[derive(Serialize, Deserialize, Debug, Clone, PartialEq, Eq)]
pub struct SectionTotals {
    /// "17.04(1)" ...
    pub id: String,
    /// Short stable key.
    pub key: String,
    /// Title.
    pub title: String,
    /// Machines where it is `finding`.
    pub finding: usize,
    /// Machines where it is `partly`.
    pub partly: usize,
    /// Machines where it is `met`.
    pub met: usize,
    /// Machines where it is `firms_duty`.
    pub firms_duty: usize,
}

/// One machine's row, `now` being the merge's time.
pub fn machine_row(input: &Input, now: u64, max_report_age_days: u64) -> MachineRow {
    let r = &input.report;
    let age = now.saturating_sub(input.generated);
    let each_vault = |f: &dyn Fn(&VaultEvidence) -> Option<String>| -> Vec<String> {
        r.vaults.iter().filter_map(f).collect()
    };
    let weak = r
        .vaults
        .iter()
        .flat_map(|v| {
            v.slots
                .iter()
                .filter(|s| weak_kdf(s))
                .map(move |s| format!("{} slot {}", v.path, s.id))
        })
        .collect();
    MachineRow {
        host: r.host.clone(),
        file: input.file.display().to_string(),
        generated: r.generated.clone(),
        report_age_days: age / DAY,
        stale_report: age > max_report_age_days.saturating_mul(DAY),
        pivault_version: r.pivault_version.clone(),
        overall: Status::overall(r.sections.iter().map(|s| s.status)).unwrap_or(Status::FirmsDuty),
        sections: r
            .sections
            .iter()
            .map(|s| SectionStatus {
                id: s.id.clone(),
                key: s.key.clone(),
                status: s.status,
                status_text: s.status_text.clone(),
            })
            .collect(),
        vaults: r.vaults.len(),
        proxy_config: r.proxy.as_ref().map(|p| p.config.clone()),
        findings: r.sections.iter().map(|s| s.findings.len()).sum(),
        cautions: r.sections.iter().map(|s| s.cautions.len()).sum(),
        weak_kdf: weak,
        stale_rotations: each_vault(&|v| {
            v.rotation_stale
                .then(|| format!("{} ({} days)", v.path, v.data_key_age_days))
        }),
        rotation_max_age_days: r.rotation_max_age_days,
        audit_broken: each_vault(&|v| {
            audit_broken(v).then(|| match &v.audit.problem {
                Some(p) => format!("{}: record {}: {}", v.path, p.record, p.what),
                None => v.path.clone(),
            })
        }),
        audit_unsigned: each_vault(&|v| audit_unsigned(v).then(|| v.path.clone())),
        plaintext_listeners: r
            .proxy
            .iter()
            .flat_map(|p| p.listeners.iter())
            .filter(|l| plaintext_from_network(l))
            .map(|l| format!("listener {} ({}) on {}", l.index, l.mode, l.listen))
            .collect(),
    }
}

/// The totals of `rows`, sections in the order of the first machine's.
pub fn totals(rows: &[MachineRow], reports: &[Input]) -> FleetTotals {
    let count = |f: &dyn Fn(&MachineRow) -> bool| rows.iter().filter(|r| f(r)).count();
    let mut sections: Vec<SectionTotals> = Vec::new();
    for s in reports.iter().flat_map(|i| i.report.sections.iter()) {
        let t = match sections.iter_mut().position(|t| t.id == s.id) {
            Some(i) => &mut sections[i],
            None => {
                sections.push(SectionTotals {
                    id: s.id.clone(),
                    key: s.key.clone(),
                    title: s.title.clone(),
                    finding: 0,
                    partly: 0,
                    met: 0,
                    firms_duty: 0,
                });
                let last = sections.len() - 1;
                &mut sections[last]
            }
        };
        match s.status {
            Status::Finding => t.finding += 1,
            Status::Partly => t.partly += 1,
            Status::Met => t.met += 1,
            Status::FirmsDuty => t.firms_duty += 1,
        }
    }
    FleetTotals {
        machines: rows.len(),
        with_findings: count(&|r| r.overall == Status::Finding),
        partly: count(&|r| r.overall == Status::Partly),
        weak_kdf: count(&|r| !r.weak_kdf.is_empty()),
        stale_rotations: count(&|r| !r.stale_rotations.is_empty()),
        audit_unverified: count(&|r| !r.audit_broken.is_empty() || !r.audit_unsigned.is_empty()),
        audit_broken: count(&|r| !r.audit_broken.is_empty()),
        audit_unsigned: count(&|r| !r.audit_unsigned.is_empty()),
        plaintext_gateways: count(&|r| !r.plaintext_listeners.is_empty()),
        stale_reports: count(&|r| r.stale_report),
        sections,
    }
}

/// The fleet report of checked `inputs` ([`read_reports`]), at `now`.
pub fn merge(inputs: &[Input], now: u64, max_report_age_days: u64) -> Result<FleetReport> {
    if inputs.is_empty() {
        return Err(Error::NoReports);
    }
    let mut machines: Vec<MachineRow> = inputs
        .iter()
        .map(|i| machine_row(i, now, max_report_age_days))
        .collect();
    machines.sort_by(|a, b| {
        a.host
            .to_lowercase()
            .cmp(&b.host.to_lowercase())
            .then_with(|| a.host.cmp(&b.host))
    });
    let totals = totals(&machines, inputs);
    Ok(FleetReport {
        report: FLEET_REPORT_KIND.to_string(),
        schema: FLEET_SCHEMA,
        regulation: REGULATION.to_string(),
        generated: rfc3339(now),
        pivault_version: crate::VERSION.to_string(),
        max_report_age_days,
        machines,
        totals,
    })
}

/// The fleet report in `format`.
pub fn render(f: &FleetReport, format: Format) -> Result<String> {
    Ok(match format {
        Format::Md => md::render(f),
        Format::Json => crate::render::json(f)?,
        Format::Html => html::render(f),
    })
}

#[cfg(test)]
mod tests;
