//! Restricted unsealing: per-slot policies (which OS users, until when,
//! how many failed unseals in a row before the slot locks) and the state
//! they are checked against (failures, last use), read from the audit log.
//!
//! The policy lives in the slot record, under the keystore MAC: it is set
//! only by a keyring holder, and an edit by anyone else makes every unseal
//! fail the MAC check. The state is derived from the audit log (failed
//! unseals name the slots they tried; a successful unseal or a
//! `slot-unlock` record resets a slot's count), so resetting a lock means
//! editing the log, which `pivault audit verify` reports. These checks bind
//! the pivault software; the cryptographic bound is Argon2id (and the
//! 256-bit recovery key). docs/THREAT-MODEL.md §6 says so.

use crate::audit::{self, Event};
use crate::keystore::{now, Keystore};
use crate::role::Role;
use crate::slot::{Passphrase, SlotKind};
use crate::unseal::Unsealed;
use crate::{Error, RecoveryKey, Result};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Longest wait between attempts on a slot with failures (one hour).
const MAX_BACKOFF: u64 = 3600;

/// A slot's unseal policy (all parts optional).
#[derive(Serialize, Deserialize, Clone, Debug, Default, PartialEq, Eq)]
#[serde(deny_unknown_fields)]
pub struct SlotPolicy {
    /// OS user names allowed to unseal with the slot (empty: anyone).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// Unix seconds after which the slot no longer unseals.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<u64>,
    /// Failed unseals in a row after which the slot locks; attempts
    /// before that back off exponentially (1 s, 2 s, 4 s... up to an hour).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failures: Option<u32>,
}

impl SlotPolicy {
    /// True when the policy restricts nothing.
    pub fn is_empty(&self) -> bool {
        self.users.is_empty() && self.expires.is_none() && self.max_failures.is_none()
    }
}

/// A secret offered to unseal.
#[derive(Debug)]
pub enum Secret {
    /// A passphrase (passphrase slots).
    Passphrase(Passphrase),
    /// A recovery key (recovery slots).
    Recovery(RecoveryKey),
    /// Share files (the share slot they name).
    Shares(Vec<crate::ShareFile>),
    /// An age identity (escrow slots).
    Escrow(crate::EscrowIdentity),
}

impl Secret {
    fn kind(&self) -> SlotKind {
        match self {
            Secret::Passphrase(_) => SlotKind::Passphrase,
            Secret::Recovery(_) => SlotKind::Recovery,
            Secret::Shares(_) => SlotKind::Shares,
            Secret::Escrow(_) => SlotKind::Escrow,
        }
    }

    /// The slot a set of shares names (they must all name the same one).
    fn slot(&self) -> Result<Option<u32>> {
        let Secret::Shares(shares) = self else {
            return Ok(None);
        };
        let first = shares.first().map(|s| s.slot());
        if let Some(other) = shares.iter().find(|s| Some(s.slot()) != first) {
            return Err(Error::BadShare {
                path: other.path().to_path_buf(),
                reason: format!(
                    "it is a share of slot {}, the others of slot {}",
                    other.slot(),
                    first.unwrap_or(0)
                ),
            });
        }
        Ok(first)
    }
}

/// What the audit log says about a slot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SlotState {
    /// Last successful unseal (Unix seconds).
    pub last_use: Option<u64>,
    /// Failed unseals since the last success or unlock.
    pub failures: u32,
    /// Time of the last of them.
    pub last_failure: Option<u64>,
}

/// Each slot's state, from the audit log of `vault` (records that do not
/// parse are skipped; `pivault audit verify` reports them). Only signed
/// records lower a count (see `lockout`).
pub fn slot_states(vault: &Path) -> Result<BTreeMap<u32, SlotState>> {
    let ks = Keystore::load(vault)?;
    Ok(crate::lockout::counts(vault, &ks)?.states)
}

/// Why a slot may not be tried now, or `None`.
fn refusal(id: u32, p: &SlotPolicy, st: &SlotState, user: &str, now: u64) -> Option<String> {
    if !p.users.is_empty() && !p.users.iter().any(|u| u == user) {
        return Some(format!(
            "slot {id} may only be unsealed by {} (you are {user})",
            p.users.join(", ")
        ));
    }
    if let Some(exp) = p.expires.filter(|&e| now >= e) {
        return Some(format!(
            "slot {id} expired at {}; a holder of another slot can extend it with `pivault keys policy --slot {id} --expires DATE`",
            audit::rfc3339(exp)
        ));
    }
    if let Some(max) = p.max_failures {
        if st.failures >= max {
            return Some(format!(
                "slot {id} is locked after {} failed unseals in a row; a holder of another slot can run `pivault keys unlock VAULT --slot {id}`",
                st.failures
            ));
        }
        if st.failures > 0 {
            let wait = 1u64 << (st.failures - 1).min(12);
            let next = st.last_failure.unwrap_or(0) + wait.min(MAX_BACKOFF);
            if now < next {
                return Some(format!(
                    "slot {id} had {} failed unseals in a row; try again in {} s",
                    st.failures,
                    next - now
                ));
            }
        }
    }
    None
}

