//! `pivault mount` and `pivault unmount`: argument checks, the vault lock,
//! unsealing, `--daemon`, and reporting how the mount ended.

use crate::cli::{MountArgs, UnmountArgs};
use crate::vaultcmd::unseal;
use crate::Outcome;
use anyhow::{bail, Context, Result};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::Duration;
use vault::VaultLock;
use vault_fuse::fs::{self as vfs, Daemon, MountConfig, MountEnd};

/// Checks the mountpoint: it exists, is an empty directory, is not a
/// mount already, and lies outside the vault. Returns its canonical path.
fn check_mountpoint(vault: &Path, mnt: &Path) -> Result<PathBuf> {
    let meta = match std::fs::metadata(mnt) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "{}: the mountpoint does not exist; create an empty directory first (mkdir -p {})",
            mnt.display(),
            mnt.display()
        ),
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => bail!(
            "{}: a dead mount is still there (its process ended); clear it with `fusermount3 -u -z {}`",
            mnt.display(),
            mnt.display()
        ),
        Err(e) => return Err(e).with_context(|| format!("cannot use {} as a mountpoint", mnt.display())),
    };
    if !meta.is_dir() {
        bail!("{}: the mountpoint is not a directory", mnt.display());
    }
    let canon =
        std::fs::canonicalize(mnt).with_context(|| format!("cannot resolve {}", mnt.display()))?;
    let vault_canon = std::fs::canonicalize(vault)
        .with_context(|| format!("{}: the vault directory does not exist", vault.display()))?;
    if canon.starts_with(&vault_canon) {
        bail!(
            "{}: the mountpoint is inside the vault directory {}; choose a directory outside the vault",
            mnt.display(),
            vault.display()
        );
    }
    if mounted_fs_type(&canon).is_some() {
        bail!(
            "{}: something is already mounted there; unmount it first (`pivault unmount {}`)",
            mnt.display(),
            mnt.display()
        );
    }
    let mut entries = std::fs::read_dir(&canon)
        .with_context(|| format!("cannot read the mountpoint {}", mnt.display()))?;
    if entries.next().is_some() {
        bail!(
            "{}: the mountpoint is not empty; mount on an empty directory so nothing is hidden",
            mnt.display()
        );
    }
    Ok(canon)
}

/// The filesystem type and source mounted exactly at `path` (from
/// /proc/self/mountinfo).
fn mounted_fs_type(path: &Path) -> Option<(String, String)> {
    let info = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
    let want = path.to_string_lossy();
    info.lines().rev().find_map(|line| {
        let mut fields = line.split(' ');
        let point = fields.nth(4)?;
        let point = pi_scan::mountinfo::unescape(point);
        if point != want {
            return None;
        }
        let mut rest = line.split(" - ").nth(1)?.split(' ');
        Some((rest.next()?.to_string(), rest.next()?.to_string()))
    })
}

/// Set at start-up: log lines also go to the journal.
pub static LOGS_IN_JOURNAL: std::sync::atomic::AtomicBool =
    std::sync::atomic::AtomicBool::new(false);

/// Whether a `--daemon` mount keeps its stderr once ready: where log lines
/// go when there is no journal, if it is a terminal or a file the user
/// chose (`2>>mount.log`). A pipe is let go (a caller reading it to its
/// end would wait for the mount to end), as is everything when the
/// journal has the logs.
fn keep_stderr() -> bool {
    if LOGS_IN_JOURNAL.load(std::sync::atomic::Ordering::Relaxed) {
        return false;
    }
    std::io::IsTerminal::is_terminal(&std::io::stderr())
        || std::fs::metadata("/proc/self/fd/2").is_ok_and(|m| m.is_file())
}

