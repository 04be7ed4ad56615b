//! OpenAI's legacy completions (`POST /v1/completions`) -> Ollama `POST /api/generate` and back.
//!
//! - [`completion_request`]: the client's body, validated and rebuilt as Ollama's
//!   `{"model", "prompt", "suffix"?, "stream", "raw": false, "options"}` (unknown fields
//!   dropped; what Ollama cannot do is refused, see the function).
//! - [`completion_response`]: Ollama's non-streamed answer -> OpenAI's `text_completion`.
//! - [`CompletionStreamTranslator`]: Ollama's NDJSON stream -> `text_completion` SSE chunks.
//!
//! Ollama's `thinking` (reasoning models) is sent as the choice's `reasoning_content` when
//! non-empty. All input is hostile: nothing here indexes, slices or unwraps in a way that can
//! panic.

use serde_json::{json, Map, Value};

use super::fields::{field, invalid, opt_str};
use super::ndjson::{event, AnswerLines, Translating};
use super::options::{only_one, opt_bool, opt_max_tokens, parse_body, sampling, stream_flags};
use super::request::resolve_model;
use super::response::{
    created, finish_reason, reported_usage, str_of, usage, usage_value, FINGERPRINT,
};
use super::{
    answer, to_bytes, Caller, ResponseContext, Target, TranslateConfig, TranslateError, Translated,
    UpstreamError,
};

/// Most `stop` sequences (OpenAI's limit).
const MAX_STOP: usize = 4;

const PROMPT_TYPE: &str = "prompt must be a string or an array of one string";
const STOP_TYPE: &str = "stop must be a string or an array of up to 4 strings";

/// An OpenAI completions request translated for Ollama's `POST /api/generate`.
#[derive(Debug, Clone, PartialEq)]
pub struct CompletionRequest {
    /// The Ollama request JSON (the client's body, unchanged, for [`Target::OpenAi`]).
    pub body: Vec<u8>,
    /// What the client asked (OpenAI's default: false); always written to the Ollama body.
    pub stream: bool,
    /// `stream_options.include_usage`.
    pub include_usage: bool,
    /// The model sent upstream (after default and alias).
    pub model: String,
}

/// Translates an OpenAI completions request for Ollama's `POST /api/generate`.
///
/// - `model`: the client's, else the configured default; then its alias.
/// - `prompt`: a non-empty string, or an array of exactly one; token ids are refused.
/// - `suffix` (a string) is sent when non-empty (fill-in-the-middle).
/// - `max_tokens` -> `options.num_predict`. OpenAI's default of 16 is deliberately not imposed:
///   when `max_tokens` is absent, `num_predict` is left unset and the model server's own limit
///   applies.
/// - `temperature`, `top_p` (1.0 each when absent, as for the chat), `seed`,
///   `frequency_penalty`, `presence_penalty` -> `options`; `stop` (a string or up to 4) ->
///   `options.stop`.
/// - `n` and `best_of` must be 1; `echo: true` and any non-null `logprobs` are refused.
/// - `user` and unknown fields are dropped; `raw` is always false (the model's template applies).
/// - The verified caller is added as `user_id` / `session_id` when `inject_user`.
///
/// For [`Target::OpenAi`] the body passes unchanged (only `stream` and `stream_options` are read).
pub fn completion_request(
    body: &[u8],
    config: &TranslateConfig,
    caller: &Caller,
) -> Result<CompletionRequest, TranslateError> {
    let obj = parse_body(body)?;
    if config.target == Target::OpenAi {
        // Passthrough: the body goes upstream as the client sent it.
        let (stream, include_usage) = stream_flags(&obj)?;
        let model = resolve_model(&obj, config).unwrap_or_default();
        return Ok(CompletionRequest {
            body: body.to_vec(),
            stream,
            include_usage,
            model,
        });
    }

    let model = resolve_model(&obj, config)?;
    let prompt = prompt(&obj)?;
    refuse_unsupported(&obj)?;
    let (stream, include_usage) = stream_flags(&obj)?;
    let suffix = opt_str(&obj, "suffix", "suffix")?.filter(|s| !s.is_empty());

    let mut options = sampling(&obj)?;
    if let Some(n) = opt_max_tokens(&obj, "max_tokens")? {
        options.insert("num_predict".into(), n.into());
    }
    if let Some(stop) = stop(&obj)? {
        options.insert("stop".into(), stop);
    }

    let mut out = Map::new();
    out.insert("model".into(), Value::String(model.clone()));
    out.insert("prompt".into(), Value::String(prompt.to_string()));
    if let Some(suffix) = suffix {
        out.insert("suffix".into(), suffix.into());
    }
    out.insert("stream".into(), Value::Bool(stream));
    out.insert("raw".into(), Value::Bool(false));
    out.insert("options".into(), Value::Object(options));
    if config.inject_user {
        if let Some(user) = &caller.user_id {
            out.insert("user_id".into(), Value::String(user.clone()));
        }
        if let Some(session) = &caller.session_id {
            out.insert("session_id".into(), Value::String(session.clone()));
        }
    }
    Ok(CompletionRequest {
        body: to_bytes(&Value::Object(out)),
        stream,
        include_usage,
        model,
    })
}