impl Keystore {
    /// The policy of slot `id` (`None`: unrestricted).
    pub fn policy(&self, id: u32) -> Result<Option<SlotPolicy>> {
        Ok(self.body.slots[self.slot_index(id)?].policy.clone())
    }

    /// Sets (or, with an empty policy, clears) the policy of slot `id`,
    /// and its role. Saves atomically. Admin slots only; the last admin
    /// slot cannot be made restricted.
    pub fn set_policy(
        &mut self,
        u: &mut Unsealed,
        id: u32,
        policy: SlotPolicy,
        role: Role,
    ) -> Result<()> {
        let pos = self.slot_index(id)?;
        self.require_admin(u, "set a policy")?;
        self.keep_an_admin(id, Some(role))?;
        self.begin_write(u)?;
        self.body.slots[pos].role = Some(role).filter(|r| *r != Role::Admin);
        let recorded = serde_json::to_value(&policy).unwrap_or_default();
        self.body.slots[pos].policy = (!policy.is_empty()).then_some(policy);
        self.save(u)?;
        self.audited(
            u,
            Event::new("policy")
                .slot(id)
                .detail("by_slot", u.slot)
                .detail("policy", recorded)
                .detail("role", role.name()),
        );
        Ok(())
    }

    /// IT recovery after unsealing with an escrow slot (`u`): gives
    /// passphrase slot `slot` (default: the lowest passphrase slot) the new
    /// passphrase, or adds a passphrase slot when the vault has none.
    /// Returns the slot that holds it. Recorded as `recovery`.
    pub fn recover(
        &mut self,
        u: &mut Unsealed,
        slot: Option<u32>,
        pass: &Passphrase,
        kdf: crate::KdfParams,
    ) -> Result<u32> {
        self.require_admin(u, "recover a passphrase slot")?;
        let target = slot.or_else(|| {
            self.body
                .slots
                .iter()
                .find(|s| s.kind == SlotKind::Passphrase)
                .map(|s| s.id)
        });
        let target = match target {
            Some(t) => {
                self.change_passphrase(u, t, pass, kdf)?;
                t
            }
            None => self.add_passphrase(u, pass, kdf, Role::Admin)?,
        };
        let kind = self
            .body
            .slots
            .get(self.slot_index(u.slot)?)
            .map_or("?", |s| s.kind.name());
        self.audited(
            u,
            Event::new("recovery")
                .slot(target)
                .detail("by_slot", u.slot)
                .detail("kind", kind),
        );
        Ok(target)
    }

    /// Unseals as the policy allows: the slots of the secret's kind (or
    /// slot `slot`) that the current OS user may use now are tried; the
    /// others are skipped with the reason. A failure (wrong secret, or
    /// every slot refused) is recorded in the audit log, unsigned, naming
    /// the slots tried. Success is not recorded here: the caller records
    /// it signed once it holds the keyring.
    pub fn unseal_as(&self, secret: &Secret, slot: Option<u32>, reason: &str) -> Result<Unsealed> {
        let vault = self.path.parent().unwrap_or(Path::new("."));
        let counts = crate::lockout::counts(vault, self)?;
        let states = &counts.states;
        let (user, _) = audit::os_user();
        let now = now();
        let kind = secret.kind();
        let slot = match secret.slot() {
            Ok(Some(s)) => Some(s),
            Ok(None) => slot,
            Err(e) => {
                let ev = Event::unseal_failed(slot, &format!("{reason}: {e}"));
                if let Err(e) = audit::append(vault, None, ev) {
                    tracing::warn!("could not record the failed unseal: {e}");
                }
                return Err(e);
            }
        };
        let mut refused = Vec::new();
        let mut tried = Vec::new();
        // Slots whose attempt was recorded as a failure beforehand.
        let mut counted: Vec<u32> = Vec::new();
        let mut found = None;
        let mut candidates = 0;
        for rec in self
            .body
            .slots
            .iter()
            .filter(|s| slot.is_none_or(|id| id == s.id))
        {
            if rec.kind != kind {
                continue;
            }
            candidates += 1;
            if let Some(why) = rec.policy.as_ref().and_then(|p| {
                refusal(
                    rec.id,
                    p,
                    &states.get(&rec.id).cloned().unwrap_or_default(),
                    &user,
                    now,
                )
            }) {
                refused.push(why);
                continue;
            }
            if rec
                .policy
                .as_ref()
                .is_some_and(|p| p.max_failures.is_some())
            {
                if let Some(cut) = &counts.cut {
                    refused.push(format!(
                        "slot {} has a lockout and {cut}, so its failed attempts cannot be counted: restore audit.log from a copy, or unseal with another slot and run `pivault keys unlock VAULT --slot {}`",
                        rec.id, rec.id
                    ));
                    continue;
                }
                // Counted before Argon2id runs; a success's signed record
                // resets it. An attempt that cannot be counted is refused.
                let pending = Event::unseal_failed(Some(rec.id), &format!("{reason}: attempt"))
                    .detail("tried", vec![rec.id])
                    .detail("pending", true);
                if let Err(e) = audit::append(vault, None, pending) {
                    refused.push(format!(
                        "slot {} has a lockout, and the attempt could not be recorded in the audit log ({e}), so it was not made: make audit.log writable",
                        rec.id
                    ));
                    continue;
                }
                counted.push(rec.id);
            }
            tried.push(rec.id);
            match self.try_slot(rec, secret) {
                Ok(Some(u)) => {
                    found = Some(Ok(u));
                    break;
                }
                Ok(None) => {}
                Err(e) => {
                    // Shares that are missing or not the slot's were
                    // refused before any key work: not a failed attempt.
                    if matches!(e, Error::NotEnoughShares { .. } | Error::BadShare { .. }) {
                        tried.pop();
                    }
                    found = Some(Err(e));
                    break;
                }
            }
        }
        let err = match found {
            Some(Ok(mut u)) => {
                u.reason = Some(reason.to_string());
                return Ok(u);
            }
            Some(Err(e)) => e,
            None => self.no_slot_opened(slot, kind, candidates, &tried, &refused)?,
        };
        let uncounted: Vec<u32> = tried
            .iter()
            .copied()
            .filter(|id| !counted.contains(id))
            .collect();
        let mut ev =
            Event::unseal_failed(slot, &format!("{reason}: {err}")).detail("tried", uncounted);
        if !counted.is_empty() {
            ev = ev.detail("counted_before", counted.clone());
        }
        if !refused.is_empty() {
            ev = ev.detail("refused", refused.clone());
        }
        if let Err(e) = audit::append(vault, None, ev) {
            tracing::warn!("could not record the failed unseal: {e}");
        }
        Err(err)
    }

