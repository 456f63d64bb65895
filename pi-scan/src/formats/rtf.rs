//! RTF, read by a small text extractor of its own (no maintained Rust
//! crate extracts RTF text): groups and control words are parsed, and
//!
//! * text, `\par`/`\line`/`\row`/`\sect`/`\page` (line breaks),
//!   `\tab`/`\cell` (tabs), `\'hh` (a byte in the document's code page,
//!   `\ansicpg`, decoded with `encoding_rs`; Windows-1252 by default),
//!   `\uN` (a Unicode character, its `\ucN` fallback characters skipped)
//!   and the escaped `\{ \} \\ \~ \_` are kept;
//! * headers, footers, footnotes (`\footnote`, and `\*\footnote` as
//!   LibreOffice writes it, endnotes too), the document information
//!   (`\info`: title, subject, author, comments), user-defined properties
//!   (`\*\userprops`: names and values), comments (`\*\annotation` and
//!   their author `\*\atnauthor`), the text of shapes and text boxes
//!   (`\shptxt` inside `\*\shpinst`; the shape's properties, `\sp`, are
//!   not text) and hidden text (`\v`: formatting is not followed, so
//!   hidden text reads like any other) are read;
//! * tables of fonts, colours, styles, lists and revisions, pictures and
//!   embedded objects' data (`\pict`, `\objdata`, `\bin`), field
//!   instructions and every other `\*` destination the reader does not
//!   know are skipped, as RTF readers must.
//!
//! Not read: the text of embedded objects (an OLE spreadsheet inside the
//! document: its `\result` picture is skipped too).

use super::Part;
use crate::detect::Layout;

/// Destinations whose contents are not text.
const SKIP: &[&[u8]] = &[
    b"fonttbl",
    b"colortbl",
    b"stylesheet",
    b"listtable",
    b"listoverridetable",
    b"revtbl",
    b"rsidtbl",
    b"generator",
    b"pict",
    b"objdata",
    b"objclass",
    b"fldinst",
    b"themedata",
    b"colorschememapping",
    b"datastore",
    b"latentstyles",
    b"xmlnstbl",
    b"filetbl",
    b"bkmkstart",
    b"bkmkend",
    b"creatim",
    b"revtim",
    b"printim",
    b"buptim",
    b"sp",
];

/// `\*` destinations that hold text worth reading.
const STARRED_TEXT: &[&[u8]] = &[
    b"annotation",
    b"atnauthor",
    b"footnote",
    b"userprops",
    b"shpinst",
];

/// Destinations that are a text of their own: a line break ends them, so
/// that a title does not run into the body ("4245Employee").
const OWN_LINE: &[&[u8]] = &[
    b"title",
    b"subject",
    b"author",
    b"operator",
    b"keywords",
    b"comment",
    b"doccomm",
    b"company",
    b"manager",
    b"category",
    b"header",
    b"headerl",
    b"headerr",
    b"headerf",
    b"footer",
    b"footerl",
    b"footerr",
    b"footerf",
    b"footnote",
    b"annotation",
    b"atnauthor",
    b"propname",
    b"staticval",
    b"shptxt",
];

#[derive(Clone, Copy)]
struct State {
    skip: bool,
    uc: usize,
    /// This group is an [`OWN_LINE`] destination.
    own_line: bool,
}

/// The text of an RTF document, as one part.
pub(crate) fn read(bytes: &[u8]) -> Result<Vec<Part>, String> {
    if !bytes.starts_with(b"{\\rtf") {
        return Err("not an RTF document (no {\\rtf header)".into());
    }
    let mut out = Text::default();
    let mut stack: Vec<State> = Vec::new();
    let mut st = State {
        skip: false,
        uc: 1,
        own_line: false,
    };
    let mut starred = false;
    let mut fallback = 0usize;
    let mut i = 0usize;
    while i < bytes.len() {
        let b = bytes[i];
        i += 1;
        match b {
            b'{' => {
                stack.push(st);
                st.own_line = false;
                starred = false;
                fallback = 0;
            }
            b'}' => {
                if st.own_line && !st.skip {
                    out.push(b'\n');
                }
                st = stack.pop().unwrap_or(st);
                fallback = 0;
            }
            b'\r' | b'\n' => {}
            b'\\' => {
                let Some(&c) = bytes.get(i) else { break };
                if c.is_ascii_alphabetic() {
                    let start = i;
                    while bytes.get(i).is_some_and(u8::is_ascii_alphabetic) {
                        i += 1;
                    }
                    let word = &bytes[start..i];
                    let nstart = i;
                    if bytes.get(i) == Some(&b'-') {
                        i += 1;
                    }
                    while bytes.get(i).is_some_and(u8::is_ascii_digit) {
                        i += 1;
                    }
                    let param: Option<i64> = std::str::from_utf8(&bytes[nstart..i])
                        .ok()
                        .and_then(|s| s.parse().ok());
                    if bytes.get(i) == Some(&b' ') {
                        i += 1;
                    }
                    if starred {
                        starred = false;
                        if !STARRED_TEXT.contains(&word) {
                            st.skip = true;
                        }
                    }
                    if SKIP.contains(&word) {
                        st.skip = true;
                    }
                    if word == b"bin" {
                        let n = usize::try_from(param.unwrap_or(0)).unwrap_or(0);
                        i = i.saturating_add(n).min(bytes.len());
                        continue;
                    }
                    if st.skip {
                        continue;
                    }
                    if OWN_LINE.contains(&word) {
                        st.own_line = true;
                    }
                    fallback = 0;
                    match word {
                        b"par" | b"line" | b"row" | b"sect" | b"page" => out.push(b'\n'),
                        b"tab" | b"cell" => out.push(b'\t'),
                        b"emdash" | b"endash" => out.push(b'-'),
                        b"lquote" | b"rquote" => out.push(b'\''),
                        b"ldblquote" | b"rdblquote" => out.push(b'"'),
                        b"uc" => st.uc = usize::try_from(param.unwrap_or(1)).unwrap_or(1),
                        b"ansicpg" => out.codepage(param.unwrap_or(1252)),
                        b"u" => {
                            let n = param.unwrap_or(0);
                            let n = if n < 0 { n + 65536 } else { n };
                            out.unicode(u32::try_from(n).unwrap_or(0xFFFD));
                            fallback = st.uc;
                        }
                        _ => {}
                    }
                } else {
                    i += 1;
                    match c {
                        b'*' => starred = true,
                        b'\'' => {
                            let hex = bytes.get(i..i + 2).and_then(|h| {
                                u8::from_str_radix(std::str::from_utf8(h).ok()?, 16).ok()
                            });
                            i = (i + 2).min(bytes.len());
                            if let Some(h) = hex.filter(|_| !st.skip) {
                                if fallback > 0 {
                                    fallback -= 1;
                                } else {
                                    out.byte(h);
                                }
                            }
                        }
                        _ if st.skip => {}
                        b'{' | b'}' | b'\\' => out.push(c),
                        b'~' => out.push(b' '),
                        b'_' => out.push(b'-'),
                        b'\r' | b'\n' => out.push(b'\n'),
                        _ => {}
                    }
                }
            }
            _ if st.skip => {}
            _ if fallback > 0 => fallback -= 1,
            _ => out.byte(b),
        }
    }
    Ok(vec![Part {
        name: None,
        text: out.finish(),
        layout: Layout::Plain,
    }])
}

