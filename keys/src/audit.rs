//! The vault's audit log, `VAULT/audit.log`: JSON Lines, one record per
//! event (unseal, failed unseal, rotation, re-encryption, retirement, slot
//! and policy changes, recovery, mount, unmount...).
//!
//! Records are hash-chained (each names the SHA-256 of the previous line;
//! the first, a hash of the vault ID) and signed with Ed25519 under a key
//! whose seed is in the keyring and whose public half is in the keystore,
//! so `verify` needs no passphrase. A failed unseal has no key: its record
//! is chained but unsigned, and the next signed record, which covers its
//! hash, vouches for it. docs/FORMAT.md §14 is the format;
//! docs/THREAT-MODEL.md §11 what it proves.
//!
//! ```no_run
//! # fn f(vault: &std::path::Path, keyring: &keys::Keyring) -> keys::Result<()> {
//! use keys::audit::{self, Event};
//! audit::append(vault, Some(keyring), Event::new("mount").detail("mountpoint", "/mnt/v"))?;
//! # Ok(()) }
//! ```

use crate::keystore::Keystore;
use crate::{Error, Result};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine as _;
use ring::signature::{Ed25519KeyPair, KeyPair};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use std::fs::{File, OpenOptions};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use vault_core::Keyring;

pub use crate::audit_verify::{read, verify, verify_against, Problem, Verification};

/// The log's file name in the vault directory.
pub const AUDIT_FILE: &str = "audit.log";
const SIGN_DOMAIN: &[u8] = b"pivault audit record v1\n";
const GENESIS_DOMAIN: &[u8] = b"pivault audit log v1";
/// The event name of a failed unseal, the only record written unsigned.
pub const UNSEAL_FAILED: &str = "unseal-failed";
/// The event of the record that hands the log over to a new signing key
/// (a rotation): signed by the old key, `details.from` and `details.to`
/// the two verifying keys (base64).
pub const KEY_HANDOVER: &str = "audit-key-rotated";

static SYSLOG: AtomicBool = AtomicBool::new(false);

/// Also send every record to syslog (as `PIVAULT_SYSLOG=1` does).
pub fn enable_syslog() {
    SYSLOG.store(true, Ordering::Relaxed);
}

fn syslog_enabled() -> bool {
    SYSLOG.load(Ordering::Relaxed) || std::env::var_os("PIVAULT_SYSLOG").is_some_and(|v| v == "1")
}

/// Something to record.
#[derive(Debug, Clone)]
pub struct Event {
    kind: String,
    ok: bool,
    slot: Option<u32>,
    reason: Option<String>,
    details: Map<String, Value>,
}

impl Event {
    /// A successful event of kind `kind` (e.g. `"rotate"`, `"mount"`).
    pub fn new(kind: &str) -> Event {
        Event {
            kind: kind.to_string(),
            ok: true,
            slot: None,
            reason: None,
            details: Map::new(),
        }
    }

    /// A failed unseal (recorded unsigned: no key was opened).
    pub fn unseal_failed(slot: Option<u32>, reason: &str) -> Event {
        Event {
            ok: false,
            slot,
            reason: Some(reason.to_string()),
            ..Event::new(UNSEAL_FAILED)
        }
    }

    /// Marks the event as failed.
    pub fn failed(mut self) -> Event {
        self.ok = false;
        self
    }

    /// The key slot involved.
    pub fn slot(mut self, slot: u32) -> Event {
        self.slot = Some(slot);
        self
    }

    /// Why (the command, or what went wrong).
    pub fn reason(mut self, reason: impl Into<String>) -> Event {
        self.reason = Some(reason.into());
        self
    }

    /// One more detail (never a secret).
    pub fn detail(mut self, key: &str, value: impl Into<Value>) -> Event {
        self.details.insert(key.to_string(), value.into());
        self
    }
}

/// One line of the log (members in the order written).
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Record {
    /// Position in the log, from 0, contiguous.
    pub seq: u64,
    /// Unix seconds.
    pub ts: u64,
    /// The same instant, RFC 3339 UTC.
    pub time: String,
    /// What happened.
    pub event: String,
    /// Whether it succeeded.
    pub ok: bool,
    /// The key slot involved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub slot: Option<u32>,
    /// OS user name of the process.
    pub user: String,
    /// OS user ID of the process.
    pub uid: u32,
    /// Host name.
    pub host: String,
    /// Process ID.
    pub pid: u32,
    /// The command, or what went wrong.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Event details.
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub details: Map<String, Value>,
    /// Lowercase hex SHA-256 of the previous line (without its newline).
    pub prev: String,
    /// base64 Ed25519 signature (absent only for failed unseals).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sig: Option<String>,
}

