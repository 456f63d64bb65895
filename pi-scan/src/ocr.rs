//! Text in images, read by Tesseract (issue 20 point 4): PNG, JPEG and
//! TIFF files, known by their first bytes, and the images of PDF pages
//! that hold no text (a scanned form, a photographed card).
//!
//! Tesseract is run as a program (`tesseract stdin stdout tsv`), found on
//! PATH when the scan starts, so that pivault links no OCR library and
//! works without one: without it, or with `--no-ocr`, an image file is
//! reported "not scanned: no OCR". The image is handed over on its
//! standard input, never written to a file, so no copy of a document's
//! PI is left anywhere; the program is killed when the file's time limit
//! passes. Its TSV output gives each word with its confidence (0-100):
//! a finding's OCR confidence is the lowest among the words that hold
//! its number.

use crate::detect::{scan_text, Layout, TextFinding};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

/// Most TSV output read from one run (a page of words is a few KiB).
const MAX_OUTPUT: u64 = 16 << 20;

/// Whether images are read, and if not, why.
#[derive(Clone, Debug)]
pub(crate) enum Ocr {
    /// Tesseract, at this path.
    On(PathBuf),
    /// Not read: why (`--no-ocr`, not installed).
    Off(&'static str),
}

impl Ocr {
    /// Tesseract from PATH, unless `disabled`.
    pub(crate) fn find(disabled: bool) -> Self {
        if disabled {
            return Ocr::Off("--no-ocr");
        }
        let found = std::env::var_os("PATH").and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join("tesseract"))
                .find(|p| is_executable(p))
        });
        match found {
            Some(p) => Ocr::On(p),
            None => Ocr::Off("tesseract is not installed: Debian package tesseract-ocr"),
        }
    }
}

fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// True for the first bytes of a PNG, JPEG or TIFF image.
pub(crate) fn is_image(head: &[u8]) -> bool {
    head.starts_with(b"\x89PNG\r\n\x1a\n")
        || head.starts_with(b"\xff\xd8\xff")
        || head.starts_with(b"II*\0")
        || head.starts_with(b"MM\0*")
}

/// One word Tesseract read.
struct Word {
    /// 1-based line in the page's text.
    line: u64,
    digits: String,
    conf: f32,
}

/// A finding in an image and the confidence of the words holding it.
pub(crate) type OcrFinding = (TextFinding, f32);

/// The findings of one page of an image (None: a one-page image).
pub(crate) type OcrPage = (Option<u32>, Vec<OcrFinding>);

/// Reads the text of `image` (any format Tesseract reads: PNG, JPEG,
/// TIFF, PNM) and scans it: findings by page (None for a one-page image),
/// each with its OCR confidence. Stops at `deadline`.
pub(crate) fn read(
    program: &Path,
    image: &[u8],
    deadline: Option<Instant>,
) -> Result<Vec<OcrPage>, String> {
    let tsv = run(program, image, deadline)?;
    let pages = parse(&tsv);
    let many = pages.len() > 1;
    Ok(pages
        .into_iter()
        .map(|(page, text, words)| {
            let found = scan_text(text.as_bytes(), Layout::Plain)
                .into_iter()
                .map(|f| {
                    // Two decimals: Tesseract's own precision is not more.
                    let conf = (confidence(&f, &words) * 100.0).round() / 100.0;
                    (f, conf)
                })
                .collect();
            (many.then_some(page), found)
        })
        .collect())
}

/// Runs Tesseract on `image` (its standard input) and returns its TSV.
fn run(program: &Path, image: &[u8], deadline: Option<Instant>) -> Result<String, String> {
    let mut child = Command::new(program)
        .args(["stdin", "stdout", "tsv"])
        // One thread each: the scan already runs a worker per CPU.
        .env("OMP_THREAD_LIMIT", "1")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("cannot run {}: {e}", program.display()))?;
    let mut stdin = child.stdin.take();
    let mut stdout = child.stdout.take();
    let (wrote, output) = std::thread::scope(|s| {
        let writer = s.spawn(|| {
            // A program that exits early closes the pipe: not our error.
            let _ = stdin.as_mut().map(|w| w.write_all(image));
            drop(stdin.take());
        });
        let reader = s.spawn(|| {
            let mut out = Vec::new();
            if let Some(r) = stdout.take() {
                let _ = r.take(MAX_OUTPUT).read_to_end(&mut out);
            }
            out
        });
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break Ok(status),
                Ok(None) if deadline.is_some_and(|d| Instant::now() >= d) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err("OCR took longer than the per-file time limit".to_owned());
                }
                Ok(None) => std::thread::sleep(Duration::from_millis(10)),
                Err(e) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    break Err(format!("OCR failed: {e}"));
                }
            }
        };
        let _ = writer.join();
        (status, reader.join().unwrap_or_default())
    });
    match wrote? {
        s if s.success() => Ok(String::from_utf8_lossy(&output).into_owned()),
        // Tesseract's messages are not passed on: they may name content.
        s => Err(format!(
            "tesseract could not read the image (exit status {})",
            s.code().unwrap_or(-1)
        )),
    }
}

