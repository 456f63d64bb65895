//! Excel 97-2003 workbooks: the BIFF8 `Workbook` stream of an OLE2 file
//! ([MS-XLS]), read record by record.
//!
//! * Cells: shared strings (`SST` with its `CONTINUE` records),
//!   `LABELSST`, `LABEL`, `NUMBER`, `RK`, `MULRK` and `FORMULA` results
//!   (numbers, and strings from `STRING`), each worksheet a part `sheet1`,
//!   `sheet2` ... whose line N is row N with tab-separated cells (so
//!   headings work).
//! * Around the cells, each a part of its own so that the table's line
//!   numbers stay row numbers: sheet names (`BOUNDSHEET`) as `workbook
//!   (sheet names)`; defined names (`NAME`: the name, and its text when
//!   the formula is one string) as `workbook (defined names)`; each
//!   sheet's page header and footer (`HEADER`, `FOOTER`, codes dropped)
//!   as `sheet1 header and footer`; the text of its cell comments and
//!   text boxes (`TXO` and the `CONTINUE` holding the text) as `sheet1
//!   comments and text boxes`. Chart and macro sheets' headers and text
//!   boxes go to `other sheets ...`.
//!
//! Not read: a comment's author (`NOTE`), a name's formula other than
//! one string, the even and first-page headers of `HEADERFOOTER`
//! (Excel 2007's addition), charts' text, BIFF5 and older workbooks (the
//! caller scans them as text runs).

use super::ole::{u16_at, u32_at};
use super::Part;
use crate::detect::Layout;
use std::collections::BTreeMap;

/// BIFF8 records with their type, CONTINUE records attached to the one
/// they continue.
fn records(ws: &[u8]) -> Vec<(u16, Vec<&[u8]>)> {
    let mut out: Vec<(u16, Vec<&[u8]>)> = Vec::new();
    let mut i = 0usize;
    while let (Some(t), Some(len)) = (u16_at(ws, i), u16_at(ws, i + 2)) {
        let start = i + 4;
        let Some(data) = ws.get(start..start + usize::from(len)) else {
            break;
        };
        i = start + usize::from(len);
        match (t, out.last_mut()) {
            (0x003C, Some(last)) => last.1.push(data),
            _ => out.push((t, vec![data])),
        }
    }
    out
}

/// Reads across a record and its CONTINUE segments; a string's characters
/// that cross into a CONTINUE restart with a new flags byte.
struct Segs<'a> {
    segs: &'a [&'a [u8]],
    seg: usize,
    pos: usize,
}

impl<'a> Segs<'a> {
    fn bytes(&mut self, n: usize) -> Option<&'a [u8]> {
        loop {
            let s = self.segs.get(self.seg)?;
            if self.pos < s.len() || n == 0 {
                let out = s.get(self.pos..self.pos + n)?;
                self.pos += n;
                return Some(out);
            }
            self.seg += 1;
            self.pos = 0;
        }
    }

    fn u8(&mut self) -> Option<u8> {
        Some(self.bytes(1)?[0])
    }

    fn u16(&mut self) -> Option<u16> {
        let b = self.bytes(2)?;
        Some(u16::from_le_bytes([b[0], b[1]]))
    }

    fn u32(&mut self) -> Option<u32> {
        let b = self.bytes(4)?;
        Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
    }

    /// An XLUnicodeRichExtendedString (or, `rich` false, an
    /// XLUnicodeString) whose cch is `cch`.
    fn string(&mut self, cch: usize, rich: bool) -> Option<String> {
        let flags = self.u8()?;
        let (runs, ext) = match rich {
            true => (
                if flags & 0x08 != 0 { self.u16()? } else { 0 },
                if flags & 0x04 != 0 { self.u32()? } else { 0 },
            ),
            false => (0, 0),
        };
        let mut wide = flags & 0x01 != 0;
        let mut s = String::new();
        let mut left = cch;
        while left > 0 {
            if self.segs.get(self.seg).is_some_and(|d| self.pos >= d.len()) {
                self.seg += 1;
                self.pos = 0;
                wide = self.u8()? & 0x01 != 0;
            }
            let avail = self.segs.get(self.seg)?.len() - self.pos;
            let take = left.min(if wide { avail / 2 } else { avail }).max(1);
            let raw = self.bytes(if wide { take * 2 } else { take })?;
            let (t, _) = match wide {
                true => encoding_rs::UTF_16LE.decode_without_bom_handling(raw),
                false => encoding_rs::WINDOWS_1252.decode_without_bom_handling(raw),
            };
            s.push_str(&t);
            left -= take;
        }
        self.skip(usize::from(runs) * 4 + ext as usize)?;
        Some(s)
    }

    fn skip(&mut self, mut n: usize) -> Option<()> {
        while n > 0 {
            let s = self.segs.get(self.seg)?;
            let here = (s.len() - self.pos).min(n);
            self.pos += here;
            n -= here;
            if n > 0 {
                self.seg += 1;
                self.pos = 0;
            }
        }
        Some(())
    }
}

