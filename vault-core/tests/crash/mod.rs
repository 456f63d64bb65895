//! Test support for crash-point enumeration of the content format (issue
//! 18, point 2): a [`CipherStore`] that records every operation the content
//! code issues on its one ciphertext file, plus the events the vault issues
//! around it (fsync, host rename), as one log.
//!
//! [`enumerate`] turns a log into the on-disk states a crash may leave;
//! [`check`] opens each state and holds it to what FORMAT.md §6.4 and §19
//! promise.

pub mod check;
pub mod enumerate;
pub mod kill;

use std::cell::RefCell;
use std::io;
use std::rc::Rc;

use vault_core::CipherStore;

/// The unit a disk writes atomically: a crash leaves each 512-byte sector
/// of a write whole, old or new, never half.
pub const SECTOR: u64 = 512;

/// One operation on the ciphertext file, or one vault-level event.
#[derive(Clone, Debug)]
pub enum Op {
    /// `pwrite(2)`. `extends` when it reached past the file's length when it
    /// was issued: only then can it move the length, and a torn one may
    /// leave the length at any sector boundary it reached (file systems
    /// update the on-disk size as pages are written back).
    Write {
        offset: u64,
        bytes: Vec<u8>,
        extends: bool,
    },
    /// `ftruncate(2)`: the length changes atomically (a journalled inode
    /// update), shrinking or growing with zeros.
    SetLen(u64),
    /// `fdatasync(2)` of the file (the vault's rename protocol syncs the
    /// content file only; see [`Op::Rename`]).
    Sync,
    /// The host entry renamed to entry `n` of the test's name pool. A rename
    /// is a directory update: like a length change, it is durable or not at
    /// the crash, independently of the file's data writes until a sync.
    Rename(usize),
}

/// One log entry: the operation, and which step of the driver issued it
/// (the step whose model is current once the entry is done).
#[derive(Clone, Debug)]
pub struct Entry {
    pub op: Op,
    pub step: usize,
}

/// The log all recorders of one run append to.
#[derive(Default, Debug)]
pub struct Log {
    pub entries: Vec<Entry>,
    /// Step the next entries belong to.
    pub step: usize,
}

impl Log {
    /// Appends `op` under the current step.
    pub fn push(&mut self, op: Op) {
        let step = self.step;
        self.entries.push(Entry { op, step });
    }
}

/// Shared handle: the content file owns the store, the driver keeps this
/// to record syncs and renames and to set the step.
pub type SharedLog = Rc<RefCell<Log>>;

/// A `Vec<u8>` store that logs every mutation before applying it.
pub struct Recorder {
    data: Vec<u8>,
    log: SharedLog,
}

impl Recorder {
    /// An empty store appending to `log`.
    pub fn new(log: SharedLog) -> Self {
        Recorder {
            data: Vec::new(),
            log,
        }
    }

    /// The bytes as the program sees them (every operation applied).
    pub fn bytes(&self) -> &[u8] {
        &self.data
    }
}

impl CipherStore for Recorder {
    fn read_exact_at(&self, buf: &mut [u8], offset: u64) -> io::Result<()> {
        self.data.read_exact_at(buf, offset)
    }

    fn write_all_at(&mut self, buf: &[u8], offset: u64) -> io::Result<()> {
        let extends = offset + buf.len() as u64 > self.data.len() as u64;
        self.log.borrow_mut().push(Op::Write {
            offset,
            bytes: buf.to_vec(),
            extends,
        });
        self.data.write_all_at(buf, offset)
    }

    fn len(&self) -> io::Result<u64> {
        CipherStore::len(&self.data)
    }

    fn set_len(&mut self, len: u64) -> io::Result<()> {
        self.log.borrow_mut().push(Op::SetLen(len));
        CipherStore::set_len(&mut self.data, len)
    }
}
