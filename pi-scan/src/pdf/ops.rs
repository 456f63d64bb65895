//! A lenient reader of page content streams: operands and operators, one
//! pass, no backtracking. Where lopdf's parser stops at the first byte it
//! cannot read (and so loses the rest of the page), this one skips the
//! byte and goes on, as viewers do: a stream damaged in one place still
//! shows the text on both sides of the damage. Inline image data is
//! skipped whole. The same reader reads the dictionary of an object that
//! lopdf cannot parse ([`value`]): the entries around a damaged byte are
//! kept.

use lopdf::{Dictionary, Object, StringFormat};

/// Deepest nesting of arrays and dictionaries read; deeper is skipped.
const MAX_NESTING: usize = 32;
/// Most operands kept before an operator (a CMap section has up to 300);
/// more is garbage, dropped.
const MAX_OPERANDS: usize = 1024;

/// Calls `op(operator, operands)` for each operator in `data`.
pub(crate) fn each(data: &[u8], mut op: impl FnMut(&[u8], &[Object])) {
    let mut r = Reader { data, at: 0 };
    let mut operands: Vec<Object> = Vec::new();
    while let Some(tok) = r.token(0) {
        match tok {
            Tok::Value(v) => {
                if operands.len() == MAX_OPERANDS {
                    operands.clear();
                }
                operands.push(v);
            }
            Tok::Word(w) => {
                op(w, &operands);
                operands.clear();
                if w == b"ID" {
                    r.skip_inline_image();
                }
            }
            Tok::Close => {}
        }
    }
}

/// The first value in `data` (an object's body): a dictionary read
/// leniently, as [`each`] reads operands.
pub(crate) fn value(data: &[u8]) -> Option<Object> {
    let mut r = Reader { data, at: 0 };
    loop {
        match r.token(0)? {
            Tok::Value(v) => return Some(v),
            Tok::Word(_) | Tok::Close => {}
        }
    }
}

enum Tok<'a> {
    Value(Object),
    /// An operator (or a stray keyword).
    Word(&'a [u8]),
    /// A `]` or `>>` (ends an array or dictionary; stray otherwise).
    Close,
}

struct Reader<'a> {
    data: &'a [u8],
    at: usize,
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\r' | b'\x0c' | b'\0')
}

fn is_delim(b: u8) -> bool {
    matches!(
        b,
        b'(' | b')' | b'<' | b'>' | b'[' | b']' | b'{' | b'}' | b'/' | b'%'
    )
}

impl<'a> Reader<'a> {
    fn peek(&self) -> Option<u8> {
        self.data.get(self.at).copied()
    }

