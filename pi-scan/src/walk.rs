//! Walking trees in parallel (the `ignore` crate's walker, with every
//! ignore-file rule switched off and only `--exclude` globs applied) and
//! scanning each regular file.

use crate::detect::{scan_text, TextFinding};
use crate::formats::{self, Ctx, DocKind, Stop};
use crate::ocr::{self, Ocr, OcrFinding};
pub use crate::report::{Finding, ScanOptions, ScanReport, Source, DEFAULT_FILE_TIMEOUT};
use crate::stream::{self, Stream};
use crate::{source, Error};
use ignore::overrides::{Override, OverrideBuilder};
use ignore::{WalkBuilder, WalkState};
use std::collections::HashSet;
use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering::Relaxed};
use std::sync::Mutex;
use std::time::Duration;

struct Sink {
    ocr: Ocr,
    findings: Mutex<Vec<Finding>>,
    errors: Mutex<Vec<Error>>,
    unreadable: Mutex<Vec<Error>>,
    partial: Mutex<Vec<Error>>,
    no_ocr: Mutex<Vec<Error>>,
    files: AtomicU64,
    bytes: AtomicU64,
    binary: AtomicU64,
}

impl Sink {
    fn new(ocr: Ocr) -> Self {
        Sink {
            ocr,
            findings: Mutex::default(),
            errors: Mutex::default(),
            unreadable: Mutex::default(),
            partial: Mutex::default(),
            no_ocr: Mutex::default(),
            files: AtomicU64::default(),
            bytes: AtomicU64::default(),
            binary: AtomicU64::default(),
        }
    }

    fn partial(&self, e: Error) {
        self.partial
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(e);
    }

    fn error(&self, e: Error) {
        tracing::debug!("{e}");
        self.errors
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(e);
    }
}

/// Scans each root (a file or a directory) and returns everything found.
/// Only a bad `--exclude` glob fails the whole call; a missing or
/// unreadable path is recorded in [`ScanReport::errors`] and the other
/// roots are still scanned.
pub fn scan(roots: &[PathBuf], opts: &ScanOptions) -> Result<ScanReport, Error> {
    let sink = Sink::new(Ocr::find(opts.no_ocr));
    let timeout = opts.file_timeout.unwrap_or(DEFAULT_FILE_TIMEOUT);
    let skip: HashSet<(u64, u64)> = opts.skip_dirs.iter().filter_map(|d| dir_id(d)).collect();
    for root in roots {
        let overrides = excludes(root, &opts.excludes)?;
        match std::fs::symlink_metadata(root) {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                sink.error(Error::NotFound(root.clone()))
            }
            Err(e) => sink.error(Error::Io {
                path: root.clone(),
                op: "reading",
                source: e,
            }),
            Ok(md) if md.is_file() => guarded_scan(root, root, timeout, &sink),
            Ok(_) => walk(root, overrides, opts.threads, timeout, &skip, &sink),
        }
    }
    let mut findings = sink
        .findings
        .into_inner()
        .unwrap_or_else(|p| p.into_inner());
    findings.sort_by(|a, b| (&a.path, &a.part, a.line).cmp(&(&b.path, &b.part, b.line)));
    Ok(ScanReport {
        findings,
        errors: sink.errors.into_inner().unwrap_or_else(|p| p.into_inner()),
        unreadable: sink
            .unreadable
            .into_inner()
            .unwrap_or_else(|p| p.into_inner()),
        partial: sink.partial.into_inner().unwrap_or_else(|p| p.into_inner()),
        files_scanned: sink.files.into_inner(),
        bytes_scanned: sink.bytes.into_inner(),
        binary_skipped: sink.binary.into_inner(),
        no_ocr: sink.no_ocr.into_inner().unwrap_or_else(|p| p.into_inner()),
    })
}

fn excludes(root: &Path, globs: &[String]) -> Result<Override, Error> {
    let mut b = OverrideBuilder::new(root);
    for g in globs {
        b.add(&format!("!{g}")).map_err(|e| Error::BadExclude {
            glob: g.clone(),
            reason: e.to_string(),
        })?;
    }
    b.build().map_err(|e| Error::BadExclude {
        glob: globs.join(" "),
        reason: e.to_string(),
    })
}

#[cfg(unix)]
fn dir_id(p: &Path) -> Option<(u64, u64)> {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata(p).ok().map(|m| (m.dev(), m.ino()))
}