    /// The error when no slot opened.
    fn no_slot_opened(
        &self,
        slot: Option<u32>,
        kind: SlotKind,
        candidates: usize,
        tried: &[u32],
        refused: &[String],
    ) -> Result<Error> {
        Ok(if candidates == 0 {
            match slot {
                Some(id) => {
                    self.slot_index(id)?;
                    Error::WrongSlotKind {
                        slot: id,
                        kind: kind.name(),
                    }
                }
                None => Error::NoSlotOfKind {
                    path: self.path.clone(),
                    kind: kind.name(),
                },
            }
        } else if tried.is_empty() {
            Error::Refused(format!("{}; no slot was tried", refused.join("; ")))
        } else if !refused.is_empty() {
            Error::Refused(format!(
                "{}; the {} did not open the other {} slot(s) ({})",
                refused.join("; "),
                kind.name(),
                kind.name(),
                tried
                    .iter()
                    .map(u32::to_string)
                    .collect::<Vec<_>>()
                    .join(", ")
            ))
        } else if kind == SlotKind::Recovery {
            Error::WrongRecoveryKey
        } else if kind == SlotKind::Escrow {
            Error::WrongIdentity
        } else if kind == SlotKind::Shares {
            Error::SharesParams("the shares combine, but not to the slot's secret".into())
        } else {
            Error::WrongPassphrase
        })
    }

    /// Records that slot `id` was unlocked (its failure count reset) by
    /// the holder of another slot, who unsealed as `u`, signed, and then
    /// writes the keystore so that its audit anchor moves past a log that
    /// was cut (see `lockout`).
    pub fn unlock_slot(&mut self, u: &mut Unsealed, id: u32) -> Result<()> {
        self.slot_index(id)?;
        if id == u.slot {
            return Err(Error::Refused(format!(
                "slot {id} cannot unlock itself; unseal with another slot's secret"
            )));
        }
        self.require_admin(u, "unlock a slot")?;
        let vault = self.path.parent().unwrap_or(Path::new("."));
        audit::append(
            vault,
            Some(&u.keyring),
            Event::new("slot-unlock").slot(id).detail("by_slot", u.slot),
        )?;
        self.refresh(u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_name_the_rule() {
        let p = SlotPolicy {
            users: vec!["alice".into()],
            expires: Some(100),
            max_failures: Some(3),
        };
        let st = SlotState::default();
        assert!(refusal(0, &p, &st, "bob", 50)
            .unwrap()
            .contains("only be unsealed by alice"));
        assert!(refusal(0, &p, &st, "alice", 100)
            .unwrap()
            .contains("expired"));
        assert_eq!(refusal(0, &p, &st, "alice", 50), None);
        let failing = SlotState {
            failures: 2,
            last_failure: Some(40),
            last_use: None,
        };
        assert!(refusal(0, &p, &failing, "alice", 41)
            .unwrap()
            .contains("try again in 1 s"));
        assert_eq!(refusal(0, &p, &failing, "alice", 42), None);
        let locked = SlotState {
            failures: 3,
            ..failing
        };
        assert!(refusal(0, &p, &locked, "alice", 99)
            .unwrap()
            .contains("locked"));
    }
}
