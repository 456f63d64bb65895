//! The Markdown form of the fleet report, in the style of a machine's:
//! header lines, the totals, a table with a row per machine, the sections
//! across the fleet, then what needs action on each machine.

use super::{FleetReport, MachineRow};
use crate::model::Status;
use crate::render::md::{badge, esc};
use std::fmt::Write;

/// The totals with what each means: (label, count, meaning).
pub(crate) fn total_lines(f: &FleetReport) -> Vec<(&'static str, usize, String)> {
    let t = &f.totals;
    let rot: Vec<String> = rotation_thresholds(f);
    vec![
        ("with findings", t.with_findings, "at least one section of 17.04 is a finding: a weak KDF or passphrase, a broken audit log, a gateway taking plaintext from the network".into()),
        ("with gaps only", t.partly, "no finding, but at least one section is partly met (a slot without lockout or user restriction, an unsigned log, a stale key...)".into()),
        ("weak KDFs", t.weak_kdf, "a slot with test-only or below-minimum Argon2id parameters: a copied vault is open to guessing".into()),
        ("stale rotations", t.stale_rotations, format!("a vault whose current data key is older than {} days (the machine report's rotation_max_age_days)", rot.join(" or "))),
        ("audit logs not verified", t.audit_unverified, format!("a vault audit log that fails verification ({}) or has no signing key yet ({})", t.audit_broken, t.audit_unsigned)),
        ("gateways allowing plaintext", t.plaintext_gateways, "a gateway listener that takes plaintext from the network (not a redirect, not loopback)".into()),
        ("stale reports", t.stale_reports, format!("the machine's report is older than {} days: run it again", f.max_report_age_days)),
    ]
}

/// The rotation thresholds the machines' reports used (one, normally).
fn rotation_thresholds(f: &FleetReport) -> Vec<String> {
    let mut v: Vec<u64> = f.machines.iter().map(|m| m.rotation_max_age_days).collect();
    v.sort_unstable();
    v.dedup();
    v.iter().map(u64::to_string).collect()
}

/// A machine's key items in words ("-" when there is nothing to do).
pub(crate) fn key_items(m: &MachineRow) -> Vec<String> {
    let mut out = Vec::new();
    let mut add = |what: &str, items: &[String]| {
        if !items.is_empty() {
            out.push(format!("{what}: {}", items.join(", ")));
        }
    };
    add("weak KDF", &m.weak_kdf);
    add("stale rotation", &m.stale_rotations);
    add("audit log fails verification", &m.audit_broken);
    add("audit log unsigned", &m.audit_unsigned);
    add("plaintext from the network", &m.plaintext_listeners);
    if m.stale_report {
        out.push(format!("report is {} days old", m.report_age_days));
    }
    out
}

/// "yes (N)" for a non-empty list, "-" otherwise.
fn yes(items: &[String]) -> String {
    if items.is_empty() {
        "-".into()
    } else {
        format!("**{}**", items.len())
    }
}

/// Renders the fleet report as Markdown.
pub fn render(f: &FleetReport) -> String {
    let mut o = String::new();
    let t = &f.totals;
    let _ = writeln!(o, "# pivault fleet compliance report: 201 CMR 17.04\n");
    let _ = writeln!(o, "- Regulation: {}", esc(&f.regulation));
    let _ = writeln!(
        o,
        "- Generated: {} by pivault {}, from {} machine reports",
        f.generated, f.pivault_version, t.machines
    );
    let _ = writeln!(
        o,
        "- Stale report: older than {} days\n",
        f.max_report_age_days
    );
    let _ = writeln!(o, "Merged from each machine's own report (`pivault compliance report --format json`); each total counts machines, by the same rules as the machine reports. Attach it to the firm's WISP with the machines' reports.\n");
    let _ = writeln!(o, "## Fleet totals\n");
    let _ = writeln!(o, "| Machines | Count | What it means |");
    let _ = writeln!(o, "|---|---|---|");
    for (label, n, meaning) in total_lines(f) {
        let _ = writeln!(o, "| {label} | {n} of {} | {} |", t.machines, esc(&meaning));
    }
    o.push('\n');
    let _ = writeln!(o, "## Machines\n");
    let _ = writeln!(o, "| Machine | Report time | Overall | Vaults | Weak KDF | Stale rotation | Audit log | Plaintext listeners | Key items |");
    let _ = writeln!(o, "|---|---|---|---|---|---|---|---|---|");
    for m in &f.machines {
        let audit = match (m.audit_broken.len(), m.audit_unsigned.len()) {
            (0, 0) => "verified".to_string(),
            (0, u) => format!("**{u} unsigned**"),
            (b, _) => format!("**{b} FAIL**"),
        };
        let items = key_items(m);
        let _ = writeln!(
            o,
            "| {} | {}{} | {} | {} | {} | {} | {} | {} | {} |",
            esc(&m.host),
            esc(&m.generated),
            if m.stale_report { " **STALE**" } else { "" },
            badge(m.overall),
            m.vaults,
            yes(&m.weak_kdf),
            yes(&m.stale_rotations),
            audit,
            yes(&m.plaintext_listeners),
            if items.is_empty() {
                "-".to_string()
            } else {
                esc(&items.join("; "))
            }
        );
    }
    o.push('\n');
    let _ = writeln!(o, "## Sections across the fleet\n");
    let _ = writeln!(
        o,
        "| Section | Requirement | Finding | Partly | Met by pivault | Firm's duty |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|---|");
    for s in &t.sections {
        let _ = writeln!(
            o,
            "| {} | {} | {} | {} | {} | {} |",
            esc(&s.id),
            esc(&s.title),
            s.finding,
            s.partly,
            s.met,
            s.firms_duty
        );
    }
    o.push('\n');
    for m in &f.machines {
        let _ = writeln!(o, "## {}\n", esc(&m.host));
        let _ = writeln!(
            o,
            "- Report: {} ({}), made {} by pivault {} ({} days old{})",
            esc(&m.file),
            badge(m.overall),
            esc(&m.generated),
            esc(&m.pivault_version),
            m.report_age_days,
            if m.stale_report { ", **STALE**" } else { "" }
        );
        let _ = writeln!(
            o,
            "- {} vaults; gateway configuration: {}",
            m.vaults,
            m.proxy_config
                .as_deref()
                .map_or_else(|| "not given".into(), esc)
        );
        for item in key_items(m) {
            let _ = writeln!(o, "- {}", esc(&item));
        }
        o.push('\n');
        for s in m
            .sections
            .iter()
            .filter(|s| matches!(s.status, Status::Finding | Status::Partly))
        {
            let _ = writeln!(o, "- {} {}", esc(&s.id), esc(&s.status_text));
        }
        o.push('\n');
    }
    o
}
