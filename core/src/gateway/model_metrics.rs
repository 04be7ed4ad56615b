//! The per-model metrics of a request that named a model, recorded once it ended.

use crate::model_metrics::{upstream_error_code, Record, Sample};

use super::flow::Flow;
use super::Gateway;

impl Gateway {
    pub(super) fn record_model_metrics(&self, flow: &Flow) {
        let Some(model) = &flow.audit.model else {
            return;
        };
        let rule = match flow.audit.rule {
            Some(i) => self
                .config
                .rules
                .get(i)
                .and_then(|r| r.name.clone())
                .unwrap_or_else(|| i.to_string()),
            None => "default".to_string(),
        };
        let error = match (flow.audit.code, flow.audit.status) {
            (Some(code), _) => Some(code.to_string()),
            (None, Some(status)) if status >= 400 => Some(upstream_error_code(status)),
            _ => None,
        };
        let now = self.host.now_ms();
        let sample = Sample {
            rule,
            model: self.config.metric_models.label(model),
            tokens: flow.audit.prompt_tokens.zip(flow.audit.completion_tokens),
            error,
            duration_ms: now.saturating_sub(flow.audit.time_ms),
            first_token_ms: flow
                .first_token_ms
                .map(|at| at.saturating_sub(flow.audit.time_ms)),
        };
        for record in sample.records() {
            match record {
                Record::Count(name, by) => self.host.count_named(&name, by),
                Record::Histogram(name, value) => self.host.histogram_named(&name, value),
            }
        }
    }
}
