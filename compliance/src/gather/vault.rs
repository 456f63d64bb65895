//! One vault's evidence, read from its keystore (public part: slots, KDF
//! parameters, policies, data-key versions) and its audit log (verified,
//! then counted), without any secret. Nothing here unseals or writes.

use crate::clauses::rotation_is_stale;
use crate::error::{Error, Result};
use crate::model::*;
use keys::audit::{self, rfc3339, Record, UNSEAL_FAILED};
use keys::{KdfParams, Keystore, SlotPolicy};
use std::collections::BTreeMap;
use std::path::Path;

/// Failed unseals listed per vault (all are counted).
const MAX_LISTED_FAILURES: usize = 50;

/// Seconds in a day, for the data key's age.
const DAY: u64 = 86_400;

/// The evidence of the vault at `path`; unseals and failures are counted
/// from `since` to `now`, the data key's age up to `now`.
pub fn vault(path: &Path, since: u64, now: u64) -> Result<VaultEvidence> {
    if !path.exists() {
        return Err(Error::NoSuchVault(path.to_path_buf()));
    }
    if !path.is_dir() {
        return Err(Error::NotADirectory(path.to_path_buf()));
    }
    // Its errors name the vault or the keystore file.
    let ks = Keystore::load(path)?;
    let states = keys::slot_states(path)?;
    let records = audit::read(path)?;
    let ver = audit::verify(path)?;
    let mut slots = Vec::new();
    for s in ks.slots() {
        let p: Option<SlotPolicy> = ks.policy(s.id)?;
        let p = p.unwrap_or_default();
        let st = states.get(&s.id).cloned().unwrap_or_default();
        let locked = p.max_failures.is_some_and(|m| st.failures >= m);
        slots.push(SlotEvidence {
            id: s.id,
            kind: SlotKind::of(s.kind),
            created: rfc3339(s.created),
            last_use: st.last_use.map(rfc3339),
            failures: st.failures,
            locked,
            kdf: kdf(s.kind, s.kdf),
            policy: PolicyEvidence {
                restricted: !p.is_empty(),
                users: p.users.clone(),
                expires: p.expires.map(rfc3339),
                expired: p.expires.is_some_and(|e| now >= e),
                max_failures: p.max_failures,
            },
            threshold: s.shares.map(|x| x.0),
            shares: s.shares.map(|x| x.1),
            recipient: s.escrow_recipient.clone(),
            legacy: s.legacy,
            weak_passphrase: s.weak_passphrase,
        });
    }
    let versions = ks.data_key_versions();
    let current = versions.iter().copied().max().unwrap_or(0);
    let data_keys = versions
        .iter()
        .map(|&v| DataKey {
            version: v,
            current: v == current,
        })
        .collect();
    let key_history: Vec<KeyEvent> = records.iter().filter_map(key_event).collect();
    let rotated: Vec<&Record> = records
        .iter()
        .filter(|r| r.event == "rotate" && r.ok)
        .collect();
    let rotations = rotated
        .iter()
        .map(|r| Rotation {
            time: r.time.clone(),
            new_version: r.details.get("new_version").and_then(|v| v.as_u64()),
            user: r.user.clone(),
        })
        .collect();
    // The current key dates from the last rotation the log shows; a vault
    // never rotated has had its key since it was made.
    let key_since = rotated.last().map_or(ks.created(), |r| r.ts);
    let key_age_days = now.saturating_sub(key_since) / DAY;
    let in_period = |r: &&Record| r.ts >= since && r.ts <= now;
    let mut by_user: BTreeMap<String, u64> = BTreeMap::new();
    let mut unseals = 0;
    for r in records
        .iter()
        .filter(in_period)
        .filter(|r| r.event == "unseal" && r.ok)
    {
        unseals += 1;
        *by_user.entry(r.user.clone()).or_default() += 1;
    }
    let failed: Vec<&Record> = records
        .iter()
        .filter(in_period)
        .filter(|r| r.event == UNSEAL_FAILED)
        .collect();
    let failed_unseals = failed
        .iter()
        .skip(failed.len().saturating_sub(MAX_LISTED_FAILURES))
        .map(|r| FailedUnseal {
            seq: r.seq,
            time: r.time.clone(),
            user: r.user.clone(),
            host: r.host.clone(),
            tried: r
                .details
                .get("tried")
                .and_then(|t| t.as_array())
                .map(|a| a.iter().filter_map(|v| v.as_u64()).collect())
                .unwrap_or_default(),
            reason: r.reason.clone(),
        })
        .collect();
    Ok(VaultEvidence {
        path: path.display().to_string(),
        vault_id: ks.vault_id().iter().map(|b| format!("{b:02x}")).collect(),
        keystore_format: ks.format_version(),
        suite: ks.suite().name().to_string(),
        created: rfc3339(ks.created()),
        slots,
        data_keys,
        key_history,
        rotations,
        data_key_since: rfc3339(key_since),
        data_key_age_days: key_age_days,
        rotation_stale: rotation_is_stale(key_age_days, ROTATION_MAX_AGE_DAYS),
        audit: AuditEvidence {
            file: audit::path_in(path).display().to_string(),
            records: ver.records,
            signed: ver.signed,
            uncovered: ver.uncovered,
            key_fingerprint: ver.key_fingerprint.clone(),
            intact: ver.is_intact(),
            problem: ver.problem.as_ref().map(|p| AuditProblem {
                record: p.record,
                what: p.what.clone(),
            }),
            first_record: records.first().map(|r| r.time.clone()),
            last_record: records.last().map(|r| r.time.clone()),
        },
        unseals_in_period: unseals,
        unseals_by_user: by_user
            .into_iter()
            .map(|(user, count)| UserCount { user, count })
            .collect(),
        failed_unseals_in_period: failed.len() as u64,
        failed_unseals,
    })
}