#[cfg(not(unix))]
fn dir_id(_: &Path) -> Option<(u64, u64)> {
    None
}

fn walk(
    root: &Path,
    overrides: Override,
    threads: usize,
    timeout: Duration,
    skip: &HashSet<(u64, u64)>,
    sink: &Sink,
) {
    let mut b = WalkBuilder::new(root);
    b.standard_filters(false)
        .hidden(false)
        .follow_links(false)
        .overrides(overrides)
        .threads(threads);
    if !skip.is_empty() {
        let skip = skip.clone();
        b.filter_entry(move |e| {
            !(e.file_type().is_some_and(|t| t.is_dir())
                && dir_id(e.path()).is_some_and(|id| skip.contains(&id)))
        });
    }
    b.build_parallel().run(|| {
        Box::new(move |entry| {
            match entry {
                Ok(e) if e.file_type().is_some_and(|t| t.is_file()) => {
                    guarded_scan(root, e.path(), timeout, sink)
                }
                Ok(_) => {}
                Err(err) => {
                    let path = err_path(&err).unwrap_or_else(|| root.to_path_buf());
                    let source = err
                        .into_io_error()
                        .unwrap_or_else(|| std::io::Error::other("cannot walk"));
                    sink.error(Error::Io {
                        path,
                        op: "listing",
                        source,
                    });
                }
            }
            WalkState::Continue
        })
    });
}

fn err_path(e: &ignore::Error) -> Option<PathBuf> {
    match e {
        ignore::Error::WithPath { path, .. } => Some(path.clone()),
        ignore::Error::WithDepth { err, .. } | ignore::Error::WithLineNumber { err, .. } => {
            err_path(err)
        }
        _ => None,
    }
}

/// Scans one file; a bug that panics costs that file (an error naming it),
/// not the whole scan.
fn guarded_scan(root: &Path, path: &Path, timeout: Duration, sink: &Sink) {
    let run = std::panic::AssertUnwindSafe(|| scan_file(root, path, timeout, sink));
    if std::panic::catch_unwind(run).is_err() {
        sink.error(Error::Internal(path.to_path_buf()));
    }
}

