//! `init`, `import`, `export` and `fsck`, and the unseal step they share.

use crate::cli::{Cipher, ExportArgs, FsckArgs, ImportArgs, InitArgs, Unlock};
use crate::progress::Bar;
use crate::{secrets, Outcome};
use anyhow::{bail, Result};
use keys::{KdfParams, Keystore, Unsealed};
use std::path::Path;
use vault::{Damage, Vault, VaultLock};
use vault_core::{Suite, VaultCipher};

/// Loads the keystore of `vault` and unseals it with the passphrase from
/// the usual sources.
pub fn unseal(vault: &Path, unlock: &Unlock) -> Result<(Keystore, Unsealed)> {
    if !vault.exists() {
        bail!("{}: the vault directory does not exist", vault.display());
    }
    let mut ks = Keystore::load(vault)?;
    let secret = match crate::keyscmd::secret_from(unlock) {
        Ok(Some(secret)) => secret,
        Ok(None) => keys::Secret::Passphrase(secrets::current(unlock)?),
        Err(e) => {
            crate::auditcmd::unseal_failed(vault, None, &e);
            return Err(e.into());
        }
    };
    // Slot policies are checked, and a failure recorded, by `unseal_as`.
    let mut u = ks.unseal_as(&secret, None, &crate::auditcmd::command_name())?;
    warn_weak(&ks, u.slot, u.weak_kdf);
    warn_weak_passphrases(&ks);
    tracing::info!(slot = u.slot, "unsealed {}", vault.display());
    crate::auditcmd::unsealed(vault, &mut ks, &mut u);
    Ok((ks, u))
}

pub(crate) fn warn_weak(ks: &Keystore, slot: u32, weak: bool) {
    if weak {
        eprintln!(
            "pivault: warning: slot {slot} of {} uses test-only Argon2id parameters; anyone who copies the vault can guess its passphrase quickly. Replace it with `pivault keys change-passphrase`.",
            ks.path().display()
        );
    }
}

/// Warns about every slot whose passphrase was accepted below the strength
/// rule: the vault is as easy to guess as its weakest slot. Called after
/// the unseal, when the keystore MAC vouches for the flags.
pub fn warn_weak_passphrases(ks: &Keystore) {
    let vault = ks.path().parent().unwrap_or(Path::new("."));
    for id in ks.weak_passphrase_slots() {
        eprintln!(
            "pivault: warning: slot {id} of {} has a weak passphrase (accepted with --allow-weak-passphrase); anyone with a copy of the keystore may guess it. Replace it: `pivault keys change-passphrase {} --slot {id}`",
            ks.path().display(),
            vault.display()
        );
    }
}

/// Unseals and opens the vault tree.
pub fn open_vault(vault: &Path, unlock: &Unlock) -> Result<Vault> {
    let (ks, u) = unseal(vault, unlock)?;
    Ok(Vault::open(
        vault.to_path_buf(),
        VaultCipher::new(u.keyring, ks.suite()),
    )?)
}

pub fn kdf_params(insecure: bool) -> KdfParams {
    if insecure {
        KdfParams::insecure_test()
    } else {
        KdfParams::default()
    }
}

pub fn init(a: InitArgs) -> Result<Outcome> {
    let vault = &a.vault;
    Vault::check_creatable(vault)?;
    let suite = match a.cipher {
        Some(Cipher::AesGcm) => Suite::Aes256Gcm,
        Some(Cipher::Xchacha) => Suite::XChaCha20Poly1305,
        None => Suite::preferred(),
    };
    let pass = secrets::for_init(a.passphrase_file.as_deref())?;
    let weak = keys::check_new_passphrase(&pass, vault, a.allow_weak_passphrase)?;
    let kdf = kdf_params(a.insecure_test_kdf);
    Vault::create(vault, suite, &pass, kdf)?;
    if a.insecure_test_kdf {
        eprintln!("pivault: warning: this vault's passphrase slot uses test-only Argon2id parameters; never keep real data in it");
    }
    if weak {
        eprintln!("pivault: warning: slot 0 has a weak passphrase (accepted with --allow-weak-passphrase); it is recorded in the slot and warned about on every unseal");
    }
    eprintln!(
        "Created vault {} ({}, Argon2id m={} KiB t={} p={}). Back up its keystore with `pivault keys backup`.",
        vault.display(),
        suite.name(),
        kdf.m_kib,
        kdf.t,
        kdf.p
    );
    Ok(Outcome::Ok)
}

/// Takes the vault's lock for an offline command, so it never runs beside a
/// mount (whose caches would not see its changes, and whose writes in flight
/// fsck would take for damage) or a re-encryption. A vault on read-only
/// media cannot be locked, but cannot change under us either: read-only
/// commands go ahead there.
fn lock_offline(vault: &Path, writes: bool) -> Result<Option<VaultLock>> {
    // Read-only commands never create the lock file (init makes it); a
    // vault without one cannot be mounted at this moment anyway.
    if !Keystore::exists(vault) || (!writes && !vault.join(vault::LOCK_FILE).exists()) {
        return Ok(None);
    }
    match VaultLock::acquire(vault) {
        Ok(l) => Ok(Some(l)),
        Err(vault::Error::Io { source, .. })
            if !writes
                && matches!(
                    source.kind(),
                    std::io::ErrorKind::ReadOnlyFilesystem | std::io::ErrorKind::PermissionDenied
                ) =>
        {
            Ok(None)
        }
        Err(e) => Err(e.into()),
    }
}

