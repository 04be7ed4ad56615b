//! Compiles `translate`.

use std::collections::HashMap;

use super::schema::TranslateSection;
use super::ConfigError;
use crate::translate::{Target, TranslateConfig};

/// The compiled section: the translation itself and how the gateway reaches the upstream for
/// answers it fetches (non-streamed chat, model lists).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TranslateSettings {
    pub config: TranslateConfig,
    /// Where the gateway's own calls go; `None`: to the cluster the request's route chose, so
    /// the route is the one place that names the model server.
    pub cluster: Option<String>,
    /// The `:authority` of those calls; `None`: the cluster's name.
    pub authority: Option<String>,
    pub timeout_ms: u64,
}

pub fn compile_translate(s: TranslateSection) -> Result<TranslateSettings, ConfigError> {
    if s.from != "openai" {
        return Err(ConfigError::new("translate.from", "must be \"openai\""));
    }
    let target = match s.to.as_str() {
        "ollama" => Target::Ollama,
        "openai" => Target::OpenAi,
        _ => {
            return Err(ConfigError::new(
                "translate.to",
                "must be \"ollama\" or \"openai\"",
            ))
        }
    };
    if s.default_model
        .as_deref()
        .is_some_and(|m| m.trim().is_empty())
    {
        return Err(ConfigError::new(
            "translate.default_model",
            "must not be empty",
        ));
    }
    let mut aliases = HashMap::new();
    for (from, to) in s.model_aliases.0 {
        if from.is_empty() || to.trim().is_empty() {
            return Err(ConfigError::new(
                format!("translate.model_aliases.{from}"),
                "names must not be empty",
            ));
        }
        aliases.insert(from, to);
    }
    if s.cluster.as_deref().is_some_and(str::is_empty) {
        return Err(ConfigError::new("translate.cluster", "must not be empty"));
    }
    if !(1_000..=600_000).contains(&s.timeout_ms) {
        return Err(ConfigError::new(
            "translate.timeout_ms",
            "must be between 1000 and 600000",
        ));
    }
    let authority = s.authority.or_else(|| s.cluster.clone());
    if authority.as_deref().is_some_and(|authority| {
        authority.is_empty()
            || authority
                .bytes()
                .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    }) {
        return Err(ConfigError::new(
            "translate.authority",
            "must be a host name",
        ));
    }
    Ok(TranslateSettings {
        config: TranslateConfig {
            target,
            default_model: s.default_model,
            model_aliases: aliases,
            inject_user: s.inject_user,
        },
        cluster: s.cluster,
        authority,
        timeout_ms: s.timeout_ms,
    })
}
