//! Completions (`/v1/completions` <-> `/api/generate`): request vectors (every field and every
//! refusal), non-streamed answers, and the stream (split invariance, usage, errors, garbage).

use serde_json::{json, Value};

use super::{caller, config, events, NOW};
use crate::translate::completions::{
    completion_request, completion_response, CompletionStreamTranslator,
};
use crate::translate::{
    Caller, ResponseContext, Target, TranslateConfig, TranslateError, MAX_STREAM_LINE_BYTES,
};

const ID: &str = "cmpl-test";
/// 2024-05-01T12:34:56Z.
const T0: u64 = 1_714_566_896;

const PROMPT_TYPE: &str = "prompt must be a string or an array of one string";
const STOP_TYPE: &str = "stop must be a string or an array of up to 4 strings";
const MAX_TOKENS: &str = "max_tokens must be a positive integer up to 1000000";
const INVALID_LINE: &str = "the model server sent an invalid stream line";
const CUT_SHORT: &str = "the model server ended the stream before it was complete";

fn cctx(include_usage: bool) -> ResponseContext {
    ResponseContext {
        id: ID.into(),
        now_s: NOW,
        include_usage,
    }
}

fn parse(bytes: &[u8]) -> Value {
    serde_json::from_slice(bytes).unwrap()
}

fn with(mut base: Value, key: &str, value: Value) -> Value {
    base.as_object_mut().unwrap().insert(key.into(), value);
    base
}

fn without(mut base: Value, key: &str) -> Value {
    base.as_object_mut().unwrap().remove(key);
    base
}

fn opts() -> Value {
    json!({"temperature": 1.0, "top_p": 1.0})
}

/// The Ollama body for `prompt` with everything else at its default.
fn ollama(model: &str, prompt: &str) -> Value {
    json!({"model": model, "prompt": prompt, "stream": false, "raw": false, "options": opts(),
           "user_id": "alice", "session_id": "s-1"})
}

fn err(kind: &str, message: &str) -> Value {
    let code = if kind == "not_found_error" {
        "MODEL_NOT_FOUND"
    } else {
        "UPSTREAM_ERROR"
    };
    json!({"error": {"message": message, "type": kind, "param": null, "code": code,
                     "details": message}})
}

fn translate(body: &str) -> Result<Value, TranslateError> {
    translate_with(body, &config(), &caller())
}

fn translate_with(
    body: &str,
    config: &TranslateConfig,
    caller: &Caller,
) -> Result<Value, TranslateError> {
    let got = completion_request(body.as_bytes(), config, caller)?;
    let value = parse(&got.body);
    // The returned fields agree with the body.
    assert_eq!(value["model"], got.model.as_str(), "{body}");
    assert_eq!(value["stream"], got.stream, "{body}");
    Ok(value)
}

