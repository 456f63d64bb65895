//! What a scan is asked to do and what it reports: [`ScanOptions`], one
//! [`Finding`] per piece of PI (masked), and the [`ScanReport`] that also
//! says which files could not be read in full.

use crate::{Confidence, Error, Kind};
use serde::{Serialize, Serializer};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// How long one file may take when [`ScanOptions::file_timeout`] is not
/// set.
pub const DEFAULT_FILE_TIMEOUT: Duration = Duration::from_secs(60);

/// How to scan.
#[derive(Clone, Debug, Default)]
pub struct ScanOptions {
    /// gitignore-style globs of paths to skip, relative to each root
    /// (`*.log`, `/build`, `node_modules/`). `.gitignore` files themselves
    /// are never honoured: a scanner must not miss PI because someone
    /// ignored it.
    pub excludes: Vec<String>,
    /// Worker threads; 0 picks one per CPU.
    pub threads: usize,
    /// Directories never entered (the vault mount point when moving).
    pub skip_dirs: Vec<PathBuf>,
    /// How long reading one file may take ([`DEFAULT_FILE_TIMEOUT`] when
    /// None); past it the file is partial, what was read scanned.
    pub file_timeout: Option<Duration>,
    /// Do not read images (OCR), even where Tesseract is installed: image
    /// files are then reported as not scanned.
    pub no_ocr: bool,
}

/// Where a finding's text came from, when not from the file's text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Source {
    /// Read from an image by OCR (Tesseract).
    Ocr,
}

/// One piece of PI in one file.
#[derive(Clone, Debug, Serialize)]
pub struct Finding {
    /// The file.
    #[serde(serialize_with = "lossy")]
    pub path: PathBuf,
    /// The scanned root the file was found under.
    #[serde(skip)]
    pub root: PathBuf,
    /// Where inside a document: `sheet1`, `slide2`, `page 3`; absent for
    /// plain files and a Word document's body.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub part: Option<String>,
    /// 1-based line in the file, or in the part's extracted text.
    pub line: u64,
    /// What was found.
    pub kind: Kind,
    /// The masked value: all but the last digits are `*`.
    pub masked: String,
    /// How sure the scanner is.
    pub confidence: Confidence,
    /// A person's name is nearby.
    pub name_nearby: bool,
    /// `ocr` for text read from an image; absent otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Source>,
    /// For OCR: Tesseract's confidence (0-100) in the words holding the
    /// number, the lowest of them.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ocr_confidence: Option<f32>,
    /// The scanned file's (device, inode): a move checks that it moves
    /// this file, not one put at its name since.
    #[serde(skip)]
    pub file_id: Option<(u64, u64)>,
}

fn lossy<S: Serializer>(p: &Path, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&p.to_string_lossy())
}

/// What a scan found and what stopped it from looking somewhere.
#[derive(Debug, Default)]
pub struct ScanReport {
    /// Findings, sorted by path, part and line.
    pub findings: Vec<Finding>,
    /// Paths that could not be scanned at all (missing, unreadable): the
    /// scan is incomplete.
    pub errors: Vec<Error>,
    /// Documents whose text could not be extracted (corrupt, encrypted).
    pub unreadable: Vec<Error>,
    /// Documents and archives read only in part ([`Error::Partial`]):
    /// truncated, past an inflation cap, nested too deep.
    pub partial: Vec<Error>,
    /// Files scanned (plain text and documents).
    pub files_scanned: u64,
    /// Bytes read from scanned files.
    pub bytes_scanned: u64,
    /// Files skipped as binary (a NUL byte near the start).
    pub binary_skipped: u64,
    /// Images not read: OCR off or not installed ([`Error::NoOcr`]).
    pub no_ocr: Vec<Error>,
}
