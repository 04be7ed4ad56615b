//! An Ollama stand-in: a handler for [`Upstream`] that speaks Ollama's native API the way a real
//! Ollama does, with deterministic answers so tests can compare what a client assembled with what
//! was sent. It follows these sections of Ollama's API docs (`docs/api.md`): "Generate a chat
//! completion" (`POST /api/chat`), "Generate a completion" (`POST /api/generate`, see
//! [`expected_generate_text`]), "Generate Embeddings" (`POST /api/embed`, see
//! [`expected_embedding`]), "List Local Models" (`GET /api/tags`) and "Show Model Information"
//! (`POST /api/show`).
//!
//! Fidelity details that clients must cope with, as with a real Ollama:
//! - `stream` defaults to **true**; streamed answers are `application/x-ndjson`, one JSON object
//!   per `\n`-terminated line, ending with a `done: true` line carrying `done_reason` and the
//!   metrics (`total_duration`, `load_duration`, `prompt_eval_count`, `prompt_eval_duration`,
//!   `eval_count`, `eval_duration`).
//! - JSON is written the way Go's `encoding/json` writes it: fields in Ollama's struct order,
//!   `<`, `>`, `&`, U+2028 and U+2029 escaped as `\u003c` and so on, UTF-8 left as is.
//! - `created_at` is Go's RFC 3339 with nanoseconds in UTC, trailing zeros of the fraction
//!   trimmed (so it has 0 to 9 fractional digits); `modified_at` in `/api/tags` and `/api/show`
//!   carries a `+02:00` offset, as a local-time Ollama's does.
//! - Errors are `{"error": "..."}` with an HTTP status; an error once streaming has begun is a
//!   line `{"error": "..."}` (and no `done` line); unknown routes get gin's plain-text
//!   `404 page not found`.
//! - Request fields are type-checked like Go's decoder does (a `content` that is not a string, a
//!   `stream` that is not a bool, images that are not base64, tool-call `arguments` that are not
//!   an object, an invalid `think` are 400), unknown fields are ignored; option values of the
//!   wrong type are a 500, as Ollama reports them.
//!
//! ```no_run
//! use serde_json::json;
//! use test_harness::ollama::{self, OllamaConfig};
//! use test_harness::Request;
//!
//! let config = OllamaConfig::default();
//! let body = json!({"model": "qwen3:32b", "messages": [{"role": "user", "content": "hi"}]});
//! let expected = ollama::expected_text(&config, &body);
//! let upstream = ollama::start(config);
//! let response = Request::post("/api/chat").json(&body).send(upstream.addr()).unwrap();
//! assert_eq!(response.header("content-type"), Some("application/x-ndjson"));
//! # let _ = expected;
//! ```

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

use crate::upstream::{Recorded, Reply, ReplyBody, Upstream};

mod embed;
mod generate;

pub use embed::{
    expected_embedding, expected_embeddings, expected_prompt_tokens, EMBED_DIMENSIONS,
};
pub use generate::{expected_generate_text, expected_generate_thinking, expected_generate_usage};

/// What the stand-in serves and how it answers.
#[derive(Debug, Clone)]
pub struct OllamaConfig {
    /// Served by `/api/tags` (in this order, newest first); chat, generate and embed requests
    /// for other models get 404 `model "x" not found, try pulling it first`. A name without a tag also matches
    /// `name:latest`, as in Ollama.
    pub models: Vec<String>,
    /// How bodies are cut into HTTP chunks.
    pub chunking: Chunking,
    /// Waited before each streamed line (so a stream of `n` lines takes `n * delay` whatever
    /// the chunking), and once before a non-streamed body.
    pub delay: Duration,
    /// A fixed answer; `None`: `"You said: <content of the last user message>"` (for
    /// `/api/generate`: `"You said: <prompt>"`). Not used by `/api/embed`.
    pub reply: Option<String>,
    /// After the first content line (or the tool-call line), a line `{"error": ...}` and the
    /// end of the stream, with no `done` line. Non-streamed requests (and `/api/embed` ones)
    /// get a 500 instead; requests that only load the model are answered as usual.
    pub fail_mid_stream: bool,
    /// Thinking text, streamed in `message.thinking` (`/api/generate`: `thinking`) before the
    /// content, unless the request says `"think": false`.
    pub think: Option<String>,
    /// When set and the request has a non-empty `tools` array: answer with a call of this
    /// function (name, arguments object) instead of text.
    pub tool_call: Option<(String, Value)>,
}

/// How a response body is cut into HTTP chunks (`transfer-encoding: chunked`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Chunking {
    /// One chunk per NDJSON line (what Ollama does: it flushes after every line). A
    /// non-streamed body is sent with `content-length`, as Ollama does.
    Lines,
    /// The whole body in one chunk, after all the lines' delays. A non-streamed body is sent
    /// with `content-length`.
    Whole,
    /// One byte per chunk (splits multi-byte characters and lines anywhere).
    EveryByte,
    /// Chunk sizes drawn from `1..=max` by a small PRNG seeded with `seed` (the same cuts for
    /// the same body every time). Chunks ignore line boundaries.
    Random { seed: u64, max: usize },
}

impl Chunking {
    /// One of each kind (two random cuts), for tests that a client copes with any split.
    pub const VARIETY: [Chunking; 5] = [
        Chunking::Lines,
        Chunking::Whole,
        Chunking::EveryByte,
        Chunking::Random { seed: 7, max: 5 },
        Chunking::Random { seed: 99, max: 64 },
    ];
}

impl Default for OllamaConfig {
    fn default() -> Self {
        Self {
            models: vec!["qwen3:32b".to_string()],
            chunking: Chunking::Lines,
            delay: Duration::ZERO,
            reply: None,
            fail_mid_stream: false,
            think: None,
            tool_call: None,
        }
    }
}

/// The error line sent when [`OllamaConfig::fail_mid_stream`] is set.
pub const MID_STREAM_ERROR: &str =
    "an error was encountered while running the model: unexpected EOF";

/// How many characters each streamed piece has (the last one may be shorter).
pub const PIECE_CHARS: usize = 4;

/// Starts an [`Upstream`] answering as the stand-in.
pub fn start(config: OllamaConfig) -> Upstream {
    Upstream::with_handler(ollama_handler(config))
}

/// The stand-in as an [`Upstream`] handler.
pub fn ollama_handler(config: OllamaConfig) -> impl Fn(&Recorded) -> Reply + Send + Sync + 'static {
    move |request: &Recorded| handle(&config, request)
}

/// The content text the stand-in answers a chat request body with (what a client assembles
/// from the stream, or finds in the non-streamed `message.content`): the configured reply or
/// `"You said: <last user message>"`, cut short by `options.num_predict`, empty for a tool-call
/// answer. Ignores [`OllamaConfig::fail_mid_stream`].
pub fn expected_text(config: &OllamaConfig, request_body: &Value) -> String {
    plan(config, request_body).content.concat()
}

/// The thinking text the stand-in answers with (see [`expected_text`]).
pub fn expected_thinking(config: &OllamaConfig, request_body: &Value) -> String {
    plan(config, request_body).thinking.concat()
}

