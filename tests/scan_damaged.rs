//! `pivault scan` on damaged PDFs (issue 20 point 3). Each test damages a
//! copy of a real PDF (tests/fixtures/scan_formats/record.pdf, a staff
//! record saved by LibreOffice: SSN ***-**-1234 next to a name, a phone
//! as a decoy) the way downloads and saves damage files: its
//! cross-reference table cut off, the file cut before its page tree,
//! bytes deleted and inserted so every offset after them is wrong. The
//! SSN must still be found, and the file reported as partial ("damaged
//! PDF"), never as clean; a file with nothing left to read is "not
//! scanned" (exit 3). The recall of the recovery against poppler on 400
//! damaged copies is measured by benches/pdf_damage.sh (docs/SCAN.md).

mod common;

use common::ScanRun as Run;
use std::path::Path;

fn scan(path: &Path) -> Run {
    common::scan(&["--json"], path, None)
}

fn record() -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scan_formats/record.pdf"),
    )
    .unwrap()
}

fn at(pdf: &[u8], what: &str) -> usize {
    pdf.windows(what.len())
        .position(|w| w == what.as_bytes())
        .unwrap_or_else(|| panic!("{what:?} not in the fixture"))
}

/// Writes `pdf` as `name`, scans it, and asserts the SSN is found once
/// (in `part`) and the file reported partial as a damaged PDF.
fn assert_recovered(name: &str, pdf: &[u8], part: &str) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    std::fs::write(&path, pdf).unwrap();
    let run = scan(&path);
    let found = run.lines("finding");
    assert_eq!(found.len(), 1, "{name}: {}\n{}", run.stdout, run.stderr);
    assert_eq!(
        (&found[0]["kind"], &found[0]["masked"], &found[0]["part"]),
        (&"ssn".into(), &"***-**-1234".into(), &part.into()),
        "{name}"
    );
    assert_eq!(found[0]["confidence"], "high", "{name}");
    let status = run.lines("status");
    assert_eq!(status.len(), 1, "{name}: {}", run.stdout);
    assert_eq!(status[0]["status"], "partial", "{name}");
    let reason = status[0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("partial scan of this PDF: damaged PDF (")
            && reason.contains("text recovered from 1 stream(s)"),
        "{name}: {reason}"
    );
    assert_eq!(run.code, 1, "{name}: {}", run.stderr);
}

#[test]
fn the_intact_record_is_read_whole() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("record.pdf");
    std::fs::write(&path, record()).unwrap();
    let run = scan(&path);
    let found = run.lines("finding");
    assert_eq!(found.len(), 1, "{}", run.stdout);
    assert_eq!(found[0]["part"], "page 1");
    assert!(run.lines("status").is_empty(), "{}", run.stdout);
    assert_eq!(run.code, 1);
}

/// A download cut short in the cross-reference table or the trailer:
/// lopdf cannot load it (before recovery: "not scanned").
#[test]
fn a_cut_off_cross_reference_table_is_rebuilt() {
    let pdf = record();
    let xref = at(&pdf, "\nxref\n");
    for (name, cut) in [
        ("no-xref.pdf", xref),
        ("half-xref.pdf", xref + 100),
        ("no-eof.pdf", pdf.len() - 7),
    ] {
        assert_recovered(name, &pdf[..cut], "page 1");
    }
}

/// Cut before the page object and the catalog: no page is left, but the
/// content stream and the font's map are, and the text is read from the
/// stream itself (object 2), as no viewer would show it.
#[test]
fn a_file_cut_before_its_pages_is_read_from_its_streams() {
    let pdf = record();
    assert_recovered("cut.pdf", &pdf[..at(&pdf, "\n1 0 obj")], "object 2");
}

/// Bytes deleted inside the font program and junk inserted before the
/// font: every offset the table gives after them is wrong.
#[test]
fn deleted_and_inserted_bytes_shift_every_offset_after_them() {
    let pdf = record();
    let mut deleted = pdf.clone();
    let font = at(&pdf, "5 0 obj");
    deleted.drain(font + 2000..font + 2100);
    assert_recovered("deleted.pdf", &deleted, "page 1");
    let mut inserted = pdf.clone();
    let map = at(&pdf, "8 0 obj");
    inserted.splice(map..map, (0..300u32).map(|i| (i * 7 % 251) as u8));
    assert_recovered("inserted.pdf", &inserted, "page 1");
}

/// Cut inside the content stream: the font's map is gone, so no text can
/// be read: not scanned, and with nothing found the exit status is 3,
/// not 0.
#[test]
fn a_file_with_no_text_left_is_not_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("stub.pdf");
    std::fs::write(&path, &record()[..300]).unwrap();
    let run = scan(&path);
    assert!(run.lines("finding").is_empty(), "{}", run.stdout);
    let status = run.lines("status");
    assert_eq!(status.len(), 1, "{}", run.stdout);
    assert_eq!(status[0]["status"], "skipped");
    let reason = status[0]["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("not scanned: cannot read this PDF: ")
            && reason.contains("no text recovered"),
        "{reason}"
    );
    assert_eq!(run.code, 3, "{}", run.stderr);
}
