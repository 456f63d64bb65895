//! Archives: .zip (`zip`), .tar, .tar.gz/.tgz (`tar` over `flate2`) and
//! .gz (`flate2`). Every member is a file of its own (see
//! [`super::member`]): a CSV in a zip is a CSV, a workbook in a tarball a
//! workbook, a zip in a zip another archive, up to the depth limit.
//!
//! Bounded work on hostile archives: members are inflated up to the
//! entry cap and the whole file's inflation budget; a gzip stream is
//! counted as it inflates (skipping a tar member inflates it too), so a
//! bomb stops at the budget. A zip whose central directory is missing or
//! damaged (truncated in a download, cut by a full disk) is read from its
//! local headers in order, as far as they go. Each of these makes the
//! file partial, never silently short.

use super::{member_from, Ctx, DocKind, End, Part, MAX_MEMBERS};
use flate2::read::MultiGzDecoder;
use std::io::{Cursor, Read, Seek};

/// Reads the members of an archive of `kind` named `name`.
pub(crate) fn read(
    kind: DocKind,
    name: &str,
    bytes: &[u8],
    depth: u32,
    ctx: &Ctx,
) -> Result<Vec<Part>, String> {
    let mut out = Vec::new();
    match kind {
        DocKind::Zip => zip(bytes, depth, ctx, &mut out)?,
        DocKind::Tar => tar(bytes, depth, ctx, &mut out)?,
        DocKind::TarGz => {
            let stream = Budgeted {
                inner: MultiGzDecoder::new(bytes),
                ctx,
            };
            tar(stream, depth, ctx, &mut out)?
        }
        _ => gz(name, bytes, depth, ctx, &mut out)?,
    }
    Ok(out)
}

fn zip(bytes: &[u8], depth: u32, ctx: &Ctx, out: &mut Vec<Part>) -> Result<(), String> {
    zip_in(Cursor::new(bytes), depth, ctx, out)
}

/// The members of the zip archive `r` (in memory, or a file on disk too
/// large to hold).
pub(crate) fn zip_in(
    mut r: impl Read + Seek,
    depth: u32,
    ctx: &Ctx,
    out: &mut Vec<Part>,
) -> Result<(), String> {
    let mut z = match zip::ZipArchive::new(&mut r) {
        Ok(z) => z,
        Err(_) => {
            r.rewind().map_err(|_| "cannot read it again".to_string())?;
            return zip_stream(r, depth, ctx, out);
        }
    };
    past_member_limit(z.len(), ctx);
    for i in 0..z.len().min(MAX_MEMBERS) {
        let mut f = match z.by_index(i) {
            Ok(f) => f,
            Err(e) => {
                ctx.gap(format!("member {}: not read: {}", i + 1, zip_reason(&e)));
                continue;
            }
        };
        if f.is_dir() {
            continue;
        }
        let name = f.name().to_owned();
        if ctx.budget() == 0 {
            ctx.gap(format!("{name}: not read: {}", ctx.cap_reason()));
            continue;
        }
        let end = member_from(&name, &mut f, depth, ctx, out);
        drop(f);
        match end {
            End::Whole => {}
            End::Capped => ctx.gap(format!("{name}: {}", ctx.cap_reason())),
            End::Broken => ctx.gap(format!("{name}: damaged: read in part")),
        }
    }
    Ok(())
}

/// The reason a zip member cannot be read, without the library's text
/// (which could hold a member's name, but never content; kept short).
fn zip_reason(e: &zip::result::ZipError) -> &'static str {
    match e {
        zip::result::ZipError::UnsupportedArchive(m) if m.contains("assword") => "encrypted",
        zip::result::ZipError::UnsupportedArchive(_) => "unsupported compression",
        _ => "damaged",
    }
}

