//! Reads the evidence from the real state (keystores, audit logs, the
//! gateway configuration) without any secret, and has each clause of
//! 17.04 evaluated on it (`crate::clauses`). Nothing here unseals or
//! writes.

mod proxy;
mod vault;

pub use proxy::{is_loopback, listen_is_loopback};

use crate::error::Result;
use crate::model::*;
use keys::audit::rfc3339;
use std::path::{Path, PathBuf};

/// What to read and how to label it.
#[derive(Debug, Clone)]
pub struct Request<'a> {
    /// Vault directories, in the order the report lists them.
    pub vaults: &'a [PathBuf],
    /// The gateway's configuration file, for encryption in transit.
    pub proxy_config: Option<&'a Path>,
    /// Start of the period unseals are counted in (Unix seconds).
    pub since: u64,
    /// The report's time (Unix seconds).
    pub now: u64,
    /// The machine's name in the report ([`hostname`] unless the caller
    /// names it).
    pub host: String,
}

/// Everything the report needs, read from disk, with each section
/// evaluated.
pub fn gather(req: &Request<'_>) -> Result<Report> {
    let mut ev = Vec::new();
    for v in req.vaults {
        ev.push(vault::vault(v, req.since, req.now)?);
    }
    let proxy = req.proxy_config.map(proxy::proxy_config).transpose()?;
    let sections = crate::clauses::sections(&ev, proxy.as_ref());
    Ok(Report {
        report: REPORT_KIND.to_string(),
        schema: SCHEMA,
        regulation: REGULATION.to_string(),
        host: req.host.clone(),
        generated: rfc3339(req.now),
        pivault_version: crate::VERSION.to_string(),
        period: Period {
            since: rfc3339(req.since),
            until: rfc3339(req.now),
        },
        rotation_max_age_days: ROTATION_MAX_AGE_DAYS,
        vaults: ev,
        proxy,
        sections,
        firm_duties: crate::clauses::firm_duties(),
    })
}

/// This machine's host name, as its audit records name it.
pub fn hostname() -> String {
    keys::audit::host_name()
}

/// Unix seconds now.
pub fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