#[allow(clippy::too_many_lines)]
fn accepted() -> Vec<(&'static str, &'static str, Value)> {
    vec![
        (
            "minimal: no max_tokens, so no num_predict",
            r#"{"model":"llama3","prompt":"Once upon"}"#,
            ollama("llama3", "Once upon"),
        ),
        (
            "default model",
            r#"{"prompt":"x"}"#,
            ollama("qwen3:32b", "x"),
        ),
        (
            "empty model is the default",
            r#"{"model":"","prompt":"x"}"#,
            ollama("qwen3:32b", "x"),
        ),
        (
            "alias",
            r#"{"model":"gpt-4o","prompt":"x"}"#,
            ollama("qwen3:32b", "x"),
        ),
        (
            "prompt as an array of one string",
            r#"{"model":"m","prompt":["Grüße 🌍"]}"#,
            ollama("m", "Grüße 🌍"),
        ),
        (
            "every field",
            r#"{"model":"m","prompt":"def f(","suffix":"    return x\n","max_tokens":64,
                "temperature":0.2,"top_p":0.9,"n":1,"best_of":1,"stream":false,"stop":"\n\n",
                "seed":-7,"echo":false,"logprobs":null,"presence_penalty":1.5,
                "frequency_penalty":-2,"user":"bob","logit_bias":{"50256":-100},
                "stream_options":{"include_usage":false}}"#,
            json!({"model": "m", "prompt": "def f(", "suffix": "    return x\n",
                   "stream": false, "raw": false,
                   "options": {"temperature": 0.2, "top_p": 0.9, "num_predict": 64,
                               "stop": ["\n\n"], "seed": -7, "presence_penalty": 1.5,
                               "frequency_penalty": -2.0},
                   "user_id": "alice", "session_id": "s-1"}),
        ),
        (
            "stop: four strings; largest max_tokens; zero temperature",
            r#"{"model":"m","prompt":"p","stop":["a","b","c","d"],"max_tokens":1000000,"temperature":0}"#,
            with(
                ollama("m", "p"),
                "options",
                json!({"temperature": 0.0, "top_p": 1.0, "num_predict": 1_000_000,
                       "stop": ["a", "b", "c", "d"]}),
            ),
        ),
        (
            "stop: an empty array is none",
            r#"{"model":"m","prompt":"p","stop":[]}"#,
            ollama("m", "p"),
        ),
        (
            "null is absent",
            r#"{"model":"m","prompt":"p","suffix":null,"max_tokens":null,"temperature":null,
                "top_p":null,"n":null,"best_of":null,"stream":null,"stream_options":null,
                "stop":null,"seed":null,"echo":null,"logprobs":null,"presence_penalty":null,
                "frequency_penalty":null,"user":null}"#,
            ollama("m", "p"),
        ),
        (
            "an empty suffix is not sent",
            r#"{"model":"m","prompt":"p","suffix":""}"#,
            ollama("m", "p"),
        ),
        (
            "stream with usage",
            r#"{"model":"m","prompt":"p","stream":true,"stream_options":{"include_usage":true}}"#,
            with(ollama("m", "p"), "stream", json!(true)),
        ),
        (
            "client identity, Ollama-only and unknown fields never reach the upstream",
            r#"{"model":"m","prompt":"p","user":"mallory","user_id":"admin","session_id":"x",
                "raw":true,"system":"ignore all","template":"{{.Prompt}}","context":[1,2],
                "images":["iVBORw0K"],"format":"json","keep_alive":-1,"think":true,
                "options":{"num_ctx":999999},"metadata":{"a":"b"}}"#,
            ollama("m", "p"),
        ),
    ]
}

#[test]
fn request_vectors() {
    for (name, body, want) in accepted() {
        let got = translate(body).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        assert_eq!(got, want, "{name}");
    }
}

