//! Which format a file is, and reading it into parts of text. Containers
//! (archives, e-mail, Office and OpenDocument files) hold files of their
//! own: each member or attachment is read as a file (by its name's
//! extension), its parts named `member` or `member!part`, nested up to
//! [`MAX_DEPTH`] levels, with one inflation budget shared by everything
//! inside one file on disk (so nesting does not multiply the zip-bomb cap).
//!
//! A container that could be read only in part (a truncated archive, a
//! member past the inflation cap, nesting past the depth limit) still
//! yields what it could read, and says what it could not in
//! [`Extracted::gaps`]: the file is reported as partial. The budget, the
//! time limit and those gaps are held by the file's [`Ctx`] ([`ctx`]).

pub(crate) mod archive;
mod ctx;
pub(crate) mod email;
pub(crate) mod odf;
pub(crate) mod ole;
pub(crate) mod rtf;
pub(crate) mod text;
pub(crate) mod xls;

use crate::detect::{Layout, TextFinding};
use crate::stream::Stream;
pub(crate) use ctx::{Ctx, Stop};
use std::io::Read;
use std::path::Path;

/// Largest file on disk read into memory as a document or container.
pub(crate) const MAX_DOCUMENT: u64 = 512 << 20;
/// Largest single entry (an archive member that is a document, an
/// attachment) inflated or decoded into memory. Text and XML parts are
/// streamed, in bounded memory, up to the file's budget instead.
pub(crate) const MAX_ENTRY: u64 = 256 << 20;
/// Largest total inflated from one file on disk, nested files included.
pub(crate) const MAX_INFLATED: u64 = 1 << 30;
/// How deep files inside files are opened: `a.zip!b.zip!c.docx` is two
/// levels below the file on disk.
pub(crate) const MAX_DEPTH: u32 = 3;
/// Most members read from one archive or mailbox.
pub(crate) const MAX_MEMBERS: usize = 100_000;

/// The formats read as more than plain bytes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum DocKind {
    Docx,
    Xlsx,
    Pptx,
    Pdf,
    Zip,
    Tar,
    TarGz,
    Gz,
    Eml,
    Mbox,
    Odt,
    Ods,
    Odp,
    Rtf,
    Doc,
    Xls,
    Ppt,
}

impl DocKind {
    /// By file name (case-insensitive extension), macro-enabled Office
    /// variants too.
    pub(crate) fn of(path: &Path) -> Option<Self> {
        let name = path.file_name()?.to_str()?.to_ascii_lowercase();
        if name.ends_with(".tar.gz") {
            return Some(DocKind::TarGz);
        }
        let ext = name.rsplit_once('.')?.1;
        Some(match ext {
            "docx" | "docm" | "dotx" => DocKind::Docx,
            "xlsx" | "xlsm" | "xltx" => DocKind::Xlsx,
            "pptx" | "pptm" | "potx" => DocKind::Pptx,
            "pdf" => DocKind::Pdf,
            "zip" => DocKind::Zip,
            "tar" => DocKind::Tar,
            "tgz" => DocKind::TarGz,
            "gz" => DocKind::Gz,
            "eml" => DocKind::Eml,
            "mbox" | "mbx" => DocKind::Mbox,
            "odt" | "ott" => DocKind::Odt,
            "ods" | "ots" => DocKind::Ods,
            "odp" | "otp" => DocKind::Odp,
            "rtf" => DocKind::Rtf,
            "doc" | "dot" => DocKind::Doc,
            "xls" | "xlt" => DocKind::Xls,
            "ppt" | "pps" | "pot" => DocKind::Ppt,
            _ => return None,
        })
    }

    /// By the first bytes, for a file whose name says nothing.
    pub(crate) fn sniff(bytes: &[u8]) -> Option<Self> {
        match bytes {
            [b'P', b'K', 3, 4, ..] => Some(DocKind::Zip),
            [0x1f, 0x8b, ..] => Some(DocKind::Gz),
            _ if bytes.get(257..262) == Some(b"ustar") => Some(DocKind::Tar),
            _ => None,
        }
    }

