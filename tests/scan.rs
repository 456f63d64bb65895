//! `pivault scan` end to end: a generated labelled corpus (true PI in every
//! file kind, decoys of every kind) with precision and recall asserted;
//! masking over all output; exit codes; excludes; moving into a vault.

mod scan_corpus;

use assert_cmd::Command;
use scan_corpus::Label;
use std::collections::HashMap;
use std::path::Path;

fn pivault() -> Command {
    let mut c = Command::cargo_bin("pivault").unwrap();
    c.env_remove("PIVAULT_LOG").env_remove("RUST_LOG");
    c
}

struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

fn scan(args: &[&str], paths: &[&Path]) -> Run {
    let out = pivault()
        .arg("scan")
        .args(args)
        .args(paths)
        .output()
        .unwrap();
    Run {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// The finding lines of `--json` output (each has `"type":"finding"`).
fn json_lines(s: &str) -> Vec<serde_json::Value> {
    all_json_lines(s)
        .into_iter()
        .filter(|v| {
            assert!(
                matches!(v["type"].as_str(), Some("finding" | "status")),
                "{v}"
            );
            v["type"] == "finding"
        })
        .collect()
}

fn all_json_lines(s: &str) -> Vec<serde_json::Value> {
    s.lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect()
}

fn rel(root: &Path, v: &serde_json::Value) -> String {
    let p = v["path"].as_str().unwrap();
    Path::new(p)
        .strip_prefix(root)
        .unwrap()
        .to_string_lossy()
        .into_owned()
}

#[test]
fn labelled_corpus_precision_and_recall() {
    let dir = tempfile::tempdir().unwrap();
    let labels = scan_corpus::build(dir.path());
    let run = scan(&["--json"], &[dir.path()]);
    assert_eq!(run.code, 1, "PI found means exit 1; stderr: {}", run.stderr);
    let findings = json_lines(&run.stdout);

    let mut open: HashMap<(String, String, String), usize> = HashMap::new();
    for l in &labels {
        *open
            .entry((l.file.clone(), l.kind.to_string(), l.masked.clone()))
            .or_default() += 1;
    }
    let (mut tp, mut fp) = (0usize, 0usize);
    let mut per_file: HashMap<String, (usize, usize)> = HashMap::new();
    for f in &findings {
        for key in [
            "path",
            "line",
            "kind",
            "masked",
            "confidence",
            "name_nearby",
        ] {
            assert!(f.get(key).is_some(), "finding lacks {key}: {f}");
        }
        let key = (
            rel(dir.path(), f),
            f["kind"].as_str().unwrap().to_string(),
            f["masked"].as_str().unwrap().to_string(),
        );
        let slot = per_file.entry(key.0.clone()).or_default();
        match open.get_mut(&key) {
            Some(n) if *n > 0 => {
                *n -= 1;
                tp += 1;
                slot.0 += 1;
            }
            _ => {
                fp += 1;
                slot.1 += 1;
                eprintln!("false positive: {f}");
            }
        }
    }
    let missed: Vec<_> = open.iter().filter(|(_, &n)| n > 0).collect();
    let fneg: usize = missed.iter().map(|(_, &n)| n).sum();
    for (k, n) in &missed {
        eprintln!("missed {n}x: {k:?}");
    }
    let precision = tp as f64 / (tp + fp) as f64;
    let recall = tp as f64 / (tp + fneg) as f64;
    let mut files: Vec<_> = per_file.into_iter().collect();
    files.sort();
    for (file, (t, f)) in &files {
        println!("  {file}: {t} true, {f} false");
    }
    println!(
        "pi-scan corpus: {} labels, {} findings: tp={tp} fp={fp} fn={fneg} precision={precision:.3} recall={recall:.3}",
        labels.len(),
        findings.len()
    );
    for kind in [
        "txt",
        "csv",
        "tsv",
        "json",
        "log",
        "docx",
        "xlsx",
        "pptx",
        "statement.pdf",
        "letter.pdf",
    ] {
        assert!(
            files.iter().any(|(f, (t, _))| f.ends_with(kind) && *t > 0),
            "no true PI found in the .{kind} file"
        );
    }
    assert!(
        !files.iter().any(|(f, _)| f.starts_with("clean")),
        "decoy-only and binary files are quiet"
    );
    assert!(precision >= 0.95, "precision {precision:.3} < 0.95");
    assert!(recall >= 0.95, "recall {recall:.3} < 0.95");
}

fn assert_no_values(labels: &[Label], all: &str) {
    for l in labels {
        assert!(
            !all.contains(&l.raw),
            "full value of a {} in {} leaked: {}",
            l.kind,
            l.file,
            l.masked
        );
        assert!(
            !all.contains(&l.digits),
            "digits of a {} in {} leaked: {}",
            l.kind,
            l.file,
            l.masked
        );
    }
}

#[test]
fn no_full_value_in_any_output_even_debug_logs() {
    let dir = tempfile::tempdir().unwrap();
    let labels = scan_corpus::build(dir.path());
    for args in [&["-vv"][..], &["-vv", "--json"][..]] {
        let out = pivault()
            .env("PIVAULT_LOG", "trace")
            .env("RUST_LOG", "trace")
            .arg("scan")
            .args(args)
            .arg(dir.path())
            .output()
            .unwrap();
        let all = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.status.code(), Some(1));
        assert!(all.contains("***-**-"), "masked SSNs are shown: {args:?}");
        assert!(
            all.contains("DEBUG") || all.contains("debug"),
            "debug logging was on: {args:?}"
        );
        assert_no_values(&labels, &all);
    }
}

#[test]
fn human_table_shows_masked_columns() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("a.txt"),
        "Name: Ana Silva\nSSN: 536-22-1234\ncard 4539 1488 0343 6467\n",
    )
    .unwrap();
    let run = scan(&[], &[dir.path()]);
    assert_eq!(run.code, 1);
    let lines: Vec<&str> = run.stdout.lines().collect();
    assert!(
        lines[0].starts_with("FILE:LINE") && lines[0].contains("MASKED"),
        "{}",
        run.stdout
    );
    assert!(
        lines[1].contains("a.txt:2")
            && lines[1].contains("ssn")
            && lines[1].contains("***-**-1234")
    );
    assert!(lines[1].contains("high") && lines[1].ends_with("yes"));
    assert!(lines[2].contains("payment_card") && lines[2].contains("************6467"));
    assert!(!run.stdout.contains("536-22") && !run.stdout.contains("4539 1488"));
    assert!(
        run.stderr.contains("2 finding(s) in 1 file(s)"),
        "{}",
        run.stderr
    );
}