impl Record {
    /// The exact bytes a signature covers: a domain line, then the
    /// record's canonical JSON without `sig`.
    pub fn signed_bytes(&self) -> Vec<u8> {
        let mut r = self.clone();
        r.sig = None;
        let mut out = SIGN_DOMAIN.to_vec();
        out.extend_from_slice(&serde_json::to_vec(&r).expect("record serializes"));
        out
    }

    /// The canonical line (without newline).
    pub fn line(&self) -> String {
        serde_json::to_string(self).expect("record serializes")
    }
}

/// Lowercase hex SHA-256.
pub(crate) fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref())
}

/// The `prev` of record 0: binds the log to its vault.
pub fn genesis(vault_id: &[u8; 16]) -> String {
    let mut b = GENESIS_DOMAIN.to_vec();
    b.extend_from_slice(vault_id);
    sha256_hex(&b)
}

/// The audit signing key pair of a keyring, when it has a seed.
pub(crate) fn key_pair(keyring: &Keyring) -> Option<Ed25519KeyPair> {
    keyring
        .audit_seed()
        .and_then(|s| Ed25519KeyPair::from_seed_unchecked(s.expose()).ok())
}

/// The verifying (public) key of a keyring's audit signing key.
pub fn verifying_key(keyring: &Keyring) -> Option<[u8; 32]> {
    key_pair(keyring).and_then(|k| k.public_key().as_ref().try_into().ok())
}

/// The log path of a vault.
pub fn path_in(vault: &Path) -> PathBuf {
    vault.join(AUDIT_FILE)
}

/// The last line of the log (without newline) and how many lines come
/// before it, or `None` for an empty or missing log. A torn last line
/// (no newline: a crash mid-append) is ignored.
fn last_line(f: &mut File, path: &Path) -> Result<Option<(Vec<u8>, Option<u64>)>> {
    let len = f.seek(SeekFrom::End(0)).map_err(|e| Error::io(path, e))?;
    let window = len.min(64 * 1024);
    let mut tail = vec![0u8; window as usize];
    f.seek(SeekFrom::Start(len - window))
        .and_then(|_| f.read_exact(&mut tail))
        .map_err(|e| Error::io(path, e))?;
    let end = match tail.iter().rposition(|&b| b == b'\n') {
        Some(i) => i,
        None => return Ok(None),
    };
    let start = tail[..end].iter().rposition(|&b| b == b'\n').map(|i| i + 1);
    match start {
        Some(s) => Ok(Some((tail[s..end].to_vec(), None))),
        None if window == len => Ok(Some((tail[..end].to_vec(), Some(0)))),
        None => Err(Error::corrupt(
            path,
            "its last record is longer than 64 KiB (run `pivault audit verify`)",
        )),
    }
}

/// Counts complete lines (the fallback when the last line does not parse).
fn count_lines(f: &mut File, path: &Path) -> Result<u64> {
    let mut all = Vec::new();
    f.seek(SeekFrom::Start(0))
        .and_then(|_| f.read_to_end(&mut all))
        .map_err(|e| Error::io(path, e))?;
    Ok(all.iter().filter(|&&b| b == b'\n').count() as u64)
}

/// The position of the next record and the `prev` it must carry.
fn next_link(f: &mut File, path: &Path, vault_id: &[u8; 16]) -> Result<(u64, String)> {
    match last_line(f, path)? {
        None => Ok((0, genesis(vault_id))),
        Some((line, _)) => {
            let hash = sha256_hex(&line);
            let seq = match serde_json::from_slice::<Record>(&line) {
                Ok(r) => r.seq + 1,
                Err(_) => count_lines(f, path)?,
            };
            Ok((seq, hash))
        }
    }
}

/// `(seq, hash)` of the last complete record, for the keystore's anchor.
pub(crate) fn tail(vault: &Path) -> Result<Option<(u64, String)>> {
    let path = path_in(vault);
    let mut f = match crate::open_regular(&path, OpenOptions::new().read(true)) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(Error::io(&path, e)),
    };
    Ok(match last_line(&mut f, &path)? {
        None => None,
        Some((line, _)) => serde_json::from_slice::<Record>(&line)
            .ok()
            .map(|r| (r.seq, sha256_hex(&line))),
    })
}

