//! `pivault scan` on the formats firms keep beyond plain text and Office
//! Open XML (issue 20 point 2): archives, text in other encodings, e-mail,
//! OpenDocument, RTF and legacy Office. Each file is made by the tool that
//! makes it in the field where one is installed (zip, tar, gzip, Python's
//! `email` package, LibreOffice), plants real-looking PI and decoys, and
//! the test asserts the exact findings the CLI reports: file, the place
//! inside it (`part`: `inner.zip!notes.txt`), kind and masked value, so
//! that a decoy reported or a planted value missed fails it. Hostile files
//! (an inflation bomb, nesting past the depth limit, a truncated zip) must
//! finish quickly and be reported as partial.

mod common;

use common::ScanRun as Run;

use std::path::Path;
use std::process::Command;

/// Text with PI of each kind near a name, and decoys that must stay quiet:
/// a phone, an invalid SSN (area 000), the Woolworth wallet SSN, a
/// published test card, a bare nine-digit order number.
pub const LETTER: &str = "Employee: Ana Silva\nSSN: 536-22-1234\n\
Call 617-555-0100 about order 536221235 (not 000-12-3456, not 078-05-1120).\n\
Test card 4111 1111 1111 1111 is sample data.\n";

/// A second planted value, for a second place in the same file.
pub const CARD: &str = "Cardholder: Liam Walsh\ncard 4539 1488 0343 6467\nphone 617 555 0199\n";

/// What one finding says: (file relative to the root, part, kind, masked).
type Found = (String, String, String, String);

fn scan(root: &Path) -> Run {
    common::scan(&["--json"], root, None)
}

/// The findings, sorted (a value found twice is listed twice).
fn found(root: &Path, run: &Run) -> Vec<Found> {
    let mut all: Vec<Found> = run
        .stdout
        .lines()
        .map(|l| -> serde_json::Value {
            serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}"))
        })
        .filter(|v| v["type"] == "finding")
        .map(|v| {
            let s = |k: &str| v[k].as_str().unwrap_or("").to_string();
            let path = Path::new(v["path"].as_str().unwrap())
                .strip_prefix(root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            (path, s("part"), s("kind"), s("masked"))
        })
        .collect();
    all.sort();
    all
}

fn f(path: &str, part: &str, kind: &str, masked: &str) -> Found {
    (path.into(), part.into(), kind.into(), masked.into())
}

/// The two findings [`LETTER`] holds, at `path` and `part`.
fn letter_at(path: &str, part: &str) -> Found {
    f(path, part, "ssn", "***-**-1234")
}

fn card_at(path: &str, part: &str) -> Found {
    f(path, part, "payment_card", "************6467")
}

/// Asserts exactly these findings, each once (a decoy reported, PI missed
/// or reported twice fails)
/// and that no full value reached the output.
fn assert_found(root: &Path, run: &Run, want: &[Found]) {
    let got = found(root, run);
    let mut want = want.to_vec();
    want.sort();
    assert_eq!(got, want, "stderr: {}", run.stderr);
    let all = format!("{}{}", run.stdout, run.stderr);
    for v in ["536-22-1234", "4539 1488 0343 6467", "4539148803436467"] {
        assert!(!all.contains(v), "full value in the output: {all}");
    }
}

/// Runs a producing tool in `dir`; false (and a loud skip) when it is not
/// installed.
fn tool(dir: &Path, program: &str, args: &[&str]) -> bool {
    match Command::new(program).args(args).current_dir(dir).output() {
        Ok(o) if o.status.success() => true,
        Ok(o) => panic!(
            "{program} {args:?} failed: {}",
            String::from_utf8_lossy(&o.stderr)
        ),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            common::skip(&format!("{program} is not installed (Debian: see .ci/run)"));
            false
        }
        Err(e) => panic!("{program}: {e}"),
    }
}

fn sh(dir: &Path, script: &str) -> bool {
    tool(dir, "sh", &["-c", script])
}

fn write(dir: &Path, rel: &str, body: impl AsRef<[u8]>) {
    let p = dir.join(rel);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, body).unwrap();
}

