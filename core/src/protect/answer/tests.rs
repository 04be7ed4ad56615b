use serde_json::{json, Value};

use super::*;
use crate::protect::tests::protector;

const CARD: &str = "4111111111111111";

/// Ollama's NDJSON stream answering `pieces`, then its done line.
fn ndjson(pieces: &[&str]) -> Vec<u8> {
    let mut body = Vec::new();
    for piece in pieces {
        let line = json!({"model": "qwen3", "created_at": "2026-01-01T00:00:00Z",
                          "message": {"role": "assistant", "content": piece}, "done": false});
        body.extend_from_slice(line.to_string().as_bytes());
        body.push(b'\n');
    }
    let done = json!({"model": "qwen3", "message": {"role": "assistant", "content": ""},
                      "done": true, "done_reason": "stop", "eval_count": 3});
    body.extend_from_slice(done.to_string().as_bytes());
    body.push(b'\n');
    body
}

/// OpenAI's SSE stream answering `pieces`, a closing chunk and `[DONE]`.
fn sse(pieces: &[&str]) -> Vec<u8> {
    let mut body = Vec::new();
    for piece in pieces {
        let chunk = json!({"id": "c1", "object": "chat.completion.chunk", "model": "qwen3",
                           "choices": [{"index": 0, "delta": {"content": piece},
                                        "finish_reason": null}]});
        body.extend_from_slice(format!("data: {chunk}\n\n").as_bytes());
    }
    let last = json!({"id": "c1", "object": "chat.completion.chunk", "model": "qwen3",
                      "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]});
    body.extend_from_slice(format!("data: {last}\n\ndata: [DONE]\n\n").as_bytes());
    body
}

/// Feeds `body` in the given chunks; the bytes sent.
fn pass(framing: Framing, chunks: &[&[u8]]) -> (Vec<u8>, Counts) {
    let p = protector();
    let mut masker = AnswerMasker::new(framing);
    let mut out = Vec::new();
    for chunk in chunks {
        out.extend(masker.feed(&p, chunk));
    }
    out.extend(masker.finish(&p));
    (out, masker.counts)
}

fn ndjson_text(body: &[u8]) -> String {
    let mut text = String::new();
    let mut done = 0;
    for line in body.split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
        let v: Value = serde_json::from_slice(line).unwrap();
        text.push_str(v["message"]["content"].as_str().unwrap_or(""));
        done += usize::from(v["done"] == true);
    }
    assert_eq!(done, 1, "one done line");
    text
}

fn sse_text(body: &[u8]) -> String {
    let body = std::str::from_utf8(body).unwrap();
    assert!(body.ends_with("data: [DONE]\n\n"), "{body}");
    let mut text = String::new();
    for event in body.split("\n\n").filter(|e| !e.is_empty()) {
        let data = event.strip_prefix("data: ").unwrap();
        if data == "[DONE]" {
            continue;
        }
        let v: Value = serde_json::from_str(data).unwrap();
        for choice in v["choices"].as_array().unwrap() {
            text.push_str(choice["delta"]["content"].as_str().unwrap_or(""));
        }
    }
    text
}

#[test]
fn a_card_split_over_three_ndjson_lines_is_masked_at_every_chunk_offset() {
    let body = ndjson(&["Your card is 4111", "11111111", "1111, keep it safe."]);
    let expected = "Your card is [FILTERED], keep it safe.";
    for i in 0..=body.len() {
        let (out, counts) = pass(Framing::Ndjson, &[&body[..i], &body[i..]]);
        assert_eq!(ndjson_text(&out), expected, "split at {i}");
        assert!(
            !String::from_utf8_lossy(&out).contains("1111"),
            "split at {i}"
        );
        assert!(!counts.is_empty());
    }
}

#[test]
fn a_card_split_over_three_sse_chunks_is_masked_at_every_chunk_offset() {
    let body = sse(&["Card 4111 11", "11 1111 ", "1111 ok"]);
    for i in 0..=body.len() {
        let (out, _) = pass(Framing::Sse, &[&body[..i], &body[i..]]);
        assert_eq!(sse_text(&out), "Card [FILTERED] ok", "split at {i}");
    }
}

#[test]
fn a_value_held_at_the_end_goes_out_in_the_closing_chunk() {
    // The model's last piece ends with the card: released with the finish chunk.
    let (out, _) = pass(Framing::Sse, &[&sse(&["it is ", CARD])]);
    assert_eq!(sse_text(&out), "it is [FILTERED]");
    let (out, _) = pass(Framing::Ndjson, &[&ndjson(&["mail bob@example.", "com"])]);
    assert_eq!(ndjson_text(&out), "mail [FILTERED]");
}

#[test]
fn held_text_without_a_closing_event_is_not_lost() {
    // No finish chunk, no [DONE]: the held text is sent in a chunk of its own at the end.
    let chunk = json!({"id": "c1", "object": "chat.completion.chunk", "model": "m",
                       "choices": [{"index": 0, "delta": {"content": "see bob"}, "finish_reason": null}]});
    let (out, _) = pass(Framing::Sse, &[format!("data: {chunk}\n\n").as_bytes()]);
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains("\"content\":\"see \""), "{out}");
    assert!(out.contains("\"content\":\"bob\""), "{out}");
}

