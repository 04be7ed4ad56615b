//! Hostile input: long runs that look like the start of values, and random text. Every one
//! must be answered in linear time (these run in milliseconds), without a panic, and stream
//! like the whole text.

use super::spans;
use super::streaming::Rng;
use crate::protect::detect::{Detectors, Kind, Span, LEFT_CONTEXT_BYTES, MAX_UNDECIDED_BYTES};

const N: usize = 100_000;

fn all() -> Detectors {
    Detectors::new(&Kind::ALL)
}

/// `find` over the whole text, and the same text streamed in 1000-byte pieces.
fn check(text: &str) -> Vec<Span> {
    let d = all();
    let want = spans(&d, text, 0);
    let u = d.undecided_from(text, 0);
    assert!(text.len() - u <= MAX_UNDECIDED_BYTES);
    let mut held = String::new();
    let (mut base, mut ctx) = (0, 0);
    let mut got = Vec::new();
    for piece in text.as_bytes().chunks(1000) {
        held.push_str(std::str::from_utf8(piece).unwrap());
        let u = d.undecided_from(&held, ctx);
        got.extend(
            spans(&d, &held, ctx)
                .into_iter()
                .filter(|s| s.start < u)
                .map(|s| (s.start + base, s.end + base)),
        );
        let keep = u.saturating_sub(LEFT_CONTEXT_BYTES);
        held.drain(..keep);
        base += keep;
        ctx = u - keep;
    }
    got.extend(
        spans(&d, &held, ctx)
            .into_iter()
            .map(|s| (s.start + base, s.end + base)),
    );
    let want_pairs: Vec<(usize, usize)> = want.iter().map(|s| (s.start, s.end)).collect();
    assert_eq!(got, want_pairs);
    want
}

#[test]
fn long_runs_of_digits_are_no_match() {
    assert!(check(&"1".repeat(N)).is_empty());
    assert!(check(&"0".repeat(N)).is_empty());
    assert!(check(&"1234567890".repeat(N / 10)).is_empty());
    assert!(check(&"1.".repeat(N / 2)).is_empty());
    assert!(check(&"1.2.3.4.".repeat(N / 8)).is_empty());
    assert!(check(&"255.".repeat(N / 4)).is_empty());
    assert!(check(&"123-45-".repeat(N / 7)).is_empty());
    assert!(check(&"+86".repeat(N / 3)).is_empty());
    assert!(check(&"1 ".repeat(N / 2)).is_empty());
    // Groups of 4: at most a card here and there, found fast.
    let groups = check(&"4111 ".repeat(N / 5));
    assert!(groups.len() < N / 16);
}

#[test]
fn at_signs_are_no_match() {
    assert!(check(&"a@".repeat(N / 2)).is_empty());
    assert!(check(&"@".repeat(N)).is_empty());
    assert!(check(&"a.".repeat(N / 2)).is_empty());
    assert!(check(&"a@a.".repeat(N / 4)).is_empty());
    assert!(check(&format!("{}@example.com", "a".repeat(N))).is_empty());
    assert!(check(&format!("bob@{}com", "a.".repeat(N / 2))).is_empty());
    assert!(check(&format!("bob@{}", "a".repeat(N))).is_empty());
}

#[test]
fn token_like_runs_are_no_match() {
    assert!(check(&"eyJ.eyJ.".repeat(N / 8)).is_empty());
    assert!(check(&format!("eyJ{}", "A".repeat(N))).is_empty());
    assert!(check(&"eyJ".repeat(N / 3)).is_empty());
    assert!(check(&"sk-".repeat(N / 3)).is_empty());
    assert!(check(&"AKIA".repeat(N / 4)).is_empty());
    assert!(check(&"ghp_".repeat(N / 4)).is_empty());
    assert!(check(&"-e".repeat(N / 2)).is_empty());
}

#[test]
fn token_like_runs_that_match_are_found_in_bounded_pieces() {
    // A valid `{"alg":"none"}` header repeated with dots: `H.H.H` tokens one after another.
    let h = "eyJhbGciOiJub25lIn0";
    let found = check(&format!("{h}.").repeat(N / (h.len() + 1)));
    assert_eq!(found.len(), N / (h.len() + 1) / 3 + 1);
    // The last is what is left: `H.H.`, an unsigned token.
    let (last, full) = found.split_last().unwrap();
    assert!(full.iter().all(|s| s.end - s.start == 3 * h.len() + 2));
    assert_eq!(last.end - last.start, 2 * h.len() + 2);
    // A base64 run after a valid start: cut at the cap.
    let found = check(&format!("{h}.eyJ{}", "A".repeat(N)));
    assert_eq!(found.len(), 1);
    assert!(found.iter().all(|s| s.end - s.start == MAX_UNDECIDED_BYTES));
    // Keys: `sk-1` then a long run is one capped key.
    let found = check(&format!("sk-1{}", "a".repeat(N)));
    assert_eq!(found.len(), 1);
    assert_eq!(found[0].end, 256);
    // Keys do not start inside the run of another: one key, the run's first 256 bytes.
    let slack = check(&"xoxb-".repeat(N / 5));
    assert_eq!(slack.len(), 1);
    assert_eq!(slack[0].end, 256);
    assert_eq!(check(&"sk-1".repeat(N / 4)).len(), 1);
}

#[test]
fn random_text_never_panics() {
    const CHARS: &[&str] = &[
        "0", "1", "4", "9", "a", "e", "y", "J", "s", "k", "A", "x", "@", ".", "-", "_", "+", " ",
        "中", "é", "😀", "\u{0}", "%", "=", "/",
    ];
    let mut rng = Rng::new(7);
    let d = all();
    for _ in 0..2000 {
        let len = rng.below(200);
        let text: String = (0..len).map(|_| CHARS[rng.below(CHARS.len())]).collect();
        for from in [
            0,
            1,
            2,
            rng.below(text.len() + 2),
            text.len(),
            text.len() + 5,
        ] {
            let mut out = Vec::new();
            d.find(&text, from, &mut out);
            let u = d.undecided_from(&text, from);
            assert!(u <= text.len());
            if from <= text.len() && text.is_char_boundary(from) {
                assert!(u >= from && text.is_char_boundary(u));
            }
        }
    }
}
