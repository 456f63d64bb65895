//! The mount's lifetime: the vault lock, mounting with `fuser`, readiness
//! for `--daemon`, waiting for the unmount or a signal or the idle limit,
//! and unmounting.
//!
//! SIGINT, SIGTERM and SIGHUP are blocked before any thread starts and
//! collected with `sigtimedwait` by the thread that mounted, so no signal
//! interrupts a request half-way; on one, the filesystem is unmounted and
//! the session threads end, dropping the vault (and its zeroizing keys).

use super::{Activity, VaultFs};
use crate::sys;
use fuser::{Config, MountOption, Session, SessionACL};
use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};
use vault::Vault;
use vault::{Error, Result};

const SIGNALS: [i32; 3] = [libc::SIGINT, libc::SIGTERM, libc::SIGHUP];
/// How long to wait for the session to end after unmounting before giving
/// up on it (files still open on a lazily detached mount).
const GRACE: Duration = Duration::from_secs(5);

/// How to mount.
#[derive(Clone, Debug)]
pub struct MountConfig {
    /// Mount read-only (writes fail with EROFS).
    pub read_only: bool,
    /// Let other users in (FUSE `allow_other`).
    pub allow_other: bool,
    /// Unmount after this long without a request.
    pub idle_seal: Option<Duration>,
    /// Session threads.
    pub threads: usize,
    /// Let the kernel cache writes (FUSE writeback cache).
    pub writeback_cache: bool,
}

/// Why a mount ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MountEnd {
    /// Someone unmounted it (`fusermount3 -u`, `pivault unmount`).
    Unmounted,
    /// A signal asked the process to stop; the mount was then unmounted.
    Signal(i32),
    /// `--idle-seal` expired; the mount was then unmounted.
    Idle,
}

/// The parent's or the child's side of `--daemon`.
pub enum Daemon {
    /// The original process: wait for the child's word.
    Parent(File),
    /// The mount process: report readiness or failure through the pipe.
    Child(File),
    /// The mount process after it reported (the pipe is closed, so the
    /// parent sees the end of the message).
    Reported,
}

/// Forks for `--daemon`: the child goes on to mount (in a new session),
/// the parent waits with [`Daemon::wait`]. The process must still be
/// single-threaded (checked).
pub fn daemonize() -> Result<Daemon> {
    let (r, w) = sys::pipe().map_err(|e| Error::io("pipe", e))?;
    match sys::fork().map_err(|e| Error::io("fork", e))? {
        sys::Forked::Parent => {
            drop(w);
            Ok(Daemon::Parent(r))
        }
        sys::Forked::Child => {
            drop(r);
            sys::setsid();
            Ok(Daemon::Child(w))
        }
    }
}

impl Daemon {
    /// Parent: blocks until the child reports; `Ok` once it is mounted.
    pub fn wait(self) -> std::result::Result<(), String> {
        let Daemon::Parent(mut r) = self else {
            return Ok(());
        };
        let mut msg = String::new();
        let _ = r.read_to_string(&mut msg);
        match msg.strip_prefix("ok") {
            Some(_) => Ok(()),
            None if msg.is_empty() => {
                Err("the mount process exited before the mount was ready".into())
            }
            None => Err(msg.trim_end().to_string()),
        }
    }

    /// Child: the mount is ready; let go of the parent's terminal and
    /// pipes. `keep_stderr` leaves stderr where it is, for the log lines
    /// that have no other place to go (the caller knows where logs go).
    pub fn ready(&mut self, keep_stderr: bool) {
        if let Daemon::Child(mut w) = std::mem::replace(self, Daemon::Reported) {
            let _ = w.write_all(b"ok\n");
            let _ = sys::stdio_to_null(keep_stderr);
        }
    }

    /// Child: mounting failed with `msg`.
    pub fn fail(&mut self, msg: &str) {
        if let Daemon::Child(mut w) = std::mem::replace(self, Daemon::Reported) {
            let _ = w.write_all(msg.as_bytes());
        }
    }
}

