//! Ollama's non-streamed `/api/chat` answer -> OpenAI `chat.completion` (or OpenAI's error).

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use super::time::unix_seconds;
use super::{answer, openai_error, to_bytes, ResponseContext, Translated, UpstreamError};

/// What Ollama's compatibility layer sends as `system_fingerprint`.
pub(crate) const FINGERPRINT: &str = "fp_ollama";

/// Translates Ollama's answer (status and body) into OpenAI's (status and body).
pub fn chat_response(
    status: u16,
    body: &[u8],
    ctx: &ResponseContext,
) -> Result<(u16, Vec<u8>), UpstreamError> {
    chat_answer(status, body, ctx).map(|t| (t.status, t.body))
}

/// [`chat_response`] with the tokens the answer used.
pub fn chat_answer(
    status: u16,
    body: &[u8],
    ctx: &ResponseContext,
) -> Result<Translated, UpstreamError> {
    answer::translate(status, body, ctx, answer::chat, chat_general)
}

/// The general path: any shape, over a parsed `Value`.
pub(super) fn chat_general(
    status: u16,
    body: &[u8],
    ctx: &ResponseContext,
) -> Result<Translated, UpstreamError> {
    let answer = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(answer)) => answer,
        _ => {
            return Err(UpstreamError(
                "the model server's answer is not JSON".into(),
            ))
        }
    };
    let Some(Value::Object(message)) = answer.get("message") else {
        return Err(UpstreamError(
            "the model server's answer has no message".into(),
        ));
    };

    let calls = message_tool_calls(message, &ctx.id, 0);
    let mut out = Map::new();
    out.insert("role".into(), Value::String(role(message)));
    out.insert("content".into(), str_of(message, "content").into());
    // Thinking twice: `reasoning` (the mapping's name) and `reasoning_content` (the name
    // DeepSeek's API and the clients written for it read).
    let thinking = str_of(message, "thinking");
    if !thinking.is_empty() {
        out.insert("reasoning".into(), thinking.into());
        out.insert("reasoning_content".into(), thinking.into());
    }
    let finish_reason = if calls.is_empty() {
        finish_reason(&answer)
    } else {
        out.insert("tool_calls".into(), Value::Array(calls));
        "tool_calls"
    };
    let completion = json!({
        "id": ctx.id,
        "object": "chat.completion",
        "created": created(&answer, ctx.now_s),
        "model": str_of(&answer, "model"),
        "system_fingerprint": FINGERPRINT,
        "choices": [{"index": 0, "message": out, "finish_reason": finish_reason}],
        "usage": usage_value(usage(&answer)),
    });
    Ok(Translated {
        status,
        body: to_bytes(&completion),
        usage: reported_usage(&answer),
    })
}

/// (prompt, completion) tokens of a done answer (`done: true`); none before it is done.
pub(crate) fn reported_usage(answer: &Map<String, Value>) -> Option<(u64, u64)> {
    (answer.get("done") == Some(&Value::Bool(true))).then(|| usage(answer))
}

/// Ollama's `{"error": "..."}` as OpenAI's error, or a generic message for any other body.
pub(crate) fn error_body(status: u16, body: &[u8]) -> Vec<u8> {
    let parsed = serde_json::from_slice::<Value>(body).ok();
    match parsed.as_ref().and_then(|v| v.get("error")?.as_str()) {
        Some(message) if !message.is_empty() => openai_error(status, message),
        _ => openai_error(
            status,
            &format!("the model server answered with status {status}"),
        ),
    }
}

/// The string at `key`, or "" when absent or not a string.
pub(crate) fn str_of<'a>(obj: &'a Map<String, Value>, key: &str) -> &'a str {
    obj.get(key).and_then(Value::as_str).unwrap_or_default()
}

fn role(message: &Map<String, Value>) -> String {
    match str_of(message, "role") {
        "" => "assistant".into(),
        r => r.into(),
    }
}

/// `created`: `created_at` as Unix seconds, `now_s` when unparsable (or before 1970).
pub(crate) fn created(answer: &Map<String, Value>, now_s: u64) -> u64 {
    unix_seconds(str_of(answer, "created_at"))
        .and_then(|s| u64::try_from(s).ok())
        .unwrap_or(now_s)
}

/// OpenAI's finish reason for a done answer without tool calls.
pub(crate) fn finish_reason(answer: &Map<String, Value>) -> &'static str {
    match str_of(answer, "done_reason") {
        "length" => "length",
        _ => "stop",
    }
}

/// (prompt_tokens, completion_tokens).
pub(crate) fn usage(answer: &Map<String, Value>) -> (u64, u64) {
    let count = |key| answer.get(key).and_then(Value::as_u64).unwrap_or(0);
    (count("prompt_eval_count"), count("eval_count"))
}

pub(crate) fn usage_value((prompt, completion): (u64, u64)) -> Value {
    json!({
        "prompt_tokens": prompt,
        "completion_tokens": completion,
        "total_tokens": prompt.saturating_add(completion),
    })
}

/// The message's tool calls in OpenAI's shape, numbered from `first_index`.
pub(crate) fn message_tool_calls(
    message: &Map<String, Value>,
    response_id: &str,
    first_index: u64,
) -> Vec<Value> {
    let Some(Value::Array(calls)) = message.get("tool_calls") else {
        return Vec::new();
    };
    calls
        .iter()
        .filter_map(Value::as_object)
        .zip(first_index..)
        .map(|(call, index)| tool_call(call, response_id, index))
        .collect()
}

/// One Ollama tool call `{"id"?, "function": {"name", "arguments": {...}}}` in OpenAI's shape.
fn tool_call(call: &Map<String, Value>, response_id: &str, index: u64) -> Value {
    let function = call.get("function").and_then(Value::as_object);
    let name = function.map_or("", |f| str_of(f, "name"));
    let arguments = match function.and_then(|f| f.get("arguments")) {
        None | Some(Value::Null) => "{}".to_string(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => serde_json::to_string(other).unwrap_or_else(|_| "{}".into()),
    };
    let id = match str_of(call, "id") {
        "" => tool_call_id(response_id, index),
        id => id.to_string(),
    };
    json!({
        "id": id,
        "index": index,
        "type": "function",
        "function": {"name": name, "arguments": arguments},
    })
}

/// `call_` + a suffix derived from the response id and the call's index: unique per response,
/// and the same every time the same answer is translated.
pub(crate) fn tool_call_id(response_id: &str, index: u64) -> String {
    let digest = Sha256::digest(format!("{response_id}/{index}").as_bytes());
    let hex: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    format!("call_{hex}")
}
