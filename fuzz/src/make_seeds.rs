//! Writes the seed corpora of the fuzz targets into `fuzz/corpus/<target>/`
//! from the project's own fixtures: the keystore examples of
//! docs/FORMAT.md and the format-2 fixture vault, content files, names,
//! directory ID files, symlinks and attributes sealed under the fixed fuzz
//! keyring, recovery keys, audit records, the gateway configuration of
//! docs/PROXY.md, request heads, and documents made like the scanner
//! tests' corpus. Run from `fuzz/`: `cargo run --bin make_seeds`.

use std::fs;
use std::path::{Path, PathBuf};
use vault_core::{ContentFile, DirIdFile, NameContext, XattrObject};

fn put(target: &str, name: &str, bytes: &[u8]) {
    let dir = PathBuf::from("corpus").join(target);
    fs::create_dir_all(&dir).unwrap();
    fs::write(dir.join(name), bytes).unwrap();
}

/// The blocks of ```` ```<tag> ```` fenced blocks of a document.
fn fenced(doc: &str, tag: &str) -> Vec<String> {
    let open = format!("```{tag}\n");
    let mut out = Vec::new();
    let mut rest = doc;
    while let Some(i) = rest.find(&open) {
        let body = &rest[i + open.len()..];
        let end = body.find("```").unwrap_or(body.len());
        out.push(body[..end].to_string());
        rest = &body[end..];
    }
    out
}

