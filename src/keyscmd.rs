//! `pivault keys ...`: slot management and keystore backup.

use crate::cli::KeysCommand;
use crate::cli::Unlock;
use crate::vaultcmd::{kdf_params, unseal};
use crate::{secrets, Outcome};
use anyhow::Result;
use keys::{EscrowIdentity, Keystore, RecoveryKey, Role, Secret, ShareFile, SlotPolicy};

pub fn run(cmd: KeysCommand) -> Result<Outcome> {
    match cmd {
        KeysCommand::List { vault, json } => {
            let ks = Keystore::load(&vault)?;
            list(&ks, json)?;
        }
        KeysCommand::AddPassphrase {
            vault,
            restricted,
            unlock,
            new,
        } => {
            let (mut ks, mut u) = unseal(&vault, &unlock)?;
            let pass = secrets::new_passphrase(&new)?;
            let weak = check_new(&pass, &vault, &new)?;
            let role = if restricted {
                Role::Restricted
            } else {
                Role::Admin
            };
            let id = ks.add_passphrase(&mut u, &pass, kdf_params(new.insecure_test_kdf), role)?;
            eprintln!("Added passphrase slot {id} to {}", vault.display());
            warn_recorded(id, weak);
        }
        KeysCommand::ChangePassphrase {
            vault,
            slot,
            unlock,
            new,
        } => {
            let (mut ks, mut u) = unseal(&vault, &unlock)?;
            let slot = slot.unwrap_or(u.slot);
            let pass = secrets::new_passphrase(&new)?;
            let weak = check_new(&pass, &vault, &new)?;
            ks.change_passphrase(&mut u, slot, &pass, kdf_params(new.insecure_test_kdf))?;
            eprintln!(
                "Changed the passphrase of slot {slot} of {}",
                vault.display()
            );
            warn_recorded(slot, weak);
        }
        KeysCommand::Remove {
            vault,
            slot,
            unlock,
        } => {
            let (mut ks, mut u) = unseal(&vault, &unlock)?;
            ks.remove_slot(&mut u, slot)?;
            eprintln!("Removed slot {slot} from {}", vault.display());
        }
        KeysCommand::Rotate { vault, unlock } => {
            let (mut ks, mut u) = unseal(&vault, &unlock)?;
            let version = ks.rotate(&mut u)?;
            eprintln!(
                "Added data key version {version} to {}; new and rewritten files use it. Run `pivault reencrypt {} --retire` to move the older files and retire the old keys. A running mount keeps writing under the version it unsealed until it is remounted.",
                vault.display(),
                vault.display()
            );
        }
        KeysCommand::AddRecovery { vault, unlock } => {
            let (mut ks, mut u) = unseal(&vault, &unlock)?;
            let (id, key) = ks.add_recovery(&mut u)?;
            println!("{}", key.encode().as_str());
            eprintln!(
                "Added recovery slot {id} to {}. The line above is its recovery key, shown only this once: write it down or print it and keep it offline, away from the laptop (a safe, the IT escrow). It opens the vault like a passphrase: `--recovery-key-file FILE` or PIVAULT_RECOVERY_KEY. Typos are caught by its checksum. If it is lost or exposed, remove slot {id} (`pivault keys remove --slot {id}`) and add a new one.",
                vault.display()
            );
        }
        KeysCommand::AddShares {
            vault,
            threshold,
            shares,
            out_dir,
            unlock,
        } => {
            let (mut ks, mut u) = unseal(&vault, &unlock)?;
            let (id, files) = ks.add_shares(&mut u, threshold, shares, &out_dir)?;
            for f in &files {
                println!("{}", f.display());
            }
            eprintln!(
                "Added share slot {id} to {}: any {threshold} of the {shares} share files listed above unseal it (`--share-file F`, once per share); fewer reveal nothing. Give each file to a different person, keep them apart, and delete them from {}.",
                vault.display(),
                out_dir.display()
            );
        }
        KeysCommand::AddEscrow {
            vault,
            recipient,
            unlock,
        } => {
            let (mut ks, mut u) = unseal(&vault, &unlock)?;
            let id = ks.add_escrow(&mut u, &recipient)?;
            eprintln!(
                "Added escrow slot {id} to {} for {}: the holder of that age identity can run `pivault keys recover {} --identity FILE` to set a new passphrase.",
                vault.display(),
                recipient.trim(),
                vault.display()
            );
        }
        KeysCommand::Recover {
            vault,
            identity,
            slot,
            new,
        } => recover(&vault, &identity, slot, &new)?,
        KeysCommand::Policy {
            vault,
            slot,
            users,
            expires,
            max_failures,
            clear,
            admin,
            unlock,
        } => {
            let (mut ks, mut u) = unseal(&vault, &unlock)?;
            let mut p = if clear {
                SlotPolicy::default()
            } else {
                ks.policy(slot)?.unwrap_or_default()
            };
            if let Some(users) = users {
                p.users = users.into_iter().filter(|u| !u.is_empty()).collect();
            }
            if let Some(e) = expires {
                p.expires = match e.as_str() {
                    "never" => None,
                    date => Some(end_of(date)?),
                };
            }
            if let Some(n) = max_failures {
                p.max_failures = (n > 0).then_some(n);
            }
            let role = if admin { Role::Admin } else { Role::Restricted };
            ks.set_policy(&mut u, slot, p.clone(), role)?;
            eprintln!(
                "Slot {slot} of {} ({}): {}",
                vault.display(),
                role.name(),
                policy_text(Some(&p))
            );
        }
        KeysCommand::UnlockSlot {
            vault,
            slot,
            unlock,
        } => {
            let (mut ks, mut u) = unseal(&vault, &unlock)?;
            ks.unlock_slot(&mut u, slot)?;
            eprintln!(
                "Unlocked slot {slot} of {} (its failed-unseal count is reset)",
                vault.display()
            );
        }
        KeysCommand::Backup { vault, file } => {
            let ks = Keystore::load(&vault)?;
            ks.backup(&file)?;
            eprintln!(
                "Wrote a copy of {} to {}. Store it away from the vault; it opens with the same passphrases.",
                ks.path().display(),
                file.display()
            );
        }
    }
    Ok(Outcome::Ok)
}

