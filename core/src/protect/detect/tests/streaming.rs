//! Split-anywhere streaming masks exactly like the whole text: the masker's procedure over
//! every split of planted texts, random texts in random pieces, and the `undecided_from`
//! invariant checked directly against random continuations.

use super::jwt::{token, JWT_IO};
use super::spans;
use crate::protect::detect::{Detectors, Kind, Span, LEFT_CONTEXT_BYTES, MAX_UNDECIDED_BYTES};

/// What a stream masker does: append a piece, `u = undecided_from(held, ctx)`, emit the matches
/// of `find(held, ctx)` starting before `u` (which must end by `u`), keep `held[u..]` with at
/// least `LEFT_CONTEXT_BYTES` before it; at the end, `find` over the rest. Spans come back in
/// whole-text offsets.
fn streamed(d: &Detectors, pieces: &[&str]) -> Vec<Span> {
    let mut held = String::new();
    let mut base = 0;
    let mut ctx = 0;
    let mut out = Vec::new();
    let shift = |s: Span, base: usize| Span {
        start: s.start + base,
        end: s.end + base,
        kind: s.kind,
    };
    for piece in pieces {
        held.push_str(piece);
        let u = d.undecided_from(&held, ctx);
        assert!(
            u >= ctx && u <= held.len() && held.is_char_boundary(u),
            "{held:?} {ctx} {u}"
        );
        assert!(held.len() - u <= MAX_UNDECIDED_BYTES);
        for s in spans(d, &held, ctx) {
            if s.start < u {
                assert!(s.end <= u, "{held:?}: {s:?} crosses {u}");
                out.push(shift(s, base));
            }
        }
        let mut keep = u.saturating_sub(LEFT_CONTEXT_BYTES);
        while !held.is_char_boundary(keep) {
            keep -= 1;
        }
        held.drain(..keep);
        base += keep;
        ctx = u - keep;
    }
    out.extend(spans(d, &held, ctx).into_iter().map(|s| shift(s, base)));
    out
}

fn whole(d: &Detectors, text: &str) -> Vec<Span> {
    spans(d, text, 0)
}

fn detector_sets() -> Vec<Detectors> {
    let mut sets = vec![Detectors::new(&Kind::ALL)];
    sets.extend(Kind::ALL.iter().map(|&k| Detectors::new(&[k])));
    sets.push(Detectors::new(&[Kind::CreditCard, Kind::BankCard]));
    sets.push(Detectors::new(&[Kind::Email, Kind::ApiKey, Kind::Jwt]));
    sets
}

/// Texts with planted values of every kind, near misses, and multi-byte characters; several
/// start or end with a value.
fn planted() -> Vec<String> {
    let unsigned = token(r#"{"alg":"none"}"#, r#"{"sub":"u"}"#, "");
    vec![
        "邮箱 bob@example.com, 手机 +86 138 0013 8000 和 0086-13800138000；身份证 \
         11010519491231002X / 错 110105194912310021。"
            .into(),
        "visa 4111 1111 1111 1111 12/25, amex 3782 822463 10005, 5555555555554444; bank \
         6222 0212 3456 7890 128; bad 4111 1111 1111 1112 4111-1111-1111-1111"
            .into(),
        "ssn 078-05-1120 and 123 45 6789 not 666-12-3456; ip 192.168.1.1, 10.0.0.1.2, 1.2.3.4."
            .into(),
        "key=sk-proj-Ab3_dEf-GhIjKlMnOpQrStUvWxYz0123456789 AKIAIOSFODNN7EXAMPLE \
         ghp_aB3aB3aB3aB3aB3aB3aB3aB3aB3aB3aB3aB3 xoxb-1234567890-abc \
         AIzaSyA-1_bSyA-1_bSyA-1_bSyA-1_bSyA-1_b sk_live_4eC39HqLyjWDarjtT1zdp7dc"
            .into(),
        format!("Bearer {JWT_IO}. and {unsigned} end {JWT_IO}"),
        "a@b.co x@y.z a@a@a.com 8613800138000 +8613800138000 1.2.3.4.5 sk-learn-stuff \
         bob@example.com+x 4111111111111111@example.com"
            .into(),
        "13800138000 starts, 1.1.1.1 v1.2.3.4 1.2.3.4a 01.2.3.4 ends 4111111111111111".into(),
        "x@example.com".into(),
        JWT_IO.to_string(),
        "联系：zhang.san@qq.com，电话13800138000，卡号6212345678901232。".into(),
    ]
}

fn char_boundaries(text: &str) -> impl Iterator<Item = usize> + '_ {
    (0..=text.len()).filter(|&i| text.is_char_boundary(i))
}

#[test]
fn split_in_two_anywhere_masks_like_the_whole_text() {
    for d in detector_sets() {
        for text in planted() {
            let want = whole(&d, &text);
            for k in char_boundaries(&text) {
                let (a, b) = text.split_at(k);
                assert_eq!(streamed(&d, &[a, b]), want, "{d:?} {text:?} split at {k}");
            }
        }
    }
}

#[test]
fn split_in_three_masks_like_the_whole_text() {
    let d = Detectors::new(&Kind::ALL);
    for text in planted() {
        let want = whole(&d, &text);
        let cuts: Vec<usize> = char_boundaries(&text).collect();
        // Every pair on the shorter texts, evenly spread pairs on the longer ones.
        let step = (cuts.len() / 50).max(1);
        for &i in cuts.iter().step_by(step) {
            for &j in cuts.iter().filter(|&&j| j >= i).step_by(step) {
                let pieces = [&text[..i], &text[i..j], &text[j..]];
                assert_eq!(streamed(&d, &pieces), want, "{text:?} cut at {i}, {j}");
            }
        }
    }
}

