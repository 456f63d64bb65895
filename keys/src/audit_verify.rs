//! Checking and reading the audit log without any secret: the verifying
//! key and the tail anchor come from the keystore's public part.

use crate::audit::{self, genesis, sha256_hex, Record, KEY_HANDOVER, UNSEAL_FAILED};
use crate::keystore::Keystore;
use crate::{Error, Result};
use ring::signature::{UnparsedPublicKey, ED25519};
use std::path::Path;

/// What is wrong with the log: the first problem found, by record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The record (its position in the log, from 0; line = record + 1).
    pub record: u64,
    /// What is wrong, in words.
    pub what: String,
}

/// The result of checking a log.
#[derive(Debug, Clone)]
pub struct Verification {
    /// Records read (complete lines).
    pub records: u64,
    /// Records with a valid signature.
    pub signed: u64,
    /// Trailing unsigned records (failed unseals) no signed record covers
    /// yet.
    pub uncovered: u64,
    /// Hex SHA-256 of the verifying key, to compare with a copy kept
    /// elsewhere (a SIEM, the compliance report).
    pub key_fingerprint: Option<String>,
    /// The first problem, if any.
    pub problem: Option<Problem>,
}

impl Verification {
    /// True when nothing is wrong.
    pub fn is_intact(&self) -> bool {
        self.problem.is_none()
    }
}

/// Reads the log's lines (without newlines); a torn last line (no
/// newline) is left out.
fn lines(vault: &Path) -> Result<Vec<Vec<u8>>> {
    let path = audit::path_in(vault);
    let bytes = match crate::read_regular(&path) {
        Ok(b) => b,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(Error::io(&path, e)),
    };
    let mut out: Vec<Vec<u8>> = bytes.split(|&b| b == b'\n').map(<[u8]>::to_vec).collect();
    out.pop(); // after the last newline: empty, or a torn line
    Ok(out)
}

/// Checks the whole log of `vault`: every record parses and is in
/// canonical form, sequence numbers count from 0 without gaps, each
/// record's `prev` is the hash of the line before, every signature
/// verifies under the keystore's audit key, only failed unseals are
/// unsigned, and the record the keystore anchored at its last write is
/// still there, unchanged. Records up to a rotation's hand-over verify
/// under the key the keystore lists as previous, and the hand-over record
/// names the next key. Needs no passphrase.
pub fn verify(vault: &Path) -> Result<Verification> {
    verify_against(vault, &Keystore::load(vault)?)
}

