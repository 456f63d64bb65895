//! The document information dictionary (`/Info` in the trailer): Title,
//! Subject, Keywords, Author, Creator, Producer and any custom entry a
//! tool wrote. Viewers show it as the document's properties and it is
//! kept when pages are edited, so a name and a number typed into a title
//! travel with the file however its pages change.
//!
//! Its strings are PDF text strings: UTF-16BE after a byte order mark, or
//! UTF-8 after one (PDF 2.0), or else PDFDocEncoding. They are decoded
//! leniently (a lone surrogate in a damaged string becomes U+FFFD rather
//! than losing the whole entry).

use crate::detect::Layout;
use crate::formats::Part;
use lopdf::{Dictionary, Document, Object, ObjectId};
use memchr::memmem;

/// The part holding the information dictionary's text.
pub(crate) const PART: &str = "properties";

/// Dates say when, never who: left out so that their 14 digits are not
/// read as numbers.
const DATES: [&[u8]; 2] = [b"CreationDate", b"ModDate"];

/// The information dictionary of a file that loaded, as a part, when it
/// holds any text.
pub(crate) fn intact(doc: &Document) -> Option<Part> {
    let info = doc.trailer.get(b"Info").ok()?;
    part(doc, info)
}

/// The information dictionary of a damaged file: the object a trailer
/// (or a cross-reference stream's dictionary) names as `/Info N G R`,
/// the last such name first, as an incremental save's trailer replaces
/// the one before it.
pub(crate) fn recovered(doc: &Document, bytes: &[u8]) -> Option<Part> {
    let named: Vec<ObjectId> = memmem::find_iter(bytes, b"/Info")
        .filter_map(|at| reference(&bytes[at + b"/Info".len()..]))
        .collect();
    named
        .into_iter()
        .rev()
        .find_map(|id| part(doc, &Object::Reference(id)))
}

/// `N G R` at the start of `b`, after white space.
fn reference(b: &[u8]) -> Option<ObjectId> {
    let mut rest = b;
    let mut number = || -> Option<u64> {
        let start = rest.iter().position(|c| !c.is_ascii_whitespace())?;
        let len = rest[start..]
            .iter()
            .take_while(|c| c.is_ascii_digit())
            .count();
        // Ten digits are more than any object number a file can hold.
        if len == 0 || len > 10 {
            return None;
        }
        let n = std::str::from_utf8(&rest[start..start + len])
            .ok()?
            .parse()
            .ok()?;
        rest = &rest[start + len..];
        Some(n)
    };
    let num = u32::try_from(number()?).ok()?;
    let generation = u16::try_from(number()?).ok()?;
    let r = rest.iter().find(|c| !c.is_ascii_whitespace())?;
    (*r == b'R').then_some((num, generation))
}

/// The text strings of the dictionary `info` is or refers to, one a line.
fn part(doc: &Document, info: &Object) -> Option<Part> {
    let dict: &Dictionary = match doc.dereference(info).ok()?.1 {
        Object::Dictionary(d) => d,
        _ => return None,
    };
    let mut text = String::new();
    for (key, value) in dict.iter() {
        if DATES.contains(&key.as_slice()) {
            continue;
        }
        // A value may itself be a reference to a string object.
        let Ok((_, Object::String(s, _))) = doc.dereference(value) else {
            continue;
        };
        let s = decode(s);
        if !s.trim().is_empty() {
            text.push_str(s.trim());
            text.push('\n');
        }
    }
    (!text.is_empty()).then(|| Part {
        name: Some(PART.to_owned()),
        text: text.into_bytes(),
        layout: Layout::Plain,
    })
}

