//! Reading the fields OpenAI's requests share (chats, completions, embeddings): the body,
//! `stream` and `stream_options`, the sampling options sent as Ollama's `options`, `n`-like
//! counts. Each refusal is the contract's `details`.

use serde_json::{Map, Value};

use super::fields::{field, invalid};
use super::TranslateError;
use crate::json::{parse_strict, StrictJsonError};

/// Largest `max_tokens` accepted.
const MAX_TOKENS_LIMIT: u64 = 1_000_000;

/// The body as a strictly parsed JSON object (a duplicate key is refused).
pub(crate) fn parse_body(body: &[u8]) -> Result<Map<String, Value>, TranslateError> {
    match parse_strict(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(invalid("the body must be a JSON object")),
        Err(StrictJsonError::DuplicateKey) => Err(invalid("the body has a duplicate key")),
        Err(StrictJsonError::Invalid) => Err(invalid("the body is not valid JSON")),
    }
}

/// `key` as a boolean, false when absent or null.
pub(crate) fn opt_bool(
    obj: &Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<bool, TranslateError> {
    match field(obj, key) {
        None => Ok(false),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(invalid(format!("{path} must be a boolean"))),
    }
}

/// `key` as a number in `min..=max`, if present.
pub(crate) fn opt_number(
    obj: &Map<String, Value>,
    key: &str,
    min: f64,
    max: f64,
) -> Result<Option<f64>, TranslateError> {
    let Some(value) = field(obj, key) else {
        return Ok(None);
    };
    let n = value
        .as_f64()
        .ok_or_else(|| invalid(format!("{key} must be a number")))?;
    if !(min..=max).contains(&n) {
        return Err(invalid(format!("{key} must be between {min} and {max}")));
    }
    Ok(Some(n))
}

/// `key` as a token limit in `1..=MAX_TOKENS_LIMIT`, if present.
pub(crate) fn opt_max_tokens(
    obj: &Map<String, Value>,
    key: &str,
) -> Result<Option<u64>, TranslateError> {
    let Some(value) = field(obj, key) else {
        return Ok(None);
    };
    match value.as_u64() {
        Some(n) if (1..=MAX_TOKENS_LIMIT).contains(&n) => Ok(Some(n)),
        _ => Err(invalid(format!(
            "{key} must be a positive integer up to {MAX_TOKENS_LIMIT}"
        ))),
    }
}

/// `stream` and `stream_options.include_usage`.
pub(crate) fn stream_flags(obj: &Map<String, Value>) -> Result<(bool, bool), TranslateError> {
    let stream = opt_bool(obj, "stream", "stream")?;
    let include_usage = match field(obj, "stream_options") {
        None => false,
        Some(Value::Object(options)) => {
            opt_bool(options, "include_usage", "stream_options.include_usage")?
        }
        Some(_) => return Err(invalid("stream_options must be an object")),
    };
    Ok((stream, include_usage))
}

/// A count of which only 1 is supported (`n`, `best_of`): absent, null or 1.
pub(crate) fn only_one(obj: &Map<String, Value>, key: &str) -> Result<(), TranslateError> {
    match field(obj, key) {
        None => Ok(()),
        Some(n) => match n.as_i64() {
            Some(1) => Ok(()),
            Some(k) if k > 1 => Err(invalid(format!("{key} > 1 is not supported"))),
            _ => Err(invalid(format!("{key} must be 1"))),
        },
    }
}

/// Ollama's `options` for the sampling fields: `temperature` and `top_p` (OpenAI's default 1.0
/// each when absent, as Ollama's own compatibility layer sends; Ollama's native defaults
/// differ), `frequency_penalty`, `presence_penalty` and `seed` when given.
pub(crate) fn sampling(obj: &Map<String, Value>) -> Result<Map<String, Value>, TranslateError> {
    let mut options = Map::new();
    let temperature = opt_number(obj, "temperature", 0.0, 2.0)?.unwrap_or(1.0);
    options.insert("temperature".into(), temperature.into());
    let top_p = opt_number(obj, "top_p", 0.0, 1.0)?.unwrap_or(1.0);
    options.insert("top_p".into(), top_p.into());
    for key in ["frequency_penalty", "presence_penalty"] {
        if let Some(n) = opt_number(obj, key, -2.0, 2.0)? {
            options.insert(key.into(), n.into());
        }
    }
    if let Some(seed) = field(obj, "seed") {
        let seed = seed
            .as_i64()
            .ok_or_else(|| invalid("seed must be an integer"))?;
        options.insert("seed".into(), seed.into());
    }
    Ok(options)
}
