//! OpenAI <-> Ollama translation: pure logic, no host calls, no clock, no randomness (ids and
//! times are passed in). The mapping is `shared/reference/openai-ollama-mapping.md`.
//!
//! - [`chat_request`]: an OpenAI chat completion request -> Ollama's `POST /api/chat` body.
//! - [`chat_response`]: Ollama's non-streamed answer -> OpenAI's `chat.completion` (or error).
//! - [`StreamTranslator`]: Ollama's NDJSON stream -> OpenAI's Server-Sent Events, chunk by chunk.
//! - [`models_list`] / [`model_object`]: `GET /api/tags` -> OpenAI's model list / one model.
//!
//! All input is hostile: nothing here indexes, slices or unwraps in a way that can panic.

use std::collections::HashMap;

use serde_json::{json, Value};

mod answer;
mod completions;
mod embeddings;
mod fields;
mod messages;
mod models;
mod ndjson;
mod options;
mod request;
mod response;
mod stream;
mod time;

#[cfg(test)]
mod tests;

pub use completions::{
    completion_answer, completion_request, completion_response, CompletionRequest,
    CompletionStreamTranslator,
};
pub use embeddings::{
    embeddings_request, embeddings_response, EmbeddingEncoding, EmbeddingsRequest,
};
pub use models::{model_object, model_object_where, models_list, models_list_where};
pub use request::chat_request;
pub use response::{chat_answer, chat_response};
pub use stream::{StreamTranslator, MAX_STREAM_LINE_BYTES};

/// Which API the upstream speaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Ollama's native API: requests and responses are translated.
    Ollama,
    /// OpenAI-compatible upstream (vLLM, ...): passthrough, no rewriting.
    OpenAi,
}

/// The compiled `translate` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslateConfig {
    pub target: Target,
    /// The model used when the client names none.
    pub default_model: Option<String>,
    /// Client model name -> upstream model name (one step, no chains).
    pub model_aliases: HashMap<String, String>,
    /// Add the verified caller (`user_id`, `session_id`) to the upstream body.
    pub inject_user: bool,
}

/// The verified caller, added to the upstream body when `inject_user` (audit). Never taken from
/// the client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Caller {
    pub user_id: Option<String>,
    pub session_id: Option<String>,
}

/// Why a client request cannot be translated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TranslateError {
    /// 400 INVALID_REQUEST_BODY; the String is the contract's `details` (our own words; never
    /// client content beyond a field name).
    InvalidBody(String),
}

/// The upstream answered in a form that cannot be translated: 502 UPSTREAM_ERROR, `details`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamError(pub String);

/// An OpenAI chat request translated for Ollama's `POST /api/chat`.
#[derive(Debug, Clone, PartialEq)]
pub struct ChatRequest {
    /// The Ollama request JSON.
    pub body: Vec<u8>,
    /// What the client asked (OpenAI's default: false); always written to the Ollama body.
    pub stream: bool,
    /// `stream_options.include_usage`.
    pub include_usage: bool,
    /// The model sent upstream (after default and alias).
    pub model: String,
}

/// A translated non-streamed answer: OpenAI's status and body, and the tokens the model server
/// reported (prompt, completion) once its answer was done.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translated {
    pub status: u16,
    pub body: Vec<u8>,
    pub usage: Option<(u64, u64)>,
}

/// What the response translation needs to know about the request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResponseContext {
    /// `chatcmpl-...`, chosen by the caller (random); the same for every chunk.
    pub id: String,
    /// Fallback for `created` when Ollama's `created_at` is unparsable.
    pub now_s: u64,
    pub include_usage: bool,
}

/// OpenAI's error body `{"error": {"message", "type", "param": null, "code": null}}`, with the
/// `type` Ollama's compatibility layer uses for the status.
pub fn openai_error(status: u16, message: &str) -> Vec<u8> {
    to_bytes(&openai_error_value(status, message))
}

/// OpenAI's 404 error body (`not_found_error`).
pub fn not_found_error(message: &str) -> Vec<u8> {
    openai_error(404, message)
}

pub(crate) fn openai_error_value(status: u16, message: &str) -> Value {
    let kind = match status {
        400 => "invalid_request_error",
        404 => "not_found_error",
        _ => "api_error",
    };
    // The contract's `code` and `details` too, like every error the gateway answers with.
    let code = match status {
        404 => "MODEL_NOT_FOUND",
        _ => "UPSTREAM_ERROR",
    };
    json!({"error": {"message": message, "type": kind, "param": null, "code": code,
                     "details": message}})
}

/// Serializes a JSON value (cannot fail for a `Value`; an empty body if it ever did).
pub(crate) fn to_bytes(value: &Value) -> Vec<u8> {
    serde_json::to_vec(value).unwrap_or_default()
}
