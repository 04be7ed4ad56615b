//! Table-driven mapping vectors: an input and the exact expected output, compared as parsed JSON.

use serde_json::{json, Value};

use super::{caller, config, ctx, events, run_stream, ID, NOW};
use crate::translate::{
    chat_request, chat_response, model_object, models_list, Caller, TranslateConfig, TranslateError,
};

/// A 6-byte PNG header, base64.
const PNG: &str = "iVBORw0K";
/// 2024-05-01T12:34:56Z.
const T0: u64 = 1_714_566_896;

enum Case {
    /// Request translated with `config()` / `caller()` after `tweak`; the Ollama body or the
    /// `InvalidBody` details.
    Request {
        tweak: fn(&mut TranslateConfig, &mut Caller),
        body: &'static str,
        expect: Result<Value, &'static str>,
    },
    /// Non-streamed response: (status, body) -> (status, OpenAI body), or `UpstreamError`.
    Response {
        status: u16,
        body: &'static str,
        expect: Option<(u16, Value)>,
    },
    /// Streamed response (NDJSON fed whole, then finished) -> SSE events.
    Stream {
        include_usage: bool,
        input: &'static str,
        expect: Vec<Value>,
    },
    /// `/api/tags` -> `models_list` (id None) or `model_object(id)`; None = UpstreamError.
    Models {
        body: &'static str,
        id: Option<&'static str>,
        expect: Option<Value>,
    },
}

fn same(_: &mut TranslateConfig, _: &mut Caller) {}

fn opts() -> Value {
    json!({"temperature": 1.0, "top_p": 1.0})
}

/// The Ollama body for `messages` with everything else at its default.
fn ollama(model: &str, messages: Value) -> Value {
    json!({"model": model, "messages": messages, "stream": false, "options": opts(),
           "user_id": "alice", "session_id": "s-1"})
}

fn user_hi() -> Value {
    json!([{"role": "user", "content": "hi"}])
}

fn with(mut base: Value, key: &str, value: Value) -> Value {
    if let Some(map) = base.as_object_mut() {
        map.insert(key.into(), value);
    }
    base
}

fn completion(message: Value, finish: &str, usage: (u64, u64), created: u64) -> Value {
    json!({"id": ID, "object": "chat.completion", "created": created, "model": "llama3",
           "system_fingerprint": "fp_ollama",
           "choices": [{"index": 0, "message": message, "finish_reason": finish}],
           "usage": {"prompt_tokens": usage.0, "completion_tokens": usage.1,
                     "total_tokens": usage.0 + usage.1}})
}

