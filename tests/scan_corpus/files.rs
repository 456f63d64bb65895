//! Minimal but valid Office Open XML (.docx, .xlsx, .pptx) and PDF files,
//! written by hand so that the tests depend on no document library.

use std::io::Write;
use std::path::Path;

/// Writes a zip with the given (name, content) entries, deflated.
fn write_zip(path: &Path, entries: &[(&str, String)]) {
    let mut z = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated);
    for (name, body) in entries {
        z.start_file(*name, opts).unwrap();
        z.write_all(body.as_bytes()).unwrap();
    }
    z.finish().unwrap();
}

fn xml_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
        .replace('\'', "&apos;")
}

/// A minimal .docx: one paragraph per line.
pub fn write_docx(path: &Path, lines: &[String]) {
    let body: String = lines
        .iter()
        .map(|l| {
            format!(
                r#"<w:p><w:r><w:t xml:space="preserve">{}</w:t></w:r></w:p>"#,
                xml_escape(l)
            )
        })
        .collect();
    write_zip(
        path,
        &[
            ("[Content_Types].xml", r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/word/document.xml" ContentType="application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>"#.into()),
            ("_rels/.rels", r#"<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/></Relationships>"#.into()),
            ("word/document.xml", format!(r#"<?xml version="1.0" encoding="UTF-8" standalone="yes"?><w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>{body}</w:body></w:document>"#)),
        ],
    );
}

/// A minimal .xlsx: shared strings for text cells, numbers inline.
pub fn write_xlsx(path: &Path, rows: &[Vec<String>]) {
    let mut shared: Vec<String> = Vec::new();
    let mut sheet = String::new();
    for (r, row) in rows.iter().enumerate() {
        sheet.push_str(&format!(r#"<row r="{}">"#, r + 1));
        for (c, v) in row.iter().enumerate() {
            let cref = format!("{}{}", char::from(b'A' + c as u8), r + 1);
            if !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()) && v.len() < 16 {
                sheet.push_str(&format!(r#"<c r="{cref}"><v>{v}</v></c>"#));
            } else {
                shared.push(v.clone());
                sheet.push_str(&format!(
                    r#"<c r="{cref}" t="s"><v>{}</v></c>"#,
                    shared.len() - 1
                ));
            }
        }
        sheet.push_str("</row>");
    }
    let sst: String = shared
        .iter()
        .map(|s| format!("<si><t>{}</t></si>", xml_escape(s)))
        .collect();
    let ns = "http://schemas.openxmlformats.org/spreadsheetml/2006/main";
    write_zip(
        path,
        &[
            ("[Content_Types].xml", r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/></Types>"#.into()),
            ("xl/workbook.xml", format!(r#"<workbook xmlns="{ns}"><sheets><sheet name="People" sheetId="1"/></sheets></workbook>"#)),
            ("xl/sharedStrings.xml", format!(r#"<sst xmlns="{ns}" count="{0}" uniqueCount="{0}">{sst}</sst>"#, shared.len())),
            ("xl/worksheets/sheet1.xml", format!(r#"<worksheet xmlns="{ns}"><sheetData>{sheet}</sheetData></worksheet>"#)),
        ],
    );
}

/// A minimal .pptx: one slide per group of lines.
pub fn write_pptx(path: &Path, slides: &[Vec<String>]) {
    let mut entries = vec![(
        "[Content_Types].xml".to_string(),
        r#"<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types"><Default Extension="xml" ContentType="application/xml"/></Types>"#.to_string(),
    )];
    for (i, lines) in slides.iter().enumerate() {
        let paras: String = lines
            .iter()
            .map(|l| format!("<a:p><a:r><a:t>{}</a:t></a:r></a:p>", xml_escape(l)))
            .collect();
        entries.push((
            format!("ppt/slides/slide{}.xml", i + 1),
            format!(r#"<p:sld xmlns:a="http://schemas.openxmlformats.org/drawingml/2006/main" xmlns:p="http://schemas.openxmlformats.org/presentationml/2006/main"><p:cSld><p:spTree><p:sp><p:txBody>{paras}</p:txBody></p:sp></p:spTree></p:cSld></p:sld>"#),
        ));
    }
    let refs: Vec<(&str, String)> = entries
        .iter()
        .map(|(n, b)| (n.as_str(), b.clone()))
        .collect();
    write_zip(path, &refs);
}

/// A minimal one-page PDF (Helvetica, WinAnsi) with a correct
/// cross-reference table. `flowing` false: one text object per line;
/// true: one text object, lines placed with `Td`, each line a `TJ` array
/// split in two with a small kerning (as many PDF writers do).
pub fn write_pdf(path: &Path, lines: &[String], flowing: bool) {
    let esc = |s: &str| {
        s.replace('\\', "\\\\")
            .replace('(', "\\(")
            .replace(')', "\\)")
    };
    let mut content = String::new();
    if flowing {
        content.push_str("BT /F1 9 Tf 40 800 Td\n");
        for l in lines {
            let cut = l.len() / 2;
            let cut = (cut..l.len())
                .find(|&i| l.is_char_boundary(i))
                .unwrap_or(l.len());
            content.push_str(&format!(
                "[({}) -15 ({})] TJ 0 -12 Td\n",
                esc(&l[..cut]),
                esc(&l[cut..])
            ));
        }
        content.push_str("ET\n");
    } else {
        for (i, l) in lines.iter().enumerate() {
            content.push_str(&format!(
                "BT /F1 9 Tf 40 {} Td ({}) Tj ET\n",
                800 - 12 * i as i64,
                esc(l)
            ));
        }
    }
    let objects = [
        "<< /Type /Catalog /Pages 2 0 R >>".to_string(),
        "<< /Type /Pages /Kids [3 0 R] /Count 1 >>".to_string(),
        "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 842] /Contents 4 0 R /Resources << /Font << /F1 5 0 R >> >> >>".to_string(),
        format!("<< /Length {} >>\nstream\n{content}endstream", content.len()),
        "<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica /Encoding /WinAnsiEncoding >>".to_string(),
    ];
    let mut out = b"%PDF-1.4\n".to_vec();
    let mut offsets = Vec::new();
    for (i, o) in objects.iter().enumerate() {
        offsets.push(out.len());
        out.extend_from_slice(format!("{} 0 obj\n{o}\nendobj\n", i + 1).as_bytes());
    }
    let xref = out.len();
    out.extend_from_slice(
        format!("xref\n0 {}\n0000000000 65535 f \n", objects.len() + 1).as_bytes(),
    );
    for off in offsets {
        out.extend_from_slice(format!("{off:010} 00000 n \n").as_bytes());
    }
    out.extend_from_slice(
        format!(
            "trailer\n<< /Size {} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n",
            objects.len() + 1
        )
        .as_bytes(),
    );
    std::fs::write(path, out).unwrap();
}
