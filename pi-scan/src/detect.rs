//! Finding PI in a buffer of text: a digit-run prefilter (runs.rs) and a
//! DFA find candidate numbers (SSN, card and plain digit shapes); each candidate then has to pass its
//! boundary, checksum and context rules before it becomes a finding.

use crate::checks;
use crate::context::{heading_is_name, Context, Cue};
use crate::runs::runs;
use crate::{Confidence, Kind};
use regex::bytes::Regex;
use std::sync::OnceLock;

/// How the text is laid out, so that column headings can act as context.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Layout {
    /// Free text, JSON, logs, document text.
    Plain,
    /// Delimited rows (CSV `,`, TSV `\t`); the first line holds headings.
    Delimited(u8),
}

/// One piece of PI found in a buffer. The value itself is never kept: only
/// its masked form.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TextFinding {
    /// 1-based line number in the buffer.
    pub line: u64,
    /// What was found.
    pub kind: Kind,
    /// The value with all but its last digits replaced by `*`.
    pub masked: String,
    /// How sure the scanner is (see docs/SCAN.md).
    pub confidence: Confidence,
    /// A person's name (a name label, a name column, or a capitalised
    /// First Last) is within about two lines.
    pub name_nearby: bool,
}

const CANDIDATES: &str = r"(?-u)[0-9]{3}-[0-9]{2}-[0-9]{4}|[0-9]{3} [0-9]{2} [0-9]{4}|[0-9]{4}(?:-[0-9]{4}){2}-[0-9]{1,4}(?:-[0-9]{3})?|[0-9]{4}(?: [0-9]{4}){2} [0-9]{1,4}(?: [0-9]{3})?|[0-9]{4}-[0-9]{6}-[0-9]{4,5}|[0-9]{4} [0-9]{6} [0-9]{4,5}|[0-9]{6,19}";

struct Detector {
    candidates: Regex,
    ctx: Context,
}

fn detector() -> &'static Detector {
    static D: OnceLock<Detector> = OnceLock::new();
    D.get_or_init(|| Detector {
        candidates: Regex::new(CANDIDATES).expect("static regex"),
        ctx: Context::new(),
    })
}

/// Column headings of a delimited buffer.
#[derive(Clone)]
pub(crate) struct Headings {
    delim: u8,
    cues: Vec<Option<Cue>>,
    names: Vec<bool>,
    /// A column heading names a bank ("bank", "routing", ...): the
    /// account numbers of this table are bank accounts.
    bank: bool,
    /// Where the heading row ends in the buffer scanned; None when the
    /// buffer is a later window of a stream (the row was carried over).
    end: Option<usize>,
    /// The buffer begins at the start of a line (a stream's window may
    /// begin mid-line, where no column can be counted).
    pub(crate) starts_line: bool,
}

/// Longest stretch of a row examined either side of a candidate to find
/// its column; rows longer than this get no heading context.
pub(crate) const MAX_COLUMN_SCAN: usize = 16 * 1024;

impl Headings {
    /// The headings of `text`'s first line.
    pub(crate) fn parse(text: &[u8], delim: u8) -> Self {
        let ctx = &detector().ctx;
        let end = memchr::memchr(b'\n', text).unwrap_or(text.len());
        let (mut cues, mut names) = (Vec::new(), Vec::new());
        for h in split_fields(&text[..end], delim) {
            cues.push(ctx.heading_cue(h));
            names.push(heading_is_name(h));
        }
        Headings {
            delim,
            cues,
            names,
            bank: ctx.has_bank_word(&text[..end]),
            end: Some(end),
            starts_line: true,
        }
    }

    /// These headings for a later window of the same stream.
    pub(crate) fn carried(&self, starts_line: bool) -> Self {
        Headings {
            end: None,
            starts_line,
            ..self.clone()
        }
    }

    /// (column cue, a name column of this row is filled) for a candidate.
    fn at(&self, text: &[u8], start: usize) -> (Option<Cue>, bool) {
        if self.end.is_some_and(|end| start <= end) {
            return (None, false);
        }
        // Bounded both ways: a huge single-line file must not turn every
        // candidate into a scan back to its start.
        let lo = start.saturating_sub(MAX_COLUMN_SCAN);
        let ls = match memchr::memrchr(b'\n', &text[lo..start]) {
            Some(i) => lo + i + 1,
            None if lo == 0 && self.starts_line => 0,
            None => return (None, false),
        };
        let hi = (start + MAX_COLUMN_SCAN).min(text.len());
        let le = memchr::memchr(b'\n', &text[start..hi]).map_or(hi, |i| start + i);
        let col = split_fields(&text[ls..start], self.delim).count() - 1;
        let named = split_fields(&text[ls..le], self.delim)
            .enumerate()
            .any(|(i, f)| {
                self.names.get(i) == Some(&true) && f.iter().any(u8::is_ascii_alphabetic)
            });
        (self.cues.get(col).copied().flatten(), named)
    }
}

