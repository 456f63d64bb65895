//! The cells of an .xlsx worksheet, and the page header and footer it
//! prints on every page.
//!
//! Cells become tab-separated rows, line N being spreadsheet row N, so
//! that a bare number is read under its column's heading; shared strings
//! are resolved by index. The page header and footer (`<headerFooter>`:
//! odd, even and first-page variants) are no row of the table: they are
//! gathered apart and read as a part of their own, their formatting codes
//! (`&L`, `&"Arial,Bold"`, `&12`, `&P` ...) dropped so that the text reads
//! as the words a printed page shows.

use super::{attr, text_of, xml_err};
#[cfg(test)]
use crate::detect::Layout;
use crate::stream::Stream;
use quick_xml::events::Event;
use quick_xml::Reader;
use std::io::BufRead;

/// The elements of `<headerFooter>` that hold text.
const HEADER_FOOTER: [&[u8]; 6] = [
    b"oddHeader",
    b"oddFooter",
    b"evenHeader",
    b"evenFooter",
    b"firstHeader",
    b"firstFooter",
];

/// Most header and footer text kept from one sheet. Excel writes at most
/// 255 characters in each of the six; more is a crafted file, and what
/// is past this is said to be unread rather than held without bound.
pub(super) const MAX_HEADER_FOOTER: usize = 1 << 20;

/// A sheet's page header and footer text, one element a line.
#[derive(Default)]
pub(super) struct HeaderFooter {
    pub text: Vec<u8>,
    /// More than [`MAX_HEADER_FOOTER`] bytes: the rest was not read.
    pub cut: bool,
}

impl HeaderFooter {
    /// Adds one element's text, its codes dropped.
    fn add(&mut self, raw: &[u8]) {
        let room = MAX_HEADER_FOOTER.saturating_sub(self.text.len());
        if raw.len() > room {
            self.cut = true;
        }
        let text = plain(&raw[..raw.len().min(room)]);
        if text.iter().any(|b| !b.is_ascii_whitespace()) {
            self.text.extend_from_slice(&text);
            self.text.push(b'\n');
        }
    }
}

/// A header or footer string without its formatting codes (ECMA-376
/// Part 1, §18.3.1.39; the .xls `HEADER` and `FOOTER` records use the
/// same codes): `&L`, `&C`, `&R` start the left, centre and
/// right sections (each a line here); `&"font,style"`, `&` and a size,
/// `&K` and a colour, and the one-letter codes (page number, date, bold
/// ...) are dropped; `&&` is an ampersand.
pub(crate) fn plain(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let newline = |out: &mut Vec<u8>| {
        while out.last().is_some_and(|b| *b == b' ') {
            out.pop();
        }
        if out.last().is_some_and(|b| *b != b'\n') {
            out.push(b'\n');
        }
    };
    let mut i = 0;
    while i < raw.len() {
        if raw[i] != b'&' {
            out.push(raw[i]);
            i += 1;
            continue;
        }
        i += 1;
        match raw.get(i) {
            None => {}
            Some(b'&') => {
                out.push(b'&');
                i += 1;
            }
            Some(b'L' | b'C' | b'R') => {
                newline(&mut out);
                i += 1;
            }
            Some(b'"') => {
                i += 1;
                i += raw[i..]
                    .iter()
                    .position(|&b| b == b'"')
                    .map_or(raw.len() - i, |n| n + 1);
            }
            Some(b'K') => {
                i += 1;
                // `FF0000`, or a theme colour and tint: `01+049`.
                i += raw[i..]
                    .iter()
                    .take(6)
                    .take_while(|b| b.is_ascii_hexdigit() || matches!(b, b'+' | b'-'))
                    .count();
            }
            Some(b) if b.is_ascii_digit() => {
                i += raw[i..].iter().take_while(|b| b.is_ascii_digit()).count();
            }
            Some(b) if b.is_ascii_alphabetic() => i += 1,
            // Not a code: the ampersand alone is dropped.
            Some(_) => {}
        }
    }
    newline(&mut out);
    // Sections are lines; an empty section leaves no blank line.
    let lines: Vec<&[u8]> = out
        .split(|&b| b == b'\n')
        .map(|l| l.trim_ascii())
        .filter(|l| !l.is_empty())
        .collect();
    lines.join(&b'\n')
}