fn scan_file(root: &Path, path: &Path, timeout: Duration, sink: &Sink) {
    use std::os::unix::fs::MetadataExt;
    let io = |op, source| Error::Io {
        path: path.to_path_buf(),
        op,
        source,
    };
    let file = match File::open(path) {
        Ok(f) => f,
        Err(e) => return sink.error(io("opening", e)),
    };
    let (len, file_id) = match file.metadata() {
        Ok(m) => (m.len(), Some((m.dev(), m.ino()))),
        Err(e) => return sink.error(io("reading", e)),
    };
    let this = FileId {
        root,
        path,
        len,
        id: file_id,
    };
    let mut found: Vec<(Option<String>, TextFinding)> = Vec::new();
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let ctx = Ctx::with_timeout(Some(timeout)).with_ocr(sink.ocr.clone());
    let mut kind = DocKind::of(path);
    if kind.is_none() && len >= source::STREAM_THRESHOLD {
        let mut head = Vec::new();
        if let Err(e) = (&file).take(512).read_to_end(&mut head) {
            return sink.error(io("reading", e));
        }
        kind = DocKind::sniff(&head);
        if kind.is_none() && ocr::is_image(&head) {
            let mut bytes = Vec::new();
            let read = std::io::Seek::rewind(&mut &file)
                .and_then(|()| (&file).take(formats::MAX_DOCUMENT).read_to_end(&mut bytes));
            if let Err(e) = read {
                return sink.error(io("reading", e));
            }
            return image(this, &bytes, &ctx, sink);
        }
        if kind.is_none() {
            // Plain text of any size, a window at a time.
            let mut s = Stream::new(formats::layout_of(path));
            let input = std::io::Cursor::new(head).chain(ctx.timed(&file));
            match formats::text::stream_into(input, &mut s) {
                Err(e) => return sink.error(io("reading", e)),
                Ok(false) => return binary(path, sink),
                Ok(true) => {}
            }
            let covered = s.total();
            found.extend(stream::findings(s).into_iter().map(|f| (None, f)));
            if ctx.stopped() == Some(Stop::Time) {
                sink.partial(Error::Partial {
                    path: path.to_path_buf(),
                    what: "text file",
                    reason: format!(
                        "{} ({} MiB of {} MiB scanned)",
                        ctx.stop_reason(),
                        covered >> 20,
                        len >> 20
                    ),
                });
            }
            return record(root, path, len, file_id, found, Vec::new(), sink);
        }
        if let Err(e) = std::io::Seek::rewind(&mut &file) {
            return sink.error(io("reading", e));
        }
    }
    if let Some(k) = kind.filter(|&k| len > formats::HOLD_MAX && formats::reads_from_file(k)) {
        // Large archives and Office files are read from the file.
        let got = formats::extract_file(k, &name, &file, ctx);
        return finish_document(this, k, got, found, sink);
    }
    let bytes = match kind {
        // Documents are parsed from memory, up to a cap; the text inside
        // them is streamed.
        Some(_) => {
            let mut bytes = Vec::new();
            if let Err(e) = (&file).take(formats::MAX_DOCUMENT).read_to_end(&mut bytes) {
                return sink.error(io("reading", e));
            }
            bytes
        }
        None if len == 0 => return,
        None => match source::read(file, len) {
            Ok(b) => b,
            Err(e) => return sink.error(io("reading", e)),
        },
    };
    if kind.is_none() {
        // An archive whose name says nothing (`backup`, `export.dat`).
        kind = DocKind::sniff(&bytes);
        if kind.is_none() && ocr::is_image(&bytes) {
            return image(this, &bytes, &ctx, sink);
        }
        if kind.is_none() {
            let Some(text) = formats::text::decode(&bytes) else {
                return binary(path, sink);
            };
            found.extend(
                scan_text(&text, formats::layout_of(path))
                    .into_iter()
                    .map(|f| (None, f)),
            );
        }
    }
    match kind {
        Some(kind) => {
            let cut = (bytes.len() as u64) < len && len > formats::MAX_DOCUMENT;
            let got = formats::extract(kind, &name, &bytes, ctx).map(|mut x| {
                if cut {
                    x.gaps.insert(
                        0,
                        format!(
                            "larger than {} MiB: only the first {} MiB was read",
                            formats::MAX_DOCUMENT >> 20,
                            formats::MAX_DOCUMENT >> 20
                        ),
                    );
                }
                x
            });
            finish_document(this, kind, got, found, sink)
        }
        None => record(root, path, len, file_id, found, Vec::new(), sink),
    }
}

/// Reads an image file by OCR, or reports it not scanned.
fn image(f: FileId<'_>, bytes: &[u8], ctx: &Ctx, sink: &Sink) {
    let program = match ctx.ocr() {
        Ocr::On(p) => p,
        Ocr::Off(why) => {
            tracing::debug!("{}: image, no OCR", f.path.display());
            let e = Error::NoOcr {
                path: f.path.to_path_buf(),
                why,
            };
            return sink
                .no_ocr
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(e);
        }
    };
    match ocr::read(program, bytes, ctx.deadline()) {
        Ok(pages) => {
            let found = pages
                .into_iter()
                .flat_map(|(page, found)| {
                    let part = page.map(|n| format!("page {n}"));
                    found.into_iter().map(move |f| (part.clone(), f))
                })
                .collect();
            record(f.root, f.path, f.len, f.id, Vec::new(), found, sink)
        }
        Err(reason) => {
            let e = Error::Unreadable {
                path: f.path.to_path_buf(),
                what: "image",
                reason,
            };
            sink.unreadable
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(e)
        }
    }
}

/// The file a document's findings belong to.
#[derive(Clone, Copy)]
struct FileId<'a> {
    root: &'a Path,
    path: &'a Path,
    len: u64,
    id: Option<(u64, u64)>,
}

/// Scans what a document yielded and records it, its gaps making it
/// partial, an error unreadable.
fn finish_document(
    f: FileId<'_>,
    kind: DocKind,
    got: Result<formats::Extracted, String>,
    mut found: Vec<(Option<String>, TextFinding)>,
    sink: &Sink,
) {
    let x = match got {
        Ok(x) => x,
        Err(reason) => {
            tracing::debug!("{}: unreadable {}", f.path.display(), kind.name());
            let e = Error::Unreadable {
                path: f.path.to_path_buf(),
                what: kind.name(),
                reason,
            };
            return sink
                .unreadable
                .lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(e);
        }
    };
    for p in x.parts {
        found.extend(
            scan_text(&p.text, p.layout)
                .into_iter()
                .map(|t| (p.name.clone(), t)),
        );
    }
    found.extend(x.found);
    let ocr_found = x.ocr;
    if !x.gaps.is_empty() {
        tracing::debug!("{}: partial, {} gap(s)", f.path.display(), x.gaps.len());
        sink.partial(Error::Partial {
            path: f.path.to_path_buf(),
            what: kind.name(),
            reason: x.gaps.join("; "),
        });
    }
    record(f.root, f.path, f.len, f.id, found, ocr_found, sink)
}