/// Splits a row on `delim` outside double quotes; quotes and spaces trimmed.
fn split_fields(row: &[u8], delim: u8) -> impl Iterator<Item = &[u8]> {
    let mut quoted = false;
    let mut start = 0;
    let mut i = 0;
    let mut done = false;
    std::iter::from_fn(move || {
        if done {
            return None;
        }
        while i < row.len() {
            let b = row[i];
            i += 1;
            if b == b'"' {
                quoted = !quoted;
            } else if b == delim && !quoted {
                let f = &row[start..i - 1];
                start = i;
                return Some(trim(f));
            }
        }
        done = true;
        Some(trim(&row[start..]))
    })
}

fn trim(f: &[u8]) -> &[u8] {
    let f = f.trim_ascii();
    let f = f.strip_prefix(b"\"").unwrap_or(f);
    f.strip_suffix(b"\"").unwrap_or(f).trim_ascii()
}

/// What the characters around a candidate allow.
#[derive(PartialEq, Eq)]
enum Edge {
    Free,
    /// Preceded by a lone `S`: a Massachusetts licence if 8 digits follow.
    LicenceLetter,
    Reject,
}

fn edges(text: &[u8], s: usize, e: usize, spaced: bool) -> Edge {
    let at = |i: usize| text.get(i).copied();
    let word = |b: u8| b.is_ascii_alphanumeric() || b == b'_';
    let mut edge = Edge::Free;
    if s > 0 {
        let p = text[s - 1];
        let pp = if s >= 2 { at(s - 2) } else { None };
        if word(p) {
            if (p == b'S' || p == b's') && !pp.is_some_and(word) {
                edge = Edge::LicenceLetter;
            } else {
                return Edge::Reject;
            }
        } else if matches!(p, b'.' | b'-' | b'/' | b'\\') && pp.is_some_and(word)
            || matches!(p, b'+' | b'$' | b'&')
            || (spaced && p == b' ' && pp.is_some_and(|b| b.is_ascii_digit()))
        {
            return Edge::Reject;
        }
    }
    if let Some(n) = at(e) {
        let nn = at(e + 1);
        if word(n)
            || matches!(n, b'.' | b'-' | b'/' | b':') && nn.is_some_and(|b| b.is_ascii_digit())
            || n == b'%'
            || (spaced && n == b' ' && nn.is_some_and(|b| b.is_ascii_digit()))
        {
            return Edge::Reject;
        }
    }
    edge
}

/// `YYYYMMDD` with a year 1900-2099: "account opened 20240315" is a date.
fn is_date(d: &[u8]) -> bool {
    let num =
        |r: std::ops::Range<usize>| d[r].iter().fold(0u32, |a, &b| a * 10 + u32::from(b - b'0'));
    d.len() == 8
        && (1900..2100).contains(&num(0..4))
        && (1..=12).contains(&num(4..6))
        && (1..=31).contains(&num(6..8))
}

fn confidence(score: u8) -> Confidence {
    match score {
        0 => Confidence::Low,
        1 => Confidence::Medium,
        _ => Confidence::High,
    }
}

/// Finds PI in `text`. Invalid UTF-8 is fine: the search is over bytes.
///
/// ```
/// use pi_scan::{scan_text, Kind, Layout};
/// let found = scan_text(b"Name: Ana Silva\nSSN: 536-22-1234\n", Layout::Plain);
/// assert_eq!(found.len(), 1);
/// assert_eq!(found[0].kind, Kind::Ssn);
/// assert_eq!(found[0].masked, "***-**-1234");
/// assert_eq!(found[0].line, 2);
/// assert!(found[0].name_nearby);
/// ```
pub fn scan_text(text: &[u8], layout: Layout) -> Vec<TextFinding> {
    let headings = match layout {
        Layout::Delimited(delim) => Some(Headings::parse(text, delim)),
        Layout::Plain => None,
    };
    scan_with(text, headings.as_ref())
        .into_iter()
        .map(|(_, f)| f)
        .collect()
}

