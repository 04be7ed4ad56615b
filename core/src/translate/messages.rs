//! `messages[]`: OpenAI chat messages -> Ollama chat messages.

use base64::alphabet::STANDARD;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use serde_json::{Map, Value};

use super::fields::{field, invalid, opt_str};
use super::TranslateError;
use crate::json::parse_strict;

const INVALID_IMAGE: &str = "invalid image input";
const REMOTE_IMAGE: &str = "remote image URLs are not supported (the gateway fetches nothing)";

/// Standard base64 with padding; like Go's `StdEncoding` (which Ollama uses), it does not insist
/// that the unused bits of the last character are zero.
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_decode_allow_trailing_bits(true),
);

/// The data-URL prefixes Ollama accepts for images.
const IMAGE_PREFIXES: [&str; 5] = [
    "data:image/jpeg;base64,",
    "data:image/jpg;base64,",
    "data:image/png;base64,",
    "data:image/webp;base64,",
    "data:;base64,",
];

pub(crate) fn translate_messages(list: &[Value]) -> Result<Vec<Value>, TranslateError> {
    let mut out = Vec::with_capacity(list.len());
    for (i, message) in list.iter().enumerate() {
        let Value::Object(message) = message else {
            return Err(invalid(format!("messages[{i}] must be an object")));
        };
        out.push(translate_message(message, i, list)?);
    }
    Ok(out)
}

fn translate_message(
    message: &Map<String, Value>,
    i: usize,
    all: &[Value],
) -> Result<Value, TranslateError> {
    let role = match opt_str(message, "role", &format!("messages[{i}].role"))? {
        Some("developer" | "system") => "system",
        Some(r @ ("user" | "assistant" | "tool")) => r,
        Some(_) => {
            return Err(invalid(format!(
                "messages[{i}].role must be system, developer, user, assistant or tool"
            )))
        }
        None => return Err(invalid(format!("messages[{i}].role is required"))),
    };
    let mut out = Map::new();
    out.insert("role".into(), role.into());

    let tool_calls = tool_calls(message, i, role)?;
    let (content, images) = match field(message, "content") {
        Some(Value::String(s)) => (s.clone(), Vec::new()),
        Some(Value::Array(parts)) => content_parts(parts, i)?,
        None if !tool_calls.is_empty() => (String::new(), Vec::new()),
        None => return Err(invalid(format!("messages[{i}].content is required"))),
        Some(_) => {
            return Err(invalid(format!(
                "messages[{i}].content must be a string or an array"
            )))
        }
    };
    out.insert("content".into(), Value::String(content));
    if !images.is_empty() {
        out.insert("images".into(), Value::Array(images));
    }
    if !tool_calls.is_empty() {
        out.insert("tool_calls".into(), Value::Array(tool_calls));
    }
    if role == "assistant" {
        if let Some(r) = opt_str(message, "reasoning", &format!("messages[{i}].reasoning"))? {
            if !r.is_empty() {
                out.insert("thinking".into(), r.into());
            }
        }
    }
    if role == "tool" {
        let id = opt_str(
            message,
            "tool_call_id",
            &format!("messages[{i}].tool_call_id"),
        )?;
        let name = opt_str(message, "name", &format!("messages[{i}].name"))?
            .filter(|n| !n.is_empty())
            .map(str::to_string)
            .or_else(|| id.and_then(|id| name_from_tool_call_id(all.get(..i)?, id)));
        if let Some(name) = name {
            out.insert("tool_name".into(), Value::String(name));
        }
        if let Some(id) = id {
            out.insert("tool_call_id".into(), id.into());
        }
    }
    Ok(Value::Object(out))
}

/// The text (parts joined with a newline) and images of an array `content`.
fn content_parts(parts: &[Value], i: usize) -> Result<(String, Vec<Value>), TranslateError> {
    let mut texts: Vec<&str> = Vec::new();
    let mut images = Vec::new();
    for (j, part) in parts.iter().enumerate() {
        let path = format!("messages[{i}].content[{j}]");
        let Value::Object(part) = part else {
            return Err(invalid(format!("{path} must be an object")));
        };
        match opt_str(part, "type", &format!("{path}.type"))? {
            Some("text") => match opt_str(part, "text", &format!("{path}.text"))? {
                Some(text) => texts.push(text),
                None => return Err(invalid(format!("{path}.text is required"))),
            },
            Some("image_url") => {
                let url = match field(part, "image_url") {
                    Some(Value::String(url)) => url,
                    Some(Value::Object(o)) => match field(o, "url") {
                        Some(Value::String(url)) => url,
                        _ => return Err(invalid(format!("{path}.image_url.url must be a string"))),
                    },
                    _ => {
                        return Err(invalid(format!(
                            "{path}.image_url must be an object or a string"
                        )))
                    }
                };
                images.push(Value::String(image_payload(url)?.to_string()));
            }
            _ => return Err(invalid(format!("{path}.type must be text or image_url"))),
        }
    }
    Ok((texts.join("\n"), images))
}

