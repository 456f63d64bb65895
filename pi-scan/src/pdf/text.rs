//! Text from a page's content stream: the strings its text operators
//! show, decoded through each font's encoding, each placed where the text
//! and graphics matrices put it, so that [`layout`] can read the page in
//! reading order whatever order the stream drew it in (a printed sheet's
//! cells, a text box over them).

use super::layout::{self, Run};
use super::ops;
use lopdf::{Document, Encoding, Object, ObjectId};
use std::collections::BTreeMap;

/// Font resource names (`F1`) and their encodings.
pub(crate) type Fonts<'a> = BTreeMap<Vec<u8>, Encoding<'a>>;

/// The fonts a page's resources name.
pub(crate) fn page_fonts(doc: &Document, page: ObjectId) -> Fonts<'_> {
    doc.get_page_fonts(page)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(name, font)| font.get_font_encoding(doc).ok().map(|e| (name, e)))
        .collect()
}

/// What to do with a string shown in a font the resources do not name.
#[derive(Clone, Copy)]
pub(crate) enum Unknown<'e, 'a> {
    /// Show nothing (an intact file: the font is deliberately absent).
    Skip,
    /// Decode it with this encoding (a damaged file whose only font is
    /// known), or, when None, keep its printable ASCII bytes.
    Guess(Option<&'e Encoding<'a>>),
}

fn num(o: Option<&Object>) -> f32 {
    o.and_then(|o| o.as_float().ok()).unwrap_or(0.0)
}

/// The text `content` shows, in reading order ([`layout::plain`]).
pub(crate) fn text(content: &[u8], fonts: &Fonts<'_>, unknown: Unknown<'_, '_>) -> String {
    layout::plain(&runs(content, fonts, unknown))
}

/// A 2-D affine matrix `[a b c d e f]`, as PDF writes them.
type Matrix = [f32; 6];

const IDENTITY: Matrix = [1.0, 0.0, 0.0, 1.0, 0.0, 0.0];

/// `m` then `n` (PDF's row-vector convention: `m × n`).
fn mul(m: &Matrix, n: &Matrix) -> Matrix {
    [
        m[0] * n[0] + m[1] * n[2],
        m[0] * n[1] + m[1] * n[3],
        m[2] * n[0] + m[3] * n[2],
        m[2] * n[1] + m[3] * n[3],
        m[4] * n[0] + m[5] * n[2] + n[4],
        m[4] * n[1] + m[5] * n[3] + n[5],
    ]
}

/// `m` moved by `(tx, ty)` in its own space (what `Td` does to the line
/// matrix).
fn translate(m: &Matrix, tx: f32, ty: f32) -> Matrix {
    let mut out = *m;
    out[4] += tx * m[0] + ty * m[2];
    out[5] += tx * m[1] + ty * m[3];
    out
}

fn matrix(args: &[Object]) -> Option<Matrix> {
    let mut m = [0.0; 6];
    for (i, v) in m.iter_mut().enumerate() {
        *v = args.get(args.len().checked_sub(6)? + i)?.as_float().ok()?;
    }
    m.iter().all(|v| v.is_finite()).then_some(m)
}

/// Most nested `q` kept; deeper saves are not restored (damage).
const MAX_SAVES: usize = 64;
/// Most runs placed on a page. A run costs some fifty bytes besides its
/// text, and a hostile stream can show a character per operator; the text
/// of the runs past this is appended to the last one, in stream order, so
/// memory stays in proportion to the text.
const MAX_RUNS: usize = 100_000;