/// A PDF text string (PDF 32000-2 §7.9.2.2).
fn decode(s: &[u8]) -> String {
    if let Some(utf16) = s.strip_prefix(b"\xFE\xFF") {
        let units: Vec<u16> = utf16
            .chunks(2)
            .map(|c| u16::from_be_bytes([c[0], c.get(1).copied().unwrap_or(0)]))
            .collect();
        return String::from_utf16_lossy(&units);
    }
    if let Some(utf8) = s.strip_prefix(b"\xEF\xBB\xBF") {
        return String::from_utf8_lossy(utf8).into_owned();
    }
    // PDFDocEncoding: lopdf decodes it and never fails on it.
    lopdf::decode_text_string(&Object::string_literal(s.to_vec())).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;
    use lopdf::{dictionary, StringFormat};

    fn utf16(s: &str) -> Object {
        let mut b = vec![0xFE, 0xFF];
        b.extend(s.encode_utf16().flat_map(u16::to_be_bytes));
        Object::String(b, StringFormat::Hexadecimal)
    }

    fn text(p: Option<Part>) -> String {
        String::from_utf8(p.expect("a part").text).unwrap()
    }

    #[test]
    fn the_information_dictionary_is_read_in_both_encodings_without_dates() {
        let mut doc = Document::with_version("1.7");
        let info = doc.add_object(dictionary! {
            "Title" => utf16("Employee Ana Silva, SSN 536-22-1234"),
            // 0x8D is a left double quote in PDFDocEncoding.
            "Subject" => Object::string_literal(b"\x8DCard 4111 1111 1111 1111".to_vec()),
            "CreationDate" => Object::string_literal("D:20261203183239Z"),
            "Trapped" => "False",
        });
        doc.trailer.set("Info", info);
        let got = intact(&doc);
        assert_eq!(got.as_ref().and_then(|p| p.name.as_deref()), Some(PART));
        assert_eq!(
            text(got),
            "Employee Ana Silva, SSN 536-22-1234\n\u{201C}Card 4111 1111 1111 1111\n"
        );
    }

    #[test]
    fn a_damaged_file_s_information_is_found_by_its_trailer_reference() {
        let mut doc = Document::with_version("1.7");
        doc.objects.insert(
            (7, 0),
            Object::Dictionary(dictionary! { "Keywords" => utf16("SSN 536-22-1234") }),
        );
        let bytes = b"trailer\n<</Size 9/Root 1 0 R/Info 7 0 R>>\n%%EOF\ntrailer<</Info 99 0 R>>";
        assert_eq!(text(recovered(&doc, bytes)), "SSN 536-22-1234\n");
        assert!(recovered(&doc, b"/Info 8 0 R /Info x").is_none());
        assert_eq!(reference(b" 12\n3 R"), Some((12, 3)));
        assert_eq!(reference(b" 12 0 obj"), None);
    }

    /// The whole path: a file whose cross-reference table is gone is
    /// recovered, and its information read with the pages' text.
    #[test]
    fn a_damaged_file_s_properties_are_read() {
        let mut doc = Document::with_version("1.7");
        let info = doc.add_object(dictionary! { "Title" => utf16("Employee SSN 536-22-1234") });
        doc.trailer.set("Info", info);
        let mut bytes = Vec::new();
        doc.save_to(&mut bytes).unwrap();
        let xref = memmem::rfind(&bytes, b"xref").unwrap();
        bytes[xref..xref + 4].copy_from_slice(b"XXXX");
        let ctx = crate::formats::Ctx::new();
        let parts = super::super::pages(&bytes, &ctx).unwrap();
        let p = parts.iter().find(|p| p.name.as_deref() == Some(PART));
        assert_eq!(
            p.map(|p| &p.text[..]),
            Some(&b"Employee SSN 536-22-1234\n"[..])
        );
        let (gaps, _) = ctx.into_results();
        assert!(gaps.iter().any(|g| g.contains("damaged")), "{gaps:?}");
    }

    #[test]
    fn a_lone_surrogate_spoils_one_character_not_the_entry() {
        let s = [0xFE, 0xFF, 0xD8, 0x00, 0, b'5', 0, b'3', 0, b'6'];
        assert_eq!(decode(&s), "\u{FFFD}536");
    }
}
