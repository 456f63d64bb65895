//! Content format: a file header and fixed-size blocks, each sealed with an
//! AAD that binds the header, the block's index and whether it is the last.
//!
//! The last-block flag is what detects truncation or extension at a block
//! boundary (the STREAM construction's idea): the block that becomes last
//! after an attacker cuts the file was sealed as "not last". Every file has
//! at least one block (an empty file is one empty final block), so cutting a
//! file down to its header is detected too. Sparse regions are sealed blocks
//! of zeros, never host holes, so zeroed ciphertext always fails to open.
//!
//! The header's binding slots carry tags over (file ID, parent directory ID,
//! plaintext name), so a ciphertext renamed over another file's name does
//! not open. Up to four names (hard links) can be bound at once.

use crate::names::NameContext;
use crate::suite::TAG_LEN;
use crate::{random, Aead, CipherStore, Error, Result, VaultCipher};
use rayon::prelude::*;
use subtle::ConstantTimeEq;

mod grow;
mod header;
mod write;

pub use grow::InterruptedGrow;

pub use header::{Geometry, Header};

/// Plaintext bytes per block.
pub const BLOCK_SIZE: usize = 4096;
const BLOCK_SHIFT: u8 = 12;
/// Length of the header's immutable part, which every block's AAD includes.
pub const HEADER_CORE_LEN: usize = 32;
/// Number of name-binding slots in a header (the hard-link limit).
pub const BINDING_SLOTS: usize = 4;
/// Total header length.
pub const HEADER_LEN: usize = HEADER_CORE_LEN + 16 * BINDING_SLOTS;
const MAGIC: &[u8; 4] = b"PVLT";
const FORMAT_VERSION: u8 = 1;
/// Blocks sealed or opened in one call before the work is spread over threads.
const PARALLEL_BLOCKS: usize = 32;
/// Zeros sealed per step when a file is extended.
const HOLE_CHUNK: usize = 1 << 20;
/// Largest plaintext size the format accepts (keeps all offsets in u64).
const MAX_SIZE: u64 = 1 << 60;

/// One content file opened for random-access reads and writes.
pub struct ContentFile<S> {
    store: S,
    header: Header,
    aead: Aead,
    geo: Geometry,
    size: u64,
}

fn block_aad(core: &[u8; HEADER_CORE_LEN], index: u64, last: bool) -> [u8; HEADER_CORE_LEN + 9] {
    let mut aad = [0u8; HEADER_CORE_LEN + 9];
    aad[..HEADER_CORE_LEN].copy_from_slice(core);
    aad[HEADER_CORE_LEN..HEADER_CORE_LEN + 8].copy_from_slice(&index.to_be_bytes());
    aad[HEADER_CORE_LEN + 8] = last as u8;
    aad
}

/// The tag covers the whole header core, not just the file ID, so the
/// suite and data-key version cannot be changed by someone without the keys
/// (a later whole-block write would otherwise seal under their choice).
fn binding_tag(
    cipher: &VaultCipher,
    core: &[u8; HEADER_CORE_LEN],
    at: NameContext<'_>,
) -> [u8; 16] {
    cipher.binding_tag(b"pivault file v1", &[core, at.dir_id, at.name])
}

impl<S: CipherStore> ContentFile<S> {
    /// Creates an empty file in `store` (which should be empty) under the
    /// vault's current suite and data-key version, bound to `at`.
    pub fn create(store: S, cipher: &VaultCipher, at: NameContext<'_>) -> Result<Self> {
        Self::create_with_id(store, cipher, random::array::<16>()?, at)
    }

    /// Like [`ContentFile::create`], but keeps an existing file's ID: for
    /// re-encryption under a newer data-key version, so that what is bound
    /// to the file ID (extended attributes) stays valid. The file key
    /// differs because the data key does; never reuse an ID at the same
    /// version.
    pub fn create_with_id(
        store: S,
        cipher: &VaultCipher,
        file_id: [u8; 16],
        at: NameContext<'_>,
    ) -> Result<Self> {
        let mut header = Header {
            suite: cipher.suite(),
            key_version: cipher.keyring().current_version(),
            file_id,
            bindings: [[0u8; 16]; BINDING_SLOTS],
        };
        header.bindings[0] = binding_tag(cipher, &header.core_bytes(), at);
        Self::create_with_header(store, cipher, header)
    }

