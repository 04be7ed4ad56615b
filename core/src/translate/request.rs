//! OpenAI chat completion request -> Ollama `POST /api/chat` body.

use serde_json::{Map, Value};

use super::fields::{field, invalid, opt_str};
use super::messages::translate_messages;
use super::options::{only_one, opt_max_tokens, parse_body, sampling, stream_flags};
use super::{to_bytes, Caller, ChatRequest, Target, TranslateConfig, TranslateError};

/// The model sent upstream: the client's (or the default), then its alias.
pub(crate) fn resolve_model(
    obj: &Map<String, Value>,
    config: &TranslateConfig,
) -> Result<String, TranslateError> {
    let asked = opt_str(obj, "model", "model")?
        .filter(|m| !m.is_empty())
        .or(config.default_model.as_deref())
        .ok_or_else(|| invalid("model is required"))?;
    Ok(config
        .model_aliases
        .get(asked)
        .cloned()
        .unwrap_or_else(|| asked.to_string()))
}

/// Translates an OpenAI chat completion request for Ollama's `POST /api/chat`.
pub fn chat_request(
    body: &[u8],
    config: &TranslateConfig,
    caller: &Caller,
) -> Result<ChatRequest, TranslateError> {
    let obj = parse_body(body)?;
    if config.target == Target::OpenAi {
        // Passthrough: the body goes upstream as the client sent it.
        let (stream, include_usage) = stream_flags(&obj)?;
        let model = resolve_model(&obj, config).unwrap_or_default();
        return Ok(ChatRequest {
            body: body.to_vec(),
            stream,
            include_usage,
            model,
        });
    }

    let model = resolve_model(&obj, config)?;
    let messages = match field(&obj, "messages") {
        Some(Value::Array(list)) if !list.is_empty() => translate_messages(list)?,
        Some(Value::Array(_)) => return Err(invalid("messages must not be empty")),
        None => return Err(invalid("messages is required")),
        Some(_) => return Err(invalid("messages must be an array")),
    };
    let (stream, include_usage) = stream_flags(&obj)?;

    let mut out = Map::new();
    out.insert("model".into(), Value::String(model.clone()));
    out.insert("messages".into(), Value::Array(messages));
    out.insert("stream".into(), Value::Bool(stream));
    out.insert("options".into(), Value::Object(options(&obj)?));
    only_one(&obj, "n")?;
    if let Some(format) = format(&obj)? {
        out.insert("format".into(), format);
    }
    if let Some(tools) = tools(&obj)? {
        out.insert("tools".into(), tools);
    }
    if let Some(think) = think(&obj)? {
        out.insert("think".into(), think);
    }
    if config.inject_user {
        if let Some(user) = &caller.user_id {
            out.insert("user_id".into(), Value::String(user.clone()));
        }
        if let Some(session) = &caller.session_id {
            out.insert("session_id".into(), Value::String(session.clone()));
        }
    }
    Ok(ChatRequest {
        body: to_bytes(&Value::Object(out)),
        stream,
        include_usage,
        model,
    })
}

/// `options`: sampling parameters, with OpenAI's defaults for temperature and top_p.
fn options(obj: &Map<String, Value>) -> Result<Map<String, Value>, TranslateError> {
    let mut options = sampling(obj)?;
    let max_completion = opt_max_tokens(obj, "max_completion_tokens")?;
    let max_tokens = opt_max_tokens(obj, "max_tokens")?;
    if let Some(n) = max_completion.or(max_tokens) {
        options.insert("num_predict".into(), n.into());
    }
    if let Some(stop) = stop(obj)? {
        options.insert("stop".into(), stop);
    }
    Ok(options)
}

fn stop(obj: &Map<String, Value>) -> Result<Option<Value>, TranslateError> {
    const WHY: &str = "stop must be a string or an array of strings";
    match field(obj, "stop") {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(Value::Array(vec![Value::String(s.clone())]))),
        Some(Value::Array(items)) => {
            if items.iter().all(Value::is_string) {
                Ok((!items.is_empty()).then(|| Value::Array(items.clone())))
            } else {
                Err(invalid(WHY))
            }
        }
        Some(_) => Err(invalid(WHY)),
    }
}

