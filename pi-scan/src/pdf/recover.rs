//! Reading a damaged PDF as viewers do: when the cross-reference table is
//! missing, cut off or wrong (a download cut short, bytes deleted or
//! inserted, an incremental save gone wrong), the objects are found by
//! scanning the bytes for `N G obj` headers, the document is rebuilt from
//! them (the catalog found by its type, pages by the page tree or, failing
//! that, by their type), and every stream that shows text but belongs to
//! no page read (its page object lost, a form) is read with every font the
//! file still names. Streams whose object header is damaged are found by
//! their `stream` keyword and read the same way. The document information
//! dictionary is read when an `/Info` reference to an object that was
//! found survives.
//!
//! Bounds: each object is parsed within the bytes up to the next object
//! header, so a damaged object (an unterminated string) cannot make the
//! parser run over the rest of the file for every object: the whole pass
//! is linear in the file's size. Stream data is decoded under the file's
//! inflation budget and the per-stream cap ([`inflate`](super::inflate)),
//! and the time limit is checked between objects.

use super::inflate::{self, Decoded};
use super::ops;
use super::text::{self, Fonts, Unknown};
use crate::detect::Layout;
use crate::formats::{Ctx, Part};
use lopdf::xref::XrefEntry;
use lopdf::{Dictionary, Document, Object, ObjectId, Reader, Stream};
use memchr::memmem;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::ops::Range;

/// Most object headers read from one file: lopdf holds about a kilobyte
/// per object, so this bounds the rebuilt document near 256 MiB.
pub(crate) const MAX_OBJECTS: usize = 250_000;

/// What recovery read from a damaged file.
pub(crate) struct Recovered {
    pub parts: Vec<Part>,
    /// Streams that yielded text.
    pub streams: usize,
    /// Objects found by scanning the bytes.
    pub objects: usize,
    /// More than [`MAX_OBJECTS`] were found: the rest were not read.
    pub more: bool,
}

/// Reads what can be read of a damaged PDF.
pub(crate) fn read(bytes: &[u8], ctx: &Ctx) -> Recovered {
    let (heads, more) = headers(bytes);
    let (mut doc, covered) = rebuild(bytes, &heads, ctx);
    super::decode_cmaps(&mut doc, ctx);
    let mut out = Recovered {
        parts: Vec::new(),
        streams: 0,
        objects: heads.len(),
        more,
    };
    // First: it is small, and time may run out in the streams below.
    out.parts.extend(super::info::recovered(&doc, bytes));
    let mut used: BTreeSet<ObjectId> = BTreeSet::new();
    // Pages through the catalog's tree, then page objects outside it.
    let tree: Vec<ObjectId> = doc.get_pages().into_values().collect();
    let in_tree: HashSet<ObjectId> = tree.iter().copied().collect();
    let orphans = doc
        .objects
        .iter()
        .filter(|(id, o)| !in_tree.contains(id) && is_type(o, b"Page"))
        .map(|(id, _)| *id);
    let pages: Vec<(String, ObjectId)> = tree
        .iter()
        .enumerate()
        .map(|(i, id)| (format!("page {}", i + 1), *id))
        .chain(
            orphans
                .map(|id| (format!("object {}", id.0), id))
                .collect::<Vec<_>>(),
        )
        .collect();
    let lone = lone_font(&doc);
    for (name, page) in pages {
        if ctx.out_of_time() {
            return out;
        }
        let fonts = text::page_fonts(&doc, page);
        let only = match fonts.len() {
            1 => fonts.values().next(),
            _ => lone.as_ref(),
        };
        let mut t = String::new();
        let mut streams = 0;
        for id in doc.get_page_contents(page) {
            used.insert(id);
            if let Ok(Object::Stream(s)) = doc.get_object(id) {
                let (data, _) = inflate::decode(s, ctx);
                let got = text::text(&data, &fonts, Unknown::Guess(only));
                streams += usize::from(!got.trim().is_empty());
                t.push_str(&got);
                t.push('\n');
            }
        }
        out.streams += streams;
        if t.trim().is_empty() {
            super::images::read_page(&doc, page, &name, ctx);
        }
        push(&mut out.parts, name, t);
    }
    // Streams that no page read: orphaned content, forms.
    let fonts = all_fonts(&doc);
    let only = match fonts.len() {
        1 => fonts.values().next(),
        _ => lone.as_ref(),
    };
    for (id, o) in &doc.objects {
        if ctx.out_of_time() {
            return out;
        }
        let Object::Stream(s) = o else { continue };
        if used.contains(id) || !may_show_text(&s.dict) {
            continue;
        }
        let (data, _) = inflate::decode(s, ctx);
        let t = shown(&data, &fonts, only);
        out.streams += usize::from(!t.is_empty());
        push(&mut out.parts, format!("object {}", id.0), t);
    }
    // Streams whose object could not be read at all.
    for (at, data) in loose_streams(bytes, &covered) {
        if ctx.out_of_time() {
            return out;
        }
        let (inflated, end) = inflate::inflate(data, ctx);
        let data = match end {
            Decoded::Broken if inflated.is_empty() => data.to_vec(),
            _ => inflated,
        };
        let t = shown(&data, &fonts, only);
        out.streams += usize::from(!t.is_empty());
        push(&mut out.parts, format!("stream at byte {at}"), t);
    }
    out
}

