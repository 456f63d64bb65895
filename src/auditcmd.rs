//! `pivault audit show|verify`, and the audit records the other commands
//! write (unseals, key changes, re-encryption).

use crate::cli::{AuditCommand, Unlock};
use crate::Outcome;
use anyhow::{bail, Context, Result};
use keys::audit::{self, Event, Record};
use keys::audit_ship;
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

/// After a successful unseal: upgrades the keystore when it needs it (an
/// older format, the slot that unsealed carried over from one, a keyring
/// without its own MAC or audit key: one keystore write, recorded by
/// `keys`), then records the unseal, signed.
pub fn unsealed(vault: &Path, ks: &mut Keystore, u: &mut Unsealed) {
    let had_audit_key = !ks.needs_audit_key();
    match ks.upgrade(u) {
        Ok(true) if !had_audit_key => {
            record(vault, Some(&u.keyring), Event::new("audit-key-added"))
        }
        Ok(_) => {}
        Err(e) => eprintln!(
            "pivault: warning: could not upgrade {} to the current keystore format: {e}; it still opens, but removing or rotating keys may be refused until it is upgraded",
            ks.path().display()
        ),
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
        AuditCommand::Verify {
            vault,
            json,
            unseal,
            unlock,
        } => verify(&vault, json, unseal, &unlock),
        AuditCommand::Ship { vault } => ship(&vault),
    }
}

/// The audit server this process ships to: `--audit-remote` (with
/// `--audit-ca`), else the configuration file when it exists.
pub fn remote(url: Option<&str>, ca: Option<&Path>) -> Result<Option<audit_ship::Remote>> {
    if let Some(url) = url {
        return Ok(Some(audit_ship::Remote::new(url, ca).with_context(
            || "check --audit-remote / PIVAULT_AUDIT_REMOTE and --audit-ca",
        )?));
    }
    let file = std::env::var_os("PIVAULT_AUDIT_CONFIG")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| audit_ship::CONFIG_FILE.into());
    if !file.exists() {
        return Ok(None);
    }
    Ok(Some(
        audit_ship::Remote::from_config_file(&file).with_context(|| {
            format!(
                "{} names the audit server (`remote = \"tls://HOST:6514\"`, `ca = \"FILE\"`); fix it or move it away",
                file.display()
            )
        })?,
    ))
}

fn ship(vault: &Path) -> Result<Outcome> {
    let Some(remote) = audit_ship::enabled() else {
        bail!("no audit server is configured; give --audit-remote tls://HOST:6514 (and --audit-ca FILE), or write /etc/pivault/audit.toml");
    };
    let done = audit_ship::ship(vault, remote).with_context(|| {
        format!(
            "nothing was lost: the records stay in {} and go with the next shipment",
            audit::path_in(vault).display()
        )
    })?;
    let through = done.through.map_or(String::new(), |seq| {
        format!("; delivered through seq {seq}")
    });
    if done.sent == 0 {
        println!("Nothing to ship to {}{through}", remote.url());
    } else {
        println!(
            "Shipped {} record(s) to {}{through}",
            done.sent,
            remote.url()
        );
    }
    Ok(Outcome::Ok)
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

/// What `audit verify` learnt about the keystore's MAC, which is what
/// vouches for the verifying key and the tail anchor the log is checked
/// against.
enum MacCheck {
    /// No secret given: key and anchor were taken from the keystore's
    /// public part on trust.
    NotChecked,
    /// The keystore unsealed with this slot and its MAC verified.
    Verified(u32),
    /// A slot opened but the keystore failed its integrity check: its
    /// public part (anchor, key) was forged or damaged.
    Failed(String),
}

/// Unseals to check the keystore's MAC. A wrong secret or a refused
/// policy is an error (exit 1); a keystore that fails its integrity check
/// once a slot opened is a finding (exit 3). The unseal is recorded like
/// any other, after the log was checked, and the keystore is never
/// rewritten (a refresh would re-anchor the log at its current tail).
fn check_mac(vault: &Path, ks: &Keystore, unlock: &Unlock) -> Result<MacCheck> {
    let secret = match crate::keyscmd::secret_from(unlock) {
        Ok(Some(secret)) => secret,
        Ok(None) => keys::Secret::Passphrase(crate::secrets::current(unlock)?),
        Err(e) => {
            unseal_failed(vault, None, &e);
            return Err(e.into());
        }
    };
    let u = match ks.unseal_as(&secret, None, &command_name()) {
        Ok(u) => u,
        Err(e @ keys::Error::Corrupt { .. }) => return Ok(MacCheck::Failed(e.to_string())),
        Err(e) => return Err(e.into()),
    };
    crate::vaultcmd::warn_weak(ks, u.slot, u.weak_kdf);
    record(
        vault,
        Some(&u.keyring),
        Event::new("unseal").slot(u.slot).reason(command_name()),
    );
    if ks.audit_key()? != audit::verifying_key(&u.keyring) && !ks.needs_audit_key() {
        return Ok(MacCheck::Failed(format!(
            "{}: its audit key is not the one the keyring signs with",
            ks.path().display()
        )));
    }
    Ok(MacCheck::Verified(u.slot))
}

fn verify(vault: &Path, json: bool, unseal: bool, unlock: &Unlock) -> Result<Outcome> {
    check_vault(vault)?;
    let with_secret = unseal
        || unlock.passphrase_file.is_some()
        || unlock.recovery_key_file.is_some()
        || !unlock.share_file.is_empty();
    // The log as found, before this command's own unseal record, checked
    // against the keystore read once: the MAC check below unseals these
    // same bytes, so a keystore swapped while the passphrase is typed
    // cannot vouch for a log checked against another.
    let ks = Keystore::load(vault)?;
    let v = audit::verify_against(vault, &ks)?;
    let mac = if with_secret {
        check_mac(vault, &ks, unlock)?
    } else {
        MacCheck::NotChecked
    };
    let forged = matches!(mac, MacCheck::Failed(_));
    let log = audit::path_in(vault);
    if json {
        let (state, slot, problem) = match &mac {
            MacCheck::NotChecked => ("not-checked", None, None),
            MacCheck::Verified(s) => ("verified", Some(*s), None),
            MacCheck::Failed(e) => ("failed", None, Some(e.as_str())),
        };
        println!(
            "{}",
            serde_json::json!({
                "records": v.records,
                "signed": v.signed,
                "uncovered": v.uncovered,
                "key_fingerprint": v.key_fingerprint,
                "intact": v.is_intact() && !forged,
                "problem": v.problem.as_ref().map(|p| serde_json::json!({"record": p.record, "what": p.what})),
                "keystore_mac": state,
                "keystore_slot": slot,
                "keystore_problem": problem,
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
        match &mac {
            MacCheck::NotChecked => println!(
                "NOT CHECKED: the keystore's MAC (no passphrase given), so the verifying key and the tail anchor above were taken on trust: a log cut short together with an edited anchor, or a forged log with a replaced key, would pass. Give --passphrase-file (or --recovery-key-file, --share-file, --unseal) to check them"
            ),
            MacCheck::Verified(slot) => println!(
                "keystore MAC verified (unsealed with slot {slot}): the verifying key and the tail anchor are the keystore's own"
            ),
            MacCheck::Failed(e) => println!(
                "FORGED keystore: {e}; its verifying key and tail anchor cannot be trusted, so this log's check proves nothing. Restore the keystore from a copy made with `pivault keys backup` and compare the logs"
            ),
        }
    }
    Ok(if v.is_intact() && !forged {
        Outcome::Ok
    } else {
        Outcome::Damaged
    })
}