/// `xl/sharedStrings.xml`: one string per `<si>`, its `<t>` runs joined.
pub(super) fn shared_strings(xml: &[u8]) -> Result<Vec<Vec<u8>>, String> {
    let mut r = Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let (mut cur, mut in_t) = (Vec::new(), false);
    loop {
        match r.read_event_into(&mut buf).map_err(xml_err)? {
            Event::Start(e) if e.local_name().as_ref() == b"t" => in_t = true,
            Event::End(e) if e.local_name().as_ref() == b"t" => in_t = false,
            Event::End(e) if e.local_name().as_ref() == b"si" => out.push(std::mem::take(&mut cur)),
            Event::Text(t) if in_t => cur.extend_from_slice(&text_of(&t)),
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Ok(out)
}

/// Column index of a cell reference (`C7` -> 2).
fn column(r: &[u8]) -> usize {
    r.iter()
        .take_while(|b| b.is_ascii_alphabetic())
        .fold(0usize, |acc, b| {
            acc.saturating_mul(26)
                .saturating_add(usize::from(b.to_ascii_uppercase() - b'A' + 1))
        })
        .saturating_sub(1)
}

/// A worksheet as tab-separated rows, line N being spreadsheet row N,
/// and its page header and footer. `referenced[i]` is set for every
/// shared string a cell shows.
#[cfg(test)]
fn sheet_text(
    xml: &[u8],
    shared: &[Vec<u8>],
    referenced: &mut [bool],
) -> Result<(Vec<u8>, HeaderFooter), String> {
    let mut hf = HeaderFooter::default();
    let rows = super::text_of_xml(xml, Layout::Delimited(b'\t'), |r, out| {
        sheet_into(r, shared, referenced, out, &mut hf)
    })?;
    Ok((rows, hf))
}

/// [`sheet_text`], streamed: the rows into `out`, the page header and
/// footer into `hf`.
pub(super) fn sheet_into(
    r: &mut Reader<&mut dyn BufRead>,
    shared: &[Vec<u8>],
    referenced: &mut [bool],
    out: &mut Stream,
    hf: &mut HeaderFooter,
) -> Result<(), String> {
    let mut buf = Vec::new();
    // The raw text of the header or footer element being read.
    let mut in_hf: Option<Vec<u8>> = None;
    let (mut row_no, mut col, mut cell_col) = (0usize, 0usize, 0usize);
    let (mut is_shared, mut in_val, mut val) = (false, false, Vec::new());
    loop {
        match r.read_event_into(&mut buf).map_err(xml_err)? {
            Event::Start(e) if e.local_name().as_ref() == b"row" => {
                let n = attr(&e, b"r").and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok());
                let target = n.unwrap_or(row_no + 1).max(row_no + 1);
                // Pad so that line numbers are row numbers (capped against absurd gaps).
                for _ in 0..(target - row_no - 1).min(1 << 16) {
                    out.push_byte(b'\n');
                }
                row_no = target;
                col = 0;
            }
            Event::End(e) if e.local_name().as_ref() == b"row" => out.push_byte(b'\n'),
            Event::Start(e) if e.local_name().as_ref() == b"c" => {
                cell_col = attr(&e, b"r").map_or(col, |v| column(&v)).max(col);
                is_shared = attr(&e, b"t").as_deref() == Some(b"s");
                val.clear();
            }
            Event::End(e) if e.local_name().as_ref() == b"c" => {
                let text = match is_shared {
                    true => {
                        let i = std::str::from_utf8(&val)
                            .ok()
                            .and_then(|s| s.trim().parse::<usize>().ok());
                        if let Some(r) = i.and_then(|i| referenced.get_mut(i)) {
                            *r = true;
                        }
                        i.and_then(|i| shared.get(i)).map_or(&[][..], Vec::as_slice)
                    }
                    false => &val[..],
                };
                for _ in 0..(cell_col - col).min(1 << 14) {
                    out.push_byte(b'\t');
                }
                out.push(text);
                col = cell_col;
            }
            Event::Start(e) if matches!(e.local_name().as_ref(), b"v" | b"t") => in_val = true,
            Event::End(e) if matches!(e.local_name().as_ref(), b"v" | b"t") => in_val = false,
            Event::Text(t) if in_val => val.extend_from_slice(&text_of(&t)),
            Event::Start(e) if HEADER_FOOTER.contains(&e.local_name().as_ref()) => {
                in_hf = Some(Vec::new())
            }
            Event::End(e) if HEADER_FOOTER.contains(&e.local_name().as_ref()) => {
                if let Some(raw) = in_hf.take() {
                    hf.add(&raw);
                }
            }
            Event::Text(t) => {
                if let Some(raw) = in_hf.as_mut().filter(|raw| raw.len() <= MAX_HEADER_FOOTER) {
                    raw.extend_from_slice(&text_of(&t));
                }
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns() {
        assert_eq!(column(b"A1"), 0);
        assert_eq!(column(b"C7"), 2);
        assert_eq!(column(b"AA3"), 26);
    }

    #[test]
    fn sheet_rows_are_lines() {
        let shared = vec![b"ssn".to_vec(), b"name".to_vec()];
        let xml = br#"<worksheet><sheetData><row r="1"><c r="A1" t="s"><v>1</v></c><c r="C1" t="s"><v>0</v></c></row><row r="3"><c r="A3" t="inlineStr"><is><t>Ana Silva</t></is></c><c r="C3"><v>536221234</v></c></row></sheetData></worksheet>"#;
        let mut referenced = vec![false; 2];
        assert_eq!(
            sheet_text(xml, &shared, &mut referenced).unwrap().0,
            b"name\t\tssn\n\nAna Silva\t\t536221234\n"
        );
        assert_eq!(referenced, [true, true]);
    }

    /// The page header and footer: no row of the table, a part of their
    /// own, the codes dropped.
    #[test]
    fn the_page_header_and_footer_are_read_without_codes() {
        let xml = br#"<worksheet><sheetData><row r="1"><c r="A1"><v>1</v></c></row></sheetData><headerFooter differentFirst="1"><oddHeader>&amp;LSSN 536-22-1234&amp;R&amp;P of &amp;N</oddHeader><oddFooter>&amp;C&amp;"Arial,Bold"&amp;12Card &amp;KFF00004111 1111 1111 1111 &amp;&amp; more</oddFooter><firstHeader>&amp;C&amp;D</firstHeader></headerFooter></worksheet>"#;
        let (rows, hf) = sheet_text(xml, &[], &mut []).unwrap();
        assert_eq!(rows, b"1\n");
        assert_eq!(
            String::from_utf8(hf.text).unwrap(),
            "SSN 536-22-1234\nof\nCard 4111 1111 1111 1111 & more\n"
        );
        assert!(!hf.cut);
    }

    #[test]
    fn codes_are_dropped_and_sections_are_lines() {
        let p = |s: &str| String::from_utf8(plain(s.as_bytes())).unwrap();
        assert_eq!(p("&LSSN 536-22-1234"), "SSN 536-22-1234");
        assert_eq!(p("&LName&CSSN&R536-22-1234"), "Name\nSSN\n536-22-1234");
        assert_eq!(p("&K01+049Acct&\"-,Italic\"&B 12345678&"), "Acct 12345678");
        assert_eq!(p("&\"unterminated"), "");
    }

    #[test]
    fn an_oversized_header_is_cut_and_said_to_be() {
        let mut hf = HeaderFooter::default();
        hf.add(&vec![b'x'; MAX_HEADER_FOOTER + 10]);
        assert!(hf.cut);
        assert_eq!(hf.text.len(), MAX_HEADER_FOOTER + 1);
    }
}
