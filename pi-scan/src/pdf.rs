//! Text from PDF pages with `lopdf`: fonts decoded through each font's
//! encoding, and the text-positioning operators turned into the line
//! breaks and spaces a reader sees, so that a number and the words around
//! it stay apart ("SSN 536-22-1234" and "Phone ..." on the next line).

use crate::detect::Layout;
use crate::formats::Part;
use lopdf::content::Content;
use lopdf::{Document, Encoding, Object};
use std::collections::BTreeMap;

/// Text of every page, one part per page.
pub(crate) fn pages(bytes: &[u8]) -> Result<Vec<Part>, String> {
    let doc = Document::load_mem(bytes).map_err(|e| e.to_string())?;
    let mut parts = Vec::new();
    for (no, id) in doc.get_pages() {
        let text = page_text(&doc, id).map_err(|e| format!("page {no}: {e}"))?;
        parts.push(Part {
            name: Some(format!("page {no}")),
            text,
            layout: Layout::Plain,
        });
    }
    Ok(parts)
}

fn num(o: Option<&Object>) -> f32 {
    o.and_then(|o| o.as_float().ok()).unwrap_or(0.0)
}

fn page_text(doc: &Document, page: lopdf::ObjectId) -> lopdf::Result<Vec<u8>> {
    let encodings: BTreeMap<Vec<u8>, Encoding> = doc
        .get_page_fonts(page)?
        .into_iter()
        .filter_map(|(name, font)| font.get_font_encoding(doc).ok().map(|e| (name, e)))
        .collect();
    let content = Content::decode(&doc.get_page_content(page)?)?;
    let mut out = String::new();
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
    for op in &content.operations {
        let args = &op.operands;
        match op.operator.as_str() {
            "Tf" => {
                enc = args
                    .first()
                    .and_then(|n| n.as_name().ok())
                    .and_then(|n| encodings.get(n))
            }
            "Td" | "TD" => match num(args.get(1)) {
                y if y.abs() > 0.01 => newline(&mut out),
                _ => space(&mut out),
            },
            "Tm" => {
                let y = num(args.get(5));
                match last_y {
                    Some(prev) if (prev - y).abs() <= 0.01 => space(&mut out),
                    _ => newline(&mut out),
                }
                last_y = Some(y);
            }
            "T*" | "ET" => newline(&mut out),
            "Tj" | "TJ" | "'" | "\"" => {
                if matches!(op.operator.as_str(), "'" | "\"") {
                    newline(&mut out);
                }
                if let Some(e) = enc {
                    show(&mut out, e, args);
                }
            }
            _ => {}
        }
    }
    Ok(out.into_bytes())
}

/// Appends the strings shown by a text operator; a large negative kerning
/// inside a `TJ` array is a word gap.
fn show(out: &mut String, enc: &Encoding, args: &[Object]) {
    for a in args {
        match a {
            Object::String(bytes, _) => {
                if let Ok(s) = enc.bytes_to_string(bytes) {
                    out.push_str(&s);
                }
            }
            Object::Array(items) => show(out, enc, items),
            Object::Integer(i) if *i < -200 => out.push(' '),
            Object::Real(r) if *r < -200.0 => out.push(' '),
            _ => {}
        }
    }
}