    /// The next token; None at the end.
    fn token(&mut self, depth: usize) -> Option<Tok<'a>> {
        loop {
            let b = self.peek()?;
            match b {
                _ if is_space(b) => self.at += 1,
                b'%' => {
                    while self.peek().is_some_and(|b| b != b'\n' && b != b'\r') {
                        self.at += 1;
                    }
                }
                b'(' => {
                    self.at += 1;
                    return Some(Tok::Value(Object::String(
                        self.literal(),
                        StringFormat::Literal,
                    )));
                }
                b'<' if self.data.get(self.at + 1) == Some(&b'<') => {
                    self.at += 2;
                    return Some(Tok::Value(Object::Dictionary(self.dict(depth))));
                }
                b'<' => {
                    self.at += 1;
                    return Some(Tok::Value(Object::String(
                        self.hex(),
                        StringFormat::Hexadecimal,
                    )));
                }
                b'>' if self.data.get(self.at + 1) == Some(&b'>') => {
                    self.at += 2;
                    return Some(Tok::Close);
                }
                b'[' => {
                    self.at += 1;
                    return Some(Tok::Value(Object::Array(self.array(depth))));
                }
                b']' => {
                    self.at += 1;
                    return Some(Tok::Close);
                }
                b'/' => {
                    self.at += 1;
                    return Some(Tok::Value(Object::Name(self.name())));
                }
                // Stray `)`, `>`, `{`, `}`: damage or PostScript; skipped.
                _ if is_delim(b) => self.at += 1,
                _ => {
                    let start = self.at;
                    while self.peek().is_some_and(|b| !is_space(b) && !is_delim(b)) {
                        self.at += 1;
                    }
                    let w = &self.data[start..self.at];
                    return Some(match number(w) {
                        Some(n) => Tok::Value(n),
                        None => match w {
                            b"true" => Tok::Value(Object::Boolean(true)),
                            b"false" => Tok::Value(Object::Boolean(false)),
                            b"null" => Tok::Value(Object::Null),
                            _ => Tok::Word(w),
                        },
                    });
                }
            }
        }
    }

    /// The values of an array, after its `[`, to its `]` (or the end);
    /// `N G R` is a reference.
    fn array(&mut self, depth: usize) -> Vec<Object> {
        let mut items = Vec::new();
        if depth >= MAX_NESTING {
            self.skip_until_close(depth);
            return items;
        }
        while let Some(tok) = self.token(depth + 1) {
            match tok {
                Tok::Value(v) => items.push(v),
                Tok::Close => break,
                Tok::Word(b"R") => {
                    if let [.., Object::Integer(n), Object::Integer(g)] = items[..] {
                        if let (Ok(n), Ok(g)) = (u32::try_from(n), u16::try_from(g)) {
                            items.truncate(items.len() - 2);
                            items.push(Object::Reference((n, g)));
                        }
                    }
                }
                // An operator inside an array: damage; read past it.
                Tok::Word(_) => {}
            }
        }
        items
    }

    /// A dictionary after its `<<`, to its `>>` (or the end): its values
    /// read as an array's, then paired with the names before them, so
    /// that damage costs only the entries it touches.
    fn dict(&mut self, depth: usize) -> Dictionary {
        let mut dict = Dictionary::new();
        let mut key: Option<Vec<u8>> = None;
        for v in self.array(depth) {
            match (key.take(), v) {
                (None, Object::Name(k)) => key = Some(k),
                (None, _) => {}
                (Some(k), v) => dict.set(k, v),
            }
        }
        dict
    }

    /// Skips to the `]` or `>>` closing what was opened, or the end.
    fn skip_until_close(&mut self, depth: usize) {
        if depth >= MAX_NESTING {
            // Too deep to read token by token: skip past the next `]` or
            // `>`.
            match memchr::memchr2(b']', b'>', &self.data[self.at..]) {
                Some(i) => self.at += i + 1,
                None => self.at = self.data.len(),
            }
            return;
        }
        while let Some(tok) = self.token(depth + 1) {
            if matches!(tok, Tok::Close) {
                break;
            }
        }
    }

    /// A literal string after its `(`, to the balancing `)` (or the end).
    fn literal(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut depth = 1u32;
        while let Some(b) = self.peek() {
            self.at += 1;
            match b {
                b'(' => {
                    depth += 1;
                    out.push(b);
                }
                b')' => {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                    out.push(b);
                }
                b'\\' => self.escape(&mut out),
                _ => out.push(b),
            }
        }
        out
    }

    fn escape(&mut self, out: &mut Vec<u8>) {
        let Some(b) = self.peek() else { return };
        self.at += 1;
        match b {
            b'n' => out.push(b'\n'),
            b'r' => out.push(b'\r'),
            b't' => out.push(b'\t'),
            b'b' => out.push(8),
            b'f' => out.push(12),
            b'0'..=b'7' => {
                let mut v = u32::from(b - b'0');
                for _ in 0..2 {
                    match self.peek() {
                        Some(d @ b'0'..=b'7') => {
                            v = v * 8 + u32::from(d - b'0');
                            self.at += 1;
                        }
                        _ => break,
                    }
                }
                out.push(v as u8);
            }
            // A line continuation.
            b'\r' => {
                if self.peek() == Some(b'\n') {
                    self.at += 1;
                }
            }
            b'\n' => {}
            _ => out.push(b),
        }
    }

    /// A hexadecimal string after its `<`, to its `>` (or the end).
    fn hex(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        let mut high: Option<u8> = None;
        while let Some(b) = self.peek() {
            self.at += 1;
            let v = match b {
                b'>' => break,
                b'0'..=b'9' => b - b'0',
                b'a'..=b'f' => b - b'a' + 10,
                b'A'..=b'F' => b - b'A' + 10,
                _ => continue,
            };
            match high.take() {
                Some(h) => out.push(h << 4 | v),
                None => high = Some(v),
            }
        }
        if let Some(h) = high {
            out.push(h << 4);
        }
        out
    }

    /// A name after its `/`, `#xx` escapes decoded.
    fn name(&mut self) -> Vec<u8> {
        let mut out = Vec::new();
        while let Some(b) = self.peek().filter(|&b| !is_space(b) && !is_delim(b)) {
            self.at += 1;
            let hex = |c: u8| (c as char).to_digit(16);
            match (b, self.data.get(self.at..self.at + 2)) {
                (b'#', Some(&[h, l])) if hex(h).is_some() && hex(l).is_some() => {
                    out.push((hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0)) as u8);
                    self.at += 2;
                }
                _ => out.push(b),
            }
        }
        out
    }

    /// Skips inline image data after `ID`, to its `EI` (whitespace on both
    /// sides), or the end.
    fn skip_inline_image(&mut self) {
        let mut from = self.at;
        while let Some(i) = memchr::memmem::find(&self.data[from..], b"EI") {
            let at = from + i;
            let before = at == 0 || is_space(self.data[at - 1]);
            let after = self.data.get(at + 2).is_none_or(|&b| is_space(b));
            if before && after {
                self.at = at + 2;
                return;
            }
            from = at + 2;
        }
        self.at = self.data.len();
    }
}