/// The secret to unseal with when it is not a passphrase: share files
/// (`--share-file`), or a recovery key (`--recovery-key-file`, else
/// `PIVAULT_RECOVERY_KEY` when no passphrase file is named). A damaged
/// share or a mistyped recovery key is an error here, before any key work.
pub fn secret_from(unlock: &Unlock) -> Result<Option<Secret>, keys::Error> {
    if !unlock.share_file.is_empty() {
        let shares = unlock
            .share_file
            .iter()
            .map(|f| ShareFile::read(f))
            .collect::<Result<Vec<_>, _>>()?;
        return Ok(Some(Secret::Shares(shares)));
    }
    Ok(recovery_key(unlock)?.map(Secret::Recovery))
}

fn recovery_key(unlock: &Unlock) -> Result<Option<RecoveryKey>, keys::Error> {
    let text = match (&unlock.recovery_key_file, &unlock.passphrase_file) {
        (Some(f), _) => {
            zeroize::Zeroizing::new(std::fs::read_to_string(f).map_err(|e| keys::Error::Io {
                path: f.clone(),
                source: e,
            })?)
        }
        (None, None) => match crate::secrets::env_secret("PIVAULT_RECOVERY_KEY") {
            Some(v) => zeroize::Zeroizing::new(String::from_utf8_lossy(&v).into_owned()),
            None => return Ok(None),
        },
        (None, Some(_)) => return Ok(None),
    };
    RecoveryKey::parse(&text).map(Some)
}

/// The strength rule for a new passphrase, before anything is written:
/// the refusal, or whether the slot will record an accepted weak one.
fn check_new(
    pass: &keys::Passphrase,
    vault: &std::path::Path,
    new: &crate::cli::NewSecret,
) -> Result<bool> {
    Ok(keys::check_new_passphrase(
        pass,
        vault,
        new.allow_weak_passphrase,
    )?)
}

fn warn_recorded(slot: u32, weak: bool) {
    if weak {
        eprintln!("pivault: warning: slot {slot} has a weak passphrase (accepted with --allow-weak-passphrase); it is recorded in the slot and warned about on every unseal");
    }
}

/// `keys recover`: unseal with the escrow identity, then give a passphrase
/// slot a new passphrase (adding one when the vault has none).
fn recover(
    vault: &std::path::Path,
    identity: &std::path::Path,
    slot: Option<u32>,
    new: &crate::cli::NewSecret,
) -> Result<()> {
    if !vault.is_dir() {
        anyhow::bail!("{}: the vault directory does not exist", vault.display());
    }
    let mut ks = Keystore::load(vault)?;
    let id = match EscrowIdentity::read(identity) {
        Ok(id) => id,
        Err(e) => {
            crate::auditcmd::unseal_failed(vault, None, &e);
            return Err(e.into());
        }
    };
    let mut u = ks.unseal_as(&Secret::Escrow(id), None, "keys recover")?;
    crate::vaultcmd::warn_weak_passphrases(&ks);
    crate::auditcmd::unsealed(vault, &mut ks, &mut u);
    let pass = crate::secrets::new_passphrase(new)?;
    let weak = check_new(&pass, vault, new)?;
    let target = ks.recover(&mut u, slot, &pass, kdf_params(new.insecure_test_kdf))?;
    eprintln!(
        "Recovered {} with escrow slot {}: passphrase slot {target} has the new passphrase.",
        vault.display(),
        u.slot
    );
    warn_recorded(target, weak);
    Ok(())
}

/// The end of a day given as a date (23:59:59 UTC), or an exact time.
fn end_of(date: &str) -> Result<u64> {
    let t = crate::auditcmd::parse_since(date)?;
    Ok(if date.len() == 10 { t + 86_399 } else { t })
}

