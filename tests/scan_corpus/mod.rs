//! A labelled corpus for `tests/scan.rs`, generated at test time: true PI
//! of every kind in every file format pi-scan reads, among decoys of every
//! kind it must stay quiet about. Deterministic (a fixed xorshift seed).

mod files;

use files::{write_docx, write_pdf, write_pptx, write_xlsx};
use std::path::Path;

/// One piece of true PI placed in the corpus.
#[derive(Clone, Debug)]
pub struct Label {
    /// File path relative to the corpus root.
    pub file: String,
    /// `ssn`, `drivers_license`, `payment_card`, `bank_account`.
    pub kind: &'static str,
    /// The masked form pi-scan must print.
    pub masked: String,
    /// The value as written (must never appear in any output).
    pub raw: String,
    /// The value's digits alone (must never appear either).
    pub digits: String,
}

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn digits(&mut self, n: usize) -> String {
        (0..n)
            .map(|_| char::from(b'0' + self.below(10) as u8))
            .collect()
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
}

const FIRST: &[&str] = &[
    "Maria", "James", "Aisha", "Wei", "Patrick", "Sofia", "Daniel", "Priya", "Liam", "Fatima",
    "Noah", "Grace", "Mateo", "Hannah", "Kenji", "Olivia",
];
const LAST: &[&str] = &[
    "Gonzalez",
    "Sullivan",
    "Okafor",
    "Chen",
    "O'Brien",
    "Rossi",
    "Murphy",
    "Patel",
    "Walsh",
    "Haddad",
    "Nguyen",
    "McCarthy",
    "Silva",
    "Kowalski",
    "Tanaka",
    "Fitzgerald",
];