/// Text being built: ASCII and decoded characters as UTF-8, with the
/// code-page bytes of `\'hh` (and raw 8-bit bytes) decoded in runs.
struct Text {
    out: Vec<u8>,
    pending: Vec<u8>,
    enc: &'static encoding_rs::Encoding,
}

impl Default for Text {
    fn default() -> Self {
        Text {
            out: Vec::new(),
            pending: Vec::new(),
            enc: encoding_rs::WINDOWS_1252,
        }
    }
}

impl Text {
    fn flush(&mut self) {
        if !self.pending.is_empty() {
            let (s, _) = self.enc.decode_without_bom_handling(&self.pending);
            self.out.extend_from_slice(s.as_bytes());
            self.pending.clear();
        }
    }

    fn push(&mut self, b: u8) {
        self.flush();
        self.out.push(b);
    }

    fn byte(&mut self, b: u8) {
        match b.is_ascii() && self.pending.is_empty() {
            true => self.out.push(b),
            false => self.pending.push(b),
        }
    }

    fn unicode(&mut self, c: u32) {
        self.flush();
        let c = char::from_u32(c).unwrap_or('\u{FFFD}');
        self.out
            .extend_from_slice(c.encode_utf8(&mut [0; 4]).as_bytes());
    }

    fn codepage(&mut self, cp: i64) {
        self.flush();
        let label = match cp {
            932 => "shift_jis".to_owned(),
            936 => "gbk".to_owned(),
            949 => "euc-kr".to_owned(),
            950 => "big5".to_owned(),
            10000 => "macintosh".to_owned(),
            cp => format!("windows-{cp}"),
        };
        self.enc =
            encoding_rs::Encoding::for_label(label.as_bytes()).unwrap_or(encoding_rs::WINDOWS_1252);
    }

    fn finish(mut self) -> Vec<u8> {
        self.flush();
        self.out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(rtf: &str) -> String {
        String::from_utf8(read(rtf.as_bytes()).unwrap().remove(0).text).unwrap()
    }

    #[test]
    fn tables_are_skipped_and_escapes_decoded() {
        let rtf = r"{\rtf1\ansi\ansicpg1252{\fonttbl{\f0 Times 536-22-0000;}}{\colortbl;\red0;}{\*\generator x 1;}{\info{\title Staff}{\creatim\yr2024}}Jos\'e9 N\u250?\u241 ?ez\par SSN\~536-22-1234\tab {\*\atnauthor Bo Chen}{\*\annotation card 4539}{\*\unknown 999-99-9999}{\v hidden S12345678}\line{\pict\bin4 }}}}} end\{x\}}";
        assert_eq!(
            text(rtf),
            "Staff\nJosé Núñez\nSSN 536-22-1234\tBo Chen\ncard 4539\nhidden S12345678\n end{x}"
        );
    }

    /// As LibreOffice writes them: a starred footnote, a text box (its
    /// shape properties are numbers, not text) and a custom property.
    #[test]
    fn starred_footnotes_shape_text_and_user_properties_are_read() {
        let rtf = r"{\rtf1\ansi{\*\userprops{\propname Reviewer}\proptype30{\staticval SSN 536-22-1234}}Body.{\super \chftn{\*\footnote \chftn\pard{\loch Card 4539 1488 0343 6467}}}\par{\shp{\*\shpinst\shpleft0{\sp{\sn posh}{\sv 72390}}{\shptxt\pard{\loch Licence S12345678}\par}}}}";
        assert_eq!(
            text(rtf),
            "Reviewer\nSSN 536-22-1234\nBody.Card 4539 1488 0343 6467\n\nLicence S12345678\n\n"
        );
    }

    #[test]
    fn not_rtf_is_refused() {
        assert!(read(b"plain text").is_err());
    }
}
