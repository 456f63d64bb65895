//! pi-scan finds unprotected personal information as 201 CMR 17.02 defines
//! it (a Massachusetts resident's name with a Social Security number, a
//! driver's licence or state ID number, or a financial account, credit or
//! debit card number) in files, and moves files that hold it into a vault.
//!
//! * [`scan_text`] looks at one buffer;
//! * [`scan`] walks trees in parallel, reading plain text (streamed a
//!   window at a time when large, in bounded memory), CSV/TSV (headings act as context), JSON, logs, and the
//!   text inside .docx/.xlsx/.pptx, .odt/.ods/.odp, .rtf, .doc/.xls/.ppt
//!   and .pdf files, e-mail (.eml, .mbox),
//!   and the members of archives (.zip, .tar, .tar.gz, .gz) and
//!   attachments as files of their own, and the text of images (PNG,
//!   JPEG, TIFF files; PDF pages that are only an image) through
//!   Tesseract where it is installed;
//! * [`move_into`] moves a flagged file into a mounted vault, verifies the
//!   copy, then overwrites and removes the original.
//!
//! Values never leave the crate unmasked: a [`Finding`] holds only
//! `***-**-1234`-style forms, and nothing is logged but paths and counts.
//! The detection rules, confidence levels and their limits are in
//! docs/SCAN.md.
//!
//! ```
//! use pi_scan::{scan, ScanOptions};
//! let dir = tempfile::tempdir().unwrap();
//! std::fs::write(dir.path().join("hr.csv"), "name,ssn\nAna Silva,536-22-1234\n").unwrap();
//! let report = scan(&[dir.path().to_path_buf()], &ScanOptions::default()).unwrap();
//! assert_eq!(report.findings.len(), 1);
//! assert_eq!(report.findings[0].masked, "***-**-1234");
//! assert_eq!(report.findings[0].confidence, pi_scan::Confidence::High);
//! ```
#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod checks;
mod context;
mod detect;
mod extract;
mod formats;
mod ocr;
mod pdf;
mod relocate;
mod report;
mod runs;
mod source;
mod stream;
mod walk;

pub use detect::{scan_text, Layout, TextFinding};
pub use relocate::{move_into, vault_target};
pub use walk::{scan, Finding, ScanOptions, ScanReport, Source, DEFAULT_FILE_TIMEOUT};

use serde::Serialize;
use std::path::PathBuf;

/// The kinds of PI that 201 CMR 17.02 names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    /// A Social Security number.
    Ssn,
    /// A driver's licence or state ID number (Massachusetts form).
    DriversLicense,
    /// A credit or debit card number.
    PaymentCard,
    /// A financial (bank) account number.
    BankAccount,
}

impl Kind {
    /// The name used in output (`ssn`, `drivers_license`, ...).
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Ssn => "ssn",
            Kind::DriversLicense => "drivers_license",
            Kind::PaymentCard => "payment_card",
            Kind::BankAccount => "bank_account",
        }
    }
}

/// How sure the scanner is that a finding is real PI.
///
/// Each finding scores one point for a distinctive shape (dashed or spaced
/// SSN, grouped card number, `S` + 8 digits), one for a keyword that agrees
/// with its kind (a nearby "SSN", "card", "account", "licence", or the
/// column heading), and one for a person's name nearby: 0 is `low`, 1
/// `medium`, 2 or 3 `high`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Confidence {
    /// Passes every check but has no supporting context.
    Low,
    /// One supporting signal.
    Medium,
    /// Two or more supporting signals.
    High,
}

impl Confidence {
    /// `low`, `medium` or `high`.
    pub fn as_str(self) -> &'static str {
        match self {
            Confidence::Low => "low",
            Confidence::Medium => "medium",
            Confidence::High => "high",
        }
    }
}

