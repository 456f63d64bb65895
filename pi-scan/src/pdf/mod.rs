//! Text from PDF pages with `lopdf`, and from damaged PDFs as far as they
//! can be read.
//!
//! An intact file is loaded through its cross-reference table and read
//! page by page ([`text`]: fonts decoded through each font's encoding,
//! each string placed on the page; [`layout`]: lines in reading order, a
//! printed table as a part of its own, read as a sheet). Content streams are decoded here,
//! under the file's inflation budget, not by lopdf (which has no cap), and
//! read by a lenient reader ([`ops`]) that skips damage instead of stopping
//! at it.
//!
//! A file that does not load, or loads with damage (objects its table
//! lists that cannot be read, no pages, a content stream that does not
//! decode to its end), is read again by [`recover`]: objects found by
//! scanning the bytes, as viewers do. Such a file is reported as partial,
//! saying so, with the findings in what was recovered; only a file from
//! which no text at all can be recovered is "not scanned". Measured
//! against poppler's `pdftotext` on damaged copies of a real PDF in
//! docs/SCAN.md (`benches/pdf_damage.sh`).
//!
//! A page that shows no text but holds images (a scan) has them read by
//! OCR ([`images`]). The document information dictionary (title, subject,
//! keywords ...) is read as a part of its own ([`info`]), from intact and
//! damaged files alike.

mod cmap;
mod images;
mod inflate;
mod info;
mod layout;
mod ops;
mod recover;
mod text;

use crate::detect::Layout;
use crate::formats::{Ctx, Part};
use inflate::Decoded;
use lopdf::{Document, Object, ObjectId};
use text::Unknown;

/// Text of every page, one part per page; a damaged file's recovered text
/// (and a gap saying it was damaged).
pub(crate) fn pages(bytes: &[u8], ctx: &Ctx) -> Result<Vec<Part>, String> {
    let why = match Document::load_mem(bytes) {
        Ok(mut doc) => {
            if doc.trailer.has(b"Encrypt") {
                // Recovery would read ciphertext: what lopdf decrypted is
                // all there is.
                return Ok(with_info(intact(&doc, ctx).0, &doc));
            }
            decode_cmaps(&mut doc, ctx);
            match intact(&doc, ctx) {
                (parts, None) => return Ok(with_info(parts, &doc)),
                (_, Some(damage)) => damage,
            }
        }
        Err(e) => format!("cannot read it as written: {e}"),
    };
    if memchr::memmem::find(bytes, b"/Encrypt").is_some() {
        return Err(format!("{why}; encrypted, so not recovered"));
    }
    let got = recover::read(bytes, ctx);
    if got.more {
        ctx.gap(format!(
            "more than {} objects: the rest were not read",
            recover::MAX_OBJECTS
        ));
    }
    if ctx.stopped().is_some() {
        ctx.gap(format!("damaged ({why}): {}", ctx.stop_reason()));
    } else if got.parts.is_empty() {
        return Err(format!(
            "{why}; no text recovered from the {} object(s) found in it",
            got.objects
        ));
    } else if got.streams == 0 {
        ctx.gap(format!(
            "damaged PDF ({why}): only its document information recovered"
        ));
    } else {
        ctx.gap(format!(
            "damaged PDF ({why}): text recovered from {} stream(s)",
            got.streams
        ));
    }
    Ok(got.parts)
}

/// `parts` and, after them, the document information of `doc`.
fn with_info(mut parts: Vec<Part>, doc: &Document) -> Vec<Part> {
    parts.extend(info::intact(doc));
    parts
}