#[test]
fn answers_without_matches_keep_their_text() {
    let text = ["The answer ", "is 42, and the ", "sky is blue. 你好"];
    let body = ndjson(&text);
    for i in (0..=body.len()).step_by(7) {
        let (out, counts) = pass(Framing::Ndjson, &[&body[..i], &body[i..]]);
        assert_eq!(ndjson_text(&out), text.concat());
        assert!(counts.is_empty());
    }
    let body = sse(&text);
    let (out, _) = pass(Framing::Sse, &[&body]);
    assert_eq!(sse_text(&out), text.concat());
}

#[test]
fn lines_that_need_no_change_pass_byte_for_byte() {
    // Ends at a boundary: nothing held, nothing masked, the line is not re-serialised.
    let line = b"{\"message\":{\"content\":\"Hello, world. \"},\"done\":false,\"z\":1}\n";
    let (out, _) = pass(Framing::Ndjson, &[line]);
    assert_eq!(out, line);
}

#[test]
fn a_json_answer_is_masked_whole_and_passes_unchanged_without_matches() {
    let body = json!({"id": "chatcmpl-1", "model": "m", "choices": [{"index": 0,
        "message": {"role": "assistant", "content": format!("card {CARD}")}}]})
    .to_string();
    let (out, counts) = pass(
        Framing::Json,
        &[&body.as_bytes()[..10], &body.as_bytes()[10..]],
    );
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["choices"][0]["message"]["content"], "card [FILTERED]");
    assert_eq!(v["id"], "chatcmpl-1");
    assert!(!counts.is_empty());
    let clean = br#"{"b":1, "a":"no secrets"}"#;
    assert_eq!(pass(Framing::Json, &[clean]).0, clean);
}

#[test]
fn text_answers_are_masked_across_split_utf8() {
    let body = "姓名 张三 身份证 11010519491231002X。".as_bytes();
    for i in 0..=body.len() {
        let (out, _) = pass(Framing::Text, &[&body[..i], &body[i..]]);
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "姓名 张三 身份证 [FILTERED]。",
            "split at {i}"
        );
    }
}

/// Found by the `masking` fuzz target: an invalid byte before a character cut by the chunk's
/// end made the whole chunk lossy, so the cut character became U+FFFD in pieces but not whole.
#[test]
fn invalid_utf8_before_a_split_character_does_not_depend_on_the_split() {
    let body = b"ok \xff \xe4\xbd\xa0 \xe5\xa5\xbd\xff";
    let whole = pass(Framing::Text, &[body]).0;
    assert_eq!(
        String::from_utf8(whole.clone()).unwrap(),
        "ok \u{fffd} \u{4f60} \u{597d}\u{fffd}"
    );
    for i in 0..=body.len() {
        for j in i..=body.len() {
            let (out, _) = pass(Framing::Text, &[&body[..i], &body[i..j], &body[j..]]);
            assert_eq!(out, whole, "split at {i} and {j}");
        }
    }
}

#[test]
fn invalid_utf8_becomes_replacement_characters_never_a_panic() {
    let (out, _) = pass(Framing::Text, &[b"ok \xff\xfe ", b"\xe4\xbd", b""]);
    assert_eq!(
        String::from_utf8(out).unwrap(),
        "ok \u{fffd}\u{fffd} \u{fffd}"
    );
    let (out, _) = pass(
        Framing::Ndjson,
        &[b"{\"message\":{\"content\":\"\xff", b"\"}}\n"],
    );
    assert!(String::from_utf8(out).is_ok());
    let (out, _) = pass(Framing::Sse, &[b"data: {\"x\":\"\xe4", b"\"}\n\n"]);
    assert!(String::from_utf8(out).is_ok());
}

#[test]
fn hostile_answers_stay_bounded() {
    let digits = "9".repeat(100_000);
    let (out, counts) = pass(Framing::Ndjson, &[&ndjson(&[&digits, &digits])]);
    assert_eq!(ndjson_text(&out), format!("{digits}{digits}"));
    assert!(counts.is_empty());
    // A line that never ends is cut, not buffered without bound.
    let p = protector();
    let mut masker = AnswerMasker::new(Framing::Ndjson);
    let junk = vec![b'x'; 1024 * 1024];
    for _ in 0..10 {
        masker.feed(&p, &junk);
    }
    assert!(masker.pending.is_empty());
    assert!(masker.finish(&p).is_empty());
}

