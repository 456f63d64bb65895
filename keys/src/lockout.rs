//! Failure counts for slot lockouts that a writer of the vault directory
//! cannot lower.
//!
//! The counts come from the audit log, which anyone who can write the
//! vault directory can append to, cut or delete. So:
//!
//! - only a record whose Ed25519 signature verifies under the keystore's
//!   audit key resets a count (a successful unseal, a `slot-unlock`): an
//!   appended unsigned "success" line resets nothing;
//! - a log that no longer holds the record the keystore anchored at its
//!   last write (it was cut, rewritten or deleted) is reported as cut, and
//!   slots with a lockout then refuse to unseal until the log is restored
//!   or an administrator unseals with another slot and runs
//!   `pivault keys unlock` (which writes the keystore, and so a new
//!   anchor);
//! - an attempt on a slot with a lockout is recorded as a failure
//!   *before* Argon2id runs, and refused when that record cannot be
//!   written: an attempt that is not counted never happens.
//!
//! What a writer can still do (docs/THREAT-MODEL.md §6): forge failures
//! (lock a slot: denial of service), and cut failure records written since
//! the keystore's last write back to that write. Each keystore write (any
//! key command, `keys unlock`) moves the anchor forward.

use crate::audit::{self, Record, UNSEAL_FAILED};
use crate::keystore::Keystore;
use crate::policy::SlotState;
use crate::{Error, Result};
use ring::signature::{UnparsedPublicKey, ED25519};
use std::collections::BTreeMap;
use std::path::Path;

/// What the log says about the slots, and whether it was cut.
pub(crate) struct Counts {
    /// Each slot's state.
    pub(crate) states: BTreeMap<u32, SlotState>,
    /// Why the log cannot be trusted to hold every failure, if it cannot.
    pub(crate) cut: Option<String>,
}

/// Reads the log of `vault` against its keystore `ks`.
pub(crate) fn counts(vault: &Path, ks: &Keystore) -> Result<Counts> {
    let path = audit::path_in(vault);
    let bytes = match crate::read_regular(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let mut lines: Vec<&[u8]> = bytes.split(|&b| b == b'\n').collect();
    lines.pop(); // after the last newline: empty, or a torn line
    let key = ks.audit_key()?;
    // Each record is checked under the key in force at its position: a
    // rotation hands the log to a new key, and the records before the
    // hand-over (the unseals that reset counts among them) stay signed by
    // the old one.
    let previous = ks.previous_audit_keys()?;
    let key_at = |pos: u64| {
        previous
            .iter()
            .find(|(_, last)| pos <= *last)
            .map(|(k, _)| *k)
            .or(key)
    };
    let records: Vec<(Record, bool)> = lines
        .iter()
        .enumerate()
        .filter_map(|(i, l)| Some((i as u64, serde_json::from_slice::<Record>(l).ok()?)))
        .map(|(i, r)| {
            let ok = signed_by(&r, key_at(i).as_ref());
            (r, ok)
        })
        .collect();
    let cut = ks.audit_anchor().and_then(|(seq, hash)| {
        match lines.get(seq as usize) {
            None => Some(format!(
                "the audit log ends before record {seq}, which the keystore recorded at its last change: it was cut or deleted"
            )),
            Some(l) if audit::sha256_hex(l) != hash => Some(format!(
                "record {seq} of the audit log is not the one the keystore recorded at its last change: the log was rewritten"
            )),
            Some(_) => None,
        }
    });
    Ok(Counts {
        states: states_from(&records, key.is_some()),
        cut,
    })
}

/// Whether `r` carries a signature that verifies under `key`.
fn signed_by(r: &Record, key: Option<&[u8; 32]>) -> bool {
    let (Some(sig), Some(k)) = (&r.sig, key) else {
        return false;
    };
    let Ok(sig) = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, sig) else {
        return false;
    };
    UnparsedPublicKey::new(&ED25519, k)
        .verify(&r.signed_bytes(), &sig)
        .is_ok()
}

/// Each slot's state from `records` (with whether each is validly
/// signed). With `keyed` (the keystore has an audit key) only signed
/// records reset a count; a vault from before the audit key has none to
/// check, and its first unseal adds one.
pub(crate) fn states_from(records: &[(Record, bool)], keyed: bool) -> BTreeMap<u32, SlotState> {
    let mut m: BTreeMap<u32, SlotState> = BTreeMap::new();
    for (r, signed) in records {
        let trusted = *signed || !keyed;
        match (r.event.as_str(), r.slot) {
            ("unseal", Some(s)) if r.ok && trusted => {
                let st = m.entry(s).or_default();
                st.last_use = Some(r.ts);
                st.failures = 0;
            }
            ("slot-unlock", Some(s)) if r.ok && trusted => m.entry(s).or_default().failures = 0,
            (UNSEAL_FAILED, _) => {
                let tried = r.details.get("tried").and_then(|t| t.as_array());
                for id in tried.into_iter().flatten().filter_map(|v| v.as_u64()) {
                    let st = m.entry(id as u32).or_default();
                    st.failures += 1;
                    st.last_failure = Some(r.ts);
                }
            }
            _ => {}
        }
    }
    m
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn rec(event: &str, slot: Option<u32>, ts: u64, tried: &[u32]) -> Record {
        let mut details = serde_json::Map::new();
        if event == UNSEAL_FAILED {
            details.insert("tried".into(), tried.to_vec().into());
        }
        Record {
            seq: 0,
            ts,
            time: String::new(),
            event: event.into(),
            ok: event != UNSEAL_FAILED,
            slot,
            user: "u".into(),
            uid: 0,
            host: "h".into(),
            pid: 1,
            reason: None,
            details,
            prev: String::new(),
            sig: None,
        }
    }

    #[test]
    fn failures_count_until_a_signed_success_or_unlock() {
        let log = [
            (rec(UNSEAL_FAILED, None, 10, &[0, 1]), false),
            (rec(UNSEAL_FAILED, None, 11, &[0]), false),
            (rec("unseal", Some(1), 12, &[]), true),
            (rec(UNSEAL_FAILED, None, 13, &[1]), false),
        ];
        let s = states_from(&log, true);
        assert_eq!(s[&0].failures, 2);
        assert_eq!(s[&0].last_failure, Some(11));
        assert_eq!(s[&1].failures, 1);
        assert_eq!(s[&1].last_use, Some(12));
        let mut more = log.to_vec();
        more.push((rec("slot-unlock", Some(0), 14, &[]), true));
        assert_eq!(states_from(&more, true)[&0].failures, 0);
    }

    #[test]
    fn an_appended_unsigned_success_resets_nothing() {
        let log = [
            (rec(UNSEAL_FAILED, None, 10, &[0]), false),
            (rec(UNSEAL_FAILED, None, 11, &[0]), false),
            (rec("unseal", Some(0), 12, &[]), false),
            (rec("slot-unlock", Some(0), 13, &[]), false),
        ];
        assert_eq!(states_from(&log, true)[&0].failures, 2);
    }
}