    fn create_with_header(mut store: S, cipher: &VaultCipher, header: Header) -> Result<Self> {
        let aead = cipher.file_aead(header.suite, header.key_version, &header.file_id)?;
        let geo = Geometry::new(header.suite);
        let mut bytes = header.to_bytes().to_vec();
        let mut empty = vec![0u8; geo.overhead as usize];
        aead.seal_into(&block_aad(&header.core_bytes(), 0, true), &[], &mut empty)?;
        bytes.extend_from_slice(&empty);
        store.set_len(0)?;
        store.write_all_at(&bytes, 0)?;
        Ok(ContentFile {
            store,
            header,
            aead,
            geo,
            size: 0,
        })
    }

    /// Opens an existing file reached by `at`. Fails when the header is
    /// damaged, the length is impossible, or the file is not bound to `at`.
    pub fn open(store: S, cipher: &VaultCipher, at: NameContext<'_>) -> Result<Self> {
        let file = Self::open_unbound(store, cipher)?;
        if !file.is_bound_to(cipher, at) {
            return Err(Error::Binding);
        }
        Ok(file)
    }

    /// Opens a file without checking which name it is bound to (for
    /// re-encryption and diagnostics, which already hold the binding).
    fn open_unbound(store: S, cipher: &VaultCipher) -> Result<Self> {
        let mut hb = [0u8; HEADER_LEN];
        let len = store.len()?;
        if len < HEADER_LEN as u64 {
            return Err(Error::Length(len));
        }
        store.read_exact_at(&mut hb, 0)?;
        let header = Header::parse(&hb)?;
        let geo = Geometry::new(header.suite);
        let size = geo.plaintext_len(len)?;
        let aead = cipher.file_aead(header.suite, header.key_version, &header.file_id)?;
        Ok(ContentFile {
            store,
            header,
            aead,
            geo,
            size,
        })
    }

    /// True when one of the header's binding slots names `at`.
    pub fn is_bound_to(&self, cipher: &VaultCipher, at: NameContext<'_>) -> bool {
        let want = binding_tag(cipher, &self.header.core_bytes(), at);
        let mut hit = subtle::Choice::from(0);
        for slot in &self.header.bindings {
            hit |= slot.ct_eq(&want);
        }
        hit.into()
    }

    fn write_header(&mut self) -> Result<()> {
        self.store.write_all_at(&self.header.to_bytes(), 0)?;
        Ok(())
    }

    /// Binds one more name (a hard link). At most [`BINDING_SLOTS`].
    pub fn add_binding(&mut self, cipher: &VaultCipher, at: NameContext<'_>) -> Result<()> {
        if self.is_bound_to(cipher, at) {
            return Ok(());
        }
        let tag = binding_tag(cipher, &self.header.core_bytes(), at);
        let slot = self
            .header
            .bindings
            .iter_mut()
            .find(|s| **s == [0u8; 16])
            .ok_or(Error::Range("a file can have at most 4 names (hard links)"))?;
        *slot = tag;
        self.write_header()
    }

    /// Unbinds a name (unlink of one hard link, or the old name of a rename).
    pub fn remove_binding(&mut self, cipher: &VaultCipher, at: NameContext<'_>) -> Result<()> {
        let tag = binding_tag(cipher, &self.header.core_bytes(), at);
        for slot in self.header.bindings.iter_mut() {
            if bool::from(slot.ct_eq(&tag)) {
                *slot = [0u8; 16];
            }
        }
        self.write_header()
    }

    /// Moves the binding from `from` to `to` in one header write (rename).
    pub fn rebind(
        &mut self,
        cipher: &VaultCipher,
        from: NameContext<'_>,
        to: NameContext<'_>,
    ) -> Result<()> {
        let old = binding_tag(cipher, &self.header.core_bytes(), from);
        let new = binding_tag(cipher, &self.header.core_bytes(), to);
        let mut done = false;
        for slot in self.header.bindings.iter_mut() {
            if bool::from(slot.ct_eq(&old)) && !done {
                *slot = new;
                done = true;
            }
        }
        if !done {
            return Err(Error::Binding);
        }
        self.write_header()
    }

    /// The header.
    pub fn header(&self) -> &Header {
        &self.header
    }

    /// Plaintext size.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The underlying store.
    pub fn store(&self) -> &S {
        &self.store
    }

    /// Gives back the underlying store.
    pub fn into_store(self) -> S {
        self.store
    }

    fn last_index(&self) -> u64 {
        self.geo.blocks(self.size) - 1
    }

