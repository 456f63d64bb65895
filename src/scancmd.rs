//! `pivault scan`: finds PI with pi-scan, prints it masked (a table, or JSON
//! Lines with `--json`), and with `--move-into` moves flagged files into a
//! mounted vault. Exit status: 0 nothing found, 1 PI found, 2 an error (a
//! path that could not be scanned, a refused or failed move), 3 nothing
//! found but some files were scanned in part or not at all.

use crate::cli::ScanArgs;
use crate::Outcome;
use pi_scan::{Finding, ScanOptions, ScanReport};
use serde::Serialize;
use std::io::{BufWriter, Write};
use std::path::PathBuf;

/// Exit status when PI was found.
const FOUND: i32 = 1;
/// Exit status when something could not be scanned or moved.
const FAILED: i32 = 2;
/// Exit status when nothing was found but some files were read only in
/// part (a limit reached, truncated) or not at all (corrupt, encrypted):
/// "clean" would overstate what is known.
const INCOMPLETE: i32 = 3;
/// Files named in the summary line before "and N more".
const NAMED: usize = 5;

pub fn run(a: ScanArgs) -> anyhow::Result<Outcome> {
    // A parser panic on a hostile document must not print its message: it
    // could quote file content. Say where, not what.
    std::panic::set_hook(Box::new(|info| {
        let at = info
            .location()
            .map_or_else(String::new, |l| format!(" at {}:{}", l.file(), l.line()));
        eprintln!("pivault: internal error{at}; the file being read was not scanned");
    }));
    let code = scan(&a);
    if code == 0 {
        return Ok(Outcome::Ok);
    }
    std::process::exit(code);
}

fn scan(a: &ScanArgs) -> i32 {
    let mut failed = false;
    let mut skip_dirs = Vec::new();
    if let Some(v) = &a.move_into {
        // Checked before scanning, so that nothing is found and then
        // refused; checked again for every file.
        if let Err(e) = pi_scan::vault_target(v) {
            eprintln!("pivault: error: --move-into {e}");
            return FAILED;
        }
        skip_dirs.push(v.clone());
    }
    let opts = ScanOptions {
        excludes: a.exclude.clone(),
        threads: a.threads.unwrap_or(0),
        skip_dirs,
        file_timeout: Some(std::time::Duration::from_secs(a.file_timeout.max(1))),
        no_ocr: a.no_ocr,
    };
    let started = std::time::Instant::now();
    let report = match pi_scan::scan(&a.paths, &opts) {
        Ok(r) => r,
        Err(e) => {
            eprintln!("pivault: error: {e}");
            return FAILED;
        }
    };
    let elapsed = started.elapsed();
    let out = std::io::stdout();
    let mut out = BufWriter::new(out.lock());
    let printed = if a.json {
        print_json(&mut out, &report)
    } else {
        print_table(&mut out, &report.findings)
    };
    if printed.and_then(|()| out.flush()).is_err() {
        // stdout closed (a pipe to `head`): nothing more to say there.
    }
    drop(out);
    for e in &report.errors {
        eprintln!("pivault: error: {e}");
        failed = true;
    }
    for e in report
        .unreadable
        .iter()
        .chain(&report.partial)
        .chain(&report.no_ocr)
    {
        eprintln!("pivault: warning: {e}");
    }
    let files: std::collections::BTreeSet<(&PathBuf, &PathBuf)> =
        report.findings.iter().map(|f| (&f.root, &f.path)).collect();
    // Files read in part or not at all are named in the warnings above.
    let mut incomplete = String::new();
    if !report.partial.is_empty() {
        incomplete += &format!(
            "; {} file(s) partial: {}",
            report.partial.len(),
            names(report.partial.iter())
        );
    }
    if !report.unreadable.is_empty() {
        incomplete += &format!(
            "; {} document(s) not scanned: {}",
            report.unreadable.len(),
            names(report.unreadable.iter())
        );
    }
    if !report.no_ocr.is_empty() {
        incomplete += &format!(
            "; {} image(s) not scanned: no OCR: {}",
            report.no_ocr.len(),
            names(report.no_ocr.iter())
        );
    }
    eprintln!(
        "pivault: {} finding(s) in {} file(s); scanned {} file(s), {:.1} MB in {:.2}s; {} binary file(s) skipped{incomplete}",
        report.findings.len(),
        files.len(),
        report.files_scanned,
        report.bytes_scanned as f64 / 1e6,
        elapsed.as_secs_f64(),
        report.binary_skipped
    );
    if let Some(vault) = &a.move_into {
        let inside = |root: &PathBuf| {
            let (r, v) = (root.canonicalize().ok(), vault.canonicalize().ok());
            r.zip(v).is_some_and(|(r, v)| r.starts_with(v))
        };
        let mut moved = std::collections::HashSet::new();
        for (root, path) in &files {
            if inside(root) {
                eprintln!(
                    "pivault: error: {}: is inside the vault {}; not moved",
                    path.display(),
                    vault.display()
                );
                failed = true;
                continue;
            }
            // The same file reached through two overlapping PATHs moves once.
            if !moved.insert(*path) {
                continue;
            }
            let scanned = report
                .findings
                .iter()
                .find(|f| &f.path == *path)
                .and_then(|f| f.file_id);
            match pi_scan::move_into(root, path, scanned, vault) {
                Ok(dest) => eprintln!("pivault: moved {} -> {}", path.display(), dest.display()),
                Err(e) => {
                    eprintln!("pivault: error: {e}");
                    failed = true;
                }
            }
        }
    }
    if failed {
        FAILED
    } else if !report.findings.is_empty() {
        FOUND
    } else if !report.partial.is_empty()
        || !report.unreadable.is_empty()
        || !report.no_ocr.is_empty()
    {
        INCOMPLETE
    } else {
        0
    }
}