fn main() {
    let root = Path::new("..");
    let format = fs::read_to_string(root.join("docs/FORMAT.md")).unwrap();
    for (i, k) in fenced(&format, "pivault-keystore")
        .iter()
        .chain(fenced(&format, "pivault-keystore-3").iter())
        .enumerate()
    {
        put("keystore", &format!("doc-{i}"), k.as_bytes());
    }
    let v2 = root.join("tests/fixtures/keystore-format-2/vault");
    put(
        "keystore",
        "format-2",
        &fs::read(v2.join("pivault.keystore")).unwrap(),
    );
    for (i, line) in fs::read_to_string(v2.join("audit.log"))
        .unwrap()
        .lines()
        .enumerate()
    {
        put("audit_record", &format!("fixture-{i}"), line.as_bytes());
    }
    put(
        "keyring",
        "example-3",
        &hex::decode(pivault_fuzz::KEYRING3_HEX).unwrap(),
    );
    put(
        "keyring",
        "fixed",
        pivault_fuzz::keyring().to_bytes().expose(),
    );

    for suite in [0u8, 1] {
        let c = pivault_fuzz::cipher(suite);
        let at = NameContext::new(&pivault_fuzz::DIR_ID, pivault_fuzz::NAME);
        for len in [0u64, 1, 4095, 4096, 4097, 3 * 4096 + 5] {
            let mut f = ContentFile::create(Vec::new(), &c, at).unwrap();
            let data: Vec<u8> = (0..len).map(pivault_fuzz::pattern).collect();
            f.write_at(0, &data).unwrap();
            let geo = vault_core::Geometry::new(f.header().suite);
            let mut bytes = vec![suite];
            bytes.extend_from_slice(&f.into_store());
            put("content", &format!("s{suite}-{len}"), &bytes);
            // The same file as a killed grow leaves it: zeros to the length
            // of 5000 more bytes (FORMAT.md §6.4).
            bytes.resize(1 + geo.ciphertext_len(len + 5000) as usize, 0);
            put("content", &format!("s{suite}-{len}-grow"), &bytes);
        }
    }
    let c = pivault_fuzz::cipher(0);
    for (i, name) in [b"a".to_vec(), b"report.xlsx".to_vec(), vec![b'L'; 200]]
        .iter()
        .enumerate()
    {
        let enc = c.names().encrypt(&pivault_fuzz::DIR_ID, name).unwrap();
        let full = match enc {
            vault_core::EncodedName::Short(s) => s,
            vault_core::EncodedName::Long { full, .. } => full,
        };
        put("names", &format!("n{i}"), full.as_bytes());
    }
    let at = NameContext::new(&pivault_fuzz::DIR_ID, pivault_fuzz::NAME);
    put(
        "dirid",
        "d0",
        &DirIdFile::with_id(&c, [0x55; 16], at).to_bytes(),
    );
    put(
        "symlink",
        "l0",
        c.seal_symlink(
            &pivault_fuzz::DIR_ID,
            pivault_fuzz::NAME,
            pivault_fuzz::LINK_TARGET,
        )
        .unwrap()
        .as_bytes(),
    );
    let x = c.xattr_cipher().unwrap();
    let obj = XattrObject::File(&pivault_fuzz::FILE_ID);
    put(
        "xattr",
        "name",
        x.host_name(obj, pivault_fuzz::XATTR_NAME)
            .unwrap()
            .as_bytes(),
    );
    put(
        "xattr",
        "value",
        &x.seal_value(obj, pivault_fuzz::XATTR_NAME, pivault_fuzz::XATTR_VALUE)
            .unwrap(),
    );
    for i in 0..3 {
        let k = keys::RecoveryKey::generate().unwrap();
        put("recovery_key", &format!("k{i}"), k.encode().as_bytes());
    }
    put(
        "share_file",
        "s0",
        b"pivault-share 1\n{\"vault_id\":\"cHFyc3R1dnd4eXp7fH1+fw==\",\"slot\":1,\"set\":\"0011223344556677\",\"threshold\":2,\"count\":3,\"x\":1,\"y\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\"}\nsha256 0000000000000000000000000000000000000000000000000000000000000000\n",
    );
    let proxy = fs::read_to_string(root.join("docs/PROXY.md")).unwrap();
    for (i, t) in fenced(&proxy, "toml").iter().enumerate() {
        // Fenced blocks inside lists are indented.
        let t: String = t
            .lines()
            .map(|l| l.trim_start().to_string() + "\n")
            .collect();
        put("proxy_config", &format!("doc-{i}"), t.as_bytes());
    }
    for (i, r) in [
        "GET / HTTP/1.1\r\nHost: app.example\r\n\r\n",
        "GET /a/./b/../c%2e%2e/d HTTP/1.1\r\nHost: app.example\r\nX-Pivault-Client-Cn: forged\r\n\r\n",
        "POST /upload HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n",
        "CONNECT example.com:443 HTTP/1.1\r\nHost: example.com\r\n\r\n",
        "GET /..%2f..%2fetc/passwd HTTP/1.0\r\n\r\n",
    ]
    .iter()
    .enumerate()
    {
        put("proxy_request", &format!("r{i}"), r.as_bytes());
    }
    let text = "name,ssn,card\nJane Roe,078-05-1120,4111 1111 1111 1111\nJohn Doe,219-09-9999,5500 0000 0000 0004\n";
    put("scan_text", "csv", text.as_bytes());
    put(
        "scan_text",
        "prose",
        b"Employee: Jane Roe\nSSN 078-05-1120, license S123-4567-8901, account 000123456789\n",
    );
    let tmp = std::env::temp_dir().join(format!("pivault-fuzz-seeds-{}", std::process::id()));
    fs::create_dir_all(&tmp).unwrap();
    let lines: Vec<String> = text.lines().map(str::to_string).collect();
    let rows: Vec<Vec<String>> = lines
        .iter()
        .map(|l| l.split(',').map(str::to_string).collect())
        .collect();
    files::write_docx(&tmp.join("d.docx"), &lines);
    files::write_xlsx(&tmp.join("x.xlsx"), &rows);
    files::write_pptx(&tmp.join("p.pptx"), &[lines.clone()]);
    files::write_pdf(&tmp.join("f.pdf"), &lines, false);
    for (kind, f) in [(0u8, "d.docx"), (1, "x.xlsx"), (2, "p.pptx")] {
        let mut b = vec![kind];
        b.extend_from_slice(&fs::read(tmp.join(f)).unwrap());
        put("office", f, &b);
    }
    put("pdf", "f.pdf", &fs::read(tmp.join("f.pdf")).unwrap());
    // The LibreOffice-made record of tests/scan_damaged.rs, whole and with
    // its cross-reference table cut off (so the fuzzer starts inside the
    // recovery of damaged files too).
    let record =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/scan_formats/record.pdf");
    if let Ok(pdf) = fs::read(record) {
        let xref = pdf
            .windows(6)
            .rposition(|w| w == b"\nxref\n")
            .unwrap_or(pdf.len());
        put("pdf", "record.pdf", &pdf);
        put("pdf", "record-no-xref.pdf", &pdf[..xref]);
    }
    // The LibreOffice-made fixtures of tests/scan_formats.rs, and a zip
    // holding the docx, each behind the byte that picks its reader.
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/scan_formats");
    for (kind, f) in [
        (6u8, "letter.odt"),
        (7, "staff.ods"),
        (9, "letter.rtf"),
        (10, "letter.doc"),
        (11, "staff.xls"),
    ] {
        if let Ok(bytes) = fs::read(fixtures.join(f)) {
            let mut b = vec![kind];
            b.extend_from_slice(&bytes);
            put("formats", f, &b);
        }
    }
    let mut b = vec![0u8];
    b.extend_from_slice(&fs::read(tmp.join("d.docx")).unwrap());
    put("formats", "d.zip", &b);
    let _ = fs::remove_dir_all(&tmp);
    eprintln!("seeds written under fuzz/corpus/");
}

#[path = "../../tests/scan_corpus/files.rs"]
#[allow(dead_code)]
mod files;
