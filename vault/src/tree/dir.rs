//! Pinned directories: a vault directory reached through an `O_PATH`
//! descriptor on it, so no host call is steered by a symlink swapped in
//! above it (THREAT-MODEL.md §3), and host paths shown to people without
//! the `/proc/self/fd` detour.

use std::path::{Path, PathBuf};
use vault_core::DirId;

/// A directory of the vault: where it is on the host and its ID.
///
/// Every directory is reached through an `O_PATH` descriptor held on it,
/// opened without following a symlink relative to its parent's: `host` is
/// that descriptor's `/proc/self/fd/N`, so each host path the tree builds
/// is one pinned directory plus one ciphertext entry name. A symlink an
/// attacker swaps in for a directory anywhere above never steers a host
/// call (the per-component `O_NOFOLLOW` walk of THREAT-MODEL.md §3), and a
/// tree may be as deep as the kernel allows although its ciphertext path
/// is longer than PATH_MAX.
#[derive(Clone, Debug)]
pub struct Dir {
    /// `/proc/self/fd/N/.` of [`Dir::anchor`].
    pub host: PathBuf,
    /// The directory's ID.
    pub id: DirId,
    /// The `O_PATH` descriptor `host` goes through; holding it keeps the
    /// number naming that directory.
    pub anchor: Anchor,
}

/// An `O_PATH` descriptor on a host directory, shared by the copies of a
/// [`Dir`] and the paths built on it.
pub type Anchor = std::sync::Arc<std::os::fd::OwnedFd>;

impl PartialEq for Dir {
    fn eq(&self, other: &Dir) -> bool {
        self.host == other.host && self.id == other.id
    }
}
impl Eq for Dir {}

/// Where `/proc` shows this process's descriptors.
pub const PROC_FD: &str = "/proc/self/fd/";

/// Pins the host directory `host` (an entry just built on a pinned
/// directory, so one component to resolve) with an `O_PATH` descriptor,
/// never following a symlink in its place, and returns the
/// `/proc/self/fd/N/.` path that goes through it.
///
/// The trailing `.` makes the directory itself the last component: calls
/// that do not follow a final symlink (`lstat`, `l*xattr`, `O_NOFOLLOW`)
/// then act on the directory, not on the `/proc` magic link.
pub fn anchor(host: &Path) -> std::io::Result<(PathBuf, Anchor)> {
    anchor_with(host, rustix::fs::OFlags::NOFOLLOW)
}

/// Pins a vault's root directory: the path the user named, which may be a
/// symlink they made (everything below it is reached with [`anchor`]).
pub fn anchor_root(root: &Path) -> std::io::Result<(PathBuf, Anchor)> {
    anchor_with(root, rustix::fs::OFlags::empty())
}

fn anchor_with(host: &Path, extra: rustix::fs::OFlags) -> std::io::Result<(PathBuf, Anchor)> {
    use rustix::fs::{Mode, OFlags};
    use std::os::fd::AsRawFd;
    let fd = rustix::fs::open(
        host,
        OFlags::PATH | OFlags::DIRECTORY | OFlags::CLOEXEC | extra,
        Mode::empty(),
    )?;
    Ok((
        PathBuf::from(format!("{PROC_FD}{}/.", fd.as_raw_fd())),
        std::sync::Arc::new(fd),
    ))
}

/// The real host path behind a `/proc/self/fd/N/...` path, for messages
/// (the descriptor must still be open: errors translate when they are
/// made). Any other path is returned as it is.
pub fn shown(p: &Path) -> PathBuf {
    let Ok(rest) = p.strip_prefix(PROC_FD) else {
        return p.to_path_buf();
    };
    let mut parts = rest.components();
    let Some(fd) = parts.next() else {
        return p.to_path_buf();
    };
    match std::fs::read_link(Path::new(PROC_FD).join(fd)) {
        Ok(real) => parts.fold(real, |acc, c| acc.join(c)),
        Err(_) => p.to_path_buf(),
    }
}
