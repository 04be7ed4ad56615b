//! The data-protection step of the flow: a held prompt is refused by a deny pattern or masked
//! before it goes on, and with `responses` the answer is masked as it passes. Counts go to the
//! audit record and to per-rule counters (never the values).

use serde_json::{Map, Value};

use crate::error::GatewayError;
use crate::protect::answer::{AnswerMasker, Framing};
use crate::protect::json::{self, Refusal};
use crate::protect::Counts;

use super::flow::Flow;
use super::Gateway;

/// Which way the masked text was going: the audit's and the counters' word for it.
#[derive(Clone, Copy)]
pub(super) enum Direction {
    Prompt,
    Answer,
}

impl Direction {
    fn name(self) -> &'static str {
        match self {
            Self::Prompt => "prompt",
            Self::Answer => "answer",
        }
    }
}

impl Gateway {
    /// The body as it may go on: `Ok(None)` unchanged, `Ok(Some)` masked, or refused.
    pub(super) fn protect_prompt(
        &self,
        flow: &mut Flow,
        body: &[u8],
    ) -> Result<Option<Vec<u8>>, GatewayError> {
        let Some(protector) = &self.config.data_protection else {
            return Ok(None);
        };
        let mut counts = Counts::default();
        match json::protect_request(protector, body, &mut counts) {
            Ok(masked) => {
                self.record_masked(flow, Direction::Prompt, &counts);
                Ok(masked)
            }
            Err(Refusal::Denied(pattern)) => {
                flow.audit.denied_by = Some(pattern.clone());
                Err(GatewayError::ContentBlocked(pattern))
            }
            Err(Refusal::Unreadable(why)) => Err(GatewayError::InvalidRequestBody(why.into())),
        }
    }

    /// The sampled request body for the audit record: masked like what goes on.
    pub(super) fn keep_prompt(&self, flow: &mut Flow, body: &[u8]) {
        if !flow.sampled {
            return;
        }
        let max = self.config.audit.max_logged_body_bytes;
        let masked = match &self.config.data_protection {
            Some(protector) => match json::protect_request(protector, body, &mut Counts::default())
            {
                Ok(masked) => masked,
                // A refused prompt is exactly what must not be written down.
                Err(_) => return,
            },
            None => None,
        };
        flow.keep_request_body(masked.as_deref().unwrap_or(body), max);
    }

    /// With `responses`, a masker for the answer about to pass, framed as `content_type` says.
    pub(super) fn answer_masker(&self, content_type: Option<&str>) -> Option<AnswerMasker> {
        let protector = self.config.data_protection.as_ref()?;
        protector
            .responses
            .then(|| AnswerMasker::new(Framing::of(content_type)))
    }

    /// `bytes` of the answer, masked when the request has a masker.
    pub(super) fn mask_answer(&self, flow: &mut Flow, bytes: Vec<u8>, end: bool) -> Vec<u8> {
        let (Some(protector), Some(masker)) =
            (&self.config.data_protection, flow.answer_mask.as_mut())
        else {
            return bytes;
        };
        let mut out = masker.feed(protector, &bytes);
        if end {
            out.extend(masker.finish(protector));
        }
        out
    }

    /// A whole answer the gateway built (a translated chat): masked at once.
    pub(super) fn mask_whole_answer(&self, flow: &mut Flow, body: String) -> String {
        let Some(mut masker) = self.answer_masker(Some("application/json")) else {
            return body;
        };
        let Some(protector) = &self.config.data_protection else {
            return body;
        };
        let mut out = masker.feed(protector, body.as_bytes());
        out.extend(masker.finish(protector));
        self.record_masked(flow, Direction::Answer, &masker.counts);
        String::from_utf8(out).unwrap_or(body)
    }

    /// The answer's masker is done: its counts are recorded.
    pub(super) fn record_answer_masked(&self, flow: &mut Flow) {
        if let Some(masker) = flow.answer_mask.take() {
            self.record_masked(flow, Direction::Answer, &masker.counts);
        }
    }

    fn record_masked(&self, flow: &mut Flow, direction: Direction, counts: &Counts) {
        let Some(protector) = &self.config.data_protection else {
            return;
        };
        if counts.is_empty() {
            return;
        }
        self.count(
            match direction {
                Direction::Prompt => "data_protection_masked_requests",
                Direction::Answer => "data_protection_masked_responses",
            },
            1,
        );
        let mut named = Map::new();
        for (name, n) in protector.named_counts(counts) {
            self.host
                .count_named(&format!("data_protection.{}.{name}", direction.name()), n);
            named.insert(name.to_string(), Value::from(n));
        }
        flow.audit
            .masked
            .insert(direction.name().to_string(), Value::Object(named));
    }
}