/// Appends one record for `event` to the log of `vault`, signed when
/// `keyring` is given (and holds an audit key), under an exclusive lock
/// (several processes may log at once), and flushes it to disk. Also sends
/// it to syslog when enabled. Returns the record.
pub fn append(vault: &Path, keyring: Option<&Keyring>, event: Event) -> Result<Record> {
    let ks = Keystore::load(vault)?;
    let path = path_in(vault);
    // Never through a planted symlink: the append below may cut the file.
    let mut f = crate::open_regular(
        &path,
        OpenOptions::new()
            .read(true)
            .append(true)
            .create(true)
            .mode(0o600),
    )
    .map_err(|e| Error::io(&path, e))?;
    rustix::fs::flock(&f, rustix::fs::FlockOperation::LockExclusive)
        .map_err(|e| Error::io(&path, e.into()))?;
    // A crash mid-append leaves a line without its newline: never a
    // record, so it is cut off.
    let len = f.metadata().map_err(|e| Error::io(&path, e))?.len();
    if len > 0 {
        let mut last = [0u8; 1];
        f.seek(SeekFrom::Start(len - 1))
            .and_then(|_| f.read_exact(&mut last))
            .map_err(|e| Error::io(&path, e))?;
        if last[0] != b'\n' {
            let keep = match last_line(&mut f, &path)? {
                None => 0,
                Some(_) => {
                    let mut all = Vec::new();
                    f.seek(SeekFrom::Start(0))
                        .and_then(|_| f.read_to_end(&mut all))
                        .map_err(|e| Error::io(&path, e))?;
                    all.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1) as u64
                }
            };
            f.set_len(keep).map_err(|e| Error::io(&path, e))?;
        }
    }
    let (seq, prev) = next_link(&mut f, &path, &ks.vault_id())?;
    let (user, uid) = os_user();
    let ts = crate::keystore::now();
    let mut rec = Record {
        seq,
        ts,
        time: rfc3339(ts),
        event: event.kind,
        ok: event.ok,
        slot: event.slot,
        user,
        uid,
        host: host_name(),
        pid: std::process::id(),
        reason: event.reason,
        details: event.details,
        prev,
        sig: None,
    };
    if let Some(kp) = keyring.and_then(key_pair) {
        // A process that unsealed before a rotation holds the old signing
        // key: a record it signed after the hand-over would read as a
        // forgery, so it is not written.
        let mine: [u8; 32] = kp.public_key().as_ref().try_into().unwrap_or([0; 32]);
        if ks.previous_audit_keys()?.iter().any(|(k, _)| *k == mine) {
            return Err(Error::StaleAuditKey(vault.to_path_buf()));
        }
        rec.sig = Some(B64.encode(kp.sign(&rec.signed_bytes()).as_ref()));
    }
    let mut line = rec.line().into_bytes();
    line.push(b'\n');
    f.write_all(&line)
        .and_then(|_| f.sync_data())
        .map_err(|e| Error::io(&path, e))?;
    drop(f);
    if syslog_enabled() {
        crate::audit_syslog::send(&rec);
    }
    if let Some(remote) = crate::audit_ship::enabled() {
        // The record is in the log whatever happens here: a server that
        // cannot take it now gets it with the next shipment.
        if let Err(e) = crate::audit_ship::ship(vault, remote) {
            tracing::warn!(
                "{e}; the records wait in {} and go with the next one (or `pivault audit ship`)",
                path.display()
            );
        }
    }
    Ok(rec)
}

/// The OS user name (from /etc/passwd) and ID of this process.
pub(crate) fn os_user() -> (String, u32) {
    let uid = rustix::process::getuid().as_raw();
    let name = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|p| {
            p.lines().find_map(|l| {
                let mut f = l.split(':');
                let name = f.next()?;
                let id = f.nth(1)?.parse::<u32>().ok()?;
                (id == uid).then(|| name.to_string())
            })
        })
        .unwrap_or_else(|| format!("uid {uid}"));
    (name, uid)
}

/// This machine's host name, as audit records carry it (the compliance
/// report names its machine the same way).
pub fn host_name() -> String {
    rustix::system::uname()
        .nodename()
        .to_string_lossy()
        .into_owned()
}

/// RFC 3339 UTC, seconds.
pub fn rfc3339(ts: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(ts);
    humantime::format_rfc3339_seconds(t).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_matches_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_735_689_600), "2025-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }

    #[test]
    fn record_round_trips_canonically() {
        let r = Record {
            seq: 3,
            ts: 1,
            time: rfc3339(1),
            event: "rotate".into(),
            ok: true,
            slot: Some(0),
            user: "alice \"quoted\"".into(),
            uid: 1000,
            host: "h".into(),
            pid: 9,
            reason: None,
            details: Map::from_iter([("b".to_string(), Value::from(1)), ("a".into(), "x".into())]),
            prev: genesis(&[0; 16]),
            sig: Some("AAAA".into()),
        };
        let line = r.line();
        let back: Record = serde_json::from_str(&line).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.line(), line);
        assert!(!String::from_utf8(r.signed_bytes()).unwrap().contains("sig"));
    }
}
