//! The images of a PDF page that shows no text (a scanned form, a
//! photographed card), handed to OCR ([`crate::ocr`]). A JPEG
//! (`DCTDecode`) or JPEG 2000 (`JPXDecode`) image is handed over as it
//! is; a raw one (Flate-coded or uncoded, PNG predictors undone) is
//! written as a PNM image (8-bit gray or RGB: DeviceGray, DeviceRGB,
//! DeviceCMYK, ICCBased, Indexed; 1-bit gray), which Tesseract reads.
//! Other codings (CCITT fax, JBIG2, 16-bit samples) are not read, and the
//! page is partial, saying so.

use super::inflate::{self, Decoded};
use crate::formats::Ctx;
use crate::ocr::{self, Ocr};
use lopdf::{Document, Object, ObjectId, Stream};

/// Most pixels of an image written out for OCR (a 600 dpi A4 page is
/// 35 million).
const MAX_PIXELS: u64 = 64 << 20;

/// Reads the images of the page `page` (named `name`) by OCR, adding
/// what is found to `ctx`, or a gap when they cannot be read.
pub(crate) fn read_page(doc: &Document, page: ObjectId, name: &str, ctx: &Ctx) {
    let images = page_images(doc, page);
    if images.is_empty() {
        return;
    }
    let program = match ctx.ocr() {
        Ocr::On(p) => p,
        Ocr::Off(why) => {
            return ctx.gap(format!(
                "{name}: {} image(s) and no text: not read: no OCR ({why})",
                images.len()
            ))
        }
    };
    for s in images {
        if ctx.out_of_time() {
            return ctx.gap(format!("{name}: {}", ctx.stop_reason()));
        }
        let Some(image) = encode(s, ctx) else {
            let filter = s.filters().ok().and_then(|f| f.first().map(|f| f.to_vec()));
            let filter = filter.map_or_else(
                || "raw".into(),
                |f| String::from_utf8_lossy(&f).into_owned(),
            );
            ctx.gap(format!("{name}: an image in a form not read ({filter})"));
            continue;
        };
        match ocr::read(program, &image, ctx.deadline()) {
            Ok(pages) => {
                for (_, found) in pages {
                    ctx.ocr_found(Some(name.to_owned()), found);
                }
            }
            Err(e) => ctx.gap(format!("{name}: an image: {e}")),
        }
    }
}

/// The image XObjects the page's resources name.
fn page_images(doc: &Document, page: ObjectId) -> Vec<&Stream> {
    let Ok((own, inherited)) = doc.get_page_resources(page) else {
        return Vec::new();
    };
    let dicts = own.into_iter().chain(
        inherited
            .into_iter()
            .filter_map(|id| doc.get_dictionary(id).ok()),
    );
    let mut out: Vec<&Stream> = Vec::new();
    for res in dicts {
        let Ok((_, Object::Dictionary(xobjects))) =
            res.get(b"XObject").and_then(|x| doc.dereference(x))
        else {
            continue;
        };
        for (_, x) in xobjects.iter() {
            if let Ok((_, Object::Stream(s))) = doc.dereference(x) {
                let image = s
                    .dict
                    .get(b"Subtype")
                    .and_then(Object::as_name)
                    .is_ok_and(|n| n == b"Image");
                if image && !out.iter().any(|o| std::ptr::eq(*o, s)) {
                    out.push(s);
                }
            }
        }
    }
    out
}