fn binary(path: &Path, sink: &Sink) {
    tracing::debug!("{}: binary, skipped", path.display());
    sink.binary.fetch_add(1, Relaxed);
}

/// Counts a scanned file and keeps its findings, those read by OCR with
/// their OCR confidence.
#[allow(clippy::too_many_arguments)]
fn record(
    root: &Path,
    path: &Path,
    len: u64,
    file_id: Option<(u64, u64)>,
    found: Vec<(Option<String>, TextFinding)>,
    ocr_found: Vec<(Option<String>, OcrFinding)>,
    sink: &Sink,
) {
    sink.files.fetch_add(1, Relaxed);
    sink.bytes.fetch_add(len, Relaxed);
    tracing::debug!(
        "{}: {} bytes, {} findings",
        path.display(),
        len,
        found.len() + ocr_found.len()
    );
    if found.is_empty() && ocr_found.is_empty() {
        return;
    }
    let found = found.into_iter().map(|(part, f)| (part, f, None)).chain(
        ocr_found
            .into_iter()
            .map(|(part, (f, c))| (part, f, Some(c))),
    );
    let mut all = sink.findings.lock().unwrap_or_else(|p| p.into_inner());
    all.extend(found.map(|(part, f, ocr)| Finding {
        path: path.to_path_buf(),
        root: root.to_path_buf(),
        part,
        line: f.line,
        kind: f.kind,
        masked: f.masked,
        confidence: f.confidence,
        name_nearby: f.name_nearby,
        source: ocr.map(|_| Source::Ocr),
        ocr_confidence: ocr,
        file_id,
    }));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn large_files_are_streamed_and_lines_counted() {
        let dir = tempfile::tempdir().unwrap();
        let mut body = "nothing here 2024-01-15 v1.2.3\n".repeat(80_000);
        body.push_str("Name: Ana Silva, SSN 536-22-1234\n");
        assert!(body.len() > 2 * crate::stream::WINDOW);
        std::fs::write(dir.path().join("big.log"), &body).unwrap();
        std::fs::write(dir.path().join("empty.txt"), "").unwrap();
        let r = scan(&[dir.path().to_path_buf()], &ScanOptions::default()).unwrap();
        assert_eq!(r.findings.len(), 1);
        assert_eq!(r.findings[0].line, 80_001);
        assert_eq!(r.bytes_scanned, body.len() as u64);
        assert!(r.errors.is_empty() && r.unreadable.is_empty());
    }

    /// Past the per-file time limit a file is partial, with how much of
    /// it was scanned; a document's streamed part too.
    #[test]
    fn the_time_limit_makes_a_file_partial() {
        let dir = tempfile::tempdir().unwrap();
        let body = "nothing here\n".repeat(400_000);
        std::fs::write(dir.path().join("big.log"), &body).unwrap();
        let opts = ScanOptions {
            file_timeout: Some(Duration::ZERO),
            ..Default::default()
        };
        let r = scan(&[dir.path().to_path_buf()], &opts).unwrap();
        assert_eq!(r.partial.len(), 1, "{:?}", r.partial);
        let e = r.partial[0].to_string();
        assert!(e.contains("big.log: partial scan of this text file: reading took longer than 0s (the per-file limit): the rest was not read (0 MiB of 4 MiB scanned)"), "{e}");
    }

    #[test]
    fn missing_roots_are_errors_and_bad_globs_fail_the_call() {
        let dir = tempfile::tempdir().unwrap();
        let r = scan(&[dir.path().join("gone")], &ScanOptions::default()).unwrap();
        assert!(matches!(r.errors[..], [Error::NotFound(_)]));
        let opts = ScanOptions {
            excludes: vec!["a/**/[".into()],
            ..Default::default()
        };
        assert!(matches!(
            scan(&[dir.path().to_path_buf()], &opts),
            Err(Error::BadExclude { .. })
        ));
    }
}
