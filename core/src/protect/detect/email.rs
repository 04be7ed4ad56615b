//! `email`: `local@domain`.
//!
//! - the local part: 1..=64 of `[A-Za-z0-9._%+-]` and `_` (common in real addresses, allowed by
//!   RFC 5322), not starting or ending with `.`, no `..`, and the whole run of those characters
//!   before the `@` (not preceded by one: `x..y@a.com` and a 65-character run are no match, and
//!   no shorter tail of them is taken);
//! - the domain: labels of `[A-Za-z0-9-]` (1..=63, not starting or ending with `-`) separated
//!   by dots, at least two, the last (the TLD) letters only and at least 2; it ends where the
//!   labels end (a sentence's full stop after it is not part of it) and is not followed by `_`;
//! - at most 254 bytes in all.

use super::text::Src;

const MAX_LOCAL: usize = 64;
const MAX_LABEL: usize = 63;
const MAX_TOTAL: usize = 254;

fn is_local(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'%' | b'+' | b'-')
}

fn is_label(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-'
}

/// The start of the local part that ends at the `@` at `at`, if it is a valid one.
pub(super) fn local_start(bytes: &[u8], at: usize) -> Option<usize> {
    let mut start = at;
    while let Some(&b) = start.checked_sub(1).and_then(|p| bytes.get(p)) {
        if !is_local(b) {
            break;
        }
        start -= 1;
        if at - start > MAX_LOCAL {
            return None;
        }
    }
    local_ok(bytes.get(start..at)?).then_some(start)
}

fn local_ok(local: &[u8]) -> bool {
    !local.is_empty()
        && local.first() != Some(&b'.')
        && local.last() != Some(&b'.')
        && !local.windows(2).any(|w| w == b"..")
}

/// The end of the email whose local part is `start..at` (the `@` at `at`).
pub(super) fn domain_end(src: &Src, start: usize, at: usize) -> Option<usize> {
    let limit = start + MAX_TOTAL;
    let mut i = at + 1;
    let mut labels = 0;
    let mut end = i;
    let mut tld_ok = false;
    loop {
        let label = i;
        let mut letters = true;
        while let Some(b) = src.at(i).filter(|&b| is_label(b)) {
            letters &= b.is_ascii_alphabetic();
            i += 1;
            if i > limit {
                return None;
            }
        }
        let len = i - label;
        if len == 0 {
            // After `@` or a dot: the domain ended before.
            break;
        }
        if len > MAX_LABEL
            || src.bytes.get(label) == Some(&b'-')
            || src.bytes.get(i - 1) == Some(&b'-')
        {
            return None;
        }
        labels += 1;
        end = i;
        tld_ok = letters && len >= 2;
        if src.at(i) != Some(b'.') {
            break;
        }
        i += 1;
    }
    (labels >= 2 && tld_ok && src.at(end) != Some(b'_')).then_some(end)
}

/// For a stream: the start of a trailing run that an `@` arriving next could make the local
/// part of an email (a run that could never be one, too long or badly dotted, is not).
pub(super) fn trailing_local_start(bytes: &[u8], from: usize) -> Option<usize> {
    let len = bytes.len();
    let mut start = len;
    while let Some(&b) = start.checked_sub(1).and_then(|p| bytes.get(p)) {
        if !is_local(b) || len - start >= MAX_LOCAL {
            break;
        }
        start -= 1;
    }
    // Still a local char before a full-length run: the run is too long.
    if start
        .checked_sub(1)
        .and_then(|p| bytes.get(p))
        .is_some_and(|&b| is_local(b))
    {
        return None;
    }
    let run = bytes.get(start..)?;
    let possible =
        !run.is_empty() && run.first() != Some(&b'.') && !run.windows(2).any(|w| w == b"..");
    (possible && start >= from).then_some(start)
}
