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

/// Iterates over `(start, end)` of the runs worth a regex search.
pub(crate) fn runs(text: &[u8]) -> impl Iterator<Item = (usize, usize)> + '_ {
    let mut pos = 0;
    std::iter::from_fn(move || {
        while let Some(start) = next_digit(text, pos) {
            let (mut i, mut worth) = (start, false);
            let (mut prev2, mut prev1) = (0usize, 0usize);
            loop {
                let g = i;
                while i < text.len() && text[i].is_ascii_digit() {
                    i += 1;
                }
                let len = i - g;
                worth |= len >= 6
                    || (prev2 == 3 && prev1 == 2 && len == 4)
                    || (prev1 == 4 && (len == 4 || len == 6));
                (prev2, prev1) = (prev1, len);
                let joined = i + 1 < text.len()
                    && matches!(text[i], b' ' | b'-')
                    && text[i + 1].is_ascii_digit();
                if !joined {
                    break;
                }
                i += 1;
            }
            pos = i;
            if worth {
                return Some((start, i));
            }
        }
        pos = text.len();
        None
    })
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
        let t = b"call 617-555-1234 on 2024-03-15 at 10:22; ssn 536-22-1234, card 4539 1488 0343 6467, acct 123456";
        let got: Vec<&[u8]> = runs(t).map(|(s, e)| &t[s..e]).collect();
        assert_eq!(
            got,
            vec![&b"536-22-1234"[..], b"4539 1488 0343 6467", b"123456"]
        );
    }
}