/// A policy in words, for `keys list` and messages.
fn policy_text(p: Option<&SlotPolicy>) -> String {
    let Some(p) = p.filter(|p| !p.is_empty()) else {
        return "unrestricted".to_string();
    };
    let mut parts = Vec::new();
    if !p.users.is_empty() {
        parts.push(format!("users={}", p.users.join(",")));
    }
    if let Some(e) = p.expires {
        parts.push(format!("expires={}", date(e)));
    }
    if let Some(n) = p.max_failures {
        parts.push(format!("max-failures={n}"));
    }
    parts.join(" ")
}

fn list(ks: &Keystore, json: bool) -> Result<()> {
    let versions = ks.data_key_versions();
    let current = versions.iter().copied().max().unwrap_or(0);
    let vault = ks.path().parent().unwrap_or(std::path::Path::new("."));
    let states = keys::slot_states(vault)?;
    let policies: Vec<Option<SlotPolicy>> = ks
        .slots()
        .iter()
        .map(|s| ks.policy(s.id))
        .collect::<Result<_, _>>()?;
    let locked = |id: u32, p: &Option<SlotPolicy>| {
        let failures = states.get(&id).map_or(0, |s| s.failures);
        p.as_ref()
            .and_then(|p| p.max_failures)
            .is_some_and(|m| failures >= m)
    };
    if json {
        let slots: Vec<_> = ks
            .slots()
            .iter()
            .zip(&policies)
            .map(|(s, p)| {
                let st = states.get(&s.id).cloned().unwrap_or_default();
                serde_json::json!({
                    "id": s.id,
                    "kind": s.kind.name(),
                    "role": s.role.name(),
                    "created": s.created,
                    "last_use": st.last_use,
                    "failures": st.failures,
                    "locked": locked(s.id, p),
                    "policy": p,
                    "kdf": match s.kdf {
                        Some(k) => serde_json::json!({"algorithm": "argon2id", "m_kib": k.m_kib, "t": k.t, "p": k.p, "test_only": k.test_only}),
                        None => serde_json::json!({"algorithm": "hkdf-sha256"}),
                    },
                    "threshold": s.shares.map(|x| x.0),
                    "shares": s.shares.map(|x| x.1),
                    "recipient": s.escrow_recipient,
                    "weak_passphrase": s.weak_passphrase,
                })
            })
            .collect();
        let data_keys: Vec<_> = versions
            .iter()
            .map(|v| serde_json::json!({"version": v, "current": *v == current}))
            .collect();
        println!(
            "{}",
            serde_json::json!({"suite": ks.suite().name(), "slots": slots, "data_keys": data_keys})
        );
        return Ok(());
    }
    println!("cipher: {}", ks.suite().name());
    println!(
        "SLOT  KIND        ROLE        CREATED               LAST USE              KDF; POLICY"
    );
    for (s, p) in ks.slots().iter().zip(&policies) {
        let st = states.get(&s.id).cloned().unwrap_or_default();
        let last = st.last_use.map_or_else(|| "never".to_string(), date);
        let mut policy = policy_text(p.as_ref());
        if locked(s.id, p) {
            policy.push_str(&format!(" LOCKED after {} failures", st.failures));
        } else if st.failures > 0 {
            policy.push_str(&format!(" ({} failures in a row)", st.failures));
        }
        let mut kdf = match s.kdf {
            Some(k) if k.test_only => format!(
                "argon2id m={}KiB t={} p={}  TEST-ONLY, INSECURE",
                k.m_kib, k.t, k.p
            ),
            Some(k) => format!("argon2id m={}KiB t={} p={}", k.m_kib, k.t, k.p),
            None => match (&s.shares, &s.escrow_recipient) {
                (Some((k, n)), _) => format!("any {k} of {n} shares"),
                (_, Some(r)) => format!("age {r}"),
                _ => "hkdf-sha256 (random 256-bit key)".to_string(),
            },
        };
        if s.weak_passphrase {
            kdf.push_str("  WEAK PASSPHRASE (accepted with --allow-weak-passphrase)");
        }
        if s.legacy {
            kdf.push_str("  OLDER FORMAT (upgraded when its holder next unseals; until then removing or rotating keys is refused)");
        }
        println!(
            "{:<5} {:<11} {:<11} {:<21} {last:<21} {kdf}; {policy}",
            s.id,
            s.kind.name(),
            s.role.name(),
            date(s.created)
        );
    }
    let list: Vec<String> = versions
        .iter()
        .map(|v| {
            if *v == current {
                format!("{v} (current)")
            } else {
                v.to_string()
            }
        })
        .collect();
    println!("data keys: {}", list.join(", "));
    Ok(())
}

/// An RFC 3339 UTC timestamp for seconds since the Unix epoch.
fn date(secs: u64) -> String {
    let t = std::time::UNIX_EPOCH + std::time::Duration::from_secs(secs);
    humantime::format_rfc3339_seconds(t).to_string()
}