fn chunk(delta: Value, finish: Value) -> Value {
    json!({"id": ID, "object": "chat.completion.chunk", "created": T0, "model": "llama3",
           "system_fingerprint": "fp_ollama",
           "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]})
}

fn usage_chunk(prompt: u64, completion: u64) -> Value {
    json!({"id": ID, "object": "chat.completion.chunk", "created": T0, "model": "llama3",
           "system_fingerprint": "fp_ollama", "choices": [],
           "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                     "total_tokens": prompt + completion}})
}

fn err(status_type: &str, message: &str) -> Value {
    let code = if status_type == "not_found_error" {
        "MODEL_NOT_FOUND"
    } else {
        "UPSTREAM_ERROR"
    };
    json!({"error": {"message": message, "type": status_type, "param": null, "code": code,
                     "details": message}})
}

fn done() -> Value {
    json!("[DONE]")
}

fn req(body: &'static str, expect: Value) -> Case {
    Case::Request {
        tweak: same,
        body,
        expect: Ok(expect),
    }
}

fn bad(body: &'static str, details: &'static str) -> Case {
    Case::Request {
        tweak: same,
        body,
        expect: Err(details),
    }
}

const STREAM_HELLO: &str = concat!(
    r#"{"model":"llama3","created_at":"2024-05-01T12:34:56.1Z","message":{"role":"assistant","content":"Hel"},"done":false}"#,
    "\n",
    r#"{"model":"llama3","created_at":"2024-05-01T12:34:57.2Z","message":{"role":"assistant","content":"lo"},"done":false}"#,
    "\n",
    r#"{"model":"llama3","created_at":"2024-05-01T12:34:58Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","prompt_eval_count":7,"eval_count":2}"#,
    "\n",
);

#[allow(clippy::too_many_lines)]
fn vectors() -> Vec<(&'static str, Case)> {
    vec![
        // ---- requests ----
        (
            "minimal request",
            req(
                r#"{"model":"llama3","messages":[{"role":"user","content":"hi"}]}"#,
                ollama("llama3", user_hi()),
            ),
        ),
        (
            "default model",
            req(
                r#"{"messages":[{"role":"user","content":"hi"}]}"#,
                ollama("qwen3:32b", user_hi()),
            ),
        ),
        (
            "alias",
            req(
                r#"{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}"#,
                ollama("qwen3:32b", user_hi()),
            ),
        ),
        (
            "no model and no default",
            Case::Request {
                tweak: |c, _| c.default_model = None,
                body: r#"{"messages":[{"role":"user","content":"hi"}]}"#,
                expect: Err("model is required"),
            },
        ),
        (
            "developer is system; content parts joined; images",
            req(
                r#"{"model":"llava","messages":[{"role":"developer","content":"be brief"},
                    {"role":"user","content":[{"type":"text","text":"what is"},
                     {"type":"image_url","image_url":{"url":"data:image/png;base64,iVBORw0K"}},
                     {"type":"text","text":"this?"},
                     {"type":"image_url","image_url":"data:;base64,iVBORw0K"}]}]}"#,
                ollama(
                    "llava",
                    json!([{"role": "system", "content": "be brief"},
                           {"role": "user", "content": "what is\nthis?", "images": [PNG, PNG]}]),
                ),
            ),
        ),
        (
            "remote image refused",
            bad(
                r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"HTTPS://x.example/a.png"}}]}]}"#,
                "remote image URLs are not supported (the gateway fetches nothing)",
            ),
        ),
        (
            "gif prefix refused",
            bad(
                r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/gif;base64,iVBORw0K"}}]}]}"#,
                "invalid image input",
            ),
        ),
        (
            "bad base64 refused",
            bad(
                r#"{"model":"m","messages":[{"role":"user","content":[{"type":"image_url","image_url":{"url":"data:image/jpeg;base64,iV=BORw0"}}]}]}"#,
                "invalid image input",
            ),
        ),
        (
            "assistant tool calls and tool result named by id",
            req(
                r#"{"model":"m","messages":[{"role":"user","content":"weather?"},
                    {"role":"assistant","content":null,"tool_calls":[{"id":"call_1","type":"function",
                     "function":{"name":"get_weather","arguments":"{\"city\":\"Paris\"}"}}]},
                    {"role":"tool","tool_call_id":"call_1","content":"sunny"}]}"#,
                ollama(
                    "m",
                    json!([{"role": "user", "content": "weather?"},
                           {"role": "assistant", "content": "", "tool_calls": [
                               {"id": "call_1", "function": {"name": "get_weather",
                                                             "arguments": {"city": "Paris"}}}]},
                           {"role": "tool", "content": "sunny", "tool_name": "get_weather",
                            "tool_call_id": "call_1"}]),
                ),
            ),
        ),
        (
            "tool result with explicit name, assistant reasoning -> thinking",
            req(
                r#"{"model":"m","messages":[{"role":"assistant","content":"ok","reasoning":"hmm"},
                    {"role":"tool","tool_call_id":"nope","name":"lookup","content":"42"}]}"#,
                ollama(
                    "m",
                    json!([{"role": "assistant", "content": "ok", "thinking": "hmm"},
                           {"role": "tool", "content": "42", "tool_name": "lookup",
                            "tool_call_id": "nope"}]),
                ),
            ),
        ),
        (
            "invalid tool call arguments",
            bad(
                r#"{"model":"m","messages":[{"role":"assistant","tool_calls":[{"id":"c","type":"function","function":{"name":"f","arguments":"{oops"}}]}]}"#,
                "messages[0].tool_calls[0].function.arguments must be a JSON object encoded as a string",
            ),
        ),
        (
            "assistant without content or tool calls",
            bad(
                r#"{"model":"m","messages":[{"role":"assistant","content":null}]}"#,
                "messages[0].content is required",
            ),
        ),
        (
            "reasoning_effort high",
            req(
                r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"reasoning_effort":"high"}"#,
                with(ollama("m", user_hi()), "think", json!("high")),
            ),
        ),
        (
            "reasoning.effort none wins over reasoning_effort",
            req(
                r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"reasoning":{"effort":"none"},"reasoning_effort":"low"}"#,
                with(ollama("m", user_hi()), "think", json!(false)),
            ),
        ),
        (
            "reasoning effort unknown",
            bad(
                r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"reasoning_effort":"max"}"#,
                "reasoning effort must be low, medium, high or none",
            ),
        ),
        (
            "all options",
            req(
                r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":0.2,"top_p":0.9,
                    "max_tokens":100,"max_completion_tokens":50,"stop":"END","seed":-42,
                    "frequency_penalty":-0.5,"presence_penalty":2,"n":1,"stream":null}"#,
                with(
                    ollama("m", user_hi()),
                    "options",
                    json!({"temperature": 0.2, "top_p": 0.9, "num_predict": 50, "stop": ["END"],
                           "seed": -42, "frequency_penalty": -0.5, "presence_penalty": 2.0}),
                ),
            ),
        ),
        (
            "stop array, max_tokens",
            req(
                r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stop":["a","b"],"max_tokens":1000000}"#,
                with(
                    ollama("m", user_hi()),
                    "options",
                    json!({"temperature": 1.0, "top_p": 1.0, "num_predict": 1_000_000,
                           "stop": ["a", "b"]}),
                ),
            ),
        ),
        (
            "temperature out of range",
            bad(
                r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":2.5}"#,
                "temperature must be between 0 and 2",
            ),
        ),
        (
            "temperature of the wrong type",
            bad(
                r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"temperature":"hot"}"#,
                "temperature must be a number",
            ),
        ),
        (
            "max_tokens zero",
            bad(
                r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"max_tokens":0}"#,
                "max_tokens must be a positive integer up to 1000000",
            ),
        ),
        (
            "n > 1",
            bad(
                r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"n":3}"#,
                "n > 1 is not supported",
            ),
        ),
        (
            "json_object",
            req(
                r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_object"}}"#,
                with(ollama("m", user_hi()), "format", json!("json")),
            ),
        ),
        (
            "json_schema",
            req(
                r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"response_format":{"type":"json_schema",
                    "json_schema":{"name":"x","strict":true,"schema":{"type":"object","properties":{"a":{"type":"string"}}}}}}"#,
                with(
                    ollama("m", user_hi()),
                    "format",
                    json!({"type": "object", "properties": {"a": {"type": "string"}}}),
                ),
            ),
        ),
        (
            "tools rebuilt, tool_choice auto dropped",
            req(
                r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"tool_choice":"auto","parallel_tool_calls":true,
                    "tools":[{"type":"function","function":{"name":"f","description":"d","strict":true,
                     "parameters":{"type":"object"}}}]}"#,
                with(
                    ollama("m", user_hi()),
                    "tools",
                    json!([{"type": "function", "function": {"name": "f", "description": "d",
                                                             "parameters": {"type": "object"}}}]),
                ),
            ),
        ),
        (
            "tool_choice none: no tools sent",
            req(
                r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"tool_choice":"none",
                    "tools":[{"type":"function","function":{"name":"f"}}]}"#,
                ollama("m", user_hi()),
            ),
        ),
        (
            "tool without a name",
            bad(
                r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{}}]}"#,
                "tools[0].function.name is required",
            ),
        ),
        (
            "stream with usage",
            req(
                r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}"#,
                with(ollama("m", user_hi()), "stream", json!(true)),
            ),
        ),
        (
            "client identity and unknown fields never reach the upstream",
            Case::Request {
                tweak: |_, caller| caller.session_id = None,
                body: r#"{"model":"m","messages":[{"role":"user","content":"hi","name":"bob"}],"user":"mallory",
                    "user_id":"admin","session_id":"x","logprobs":true,"logit_bias":{"1":2},"metadata":{"a":"b"},
                    "keep_alive":-1,"options":{"num_ctx":999999}}"#,
                expect: Ok(json!({"model": "m", "messages": user_hi(), "stream": false,
                                  "options": opts(), "user_id": "alice"})),
            },
        ),
        (
            "inject_user off",
            Case::Request {
                tweak: |c, _| c.inject_user = false,
                body: r#"{"model":"m","messages":[{"role":"user","content":"hi"}],"user_id":"admin"}"#,
                expect: Ok(json!({"model": "m", "messages": user_hi(), "stream": false,
                                  "options": opts()})),
            },
        ),
        (
            "duplicate key",
            bad(
                r#"{"model":"m","model":"n","messages":[{"role":"user","content":"hi"}]}"#,
                "the body has a duplicate key",
            ),
        ),
        ("not an object", bad(r#"[1]"#, "the body must be a JSON object")),
        ("not JSON", bad(r#"{"model":"#, "the body is not valid JSON")),
        (
            "empty messages",
            bad(r#"{"model":"m","messages":[]}"#, "messages must not be empty"),
        ),
        ("no messages", bad(r#"{"model":"m"}"#, "messages is required")),
        (
            "unknown role",
            bad(
                r#"{"model":"m","messages":[{"role":"function","content":"x"}]}"#,
                "messages[0].role must be system, developer, user, assistant or tool",
            ),
        ),
        (
            "unknown content part",
            bad(
                r#"{"model":"m","messages":[{"role":"user","content":[{"type":"input_audio"}]}]}"#,
                "messages[0].content[0].type must be text or image_url",
            ),
        ),
        // ---- non-streamed responses ----
        (
            "plain completion",
            Case::Response {
                status: 200,
                body: r#"{"model":"llama3","created_at":"2024-05-01T12:34:56.123456789Z",
                    "message":{"role":"assistant","content":"Hello!"},"done":true,"done_reason":"stop",
                    "total_duration":1,"prompt_eval_count":10,"eval_count":3}"#,
                expect: Some((
                    200,
                    completion(json!({"role": "assistant", "content": "Hello!"}), "stop", (10, 3), T0),
                )),
            },
        ),
        (
            "thinking, length, offset time",
            Case::Response {
                status: 200,
                body: r#"{"model":"llama3","created_at":"2024-05-01T14:34:56+02:00",
                    "message":{"role":"assistant","content":"Hel","thinking":"so..."},"done":true,
                    "done_reason":"length","prompt_eval_count":5,"eval_count":1}"#,
                expect: Some((
                    200,
                    completion(
                        json!({"role": "assistant", "content": "Hel", "reasoning": "so...",
                               "reasoning_content": "so..."}),
                        "length",
                        (5, 1),
                        T0,
                    ),
                )),
            },
        ),
        (
            "tool calls, ids kept or derived",
            Case::Response {
                status: 200,
                body: r#"{"model":"llama3","created_at":"garbage","message":{"role":"assistant","content":"",
                    "tool_calls":[{"id":"call_x","function":{"index":0,"name":"a","arguments":{"k":1}}},
                                  {"function":{"index":1,"name":"b","arguments":{}}}]},
                    "done":true,"done_reason":"stop"}"#,
                expect: Some((
                    200,
                    completion(
                        json!({"role": "assistant", "content": "", "tool_calls": [
                            {"id": "call_x", "index": 0, "type": "function",
                             "function": {"name": "a", "arguments": "{\"k\":1}"}},
                            {"id": "call_32a2ce65dbd2a6da05c39059", "index": 1, "type": "function",
                             "function": {"name": "b", "arguments": "{}"}}]}),
                        "tool_calls",
                        (0, 0),
                        NOW,
                    ),
                )),
            },
        ),
        (
            "other done_reason is stop",
            Case::Response {
                status: 200,
                body: r#"{"model":"llama3","created_at":"1960-01-01T00:00:00Z","message":{"content":"x"},
                    "done":true,"done_reason":"load","prompt_eval_count":1,"eval_count":1}"#,
                expect: Some((
                    200,
                    completion(json!({"role": "assistant", "content": "x"}), "stop", (1, 1), NOW),
                )),
            },
        ),
        (
            "ollama 404",
            Case::Response {
                status: 404,
                body: r#"{"error":"model \"x\" not found, try pulling it first"}"#,
                expect: Some((
                    404,
                    err("not_found_error", "model \"x\" not found, try pulling it first"),
                )),
            },
        ),
        (
            "ollama 400",
            Case::Response {
                status: 400,
                body: r#"{"error":"invalid options"}"#,
                expect: Some((400, err("invalid_request_error", "invalid options"))),
            },
        ),
        (
            "non-JSON 503",
            Case::Response {
                status: 503,
                body: "<html>busy</html>",
                expect: Some((
                    503,
                    err("api_error", "the model server answered with status 503"),
                )),
            },
        ),
        (
            "2xx garbage",
            Case::Response {
                status: 200,
                body: "not json",
                expect: None,
            },
        ),
        (
            "2xx without message",
            Case::Response {
                status: 200,
                body: r#"{"error":"odd"}"#,
                expect: None,
            },
        ),
        // ---- streams ----
        (
            "stream without usage",
            Case::Stream {
                include_usage: false,
                input: STREAM_HELLO,
                expect: vec![
                    chunk(json!({"role": "assistant", "content": "Hel"}), Value::Null),
                    chunk(json!({"content": "lo"}), Value::Null),
                    chunk(json!({}), json!("stop")),
                    done(),
                ],
            },
        ),
        (
            "stream with usage",
            Case::Stream {
                include_usage: true,
                input: STREAM_HELLO,
                expect: vec![
                    chunk(json!({"role": "assistant", "content": "Hel"}), Value::Null),
                    chunk(json!({"content": "lo"}), Value::Null),
                    chunk(json!({}), json!("stop")),
                    usage_chunk(7, 2),
                    done(),
                ],
            },
        ),
        (
            "stream: thinking, tool calls, content on the done line",
            Case::Stream {
                include_usage: false,
                input: concat!(
                    r#"{"model":"llama3","created_at":"2024-05-01T12:34:56Z","message":{"role":"assistant","content":"","thinking":"hm"},"done":false}"#,
                    "\n\n",
                    r#"{"model":"llama3","created_at":"2024-05-01T12:34:57Z","message":{"role":"assistant","content":""},"done":false}"#,
                    "\r\n",
                    r#"{"model":"llama3","created_at":"x","message":{"role":"assistant","content":"","tool_calls":[{"function":{"index":0,"name":"f","arguments":{"a":1}}}]},"done":false}"#,
                    "\n",
                    r#"{"model":"llama3","message":{"role":"assistant","content":"","tool_calls":[{"id":"t2","function":{"index":0,"name":"g","arguments":{}}}]},"done":false}"#,
                    "\n",
                    r#"{"model":"llama3","message":{"role":"assistant","content":"bye"},"done":true,"done_reason":"stop","prompt_eval_count":1,"eval_count":2}"#,
                ),
                expect: vec![
                    chunk(
                        json!({"role": "assistant", "reasoning": "hm", "reasoning_content": "hm"}),
                        Value::Null,
                    ),
                    chunk(
                        json!({"tool_calls": [{"id": "call_131b1dff4430cfc0a1a0cfb4", "index": 0,
                            "type": "function", "function": {"name": "f", "arguments": "{\"a\":1}"}}]}),
                        Value::Null,
                    ),
                    chunk(
                        json!({"tool_calls": [{"id": "t2", "index": 1, "type": "function",
                            "function": {"name": "g", "arguments": "{}"}}]}),
                        Value::Null,
                    ),
                    chunk(json!({"content": "bye"}), json!("tool_calls")),
                    done(),
                ],
            },
        ),
        (
            "stream: error line",
            Case::Stream {
                include_usage: true,
                input: concat!(
                    r#"{"model":"llama3","created_at":"2024-05-01T12:34:56Z","message":{"role":"assistant","content":"a"},"done":false}"#,
                    "\n",
                    r#"{"error":"out of memory"}"#,
                    "\n",
                    r#"{"model":"llama3","message":{"content":"ignored"},"done":true}"#,
                    "\n",
                ),
                expect: vec![
                    chunk(json!({"role": "assistant", "content": "a"}), Value::Null),
                    err("api_error", "out of memory"),
                    done(),
                ],
            },
        ),
        (
            "stream: cut short",
            Case::Stream {
                include_usage: true,
                input: concat!(
                    r#"{"model":"llama3","created_at":"2024-05-01T12:34:56Z","message":{"role":"assistant","content":"a"},"done":false}"#,
                    "\n",
                ),
                expect: vec![
                    chunk(json!({"role": "assistant", "content": "a"}), Value::Null),
                    err(
                        "api_error",
                        "the model server ended the stream before it was complete",
                    ),
                    done(),
                ],
            },
        ),
        (
            "stream: invalid line",
            Case::Stream {
                include_usage: false,
                input: "{\"model\":\n",
                expect: vec![
                    err("api_error", "the model server sent an invalid stream line"),
                    done(),
                ],
            },
        ),
        // ---- models ----
        (
            "models list",
            Case::Models {
                body: r#"{"models":[{"name":"llama3:latest","model":"llama3:latest","modified_at":"2024-05-01T12:34:56.5-00:00","size":1},
                    {"name":"jane/coder:7b","modified_at":"bad"},
                    {"name":"hf.co/org/x:q4"},{"size":3}]}"#,
                id: None,
                expect: Some(json!({"object": "list", "data": [
                    {"id": "llama3:latest", "object": "model", "created": T0, "owned_by": "library"},
                    {"id": "jane/coder:7b", "object": "model", "created": 0, "owned_by": "jane"},
                    {"id": "hf.co/org/x:q4", "object": "model", "created": 0, "owned_by": "org"}]})),
            },
        ),
        (
            "empty models list",
            Case::Models {
                body: r#"{"models":[]}"#,
                id: None,
                expect: Some(json!({"object": "list", "data": []})),
            },
        ),
        (
            "model object by name without tag",
            Case::Models {
                body: r#"{"models":[{"name":"llama3:latest","modified_at":"2024-05-01T12:34:56Z"}]}"#,
                id: Some("llama3"),
                expect: Some(json!({"id": "llama3", "object": "model", "created": T0,
                                    "owned_by": "library"})),
            },
        ),
        (
            "model list garbage",
            Case::Models {
                body: r#"{"models":{}}"#,
                id: None,
                expect: None,
            },
        ),
    ]
}

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

