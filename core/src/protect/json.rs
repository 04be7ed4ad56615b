//! Every text of a JSON body, checked against the deny patterns and masked in place: message
//! contents and text parts, system prompts, tool results and tool-call arguments, whatever the
//! request shape (OpenAI or Ollama). Only values the model never reads as text are skipped.

use serde_json::Value;

use super::{Counts, Protector};

/// Keys whose values are names, ids, enums or media, never text for the model (masking them
/// would break the request: a model name, a base64 image).
const NOT_TEXT: &[&str] = &[
    "model",
    "role",
    "type",
    "id",
    "tool_call_id",
    "object",
    "images",
    "image_url",
    "input_audio",
    "keep_alive",
    "format",
    "finish_reason",
    "done_reason",
    "created_at",
    "system_fingerprint",
    "encoding_format",
    // Vectors (as numbers, or as base64 of little-endian floats).
    "embedding",
    "embeddings",
];

/// The name of the first deny pattern any text of `value` matches.
pub fn denied<'p>(protector: &'p Protector, value: &Value) -> Option<&'p str> {
    let mut found = None;
    visit(value, &mut |text| {
        if found.is_none() {
            found = protector.denied(text);
        }
    });
    found
}

/// Masks every text of `value`; whether anything changed.
pub fn mask(protector: &Protector, value: &mut Value, counts: &mut Counts) -> bool {
    let mut changed = false;
    visit_mut(value, &mut |text| {
        if let Some(masked) = protector.mask(text, counts) {
            *text = masked;
            changed = true;
        }
    });
    changed
}

/// A request body: refused if it matches a deny pattern (the pattern's name), else masked.
/// `Ok(None)`: forward it unchanged. A body that is not JSON is treated as text; one that is
/// not UTF-8 either (binary media) is not text and passes.
pub fn protect_request(
    protector: &Protector,
    body: &[u8],
    counts: &mut Counts,
) -> Result<Option<Vec<u8>>, String> {
    match serde_json::from_slice::<Value>(body) {
        Ok(mut value) => {
            if let Some(name) = denied(protector, &value) {
                return Err(name.to_string());
            }
            if mask(protector, &mut value, counts) {
                return Ok(Some(serde_json::to_vec(&value).unwrap_or_default()));
            }
            Ok(None)
        }
        Err(_) => {
            let Ok(text) = std::str::from_utf8(body) else {
                return Ok(None);
            };
            if let Some(name) = protector.denied(text) {
                return Err(name.to_string());
            }
            Ok(protector.mask(text, counts).map(String::into_bytes))
        }
    }
}

fn visit(value: &Value, on_text: &mut impl FnMut(&str)) {
    match value {
        Value::String(text) => on_text(text),
        Value::Array(items) => items.iter().for_each(|item| visit(item, on_text)),
        Value::Object(map) => map
            .iter()
            .filter(|(key, _)| !NOT_TEXT.contains(&key.as_str()))
            .for_each(|(_, item)| visit(item, on_text)),
        _ => {}
    }
}

/// Masks the texts of an object's members, except `skip` (and keys that are never text).
pub(super) fn mask_map(
    protector: &Protector,
    map: &mut serde_json::Map<String, Value>,
    counts: &mut Counts,
    skip: &str,
) -> bool {
    let mut changed = false;
    for (key, value) in map.iter_mut() {
        if key == skip || NOT_TEXT.contains(&key.as_str()) {
            continue;
        }
        visit_mut(value, &mut |text| {
            if let Some(masked) = protector.mask(text, counts) {
                *text = masked;
                changed = true;
            }
        });
    }
    changed
}

fn visit_mut(value: &mut Value, on_text: &mut impl FnMut(&mut String)) {
    match value {
        Value::String(text) => on_text(text),
        Value::Array(items) => items.iter_mut().for_each(|item| visit_mut(item, on_text)),
        Value::Object(map) => map
            .iter_mut()
            .filter(|(key, _)| !NOT_TEXT.contains(&key.as_str()))
            .for_each(|(_, item)| visit_mut(item, on_text)),
        _ => {}
    }
}

#[cfg(test)]
mod tests;
