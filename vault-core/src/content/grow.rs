//! Interrupted grows (FORMAT.md §6.4): what a write that grows a file
//! leaves when its process dies part way, and how that state is
//! recognised and undone.
//!
//! A growing write sets the host file's new length first (one
//! `ftruncate(2)`, which a crash cannot tear), then writes the new blocks
//! past the old last block, then rewrites in place the blocks it changes
//! there, the old last block among them when it was partial (its content
//! grows and it is no longer last). Killed before that rewrite, the file
//! still holds its old last block, sealed as the last block at the old
//! length, and after it zeros, new blocks, or new blocks up to a page
//! where the write stopped and zeros after. Read at the new length, the
//! old block fails authentication, and the bytes it held, synced before
//! the write began, would be lost. The state is recognisable near the end
//! of the file, and cutting the host file back to the old end gives
//! exactly the file as it was before the write, which was never
//! acknowledged.
//!
//! A truncation into the middle of a block writes the new last block with
//! zeros after it to the end of its slot, then truncates; killed in
//! between, the file holds that block followed by the blocks that were to
//! be cut off, and the same scan finds it: cutting there completes the
//! truncation.
//!
//! Nothing here lets an attacker make a file read as something it never
//! was: the block that decides the length is authenticated as the last
//! block at that length, so the result is a length and content the file
//! once had (the rollback THREAT-MODEL.md §5 accepts).

use super::{block_aad, ContentFile, BLOCK_SIZE, HEADER_LEN, HOLE_CHUNK};
use crate::suite::TAG_LEN;
use crate::{CipherStore, Error, Result};

/// How far back from the end of the file an old end is looked for. One
/// write grows a file by at most one chunk of sealed zeros (`write_at`
/// fills larger gaps in `HOLE_CHUNK` steps, each a grow of its own) plus
/// its own length, at most 1 MiB through FUSE; the span is that in
/// ciphertext, with room to spare. Library callers writing more than
/// 2 MiB in one call past the end are not recovered this way.
pub const MAX_GROW_SPAN: u64 = 4 * HOLE_CHUNK as u64;

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

/// One block near the end, as the backward scan sees it.
enum Seen {
    /// Opens where it stands; `full_last` when it is a full block before
    /// the last one that carries the last flag (a length the file had).
    Opens { full_last: bool },
    /// Fails; `zero` when its bytes are all zero.
    Fails { zero: bool },
}

impl<S: CipherStore> ContentFile<S> {
    /// Checks whether the file is in a state an interrupted grow (or
    /// truncation) leaves, looking at most 4 MiB (`MAX_GROW_SPAN`) back
    /// from its end. From the end, the file must hold: a failing tail of
    /// all-zero blocks with at most one other failing block below them
    /// (the page a killed write stopped in); then blocks that open (new
    /// blocks of the write, or the blocks a truncation was cutting off);
    /// then at most one all-zero block (the first new block, which a grow
    /// leaves for its second call); then the old end: either a block that
    /// fails where it stands but opens as the last block at a shorter
    /// length, with only zeros after that in its slot, or a full block
    /// that opens with the last flag right below an all-zero block. `None`
    /// for any other file, intact or damaged. Costs reading (and, for an
    /// intact file, opening) up to that span: callers look only where a
    /// crash may have left one.
    pub fn interrupted_grow(&self) -> Result<Option<InterruptedGrow>> {
        let len = self.store.len()?;
        let cb = self.geo.cblock();
        let lowest = len
            .saturating_sub(MAX_GROW_SPAN)
            .saturating_sub(HEADER_LEN as u64)
            / cb;
        let mut ct = zeroize::Zeroizing::new(Vec::with_capacity(cb as usize));
        // The blocks from the end down, each seen once; `None` below the
        // span looked at.
        let mut next = self.last_index() as i64;
        let mut down = |ct: &mut Vec<u8>| -> Result<Option<(u64, Seen)>> {
            if next < lowest as i64 {
                return Ok(None);
            }
            let b = next as u64;
            next -= 1;
            Ok(Some((b, self.see(b, ct)?)))
        };
        // 1. All-zero failing blocks (the truncate's zeros), then at most
        //    one other failing block (the page a kill stopped a write in),
        //    unless that one is already the old end.
        let mut zero_above = false;
        let mut cur = down(&mut ct)?;
        while let Some((_, Seen::Fails { zero: true })) = cur {
            zero_above = true;
            cur = down(&mut ct)?;
        }
        if let Some((b, Seen::Fails { zero: false })) = cur {
            if let Some(found) = self.short_last(b, len, &mut ct)? {
                return Ok(Some(found));
            }
            zero_above = false;
            cur = down(&mut ct)?;
        }
        // 2. Blocks that open (new blocks of the write). A full old end
        //    sealed last counts only right below an all-zero block:
        //    further down, a block that once ended the file cannot be
        //    told from this write's end, and cutting there would drop
        //    blocks that read.
        let mut first = true;
        while let Some((b, Seen::Opens { full_last })) = cur {
            if first && zero_above && full_last {
                return Ok(Some(self.found(b, (b + 1) * BLOCK_SIZE as u64, len)));
            }
            first = false;
            cur = down(&mut ct)?;
        }
        // 3. At most one all-zero failing block (the first new block, which
        //    the write leaves for its second call), directly above the old
        //    end.
        if let Some((_, Seen::Fails { zero: true })) = cur {
            cur = down(&mut ct)?;
            if let Some((b, Seen::Opens { full_last: true })) = cur {
                return Ok(Some(self.found(b, (b + 1) * BLOCK_SIZE as u64, len)));
            }
        }
        // 4. The old end: a failing block that opens as the last block at
        //    a shorter length.
        match cur {
            Some((b, Seen::Fails { .. })) => self.short_last(b, len, &mut ct),
            _ => Ok(None),
        }
    }

