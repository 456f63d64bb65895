//! Plain text in the encodings firms' exports use. The detector works on
//! ASCII bytes (digits, keywords, capitalised names), so:
//!
//! * UTF-8, and ASCII-compatible 8-bit encodings (Latin-1, Windows-1252,
//!   the other ISO 8859 and Windows code pages), are scanned as they are:
//!   every ASCII character is the same byte in all of them, and no byte of
//!   a non-ASCII character is a digit or a letter the detector reads, so
//!   decoding them first would change no finding (and cost a copy). A
//!   UTF-8 byte-order mark is dropped.
//! * UTF-16 has a NUL beside every ASCII character: with a byte-order mark
//!   (Excel's "Unicode Text", Windows PowerShell's `Out-File`, Notepad's
//!   "Unicode"), or without one when the first 8 KiB are plainly UTF-16
//!   (every other byte NUL: SQL Server `bcp -w`), it is decoded to UTF-8
//!   with `encoding_rs` before scanning.
//! * Anything else with a NUL in its first 8 KiB is binary and skipped.

use crate::source::{looks_binary, BINARY_SNIFF};
use std::borrow::Cow;

/// How a text is to be read, judged by its head.
pub(crate) enum Encoding {
    /// Scanned as it is, after skipping this many bytes (a UTF-8 BOM).
    Bytes(usize),
    /// Decoded to UTF-8 first.
    Decode(&'static encoding_rs::Encoding),
    /// Not text.
    Binary,
}

/// How the text beginning with `head` (its first 8 KiB or more) is read.
pub(crate) fn encoding(head: &[u8]) -> Encoding {
    if head.starts_with(b"\xEF\xBB\xBF") {
        return Encoding::Bytes(3);
    }
    match head {
        [0xFF, 0xFE, 0, 0, ..] => Encoding::Binary, // UTF-32LE: not supported
        [0xFF, 0xFE, ..] => Encoding::Decode(encoding_rs::UTF_16LE),
        [0xFE, 0xFF, ..] => Encoding::Decode(encoding_rs::UTF_16BE),
        _ if !looks_binary(head) => Encoding::Bytes(0),
        _ => match utf16_without_bom(head) {
            Some(true) => Encoding::Decode(encoding_rs::UTF_16LE),
            Some(false) => Encoding::Decode(encoding_rs::UTF_16BE),
            None => Encoding::Binary,
        },
    }
}

/// The text to scan in `bytes`, or None for a binary file.
pub(crate) fn decode(bytes: &[u8]) -> Option<Cow<'_, [u8]>> {
    match encoding(bytes) {
        Encoding::Bytes(skip) => Some(Cow::Borrowed(&bytes[skip..])),
        Encoding::Binary => None,
        Encoding::Decode(enc) => {
            // `decode` drops the byte-order mark; malformed units become
            // U+FFFD.
            let (text, _, _) = enc.decode(bytes);
            Some(Cow::Owned(text.into_owned().into_bytes()))
        }
    }
}

/// Pushes everything `r` yields into `out` as text, decoded as its head
/// says, a window at a time. False for binary (nothing pushed).
pub(crate) fn stream_into(
    mut r: impl std::io::Read,
    out: &mut crate::stream::Stream,
) -> std::io::Result<bool> {
    let mut buf = vec![0u8; crate::stream::WINDOW];
    let (mut n, mut err) = fill(&mut r, &mut buf);
    let mut decoder = match encoding(&buf[..n]) {
        Encoding::Binary => return Ok(false),
        Encoding::Bytes(skip) => {
            out.push(&buf[skip.min(n)..n]);
            None
        }
        Encoding::Decode(enc) => Some(enc.new_decoder()),
    };
    let mut utf8 = Vec::new();
    let mut first = true;
    loop {
        // What was read before an error (a truncated member) is scanned.
        let last = n == 0 || err.is_some();
        if let Some(d) = decoder.as_mut() {
            let src = &buf[..n];
            let most = d.max_utf8_buffer_length(src.len());
            utf8.resize(most.unwrap_or(4 * src.len() + 16), 0);
            let (_, _, written, _) = d.decode_to_utf8(src, &mut utf8, last);
            out.push(&utf8[..written]);
        } else if !first {
            out.push(&buf[..n]);
        }
        if let Some(e) = err {
            return Err(e);
        }
        if n == 0 {
            return Ok(true);
        }
        first = false;
        (n, err) = fill(&mut r, &mut buf);
    }
}

/// Reads until `buf` is full or the input ends or fails: the bytes read,
/// and the error that stopped it.
fn fill(r: &mut impl std::io::Read, buf: &mut [u8]) -> (usize, Option<std::io::Error>) {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return (n, Some(e)),
        }
    }
    (n, None)
}

/// Some(true) for UTF-16LE, Some(false) for UTF-16BE: in the first 8 KiB
/// nearly every odd (LE) or even (BE) byte is NUL and nearly no other.
fn utf16_without_bom(bytes: &[u8]) -> Option<bool> {
    let head = &bytes[..bytes.len().min(BINARY_SNIFF) & !1];
    let pairs = head.len() / 2;
    if pairs < 8 {
        return None;
    }
    let (mut even, mut odd) = (0usize, 0usize);
    for p in head.chunks_exact(2) {
        even += usize::from(p[0] == 0);
        odd += usize::from(p[1] == 0);
    }
    let most = pairs * 9 / 10;
    let few = pairs / 20;
    match (even, odd) {
        (e, o) if o >= most && e <= few => Some(true),
        (e, o) if e >= most && o <= few => Some(false),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn utf16(s: &str, le: bool, bom: bool) -> Vec<u8> {
        let mut out = Vec::new();
        if bom {
            out.extend_from_slice(if le { b"\xFF\xFE" } else { b"\xFE\xFF" });
        }
        for u in s.encode_utf16() {
            out.extend_from_slice(&if le { u.to_le_bytes() } else { u.to_be_bytes() });
        }
        out
    }

    #[test]
    fn utf16_with_and_without_a_bom_is_decoded() {
        let s = "Name: José Núñez\nSSN: 536-22-1234\n";
        for (le, bom) in [(true, true), (false, true), (true, false), (false, false)] {
            let bytes = utf16(s, le, bom);
            let got = decode(&bytes).unwrap();
            assert_eq!(&*got, s.as_bytes(), "le={le} bom={bom}");
        }
    }

    #[test]
    fn latin1_is_scanned_as_it_is_and_binary_is_skipped() {
        let latin1 = b"Nome: Jos\xe9 N\xfa\xf1ez\nN\xba SSN 536-22-1234\n";
        assert_eq!(&*decode(latin1).unwrap(), latin1);
        assert_eq!(&*decode(b"\xEF\xBB\xBFSSN 1").unwrap(), b"SSN 1");
        assert!(decode(b"\x7fELF\x02\x01\x01\0\0\0\0\0\0\0\0\0\x03\0>\0\x01\0\0\0").is_none());
        assert!(decode(&[0u8; 64]).is_none());
    }
}
