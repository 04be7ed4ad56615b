//! Ollama's non-streamed answer read without copying its text: the answer's text (a megabyte for
//! a long answer) stays as its raw JSON string, borrowed from the body, and is written into the
//! OpenAI answer as it is. A JSON string is the same JSON string in both APIs, so one scan to
//! find its end and one copy replace parsing, unescaping, copying and escaping it again.
//!
//! Only the plain shape is read here (an object whose text fields are strings, no tool calls,
//! no duplicate keys); anything else returns `None` and the caller takes the general path over
//! a parsed `Value`, which decides what every other shape means. Both paths give the same
//! answer: `tests/fast_answer.rs` compares them.

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::response::{error_body, FINGERPRINT};
use super::time::unix_seconds;
use super::{ResponseContext, Translated, UpstreamError};

/// The top-level fields both answers use, each left raw so any JSON type reads without error
/// (the general path decides what an unexpected type means).
#[derive(Deserialize)]
struct Answer<'a> {
    #[serde(borrow)]
    model: Option<&'a RawValue>,
    #[serde(borrow)]
    created_at: Option<&'a RawValue>,
    #[serde(borrow)]
    done: Option<&'a RawValue>,
    #[serde(borrow)]
    done_reason: Option<&'a RawValue>,
    #[serde(borrow)]
    prompt_eval_count: Option<&'a RawValue>,
    #[serde(borrow)]
    eval_count: Option<&'a RawValue>,
    /// `/api/chat`'s message.
    #[serde(borrow)]
    message: Option<Message<'a>>,
    /// `/api/generate`'s text and thinking.
    #[serde(borrow)]
    response: Option<&'a RawValue>,
    #[serde(borrow)]
    thinking: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct Message<'a> {
    #[serde(borrow)]
    role: Option<&'a RawValue>,
    #[serde(borrow)]
    content: Option<&'a RawValue>,
    #[serde(borrow)]
    thinking: Option<&'a RawValue>,
    #[serde(borrow)]
    tool_calls: Option<&'a RawValue>,
}

/// What the OpenAI answer takes from the Ollama one.
struct Common<'a> {
    model: String,
    created: u64,
    finish_reason: &'static str,
    usage: Usage,
    /// `done: true`: the model server reported its usage.
    done: bool,
    text: &'a RawValue,
    /// Present only when a non-empty string.
    thinking: Option<&'a RawValue>,
}

#[derive(Serialize, Clone, Copy)]
struct Usage {
    prompt_tokens: u64,
    completion_tokens: u64,
    total_tokens: u64,
}

#[derive(Serialize)]
struct Completion<'a, C> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    system_fingerprint: &'static str,
    choices: [C; 1],
    usage: Usage,
}

#[derive(Serialize)]
struct ChatChoice<'a> {
    index: u32,
    message: ChatMessage<'a>,
    finish_reason: &'static str,
}

#[derive(Serialize)]
struct ChatMessage<'a> {
    role: &'a str,
    content: &'a RawValue,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning: Option<&'a RawValue>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a RawValue>,
}

#[derive(Serialize)]
struct TextChoice<'a> {
    text: &'a RawValue,
    index: u32,
    logprobs: Option<()>,
    finish_reason: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a RawValue>,
}

/// A translated answer: its body, and (prompt, completion) tokens when the answer was done.
pub(crate) type Fast = (Vec<u8>, Option<(u64, u64)>);

/// One non-streamed answer: an error status as OpenAI's error, else the `fast` path when it
/// reads the answer, else the `general` one.
pub(crate) fn translate(
    status: u16,
    body: &[u8],
    ctx: &ResponseContext,
    fast: fn(&[u8], &ResponseContext) -> Option<Fast>,
    general: fn(u16, &[u8], &ResponseContext) -> Result<Translated, UpstreamError>,
) -> Result<Translated, UpstreamError> {
    if !(200..300).contains(&status) {
        return Ok(Translated {
            status,
            body: error_body(status, body),
            usage: None,
        });
    }
    match fast(body, ctx) {
        Some((body, usage)) => Ok(Translated {
            status,
            body,
            usage,
        }),
        None => general(status, body, ctx),
    }
}

