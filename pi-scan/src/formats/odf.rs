//! OpenDocument (.odt, .ods, .odp and their templates), as LibreOffice and
//! OpenOffice write them: a zip of XML read with `zip` and `quick-xml`.
//!
//! * `content.xml`: a text document's body as one part (paragraphs and
//!   headings as lines, table rows as lines of tab-separated cells); a
//!   spreadsheet's tables as parts `sheet1`, `sheet2` ... whose line N is
//!   row N (repeated rows and columns expanded, so headings work; text
//!   boxes drawn over a sheet, `table:shapes`, as `sheet1 shapes`); a
//!   presentation's pages as parts `slide1` ... (their speaker notes
//!   included). Comments (`office:annotation`: author, date, text),
//!   tracked deletions (`text:tracked-changes`), text in hidden
//!   paragraphs and sections (it is in the file, shown or not) and the
//!   `text:string-value` of hidden and conditional text are read.
//! * `styles.xml`: headers and footers of the page styles.
//! * `meta.xml`: title, subject, description, keywords, user-defined
//!   properties.
//! * `Object N/content.xml`: embedded objects (charts, formulas) as
//!   flowing text; sheet names as the part `content.xml (sheet names)`;
//!   named expressions and ranges (`table:named-expression`,
//!   `table:named-range`: a defined name, and the text a name stands for)
//!   as `content.xml (named expressions)`.
//!
//! Not read: encrypted (password-protected) documents (not scanned),
//! images, macros (`Basic/`), `settings.xml`.

use super::{Ctx, DocKind, End, Part};
use crate::detect::Layout;
use crate::extract::{all_text, attr, text_of, xml_err};
use quick_xml::events::{BytesStart, Event};
use quick_xml::Reader;
use std::io::Cursor;

/// Reads an OpenDocument file.
pub(crate) fn read(kind: DocKind, bytes: &[u8], ctx: &Ctx) -> Result<Vec<Part>, String> {
    let mut zip = zip::ZipArchive::new(Cursor::new(bytes)).map_err(|e| e.to_string())?;
    let names: Vec<String> = zip.file_names().map(str::to_owned).collect();
    if !names.iter().any(|n| n == "content.xml") {
        return Err("no content.xml (not an OpenDocument file?)".into());
    }
    let mut entry = |name: &str| -> Result<Vec<u8>, String> {
        let f = zip
            .by_name(name)
            .map_err(|_| format!("{name}: damaged or encrypted"))?;
        let (data, end) = ctx.read_capped(f);
        match end {
            End::Whole => Ok(data),
            End::Capped => Err(format!("{name}: {}", ctx.cap_reason())),
            End::Broken => Err(format!("{name}: damaged")),
        }
    };
    let content = entry("content.xml")?;
    let mut names_in = Names::default();
    let mut parts = flow(&content, kind, &mut names_in)
        .map_err(|e| format!("content.xml: {e} (encrypted?)"))?;
    for (what, list) in [
        ("sheet names", names_in.sheets),
        ("named expressions", names_in.expressions),
    ] {
        if !list.is_empty() {
            parts.push(Part {
                name: Some(format!("content.xml ({what})")),
                text: list.join("\n").into_bytes(),
                layout: Layout::Plain,
            });
        }
    }
    let mut others: Vec<&String> = names
        .iter()
        .filter(|n| {
            *n == "styles.xml"
                || (n.ends_with("/content.xml") && !n.starts_with("Basic/"))
                || (n.ends_with("/styles.xml") && n.starts_with("Object "))
        })
        .collect();
    others.sort();
    for n in others {
        let text: Vec<u8> = flow(&entry(n)?, DocKind::Odt, &mut Names::default())
            .map_err(|e| format!("{n}: {e}"))?
            .into_iter()
            .flat_map(|p| p.text)
            .collect();
        push_nonblank(&mut parts, n, text);
    }
    if names.iter().any(|n| n == "meta.xml") {
        let text = all_text(&entry("meta.xml")?).map_err(|e| format!("meta.xml: {e}"))?;
        push_nonblank(&mut parts, "meta.xml", text);
    }
    Ok(parts)
}

fn push_nonblank(parts: &mut Vec<Part>, name: &str, text: Vec<u8>) {
    if text.iter().any(|b| !b.is_ascii_whitespace()) {
        parts.push(Part {
            name: Some(name.to_owned()),
            text,
            layout: Layout::Plain,
        });
    }
}