    /// Opens block `b` where it stands (into `ct`, wiped after).
    fn see(&self, b: u64, ct: &mut Vec<u8>) -> Result<Seen> {
        let last = self.last_index();
        let core = self.header.core_bytes();
        let res = self.open_span(b, 1, ct);
        let seen = match res {
            Ok(()) => {
                // `open_span` takes the last flag on an earlier block too;
                // tell which one this block carries.
                let full_last = b < last && {
                    self.store.read_exact_at(ct, self.geo.block_offset(b))?;
                    self.aead.open_in_place(&block_aad(&core, b, true), ct)
                };
                Seen::Opens { full_last }
            }
            Err(Error::BlockAuth { .. }) => {
                self.store.read_exact_at(ct, self.geo.block_offset(b))?;
                Seen::Fails {
                    zero: ct.iter().all(|&x| x == 0),
                }
            }
            Err(e) => return Err(e),
        };
        ct.fill(0);
        Ok(seen)
    }

    /// Whether block `b`, which fails where it stands, opens as the last
    /// block at a shorter length, with only zeros after that in its slot.
    fn short_last(&self, b: u64, len: u64, ct: &mut Vec<u8>) -> Result<Option<InterruptedGrow>> {
        let at = self.geo.block_offset(b);
        let slot = self.geo.cblock().min(len - at);
        ct.clear();
        ct.resize(slot as usize, 0);
        self.store.read_exact_at(ct, at)?;
        let Some(q) = ct.iter().rposition(|&x| x != 0) else {
            return Ok(None);
        };
        let overhead = self.geo.overhead;
        // The old block ends at q + 1, or a little after when its tag ends
        // in zero bytes; it must end before the slot does (a grow).
        let shortest = (q as u64 + 1).max(overhead);
        let core = self.header.core_bytes();
        let mut found = None;
        for c in shortest..=(shortest + TAG_LEN as u64).min(slot - 1) {
            let mut trial = zeroize::Zeroizing::new(ct[..c as usize].to_vec());
            if self
                .aead
                .open_in_place(&block_aad(&core, b, true), &mut trial)
            {
                let size = b * BLOCK_SIZE as u64 + (c - overhead);
                found = Some(self.found(b, size, len));
                break;
            }
        }
        ct.fill(0);
        Ok(found)
    }

    fn found(&self, block: u64, size: u64, len: u64) -> InterruptedGrow {
        InterruptedGrow {
            block,
            size,
            host_len: len,
            old_host_len: self.geo.ciphertext_len(size),
        }
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