/// Unix seconds of a served model's `modified_at` (what an OpenAI `created` derived from it
/// should be), `None` for a model not served.
pub fn modified_at_unix(config: &OllamaConfig, name: &str) -> Option<i64> {
    let index = config
        .models
        .iter()
        .position(|m| normalise(m) == normalise(name))?;
    Some(model_modified(index).0)
}

fn handle(config: &OllamaConfig, request: &Recorded) -> Reply {
    let path = request.path.split('?').next().unwrap_or("");
    match (request.method.as_str(), path) {
        ("POST", "/api/chat") => chat(config, &request.body),
        ("POST", "/api/generate") => generate::generate(config, &request.body),
        ("POST", "/api/embed") => embed::embed(config, &request.body),
        ("GET", "/api/tags") => tags(config),
        ("POST", "/api/show") => show(config, &request.body),
        ("GET", "/api/version") => json_reply(200, &json!({"version": "0.12.6"})),
        ("GET", "/") => Reply::text(200, "Ollama is running"),
        _ => Reply::text(404, "404 page not found"),
    }
}

// ---------------------------------------------------------------------------------------------
// /api/chat

/// What one chat answer consists of.
#[derive(Debug, Default)]
struct Plan {
    thinking: Vec<String>,
    content: Vec<String>,
    /// The `tool_calls` array, when answering with a tool call.
    tool_calls: Option<Value>,
    done_reason: &'static str,
    prompt_eval_count: u64,
    eval_count: u64,
}

fn plan(config: &OllamaConfig, body: &Value) -> Plan {
    let messages = body["messages"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[]);
    let words: usize = messages
        .iter()
        .filter_map(|m| m["content"].as_str())
        .map(|c| c.split_whitespace().count())
        .sum();
    let text = config.reply.clone().unwrap_or_else(|| {
        let last_user = messages
            .iter()
            .rev()
            .find(|m| m["role"] == "user")
            .and_then(|m| m["content"].as_str())
            .unwrap_or("");
        format!("You said: {last_user}")
    });
    let wants_tools = body["tools"].as_array().is_some_and(|t| !t.is_empty());
    answer_plan(config, body, &text, words.max(1) as u64, wants_tools)
}

/// The answer to a request (chat or generate) whose text would be `text`: thinking per
/// [`OllamaConfig::think`] and the request's `think`, a tool call when `wants_tools` and one is
/// configured, pieces cut by `options.num_predict`, and the counts.
fn answer_plan(
    config: &OllamaConfig,
    body: &Value,
    text: &str,
    prompt_eval_count: u64,
    wants_tools: bool,
) -> Plan {
    let thinking = match (&config.think, &body["think"]) {
        (Some(_), Value::Bool(false)) | (None, _) => Vec::new(),
        (Some(think), _) => pieces(think),
    };
    let mut plan = Plan {
        prompt_eval_count,
        done_reason: "stop",
        thinking,
        ..Plan::default()
    };
    match (&config.tool_call, wants_tools) {
        (Some((name, arguments)), true) => {
            plan.tool_calls = Some(json!([{"function": {"name": name, "arguments": arguments}}]));
        }
        _ => {
            plan.content = pieces(text);
            let limit = num_predict(body);
            let total = plan.thinking.len() + plan.content.len();
            if let Some(limit) = limit.filter(|&l| l < total) {
                plan.thinking.truncate(limit);
                plan.content.truncate(limit - plan.thinking.len());
                plan.done_reason = "length";
            }
        }
    }
    let generated =
        plan.thinking.len() + plan.content.len() + usize::from(plan.tool_calls.is_some());
    plan.eval_count = generated.max(1) as u64;
    plan
}

/// `options.num_predict` when it is a positive number (Go truncates floats to ints).
fn num_predict(body: &Value) -> Option<usize> {
    let n = body["options"]["num_predict"].as_f64()?;
    (n >= 1.0).then_some(n as usize)
}

/// The text in pieces of [`PIECE_CHARS`] characters.
fn pieces(text: &str) -> Vec<String> {
    let chars: Vec<char> = text.chars().collect();
    chars
        .chunks(PIECE_CHARS)
        .map(|c| c.iter().collect())
        .collect()
}

