//! `ipv4`: a dotted quad `a.b.c.d`, each octet `0`-`255` without leading zeros (`0` itself is
//! fine, `01` is not).
//!
//! Not part of a longer dotted-number sequence (`1.2.3.4.5`, a version `10.0.0.1.2`: neither
//! the first four nor the last four are an address) and not preceded or followed by an
//! identifier character (`v1.2.3.4`, `1.2.3.4a`). A sentence may end right after it
//! (`1.2.3.4.` is an address).

use super::text::Src;

/// The address at `s` (a digit at the start of a word): its end.
pub(super) fn at(src: &Src, s: usize) -> Option<usize> {
    // `digit.` before: the middle of a longer dotted number.
    if src.before(s) == Some(b'.') && src.before(s - 1).is_some_and(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut i = octet(src, s)?;
    for _ in 0..3 {
        if src.at(i)? != b'.' {
            return None;
        }
        i = octet(src, i + 1)?;
    }
    match src.at(i) {
        Some(b) if super::text::is_ident(b) => None,
        Some(b'.') if src.at(i + 1).is_some_and(|b| b.is_ascii_digit()) => None,
        _ => Some(i),
    }
}

/// One octet at `i`: its end.
fn octet(src: &Src, i: usize) -> Option<usize> {
    let first = src.digit(i)?;
    let mut value = u32::from(first);
    let mut j = i + 1;
    while let Some(d) = src.digit(j) {
        if first == 0 || j - i >= 3 {
            return None;
        }
        value = value * 10 + u32::from(d);
        j += 1;
    }
    (value <= 255).then_some(j)
}
