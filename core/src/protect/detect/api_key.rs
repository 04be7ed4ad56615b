//! `api_key`: secrets with a recognisable prefix.
//!
//! - OpenAI/Anthropic `sk-` (also `sk-proj-`, `sk-ant-api03-`…) + at least 20
//!   `[A-Za-z0-9_-]`, at least one of them a digit (so that prose like
//!   `sk-learn-compatible-estimators` is not a key);
//! - AWS `AKIA`/`ASIA` + exactly 16 `[A-Z0-9]`;
//! - GitHub `ghp_`/`gho_`/`ghu_`/`ghs_`/`ghr_` + exactly 36 `[A-Za-z0-9]`, and `github_pat_` + at
//!   least 22 `[A-Za-z0-9_]`;
//! - Slack `xoxa-`/`xoxb-`/`xoxp-`/`xoxr-`/`xoxs-` + at least 10 `[A-Za-z0-9-]`;
//! - Google `AIza` + exactly 35 `[A-Za-z0-9_-]`;
//! - Stripe `sk_live_`/`rk_live_`/`sk_test_` + at least 16 `[A-Za-z0-9]`.
//!
//! Not preceded by an identifier character or `-` (so a key never starts inside the run of
//! another: `sk-sk-sk-…` is scanned once, not once per `sk`, keeping the work linear). A
//! fixed-length key must not be followed by another character of its alphabet (or `_`); a
//! variable-length one takes its whole run, cut at [`MAX_BYTES`] (prefix included: the rest of a
//! longer run is not masked).

use super::text::{is_base64url, is_ident, Src};

/// The longest key reported.
pub(super) const MAX_BYTES: usize = 256;

/// The key at `s` (a word start whose first byte is `s`, `r`, `A`, `g` or `x`): its end.
pub(super) fn at(src: &Src, s: usize) -> Option<usize> {
    if src.before(s) == Some(b'-') {
        return None;
    }
    match src.at(s)? {
        b's' => {
            if src.starts_with(s, b"sk-") {
                variable(src, s, 3, 20, is_base64url, true)
            } else if src.starts_with(s, b"sk_live_") || src.starts_with(s, b"sk_test_") {
                variable(src, s, 8, 16, is_alnum, false)
            } else {
                None
            }
        }
        b'r' => {
            if src.starts_with(s, b"rk_live_") {
                variable(src, s, 8, 16, is_alnum, false)
            } else {
                None
            }
        }
        b'A' => {
            if src.starts_with(s, b"AKIA") || src.starts_with(s, b"ASIA") {
                fixed(src, s, 4, 16, is_upper_or_digit, is_ident)
            } else if src.starts_with(s, b"AIza") {
                fixed(src, s, 4, 35, is_base64url, is_base64url)
            } else {
                None
            }
        }
        b'g' => {
            if src.starts_with(s, b"gh")
                && matches!(src.at(s + 2)?, b'p' | b'o' | b'u' | b's' | b'r')
                && src.at(s + 3)? == b'_'
            {
                fixed(src, s, 4, 36, is_alnum, is_ident)
            } else if src.starts_with(s, b"github_pat_") {
                variable(src, s, 11, 22, is_ident, false)
            } else {
                None
            }
        }
        b'x' => {
            if src.starts_with(s, b"xox")
                && matches!(src.at(s + 3)?, b'a' | b'b' | b'p' | b'r' | b's')
                && src.at(s + 4)? == b'-'
            {
                variable(src, s, 5, 10, is_alnum_or_dash, false)
            } else {
                None
            }
        }
        _ => None,
    }
}

/// `prefix` bytes then at least `min` of `body`, as many as there are (up to the cap).
fn variable(
    src: &Src,
    s: usize,
    prefix: usize,
    min: usize,
    body: fn(u8) -> bool,
    needs_digit: bool,
) -> Option<usize> {
    let cap = s + MAX_BYTES;
    let start = s + prefix;
    let mut i = start;
    let mut digit = false;
    while i < cap {
        match src.at(i) {
            Some(b) if body(b) => {
                digit |= b.is_ascii_digit();
                i += 1;
            }
            _ => break,
        }
    }
    (i - start >= min && (digit || !needs_digit)).then_some(i)
}

/// `prefix` bytes then exactly `len` of `body`, not followed by a byte that `continues`.
fn fixed(
    src: &Src,
    s: usize,
    prefix: usize,
    len: usize,
    body: fn(u8) -> bool,
    continues: fn(u8) -> bool,
) -> Option<usize> {
    let start = s + prefix;
    let end = start + len;
    if !(start..end).all(|i| src.at(i).is_some_and(body)) {
        return None;
    }
    (!src.at(end).is_some_and(continues)).then_some(end)
}

fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}

fn is_upper_or_digit(b: u8) -> bool {
    b.is_ascii_uppercase() || b.is_ascii_digit()
}

fn is_alnum_or_dash(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}