/// The text `data` shows, when it reads as a content stream.
fn shown(data: &[u8], fonts: &Fonts<'_>, only: Option<&lopdf::Encoding<'_>>) -> String {
    if memmem::find(data, b"BT").is_none() || memmem::find(data, b"begincmap").is_some() {
        return String::new();
    }
    text::text(data, fonts, Unknown::Guess(only))
}

fn push(parts: &mut Vec<Part>, name: String, text: String) {
    if !text.trim().is_empty() {
        parts.push(Part {
            name: Some(name),
            text: text.into_bytes(),
            layout: Layout::Plain,
        });
    }
}

fn is_type(o: &Object, ty: &[u8]) -> bool {
    let dict = match o {
        Object::Dictionary(d) => d,
        Object::Stream(s) => &s.dict,
        _ => return false,
    };
    dict.get(b"Type")
        .and_then(Object::as_name)
        .is_ok_and(|t| t == ty)
}

/// False for streams that cannot be page content: images, font
/// programs, object and cross-reference streams, metadata.
fn may_show_text(dict: &Dictionary) -> bool {
    let name = |k: &[u8]| dict.get(k).and_then(Object::as_name).ok();
    let not_content = [
        &b"Image"[..],
        b"Type1C",
        b"CIDFontType0C",
        b"OpenType",
        b"XML",
    ];
    !(matches!(name(b"Type"), Some(b"ObjStm" | b"XRef" | b"Metadata"))
        || name(b"Subtype").is_some_and(|s| not_content.contains(&s))
        || dict.has(b"Length1")
        || dict.has(b"Length2"))
}

/// Every font named in any resource dictionary left in the file, by
/// resource name (the first one found for a name).
fn all_fonts(doc: &Document) -> Fonts<'_> {
    let mut fonts = Fonts::new();
    for o in doc.objects.values() {
        let Ok(dict) = o.as_dict() else { continue };
        let Ok((_, Object::Dictionary(named))) = dict.get(b"Font").and_then(|f| doc.dereference(f))
        else {
            continue;
        };
        for (name, font) in named.iter() {
            if fonts.contains_key(name) {
                continue;
            }
            let font = doc
                .dereference(font)
                .ok()
                .and_then(|(_, f)| f.as_dict().ok());
            if let Some(enc) = font.and_then(|f| f.get_font_encoding(doc).ok()) {
                fonts.insert(name.clone(), enc);
            }
        }
    }
    fonts
}

/// The encoding of the file's only font, when it has one: a string
/// shown in a font whose resource entry is lost can only be in it.
fn lone_font(doc: &Document) -> Option<lopdf::Encoding<'_>> {
    let mut fonts = doc.objects.values().filter_map(|o| {
        let d = o.as_dict().ok()?;
        let sub = d.get(b"Subtype").and_then(Object::as_name).ok();
        // A composite font's descendant is part of the font above it.
        let descendant = matches!(sub, Some(b"CIDFontType0" | b"CIDFontType2"));
        (is_type(o, b"Font") && !descendant).then_some(d)
    });
    match (fonts.next(), fonts.next()) {
        (Some(f), None) => f.get_font_encoding(doc).ok(),
        _ => None,
    }
}

