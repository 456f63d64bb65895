//! Interrupted grows (FORMAT.md §6.4): what a write that grows a file
//! leaves when its process dies between setting the new length and
//! writing the blocks, and how that state is recognised and undone.
//!
//! A growing write sets the host file's new length first (one
//! `ftruncate(2)`, which a crash cannot tear) and then writes the blocks,
//! starting with the old last block when it was partial (its content grows
//! and it is no longer last). Killed in between, the file holds its old
//! last block, still sealed as the last block at its old length, followed
//! by the zeros the truncate added. Read at the new length, that block
//! fails authentication and the bytes it held, synced before the write
//! began, would be lost. The state is recognisable: the file ends in zero
//! bytes where a sealed block ends in its tag, and the last non-zero bytes
//! are a block that opens as the *last* block at a shorter length. Cutting
//! the host file back to that length gives exactly the file as it was
//! before the write, which was never acknowledged.
//!
//! Nothing here lets an attacker make a file read as something it never
//! was: the block that decides the length is authenticated as the last
//! block at that length, so the result is a length and content the file
//! once had (the rollback THREAT-MODEL.md §5 accepts).

use super::{block_aad, ContentFile, BLOCK_SIZE, HEADER_LEN, HOLE_CHUNK};
use crate::suite::TAG_LEN;
use crate::{CipherStore, Error, Result};

/// The most trailing zero bytes examined as the unwritten tail of a grow.
/// One write grows a file by at most its own length plus one chunk of
/// sealed zeros (`write_at` fills larger gaps in `HOLE_CHUNK` steps, each a
/// grow of its own); FUSE writes are at most 1 MiB. A longer run of zeros
/// is damage, not an interrupted grow, and the search stops there rather
/// than reading a hostile sparse file to its start.
const MAX_ZERO_TAIL: u64 = 64 * HOLE_CHUNK as u64;
/// Bytes read per step while looking for the end of the written data.
const SCAN_STEP: u64 = 64 * 1024;

/// A file found in the state an interrupted grow leaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InterruptedGrow {
    /// The block that ended the file before the write.
    pub block: u64,
    /// The plaintext size before the write.
    pub size: u64,
    /// The host file's length as found (after the truncate).
    pub host_len: u64,
    /// The host file's length before the write, which undoing restores.
    pub old_host_len: u64,
}

impl<S: CipherStore> ContentFile<S> {
    /// Checks whether the file is in the state an interrupted grow leaves
    /// (see the module documentation). `None` for any other file, intact or
    /// damaged; for an intact file it costs one read of its last byte (or,
    /// one time in 256, of its last block).
    pub fn interrupted_grow(&self) -> Result<Option<InterruptedGrow>> {
        let len = self.store.len()?;
        let header = HEADER_LEN as u64;
        if len <= header {
            return Ok(None);
        }
        // A grow leaves at least one zero byte at the end (the truncate
        // added it), where an intact file ends in its last block's tag.
        let mut end = [0u8; 1];
        self.store.read_exact_at(&mut end, len - 1)?;
        if end[0] != 0 {
            return Ok(None);
        }
        let last = self.last_index();
        let mut ct = zeroize::Zeroizing::new(Vec::new());
        match self.open_span(last, 1, &mut ct) {
            Ok(()) => return Ok(None),
            Err(Error::BlockAuth { .. }) => {}
            Err(e) => return Err(e),
        }
        let Some(p) = self.last_nonzero(len)? else {
            return Ok(None);
        };
        let cb = self.geo.cblock();
        let block = (p - header) / cb;
        let at = self.geo.block_offset(block);
        let overhead = self.geo.overhead;
        // The old block's ciphertext ends at p + 1, or a little after when
        // its tag ends in zero bytes.
        let shortest = (p + 1 - at).max(overhead);
        let core = self.header.core_bytes();
        ct.resize(cb as usize, 0);
        for ct_len in shortest..=(shortest + TAG_LEN as u64).min(cb) {
            // The old end must lie before the current one: it is a grow.
            if at + ct_len >= len {
                break;
            }
            let c = &mut ct[..ct_len as usize];
            self.store.read_exact_at(c, at)?;
            if self.aead.open_in_place(&block_aad(&core, block, true), c) {
                let size = block * BLOCK_SIZE as u64 + (ct_len - overhead);
                return Ok(Some(InterruptedGrow {
                    block,
                    size,
                    host_len: len,
                    old_host_len: self.geo.ciphertext_len(size),
                }));
            }
        }
        Ok(None)
    }

    /// Offset of the last non-zero byte after the header, looking back at
    /// most [`MAX_ZERO_TAIL`] bytes from `len`.
    fn last_nonzero(&self, len: u64) -> Result<Option<u64>> {
        let floor = (HEADER_LEN as u64).max(len.saturating_sub(MAX_ZERO_TAIL));
        let mut buf = vec![0u8; SCAN_STEP as usize];
        let mut end = len;
        while end > floor {
            let start = floor.max(end.saturating_sub(SCAN_STEP));
            let chunk = &mut buf[..(end - start) as usize];
            self.store.read_exact_at(chunk, start)?;
            if let Some(i) = chunk.iter().rposition(|&b| b != 0) {
                return Ok(Some(start + i as u64));
            }
            end = start;
        }
        Ok(None)
    }

    /// Undoes an interrupted grow found by [`ContentFile::interrupted_grow`]:
    /// cuts the host file back to its length before the write. Refuses when
    /// the file's length changed since it was examined.
    pub fn undo_interrupted_grow(&mut self, found: &InterruptedGrow) -> Result<()> {
        if self.store.len()? != found.host_len {
            return Err(Error::Range(
                "the file changed since it was found interrupted",
            ));
        }
        self.store.set_len(found.old_host_len)?;
        self.size = found.size;
        Ok(())
    }
}
