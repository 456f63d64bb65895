//! Context around a candidate number: the keywords ("SSN", "licence",
//! "card", "account", and negative ones such as "phone" or "order") that say
//! what a number is, and whether a person's name is nearby.

use aho_corasick::{AhoCorasick, AhoCorasickBuilder, MatchKind};
use regex::bytes::Regex;

/// What a keyword says about the number next to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Cue {
    Ssn,
    Licence,
    Card,
    Account,
    /// Phone, order, invoice, routing, tracking, ...: not PI.
    Negative,
}

/// (keyword, cue, whole word only). Keywords are matched ASCII
/// case-insensitively and never in the middle of a word.
const KEYWORDS: &[(&str, Cue, bool)] = &[
    ("ssn", Cue::Ssn, false),
    ("ss#", Cue::Ssn, false),
    ("ss #", Cue::Ssn, false),
    ("ss no", Cue::Ssn, true),
    ("social security", Cue::Ssn, false),
    ("social_security", Cue::Ssn, false),
    ("socialsecurity", Cue::Ssn, false),
    ("soc sec", Cue::Ssn, false),
    ("tax id", Cue::Ssn, false),
    ("taxpayer", Cue::Ssn, false),
    ("driver", Cue::Licence, false),
    ("licence", Cue::Licence, false),
    ("license", Cue::Licence, false),
    ("lic", Cue::Licence, true),
    ("dl", Cue::Licence, true),
    ("dln", Cue::Licence, true),
    ("state id", Cue::Licence, false),
    ("state_id", Cue::Licence, false),
    ("id card", Cue::Licence, false),
    ("rmv", Cue::Licence, true),
    ("card", Cue::Card, false),
    ("credit", Cue::Card, false),
    ("debit", Cue::Card, false),
    ("visa", Cue::Card, true),
    ("mastercard", Cue::Card, false),
    ("amex", Cue::Card, true),
    ("american express", Cue::Card, false),
    ("discover", Cue::Card, true),
    ("cc", Cue::Card, true),
    ("ccn", Cue::Card, true),
    ("pan", Cue::Card, true),
    ("account", Cue::Account, false),
    ("acct", Cue::Account, false),
    ("a/c", Cue::Account, true),
    ("acc no", Cue::Account, false),
    ("acc#", Cue::Account, false),
    ("iban", Cue::Account, true),
    ("checking", Cue::Account, false),
    ("savings", Cue::Account, false),
    ("bank", Cue::Account, true),
    ("phone", Cue::Negative, false),
    ("tel", Cue::Negative, true),
    ("fax", Cue::Negative, true),
    ("mobile", Cue::Negative, false),
    ("cell", Cue::Negative, true),
    ("order", Cue::Negative, false),
    ("invoice", Cue::Negative, false),
    ("tracking", Cue::Negative, false),
    ("ref", Cue::Negative, true),
    ("reference", Cue::Negative, false),
    ("ticket", Cue::Negative, false),
    ("routing", Cue::Negative, false),
    ("aba", Cue::Negative, true),
    ("zip", Cue::Negative, true),
    ("postal", Cue::Negative, false),
    ("isbn", Cue::Negative, true),
    ("serial", Cue::Negative, false),
    ("sku", Cue::Negative, true),
    ("part", Cue::Negative, true),
    ("build", Cue::Negative, false),
    ("version", Cue::Negative, false),
    ("transaction", Cue::Negative, false),
    ("confirmation", Cue::Negative, false),
    ("po", Cue::Negative, true),
    ("pid", Cue::Negative, true),
    ("port", Cue::Negative, true),
];

/// Words that make a number labelled "account" a bank account: without
/// one nearby, "account" labels system accounts, cloud account IDs, bug
/// numbers ("System account ... Closes: #679746") and user IDs far more
/// often than bank accounts in the files a firm keeps. Microsoft Purview's
/// U.S. bank account definition asks for the same kind of context.
const BANK_WORDS: &[&str] = &[
    "bank",
    "banking",
    "routing",
    "iban",
    "aba",
    "checking account",
    "checking acct",
    "chequing",
    "savings",
    "credit union",
    "direct deposit",
    "wire transfer",
    "ach",
    "swift",
    "deposit account",
];

