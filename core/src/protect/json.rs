//! Every text of a JSON body, checked against the deny patterns and masked in place: message
//! contents and text parts, system prompts, tool results and tool-call arguments (strings or
//! objects), whatever the request shape (OpenAI or Ollama). Object keys and numbers are text
//! too (`{"4111 1111 1111 1111": 1}`, `"acct": 4111111111111111`). Only media and vectors are
//! skipped, and a few names the gateway itself sets at the top.

use serde_json::{Map, Value};

use super::{Counts, Protector};
use crate::json::{parse_strict, StrictJsonError};

/// Keys whose values are media or vectors, wherever they are: never text (masking a base64
/// image or a vector would only corrupt it).
const MEDIA: &[&str] = &[
    "images",
    "image_url",
    "input_audio",
    "embedding",
    "embeddings",
];

/// Top-level keys that are the gateway's or the route's, not the model's reading: the model
/// name, and the caller the gateway injects (`inject_user`).
const TOP_NAMES: &[&str] = &["model", "user_id", "session_id"];

/// Keys of a model's answer that carry its text as token ids or per-token data: they would
/// carry what masking took out of the text, so they are removed from answers.
const TOKEN_CHANNELS: &[&str] = &["context", "logprobs"];

/// Why a body is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// A deny pattern matched (its name).
    Denied(String),
    /// The body cannot be read as what it claims to be (`details`).
    Unreadable(&'static str),
}

/// The name of the first deny pattern any text of `value` matches.
pub fn denied<'p>(protector: &'p Protector, value: &Value) -> Option<&'p str> {
    let mut found = None;
    walk(value, true, &mut |text| {
        if found.is_none() {
            found = protector.denied(text);
        }
    });
    found
}

/// Masks every text of `value`; whether anything changed.
pub fn mask(protector: &Protector, value: &mut Value, counts: &mut Counts) -> bool {
    let mut changed = false;
    walk_mut(value, true, &mut |text| {
        let masked = protector.mask(text, counts);
        changed |= masked.is_some();
        masked
    });
    changed
}

/// A model's answer (one JSON document or line): its token-id channels removed, its texts
/// masked; whether anything changed.
pub fn mask_answer(protector: &Protector, value: &mut Value, counts: &mut Counts) -> bool {
    let removed = remove_token_channels(value);
    mask(protector, value, counts) | removed
}

/// A request body: refused if it matches a deny pattern or cannot be read, else masked.
/// `Ok(None)`: forward it unchanged. A body that starts like JSON must parse strictly (a
/// duplicate key, invalid UTF-8 or nesting too deep to check is refused: the model server
/// might read what the gateway could not); Ollama's `context` (token ids) is refused, since
/// it is text the gateway cannot read. Any other UTF-8 body is text; other bytes (media) pass.
pub fn protect_request(
    protector: &Protector,
    body: &[u8],
    counts: &mut Counts,
) -> Result<Option<Vec<u8>>, Refusal> {
    let looks_json = matches!(body.trim_ascii_start().first(), Some(b'{' | b'['));
    if !looks_json {
        let Ok(text) = std::str::from_utf8(body) else {
            return Ok(None);
        };
        if let Some(name) = protector.denied(text) {
            return Err(Refusal::Denied(name.to_string()));
        }
        return Ok(protector.mask(text, counts).map(String::into_bytes));
    }
    let mut value = parse_strict(body).map_err(|e| {
        Refusal::Unreadable(match e {
            StrictJsonError::DuplicateKey => "the body has a duplicate key",
            StrictJsonError::Invalid => "the body is not valid JSON (or is nested too deeply)",
        })
    })?;
    let token_ids = value
        .get("context")
        .is_some_and(|c| c.as_array().is_some_and(|ids| !ids.is_empty()));
    if token_ids {
        return Err(Refusal::Unreadable(
            "context (token ids) cannot be checked under data_protection",
        ));
    }
    if let Some(name) = denied(protector, &value) {
        return Err(Refusal::Denied(name.to_string()));
    }
    if mask(protector, &mut value, counts) {
        return Ok(Some(serde_json::to_vec(&value).unwrap_or_default()));
    }
    Ok(None)
}

/// Masks the members of an object, except `skip` (and media); whether anything changed.
pub(super) fn mask_map(
    protector: &Protector,
    map: &mut Map<String, Value>,
    counts: &mut Counts,
    skip: &str,
) -> bool {
    let mut changed = false;
    let mut on_text = |text: &str| {
        let masked = protector.mask(text, counts);
        changed |= masked.is_some();
        masked
    };
    let taken = map.remove(skip);
    mask_members(map, false, &mut on_text);
    if let Some(taken) = taken {
        map.insert(skip.to_string(), taken);
    }
    changed
}

/// Removes the token channels from an answer (top level and choices); whether any was there.
fn remove_token_channels(value: &mut Value) -> bool {
    let Value::Object(map) = value else {
        return false;
    };
    let mut removed = false;
    for key in TOKEN_CHANNELS {
        removed |= map.remove(*key).is_some();
    }
    if let Some(Value::Array(choices)) = map.get_mut("choices") {
        for choice in choices.iter_mut().filter_map(Value::as_object_mut) {
            removed |= choice.remove("logprobs").is_some();
        }
    }
    removed
}

/// Calls `on_text` with every text of `value` (strings, keys, numbers).
fn walk(value: &Value, top: bool, on_text: &mut impl FnMut(&str)) {
    match value {
        Value::String(text) => on_text(text),
        Value::Number(n) => on_text(&n.to_string()),
        Value::Array(items) => items.iter().for_each(|item| walk(item, false, on_text)),
        Value::Object(map) => {
            for (key, item) in map {
                if MEDIA.contains(&key.as_str()) || (top && TOP_NAMES.contains(&key.as_str())) {
                    continue;
                }
                on_text(key);
                walk(item, false, on_text);
            }
        }
        _ => {}
    }
}

/// Replaces every text of `value` for which `on_text` returns a masked form (a number that
/// matched becomes that string; a key that matched is renamed).
fn walk_mut(value: &mut Value, top: bool, on_text: &mut impl FnMut(&str) -> Option<String>) {
    match value {
        Value::String(text) => {
            if let Some(masked) = on_text(text) {
                *text = masked;
            }
        }
        Value::Number(n) => {
            if let Some(masked) = on_text(&n.to_string()) {
                *value = Value::String(masked);
            }
        }
        Value::Array(items) => items
            .iter_mut()
            .for_each(|item| walk_mut(item, false, on_text)),
        Value::Object(map) => mask_members(map, top, on_text),
        _ => {}
    }
}

fn mask_members(
    map: &mut Map<String, Value>,
    top: bool,
    on_text: &mut impl FnMut(&str) -> Option<String>,
) {
    let mut renamed = Vec::new();
    for (key, item) in map.iter_mut() {
        if MEDIA.contains(&key.as_str()) || (top && TOP_NAMES.contains(&key.as_str())) {
            continue;
        }
        if let Some(masked) = on_text(key) {
            renamed.push((key.clone(), masked));
        }
        walk_mut(item, false, on_text);
    }
    for (key, masked) in renamed {
        if let Some(item) = map.remove(&key) {
            map.insert(masked, item);
        }
    }
}

#[cfg(test)]
mod tests;