/// The prompt: a non-empty string, or an array holding exactly one.
fn prompt(obj: &Map<String, Value>) -> Result<&str, TranslateError> {
    let text = match field(obj, "prompt") {
        None => return Err(invalid("prompt is required")),
        Some(Value::String(s)) => s,
        Some(Value::Array(items)) => match items.as_slice() {
            [Value::String(s)] => s,
            _ if items.iter().any(|i| i.is_number() || i.is_array()) => {
                return Err(invalid("prompt as token ids is not supported; send text"))
            }
            [_, _, ..] if items.iter().all(Value::is_string) => {
                return Err(invalid("more than one prompt is not supported"))
            }
            _ => return Err(invalid(PROMPT_TYPE)),
        },
        Some(_) => return Err(invalid(PROMPT_TYPE)),
    };
    if text.is_empty() {
        // Ollama only loads the model for an empty prompt; it generates nothing.
        return Err(invalid("prompt must not be empty"));
    }
    Ok(text)
}

/// What Ollama cannot do: more than one choice, echoing the prompt, log probabilities.
fn refuse_unsupported(obj: &Map<String, Value>) -> Result<(), TranslateError> {
    only_one(obj, "n")?;
    only_one(obj, "best_of")?;
    if opt_bool(obj, "echo", "echo")? {
        return Err(invalid("echo is not supported"));
    }
    if field(obj, "logprobs").is_some() {
        return Err(invalid("logprobs is not supported"));
    }
    Ok(())
}

/// `stop`: a string or up to 4 strings -> an array (none for an empty array).
fn stop(obj: &Map<String, Value>) -> Result<Option<Value>, TranslateError> {
    match field(obj, "stop") {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(Value::Array(vec![Value::String(s.clone())]))),
        Some(Value::Array(items))
            if items.len() <= MAX_STOP && items.iter().all(Value::is_string) =>
        {
            Ok((!items.is_empty()).then(|| Value::Array(items.clone())))
        }
        Some(_) => Err(invalid(STOP_TYPE)),
    }
}

/// Translates Ollama's non-streamed `/api/generate` answer (status and body) into OpenAI's
/// `text_completion` (status and body); a non-2xx answer becomes OpenAI's error shape with the
/// same status.
pub fn completion_response(
    status: u16,
    body: &[u8],
    ctx: &ResponseContext,
) -> Result<(u16, Vec<u8>), UpstreamError> {
    completion_answer(status, body, ctx).map(|t| (t.status, t.body))
}

/// [`completion_response`] with the tokens the answer used.
pub fn completion_answer(
    status: u16,
    body: &[u8],
    ctx: &ResponseContext,
) -> Result<Translated, UpstreamError> {
    answer::translate(status, body, ctx, answer::completion, completion_general)
}

