//! One mount of a vault, from the checks before it to the records after
//! it: the rules a mountpoint must meet, the vault lock, taking in a
//! keystore rotated while mounted (and signing the audit log with the
//! newest keyring), and the audit records of the mount's life. The FUSE
//! session itself is [`crate::fs::run`]; the CLI unseals, prints and
//! decides about `--daemon`.

use crate::fs::{self as vfs, MountConfig, MountEnd};
use keys::audit::Event;
use keys::{Keyring, Keystore, Unsealed};
use std::cell::RefCell;
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::time::SystemTime;
use vault::VaultLock;

/// Why a mount cannot start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MountError {
    /// The vault directory does not exist.
    #[error("{0}: the vault directory does not exist")]
    NoVault(PathBuf),
    /// The directory holds no keystore.
    #[error("{0} is not a pivault vault (no keystore)")]
    NotAVault(PathBuf),
    /// The mountpoint does not exist.
    #[error("{0}: the mountpoint does not exist")]
    NoMountpoint(PathBuf),
    /// A mount whose process ended is still attached there.
    #[error("{0}: a dead mount is still there (its process ended)")]
    DeadMount(PathBuf),
    /// The mountpoint is not a directory.
    #[error("{0}: the mountpoint is not a directory")]
    NotADirectory(PathBuf),
    /// The mountpoint lies inside the vault directory.
    #[error("{mountpoint}: the mountpoint is inside the vault directory {vault}")]
    InsideVault {
        /// The mountpoint.
        mountpoint: PathBuf,
        /// The vault directory.
        vault: PathBuf,
    },
    /// Something is mounted there already.
    #[error("{0}: something is already mounted there")]
    AlreadyMounted(PathBuf),
    /// The mountpoint has entries the mount would hide.
    #[error("{0}: the mountpoint is not empty")]
    NotEmpty(PathBuf),
    /// A host operation on the mountpoint failed.
    #[error("cannot use {path} as a mountpoint: {source}")]
    Io {
        /// The mountpoint.
        path: PathBuf,
        /// The OS error.
        #[source]
        source: std::io::Error,
    },
    /// The vault, its lock or the mount session failed.
    #[error(transparent)]
    Vault(#[from] vault::Error),
}

/// Checks the mountpoint: it exists, is an empty directory, is not a
/// mount already, and lies outside the vault. Returns its canonical path.
pub fn check_mountpoint(vault: &Path, mnt: &Path) -> Result<PathBuf, MountError> {
    let io = |source| MountError::Io {
        path: mnt.to_path_buf(),
        source,
    };
    let meta = match std::fs::metadata(mnt) {
        Ok(m) => m,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(MountError::NoMountpoint(mnt.to_path_buf()))
        }
        Err(e) if e.raw_os_error() == Some(libc::ENOTCONN) => {
            return Err(MountError::DeadMount(mnt.to_path_buf()))
        }
        Err(e) => return Err(io(e)),
    };
    if !meta.is_dir() {
        return Err(MountError::NotADirectory(mnt.to_path_buf()));
    }
    let canon = std::fs::canonicalize(mnt).map_err(io)?;
    let vault_canon =
        std::fs::canonicalize(vault).map_err(|_| MountError::NoVault(vault.to_path_buf()))?;
    if canon.starts_with(&vault_canon) {
        return Err(MountError::InsideVault {
            mountpoint: mnt.to_path_buf(),
            vault: vault.to_path_buf(),
        });
    }
    if vault::mountinfo::mounted_at(&canon).is_some() {
        return Err(MountError::AlreadyMounted(mnt.to_path_buf()));
    }
    if std::fs::read_dir(&canon).map_err(io)?.next().is_some() {
        return Err(MountError::NotEmpty(mnt.to_path_buf()));
    }
    Ok(canon)
}

/// A vault checked, locked, unsealed and opened, ready to be mounted.
pub struct Prepared {
    vault_dir: PathBuf,
    mountpoint: PathBuf,
    lock: Option<VaultLock>,
    keystore: Keystore,
    unsealed: Unsealed,
    vault: vault::Vault,
    read_only: bool,
}