/// A zip with no usable central directory: members in the order their
/// local headers come, until the data ends or stops making sense.
pub(crate) fn zip_stream(
    mut r: impl Read,
    depth: u32,
    ctx: &Ctx,
    out: &mut Vec<Part>,
) -> Result<(), String> {
    let mut n = 0usize;
    loop {
        let mut f = match zip::read::read_zipfile_from_stream(&mut r) {
            Ok(Some(f)) => f,
            Ok(None) => break,
            Err(_) if n == 0 => return Err("not a zip archive, or damaged at its start".into()),
            Err(_) => {
                ctx.gap(format!(
                    "truncated or damaged after {n} member(s): the rest was not read"
                ));
                break;
            }
        };
        n += 1;
        if past_member_limit(n, ctx) {
            break;
        }
        if f.is_dir() {
            continue;
        }
        let name = f.name().to_owned();
        let end = member_from(&name, &mut f, depth, ctx, out);
        drop(f);
        match end {
            End::Whole => {}
            End::Capped => ctx.gap(format!("{name}: {}", ctx.cap_reason())),
            End::Broken => ctx.gap(format!("{name}: truncated: read in part")),
        }
        if end == End::Broken {
            ctx.gap(format!("nothing after {name} was read"));
            break;
        }
    }
    if n == 0 {
        return Err("no members".into());
    }
    Ok(())
}

/// True once `n` members is more than an archive may have read from it
/// (recorded as a gap).
fn past_member_limit(n: usize, ctx: &Ctx) -> bool {
    if n > MAX_MEMBERS {
        ctx.gap(format!(
            "more than {MAX_MEMBERS} members: only the first {MAX_MEMBERS} were read"
        ));
    }
    n > MAX_MEMBERS
}

pub(crate) fn tar(r: impl Read, depth: u32, ctx: &Ctx, out: &mut Vec<Part>) -> Result<(), String> {
    let mut a = tar::Archive::new(r);
    let entries = a.entries().map_err(|_| "not a tar archive".to_string())?;
    let mut n = 0usize;
    for e in entries {
        let mut e = match e {
            Ok(e) => e,
            Err(_) if n == 0 => return Err("not a tar archive, or damaged at its start".into()),
            Err(_) => {
                ctx.gap(format!(
                    "truncated or damaged after {n} member(s), or past the inflation cap: the rest was not read"
                ));
                break;
            }
        };
        n += 1;
        if past_member_limit(n, ctx) {
            break;
        }
        let t = e.header().entry_type();
        if !(t.is_file() || t.is_contiguous()) {
            continue;
        }
        let name = e
            .path()
            .map(|p| p.to_string_lossy().into_owned())
            .unwrap_or_else(|_| format!("member {n}"));
        // Counted against the budget as it is read (a gzipped tar also
        // as it inflates, in Budgeted, so a bomb of members the tar
        // reader skips stops too).
        match member_from(&name, &mut e, depth, ctx, out) {
            End::Whole => {}
            End::Capped => {
                ctx.gap(format!("{name}: {}", ctx.cap_reason()));
                if ctx.stopped().is_some() {
                    break;
                }
            }
            End::Broken => {
                ctx.gap(format!(
                    "{name}: truncated, or past the inflation cap: read in part, and nothing after it"
                ));
                break;
            }
        }
    }
    if n == 0 {
        return Err("no members".into());
    }
    Ok(())
}

/// A lone gzip stream: one member, named after the file less `.gz`.
pub(crate) fn gz(
    name: &str,
    r: impl Read,
    depth: u32,
    ctx: &Ctx,
    out: &mut Vec<Part>,
) -> Result<(), String> {
    let mut d = MultiGzDecoder::new(r);
    let base = name.rsplit('/').next().unwrap_or(name);
    let inner = match base.len().checked_sub(3) {
        Some(i) if i > 0 && base.is_char_boundary(i) && base[i..].eq_ignore_ascii_case(".gz") => {
            &base[..i]
        }
        _ => "(gzip contents)",
    };
    let before = ctx.budget();
    match member_from(inner, &mut d, depth, ctx, out) {
        End::Whole => {}
        End::Broken if ctx.budget() == before => return Err("not a gzip file, or damaged".into()),
        End::Broken => ctx.gap(format!("{inner}: truncated or damaged: read in part")),
        End::Capped => ctx.gap(format!("{inner}: {}", ctx.cap_reason())),
    }
    Ok(())
}

/// A decompressing reader that spends the file's inflation budget as it
/// inflates and fails once it is spent.
pub(crate) struct Budgeted<'a, R> {
    pub(crate) inner: R,
    pub(crate) ctx: &'a Ctx,
}

impl<R: Read> Read for Budgeted<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let left = self.ctx.budget();
        if left == 0 {
            return Err(std::io::Error::other("inflation budget spent"));
        }
        let want = buf.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        let n = self.inner.read(&mut buf[..want])?;
        self.ctx.spend(n as u64);
        Ok(n)
    }
}
