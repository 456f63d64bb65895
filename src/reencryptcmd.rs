//! `pivault reencrypt VAULT [--retire]`: moves every file to the newest
//! data-key version, then optionally retires the older versions and moves
//! the names to a new tree key (so a former key holder reads no current
//! name either).

use crate::auditcmd::record;
use crate::cli::ReencryptArgs;
use crate::vaultcmd::{print_damage, unseal};
use crate::Outcome;
use anyhow::{bail, Result};
use indicatif::ProgressBar;
use keys::audit::Event;
use vault::{census, reencrypt, ReencryptProgress, Vault, VaultLock};
use vault_core::VaultCipher;

/// Files, bytes, rate and ETA on a terminal; nothing otherwise.
struct Bar {
    pb: ProgressBar,
    files: std::sync::atomic::AtomicU64,
    total: std::sync::atomic::AtomicU64,
}

impl Bar {
    fn new() -> Bar {
        let pb = crate::progress::byte_bar("re-encrypting ");
        Bar {
            pb,
            files: 0.into(),
            total: 0.into(),
        }
    }

    fn show_files(&self) {
        use std::sync::atomic::Ordering::Relaxed;
        self.pb.set_message(format!(
            "{}/{} files",
            self.files.load(Relaxed),
            self.total.load(Relaxed)
        ));
    }
}

impl ReencryptProgress for Bar {
    fn start(&self, files: u64, bytes: u64) {
        self.total
            .store(files, std::sync::atomic::Ordering::Relaxed);
        self.pb.set_length(bytes);
        self.show_files();
    }
    fn bytes(&self, n: u64) {
        self.pb.inc(n);
    }
    fn file_done(&self) {
        self.files
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.show_files();
    }
}

pub fn run(a: ReencryptArgs) -> Result<Outcome> {
    if !a.vault.is_dir() {
        bail!("{}: the vault directory does not exist", a.vault.display());
    }
    let (mut ks, mut u) = unseal(&a.vault, &a.unlock)?;
    let lock = VaultLock::acquire(&a.vault)?;
    lock.record("reencrypt")?;
    if u.keyring.tree_move_pending() {
        if !a.retire {
            bail!(
                "{}: a move of the vault's names to a new key was interrupted; finish it with `pivault reencrypt {} --retire` (nothing was changed)",
                a.vault.display(),
                a.vault.display()
            );
        }
        eprintln!("Resuming the interrupted move of the names to a new key");
        move_names(&a.vault, &mut ks, &mut u)?;
        drop(lock);
        return Ok(Outcome::Ok);
    }
    let current = u.keyring.current_version();
    let vault = Vault::open(
        a.vault.clone(),
        VaultCipher::new(u.keyring.clone(), ks.suite()),
    )?;
    let bar = Bar::new();
    let started = std::time::Instant::now();
    let report = reencrypt(&vault, &lock, &bar)?;
    bar.pb.finish_and_clear();
    let secs = started.elapsed().as_secs_f64();
    record(
        &a.vault,
        Some(&u.keyring),
        Event::new("reencrypt")
            .slot(u.slot)
            .detail("version", current)
            .detail("files", report.rewritten)
            .detail("bytes", report.bytes)
            .detail("damaged", report.damaged.len()),
    );
    print_damage(&report.damaged);
    if report.leftovers_removed > 0 {
        eprintln!(
            "Removed {} temporary files left by an interrupted re-encryption",
            report.leftovers_removed
        );
    }
    eprintln!(
        "Re-encrypted {} files ({} bytes) to data key version {current} in {secs:.1}s ({:.1} MiB/s); {} files were already current",
        report.rewritten,
        report.bytes,
        report.bytes as f64 / (1 << 20) as f64 / secs.max(1e-9),
        report.current
    );
    if !report.damaged.is_empty() {
        eprintln!(
            "pivault: {} damaged entries were left as they are (listed above); run `pivault fsck`",
            report.damaged.len()
        );
    }
    if a.retire {
        let old: Vec<u32> = u
            .keyring
            .versions()
            .into_iter()
            .filter(|v| *v < current)
            .collect();
        if old.is_empty() {
            eprintln!("No older data keys to retire; the keyring holds only version {current}");
        } else {
            let c = census(&vault)?;
            let left = c.older_than(current);
            if left > 0 || !c.damaged.is_empty() {
                bail!(
                    "not retiring data key versions {old:?} of {}: {left} files still use them and {} entries are damaged (any of which may); run `pivault fsck`, restore or delete what it lists, and run `pivault reencrypt --retire` again (nothing was retired)",
                    a.vault.display(),
                    c.damaged.len()
                );
            }
            let gone = ks.retire_old_versions(&mut u)?;
            eprintln!(
                "Retired data key versions {gone:?} from {}; older copies of the vault's files no longer decrypt. Keystore backups made before now still hold those keys: destroy them and make a new backup (`pivault keys backup`).",
                a.vault.display()
            );
        }
        drop(vault);
        move_names(&a.vault, &mut ks, &mut u)?;
    }
    drop(lock);
    Ok(if report.damaged.is_empty() {
        Outcome::Ok
    } else {
        Outcome::Damaged
    })
}

/// Moves names, directory IDs, symlink targets and extended attributes to
/// a new tree key (resuming an interrupted move), then drops the old key
/// from the keyring. The caller holds the vault lock.
fn move_names(
    vault: &std::path::Path,
    ks: &mut keys::Keystore,
    u: &mut keys::Unsealed,
) -> Result<()> {
    let (old_gen, new_gen) = ks.begin_tree_move(u)?;
    let view = |g: u32| {
        u.keyring
            .tree_view(g)
            .map(|k| VaultCipher::new(k, ks.suite()))
            .ok_or_else(|| anyhow::anyhow!("the keyring lost tree key generation {g}"))
    };
    let (old, new) = (view(old_gen)?, view(new_gen)?);
    let report = vault::move_tree(vault, &old, &new)?;
    drop((old, new));
    for (host, what) in &report.damaged {
        eprintln!(
            "pivault: damaged, left as it was: {}: {what}",
            host.display()
        );
    }
    ks.finish_tree_move(u)?;
    eprintln!(
        "Moved {} names (and their directory IDs, symlink targets and {} extended attributes) to a new key; a keyring from before this no longer reads any name in {}",
        report.moved + report.already,
        report.xattrs,
        vault.display()
    );
    Ok(())
}
