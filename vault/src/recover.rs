//! Recovery after a mount that did not end cleanly (killed, crashed, or
//! the machine lost power): a mount marks the vault while it runs
//! (`pivault.mounted`, FORMAT.md §2) and unmarks it when it ends; the next
//! mount that finds the mark undoes the writes the dead one left half done
//! before it serves a file.
//!
//! The one such write the content format cannot read on its own is an
//! interrupted grow (FORMAT.md §6.4, `vault_core::InterruptedGrow`): the
//! new length is on disk, the blocks are not, and the old last block, which
//! held data synced before, fails authentication at the new length.
//! Undoing it cuts the host file back to its length before that write, a
//! write no caller was told had succeeded.

use crate::tree::{Entry, Vault};
use crate::walk::{walk, Damage, Visitor};
use crate::{layout, Error, HostFile, Result};
use std::fs::OpenOptions;
use std::io::Write;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use vault_core::ContentFile;

/// The mark a running read-write mount leaves in the vault root.
pub const MOUNTED_FILE: &str = layout::MOUNTED;

/// A file an interrupted write had left unreadable, and what was done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Interrupted {
    /// Plaintext path inside the vault.
    pub plain: PathBuf,
    /// Ciphertext path on the host.
    pub host: PathBuf,
    /// Plaintext size once undone: before the interrupted grow, or after
    /// the interrupted truncation.
    pub size: u64,
    /// Plaintext size its host length gives (what the interrupted write
    /// was changing it to, or from, for a truncation).
    pub size_by_length: u64,
}

/// What a recovery sweep found.
#[derive(Debug, Default)]
pub struct Recovery {
    /// Regular files examined.
    pub files: u64,
    /// Interrupted grows found (undone, unless the sweep only looked).
    pub interrupted: Vec<Interrupted>,
}

/// True when the vault carries the mark of a mount that did not unmount
/// (call it holding the vault's lock: then no mount is running).
pub fn unclean_end(root: &Path) -> bool {
    std::fs::symlink_metadata(root.join(MOUNTED_FILE)).is_ok()
}

/// The mark of a running read-write mount; [`MountMark::clear`] removes it
/// when the mount ends. Dropping it without `clear` (a failed mount) leaves
/// it, which costs the next mount a sweep and nothing else.
#[derive(Debug)]
pub struct MountMark {
    root: PathBuf,
}

impl MountMark {
    /// Writes the mark, durably: a power loss after this returns and before
    /// [`MountMark::clear`] leaves it for the next mount to find.
    pub fn set(root: &Path) -> Result<MountMark> {
        let path = root.join(MOUNTED_FILE);
        let mut f = keys::open_regular(
            &path,
            OpenOptions::new()
                .write(true)
                .create(true)
                .truncate(true)
                .mode(0o600),
        )
        .map_err(|e| Error::io(&path, e))?;
        let since = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0);
        writeln!(f, "{}\nmounted since {since}", std::process::id())
            .and_then(|_| f.sync_all())
            .map_err(|e| Error::io(&path, e))?;
        sync_dir(root)?;
        Ok(MountMark {
            root: root.to_path_buf(),
        })
    }

    /// Removes the mark once everything the mount wrote is on disk (a
    /// `syncfs` first: the mark must not be gone while a grow it covers
    /// could still be lost).
    pub fn clear(self) -> Result<()> {
        crate::sys::syncfs(&self.root).map_err(|e| Error::io(&self.root, e))?;
        let path = self.root.join(MOUNTED_FILE);
        std::fs::remove_file(&path).map_err(|e| Error::io(&path, e))?;
        sync_dir(&self.root)
    }
}

fn sync_dir(dir: &Path) -> Result<()> {
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| Error::io(dir, e))
}

/// When the mount that left the mark in `root` started (seconds since the
/// epoch), if the mark says.
fn mounted_since(root: &Path) -> Option<i64> {
    let text = std::fs::read_to_string(root.join(MOUNTED_FILE)).ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("mounted since "))
        .and_then(|t| t.trim().parse().ok())
}

/// Host files whose inode changed less than this before the dead mount
/// started are examined too (clock steps, file systems that round times).
const CTIME_SLACK_S: i64 = 300;

/// Walks the vault and undoes every interrupted grow (`repair`), or only
/// lists them. Only files whose host inode changed since the dead mount
/// started (its mark says when) can hold one, so only those are examined
/// (every file when the mark gives no time). Damage of any other kind is
/// left for `pivault fsck`.
pub fn undo_interrupted_writes(vault: &Vault, repair: bool) -> Result<Recovery> {
    let mut s = Sweep {
        report: Recovery::default(),
        repair,
        since: mounted_since(vault.root_path()).map(|t| t - CTIME_SLACK_S),
    };
    walk(vault, &mut s)?;
    Ok(s.report)
}

struct Sweep {
    report: Recovery,
    repair: bool,
    since: Option<i64>,
}

impl Visitor for Sweep {
    fn file(&mut self, plain: &Path, entry: &Entry, file: ContentFile<HostFile>) -> Result<()> {
        self.report.files += 1;
        let io = |e| Error::io(&entry.host, e);
        if let Some(since) = self.since {
            if file.store().0.metadata().map_err(io)?.ctime() < since {
                return Ok(());
            }
        }
        let core = |e| Error::core(&entry.host, e);
        let Some(found) = file.interrupted_grow().map_err(core)? else {
            return Ok(());
        };
        if self.repair {
            undo(&entry.host, &file, found)?;
        }
        self.report.interrupted.push(Interrupted {
            plain: plain.to_path_buf(),
            host: crate::tree::shown(&entry.host),
            size: found.size,
            size_by_length: file.size(),
        });
        Ok(())
    }

    fn symlink(&mut self, _: &Path, _: &Entry, _: &[u8]) -> Result<()> {
        Ok(())
    }

    fn damaged(&mut self, _: Damage) {}
}

/// Cuts the host file back through a descriptor of its own, opened without
/// following a symlink, after checking it is the inode that was examined
/// and still has the length it was found with.
fn undo(
    host: &Path,
    examined: &ContentFile<HostFile>,
    found: vault_core::InterruptedGrow,
) -> Result<()> {
    let io = |e| Error::io(host, e);
    let f = keys::open_regular(host, OpenOptions::new().write(true)).map_err(io)?;
    let (now, then) = (
        f.metadata().map_err(io)?,
        examined.store().0.metadata().map_err(io)?,
    );
    if (now.dev(), now.ino()) != (then.dev(), then.ino()) || now.len() != found.host_len {
        return Err(Error::io(
            host,
            std::io::Error::other("the file changed while it was being recovered; mount again"),
        ));
    }
    f.set_len(found.old_host_len).map_err(io)?;
    f.sync_all().map_err(io)
}