/// An object header: `N G obj` at `at`.
struct Header {
    id: ObjectId,
    at: usize,
}

/// Every `N G obj` header in the bytes, in order, up to [`MAX_OBJECTS`]
/// (true when there were more).
fn headers(bytes: &[u8]) -> (Vec<Header>, bool) {
    let mut out = Vec::new();
    for kw in memmem::find_iter(bytes, b"obj") {
        if out.len() == MAX_OBJECTS {
            return (out, true);
        }
        if bytes
            .get(kw + 3)
            .is_some_and(|&b| b.is_ascii_alphanumeric())
        {
            continue;
        }
        if let Some(h) = header_before(bytes, kw) {
            out.push(h);
        }
    }
    (out, false)
}

/// The `N G ` before `obj` at `kw`, when there is one.
fn header_before(bytes: &[u8], kw: usize) -> Option<Header> {
    let spaces = |mut i: usize| {
        while i > 0 && bytes[i - 1].is_ascii_whitespace() {
            i -= 1;
        }
        i
    };
    let digits = |end: usize| {
        let mut i = end;
        while i > 0 && end - i < 10 && bytes[i - 1].is_ascii_digit() {
            i -= 1;
        }
        (i < end).then_some(i)
    };
    let gen_end = spaces(kw);
    let gen_start = digits(gen_end)?;
    let num_end = spaces(gen_start);
    if num_end == gen_start {
        return None;
    }
    // Whatever precedes the number: damage may have put junk right
    // before a header.
    let num_start = digits(num_end)?;
    let text = |r: Range<usize>| std::str::from_utf8(&bytes[r]).ok();
    Some(Header {
        id: (
            text(num_start..num_end)?.parse().ok()?,
            text(gen_start..gen_end)?.parse().ok()?,
        ),
        at: num_start,
    })
}

/// The objects the headers begin, each parsed within its own bytes (up to
/// the next header), a later copy of an object replacing an earlier one
/// as an incremental save does; and the byte ranges of the objects that
/// were read as streams.
fn rebuild(bytes: &[u8], heads: &[Header], ctx: &Ctx) -> (Document, Vec<Range<usize>>) {
    let mut doc = Document::new();
    let mut covered = Vec::new();
    let mut catalog = None;
    for (i, h) in heads.iter().enumerate() {
        if i % 1024 == 0 && ctx.out_of_time() {
            break;
        }
        let end = heads.get(i + 1).map_or(bytes.len(), |n| n.at);
        let slice = &bytes[h.at..end];
        let Some(o) = object(slice, h.id) else {
            continue;
        };
        if matches!(o, Object::Stream(_)) {
            covered.push(h.at..end);
        }
        if is_type(&o, b"Catalog") {
            catalog = Some(h.id);
        }
        doc.objects.insert(h.id, o);
    }
    unpack_object_streams(&mut doc, ctx);
    if let Some(id) = catalog {
        doc.trailer.set("Root", Object::Reference(id));
    }
    doc.max_id = doc.objects.keys().map(|k| k.0).max().unwrap_or(0);
    (doc, covered)
}

/// Parses the object `id` at the start of `slice` with lopdf; a stream
/// whose length is wrong or unknown (its `Length` object elsewhere or
/// lost) is taken to its `endstream`, or to the end of the slice.
fn object(slice: &[u8], id: ObjectId) -> Option<Object> {
    match parse(slice, id) {
        Some(Object::Stream(mut s)) if s.content.is_empty() => {
            if let Some(start) = s.start_position.filter(|&p| p <= slice.len()) {
                s.content = stream_data(&slice[start..]).to_vec();
            }
            Some(Object::Stream(s))
        }
        Some(o) => Some(o),
        None => salvage(slice),
    }
}

