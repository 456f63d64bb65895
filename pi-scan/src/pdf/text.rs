//! Text from a page's content stream: the strings its text operators
//! show, decoded through each font's encoding, and the text-positioning
//! operators turned into the line breaks and spaces a reader sees, so that
//! a number and the words around it stay apart ("SSN 536-22-1234" and
//! "Phone ..." on the next line).

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

/// The text `content` shows.
pub(crate) fn text(content: &[u8], fonts: &Fonts<'_>, unknown: Unknown<'_, '_>) -> String {
    let mut out = String::new();
    // None: the font is not known.
    let mut enc: Option<&Encoding> = None;
    let mut last_y: Option<f32> = None;
    let newline = |out: &mut String| {
        if !out.is_empty() && !out.ends_with('\n') {
            out.push('\n');
        }
    };
    let space = |out: &mut String| {
        if !out.is_empty() && !out.ends_with([' ', '\n']) {
            out.push(' ');
        }
    };
    ops::each(content, |op, args| match op {
        b"Tf" => {
            enc = args
                .first()
                .and_then(|n| n.as_name().ok())
                .and_then(|n| fonts.get(n))
        }
        b"Td" | b"TD" => match num(args.get(1)) {
            y if y.abs() > 0.01 => newline(&mut out),
            _ => space(&mut out),
        },
        b"Tm" => {
            let y = num(args.get(5));
            match last_y {
                Some(prev) if (prev - y).abs() <= 0.01 => space(&mut out),
                _ => newline(&mut out),
            }
            last_y = Some(y);
        }
        b"T*" | b"ET" => newline(&mut out),
        b"Tj" | b"TJ" | b"'" | b"\"" => {
            if matches!(op, b"'" | b"\"") {
                newline(&mut out);
            }
            match (enc, unknown) {
                (Some(e), _) | (None, Unknown::Guess(Some(e))) => show(&mut out, Some(e), args),
                (None, Unknown::Guess(None)) => show(&mut out, None, args),
                (None, Unknown::Skip) => {}
            }
        }
        _ => {}
    });
    out
}

/// Appends the strings shown by a text operator (in `enc`, or as printable
/// ASCII when None); a large negative kerning inside a `TJ` array is a
/// word gap.
fn show(out: &mut String, enc: Option<&Encoding>, args: &[Object]) {
    for a in args {
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
            Object::Array(items) => show(out, enc, items),
            Object::Integer(i) if *i < -200 => out.push(' '),
            Object::Real(r) if *r < -200.0 => out.push(' '),
            _ => {}
        }
    }
}