pub fn import(a: ImportArgs) -> Result<Outcome> {
    if !a.src_dir.is_dir() {
        bail!("{}: the source is not a directory", a.src_dir.display());
    }
    let _lock = lock_offline(&a.vault, true)?;
    let vault = open_vault(&a.vault, &a.unlock)?;
    let bar = Bar::new("importing");
    let report = vault::import(&vault, &a.src_dir, &bar)?;
    bar.finish();
    for (path, why) in &report.skipped {
        eprintln!("pivault: skipped {}: {why}", path.display());
    }
    eprintln!(
        "Imported {} files ({} bytes), {} directories, {} symlinks into {}",
        report.files,
        report.bytes,
        report.dirs,
        report.symlinks,
        a.vault.display()
    );
    Ok(Outcome::Ok)
}

/// Names every damaged entry on stderr, by plaintext path where known.
pub fn print_damage(damaged: &[Damage]) {
    for d in damaged {
        match &d.plain {
            Some(p) => eprintln!(
                "DAMAGED {} (ciphertext {}): {}",
                p.display(),
                d.host.display(),
                d.reason
            ),
            None => eprintln!("DAMAGED ciphertext {}: {}", d.host.display(), d.reason),
        }
    }
}

pub fn export(a: ExportArgs) -> Result<Outcome> {
    let _lock = lock_offline(&a.vault, false)?;
    let vault = open_vault(&a.vault, &a.unlock)?;
    let bar = Bar::new("exporting");
    let opts = vault::ExportOptions {
        keep_special_bits: a.keep_special_bits,
    };
    let report = vault::export(&vault, &a.dest_dir, opts, &bar)?;
    bar.finish();
    print_damage(&report.damaged);
    for (path, why) in &report.skipped {
        eprintln!("pivault: skipped {}: {why}", path.display());
    }
    if !report.special_bits_dropped.is_empty() {
        eprintln!(
            "pivault: {} exported entries had setuid, setgid or sticky bits in the vault; they were not restored (modes in the vault directory are not authenticated). If you trust that directory, export again with --keep-special-bits. First: {}",
            report.special_bits_dropped.len(),
            report.special_bits_dropped[0].display()
        );
    }
    eprintln!(
        "Exported {} files ({} bytes), {} directories, {} symlinks to {}",
        report.files,
        report.bytes,
        report.dirs,
        report.symlinks,
        a.dest_dir.display()
    );
    if report.damaged.is_empty() {
        Ok(Outcome::Ok)
    } else {
        eprintln!(
            "pivault: {} damaged entries were not exported (listed above); run `pivault fsck`",
            report.damaged.len()
        );
        Ok(Outcome::Damaged)
    }
}

/// One file a killed mount left half grown, on stderr.
fn print_interrupted(tag: &str, i: &vault::Interrupted, then: &str) {
    eprintln!(
        "{tag} {} (ciphertext {}): a mount was killed or crashed in a write that changed its size (its length gives {} bytes); {then} {} bytes",
        i.plain.display(),
        i.host.display(),
        i.size_by_length,
        i.size
    );
}

pub fn fsck(a: FsckArgs) -> Result<Outcome> {
    let _lock = lock_offline(&a.vault, a.repair)?;
    let vault = open_vault(&a.vault, &a.unlock)?;
    let mut undone = Vec::new();
    if a.repair {
        let found = vault::undo_interrupted_writes(&vault, true)?;
        for i in &found.interrupted {
            print_interrupted("UNDONE", i, "undone: it reads again as");
        }
        undone = found.interrupted;
    }
    let bar = Bar::new("checking");
    let report = vault::fsck(&vault, &bar)?;
    bar.finish();
    let listed = |i: &vault::Interrupted| {
        serde_json::json!({
            "path": i.plain.to_string_lossy(),
            "ciphertext": i.host.to_string_lossy(),
            "size": i.size,
            "size_by_length": i.size_by_length,
        })
    };
    if a.json {
        let damaged: Vec<_> = report
            .damaged
            .iter()
            .map(|d| {
                serde_json::json!({
                    "path": d.plain.as_ref().map(|p| p.to_string_lossy()),
                    "ciphertext": d.host.to_string_lossy(),
                    "reason": d.reason,
                })
            })
            .collect();
        let out = serde_json::json!({
            "files": report.files, "dirs": report.dirs, "symlinks": report.symlinks,
            "bytes": report.bytes, "damaged": damaged,
            "interrupted": report.interrupted.iter().map(listed).collect::<Vec<_>>(),
            "undone": undone.iter().map(listed).collect::<Vec<_>>(),
        });
        println!("{out}");
    } else {
        print_damage(&report.damaged);
        for i in &report.interrupted {
            print_interrupted("INTERRUPTED", i, "once undone, it reads again as");
        }
        if !report.interrupted.is_empty() {
            let how = if vault::unclean_end(&a.vault) {
                "the next read-write `pivault mount` undoes them, or"
            } else {
                "undo them with"
            };
            eprintln!(
                "pivault: {} files hold a write a mount did not finish; {how} `pivault fsck --repair {}`",
                report.interrupted.len(),
                a.vault.display()
            );
        }
        println!(
            "{}: {} files ({} bytes), {} directories, {} symlinks checked; {} damaged",
            a.vault.display(),
            report.files,
            report.bytes,
            report.dirs,
            report.symlinks,
            report.damaged.len()
        );
    }
    Ok(if report.is_clean() {
        Outcome::Ok
    } else {
        Outcome::Damaged
    })
}