fn number(v: f64) -> String {
    if v.is_finite() && v.fract() == 0.0 && v.abs() < 1e17 {
        format!("{}", v as i64)
    } else {
        format!("{v}")
    }
}

fn rk(v: u32) -> String {
    let x = if v & 0x02 != 0 {
        f64::from((v as i32) >> 2)
    } else {
        f64::from_bits(u64::from(v & 0xFFFF_FFFC) << 32)
    };
    number(if v & 0x01 != 0 { x / 100.0 } else { x })
}

/// What one worksheet holds.
#[derive(Default)]
struct Sheet {
    /// Cells by (row, column).
    cells: BTreeMap<(u16, u16), String>,
    /// `HEADER` and `FOOTER`, their codes dropped.
    header_footer: Vec<String>,
    /// `TXO`: the text of cell comments and text boxes.
    texts: Vec<String>,
}

/// An Excel 97-2003 workbook's text: one part per sheet (its cells), and
/// parts for its sheet and defined names, each sheet's header and footer,
/// and each sheet's comments and text boxes.
pub(super) fn workbook(ws: &[u8]) -> Result<Vec<Part>, String> {
    let recs = records(ws);
    let mut sst: Vec<String> = Vec::new();
    let mut names: Vec<String> = Vec::new();
    let mut defined: Vec<String> = Vec::new();
    let mut sheets: Vec<Sheet> = Vec::new();
    // Chart and macro sheets' headers and text boxes: no cells are read
    // from them.
    let mut other = Sheet::default();
    let mut cur: Option<usize> = None;
    // Substreams nest (a chart embedded in a worksheet is a substream
    // inside the sheet's): at each EOF the enclosing one goes on.
    let mut outer: Vec<Option<usize>> = Vec::new();
    let mut pending_formula: Option<(u16, u16)> = None;
    for (t, segs) in &recs {
        let d = segs[0];
        let cell = |d: &[u8]| Some((u16_at(d, 0)?, u16_at(d, 2)?));
        let here = match cur {
            Some(s) => &mut sheets[s],
            None => &mut other,
        };
        let mut put = |at: Option<(u16, u16)>, v: String| {
            if let (Some(at), Some(_)) = (at, cur) {
                here.cells.insert(at, v);
            }
        };
        match t {
            0x002F => return Err("encrypted (password-protected) workbook".into()),
            0x0809 => {
                if outer.len() < 16 {
                    outer.push(cur);
                }
                if u16_at(d, 2) == Some(0x0010) {
                    sheets.push(Sheet::default());
                    cur = Some(sheets.len() - 1);
                } else {
                    cur = None;
                }
            }
            0x000A => cur = outer.pop().flatten(),
            0x0018 => defined.extend(defined_name(d)),
            0x0014 | 0x0015 if !d.is_empty() => {
                let mut r = Segs {
                    segs,
                    seg: 0,
                    pos: 0,
                };
                if let Some(s) = r.u16().and_then(|n| r.string(usize::from(n), false)) {
                    let s = crate::extract::header_footer_plain(s.as_bytes());
                    if !s.is_empty() {
                        here.header_footer
                            .push(String::from_utf8_lossy(&s).into_owned());
                    }
                }
            }
            0x01B6 => {
                // The text is in the CONTINUE record after the TXO (its
                // formatting runs in the one after that).
                let mut r = Segs {
                    segs,
                    seg: 1,
                    pos: 0,
                };
                let n = usize::from(u16_at(d, 10).unwrap_or(0));
                if let Some(s) = (n > 0).then(|| r.string(n, false)).flatten() {
                    here.texts.push(s);
                }
            }
            0x0085 => {
                let mut r = Segs {
                    segs,
                    seg: 0,
                    pos: 6,
                };
                if let Some(s) = r.u8().and_then(|n| r.string(usize::from(n), false)) {
                    names.push(s);
                }
            }
            0x00FC => {
                let mut r = Segs {
                    segs,
                    seg: 0,
                    pos: 8,
                };
                let unique = u32_at(d, 4).unwrap_or(0) as usize;
                for _ in 0..unique.min(1 << 22) {
                    match r.u16().and_then(|n| r.string(usize::from(n), true)) {
                        Some(s) => sst.push(s),
                        None => break,
                    }
                }
            }
            0x00FD => {
                let s = u32_at(d, 6).and_then(|i| sst.get(i as usize)).cloned();
                put(cell(d), s.unwrap_or_default());
            }
            0x0204 => {
                let mut r = Segs {
                    segs,
                    seg: 0,
                    pos: 6,
                };
                if let Some(s) = r.u16().and_then(|n| r.string(usize::from(n), false)) {
                    put(cell(d), s);
                }
            }
            0x0203 => {
                if let Some(b) = d.get(6..14) {
                    let v = f64::from_le_bytes(b.try_into().unwrap_or([0; 8]));
                    put(cell(d), number(v));
                }
            }
            0x027E => put(cell(d), u32_at(d, 6).map(rk).unwrap_or_default()),
            0x00BD => {
                let (Some(row), Some(first)) = (u16_at(d, 0), u16_at(d, 2)) else {
                    continue;
                };
                let n = d.len().saturating_sub(6) / 6;
                for k in 0..n {
                    if let Some(v) = u32_at(d, 4 + k * 6 + 2) {
                        put(Some((row, first.saturating_add(k as u16))), rk(v));
                    }
                }
            }
            0x0006 => {
                let res = d.get(6..14).unwrap_or(&[]);
                if res.len() == 8 && res[6..8] == [0xFF, 0xFF] {
                    // A string result: in the STRING record that follows.
                    pending_formula = cell(d).filter(|_| res[0] == 0);
                } else if res.len() == 8 {
                    let v = f64::from_le_bytes(res.try_into().unwrap_or([0; 8]));
                    put(cell(d), number(v));
                }
            }
            0x0207 => {
                let mut r = Segs {
                    segs,
                    seg: 0,
                    pos: 0,
                };
                if let Some(s) = r.u16().and_then(|n| r.string(usize::from(n), false)) {
                    put(pending_formula.take(), s);
                }
            }
            _ => {}
        }
    }
    let mut parts = Vec::new();
    let mut plain = |name: String, lines: &[String]| {
        if !lines.is_empty() {
            parts.push(Part {
                name: Some(name),
                text: lines.join("\n").into_bytes(),
                layout: Layout::Plain,
            });
        }
    };
    for (i, s) in sheets.iter().enumerate() {
        plain(
            format!("sheet{} header and footer", i + 1),
            &s.header_footer,
        );
        plain(format!("sheet{} comments and text boxes", i + 1), &s.texts);
    }
    plain(
        "other sheets header and footer".into(),
        &other.header_footer,
    );
    plain("other sheets comments and text boxes".into(), &other.texts);
    plain("workbook (sheet names)".into(), &names);
    plain("workbook (defined names)".into(), &defined);
    let cells = sheets.iter().enumerate().map(|(i, s)| Part {
        name: Some(format!("sheet{}", i + 1)),
        text: grid(&s.cells),
        layout: Layout::Delimited(b'\t'),
    });
    Ok(cells.chain(parts).collect())
}

