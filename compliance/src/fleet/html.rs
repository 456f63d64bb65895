//! The HTML form of the fleet report: one self-contained file in the
//! machine report's style (the same inline CSS, no scripts, no external
//! resources, every text from a report escaped): the totals, a row per
//! machine, the sections across the fleet, then each machine's items.

use super::md::{key_items, total_lines};
use super::FleetReport;
use crate::model::Status;
use crate::render::html::{badge, esc, STYLE};
use std::fmt::Write;

/// A count that needs action in red, nothing as a dash.
fn count(items: &[String]) -> String {
    if items.is_empty() {
        "&ndash;".into()
    } else {
        format!("<span class=\"bad\">{}</span>", items.len())
    }
}

/// An in-page anchor for a machine: its position, since a host name may
/// hold anything.
fn anchor(i: usize) -> String {
    format!("machine-{}", i + 1)
}

/// Renders the fleet report as one HTML document.
pub fn render(f: &FleetReport) -> String {
    let t = &f.totals;
    let mut o = String::new();
    o.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    o.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    let _ = writeln!(
        o,
        "<title>pivault fleet compliance report {}</title>",
        esc(&f.generated)
    );
    let _ = writeln!(o, "<style>{STYLE}</style>\n</head>\n<body>");
    o.push_str("<h1>pivault fleet compliance report: 201 CMR 17.04</h1>\n<table class=\"meta\">\n");
    for (k, v) in [
        ("Regulation", esc(&f.regulation)),
        (
            "Generated",
            format!(
                "{} by pivault {}, from {} machine reports",
                esc(&f.generated),
                esc(&f.pivault_version),
                t.machines
            ),
        ),
        (
            "Stale report",
            format!("older than {} days", f.max_report_age_days),
        ),
    ] {
        let _ = writeln!(o, "<tr><td>{k}</td><td>{v}</td></tr>");
    }
    o.push_str("</table>\n<p>Merged from each machine's own report (<code>pivault compliance report --format json</code>); each total counts machines, by the same rules as the machine reports. Attach it to the firm's WISP with the machines' reports.</p>\n");

    o.push_str("<h2>Fleet totals</h2>\n<table>\n<tr><th>Machines</th><th>Count</th><th>What it means</th></tr>\n");
    for (label, n, meaning) in total_lines(f) {
        let n = if n > 0 {
            format!("<span class=\"bad\">{n}</span> of {}", t.machines)
        } else {
            format!("0 of {}", t.machines)
        };
        let _ = writeln!(
            o,
            "<tr><td>{label}</td><td>{n}</td><td>{}</td></tr>",
            esc(&meaning)
        );
    }
    o.push_str("</table>\n");

    o.push_str("<h2>Machines</h2>\n<table>\n<tr><th>Machine</th><th>Report time</th><th>Overall</th><th>Vaults</th><th>Weak KDF</th><th>Stale rotation</th><th>Audit log</th><th>Plaintext listeners</th></tr>\n");
    for (i, m) in f.machines.iter().enumerate() {
        let audit = match (m.audit_broken.len(), m.audit_unsigned.len()) {
            (0, 0) => "<span class=\"ok\">verified</span>".to_string(),
            (0, u) => format!("<span class=\"bad\">{u} unsigned</span>"),
            (b, _) => format!("<span class=\"bad\">{b} FAIL</span>"),
        };
        let _ = writeln!(
            o,
            "<tr><td><a href=\"#{}\">{}</a></td><td>{}{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            anchor(i),
            esc(&m.host),
            esc(&m.generated),
            if m.stale_report { " <span class=\"badge finding\">stale</span>" } else { "" },
            badge(m.overall),
            m.vaults,
            count(&m.weak_kdf),
            count(&m.stale_rotations),
            audit,
            count(&m.plaintext_listeners)
        );
    }
    o.push_str("</table>\n");

    o.push_str("<h2>Sections across the fleet</h2>\n<table>\n<tr><th>Section</th><th>Requirement</th><th>Finding</th><th>Partly</th><th>Met by pivault</th><th>Firm's duty</th></tr>\n");
    for s in &t.sections {
        let _ = writeln!(
            o,
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>",
            esc(&s.id),
            esc(&s.title),
            s.finding,
            s.partly,
            s.met,
            s.firms_duty
        );
    }
    o.push_str("</table>\n");

    for (i, m) in f.machines.iter().enumerate() {
        let _ = writeln!(
            o,
            "<div class=\"section {}\" id=\"{}\">\n<h2>{} {}</h2>",
            m.overall.key(),
            anchor(i),
            esc(&m.host),
            badge(m.overall)
        );
        let _ = writeln!(
            o,
            "<p class=\"req\">Report <span class=\"mono\">{}</span>, made {} by pivault {} ({} days old{}); {} vaults; gateway configuration {}.</p>",
            esc(&m.file),
            esc(&m.generated),
            esc(&m.pivault_version),
            m.report_age_days,
            if m.stale_report { ", <span class=\"bad\">stale</span>" } else { "" },
            m.vaults,
            m.proxy_config.as_deref().map_or_else(
                || "not given".to_string(),
                |c| format!("<span class=\"mono\">{}</span>", esc(c))
            )
        );
        let items = key_items(m);
        let open: Vec<_> = m
            .sections
            .iter()
            .filter(|s| matches!(s.status, Status::Finding | Status::Partly))
            .collect();
        if !items.is_empty() || !open.is_empty() {
            o.push_str("<ul>\n");
            for item in &items {
                let _ = writeln!(o, "<li class=\"finding\">{}</li>", esc(item));
            }
            for s in open {
                let class = if s.status == Status::Finding {
                    "finding"
                } else {
                    "caution"
                };
                let _ = writeln!(
                    o,
                    "<li class=\"{class}\">{} {}</li>",
                    esc(&s.id),
                    esc(&s.status_text)
                );
            }
            o.push_str("</ul>\n");
        }
        o.push_str("</div>\n");
    }
    let _ = writeln!(
        o,
        "<footer>pivault {} &middot; fleet report schema {} &middot; the same data as JSON: <code>pivault compliance merge --format json</code></footer>\n</body>\n</html>",
        esc(&f.pivault_version),
        f.schema
    );
    o
}
