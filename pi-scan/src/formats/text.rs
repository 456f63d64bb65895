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

/// The text to scan in `bytes`, or None for a binary file.
pub(crate) fn decode(bytes: &[u8]) -> Option<Cow<'_, [u8]>> {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return Some(Cow::Borrowed(rest));
    }
    let enc = match bytes {
        [0xFF, 0xFE, 0, 0, ..] => return None, // UTF-32LE: not supported
        [0xFF, 0xFE, ..] => encoding_rs::UTF_16LE,
        [0xFE, 0xFF, ..] => encoding_rs::UTF_16BE,
        _ if !looks_binary(bytes) => return Some(Cow::Borrowed(bytes)),
        _ => match utf16_without_bom(bytes)? {
            true => encoding_rs::UTF_16LE,
            false => encoding_rs::UTF_16BE,
        },
    };
    // `decode` drops the byte-order mark; malformed units become U+FFFD.
    let (text, _, _) = enc.decode(bytes);
    Some(Cow::Owned(text.into_owned().into_bytes()))
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
