//! `pivault audit show|verify`, and the audit records the other commands
//! write (unseals, key changes, re-encryption).

use crate::cli::AuditCommand;
use crate::Outcome;
use anyhow::{bail, Context, Result};
use keys::audit::{self, Event, Record};
use keys::{Keystore, Unsealed};
use std::io::Write;
use std::path::Path;

/// The command being run, for the `reason` of an unseal record
/// (`export`, `keys rotate`...).
pub fn command_name() -> String {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut words = args.iter().filter(|a| !a.starts_with('-'));
    match words.next().map(String::as_str) {
        Some(first @ ("keys" | "audit" | "cert" | "proxy" | "compliance")) => {
            format!("{first} {}", words.next().map(String::as_str).unwrap_or(""))
                .trim_end()
                .to_string()
        }
        Some(first) => first.to_string(),
        None => String::new(),
    }
}

/// Appends a record; a log that cannot be written is warned about, not
/// fatal (a vault on read-only media still opens).
pub fn record(vault: &Path, keyring: Option<&keys::Keyring>, event: Event) {
    if let Err(e) = audit::append(vault, keyring, event) {
        eprintln!(
            "pivault: warning: could not write the audit log {}: {e}",
            audit::path_in(vault).display()
        );
    }
}

/// Records a failed unseal (unsigned: no key was opened).
pub fn unseal_failed(vault: &Path, slot: Option<u32>, e: &keys::Error) {
    let reason = format!("{}: {e}", command_name());
    record(vault, None, Event::unseal_failed(slot, &reason));
}

/// After a successful unseal: gives a vault from before the audit log its
/// signing key (one keystore write), then records the unseal, signed.
pub fn unsealed(vault: &Path, ks: &mut Keystore, u: &mut Unsealed) {
    if ks.needs_audit_key() {
        match ks.refresh(u) {
            Ok(()) => record(vault, Some(&u.keyring), Event::new("audit-key-added")),
            Err(e) => eprintln!(
                "pivault: warning: could not add an audit signing key to {}: {e}; records stay unsigned",
                ks.path().display()
            ),
        }
    }
    record(
        vault,
        Some(&u.keyring),
        Event::new("unseal").slot(u.slot).reason(command_name()),
    );
}

pub fn run(cmd: AuditCommand) -> Result<Outcome> {
    match cmd {
        AuditCommand::Show { vault, json, since } => show(&vault, json, since.as_deref()),
        AuditCommand::Verify { vault, json } => verify(&vault, json),
    }
}

/// Unix seconds of a date (`2026-01-31`, midnight UTC) or RFC 3339 time.
pub fn parse_since(s: &str) -> Result<u64> {
    let full = if s.len() == 10 {
        format!("{s}T00:00:00Z")
    } else {
        s.to_string()
    };
    let t = humantime::parse_rfc3339_weak(&full)
        .or_else(|_| humantime::parse_rfc3339(&full))
        .with_context(|| {
            format!("--since {s:?} is not a date (use 2026-01-31 or 2026-01-31T08:00:00Z)")
        })?;
    Ok(t.duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0))
}

fn check_vault(vault: &Path) -> Result<()> {
    if !vault.is_dir() {
        bail!("{}: the vault directory does not exist", vault.display());
    }
    Keystore::load(vault)?;
    Ok(())
}

fn show(vault: &Path, json: bool, since: Option<&str>) -> Result<Outcome> {
    check_vault(vault)?;
    let since = since.map(parse_since).transpose()?.unwrap_or(0);
    let records: Vec<Record> = audit::read(vault)?
        .into_iter()
        .filter(|r| r.ts >= since)
        .collect();
    let mut out = std::io::stdout().lock();
    for r in &records {
        if json {
            // A closed pipe (`| head`) ends the listing quietly.
            if writeln!(out, "{}", r.line()).is_err() {
                break;
            }
            continue;
        }
        let mut line = format!(
            "{:>5} {} {:<16} {:<6}",
            r.seq,
            r.time,
            r.event,
            if r.ok { "ok" } else { "FAILED" }
        );
        if let Some(s) = r.slot {
            line.push_str(&format!(" slot={s}"));
        }
        line.push_str(&format!(" user={} host={} pid={}", r.user, r.host, r.pid));
        if let Some(reason) = &r.reason {
            line.push_str(&format!(" reason={reason:?}"));
        }
        if !r.details.is_empty() {
            line.push_str(&format!(
                " {}",
                serde_json::Value::Object(r.details.clone())
            ));
        }
        if r.sig.is_none() {
            line.push_str(" (unsigned)");
        }
        if writeln!(out, "{line}").is_err() {
            break;
        }
    }
    Ok(Outcome::Ok)
}

fn verify(vault: &Path, json: bool) -> Result<Outcome> {
    check_vault(vault)?;
    let v = audit::verify(vault)?;
    let log = audit::path_in(vault);
    if json {
        println!(
            "{}",
            serde_json::json!({
                "records": v.records,
                "signed": v.signed,
                "uncovered": v.uncovered,
                "key_fingerprint": v.key_fingerprint,
                "intact": v.is_intact(),
                "problem": v.problem.as_ref().map(|p| serde_json::json!({"record": p.record, "what": p.what})),
            })
        );
    } else {
        match &v.problem {
            Some(p) => println!(
                "{}: TAMPERED at record {}: {}",
                log.display(),
                p.record,
                p.what
            ),
            None => println!(
                "{}: intact: {} records, {} signed{}",
                log.display(),
                v.records,
                v.signed,
                if v.uncovered > 0 {
                    format!(
                        "; the last {} (failed unseals) are not yet covered by a signed record",
                        v.uncovered
                    )
                } else {
                    String::new()
                }
            ),
        }
        match &v.key_fingerprint {
            Some(f) => println!("verifying key: sha256:{f} (compare with the copy kept outside this laptop)"),
            None => println!("no audit key in the keystore yet: records are chained but not signed (any unseal adds one)"),
        }
    }
    Ok(if v.is_intact() {
        Outcome::Ok
    } else {
        Outcome::Damaged
    })
}
