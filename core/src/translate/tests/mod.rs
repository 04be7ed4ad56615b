//! Tests of the translation: mapping vectors, stream behaviour, hostile input.

use std::collections::HashMap;

use serde_json::Value;

use super::{Caller, ResponseContext, StreamTranslator, Target, TranslateConfig};

mod completions;
mod embeddings;
mod fast_answer;
mod garbage;
mod stream;
mod vectors;

pub(super) const ID: &str = "chatcmpl-test";
pub(super) const NOW: u64 = 1_700_000_000;

pub(super) fn config() -> TranslateConfig {
    TranslateConfig {
        target: Target::Ollama,
        default_model: Some("qwen3:32b".into()),
        model_aliases: HashMap::from([("gpt-4o".to_string(), "qwen3:32b".to_string())]),
        inject_user: true,
    }
}

pub(super) fn caller() -> Caller {
    Caller {
        user_id: Some("alice".into()),
        session_id: Some("s-1".into()),
    }
}

pub(super) fn ctx(include_usage: bool) -> ResponseContext {
    ResponseContext {
        id: ID.into(),
        now_s: NOW,
        include_usage,
    }
}

/// SSE bytes -> events: each `data:` payload parsed as JSON, `[DONE]` as the string "[DONE]".
/// Panics (test only) on anything that is not well-formed SSE of that kind.
pub(super) fn events(sse: &[u8]) -> Vec<Value> {
    let text = std::str::from_utf8(sse).unwrap();
    assert!(
        text.is_empty() || text.ends_with("\n\n"),
        "unterminated: {text}"
    );
    text.split_terminator("\n\n")
        .map(|event| {
            let data = event.strip_prefix("data: ").expect(event);
            assert!(!data.contains('\n'), "{data}");
            if data == "[DONE]" {
                Value::String("[DONE]".into())
            } else {
                serde_json::from_str(data).unwrap()
            }
        })
        .collect()
}

/// The whole stream fed in `pieces`, then finished.
pub(super) fn run_stream(include_usage: bool, pieces: &[&[u8]]) -> Vec<u8> {
    let mut t = StreamTranslator::new(ctx(include_usage));
    let mut out = Vec::new();
    for piece in pieces {
        out.extend(t.feed(piece));
    }
    out.extend(t.finish());
    assert!(t.ended());
    out
}