impl Prepared {
    /// Checks the vault and the mountpoint, takes the vault's lock, then
    /// unseals with `unseal` (which prompts, so it runs last) and opens the
    /// tree. With `read_only`, a vault on read-only media that cannot hold
    /// a lock file is mounted without one ([`Prepared::unlocked`] tells).
    pub fn new<E: From<MountError>>(
        vault_dir: &Path,
        mountpoint: &Path,
        read_only: bool,
        unseal: impl FnOnce() -> Result<(Keystore, Unsealed), E>,
    ) -> Result<Prepared, E> {
        if !vault_dir.is_dir() {
            return Err(MountError::NoVault(vault_dir.to_path_buf()).into());
        }
        let mnt = check_mountpoint(vault_dir, mountpoint)?;
        if !Keystore::exists(vault_dir) {
            return Err(MountError::NotAVault(vault_dir.to_path_buf()).into());
        }
        let lock = match VaultLock::acquire_for_mount(vault_dir, &mnt) {
            Ok(l) => Some(l),
            // A read-only mount changes nothing in the vault.
            Err(vault::Error::Io { source, .. })
                if read_only
                    && matches!(
                        source.raw_os_error(),
                        Some(libc::EROFS) | Some(libc::EACCES)
                    ) =>
            {
                None
            }
            Err(e) => return Err(MountError::from(e).into()),
        };
        let (keystore, unsealed) = unseal()?;
        let vault = vault::Vault::open(
            vault_dir.to_path_buf(),
            vault_core::VaultCipher::new(unsealed.keyring.clone(), keystore.suite()),
        )
        .map_err(MountError::from)?;
        Ok(Prepared {
            vault_dir: vault_dir.to_path_buf(),
            mountpoint: mnt,
            lock,
            keystore,
            unsealed,
            vault,
            read_only,
        })
    }

    /// True when the vault's lock could not be taken (read-only media and
    /// a read-only mount): nothing stops another tool from writing to the
    /// vault meanwhile.
    pub fn unlocked(&self) -> bool {
        self.lock.is_none()
    }

    /// The canonical mountpoint.
    pub fn mountpoint(&self) -> &Path {
        &self.mountpoint
    }

    /// After `--daemon` forked: the lock file names this (the mount)
    /// process, so `pivault unmount` waits for it, not for the parent.
    pub fn adopt_lock(&self) -> Result<(), MountError> {
        if let Some(l) = &self.lock {
            l.record_mount(&self.mountpoint)?;
        }
        Ok(())
    }

    /// Drops the lock without mounting (the parent of `--daemon`).
    pub fn release(self) {}

