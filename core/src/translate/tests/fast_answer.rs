//! The borrowed fast path for non-streamed answers (`answer.rs`) against the general path over
//! a parsed `Value`: the same OpenAI answer and usage for every shape the fast path takes, and
//! the general path for every shape it leaves.

use serde_json::{json, Value};

use super::super::completions::completion_general;
use super::super::response::chat_general;
use super::super::{answer, chat_answer, completion_answer};
use super::ctx;

fn chat_answers() -> Vec<Value> {
    let base = json!({"model": "qwen3:32b", "created_at": "2026-11-23T10:00:00.123456789Z",
        "message": {"role": "assistant", "content": "Hello"}, "done": true,
        "done_reason": "stop", "prompt_eval_count": 26, "eval_count": 290,
        "total_duration": 5_000_000u64});
    let mut answers = vec![base.clone()];
    let mut vary = |pointer: &str, value: Value| {
        let mut v = base.clone();
        *v.pointer_mut(pointer).expect(pointer) = value;
        answers.push(v);
    };
    vary(
        "/message/content",
        json!("escapes \" \\ \n \t \u{1} \u{7f} <tag> & é 中文 😀 \\u0041"),
    );
    vary("/message/content", json!(""));
    vary("/message/role", json!(""));
    vary("/message/role", json!("tool"));
    vary("/message/role", json!(7));
    vary("/done_reason", json!("length"));
    vary("/done_reason", json!(null));
    vary("/done", json!(false));
    vary("/done", json!("yes"));
    vary("/created_at", json!("not a date"));
    vary("/created_at", json!(12));
    vary("/model", json!(null));
    vary("/model", json!(["m"]));
    vary("/prompt_eval_count", json!(1.5));
    vary("/prompt_eval_count", json!(-3));
    vary("/eval_count", json!("290"));
    vary("/eval_count", json!(u64::MAX));
    vary("/message/content", json!(null));
    vary("/message/content", json!(["a"]));
    vary("/message", json!("text"));
    vary("/message", json!(null));
    let mut thinking = base.clone();
    thinking["message"]["thinking"] = json!("Let me think \"hard\".");
    answers.push(thinking.clone());
    thinking["message"]["thinking"] = json!("");
    answers.push(thinking.clone());
    thinking["message"]["thinking"] = json!(false);
    answers.push(thinking);
    let mut tools = base.clone();
    tools["message"]["tool_calls"] =
        json!([{"function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]);
    answers.push(tools.clone());
    tools["message"]["tool_calls"] = json!([]);
    answers.push(tools);
    let mut missing = base.clone();
    for key in [
        "done",
        "done_reason",
        "prompt_eval_count",
        "eval_count",
        "model",
        "created_at",
    ] {
        missing.as_object_mut().expect("object").remove(key);
        answers.push(missing.clone());
    }
    answers
}

fn parse(body: &[u8]) -> Value {
    serde_json::from_slice(body).expect("JSON")
}

#[test]
fn chat_answers_are_the_same_on_both_paths() {
    let mut fast = 0;
    for answer in chat_answers() {
        let body = answer.to_string();
        let general = chat_general(200, body.as_bytes(), &ctx(false));
        let got = chat_answer(200, body.as_bytes(), &ctx(false));
        if answer::chat(body.as_bytes(), &ctx(false)).is_some() {
            fast += 1;
        }
        match (got, general) {
            (Ok(got), Ok(general)) => {
                assert_eq!(parse(&got.body), parse(&general.body), "{body}");
                assert_eq!(got.usage, general.usage, "{body}");
                assert_eq!(got.status, general.status, "{body}");
            }
            (got, general) => assert_eq!(got, general, "{body}"),
        }
    }
    // Most shapes above are plain; the fast path must take them, or it is never tested.
    assert!(fast >= 15, "the fast path took only {fast} answers");
}

#[test]
fn the_text_is_copied_as_its_raw_json_string() {
    let body =
        r#"{"message":{"role":"assistant","content":"a\u003cb\/c"},"done":true,"eval_count":3}"#;
    let (out, usage) = answer::chat(body.as_bytes(), &ctx(false)).expect("plain answer");
    let out = String::from_utf8(out).expect("UTF-8");
    assert!(out.contains(r#""content":"a\u003cb\/c""#), "{out}");
    assert_eq!(
        parse(out.as_bytes())["choices"][0]["message"]["content"],
        "a<b/c"
    );
    assert_eq!(usage, Some((0, 3)));
}

#[test]
fn odd_shapes_take_the_general_path() {
    for body in [
        r#"{"message":{"content":"a"},"message":{"content":"b"}}"#,
        r#"{"message":{"content":"a","tool_calls":[{"function":{"name":"f"}}]}}"#,
        r#"{"message":{"content":5}}"#,
        r#"{"message":"hi"}"#,
        r#"{"message":{"content":"a"},"eval_count":1.0}"#,
        r#"["not", "an", "object"]"#,
        r#"{"message":{"content":"a"}"#,
    ] {
        assert!(
            answer::chat(body.as_bytes(), &ctx(false)).is_none(),
            "{body}"
        );
    }
}

#[test]
fn completion_answers_are_the_same_on_both_paths() {
    let base = json!({"model": "qwen3:32b", "created_at": "2026-11-23T10:00:00Z",
        "response": "Once upon a time \"quoted\" \n", "done": true, "done_reason": "length",
        "prompt_eval_count": 4, "eval_count": 9});
    let mut answers = vec![base.clone()];
    for (key, value) in [
        ("thinking", json!("hmm")),
        ("thinking", json!("")),
        ("thinking", json!(3)),
        ("response", json!(null)),
        ("response", json!(1)),
        ("done", json!(false)),
        ("eval_count", json!(-1)),
    ] {
        let mut v = base.clone();
        v[key] = value;
        answers.push(v);
    }
    let mut fast = 0;
    for answer in answers {
        let body = answer.to_string();
        let general = completion_general(200, body.as_bytes(), &ctx(false));
        let got = completion_answer(200, body.as_bytes(), &ctx(false));
        if answer::completion(body.as_bytes(), &ctx(false)).is_some() {
            fast += 1;
        }
        match (got, general) {
            (Ok(got), Ok(general)) => {
                assert_eq!(parse(&got.body), parse(&general.body), "{body}");
                assert_eq!(got.usage, general.usage, "{body}");
            }
            (got, general) => assert_eq!(got, general, "{body}"),
        }
    }
    assert!(fast >= 4, "the fast path took only {fast} answers");
}