#[test]
fn mapping_vectors() {
    let table = vectors();
    assert!(table.len() >= 30, "{}", table.len());
    for (name, case) in table {
        match case {
            Case::Request {
                tweak,
                body,
                expect,
            } => {
                let (mut cfg, mut who) = (config(), caller());
                tweak(&mut cfg, &mut who);
                let got = chat_request(body.as_bytes(), &cfg, &who);
                match expect {
                    Ok(want) => {
                        let got = got.unwrap_or_else(|e| panic!("{name}: {e:?}"));
                        assert_eq!(parse(&got.body), want, "{name}");
                        assert_eq!(got.model, want["model"], "{name}");
                        assert_eq!(Some(got.stream), want["stream"].as_bool(), "{name}");
                    }
                    Err(details) => assert_eq!(
                        got,
                        Err(TranslateError::InvalidBody(details.into())),
                        "{name}"
                    ),
                }
            }
            Case::Response {
                status,
                body,
                expect,
            } => {
                let got = chat_response(status, body.as_bytes(), &ctx(false));
                match expect {
                    Some((want_status, want)) => {
                        let (got_status, got) = got.unwrap_or_else(|e| panic!("{name}: {e:?}"));
                        assert_eq!((got_status, parse(&got)), (want_status, want), "{name}");
                    }
                    None => assert!(got.is_err(), "{name}"),
                }
            }
            Case::Stream {
                include_usage,
                input,
                expect,
            } => {
                let out = run_stream(include_usage, &[input.as_bytes()]);
                assert_eq!(events(&out), expect, "{name}");
            }
            Case::Models { body, id, expect } => {
                let got = match id {
                    None => models_list(body.as_bytes()).map(|b| Some(parse(&b))),
                    Some(id) => model_object(body.as_bytes(), id).map(|o| o.map(|b| parse(&b))),
                };
                match expect {
                    Some(want) => assert_eq!(got, Ok(Some(want)), "{name}"),
                    None => assert!(got.is_err(), "{name}"),
                }
            }
        }
    }
}