/// Unmounts `mountpoint`: umount2(2) as root, otherwise `fusermount3 -u`
/// (`lazy` detaches even while files are open).
pub fn unmount(mountpoint: &Path, lazy: bool) -> Result<()> {
    if sys::euid() == 0 {
        return sys::umount(mountpoint, lazy).map_err(|e| Error::io(mountpoint, e));
    }
    let mut cmd = Command::new("fusermount3");
    cmd.arg("-u");
    if lazy {
        cmd.arg("-z");
    }
    let out = cmd.arg("--").arg(mountpoint).output().map_err(|e| {
        Error::io(
            "fusermount3",
            std::io::Error::new(
                e.kind(),
                format!("cannot run fusermount3 ({e}); install fuse3"),
            ),
        )
    })?;
    if out.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&out.stderr).trim().to_string();
    let kind = if text.contains("busy") {
        std::io::ErrorKind::ResourceBusy
    } else {
        std::io::ErrorKind::Other
    };
    Err(Error::io(mountpoint, std::io::Error::new(kind, text)))
}

fn unmount_now(mountpoint: &Path) {
    if let Err(e) = unmount(mountpoint, false) {
        tracing::warn!("{e}; detaching lazily (open files keep working until closed or until this process exits)");
        if let Err(e) = unmount(mountpoint, true) {
            tracing::error!("{e}");
        }
    }
}

/// Mounts `vault` at `mountpoint` and serves it until it is unmounted, a
/// signal arrives or the idle limit passes. `on_ready` runs once the
/// kernel has accepted the mount. `reload` is asked about four times a
/// second for a newer keyring (after `pivault keys rotate`); one it returns
/// is taken in, so new files use the newest data-key version. One that is
/// refused (older than the one held: a keystore copy put back, see
/// [`vault_core::VaultCipher::refresh_keyring`]; or another vault's) is
/// logged at error level and handed to `refused` (to record it); the mount
/// keeps the keyring it holds.
pub fn run(
    vault: Vault,
    mountpoint: &Path,
    cfg: &MountConfig,
    on_ready: impl FnOnce(),
    mut reload: impl FnMut() -> Option<vault_core::Keyring>,
    mut refused: impl FnMut(&vault_core::Error),
) -> Result<MountEnd> {
    let cipher = vault.cipher_handle();
    // Before any thread exists, so that every thread inherits the mask.
    sys::block_signals(&SIGNALS).map_err(|e| Error::io("signals", e))?;
    // Each directory whose path is cached holds a pinned descriptor (up to
    // `fs::CACHED_DIRS`): more than the usual soft limit of 1024.
    match sys::raise_open_file_limit() {
        Ok(n) => tracing::debug!("open-file limit {n}"),
        Err(e) => tracing::debug!("could not raise the open-file limit: {e}"),
    }
    let activity = Arc::new(Activity::new());
    let mountpoint = mountpoint.to_path_buf();
    // The source shown in /proc/mounts names the vault, so that `pivault
    // unmount` can find its lock and wait for this process to end (a name
    // with a comma or backslash cannot pass through fusermount3's options).
    let root = std::fs::canonicalize(vault.root_path())
        .unwrap_or_else(|_| vault.root_path().to_path_buf())
        .to_string_lossy()
        .into_owned();
    let fsname = if root.contains([',', '\\']) {
        "pivault".to_string()
    } else {
        format!("pivault:{root}")
    };
    let mut options = vec![
        MountOption::FSName(fsname),
        MountOption::Subtype("pivault".into()),
        MountOption::NoDev,
        MountOption::NoSuid,
    ];
    if cfg.allow_other {
        // Several users: the kernel checks every access against the modes.
        // With one user (the default), that user is the daemon's, so the
        // host already applies the same modes to every operation, and the
        // kernel skips a GETATTR round trip before each change.
        options.push(MountOption::DefaultPermissions);
    }
    if cfg.read_only {
        options.push(MountOption::RO);
    }
    let fs = VaultFs::new(vault, cfg.read_only, cfg.writeback_cache, activity.clone())?;
    let mut config = Config::default();
    config.mount_options = options;
    config.acl = if cfg.allow_other {
        SessionACL::All
    } else {
        SessionACL::Owner
    };
    config.n_threads = Some(cfg.threads.max(1));
    config.clone_fd = true;
    let session =
        Session::new(fs, &mountpoint, &config).map_err(|e| mount_error(&mountpoint, cfg, e))?;
    // The session runs in fuser's background thread. Its handle is never
    // dropped: dropping it would unmount the mountpoint once more (fuser
    // cannot tell an already unmounted filesystem from a live one), which
    // could hit a new mount at the same place. The vault and its keys are
    // dropped by the session thread when the session ends.
    let session = std::mem::ManuallyDrop::new(
        session
            .spawn()
            .map_err(|e| Error::io("session thread", e))?,
    );
    let finished = || session.guard.is_finished();
    // After the session threads run: the stat goes through the mount.
    raise_readahead(&mountpoint);
    on_ready();
    // A unit with Type=notify (contrib/systemd/pivault-mount@.service)
    // starts the programs that need the folder only now; without
    // NOTIFY_SOCKET this does nothing.
    notify(&[
        sd_notify::NotifyState::Ready,
        sd_notify::NotifyState::Status(&format!("mounted at {}", mountpoint.display())),
    ]);
    let end = loop {
        if let Some(sig) = sys::wait_signal(&SIGNALS, Duration::from_millis(250)) {
            break MountEnd::Signal(sig);
        }
        if finished() {
            break MountEnd::Unmounted;
        }
        if cfg.idle_seal.is_some_and(|limit| activity.idle() >= limit) {
            break MountEnd::Idle;
        }
        if let Some(newer) = reload() {
            match cipher.refresh_keyring(newer) {
                Ok(true) => tracing::info!(
                    "took in the rotated keyring: new files use data-key version {}",
                    cipher.keyring().current_version()
                ),
                Ok(false) => {}
                Err(e) => {
                    tracing::error!(
                        "keystore changed but its keyring was refused: {e}; this mount keeps data-key versions {:?}. Put the newer keystore back (a copy from `pivault keys backup`) before unmounting, or files under the missing versions will not open",
                        cipher.keyring().versions()
                    );
                    refused(&e);
                }
            }
        }
    };
    notify(&[sd_notify::NotifyState::Stopping]);
    if end != MountEnd::Unmounted {
        unmount_now(&mountpoint);
        let deadline = Instant::now() + GRACE;
        while !finished() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(50));
        }
        if !finished() {
            tracing::warn!(
                "{}: files were still open; the mount ends with this process",
                mountpoint.display()
            );
        }
    }
    Ok(end)
}