/// The base64 payload of an inline image URL.
fn image_payload(url: &str) -> Result<&str, TranslateError> {
    if starts_with_ignore_case(url, "http://") || starts_with_ignore_case(url, "https://") {
        return Err(invalid(REMOTE_IMAGE));
    }
    IMAGE_PREFIXES
        .iter()
        .find_map(|prefix| url.strip_prefix(prefix))
        .filter(|payload| is_base64(payload))
        .ok_or_else(|| invalid(INVALID_IMAGE))
}

fn starts_with_ignore_case(text: &str, prefix: &str) -> bool {
    text.as_bytes()
        .get(..prefix.len())
        .is_some_and(|head| head.eq_ignore_ascii_case(prefix.as_bytes()))
}

/// Whether `text` is non-empty, padded standard base64 (checked in pieces, without decoding the
/// whole image into memory).
fn is_base64(text: &str) -> bool {
    let b = text.as_bytes();
    if b.is_empty() || b.len() % 4 != 0 {
        return false;
    }
    // Padding only at the very end, so only the last piece can hold it.
    if b.iter()
        .position(|&c| c == b'=')
        .is_some_and(|p| p + 2 < b.len())
    {
        return false;
    }
    let mut buf = [0u8; 3 * 1024 + 8];
    b.chunks(4 * 1024)
        .all(|piece| BASE64.decode_slice(piece, &mut buf).is_ok())
}

/// An assistant message's `tool_calls`, with `arguments` parsed into an object.
fn tool_calls(
    message: &Map<String, Value>,
    i: usize,
    role: &str,
) -> Result<Vec<Value>, TranslateError> {
    let list = match field(message, "tool_calls") {
        None => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(_) => {
            return Err(invalid(format!(
                "messages[{i}].tool_calls must be an array"
            )))
        }
    };
    if !list.is_empty() && role != "assistant" {
        return Err(invalid(format!(
            "messages[{i}].tool_calls is only allowed on assistant messages"
        )));
    }
    let mut out = Vec::with_capacity(list.len());
    for (j, call) in list.iter().enumerate() {
        let path = format!("messages[{i}].tool_calls[{j}]");
        let Value::Object(call) = call else {
            return Err(invalid(format!("{path} must be an object")));
        };
        let Some(Value::Object(function)) = field(call, "function") else {
            return Err(invalid(format!("{path}.function must be an object")));
        };
        let name = opt_str(function, "name", &format!("{path}.function.name"))?
            .ok_or_else(|| invalid(format!("{path}.function.name is required")))?;
        let arguments_path = format!("{path}.function.arguments");
        let arguments = match opt_str(function, "arguments", &arguments_path)? {
            None | Some("") => Value::Object(Map::new()),
            Some(text) => match parse_strict(text.as_bytes()) {
                Ok(v @ Value::Object(_)) => v,
                _ => {
                    return Err(invalid(format!(
                        "{arguments_path} must be a JSON object encoded as a string"
                    )))
                }
            },
        };
        let mut f = Map::new();
        f.insert("name".into(), name.into());
        f.insert("arguments".into(), arguments);
        let mut c = Map::new();
        if let Some(id) = opt_str(call, "id", &format!("{path}.id"))? {
            c.insert("id".into(), id.into());
        }
        c.insert("function".into(), Value::Object(f));
        out.push(Value::Object(c));
    }
    Ok(out)
}

/// The function name of the latest earlier assistant tool call with this id.
fn name_from_tool_call_id(earlier: &[Value], id: &str) -> Option<String> {
    earlier.iter().rev().find_map(|message| {
        message
            .get("tool_calls")?
            .as_array()?
            .iter()
            .rev()
            .find(|call| call.get("id").and_then(Value::as_str) == Some(id))?
            .get("function")?
            .get("name")?
            .as_str()
            .map(str::to_string)
    })
}