/// The pages of a file that loaded, and what is damaged in it, if anything.
fn intact(doc: &Document, ctx: &Ctx) -> (Vec<Part>, Option<String>) {
    let missing = doc
        .reference_table
        .entries
        .iter()
        .filter(|(&n, e)| match e {
            lopdf::xref::XrefEntry::Normal { generation, .. } => {
                !doc.objects.contains_key(&(n, *generation))
            }
            lopdf::xref::XrefEntry::Compressed { .. } => !doc.objects.contains_key(&(n, 0)),
            _ => false,
        })
        .count();
    let pages = doc.get_pages();
    let mut damage = Vec::new();
    if missing > 0 {
        damage.push(format!(
            "{missing} object(s) its table lists cannot be read"
        ));
    }
    if pages.is_empty() {
        damage.push("no pages found".to_owned());
    }
    let mut parts = Vec::new();
    let mut broken = 0;
    for (no, id) in pages {
        if ctx.out_of_time() {
            ctx.gap(format!("page {no}: {}", ctx.stop_reason()));
            return (parts, None);
        }
        let fonts = text::page_fonts(doc, id);
        let (content, end) = page_content(doc, id, ctx);
        match end {
            Decoded::Broken => broken += 1,
            Decoded::Capped => ctx.gap(format!("page {no}: {}", cap_reason(ctx))),
            Decoded::Whole | Decoded::Unsupported => {}
        }
        let runs = text::runs(&content, &fonts, Unknown::Skip);
        if runs.iter().all(|r| r.text.trim().is_empty()) {
            images::read_page(doc, id, &format!("page {no}"), ctx);
        }
        // A printed table is a part of its own, read as a sheet (its first
        // row the headings); the parts of a page share its name.
        for block in layout::blocks(&runs) {
            parts.push(Part {
                name: Some(format!("page {no}")),
                text: block.text.into_bytes(),
                layout: match block.table {
                    true => Layout::Delimited(b'\t'),
                    false => Layout::Plain,
                },
            });
        }
    }
    if broken > 0 {
        damage.push(format!("{broken} page(s) with damaged content"));
    }
    (parts, (!damage.is_empty()).then(|| damage.join(", ")))
}

/// The decoded content streams of a page, joined, and the worst way one
/// ended (a missing stream is broken).
fn page_content(doc: &Document, page: ObjectId, ctx: &Ctx) -> (Vec<u8>, Decoded) {
    let mut out = Vec::new();
    let mut worst = Decoded::Whole;
    for id in doc.get_page_contents(page) {
        let end = match doc.get_object(id) {
            Ok(Object::Stream(s)) => {
                let (data, end) = inflate::decode(s, ctx);
                out.extend_from_slice(&data);
                out.push(b'\n');
                end
            }
            _ => Decoded::Broken,
        };
        worst = match (worst, end) {
            (Decoded::Broken, _) | (_, Decoded::Broken) => Decoded::Broken,
            (Decoded::Capped, _) | (_, Decoded::Capped) => Decoded::Capped,
            _ => Decoded::Whole,
        };
    }
    (out, worst)
}

/// Why a page's content was cut: the file's budget or time, or the
/// per-stream cap.
fn cap_reason(ctx: &Ctx) -> String {
    match ctx.stopped() {
        Some(_) => ctx.stop_reason(),
        None => format!(
            "content stream over {} MiB: only the first {} MiB was read",
            inflate::MAX_STREAM >> 20,
            inflate::MAX_STREAM >> 20
        ),
    }
}

/// Replaces every font's `ToUnicode` map with its decoded data (bounded,
/// and as far as a damaged map decodes), so that lopdf, which decodes it
/// without a cap, finds it plain; and a map lopdf cannot parse (damaged)
/// with the clean form of what it still holds ([`cmap`]).
fn decode_cmaps(doc: &mut Document, ctx: &Ctx) {
    // (font, its map); a font with an `Encoding` is read by that instead.
    let fonts: Vec<(ObjectId, ObjectId)> = doc
        .objects
        .iter()
        .filter_map(|(&id, o)| {
            let d = o.as_dict().ok().filter(|d| !d.has(b"Encoding"))?;
            Some((id, d.get(b"ToUnicode").ok()?.as_reference().ok()?))
        })
        .collect();
    for &(_, id) in &fonts {
        if let Some(Object::Stream(s)) = doc.objects.get_mut(&id) {
            if s.dict.has(b"Filter") {
                let (data, _) = inflate::decode(s, ctx);
                s.dict.remove(b"Filter");
                s.dict.remove(b"DecodeParms");
                s.set_content(data);
            }
        }
    }
    let unread: Vec<ObjectId> = fonts
        .iter()
        .filter(|(font, _)| {
            let enc = doc.get_dictionary(*font).map(|f| f.get_font_encoding(doc));
            !matches!(enc, Ok(Ok(lopdf::Encoding::UnicodeMapEncoding(_))))
        })
        .map(|&(_, map)| map)
        .collect();
    for id in unread {
        if let Some(Object::Stream(s)) = doc.objects.get_mut(&id) {
            if let Some(clean) = cmap::clean(&s.content) {
                s.set_content(clean);
            }
        }
    }
}