/// Tells the service manager, if any, what the mount is doing.
fn notify(states: &[sd_notify::NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(states) {
        tracing::debug!("service manager notification not sent: {e}");
    }
}

/// Readahead in 1 MiB requests instead of the kernel's 128 KiB default for
/// FUSE (the request size the filesystem asks for): fewer round trips and
/// more blocks to decrypt in parallel per request. Only root may change
/// it; otherwise the default stays.
fn raise_readahead(mountpoint: &Path) {
    use std::os::unix::fs::MetadataExt;
    if sys::euid() != 0 {
        return;
    }
    let Ok(m) = std::fs::metadata(mountpoint) else {
        return;
    };
    let dev = m.dev();
    let path = format!(
        "/sys/class/bdi/{}:{}/read_ahead_kb",
        libc::major(dev),
        libc::minor(dev)
    );
    if let Err(e) = std::fs::write(&path, b"1024") {
        tracing::debug!("could not raise readahead ({path}): {e}");
    }
}

fn mount_error(mountpoint: &PathBuf, cfg: &MountConfig, e: std::io::Error) -> Error {
    let text = e.to_string();
    let hint = if cfg.allow_other
        && (text.contains("user_allow_other") || e.kind() == std::io::ErrorKind::PermissionDenied)
    {
        "; --allow-other needs the line `user_allow_other` in /etc/fuse.conf (ask an administrator)"
            .to_string()
    } else if e.kind() == std::io::ErrorKind::NotFound && text.contains("fuse") {
        "; is FUSE available (/dev/fuse, package fuse3)?".to_string()
    } else {
        String::new()
    };
    Error::io(
        mountpoint,
        std::io::Error::new(e.kind(), format!("cannot mount: {text}{hint}")),
    )
}