    /// What the file was taken for, in warnings.
    pub(crate) fn name(self) -> &'static str {
        match self {
            DocKind::Docx => "Word document",
            DocKind::Xlsx => "Excel workbook",
            DocKind::Pptx => "PowerPoint presentation",
            DocKind::Pdf => "PDF",
            DocKind::Zip => "zip archive",
            DocKind::Tar => "tar archive",
            DocKind::TarGz => "gzipped tar archive",
            DocKind::Gz => "gzip file",
            DocKind::Eml => "e-mail message",
            DocKind::Mbox => "mailbox",
            DocKind::Odt => "OpenDocument text",
            DocKind::Ods => "OpenDocument spreadsheet",
            DocKind::Odp => "OpenDocument presentation",
            DocKind::Rtf => "RTF document",
            DocKind::Doc => "Word 97-2003 document",
            DocKind::Xls => "Excel 97-2003 workbook",
            DocKind::Ppt => "PowerPoint 97-2003 presentation",
        }
    }
}

/// A piece of a file's text.
pub(crate) struct Part {
    /// `sheet2`, `slide3`, `page 4`, `word/footer1.xml`,
    /// `hr/list.csv` (an archive member), `report.docx!sheet1`; None for
    /// a document's body.
    pub name: Option<String>,
    pub text: Vec<u8>,
    pub layout: Layout,
}

/// What one file on disk yielded.
pub(crate) struct Extracted {
    pub parts: Vec<Part>,
    /// What could not be read (`members.zip!b.zip: nested more than 3
    /// levels deep`); non-empty means the file was scanned in part. The
    /// reasons name places, never content.
    pub gaps: Vec<String>,
    /// Findings in parts too long to hold, scanned as they were read, by
    /// part name.
    pub found: Vec<(Option<String>, TextFinding)>,
    /// Findings read by OCR (images of PDF pages), by part name, with
    /// their OCR confidence.
    pub ocr: Vec<(Option<String>, crate::ocr::OcrFinding)>,
}

/// How a capped read ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum End {
    /// All of it was read.
    Whole,
    /// The entry cap or the budget stopped it.
    Capped,
    /// The data ended early or was damaged.
    Broken,
}

/// Extracts the text of a file on disk of `kind`. An error is a reason for
/// a warning (not scanned); gaps make it partial.
/// `name` is the file's name, which names what a .gz holds.
pub(crate) fn extract(
    kind: DocKind,
    name: &str,
    bytes: &[u8],
    ctx: Ctx,
) -> Result<Extracted, String> {
    // Parsers of hostile files may panic; a panic is one unreadable file.
    let parts = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        extract_at(kind, name, bytes, 0, &ctx)
    }))
    .unwrap_or_else(|_| Err("the parser failed on this file".into()))?;
    Ok(ctx.into_extracted(parts))
}

/// Files on disk larger than this are not read into memory when their
/// kind can be read from the file itself (zip, tar, gzip, Office Open
/// XML): only the parts being inflated are held, a window at a time.
pub(crate) const HOLD_MAX: u64 = 16 << 20;

/// True for the kinds [`extract_file`] reads from the file.
pub(crate) fn reads_from_file(kind: DocKind) -> bool {
    matches!(
        kind,
        DocKind::Zip
            | DocKind::Tar
            | DocKind::TarGz
            | DocKind::Gz
            | DocKind::Docx
            | DocKind::Xlsx
            | DocKind::Pptx
    )
}

/// [`extract`] reading a large file on disk from the file, not memory.
pub(crate) fn extract_file(
    kind: DocKind,
    name: &str,
    file: &std::fs::File,
    ctx: Ctx,
) -> Result<Extracted, String> {
    let r = std::io::BufReader::with_capacity(64 << 10, file);
    let parts = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut out = Vec::new();
        match kind {
            DocKind::Docx | DocKind::Xlsx | DocKind::Pptx => {
                return crate::extract::office_in(kind, r, 0, &ctx)
            }
            DocKind::Zip => archive::zip_in(r, 0, &ctx, &mut out)?,
            DocKind::Tar => archive::tar(r, 0, &ctx, &mut out)?,
            DocKind::TarGz => {
                let inner = flate2::read::MultiGzDecoder::new(r);
                let stream = archive::Budgeted { inner, ctx: &ctx };
                archive::tar(stream, 0, &ctx, &mut out)?
            }
            _ => archive::gz(name, r, 0, &ctx, &mut out)?,
        }
        Ok(out)
    }))
    .unwrap_or_else(|_| Err("the parser failed on this file".into()))?;
    Ok(ctx.into_extracted(parts))
}

