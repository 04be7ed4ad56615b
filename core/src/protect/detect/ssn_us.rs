//! `ssn_us`: a US Social Security number written `AAA-GG-SSSS` (or `AAA GG SSSS`, both
//! separators the same).
//!
//! The area is not `000`, `666` or `900`-`999`, the group not `00`, the serial not `0000`.
//! Bare 9-digit runs (`123456789`) are deliberately NOT matched: any 9-digit number (an order
//! id, a phone extension, an amount in cents) would pass these range checks, so matching them
//! would mask far more ordinary numbers than SSNs. Not preceded or followed by an identifier
//! character (`[A-Za-z0-9_]`: no adjacent digit, not inside a word).

use super::text::Src;

/// The number at `s` (a digit at the start of a word): its end.
pub(super) fn at(src: &Src, s: usize) -> Option<usize> {
    let area = src.number(s, 3)?;
    let sep = src.at(s + 3)?;
    if sep != b'-' && sep != b' ' {
        return None;
    }
    let group = src.number(s + 4, 2)?;
    if src.at(s + 6)? != sep {
        return None;
    }
    let serial = src.number(s + 7, 4)?;
    let end = s + 11;
    if !src.boundary_after(end) {
        return None;
    }
    let valid = area != 0 && area != 666 && area < 900 && group != 0 && serial != 0;
    valid.then_some(end)
}
