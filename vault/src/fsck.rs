//! Offline integrity check: opens every name, directory ID, symlink and
//! content block of a vault and lists what is damaged, without writing.
//! A file a killed mount left half grown is listed apart
//! (`vault::recover`): it is not damage, and the next mount undoes it.

use crate::hostfile::HostFile;
use crate::tree::{Entry, Vault};
use crate::walk::{walk, Damage, Visitor};
use crate::{Progress, Result};
use std::path::Path;
use vault_core::ContentFile;

/// What fsck found.
#[derive(Debug, Default)]
pub struct FsckReport {
    /// Intact regular files checked.
    pub files: u64,
    /// Directories checked.
    pub dirs: u64,
    /// Symlinks checked.
    pub symlinks: u64,
    /// Plaintext bytes authenticated.
    pub bytes: u64,
    /// Everything damaged.
    pub damaged: Vec<Damage>,
    /// Files an interrupted write left unreadable until it is undone
    /// (`vault::undo_interrupted_writes`); not damage.
    pub interrupted: Vec<crate::Interrupted>,
}

impl FsckReport {
    /// True when nothing is damaged.
    pub fn is_clean(&self) -> bool {
        self.damaged.is_empty()
    }
}

/// Checks the whole vault.
pub fn fsck(vault: &Vault, progress: &dyn Progress) -> Result<FsckReport> {
    let mut c = Checker {
        report: FsckReport::default(),
        progress,
    };
    walk(vault, &mut c)?;
    Ok(c.report)
}

struct Checker<'a> {
    report: FsckReport,
    progress: &'a dyn Progress,
}

fn block_list(bad: &[u64]) -> String {
    const SHOWN: usize = 8;
    let mut s: Vec<String> = bad.iter().take(SHOWN).map(u64::to_string).collect();
    if bad.len() > SHOWN {
        s.push(format!("and {} more", bad.len() - SHOWN));
    }
    s.join(", ")
}

impl Visitor for Checker<'_> {
    fn enter_dir(&mut self, _plain: &Path, _entry: &Entry) -> Result<()> {
        self.report.dirs += 1;
        Ok(())
    }

    fn file(&mut self, plain: &Path, entry: &Entry, file: ContentFile<HostFile>) -> Result<()> {
        let bad = file
            .verify()
            .map_err(|e| crate::Error::core(&entry.host, e))?;
        self.progress.advance(file.size());
        let grow = if bad.is_empty() {
            None
        } else {
            file.interrupted_grow()
                .map_err(|e| crate::Error::core(&entry.host, e))?
        };
        if let Some(g) = grow {
            self.report.interrupted.push(crate::Interrupted {
                plain: plain.to_path_buf(),
                host: crate::tree::shown(&entry.host),
                size: g.size,
                size_by_length: file.size(),
            });
        } else if bad.is_empty() {
            self.report.files += 1;
            self.report.bytes += file.size();
        } else {
            self.report.damaged.push(Damage {
                plain: Some(plain.to_path_buf()),
                host: crate::tree::shown(&entry.host),
                reason: format!(
                    "{} of {} blocks failed authentication (block {}): modified, moved, truncated or torn by a crash",
                    bad.len(),
                    file.size().div_ceil(vault_core::BLOCK_SIZE as u64).max(1),
                    block_list(&bad)
                ),
            });
        }
        Ok(())
    }

    fn symlink(&mut self, _plain: &Path, _entry: &Entry, _target: &[u8]) -> Result<()> {
        self.report.symlinks += 1;
        Ok(())
    }

    fn damaged(&mut self, damage: Damage) {
        self.report.damaged.push(damage);
    }
}