/// Extracts a file of `kind` found `depth` levels below the file on disk.
pub(crate) fn extract_at(
    kind: DocKind,
    name: &str,
    bytes: &[u8],
    depth: u32,
    ctx: &Ctx,
) -> Result<Vec<Part>, String> {
    match kind {
        DocKind::Pdf => crate::pdf::pages(bytes, ctx),
        DocKind::Docx | DocKind::Xlsx | DocKind::Pptx => {
            crate::extract::office_at(kind, bytes, depth, ctx)
        }
        DocKind::Zip | DocKind::Tar | DocKind::TarGz | DocKind::Gz => {
            archive::read(kind, name, bytes, depth, ctx)
        }
        DocKind::Eml | DocKind::Mbox => email::read(kind, bytes, depth, ctx),
        DocKind::Odt | DocKind::Ods | DocKind::Odp => odf::read(kind, bytes, ctx),
        DocKind::Rtf => rtf::read(bytes),
        DocKind::Doc | DocKind::Xls | DocKind::Ppt => ole::read(bytes),
    }
}

/// Reads a file found inside another (an archive member, an attachment)
/// as a file of its own, `depth` levels below the file on disk, adding
/// its parts to `out` named `name` or `name!part`. A document or
/// container is opened by its name's extension; anything else is text in
/// any of the encodings [`text::decode`] knows, or binary and skipped.
pub(crate) fn member(name: &str, bytes: &[u8], depth: u32, ctx: &Ctx, out: &mut Vec<Part>) {
    member_as(None, name, bytes, depth, ctx, out)
}

/// [`member`], of `kind` whatever its name says when `kind` is given (a
/// forwarded message).
pub(crate) fn member_as(
    kind: Option<DocKind>,
    name: &str,
    bytes: &[u8],
    depth: u32,
    ctx: &Ctx,
    out: &mut Vec<Part>,
) {
    let kind = kind
        .or_else(|| DocKind::of(Path::new(name)))
        .or_else(|| DocKind::sniff(bytes));
    let Some(kind) = kind else {
        if crate::ocr::is_image(bytes) {
            return image(name, bytes, ctx);
        }
        if let Some(text) = text::decode(bytes) {
            out.push(Part {
                name: Some(name.to_owned()),
                text: text.into_owned(),
                layout: layout_of(Path::new(name)),
            });
        }
        return;
    };
    if depth >= MAX_DEPTH {
        ctx.gap(format!(
            "{name}: nested more than {MAX_DEPTH} levels deep: not opened"
        ));
        return;
    }
    let (from, found) = (ctx.gap_count(), ctx.found_mark());
    let got = extract_at(kind, name, bytes, depth + 1, ctx);
    ctx.prefix_gaps(from, name);
    ctx.prefix_found(found, name);
    named(name, kind, got, ctx, out);
}

/// An image inside another file (an archive member, an attachment), read
/// by OCR as an image file is; without OCR, a gap ("no OCR"), so the file
/// holding it is partial, not clean.
fn image(name: &str, bytes: &[u8], ctx: &Ctx) {
    let program = match ctx.ocr() {
        crate::ocr::Ocr::On(p) => p,
        crate::ocr::Ocr::Off(why) => {
            return ctx.gap(format!("{name}: an image: not read: no OCR ({why})"))
        }
    };
    match crate::ocr::read(program, bytes, ctx.deadline()) {
        Ok(pages) => {
            for (page, found) in pages {
                let part = match page {
                    Some(n) => format!("{name}!page {n}"),
                    None => name.to_owned(),
                };
                ctx.ocr_found(Some(part), found);
            }
        }
        Err(e) => ctx.gap(format!("{name}: an image: {e}")),
    }
}

/// Adds the parts read from the member `name` to `out`, named
/// `name!part`; a member that could not be read is a gap.
fn named(
    name: &str,
    kind: DocKind,
    got: Result<Vec<Part>, String>,
    ctx: &Ctx,
    out: &mut Vec<Part>,
) {
    match got {
        Ok(parts) => out.extend(parts.into_iter().map(|p| Part {
            name: Some(match p.name {
                Some(n) => format!("{name}!{n}"),
                None => name.to_owned(),
            }),
            ..p
        })),
        Err(reason) => ctx.gap(format!(
            "{name}: cannot read this {}: {reason}",
            kind.name()
        )),
    }
}

