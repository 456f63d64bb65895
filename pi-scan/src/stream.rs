//! Scanning text of any length in bounded memory: text is pushed in
//! pieces of any size, and scanned a window (1 MiB) at a time. Each
//! window begins with the tail of the one before, so every candidate
//! number is seen with its whole context (keywords 64 bytes before and 24
//! after, names and bank words 160 either side, a CSV row's cells up to
//! 16 KiB either side), and a finding is reported by exactly one window:
//! the one in whose report range `[from, to)` its number starts. Line
//! numbers count the newlines of everything dropped before the window.
//!
//! Text that never fills a window is not scanned here at all but handed
//! back whole ([`Stream::finish`]), so small parts are scanned exactly as
//! before, in one piece.

use crate::detect::{scan_with, Headings, Layout, TextFinding, MAX_COLUMN_SCAN};

/// Bytes scanned at a time.
pub(crate) const WINDOW: usize = 1 << 20;

/// (tail carried into the next window, of which the margin before the
/// next window's report range) for a layout. The report range ends
/// `tail - margin` bytes before a window's end: the right context a
/// finding may need; the margin is the left context.
fn overlap(layout: Layout) -> (usize, usize) {
    match layout {
        // Longest number (23 bytes with separators) plus the 160-byte
        // name and bank windows, with room to spare.
        Layout::Plain => (4 << 10, 2 << 10),
        // A cell's column and its row's name cells: up to 16 KiB of its
        // row either side.
        Layout::Delimited(_) => (2 * MAX_COLUMN_SCAN + (8 << 10), MAX_COLUMN_SCAN + (4 << 10)),
    }
}

/// What a stream yielded.
pub(crate) enum Streamed {
    /// The text never filled a window: here it is, to scan as a whole.
    Text(Vec<u8>),
    /// Findings, with line numbers from the start of the text.
    Found(Vec<TextFinding>),
}

/// Text pushed in pieces, scanned a window at a time.
pub(crate) struct Stream {
    layout: Layout,
    window: usize,
    buf: Vec<u8>,
    /// Findings whose number starts before this offset of `buf` were
    /// reported by the window before.
    from: usize,
    /// The line number of `buf[0]`.
    line: u64,
    /// A window was scanned: `buf` no longer begins the text.
    scanned: bool,
    /// A delimited text's headings, from its first window.
    heads: Option<Headings>,
    /// `buf` begins at the start of a line.
    starts_line: bool,
    found: Vec<TextFinding>,
    /// Bytes pushed so far.
    total: u64,
}

impl Stream {
    pub(crate) fn new(layout: Layout) -> Self {
        Self::with_window(layout, WINDOW)
    }

    /// A stream scanning `window` bytes at a time (tests use small ones).
    pub(crate) fn with_window(layout: Layout, window: usize) -> Self {
        let (tail, _) = overlap(layout);
        // Room for the carried tail (up to a row's length more for CSV)
        // and new text in every window.
        let window = window.max(4 * tail + MAX_COLUMN_SCAN);
        Stream {
            layout,
            window,
            buf: Vec::new(),
            from: 0,
            line: 1,
            scanned: false,
            heads: None,
            starts_line: true,
            found: Vec::new(),
            total: 0,
        }
    }

