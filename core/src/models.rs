//! Model allow-lists (`models.allow`): which models a caller may use, decided from its verified
//! scopes. Pure logic; the gateway asks [`ModelAllowList::permits`] wherever a request names a
//! model (chats, untranslated Ollama routes, the model list).
//!
//! Every comparison goes through [`canonical_model`], so `Qwen3`, ` qwen3 ` and `qwen3:latest`
//! are one model, as they are to Ollama: a spelling must not slip past a pattern.

use serde_json::Value;

use crate::json::{parse_strict_object, StrictJsonError};

/// The default registry and namespace Ollama assumes: `qwen3`, `library/qwen3` and
/// `registry.ollama.ai/library/qwen3` are one model to it, so they are one here too.
const DEFAULT_REGISTRY: &str = "registry.ollama.ai/";
const DEFAULT_NAMESPACE: &str = "library/";

/// A model name as it is compared: ASCII whitespace trimmed, lower-cased, Ollama's default
/// registry and namespace dropped, and `:latest` added when it has no tag (a tag is after the
/// last `:` of the last path segment, so a registry's `host:port/` is not one). An empty name
/// stays empty and matches no pattern.
pub fn canonical_model(name: &str) -> String {
    let name = name.trim_matches(|c: char| c.is_ascii_whitespace());
    if name.is_empty() {
        return String::new();
    }
    let mut canonical = without_defaults(&name.to_ascii_lowercase()).to_string();
    if !has_tag(&canonical) {
        canonical.push_str(":latest");
    }
    canonical
}

/// `name` (lower-case) without Ollama's default registry and namespace.
fn without_defaults(name: &str) -> &str {
    let name = name.strip_prefix(DEFAULT_REGISTRY).unwrap_or(name);
    name.strip_prefix(DEFAULT_NAMESPACE).unwrap_or(name)
}

fn has_tag(name: &str) -> bool {
    name.rsplit('/')
        .next()
        .is_some_and(|last| last.contains(':'))
}

/// One entry of a `models` list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ModelPattern {
    /// One model, canonical (`qwen3:8b`; `qwen3` is `qwen3:latest`).
    Exact(String),
    /// `name:*`: every tag of `name` (lower-cased).
    AnyTag(String),
}

impl ModelPattern {
    /// Parses a configured pattern; `Err` says why it is refused (for the config error).
    pub fn parse(text: &str) -> Result<Self, String> {
        if text.is_empty() {
            return Err("must not be empty".into());
        }
        if text.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err("must not contain whitespace or control characters".into());
        }
        if text.matches(':').count() > 1 {
            return Err("must have at most one `:` (name:tag)".into());
        }
        match text.split_once(':') {
            Some((name, "*")) if !name.is_empty() && !name.contains('*') => Ok(Self::AnyTag(
                without_defaults(&name.to_ascii_lowercase()).to_string(),
            )),
            _ if text.contains('*') => {
                Err("`*` is only allowed as the whole tag, as in `name:*`".into())
            }
            Some((name, tag)) if name.is_empty() || tag.is_empty() => {
                Err("needs a name before `:` and a tag after it".into())
            }
            _ => Ok(Self::Exact(canonical_model(text))),
        }
    }

    /// How metrics name the models of this pattern (`qwen3:8b`, `qwen3:*`).
    pub fn label(&self) -> String {
        match self {
            Self::Exact(exact) => exact.clone(),
            Self::AnyTag(name) => format!("{name}:*"),
        }
    }

    /// Whether `model` (canonical) is this pattern's.
    pub(crate) fn matches(&self, model: &str) -> bool {
        match self {
            Self::Exact(exact) => exact == model,
            // A canonical name always has its tag after the last `:`.
            Self::AnyTag(name) => model
                .rsplit_once(':')
                .is_some_and(|(base, tag)| base == name && !tag.is_empty()),
        }
    }
}

/// Whether `model` (any spelling) is one of `patterns`' (an empty name is none's). Shared by
/// `models.allow` and the model-restricted rate limits, so both read a name the same way.
pub fn matches_any(patterns: &[ModelPattern], model: &str) -> bool {
    let model = canonical_model(model);
    !model.is_empty() && patterns.iter().any(|pattern| pattern.matches(&model))
}

/// The compiled `models.allow`: entries in order, each the scopes a caller must all hold and
/// the models the first such entry lets it use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ModelAllowList {
    entries: Vec<(Vec<String>, Vec<ModelPattern>)>,
}

/// Which entry decides a caller's models: the first whose scopes it all holds, or none (then
/// no model is allowed). Worked out once, when the request is allowed, while its scopes are
/// at hand; the body that names the model comes later.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Grant(Option<usize>);

impl ModelAllowList {
    pub fn new(entries: Vec<(Vec<String>, Vec<ModelPattern>)>) -> Self {
        Self { entries }
    }

    pub fn grant(&self, scopes: &[String]) -> Grant {
        Grant(
            self.entries
                .iter()
                .position(|(needed, _)| needed.iter().all(|scope| scopes.contains(scope))),
        )
    }

    /// Whether `grant` lets its caller use `model` (any spelling).
    pub fn permits(&self, grant: Grant, model: &str) -> bool {
        let Some((_, patterns)) = grant.0.and_then(|i| self.entries.get(i)) else {
            return false;
        };
        matches_any(patterns, model)
    }

    /// Every entry's patterns, in order.
    pub fn patterns(&self) -> impl Iterator<Item = &ModelPattern> {
        self.entries.iter().flat_map(|(_, patterns)| patterns)
    }

    pub fn may_use(&self, scopes: &[String], model: &str) -> bool {
        self.permits(self.grant(scopes), model)
    }
}

/// Whether a request's body names the model it runs (Ollama's native routes, and OpenAI's when
/// they are not translated): under `models`, its body is held and its `model` checked.
pub fn names_model_in_body(method: &str, path: &str) -> bool {
    let path = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    method == "POST"
        && matches!(
            path,
            "/api/chat"
                | "/api/generate"
                | "/api/embed"
                | "/api/embeddings"
                | "/v1/chat/completions"
                | "/v1/completions"
                | "/v1/embeddings"
        )
}

/// The `model` of a request body, parsed strictly (a duplicate key could make the gateway and
/// the upstream read different models). `Err`: the contract's `details` of a 400.
pub fn requested_model(body: &[u8]) -> Result<String, String> {
    let object = parse_strict_object(body).map_err(|e| match e {
        StrictJsonError::DuplicateKey => "the body has a duplicate key".to_string(),
        StrictJsonError::Invalid => "the body is not a valid JSON object".to_string(),
    })?;
    // Ollama (Go's encoding/json) matches keys case-insensitively, the last one winning: a
    // `MODEL` beside `model` would run a model the gateway never checked.
    if object
        .keys()
        .any(|key| key != "model" && key.eq_ignore_ascii_case("model"))
    {
        return Err("the body names its model twice (keys differing only in case)".into());
    }
    match object.get("model") {
        // A digest (`name@sha256:...`) names no tag the allow-list could judge.
        Some(Value::String(model)) if model.contains('@') => {
            Err("model must be a name, not a digest".into())
        }
        Some(Value::String(model)) if !model.trim().is_empty() => Ok(model.clone()),
        Some(Value::String(_)) | None => Err("model is required".into()),
        Some(_) => Err("model must be a string".into()),
    }
}

#[cfg(test)]
mod tests;
