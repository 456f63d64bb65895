//! The write path of a content file: writes that overwrite and grow,
//! truncation, and the order of the host calls each makes, which is what
//! keeps a killed or crashed writer's file readable (FORMAT.md §6.4).

use super::{
    block_aad, with_scratch, ContentFile, BLOCK_SIZE, HOLE_CHUNK, MAX_SIZE, PARALLEL_BLOCKS,
    READ_SCRATCH, WRITE_SCRATCH,
};
use crate::{CipherStore, Error, Result};
use rayon::prelude::*;

impl<S: CipherStore> ContentFile<S> {
    /// Writes `data` at `offset`, extending the file (with zeros between the
    /// old end and `offset`) when it reaches past the end. Only the blocks
    /// the write touches are rewritten, plus a partial old last block when
    /// the file grows (its content grows). A full old last block is left as
    /// it is, still sealed as last: re-sealing it before the new length is
    /// durable would let a crash make already-synced data unreadable, and
    /// readers accept the last flag on an earlier block (FORMAT.md §6.2).
    pub fn write_at(&mut self, offset: u64, data: &[u8]) -> Result<()> {
        if data.is_empty() {
            return Ok(());
        }
        let end = offset
            .checked_add(data.len() as u64)
            .filter(|&e| e <= MAX_SIZE)
            .ok_or(Error::Range("write past the largest file size"))?;
        // A write far past the end fills the gap with sealed zeros in
        // bounded chunks first, rather than one buffer as large as the gap.
        if offset > self.size + HOLE_CHUNK as u64 {
            self.set_len(offset)?;
        }
        let bs = BLOCK_SIZE as u64;
        let old_size = self.size;
        let new_size = old_size.max(end);
        let old_last = self.last_index();
        let new_last = self.geo.blocks(new_size) - 1;
        let first = offset / bs;
        let old_last_full = Self::block_plain_len(old_size, old_last) == BLOCK_SIZE;
        let (start, stop) = if new_size > old_size {
            if old_last_full && first > old_last {
                (old_last + 1, new_last)
            } else {
                (first.min(old_last), new_last)
            }
        } else {
            (first, (end - 1) / bs)
        };
        with_scratch(&WRITE_SCRATCH, |ct| {
            let span_plain = ((stop + 1) * bs).min(new_size) - start * bs;
            let blocks = stop - start + 1;
            ct.clear();
            ct.resize((span_plain + blocks * self.geo.overhead) as usize, 0);
            // Old plaintext is needed only in blocks the write covers
            // partly: at most the first and the last of the span.
            let ends: &[u64] = if start == stop {
                &[start]
            } else {
                &[start, stop]
            };
            for &idx in ends {
                let b_start = idx * bs;
                let b_end = ((idx + 1) * bs).min(new_size);
                let covered = offset <= b_start && end >= b_end;
                if !covered && Self::block_plain_len(old_size, idx) > 0 {
                    with_scratch(&READ_SCRATCH, |old| -> Result<()> {
                        self.open_span(idx, 1, old)?;
                        let from = self.body(old, 0);
                        let to = self.body(ct, (idx - start) as usize);
                        ct[to.start..to.start + from.len()].copy_from_slice(&old[from]);
                        old.fill(0);
                        Ok(())
                    })?;
                }
            }
            let mut done = 0usize;
            for i in (first - start) as usize..blocks as usize {
                if done == data.len() {
                    break;
                }
                let body = self.body(ct, i);
                let block_start = (start + i as u64) * bs;
                let from = (offset + done as u64).saturating_sub(block_start) as usize;
                let n = (body.len() - from).min(data.len() - done);
                ct[body.start + from..body.start + from + n].copy_from_slice(&data[done..done + n]);
                done += n;
            }
            // A growing file gets its new length first, in one truncate(2),
            // and the blocks after, within it. The size of a file is a
            // journalled inode field: a truncate lands whole or not at
            // all, while a write that extends a file can leave, after a
            // crash, any length the write-back reached, and lengths the
            // format cannot produce make the whole file unreadable,
            // synced blocks included (the crash enumerator,
            // tests/crash_enum.rs, found it).
            if new_size > old_size {
                self.store.set_len(self.geo.ciphertext_len(new_size))?;
            }
            // A grow writes the new blocks from the second after the old
            // last block on first, then the rest (blocks rewritten in
            // place, and the first new block) in a second call: a process
            // killed part way then leaves the old end intact, and the
            // first new block still zero above it, which marks the old end
            // even when it is a full block sealed as last (the
            // interrupted-grow recovery, FORMAT.md §6.4, `grow.rs`).
            let split = (new_size > old_size && new_last >= old_last + 2).then_some(old_last + 2);
            let res = self.seal_span(start, new_last, ct, split);
            if res.is_err() && new_size > old_size {
                // Best effort: give back the old length, so the file does
                // not keep zeros where blocks were to go.
                let _ = self.store.set_len(self.geo.ciphertext_len(old_size));
            }
            res
        })?;
        self.size = new_size;
        Ok(())
    }