/// Bytes searched each side of a number for a bank word.
const BANK_WINDOW: usize = 160;

/// Capitalised words that often stand before numbers and are not names.
const NOT_NAMES: &[&str] = &[
    "Account",
    "Acct",
    "Address",
    "American",
    "Amex",
    "Amount",
    "Application",
    "Bank",
    "Billing",
    "Birth",
    "Boston",
    "Building",
    "Call",
    "Card",
    "Case",
    "Checking",
    "City",
    "Client",
    "Code",
    "Contact",
    "Credit",
    "Customer",
    "Date",
    "Dear",
    "Debit",
    "Department",
    "Discover",
    "Driver",
    "Drivers",
    "Email",
    "Employee",
    "Express",
    "Federal",
    "File",
    "Form",
    "From",
    "Home",
    "Identification",
    "Information",
    "Insurance",
    "Invoice",
    "Item",
    "License",
    "Licence",
    "Main",
    "Massachusetts",
    "Master",
    "Mastercard",
    "Member",
    "Mobile",
    "Name",
    "New",
    "Note",
    "Notes",
    "Number",
    "Office",
    "Order",
    "Page",
    "Patient",
    "Payment",
    "Personal",
    "Phone",
    "Policy",
    "Record",
    "Reference",
    "Registry",
    "Report",
    "Routing",
    "Savings",
    "Section",
    "Security",
    "Service",
    "Social",
    "State",
    "Status",
    "Street",
    "Subject",
    "Summary",
    "Tax",
    "The",
    "This",
    "Total",
    "Tracking",
    "Type",
    "United",
    "User",
    "Version",
    "Visa",
    "Motor",
    "Vehicles",
    "Please",
    "Thank",
    "Thanks",
    "Monday",
    "Tuesday",
    "Wednesday",
    "Thursday",
    "Friday",
    "Saturday",
    "Sunday",
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// Bytes of context searched for keywords before and after a candidate.
const CUE_BEFORE: usize = 64;
const CUE_AFTER: usize = 24;
/// Bytes searched each side for a person's name.
const NAME_WINDOW: usize = 160;

/// Compiled keyword and name matchers; build once, share between threads.
pub(crate) struct Context {
    keywords: AhoCorasick,
    bank: AhoCorasick,
    name_label: Regex,
    person: Regex,
}

impl Context {
    pub(crate) fn new() -> Self {
        let keywords = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            .build(KEYWORDS.iter().map(|k| k.0))
            .expect("static keyword list compiles");
        let bank = AhoCorasickBuilder::new()
            .ascii_case_insensitive(true)
            .match_kind(MatchKind::LeftmostLongest)
            .build(BANK_WORDS)
            .expect("static word list compiles");
        let name_label = Regex::new(
            r#"(?-u)(?i:name|patient|employee|customer|cardholder|holder|insured|member|applicant|resident)"?\s*[:=]\s*"?[A-Za-z][a-z]"#,
        )
        .expect("static regex");
        let person = Regex::new(
            r"(?-u)\b([A-Z](?:'[A-Z])?[a-z]+(?:[A-Z][a-z]+)?)(?: [A-Z]\.?)? ([A-Z](?:'[A-Z])?[a-z]+(?:[A-Z][a-z]+)?(?:-[A-Z][a-z]+)?)\b",
        )
        .expect("static regex");
        Context {
            keywords,
            bank,
            name_label,
            person,
        }
    }

    /// Every keyword (with its end offset) in `hay`, word boundaries checked.
    fn cues<'a>(&'a self, hay: &'a [u8]) -> impl Iterator<Item = (usize, usize, Cue)> + 'a {
        // Every keyword has a letter: rows of bare numbers skip the search.
        let hay = if hay.iter().any(u8::is_ascii_alphabetic) {
            hay
        } else {
            &[]
        };
        self.keywords.find_iter(hay).filter_map(move |m| {
            let (_, cue, whole) = KEYWORDS[m.pattern().as_usize()];
            let before_ok = m.start() == 0 || !hay[m.start() - 1].is_ascii_alphabetic();
            let after_ok = !whole || m.end() == hay.len() || !hay[m.end()].is_ascii_alphanumeric();
            (before_ok && after_ok).then_some((m.start(), m.end(), cue))
        })
    }

    /// The keyword that labels `text[start..end]`: the nearest one before it
    /// on its line (or on the line above when the number opens its line, as
    /// in a form or table with the label above), within 64 bytes, or failing
    /// that a keyword right after it within 24 bytes ("6175551234 (phone)").
    /// A label before wins, so "account 12345678, routing 021000021" leaves
    /// 12345678 an account number.
    pub(crate) fn nearest_cue(&self, text: &[u8], start: usize, end: usize) -> Option<Cue> {
        let (lo, own_line) = label_start(text, start);
        let hay = &text[lo..start];
        let cues: Vec<_> = self.cues(hay).collect();
        let before = cues.iter().rev().find(|&&(_, e, c)| {
            // A keyword on the line above counts only if that line is a label.
            let labels = own_line.is_none_or(|l| lo + e >= l || ends_label(&text[lo + e..l - 1]));
            // A negative label with a number after it labels that number
            // ("pid=4242 please verify 501-05-4245"), not this one.
            labels && (c != Cue::Negative || !hay[e..].iter().any(u8::is_ascii_digit))
        });
        if let Some(&(_, _, c)) = before {
            return Some(c);
        }
        let hi = (end + CUE_AFTER).min(text.len());
        let hi = memchr::memchr(b'\n', &text[end..hi]).map_or(hi, |i| end + i);
        // After the number only a label right behind it counts:
        // "6175551234 (phone)", not "126938 bad checking for syscalls".
        let after = &text[end..hi];
        self.cues(after)
            .next()
            .filter(|&(s, _, _)| !after[..s].iter().any(u8::is_ascii_alphanumeric))
            .map(|(_, _, c)| c)
    }

    /// True when a bank word (whole words: "bank", "routing", "savings",
    /// "checking account", ...) is in `hay`.
    pub(crate) fn has_bank_word(&self, hay: &[u8]) -> bool {
        // "bank_acct" and "BankAccount" are column names: `_` and a case
        // change end a word there.
        self.bank.find_iter(hay).any(|m| {
            let before_ok = m.start() == 0 || !hay[m.start() - 1].is_ascii_alphanumeric();
            let after_ok = m.end() == hay.len()
                || !hay[m.end()].is_ascii_alphanumeric()
                || (hay[m.end() - 1].is_ascii_lowercase() && hay[m.end()].is_ascii_uppercase());
            before_ok && after_ok
        })
    }

    /// True when a bank word is within 160 bytes of `text[start..end]`.
    pub(crate) fn bank_near(&self, text: &[u8], start: usize, end: usize) -> bool {
        let lo = start.saturating_sub(BANK_WINDOW);
        let hi = (end + BANK_WINDOW).min(text.len());
        self.has_bank_word(&text[lo..hi])
    }

    /// The cue a column heading gives (the last keyword in it, so "credit
    /// card account" is an account).
    pub(crate) fn heading_cue(&self, heading: &[u8]) -> Option<Cue> {
        self.cues(heading).last().map(|(_, _, c)| c)
    }

    /// True when a name label ("name:", `"customer": "`) or a capitalised
    /// First Last pair that is not a common heading is within 160 bytes.
    pub(crate) fn name_near(&self, text: &[u8], start: usize, end: usize) -> bool {
        let lo = start.saturating_sub(NAME_WINDOW);
        let hi = (end + NAME_WINDOW).min(text.len());
        let win = &text[lo..hi];
        // A name needs a capital followed by a small letter, a label a
        // letter: cheap tests first, the regexes only when they can match.
        if !win
            .windows(2)
            .any(|w| w[0].is_ascii_alphabetic() && w[1].is_ascii_lowercase())
        {
            return false;
        }
        if self.name_label.is_match(win) {
            return true;
        }
        if !win
            .windows(2)
            .any(|w| w[0].is_ascii_uppercase() && w[1].is_ascii_lowercase())
        {
            return false;
        }
        self.person.captures_iter(win).any(|c| {
            let first = std::str::from_utf8(&c[1]).unwrap_or("");
            let last = std::str::from_utf8(&c[2]).unwrap_or("");
            !NOT_NAMES.contains(&first) && !NOT_NAMES.contains(&last)
        })
    }
}

/// Where the text that can label a number at `start` begins: at most 64
/// bytes back, not past the start of its line unless nothing but
/// punctuation precedes it there, then not past the line above.
fn label_start(text: &[u8], start: usize) -> (usize, Option<usize>) {
    let lo = start.saturating_sub(CUE_BEFORE);
    let Some(nl) = memchr::memrchr(b'\n', &text[lo..start]) else {
        return (lo, None);
    };
    let line = lo + nl + 1;
    if text[line..start].iter().any(u8::is_ascii_alphanumeric) {
        return (line, None);
    }
    let above = memchr::memrchr(b'\n', &text[lo..line - 1]).map_or(lo, |i| lo + i + 1);
    (above, Some(line))
}

/// True when what follows a keyword to the end of its line makes that line
/// a label: nothing, or one of "number", "no", "num", "nr", "id", with
/// punctuation ("SSN:", "Account number:"), not a sentence that happens to
/// hold a keyword ("... hwcap checking code").
fn ends_label(rest: &[u8]) -> bool {
    let mut words = rest
        .split(|b| !b.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty());
    match (words.next(), words.next()) {
        (None, _) => true,
        (Some(w), None) => ["number", "no", "num", "nr", "id"]
            .iter()
            .any(|k| w.eq_ignore_ascii_case(k.as_bytes())),
        _ => false,
    }
}

/// True when a column heading names a person ("name", "first_name",
/// "Full Name", "surname").
pub(crate) fn heading_is_name(heading: &[u8]) -> bool {
    let h = heading.to_ascii_lowercase();
    let has = |w: &[u8]| h.windows(w.len()).any(|x| x == w);
    (has(b"name") && !has(b"user") && !has(b"file") && !has(b"host")) || has(b"surname")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_keyword_wins() {
        let c = Context::new();
        let t = b"Card: 4539 1488 0343 6467, SSN: 536-22-1234";
        let ssn = t.windows(11).position(|w| w == b"536-22-1234").unwrap();
        assert_eq!(c.nearest_cue(t, ssn, ssn + 11), Some(Cue::Ssn));
        assert_eq!(c.nearest_cue(t, 6, 25), Some(Cue::Card));
        let t = b"Phone 6175551234";
        assert_eq!(c.nearest_cue(t, 6, 16), Some(Cue::Negative));
        let t = b"SSN:\n536221234";
        assert_eq!(
            c.nearest_cue(t, 5, 14),
            Some(Cue::Ssn),
            "label on the line above"
        );
        let t = b"Account number:\n 12345678";
        assert_eq!(c.nearest_cue(t, 17, 25), Some(Cue::Account));
        let t = b"126938   bad checking for syscalls";
        assert_eq!(c.nearest_cue(t, 0, 6), None, "a word between: no label");
        let t = b"536221234 (SSN)";
        assert_eq!(c.nearest_cue(t, 0, 9), Some(Cue::Ssn));
        let t = b"hwcap checking code\n449483 Powerpc";
        assert_eq!(c.nearest_cue(t, 20, 26), None, "prose above is no label");
        let t = b"SSN: 536221234\nEmployee ID 681154264";
        assert_eq!(
            c.nearest_cue(t, 27, 36),
            None,
            "a label does not reach the next line"
        );
        let t = b"pid=4242 verify 536-22-1234";
        assert_eq!(c.nearest_cue(t, 16, 27), None, "pid labels 4242");
        let t = b"handle 12345678";
        assert_eq!(
            c.nearest_cue(t, 7, 15),
            None,
            "dl inside a word is no keyword"
        );
    }

    #[test]
    fn names() {
        let c = Context::new();
        assert!(c.name_near(b"Maria Gonzalez 536-22-1234", 15, 26));
        assert!(c.name_near(b"{\"name\": \"bob\", \"ssn\": \"x\"}", 0, 5));
        assert!(!c.name_near(b"Social Security Number 536-22-1234", 23, 34));
        assert!(heading_is_name(b"First_Name"));
        assert!(!heading_is_name(b"username"));
    }
}