    /// Bytes pushed so far.
    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    /// Adds text; scans each window as it fills.
    pub(crate) fn push(&mut self, mut data: &[u8]) {
        self.total += data.len() as u64;
        while !data.is_empty() {
            let n = (self.window - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.buf.len() >= self.window {
                self.scan_window(false);
            }
        }
    }

    /// Adds one byte (a newline or tab between XML elements).
    pub(crate) fn push_byte(&mut self, b: u8) {
        self.push(&[b]);
    }

    /// Ends the text: what was found, or the text itself when it was
    /// short enough to be kept whole.
    pub(crate) fn finish(mut self) -> Streamed {
        if !self.scanned {
            return Streamed::Text(self.buf);
        }
        self.scan_window(true);
        Streamed::Found(self.found)
    }

    fn scan_window(&mut self, last: bool) {
        let heads = match self.layout {
            Layout::Plain => None,
            Layout::Delimited(delim) => Some(match &self.heads {
                None => {
                    let h = Headings::parse(&self.buf, delim);
                    self.heads = Some(h.carried(true));
                    h
                }
                Some(h) => h.carried(self.starts_line),
            }),
        };
        let (tail, margin) = overlap(self.layout);
        let len = self.buf.len();
        let to = match last {
            true => len,
            false => len - tail + margin,
        };
        for (at, f) in scan_with(&self.buf, heads.as_ref()) {
            if (self.from..to).contains(&at) {
                self.found.push(TextFinding {
                    line: self.line + f.line - 1,
                    ..f
                });
            }
        }
        self.scanned = true;
        if last {
            return;
        }
        let mut keep = len - tail;
        self.starts_line = false;
        if let Layout::Delimited(_) = self.layout {
            // Begin the next window at a line's start, so that its cells'
            // columns can be counted.
            let lo = keep.saturating_sub(MAX_COLUMN_SCAN);
            if let Some(i) = memchr::memrchr(b'\n', &self.buf[lo..keep]) {
                keep = lo + i + 1;
                self.starts_line = true;
            }
        }
        self.line += memchr::memchr_iter(b'\n', &self.buf[..keep]).count() as u64;
        self.from = to - keep;
        self.buf.drain(..keep);
    }
}

/// All findings in `s`'s text, scanning what it kept whole.
pub(crate) fn findings(s: Stream) -> Vec<TextFinding> {
    let layout = s.layout;
    match s.finish() {
        Streamed::Text(t) => crate::detect::scan_text(&t, layout),
        Streamed::Found(f) => f,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Kind;

    const W: usize = 64 << 10;

    fn streamed(text: &[u8], layout: Layout, piece: usize) -> Vec<TextFinding> {
        let mut s = Stream::with_window(layout, W);
        for p in text.chunks(piece) {
            s.push(p);
        }
        findings(s)
    }

    /// A filler line of 40 bytes with no digits and no capitals.
    fn filler(bytes: usize) -> Vec<u8> {
        let line = b"nothing to see here, just some filler.\n";
        line.iter().copied().cycle().take(bytes).collect()
    }

    /// The PI (a name, a keyword, a number) placed so that each of its
    /// pieces straddles each boundary a window has: its end, and the end
    /// of its report range; found once, on its line, as scan_text finds it.
    #[test]
    fn a_match_straddling_a_window_boundary_is_found_once_on_its_line() {
        let (tail, margin) = overlap(Layout::Plain);
        let pi = b"Ana Silva SSN 536-22-1234";
        let window = Stream::with_window(Layout::Plain, W).window;
        let mut tried = 0;
        for edge in [window, window - tail + margin, 2 * window - tail] {
            for off in (0..pi.len() + 200).step_by(3) {
                let at = edge - off.min(edge);
                let mut text = filler(at);
                text.push(b'\n');
                text.extend_from_slice(pi);
                text.extend_from_slice(b"\n");
                text.extend_from_slice(&filler(3 * window));
                let want = crate::detect::scan_text(&text, Layout::Plain);
                assert_eq!(want.len(), 1);
                for piece in [1 << 20, 4093] {
                    let got = streamed(&text, Layout::Plain, piece);
                    assert_eq!(got, want, "at {at}, pieces of {piece}");
                }
                assert_eq!(want[0].kind, Kind::Ssn);
                assert!(want[0].name_nearby);
                tried += 1;
            }
        }
        assert!(tried > 100);
    }

    /// Headings carry to later windows; a row straddling a window is read
    /// with its own columns.
    #[test]
    fn csv_headings_carry_across_windows() {
        let mut text = b"first_name,last_name,ssn\n".to_vec();
        let mut want_lines = Vec::new();
        let mut line = 1u64;
        let window = Stream::with_window(Layout::Delimited(b','), W).window;
        while text.len() < 4 * window {
            for _ in 0..997 {
                text.extend_from_slice(b"aa,bb,x\n");
                line += 1;
            }
            text.extend_from_slice(b"Ana,Silva,536221234\n");
            line += 1;
            want_lines.push(line);
        }
        let want = crate::detect::scan_text(&text, Layout::Delimited(b','));
        assert_eq!(want.len(), want_lines.len());
        let got = streamed(&text, Layout::Delimited(b','), 1000);
        assert_eq!(got, want);
        assert_eq!(got.iter().map(|f| f.line).collect::<Vec<_>>(), want_lines);
    }

    #[test]
    fn short_text_is_handed_back_whole() {
        let mut s = Stream::new(Layout::Plain);
        s.push(b"SSN 536-22-1234");
        assert!(matches!(s.finish(), Streamed::Text(t) if t == b"SSN 536-22-1234"));
    }
}
