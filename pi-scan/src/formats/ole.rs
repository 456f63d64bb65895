//! Legacy Office (Word 97-2003 .doc/.dot, Excel 97-2003 .xls/.xlt,
//! PowerPoint 97-2003 .ppt/.pps/.pot): an OLE2 compound file opened with
//! `cfb`, then a documented subset of each format ([MS-DOC], [MS-XLS]),
//! chosen by the streams present:
//!
//! * .doc: the `WordDocument` stream's text through the piece table (the
//!   CLX in the `0Table`/`1Table` stream): every story in order, so the
//!   body, footnotes, headers and footers, comments, endnotes and text
//!   boxes, with tracked deletions and hidden text (both are in the
//!   pieces). Paragraph marks are line breaks, cell marks tabs, a table
//!   row's end a line break, field codes kept as text. Formatting,
//!   fast-saved (complex) files' older pieces and embedded objects
//!   (`ObjectPool`) are not read.
//! * .xls: the BIFF8 `Workbook` stream ([`xls`](super::xls)): each
//!   sheet's cells, sheet and defined names, page headers and footers,
//!   comments and text boxes.
//! * Every other stream (the document properties `SummaryInformation`:
//!   title, author, comments; a presentation's `PowerPoint Document`,
//!   whose text atoms are plain 8-bit or UTF-16LE; anything a producer
//!   adds), save `ObjectPool` and `Data`: runs of at least 4 printable
//!   characters, 8-bit and UTF-16LE, each stream a part named by its path
//!   (`PowerPoint Document`): a text run's line is not a slide's line.
//!
//! An encrypted document (`fEncrypted`, `FILEPASS`) is not scanned.

use super::{Part, MAX_ENTRY};
use crate::detect::Layout;
use std::io::{Cursor, Read};

/// Reads a legacy Office file.
pub(crate) fn read(bytes: &[u8]) -> Result<Vec<Part>, String> {
    let mut cfb = cfb::CompoundFile::open(Cursor::new(bytes))
        .map_err(|_| "not an OLE2 compound file, or damaged".to_string())?;
    let streams: Vec<String> = cfb
        .walk()
        .filter(|e| e.is_stream())
        .map(|e| e.path().to_string_lossy().into_owned())
        .collect();
    let mut stream = |name: &str| -> Result<Vec<u8>, String> {
        let s = cfb
            .open_stream(name)
            .map_err(|_| format!("{}: damaged", clean(name)))?;
        let mut out = Vec::new();
        s.take(MAX_ENTRY)
            .read_to_end(&mut out)
            .map_err(|_| format!("{}: damaged", clean(name)))?;
        Ok(out)
    };
    let has = |n: &str| streams.iter().any(|s| s == n);
    let mut parts = Vec::new();
    let mut structured: Vec<&str> = Vec::new();
    // By the streams present, not the name: a .doc saved as .xls, or a
    // compound file recognised by its first bytes.
    if has("/WordDocument") {
        {
            let wd = stream("/WordDocument")?;
            let table_name = match wd.get(0x0B).is_some_and(|f| f & 0x02 != 0) {
                true => "/1Table",
                false => "/0Table",
            };
            let table = stream(table_name)?;
            parts.push(Part {
                name: None,
                text: word_text(&wd, &table)?,
                layout: Layout::Plain,
            });
            structured.extend(["/WordDocument", "/0Table", "/1Table"]);
        }
    } else if has("/Workbook") {
        parts.extend(super::xls::workbook(&stream("/Workbook")?)?);
        structured.push("/Workbook");
    }
    for name in &streams {
        if structured.contains(&name.as_str()) || name.starts_with("/ObjectPool") || name == "/Data"
        {
            continue;
        }
        let data = stream(name)?;
        let text = runs(&data);
        if !text.is_empty() {
            parts.push(Part {
                name: Some(clean(name)),
                text,
                layout: Layout::Plain,
            });
        }
    }
    Ok(parts)
}

/// A stream path without its leading `/` and control characters
/// (`\u{5}SummaryInformation` -> `SummaryInformation`).
fn clean(name: &str) -> String {
    name.trim_start_matches('/')
        .chars()
        .filter(|c| !c.is_control())
        .collect()
}

pub(super) fn u16_at(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_le_bytes(b.get(at..at + 2)?.try_into().ok()?))
}