/// `/api/chat`'s answer as `chat.completion`, or `None` for the general path.
pub(crate) fn chat(body: &[u8], ctx: &ResponseContext) -> Option<Fast> {
    let answer: Answer = serde_json::from_slice(body).ok()?;
    let message = answer.message.as_ref()?;
    if message
        .tool_calls
        .is_some_and(|calls| !matches!(calls.get(), "[]" | "null"))
    {
        return None;
    }
    let role = match message.role {
        None => "assistant".to_string(),
        Some(raw) => match string(raw)? {
            role if role.is_empty() => "assistant".to_string(),
            role => role,
        },
    };
    let common = common(&answer, message.content, message.thinking, ctx)?;
    let completion = Completion {
        id: &ctx.id,
        object: "chat.completion",
        created: common.created,
        model: &common.model,
        system_fingerprint: FINGERPRINT,
        choices: [ChatChoice {
            index: 0,
            message: ChatMessage {
                role: &role,
                content: common.text,
                reasoning: common.thinking,
                reasoning_content: common.thinking,
            },
            finish_reason: common.finish_reason,
        }],
        usage: common.usage,
    };
    let usage = common.done.then_some(split(common.usage));
    Some((write(&completion, body.len())?, usage))
}

/// `/api/generate`'s answer as `text_completion`, or `None` for the general path.
pub(crate) fn completion(body: &[u8], ctx: &ResponseContext) -> Option<Fast> {
    let answer: Answer = serde_json::from_slice(body).ok()?;
    // The general path refuses an answer without its text; it says why.
    let text = answer.response?;
    let common = common(&answer, Some(text), answer.thinking, ctx)?;
    let completion = Completion {
        id: &ctx.id,
        object: "text_completion",
        created: common.created,
        model: &common.model,
        system_fingerprint: FINGERPRINT,
        choices: [TextChoice {
            text: common.text,
            index: 0,
            logprobs: None,
            finish_reason: common.finish_reason,
            reasoning_content: common.thinking,
        }],
        usage: common.usage,
    };
    let usage = common.done.then_some(split(common.usage));
    Some((write(&completion, body.len())?, usage))
}

/// The fields both answers share; `None` when one has a shape only the general path reads.
fn common<'a>(
    answer: &Answer<'a>,
    text: Option<&'a RawValue>,
    thinking: Option<&'a RawValue>,
    ctx: &ResponseContext,
) -> Option<Common<'a>> {
    let text = match text {
        Some(raw) if is_string(raw) => raw,
        _ => return None,
    };
    let thinking = match thinking {
        None => None,
        Some(raw) if !is_string(raw) => return None,
        Some(raw) if raw.get() == "\"\"" => None,
        Some(raw) => Some(raw),
    };
    let model = optional_string(answer.model)?;
    let created = unix_seconds(&optional_string(answer.created_at)?)
        .and_then(|s| u64::try_from(s).ok())
        .unwrap_or(ctx.now_s);
    let finish_reason = match optional_string(answer.done_reason)?.as_str() {
        "length" => "length",
        _ => "stop",
    };
    let prompt = count(answer.prompt_eval_count)?;
    let completion = count(answer.eval_count)?;
    let done = match answer.done.map(RawValue::get) {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return None,
    };
    Some(Common {
        model,
        created,
        finish_reason,
        usage: Usage {
            prompt_tokens: prompt,
            completion_tokens: completion,
            total_tokens: prompt.saturating_add(completion),
        },
        done,
        text,
        thinking,
    })
}

fn split(usage: Usage) -> (u64, u64) {
    (usage.prompt_tokens, usage.completion_tokens)
}

fn write(value: &impl Serialize, body_len: usize) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(body_len.saturating_add(512));
    serde_json::to_writer(&mut out, value).ok()?;
    Some(out)
}

fn is_string(raw: &RawValue) -> bool {
    raw.get().starts_with('"')
}

/// A short string field (model, dates, reasons); `None` when it is not a string.
fn string(raw: &RawValue) -> Option<String> {
    serde_json::from_str(raw.get()).ok()
}

/// An absent field reads as "", as in the general path; any other type than a string is left
/// to it.
fn optional_string(raw: Option<&RawValue>) -> Option<String> {
    raw.map_or(Some(String::new()), string)
}

/// A token count: absent reads as 0; anything but a u64 (a float, a negative) is left to the
/// general path.
fn count(raw: Option<&RawValue>) -> Option<u64> {
    raw.map_or(Some(0), |raw| raw.get().parse().ok())
}
