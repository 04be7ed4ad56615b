//! `GET /api/tags` -> OpenAI's model list (`GET /v1/models`) and model object
//! (`GET /v1/models/{id}`).

use serde_json::{json, Map, Value};

use super::response::str_of;
use super::time::unix_seconds;
use super::{to_bytes, UpstreamError};

/// The models of an `/api/tags` answer (entries without a name are skipped).
fn parse_tags(body: &[u8]) -> Result<Vec<Map<String, Value>>, UpstreamError> {
    let bad = || UpstreamError("the model server's model list is not JSON".into());
    let Ok(Value::Object(mut answer)) = serde_json::from_slice::<Value>(body) else {
        return Err(bad());
    };
    match answer.remove("models") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(models)) => Ok(models
            .into_iter()
            .filter_map(|m| match m {
                Value::Object(m) if !name(&m).is_empty() => Some(m),
                _ => None,
            })
            .collect()),
        Some(_) => Err(bad()),
    }
}

fn name(model: &Map<String, Value>) -> &str {
    match str_of(model, "name") {
        "" => str_of(model, "model"),
        n => n,
    }
}

/// The namespace of an Ollama model name (`library` for official models): the path segment
/// before the model's own, as in `user/model:tag` or `host/user/model:tag`.
fn owned_by(id: &str) -> &str {
    let mut segments = id.rsplit('/');
    segments.next();
    match segments.next() {
        Some(ns) if !ns.is_empty() => ns,
        _ => "library",
    }
}

fn object(id: &str, model: &Map<String, Value>) -> Value {
    let created = unix_seconds(str_of(model, "modified_at"))
        .and_then(|s| u64::try_from(s).ok())
        .unwrap_or(0);
    json!({"id": id, "object": "model", "created": created, "owned_by": owned_by(id)})
}

/// `GET /api/tags` body -> OpenAI's model list.
pub fn models_list(body: &[u8]) -> Result<Vec<u8>, UpstreamError> {
    models_list_where(body, |_| true)
}

/// `GET /api/tags` body -> OpenAI's model list of the models `keep` accepts (by name).
pub fn models_list_where(
    body: &[u8],
    keep: impl Fn(&str) -> bool,
) -> Result<Vec<u8>, UpstreamError> {
    let data: Vec<Value> = parse_tags(body)?
        .iter()
        .filter(|m| keep(name(m)))
        .map(|m| object(name(m), m))
        .collect();
    Ok(to_bytes(&json!({"object": "list", "data": data})))
}

/// `GET /api/tags` body -> the model `id` as an OpenAI model object; `None` when absent. A name
/// without a tag also finds its `:latest`.
pub fn model_object(body: &[u8], id: &str) -> Result<Option<Vec<u8>>, UpstreamError> {
    model_object_where(body, id, |_| true)
}

/// [`model_object`] among the models `keep` accepts (by name): one it refuses is absent, so a
/// caller cannot tell it from a model that does not exist.
pub fn model_object_where(
    body: &[u8],
    id: &str,
    keep: impl Fn(&str) -> bool,
) -> Result<Option<Vec<u8>>, UpstreamError> {
    let mut models = parse_tags(body)?;
    models.retain(|m| keep(name(m)));
    let exact = models.iter().find(|m| name(m) == id);
    let latest = || {
        let has_tag = id.rsplit('/').next().is_none_or(|last| last.contains(':'));
        if id.is_empty() || has_tag {
            return None;
        }
        let tagged = format!("{id}:latest");
        models.iter().find(|m| name(m) == tagged)
    };
    Ok(exact.or_else(latest).map(|m| to_bytes(&object(id, m))))
}
