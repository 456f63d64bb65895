//! Validity checks and masking: SSN structure rules, the Luhn checksum,
//! card issuer prefixes, and the masked forms that are the only way a
//! finding's value ever leaves this crate.

/// True when nine ASCII digits can be an issued SSN: area not 000, 666 or
/// 900-999, group not 00, serial not 0000 (SSA rules since 2011 still forbid
/// these), and not one of the famous fakes (see [`is_known_fake_ssn`]).
pub(crate) fn ssn_valid(d: &[u8]) -> bool {
    if d.len() != 9 {
        return false;
    }
    let area = &d[0..3];
    let group = &d[3..5];
    let serial = &d[5..9];
    if area == b"000" || area == b"666" || area[0] == b'9' {
        return false;
    }
    if group == b"00" || serial == b"0000" {
        return false;
    }
    !is_known_fake_ssn(d)
}

/// Numbers that are printed everywhere as examples and never identify a
/// person: the Woolworth wallet card (078-05-1120), the SSA's own
/// advertisement number (219-09-9999), 123-45-6789, and numbers whose
/// three parts are each one repeated digit (111-11-1111, 111-22-3333,
/// 555-55-5555 ...: documentation and test data). They are not reported
/// at all (docs/SCAN.md).
pub(crate) fn is_known_fake_ssn(d: &[u8]) -> bool {
    matches!(d, b"078051120" | b"219099999" | b"123456789")
        || (all_same(&d[0..3]) && all_same(&d[3..5]) && all_same(&d[5..9]))
}

fn all_same(d: &[u8]) -> bool {
    d.iter().all(|&b| b == d[0])
}

/// The Luhn (mod 10) checksum over ASCII digits.
pub(crate) fn luhn(d: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, &b) in d.iter().rev().enumerate() {
        let mut v = u32::from(b - b'0');
        if i % 2 == 1 {
            v *= 2;
            if v > 9 {
                v -= 9;
            }
        }
        sum += v;
    }
    sum % 10 == 0
}

/// The first `n` digits as a number (n <= 6).
fn prefix(d: &[u8], n: usize) -> u32 {
    d[..n]
        .iter()
        .fold(0, |acc, &b| acc * 10 + u32::from(b - b'0'))
}

/// True when `d` (13-19 ASCII digits) has a known issuer's prefix and a
/// length that issuer uses: Visa, Mastercard (51-55, 2221-2720), American
/// Express (34, 37), Discover (6011, 622126-622925, 644-649, 65), JCB
/// (3528-3589), Diners Club (300-305, 3095, 36, 38, 39), UnionPay (62), Mir
/// (2200-2204) and Maestro (50, 56-58, 6304, 6759, 6761-6763).
pub(crate) fn issuer_known(d: &[u8]) -> bool {
    let n = d.len();
    if !(13..=19).contains(&n) || all_same(d) {
        return false;
    }
    let p2 = prefix(d, 2);
    let p3 = prefix(d, 3);
    let p4 = prefix(d, 4);
    let p6 = prefix(d, 6);
    match d[0] {
        b'4' => matches!(n, 13 | 16 | 19),
        b'5' => match p2 {
            51..=55 => n == 16,
            50 | 56..=58 => n >= 13,
            _ => false,
        },
        b'2' => {
            ((2221..=2720).contains(&p4) && n == 16) || ((2200..=2204).contains(&p4) && n >= 16)
        }
        b'3' => match p2 {
            34 | 37 => n == 15,
            35 => (3528..=3589).contains(&p4) && n >= 16,
            30 => ((300..=305).contains(&p3) || p4 == 3095) && n >= 14,
            36 | 38 | 39 => n >= 14,
            _ => false,
        },
        b'6' => {
            let discover = p4 == 6011
                || (622_126..=622_925).contains(&p6)
                || (644..=649).contains(&p3)
                || p2 == 65;
            let other = p2 == 62 || matches!(p4, 6304 | 6759 | 6761..=6763);
            ((discover || other) && n >= 16) || matches!(p4, 6304 | 6759 | 6761..=6763)
        }
        _ => false,
    }
}

