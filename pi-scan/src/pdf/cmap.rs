//! Damaged `ToUnicode` maps, rewritten clean. A font whose glyph codes are
//! a subset's own numbering (LibreOffice, Word and most writers embed
//! subsets) can only be read through its map from codes to Unicode; lopdf
//! parses that map strictly and, on one damaged byte anywhere in it
//! (`(Adobe)` become `-gdobe)`), decodes the whole font as garbage. Here
//! the map's code ranges and mappings are read leniently and written back
//! in the plain form lopdf reads, without the entries the damage touched.

use super::ops;
use lopdf::Object;
use std::fmt::Write;

/// Most entries per section, as the CMap specification allows.
const SECTION: usize = 100;

/// A clean map with the code ranges and mappings `data` still holds; None
/// when it holds no mapping.
pub(crate) fn clean(data: &[u8]) -> Option<Vec<u8>> {
    let mut ranges: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut chars: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
    let mut spans: Vec<(Vec<u8>, Vec<u8>, Object)> = Vec::new();
    ops::each(data, |op, args| {
        let strings = || {
            args.iter()
                .filter_map(|a| a.as_str().ok().map(<[u8]>::to_vec))
        };
        match op {
            b"endcodespacerange" => ranges.extend(pairs(strings())),
            b"endbfchar" => chars.extend(pairs(strings())),
            b"endbfrange" => {
                for t in args.chunks_exact(3) {
                    if let (Ok(a), Ok(b)) = (t[0].as_str(), t[1].as_str()) {
                        if matches!(t[2], Object::String(..) | Object::Array(_)) {
                            spans.push((a.to_vec(), b.to_vec(), t[2].clone()));
                        }
                    }
                }
            }
            _ => {}
        }
    });
    if chars.is_empty() && spans.is_empty() {
        return None;
    }
    if ranges.is_empty() {
        // The widest source code decides the code length.
        let len = chars
            .iter()
            .map(|c| c.0.len())
            .chain(spans.iter().map(|s| s.0.len()))
            .max();
        let len = len.unwrap_or(1).clamp(1, 4);
        ranges.push((vec![0; len], vec![0xff; len]));
    }
    let hex = |b: &[u8]| {
        b.iter().fold(String::from("<"), |mut s, x| {
            let _ = write!(s, "{x:02X}");
            s
        }) + ">"
    };
    let mut out = String::from(
        "/CIDInit/ProcSet findresource begin\n12 dict begin\nbegincmap\n/CMapName/Recovered def\n/CMapType 2 def\n",
    );
    for c in ranges.chunks(SECTION) {
        let _ = writeln!(out, "{} begincodespacerange", c.len());
        for (a, b) in c {
            let _ = writeln!(out, "{} {}", hex(a), hex(b));
        }
        out.push_str("endcodespacerange\n");
    }
    for c in chars.chunks(SECTION) {
        let _ = writeln!(out, "{} beginbfchar", c.len());
        for (a, b) in c {
            let _ = writeln!(out, "{} {}", hex(a), hex(b));
        }
        out.push_str("endbfchar\n");
    }
    for c in spans.chunks(SECTION) {
        let _ = writeln!(out, "{} beginbfrange", c.len());
        for (a, b, to) in c {
            let to = match to {
                Object::Array(items) => {
                    let items: Vec<String> = items
                        .iter()
                        .filter_map(|i| i.as_str().ok())
                        .map(hex)
                        .collect();
                    format!("[{}]", items.join(" "))
                }
                o => o.as_str().map(hex).unwrap_or_default(),
            };
            let _ = writeln!(out, "{} {} {to}", hex(a), hex(b));
        }
        out.push_str("endbfrange\n");
    }
    out.push_str("endcmap\nCMapName currentdict /CMap defineresource pop\nend\nend\n");
    Some(out.into_bytes())
}

fn pairs(mut items: impl Iterator<Item = Vec<u8>>) -> Vec<(Vec<u8>, Vec<u8>)> {
    let mut out = Vec::new();
    while let (Some(a), Some(b)) = (items.next(), items.next()) {
        out.push((a, b));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A map damaged as a flipped bit in its Flate data left it: lopdf
    /// cannot read it; the clean form maps every code the damage spared.
    #[test]
    fn a_damaged_map_is_rewritten_with_its_mappings() {
        let damaged = b"/CIDInit/ProcSet findresource begin\n12 dict begin\nbegincmap\n\
/CIDSystemInfo<<\n/Registry -gdobe)\n/Ordering (UCS)\n/Supplement 0\n>> def\n\
/CMapName/Adobe-Identity-UCS def\n/CMapType 2 def\n1 begincodespacerange\n<00> <FF>\n\
endcodespacerange\n3 beginbfchar\n<01> <0053>\n<02> <0053\xff>\n<03> <0031>\nendbfchar\n\
1 beginbfrange\n<10> <12> <0041>\nendbfrange\nendcmap\nCMapName cu";
        let clean = clean(damaged).unwrap();
        let mut doc = lopdf::Document::new();
        let map = doc.add_object(lopdf::Stream::new(lopdf::Dictionary::new(), clean));
        let font = lopdf::dictionary! { "Type" => "Font", "ToUnicode" => map };
        let enc = font.get_font_encoding(&doc).unwrap();
        assert!(matches!(enc, lopdf::Encoding::UnicodeMapEncoding(_)));
        assert_eq!(enc.bytes_to_string(&[1, 3, 0x10, 0x12]).unwrap(), "S1AC");
    }
}