pub fn mount(a: MountArgs) -> Result<Outcome> {
    if !a.vault.is_dir() {
        bail!("{}: the vault directory does not exist", a.vault.display());
    }
    let mnt = check_mountpoint(&a.vault, &a.mountpoint)?;
    if !keys::Keystore::exists(&a.vault) {
        bail!(
            "{} is not a pivault vault (no keystore); create one with `pivault init`",
            a.vault.display()
        );
    }
    let lock = match VaultLock::acquire_for_mount(&a.vault, &mnt) {
        Ok(l) => Some(l),
        // A vault on read-only media cannot hold a lock file, and a
        // read-only mount changes nothing there.
        Err(vault::Error::Io { source, .. })
            if a.read_only
                && matches!(
                    source.raw_os_error(),
                    Some(libc::EROFS) | Some(libc::EACCES)
                ) =>
        {
            eprintln!(
                "pivault: warning: cannot create {} (read-only medium?); mounting read-only without the lock",
                a.vault.join(vault::LOCK_FILE).display()
            );
            None
        }
        Err(e) => return Err(e.into()),
    };
    let (ks, unsealed) = unseal(&a.vault, &a.unlock)?;
    let vault = vault::Vault::open(
        a.vault.clone(),
        vault_core::VaultCipher::new(unsealed.keyring.clone(), ks.suite()),
    )?;
    // A rotation while mounted rewrites the keystore: take its keyring in
    // (with the key this unseal opened, no passphrase needed) so new files
    // use the newest data-key version.
    let ks_path = keys::Keystore::path_in(&a.vault);
    let stamp = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let mut seen = stamp(&ks_path);
    // The mount's audit records are signed with the newest keyring it took
    // in: a rotation hands the log to a new signing key, and a record
    // signed with the old one after the hand-over would fail `audit
    // verify`. `reload` offers a keyring and `refused` (called right after
    // it, on this thread, when the mount refuses that keyring) puts the
    // one held before back.
    let audit_keyring = Rc::new(RefCell::new(vault.cipher().keyring().clone()));
    let before_offer: Rc<RefCell<Option<keys::Keyring>>> = Rc::new(RefCell::new(None));
    let (offered, held_before) = (audit_keyring.clone(), before_offer.clone());
    let reload = move || {
        let now = stamp(&ks_path);
        if now == seen {
            return None;
        }
        seen = now;
        match ks.reload_keyring(&unsealed) {
            Ok(k) => {
                *held_before.borrow_mut() = Some(offered.replace(k.clone()));
                Some(k)
            }
            Err(e) => {
                tracing::error!(
                    "{}: cannot take in the changed keystore: {e}",
                    ks_path.display()
                );
                None
            }
        }
    };
    let cfg = MountConfig {
        read_only: a.read_only,
        allow_other: a.allow_other,
        idle_seal: a.idle_seal.map(|m| Duration::from_secs_f64(m * 60.0)),
        threads: a.threads,
        writeback_cache: !a.no_writeback_cache,
    };
    let mut daemon = None;
    if a.daemon {
        match vfs::daemonize()? {
            parent @ Daemon::Parent(_) => {
                drop(lock);
                return match parent.wait() {
                    Ok(()) => {
                        eprintln!(
                            "Mounted {} at {} in the background; unmount with `pivault unmount {}`",
                            a.vault.display(),
                            a.mountpoint.display(),
                            a.mountpoint.display()
                        );
                        Ok(Outcome::Ok)
                    }
                    Err(msg) => bail!("{msg}"),
                };
            }
            child => {
                if let Some(l) = &lock {
                    l.record_mount(&mnt)?;
                }
                daemon = Some(child);
            }
        }
    }
    // The audit log records the mount's life; the FS takes the vault (and
    // drops its keys when it ends), so the records are signed with a copy
    // (`audit_keyring`, above) that is dropped right after the last one.
    let audit = |kind: &str| {
        crate::auditcmd::record(
            &a.vault,
            Some(&audit_keyring.borrow()),
            keys::audit::Event::new(kind).detail("mountpoint", mnt.display().to_string()),
        )
    };
    // A keystore whose keyring the mount refused (an older copy put back,
    // or another vault's): a signed, failed record.
    let refused = |e: &vault_core::Error| {
        if let Some(held) = before_offer.borrow_mut().take() {
            *audit_keyring.borrow_mut() = held;
        }
        let kind = match e {
            vault_core::Error::KeyringRollback { .. } => "keystore-rollback-refused",
            _ => "keystore-refused",
        };
        crate::auditcmd::record(
            &a.vault,
            Some(&audit_keyring.borrow()),
            keys::audit::Event::new(kind)
                .failed()
                .reason(e.to_string())
                .detail("mountpoint", mnt.display().to_string()),
        )
    };
    let shown = (a.vault.clone(), a.mountpoint.clone());
    let res = vfs::run(
        vault,
        &mnt,
        &cfg,
        || {
            audit("mount");
            match &mut daemon {
                Some(d) => d.ready(keep_stderr()),
                None => eprintln!(
                    "Mounted {} at {}{}; unmount with `pivault unmount {}` or Ctrl-C",
                    shown.0.display(),
                    shown.1.display(),
                    if cfg.read_only { " (read-only)" } else { "" },
                    shown.1.display()
                ),
            }
        },
        reload,
        refused,
    );
    let end = match res {
        Ok(end) => end,
        Err(e) => {
            if let Some(d) = &mut daemon {
                d.fail(&format!("pivault: error: {e}"));
            }
            return Err(e.into());
        }
    };
    audit(match end {
        MountEnd::Idle => "idle-seal",
        MountEnd::Signal(_) => "unmount-signal",
        MountEnd::Unmounted => "unmount",
    });
    drop(audit_keyring);
    drop(lock);
    match end {
        MountEnd::Unmounted => eprintln!("Unmounted {}", a.mountpoint.display()),
        MountEnd::Signal(_) => {
            eprintln!("Stopped by a signal; unmounted {}", a.mountpoint.display())
        }
        MountEnd::Idle => eprintln!(
            "No access for the --idle-seal time; unmounted {} and dropped the keys",
            a.mountpoint.display()
        ),
    }
    Ok(Outcome::Ok)
}

