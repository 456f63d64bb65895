//! Reading a plain file: small files with one `read`; larger ones are
//! streamed a window at a time (stream.rs), so that memory stays bounded
//! whatever their size (a memory map's touched pages would count in the
//! process's resident set up to the file's size).

use std::fs::File;
use std::io::Read;

/// Files at least this large are streamed; smaller ones are read whole.
pub(crate) const STREAM_THRESHOLD: u64 = 1 << 20;

/// Bytes looked at for a NUL to call a file binary (as git and ripgrep do).
pub(crate) const BINARY_SNIFF: usize = 8 << 10;

/// Reads `file` of length `len` whole.
pub(crate) fn read(mut file: File, len: u64) -> std::io::Result<Vec<u8>> {
    let mut buf = Vec::with_capacity(usize::try_from(len).unwrap_or(0));
    file.read_to_end(&mut buf)?;
    Ok(buf)
}

/// True when the head of `bytes` holds a NUL: a binary file, not scanned.
pub(crate) fn looks_binary(bytes: &[u8]) -> bool {
    memchr::memchr(0, &bytes[..bytes.len().min(BINARY_SNIFF)]).is_some()
}
