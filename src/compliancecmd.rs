//! `pivault compliance report` and `pivault compliance merge`: the
//! arguments and the printing. The evidence, its evaluation and every
//! rendering are the `compliance` crate's (docs/COMPLIANCE.md).

use crate::Outcome;
use anyhow::{bail, Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use std::io::Write;
use std::path::{Path, PathBuf};

/// `pivault compliance ...`.
#[derive(Subcommand, Debug)]
pub enum ComplianceCommand {
    /// Report what pivault provides for each requirement of 201 CMR 17.04,
    /// read from the vaults' keystores and audit logs (and the gateway
    /// configuration), and what remains the firm's duty. Needs no
    /// passphrase. Attach it to the firm's WISP.
    Report(ReportArgs),
    /// Merge the JSON reports of many machines (`compliance report --format
    /// json` on each) into one fleet report: a row per machine and fleet
    /// totals (machines with findings, weak KDFs, stale rotations,
    /// unverified audit logs, gateways allowing plaintext, stale reports).
    /// Writes nothing unless every report reads: not a report, a newer
    /// schema or the same machine twice is an error naming the file.
    Merge(MergeArgs),
}

/// Output formats.
#[derive(ValueEnum, Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ReportFormat {
    /// Markdown.
    #[default]
    Md,
    /// JSON (stable field names, documented in docs/COMPLIANCE.md).
    Json,
    /// One self-contained HTML file (inline CSS, no scripts).
    Html,
}

#[derive(Args, Debug)]
pub struct ReportArgs {
    /// Vault directories to report on.
    #[arg(required = true, value_name = "VAULT")]
    pub vaults: Vec<PathBuf>,
    /// The gateway's configuration (`pivault proxy --config FILE`), for
    /// encryption in transit.
    #[arg(long, value_name = "FILE")]
    pub proxy_config: Option<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Md)]
    pub format: ReportFormat,
    /// Count unseals and failed unseals from DATE (2026-01-31 or an RFC
    /// 3339 time; default: the last 90 days).
    #[arg(long, value_name = "DATE")]
    pub since: Option<String>,
    /// Write the report to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// The machine's name in the report (default: this machine's host
    /// name); `pivault compliance merge` keys its rows on it.
    #[arg(long, value_name = "NAME", env = "PIVAULT_HOSTNAME")]
    pub hostname: Option<String>,
}

#[derive(Args, Debug)]
pub struct MergeArgs {
    /// The machines' reports (`pivault compliance report --format json`),
    /// one per machine.
    #[arg(required = true, value_name = "REPORT.json")]
    pub reports: Vec<PathBuf>,
    /// Output format.
    #[arg(long, value_enum, default_value_t = ReportFormat::Md)]
    pub format: ReportFormat,
    /// Write the fleet report to FILE instead of stdout.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Flag a machine's report older than DAYS as stale.
    #[arg(long, value_name = "DAYS", default_value_t = compliance::fleet::DEFAULT_MAX_REPORT_AGE_DAYS)]
    pub max_age: u64,
}

/// Default period: 90 days.
const DEFAULT_DAYS: u64 = 90;

pub fn run(cmd: ComplianceCommand) -> Result<Outcome> {
    match cmd {
        ComplianceCommand::Report(a) => report(a),
        ComplianceCommand::Merge(a) => merge(a),
    }
}

impl From<ReportFormat> for compliance::Format {
    fn from(f: ReportFormat) -> Self {
        match f {
            ReportFormat::Md => compliance::Format::Md,
            ReportFormat::Json => compliance::Format::Json,
            ReportFormat::Html => compliance::Format::Html,
        }
    }
}

fn report(a: ReportArgs) -> Result<Outcome> {
    let now = compliance::now();
    let since = match &a.since {
        Some(s) => crate::auditcmd::parse_since(s)?,
        None => now.saturating_sub(DEFAULT_DAYS * 86_400),
    };
    let host = match a.hostname {
        Some(h) if !h.trim().is_empty() => h.trim().to_string(),
        Some(_) => bail!("--hostname (or PIVAULT_HOSTNAME) is empty: name the machine"),
        None => compliance::hostname(),
    };
    let r = compliance::gather(&compliance::Request {
        vaults: &a.vaults,
        proxy_config: a.proxy_config.as_deref(),
        since,
        now,
        host,
    })?;
    let text = compliance::render(&r, a.format.into())?;
    write_out(a.out.as_deref(), &text, "report")
}

fn merge(a: MergeArgs) -> Result<Outcome> {
    // Every report is read and checked before anything is written: a
    // refused merge leaves no partial fleet report behind.
    let inputs = compliance::fleet::read_reports(&a.reports)?;
    let fleet = compliance::fleet::merge(&inputs, compliance::now(), a.max_age)?;
    let text = compliance::fleet::render(&fleet, a.format.into())?;
    write_out(a.out.as_deref(), &text, "fleet report")
}

/// Writes `text` to FILE, or to stdout without `--out`.
fn write_out(out: Option<&Path>, text: &str, what: &str) -> Result<Outcome> {
    match out {
        Some(f) => std::fs::write(f, text.as_bytes())
            .with_context(|| format!("cannot write the {what} to {}", f.display()))?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|_| out.flush())
                .with_context(|| format!("cannot write the {what} to stdout"))?;
        }
    }
    Ok(Outcome::Ok)
}
