//! Tests of the built-in detectors: each detector's real-world formats and near misses
//! (checksums, dates, ranges, adjacency, lengths), the overlap rules, streaming (split anywhere
//! masks exactly like the whole text), hostile input (bounded work, no panics), and an ignored
//! throughput bench (`cargo test --release -p gateway-core protect::detect -- --ignored
//! --nocapture`).

use super::{Detectors, Kind, Span};

mod api_key;
mod bench;
mod card;
mod email;
mod hostile;
mod id_card_cn;
mod ipv4;
mod jwt;
mod kinds;
mod phone_cn;
mod ssn_us;
mod streaming;

/// Every span of `find(text, 0)` with `kinds` enabled, as (kind, matched text), after checking
/// what every result must be: sorted, not overlapping, on char boundaries.
pub(super) fn found<'a>(kinds: &[Kind], text: &'a str) -> Vec<(Kind, &'a str)> {
    let spans = spans(&Detectors::new(kinds), text, 0);
    spans
        .iter()
        .map(|s| (s.kind, text.get(s.start..s.end).unwrap()))
        .collect()
}

/// The matched texts with only `kind` enabled.
pub(super) fn matches(kind: Kind, text: &str) -> Vec<&str> {
    found(&[kind], text).into_iter().map(|(_, m)| m).collect()
}

/// `find(text, from)`, checked.
pub(super) fn spans(d: &Detectors, text: &str, from: usize) -> Vec<Span> {
    let mut out = Vec::new();
    d.find(text, from, &mut out);
    let mut last_end = from;
    for s in &out {
        assert!(
            s.start >= last_end,
            "overlap or unsorted in {text:?}: {out:?}"
        );
        assert!(s.end > s.start && s.end <= text.len());
        assert!(text.is_char_boundary(s.start) && text.is_char_boundary(s.end));
        last_end = s.end;
    }
    out
}

/// An independent Luhn check, to be sure of the test numbers.
pub(super) fn luhn(number: &str) -> bool {
    let digits: Vec<u32> = number.chars().filter_map(|c| c.to_digit(10)).collect();
    let sum: u32 = digits
        .iter()
        .rev()
        .enumerate()
        .map(|(i, &d)| {
            if i % 2 == 1 {
                (d * 2) / 10 + (d * 2) % 10
            } else {
                d
            }
        })
        .sum();
    sum % 10 == 0
}

/// `prefix` and the digit that makes it pass Luhn.
pub(super) fn with_luhn_digit(prefix: &str) -> String {
    (0..10)
        .map(|d| format!("{prefix}{d}"))
        .find(|n| luhn(n))
        .unwrap()
}

/// `prefix` and a digit that makes it fail Luhn.
pub(super) fn without_luhn_digit(prefix: &str) -> String {
    (0..10)
        .map(|d| format!("{prefix}{d}"))
        .find(|n| !luhn(n))
        .unwrap()
}

#[test]
fn luhn_helper_agrees_with_known_numbers() {
    for good in [
        "4111111111111111",
        "5555555555554444",
        "378282246310005",
        "6011111111111117",
        "3530111333300000",
        "6212345678901232",
    ] {
        assert!(luhn(good), "{good}");
    }
    assert!(!luhn("4111111111111112"));
    assert_eq!(with_luhn_digit("621234567890123"), "6212345678901232");
}
