//! Text from Office Open XML documents: .docx/.xlsx/.pptx, zip containers
//! of XML read with `zip` and `quick-xml`. Each document yields parts (a
//! sheet, a slide, the body, every other XML part) scanned separately;
//! files embedded in one are read as files of their own (formats/mod.rs).
//!
//! XML parts are never held whole: quick-xml reads each from the
//! inflating zip entry and pushes its text into a [`Stream`], so a part
//! of any inflated size is scanned in bounded memory, up to the file's
//! inflation budget and time limit (then the file is partial).
//! Worksheets are read by [`sheet`].

mod sheet;

pub(crate) use sheet::plain as header_footer_plain;

use crate::detect::Layout;
use crate::formats::{self, Ctx, DocKind, Part, MAX_ENTRY, MAX_INFLATED};
use crate::stream::{Stream, Streamed};
use quick_xml::events::Event;
use quick_xml::Reader;
use std::io::{BufRead, BufReader, Cursor, Read, Seek};
use zip::ZipArchive;

/// Streams the XML part `n` through `read` (which pushes its text into a
/// stream) and adds it to `parts` as `name`: whole when short, else its
/// findings go to `ctx`. A part cut short by the budget or the time limit
/// is a gap, not an error: what was read was scanned.
fn stream_part(
    zip: &mut ZipArchive<impl Read + Seek>,
    n: &str,
    name: Option<String>,
    layout: Layout,
    ctx: &Ctx,
    parts: &mut Vec<Part>,
    read: impl FnOnce(&mut Reader<&mut dyn BufRead>, &mut Stream) -> Result<(), String>,
) -> Result<(), String> {
    if ctx.stopped().is_some() {
        // The limit was reached in an earlier part, and said so there.
        return Ok(());
    }
    let f = zip.by_name(n).map_err(|e| format!("{n}: {e}"))?;
    let mut input = BufReader::with_capacity(64 << 10, ctx.limited(f));
    let mut r = Reader::from_reader(&mut input as &mut dyn BufRead);
    let mut out = Stream::new(layout);
    let got = read(&mut r, &mut out);
    let covered = out.total();
    match (got, ctx.stopped()) {
        (_, Some(_)) => ctx.gap(format!(
            "{n}: {} ({} MiB of its text scanned)",
            ctx.stop_reason(),
            covered >> 20
        )),
        (Err(e), None) => return Err(format!("{n}: {e}")),
        (Ok(()), None) => {}
    }
    match out.finish() {
        Streamed::Text(text) => parts.push(Part { name, text, layout }),
        Streamed::Found(found) => ctx.found(name, found),
    }
    Ok(())
}

/// Reads the entry `name` into memory, up to the entry cap and the budget
/// (shared strings, embedded files).
fn entry(zip: &mut ZipArchive<impl Read + Seek>, name: &str, ctx: &Ctx) -> Result<Vec<u8>, String> {
    let f = zip.by_name(name).map_err(|e| format!("{name}: {e}"))?;
    let (out, end) = ctx.read_capped(f);
    match end {
        formats::End::Whole => Ok(out),
        formats::End::Capped => Err(format!(
            "{name}: more than {} MiB inflated (entry) or {} MiB (document)",
            MAX_ENTRY >> 20,
            MAX_INFLATED >> 20
        )),
        formats::End::Broken => Err(format!("{name}: damaged")),
    }
}

/// Largest shared-strings part held in memory to resolve cells (its
/// strings, parsed, take a few times this); a larger one is streamed.
const MAX_SHARED: u64 = 8 << 20;

/// The entry `name` if it inflates to at most [`MAX_SHARED`] bytes.
fn small_entry(
    zip: &mut ZipArchive<impl Read + Seek>,
    name: &str,
    ctx: &Ctx,
) -> Result<Option<Vec<u8>>, String> {
    let f = zip.by_name(name).map_err(|e| format!("{name}: {e}"))?;
    let mut out = Vec::new();
    match ctx.limited(f).take(MAX_SHARED + 1).read_to_end(&mut out) {
        Err(_) => Err(format!("{name}: damaged")),
        Ok(_) if out.len() as u64 > MAX_SHARED || ctx.stopped().is_some() => Ok(None),
        Ok(_) => Ok(Some(out)),
    }
}