/// The image as a file Tesseract reads, when its coding is one read here.
fn encode(s: &Stream, ctx: &Ctx) -> Option<Vec<u8>> {
    let filters = s.filters().unwrap_or_default();
    let raw = match filters.as_slice() {
        [b"DCTDecode" | b"DCT" | b"JPXDecode"] => return Some(s.content.clone()),
        [] => s.content.clone(),
        [b"FlateDecode" | b"Fl"] => match inflate::inflate(&s.content, ctx) {
            (data, Decoded::Whole | Decoded::Broken) => data,
            _ => return None,
        },
        _ => return None,
    };
    let int = |k: &[u8]| s.dict.get(k).and_then(Object::as_i64).ok();
    let (w, h) = (int(b"Width")?, int(b"Height")?);
    let (w, h) = (usize::try_from(w).ok()?, usize::try_from(h).ok()?);
    if w == 0 || h == 0 || (w as u64) * (h as u64) > MAX_PIXELS {
        return None;
    }
    let mask = s
        .dict
        .get(b"ImageMask")
        .and_then(Object::as_bool)
        .unwrap_or(false);
    let bpc = if mask { 1 } else { int(b"BitsPerComponent")? };
    let space = if mask {
        Space::Gray
    } else {
        space(s.dict.get(b"ColorSpace").ok()?, s, 0)?
    };
    let comps = space.components();
    let stride = (w * comps * bpc as usize).div_ceil(8);
    let data = match predictor(s) {
        Some(p) if p >= 10 => unpredict(&raw, stride, comps * bpc as usize / 8)?,
        Some(_) => return None,
        None => raw,
    };
    if data.len() < stride * h {
        return None;
    }
    match (bpc, space) {
        (8, Space::Gray) => Some(pnm(b"P5", w, h, &data[..w * h])),
        (8, Space::Rgb) => Some(pnm(b"P6", w, h, &data[..w * h * 3])),
        (8, Space::Cmyk) => {
            let rgb: Vec<u8> = data[..w * h * 4]
                .chunks_exact(4)
                .flat_map(|p| {
                    let k = 255 - u32::from(p[3]);
                    [p[0], p[1], p[2]].map(|c| ((255 - u32::from(c)) * k / 255) as u8)
                })
                .collect();
            Some(pnm(b"P6", w, h, &rgb))
        }
        (8, Space::Indexed(base, ref table)) => {
            let n = base.components();
            let rgb: Vec<u8> = data[..w * h]
                .iter()
                .flat_map(|&i| {
                    let at = usize::from(i) * n;
                    let px = table.get(at..at + n).unwrap_or(&[0, 0, 0][..n]);
                    match n {
                        1 => [px[0]; 3],
                        _ => [px[0], px[1], px[2]],
                    }
                })
                .collect();
            Some(pnm(b"P6", w, h, &rgb))
        }
        (1, Space::Gray) => {
            // PDF: 0 is black (an image mask: 0 is painted); PBM: 1 is.
            let invert = !mask;
            let bits: Vec<u8> = data[..stride * h]
                .iter()
                .map(|b| if invert { !b } else { *b })
                .collect();
            let mut out = format!("P4\n{w} {h}\n").into_bytes();
            out.extend_from_slice(&bits);
            Some(out)
        }
        _ => None,
    }
}

fn pnm(magic: &[u8], w: usize, h: usize, data: &[u8]) -> Vec<u8> {
    let mut out = magic.to_vec();
    out.extend_from_slice(format!("\n{w} {h}\n255\n").as_bytes());
    out.extend_from_slice(data);
    out
}

/// A colour space read here.
#[derive(Clone, Debug)]
enum Space {
    Gray,
    Rgb,
    Cmyk,
    /// The base space (gray or RGB) and the palette.
    Indexed(Base, Vec<u8>),
}

#[derive(Clone, Copy, Debug)]
enum Base {
    Gray,
    Rgb,
}

impl Base {
    fn components(self) -> usize {
        match self {
            Base::Gray => 1,
            Base::Rgb => 3,
        }
    }
}

impl Space {
    fn components(&self) -> usize {
        match self {
            Space::Gray | Space::Indexed(..) => 1,
            Space::Rgb => 3,
            Space::Cmyk => 4,
        }
    }
}

