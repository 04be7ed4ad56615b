//! Stream behaviour: split invariance, UTF-8, last line, limits, idempotent finish.

use serde_json::{json, Value};

use super::{ctx, events, run_stream};
use crate::translate::{StreamTranslator, MAX_STREAM_LINE_BYTES};

/// A stream exercising every kind of line, with multi-byte UTF-8 in content and a tool call.
fn sample(final_newline: bool) -> String {
    let mut s = String::new();
    for (content, thinking) in [
        ("", "réfléchir 🤔"),
        ("Grüße, ", ""),
        ("世界 🌍", ""),
        ("", ""),
    ] {
        s.push_str(
            &json!({"model": "llama3", "created_at": "2024-05-01T12:34:56Z",
                    "message": {"role": "assistant", "content": content, "thinking": thinking},
                    "done": false})
            .to_string(),
        );
        s.push('\n');
    }
    s.push_str("\r\n\n");
    s.push_str(
        &json!({"model": "llama3", "message": {"role": "assistant", "content": "",
                "tool_calls": [{"function": {"index": 0, "name": "wetter", "arguments": {"stadt": "Köln"}}}]},
                "done": false})
        .to_string(),
    );
    s.push('\n');
    s.push_str(
        r#"{"model":"llama3","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","prompt_eval_count":12,"eval_count":34}"#,
    );
    if final_newline {
        s.push('\n');
    }
    s
}

#[test]
fn split_invariance() {
    for final_newline in [true, false] {
        for include_usage in [true, false] {
            let input = sample(final_newline);
            let bytes = input.as_bytes();
            let whole = run_stream(include_usage, &[bytes]);
            let ev = events(&whole);
            assert_eq!(ev.len(), 6 + usize::from(include_usage), "{ev:?}");
            assert_eq!(ev.last(), Some(&json!("[DONE]")));

            for at in 0..=bytes.len() {
                let (a, b) = bytes.split_at(at);
                assert_eq!(run_stream(include_usage, &[a, b]), whole, "split at {at}");
            }
            let ones: Vec<&[u8]> = bytes.chunks(1).collect();
            assert_eq!(run_stream(include_usage, &ones), whole, "1-byte chunks");
            for size in [2, 3, 7, 64] {
                let pieces: Vec<&[u8]> = bytes.chunks(size).collect();
                assert_eq!(
                    run_stream(include_usage, &pieces),
                    whole,
                    "{size}-byte chunks"
                );
            }
        }
    }
}

#[test]
fn multibyte_utf8_split_across_chunks() {
    let line = r#"{"model":"llama3","message":{"content":"€𝄞"},"done":false}"#;
    let bytes = line.as_bytes();
    let euro = line.find('€').unwrap();
    let mut t = StreamTranslator::new(ctx(false));
    assert!(t.feed(bytes.get(..euro + 1).unwrap()).is_empty());
    assert!(t.feed(bytes.get(euro + 1..euro + 5).unwrap()).is_empty());
    assert!(t.feed(bytes.get(euro + 5..).unwrap()).is_empty());
    let out = t.feed(b"\n");
    let ev = events(&out);
    assert_eq!(ev.len(), 1);
    assert_eq!(ev[0]["choices"][0]["delta"]["content"], "€𝄞");
}

