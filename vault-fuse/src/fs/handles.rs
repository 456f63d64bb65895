//! Open files and directories. All handles of one inode share a single
//! [`OpenFile`]: one `ContentFile` behind a read-write lock, so reads run
//! in parallel, a write excludes everything else on that file, and no
//! reader ever sees a block or the size half-updated.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use vault::HostFile;
use vault::Kind;
use vault_core::ContentFile;

/// The state shared by every open handle of one regular file.
pub(crate) struct OpenFile {
    /// The file's content, opened once.
    pub content: RwLock<ContentFile<HostFile>>,
    /// True when the host descriptor was opened for writing.
    pub writable: AtomicBool,
}

impl OpenFile {
    pub fn new(content: ContentFile<HostFile>, writable: bool) -> OpenFile {
        OpenFile {
            content: RwLock::new(content),
            writable: AtomicBool::new(writable),
        }
    }

    /// True when the host descriptor allows writes.
    pub fn is_writable(&self) -> bool {
        self.writable.load(std::sync::atomic::Ordering::Acquire)
    }

    /// Read access to the content (a poisoned lock means a panic in
    /// another request; the content itself is still consistent on disk).
    pub fn read(&self) -> std::sync::RwLockReadGuard<'_, ContentFile<HostFile>> {
        self.content.read().unwrap_or_else(|e| e.into_inner())
    }

    /// Exclusive access to the content.
    pub fn write(&self) -> std::sync::RwLockWriteGuard<'_, ContentFile<HostFile>> {
        self.content.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// One open file handle.
#[derive(Clone)]
pub(crate) struct FileHandle {
    pub ino: u64,
    pub file: Arc<OpenFile>,
    pub append: bool,
}

/// One entry of a directory snapshot.
#[derive(Clone, Debug)]
pub(crate) struct DirEntry {
    pub ino: u64,
    pub kind: Kind,
    pub name: Vec<u8>,
    /// The ciphertext entry (`None` for `.` and `..`).
    pub host: Option<super::HostPath>,
}

/// An open directory: the listing taken at opendir, so offsets stay
/// meaningful while the directory changes.
pub(crate) struct DirHandle {
    pub ino: u64,
    pub entries: Arc<Vec<DirEntry>>,
    /// True once a listing was served: a later read from offset 0
    /// (rewinddir) lists the directory again.
    pub served: bool,
}

/// The handle tables.
#[derive(Default)]
pub(crate) struct Handles {
    next: AtomicU64,
    files: Mutex<HashMap<u64, FileHandle>>,
    dirs: Mutex<HashMap<u64, DirHandle>>,
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Handles {
    fn next_fh(&self) -> u64 {
        self.next.fetch_add(1, Ordering::Relaxed) + 1
    }

    pub fn add_file(&self, h: FileHandle) -> u64 {
        let fh = self.next_fh();
        lock(&self.files).insert(fh, h);
        fh
    }

    pub fn file(&self, fh: u64) -> Option<FileHandle> {
        lock(&self.files).get(&fh).cloned()
    }

    pub fn remove_file(&self, fh: u64) -> Option<FileHandle> {
        lock(&self.files).remove(&fh)
    }

    pub fn add_dir(&self, h: DirHandle) -> u64 {
        let fh = self.next_fh();
        lock(&self.dirs).insert(fh, h);
        fh
    }

    /// The directory's inode and listing for a read at `offset`; `None`
    /// for the listing when it must be taken again (a rewind).
    pub fn dir(&self, fh: u64, offset: u64) -> Option<(u64, Option<Arc<Vec<DirEntry>>>)> {
        let mut dirs = lock(&self.dirs);
        let d = dirs.get_mut(&fh)?;
        if offset == 0 && d.served {
            return Some((d.ino, None));
        }
        d.served = true;
        Some((d.ino, Some(d.entries.clone())))
    }

    /// Replaces the listing of an open directory (after a rewind).
    pub fn set_dir(&self, fh: u64, entries: Arc<Vec<DirEntry>>) {
        if let Some(d) = lock(&self.dirs).get_mut(&fh) {
            d.entries = entries;
        }
    }

    pub fn remove_dir(&self, fh: u64) {
        lock(&self.dirs).remove(&fh);
    }
}