/// [`scan_text`] with the headings given (a stream carries them from its
/// first window to the others), each finding with the offset where its
/// number starts (a stream reports a finding from one window only).
pub(crate) fn scan_with(text: &[u8], headings: Option<&Headings>) -> Vec<(usize, TextFinding)> {
    let d = detector();
    let mut out = Vec::new();
    let (mut line, mut counted) = (1u64, 0usize);
    // Bare card-length numbers failing Luhn: many of them mean numeric data
    // (constants, measurements), where one in ten passes Luhn by chance.
    let mut luhn_failures = 0usize;
    let mut consider = |s: usize, e: usize| {
        let raw = &text[s..e];
        let spaced = raw.contains(&b' ');
        let edge = edges(text, s, e, spaced);
        if edge == Edge::Reject {
            return;
        }
        if (13..=19).contains(&raw.len())
            && raw.iter().all(u8::is_ascii_digit)
            && !checks::luhn(raw)
        {
            luhn_failures += 1;
        }
        if let Some(hit) = classify(d, text, s, e, raw, edge, headings) {
            line += memchr::memchr_iter(b'\n', &text[counted..s]).count() as u64;
            counted = s;
            out.push((s, TextFinding { line, ..hit }));
        }
    };
    runs(text, |rs, re, direct| {
        if direct {
            consider(rs, re);
        } else {
            for m in d.candidates.find_iter(&text[rs..re]) {
                consider(rs + m.start(), rs + m.end());
            }
        }
    });
    // A low card finding has no keyword, no name and no grouping: among
    // many Luhn failures it is most likely chance, not a card.
    let chance = |f: &TextFinding| f.kind == Kind::PaymentCard && f.confidence == Confidence::Low;
    let lows = out.iter().filter(|(_, f)| chance(f)).count();
    if lows > 0 && luhn_failures >= 4 && luhn_failures >= 4 * lows {
        out.retain(|(_, f)| !chance(f));
    }
    out
}