/// A zip made by `zip`: a CSV and a text file as members, a zip inside it
/// holding more PI, and a binary member; each member reported under its
/// path in the archive.
#[test]
fn zip_members_and_a_nested_zip_are_files_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let (src, out) = (dir.path().join("src"), dir.path().join("out"));
    std::fs::create_dir_all(&out).unwrap();
    write(
        &src,
        "hr/list.csv",
        "name,ssn,phone\nAna Silva,536221234,6175550100\nBo Chen,000123456,6175550101\n",
    );
    write(&src, "notes/letter.txt", LETTER);
    write(&src, "inner/cards.txt", CARD);
    write(&src, "logo.bin", b"\0\x01\x02SSN 536-22-9999\0");
    if !(tool(
        &src.join("inner"),
        "zip",
        &["-q", "../inner.zip", "cards.txt"],
    ) && tool(
        &src,
        "zip",
        &[
            "-q",
            "-r",
            "../out/export.zip",
            "hr",
            "notes",
            "inner.zip",
            "logo.bin",
        ],
    )) {
        return;
    }
    let run = scan(&out);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_found(
        &out,
        &run,
        &[
            f("export.zip", "hr/list.csv", "ssn", "***-**-1234"),
            letter_at("export.zip", "notes/letter.txt"),
            card_at("export.zip", "inner.zip!cards.txt"),
        ],
    );
    assert!(!run.stderr.contains("partial"), "{}", run.stderr);
}

/// .tar, .tar.gz, .tgz made by `tar`, and a .gz made by `gzip`.
#[test]
fn tar_tarballs_and_gzip_members_are_files_of_their_own() {
    let dir = tempfile::tempdir().unwrap();
    let (src, out) = (dir.path().join("src"), dir.path().join("out"));
    std::fs::create_dir_all(&out).unwrap();
    write(&src, "payroll/letter.txt", LETTER);
    write(&src, "payroll/cards.log", CARD);
    write(
        &out,
        "export.csv",
        "id,note\n1,Employee: Ana Silva SSN: 536-22-1234\n",
    );
    if !(tool(&src, "tar", &["-cf", "../out/a.tar", "payroll"])
        && tool(&src, "tar", &["-czf", "../out/b.tar.gz", "payroll"])
        && tool(&src, "tar", &["-czf", "../out/c.tgz", "payroll/cards.log"])
        && tool(&out, "gzip", &["export.csv"]))
    {
        return;
    }
    let run = scan(&out);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_found(
        &out,
        &run,
        &[
            letter_at("a.tar", "payroll/letter.txt"),
            card_at("a.tar", "payroll/cards.log"),
            letter_at("b.tar.gz", "payroll/letter.txt"),
            card_at("b.tar.gz", "payroll/cards.log"),
            card_at("c.tgz", "payroll/cards.log"),
            letter_at("export.csv.gz", "export.csv"),
        ],
    );
}

/// A gzip bomb (300 MB of newlines after a line of PI, 300 KB on disk):
/// its text is streamed, so it is scanned to its end in bounded memory
/// (it was cut at a 256 MiB entry cap before streaming), and inflation
/// stops only at the file's 1 GiB budget (tests/scan_hostile.rs has a
/// bomb with PI at its end).
#[test]
fn a_gzip_bomb_is_streamed_to_its_end() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    if !sh(
        d,
        "{ printf 'Employee: Ana Silva\\nSSN: 536-22-1234\\n'; yes '' | head -c 300000000; } | gzip -1 > bomb.log.gz",
    ) {
        return;
    }
    assert!(std::fs::metadata(d.join("bomb.log.gz")).unwrap().len() < 2 << 20);
    let started = std::time::Instant::now();
    let run = scan(d);
    assert!(started.elapsed().as_secs() < 100, "{:?}", started.elapsed());
    assert_found(d, &run, &[letter_at("bomb.log.gz", "bomb.log")]);
    assert!(!run.stderr.contains("partial"), "{}", run.stderr);
}

/// Zips nested five deep, PI at every level: the levels within the depth
/// limit are read, the ones past it are named in a partial warning.
#[test]
fn nesting_past_the_depth_limit_is_partial() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let mut prev: Option<String> = None;
    for level in (1..=5).rev() {
        let txt = format!("l{level}.txt");
        write(d, &txt, LETTER);
        let zip = format!("z{level}.zip");
        let mut args = vec!["-q", zip.as_str(), txt.as_str()];
        if let Some(p) = &prev {
            args.push(p);
        }
        if !tool(d, "zip", &args) {
            return;
        }
        std::fs::remove_file(d.join(&txt)).unwrap();
        if let Some(p) = &prev {
            std::fs::remove_file(d.join(p)).unwrap();
        }
        prev = Some(zip);
    }
    let run = scan(d);
    assert_found(
        d,
        &run,
        &[
            letter_at("z1.zip", "l1.txt"),
            letter_at("z1.zip", "z2.zip!l2.txt"),
            letter_at("z1.zip", "z2.zip!z3.zip!l3.txt"),
            letter_at("z1.zip", "z2.zip!z3.zip!z4.zip!l4.txt"),
        ],
    );
    assert!(
        run.stderr.contains(
            "z1.zip: partial scan of this zip archive: z2.zip!z3.zip!z4.zip!z5.zip: nested more than 3 levels deep: not opened"
        ),
        "{}",
        run.stderr
    );
}

