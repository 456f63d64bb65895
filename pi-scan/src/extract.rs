//! Text from documents: .docx/.xlsx/.pptx (zip containers of XML, read
//! with `zip` and `quick-xml`) and .pdf (`lopdf`, in pdf.rs). Each document yields
//! parts (a sheet, a slide, a page, the body) scanned separately.

use crate::detect::Layout;
use quick_xml::events::Event;
use quick_xml::Reader;
use std::io::{Cursor, Read};

/// Largest document read into memory, and largest XML entry inflated (the
/// limits guard against zip bombs).
pub(crate) const MAX_DOCUMENT: u64 = 512 << 20;
const MAX_ENTRY: u64 = 256 << 20;
/// Largest total of XML inflated from one document.
const MAX_INFLATED: u64 = 1 << 30;

/// The document formats whose text the scanner extracts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DocKind {
    Docx,
    Xlsx,
    Pptx,
    Pdf,
}

impl DocKind {
    /// By file extension (case-insensitive), macro-enabled variants too.
    pub(crate) fn of(path: &std::path::Path) -> Option<Self> {
        let ext = path.extension()?.to_str()?.to_ascii_lowercase();
        Some(match ext.as_str() {
            "docx" | "docm" | "dotx" => DocKind::Docx,
            "xlsx" | "xlsm" | "xltx" => DocKind::Xlsx,
            "pptx" | "pptm" | "potx" => DocKind::Pptx,
            "pdf" => DocKind::Pdf,
            _ => return None,
        })
    }

    pub(crate) fn name(self) -> &'static str {
        match self {
            DocKind::Docx => "Word document",
            DocKind::Xlsx => "Excel workbook",
            DocKind::Pptx => "PowerPoint presentation",
            DocKind::Pdf => "PDF",
        }
    }
}

/// A piece of a document's text.
pub(crate) struct Part {
    /// `sheet2`, `slide3`, `page 4`, `word/footer1.xml`; None for a body.
    pub name: Option<String>,
    pub text: Vec<u8>,
    pub layout: Layout,
}

/// Extracts the text of a document. Errors are a reason, for a warning.
pub(crate) fn extract(kind: DocKind, bytes: &[u8]) -> Result<Vec<Part>, String> {
    // Parsers of hostile files may panic; a panic is one unreadable file.
    std::panic::catch_unwind(|| match kind {
        DocKind::Pdf => crate::pdf::pages(bytes),
        _ => office(kind, bytes),
    })
    .unwrap_or_else(|_| Err("the parser failed on this file".into()))
}

pub(crate) fn office(kind: DocKind, bytes: &[u8]) -> Result<Vec<Part>, String> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| e.to_string())?;
    let mut names: Vec<String> = zip.file_names().map(str::to_owned).collect();
    names.sort_by_key(|n| natural_key(n));
    let mut budget = MAX_INFLATED;
    let mut entry = |name: &str| -> Result<Vec<u8>, String> {
        let f = zip.by_name(name).map_err(|e| format!("{name}: {e}"))?;
        let mut out = Vec::new();
        let limit = MAX_ENTRY.min(budget);
        f.take(limit + 1)
            .read_to_end(&mut out)
            .map_err(|e| format!("{name}: {e}"))?;
        if out.len() as u64 > limit {
            return Err(format!(
                "{name}: more than {} MiB inflated (entry) or {} MiB (document)",
                MAX_ENTRY >> 20,
                MAX_INFLATED >> 20
            ));
        }
        budget -= out.len() as u64;
        Ok(out)
    };
    let mut parts = Vec::new();
    match kind {
        DocKind::Docx => {
            for n in names.iter().filter(|n| is_docx_text(n)) {
                let name = (n != "word/document.xml").then(|| n.clone());
                parts.push(Part {
                    name,
                    text: flow_text(&entry(n)?)?,
                    layout: Layout::Plain,
                });
            }
        }
        DocKind::Pptx => {
            for n in names.iter().filter(|n| is_xml_under(n, "ppt/slides/slide")) {
                parts.push(Part {
                    name: Some(stem(n)),
                    text: flow_text(&entry(n)?)?,
                    layout: Layout::Plain,
                });
            }
            for n in names.iter().filter(|n| is_xml_under(n, "ppt/notesSlides/")) {
                parts.push(Part {
                    name: Some(stem(n)),
                    text: flow_text(&entry(n)?)?,
                    layout: Layout::Plain,
                });
            }
        }
        DocKind::Xlsx => {
            let shared = match names.iter().any(|n| n == "xl/sharedStrings.xml") {
                true => shared_strings(&entry("xl/sharedStrings.xml")?)?,
                false => Vec::new(),
            };
            for n in names
                .iter()
                .filter(|n| is_xml_under(n, "xl/worksheets/sheet"))
            {
                let text = sheet_text(&entry(n)?, &shared)?;
                parts.push(Part {
                    name: Some(stem(n)),
                    text,
                    layout: Layout::Delimited(b'\t'),
                });
            }
        }
        DocKind::Pdf => unreachable!("handled by pdf()"),
    }
    if parts.is_empty() {
        return Err("no document text inside (not an Office Open XML file?)".into());
    }
    Ok(parts)
}