pub(super) fn u32_at(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_le_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

const DAMAGED: &str = "damaged Word document (FIB or piece table)";

/// The text of a Word 97-2003 document through its piece table.
fn word_text(wd: &[u8], table: &[u8]) -> Result<Vec<u8>, String> {
    if u16_at(wd, 0) != Some(0xA5EC) {
        return Err("not a Word 97-2003 document (FIB)".into());
    }
    if u16_at(wd, 0x0A).is_some_and(|f| f & 0x0100 != 0) {
        return Err("encrypted (password-protected) document".into());
    }
    // FIB: base (32 bytes), csw + fibRgW, cslw + fibRgLw, cbRgFcLcb +
    // fibRgFcLcb, where fcClx/lcbClx is pair 33.
    let mut off = 32usize;
    let csw = usize::from(u16_at(wd, off).ok_or(DAMAGED)?);
    off += 2 + csw * 2;
    let cslw = usize::from(u16_at(wd, off).ok_or(DAMAGED)?);
    off += 2 + cslw * 4;
    let pairs = usize::from(u16_at(wd, off).ok_or(DAMAGED)?);
    off += 2;
    if pairs <= 33 {
        return Err(DAMAGED.into());
    }
    let fc = u32_at(wd, off + 33 * 8).ok_or(DAMAGED)? as usize;
    let lcb = u32_at(wd, off + 33 * 8 + 4).ok_or(DAMAGED)? as usize;
    let clx = table.get(fc..fc.saturating_add(lcb)).ok_or(DAMAGED)?;
    // CLX: Prc* (0x01, cbGrpprl, grpprl) then Pcdt (0x02, lcb, PlcPcd).
    let mut i = 0usize;
    let plc = loop {
        match clx.get(i) {
            Some(1) => i += 3 + usize::from(u16_at(clx, i + 1).ok_or(DAMAGED)?),
            Some(2) => {
                let n = u32_at(clx, i + 1).ok_or(DAMAGED)? as usize;
                break clx.get(i + 5..(i + 5).saturating_add(n)).ok_or(DAMAGED)?;
            }
            _ => return Err(DAMAGED.into()),
        }
    };
    let n = plc.len().saturating_sub(4) / 12;
    let mut out = String::new();
    for k in 0..n {
        let (Some(cp0), Some(cp1)) = (u32_at(plc, k * 4), u32_at(plc, k * 4 + 4)) else {
            return Err(DAMAGED.into());
        };
        let len = cp1.saturating_sub(cp0) as usize;
        let fc = u32_at(plc, (n + 1) * 4 + k * 8 + 2).ok_or(DAMAGED)?;
        if fc & 0x4000_0000 != 0 {
            // Compressed: 8-bit Windows-1252 at fc/2.
            let at = ((fc & 0x3FFF_FFFF) / 2) as usize;
            let raw = wd.get(at..at.saturating_add(len)).ok_or(DAMAGED)?;
            let (s, _) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(raw);
            out.push_str(&s);
        } else {
            let at = fc as usize;
            let raw = wd
                .get(at..at.saturating_add(len.saturating_mul(2)))
                .ok_or(DAMAGED)?;
            let (s, _) = encoding_rs::UTF_16LE.decode_without_bom_handling(raw);
            out.push_str(&s);
        }
        if out.len() as u64 > MAX_ENTRY {
            break;
        }
    }
    Ok(word_marks(&out).into_bytes())
}

/// Word's marks as text: paragraph, line, page and section marks are line
/// breaks, a cell mark (0x07) a tab. A row ends with its last cell's mark
/// and the row mark, two cell marks in a row: that is a line break, so
/// that each table row is a line as in a .docx (else a heading row's
/// "Phone" would label the next row's SSN). Telling the row mark from an
/// empty cell's would take the paragraph properties; an empty cell so
/// breaks its row into two lines, which loses no number.
fn word_marks(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut after_cell = false;
    for c in text.chars() {
        let cell = c == '\u{07}';
        match c {
            '\u{07}' if after_cell => {
                out.pop();
                out.push('\n');
            }
            '\u{07}' => out.push('\t'),
            '\r' | '\u{0B}' | '\u{0C}' | '\u{0E}' => out.push('\n'),
            '\t' | '\n' => out.push(c),
            '\u{13}' | '\u{14}' | '\u{15}' => out.push(' '),
            c if c.is_control() => {}
            c => out.push(c),
        }
        after_cell = cell && !after_cell;
    }
    out
}

/// Runs of at least 4 printable characters: 8-bit (printable ASCII and
/// Latin-1 letters) and UTF-16LE (with their high bytes zero), one per
/// line.
fn runs(data: &[u8]) -> Vec<u8> {
    const MIN: usize = 4;
    let printable = |b: u8| (0x20..0x7F).contains(&b) || b == b'\t' || b >= 0xC0;
    let mut out = Vec::new();
    let mut cur = Vec::new();
    let end = |cur: &mut Vec<u8>, out: &mut Vec<u8>| {
        if cur.len() >= MIN {
            let (s, _) = encoding_rs::WINDOWS_1252.decode_without_bom_handling(cur);
            out.extend_from_slice(s.as_bytes());
            out.push(b'\n');
        }
        cur.clear();
    };
    for &b in data {
        match printable(b) {
            true => cur.push(b),
            false => end(&mut cur, &mut out),
        }
    }
    end(&mut cur, &mut out);
    for odd in [0usize, 1] {
        for pair in data.get(odd..).unwrap_or(&[]).chunks_exact(2) {
            match pair[1] == 0 && printable(pair[0]) {
                true => cur.push(pair[0]),
                false => end(&mut cur, &mut out),
            }
        }
        end(&mut cur, &mut out);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_word_table_row_is_a_line() {
        let text = "Staff\rName\u{07}SSN\u{07}Phone\u{07}\u{07}Ana Silva\u{07}536-22-1234\u{07}617-555-0198\u{07}\u{07}After\r";
        assert_eq!(
            word_marks(text),
            "Staff\nName\tSSN\tPhone\nAna Silva\t536-22-1234\t617-555-0198\nAfter\n"
        );
    }

    #[test]
    fn text_runs_of_both_widths() {
        let data = b"\x00\x01Ana Silva\x00\x02S\x00S\x00N\x00 \x005\x00\x00\x00ab\x00";
        assert_eq!(runs(data), b"Ana Silva\nSSN 5\n");
    }
}