/// Expanded repeats stop here: a part's text never grows past the entry
/// cap however many `number-rows-repeated` a hostile file declares.
const MAX_TEXT: usize = super::MAX_ENTRY as usize;

fn repeat(e: &BytesStart, key: &[u8], cap: usize) -> usize {
    attr(e, key)
        .and_then(|v| std::str::from_utf8(&v).ok()?.parse::<usize>().ok())
        .unwrap_or(1)
        .clamp(1, cap)
}

/// Names a spreadsheet gives, read apart from its sheets' text.
#[derive(Default)]
struct Names {
    /// Each table's name.
    sheets: Vec<String>,
    /// Each named expression or range: its name, and the text it stands
    /// for when that is a string (`name: text`).
    expressions: Vec<String>,
}

/// The text of a named expression's formula: the string itself when the
/// formula is one string constant (`of:="text"`, quotes doubled inside),
/// else the formula as written (its string constants are in it).
fn expression_text(formula: &str) -> String {
    let f = formula.trim();
    let f = f.strip_prefix("of:").unwrap_or(f);
    let f = f.strip_prefix('=').unwrap_or(f);
    match f.strip_prefix('"').and_then(|f| f.strip_suffix('"')) {
        Some(inner) if !inner.replace("\"\"", "").contains('"') => inner.replace("\"\"", "\""),
        _ => formula.to_owned(),
    }
}