/// A zip cut short (a download that stopped): no central directory, so
/// the members are read from their local headers as far as they go.
#[test]
fn a_truncated_zip_is_read_as_far_as_it_goes_and_partial() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(d, "a-letter.txt", LETTER);
    // Incompressible filler so that the cut falls inside the second member.
    let filler: String = (0..200_000u64)
        .map(|i| char::from(b'a' + ((i * 7919 + i / 3) % 26) as u8))
        .collect();
    write(d, "b-filler.txt", format!("{CARD}{filler}"));
    if !tool(
        d,
        "zip",
        &["-q", "-0", "export.zip", "a-letter.txt", "b-filler.txt"],
    ) {
        return;
    }
    std::fs::remove_file(d.join("a-letter.txt")).unwrap();
    std::fs::remove_file(d.join("b-filler.txt")).unwrap();
    let z = d.join("export.zip");
    let len = std::fs::metadata(&z).unwrap().len();
    std::fs::OpenOptions::new()
        .write(true)
        .open(&z)
        .unwrap()
        .set_len(len / 2)
        .unwrap();
    let run = scan(d);
    // The first member is whole; the second is cut after its PI.
    assert_found(
        d,
        &run,
        &[
            letter_at("export.zip", "a-letter.txt"),
            card_at("export.zip", "b-filler.txt"),
        ],
    );
    assert!(
        run.stderr
            .contains("export.zip: partial scan of this zip archive: b-filler.txt: truncated"),
        "{}",
        run.stderr
    );
}

/// Text in the encodings exports use, made by `iconv`: UTF-16 with a BOM
/// (little- and big-endian: Excel's "Unicode Text", PowerShell's
/// `Out-File`), UTF-16LE without one (SQL Server `bcp -w`), Latin-1, and
/// a UTF-16 TSV inside a zip whose heading labels a bare number.
#[test]
fn utf16_and_latin1_text_is_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let (src, out) = (dir.path().join("src"), dir.path().join("out"));
    std::fs::create_dir_all(&out).unwrap();
    let accented = format!("Employé: José Núñez\n{LETTER}");
    write(&src, "letter.txt", &accented);
    write(&src, "cards.txt", CARD);
    write(
        &src,
        "rows.tsv",
        "name\tssn\nAna Silva\t536221234\nBo Chen\t000123456\n",
    );
    let ok = sh(
        &src,
        "iconv -f UTF-8 -t UTF-16 letter.txt > ../out/unicode.txt \
         && { printf '\\376\\377'; iconv -f UTF-8 -t UTF-16BE cards.txt; } > ../out/be.txt \
         && iconv -f UTF-8 -t UTF-16LE letter.txt > ../out/bcp.dat \
         && iconv -f UTF-8 -t LATIN1 letter.txt > ../out/latin1.txt \
         && { printf '\\377\\376'; iconv -f UTF-8 -t UTF-16LE rows.tsv; } > rows16.tsv",
    ) && tool(&src, "zip", &["-q", "../out/export.zip", "rows16.tsv"]);
    if !ok {
        return;
    }
    // Each really is what it says (a NUL beside every ASCII character).
    for f in ["unicode.txt", "be.txt", "bcp.dat"] {
        assert!(std::fs::read(out.join(f)).unwrap().contains(&0), "{f}");
    }
    let run = scan(&out);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_found(
        &out,
        &run,
        &[
            letter_at("unicode.txt", ""),
            card_at("be.txt", ""),
            letter_at("bcp.dat", ""),
            letter_at("latin1.txt", ""),
            f("export.zip", "rows16.tsv", "ssn", "***-**-1234"),
        ],
    );
    assert!(
        run.stderr.contains("0 binary file(s) skipped"),
        "{}",
        run.stderr
    );
}

