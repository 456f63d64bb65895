//! `pivault scan` reading text in images (issue 20 point 4): PNG, JPEG
//! and TIFF files (known by their first bytes, whatever their name) and
//! PDF pages that are only an image, read by Tesseract. The fixtures in
//! tests/fixtures/scan_images/ are the staff record (SSN ***-**-1234 next
//! to a name, a phone as a decoy) drawn by ImageMagick and put on PDF
//! pages by LibreOffice (tests/scan_formats/make_images.sh). Each finding
//! must say `"source":"ocr"` with Tesseract's confidence; without
//! Tesseract (PATH without it) or with `--no-ocr`, each image is "not
//! scanned: no OCR", an image-only PDF partial, and a scan that found
//! nothing exits 3.

mod common;

use common::ScanRun as Run;

use std::path::Path;

fn scan(root: &Path, args: &[&str], path_env: Option<&Path>) -> Run {
    common::scan(args, root, path_env)
}

/// `run`'s JSON lines of type `ty`, sorted by path.
fn lines(run: &Run, ty: &str) -> Vec<serde_json::Value> {
    let mut v = run.lines(ty);
    v.sort_by_key(|v| v["path"].as_str().unwrap_or("").to_owned());
    v
}

/// The fixtures, `record.jpg` renamed `photo.dat` (an image is known by
/// its bytes, not its name).
fn fixtures() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scan_images");
    for (from, to) in [
        ("record.png", "record.png"),
        ("record.jpg", "photo.dat"),
        ("record.tif", "record.tif"),
        ("scan.pdf", "scan.pdf"),
        ("scan-jpeg.pdf", "scan-jpeg.pdf"),
    ] {
        std::fs::copy(src.join(from), dir.path().join(to)).unwrap();
    }
    dir
}

fn name(v: &serde_json::Value) -> String {
    let p = v["path"].as_str().unwrap();
    Path::new(p)
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn images_and_image_only_pdf_pages_are_read_by_ocr() {
    if which_tesseract().is_none() {
        return common::skip(
            "tesseract is not installed (Debian: tesseract-ocr tesseract-ocr-eng, see .ci/run)",
        );
    }
    let dir = fixtures();
    let run = scan(dir.path(), &["--json"], None);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(lines(&run, "status").is_empty(), "{}", run.stdout);
    let found = lines(&run, "finding");
    let got: Vec<(String, String, String, String, String)> = found
        .iter()
        .map(|v| {
            let s = |k: &str| v[k].as_str().unwrap_or("").to_owned();
            (name(v), s("part"), s("kind"), s("masked"), s("source"))
        })
        .collect();
    let want = |file: &str, part: &str| {
        (
            file.into(),
            part.into(),
            "ssn".into(),
            "***-**-1234".into(),
            "ocr".into(),
        )
    };
    assert_eq!(
        got,
        [
            want("photo.dat", ""),
            want("record.png", ""),
            want("record.tif", ""),
            want("scan-jpeg.pdf", "page 1"),
            want("scan.pdf", "page 1"),
        ],
        "{}",
        run.stdout
    );
    for v in &found {
        let c = v["ocr_confidence"].as_f64().unwrap();
        assert!((50.0..=100.0).contains(&c), "{v}");
        assert_eq!(v["confidence"], "high", "{v}");
    }
    // The table says so too.
    let table = scan(&dir.path().join("record.png"), &[], None);
    assert!(
        table.stdout.contains("high        yes  (OCR, 9"),
        "{}",
        table.stdout
    );
}

#[test]
fn without_tesseract_images_are_not_scanned_no_ocr() {
    let dir = fixtures();
    let empty = tempfile::tempdir().unwrap();
    for (args, why) in [
        (
            &["--json"][..],
            "tesseract is not installed: Debian package tesseract-ocr",
        ),
        (&["--json", "--no-ocr"][..], "--no-ocr"),
    ] {
        let run = scan(dir.path(), args, Some(empty.path()));
        assert!(lines(&run, "finding").is_empty(), "{}", run.stdout);
        let status: Vec<(String, String, String)> = lines(&run, "status")
            .iter()
            .map(|v| {
                (
                    name(v),
                    v["status"].as_str().unwrap().into(),
                    v["reason"].as_str().unwrap().into(),
                )
            })
            .collect();
        let skipped = |f: &str| {
            (
                f.to_owned(),
                "skipped".to_owned(),
                format!("not scanned: no OCR ({why})"),
            )
        };
        let partial = |f: &str| {
            let r = format!("partial scan of this PDF: page 1: 1 image(s) and no text: not read: no OCR ({why})");
            (f.to_owned(), "partial".to_owned(), r)
        };
        assert_eq!(
            status,
            [
                skipped("photo.dat"),
                skipped("record.png"),
                skipped("record.tif"),
                partial("scan-jpeg.pdf"),
                partial("scan.pdf"),
            ],
            "{}",
            run.stdout
        );
        assert!(
            run.stderr.contains("; 2 file(s) partial: "),
            "{}",
            run.stderr
        );
        assert!(
            run.stderr.contains("; 3 image(s) not scanned: no OCR: "),
            "{}",
            run.stderr
        );
        assert_eq!(run.code, 3, "{}", run.stderr);
    }
}

fn which_tesseract() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join("tesseract"))
        .find(|p| p.is_file())
}

/// An image inside an archive is a file of its own (issue 20 point 2):
/// read by OCR like an image file, named by the member; without OCR the
/// archive is partial ("no OCR"), not clean.
#[test]
fn an_image_inside_a_zip_is_read_by_ocr() {
    let dir = tempfile::tempdir().unwrap();
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scan_images");
    let png = std::fs::read(src.join("record.png")).unwrap();
    let zip_path = dir.path().join("scans.zip");
    let mut z = zip::ZipWriter::new(std::fs::File::create(&zip_path).unwrap());
    let opts = zip::write::SimpleFileOptions::default();
    z.start_file("cards/record.png", opts).unwrap();
    std::io::Write::write_all(&mut z, &png).unwrap();
    z.start_file("notes.txt", opts).unwrap();
    std::io::Write::write_all(&mut z, b"nothing to see; call 617-555-0142").unwrap();
    z.finish().unwrap();

    let empty = tempfile::tempdir().unwrap();
    let run = scan(dir.path(), &["--json", "--no-ocr"], Some(empty.path()));
    assert!(lines(&run, "finding").is_empty(), "{}", run.stdout);
    let status = lines(&run, "status");
    assert_eq!(status.len(), 1, "{}", run.stdout);
    assert_eq!(status[0]["status"], "partial", "{}", run.stdout);
    let reason = status[0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("cards/record.png: an image: not read: no OCR (--no-ocr)"),
        "{reason}"
    );
    assert_eq!(run.code, 3, "{}", run.stderr);

    if which_tesseract().is_none() {
        return common::skip(
            "tesseract is not installed (Debian: tesseract-ocr tesseract-ocr-eng, see .ci/run)",
        );
    }
    let run = scan(dir.path(), &["--json"], None);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(lines(&run, "status").is_empty(), "{}", run.stdout);
    let found = lines(&run, "finding");
    assert_eq!(found.len(), 1, "{}", run.stdout);
    assert_eq!(name(&found[0]), "scans.zip");
    assert_eq!(found[0]["part"], "cards/record.png", "{}", run.stdout);
    assert_eq!(found[0]["masked"], "***-**-1234");
    assert_eq!(found[0]["source"], "ocr");
}