#[test]
fn exit_zero_when_clean_and_two_naming_a_missing_path() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("clean.txt"),
        "call 617-555-0100 on 2024-01-15, v1.2.3\n",
    )
    .unwrap();
    let run = scan(&["--json"], &[dir.path()]);
    assert_eq!((run.code, run.stdout.as_str()), (0, ""), "{}", run.stderr);

    std::fs::write(dir.path().join("pi.txt"), "SSN 536-22-1234\n").unwrap();
    let missing = dir.path().join("no-such-dir");
    let run = scan(&["--json"], &[&missing, dir.path()]);
    assert_eq!(
        run.code, 2,
        "an unscannable path is an error even when PI is found"
    );
    assert!(
        run.stderr
            .contains(&format!("{}: no such file or directory", missing.display())),
        "{}",
        run.stderr
    );
    assert_eq!(
        json_lines(&run.stdout).len(),
        1,
        "the other path was still scanned"
    );
    let status: Vec<_> = all_json_lines(&run.stdout)
        .into_iter()
        .filter(|v| v["type"] == "status")
        .collect();
    assert_eq!(status.len(), 1, "{}", run.stdout);
    assert_eq!(status[0]["status"], "skipped");
    assert_eq!(status[0]["path"], missing.to_str().unwrap());
}

#[test]
fn excludes_are_gitignore_globs_and_gitignore_files_are_not_honoured() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    std::fs::create_dir_all(d.join("build/deep")).unwrap();
    std::fs::create_dir_all(d.join("src")).unwrap();
    std::fs::write(d.join("build/deep/a.txt"), "SSN 536-22-1234\n").unwrap();
    std::fs::write(d.join("src/b.csv"), "name,ssn\nAna Silva,536221235\n").unwrap();
    std::fs::write(d.join("src/c.log"), "ssn=536-22-1236\n").unwrap();
    std::fs::write(d.join(".gitignore"), "*\n").unwrap();
    std::fs::write(d.join(".hidden.txt"), "SSN 536-22-1237\n").unwrap();

    let all = json_lines(&scan(&["--json"], &[d]).stdout);
    assert_eq!(
        all.len(),
        4,
        ".gitignore and hidden files do not hide PI: {all:?}"
    );
    let run = scan(
        &["--json", "--exclude", "build/", "--exclude", "*.log"],
        &[d],
    );
    let files: Vec<String> = json_lines(&run.stdout).iter().map(|v| rel(d, v)).collect();
    assert_eq!(files, vec![".hidden.txt", "src/b.csv"], "{}", run.stderr);
    let run = scan(&["--exclude", "[bad"], &[d]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("[bad"), "{}", run.stderr);
}