/// Pages of Tesseract's TSV: (page number, text with one line per line
/// read, the words with digits).
fn parse(tsv: &str) -> Vec<(u32, String, Vec<Word>)> {
    let mut pages: Vec<(u32, String, Vec<Word>)> = Vec::new();
    let mut at: Option<(u32, [u32; 3])> = None;
    let mut line = 0u64;
    for row in tsv.lines().skip(1) {
        let c: Vec<&str> = row.splitn(12, '\t').collect();
        let [level, page, block, par, ln, _, _, _, _, _, conf, text] = c[..] else {
            continue;
        };
        let num = |s: &str| s.parse::<u32>().unwrap_or(0);
        if level != "5" || text.trim().is_empty() {
            continue;
        }
        let page = num(page);
        let key = [num(block), num(par), num(ln)];
        if pages.last().is_none_or(|p| p.0 != page) {
            pages.push((page, String::new(), Vec::new()));
            at = None;
            line = 0;
        }
        let Some((_, out, words)) = pages.last_mut() else {
            continue;
        };
        match at {
            Some((_, k)) if k == key => out.push(' '),
            _ => {
                if line > 0 {
                    out.push('\n');
                }
                line += 1;
            }
        }
        at = Some((page, key));
        out.push_str(text.trim());
        let digits: String = text.chars().filter(char::is_ascii_digit).collect();
        if !digits.is_empty() {
            words.push(Word {
                line,
                digits,
                conf: conf.parse().unwrap_or(0.0),
            });
        }
    }
    pages
}

/// The lowest confidence of the words on the finding's line whose digits
/// make up its number (all the line's words with digits when no run of
/// them does).
fn confidence(f: &TextFinding, words: &[Word]) -> f32 {
    let on_line: Vec<&Word> = words.iter().filter(|w| w.line == f.line).collect();
    let want = f
        .masked
        .chars()
        .filter(|c| *c == '*' || c.is_ascii_digit())
        .count();
    let tail: String = f.masked.chars().filter(char::is_ascii_digit).collect();
    for start in 0..on_line.len() {
        let mut digits = String::new();
        for end in start..on_line.len() {
            digits.push_str(&on_line[end].digits);
            if digits.len() >= want {
                if digits.len() == want && digits.ends_with(&tail) {
                    return min_conf(&on_line[start..=end]);
                }
                break;
            }
        }
    }
    min_conf(&on_line)
}

fn min_conf(words: &[&Word]) -> f32 {
    words.iter().map(|w| w.conf).reduce(f32::min).unwrap_or(0.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    const TSV: &str = "level\tpage_num\tblock_num\tpar_num\tline_num\tword_num\tleft\ttop\twidth\theight\tconf\ttext
1\t1\t0\t0\t0\t0\t0\t0\t100\t100\t-1\t
5\t1\t1\t1\t1\t1\t0\t0\t10\t10\t96.5\tEmployee:
5\t1\t1\t1\t1\t2\t0\t0\t10\t10\t95.1\tAna
5\t1\t1\t1\t1\t3\t0\t0\t10\t10\t94.0\tSilva
5\t1\t1\t1\t2\t1\t0\t0\t10\t10\t91.0\tSSN:
5\t1\t1\t1\t2\t2\t0\t0\t10\t10\t88.25\t536-22-1234
5\t1\t1\t1\t3\t1\t0\t0\t10\t10\t90.0\tCall
5\t1\t1\t1\t3\t2\t0\t0\t10\t10\t60.0\t617-555-0100
";

    #[test]
    fn tsv_words_become_lines_and_findings_carry_their_words_confidence() {
        let pages = parse(TSV);
        assert_eq!(pages.len(), 1);
        assert_eq!(
            pages[0].1,
            "Employee: Ana Silva\nSSN: 536-22-1234\nCall 617-555-0100"
        );
        let found = scan_text(pages[0].1.as_bytes(), Layout::Plain);
        assert_eq!(found.len(), 1);
        assert_eq!(confidence(&found[0], &pages[0].2), 88.25);
    }

    /// A number read as three words (spaced SSN): the lowest of the three.
    #[test]
    fn a_number_split_in_words_takes_the_lowest_confidence() {
        let words =
            [("536", 90.0), ("22", 70.5), ("1234", 95.0), ("42", 10.0)].map(|(d, conf)| Word {
                line: 2,
                digits: d.into(),
                conf,
            });
        let f = scan_text(b"Ana Silva\nSSN 536 22 1234 and 42\n", Layout::Plain);
        assert_eq!(confidence(&f[0], &words), 70.5);
    }

    #[test]
    fn images_are_known_by_their_first_bytes() {
        assert!(is_image(b"\x89PNG\r\n\x1a\n...."));
        assert!(is_image(b"\xff\xd8\xff\xe0..JFIF"));
        assert!(is_image(b"II*\0\x08\0"));
        assert!(!is_image(b"%PDF-1.4"));
        assert!(!is_image(b"PNG"));
    }

    /// A program that runs past the deadline is killed and the image
    /// reported, soon after the deadline.
    #[test]
    fn ocr_past_the_deadline_is_killed() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let slow = dir.path().join("tesseract");
        std::fs::write(&slow, "#!/bin/sh\nexec sleep 30\n").unwrap();
        std::fs::set_permissions(&slow, std::fs::Permissions::from_mode(0o755)).unwrap();
        let started = Instant::now();
        let deadline = Some(started + Duration::from_millis(300));
        let e = read(&slow, &[0; 1 << 20], deadline).unwrap_err();
        assert_eq!(e, "OCR took longer than the per-file time limit");
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "{:?}",
            started.elapsed()
        );
    }

    /// A missing program is an error naming it, not a panic.
    #[test]
    fn a_missing_program_is_an_error() {
        let e = read(Path::new("/nonexistent/tesseract"), b"x", None).unwrap_err();
        assert!(e.starts_with("cannot run /nonexistent/tesseract"), "{e}");
    }
}