    /// Mounts and serves until unmounted, signalled or idle; `on_ready`
    /// runs once the folder is mounted. The vault's audit log records the
    /// mount and how it ended, and a keystore rotated meanwhile is taken
    /// in (new files get the newest data-key version).
    pub fn run(self, cfg: &MountConfig, on_ready: impl FnOnce()) -> Result<MountEnd, MountError> {
        let Prepared {
            vault_dir,
            mountpoint,
            lock,
            keystore,
            unsealed,
            vault,
            read_only,
        } = self;
        let ks_path = Keystore::path_in(&vault_dir);
        let stamp = |p: &Path| -> Option<SystemTime> {
            std::fs::metadata(p).and_then(|m| m.modified()).ok()
        };
        let mut seen = stamp(&ks_path);
        // The mount's audit records are signed with the newest keyring it
        // took in: a rotation hands the log to a new signing key, and a
        // record signed with the old one after the hand-over would fail
        // `audit verify`. `reload` offers a keyring; `refused` (called
        // right after it, on this thread, when the mount refuses that
        // keyring) puts the one held before back.
        let audit_keyring = Rc::new(RefCell::new(vault.cipher().keyring().clone()));
        let before_offer: Rc<RefCell<Option<Keyring>>> = Rc::new(RefCell::new(None));
        let (offered, held_before) = (audit_keyring.clone(), before_offer.clone());
        let reload = move || {
            let now = stamp(&ks_path);
            if now == seen {
                return None;
            }
            seen = now;
            match keystore.reload_keyring(&unsealed) {
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
        let record = |event: Event| {
            let event = event.detail("mountpoint", mountpoint.display().to_string());
            if let Err(e) = keys::audit::append(&vault_dir, Some(&audit_keyring.borrow()), event) {
                tracing::warn!(
                    "could not write the audit log {}: {e}",
                    keys::audit::path_in(&vault_dir).display()
                );
            }
        };
        // A keystore whose keyring the mount refused (an older copy put
        // back, or another vault's): a signed, failed record.
        let refused = |e: &vault_core::Error| {
            if let Some(held) = before_offer.borrow_mut().take() {
                *audit_keyring.borrow_mut() = held;
            }
            let kind = match e {
                vault_core::Error::KeyringRollback { .. } => "keystore-rollback-refused",
                _ => "keystore-refused",
            };
            record(Event::new(kind).failed().reason(e.to_string()));
        };
        // A read-write mount marks the vault while it runs; finding the
        // mark of one that did not unmount, it first undoes the writes
        // that one left half done (vault::recover).
        let writes = lock.is_some() && !read_only;
        if vault::unclean_end(&vault_dir) {
            if writes {
                recover(&vault, &record)?;
            } else {
                tracing::warn!(
                    "the last mount of {} did not end cleanly; a read-only mount cannot undo the writes it left half done (files it was growing may fail to read): mount it read-write once",
                    vault_dir.display()
                );
            }
        }
        let mark = if writes {
            Some(vault::MountMark::set(&vault_dir)?)
        } else {
            None
        };
        let end = vfs::run(
            vault,
            &mountpoint,
            cfg,
            || {
                record(Event::new("mount"));
                on_ready();
            },
            reload,
            refused,
        );
        // Also after a session that failed: no write is half done unless
        // the process dies in one, and a mark left would cost the next
        // mount a needless sweep.
        if let Some(mark) = mark {
            if let Err(e) = mark.clear() {
                tracing::warn!("{e} (the next mount will look for interrupted writes)");
            }
        }
        let end = end?;
        record(Event::new(match end {
            MountEnd::Idle => "idle-seal",
            MountEnd::Signal(_) => "unmount-signal",
            MountEnd::Unmounted => "unmount",
        }));
        // The keys go before the lock: a tool waiting for the lock finds
        // no process holding them.
        drop(audit_keyring);
        drop(lock);
        Ok(end)
    }
}

/// How much longer a service manager should wait for readiness while the
/// sweep after an unclean end runs (30 minutes).
const RECOVERY_START_USEC: u32 = 30 * 60 * 1_000_000;

/// Undoes the interrupted writes of a mount that did not end cleanly,
/// saying what it did in the log and in the audit log.
fn recover(vault: &vault::Vault, record: &impl Fn(Event)) -> Result<(), MountError> {
    tracing::info!("the last mount did not end cleanly: looking for writes it left half done");
    // Under a unit the sweep comes before READY=1: ask for more time, so
    // a long one on a large vault is not taken for a start that hangs.
    if let Err(e) = sd_notify::notify(&[
        sd_notify::NotifyState::Status("undoing writes the last mount left half done"),
        sd_notify::NotifyState::ExtendTimeoutUsec(RECOVERY_START_USEC),
    ]) {
        tracing::debug!("service manager notification not sent: {e}");
    }
    let found = vault::undo_interrupted_writes(vault, true)?;
    for i in &found.interrupted {
        tracing::warn!(
            "{}: undid a write the last mount did not finish (its length gave {} bytes); it reads as its {} bytes",
            i.plain.display(),
            i.size_by_length,
            i.size
        );
    }
    tracing::info!(
        "recovery: {} files examined, {} interrupted writes undone",
        found.files,
        found.interrupted.len()
    );
    record(
        Event::new("interrupted-writes-undone")
            .detail("files", found.files.to_string())
            .detail("undone", found.interrupted.len().to_string()),
    );
    Ok(())
}