#[test]
fn char_by_char_masks_like_the_whole_text() {
    for d in detector_sets() {
        for text in planted() {
            let pieces: Vec<String> = text.chars().map(String::from).collect();
            let pieces: Vec<&str> = pieces.iter().map(String::as_str).collect();
            assert_eq!(streamed(&d, &pieces), whole(&d, &text), "{d:?} {text:?}");
        }
    }
}

#[test]
fn long_tokens_stream_like_the_whole_text() {
    let payload = format!(r#"{{"data":"{}"}}"#, "x".repeat(10_000));
    let long = token(r#"{"alg":"HS256"}"#, &payload, "sig");
    let just_fits = token(
        r#"{"alg":"HS256"}"#,
        &format!(r#"{{"d":"{}"}}"#, "y".repeat(6000)),
        "s",
    );
    assert!(just_fits.len() < MAX_UNDECIDED_BYTES);
    let d = Detectors::new(&Kind::ALL);
    for text in [
        format!("a {long} b bob@example.com"),
        format!("{just_fits} 13800138000"),
        long.clone(),
    ] {
        let want = whole(&d, &text);
        assert!(!want.is_empty());
        for k in (0..text.len())
            .step_by(97)
            .chain([text.len() - 1, 8192, 8193, 8194])
        {
            let k = k.min(text.len());
            let (a, b) = text.split_at(k);
            assert_eq!(streamed(&d, &[a, b]), want, "split at {k}");
        }
        for size in [1000, 4096, 8191] {
            let pieces: Vec<&str> = text
                .as_bytes()
                .chunks(size)
                .map(|c| std::str::from_utf8(c).unwrap())
                .collect();
            assert_eq!(streamed(&d, &pieces), want, "chunks of {size}");
        }
    }
}

/// A small deterministic PRNG (xorshift64*), so the random tests are reproducible.
pub(super) struct Rng(u64);

impl Rng {
    pub(super) fn new(seed: u64) -> Self {
        Self(seed.max(1))
    }

    pub(super) fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    pub(super) fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}

/// Pieces of values and of what surrounds them, so that random concatenations often make
/// values, near values, and values cut by separators.
const FRAGMENTS: &[&str] = &[
    "4111",
    "1111",
    " ",
    "-",
    ".",
    "@",
    "example",
    "com",
    "eyJ",
    "eyJhbGciOiJub25lIn0",
    "sk-",
    "abc0123456789defghij",
    "1",
    "38",
    "0013",
    "8000",
    "+86",
    "86",
    "0086",
    "中",
    "x",
    "_",
    "AKIA",
    "IOSFODNN7EXAMPLE",
    "12",
    "3",
    "0",
    "255",
    "078",
    "05",
    "1120",
    "ghp_",
    "xoxb-",
    "e",
    "11010519491231002X",
    "6212345678901232",
    "378282246310005",
    "3782",
    "822463",
    "10005",
    ",",
    "a",
    "\n",
    "é",
    "AIza",
    "sk_live_",
    "0123456789abcdef",
];

fn random_text(rng: &mut Rng) -> String {
    let n = rng.below(30);
    (0..n)
        .map(|_| FRAGMENTS[rng.below(FRAGMENTS.len())])
        .collect()
}

#[test]
fn random_texts_in_random_pieces_mask_like_the_whole_text() {
    let mut rng = Rng::new(0x5eed);
    let sets = detector_sets();
    for round in 0..3000 {
        let text = random_text(&mut rng);
        let d = &sets[round % sets.len()];
        let want = whole(d, &text);
        let cuts: Vec<usize> = char_boundaries(&text).collect();
        for _ in 0..4 {
            let mut points: Vec<usize> = (0..rng.below(5))
                .map(|_| cuts[rng.below(cuts.len())])
                .collect();
            points.sort_unstable();
            let mut pieces = Vec::new();
            let mut at = 0;
            for p in points {
                pieces.push(&text[at..p]);
                at = p;
            }
            pieces.push(&text[at..]);
            assert_eq!(streamed(d, &pieces), want, "{d:?} {text:?} {pieces:?}");
        }
        let chars: Vec<String> = text.chars().map(String::from).collect();
        let chars: Vec<&str> = chars.iter().map(String::as_str).collect();
        assert_eq!(streamed(d, &chars), want, "{d:?} {text:?} char by char");
    }
}

#[test]
fn no_continuation_changes_what_is_decided() {
    let mut rng = Rng::new(42);
    let d = Detectors::new(&Kind::ALL);
    for _ in 0..5000 {
        let text = random_text(&mut rng);
        let u = d.undecided_from(&text, 0);
        let before: Vec<Span> = whole(&d, &text)
            .into_iter()
            .filter(|s| s.start < u)
            .collect();
        assert!(before.iter().all(|s| s.end <= u), "{text:?}");
        for _ in 0..4 {
            let more = format!("{text}{}", random_text(&mut rng));
            let after: Vec<Span> = whole(&d, &more)
                .into_iter()
                .filter(|s| s.start < u)
                .collect();
            assert_eq!(
                after,
                before,
                "{text:?} + {:?} (u = {u})",
                &more[text.len()..]
            );
        }
    }
}
