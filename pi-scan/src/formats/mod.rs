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
//! [`Extracted::gaps`]: the file is reported as partial.

pub(crate) mod archive;
pub(crate) mod email;
pub(crate) mod odf;
pub(crate) mod ole;
pub(crate) mod rtf;
pub(crate) mod text;

use crate::detect::Layout;
use std::cell::{Cell, RefCell};
use std::io::Read;
use std::path::Path;

/// Largest file on disk read into memory as a document or container.
pub(crate) const MAX_DOCUMENT: u64 = 512 << 20;
/// Largest single entry (an XML part, an archive member, an attachment)
/// inflated or decoded.
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

/// State shared by everything read out of one file on disk.
pub(crate) struct Ctx {
    /// Bytes that may still be inflated or decoded.
    budget: Cell<u64>,
    gaps: RefCell<Vec<String>>,
}

impl Ctx {
    pub(crate) fn new() -> Self {
        Ctx {
            budget: Cell::new(MAX_INFLATED),
            gaps: RefCell::new(Vec::new()),
        }
    }

    /// Records what could not be read.
    pub(crate) fn gap(&self, what: String) {
        self.gaps.borrow_mut().push(what);
    }

    /// How many gaps are recorded so far (for [`Ctx::prefix_gaps`]).
    pub(crate) fn gap_count(&self) -> usize {
        self.gaps.borrow().len()
    }

    /// Gaps recorded since `from` while reading a nested file are named
    /// from inside it; this names them from the file that holds it.
    pub(crate) fn prefix_gaps(&self, from: usize, prefix: &str) {
        for g in self.gaps.borrow_mut().iter_mut().skip(from) {
            *g = format!("{prefix}!{g}");
        }
    }

    /// Bytes that may still be inflated.
    pub(crate) fn budget(&self) -> u64 {
        self.budget.get()
    }

    /// Counts `n` bytes against the budget.
    pub(crate) fn spend(&self, n: u64) {
        self.budget.set(self.budget.get().saturating_sub(n));
    }

    /// Reads `r` to its end, up to the entry cap and what is left of the
    /// budget. Returns the bytes read (those before an error too) and how
    /// the read ended.
    pub(crate) fn read_capped(&self, r: impl Read) -> (Vec<u8>, End) {
        let limit = MAX_ENTRY.min(self.budget());
        let mut out = Vec::new();
        // read_to_end keeps what it read before an error.
        let end = match r.take(limit + 1).read_to_end(&mut out) {
            Err(_) => End::Broken,
            Ok(_) if out.len() as u64 > limit => End::Capped,
            Ok(_) => End::Whole,
        };
        out.truncate(usize::try_from(limit).unwrap_or(usize::MAX));
        self.spend(out.len() as u64);
        (out, end)
    }

    /// Why a capped read stopped short, for a gap.
    pub(crate) fn cap_reason(&self) -> String {
        match self.budget() < MAX_ENTRY {
            true => format!(
                "more than {} MiB inflated from the file in all: the rest was not read",
                MAX_INFLATED >> 20
            ),
            false => format!(
                "more than {} MiB inflated: only the first {} MiB was read",
                MAX_ENTRY >> 20,
                MAX_ENTRY >> 20
            ),
        }
    }
}

/// Extracts the text of a file on disk of `kind`. An error is a reason for
/// a warning (not scanned); gaps make it partial.
/// `name` is the file's name, which names what a .gz holds.
pub(crate) fn extract(kind: DocKind, name: &str, bytes: &[u8]) -> Result<Extracted, String> {
    let ctx = Ctx::new();
    // Parsers of hostile files may panic; a panic is one unreadable file.
    let parts = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        extract_at(kind, name, bytes, 0, &ctx)
    }))
    .unwrap_or_else(|_| Err("the parser failed on this file".into()))?;
    Ok(Extracted {
        parts,
        gaps: ctx.gaps.into_inner(),
    })
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
        DocKind::Pdf => crate::pdf::pages(bytes),
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
    let from = ctx.gap_count();
    let got = extract_at(kind, name, bytes, depth + 1, ctx);
    ctx.prefix_gaps(from, name);
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
