//! `credit_card` and `bank_card`: 13..=19 digits passing the Luhn check.
//!
//! - `credit_card`: a known issuer prefix with one of its lengths: Visa `4` (13, 16, 19),
//!   Mastercard `51`-`55` and `2221`-`2720` (16), Amex `34`/`37` (15), Discover `6011`,
//!   `644`-`649`, `65` (16-19), JCB `3528`-`3589` (16-19), Diners `300`-`305`, `36`, `38`
//!   (14-19), UnionPay `62` (16-19).
//! - `bank_card`: 16..=19 digits, not starting with `0` (China's bank cards, UnionPay debit,
//!   whatever the issuer). With both enabled, a number that is a credit card is reported as
//!   one, otherwise as a bank card if it is one.
//!
//! Written as one run of digits, or grouped with single spaces or dashes (the same separator
//! throughout): groups of 4 with a last group of 1..=4 (`4111 1111 1111 1111`,
//! `6222 0200 1234 5678 901`), Amex 4-6-5 (`3782 822463 10005`), Diners 4-6-4. Of the
//! groupings that can be read at a start, the longest that is a card wins (so the `123` of
//! `4111 1111 1111 1111 123` is not taken unless the 19 digits are a card). Not preceded or
//! followed by an identifier character; followed by a separator and more digits is fine (an
//! expiry date or a CVV).

use super::text::Src;
use super::Kind;

/// At most 5 groups (4+4+4+4+3) whose groups are at most 6 digits.
const MAX_GROUPS: usize = 5;
const MAX_GROUP: usize = 6;

#[derive(Clone, Copy, PartialEq, Eq)]
enum Grouping {
    /// One run of digits.
    None,
    /// Groups of 4, the last 1..=4.
    Fours,
    Amex,
    Diners,
}

/// The card at `s` (a digit at the start of a word): its end and kind.
pub(super) fn at(src: &Src, s: usize, credit: bool, bank: bool) -> Option<(usize, Kind)> {
    let mut digits = [0u8; MAX_GROUPS * MAX_GROUP];
    let mut n = 0;
    // The first run: the whole number, or the first group of 4.
    let mut i = s;
    while let Some(d) = src.digit(i) {
        if n >= 19 {
            return None;
        }
        *digits.get_mut(n)? = d;
        n += 1;
        i += 1;
    }
    if (13..=19).contains(&n) {
        if !src.boundary_after(i) {
            return None;
        }
        let kind = classify(digits.get(..n)?, Grouping::None, credit, bank)?;
        return Some((i, kind));
    }
    if n != 4 {
        return None;
    }
    let sep = match src.at(i)? {
        b @ (b' ' | b'-') => b,
        _ => return None,
    };
    // Each group: its length, and where it ends.
    let mut groups = [(4usize, i); MAX_GROUPS];
    let mut count = 1;
    while count < MAX_GROUPS && src.at(i) == Some(sep) {
        let start = i + 1;
        let mut j = start;
        while let Some(d) = src.digit(j) {
            if j - start >= MAX_GROUP {
                break;
            }
            *digits.get_mut(n + j - start)? = d;
            j += 1;
        }
        let len = j - start;
        if len == 0 || len >= MAX_GROUP && src.digit(j).is_some() {
            break;
        }
        n += len;
        *groups.get_mut(count)? = (len, j);
        count += 1;
        i = j;
    }
    // The longest grouping that is a card.
    for k in (2..=count).rev() {
        let lens = groups.get(..k)?;
        let Some(grouping) = grouping(lens) else {
            continue;
        };
        let total: usize = lens.iter().map(|&(len, _)| len).sum();
        let end = lens.last()?.1;
        if !src.boundary_after(end) {
            continue;
        }
        if let Some(kind) = classify(digits.get(..total)?, grouping, credit, bank) {
            return Some((end, kind));
        }
    }
    None
}

fn grouping(groups: &[(usize, usize)]) -> Option<Grouping> {
    let lens = groups.iter().map(|&(len, _)| len);
    let total: usize = lens.clone().sum();
    match groups {
        [(4, _), (6, _), (5, _)] => Some(Grouping::Amex),
        [(4, _), (6, _), (4, _)] => Some(Grouping::Diners),
        [init @ .., (last, _)]
            if (13..=19).contains(&total)
                && (1..=4).contains(last)
                && init.iter().all(|&(len, _)| len == 4) =>
        {
            Some(Grouping::Fours)
        }
        _ => None,
    }
}

fn classify(digits: &[u8], grouping: Grouping, credit: bool, bank: bool) -> Option<Kind> {
    if !luhn(digits) {
        return None;
    }
    if credit {
        if let Some(issuer) = issuer(digits) {
            let grouped_ok = match grouping {
                Grouping::None | Grouping::Fours => true,
                Grouping::Amex => issuer == Issuer::Amex,
                Grouping::Diners => issuer == Issuer::Diners,
            };
            if grouped_ok {
                return Some(Kind::CreditCard);
            }
        }
    }
    let bank_ok = (16..=19).contains(&digits.len())
        && digits.first().is_some_and(|&d| d != 0)
        && matches!(grouping, Grouping::None | Grouping::Fours);
    (bank && bank_ok).then_some(Kind::BankCard)
}

/// The Luhn (mod 10) check.
pub(super) fn luhn(digits: &[u8]) -> bool {
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(k, &d)| {
            let d = u32::from(d);
            if k % 2 == 1 {
                let d2 = d * 2;
                if d2 > 9 {
                    d2 - 9
                } else {
                    d2
                }
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Issuer {
    Visa,
    Mastercard,
    Amex,
    Discover,
    Jcb,
    Diners,
    UnionPay,
}

/// The issuer whose prefix and length `digits` has.
fn issuer(digits: &[u8]) -> Option<Issuer> {
    let prefix = |k: usize| -> u32 {
        digits
            .iter()
            .take(k)
            .fold(0, |acc, &d| acc * 10 + u32::from(d))
    };
    let (p2, p3, p4) = (prefix(2), prefix(3), prefix(4));
    let len = digits.len();
    let issuer = if p2 / 10 == 4 {
        Issuer::Visa
    } else if (51..=55).contains(&p2) || (2221..=2720).contains(&p4) {
        Issuer::Mastercard
    } else if p2 == 34 || p2 == 37 {
        Issuer::Amex
    } else if p4 == 6011 || (644..=649).contains(&p3) || p2 == 65 {
        Issuer::Discover
    } else if (3528..=3589).contains(&p4) {
        Issuer::Jcb
    } else if (300..=305).contains(&p3) || p2 == 36 || p2 == 38 {
        Issuer::Diners
    } else if p2 == 62 {
        Issuer::UnionPay
    } else {
        return None;
    };
    let lengths_ok = match issuer {
        Issuer::Visa => matches!(len, 13 | 16 | 19),
        Issuer::Mastercard => len == 16,
        Issuer::Amex => len == 15,
        Issuer::Discover | Issuer::Jcb | Issuer::UnionPay => (16..=19).contains(&len),
        Issuer::Diners => (14..=19).contains(&len),
    };
    lengths_ok.then_some(issuer)
}
