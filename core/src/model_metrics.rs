//! Metrics per model and route rule, named so that Envoy's `stats_config` tag extraction turns
//! the rule and the model into labels (`envoy.yaml` ships the `stats_tags`):
//!
//! `ai_gateway.model.<metric>[.code.<CODE>].rule.<rule>.model.<model>`
//!
//! The model comes last because model names contain dots (`llama3.2:3b`). Cardinality is
//! bounded by the configuration: a model named in it (default model, aliases, `models.allow`,
//! model-restricted rate limits) is its own label, one under a `name:*` pattern is labelled
//! with the pattern, and any other folds into `other`.

use crate::models::{canonical_model, ModelPattern};

/// The label of models the configuration does not name.
pub const OTHER: &str = "other";

/// The models metrics name, from the configuration.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MetricModels {
    /// Tried in order; exact names first so `qwen3:8b` is not labelled `qwen3:*`.
    patterns: Vec<ModelPattern>,
}

impl MetricModels {
    pub fn new<'a>(patterns: impl IntoIterator<Item = &'a ModelPattern>) -> Self {
        let mut all: Vec<ModelPattern> = Vec::new();
        for pattern in patterns {
            if !all.contains(pattern) {
                all.push(pattern.clone());
            }
        }
        all.sort_by_key(|p| !matches!(p, ModelPattern::Exact(_)));
        Self { patterns: all }
    }

    /// The label for `model` (any spelling).
    pub fn label(&self, model: &str) -> String {
        let model = canonical_model(model);
        self.patterns
            .iter()
            .find(|p| p.matches(&model))
            .map_or_else(|| OTHER.to_string(), ModelPattern::label)
    }
}

/// What one model request adds to the metrics, once it ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Sample {
    /// The route rule's name or index, or `default`.
    pub rule: String,
    /// The model's label ([`MetricModels::label`]).
    pub model: String,
    pub tokens: Option<(u64, u64)>,
    /// The contract code of a refusal or error, if the request failed.
    pub error: Option<String>,
    pub duration_ms: u64,
    /// Until the first byte of a streamed answer.
    pub first_token_ms: Option<u64>,
}

/// A metric to record: a counter to add to, or a histogram value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Record {
    Count(String, u64),
    Histogram(String, u64),
}

impl Sample {
    pub fn records(&self) -> Vec<Record> {
        let labels = format!("rule.{}.model.{}", self.rule, self.model);
        let name = |metric: &str| format!("model.{metric}.{labels}");
        let mut out = vec![Record::Count(name("requests"), 1)];
        if let Some((prompt, completion)) = self.tokens {
            out.push(Record::Count(name("prompt_tokens"), prompt));
            out.push(Record::Count(name("completion_tokens"), completion));
        }
        if let Some(code) = &self.error {
            out.push(Record::Count(
                format!("model.errors.code.{code}.{labels}"),
                1,
            ));
        }
        out.push(Record::Histogram(name("duration_ms"), self.duration_ms));
        if let Some(ms) = self.first_token_ms {
            out.push(Record::Histogram(name("first_token_ms"), ms));
        }
        out
    }
}

/// The code an upstream error status gets in the metrics (the contract's where it has one).
pub fn upstream_error_code(status: u32) -> String {
    match status {
        404 => "MODEL_NOT_FOUND".into(),
        429 => "UPSTREAM_RATE_LIMITED".into(),
        s if s >= 500 => "UPSTREAM_ERROR".into(),
        s => format!("UPSTREAM_{s}"),
    }
}

#[cfg(test)]
mod tests;
