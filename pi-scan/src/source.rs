//! Reading a plain file's bytes: small files with one `read`, large ones
//! memory-mapped. This module holds the crate's only `unsafe` block.

use std::fs::File;
use std::io::Read;
use std::ops::Deref;

/// Files at least this large are memory-mapped; smaller ones are read
/// (a mapping costs more than a read for small files).
pub(crate) const MMAP_THRESHOLD: u64 = 1 << 20;

/// Bytes looked at for a NUL to call a file binary (as git and ripgrep do).
pub(crate) const BINARY_SNIFF: usize = 8 << 10;

/// A file's contents, mapped or owned.
pub(crate) enum Contents {
    Mapped(memmap2::Mmap),
    Owned(Vec<u8>),
}

impl Deref for Contents {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            Contents::Mapped(m) => m,
            Contents::Owned(v) => v,
        }
    }
}

/// Reads `file` of length `len`.
pub(crate) fn read(mut file: File, len: u64) -> std::io::Result<Contents> {
    if len >= MMAP_THRESHOLD {
        #[allow(unsafe_code)]
        // SAFETY: the map is read-only and private, and we only read through
        // it. Another process truncating the file while we scan it can raise
        // SIGBUS (as with ripgrep's mmap path); changing it can at worst
        // give us inconsistent bytes, which the scanner treats as text like
        // any other. Nothing is ever written through the mapping.
        let map = unsafe { memmap2::Mmap::map(&file)? };
        #[cfg(unix)]
        let _ = map.advise(memmap2::Advice::Sequential);
        return Ok(Contents::Mapped(map));
    }
    let mut buf = Vec::with_capacity(len as usize);
    file.read_to_end(&mut buf)?;
    Ok(Contents::Owned(buf))
}

/// True when the head of `bytes` holds a NUL: a binary file, not scanned.
pub(crate) fn looks_binary(bytes: &[u8]) -> bool {
    memchr::memchr(0, &bytes[..bytes.len().min(BINARY_SNIFF)]).is_some()
}
