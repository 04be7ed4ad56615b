//! `phone_cn`: a mainland China mobile number, `1[3-9]` and 9 more digits (11 in all).
//!
//! - an optional country prefix `+86`, `0086` or `86`, directly before the number or followed
//!   by one space or `-` (`+86 138 0013 8000`, `0086-13800138000`, `8613800138000`);
//! - optional separators inside, in the 3-4-4 grouping only, both the same (`138 0013 8000`,
//!   `138-0013-8000`; not `138 0013-8000`, not `1380 013 8000`);
//! - not preceded or followed by an identifier character (`[A-Za-z0-9_]`: no digit around it,
//!   not inside an identifier); Chinese text right around it is fine (`电话13800138000。`).

use super::text::Src;

/// The number at `s` (a `+`, or a digit at the start of a word): its end.
pub(super) fn at(src: &Src, s: usize) -> Option<usize> {
    match src.at(s)? {
        b'+' => {
            if src.starts_with(s + 1, b"86") {
                after_prefix(src, s + 3)
            } else {
                None
            }
        }
        b'0' => {
            if src.starts_with(s + 1, b"086") {
                after_prefix(src, s + 4)
            } else {
                None
            }
        }
        b'8' => {
            if src.at(s + 1)? == b'6' {
                after_prefix(src, s + 2)
            } else {
                None
            }
        }
        b'1' => mobile(src, s),
        _ => None,
    }
}

fn after_prefix(src: &Src, i: usize) -> Option<usize> {
    match src.at(i)? {
        b' ' | b'-' => mobile(src, i + 1),
        _ => mobile(src, i),
    }
}

/// `1[3-9]d` `dddd` `dddd`, the groups separated by nothing or the same single ` `/`-`.
fn mobile(src: &Src, i: usize) -> Option<usize> {
    if src.at(i)? != b'1' || src.digit(i + 1)? < 3 {
        return None;
    }
    src.digit(i + 2)?;
    let mut j = i + 3;
    let sep = match src.at(j)? {
        b @ (b' ' | b'-') => {
            j += 1;
            Some(b)
        }
        _ => None,
    };
    src.number(j, 4)?;
    j += 4;
    if let Some(sep) = sep {
        if src.at(j)? != sep {
            return None;
        }
        j += 1;
    }
    src.number(j, 4)?;
    j += 4;
    src.boundary_after(j).then_some(j)
}