    /// Seals the laid-out blocks in `ct` (block `start` first; `last` is the
    /// file's last block index) in place and writes them in one call, or,
    /// with `split`, in two: the blocks from index `split` on first, then
    /// those before it.
    fn seal_span(
        &mut self,
        start: u64,
        last: u64,
        ct: &mut [u8],
        split: Option<u64>,
    ) -> Result<()> {
        let core = self.header.core_bytes();
        let aead = &self.aead;
        let cb = self.geo.cblock() as usize;
        let seal = |(i, c): (usize, &mut [u8])| -> Result<()> {
            let idx = start + i as u64;
            aead.seal_in_place(&block_aad(&core, idx, idx == last), c)
        };
        if ct.len() / cb >= PARALLEL_BLOCKS {
            ct.par_chunks_mut(cb).enumerate().try_for_each(seal)?;
        } else {
            ct.chunks_mut(cb).enumerate().try_for_each(seal)?;
        }
        match split {
            Some(at) if at > start => {
                let (head, tail) = ct.split_at(((at - start) * cb as u64) as usize);
                self.store.write_all_at(tail, self.geo.block_offset(at))?;
                self.store
                    .write_all_at(head, self.geo.block_offset(start))?;
            }
            _ => self.store.write_all_at(ct, self.geo.block_offset(start))?,
        }
        Ok(())
    }

    /// Truncates or extends (with zeros) to `size` bytes.
    pub fn set_len(&mut self, size: u64) -> Result<()> {
        if size > MAX_SIZE {
            return Err(Error::Range("size past the largest file size"));
        }
        if size > self.size {
            let zeros = vec![0u8; HOLE_CHUNK];
            while self.size < size {
                let n = ((size - self.size) as usize).min(HOLE_CHUNK);
                self.write_at(self.size, &zeros[..n])?;
            }
            return Ok(());
        }
        if size == self.size {
            return Ok(());
        }
        let idx = self.geo.blocks(size) - 1;
        let keep = Self::block_plain_len(size, idx);
        let block_len = keep + self.geo.overhead as usize;
        let at = self.geo.block_offset(idx);
        // The new last block goes out with zeros after it to the end of its
        // slot (or of the file): a process killed before the truncate then
        // leaves a state the interrupted-grow scan recognises and completes
        // (FORMAT.md §6.4), where the old bytes left after the block would
        // make it unreadable.
        let padded = (self.geo.cblock().min(self.store.len()? - at) as usize).max(block_len);
        let mut ct = zeroize::Zeroizing::new(vec![0u8; padded]);
        if keep > 0 {
            with_scratch(&READ_SCRATCH, |old| -> Result<()> {
                self.open_span(idx, 1, old)?;
                let from = self.body(old, 0);
                let nl = self.header.suite.nonce_len();
                ct[nl..nl + keep].copy_from_slice(&old[from.start..from.start + keep]);
                old.fill(0);
                Ok(())
            })?;
        }
        let core = self.header.core_bytes();
        self.aead
            .seal_in_place(&block_aad(&core, idx, true), &mut ct[..block_len])?;
        self.store.write_all_at(&ct, at)?;
        self.store.set_len(self.geo.ciphertext_len(size))?;
        self.size = size;
        Ok(())
    }
}