fn classify(
    d: &Detector,
    text: &[u8],
    s: usize,
    e: usize,
    raw: &[u8],
    edge: Edge,
    headings: Option<&Headings>,
) -> Option<TextFinding> {
    let mut buf = [0u8; 24];
    let mut n = 0;
    for &b in raw.iter().filter(|b| b.is_ascii_digit()) {
        buf[n] = b;
        n += 1;
    }
    let digits = &buf[..n];
    let separated = n != raw.len();
    let (col_cue, col_name) = headings.map_or((None, false), |h| h.at(text, s));
    let cue = col_cue.or_else(|| d.ctx.nearest_cue(text, s, e));
    if cue == Some(Cue::Negative) {
        return None;
    }
    let kw = |c: Cue| u8::from(cue == Some(c));
    // (kind, strength of the shape itself, keyword agreement)
    let (kind, strength, agree) = if edge == Edge::LicenceLetter {
        if n != 8 || cue != Some(Cue::Licence) {
            return None;
        }
        (Kind::DriversLicense, 1, 1)
    } else if separated && n == 9 {
        if !checks::ssn_valid(digits) {
            return None;
        }
        (Kind::Ssn, 1, kw(Cue::Ssn))
    } else if separated {
        if !checks::card_valid(digits) {
            return None;
        }
        (Kind::PaymentCard, 1, kw(Cue::Card))
    } else {
        match cue {
            Some(Cue::Ssn) if n == 9 && checks::ssn_valid(digits) => (Kind::Ssn, 0, 1),
            Some(Cue::Licence) if n == 9 => (Kind::DriversLicense, 0, 1),
            _ if n >= 13 && checks::card_valid(digits) => (Kind::PaymentCard, 0, kw(Cue::Card)),
            Some(Cue::Account)
                if (6..=17).contains(&n)
                    && !is_date(digits)
                    && (headings.is_some_and(|h| h.bank) || d.ctx.bank_near(text, s, e)) =>
            {
                (Kind::BankAccount, 0, 1)
            }
            _ => return None,
        }
    };
    let name_nearby = col_name || d.ctx.name_near(text, s, e);
    let bare = strength == 0 && agree == 0 && !name_nearby;
    if bare && kind == Kind::PaymentCard && !checks::major_brand(digits) {
        return None;
    }
    let masked = match kind {
        Kind::Ssn => checks::mask_ssn(digits),
        Kind::PaymentCard => checks::mask_card(digits),
        Kind::BankAccount => checks::mask_account(digits),
        Kind::DriversLicense => checks::mask_licence(digits),
    };
    Some(TextFinding {
        line: 0,
        kind,
        masked,
        confidence: confidence(strength + agree + u8::from(name_nearby)),
        name_nearby,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(t: &str) -> Vec<(Kind, String)> {
        scan_text(t.as_bytes(), Layout::Plain)
            .into_iter()
            .map(|f| (f.kind, f.masked))
            .collect()
    }

    #[test]
    fn ssn_spellings() {
        assert_eq!(kinds("ssn 536-22-1234").len(), 1);
        assert_eq!(kinds("ssn 536 22 1234").len(), 1);
        assert_eq!(kinds("SSN: 536221234").len(), 1);
        assert!(
            kinds("id 536221234").is_empty(),
            "bare 9 digits need a keyword"
        );
        assert!(kinds("ssn 666-22-1234 900-22-1234 536-00-1234 536-22-0000").is_empty());
    }

    #[test]
    fn decoys_are_quiet() {
        for t in [
            "call 617-555-1234 or (617) 555-1234 or +1 617 555 1234",
            "released 2024-01-15T10:22:33Z, v1.22.333, 10.120.33.4",
            "id 550e8400-e29b-41d4-a716-446655440000",
            "Order 123456789012, invoice 4111111111111111",
            "total $4111111111111111.00",
            "card 4111 1111 1111 1112",
            "test with card 4242 4242 4242 4242 or 4111111111111111",
            "assert_eq!(results[0], 5029875928683246316);",
            "limbs [2251799813685228, 2251799813685247, 2251799813685240, 2251799813685241, 2251799813685242, 2251799813685243]",
            "item count 12345678",
            "account opened 20240315",
            "numbers 10 536 22 1234 7",
        ] {
            assert!(kinds(t).is_empty(), "{t}: {:?}", kinds(t));
        }
    }

    #[test]
    fn bare_cards_are_low_and_dropped_among_luhn_failures() {
        let alone = kinds("4539148803436467\n5425233430109903\n");
        assert_eq!(alone.len(), 2);
        let t = "2251799813685228, 2251799813685247, 2251799813685240, 2251799813685241, 2251799813685242";
        assert_eq!(kinds(&t[..18]).len(), 1, "alone, a Luhn pass is reported");
        assert!(kinds(t).is_empty(), "among failures it is chance");
        let grouped = format!("{t}, 4539 1488 0343 6467");
        assert_eq!(kinds(&grouped).len(), 1, "a grouped card still counts");
    }

    #[test]
    fn licences_and_accounts_need_keywords() {
        assert_eq!(
            kinds("Driver's license S12345678")[0].0,
            Kind::DriversLicense
        );
        assert!(kinds("S12345678").is_empty());
        assert!(kinds("XS12345678 licence").is_empty());
        assert_eq!(
            kinds("Bank of Boston acct no. 000123456789")[0],
            (Kind::BankAccount, "********6789".into())
        );
        assert!(kinds("000123456789").is_empty());
    }

    /// "Account" alone labels many things that are not bank accounts (the
    /// negatives measured in docs/SCAN.md); a bank word nearby makes it one.
    #[test]
    fn an_account_number_needs_a_bank_nearby() {
        for t in [
            "AWS account 123456789012 owns the bucket",
            "System account home dir defaults to /nonexistent. (Closes: #679746)",
            "pub const __NR_acct: u32 = 1073741987;",
            "take into account once and if this gets reintroduced. Closes: #852820",
            "the account id is 55501234 in the checking on arm64",
        ] {
            assert!(kinds(t).is_empty(), "{t}: {:?}", kinds(t));
        }
        for t in [
            "Checking account 000123456789",
            "acct 000123456789, routing 021000021",
            "Savings acct #: 4433221100",
            "Direct deposit to account 99001234",
        ] {
            assert_eq!(kinds(t).len(), 1, "{t}: {:?}", kinds(t));
            assert_eq!(kinds(t)[0].0, Kind::BankAccount, "{t}");
        }
    }

    #[test]
    fn example_ssns_whose_parts_repeat_one_digit_are_not_reported() {
        assert!(kinds("ssn : 111-22-3333").is_empty());
        assert!(kinds("SSN 555-55-5555").is_empty());
        assert_eq!(kinds("SSN 111-22-3334").len(), 1);
    }

    #[test]
    fn csv_headings_are_context() {
        let t = b"first_name,last_name,ssn,bank_acct\nAna,Silva,536221234,99001234\n";
        let f = scan_text(t, Layout::Delimited(b','));
        assert_eq!(f.len(), 2, "{f:?}");
        assert!(f.iter().all(|x| x.name_nearby && x.line == 2));
        assert_eq!(f[0].kind, Kind::Ssn);
        assert_eq!(f[1].kind, Kind::BankAccount);
    }
}