/// A defined name (`NAME`, [MS-XLS] 2.4.150) as `name`, or `name: text`
/// when its formula is one string constant (`PtgStr`); a formula of any
/// other kind (a range, a calculation) is not read. Built-in names
/// (`Print_Area` ...) are a code, not text: skipped.
fn defined_name(d: &[u8]) -> Option<String> {
    let builtin = u16_at(d, 0)? & 0x0020 != 0;
    if builtin {
        return None;
    }
    let (cch, cce) = (usize::from(*d.get(3)?), usize::from(u16_at(d, 4)?));
    // The name: an XLUnicodeStringNoCch after the 14-byte header.
    let (name, at) = string_no_cch(d, 14, cch)?;
    let rgce = d.get(at..at.checked_add(cce)?)?;
    match rgce {
        [0x17, n, ..] => match string_no_cch(rgce, 2, usize::from(*n)) {
            Some((text, end)) if end == rgce.len() => Some(format!("{name}: {text}")),
            _ => Some(name),
        },
        _ => Some(name),
    }
}

/// An XLUnicodeStringNoCch of `cch` characters at `at` (a flags byte,
/// then 8-bit or UTF-16LE characters), and where it ends.
fn string_no_cch(d: &[u8], at: usize, cch: usize) -> Option<(String, usize)> {
    let wide = d.get(at)? & 0x01 != 0;
    let start = at + 1;
    let end = start + if wide { cch * 2 } else { cch };
    let raw = d.get(start..end)?;
    let (s, _) = match wide {
        true => encoding_rs::UTF_16LE.decode_without_bom_handling(raw),
        false => encoding_rs::WINDOWS_1252.decode_without_bom_handling(raw),
    };
    Some((s.into_owned(), end))
}