/// `response_format` -> `format`.
fn format(obj: &Map<String, Value>) -> Result<Option<Value>, TranslateError> {
    let Some(value) = field(obj, "response_format") else {
        return Ok(None);
    };
    let Value::Object(rf) = value else {
        return Err(invalid("response_format must be an object"));
    };
    match opt_str(rf, "type", "response_format.type")? {
        Some("text") => Ok(None),
        Some("json_object") => Ok(Some(Value::String("json".into()))),
        Some("json_schema") => {
            let Some(Value::Object(js)) = field(rf, "json_schema") else {
                return Err(invalid("response_format.json_schema must be an object"));
            };
            match field(js, "schema") {
                Some(schema @ Value::Object(_)) => Ok(Some(schema.clone())),
                _ => Err(invalid(
                    "response_format.json_schema.schema must be an object",
                )),
            }
        }
        _ => Err(invalid(
            "response_format.type must be text, json_object or json_schema",
        )),
    }
}

/// `tools`, validated and rebuilt (unknown fields dropped); none when `tool_choice` is "none".
fn tools(obj: &Map<String, Value>) -> Result<Option<Value>, TranslateError> {
    let choice_none = match field(obj, "tool_choice") {
        None | Some(Value::Object(_)) => false,
        Some(Value::String(s)) => s == "none",
        Some(_) => return Err(invalid("tool_choice must be a string or an object")),
    };
    let Some(value) = field(obj, "tools") else {
        return Ok(None);
    };
    let Value::Array(list) = value else {
        return Err(invalid("tools must be an array"));
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, tool) in list.iter().enumerate() {
        let Value::Object(tool) = tool else {
            return Err(invalid(format!("tools[{i}] must be an object")));
        };
        if field(tool, "type").and_then(Value::as_str) != Some("function") {
            return Err(invalid(format!("tools[{i}].type must be \"function\"")));
        }
        let Some(Value::Object(function)) = field(tool, "function") else {
            return Err(invalid(format!("tools[{i}].function must be an object")));
        };
        let mut f = Map::new();
        match opt_str(function, "name", &format!("tools[{i}].function.name"))? {
            Some(name) if !name.is_empty() => f.insert("name".into(), name.into()),
            _ => return Err(invalid(format!("tools[{i}].function.name is required"))),
        };
        let description_path = format!("tools[{i}].function.description");
        if let Some(d) = opt_str(function, "description", &description_path)? {
            f.insert("description".into(), d.into());
        }
        match field(function, "parameters") {
            None => {}
            Some(p @ Value::Object(_)) => {
                f.insert("parameters".into(), p.clone());
            }
            Some(_) => {
                return Err(invalid(format!(
                    "tools[{i}].function.parameters must be an object"
                )))
            }
        }
        let mut t = Map::new();
        t.insert("type".into(), "function".into());
        t.insert("function".into(), Value::Object(f));
        out.push(Value::Object(t));
    }
    Ok((!choice_none && !out.is_empty()).then_some(Value::Array(out)))
}

/// `reasoning.effort` (or `reasoning_effort`) -> `think`.
fn think(obj: &Map<String, Value>) -> Result<Option<Value>, TranslateError> {
    let from_reasoning = match field(obj, "reasoning") {
        None => None,
        Some(Value::Object(r)) => opt_str(r, "effort", "reasoning.effort")?,
        Some(_) => return Err(invalid("reasoning must be an object")),
    };
    let effort = match from_reasoning {
        Some(e) => Some(e),
        None => opt_str(obj, "reasoning_effort", "reasoning_effort")?,
    };
    match effort {
        None => Ok(None),
        Some("none") => Ok(Some(Value::Bool(false))),
        Some(level @ ("low" | "medium" | "high")) => Ok(Some(Value::String(level.into()))),
        Some(_) => Err(invalid(
            "reasoning effort must be low, medium, high or none",
        )),
    }
}
