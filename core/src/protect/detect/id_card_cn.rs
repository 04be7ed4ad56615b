//! `id_card_cn`: a mainland China resident identity card number (GB 11643-1999), 18 chars.
//!
//! - 17 digits and a check char `[0-9Xx]`; the first digit (the region) is 1-9;
//! - digits 7..14 (1-based) a real calendar date `YYYYMMDD`, year 1900..=2099 (leap years
//!   right: `19000229` is not a date, `20000229` is);
//! - the check char by ISO 7064 MOD 11-2: the digits weighted 7,9,10,5,8,4,2,1,6,3,7,9,10,5,8,
//!   4,2, summed, the remainder mod 11 mapped through `10X98765432`;
//! - not preceded or followed by an identifier character (`[A-Za-z0-9_]`).

use super::text::Src;

const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
const CHECK: &[u8; 11] = b"10X98765432";

/// The number at `s` (a digit at the start of a word): its end.
pub(super) fn at(src: &Src, s: usize) -> Option<usize> {
    let mut digits = [0u8; 17];
    for (k, slot) in digits.iter_mut().enumerate() {
        *slot = src.digit(s + k)?;
    }
    let check = src.at(s + 17)?.to_ascii_uppercase();
    let end = s + 18;
    if !src.boundary_after(end) || digits.first().is_none_or(|&d| d == 0) {
        return None;
    }
    let year = value(digits.get(6..10)?);
    let month = value(digits.get(10..12)?);
    let day = value(digits.get(12..14)?);
    if !(1900..=2099).contains(&year) || !valid_date(year, month, day) {
        return None;
    }
    let sum: u32 = digits
        .iter()
        .zip(WEIGHTS)
        .map(|(&d, w)| u32::from(d) * w)
        .sum();
    let expected = CHECK.get(usize::try_from(sum % 11).ok()?)?;
    (check == *expected).then_some(end)
}

fn value(digits: &[u8]) -> u32 {
    digits.iter().fold(0, |acc, &d| acc * 10 + u32::from(d))
}

fn valid_date(year: u32, month: u32, day: u32) -> bool {
    let leap = year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
    let days = match month {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    (1..=days).contains(&day)
}