/// An integer or real number, as PDF writes them.
fn number(w: &[u8]) -> Option<Object> {
    let s = std::str::from_utf8(w).ok()?;
    let digits = s.trim_start_matches(['+', '-']);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit() || b == b'.') {
        return None;
    }
    if !digits.contains('.') {
        return s.parse::<i64>().ok().map(Object::Integer);
    }
    match digits {
        "." => None,
        _ => s.parse::<f32>().ok().map(Object::Real),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ops(data: &[u8]) -> Vec<(String, Vec<Object>)> {
        let mut out = Vec::new();
        each(data, |o, a| {
            out.push((String::from_utf8_lossy(o).into_owned(), a.to_vec()))
        });
        out
    }

    #[test]
    fn reads_text_operators_strings_and_arrays() {
        let got = ops(b"BT /F1 12 Tf 72 -14.5 Td (a\\(b\\) \\101\\\n) Tj [<4142> -300 (c)] TJ ET");
        let names: Vec<&str> = got.iter().map(|(o, _)| o.as_str()).collect();
        assert_eq!(names, ["BT", "Tf", "Td", "Tj", "TJ", "ET"]);
        assert_eq!(
            got[1].1,
            [Object::Name(b"F1".to_vec()), Object::Integer(12)]
        );
        assert_eq!(got[2].1, [Object::Integer(72), Object::Real(-14.5)]);
        assert_eq!(got[3].1, [Object::string_literal(&b"a(b) A"[..])]);
        let Object::Array(items) = &got[4].1[0] else {
            panic!("{:?}", got[4])
        };
        assert_eq!(items[0].as_str().unwrap(), b"AB");
        assert_eq!(items[1], Object::Integer(-300));
    }

    /// Garbage in the middle of a stream loses only itself: the text
    /// before and after is read.
    #[test]
    fn damage_costs_only_the_damaged_bytes() {
        let got = ops(b"BT (one) Tj \xff\xfe}{>] junk 1 2 ET BT (two) Tj ET");
        let shown: Vec<&[u8]> = got
            .iter()
            .filter(|(o, _)| o == "Tj")
            .map(|(_, a)| a[0].as_str().unwrap())
            .collect();
        assert_eq!(shown, [&b"one"[..], b"two"]);
    }

    #[test]
    fn inline_images_and_dictionaries_are_read_past() {
        let got =
            ops(b"/Span <</MCID 0 /Alt (x>>y)>> BDC BI /W 2 /H 2 ID \x00(\xff]EI EI Q (t) Tj");
        assert!(got[0].1[1].as_dict().unwrap().has(b"Alt"));
        let names: Vec<&str> = got.iter().map(|(o, _)| o.as_str()).collect();
        assert_eq!(names, ["BDC", "BI", "ID", "Q", "Tj"]);
        assert_eq!(got[4].1[0].as_str().unwrap(), b"t");
    }

    #[test]
    fn a_damaged_dictionary_keeps_its_other_entries() {
        let v = value(
            b" <</Type/Font/Widths[0 6\xb22 602]/ToUnicode 8 0 R/Kids[1 0 R 4 0 R]/X<</Y 2>>>>",
        );
        let Some(Object::Dictionary(d)) = v else {
            panic!("{v:?}")
        };
        assert_eq!(d.get(b"Type").unwrap().as_name().unwrap(), b"Font");
        assert_eq!(d.get(b"ToUnicode").unwrap().as_reference().unwrap(), (8, 0));
        let kids = d.get(b"Kids").unwrap().as_array().unwrap();
        assert_eq!(
            kids,
            &[Object::Reference((1, 0)), Object::Reference((4, 0))]
        );
        assert!(d.get(b"X").unwrap().as_dict().unwrap().has(b"Y"));
    }

    #[test]
    fn deep_nesting_and_unterminated_tokens_end() {
        let mut deep = vec![b'['; 100_000];
        deep.extend_from_slice(b"(x) Tj");
        ops(&deep);
        ops(b"(unterminated \\");
        ops(b"<4142");
        ops(b"<<<<<<");
    }
}