/// A message and a mailbox written by Python's `email` and `mailbox`
/// packages (tests/scan_formats/make_email.py): a quoted-printable body
/// with its HTML twin (read once), a base64 attachment, a zip attachment,
/// PI in a Subject, a forwarded message. The Subject decoy ("order
/// 536221235") stays quiet.
#[test]
fn email_bodies_attachments_and_mailboxes() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/scan_formats/make_email.py");
    let (script, out) = (script.to_str().unwrap(), d.to_str().unwrap());
    if !tool(d, "python3", &[script, out, LETTER, CARD]) {
        return;
    }
    let run = scan(d);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_found(
        d,
        &run,
        &[
            letter_at("letter.eml", ""),
            card_at("letter.eml", "cards.txt"),
            letter_at("letter.eml", "archive.zip!inner/letter.txt"),
            card_at("inbox.mbox", "message 1"),
            letter_at("inbox.mbox", "message 2!headers"),
            letter_at("inbox.mbox", "message 2!fwd.eml"),
        ],
    );
}

/// Scans copies of the LibreOffice-made fixtures `names` (made by
/// tests/scan_formats/make_office.sh; what each plants is listed there).
fn scan_fixtures(names: &[&str]) -> (tempfile::TempDir, Run) {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scan_formats");
    for n in names {
        std::fs::copy(fixtures.join(n), dir.path().join(n)).unwrap();
    }
    let run = scan(dir.path());
    (dir, run)
}

/// OpenDocument text, spreadsheet and presentation saved by LibreOffice:
/// the body, a comment, a footer, hidden text and the description
/// property of a letter; a number cell under an "ssn" heading and a cell
/// comment of a sheet; a slide and another slide's speaker notes.
#[test]
fn opendocument_text_sheets_slides_and_hidden_places() {
    let (dir, run) = scan_fixtures(&["letter.odt", "staff.ods", "deck.odp"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_found(
        dir.path(),
        &run,
        &[
            letter_at("letter.odt", ""),
            card_at("letter.odt", ""),
            f("letter.odt", "", "drivers_license", "*****678"),
            f("letter.odt", "styles.xml", "ssn", "***-**-7890"),
            f("letter.odt", "meta.xml", "ssn", "***-**-4245"),
            letter_at("staff.ods", "sheet1"),
            f("staff.ods", "sheet1", "ssn", "***-**-7890"),
            card_at("staff.ods", "sheet2"),
            letter_at("deck.odp", "slide1"),
            card_at("deck.odp", "slide2"),
        ],
    );
}

/// RTF saved by LibreOffice: the body, a comment (`\*\annotation`), a
/// footer, hidden text (`\v`) and the document comments (`\info`), each
/// once (the footer is written twice, once in LibreOffice's own
/// `\*\pgdsctbl`, which is skipped); no number from a font or style
/// table.
#[test]
fn rtf_body_comments_footer_hidden_text_and_info() {
    let (dir, run) = scan_fixtures(&["letter.rtf"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_found(
        dir.path(),
        &run,
        &[
            letter_at("letter.rtf", ""),
            card_at("letter.rtf", ""),
            f("letter.rtf", "", "drivers_license", "*****678"),
            f("letter.rtf", "", "ssn", "***-**-7890"),
            f("letter.rtf", "", "ssn", "***-**-4245"),
        ],
    );
}

/// Word, Excel and PowerPoint 97-2003 files saved by LibreOffice: the
/// letter's body, footer, comment and hidden text through the piece table
/// and its comments property (SummaryInformation); the workbook's number
/// cell under an "ssn" heading (a NUMBER/RK record, not text) and a
/// shared string, and its cell comment (the text of a TXO record); the
/// deck's slide text and notes as text runs. Decoys as in the
/// OpenDocument originals.
#[test]
fn legacy_office_doc_xls_and_ppt() {
    let (dir, run) = scan_fixtures(&["letter.doc", "staff.xls", "deck.ppt"]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert_found(
        dir.path(),
        &run,
        &[
            letter_at("letter.doc", ""),
            card_at("letter.doc", ""),
            f("letter.doc", "", "drivers_license", "*****678"),
            f("letter.doc", "", "ssn", "***-**-7890"),
            f("letter.doc", "SummaryInformation", "ssn", "***-**-4245"),
            letter_at("staff.xls", "sheet1"),
            f(
                "staff.xls",
                "sheet1 comments and text boxes",
                "ssn",
                "***-**-7890",
            ),
            card_at("staff.xls", "sheet2"),
            letter_at("deck.ppt", "PowerPoint Document"),
            card_at("deck.ppt", "PowerPoint Document"),
        ],
    );
}