/// The first few files' paths, for the summary line.
fn names<'a>(errors: impl ExactSizeIterator<Item = &'a pi_scan::Error>) -> String {
    let n = errors.len();
    let mut s: Vec<String> = errors
        .take(NAMED)
        .filter_map(|e| e.path().map(|p| p.display().to_string()))
        .collect();
    if n > NAMED {
        s.push(format!("and {} more", n - NAMED));
    }
    s.join(", ")
}

/// A JSON line: a finding, or the status of a file not fully scanned.
#[derive(Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Line<'a> {
    Finding(&'a Finding),
    Status {
        path: String,
        /// `partial` (read in part: a limit reached, truncated, damaged)
        /// or `skipped` (not read at all: corrupt, encrypted).
        status: &'static str,
        /// What was not read and why, by place; never content.
        reason: String,
    },
}

fn print_json(out: &mut impl Write, report: &ScanReport) -> std::io::Result<()> {
    for f in &report.findings {
        serde_json::to_writer(&mut *out, &Line::Finding(f))?;
        out.write_all(b"\n")?;
    }
    let statuses = report
        .partial
        .iter()
        .map(|e| ("partial", e))
        .chain(report.unreadable.iter().map(|e| ("skipped", e)))
        .chain(report.no_ocr.iter().map(|e| ("skipped", e)))
        // Paths that could not be read at all (also errors: exit 2).
        .chain(report.errors.iter().map(|e| ("skipped", e)));
    for (status, e) in statuses {
        let line = Line::Status {
            path: e
                .path()
                .map_or_else(String::new, |p| p.to_string_lossy().into_owned()),
            status,
            reason: e.reason(),
        };
        serde_json::to_writer(&mut *out, &line)?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

fn location(f: &Finding) -> String {
    match &f.part {
        Some(p) => format!("{}[{p}]:{}", f.path.display(), f.line),
        None => format!("{}:{}", f.path.display(), f.line),
    }
}

fn print_table(out: &mut impl Write, findings: &[Finding]) -> std::io::Result<()> {
    if findings.is_empty() {
        return Ok(());
    }
    let locs: Vec<String> = findings.iter().map(location).collect();
    let w = locs.iter().map(String::len).max().unwrap_or(0).max(9);
    writeln!(
        out,
        "{:<w$}  {:<15}  {:<19}  {:<10}  NAME NEARBY",
        "FILE:LINE", "KIND", "MASKED", "CONFIDENCE"
    )?;
    for (f, loc) in findings.iter().zip(&locs) {
        let ocr = match f.ocr_confidence {
            Some(c) => format!("  (OCR, {c:.0}%)"),
            None => String::new(),
        };
        writeln!(
            out,
            "{loc:<w$}  {:<15}  {:<19}  {:<10}  {}{ocr}",
            f.kind.as_str(),
            f.masked,
            f.confidence.as_str(),
            if f.name_nearby { "yes" } else { "no" }
        )?;
    }
    Ok(())
}
