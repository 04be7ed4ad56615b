//! Hostile input: random bytes and mutated valid documents into every function never panic.

use super::{caller, config, ctx, events};
use crate::translate::{
    chat_request, chat_response, model_object, models_list, StreamTranslator, Target,
};

/// xorshift64*: deterministic pseudo-random bytes without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        usize::try_from(self.next() % n as u64).unwrap()
    }

    fn bytes(&mut self, len: usize) -> Vec<u8> {
        (0..len).map(|_| self.next().to_le_bytes()[0]).collect()
    }
}

const SEEDS: [&str; 6] = [
    r#"{"model":"m","messages":[{"role":"user","content":[{"type":"text","text":"a"},{"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0K"}}]},{"role":"assistant","tool_calls":[{"id":"c","function":{"name":"f","arguments":"{\"a\":[1,2]}"}}]},{"role":"tool","tool_call_id":"c","content":"x"}],"temperature":0.5,"tools":[{"type":"function","function":{"name":"f","parameters":{}}}],"response_format":{"type":"json_schema","json_schema":{"schema":{}}},"reasoning":{"effort":"low"},"stop":["x"],"seed":1,"max_tokens":5}"#,
    r#"{"model":"llama3","created_at":"2024-05-01T12:34:56.123456789+02:00","message":{"role":"assistant","content":"hé","thinking":"t","tool_calls":[{"function":{"name":"f","arguments":{"a":1}}}]},"done":true,"done_reason":"stop","prompt_eval_count":1,"eval_count":2}"#,
    "{\"model\":\"m\",\"message\":{\"content\":\"a\"},\"done\":false}\n{\"error\":\"x\"}\n",
    "{\"model\":\"m\",\"message\":{\"content\":\"é\",\"tool_calls\":[{\"function\":{\"name\":\"f\"}}]},\"done\":false}\n{\"done\":true,\"eval_count\":18446744073709551615,\"prompt_eval_count\":18446744073709551615}\n",
    r#"{"models":[{"name":"a/b:c","modified_at":"2024-02-29T23:59:60-23:59"},{"name":"/x"},{"name":"x/"},{"model":"y"}]}"#,
    r#"{"error":"nope"}"#,
];

/// Everything the module offers, on one input. Panics are the only failure.
fn exercise(input: &[u8], rng: &mut Rng) {
    let mut cfg = config();
    let _ = chat_request(input, &cfg, &caller());
    cfg.target = Target::OpenAi;
    let _ = chat_request(input, &cfg, &caller());
    for status in [200, 400, 404, 500, 0, 999] {
        let _ = chat_response(status, input, &ctx(true));
    }
    let _ = models_list(input);
    let _ = model_object(input, "a/b:c");
    let _ = model_object(input, "");

    // Stream: whole and in random pieces give the same well-formed SSE.
    let mut whole = StreamTranslator::new(ctx(true));
    let mut expected = whole.feed(input);
    expected.extend(whole.finish());
    let _ = events(&expected);
    let mut pieces = StreamTranslator::new(ctx(true));
    let mut got = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        let (a, b) = rest.split_at(1 + rng.below(rest.len()));
        got.extend(pieces.feed(a));
        rest = b;
    }
    got.extend(pieces.finish());
    assert_eq!(got, expected);
    assert!(pieces.ended() && whole.ended());
}

#[test]
fn random_bytes_never_panic() {
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..2_000 {
        let len = rng.below(300);
        let input = rng.bytes(len);
        exercise(&input, &mut rng);
    }
}

#[test]
fn mutated_documents_never_panic() {
    let mut rng = Rng(42);
    for seed in SEEDS {
        exercise(seed.as_bytes(), &mut rng);
        for _ in 0..1_500 {
            let mut doc = seed.as_bytes().to_vec();
            for _ in 0..=rng.below(4) {
                let at = rng.below(doc.len().max(1));
                match rng.below(4) {
                    0 => {
                        if let Some(b) = doc.get_mut(at) {
                            *b = rng.bytes(1)[0];
                        }
                    }
                    1 if at < doc.len() => {
                        doc.remove(at);
                    }
                    2 => {
                        let alphabet = b"{}[]\",:\n\\0e-9";
                        doc.insert(at.min(doc.len()), alphabet[rng.below(alphabet.len())]);
                    }
                    _ => doc.truncate(at),
                }
            }
            exercise(&doc, &mut rng);
        }
    }
}

#[test]
fn hostile_structures_never_panic() {
    let deep = format!(
        r#"{{"model":"m","messages":[{{"role":"user","content":"x"}}],"tools":[{{"type":"function","function":{{"name":"f","parameters":{}1{}}}}}]}}"#,
        "[".repeat(5000),
        "]".repeat(5000)
    );
    let mut rng = Rng(7);
    for input in [
        deep.as_str(),
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:;base64,===="}}]}]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:;base64,QQ==QUJD"}}]}]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ht"}}]}]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"ééééééééé"}}]}]}"#,
        r#"{"model":"m","messages":[{"role":"user","content":"x"}],"max_tokens":1e400}"#,
        r#"{"model":"m","messages":[{"role":"user","content":"x"}],"seed":18446744073709551615}"#,
        r#"{"model":"m","messages":[{"role":"user","content":"x"}],"n":-1}"#,
        r#"{"model":"m","message":{"tool_calls":[1,null,{"function":7}]},"done":true}"#,
    ] {
        exercise(input.as_bytes(), &mut rng);
    }
    // Bad base64 variants are refused, not accepted.
    for url in [
        "data:;base64,====",
        "data:;base64,QQ==QUJD",
        "data:;base64,",
        "ht",
    ] {
        let body = format!(
            r#"{{"model":"m","messages":[{{"role":"user","content":[{{"type":"image_url","image_url":"{url}"}}]}}]}}"#
        );
        assert!(
            chat_request(body.as_bytes(), &config(), &caller()).is_err(),
            "{url}"
        );
    }
    // A large valid image is accepted (checked in pieces).
    let big = "QUJD".repeat(300_000);
    let body = format!(
        r#"{{"model":"m","messages":[{{"role":"user","content":[{{"type":"image_url","image_url":"data:image/webp;base64,{big}QQ=="}}]}}]}}"#
    );
    assert!(chat_request(body.as_bytes(), &config(), &caller()).is_ok());
}