/// An object lopdf cannot parse, read leniently: its dictionary without
/// the damaged entries, its stream data as it lies.
fn salvage(slice: &[u8]) -> Option<Object> {
    let body = memmem::find(slice, b"obj")? + 3;
    let kw = stream_keyword(slice).filter(|&kw| kw >= body);
    let end = kw
        .or_else(|| memmem::find(&slice[body..], b"endobj").map(|i| body + i))
        .unwrap_or(slice.len());
    match (ops::value(&slice[body..end])?, kw) {
        (Object::Dictionary(dict), Some(kw)) => {
            let data = after_eol(&slice[kw + b"stream".len()..]);
            Some(Object::Stream(Stream::new(
                dict,
                stream_data(data).to_vec(),
            )))
        }
        (_, Some(_)) => None,
        (v, None) => Some(v),
    }
}

fn parse(slice: &[u8], id: ObjectId) -> Option<Object> {
    let mut doc = Document::new();
    doc.reference_table.insert(
        id.0,
        XrefEntry::Normal {
            offset: 0,
            generation: id.1,
        },
    );
    let reader = Reader {
        buffer: slice,
        document: doc,
        encryption_state: None,
        raw_objects: BTreeMap::new(),
        password: None,
        strict: false,
    };
    reader.get_object(id, &mut HashSet::new()).ok()
}

/// The first `stream` keyword that is not part of `endstream`.
fn stream_keyword(slice: &[u8]) -> Option<usize> {
    memmem::find_iter(slice, b"stream").find(|&i| i < 3 || &slice[i - 3..i] != b"end")
}

/// Skips the end of line after the `stream` keyword.
fn after_eol(data: &[u8]) -> &[u8] {
    match data {
        [b'\r', b'\n', rest @ ..] | [b'\n', rest @ ..] | [b'\r', rest @ ..] => rest,
        _ => data,
    }
}

/// Stream data up to its `endstream` (the end of line before it dropped),
/// or all of it when the keyword is lost.
fn stream_data(data: &[u8]) -> &[u8] {
    let mut d = match memmem::find(data, b"endstream") {
        Some(i) => &data[..i],
        None => data,
    };
    if let Some(rest) = d.strip_suffix(b"\n") {
        d = rest;
    }
    d.strip_suffix(b"\r").unwrap_or(d)
}

/// Stream data found by the `stream` keyword outside the objects read.
fn loose_streams<'a>(bytes: &'a [u8], covered: &[Range<usize>]) -> Vec<(usize, &'a [u8])> {
    let mut out = Vec::new();
    let mut c = covered.iter().peekable();
    let starts: Vec<usize> = memmem::find_iter(bytes, b"stream")
        .filter(|&i| i < 3 || &bytes[i - 3..i] != b"end")
        .collect();
    for (n, &kw) in starts.iter().enumerate() {
        while c.peek().is_some_and(|r| r.end <= kw) {
            c.next();
        }
        if c.peek().is_some_and(|r| r.contains(&kw)) {
            continue;
        }
        let end = starts.get(n + 1).copied().unwrap_or(bytes.len());
        let data = after_eol(&bytes[kw + b"stream".len()..end]);
        out.push((kw, stream_data(data)));
    }
    out
}

/// Objects inside object streams, added where no object of their number
/// was read directly.
fn unpack_object_streams(doc: &mut Document, ctx: &Ctx) {
    let ids: Vec<ObjectId> = doc
        .objects
        .iter()
        .filter(|(_, o)| is_type(o, b"ObjStm"))
        .map(|(id, _)| *id)
        .collect();
    for id in ids {
        let Some(Object::Stream(s)) = doc.objects.get(&id) else {
            continue;
        };
        let (data, _) = inflate::decode(s, ctx);
        let mut plain = Stream::new(s.dict.clone(), data);
        plain.dict.remove(b"Filter");
        plain.dict.remove(b"DecodeParms");
        if let Ok(inner) = lopdf::ObjectStream::new(&mut plain) {
            for (k, o) in inner.objects {
                doc.objects.entry(k).or_insert(o);
            }
        }
    }
}