fn is_xml_under(n: &str, prefix: &str) -> bool {
    n.starts_with(prefix) && n.ends_with(".xml") && !n[prefix.len()..].contains('/')
}

fn is_docx_text(n: &str) -> bool {
    n == "word/document.xml"
        || [
            "word/header",
            "word/footer",
            "word/footnotes",
            "word/endnotes",
            "word/comments",
        ]
        .iter()
        .any(|p| is_xml_under(n, p))
}

/// `ppt/slides/slide12.xml` -> `slide12`.
fn stem(n: &str) -> String {
    let base = n.rsplit('/').next().unwrap_or(n);
    base.strip_suffix(".xml").unwrap_or(base).to_owned()
}

/// Sorts `slide2` before `slide10`.
fn natural_key(n: &str) -> (String, u64) {
    let digits: String = n
        .chars()
        .rev()
        .skip_while(|c| !c.is_ascii_digit())
        .take_while(char::is_ascii_digit)
        .collect();
    let num: String = digits.chars().rev().collect();
    (
        n.trim_end_matches(|c: char| !c.is_ascii_digit())
            .trim_end_matches(|c: char| c.is_ascii_digit())
            .to_owned(),
        num.parse().unwrap_or(0),
    )
}

/// The parser's message can quote the document's text (a card number in
/// a broken tag), and errors reach the terminal and logs: none of it is
/// kept.
fn xml_err<E>(_: E) -> String {
    "malformed XML".to_string()
}

fn text_of(t: &quick_xml::events::BytesText) -> Vec<u8> {
    t.unescape()
        .map(|c| c.into_owned().into_bytes())
        .unwrap_or_else(|_| t.to_vec())
}