/// The text `content` shows, one run per text-showing operator, each
/// where it lands on the page. Glyph widths are not read: a run's end is
/// estimated at half an em a character, which is enough to tell the gap
/// between a table's cells from the one between words.
pub(crate) fn runs(content: &[u8], fonts: &Fonts<'_>, unknown: Unknown<'_, '_>) -> Vec<Run> {
    let mut out: Vec<Run> = Vec::new();
    // None: the font is not known.
    let mut enc: Option<&Encoding> = None;
    let (mut ctm, mut saved) = (IDENTITY, Vec::new());
    let (mut tm, mut tlm) = (IDENTITY, IDENTITY);
    let (mut size, mut leading) = (0.0f32, 0.0f32);
    ops::each(content, |op, args| match op {
        b"q" if saved.len() < MAX_SAVES => saved.push(ctm),
        b"Q" => ctm = saved.pop().unwrap_or(ctm),
        b"cm" => {
            if let Some(m) = matrix(args) {
                ctm = mul(&m, &ctm);
            }
        }
        b"BT" => (tm, tlm) = (IDENTITY, IDENTITY),
        b"Tf" => {
            enc = args
                .first()
                .and_then(|n| n.as_name().ok())
                .and_then(|n| fonts.get(n));
            size = num(args.get(1));
        }
        b"TL" => leading = num(args.first()),
        b"Td" | b"TD" => {
            let (tx, ty) = (num(args.first()), num(args.get(1)));
            if op == b"TD" {
                leading = -ty;
            }
            tlm = translate(&tlm, tx, ty);
            tm = tlm;
        }
        b"Tm" => {
            if let Some(m) = matrix(args) {
                (tm, tlm) = (m, m);
            }
        }
        b"T*" => {
            tlm = translate(&tlm, 0.0, -leading);
            tm = tlm;
        }
        b"Tj" | b"TJ" | b"'" | b"\"" => {
            if matches!(op, b"'" | b"\"") {
                tlm = translate(&tlm, 0.0, -leading);
                tm = tlm;
            }
            let mut s = String::new();
            let advance = match (enc, unknown) {
                (Some(e), _) | (None, Unknown::Guess(Some(e))) => show(&mut s, Some(e), args, size),
                (None, Unknown::Guess(None)) => show(&mut s, None, args, size),
                (None, Unknown::Skip) => return,
            };
            let trm = mul(&tm, &ctm);
            let (sx, sy) = (trm[0].hypot(trm[1]), trm[2].hypot(trm[3]));
            let run = Run {
                x: trm[4],
                y: trm[5],
                end: trm[4] + advance * sx,
                size: (size * sy).abs(),
                text: s,
            };
            tm = translate(&tm, advance, 0.0);
            let full = out.len() >= MAX_RUNS;
            match out.last_mut() {
                // Past the cap, text is kept in stream order, not placed.
                Some(last) if full => {
                    last.text.push('\n');
                    last.text.push_str(&run.text);
                }
                _ if !run.text.is_empty()
                    && [run.x, run.y, run.end].iter().all(|v| v.is_finite()) =>
                {
                    out.push(run)
                }
                _ => {}
            }
        }
        _ => {}
    });
    out
}

/// Appends the strings shown by a text operator (in `enc`, or as printable
/// ASCII when None); a large negative kerning inside a `TJ` array is a
/// word gap. Returns the estimated advance in text space units.
fn show(out: &mut String, enc: Option<&Encoding>, args: &[Object], size: f32) -> f32 {
    let mut advance = 0.0;
    for a in args {
        let before = out.chars().count();
        match a {
            Object::String(bytes, _) => match enc {
                Some(e) => {
                    if let Ok(s) = e.bytes_to_string(bytes) {
                        out.push_str(&s);
                    }
                }
                None => out.extend(
                    bytes
                        .iter()
                        .filter(|b| b.is_ascii_graphic() || **b == b' ')
                        .map(|&b| b as char),
                ),
            },
            Object::Array(items) => advance += show(out, enc, items, size),
            Object::Integer(i) => {
                advance -= *i as f32 / 1000.0 * size;
                if *i < -200 {
                    out.push(' ');
                }
            }
            Object::Real(r) => {
                advance -= r / 1000.0 * size;
                if *r < -200.0 {
                    out.push(' ');
                }
            }
            _ => {}
        }
        if matches!(a, Object::String(..)) {
            advance += (out.chars().count() - before) as f32 * size * 0.5;
        }
    }
    advance
}

#[cfg(test)]
mod tests {
    use super::*;

    fn blocks(content: &[u8]) -> Vec<layout::Block> {
        layout::blocks(&runs(content, &Fonts::new(), Unknown::Guess(None)))
    }

    /// A table drawn column by column, the second column placed by `Tm`
    /// and scaled by `cm`: read back as rows under their headings.
    #[test]
    fn a_column_major_content_stream_reads_as_rows() {
        let got = blocks(
            b"BT /F1 10 Tf 50 700 Td (Name) Tj 0 -13 Td (Wei Kowalski) Tj \
              0 -13 Td (Olivia Chen) Tj ET \
              q 2 0 0 2 0 0 cm BT /F1 5 Tf 1 0 0 1 200 350 Tm (SSN) Tj \
              1 0 0 1 227 343.5 Tm (222152950) Tj 1 0 0 1 227 337 Tm (759246792) Tj ET Q",
        );
        assert_eq!(got.len(), 1);
        assert!(got[0].table);
        assert_eq!(
            got[0].text,
            "Name\tSSN\nWei Kowalski\t222152950\nOlivia Chen\t759246792\n"
        );
    }

    /// `T*` and `'` move down by the leading; a `TJ` kerning gap is a word
    /// space and advances the text position.
    #[test]
    fn leading_and_kerning_move_the_text() {
        let got = text(
            b"BT /F1 10 Tf 14 TL 50 700 Td (SSN) Tj T* [(536-22)-1000(1234)] TJ (next) ' ET",
            &Fonts::new(),
            Unknown::Guess(None),
        );
        assert_eq!(got, "SSN\n536-22 1234\nnext\n");
    }
}