#[allow(clippy::too_many_lines)]
fn refused() -> Vec<(&'static str, &'static str)> {
    vec![
        (r#"{"model":"#, "the body is not valid JSON"),
        ("", "the body is not valid JSON"),
        (r#"["p"]"#, "the body must be a JSON object"),
        (
            r#"{"model":"m","prompt":"a","prompt":"b"}"#,
            "the body has a duplicate key",
        ),
        (
            r#"{"model":"m","prompt":"p","stop":{"x":1,"x":2}}"#,
            "the body has a duplicate key",
        ),
        (r#"{"model":7,"prompt":"p"}"#, "model must be a string"),
        (r#"{"model":"m"}"#, "prompt is required"),
        (r#"{"model":"m","prompt":null}"#, "prompt is required"),
        (r#"{"model":"m","prompt":""}"#, "prompt must not be empty"),
        (r#"{"model":"m","prompt":[""]}"#, "prompt must not be empty"),
        (r#"{"model":"m","prompt":[]}"#, PROMPT_TYPE),
        (r#"{"model":"m","prompt":42}"#, PROMPT_TYPE),
        (r#"{"model":"m","prompt":true}"#, PROMPT_TYPE),
        (r#"{"model":"m","prompt":{"text":"p"}}"#, PROMPT_TYPE),
        (r#"{"model":"m","prompt":[{"text":"p"}]}"#, PROMPT_TYPE),
        (r#"{"model":"m","prompt":[null]}"#, PROMPT_TYPE),
        (
            r#"{"model":"m","prompt":["a","b"]}"#,
            "more than one prompt is not supported",
        ),
        (
            r#"{"model":"m","prompt":[1212,318]}"#,
            "prompt as token ids is not supported; send text",
        ),
        (
            r#"{"model":"m","prompt":[[1212,318],[257]]}"#,
            "prompt as token ids is not supported; send text",
        ),
        (
            r#"{"model":"m","prompt":["a",1]}"#,
            "prompt as token ids is not supported; send text",
        ),
        (
            r#"{"model":"m","prompt":"p","suffix":1}"#,
            "suffix must be a string",
        ),
        (r#"{"model":"m","prompt":"p","max_tokens":0}"#, MAX_TOKENS),
        (r#"{"model":"m","prompt":"p","max_tokens":-1}"#, MAX_TOKENS),
        (r#"{"model":"m","prompt":"p","max_tokens":1.5}"#, MAX_TOKENS),
        (
            r#"{"model":"m","prompt":"p","max_tokens":"16"}"#,
            MAX_TOKENS,
        ),
        (
            r#"{"model":"m","prompt":"p","max_tokens":1000001}"#,
            MAX_TOKENS,
        ),
        (
            r#"{"model":"m","prompt":"p","temperature":2.5}"#,
            "temperature must be between 0 and 2",
        ),
        (
            r#"{"model":"m","prompt":"p","temperature":"hot"}"#,
            "temperature must be a number",
        ),
        (
            r#"{"model":"m","prompt":"p","top_p":1.5}"#,
            "top_p must be between 0 and 1",
        ),
        (
            r#"{"model":"m","prompt":"p","presence_penalty":3}"#,
            "presence_penalty must be between -2 and 2",
        ),
        (
            r#"{"model":"m","prompt":"p","frequency_penalty":-2.5}"#,
            "frequency_penalty must be between -2 and 2",
        ),
        (
            r#"{"model":"m","prompt":"p","frequency_penalty":[]}"#,
            "frequency_penalty must be a number",
        ),
        (
            r#"{"model":"m","prompt":"p","seed":1.5}"#,
            "seed must be an integer",
        ),
        (
            r#"{"model":"m","prompt":"p","seed":"1"}"#,
            "seed must be an integer",
        ),
        (
            r#"{"model":"m","prompt":"p","n":2}"#,
            "n > 1 is not supported",
        ),
        (r#"{"model":"m","prompt":"p","n":0}"#, "n must be 1"),
        (r#"{"model":"m","prompt":"p","n":"1"}"#, "n must be 1"),
        (
            r#"{"model":"m","prompt":"p","best_of":3}"#,
            "best_of > 1 is not supported",
        ),
        (
            r#"{"model":"m","prompt":"p","best_of":0}"#,
            "best_of must be 1",
        ),
        (
            r#"{"model":"m","prompt":"p","echo":true}"#,
            "echo is not supported",
        ),
        (
            r#"{"model":"m","prompt":"p","echo":"no"}"#,
            "echo must be a boolean",
        ),
        (
            r#"{"model":"m","prompt":"p","logprobs":0}"#,
            "logprobs is not supported",
        ),
        (
            r#"{"model":"m","prompt":"p","logprobs":5}"#,
            "logprobs is not supported",
        ),
        (
            r#"{"model":"m","prompt":"p","logprobs":false}"#,
            "logprobs is not supported",
        ),
        (
            r#"{"model":"m","prompt":"p","stop":["a","b","c","d","e"]}"#,
            STOP_TYPE,
        ),
        (r#"{"model":"m","prompt":"p","stop":[1]}"#, STOP_TYPE),
        (r#"{"model":"m","prompt":"p","stop":7}"#, STOP_TYPE),
        (
            r#"{"model":"m","prompt":"p","stream":"true"}"#,
            "stream must be a boolean",
        ),
        (
            r#"{"model":"m","prompt":"p","stream_options":true}"#,
            "stream_options must be an object",
        ),
        (
            r#"{"model":"m","prompt":"p","stream":true,"stream_options":{"include_usage":1}}"#,
            "stream_options.include_usage must be a boolean",
        ),
    ]
}

#[test]
fn request_refusals() {
    for (body, details) in refused() {
        assert_eq!(
            translate(body),
            Err(TranslateError::InvalidBody(details.into())),
            "{body}"
        );
    }
}

#[test]
fn request_without_model_and_default() {
    let mut cfg = config();
    cfg.default_model = None;
    assert_eq!(
        translate_with(r#"{"prompt":"p"}"#, &cfg, &caller()),
        Err(TranslateError::InvalidBody("model is required".into()))
    );
}

#[test]
fn request_caller_injection() {
    let mut cfg = config();
    cfg.inject_user = false;
    let got = translate_with(
        r#"{"model":"m","prompt":"p","user_id":"x"}"#,
        &cfg,
        &caller(),
    );
    assert_eq!(
        got,
        Ok(without(without(ollama("m", "p"), "user_id"), "session_id"))
    );
    let who = Caller {
        user_id: Some("alice".into()),
        session_id: None,
    };
    let got = translate_with(r#"{"model":"m","prompt":"p"}"#, &config(), &who);
    assert_eq!(got, Ok(without(ollama("m", "p"), "session_id")));
    let got = translate_with(
        r#"{"model":"m","prompt":"p"}"#,
        &config(),
        &Caller::default(),
    );
    assert_eq!(
        got,
        Ok(without(without(ollama("m", "p"), "user_id"), "session_id"))
    );
}

#[test]
fn request_flags() {
    let body =
        br#"{"model":"m","prompt":"p","stream":true,"stream_options":{"include_usage":true}}"#;
    let got = completion_request(body, &config(), &caller()).unwrap();
    assert!(got.stream && got.include_usage);
    assert_eq!(got.model, "m");
    let body = br#"{"model":"gpt-4o","prompt":"p","stream_options":{"include_usage":true}}"#;
    let got = completion_request(body, &config(), &caller()).unwrap();
    assert!(!got.stream && got.include_usage);
    assert_eq!(got.model, "qwen3:32b");
}

#[test]
fn passthrough_target_keeps_the_body() {
    let mut cfg = config();
    cfg.target = Target::OpenAi;
    // Nothing refused that an OpenAI-compatible upstream can do.
    let body =
        br#"{"model":"gpt-4o","prompt":[1,2],"echo":true,"logprobs":3,"best_of":2,"stream":true}"#;
    let got = completion_request(body, &cfg, &caller()).unwrap();
    assert_eq!(got.body, body.to_vec());
    assert!(got.stream && !got.include_usage);
    assert_eq!(got.model, "qwen3:32b");
    cfg.default_model = None;
    let got = completion_request(br#"{"prompt":"p"}"#, &cfg, &caller()).unwrap();
    assert_eq!(got.model, "");
    assert!(completion_request(br#"{"a":1,"a":2}"#, &cfg, &caller()).is_err());
    assert!(completion_request(br#"{"stream":1}"#, &cfg, &caller()).is_err());
}

// ---- non-streamed answers ----

fn completion(choice: Value, usage: (u64, u64), created: u64) -> Value {
    json!({"id": ID, "object": "text_completion", "created": created, "model": "llama3",
           "system_fingerprint": "fp_ollama", "choices": [choice],
           "usage": {"prompt_tokens": usage.0, "completion_tokens": usage.1,
                     "total_tokens": usage.0 + usage.1}})
}

fn choice(text: &str, finish: Value) -> Value {
    json!({"text": text, "index": 0, "logprobs": null, "finish_reason": finish})
}

fn respond(status: u16, body: &str) -> Option<(u16, Value)> {
    completion_response(status, body.as_bytes(), &cctx(false))
        .ok()
        .map(|(status, body)| (status, parse(&body)))
}

#[test]
fn response_stop() {
    let body = r#"{"model":"llama3","created_at":"2024-05-01T12:34:56.123456789Z",
        "response":"Hello, wörld","done":true,"done_reason":"stop","context":[1,2,3],
        "total_duration":5,"load_duration":1,"prompt_eval_count":10,"eval_count":3}"#;
    assert_eq!(
        respond(200, body),
        Some((
            200,
            completion(choice("Hello, wörld", json!("stop")), (10, 3), T0)
        ))
    );
}

#[test]
fn response_length() {
    let body = r#"{"model":"llama3","created_at":"2024-05-01T14:34:56+02:00","response":"Hel",
        "done":true,"done_reason":"length","prompt_eval_count":5,"eval_count":1}"#;
    assert_eq!(
        respond(200, body),
        Some((200, completion(choice("Hel", json!("length")), (5, 1), T0)))
    );
}

#[test]
fn response_thinking_is_reasoning_content() {
    let body = r#"{"model":"llama3","created_at":"2024-05-01T12:34:56Z","response":"4",
        "thinking":"2+2 is 4","done":true,"done_reason":"stop","prompt_eval_count":2,"eval_count":9}"#;
    let want = with(
        choice("4", json!("stop")),
        "reasoning_content",
        json!("2+2 is 4"),
    );
    assert_eq!(
        respond(200, body),
        Some((200, completion(want, (2, 9), T0)))
    );
    // Empty thinking: no field.
    let body = r#"{"model":"llama3","created_at":"2024-05-01T12:34:56Z","response":"4",
        "thinking":"","done":true}"#;
    assert_eq!(
        respond(200, body),
        Some((200, completion(choice("4", json!("stop")), (0, 0), T0)))
    );
}

#[test]
fn response_defaults() {
    // Unparsable time -> now; other done_reason -> stop; odd counts -> 0; 201 kept.
    let body = r#"{"model":"llama3","created_at":"yesterday","response":"","done":true,
        "done_reason":"load","prompt_eval_count":-1,"eval_count":"7","thinking":7}"#;
    assert_eq!(
        respond(201, body),
        Some((201, completion(choice("", json!("stop")), (0, 0), NOW)))
    );
}

#[test]
fn response_error_statuses() {
    assert_eq!(
        respond(
            404,
            r#"{"error":"model \"x\" not found, try pulling it first"}"#
        ),
        Some((
            404,
            err(
                "not_found_error",
                "model \"x\" not found, try pulling it first"
            )
        ))
    );
    assert_eq!(
        respond(400, r#"{"error":"model does not support insert"}"#),
        Some((
            400,
            err("invalid_request_error", "model does not support insert")
        ))
    );
    assert_eq!(
        respond(500, r#"{"error":"out of memory"}"#),
        Some((500, err("api_error", "out of memory")))
    );
    for (status, body) in [
        (503, "<html>busy</html>"),
        (502, ""),
        (500, r#"{"error":""}"#),
    ] {
        assert_eq!(
            respond(status, body),
            Some((
                status,
                err(
                    "api_error",
                    &format!("the model server answered with status {status}")
                )
            )),
            "{body}"
        );
    }
}

#[test]
fn response_garbage_is_upstream_error() {
    for body in [
        "not json",
        "",
        "[1]",
        r#"{"error":"odd"}"#,
        r#"{"model":"m","response":7,"done":true}"#,
        r#"{"model":"m","message":{"content":"chat?"},"done":true}"#,
    ] {
        let got = completion_response(200, body.as_bytes(), &cctx(false));
        assert!(got.is_err(), "{body}: {got:?}");
    }
}

// ---- stream ----

/// The whole stream fed in `pieces`, then finished.
fn run(include_usage: bool, pieces: &[&[u8]]) -> Vec<u8> {
    let mut t = CompletionStreamTranslator::new(cctx(include_usage));
    let mut out = Vec::new();
    for piece in pieces {
        out.extend(t.feed(piece));
    }
    out.extend(t.finish());
    assert!(t.ended());
    out
}

fn chunk(text: &str, finish: Value) -> Value {
    chunk_of(choice(text, finish))
}

fn chunk_of(choice: Value) -> Value {
    json!({"id": ID, "object": "text_completion", "created": T0, "model": "llama3",
           "system_fingerprint": "fp_ollama", "choices": [choice]})
}

fn usage_chunk(prompt: u64, completion: u64) -> Value {
    json!({"id": ID, "object": "text_completion", "created": T0, "model": "llama3",
           "system_fingerprint": "fp_ollama", "choices": [],
           "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                     "total_tokens": prompt + completion}})
}

fn done() -> Value {
    json!("[DONE]")
}

fn line(value: &Value) -> String {
    let mut s = value.to_string();
    s.push('\n');
    s
}

/// Thinking, multi-byte text, a line with nothing, blank and CRLF lines, the done line.
fn sample(final_newline: bool) -> String {
    let mut s = String::new();
    for (response, thinking) in [
        ("", "réfléchir 🤔"),
        ("Grüße, ", ""),
        ("世界 🌍", ""),
        ("", ""),
    ] {
        s.push_str(&line(
            &json!({"model": "llama3", "created_at": "2024-05-01T12:34:56Z",
                    "response": response, "thinking": thinking, "done": false}),
        ));
    }
    s.push_str("\r\n\n  \t\n");
    s.push_str(
        r#"{"model":"llama3","created_at":"2024-05-01T12:35:00Z","response":"","done":true,"done_reason":"length","context":[1,2],"prompt_eval_count":12,"eval_count":34}"#,
    );
    if final_newline {
        s.push('\n');
    }
    s
}

fn sample_events(include_usage: bool) -> Vec<Value> {
    let mut want = vec![
        chunk_of(with(
            choice("", Value::Null),
            "reasoning_content",
            json!("réfléchir 🤔"),
        )),
        chunk("Grüße, ", Value::Null),
        chunk("世界 🌍", Value::Null),
        chunk("", json!("length")),
    ];
    if include_usage {
        want.push(usage_chunk(12, 34));
    }
    want.push(done());
    want
}

#[test]
fn stream_whole() {
    for final_newline in [true, false] {
        for include_usage in [true, false] {
            let out = run(include_usage, &[sample(final_newline).as_bytes()]);
            assert_eq!(events(&out), sample_events(include_usage));
        }
    }
}

#[test]
fn stream_split_at_every_byte_equals_the_whole() {
    for final_newline in [true, false] {
        for include_usage in [true, false] {
            let input = sample(final_newline);
            let bytes = input.as_bytes();
            let whole = run(include_usage, &[bytes]);
            for at in 0..=bytes.len() {
                let (a, b) = bytes.split_at(at);
                assert_eq!(run(include_usage, &[a, b]), whole, "split at {at}");
            }
            let ones: Vec<&[u8]> = bytes.chunks(1).collect();
            assert_eq!(run(include_usage, &ones), whole, "1-byte chunks");
            for size in [2, 3, 7, 64] {
                let pieces: Vec<&[u8]> = bytes.chunks(size).collect();
                assert_eq!(run(include_usage, &pieces), whole, "{size}-byte chunks");
            }
        }
    }
}

#[test]
fn stream_sends_events_as_lines_complete() {
    let mut t = CompletionStreamTranslator::new(cctx(true));
    let first =
        r#"{"model":"llama3","created_at":"2024-05-01T12:34:56Z","response":"a€","done":false}"#;
    let euro = first.find('€').unwrap();
    assert!(t.feed(first.get(..euro).unwrap().as_bytes()).is_empty());
    assert!(t.feed(&first.as_bytes()[euro..euro + 1]).is_empty());
    assert!(t.feed(&first.as_bytes()[euro + 1..]).is_empty());
    assert_eq!(events(&t.feed(b"\n")), vec![chunk("a€", Value::Null)]);
    assert_eq!(t.usage(), None);
    assert!(!t.ended());
    // created and model stay those of the first line.
    let out = t.feed(b"{\"model\":\"other\",\"created_at\":\"2030-01-01T00:00:00Z\",\"response\":\"b\",\"done\":true,\"done_reason\":\"stop\",\"prompt_eval_count\":3,\"eval_count\":2}\n");
    assert_eq!(
        events(&out),
        vec![chunk("b", json!("stop")), usage_chunk(3, 2), done()]
    );
    assert_eq!(t.usage(), Some((3, 2)));
    assert!(t.ended());
    assert!(t.finish().is_empty(), "finish after the end sends nothing");
    assert!(t.finish().is_empty(), "finish is idempotent");
    assert!(t.feed(b"{\"error\":\"late\"}\n").is_empty(), "ended");
}

#[test]
fn stream_include_usage() {
    let input = concat!(
        r#"{"model":"llama3","created_at":"2024-05-01T12:34:56Z","response":"Hi","done":false}"#,
        "\n",
        r#"{"model":"llama3","created_at":"2024-05-01T12:34:56Z","response":"","done":true,"done_reason":"stop","prompt_eval_count":7,"eval_count":1}"#,
        "\n",
    );
    let with_usage = vec![
        chunk("Hi", Value::Null),
        chunk("", json!("stop")),
        usage_chunk(7, 1),
        done(),
    ];
    assert_eq!(events(&run(true, &[input.as_bytes()])), with_usage);
    let without_usage = vec![chunk("Hi", Value::Null), chunk("", json!("stop")), done()];
    assert_eq!(events(&run(false, &[input.as_bytes()])), without_usage);
    // Usage is known either way.
    let mut t = CompletionStreamTranslator::new(cctx(false));
    t.feed(input.as_bytes());
    assert_eq!(t.usage(), Some((7, 1)));
}

#[test]
fn stream_thinking_on_the_done_line() {
    let input = r#"{"model":"llama3","created_at":"2024-05-01T12:34:56Z","response":"ok","thinking":"hm","done":true}"#;
    let want = vec![
        chunk_of(with(
            choice("ok", json!("stop")),
            "reasoning_content",
            json!("hm"),
        )),
        done(),
    ];
    assert_eq!(events(&run(false, &[input.as_bytes()])), want);
}

#[test]
fn stream_error_line_mid_stream() {
    let mut t = CompletionStreamTranslator::new(cctx(true));
    let first = t.feed(
        b"{\"model\":\"llama3\",\"created_at\":\"2024-05-01T12:34:56Z\",\"response\":\"a\",\"done\":false}\n",
    );
    assert_eq!(events(&first), vec![chunk("a", Value::Null)]);
    let out = t.feed(
        b"{\"error\":\"out of memory\"}\n{\"model\":\"llama3\",\"response\":\"x\",\"done\":true}\n",
    );
    assert_eq!(
        events(&out),
        vec![err("api_error", "out of memory"), done()]
    );
    assert!(t.ended());
    assert_eq!(t.usage(), None);
    assert!(t.finish().is_empty());
    // An error that is not a message: a generic one.
    let ev = events(&run(false, &[b"{\"error\":{\"nested\":true}}\n"]));
    assert_eq!(
        ev,
        vec![
            err("api_error", "the model server failed while streaming"),
            done()
        ]
    );
    // `"error": null` is no error.
    let ev = events(&run(
        false,
        &[b"{\"error\":null,\"model\":\"llama3\",\"created_at\":\"2024-05-01T12:34:56Z\",\"response\":\"z\",\"done\":true}"],
    ));
    assert_eq!(ev, vec![chunk("z", json!("stop")), done()]);
}

#[test]
fn stream_cut_short() {
    let input = concat!(
        r#"{"model":"llama3","created_at":"2024-05-01T12:34:56Z","response":"a","done":false}"#,
        "\n",
        r#"{"model":"llama3","created_at":"2024-05-01T12:34:56Z","response":"b","done":false}"#,
    );
    let mut t = CompletionStreamTranslator::new(cctx(true));
    assert_eq!(
        events(&t.feed(input.as_bytes())),
        vec![chunk("a", Value::Null)]
    );
    assert!(!t.ended());
    // The last line (no newline) is translated, then the stream is found incomplete.
    assert_eq!(
        events(&t.finish()),
        vec![chunk("b", Value::Null), err("api_error", CUT_SHORT), done()]
    );
    assert!(t.ended());
    assert_eq!(t.usage(), None);
    assert!(t.finish().is_empty());
    // Nothing at all; only blank lines.
    for input in [&b""[..], b"\n\n\r\n"] {
        assert_eq!(
            events(&run(true, &[input])),
            vec![err("api_error", CUT_SHORT), done()]
        );
    }
}

#[test]
fn stream_garbage_lines() {
    for bad in [
        &b"{\"model\":\n"[..],
        b"[1]\n",
        b"\"text\"\n",
        b"null\n",
        b"{\"model\":\"\xff\",\"response\":\"a\",\"done\":false}\n",
        b"data: {\"response\":\"a\"}\n",
        b"{\"a\":1}{\"b\":2}\n",
    ] {
        let good = b"{\"model\":\"llama3\",\"created_at\":\"2024-05-01T12:34:56Z\",\"response\":\"a\",\"done\":false}\n";
        let ev = events(&run(false, &[good, bad, b"{\"done\":true}\n"]));
        assert_eq!(
            ev,
            vec![
                chunk("a", Value::Null),
                err("api_error", INVALID_LINE),
                done()
            ],
            "{}",
            String::from_utf8_lossy(bad)
        );
    }
    // Odd but valid objects: fields of the wrong type read as empty.
    let ev = events(&run(
        false,
        &[b"{\"response\":7,\"thinking\":[],\"done\":\"yes\"}\n{\"done\":true,\"done_reason\":5}\n"],
    ));
    assert_eq!(
        ev,
        vec![
            json!({"id": ID, "object": "text_completion", "created": NOW, "model": "",
                   "system_fingerprint": "fp_ollama",
                   "choices": [{"text": "", "index": 0, "logprobs": null,
                                "finish_reason": "stop"}]}),
            done()
        ]
    );
}

#[test]
fn stream_over_long_line() {
    let long = vec![b'x'; MAX_STREAM_LINE_BYTES + 1];
    let want = vec![
        err(
            "api_error",
            "the model server sent a stream line that is too long",
        ),
        done(),
    ];
    let mut with_newline = long.clone();
    with_newline.push(b'\n');
    assert_eq!(events(&run(false, &[&with_newline])), want);
    // Detected while buffering, before the newline or finish.
    let mut t = CompletionStreamTranslator::new(cctx(false));
    let mut out = Vec::new();
    for piece in long.chunks(100_000) {
        out.extend(t.feed(piece));
    }
    assert_eq!(events(&out), want);
    assert!(t.ended());
    assert!(t.finish().is_empty());
    // A valid line of exactly the limit is fine.
    let head = r#"{"model":"llama3","created_at":"2024-05-01T12:34:56Z","response":""#;
    let tail = r#"","done":true}"#;
    let mut exact = head.to_string();
    exact.push_str(&"y".repeat(MAX_STREAM_LINE_BYTES - head.len() - tail.len()));
    exact.push_str(tail);
    assert_eq!(exact.len(), MAX_STREAM_LINE_BYTES);
    let ev = events(&run(false, &[exact.as_bytes(), b"\n"]));
    assert_eq!(ev.len(), 2);
    assert_eq!(ev[0]["choices"][0]["finish_reason"], "stop");
}

#[test]
fn stream_done_line_ends_it_at_once() {
    let mut t = CompletionStreamTranslator::new(cctx(false));
    let out = t.feed(b"{\"model\":\"llama3\",\"created_at\":\"2024-05-01T12:34:56Z\",\"response\":\"\",\"done\":true}\n{\"garbage");
    assert_eq!(events(&out), vec![chunk("", json!("stop")), done()]);
    assert!(t.ended());
    assert_eq!(t.usage(), Some((0, 0)));
    assert!(t.finish().is_empty());
}

/// xorshift64*: deterministic pseudo-random numbers without a dependency.
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
}

/// Every function on one input: no panic; the stream whole and in random pieces agree.
fn exercise(input: &[u8], rng: &mut Rng) {
    let mut cfg = config();
    let _ = completion_request(input, &cfg, &caller());
    cfg.target = Target::OpenAi;
    let _ = completion_request(input, &cfg, &caller());
    for status in [200, 299, 400, 404, 500, 0, 999] {
        if let Ok((_, body)) = completion_response(status, input, &cctx(true)) {
            assert!(serde_json::from_slice::<Value>(&body).is_ok());
        }
    }
    let whole = run(true, &[input]);
    let ev = events(&whole);
    assert_eq!(ev.last(), Some(&done()));
    let mut pieces = Vec::new();
    let mut rest = input;
    while !rest.is_empty() {
        let (a, b) = rest.split_at(1 + rng.below(rest.len()));
        pieces.push(a);
        rest = b;
    }
    assert_eq!(run(true, &pieces), whole);
}

/// Bytes inserted by the mutations: JSON's structure, escapes, numbers, newlines.
const INSERTS: &[u8] = b"{}[]\",:\n\\0e-";

#[test]
fn hostile_input_never_panics() {
    let seeds = [
        sample(true),
        sample(false),
        r#"{"model":"m","prompt":["p"],"suffix":"s","max_tokens":5,"temperature":0.5,"top_p":0.5,"stop":["a","b"],"seed":1,"n":1,"best_of":1,"echo":false,"stream":true,"stream_options":{"include_usage":true}}"#.to_string(),
        r#"{"model":"llama3","created_at":"2024-05-01T12:34:56.123456789+02:00","response":"hé","thinking":"t","done":true,"done_reason":"length","prompt_eval_count":18446744073709551615,"eval_count":18446744073709551615}"#.to_string(),
        "{\"response\":\"a\",\"done\":false}\n{\"error\":\"x\"}\n".to_string(),
    ];
    let mut rng = Rng(0x9E37_79B9_7F4A_7C15);
    for _ in 0..1_000 {
        let len = rng.below(200);
        let input: Vec<u8> = (0..len).map(|_| rng.next().to_le_bytes()[0]).collect();
        exercise(&input, &mut rng);
    }
    for seed in &seeds {
        exercise(seed.as_bytes(), &mut rng);
        for _ in 0..300 {
            let mut bytes = seed.as_bytes().to_vec();
            for _ in 0..=rng.below(4) {
                let at = rng.below(bytes.len());
                match rng.below(3) {
                    0 => bytes[at] = rng.next().to_le_bytes()[0],
                    1 => {
                        bytes.remove(at);
                    }
                    _ => bytes.insert(at, INSERTS[rng.below(INSERTS.len())]),
                }
            }
            exercise(&bytes, &mut rng);
        }
    }
}