/// The colour space `o` names (within the image `s`'s document: only
/// direct values and the ICC profile's `N` are read).
fn space(o: &Object, s: &Stream, depth: u8) -> Option<Space> {
    match o {
        Object::Name(n) => match n.as_slice() {
            b"DeviceGray" | b"G" | b"CalGray" => Some(Space::Gray),
            b"DeviceRGB" | b"RGB" | b"CalRGB" => Some(Space::Rgb),
            b"DeviceCMYK" | b"CMYK" => Some(Space::Cmyk),
            _ => None,
        },
        Object::Array(a) if depth == 0 => match a.first()?.as_name().ok()? {
            b"ICCBased" => match s.dict.get(b"N").and_then(Object::as_i64).unwrap_or(3) {
                1 => Some(Space::Gray),
                4 => Some(Space::Cmyk),
                _ => Some(Space::Rgb),
            },
            b"CalGray" => Some(Space::Gray),
            b"CalRGB" => Some(Space::Rgb),
            b"Indexed" | b"I" => {
                let base = match space(a.get(1)?, s, depth + 1)? {
                    Space::Gray => Base::Gray,
                    Space::Rgb => Base::Rgb,
                    _ => return None,
                };
                let table = a.get(3)?.as_str().ok()?.to_vec();
                Some(Space::Indexed(base, table))
            }
            _ => None,
        },
        _ => None,
    }
}

fn predictor(s: &Stream) -> Option<i64> {
    let parms = match s.dict.get(b"DecodeParms").ok()? {
        Object::Array(a) => a.first()?.as_dict().ok()?,
        o => o.as_dict().ok()?,
    };
    parms
        .get(b"Predictor")
        .and_then(Object::as_i64)
        .ok()
        .filter(|&p| p > 1)
}

/// Undoes PNG row filters: rows of a filter byte and `stride` bytes;
/// `bpp` bytes per pixel (at least 1).
fn unpredict(data: &[u8], stride: usize, bpp: usize) -> Option<Vec<u8>> {
    let bpp = bpp.max(1);
    let mut out: Vec<u8> = Vec::with_capacity(data.len());
    let mut prev = vec![0u8; stride];
    for row in data.chunks_exact(stride + 1) {
        let (f, row) = (row[0], &row[1..]);
        let mut cur = row.to_vec();
        for i in 0..stride {
            let a = if i >= bpp { cur[i - bpp] } else { 0 };
            let (b, c) = (prev[i], if i >= bpp { prev[i - bpp] } else { 0 });
            cur[i] = cur[i].wrapping_add(match f {
                0 => 0,
                1 => a,
                2 => b,
                3 => ((u16::from(a) + u16::from(b)) / 2) as u8,
                4 => paeth(a, b, c),
                _ => return None,
            });
        }
        out.extend_from_slice(&cur);
        prev = cur;
    }
    Some(out)
}

fn paeth(a: u8, b: u8, c: u8) -> u8 {
    let p = i16::from(a) + i16::from(b) - i16::from(c);
    let (pa, pb, pc) = (
        (p - i16::from(a)).abs(),
        (p - i16::from(b)).abs(),
        (p - i16::from(c)).abs(),
    );
    if pa <= pb && pa <= pc {
        a
    } else if pb <= pc {
        b
    } else {
        c
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn png_row_filters_are_undone() {
        // Two rows of 3 gray pixels: Sub, then Up.
        let data = [1, 10, 5, 5, 2, 1, 1, 1];
        assert_eq!(unpredict(&data, 3, 1).unwrap(), [10, 15, 20, 11, 16, 21]);
        let avg_paeth = [3, 10, 10, 10, 4, 1, 1, 1];
        assert_eq!(
            unpredict(&avg_paeth, 3, 1).unwrap(),
            [10, 15, 17, 11, 16, 18]
        );
    }

    #[test]
    fn raw_gray_images_become_pnm() {
        let mut s = Stream::new(
            lopdf::dictionary! {
                "Subtype" => "Image",
                "Width" => 2,
                "Height" => 2,
                "BitsPerComponent" => 8,
                "ColorSpace" => "DeviceGray"
            },
            vec![0, 255, 255, 0],
        );
        let ctx = Ctx::new();
        assert_eq!(encode(&s, &ctx).unwrap(), b"P5\n2 2\n255\n\x00\xff\xff\x00");
        s.dict.set("ColorSpace", "DeviceN");
        assert!(encode(&s, &ctx).is_none());
    }
}