#[test]
fn framing_follows_the_content_type() {
    assert_eq!(
        Framing::of(Some("text/event-stream; charset=utf-8")),
        Framing::Sse
    );
    assert_eq!(Framing::of(Some("application/x-ndjson")), Framing::Ndjson);
    assert_eq!(Framing::of(Some("Application/JSON")), Framing::Json);
    assert_eq!(Framing::of(Some("application/problem+json")), Framing::Json);
    assert_eq!(Framing::of(Some("text/plain")), Framing::Text);
    assert_eq!(Framing::of(None), Framing::Text);
    assert_eq!(Framing::of(Some("image/png")), Framing::Binary);
}

#[test]
fn crlf_and_cr_framed_events_are_split_and_masked_across_events() {
    for end in ["\r\n\r\n", "\r\r", "\n\r\n"] {
        let mut body = Vec::new();
        for piece in ["card 4111 ", "1111 1111", " 1111 ok"] {
            let chunk = json!({"choices": [{"index": 0, "delta": {"content": piece},
                                            "finish_reason": null}]});
            body.extend_from_slice(format!("data: {chunk}{end}").as_bytes());
        }
        body.extend_from_slice(format!("data: [DONE]{end}").as_bytes());
        for i in (0..=body.len()).step_by(3) {
            let (out, _) = pass(Framing::Sse, &[&body[..i], &body[i..]]);
            let out = String::from_utf8(out).unwrap();
            assert!(!out.contains("1111"), "{end:?} split at {i}: {out}");
            assert!(out.contains("[FILTERED]"), "{end:?} split at {i}: {out}");
        }
    }
}

#[test]
fn other_streamed_shapes_are_carried_across_events_and_event_lines_kept() {
    // The Responses API (`delta` at the top, with `event:` lines), a legacy function call.
    let mut body = Vec::new();
    for piece in ["mail li.lei@exa", "mple.com now"] {
        let event = json!({"type": "response.output_text.delta", "delta": piece});
        body.extend_from_slice(
            format!("event: response.output_text.delta\ndata: {event}\n\n").as_bytes(),
        );
    }
    for piece in ["{\"card\": \"4111 1111", " 1111 1111\"}"] {
        let chunk = json!({"choices": [{"index": 0, "delta": {"function_call": {"arguments": piece}},
                                        "finish_reason": null}]});
        body.extend_from_slice(format!("data: {chunk}\n\n").as_bytes());
    }
    body.extend_from_slice(b"data: [DONE]\n\n");
    let (out, counts) = pass(Framing::Sse, &[&body]);
    let out = String::from_utf8(out).unwrap();
    assert!(
        !out.contains("li.lei") && !out.contains("example.com"),
        "{out}"
    );
    assert!(!out.contains("1111"), "{out}");
    assert_eq!(
        out.matches("event: response.output_text.delta").count(),
        2,
        "{out}"
    );
    assert!(!counts.is_empty());
}

#[test]
fn token_ids_and_logprobs_are_removed_from_answers() {
    let line = json!({"model": "m", "response": "", "done": true, "context": [1, 2, 3]});
    let (out, _) = pass(Framing::Ndjson, &[format!("{line}\n").as_bytes()]);
    let out: Value = serde_json::from_slice(&out).unwrap();
    assert!(out.get("context").is_none(), "{out}");
    let chunk = json!({"choices": [{"index": 0, "delta": {"content": "hi. "},
        "logprobs": {"content": [{"token": "4111", "bytes": [52, 49, 49, 49]}]},
        "finish_reason": null}]});
    let (out, _) = pass(Framing::Sse, &[format!("data: {chunk}\n\n").as_bytes()]);
    assert!(!String::from_utf8(out).unwrap().contains("logprobs"));
    let whole = json!({"choices": [{"message": {"content": "ok"}, "logprobs": {"x": 1}}]});
    let (out, _) = pass(Framing::Json, &[whole.to_string().as_bytes()]);
    assert!(!String::from_utf8(out).unwrap().contains("logprobs"));
}

#[test]
fn a_huge_event_in_small_chunks_goes_out_whole_once_it_ends() {
    let mut masker = AnswerMasker::new(Framing::Sse);
    let p = protector();
    let chunk = vec![b'x'; 4096];
    let mut out = Vec::new();
    for _ in 0..1024 {
        out.extend(masker.feed(&p, &chunk));
    }
    assert!(out.is_empty());
    out.extend(masker.feed(&p, b"\r\n\r\n"));
    assert_eq!(out.len(), 4096 * 1024 + 4);
}