/// The text of a short XML part held in memory (tests, OpenDocument).
fn text_of_xml(
    xml: &[u8],
    layout: Layout,
    read: impl FnOnce(&mut Reader<&mut dyn BufRead>, &mut Stream) -> Result<(), String>,
) -> Result<Vec<u8>, String> {
    let mut input = xml;
    let mut r = Reader::from_reader(&mut input as &mut dyn BufRead);
    // A window as large as the text: it is handed back whole.
    let mut out = Stream::with_window(layout, xml.len().saturating_mul(4).max(1 << 20));
    read(&mut r, &mut out)?;
    match out.finish() {
        Streamed::Text(t) => Ok(t),
        Streamed::Found(_) => Err("text longer than its XML".into()),
    }
}

/// Reads an Office document `depth` levels below the file on disk; `ctx`
/// holds the inflation budget shared with the files embedded in it (so
/// nesting does not multiply the zip-bomb cap).
pub(crate) fn office_at(
    kind: DocKind,
    bytes: &[u8],
    depth: u32,
    ctx: &Ctx,
) -> Result<Vec<Part>, String> {
    office_in(kind, Cursor::new(bytes), depth, ctx)
}

/// [`office_at`] reading the container from `r` (a file on disk too large
/// to hold).
pub(crate) fn office_in(
    kind: DocKind,
    r: impl Read + Seek,
    depth: u32,
    ctx: &Ctx,
) -> Result<Vec<Part>, String> {
    let mut zip = ZipArchive::new(r).map_err(|e| e.to_string())?;
    let mut names: Vec<String> = zip.file_names().map(str::to_owned).collect();
    names.sort_by_key(|n| natural_key(n));
    let mut parts = Vec::new();
    let found_before = ctx.found_count();
    // The parts read for the document's displayed text; every other XML
    // part is read afterwards for whatever text it holds.
    let mut used: std::collections::BTreeSet<String> = std::collections::BTreeSet::new();
    match kind {
        DocKind::Docx => {
            for n in names.iter().filter(|n| is_docx_text(n)) {
                used.insert(n.clone());
                let name = (n != "word/document.xml").then(|| n.clone());
                stream_part(&mut zip, n, name, Layout::Plain, ctx, &mut parts, flow_into)?;
            }
        }
        DocKind::Pptx => {
            for n in names.iter().filter(|n| is_xml_under(n, "ppt/slides/slide")) {
                used.insert(n.clone());
                let name = Some(stem(n));
                stream_part(&mut zip, n, name, Layout::Plain, ctx, &mut parts, flow_into)?;
            }
            for n in names.iter().filter(|n| is_xml_under(n, "ppt/notesSlides/")) {
                used.insert(n.clone());
                let name = Some(stem(n));
                stream_part(&mut zip, n, name, Layout::Plain, ctx, &mut parts, flow_into)?;
            }
        }
        DocKind::Xlsx => {
            const SHARED: &str = "xl/sharedStrings.xml";
            let shared = match names.iter().any(|n| n == SHARED) {
                false => Vec::new(),
                true => match small_entry(&mut zip, SHARED, ctx)? {
                    Some(xml) => sheet::shared_strings(&xml)?,
                    None => {
                        // Too large to hold for the cells to show: every
                        // string is scanned as a line of its own instead
                        // (streamed), and the cells show none.
                        let name = Some(format!("{SHARED} (all strings)"));
                        stream_part(
                            &mut zip,
                            SHARED,
                            name,
                            Layout::Plain,
                            ctx,
                            &mut parts,
                            all_into,
                        )?;
                        Vec::new()
                    }
                },
            };
            used.insert("xl/sharedStrings.xml".into());
            let mut referenced = vec![false; shared.len()];
            for n in names
                .iter()
                .filter(|n| is_xml_under(n, "xl/worksheets/sheet"))
            {
                used.insert(n.clone());
                let (name, tab) = (Some(stem(n)), Layout::Delimited(b'\t'));
                let mut hf = sheet::HeaderFooter::default();
                stream_part(&mut zip, n, name, tab, ctx, &mut parts, |r, out| {
                    sheet::sheet_into(r, &shared, &mut referenced, out, &mut hf)
                })?;
                if hf.cut {
                    ctx.gap(format!(
                        "{n}: page header and footer over {} MiB: the rest was not read",
                        sheet::MAX_HEADER_FOOTER >> 20
                    ));
                }
                if !hf.text.is_empty() {
                    parts.push(Part {
                        name: Some(format!("{} header and footer", stem(n))),
                        text: hf.text,
                        layout: Layout::Plain,
                    });
                }
            }
            // Strings no cell shows (a deleted column's, a hidden one's
            // leftovers) are still in the file.
            let unshown: Vec<u8> = shared
                .iter()
                .zip(&referenced)
                .filter(|(_, r)| !**r)
                .flat_map(|(s, _)| s.iter().copied().chain([b'\n']))
                .collect();
            if !unshown.is_empty() {
                parts.push(Part {
                    name: Some("xl/sharedStrings.xml (strings no cell shows)".into()),
                    text: unshown,
                    layout: Layout::Plain,
                });
            }
        }
        _ => return Err("not an Office Open XML document".into()),
    }
    if parts.is_empty() && ctx.found_count() == found_before && ctx.stopped().is_none() {
        return Err("no document text inside (not an Office Open XML file?)".into());
    }
    // Everything else a container holds in XML: document properties,
    // comments, charts, drawings, the workbook's sheet and defined names,
    // custom XML. PI sits there as often as in the displayed text.
    for n in names
        .iter()
        .filter(|n| is_other_text_part(n) && !used.contains(*n))
    {
        let mut got = Vec::new();
        stream_part(
            &mut zip,
            n,
            Some(n.clone()),
            Layout::Plain,
            ctx,
            &mut got,
            all_into,
        )?;
        parts.extend(
            got.into_iter()
                .filter(|p| p.text.iter().any(|b| !b.is_ascii_whitespace())),
        );
    }
    // Files embedded in this one (a workbook inside a report): read as
    // files of their own, each part named `embedding!part`.
    for n in names.iter().filter(|n| n.contains("/embeddings/")) {
        let bytes = entry(&mut zip, n, ctx)?;
        formats::member(n, &bytes, depth, ctx, &mut parts);
    }
    Ok(parts)
}