/// The text of an ODF XML part: one part per sheet (.ods) or page (.odp),
/// else one part for all of it. `names` gets each table's name and the
/// named expressions.
fn flow(xml: &[u8], kind: DocKind, names: &mut Names) -> Result<Vec<Part>, String> {
    let split: &[u8] = match kind {
        DocKind::Ods => b"table",
        DocKind::Odp => b"page",
        _ => b"",
    };
    let mut r = Reader::from_reader(xml);
    let mut buf = Vec::new();
    let (mut parts, mut cur) = (Vec::new(), Vec::new());
    let (mut inside, mut cell, mut first_cell, mut rows) = (0u32, 0u32, true, 1usize);
    // A sheet's shapes (text boxes drawn over it, `table:shapes`) come
    // before its rows: their text is set apart, as a part of its own after
    // the sheet, so that row N stays line N and the first row the headings.
    let (mut shapes_at, mut shapes, mut pages) = (None::<usize>, Vec::new(), 0usize);
    let flush = |parts: &mut Vec<Part>, cur: &mut Vec<u8>, name: Option<String>| {
        let text = std::mem::take(cur);
        if text.iter().any(|b| !b.is_ascii_whitespace()) || name.is_some() {
            parts.push(Part {
                layout: match kind {
                    DocKind::Ods => Layout::Delimited(b'\t'),
                    _ => Layout::Plain,
                },
                name,
                text,
            });
        }
    };
    loop {
        let ev = r.read_event_into(&mut buf).map_err(xml_err)?;
        let empty = matches!(ev, Event::Empty(_));
        match ev {
            Event::Start(ref e) | Event::Empty(ref e) => {
                let local = e.local_name();
                let local = local.as_ref();
                if !split.is_empty() && local == split {
                    inside += 1;
                    if inside == 1 {
                        // Text before the first sheet or page.
                        flush(&mut parts, &mut cur, None);
                        if let Some(n) = attr(e, b"name").filter(|_| kind == DocKind::Ods) {
                            names.sheets.push(String::from_utf8_lossy(&n).into_owned());
                        }
                    }
                }
                match local {
                    b"shapes" if kind == DocKind::Ods && !empty => shapes_at = Some(cur.len()),
                    b"table-row" => {
                        first_cell = true;
                        rows = match cur.len() < MAX_TEXT {
                            true => repeat(e, b"number-rows-repeated", 1 << 16),
                            false => 1,
                        };
                    }
                    b"table-cell" | b"covered-table-cell" => {
                        let n = match cur.len() < MAX_TEXT {
                            true => repeat(e, b"number-columns-repeated", 1 << 14),
                            false => 1,
                        };
                        let tabs = if first_cell { n - 1 } else { n };
                        cur.extend(std::iter::repeat_n(b'\t', tabs));
                        first_cell = false;
                        if !empty {
                            cell += 1;
                        }
                    }
                    b"named-expression" | b"named-range" => {
                        // Unescaped: the formula's quotes are `&quot;`
                        // (as written when an entity is unknown).
                        let text = |k: &[u8]| {
                            let a = e
                                .attributes()
                                .flatten()
                                .find(|a| a.key.local_name().as_ref() == k)?;
                            Some(match a.unescape_value() {
                                Ok(v) => v.into_owned(),
                                Err(_) => String::from_utf8_lossy(&a.value).into_owned(),
                            })
                        };
                        let mut named = text(b"name").unwrap_or_default();
                        if let Some(f) = text(b"expression") {
                            named = format!("{named}: {}", expression_text(&f));
                        }
                        names.expressions.push(named);
                    }
                    b"tab" => cur.push(b'\t'),
                    b"s" => cur.extend(std::iter::repeat_n(b' ', repeat(e, b"c", 64))),
                    b"line-break" => cur.push(if cell > 0 { b' ' } else { b'\n' }),
                    b"p" | b"h" if empty => cur.push(if cell > 0 { b' ' } else { b'\n' }),
                    _ => {}
                }
                // Hidden and conditional text keep their text here.
                if let Some(v) = attr(e, b"string-value").filter(|_| local != b"table-cell") {
                    cur.extend_from_slice(&v);
                    cur.push(b' ');
                }
            }
            Event::End(ref e) => match e.local_name().as_ref() {
                b"shapes" if kind == DocKind::Ods => {
                    if let Some(at) = shapes_at.take() {
                        shapes.append(&mut cur.split_off(at.min(cur.len())));
                    }
                }
                b"p" | b"h" => cur.push(if cell > 0 { b' ' } else { b'\n' }),
                b"creator" | b"date" => cur.push(if cell > 0 { b' ' } else { b'\n' }),
                b"table-cell" | b"covered-table-cell" => {
                    // Paragraphs in a cell are joined by spaces, not ended.
                    if cur.last() == Some(&b' ') {
                        cur.pop();
                    }
                    cell = cell.saturating_sub(1)
                }
                b"table-row" => cur.extend(std::iter::repeat_n(b'\n', rows)),
                l if !split.is_empty() && l == split => {
                    inside = inside.saturating_sub(1);
                    if inside == 0 {
                        let what = if kind == DocKind::Ods {
                            "sheet"
                        } else {
                            "slide"
                        };
                        pages += 1;
                        flush(&mut parts, &mut cur, Some(format!("{what}{pages}")));
                        if !shapes.is_empty() {
                            let mut text = std::mem::take(&mut shapes);
                            flush(&mut parts, &mut text, Some(format!("{what}{pages} shapes")));
                            parts.last_mut().expect("just pushed").layout = Layout::Plain;
                        }
                    }
                }
                _ => {}
            },
            Event::Text(t) => cur.extend_from_slice(&text_of(&t)),
            Event::CData(t) => cur.extend_from_slice(&t),
            Event::Eof => break,
            _ => {}
        }
        buf.clear();
    }
    flush(&mut parts, &mut cur, None);
    Ok(parts)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// LibreOffice writes a sheet's text boxes before its rows: their
    /// text is a part of its own, and the first row stays the headings.
    #[test]
    fn a_sheets_shapes_do_not_displace_its_headings() {
        let xml = br#"<office:document-content xmlns:office="o" xmlns:table="t" xmlns:text="x" xmlns:draw="d"><office:body><office:spreadsheet><table:table table:name="Staff"><table:shapes><draw:frame><draw:text-box><text:p>Note for Bo Chen</text:p></draw:text-box></draw:frame></table:shapes><table:table-row><table:table-cell><text:p>name</text:p></table:table-cell><table:table-cell><text:p>ssn</text:p></table:table-cell></table:table-row><table:table-row><table:table-cell><text:p>Ana</text:p></table:table-cell><table:table-cell office:value="536221234"><text:p>536221234</text:p></table:table-cell></table:table-row></table:table><table:table table:name="Two"><table:table-row><table:table-cell><text:p>x</text:p></table:table-cell></table:table-row></table:table></office:spreadsheet></office:body></office:document-content>"#;
        let parts = flow(xml, DocKind::Ods, &mut Names::default()).unwrap();
        let got: Vec<_> = parts
            .iter()
            .map(|p| {
                (
                    p.name.clone().unwrap_or_default(),
                    String::from_utf8_lossy(&p.text).into_owned(),
                )
            })
            .collect();
        assert_eq!(
            got,
            [
                (
                    "sheet1".to_string(),
                    "name\tssn\nAna\t536221234\n".to_string()
                ),
                (
                    "sheet1 shapes".to_string(),
                    "Note for Bo Chen\n".to_string()
                ),
                ("sheet2".to_string(), "x\n".to_string()),
            ]
        );
        assert_eq!(parts[1].layout, Layout::Plain);
    }

    #[test]
    fn sheet_rows_are_lines_and_repeats_are_expanded() {
        let xml = br#"<office:document-content xmlns:office="o" xmlns:table="t" xmlns:text="x"><office:body><office:spreadsheet><table:table table:name="Staff"><table:table-row><table:table-cell><text:p>name</text:p></table:table-cell><table:table-cell table:number-columns-repeated="2"/><table:table-cell><text:p>ssn</text:p></table:table-cell></table:table-row><table:table-row table:number-rows-repeated="2"><table:table-cell/></table:table-row><table:table-row><table:table-cell><text:p>Ana</text:p><text:p>Silva</text:p></table:table-cell><table:table-cell table:number-columns-repeated="2"/><table:table-cell office:value="536221234"><text:p>536221234</text:p></table:table-cell></table:table-row></table:table></office:spreadsheet></office:body></office:document-content>"#;
        let mut names = Names::default();
        let parts = flow(xml, DocKind::Ods, &mut names).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(parts[0].name.as_deref(), Some("sheet1"));
        assert_eq!(
            String::from_utf8_lossy(&parts[0].text),
            "name\t\t\tssn\n\n\nAna Silva\t\t\t536221234\n"
        );
        assert_eq!(names.sheets, ["Staff"]);
    }

    #[test]
    fn text_annotations_and_hidden_text_are_read() {
        let xml = br#"<office:document-content xmlns:office="o" xmlns:text="x" xmlns:dc="d"><office:body><office:text><text:h>Staff</text:h><text:p>Name:<text:s/>Ana<text:tab/>Silva<office:annotation><dc:creator>Bo Chen</dc:creator><dc:date>2024-01-02</dc:date><text:p>SSN 536-22-1234</text:p></office:annotation></text:p><text:p><text:hidden-text text:condition="ooow:1" text:string-value="card 4539 1488 0343 6467"/></text:p></office:text></office:body></office:document-content>"#;
        let parts = flow(xml, DocKind::Odt, &mut Names::default()).unwrap();
        assert_eq!(parts.len(), 1);
        assert_eq!(
            String::from_utf8_lossy(&parts[0].text),
            "Staff\nName: Ana\tSilvaBo Chen\n2024-01-02\nSSN 536-22-1234\n\ncard 4539 1488 0343 6467 \n"
        );
    }

    /// A defined name holding text (LibreOffice writes it as a named
    /// expression whose formula is one string) is read with its name.
    #[test]
    fn named_expressions_and_ranges_are_read() {
        let xml = br#"<office:document-content xmlns:office="o" xmlns:table="t" xmlns:text="x"><office:body><office:spreadsheet><table:table table:name="Staff"><table:table-row><table:table-cell><text:p>x</text:p></table:table-cell></table:table-row></table:table><table:named-expressions><table:named-expression table:name="ReviewNote" table:base-cell-address="$Staff.$A$1" table:expression="&quot;SSN 536-22-1234, &quot;&quot;Ana&quot;&quot;&quot;"/><table:named-expression table:name="Sum" table:expression="of:=SUM([.A1:.A3])&amp;&quot;card 4111 1111 1111 1111&quot;"/><table:named-range table:name="Staff_SSN" table:base-cell-address="$Staff.$A$1" table:cell-range-address="$Staff.$A$1:.$A$9"/></table:named-expressions></office:spreadsheet></office:body></office:document-content>"#;
        let mut names = Names::default();
        let parts = flow(xml, DocKind::Ods, &mut names).unwrap();
        assert_eq!(parts.len(), 1, "no text of a sheet");
        assert_eq!(
            names.expressions,
            [
                "ReviewNote: SSN 536-22-1234, \"Ana\"",
                "Sum: of:=SUM([.A1:.A3])&\"card 4111 1111 1111 1111\"",
                "Staff_SSN",
            ]
        );
    }
}