#[test]
fn move_into_a_directory_that_is_not_a_mounted_vault_writes_nothing_there() {
    // A bare directory (a mountpoint after an idle seal, say) would take
    // the PI in plaintext: refused before anything is scanned or moved.
    let src = tempfile::tempdir().unwrap();
    let bare = tempfile::tempdir().unwrap();
    let flagged = src.path().join("list.csv");
    std::fs::write(&flagged, "name,ssn\nAna Silva,536-22-1234\n").unwrap();
    let run = scan(
        &["--move-into", bare.path().to_str().unwrap()],
        &[src.path()],
    );
    assert_eq!(run.code, 2, "{}", run.stderr);
    assert!(
        run.stderr.contains("not inside a mounted pivault vault"),
        "{}",
        run.stderr
    );
    assert_eq!(std::fs::read_dir(bare.path()).unwrap().count(), 0);
    assert!(flagged.exists(), "original left in place");
    let run = scan(&["--move-into", "/no/such/vault"], &[src.path()]);
    assert_eq!(run.code, 2);
    assert!(run.stderr.contains("/no/such/vault"), "{}", run.stderr);
}

#[test]
fn a_malformed_documents_error_never_quotes_its_text() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broken.docx");
    let mut z = zip::ZipWriter::new(std::fs::File::create(&path).unwrap());
    let opts = zip::write::SimpleFileOptions::default();
    z.start_file("word/document.xml", opts).unwrap();
    use std::io::Write as _;
    z.write_all(b"<w:document><w:body><w:p><w:t>card</w:t-4539148803436467></w:p>")
        .unwrap();
    z.finish().unwrap();
    let run = scan(&["--json"], &[dir.path()]);
    assert!(
        run.stderr.contains("broken.docx: not scanned"),
        "{}",
        run.stderr
    );
    assert!(
        !run.stderr.contains("4539") && !run.stderr.contains("3436467"),
        "the error quotes the document: {}",
        run.stderr
    );
}

#[test]
fn unreadable_documents_are_skipped_with_exit_3_and_binaries_are_skipped() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("broken.docx"),
        "SSN 536-22-1234 but not a zip",
    )
    .unwrap();
    std::fs::write(dir.path().join("broken.pdf"), "%PDF-1.4 truncated").unwrap();
    std::fs::write(dir.path().join("blob.bin"), b"\0\x01SSN 536-22-1234\0").unwrap();
    let run = scan(&["--json"], &[dir.path()]);
    // Nothing found, but not everything could be read: 3, not 0.
    assert_eq!(run.code, 3, "{}", run.stderr);
    let mut skipped: Vec<String> = all_json_lines(&run.stdout)
        .iter()
        .map(|v| {
            assert_eq!(
                (v["type"].as_str(), v["status"].as_str()),
                (Some("status"), Some("skipped")),
                "{v}"
            );
            assert!(
                v["reason"]
                    .as_str()
                    .unwrap()
                    .starts_with("not scanned: cannot read this"),
                "{v}"
            );
            rel(dir.path(), v)
        })
        .collect();
    skipped.sort();
    assert_eq!(skipped, ["broken.docx", "broken.pdf"]);
    assert!(
        run.stderr.contains("2 document(s) not scanned: "),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("broken.docx: not scanned"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("broken.pdf: not scanned"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("1 binary file(s) skipped"),
        "{}",
        run.stderr
    );
    assert!(!run.stderr.contains("536-22-1234"), "{}", run.stderr);
    assert!(!run.stdout.contains("536-22-1234"), "{}", run.stdout);
}

/// PI a workbook holds outside its displayed cells (issue 20 point 1):
/// a shared string no cell shows, and the document properties. Found,
/// each named by the part it is in, masked.
#[test]
fn pi_outside_the_displayed_cells_of_a_workbook_is_found() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let mut z = zip::ZipWriter::new(std::fs::File::create(dir.path().join("book.xlsx")).unwrap());
    let o = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, body) in [
        (
            "xl/workbook.xml",
            r#"<workbook><sheets><sheet name="Totals" sheetId="1"/></sheets></workbook>"#,
        ),
        (
            "xl/sharedStrings.xml",
            "<sst><si><t>total</t></si><si><t>SSN 536-22-1234</t></si></sst>",
        ),
        (
            "xl/worksheets/sheet1.xml",
            r#"<worksheet><sheetData><row r="1"><c r="A1" t="s"><v>0</v></c></row></sheetData></worksheet>"#,
        ),
        (
            "docProps/core.xml",
            "<coreProperties><description>SSN 536-22-9876</description></coreProperties>",
        ),
    ] {
        z.start_file(name, o).unwrap();
        z.write_all(body.as_bytes()).unwrap();
    }
    z.finish().unwrap();
    let run = scan(&["--json"], &[dir.path()]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    let found = json_lines(&run.stdout);
    assert_eq!(found.len(), 2, "{found:?}");
    let text = run.stdout.clone();
    assert!(text.contains("strings no cell shows"), "{text}");
    assert!(text.contains("docProps/core.xml"), "{text}");
    assert!(
        !text.contains("536-22-1234") && !text.contains("536-22-9876"),
        "unmasked: {text}"
    );
}