/// Test card numbers that payment processors publish for developers
/// (Stripe, Braintree, Adyen, PayPal documentation). They fill source trees
/// and fixtures, belong to nobody, and are not reported.
const TEST_CARDS: &[&[u8]] = &[
    b"4111111111111111",
    b"4242424242424242",
    b"4012888888881881",
    b"4222222222222",
    b"4000056655665556",
    b"4000000000000002",
    b"4000000000000077",
    b"4000000000003220",
    b"5555555555554444",
    b"5105105105105100",
    b"5200828282828210",
    b"2223003122003222",
    b"378282246310005",
    b"371449635398431",
    b"378734493671000",
    b"6011111111111117",
    b"6011000990139424",
    b"3530111333300000",
    b"3566002020360505",
    b"30569309025904",
    b"38520000023237",
    b"36227206271667",
    b"6200000000000005",
];

/// Visa, Mastercard, American Express or Discover at their usual length
/// (16, 16, 15, 16): what a bare card number with no context must be before
/// it is reported, since long numeric constants pass Luhn one time in ten.
pub(crate) fn major_brand(d: &[u8]) -> bool {
    let p2 = prefix(d, 2);
    let p4 = prefix(d, 4);
    match d.len() {
        15 => p2 == 34 || p2 == 37,
        16 => {
            d[0] == b'4'
                || (51..=55).contains(&p2)
                || (2221..=2720).contains(&p4)
                || p4 == 6011
                || p2 == 65
                || (644..=649).contains(&prefix(d, 3))
        }
        _ => false,
    }
}

/// A card number passes when its issuer is known, the Luhn check holds,
/// and it is not a published test number.
pub(crate) fn card_valid(d: &[u8]) -> bool {
    issuer_known(d) && luhn(d) && !TEST_CARDS.contains(&d)
}

fn stars_then_tail(d: &[u8], keep: usize) -> String {
    let keep = keep.min(d.len());
    let mut s = "*".repeat(d.len() - keep);
    s.push_str(std::str::from_utf8(&d[d.len() - keep..]).unwrap_or(""));
    s
}

/// `***-**-6789` whatever the original spelling.
pub(crate) fn mask_ssn(d: &[u8]) -> String {
    format!("***-**-{}", std::str::from_utf8(&d[5..9]).unwrap_or(""))
}

/// One star per hidden digit, then the last four (`************1234`), the
/// most PCI DSS allows to be shown.
pub(crate) fn mask_card(d: &[u8]) -> String {
    stars_then_tail(d, 4)
}

/// Last four digits of ten or more, last two of shorter numbers, so that a
/// short account number is never mostly shown.
pub(crate) fn mask_account(d: &[u8]) -> String {
    stars_then_tail(d, if d.len() >= 10 { 4 } else { 2 })
}

/// Driver's licence: the letter, if any, and all but the last three digits
/// hidden (`*****678` for `S12345678`, `******789` for nine digits).
pub(crate) fn mask_licence(d: &[u8]) -> String {
    stars_then_tail(d, 3)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ssn_rules() {
        assert!(ssn_valid(b"536221234"));
        for bad in [
            "000221234",
            "666221234",
            "900221234",
            "999221234",
            "536001234",
            "536220000",
            "078051120",
            "219099999",
            "123456789",
            "111111111",
        ] {
            assert!(!ssn_valid(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn luhn_and_issuers() {
        for good in [
            "4111111111111111",
            "5555555555554444",
            "2223003122003222",
            "378282246310005",
            "6011111111111117",
            "3530111333300000",
            "30569309025904",
            "6200000000000005",
        ] {
            assert!(
                issuer_known(good.as_bytes()) && luhn(good.as_bytes()),
                "{good}"
            );
            assert!(
                !card_valid(good.as_bytes()),
                "{good} is a published test number"
            );
        }
        assert!(card_valid(b"4539148803436467"));
        assert!(major_brand(b"4539148803436467") && !major_brand(b"5029875928683246316"));
        assert!(card_valid(b"5425233430109903"));
        assert!(!card_valid(b"4111111111111112"), "Luhn fails");
        assert!(!card_valid(b"9111111111111115"), "no issuer 9");
        assert!(!card_valid(b"378282246310005000"), "Amex is 15 digits");
    }

    #[test]
    fn masks_hide_all_but_the_tail() {
        assert_eq!(mask_ssn(b"536221234"), "***-**-1234");
        assert_eq!(mask_card(b"4111111111111111"), "************1111");
        assert_eq!(mask_account(b"12345678"), "******78");
        assert_eq!(mask_account(b"1234567890"), "******7890");
        assert_eq!(mask_licence(b"12345678"), "*****678");
    }
}