pub fn unmount(a: UnmountArgs) -> Result<Outcome> {
    let mnt = &a.mountpoint;
    let canon = std::fs::canonicalize(mnt).unwrap_or_else(|_| mnt.clone());
    let source = match mounted_fs_type(&canon) {
        Some((t, src)) if pi_scan::mountinfo::is_pivault(&t, &src) => src,
        Some((t, _)) => bail!(
            "{} is a {t} mount, not a pivault vault; use umount or fusermount3 -u",
            mnt.display()
        ),
        None => bail!("{} is not a mounted vault", mnt.display()),
    };
    vfs::unmount(&canon, a.lazy).map_err(|e| {
        let busy = matches!(&e, vault::Error::Io { source, .. }
            if source.kind() == std::io::ErrorKind::ResourceBusy || source.raw_os_error() == Some(libc::EBUSY));
        if busy {
            anyhow::anyhow!(
                "{}: the mount is busy (a program has a file or its working directory in it); close them and retry, or use `pivault unmount --lazy`",
                mnt.display()
            )
        } else {
            anyhow::Error::from(e)
        }
    })?;
    // Wait for the mount process to finish (drop its keys and release the
    // vault), so that the vault can be mounted again right away.
    if let Some(vault) = source.strip_prefix("pivault:") {
        let vault = pi_scan::mountinfo::unescape(vault);
        if !a.lazy && !vault::wait_unlocked(Path::new(&vault), Duration::from_secs(10)) {
            eprintln!(
                "pivault: warning: the mount process of {vault} is still running 10 s after the unmount"
            );
        }
    }
    eprintln!("Unmounted {}", mnt.display());
    Ok(Outcome::Ok)
}
