//! Ollama's NDJSON streams translated to OpenAI's Server-Sent Events (`StreamTranslator` for
//! chats, `CompletionStreamTranslator` for completions), fed arbitrary bytes cut into pieces at
//! points the fuzzer chooses. Properties: never panics; the events sent for the body in pieces
//! are those sent for it in one piece (and the usage seen is the same); what is sent is a run of
//! `data: <JSON>` events ending with exactly one `data: [DONE]`.
#![no_main]

use arbitrary::Arbitrary;
use gateway_core::translate::{CompletionStreamTranslator, ResponseContext, StreamTranslator};
use gateway_fuzz::chunks::split;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    include_usage: bool,
    /// Where the body is cut (modulo its length).
    cuts: Vec<u16>,
    /// Ollama's answer body (the rest of the input).
    body: &'a [u8],
}

/// The two translators behind one face: feed, finish, usage.
trait Translator {
    fn feed(&mut self, chunk: &[u8]) -> Vec<u8>;
    fn finish(&mut self) -> Vec<u8>;
    fn usage(&self) -> Option<(u64, u64)>;
    fn ended(&self) -> bool;
}

macro_rules! translator {
    ($t:ty) => {
        impl Translator for $t {
            fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
                <$t>::feed(self, chunk)
            }
            fn finish(&mut self) -> Vec<u8> {
                <$t>::finish(self)
            }
            fn usage(&self) -> Option<(u64, u64)> {
                <$t>::usage(self)
            }
            fn ended(&self) -> bool {
                <$t>::ended(self)
            }
        }
    };
}
translator!(StreamTranslator);
translator!(CompletionStreamTranslator);

fuzz_target!(|input: Input<'_>| {
    let ctx = || ResponseContext {
        id: "chatcmpl-fuzz".into(),
        now_s: 1_900_000_000,
        include_usage: input.include_usage,
    };
    check(|| Box::new(StreamTranslator::new(ctx())), &input);
    check(|| Box::new(CompletionStreamTranslator::new(ctx())), &input);
});

fn check(new: impl Fn() -> Box<dyn Translator>, input: &Input<'_>) {
    let mut whole = new();
    let mut expected = whole.feed(input.body);
    expected.extend(whole.finish());
    assert!(whole.ended());
    assert!(whole.finish().is_empty(), "finish is not idempotent");

    let mut pieces = new();
    let mut sent = Vec::new();
    for piece in split(input.body, &input.cuts) {
        sent.extend(pieces.feed(piece));
    }
    sent.extend(pieces.finish());
    assert!(
        sent == expected,
        "chunking changed the events:\n{:?}\n{:?}",
        String::from_utf8_lossy(&sent),
        String::from_utf8_lossy(&expected)
    );
    assert_eq!(pieces.usage(), whole.usage());
    well_formed(&expected);
}

fn well_formed(sse: &[u8]) {
    let text = std::str::from_utf8(sse).unwrap_or_else(|_| panic!("events are not UTF-8"));
    let body = text
        .strip_suffix("\n\n")
        .unwrap_or_else(|| panic!("unterminated: {text:?}"));
    let events: Vec<&str> = body.split("\n\n").collect();
    let (last, rest) = events.split_last().unwrap_or_else(|| panic!("no events"));
    assert_eq!(*last, "data: [DONE]", "does not end with [DONE]");
    for event in rest {
        let data = event
            .strip_prefix("data: ")
            .unwrap_or_else(|| panic!("not a data event: {event:?}"));
        assert!(
            matches!(serde_json::from_str::<Value>(data), Ok(Value::Object(_))),
            "event data is not a JSON object: {event:?}"
        );
    }
}
