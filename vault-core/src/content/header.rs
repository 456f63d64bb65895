//! The content header (magic, suite, block size, key version, file ID,
//! binding slots) and the size arithmetic that maps a plaintext size to a
//! ciphertext length and back (FORMAT.md §6.1 and §6.3).

use super::binding_tag;
use super::{
    BINDING_SLOTS, BLOCK_SHIFT, BLOCK_SIZE, FORMAT_VERSION, HEADER_CORE_LEN, HEADER_LEN, MAGIC,
};
use crate::names::NameContext;
use crate::{Error, Result, Suite, VaultCipher};
use subtle::ConstantTimeEq;

/// A file header: format version, suite, block size, data-key version,
/// random file ID, and the name-binding slots.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Header {
    /// AEAD suite of this file's blocks.
    pub suite: Suite,
    /// Data-key version the file key is derived from.
    pub key_version: u32,
    /// Random 128-bit file ID (the HKDF context of the file key).
    pub file_id: [u8; 16],
    pub(super) bindings: [[u8; 16]; BINDING_SLOTS],
}

impl Header {
    /// Moves the binding of the name `at` from one tree key to another
    /// (`reencrypt --retire` moving the tree, FORMAT.md §5): the slot
    /// holding `old`'s tag gets `new`'s. Returns `Ok(false)` when a slot
    /// already holds `new`'s tag (a resumed move; an `old` slot left beside
    /// it is cleared), and [`Error::Binding`] when neither is there.
    pub fn rekey_binding(
        &mut self,
        old: &VaultCipher,
        new: &VaultCipher,
        at: NameContext<'_>,
    ) -> Result<bool> {
        let core = self.core_bytes();
        let (was, now) = (binding_tag(old, &core, at), binding_tag(new, &core, at));
        let has_new = self.bindings.iter().any(|s| bool::from(s.ct_eq(&now)));
        let mut changed = false;
        for slot in self.bindings.iter_mut() {
            if bool::from(slot.ct_eq(&was)) {
                *slot = if has_new || changed { [0u8; 16] } else { now };
                changed = true;
            }
        }
        match (has_new, changed) {
            (false, false) => Err(Error::Binding),
            (true, false) => Ok(false),
            _ => Ok(true),
        }
    }

    /// The immutable first 32 bytes.
    pub fn core_bytes(&self) -> [u8; HEADER_CORE_LEN] {
        let mut b = [0u8; HEADER_CORE_LEN];
        b[..4].copy_from_slice(MAGIC);
        b[4] = FORMAT_VERSION;
        b[5] = self.suite.id();
        b[6] = BLOCK_SHIFT;
        b[8..12].copy_from_slice(&self.key_version.to_be_bytes());
        b[12..28].copy_from_slice(&self.file_id);
        b
    }

    /// The full header.
    pub fn to_bytes(&self) -> [u8; HEADER_LEN] {
        let mut b = [0u8; HEADER_LEN];
        b[..HEADER_CORE_LEN].copy_from_slice(&self.core_bytes());
        for (i, slot) in self.bindings.iter().enumerate() {
            let at = HEADER_CORE_LEN + 16 * i;
            b[at..at + 16].copy_from_slice(slot);
        }
        b
    }

    /// Parses a header (its authenticity is checked by every block's AAD).
    pub fn parse(b: &[u8]) -> Result<Header> {
        if b.len() < HEADER_LEN {
            return Err(Error::Header("shorter than a header"));
        }
        if &b[..4] != MAGIC {
            return Err(Error::Header("bad magic: not a pivault content file"));
        }
        if b[4] != FORMAT_VERSION {
            return Err(Error::Header(
                "unsupported format version (written by a newer pivault?)",
            ));
        }
        let suite = Suite::from_id(b[5]).ok_or(Error::Header("unknown cipher suite"))?;
        if b[6] != BLOCK_SHIFT {
            return Err(Error::Header("unsupported block size"));
        }
        if b[7] != 0 || b[28..32] != [0; 4] {
            return Err(Error::Header("reserved bytes are not zero"));
        }
        let key_version = u32::from_be_bytes(b[8..12].try_into().expect("4 bytes"));
        let mut file_id = [0u8; 16];
        file_id.copy_from_slice(&b[12..28]);
        let mut bindings = [[0u8; 16]; BINDING_SLOTS];
        for (i, slot) in bindings.iter_mut().enumerate() {
            let at = HEADER_CORE_LEN + 16 * i;
            slot.copy_from_slice(&b[at..at + 16]);
        }
        Ok(Header {
            suite,
            key_version,
            file_id,
            bindings,
        })
    }

    /// Number of names bound.
    pub fn binding_count(&self) -> usize {
        self.bindings.iter().filter(|s| **s != [0u8; 16]).count()
    }
}

/// Size arithmetic of the content format for one suite.
#[derive(Clone, Copy, Debug)]
pub struct Geometry {
    pub(super) overhead: u64,
}

impl Geometry {
    /// Geometry for `suite` with the format's block size.
    pub fn new(suite: Suite) -> Geometry {
        Geometry {
            overhead: suite.overhead() as u64,
        }
    }

    const BS: u64 = BLOCK_SIZE as u64;

    pub(super) fn cblock(&self) -> u64 {
        Self::BS + self.overhead
    }

    /// Number of blocks a plaintext of `size` bytes occupies (at least 1).
    pub fn blocks(&self, size: u64) -> u64 {
        size.div_ceil(Self::BS).max(1)
    }

    /// Byte offset of block `index` in the ciphertext file.
    pub fn block_offset(&self, index: u64) -> u64 {
        HEADER_LEN as u64 + index * self.cblock()
    }

    /// Ciphertext file length for a plaintext of `size` bytes.
    pub fn ciphertext_len(&self, size: u64) -> u64 {
        let n = self.blocks(size);
        self.block_offset(n - 1) + (size - (n - 1) * Self::BS) + self.overhead
    }

    /// Plaintext size for a ciphertext file of `len` bytes, or an error when
    /// no plaintext produces that length (a cut or padded file).
    pub fn plaintext_len(&self, len: u64) -> Result<u64> {
        let body = len
            .checked_sub(HEADER_LEN as u64)
            .ok_or(Error::Length(len))?;
        let full = body / self.cblock();
        let rem = body % self.cblock();
        let size = if rem == 0 {
            full * Self::BS
        } else if rem < self.overhead || (full > 0 && rem == self.overhead) {
            return Err(Error::Length(len));
        } else {
            full * Self::BS + (rem - self.overhead)
        };
        if size == 0 && rem == 0 {
            return Err(Error::Length(len));
        }
        Ok(size)
    }
}
