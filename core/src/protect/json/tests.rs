use serde_json::{json, Value};

use super::*;
use crate::protect::tests::protector;

fn protect(body: &Value) -> Result<Option<Value>, Refusal> {
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
    assert_eq!(protect(&body), Err(Refusal::Denied("internal".into())));
}

#[test]
fn bodies_that_are_not_json_are_text_unless_binary() {
    let p = protector();
    let mut counts = Counts::default();
    let masked = protect_request(&p, b"call EMP-000042 now", &mut counts).unwrap();
    assert_eq!(masked.as_deref(), Some(&b"call [FILTERED] now"[..]));
    assert_eq!(
        protect_request(&p, b"internal use only", &mut counts),
        Err(Refusal::Denied("internal".into()))
    );
    assert_eq!(
        protect_request(&p, b"\xff\x00EMP-000042", &mut counts),
        Ok(None)
    );
}

#[test]
fn keys_numbers_and_structured_tool_arguments_are_text_too() {
    let body = json!({
        "model": "qwen3",
        "messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f",
            "arguments": {"id": "4111 1111 1111 1111", "acct": 4111111111111111u64,
                          "5555 5555 5555 4444": 1}}}]}],
        "user_id": "li.lei@example.com"
    });
    let masked = protect(&body).unwrap().unwrap();
    let args = &masked["messages"][0]["tool_calls"][0]["function"]["arguments"];
    assert_eq!(args["id"], "[FILTERED]");
    assert_eq!(args["acct"], "[FILTERED]");
    assert_eq!(args["[FILTERED]"], 1);
    assert!(!masked.to_string().contains("5555"));
    // The caller the gateway injects is not the model's reading.
    assert_eq!(masked["user_id"], "li.lei@example.com");
    // A deny phrase under any key, or as a key, refuses.
    let hidden = json!({"tools": [{"type": "function", "function": {"name": "f",
        "parameters": {"properties": {"id": {"description": "internal use only"}}}}}]});
    assert_eq!(protect(&hidden), Err(Refusal::Denied("internal".into())));
}

#[test]
fn a_body_that_looks_like_json_must_parse_strictly() {
    let p = protector();
    let mut counts = Counts::default();
    let deep = format!(
        r#"{{"x": {}1{}, "prompt": "card \u0034111 1111 1111 1111"}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    let lone_surrogate = br#"{"prompt": "\ud800 intern\u0061l use only"}"#.to_vec();
    let invalid_utf8 = b"{\"prompt\": \"\xff 4111 1111 1111 1111\"}".to_vec();
    let duplicate = br#"{"prompt": "a", "prompt": "4111 1111 1111 1111"}"#.to_vec();
    for body in [deep.into_bytes(), lone_surrogate, invalid_utf8, duplicate] {
        assert!(
            matches!(
                protect_request(&p, &body, &mut counts),
                Err(Refusal::Unreadable(_))
            ),
            "{}",
            String::from_utf8_lossy(&body)
        );
    }
    // Escapes are decoded before checking: `\u0034` is a `4`.
    let escaped = br#"{"prompt": "card \u0034111 1111 1111 1111"}"#;
    let masked = protect_request(&p, escaped, &mut counts).unwrap().unwrap();
    assert!(!String::from_utf8(masked).unwrap().contains("1111"));
}

#[test]
fn ollama_context_token_ids_are_refused() {
    let p = protector();
    let body = br#"{"model": "m", "prompt": "go on", "context": [1, 2, 3]}"#;
    assert!(matches!(
        protect_request(&p, body, &mut Counts::default()),
        Err(Refusal::Unreadable(_))
    ));
    let empty = br#"{"model": "m", "prompt": "go on", "context": []}"#;
    assert_eq!(protect_request(&p, empty, &mut Counts::default()), Ok(None));
}