#[test]
fn request_flags() {
    let body = br#"{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"stream_options":{"include_usage":true}}"#;
    let got = chat_request(body, &config(), &caller()).unwrap();
    assert!(got.stream && got.include_usage);
    let body = br#"{"model":"m","messages":[{"role":"user","content":"hi"}]}"#;
    let got = chat_request(body, &config(), &caller()).unwrap();
    assert!(!got.stream && !got.include_usage);
}

#[test]
fn passthrough_target_keeps_the_body() {
    let mut cfg = config();
    cfg.target = crate::translate::Target::OpenAi;
    let body = br#"{"model":"gpt-4o","messages":[],"stream":true,"user":"x"}"#;
    let got = chat_request(body, &cfg, &caller()).unwrap();
    assert_eq!(got.body, body.to_vec());
    assert!(got.stream && !got.include_usage);
    assert_eq!(got.model, "qwen3:32b");
    assert!(chat_request(br#"{"a":1,"a":2}"#, &cfg, &caller()).is_err());
}

#[test]
fn model_object_absent_and_errors() {
    let tags = br#"{"models":[{"name":"llama3:8b"},{"name":"qwen3:32b"}]}"#;
    assert_eq!(model_object(tags, "llama3"), Ok(None));
    assert_eq!(model_object(tags, "mistral"), Ok(None));
    assert_eq!(model_object(tags, ""), Ok(None));
    let found = model_object(tags, "qwen3:32b").unwrap().unwrap();
    assert_eq!(parse(&found)["id"], "qwen3:32b");
    assert_eq!(
        parse(&crate::translate::not_found_error(
            "The model `x` does not exist"
        )),
        err("not_found_error", "The model `x` does not exist")
    );
    assert_eq!(
        parse(&crate::translate::openai_error(429, "slow down")),
        err("api_error", "slow down")
    );
}

#[test]
fn reasoning_content_mirrors_reasoning() {
    let with = br#"{"model":"qwen3","message":{"role":"assistant","content":"4","thinking":"2+2 \u00e9"},"done":true}"#;
    let (status, body) = chat_response(200, with, &ctx(false)).unwrap();
    assert_eq!(status, 200);
    let message = &parse(&body)["choices"][0]["message"];
    assert_eq!(message["reasoning"], "2+2 é");
    assert_eq!(message["reasoning_content"], "2+2 é");
    let without = br#"{"model":"qwen3","message":{"role":"assistant","content":"4","thinking":""},"done":true}"#;
    let (_, body) = chat_response(200, without, &ctx(false)).unwrap();
    assert_eq!(
        parse(&body)["choices"][0]["message"],
        json!({"role": "assistant", "content": "4"})
    );
}