    fn block_plain_len(size: u64, index: u64) -> usize {
        let start = index * BLOCK_SIZE as u64;
        (size.saturating_sub(start)).min(BLOCK_SIZE as u64) as usize
    }

    /// Reads the ciphertext of blocks `first..first + count` into `ct` and
    /// opens each in place (in parallel for long spans). Block `i` of the
    /// span then sits at `i * cblock` as nonce, plaintext, tag. On any
    /// failure `ct` is zeroed and the lowest failing index is reported.
    fn open_span(&self, first: u64, count: u64, ct: &mut Vec<u8>) -> Result<()> {
        let start = self.geo.block_offset(first);
        let end = self
            .geo
            .ciphertext_len(self.size)
            .min(self.geo.block_offset(first + count));
        ct.clear();
        ct.resize((end - start) as usize, 0);
        self.store.read_exact_at(ct, start)?;
        let last = self.last_index();
        let core = self.header.core_bytes();
        let aead = &self.aead;
        let open = |(i, c): (usize, &mut [u8])| -> Option<u64> {
            let idx = first + i as u64;
            (!aead.open_in_place(&block_aad(&core, idx, idx == last), c)).then_some(idx)
        };
        let cb = self.geo.cblock() as usize;
        let failed: Vec<u64> = if count as usize >= PARALLEL_BLOCKS {
            ct.par_chunks_mut(cb).enumerate().filter_map(open).collect()
        } else {
            ct.chunks_mut(cb).enumerate().filter_map(open).collect()
        };
        // A block before the last may still carry the last flag: a file
        // grown past a full last block leaves it as it was (see
        // `write_at`). The failed attempt wiped its ciphertext: read it
        // again and open it as a last block.
        let mut still = None;
        for idx in failed {
            let at = ((idx - first) as usize) * cb;
            let c = &mut ct[at..(at + cb).min(end as usize - start as usize)];
            let ok = idx != last
                && self
                    .store
                    .read_exact_at(c, self.geo.block_offset(idx))
                    .is_ok()
                && aead.open_in_place(&block_aad(&core, idx, true), c);
            if !ok {
                still = Some(still.map_or(idx, |s: u64| s.min(idx)));
            }
        }
        let failed = still;
        if let Some(index) = failed {
            ct.fill(0);
            return Err(Error::BlockAuth { index });
        }
        Ok(())
    }

    /// The plaintext of block `i` of a span opened by `open_span` or laid
    /// out by `write_at`.
    fn body(&self, span: &[u8], i: usize) -> std::ops::Range<usize> {
        let cb = self.geo.cblock() as usize;
        let nl = self.header.suite.nonce_len();
        let at = i * cb;
        let len = span.len().saturating_sub(at).min(cb) - self.geo.overhead as usize;
        at + nl..at + nl + len
    }

