//! Throughput of `find`, natively: `cargo test --release -p gateway-core protect::detect --
//! --ignored --nocapture`.

use std::time::Instant;

use super::jwt::JWT_IO;
use crate::protect::detect::{Detectors, Kind};

const SIZE: usize = 10 * 1024 * 1024;

/// Ordinary English with numbers, and words starting like keys and tokens, but no value.
const PARAGRAPH: &str = "The quick brown fox jumps over the lazy dog while seven sleepy \
    giraffes examine extraordinary rock samples near the river. Researchers reported that 42 of \
    100 samples, collected in 2023 across 7 sites, showed signs of erosion; see section 3.2 and \
    Appendix A for the full results. Several experts expressed surprise: \"We expected fewer \
    anomalies,\" said Dr. Ashworth, whose team at the Geological Survey has been running \
    experiments since March. Growth rates rose 3.5% year over year, roughly 1,200 tons. ";

const VALUES: &[&str] = &[
    "bob.smith@example.com",
    "+86 138 0013 8000",
    "11010519491231002X",
    "4111 1111 1111 1111",
    "078-05-1120",
    "192.168.10.20",
    "AKIAIOSFODNN7EXAMPLE",
    JWT_IO,
];

fn english(size: usize) -> String {
    let mut text = String::with_capacity(size + PARAGRAPH.len());
    while text.len() < size {
        text.push_str(PARAGRAPH);
    }
    text
}

fn with_values(size: usize) -> (String, usize) {
    let mut text = String::with_capacity(size + 1024);
    let mut planted = 0;
    while text.len() < size {
        let before = text.len();
        while text.len() - before < 1000 {
            text.push_str(PARAGRAPH);
        }
        text.push_str(VALUES[planted % VALUES.len()]);
        text.push_str(". ");
        planted += 1;
    }
    (text, planted)
}

fn mb_per_s(d: &Detectors, text: &str) -> (f64, usize) {
    let mut best = f64::MAX;
    let mut found = 0;
    for _ in 0..5 {
        let mut out = Vec::new();
        let start = Instant::now();
        d.find(text, 0, &mut out);
        best = best.min(start.elapsed().as_secs_f64());
        found = out.len();
    }
    (text.len() as f64 / best / 1e6, found)
}

#[test]
#[ignore]
fn throughput() {
    let all = Detectors::new(&Kind::ALL);
    let plain = english(SIZE);
    let (speed, found) = mb_per_s(&all, &plain);
    assert_eq!(found, 0);
    println!("find, all detectors, English without matches: {speed:.0} MB/s");
    let (valued, planted) = with_values(SIZE);
    let (speed, found) = mb_per_s(&all, &valued);
    assert_eq!(found, planted);
    println!("find, all detectors, a match every ~1 kB ({planted}): {speed:.0} MB/s");
    let email = Detectors::new(&[Kind::Email]);
    let (speed, _) = mb_per_s(&email, &plain);
    println!("find, email only, English without matches: {speed:.0} MB/s");
    let start = Instant::now();
    let u = all.undecided_from(&plain, 0);
    let secs = start.elapsed().as_secs_f64();
    println!(
        "undecided_from, all detectors, English: {:.0} MB/s (u = len - {})",
        plain.len() as f64 / secs / 1e6,
        plain.len() - u
    );
}
