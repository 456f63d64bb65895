//! The prefilter in front of the candidate regex: skips non-digit bytes
//! eight at a time, then walks each run of digit groups (joined by single
//! spaces or hyphens) and keeps only runs that can hold a candidate shape:
//! a group of six or more digits, a 3-2-4 triple (SSN) or a 4-digit group
//! followed by one of 4 or 6 (card). Phones, dates and times never reach
//! the regex.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;
const ZEROS: u64 = 0x3030_3030_3030_3030;

/// Index of the first ASCII digit in `text[from..]`, if any.
fn next_digit(text: &[u8], mut from: usize) -> Option<usize> {
    while from + 8 <= text.len() {
        let word = u64::from_le_bytes(text[from..from + 8].try_into().expect("8 bytes"));
        // Byte b is a digit when b ^ '0' < 10: the "has a byte less than n"
        // trick. Borrows only run upwards, so the lowest flag is exact.
        let x = word ^ ZEROS;
        let mask = x.wrapping_sub(ONES * 10) & !x & HIGHS;
        if mask != 0 {
            return Some(from + (mask.trailing_zeros() / 8) as usize);
        }
        from += 8;
    }
    text[from..]
        .iter()
        .position(u8::is_ascii_digit)
        .map(|i| from + i)
}

/// Calls `found(start, end, direct)` for each stretch that may hold a
/// candidate. `direct`: a lone group of 6 to 19 digits, itself the
/// candidate (most numbers in numeric data), no regex needed. Otherwise a
/// run of groups of at most six digits that can hold a multi-group shape,
/// for the regex. A group of seven or more digits belongs to no
/// multi-group shape, so it splits the run around it; a group of more than
/// 19 digits is skipped (the edge rules would reject any part of it).
pub(crate) fn runs(text: &[u8], mut found: impl FnMut(usize, usize, bool)) {
    let mut pos = 0;
    while let Some(start) = next_digit(text, pos) {
        let (mut i, mut seg, mut groups, mut worth) = (start, start, 0usize, false);
        let (mut prev2, mut prev1) = (0usize, 0usize);
        let flush = |seg: usize,
                     end: usize,
                     groups: usize,
                     worth: bool,
                     found: &mut dyn FnMut(usize, usize, bool)| {
            if groups == 1 && end - seg == 6 {
                found(seg, end, true);
            } else if groups > 1 && worth {
                found(seg, end, false);
            }
        };
        loop {
            let g = i;
            while i < text.len() && text[i].is_ascii_digit() {
                i += 1;
            }
            let len = i - g;
            if len >= 7 {
                flush(seg, g.saturating_sub(1).max(seg), groups, worth, &mut found);
                if len <= 19 {
                    found(g, i, true);
                }
                (groups, worth, prev2, prev1) = (0, false, 0, 0);
            } else {
                if groups == 0 {
                    seg = g;
                }
                groups += 1;
                // a 6-digit group, an SSN's 3-2-4, a card's 4-4 (4-6 is covered by 6)
                worth |= len == 6 || (len == 4 && (prev1 == 4 || (prev2 == 3 && prev1 == 2)));
                (prev2, prev1) = (prev1, len);
            }
            let joined = i + 1 < text.len()
                && matches!(text[i], b' ' | b'-')
                && text[i + 1].is_ascii_digit();
            if !joined {
                flush(seg, i, groups, worth, &mut found);
                break;
            }
            i += 1;
        }
        pos = i;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_digits_anywhere_in_a_word() {
        for n in 0..20 {
            let mut t = vec![b'x'; 20];
            t[n] = b'7';
            assert_eq!(next_digit(&t, 0), Some(n));
        }
        assert_eq!(next_digit(b"/:;abc\x00\xff", 0), None);
    }

    #[test]
    fn only_runs_that_can_hold_a_shape() {
        let got = |t: &[u8]| {
            let mut v = Vec::new();
            runs(t, |s, e, direct| {
                v.push((String::from_utf8_lossy(&t[s..e]).into_owned(), direct))
            });
            v
        };
        let t = b"call 617-555-1234 on 2024-03-15 at 10:22; ssn 536-22-1234, card 4539 1488 0343 6467, acct 123456";
        let want = [
            ("536-22-1234", false),
            ("4539 1488 0343 6467", false),
            ("123456", true),
        ];
        assert_eq!(got(t), want.map(|(s, d)| (s.to_string(), d)));
        let t = b"12 536221234 4539148803436467 1234 56 123456789012345678901 536 22 1234";
        let want = [
            ("536221234", true),
            ("4539148803436467", true),
            ("536 22 1234", false),
        ];
        assert_eq!(got(t), want.map(|(s, d)| (s.to_string(), d)));
    }
}