/// As [`verify`], against a keystore the caller already loaded: a caller
/// that then unseals it to check its MAC checks the very bytes the log
/// was verified against (a second read could find other bytes).
pub fn verify_against(vault: &Path, ks: &Keystore) -> Result<Verification> {
    let current = ks.audit_key()?;
    let previous = ks.previous_audit_keys()?;
    let key_for = |seq: u64| {
        previous
            .iter()
            .find(|(_, last)| seq <= *last)
            .map(|(k, _)| *k)
            .or(current)
    };
    let anchor = ks.audit_anchor();
    let lines = lines(vault)?;
    let mut v = Verification {
        records: lines.len() as u64,
        signed: 0,
        uncovered: 0,
        key_fingerprint: current.map(|k| sha256_hex(&k)),
        problem: None,
    };
    let fail = |record: u64, what: String| Some(Problem { record, what });
    let seqs: Vec<Option<u64>> = lines
        .iter()
        .map(|l| serde_json::from_slice::<Record>(l).ok().map(|r| r.seq))
        .collect();
    let mut prev_hash = genesis(&ks.vault_id());
    // A hand-over the keystore does not list (its rotation's keystore
    // write was lost, or an older keystore was put back): the record and
    // the key it announced.
    let mut announced: Option<(u64, Vec<u8>)> = None;
    let mut prev_signed_ok = true;
    for (i, line) in lines.iter().enumerate() {
        let i = i as u64;
        let rec: Record = match serde_json::from_slice(line) {
            Ok(r) => r,
            Err(e) => {
                v.problem = fail(i, format!("record {i} (line {}) is not a valid record ({e}): it was edited or damaged", i + 1));
                return Ok(v);
            }
        };
        if rec.line().as_bytes() != line.as_slice() {
            v.problem = fail(
                i,
                format!(
                    "record {i} (line {}) is not in the form pivault writes: it was edited",
                    i + 1
                ),
            );
            return Ok(v);
        }
        if rec.seq != i {
            let later = seqs.iter().skip(i as usize + 1).position(|s| *s == Some(i));
            let what = match later {
                _ if rec.seq < i => format!("line {} holds record {} where record {i} belongs: a record was inserted or duplicated here", i + 1, rec.seq),
                Some(k) => format!("line {} holds record {} where record {i} belongs, and record {i} is at line {}: the records were reordered", i + 1, rec.seq, i as usize + k + 2),
                None => format!("line {} holds record {} where record {i} belongs: record(s) {i}..{} were deleted", i + 1, rec.seq, rec.seq - 1),
            };
            v.problem = fail(i, what);
            return Ok(v);
        }
        let key = key_for(i);
        let sig_ok = match (&rec.sig, key) {
            (Some(sig), Some(k)) => {
                let sig = base64::Engine::decode(&base64::engine::general_purpose::STANDARD, sig)
                    .unwrap_or_default();
                UnparsedPublicKey::new(&ED25519, &k)
                    .verify(&rec.signed_bytes(), &sig)
                    .is_ok()
            }
            _ => false,
        };
        if rec.prev != prev_hash {
            v.problem = if sig_ok || (i > 0 && !prev_signed_ok) {
                // A genuine record i (its signature covers `prev`), or an
                // unsigned record before it: the line before is not the
                // one it was chained to.
                fail(i - i.min(1), format!("record {} was edited or inserted, or a record was deleted after it: record {i} does not chain to it", i - i.min(1)))
            } else {
                fail(i, format!("record {i} was edited, inserted or moved: it does not chain to the record before it"))
            };
            return Ok(v);
        }
        match (&rec.sig, key) {
            (Some(_), Some(_)) => {
                if !sig_ok {
                    let by_announced = announced.as_ref().filter(|(_, k)| {
                        let sig = rec.sig.as_deref().and_then(|s| {
                            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, s)
                                .ok()
                        });
                        UnparsedPublicKey::new(&ED25519, k)
                            .verify(&rec.signed_bytes(), &sig.unwrap_or_default())
                            .is_ok()
                    });
                    v.problem = match by_announced {
                        Some((at, _)) => fail(i, format!("record {i} is signed by the key record {at} handed the log over to, which this keystore does not know: the keystore is older than the log (an older copy was put back, or a rotation's keystore write was lost)")),
                        None => fail(
                            i,
                            format!("record {i} was edited: its signature does not verify"),
                        ),
                    };
                    return Ok(v);
                }
                if rec.event == KEY_HANDOVER && !previous.iter().any(|(_, last)| *last == i) {
                    announced = rec
                        .details
                        .get("to")
                        .and_then(|t| t.as_str())
                        .and_then(|t| {
                            base64::Engine::decode(&base64::engine::general_purpose::STANDARD, t)
                                .ok()
                        })
                        .map(|k| (i, k));
                }
                if let Some(pos) = previous.iter().position(|(_, last)| *last == i) {
                    let next = previous.get(pos + 1).map(|(k, _)| *k).or(current);
                    let named = rec.details.get("to").and_then(|t| t.as_str()).map(|t| {
                        base64::Engine::decode(&base64::engine::general_purpose::STANDARD, t)
                            .unwrap_or_default()
                    });
                    if rec.event != KEY_HANDOVER
                        || named.as_deref() != next.as_ref().map(|k| k.as_slice())
                    {
                        v.problem = fail(i, format!("record {i} should hand the log over to the next audit key (the keystore says the previous key signed up to it), but it does not name that key: the keystore's key history or the log was altered"));
                        return Ok(v);
                    }
                }
                v.signed += 1;
                v.uncovered = 0;
                prev_signed_ok = true;
            }
            (Some(_), None) => {
                v.problem = fail(i, format!("record {i} is signed, but the keystore holds no audit key (the keystore was replaced by an older one)"));
                return Ok(v);
            }
            (None, _) if rec.event != UNSEAL_FAILED => {
                v.problem = fail(i, format!("record {i} ({}) is unsigned, but only failed unseals may be: it was edited or forged", rec.event));
                return Ok(v);
            }
            (None, _) => {
                v.uncovered += 1;
                prev_signed_ok = false;
            }
        }
        prev_hash = sha256_hex(line);
    }
    if let Some((seq, hash)) = anchor {
        match lines.get(seq as usize) {
            None => {
                v.problem = fail(
                    v.records,
                    format!("the log was truncated: the keystore recorded record {seq} at its last change, but the log ends {}", match v.records { 0 => "before record 0".to_string(), n => format!("at record {}", n - 1) }),
                );
            }
            Some(line) if sha256_hex(line) != hash => {
                v.problem = fail(
                    seq,
                    format!("record {seq} is not the one the keystore recorded at its last change: the log was rewritten from there"),
                );
            }
            Some(_) => {}
        }
    }
    Ok(v)
}

/// Reads every record that parses (for display; use [`verify`] to check).
pub fn read(vault: &Path) -> Result<Vec<Record>> {
    Ok(lines(vault)?
        .iter()
        .filter_map(|l| serde_json::from_slice(l).ok())
        .collect())
}