/// Everything that can go wrong while scanning or moving. Messages name the
/// file at fault and, where there is one, what to do next.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// A path given to scan does not exist.
    #[error("{}: no such file or directory", .0.display())]
    NotFound(PathBuf),
    /// An I/O operation on a file failed.
    #[error("{}: {op}: {source}", path.display())]
    Io {
        /// The file at fault.
        path: PathBuf,
        /// What was being done (reading, copying, overwriting, ...).
        op: &'static str,
        /// The operating system's error.
        source: std::io::Error,
    },
    /// An `--exclude` glob does not parse.
    #[error("--exclude {glob:?} is not a valid gitignore-style glob: {reason}")]
    BadExclude {
        /// The glob as given.
        glob: String,
        /// Why it does not parse.
        reason: String,
    },
    /// A document or archive was read only in part (truncated, past an
    /// inflation cap, nested too deep); what was read was scanned.
    #[error("{}: partial scan of this {what}: {reason}", path.display())]
    Partial {
        /// The file on disk.
        path: PathBuf,
        /// What kind of file it was taken for.
        what: &'static str,
        /// What was not read, by place (`a.zip!b.zip: nested more than
        /// 3 levels deep: not opened`); never content.
        reason: String,
    },
    /// A document's text could not be extracted; it was not scanned.
    #[error("{}: not scanned: cannot read this {what}: {reason}", path.display())]
    Unreadable {
        /// The document.
        path: PathBuf,
        /// What kind of document it was taken for.
        what: &'static str,
        /// The parser's reason.
        reason: String,
    },
    /// The move destination already exists.
    #[error("{}: already exists; refusing to overwrite it ({} was left in place: rename one of them and scan again)", dest.display(), src.display())]
    DestinationExists {
        /// The flagged file.
        src: PathBuf,
        /// The existing destination.
        dest: PathBuf,
    },
    /// The flagged file has other hard links, which a move would leave behind
    /// (and overwriting would destroy).
    #[error("{}: has {links} hard links; left in place (remove the other links or move it by hand)", path.display())]
    HardLinked {
        /// The flagged file.
        path: PathBuf,
        /// Its link count.
        links: u64,
    },
    /// The copy in the vault did not read back identical to the original.
    #[error("{}: the copy does not match {}; the original was left in place and the copy removed", dest.display(), src.display())]
    VerifyFailed {
        /// The flagged file.
        src: PathBuf,
        /// The copy that differed.
        dest: PathBuf,
    },
    /// Only regular files are moved (a symbolic link's target may lie
    /// outside the scanned tree).
    #[error("{}: not a regular file (a symbolic link?); left in place: move its target instead", .0.display())]
    NotRegular(PathBuf),
    /// An image (a PNG, JPEG or TIFF file) was not read: OCR is off or
    /// Tesseract is not installed.
    #[error("{}: not scanned: no OCR ({why})", path.display())]
    NoOcr {
        /// The image.
        path: PathBuf,
        /// Why there is no OCR (`--no-ocr`, not installed).
        why: &'static str,
    },
    /// Scanning the file hit a bug in pivault (a panic); it was not scanned.
    #[error("{}: not scanned: internal error (please report it)", .0.display())]
    Internal(PathBuf),
    /// `--move-into` does not name a directory.
    #[error("{}: not a directory (give the mount point of an unlocked vault)", .0.display())]
    NotADirectory(PathBuf),
    /// `--move-into` is not in a mounted pivault vault (or stopped being
    /// one during the move).
    #[error("{}: not inside a mounted pivault vault; nothing was moved there (mount the vault with `pivault mount VAULT {}` and scan again)", .0.display(), .0.display())]
    NotAVaultMount(PathBuf),
    /// The file at the scanned name is not the file that was scanned.
    #[error("{}: was replaced since it was scanned; left in place: scan again", .0.display())]
    Replaced(PathBuf),
    /// The move was made, but the original's name was swapped for
    /// something else meanwhile; that was left alone.
    #[error("{}: moved to {} and the original overwritten, but its name now refers to another file (replaced meanwhile), which was left in place: check it", path.display(), dest.display())]
    NameReplaced {
        /// The original name.
        path: PathBuf,
        /// Where the file went.
        dest: PathBuf,
    },
    /// The file is not inside the root it was found under.
    #[error("{}: is not inside {}", path.display(), root.display())]
    OutsideRoot {
        /// The file.
        path: PathBuf,
        /// The scanned root.
        root: PathBuf,
    },
}

impl Error {
    /// The file this is about, where there is one.
    pub fn path(&self) -> Option<&std::path::Path> {
        match self {
            Error::NotFound(p)
            | Error::NotRegular(p)
            | Error::Internal(p)
            | Error::NotADirectory(p)
            | Error::NotAVaultMount(p)
            | Error::Replaced(p) => Some(p),
            Error::Io { path, .. }
            | Error::Partial { path, .. }
            | Error::Unreadable { path, .. }
            | Error::NoOcr { path, .. }
            | Error::HardLinked { path, .. }
            | Error::NameReplaced { path, .. }
            | Error::OutsideRoot { path, .. } => Some(path),
            Error::DestinationExists { src, .. } | Error::VerifyFailed { src, .. } => Some(src),
            Error::BadExclude { .. } => None,
        }
    }

    /// What went wrong, without the path: for a partial or unreadable
    /// file, what kind it was taken for and why (never content).
    pub fn reason(&self) -> String {
        match self {
            Error::Partial { what, reason, .. } => format!("partial scan of this {what}: {reason}"),
            Error::Unreadable { what, reason, .. } => {
                format!("not scanned: cannot read this {what}: {reason}")
            }
            Error::NoOcr { why, .. } => format!("not scanned: no OCR ({why})"),
            e => e.to_string(),
        }
    }
}

/// Entry points for the fuzz targets (`fuzz/`): the extractors without the
/// panic guard the scanner puts around them, so a panic reaches the
/// fuzzer. Not a stable API.
#[doc(hidden)]
pub mod fuzzing {
    /// Extracts the text of a document named by its extension (`docx`,
    /// `xlsx`, `pptx`, `pdf`, ...): the parts' total text length.
    pub fn extract(ext: &str, bytes: &[u8]) -> Result<usize, String> {
        let name = format!("f.{ext}");
        let kind = crate::formats::DocKind::of(std::path::Path::new(&name))
            .ok_or("not a document kind")?;
        let ctx = crate::formats::Ctx::new();
        let parts = crate::formats::extract_at(kind, &name, bytes, 0, &ctx)?;
        Ok(parts.iter().map(|p| p.text.len()).sum::<usize>() + ctx.found_count())
    }
}