/// The general path: any shape, over a parsed `Value`.
pub(super) fn completion_general(
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
    let Some(Value::String(text)) = answer.get("response") else {
        return Err(UpstreamError(
            "the model server's answer has no response text".into(),
        ));
    };
    let choice = choice(
        text,
        str_of(&answer, "thinking"),
        finish_reason(&answer).into(),
    );
    let completion = json!({
        "id": ctx.id,
        "object": "text_completion",
        "created": created(&answer, ctx.now_s),
        "model": str_of(&answer, "model"),
        "system_fingerprint": FINGERPRINT,
        "choices": [choice],
        "usage": usage_value(usage(&answer)),
    });
    Ok(Translated {
        status,
        body: to_bytes(&completion),
        usage: reported_usage(&answer),
    })
}

/// One choice: `text`, `index` 0, `logprobs` null, the finish reason (null while streaming), and
/// `reasoning_content` when there is thinking.
fn choice(text: &str, thinking: &str, finish_reason: Value) -> Value {
    let mut choice = Map::new();
    choice.insert("text".into(), text.into());
    choice.insert("index".into(), 0.into());
    choice.insert("logprobs".into(), Value::Null);
    choice.insert("finish_reason".into(), finish_reason);
    if !thinking.is_empty() {
        choice.insert("reasoning_content".into(), thinking.into());
    }
    Value::Object(choice)
}

/// Translates one streamed `/api/generate` answer into `text_completion` SSE chunks;
/// [`feed`](Self::feed) it the body as it arrives, then [`finish`](Self::finish) it. Each line
/// with text or thinking is one chunk (finish reason null); the `done` line is a chunk with the
/// finish reason (and its text, usually ""), then a usage chunk (`choices: []`) when
/// `include_usage`, then `[DONE]`. An `{"error": ...}`, invalid or over-long line, or a body that
/// ends before the `done` line, ends the stream with an error event and `[DONE]`.
pub type CompletionStreamTranslator = Translating<CompletionLines>;

/// What each `/api/generate` line adds to the completion's stream.
#[derive(Debug)]
pub struct CompletionLines {
    ctx: ResponseContext,
    /// `created` and `model`, fixed by the first line.
    head: Option<(u64, String)>,
    usage: Option<(u64, u64)>,
}

impl CompletionStreamTranslator {
    pub fn new(ctx: ResponseContext) -> Self {
        Translating::with(CompletionLines {
            ctx,
            head: None,
            usage: None,
        })
    }
}

impl AnswerLines for CompletionLines {
    fn usage(&self) -> Option<(u64, u64)> {
        self.usage
    }

    fn answer(&mut self, answer: &Map<String, Value>, out: &mut Vec<u8>) -> bool {
        if self.head.is_none() {
            let model = str_of(answer, "model").to_string();
            self.head = Some((created(answer, self.ctx.now_s), model));
        }
        let text = str_of(answer, "response");
        let thinking = str_of(answer, "thinking");
        if answer.get("done").and_then(Value::as_bool) == Some(true) {
            let reason = Value::String(finish_reason(answer).into());
            event(&self.chunk(choice(text, thinking, reason)), out);
            let used = usage(answer);
            self.usage = Some(used);
            if self.ctx.include_usage {
                let mut chunk = self.envelope(Vec::new());
                chunk.insert("usage".into(), usage_value(used));
                event(&Value::Object(chunk), out);
            }
            return true;
        }
        if !text.is_empty() || !thinking.is_empty() {
            event(&self.chunk(choice(text, thinking, Value::Null)), out);
        }
        false
    }
}

impl CompletionLines {
    /// The fields every chunk carries, with these choices.
    fn envelope(&self, choices: Vec<Value>) -> Map<String, Value> {
        let (created, model) = self
            .head
            .clone()
            .unwrap_or_else(|| (self.ctx.now_s, String::new()));
        let mut chunk = Map::new();
        chunk.insert("id".into(), self.ctx.id.clone().into());
        chunk.insert("object".into(), "text_completion".into());
        chunk.insert("created".into(), created.into());
        chunk.insert("model".into(), model.into());
        chunk.insert("system_fingerprint".into(), FINGERPRINT.into());
        chunk.insert("choices".into(), Value::Array(choices));
        chunk
    }

    fn chunk(&self, choice: Value) -> Value {
        Value::Object(self.envelope(vec![choice]))
    }
}