/// Cells as lines: line N is row N, cells tab-separated by column.
fn grid(cells: &BTreeMap<(u16, u16), String>) -> Vec<u8> {
    let mut out = Vec::new();
    let (mut row, mut col) = (0u16, 0u16);
    for (&(r, c), v) in cells {
        if r > row {
            out.extend(std::iter::repeat_n(b'\n', usize::from(r - row)));
            (row, col) = (r, 0);
        }
        out.extend(std::iter::repeat_n(
            b'\t',
            usize::from(c.saturating_sub(col)),
        ));
        out.extend(v.bytes().filter(|b| !matches!(b, b'\n' | b'\r' | b'\t')));
        col = c;
    }
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rk_numbers_and_grids() {
        assert_eq!(rk((536_221_234u32 << 2) | 0x02), "536221234");
        assert_eq!(rk((12_345u32 << 2) | 0x03), "123.45");
        let mut cells = BTreeMap::new();
        cells.insert((0, 0), "name".to_string());
        cells.insert((0, 2), "ssn".to_string());
        cells.insert((2, 1), "x".to_string());
        assert_eq!(grid(&cells), b"name\t\tssn\n\n\tx\n");
    }

    #[test]
    fn strings_continue_across_records() {
        // "ABCD" split after "AB": the CONTINUE restarts with a flags byte
        // (wide this time).
        let segs: [&[u8]; 2] = [b"\x04\x00\x00AB", b"\x01C\x00D\x00"];
        let mut r = Segs {
            segs: &segs,
            seg: 0,
            pos: 0,
        };
        let n = r.u16().unwrap();
        assert_eq!(r.string(usize::from(n), true).unwrap(), "ABCD");
    }

    fn rec(t: u16, body: &[u8]) -> Vec<u8> {
        let mut v = t.to_le_bytes().to_vec();
        v.extend((body.len() as u16).to_le_bytes());
        v.extend_from_slice(body);
        v
    }

    fn xl_string(s: &str) -> Vec<u8> {
        let mut v = (s.len() as u16).to_le_bytes().to_vec();
        v.push(0);
        v.extend_from_slice(s.as_bytes());
        v
    }

    fn bof(kind: u16) -> Vec<u8> {
        let mut b = vec![0x00, 0x06];
        b.extend(kind.to_le_bytes());
        b.extend([0; 12]);
        rec(0x0809, &b)
    }

    fn text_of(parts: &[Part], name: &str) -> String {
        let p = parts.iter().find(|p| p.name.as_deref() == Some(name));
        String::from_utf8_lossy(&p.unwrap_or_else(|| panic!("no {name}")).text).into_owned()
    }

    /// As LibreOffice writes them: a defined name whose formula is one
    /// string, a sheet's header and footer, a comment's text in the
    /// CONTINUE after its TXO; and a cell after an embedded chart's
    /// substream still belongs to its sheet.
    #[test]
    fn names_headers_footers_comments_and_text_boxes_are_read() {
        let mut ws = bof(0x0005);
        let text = "Savings account 5523280244";
        let mut name = vec![0, 0, 0, 10];
        name.extend((3 + text.len() as u16).to_le_bytes());
        name.extend([0; 8]);
        name.push(0);
        name.extend(b"ReviewNote");
        name.extend([0x17, text.len() as u8, 0]);
        name.extend(text.as_bytes());
        ws.extend(rec(0x0018, &name));
        // A name standing for a range: its name only.
        let mut range = vec![0, 0, 0, 3, 7, 0];
        range.extend([0; 8]);
        range.push(0);
        range.extend(b"SSN");
        range.extend([0x3B, 0, 0, 0, 0, 0, 0]);
        ws.extend(rec(0x0018, &range));
        ws.extend(rec(0x000A, &[]));
        ws.extend(bof(0x0010));
        ws.extend(rec(0x0014, &xl_string("&CEmployee SSN 294-65-4390")));
        ws.extend(rec(0x0015, &[]));
        let note = "Card 5314 2401 9143 2600\nsecond line";
        let mut txo = vec![0x12, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        txo.extend((note.len() as u16).to_le_bytes());
        txo.extend([0x10, 0, 0, 0, 0, 0]);
        ws.extend(rec(0x01B6, &txo));
        let mut cont = vec![0];
        cont.extend(note.as_bytes());
        ws.extend(rec(0x003C, &cont));
        ws.extend(rec(0x003C, &[0; 16]));
        ws.extend(bof(0x0020));
        ws.extend(rec(0x000A, &[]));
        let mut num = vec![1, 0, 0, 0, 0, 0];
        num.extend(536221234f64.to_le_bytes());
        ws.extend(rec(0x0203, &num));
        ws.extend(rec(0x000A, &[]));
        let parts = workbook(&ws).unwrap();
        assert_eq!(
            text_of(&parts, "workbook (defined names)"),
            "ReviewNote: Savings account 5523280244\nSSN"
        );
        assert_eq!(
            text_of(&parts, "sheet1 header and footer"),
            "Employee SSN 294-65-4390"
        );
        assert_eq!(text_of(&parts, "sheet1 comments and text boxes"), note);
        assert_eq!(text_of(&parts, "sheet1"), "\n536221234\n");
    }
}