#[test]
fn last_line_without_newline_is_translated_by_finish() {
    let mut t = StreamTranslator::new(ctx(true));
    let out = t.feed(br#"{"model":"m","message":{"content":"x"},"done":true,"done_reason":"length","prompt_eval_count":3,"eval_count":4}"#);
    assert!(out.is_empty());
    assert_eq!(t.usage(), None);
    assert!(!t.ended());
    let ev = events(&t.finish());
    assert_eq!(ev.len(), 3);
    assert_eq!(ev[0]["choices"][0]["finish_reason"], "length");
    assert_eq!(
        ev[0]["choices"][0]["delta"],
        json!({"role": "assistant", "content": "x"})
    );
    assert_eq!(
        ev[1]["usage"],
        json!({"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7})
    );
    assert_eq!(ev[2], json!("[DONE]"));
    assert_eq!(t.usage(), Some((3, 4)));
    assert!(t.ended());
    assert!(t.finish().is_empty(), "finish is idempotent");
    assert!(t.feed(b"{\"error\":\"late\"}\n").is_empty(), "ended");
}

#[test]
fn done_line_ends_the_stream_at_once() {
    let mut t = StreamTranslator::new(ctx(false));
    let out = t.feed(b"{\"model\":\"m\",\"message\":{\"content\":\"\"},\"done\":true}\n{\"garbage");
    let ev = events(&out);
    assert_eq!(ev.len(), 2);
    assert_eq!(
        ev[0]["choices"][0],
        json!({"index": 0, "delta": {"role": "assistant"}, "finish_reason": "stop"})
    );
    assert!(t.ended());
    assert_eq!(t.usage(), Some((0, 0)));
    assert!(t.finish().is_empty());
}

#[test]
fn error_line_mid_stream_ends_it() {
    let mut t = StreamTranslator::new(ctx(true));
    let first =
        events(&t.feed(b"{\"model\":\"m\",\"message\":{\"content\":\"a\"},\"done\":false}\n"));
    assert_eq!(first.len(), 1);
    let ev = events(&t.feed(b"{\"error\":{\"nested\":true}}\n{\"model\":\"m\",\"done\":true}\n"));
    assert_eq!(
        ev,
        vec![
            json!({"error": {"message": "the model server failed while streaming",
                             "type": "api_error", "param": null, "code": "UPSTREAM_ERROR",
                         "details": "the model server failed while streaming"}}),
            json!("[DONE]")
        ]
    );
    assert!(t.ended());
    assert_eq!(t.usage(), None);
    assert!(t.finish().is_empty());
}

#[test]
fn over_long_line_ends_the_stream() {
    let long = vec![b'x'; MAX_STREAM_LINE_BYTES + 1];
    let want = vec![
        json!({"error": {"message": "the model server sent a stream line that is too long",
                         "type": "api_error", "param": null, "code": "UPSTREAM_ERROR",
                         "details": "the model server sent a stream line that is too long"}}),
        json!("[DONE]"),
    ];
    // At once, with its newline.
    let mut with_newline = long.clone();
    with_newline.push(b'\n');
    assert_eq!(events(&run_stream(false, &[&with_newline])), want);
    // In pieces, never completed: detected while buffering, before finish.
    let mut t = StreamTranslator::new(ctx(false));
    let mut out = Vec::new();
    for piece in long.chunks(100_000) {
        out.extend(t.feed(piece));
    }
    assert_eq!(events(&out), want);
    assert!(t.ended());
    assert!(t.finish().is_empty());
    // Exactly at the limit is fine (here: invalid JSON, but not "too long").
    let limit = vec![b' '; MAX_STREAM_LINE_BYTES];
    let ev = events(&run_stream(false, &[&limit, b"\n"]));
    assert_eq!(
        ev[0]["error"]["message"],
        "the model server ended the stream before it was complete"
    );
}

#[test]
fn invalid_utf8_line_is_an_error_event() {
    let ev = events(&run_stream(false, &[b"{\"model\":\"\xff\"}\n"]));
    assert_eq!(
        ev[0]["error"]["message"],
        "the model server sent an invalid stream line"
    );
    assert_eq!(ev.len(), 2);
}

#[test]
fn empty_body_is_cut_short() {
    let ev = events(&run_stream(true, &[]));
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0]["error"]["type"], Value::String("api_error".into()));
}

#[test]
fn thinking_is_sent_as_reasoning_and_reasoning_content() {
    let input = concat!(
        r#"{"model":"m","message":{"role":"assistant","content":"","thinking":"Let me see… 🤔"},"done":false}"#,
        "\n",
        r#"{"model":"m","message":{"role":"assistant","content":"42","thinking":""},"done":false}"#,
        "\n",
        r#"{"model":"m","message":{"role":"assistant","content":"","thinking":" done"},"done":true,"done_reason":"stop"}"#,
        "\n",
    );
    let ev = events(&run_stream(false, &[input.as_bytes()]));
    assert_eq!(ev.len(), 4, "{ev:?}");
    assert_eq!(
        ev[0]["choices"][0]["delta"],
        json!({"role": "assistant", "reasoning": "Let me see… 🤔",
               "reasoning_content": "Let me see… 🤔"})
    );
    // No reasoning fields when the line has no thinking.
    assert_eq!(ev[1]["choices"][0]["delta"], json!({"content": "42"}));
    // Thinking on the done line too.
    assert_eq!(
        ev[2]["choices"][0],
        json!({"index": 0, "delta": {"reasoning": " done", "reasoning_content": " done"},
               "finish_reason": "stop"})
    );
    assert_eq!(ev[3], json!("[DONE]"));
}