    /// Reads up to `buf.len()` bytes at `offset`; returns how many (0 at or
    /// past the end). Blocks are decrypted straight into `buf` (through a
    /// wiped stack buffer for partly read blocks); if any block fails, all of
    /// `buf[..n]` is zeroed and the error names the lowest failing block.
    pub fn read_at(&self, offset: u64, buf: &mut [u8]) -> Result<usize> {
        if offset >= self.size || buf.is_empty() {
            return Ok(0);
        }
        let len = (buf.len() as u64).min(self.size - offset) as usize;
        let bs = BLOCK_SIZE as u64;
        let first = offset / bs;
        let last = (offset + len as u64 - 1) / bs;
        let count = last - first + 1;
        let out = &mut buf[..len];
        let res = with_scratch(&READ_SCRATCH, |ct| -> Result<()> {
            let start = self.geo.block_offset(first);
            let end = self
                .geo
                .ciphertext_len(self.size)
                .min(self.geo.block_offset(last + 1));
            ct.clear();
            ct.resize((end - start) as usize, 0);
            self.store.read_exact_at(ct, start)?;
            // Pair each ciphertext block with the part of `out` it fills.
            let cb = self.geo.cblock() as usize;
            let mut jobs = Vec::with_capacity(count as usize);
            let mut rest = &mut *out;
            for (i, c) in ct.chunks(cb).enumerate() {
                let idx = first + i as u64;
                let skip = if i == 0 {
                    (offset - first * bs) as usize
                } else {
                    0
                };
                let body_len = c.len() - self.geo.overhead as usize;
                let n = (body_len - skip).min(rest.len());
                let (dst, tail) = std::mem::take(&mut rest).split_at_mut(n);
                rest = tail;
                jobs.push((idx, c, skip, dst));
            }
            let last_index = self.last_index();
            let core = self.header.core_bytes();
            let nl = self.header.suite.nonce_len();
            let aead = &self.aead;
            let open = |(idx, c, skip, dst): (u64, &[u8], usize, &mut [u8])| -> Option<u64> {
                let aad = block_aad(&core, idx, idx == last_index);
                let (nonce, rest) = c.split_at(nl);
                let (body, tag) = rest.split_at(rest.len() - TAG_LEN);
                let open_as = |aad: &[u8], dst: &mut [u8]| -> bool {
                    if skip == 0 && dst.len() == body.len() {
                        dst.copy_from_slice(body);
                        aead.open_detached(aad, nonce, dst, tag)
                    } else {
                        let mut tmp = zeroize::Zeroizing::new([0u8; BLOCK_SIZE]);
                        let t = &mut tmp[..body.len()];
                        t.copy_from_slice(body);
                        let ok = aead.open_detached(aad, nonce, t, tag);
                        if ok {
                            dst.copy_from_slice(&t[skip..skip + dst.len()]);
                        }
                        ok
                    }
                };
                // A block before the last may still carry the last flag
                // (a file grown past a full last block; see `write_at`).
                let ok = open_as(&aad, dst)
                    || (idx != last_index && open_as(&block_aad(&core, idx, true), dst));
                (!ok).then_some(idx)
            };
            let failed = if jobs.len() >= PARALLEL_BLOCKS {
                jobs.into_par_iter().filter_map(open).min()
            } else {
                jobs.into_iter().filter_map(open).min()
            };
            match failed {
                Some(index) => Err(Error::BlockAuth { index }),
                None => Ok(()),
            }
        });
        if let Err(e) = res {
            out.fill(0);
            return Err(e);
        }
        Ok(len)
    }

    /// Opens every block and returns the indices of those that fail. An
    /// empty list means the whole file is intact.
    pub fn verify(&self) -> Result<Vec<u64>> {
        const BATCH: u64 = 256;
        let mut bad = Vec::new();
        let n = self.geo.blocks(self.size);
        let mut ct = Vec::new();
        let mut first = 0;
        while first < n {
            let count = BATCH.min(n - first);
            if let Err(e) = self.open_span(first, count, &mut ct) {
                if !matches!(e, Error::BlockAuth { .. }) {
                    return Err(e);
                }
                for idx in first..first + count {
                    if self.open_span(idx, 1, &mut ct).is_err() {
                        bad.push(idx);
                    }
                }
            }
            first += count;
        }
        ct.fill(0);
        Ok(bad)
    }
}

/// Runs `f` with a thread's reusable buffer, or a fresh one if the thread
/// is already using it (a rayon worker may run a second job while waiting).
fn with_scratch<R>(
    key: &'static std::thread::LocalKey<std::cell::RefCell<Vec<u8>>>,
    f: impl FnOnce(&mut Vec<u8>) -> R,
) -> R {
    key.with(|cell| match cell.try_borrow_mut() {
        Ok(mut buf) => f(&mut buf),
        Err(_) => f(&mut Vec::new()),
    })
}

thread_local! {
    /// Reused span buffers: a 1 MiB FUSE request should not cost a fresh
    /// allocation and its page faults.
    static READ_SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
    static WRITE_SCRATCH: std::cell::RefCell<Vec<u8>> = const { std::cell::RefCell::new(Vec::new()) };
}

impl<S: CipherStore> ContentFile<S> {
    /// Seals one block exactly as the format does (for benches and
    /// differential tests): `out` is `plain.len() + overhead` bytes.
    pub fn seal_block_into(
        &self,
        index: u64,
        last: bool,
        plain: &[u8],
        out: &mut [u8],
    ) -> Result<()> {
        self.aead.seal_into(
            &block_aad(&self.header.core_bytes(), index, last),
            plain,
            out,
        )
    }
}

/// The AAD of block `index` of a file with header `header`, as FORMAT.md
/// defines it (exposed for differential tests against other AES-GCM code).
pub fn block_aad_for(header: &Header, index: u64, last: bool) -> Vec<u8> {
    block_aad(&header.core_bytes(), index, last).to_vec()
}

#[allow(dead_code)]
const _: () = assert!(TAG_LEN == 16);

#[cfg(test)]
mod tests;