fn chat(config: &OllamaConfig, raw: &[u8]) -> Reply {
    let body = match validate_chat(config, raw) {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    let model = body["model"].as_str().unwrap_or_default().to_string();
    let stream = body["stream"].as_bool().unwrap_or(true);
    let messages_empty = body["messages"].as_array().is_none_or(Vec::is_empty);
    if messages_empty {
        // Ollama loads (or with keep_alive 0, unloads) the model and answers at once, streaming
        // or not.
        let unload = unload_requested(&body);
        let line = Go::object(vec![
            ("model", Go::string(&model)),
            ("created_at", Go::string(&now_rfc3339())),
            ("message", assistant_message("", None, None)),
            (
                "done_reason",
                Go::string(if unload { "unload" } else { "load" }),
            ),
            ("done", Go::Value(json!(true))),
        ]);
        return json_body_reply(200, line.render().into_bytes());
    }
    let plan = plan(config, &body);
    if stream {
        stream_reply(config, &model, &plan)
    } else {
        std::thread::sleep(config.delay);
        if config.fail_mid_stream {
            return json_reply(500, &json!({"error": MID_STREAM_ERROR}));
        }
        let thinking = plan.thinking.concat();
        let message = assistant_message(
            &plan.content.concat(),
            (!thinking.is_empty()).then_some(thinking.as_str()),
            plan.tool_calls.as_ref(),
        );
        let object = done_object(&model, message, &plan, Duration::ZERO);
        single_reply(config, object.render().into_bytes())
    }
}

/// Whether `keep_alive` asks for the model to be unloaded (`0`, `"0"`, `"0s"`, `"0m"`).
fn unload_requested(body: &Value) -> bool {
    body["keep_alive"].as_f64() == Some(0.0)
        || matches!(body["keep_alive"].as_str(), Some("0" | "0s" | "0m"))
}

/// A non-streamed 200 body, cut per the chunking: `content-length` for [`Chunking::Lines`] and
/// [`Chunking::Whole`], chunked otherwise. (The caller has already waited the delay.)
fn single_reply(config: &OllamaConfig, bytes: Vec<u8>) -> Reply {
    match config.chunking {
        Chunking::Lines | Chunking::Whole => json_body_reply(200, bytes),
        Chunking::EveryByte | Chunking::Random { .. } => {
            let chunks = cut(&[bytes], config.chunking, Duration::ZERO);
            Reply::chunked(200, "application/json; charset=utf-8", chunks)
        }
    }
}

/// The line sent instead of the rest of a stream when [`OllamaConfig::fail_mid_stream`] is set.
fn mid_stream_error_line() -> String {
    Go::object(vec![("error", Go::string(MID_STREAM_ERROR))]).render()
}

/// An NDJSON stream of `lines` (each gets its `\n`), cut per the chunking, each line waiting
/// the delay.
fn ndjson_reply(config: &OllamaConfig, lines: Vec<String>) -> Reply {
    let lines: Vec<Vec<u8>> = lines
        .into_iter()
        .map(|mut l| {
            l.push('\n');
            l.into_bytes()
        })
        .collect();
    Reply::chunked(
        200,
        "application/x-ndjson",
        cut(&lines, config.chunking, config.delay),
    )
}

fn stream_reply(config: &OllamaConfig, model: &str, plan: &Plan) -> Reply {
    let line = |message: Go| {
        Go::object(vec![
            ("model", Go::string(model)),
            ("created_at", Go::string(&now_rfc3339())),
            ("message", message),
            ("done", Go::Value(json!(false))),
        ])
        .render()
    };
    let mut lines = Vec::new();
    for piece in &plan.thinking {
        lines.push(line(assistant_message("", Some(piece), None)));
    }
    for piece in &plan.content {
        lines.push(line(assistant_message(piece, None, None)));
        if config.fail_mid_stream {
            break;
        }
    }
    if let Some(calls) = &plan.tool_calls {
        lines.push(line(assistant_message("", None, Some(calls))));
    }
    if config.fail_mid_stream {
        // After the first content (or tool-call) line; with none, instead of the done line.
        lines.push(mid_stream_error_line());
    } else {
        let streamed = config.delay * (lines.len() as u32 + 1);
        let done = done_object(model, assistant_message("", None, None), plan, streamed);
        lines.push(done.render());
    }
    ndjson_reply(config, lines)
}

/// Ollama's `api.Message` for an answer: `role`, `content` (always), then `thinking` and
/// `tool_calls` when present.
fn assistant_message(content: &str, thinking: Option<&str>, tool_calls: Option<&Value>) -> Go {
    let mut fields = vec![
        ("role", Go::string("assistant")),
        ("content", Go::string(content)),
    ];
    if let Some(thinking) = thinking {
        fields.push(("thinking", Go::string(thinking)));
    }
    if let Some(calls) = tool_calls {
        fields.push(("tool_calls", Go::Value(calls.clone())));
    }
    Go::object(fields)
}

/// The final object: `done: true`, `done_reason` and the metrics (deterministic, nanoseconds).
fn done_object(model: &str, message: Go, plan: &Plan, waited: Duration) -> Go {
    let mut fields = vec![
        ("model", Go::string(model)),
        ("created_at", Go::string(&now_rfc3339())),
        ("message", message),
        ("done", Go::Value(json!(true))),
        ("done_reason", Go::string(plan.done_reason)),
    ];
    fields.extend(metrics(plan, waited));
    Go::object(fields)
}

/// Nanoseconds the stand-in reports for loading a model.
const LOAD_DURATION: u64 = 12_345_678;

/// Ollama's `Metrics`, in its order (deterministic apart from `waited`).
fn metrics(plan: &Plan, waited: Duration) -> Vec<(&'static str, Go)> {
    let prompt_eval = plan.prompt_eval_count * 250_000;
    let eval = plan.eval_count * 20_000_000;
    let total = LOAD_DURATION + prompt_eval + eval + waited.as_nanos() as u64 + 1_000_000;
    vec![
        ("total_duration", Go::Value(json!(total))),
        ("load_duration", Go::Value(json!(LOAD_DURATION))),
        (
            "prompt_eval_count",
            Go::Value(json!(plan.prompt_eval_count)),
        ),
        ("prompt_eval_duration", Go::Value(json!(prompt_eval))),
        ("eval_count", Go::Value(json!(plan.eval_count))),
        ("eval_duration", Go::Value(json!(eval))),
    ]
}

/// Checks the request as Ollama's decoder and handler would; the parsed body, or the error
/// reply.
fn validate_chat(config: &OllamaConfig, raw: &[u8]) -> Result<Value, Reply> {
    let body = parse_body(raw, "api.ChatRequest")?;
    check_type(
        "ChatRequest.model",
        &body["model"],
        body["model"].is_string(),
        "string",
    )?;
    check_type(
        "ChatRequest.stream",
        &body["stream"],
        body["stream"].is_boolean(),
        "bool",
    )?;
    check_type(
        "ChatRequest.messages",
        &body["messages"],
        body["messages"].is_array(),
        "[]api.Message",
    )?;
    check_type(
        "ChatRequest.options",
        &body["options"],
        body["options"].is_object(),
        "map[string]interface {}",
    )?;
    check_type(
        "ChatRequest.tools",
        &body["tools"],
        body["tools"].is_array(),
        "api.Tools",
    )?;
    for message in body["messages"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or(&[])
    {
        check_type(
            "ChatRequest.messages",
            message,
            message.is_object(),
            "api.Message",
        )?;
        for field in ["role", "content", "thinking", "tool_name", "tool_call_id"] {
            check_type(
                &format!("ChatRequest.messages.{field}"),
                &message[field],
                message[field].is_string(),
                "string",
            )?;
        }
        check_images("ChatRequest.messages.images", &message["images"])?;
        check_type(
            "ChatRequest.messages.tool_calls",
            &message["tool_calls"],
            message["tool_calls"].is_array(),
            "[]api.ToolCall",
        )?;
        for call in message["tool_calls"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or(&[])
        {
            let arguments = &call["function"]["arguments"];
            check_type(
                "ChatRequest.messages.tool_calls.function.arguments",
                arguments,
                arguments.is_object(),
                "api.ToolCallFunctionArguments",
            )?;
        }
    }
    check_think(&body)?;
    check_model(config, &body)?;
    if let Some(options) = body["options"].as_object() {
        check_options(options)?;
    }
    Ok(body)
}

/// Go's decoder error for a value of the wrong type in a struct field (`path` is
/// `Struct.field`).
fn field_error(path: &str, value: &Value, go_type: &str) -> Reply {
    error_reply(
        400,
        &format!(
            "json: cannot unmarshal {} into Go struct field {path} of type {go_type}",
            json_kind(value)
        ),
    )
}

/// `Ok` when `ok` or the value is `null` (Go leaves the field alone), else the decoder error.
fn check_type(path: &str, value: &Value, ok: bool, go_type: &str) -> Result<(), Reply> {
    if ok || value.is_null() {
        Ok(())
    } else {
        Err(field_error(path, value, go_type))
    }
}

/// An `images` field: an array of base64 strings (`api.ImageData` decodes base64).
fn check_images(path: &str, images: &Value) -> Result<(), Reply> {
    check_type(path, images, images.is_array(), "[]api.ImageData")?;
    for image in images.as_array().map(Vec::as_slice).unwrap_or(&[]) {
        let Some(text) = image.as_str() else {
            return Err(field_error(path, image, "api.ImageData"));
        };
        if let Err(e) = base64::engine::general_purpose::STANDARD.decode(text) {
            let at = match e {
                base64::DecodeError::InvalidByte(at, _) => at,
                base64::DecodeError::InvalidLastSymbol(at, _) => at,
                _ => text.len(),
            };
            return Err(error_reply(
                400,
                &format!("illegal base64 data at input byte {at}"),
            ));
        }
    }
    Ok(())
}

/// `think`: absent, a bool, or one of the levels (`api.ThinkValue`).
fn check_think(body: &Value) -> Result<(), Reply> {
    const THINK_VALUES: &str = "\"high\", \"medium\", \"low\", true, or false";
    let think_error = match &body["think"] {
        Value::Null | Value::Bool(_) => None,
        Value::String(level) if matches!(level.as_str(), "high" | "medium" | "low") => None,
        Value::String(level) => Some(format!(
            "invalid think value: {} (must be {THINK_VALUES})",
            json!(level)
        )),
        _ => Some(format!(
            "think must be a boolean or string ({THINK_VALUES})"
        )),
    };
    match think_error {
        Some(message) => Err(error_reply(400, &message)),
        None => Ok(()),
    }
}

/// `model`: required (400) and served (404 `model "x" not found, try pulling it first`).
fn check_model(config: &OllamaConfig, body: &Value) -> Result<(), Reply> {
    let model = body["model"].as_str().unwrap_or("");
    if model.is_empty() {
        return Err(error_reply(400, "model is required"));
    }
    if !serves(config, model) {
        return Err(error_reply(
            404,
            &format!("model {} not found, try pulling it first", json!(model)),
        ));
    }
    Ok(())
}

/// Option types as Ollama's `Options.FromMap` checks them (unknown options are ignored).
fn check_options(options: &Map<String, Value>) -> Result<(), Reply> {
    const INTEGERS: &[&str] = &[
        "num_keep",
        "seed",
        "num_predict",
        "top_k",
        "repeat_last_n",
        "num_ctx",
        "num_batch",
        "num_gpu",
        "main_gpu",
        "num_thread",
    ];
    const FLOATS: &[&str] = &[
        "temperature",
        "top_p",
        "min_p",
        "typical_p",
        "repeat_penalty",
        "presence_penalty",
        "frequency_penalty",
    ];
    for (key, value) in options {
        if value.is_null() {
            continue;
        }
        let problem = if INTEGERS.contains(&key.as_str()) && !value.is_number() {
            Some("integer")
        } else if FLOATS.contains(&key.as_str()) && !value.is_number() {
            Some("float32")
        } else if key == "stop" {
            match value.as_array() {
                None => Some("array"),
                Some(items) if !items.iter().all(Value::is_string) => Some("an array of strings"),
                Some(_) => None,
            }
        } else {
            None
        };
        if let Some(expected) = problem {
            let article = if expected.starts_with("an ") {
                ""
            } else {
                "type "
            };
            return Err(error_reply(
                500,
                &format!("option {} must be of {article}{expected}", json!(key)),
            ));
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// /api/tags and /api/show

fn tags(config: &OllamaConfig) -> Reply {
    let models: Vec<Value> = config
        .models
        .iter()
        .enumerate()
        .map(|(index, name)| {
            let info = ModelInfo::of(name);
            json!({
                "name": name,
                "model": name,
                "modified_at": model_modified(index).1,
                "size": info.size,
                "digest": info.digest,
                "details": info.details(),
            })
        })
        .collect();
    // Keys in Go's struct order.
    let rendered: Vec<Go> = models
        .iter()
        .map(|m| {
            Go::object(
                ["name", "model", "modified_at", "size", "digest", "details"]
                    .into_iter()
                    .map(|k| (k, Go::Value(m[k].clone())))
                    .collect(),
            )
        })
        .collect();
    let body = Go::object(vec![("models", Go::Array(rendered))]);
    json_body_reply(200, body.render().into_bytes())
}

fn show(config: &OllamaConfig, raw: &[u8]) -> Reply {
    let body = match parse_body(raw, "api.ShowRequest") {
        Ok(body) => body,
        Err(reply) => return reply,
    };
    let model = body["model"]
        .as_str()
        .filter(|m| !m.is_empty())
        .or_else(|| body["name"].as_str().filter(|m| !m.is_empty()));
    let Some(model) = model else {
        return error_reply(400, "model is required");
    };
    let Some(index) = config
        .models
        .iter()
        .position(|m| normalise(m) == normalise(model))
    else {
        return error_reply(404, &format!("model '{model}' not found"));
    };
    let info = ModelInfo::of(&config.models[index]);
    let mut capabilities = vec!["completion", "tools"];
    if config.think.is_some() {
        capabilities.push("thinking");
    }
    let family = &info.family;
    let mut model_info = Map::new();
    model_info.insert("general.architecture".into(), json!(family));
    model_info.insert("general.file_type".into(), json!(15));
    model_info.insert("general.parameter_count".into(), json!(info.parameters));
    model_info.insert(format!("{family}.context_length"), json!(40960));
    model_info.insert(format!("{family}.embedding_length"), json!(5120));
    let name = &config.models[index];
    let object = Go::object(vec![
        (
            "modelfile",
            Go::string(&format!(
                "# Modelfile generated by \"ollama show\"\n# To build a new Modelfile based on this, replace FROM with:\n# FROM {name}\n\nFROM /root/.ollama/models/blobs/sha256-{}\nTEMPLATE {{{{ .Prompt }}}}\nPARAMETER temperature 0.6\n",
                info.digest
            )),
        ),
        ("parameters", Go::string("temperature                    0.6")),
        ("template", Go::string("{{ .Prompt }}")),
        ("details", Go::Value(info.details())),
        ("model_info", Go::Value(Value::Object(model_info))),
        ("capabilities", Go::Value(json!(capabilities))),
        ("modified_at", Go::string(&model_modified(index).1)),
    ]);
    json_body_reply(200, object.render().into_bytes())
}

/// Plausible metadata derived from a model name like `qwen3:32b` or `llama3.2:latest`.
struct ModelInfo {
    family: String,
    parameter_size: String,
    parameters: u64,
    size: u64,
    digest: String,
}

impl ModelInfo {
    fn of(name: &str) -> Self {
        let (base, tag) = name.split_once(':').unwrap_or((name, "latest"));
        let base = base.rsplit('/').next().unwrap_or(base);
        let mut family = base
            .split(['.', '-', '_'])
            .next()
            .unwrap_or(base)
            .to_ascii_lowercase();
        if family.starts_with("llama") {
            family = "llama".into();
        }
        // A size tag: digits (with an optional fraction) and `b` or `m`.
        let size_tag = tag.split('-').next().unwrap_or("").to_ascii_lowercase();
        let parsed = size_tag
            .strip_suffix('b')
            .map(|n| (n, 1e9, "B"))
            .or_else(|| size_tag.strip_suffix('m').map(|n| (n, 1e6, "M")))
            .and_then(|(n, scale, unit)| {
                n.parse::<f64>()
                    .ok()
                    .map(|v| ((v * scale) as u64, format!("{}{unit}", n)))
            });
        let (parameters, parameter_size) = parsed.unwrap_or((8_030_261_248, "8.0B".to_string()));
        let digest = hex(&Sha256::digest(name.as_bytes()));
        Self {
            family,
            parameter_size,
            parameters,
            // About 4.85 bits per parameter (Q4_K_M).
            size: parameters / 100 * 61,
            digest,
        }
    }

    fn details(&self) -> Value {
        json!({
            "parent_model": "",
            "format": "gguf",
            "family": self.family,
            "families": [self.family],
            "parameter_size": self.parameter_size,
            "quantization_level": "Q4_K_M",
        })
    }
}

/// Ollama's `details` key order.
const DETAILS_ORDER: &[&str] = &[
    "parent_model",
    "format",
    "family",
    "families",
    "parameter_size",
    "quantization_level",
];

/// A model's `modified_at`: Unix seconds and the RFC 3339 text (`+02:00`), one day older per
/// position in the list.
fn model_modified(index: usize) -> (i64, String) {
    const BASE: i64 = 1_746_095_696; // 2025-05-01T10:34:56Z
    let unix = BASE - 86_400 * index as i64;
    let local = unix + 2 * 3600;
    (
        unix,
        format!(
            "{}.123456789+02:00",
            civil_time(local).trim_end_matches('Z')
        ),
    )
}

fn serves(config: &OllamaConfig, model: &str) -> bool {
    let wanted = normalise(model);
    config.models.iter().any(|m| normalise(m) == wanted)
}

/// `name` → `name:latest`; a tag given is kept.
fn normalise(name: &str) -> String {
    let last = name.rsplit('/').next().unwrap_or(name);
    if last.contains(':') {
        name.to_string()
    } else {
        format!("{name}:latest")
    }
}

// ---------------------------------------------------------------------------------------------
// Chunking

/// Cuts the concatenated `lines` into chunks per `chunking`; each chunk waits `delay` once per
/// line starting in it.
fn cut(lines: &[Vec<u8>], chunking: Chunking, delay: Duration) -> Vec<(Duration, Vec<u8>)> {
    if chunking == Chunking::Lines {
        return lines.iter().map(|l| (delay, l.clone())).collect();
    }
    let body = lines.concat();
    let mut starts = Vec::with_capacity(lines.len());
    let mut at = 0;
    for line in lines {
        starts.push(at);
        at += line.len();
    }
    let mut sizes: Box<dyn FnMut() -> usize> = match chunking {
        Chunking::Lines => unreachable!(),
        Chunking::Whole => Box::new(|| usize::MAX),
        Chunking::EveryByte => Box::new(|| 1),
        Chunking::Random { seed, max } => {
            let mut rng = SplitMix64(seed);
            let max = max.max(1) as u64;
            Box::new(move || (1 + rng.next() % max) as usize)
        }
    };
    let mut chunks = Vec::new();
    let mut from = 0;
    while from < body.len() {
        let to = from.saturating_add(sizes()).min(body.len());
        let line_starts = starts.iter().filter(|&&s| s >= from && s < to).count() as u32;
        chunks.push((delay * line_starts, body[from..to].to_vec()));
        from = to;
    }
    chunks
}

/// A tiny deterministic PRNG (SplitMix64).
struct SplitMix64(u64);

impl SplitMix64 {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
}

// ---------------------------------------------------------------------------------------------
// JSON the way Go writes it

/// A JSON value to render with Go's `encoding/json` conventions; objects keep the given order.
enum Go {
    Value(Value),
    /// Already rendered JSON (numbers Go formats differently from `serde_json`, like float32).
    Raw(String),
    Object(Vec<(&'static str, Go)>),
    Array(Vec<Go>),
}

impl Go {
    fn string(s: &str) -> Self {
        Go::Value(Value::String(s.to_string()))
    }

    fn object(fields: Vec<(&'static str, Go)>) -> Self {
        Go::Object(fields)
    }

    fn render(&self) -> String {
        let mut out = String::new();
        self.write(&mut out);
        out
    }

    fn write(&self, out: &mut String) {
        match self {
            Go::Value(v) => write_value(v, out),
            Go::Raw(text) => out.push_str(text),
            Go::Object(fields) => {
                out.push('{');
                for (i, (key, value)) in fields.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    write_string(key, out);
                    out.push(':');
                    value.write(out);
                }
                out.push('}');
            }
            Go::Array(items) => {
                out.push('[');
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        out.push(',');
                    }
                    item.write(out);
                }
                out.push(']');
            }
        }
    }
}

fn write_value(value: &Value, out: &mut String) {
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_string(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_value(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            // `details` objects in Ollama's struct order; other maps sorted, as Go sorts map
            // keys.
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort_by_key(|k| {
                (
                    DETAILS_ORDER
                        .iter()
                        .position(|d| d == k)
                        .unwrap_or(usize::MAX),
                    k.as_str(),
                )
            });
            if !map.contains_key("quantization_level") {
                keys.sort();
            }
            out.push('{');
            for (i, key) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_string(key, out);
                out.push(':');
                write_value(&map[key], out);
            }
            out.push('}');
        }
    }
}

/// A JSON string as Go's `encoding/json` escapes it (HTML-safe).
fn write_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '<' | '>' | '&' | '\u{2028}' | '\u{2029}' => {
                out.push_str(&format!("\\u{:04x}", c as u32));
            }
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

// ---------------------------------------------------------------------------------------------
// Helpers

/// Parses a request body as Go's `ShouldBindJSON` would into `go_type`.
fn parse_body(raw: &[u8], go_type: &str) -> Result<Value, Reply> {
    let text = String::from_utf8_lossy(raw);
    let trimmed = text.trim_start();
    if trimmed.is_empty() {
        return Err(error_reply(400, "missing request body"));
    }
    match serde_json::from_slice::<Value>(raw) {
        Ok(value @ Value::Object(_)) => Ok(value),
        Ok(other) => Err(error_reply(
            400,
            &format!(
                "json: cannot unmarshal {} into Go value of type {go_type}",
                json_kind(&other)
            ),
        )),
        Err(e) => {
            let first = trimmed.chars().next().unwrap_or(' ');
            let message = if "{[\"-0123456789tfn".contains(first) {
                if e.is_eof() {
                    "unexpected EOF".to_string()
                } else {
                    format!("invalid JSON: {e}")
                }
            } else {
                format!("invalid character '{first}' looking for beginning of value")
            };
            Err(error_reply(400, &message))
        }
    }
}

fn json_kind(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

fn error_reply(status: u16, message: &str) -> Reply {
    json_reply(status, &json!({ "error": message }))
}

fn json_reply(status: u16, value: &Value) -> Reply {
    let mut out = String::new();
    write_value(value, &mut out);
    json_body_reply(status, out.into_bytes())
}

/// A JSON body with `content-length`, labelled as gin labels it.
fn json_body_reply(status: u16, body: Vec<u8>) -> Reply {
    Reply {
        status,
        headers: vec![(
            "content-type".into(),
            "application/json; charset=utf-8".into(),
        )],
        body: ReplyBody::Full(body),
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Now as Go's `time.RFC3339Nano` in UTC: fraction with trailing zeros trimmed.
fn now_rfc3339() -> String {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    rfc3339_nano(now.as_secs() as i64, now.subsec_nanos())
}

fn rfc3339_nano(unix: i64, nanos: u32) -> String {
    let base = civil_time(unix);
    if nanos == 0 {
        return base;
    }
    let fraction = format!("{nanos:09}");
    format!(
        "{}.{}Z",
        base.trim_end_matches('Z'),
        fraction.trim_end_matches('0')
    )
}

/// `YYYY-MM-DDTHH:MM:SSZ` for Unix seconds.
fn civil_time(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let seconds = unix.rem_euclid(86_400);
    // Howard Hinnant's days-to-civil.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        seconds / 3600,
        seconds % 3600 / 60,
        seconds % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::{Request, Response};

    fn chat_body(content: &str) -> Value {
        json!({"model": "qwen3:32b", "messages": [{"role": "user", "content": content}]})
    }

    pub(super) fn send(upstream: &Upstream, request: Request) -> Response {
        request.send(upstream.addr()).expect("stand-in answers")
    }

    fn post_chat(upstream: &Upstream, body: &Value) -> Response {
        send(upstream, Request::post("/api/chat").json(body))
    }

    /// The NDJSON lines, each parsed (panics on a line that is not JSON or not terminated).
    pub(super) fn ndjson(response: &Response) -> Vec<Value> {
        let text = std::str::from_utf8(&response.body).expect("UTF-8 body");
        assert!(text.ends_with('\n'), "every line ends with \\n: {text:?}");
        text.split_terminator('\n')
            .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("{e}: {line}")))
            .collect()
    }

    /// Lines with `created_at` blanked (it is the only field that varies).
    pub(super) fn normalised(response: &Response) -> Vec<Value> {
        ndjson(response)
            .into_iter()
            .map(|mut v| {
                if v.get("created_at").is_some() {
                    v["created_at"] = json!("");
                }
                v
            })
            .collect()
    }

    pub(super) fn assert_rfc3339_nano(text: &str) {
        let (date, rest) = text.split_once('T').expect("T");
        assert_eq!(date.len(), 10, "{text}");
        assert!(rest.ends_with('Z'), "{text}");
        let time = rest.trim_end_matches('Z');
        let (hms, fraction) = time.split_once('.').unwrap_or((time, ""));
        assert_eq!(hms.len(), 8, "{text}");
        assert!(fraction.len() <= 9 && fraction.chars().all(|c| c.is_ascii_digit()));
        assert!(!fraction.ends_with('0'), "Go trims trailing zeros: {text}");
    }

    fn assembled(lines: &[Value]) -> String {
        lines
            .iter()
            .filter_map(|l| l["message"]["content"].as_str())
            .collect()
    }

    #[test]
    fn stream_defaults_to_true_with_documented_lines() {
        let config = OllamaConfig::default();
        let body = chat_body("hello there, how are you today?");
        let expected = expected_text(&config, &body);
        assert_eq!(expected, "You said: hello there, how are you today?");
        let upstream = start(config);
        let response = post_chat(&upstream, &body);
        assert_eq!(response.status, 200);
        assert_eq!(
            response.header("content-type"),
            Some("application/x-ndjson")
        );
        assert_eq!(response.header("transfer-encoding"), Some("chunked"));
        assert!(response.header("content-length").is_none());
        let lines = ndjson(&response);
        let (last, pieces) = lines.split_last().unwrap();
        assert_eq!(pieces.len(), expected.chars().count().div_ceil(4));
        for line in pieces {
            let keys: Vec<&String> = line.as_object().unwrap().keys().collect();
            assert_eq!(keys.len(), 4, "{line}");
            assert_eq!(line["model"], "qwen3:32b");
            assert_rfc3339_nano(line["created_at"].as_str().unwrap());
            assert_eq!(line["message"]["role"], "assistant");
            assert!(!line["message"]["content"].as_str().unwrap().is_empty());
            assert_eq!(line["done"], false);
        }
        assert_eq!(assembled(&lines), expected);
        // The final line: done, done_reason, metrics.
        assert_eq!(last["done"], true);
        assert_eq!(last["done_reason"], "stop");
        assert_eq!(last["message"], json!({"role": "assistant", "content": ""}));
        assert_rfc3339_nano(last["created_at"].as_str().unwrap());
        assert_eq!(last["prompt_eval_count"], 6, "words in the messages");
        assert_eq!(last["eval_count"], pieces.len());
        for metric in [
            "total_duration",
            "load_duration",
            "prompt_eval_duration",
            "eval_duration",
        ] {
            assert!(last[metric].as_u64().unwrap() > 0, "{metric}: {last}");
        }
        // Field order as Ollama writes it.
        let raw = response.text();
        let final_line = raw.lines().last().unwrap();
        assert!(
            final_line.starts_with(r#"{"model":"qwen3:32b","created_at":""#),
            "{final_line}"
        );
        assert!(
            final_line.contains(r#""done":true,"done_reason":"stop","total_duration":"#),
            "{final_line}"
        );
        let recorded = upstream.requests();
        assert_eq!(recorded.len(), 1);
        assert_eq!(recorded[0].path, "/api/chat");
    }

    #[test]
    fn stream_false_is_one_object() {
        let upstream = start(OllamaConfig::default());
        let mut body = chat_body("one two three");
        body["stream"] = json!(false);
        let response = post_chat(&upstream, &body);
        assert_eq!(response.status, 200);
        assert_eq!(
            response.header("content-type"),
            Some("application/json; charset=utf-8")
        );
        assert!(response.header("content-length").is_some());
        assert_eq!(response.text().lines().count(), 1);
        let v = response.json();
        assert_eq!(v["model"], "qwen3:32b");
        assert_eq!(v["done"], true);
        assert_eq!(v["done_reason"], "stop");
        assert_eq!(
            v["message"],
            json!({"role": "assistant", "content": "You said: one two three"})
        );
        assert_eq!(v["prompt_eval_count"], 3);
        assert_eq!(v["eval_count"], 6);
        assert!(v["total_duration"].as_u64().unwrap() > 0);
        assert!(v.get("thinking").is_none());
    }

    #[test]
    fn num_predict_cuts_with_length() {
        let config = OllamaConfig {
            reply: Some("abcdefghijklmnopqrstuvwxyz".into()),
            ..OllamaConfig::default()
        };
        let mut body = chat_body("hi");
        body["options"] = json!({"num_predict": 3, "temperature": 1.0});
        assert_eq!(expected_text(&config, &body), "abcdefghijkl");
        let upstream = start(config.clone());
        let lines = ndjson(&post_chat(&upstream, &body));
        assert_eq!(lines.len(), 4);
        assert_eq!(assembled(&lines), "abcdefghijkl");
        assert_eq!(lines[3]["done_reason"], "length");
        assert_eq!(lines[3]["eval_count"], 3);
        // Non-streamed too; and a limit at or above the length changes nothing.
        body["stream"] = json!(false);
        let v = post_chat(&upstream, &body).json();
        assert_eq!(v["message"]["content"], "abcdefghijkl");
        assert_eq!(v["done_reason"], "length");
        body["options"]["num_predict"] = json!(7);
        assert_eq!(post_chat(&upstream, &body).json()["done_reason"], "stop");
        body["options"]["num_predict"] = json!(-1);
        assert_eq!(expected_text(&config, &body), "abcdefghijklmnopqrstuvwxyz");
    }

    #[test]
    fn errors_have_ollama_shapes() {
        let upstream = start(OllamaConfig::default());
        let response = post_chat(
            &upstream,
            &json!({"model": "nope:7b", "messages": [{"role": "user", "content": "x"}]}),
        );
        assert_eq!(response.status, 404);
        assert_eq!(
            response.json(),
            json!({"error": "model \"nope:7b\" not found, try pulling it first"})
        );
        let response = post_chat(&upstream, &json!({"messages": []}));
        assert_eq!(response.status, 400);
        assert_eq!(response.json(), json!({"error": "model is required"}));
        let response = send(&upstream, Request::post("/api/chat").body("not json"));
        assert_eq!(response.status, 400);
        assert!(response.json()["error"].is_string());
        let response = send(&upstream, Request::post("/api/chat"));
        assert_eq!(response.json(), json!({"error": "missing request body"}));
        // Types Go's decoder refuses.
        for body in [
            json!({"model": "qwen3:32b", "messages": [{"role": "user", "content": [{"type": "text", "text": "x"}]}]}),
            json!({"model": "qwen3:32b", "stream": "yes", "messages": []}),
            json!({"model": "qwen3:32b", "messages": [{"role": "user", "content": "x", "images": ["data:image/png;base64,AAAA"]}]}),
            json!({"model": "qwen3:32b", "messages": [{"role": "assistant", "content": "", "tool_calls": [{"function": {"name": "f", "arguments": "{}"}}]}]}),
            json!({"model": "qwen3:32b", "think": "none", "messages": []}),
        ] {
            let response = post_chat(&upstream, &body);
            assert_eq!(response.status, 400, "{body}: {}", response.text());
            assert!(response.json()["error"].is_string());
        }
        let response = post_chat(
            &upstream,
            &json!({"model": "qwen3:32b", "options": {"num_predict": "ten"}, "messages": [{"role": "user", "content": "x"}]}),
        );
        assert_eq!(response.status, 500);
        assert_eq!(
            response.json()["error"],
            "option \"num_predict\" must be of type integer"
        );
        // Unknown routes and methods: gin's plain 404.
        for request in [
            Request::get("/api/chat"),
            Request::post("/v1/chat/completions"),
        ] {
            let response = send(&upstream, request);
            assert_eq!(response.status, 404);
            assert_eq!(response.text(), "404 page not found");
        }
        // Accepted: valid images, tool messages, known think levels, unknown fields.
        let ok = json!({"model": "qwen3", "think": "low", "user_id": "alice",
            "messages": [{"role": "user", "content": "x", "images": ["iVBORw0KGgo="]},
                         {"role": "tool", "content": "42", "tool_name": "f"}]});
        assert_eq!(
            post_chat(
                &upstream,
                &json!({"model": "qwen3:32b", "messages": ok["messages"]})
            )
            .status,
            200
        );
        assert_eq!(
            post_chat(&upstream, &ok).status,
            404,
            "qwen3 means qwen3:latest"
        );
    }

    #[test]
    fn empty_messages_load_the_model() {
        let upstream = start(OllamaConfig::default());
        let v = post_chat(&upstream, &json!({"model": "qwen3:32b", "messages": []})).json();
        assert_eq!(v["done"], true);
        assert_eq!(v["done_reason"], "load");
        assert_eq!(v["message"], json!({"role": "assistant", "content": ""}));
    }

    #[test]
    fn tags_and_show() {
        let config = OllamaConfig {
            models: vec!["qwen3:32b".into(), "llama3.2:latest".into()],
            ..OllamaConfig::default()
        };
        let upstream = start(config.clone());
        let response = send(&upstream, Request::get("/api/tags"));
        assert_eq!(response.status, 200);
        let v = response.json();
        let models = v["models"].as_array().unwrap();
        assert_eq!(models.len(), 2);
        for (model, name) in models.iter().zip(["qwen3:32b", "llama3.2:latest"]) {
            assert_eq!(model["name"], name);
            assert_eq!(model["model"], name);
            assert!(model["modified_at"]
                .as_str()
                .unwrap()
                .ends_with(".123456789+02:00"));
            assert!(model["size"].as_u64().unwrap() > 1_000_000);
            let digest = model["digest"].as_str().unwrap();
            assert_eq!(digest.len(), 64);
            assert!(digest.chars().all(|c| c.is_ascii_hexdigit()));
            let details = &model["details"];
            assert_eq!(details["format"], "gguf");
            for key in ["family", "parameter_size", "quantization_level"] {
                assert!(details[key].is_string(), "{key}: {details}");
            }
        }
        assert_eq!(models[0]["details"]["parameter_size"], "32B");
        assert_eq!(models[1]["details"]["family"], "llama");
        assert_eq!(
            models[0]["modified_at"],
            "2025-05-01T12:34:56.123456789+02:00"
        );
        assert_eq!(modified_at_unix(&config, "qwen3:32b"), Some(1_746_095_696));
        assert_eq!(
            modified_at_unix(&config, "llama3.2"),
            Some(1_746_095_696 - 86_400)
        );
        let raw = response.text();
        assert!(raw.contains(r#"{"name":"qwen3:32b","model":"qwen3:32b","modified_at":"#));

        let shown = send(
            &upstream,
            Request::post("/api/show").json(&json!({"model": "llama3.2"})),
        );
        assert_eq!(shown.status, 200);
        let shown = shown.json();
        assert_eq!(shown["details"]["family"], "llama");
        assert_eq!(shown["model_info"]["general.architecture"], "llama");
        assert!(shown["capabilities"]
            .as_array()
            .unwrap()
            .contains(&json!("completion")));
        assert_eq!(shown["modified_at"], models[1]["modified_at"]);
        let missing = send(
            &upstream,
            Request::post("/api/show").json(&json!({"model": "nope"})),
        );
        assert_eq!(missing.status, 404);
        assert_eq!(missing.json(), json!({"error": "model 'nope' not found"}));
    }

    #[test]
    fn every_chunking_gives_the_same_body() {
        let body = chat_body("héllo wörld, ünïcode splits 你好 🎉 <b>&amp;</b>");
        let mut bodies = Vec::new();
        for chunking in Chunking::VARIETY {
            let upstream = start(OllamaConfig {
                chunking,
                ..OllamaConfig::default()
            });
            bodies.push(normalised(&post_chat(&upstream, &body)));
            let mut flat = body.clone();
            flat["stream"] = json!(false);
            let mut single = post_chat(&upstream, &flat).json();
            single["created_at"] = json!("");
            bodies.last_mut().unwrap().push(single);
        }
        for other in &bodies[1..] {
            assert_eq!(&bodies[0], other);
        }
    }

    #[test]
    fn chunk_cuts_follow_the_mode() {
        let lines: Vec<Vec<u8>> = ["{\"a\":\"é\"}\n", "{\"b\":2}\n", "{\"c\":3}\n"]
            .iter()
            .map(|l| l.as_bytes().to_vec())
            .collect();
        let whole = lines.concat();
        let d = Duration::from_millis(10);
        let by_lines = cut(&lines, Chunking::Lines, d);
        assert_eq!(by_lines.len(), 3);
        assert!(by_lines.iter().all(|(delay, _)| *delay == d));
        let one = cut(&lines, Chunking::Whole, d);
        assert_eq!(one, vec![(d * 3, whole.clone())]);
        let bytes = cut(&lines, Chunking::EveryByte, d);
        assert_eq!(bytes.len(), whole.len());
        assert!(bytes.iter().all(|(_, c)| c.len() == 1));
        for (seed, max) in [(1, 1), (7, 5), (42, 3), (99, 64)] {
            let chunks = cut(&lines, Chunking::Random { seed, max }, d);
            assert!(chunks.iter().all(|(_, c)| (1..=max).contains(&c.len())));
            let joined: Vec<u8> = chunks.iter().flat_map(|(_, c)| c.clone()).collect();
            assert_eq!(joined, whole);
            let waited: Duration = chunks.iter().map(|(delay, _)| *delay).sum();
            assert_eq!(waited, d * 3, "one delay per line whatever the cuts");
            assert_eq!(chunks, cut(&lines, Chunking::Random { seed, max }, d));
        }
        assert_ne!(
            cut(&lines, Chunking::Random { seed: 1, max: 8 }, d),
            cut(&lines, Chunking::Random { seed: 2, max: 8 }, d)
        );
    }

    #[test]
    fn the_handler_streams_with_delays() {
        let handler = ollama_handler(OllamaConfig {
            delay: Duration::from_millis(25),
            reply: Some("12345678".into()),
            ..OllamaConfig::default()
        });
        let request = Recorded {
            method: "POST".into(),
            path: "/api/chat".into(),
            headers: Vec::new(),
            body: chat_body("x").to_string().into_bytes(),
            complete: true,
        };
        let reply = handler(&request);
        let ReplyBody::Chunks(chunks) = reply.body else {
            panic!("streamed answers are chunked")
        };
        assert_eq!(chunks.len(), 3, "two pieces and the done line");
        assert!(chunks
            .iter()
            .all(|(delay, _)| *delay == Duration::from_millis(25)));
        // Timing over the wire.
        let upstream = start(OllamaConfig {
            delay: Duration::from_millis(100),
            ..OllamaConfig::default()
        });
        let started = std::time::Instant::now();
        post_chat(&upstream, &chat_body("a b c d e f"));
        assert!(started.elapsed() >= Duration::from_millis(500));
    }

    #[test]
    fn multibyte_text_splits_on_characters_and_escapes_like_go() {
        let text = "héllo 🎉 日本語テキスト <tag> & \u{2028} \"q\"\n";
        let config = OllamaConfig {
            reply: Some(text.into()),
            chunking: Chunking::EveryByte,
            ..OllamaConfig::default()
        };
        let body = chat_body("x");
        assert_eq!(expected_text(&config, &body), text);
        let upstream = start(config);
        let response = post_chat(&upstream, &body);
        let lines = ndjson(&response);
        assert_eq!(assembled(&lines), text);
        let pieces: Vec<&str> = lines[..lines.len() - 1]
            .iter()
            .map(|l| l["message"]["content"].as_str().unwrap())
            .collect();
        assert!(pieces.iter().all(|p| p.chars().count() <= 4));
        assert_eq!(pieces[0], "héll");
        let mut flat = body.clone();
        flat["stream"] = json!(false);
        let whole = post_chat(&upstream, &flat);
        assert_eq!(whole.json()["message"]["content"], text);
        let raw = whole.text();
        assert!(
            raw.contains(r#"\u003ctag\u003e \u0026 \u2028 \"q\"\n"#),
            "{raw}"
        );
        assert!(raw.contains("日本語"), "UTF-8 is not escaped");
    }

    #[test]
    fn expected_text_matches_what_is_assembled() {
        for config in [
            OllamaConfig::default(),
            OllamaConfig {
                reply: Some("A fixed answer, longer than one piece.".into()),
                chunking: Chunking::Random { seed: 3, max: 7 },
                ..OllamaConfig::default()
            },
        ] {
            let upstream = start(config.clone());
            let body = json!({"model": "qwen3:32b", "messages": [
                {"role": "system", "content": "be brief"},
                {"role": "user", "content": "first question"},
                {"role": "assistant", "content": "an answer"},
                {"role": "user", "content": "the last question"},
            ]});
            let expected = expected_text(&config, &body);
            let lines = ndjson(&post_chat(&upstream, &body));
            assert_eq!(assembled(&lines), expected);
            assert_eq!(lines.last().unwrap()["prompt_eval_count"], 9);
        }
        assert_eq!(
            expected_text(&OllamaConfig::default(), &chat_body("the last question")),
            "You said: the last question"
        );
    }

    #[test]
    fn thinking_comes_before_content() {
        let config = OllamaConfig {
            think: Some("Let me think.".into()),
            reply: Some("Done.".into()),
            ..OllamaConfig::default()
        };
        let upstream = start(config.clone());
        let body = chat_body("x");
        let lines = ndjson(&post_chat(&upstream, &body));
        let thinking: String = lines
            .iter()
            .filter_map(|l| l["message"]["thinking"].as_str())
            .collect();
        assert_eq!(thinking, "Let me think.");
        assert_eq!(expected_thinking(&config, &body), thinking);
        assert_eq!(lines[0]["message"]["content"], "");
        assert_eq!(assembled(&lines), "Done.");
        let first_content = lines
            .iter()
            .position(|l| l["message"]["content"] != "")
            .unwrap();
        assert!(lines[first_content..]
            .iter()
            .all(|l| l["message"].get("thinking").is_none()));
        let mut flat = body.clone();
        flat["stream"] = json!(false);
        let v = post_chat(&upstream, &flat).json();
        assert_eq!(v["message"]["thinking"], "Let me think.");
        assert_eq!(v["message"]["content"], "Done.");
        // "think": false turns it off.
        flat["think"] = json!(false);
        let v = post_chat(&upstream, &flat).json();
        assert!(v["message"].get("thinking").is_none());
    }

    #[test]
    fn tool_calls_when_tools_are_offered() {
        let config = OllamaConfig {
            tool_call: Some(("get_weather".into(), json!({"city": "Paris", "days": 2}))),
            ..OllamaConfig::default()
        };
        let upstream = start(config.clone());
        let mut body = chat_body("weather?");
        body["tools"] = json!([{"type": "function", "function": {"name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}]);
        assert_eq!(expected_text(&config, &body), "");
        let lines = ndjson(&post_chat(&upstream, &body));
        assert_eq!(lines.len(), 2);
        assert_eq!(
            lines[0]["message"],
            json!({"role": "assistant", "content": "",
                "tool_calls": [{"function": {"name": "get_weather", "arguments": {"city": "Paris", "days": 2}}}]})
        );
        assert_eq!(lines[1]["done"], true);
        assert_eq!(lines[1]["done_reason"], "stop");
        body["stream"] = json!(false);
        let v = post_chat(&upstream, &body).json();
        assert_eq!(
            v["message"]["tool_calls"][0]["function"]["arguments"]["city"],
            "Paris"
        );
        // Without tools: text.
        let v = post_chat(
            &upstream,
            &json!({"model": "qwen3:32b", "stream": false, "messages": [{"role": "user", "content": "hi"}]}),
        )
        .json();
        assert_eq!(v["message"]["content"], "You said: hi");
        assert!(v["message"].get("tool_calls").is_none());
    }

    #[test]
    fn failing_mid_stream() {
        let upstream = start(OllamaConfig {
            fail_mid_stream: true,
            ..OllamaConfig::default()
        });
        let lines = ndjson(&post_chat(&upstream, &chat_body("please fail now")));
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[0]["message"]["content"], "You ");
        assert_eq!(lines[1], json!({"error": MID_STREAM_ERROR}));
        let mut body = chat_body("x");
        body["stream"] = json!(false);
        let response = post_chat(&upstream, &body);
        assert_eq!(response.status, 500);
        assert_eq!(response.json(), json!({"error": MID_STREAM_ERROR}));
    }

    #[test]
    fn timestamps_are_go_rfc3339_nano() {
        assert_eq!(rfc3339_nano(0, 0), "1970-01-01T00:00:00Z");
        assert_eq!(
            rfc3339_nano(1_795_428_000, 123_456_789),
            "2026-11-23T10:00:00.123456789Z"
        );
        assert_eq!(
            rfc3339_nano(951_782_400, 500_000_000),
            "2000-02-29T00:00:00.5Z"
        );
        assert_eq!(civil_time(1_746_095_696), "2025-05-01T10:34:56Z");
    }
}