fn luhn_complete(body: &str) -> String {
    let mut sum = 0;
    for (i, c) in body.bytes().rev().enumerate() {
        let mut v = u32::from(c - b'0');
        if i % 2 == 0 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    format!("{body}{}", (10 - sum % 10) % 10)
}

fn group(d: &str, sizes: &[usize], sep: &str) -> String {
    let mut out = Vec::new();
    let mut i = 0;
    for &s in sizes {
        out.push(&d[i..i + s]);
        i += s;
    }
    out.join(sep)
}

fn stars(n: usize) -> String {
    "*".repeat(n)
}

/// Builds PI values and decoys, and records labels as they are used.
pub struct Gen {
    pub rng: Rng,
    pub labels: Vec<Label>,
    pub file: String,
}

impl Gen {
    pub fn name(&mut self) -> String {
        format!("{} {}", self.rng.pick(FIRST), self.rng.pick(LAST))
    }

    fn label(&mut self, kind: &'static str, masked: String, raw: String, digits: String) -> String {
        self.labels.push(Label {
            file: self.file.clone(),
            kind,
            masked,
            raw: raw.clone(),
            digits,
        });
        raw
    }

    fn ssn_digits(&mut self) -> String {
        loop {
            let area = 1 + self.rng.below(899);
            let d = format!(
                "{area:03}{:02}{:04}",
                1 + self.rng.below(99),
                1 + self.rng.below(9999)
            );
            if area != 666 && !matches!(d.as_str(), "078051120" | "219099999" | "123456789") {
                return d;
            }
        }
    }

    /// A valid SSN: `style` 0 dashed, 1 spaced, 2 plain (needs a keyword).
    pub fn ssn(&mut self, style: u8) -> String {
        let d = self.ssn_digits();
        let raw = match style {
            0 => group(&d, &[3, 2, 4], "-"),
            1 => group(&d, &[3, 2, 4], " "),
            _ => d.clone(),
        };
        self.label("ssn", format!("***-**-{}", &d[5..]), raw, d)
    }

    /// A Luhn-valid card of a random issuer, grouped or not.
    pub fn card(&mut self, grouped: bool) -> String {
        let (prefix, len) = match self.rng.below(6) {
            0 => ("4", 16),
            1 => (self.rng.pick(&["51", "53", "55", "2221", "2720"]), 16),
            2 => (self.rng.pick(&["34", "37"]), 15),
            3 => (self.rng.pick(&["6011", "65"]), 16),
            4 => ("3530", 16),
            _ => ("36", 14),
        };
        let body = format!("{prefix}{}", self.rng.digits(len - prefix.len() - 1));
        let d = luhn_complete(&body);
        let sep = if self.rng.below(2) == 0 { " " } else { "-" };
        let raw = match (grouped, len) {
            (false, _) => d.clone(),
            (true, 15) => group(&d, &[4, 6, 5], sep),
            (true, 14) => group(&d, &[4, 6, 4], sep),
            (true, _) => group(&d, &[4, 4, 4, 4], sep),
        };
        self.label(
            "payment_card",
            format!("{}{}", stars(len - 4), &d[len - 4..]),
            raw,
            d,
        )
    }

    /// A Massachusetts licence number: `S` + 8 digits, or 9 digits.
    pub fn licence(&mut self) -> String {
        if self.rng.below(2) == 0 {
            let d = self.rng.digits(8);
            let raw = format!("S{d}");
            self.label(
                "drivers_license",
                format!("{}{}", stars(5), &d[5..]),
                raw,
                d,
            )
        } else {
            let d = format!("{}{}", 1 + self.rng.below(9), self.rng.digits(8));
            self.label(
                "drivers_license",
                format!("{}{}", stars(6), &d[6..]),
                d.clone(),
                d,
            )
        }
    }

    /// A bank account number (8-12 digits).
    pub fn account(&mut self) -> String {
        let n = 8 + self.rng.below(5) as usize;
        let d = format!("{}{}", 1 + self.rng.below(9), self.rng.digits(n - 1));
        let keep = if n >= 10 { 4 } else { 2 };
        self.label(
            "bank_account",
            format!("{}{}", stars(n - keep), &d[n - keep..]),
            d.clone(),
            d,
        )
    }

    /// A true-PI sentence for free text (one of several phrasings).
    pub fn pi_sentence(&mut self, i: usize) -> String {
        let name = self.name();
        match i % 12 {
            0 => format!("Employee {name}, SSN {}, started in Boston.", self.ssn(0)),
            1 => format!("{name} social security number: {}", self.ssn(1)),
            2 => format!("Taxpayer {name} SSN:{}", self.ssn(2)),
            3 => format!("Card on file for {name}: {} exp 04/27", self.card(true)),
            4 => format!("Paid with Visa/credit card {} yesterday", self.card(false)),
            5 => format!("{name}, Massachusetts driver's license {}", self.licence()),
            6 => format!(
                "Direct deposit for {name}: account number {}, routing 211274450",
                self.account()
            ),
            7 => format!("Refund to checking acct # {} for {name}", self.account()),
            8 => format!("Please verify {} before Friday.", self.ssn(0)),
            9 => format!("Charge {} for the conference fee.", self.card(true)),
            10 => format!("Acct: {} (savings)", self.account()),
            _ => format!("RMV license no. {} renewed for {name}", self.licence()),
        }
    }

    /// A decoy sentence: numbers pi-scan must not report.
    pub fn decoy_sentence(&mut self, i: usize) -> String {
        let r = &mut self.rng;
        let d = |r: &mut Rng, n| r.digits(n);
        match i % 25 {
            0 => format!("Call (617) 555-{} or 617-555-{}.", d(r, 4), d(r, 4)),
            1 => format!("Mobile +1 617 555 {}, fax 6175550{}", d(r, 4), d(r, 3)),
            2 => format!(
                "Meeting on 2024-03-{:02} and 03/{:02}/2024, due 20240{}15.",
                1 + r.below(28),
                1 + r.below(28),
                1 + r.below(9)
            ),
            3 => format!(
                "request {:08x}-{:04x}-4{:03x}-a{:03x}-{:012x} done",
                r.next() as u32,
                r.below(65536),
                r.below(4096),
                r.below(4096),
                r.next() & 0xffff_ffff_ffff
            ),
            4 => format!(
                "request 12345678-1234-4{}-8{}-{} done",
                d(r, 3),
                d(r, 3),
                d(r, 12)
            ),
            5 => format!(
                "Upgraded to v{}.{}.{} from 1.{}.{}-beta.4",
                r.below(20),
                r.below(40),
                d(r, 4),
                r.below(9),
                d(r, 6)
            ),
            6 => format!(
                "Login from 10.{}.{}.{} and 192.168.{}.{}",
                r.below(256),
                r.below(256),
                r.below(256),
                r.below(256),
                r.below(256)
            ),
            7 => format!(
                "Invalid ssn values: 000-{}-{}, 666-{}-{}",
                d(r, 2),
                d(r, 4),
                d(r, 2),
                d(r, 4)
            ),
            8 => format!(
                "Bad SSN 9{}-{}-{} and {}-00-{} and {}-{}-0000",
                d(r, 2),
                d(r, 2),
                d(r, 4),
                d(r, 3),
                d(r, 4),
                d(r, 3),
                d(r, 2)
            ),
            9 => "Samples 078-05-1120 and 123-45-6789 appear in every textbook.".to_string(),
            10 => {
                let body = format!("4{}", d(r, 14));
                let good = luhn_complete(&body);
                let last = good.as_bytes()[15] - b'0';
                let bad = format!("{body}{}", (last + 1) % 10);
                format!(
                    "Card number {} was declined",
                    group(&bad, &[4, 4, 4, 4], " ")
                )
            }
            11 => format!("Order #{} shipped, tracking 1Z{}", d(r, 12), d(r, 16)),
            12 => format!("Batch total {} records, checksum {}", d(r, 8), d(r, 10)),
            13 => format!(
                "Employee ID {}{} badge S{}",
                1 + r.below(9),
                d(r, 8),
                d(r, 8)
            ),
            14 => format!(
                "Ship to Main Street, Boston MA 02139-{}; total $1,{},{}.{}",
                d(r, 4),
                d(r, 3),
                d(r, 3),
                d(r, 2)
            ),
            15 => format!(
                "Invoice INV-2024-{} PO-{}-{} ref {}",
                d(r, 6),
                d(r, 3),
                d(r, 2),
                d(r, 9)
            ),
            16 => format!(
                "Account opened 2024{:02}{:02}; balance 12,{}.{}",
                1 + r.below(12),
                1 + r.below(28),
                d(r, 3),
                d(r, 2)
            ),
            17 => format!(
                "Card expires 04/27, CVV {}, ZIP 0213{}",
                d(r, 3),
                r.below(10)
            ),
            18 => format!("Build 2024.03.15.{} deployed to 3 hosts", d(r, 9)),
            19 => "Social Security Administration office: 1-800-772-1213".to_string(),
            20 => format!("Tracking number 94001118992{}", d(r, 11)),
            21 => format!(
                "ISBN 978-0-306-{}-7 and 978-1-{}-{}-2",
                d(r, 5),
                d(r, 4),
                d(r, 4)
            ),
            22 => format!("Coordinates 42.{}, -71.{}", d(r, 6), d(r, 6)),
            23 => format!("Timestamps 1700{} and 17{} ms", d(r, 6), d(r, 11)),
            _ => "In staging use the test card 4242 4242 4242 4242 or 4111111111111111".to_string(),
        }
    }
}

/// Writes the whole corpus under `root` and returns its labels.
pub fn build(root: &Path) -> Vec<Label> {
    let mut g = Gen {
        rng: Rng::new(0x5eed_1234_abcd_0001),
        labels: Vec::new(),
        file: String::new(),
    };
    let text = |g: &mut Gen, file: &str, n: usize| -> Vec<String> {
        g.file = file.to_string();
        let mut lines = Vec::new();
        for i in 0..n {
            lines.push(g.pi_sentence(i));
            lines.push(g.decoy_sentence(2 * i));
            lines.push(g.decoy_sentence(2 * i + 1));
        }
        lines
    };
    let lines = text(&mut g, "notes/people.txt", 24);
    std::fs::create_dir_all(root.join("notes")).unwrap();
    // A form with each label on the line above its value.
    let mut lines = lines;
    for _ in 0..3 {
        let name = g.name();
        let ssn = g.ssn(2);
        lines.push(format!(
            "Name:\n{name}\nSSN:\n{ssn}\nEmployee ID\n{}",
            100_000_000 + g.rng.below(800_000_000)
        ));
    }
    std::fs::write(root.join("notes/people.txt"), lines.join("\n") + "\n").unwrap();

    let lines = text(&mut g, "docs/memo.docx", 16);
    std::fs::create_dir_all(root.join("docs")).unwrap();
    write_docx(&root.join("docs/memo.docx"), &lines);
    let lines = text(&mut g, "docs/deck.pptx", 16);
    write_pptx(
        &root.join("docs/deck.pptx"),
        &lines.chunks(6).map(<[String]>::to_vec).collect::<Vec<_>>(),
    );
    let lines = text(&mut g, "docs/statement.pdf", 16);
    write_pdf(&root.join("docs/statement.pdf"), &lines, false);
    let lines = text(&mut g, "docs/letter.pdf", 12);
    write_pdf(&root.join("docs/letter.pdf"), &lines, true);

    // Logs: PI inside structured log lines, among timestamps and ids.
    g.file = "var/app.log".into();
    let mut log = String::new();
    for i in 0..24 {
        let pi = g.pi_sentence(i);
        let decoy = g.decoy_sentence(i + 3);
        log.push_str(&format!(
            "2024-03-15T10:{:02}:{:02}.123Z INFO pid=4242 {pi}\n",
            i % 60,
            (i * 7) % 60
        ));
        log.push_str(&format!(
            "2024-03-15T10:{:02}:{:02}.456Z DEBUG {decoy}\n",
            i % 60,
            (i * 11) % 60
        ));
    }
    std::fs::create_dir_all(root.join("var")).unwrap();
    std::fs::write(root.join("var/app.log"), log).unwrap();

    // Tables: headings are the only context for bare digits.
    for (file, delim) in [
        ("hr/employees.csv", ","),
        ("hr/payroll.tsv", "\t"),
        ("hr/roster.xlsx", "x"),
    ] {
        g.file = file.into();
        let mut rows = vec![[
            "first_name",
            "last_name",
            "ssn",
            "phone",
            "dob",
            "card_number",
            "bank_account",
            "drivers_license",
            "employee_id",
        ]
        .map(String::from)
        .to_vec()];
        for i in 0..12 {
            let (first, last) = (g.rng.pick(FIRST).to_string(), g.rng.pick(LAST).to_string());
            let ssn = match i % 4 {
                0 => format!("{}-00-{}", 100 + g.rng.below(500), 1000 + g.rng.below(8999)),
                _ => g.ssn((i % 3) as u8),
            };
            let phone = format!("617-555-{:04}", g.rng.below(10000));
            let dob = format!(
                "19{}-0{}-1{}",
                50 + g.rng.below(49),
                1 + g.rng.below(9),
                g.rng.below(9)
            );
            let card = g.card(i % 2 == 0);
            let acct = if i % 3 == 0 {
                String::new()
            } else {
                g.account()
            };
            let lic = if i % 2 == 0 {
                g.licence()
            } else {
                String::new()
            };
            let emp = format!("{}", 10_000_000 + g.rng.below(89_999_999));
            rows.push(vec![first, last, ssn, phone, dob, card, acct, lic, emp]);
        }
        let path = root.join(file);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        if delim == "x" {
            write_xlsx(&path, &rows);
        } else {
            let quote = |v: &String| {
                if delim == "," && v.contains(' ') {
                    format!("\"{v}\"")
                } else {
                    v.clone()
                }
            };
            let body: Vec<String> = rows
                .iter()
                .map(|r| r.iter().map(quote).collect::<Vec<_>>().join(delim))
                .collect();
            std::fs::write(&path, body.join("\n") + "\n").unwrap();
        }
    }

    // JSON records.
    g.file = "api/customers.json".into();
    let mut recs = Vec::new();
    for i in 0..12 {
        let name = g.name();
        let (k, v) = match i % 4 {
            0 => ("ssn", g.ssn(0)),
            1 => ("card", g.card(i % 3 == 0)),
            2 => ("account_number", g.account()),
            _ => ("drivers_license", g.licence()),
        };
        let phone = format!("+1-617-555-{:04}", g.rng.below(10000));
        let id = format!(
            "{:08x}-{:04x}-4{:03x}-9{:03x}-{:012x}",
            g.rng.next() as u32,
            g.rng.below(65536),
            g.rng.below(4096),
            g.rng.below(4096),
            g.rng.next() & 0xffff_ffff_ffff
        );
        recs.push(format!(
            r#"  {{"id": "{id}", "name": "{name}", "{k}": "{v}", "phone": "{phone}", "created": "2024-02-{:02}T08:00:00Z", "order": {}, "version": "3.{}.{}"}}"#,
            1 + g.rng.below(28),
            1_000_000_000 + g.rng.below(999_999_999),
            g.rng.below(20),
            g.rng.below(999)
        ));
    }
    std::fs::create_dir_all(root.join("api")).unwrap();
    std::fs::write(
        root.join("api/customers.json"),
        format!("[\n{}\n]\n", recs.join(",\n")),
    )
    .unwrap();

    // Decoy-only files, and a binary file holding an SSN (skipped).
    g.file = "clean/readme.txt".into();
    std::fs::create_dir_all(root.join("clean")).unwrap();
    let decoys: Vec<String> = (0..64).map(|i| g.decoy_sentence(i)).collect();
    std::fs::write(root.join("clean/readme.txt"), decoys.join("\n")).unwrap();
    std::fs::write(
        root.join("clean/blob.bin"),
        b"\x7fELF\x00\x00SSN 536-22-1234\x00",
    )
    .unwrap();
    g.labels
}
