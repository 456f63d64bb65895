//! `pivault mount` and `pivault unmount`: unsealing, `--daemon`, and
//! saying what happened and what to type next. A mount's life (checks,
//! lock, keystore watch, audit records) is `vault_fuse::mount`.

use crate::cli::{MountArgs, UnmountArgs};
use crate::vaultcmd::unseal;
use crate::Outcome;
use anyhow::{bail, Result};
use std::path::Path;
use std::time::Duration;
use vault_fuse::fs::{self as vfs, Daemon, MountConfig, MountEnd};
use vault_fuse::{MountError, Prepared};

/// What to type next, for each reason a mount cannot start.
fn hint(e: MountError) -> anyhow::Error {
    let next = match &e {
        MountError::NotAVault(_) => "create one with `pivault init`".to_string(),
        MountError::NoMountpoint(m) => {
            format!("create an empty directory first (mkdir -p {})", m.display())
        }
        MountError::DeadMount(m) => format!("clear it with `fusermount3 -u -z {}`", m.display()),
        MountError::InsideVault { .. } => "choose a directory outside the vault".into(),
        MountError::AlreadyMounted(m) => {
            format!("unmount it first (`pivault unmount {}`)", m.display())
        }
        MountError::NotEmpty(_) => "mount on an empty directory so nothing is hidden".into(),
        _ => return e.into(),
    };
    anyhow::anyhow!("{e}; {next}")
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
    let prepared = Prepared::new(&a.vault, &a.mountpoint, a.read_only, || {
        unseal(&a.vault, &a.unlock)
    })
    .map_err(|e| match e.downcast::<MountError>() {
        Ok(m) => hint(m),
        Err(e) => e,
    })?;
    if prepared.unlocked() {
        eprintln!(
            "pivault: warning: cannot create {} (read-only medium?); mounting read-only without the lock",
            a.vault.join(vault::LOCK_FILE).display()
        );
    }
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
                prepared.release();
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
                prepared.adopt_lock()?;
                daemon = Some(child);
            }
        }
    }
    let res = prepared.run(&cfg, || match &mut daemon {
        Some(d) => d.ready(keep_stderr()),
        None => eprintln!(
            "Mounted {} at {}{}; unmount with `pivault unmount {}` or Ctrl-C",
            a.vault.display(),
            a.mountpoint.display(),
            if cfg.read_only { " (read-only)" } else { "" },
            a.mountpoint.display()
        ),
    });
    let end = match res {
        Ok(end) => end,
        Err(e) => {
            if let Some(d) = &mut daemon {
                d.fail(&format!("pivault: error: {e}"));
            }
            return Err(e.into());
        }
    };
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
    let source = match vault::mountinfo::mounted_at(&canon) {
        Some((t, src)) if vault::mountinfo::is_pivault(&t, &src) => src,
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
        let vault = vault::mountinfo::unescape(vault);
        if !a.lazy && !vault::wait_unlocked(Path::new(&vault), Duration::from_secs(10)) {
            eprintln!(
                "pivault: warning: the mount process of {vault} is still running 10 s after the unmount"
            );
        }
    }
    eprintln!("Unmounted {}", mnt.display());
    Ok(Outcome::Ok)
}