/// Reads a member from `r` as [`member`] does, but a text member (one
/// whose name and first bytes say it is no document or archive) is
/// streamed: scanned a window at a time as it inflates, in bounded
/// memory, up to the file's budget. How the read ended is returned.
pub(crate) fn member_from(
    name: &str,
    // dyn: a generic reader would nest types without end (a tar member
    // read as a tar whose members are read ...).
    mut r: &mut dyn Read,
    depth: u32,
    ctx: &Ctx,
    out: &mut Vec<Part>,
) -> End {
    let mut head = Vec::new();
    let read = (&mut r).take(512).read_to_end(&mut head);
    ctx.spend(head.len() as u64);
    let kind = DocKind::of(Path::new(name)).or_else(|| DocKind::sniff(&head));
    let streams = matches!(
        kind,
        Some(DocKind::Zip | DocKind::Tar | DocKind::TarGz | DocKind::Gz)
    );
    if streams && read.is_ok() && depth < MAX_DEPTH {
        // Held when small; an archive too large to hold is read as it
        // comes (a zip by its local headers). Reserved exactly: growing
        // by doubling would hold twice the limit.
        head.reserve_exact((HOLD_MAX + 1) as usize - head.len());
        let got = ctx
            .limited(&mut r)
            .take(HOLD_MAX + 1 - head.len() as u64)
            .read_to_end(&mut head);
        if got.is_err() || (head.len() as u64) <= HOLD_MAX || ctx.stopped().is_some() {
            member(name, &head, depth, ctx, out);
            return match got {
                Err(_) => End::Broken,
                Ok(_) if ctx.stopped().is_some() => End::Capped,
                Ok(_) => End::Whole,
            };
        }
        if let Some(kind) = kind {
            let input = std::io::Cursor::new(head).chain(r);
            let (from, found) = (ctx.gap_count(), ctx.found_mark());
            let mut parts = Vec::new();
            let (d, p) = (depth + 1, &mut parts);
            let got = match kind {
                DocKind::Zip => archive::zip_stream(input, d, ctx, p),
                DocKind::Tar => archive::tar(input, d, ctx, p),
                DocKind::TarGz => {
                    let inner = flate2::read::MultiGzDecoder::new(input);
                    archive::tar(archive::Budgeted { inner, ctx }, d, ctx, p)
                }
                _ => archive::gz(name, input, d, ctx, p),
            };
            ctx.prefix_gaps(from, name);
            ctx.prefix_found(found, name);
            named(name, kind, got.map(|()| parts), ctx, out);
        }
        return End::Whole;
    }
    if kind.is_some() || read.is_err() || crate::ocr::is_image(&head) {
        let (mut data, end) = ctx.read_capped(r);
        data.splice(0..0, head);
        member(name, &data, depth, ctx, out);
        return match read {
            Err(_) => End::Broken,
            Ok(_) => end,
        };
    }
    let mut s = Stream::new(layout_of(Path::new(name)));
    let got = text::stream_into(std::io::Cursor::new(head).chain(ctx.limited(r)), &mut s);
    match s.finish() {
        // Short: a part like any other (already decoded).
        crate::stream::Streamed::Text(text) => {
            if got.as_ref().map_or(true, |&text| text) {
                out.push(Part {
                    name: Some(name.to_owned()),
                    text,
                    layout: layout_of(Path::new(name)),
                });
            }
        }
        crate::stream::Streamed::Found(f) => ctx.found(Some(name.to_owned()), f),
    }
    match got {
        Err(_) => End::Broken,
        Ok(_) if ctx.stopped().is_some() => End::Capped,
        Ok(_) => End::Whole,
    }
}

/// CSV and TSV files' first line is their headings.
pub(crate) fn layout_of(path: &Path) -> Layout {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("csv") => Layout::Delimited(b','),
        Some("tsv" | "tab") => Layout::Delimited(b'\t'),
        _ => Layout::Plain,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A text member inflating past the budget: streamed up to it (the
    /// PI at its start found), then stopped, the reason saying why.
    #[test]
    fn the_budget_stops_a_streamed_member() {
        let ctx = Ctx::new();
        ctx.set_budget(3 << 20);
        let mut text = b"Name: Ana Silva, SSN 536-22-1234\n".to_vec();
        text.extend(b"filler line\n".repeat(400_000));
        text.extend_from_slice(b"Name: Ana Silva, SSN 536-22-9876\n");
        let mut out = Vec::new();
        let end = member_from("big.txt", &mut &text[..], 0, &ctx, &mut out);
        assert_eq!(end, End::Capped);
        assert_eq!(ctx.stopped(), Some(Stop::Budget));
        assert!(out.is_empty());
        let (_, found) = {
            let reason = ctx.cap_reason();
            assert!(
                reason.contains("more than 1024 MiB inflated from the file in all"),
                "{reason}"
            );
            ctx.into_results()
        };
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].0.as_deref(), Some("big.txt"));
        assert_eq!(
            (found[0].1.line, found[0].1.masked.as_str()),
            (1, "***-**-1234")
        );
    }
}