/// Word and PowerPoint text: `<*:t>` runs, a newline per paragraph `<*:p>`
/// and break, a tab per `<*:tab>`.
fn flow_text(xml: &[u8]) -> Result<Vec<u8>, String> {
    let mut r = Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let mut in_t = false;
    loop {
        match r.read_event_into(&mut buf).map_err(xml_err)? {
            Event::Start(e) if e.local_name().as_ref() == b"t" => in_t = true,
            Event::End(e) => match e.local_name().as_ref() {
                b"t" => in_t = false,
                b"p" => out.push(b'\n'),
                b"tc" => out.push(b'\t'),
                _ => {}
            },
            Event::Empty(e) => match e.local_name().as_ref() {
                b"tab" => out.push(b'\t'),
                b"br" | b"cr" | b"p" => out.push(b'\n'),
                _ => {}
            },
            Event::Text(t) if in_t => out.extend_from_slice(&text_of(&t)),
            Event::CData(t) if in_t => out.extend_from_slice(&t),
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Ok(out)
}

/// `xl/sharedStrings.xml`: one string per `<si>`, its `<t>` runs joined.
fn shared_strings(xml: &[u8]) -> Result<Vec<Vec<u8>>, String> {
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

/// A worksheet as tab-separated rows, line N being spreadsheet row N.
fn sheet_text(xml: &[u8], shared: &[Vec<u8>]) -> Result<Vec<u8>, String> {
    let mut r = Reader::from_reader(xml);
    let mut buf = Vec::new();
    let mut out = Vec::new();
    let (mut row_no, mut col, mut cell_col) = (0usize, 0usize, 0usize);
    let (mut is_shared, mut in_val, mut val) = (false, false, Vec::new());
    loop {
        match r.read_event_into(&mut buf).map_err(xml_err)? {
            Event::Start(e) if e.local_name().as_ref() == b"row" => {
                let n = attr(&e, b"r").and_then(|v| std::str::from_utf8(&v).ok()?.parse().ok());
                let target = n.unwrap_or(row_no + 1).max(row_no + 1);
                // Pad so that line numbers are row numbers (capped against absurd gaps).
                out.extend(std::iter::repeat_n(
                    b'\n',
                    (target - row_no - 1).min(1 << 16),
                ));
                row_no = target;
                col = 0;
            }
            Event::End(e) if e.local_name().as_ref() == b"row" => out.push(b'\n'),
            Event::Start(e) if e.local_name().as_ref() == b"c" => {
                cell_col = attr(&e, b"r").map_or(col, |v| column(&v)).max(col);
                is_shared = attr(&e, b"t").as_deref() == Some(b"s");
                val.clear();
            }
            Event::End(e) if e.local_name().as_ref() == b"c" => {
                let text = match is_shared {
                    true => std::str::from_utf8(&val)
                        .ok()
                        .and_then(|s| s.trim().parse::<usize>().ok())
                        .and_then(|i| shared.get(i))
                        .map_or(&[][..], Vec::as_slice),
                    false => &val[..],
                };
                out.extend(std::iter::repeat_n(b'\t', (cell_col - col).min(1 << 14)));
                out.extend_from_slice(text);
                col = cell_col;
            }
            Event::Start(e) if matches!(e.local_name().as_ref(), b"v" | b"t") => in_val = true,
            Event::End(e) if matches!(e.local_name().as_ref(), b"v" | b"t") => in_val = false,
            Event::Text(t) if in_val => val.extend_from_slice(&text_of(&t)),
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Ok(out)
}

fn attr(e: &quick_xml::events::BytesStart, key: &[u8]) -> Option<Vec<u8>> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == key)
        .map(|a| a.value.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn columns_and_names() {
        assert_eq!(column(b"A1"), 0);
        assert_eq!(column(b"C7"), 2);
        assert_eq!(column(b"AA3"), 26);
        assert!(natural_key("ppt/slides/slide2.xml") < natural_key("ppt/slides/slide10.xml"));
        assert_eq!(stem("ppt/slides/slide12.xml"), "slide12");
    }

    #[test]
    fn word_text_has_paragraph_lines() {
        let xml = br#"<w:document xmlns:w="x"><w:body><w:p><w:r><w:t>SSN:</w:t></w:r><w:r><w:t xml:space="preserve"> 536-22-1234 &amp; more</w:t></w:r></w:p><w:p><w:r><w:t>two</w:t></w:r></w:p></w:body></w:document>"#;
        assert_eq!(flow_text(xml).unwrap(), b"SSN: 536-22-1234 & more\ntwo\n");
    }

    #[test]
    fn sheet_rows_are_lines() {
        let shared = vec![b"ssn".to_vec(), b"name".to_vec()];
        let xml = br#"<worksheet><sheetData><row r="1"><c r="A1" t="s"><v>1</v></c><c r="C1" t="s"><v>0</v></c></row><row r="3"><c r="A3" t="inlineStr"><is><t>Ana Silva</t></is></c><c r="C3"><v>536221234</v></c></row></sheetData></worksheet>"#;
        assert_eq!(
            sheet_text(xml, &shared).unwrap(),
            b"name\t\tssn\n\nAna Silva\t\t536221234\n"
        );
    }
}