/// An XML part other than the package's plumbing (content types and
/// relationships), which hold no text of the document.
fn is_other_text_part(n: &str) -> bool {
    n.ends_with(".xml")
        && n != "[Content_Types].xml"
        && !n.starts_with("_rels/")
        && !n.contains("/_rels/")
}

/// Every text node of an XML part, and every `name` attribute (sheet and
/// defined names, custom property names), one per line.
pub(crate) fn all_text(xml: &[u8]) -> Result<Vec<u8>, String> {
    text_of_xml(xml, Layout::Plain, all_into)
}

/// [`all_text`], streamed.
fn all_into(r: &mut Reader<&mut dyn BufRead>, out: &mut Stream) -> Result<(), String> {
    let mut buf = Vec::new();
    loop {
        match r.read_event_into(&mut buf).map_err(xml_err)? {
            Event::Start(e) | Event::Empty(e) => {
                if let Some(v) = attr(&e, b"name") {
                    out.push(&v);
                    out.push_byte(b'\n');
                }
            }
            Event::Text(t) => {
                let t = text_of(&t);
                if t.iter().any(|b| !b.is_ascii_whitespace()) {
                    out.push(&t);
                    out.push_byte(b'\n');
                }
            }
            Event::CData(t) => {
                out.push(&t);
                out.push_byte(b'\n');
            }
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Ok(())
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
pub(crate) fn xml_err<E>(_: E) -> String {
    "malformed XML".to_string()
}

pub(crate) fn text_of(t: &quick_xml::events::BytesText) -> Vec<u8> {
    t.unescape()
        .map(|c| c.into_owned().into_bytes())
        .unwrap_or_else(|_| t.to_vec())
}

/// Word and PowerPoint text: `<*:t>` runs and tracked deletions'
/// `<w:delText>` (the text is still in the file), a newline per paragraph
/// `<*:p>` and break, a tab per `<*:tab>`.
#[cfg(test)]
fn flow_text(xml: &[u8]) -> Result<Vec<u8>, String> {
    text_of_xml(xml, Layout::Plain, flow_into)
}

/// [`flow_text`], streamed.
fn flow_into(r: &mut Reader<&mut dyn BufRead>, out: &mut Stream) -> Result<(), String> {
    let mut buf = Vec::new();
    let mut in_t = false;
    loop {
        match r.read_event_into(&mut buf).map_err(xml_err)? {
            Event::Start(e) if matches!(e.local_name().as_ref(), b"t" | b"delText") => in_t = true,
            Event::End(e) => match e.local_name().as_ref() {
                b"t" | b"delText" => in_t = false,
                b"p" => out.push_byte(b'\n'),
                b"tc" => out.push_byte(b'\t'),
                _ => {}
            },
            Event::Empty(e) => match e.local_name().as_ref() {
                b"tab" => out.push_byte(b'\t'),
                b"br" | b"cr" | b"p" => out.push_byte(b'\n'),
                _ => {}
            },
            Event::Text(t) if in_t => out.push(&text_of(&t)),
            Event::CData(t) if in_t => out.push(&t),
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    Ok(())
}

pub(crate) fn attr(e: &quick_xml::events::BytesStart, key: &[u8]) -> Option<Vec<u8>> {
    e.attributes()
        .flatten()
        .find(|a| a.key.local_name().as_ref() == key)
        .map(|a| a.value.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_sort_naturally() {
        assert!(natural_key("ppt/slides/slide2.xml") < natural_key("ppt/slides/slide10.xml"));
        assert_eq!(stem("ppt/slides/slide12.xml"), "slide12");
    }

    #[test]
    fn word_text_has_paragraph_lines() {
        let xml = br#"<w:document xmlns:w="x"><w:body><w:p><w:r><w:t>SSN:</w:t></w:r><w:r><w:t xml:space="preserve"> 536-22-1234 &amp; more</w:t></w:r></w:p><w:p><w:r><w:t>two</w:t></w:r></w:p></w:body></w:document>"#;
        assert_eq!(flow_text(xml).unwrap(), b"SSN: 536-22-1234 & more\ntwo\n");
    }

    /// A tracked deletion keeps its text in the file: a reviewer who
    /// deleted an SSN did not remove it.
    #[test]
    fn tracked_deletions_are_read() {
        let xml = br#"<w:document xmlns:w="x"><w:body><w:p><w:del w:id="1"><w:r><w:delText>SSN 536-22-1234</w:delText></w:r></w:del><w:ins w:id="2"><w:r><w:t>redacted</w:t></w:r></w:ins></w:p></w:body></w:document>"#;
        assert_eq!(flow_text(xml).unwrap(), b"SSN 536-22-1234redacted\n");
    }

    /// A workbook whose displayed cells hold no PI, and PI everywhere
    /// else a container keeps text: a shared string no cell shows, a sheet
    /// name, a defined name, a comment, the document properties.
    #[test]
    fn text_outside_the_displayed_cells_is_read() {
        use std::io::Write;
        let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let o = zip::write::SimpleFileOptions::default();
        for (name, body) in [
            ("[Content_Types].xml", "<Types/>"),
            ("_rels/.rels", "<Relationships/>"),
            ("xl/workbook.xml", r#"<workbook><sheets><sheet name="Roe 219-09-9999" sheetId="1"/></sheets><definedNames><definedName name="ssn_of_doe">078-05-1120</definedName></definedNames></workbook>"#),
            ("xl/sharedStrings.xml", "<sst><si><t>total</t></si><si><t>left over 536-22-1234</t></si></sst>"),
            ("xl/worksheets/sheet1.xml", r#"<worksheet><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c></row></sheetData></worksheet>"#),
            ("xl/comments1.xml", "<comments><commentList><comment ref=\"A1\"><text><t>card 4111 1111 1111 1111</t></text></comment></commentList></comments>"),
            ("docProps/core.xml", "<cp:coreProperties xmlns:cp=\"x\" xmlns:dc=\"y\"><dc:description>SSN 536-22-9876</dc:description></cp:coreProperties>"),
        ] {
            z.start_file(name, o).unwrap();
            z.write_all(body.as_bytes()).unwrap();
        }
        let bytes = z.finish().unwrap().into_inner();
        let parts = office_at(DocKind::Xlsx, &bytes, 0, &Ctx::new()).unwrap();
        let all: Vec<(String, String)> = parts
            .iter()
            .map(|p| {
                (
                    p.name.clone().unwrap_or_default(),
                    String::from_utf8_lossy(&p.text).into_owned(),
                )
            })
            .collect();
        let has = |needle: &str, part: &str| {
            all.iter()
                .any(|(n, t)| n.contains(part) && t.contains(needle))
        };
        assert!(
            has("left over 536-22-1234", "strings no cell shows"),
            "{all:?}"
        );
        assert!(!has("total", "strings no cell shows"), "{all:?}");
        assert!(has("Roe 219-09-9999", "xl/workbook.xml"), "{all:?}");
        assert!(has("078-05-1120", "xl/workbook.xml"), "{all:?}");
        assert!(has("4111 1111 1111 1111", "xl/comments1.xml"), "{all:?}");
        assert!(has("536-22-9876", "docProps/core.xml"), "{all:?}");
        assert!(!all
            .iter()
            .any(|(n, _)| n.contains("_rels") || n.contains("Content_Types")));
    }

    fn zip_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        use std::io::Write;
        let mut z = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let o = zip::write::SimpleFileOptions::default();
        for (name, body) in entries {
            z.start_file(*name, o).unwrap();
            z.write_all(body).unwrap();
        }
        z.finish().unwrap().into_inner()
    }

    /// A workbook embedded in a document is read as a document of its own,
    /// its parts named after the embedding.
    #[test]
    fn a_workbook_embedded_in_a_document_is_read() {
        let inner = zip_of(&[
            ("xl/sharedStrings.xml", b"<sst><si><t>SSN 536-22-1234</t></si></sst>"),
            (
                "xl/worksheets/sheet1.xml",
                br#"<worksheet><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c></row></sheetData></worksheet>"#,
            ),
        ]);
        let outer = zip_of(&[
            (
                "word/document.xml",
                br#"<w:document xmlns:w="x"><w:body><w:p><w:r><w:t>See the attached table.</w:t></w:r></w:p></w:body></w:document>"#,
            ),
            ("word/embeddings/Microsoft_Excel_Worksheet.xlsx", &inner),
        ]);
        let parts = office_at(DocKind::Docx, &outer, 0, &Ctx::new()).unwrap();
        let names: Vec<_> = parts.iter().map(|p| p.name.clone()).collect();
        let p = parts
            .iter()
            .find(|p| {
                p.name.as_deref() == Some("word/embeddings/Microsoft_Excel_Worksheet.xlsx!sheet1")
            })
            .unwrap_or_else(|| panic!("{names:?}"));
        assert_eq!(p.text, b"SSN 536-22-1234\n");
        assert_eq!(p.layout, Layout::Delimited(b'\t'));
    }
}