fn kdf(kind: keys::SlotKind, k: Option<KdfParams>) -> KdfEvidence {
    match k {
        Some(k) => KdfEvidence {
            algorithm: KdfAlgorithm::Argon2id,
            m_kib: Some(k.m_kib),
            t: Some(k.t),
            p: Some(k.p),
            test_only: k.test_only,
            below_minimum: k.m_kib < KdfParams::MIN.m_kib
                || k.t < KdfParams::MIN.t
                || k.p < KdfParams::MIN.p,
        },
        None => KdfEvidence {
            algorithm: if kind == keys::SlotKind::Escrow {
                KdfAlgorithm::AgeX25519
            } else {
                KdfAlgorithm::HkdfSha256
            },
            m_kib: None,
            t: None,
            p: None,
            test_only: false,
            below_minimum: false,
        },
    }
}

fn key_event(r: &Record) -> Option<KeyEvent> {
    let d = &r.details;
    let get = |k: &str| {
        d.get(k)
            .map(|v| v.to_string().trim_matches('"').to_string())
    };
    let slot = r.slot.map(|s| format!("slot {s}")).unwrap_or_default();
    let summary = match r.event.as_str() {
        "init" => "vault created".to_string(),
        "rotate" => format!(
            "data key version {} added",
            get("new_version").unwrap_or_else(|| "?".into())
        ),
        "reencrypt" => format!(
            "{} files re-encrypted to data key version {}",
            get("files").unwrap_or_else(|| "?".into()),
            get("version").unwrap_or_else(|| "?".into())
        ),
        "retire" => format!(
            "data key versions {} retired",
            get("versions").unwrap_or_else(|| "?".into())
        ),
        "slot-add" => format!(
            "{} slot added ({slot})",
            get("kind").unwrap_or_else(|| "a".into())
        ),
        "slot-remove" => format!("{slot} removed"),
        "slot-change" => format!("passphrase of {slot} changed"),
        "policy" => format!("policy of {slot} set: {}", policy_summary(d.get("policy"))),
        "slot-unlock" => format!("{slot} unlocked"),
        "recovery" => format!("recovered with escrow; new passphrase on {slot}"),
        "audit-key-added" => "audit signing key added".to_string(),
        _ => return None,
    };
    Some(KeyEvent {
        seq: r.seq,
        time: r.time.clone(),
        event: r.event.clone(),
        slot: r.slot,
        user: r.user.clone(),
        summary: if r.ok {
            summary
        } else {
            format!("{summary} (FAILED)")
        },
    })
}

/// A policy record's `policy` detail in words.
fn policy_summary(p: Option<&serde_json::Value>) -> String {
    let Some(p) = p.and_then(|p| serde_json::from_value::<SlotPolicy>(p.clone()).ok()) else {
        return "?".into();
    };
    if p.is_empty() {
        return "unrestricted".into();
    }
    let mut parts = Vec::new();
    if !p.users.is_empty() {
        parts.push(format!("users {}", p.users.join(", ")));
    }
    if let Some(e) = p.expires {
        parts.push(format!("expires {}", rfc3339(e)));
    }
    if let Some(n) = p.max_failures {
        parts.push(format!("locks after {n} failures"));
    }
    parts.join("; ")
}
