//! Data protection over arbitrary text, with every built-in detector, custom regexes and deny
//! patterns: prompt bodies (`protect::json::protect_request`), streamed text
//! (`protect::stream::StreamMasker`) and the model's answers in each framing
//! (`protect::answer::AnswerMasker`), cut into pieces at points the fuzzer chooses.
//! Properties: never panics; a stream masks exactly as the whole text would be masked (the
//! module's promise), counting the same values; an answer sent in pieces is sent as in one
//! piece; a masked JSON prompt (one that starts like JSON) is still JSON.
#![no_main]

use arbitrary::Arbitrary;
use gateway_core::protect::answer::{AnswerMasker, Framing};
use gateway_core::protect::json::protect_request;
use gateway_core::protect::stream::StreamMasker;
use gateway_core::protect::{Counts, Protector};
use gateway_fuzz::chunks::{split, split_str};
use gateway_fuzz::settings;
use libfuzzer_sys::fuzz_target;

const FRAMINGS: [Framing; 5] = [
    Framing::Json,
    Framing::Ndjson,
    Framing::Sse,
    Framing::Text,
    Framing::Binary,
];

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    framing: u8,
    cuts: Vec<u16>,
    body: &'a [u8],
}

thread_local! {
    static PROTECTOR: Protector = settings::protector();
}

fuzz_target!(|input: Input<'_>| {
    PROTECTOR.with(|p| {
        prompt(p, input.body);
        if let Ok(text) = std::str::from_utf8(input.body) {
            stream(p, text, &input.cuts);
        }
        let framing = FRAMINGS[usize::from(input.framing) % FRAMINGS.len()];
        answer(p, framing, input.body, &input.cuts);
    });
});

fn prompt(p: &Protector, body: &[u8]) {
    let mut counts = Counts::default();
    let Ok(Some(masked)) = protect_request(p, body, &mut counts) else {
        return;
    };
    assert!(!counts.is_empty(), "masked without counting");
    // Only bodies that start like JSON are read as JSON (a bare number is text).
    if matches!(body.trim_ascii_start().first(), Some(b'{' | b'[')) {
        assert!(
            serde_json::from_slice::<serde_json::Value>(&masked).is_ok(),
            "a masked JSON prompt is no longer JSON"
        );
    }
}

fn stream(p: &Protector, text: &str, cuts: &[u16]) {
    let mut whole_counts = Counts::default();
    let whole = p
        .mask(text, &mut whole_counts)
        .unwrap_or_else(|| text.to_string());

    let mut masker = StreamMasker::new();
    let mut counts = Counts::default();
    let mut sent = String::new();
    for piece in split_str(text, cuts) {
        sent.push_str(&masker.push(p, piece, &mut counts));
    }
    sent.push_str(&masker.finish(p, &mut counts));
    assert_eq!(
        sent, whole,
        "streamed masking differs from masking the whole text"
    );
    assert_eq!(counts, whole_counts, "streamed masking counted differently");
    assert_eq!(masker.held_bytes(), 0);
}

fn answer(p: &Protector, framing: Framing, body: &[u8], cuts: &[u16]) {
    let mut whole = AnswerMasker::new(framing);
    let mut expected = whole.feed(p, body);
    expected.extend(whole.finish(p));

    let mut pieces = AnswerMasker::new(framing);
    let mut sent = Vec::new();
    for piece in split(body, cuts) {
        sent.extend(pieces.feed(p, piece));
    }
    sent.extend(pieces.finish(p));
    assert!(
        sent == expected,
        "{framing:?} answer masked differently in pieces:\n{:?}\n{:?}",
        String::from_utf8_lossy(&sent),
        String::from_utf8_lossy(&expected)
    );
    assert_eq!(
        pieces.counts, whole.counts,
        "{framing:?} answer counted differently"
    );
    if framing == Framing::Binary {
        assert_eq!(sent, body, "a binary answer was changed");
    }
}
