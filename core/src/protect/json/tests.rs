use serde_json::{json, Value};

use super::*;
use crate::protect::tests::protector;

fn protect(body: &Value) -> Result<Option<Value>, String> {
    let mut counts = Counts::default();
    protect_request(&protector(), body.to_string().as_bytes(), &mut counts)
        .map(|masked| masked.map(|b| serde_json::from_slice(&b).unwrap()))
}

#[test]
fn every_text_the_model_sees_is_masked_in_openai_requests() {
    let body = json!({
        "model": "qwen3",
        "messages": [
            {"role": "system", "content": "Escalate to ops@example.com"},
            {"role": "user", "content": [
                {"type": "text", "text": "My card is 4111 1111 1111 1111"},
                {"type": "image_url", "image_url": {"url": "data:image/png;base64,4111111111111111"}}
            ]},
            {"role": "assistant", "tool_calls": [{"id": "call_1", "type": "function",
                "function": {"name": "lookup", "arguments": "{\"email\":\"bob@example.com\"}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "ID 11010519491231002X"}
        ]
    });
    let masked = protect(&body).unwrap().unwrap();
    let m = &masked["messages"];
    assert_eq!(m[0]["content"], "Escalate to [FILTERED]");
    assert_eq!(m[1]["content"][0]["text"], "My card is [FILTERED]");
    // Media is not text: an image is never rewritten.
    assert_eq!(
        m[1]["content"][1]["image_url"]["url"],
        "data:image/png;base64,4111111111111111"
    );
    assert_eq!(
        m[2]["tool_calls"][0]["function"]["arguments"],
        "{\"email\":\"[FILTERED]\"}"
    );
    assert_eq!(m[3]["content"], "ID [FILTERED]");
    assert_eq!(masked["model"], "qwen3");
}

#[test]
fn ollama_requests_are_masked_too() {
    let body = json!({
        "model": "qwen3", "system": "EMP-123456 is the admin", "prompt": "mail a@b.io",
        "messages": [{"role": "user", "content": "x", "images": ["4111111111111111"]},
                     {"role": "assistant", "tool_calls": [{"function": {"name": "f",
                         "arguments": {"card": "5555 5555 5555 4444"}}}]}]
    });
    let masked = protect(&body).unwrap().unwrap();
    assert_eq!(masked["system"], "[FILTERED] is the admin");
    assert_eq!(masked["prompt"], "mail [FILTERED]");
    assert_eq!(masked["messages"][0]["images"][0], "4111111111111111");
    assert_eq!(
        masked["messages"][1]["tool_calls"][0]["function"]["arguments"]["card"],
        "[FILTERED]"
    );
}

#[test]
fn a_body_without_matches_is_forwarded_unchanged() {
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "hello"}]});
    assert_eq!(protect(&body), Ok(None));
}

#[test]
fn deny_patterns_refuse_by_name() {
    let body = json!({"messages": [{"role": "user", "content": [
        {"type": "text", "text": "FOR Internal Use Only: bob@example.com"}]}]});
    assert_eq!(protect(&body), Err("internal".to_string()));
}

#[test]
fn bodies_that_are_not_json_are_text_unless_binary() {
    let p = protector();
    let mut counts = Counts::default();
    let masked = protect_request(&p, b"call EMP-000042 now", &mut counts).unwrap();
    assert_eq!(masked.as_deref(), Some(&b"call [FILTERED] now"[..]));
    assert_eq!(
        protect_request(&p, b"internal use only", &mut counts),
        Err("internal".into())
    );
    assert_eq!(
        protect_request(&p, b"\xff\x00EMP-000042", &mut counts),
        Ok(None)
    );
}
