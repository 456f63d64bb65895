//! `pivault compliance report`: evidence for each technical requirement of
//! 201 CMR 17.04, read from the real state of the vaults (keystore, audit
//! log) and of the gateway configuration, without any secret. Output as
//! Markdown, JSON (stable fields, docs/COMPLIANCE.md) or one
//! self-contained HTML file.

#[path = "compliance/gather.rs"]
mod gather;
#[path = "compliance/html.rs"]
mod html;
#[path = "compliance/md.rs"]
mod md;
#[path = "compliance/model.rs"]
mod model;

use crate::Outcome;
use anyhow::{Context, Result};
use clap::{Args, Subcommand, ValueEnum};
use std::io::Write;
use std::path::PathBuf;

/// `pivault compliance ...`.
#[derive(Subcommand, Debug)]
pub enum ComplianceCommand {
    /// Report what pivault provides for each requirement of 201 CMR 17.04,
    /// read from the vaults' keystores and audit logs (and the gateway
    /// configuration), and what remains the firm's duty. Needs no
    /// passphrase. Attach it to the firm's WISP.
    Report(ReportArgs),
}

/// Output formats.
#[derive(ValueEnum, Clone, Copy, Debug, Default)]
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
}

/// Default period: 90 days.
const DEFAULT_DAYS: u64 = 90;

pub fn run(cmd: ComplianceCommand) -> Result<Outcome> {
    match cmd {
        ComplianceCommand::Report(a) => report(a),
    }
}

fn report(a: ReportArgs) -> Result<Outcome> {
    let now = gather::now();
    let since = match &a.since {
        Some(s) => crate::auditcmd::parse_since(s)?,
        None => now.saturating_sub(DEFAULT_DAYS * 86_400),
    };
    let r = gather::gather(&a.vaults, a.proxy_config.as_deref(), since, now)?;
    let text = match a.format {
        ReportFormat::Md => md::render(&r),
        ReportFormat::Json => {
            let mut s = serde_json::to_string_pretty(&r)?;
            s.push('\n');
            s
        }
        ReportFormat::Html => html::render(&r),
    };
    match &a.out {
        Some(f) => std::fs::write(f, text.as_bytes())
            .with_context(|| format!("cannot write the report to {}", f.display()))?,
        None => {
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|_| out.flush())
                .context("cannot write the report to stdout")?;
        }
    }
    Ok(Outcome::Ok)
}
