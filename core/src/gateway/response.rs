//! The way back: rate-limit headers on every answer, streamed chats converted chunk by chunk,
//! the upstream's token usage charged to the budgets, answers the gateway fetched, and the
//! audit record published at the end.

use super::flow::{AnswerStream, Fetch, Flow, Phase, ResponseMode};
use super::{model_server, Effect, Gateway, Next};
use crate::outgoing::CallResponse;
use crate::ratelimit::usage::UsageScanner;

impl Gateway {
    pub(super) fn response_headers(
        &mut self,
        id: u32,
        flow: &mut Flow,
        end_of_stream: bool,
        effects: &mut Vec<(u32, Effect)>,
    ) {
        flow.audit.status = self
            .host
            .response_header(":status")
            .and_then(|s| s.parse().ok());
        if end_of_stream {
            self.finish_response(id, flow, effects);
        }
        if !flow.answered_locally() && self.config.cors.is_some() {
            // Only the gateway says who may read the answer: the model server's own CORS
            // headers (Ollama's OLLAMA_ORIGINS, a proxy's `*`) never reach the browser.
            for name in crate::cors::RESPONSE_HEADERS {
                effects.push((id, Effect::RemoveResponseHeader(name)));
            }
            if flow.cors.is_empty() {
                effects.push((
                    id,
                    Effect::AddResponseHeader("vary".into(), "Origin".into()),
                ));
            }
            for (name, value) in &flow.cors {
                // Replaces the upstream's own (Ollama answers CORS for its OLLAMA_ORIGINS);
                // `Vary` is added to.
                effects.push((
                    id,
                    match *name {
                        "vary" => Effect::AddResponseHeader((*name).into(), value.clone()),
                        _ => Effect::SetResponseHeader(name, value.clone()),
                    },
                ));
            }
        }
        let Some(admission) = flow.admission() else {
            return;
        };
        let budgets = !admission.token_charges.is_empty() || !admission.mesh.budgets.is_empty();
        effects.extend(
            admission
                .headers
                .iter()
                .map(|(name, value)| (id, Effect::AddResponseHeader(name.clone(), value.clone()))),
        );
        if flow.answered_locally() {
            return;
        }
        self.start_answer_masking(id, flow, end_of_stream, effects);
        flow.streamed_answer = matches!(flow.response, ResponseMode::StreamWith(..))
            || self.host.response_header("content-type").is_some_and(|t| {
                let t = t.to_ascii_lowercase();
                t.starts_with("text/event-stream") || t.starts_with("application/x-ndjson")
            });
        match std::mem::replace(&mut flow.response, ResponseMode::AsIs) {
            ResponseMode::StreamWith(context, api) => {
                // SSE when the upstream streams, else its error body (translated once complete).
                let status = flow.audit.status.unwrap_or(502);
                effects.push((id, Effect::RemoveResponseHeader("content-length")));
                if status == 200 {
                    effects.push((
                        id,
                        Effect::SetResponseHeader("content-type", "text/event-stream".into()),
                    ));
                    effects.push((
                        id,
                        Effect::SetResponseHeader("cache-control", "no-cache".into()),
                    ));
                    flow.response = ResponseMode::Streaming(AnswerStream::new(context, api));
                } else {
                    effects.push((
                        id,
                        Effect::SetResponseHeader("content-type", "application/json".into()),
                    ));
                    flow.response = ResponseMode::ErrorBody(status);
                }
            }
            ResponseMode::AsIs if budgets && !end_of_stream => {
                flow.response = ResponseMode::CountUsage(UsageScanner::new());
            }
            other => flow.response = other,
        }
    }

    pub(super) fn response_body(
        &mut self,
        id: u32,
        flow: &mut Flow,
        size: usize,
        end_of_stream: bool,
        effects: &mut Vec<(u32, Effect)>,
    ) -> Next {
        let max_logged = self.config.audit.max_logged_body_bytes;
        if flow.streamed_answer && flow.first_token_ms.is_none() && size > 0 {
            flow.first_token_ms = Some(self.host.now_ms());
        }
        match &mut flow.response {
            ResponseMode::Streaming(stream) => {
                // Each chunk is converted as it arrives: nothing waits for the whole answer.
                let chunk = self.host.response_body(size).unwrap_or_default();
                let mut out = stream.feed(&chunk);
                if end_of_stream {
                    out.extend(stream.finish());
                }
                let out = self.mask_answer(flow, out, end_of_stream);
                flow.keep_response_body(&out, max_logged);
                effects.push((id, Effect::ReplaceResponseBody { size, body: out }));
            }
            ResponseMode::ErrorBody(status) => {
                if !end_of_stream {
                    // Held until complete: it is translated whole.
                    return Next::Pause;
                }
                {
                    let body = self.host.response_body(size).unwrap_or_default();
                    let reply = model_server::error_reply(*status, &body, self.realm());
                    effects.push((
                        id,
                        Effect::ReplaceResponseBody {
                            size,
                            body: reply.body.into_bytes(),
                        },
                    ));
                }
            }
            ResponseMode::CountUsage(scanner) => {
                let chunk = self.host.response_body(size);
                if let Some(chunk) = &chunk {
                    scanner.feed(chunk);
                }
                self.pass_answer(id, flow, chunk, size, end_of_stream, effects);
            }
            ResponseMode::Withheld(body) => {
                let out = if end_of_stream {
                    std::mem::take(body)
                } else {
                    Vec::new()
                };
                effects.push((id, Effect::ReplaceResponseBody { size, body: out }));
            }
            ResponseMode::AsIs | ResponseMode::StreamWith(..) => {
                let chunk = if flow.sampled || flow.answer_mask.is_some() {
                    self.host.response_body(size)
                } else {
                    None
                };
                self.pass_answer(id, flow, chunk, size, end_of_stream, effects);
            }
        }
        if end_of_stream {
            self.finish_response(id, flow, effects);
            if flow.mesh_charging {
                // The answer's end (this chunk, buffered) waits for the charge (`mesh_charged`).
                return Next::Pause;
            }
        }
        Next::Continue
    }

    /// An answer chunk going on as it came, or masked; sampled for the audit either way.
    fn pass_answer(
        &mut self,
        id: u32,
        flow: &mut Flow,
        chunk: Option<Vec<u8>>,
        size: usize,
        end_of_stream: bool,
        effects: &mut Vec<(u32, Effect)>,
    ) {
        let max_logged = self.config.audit.max_logged_body_bytes;
        if flow.answer_mask.is_some() {
            let out = self.mask_answer(flow, chunk.unwrap_or_default(), end_of_stream);
            flow.keep_response_body(&out, max_logged);
            effects.push((id, Effect::ReplaceResponseBody { size, body: out }));
        } else if let Some(chunk) = chunk {
            flow.keep_response_body(&chunk, max_logged);
        }
    }

    /// With `data_protection.responses`: the answer will be masked as it passes (its length
    /// changes); one the gateway cannot read (compressed) is withheld, never passed unmasked.
    fn start_answer_masking(
        &mut self,
        id: u32,
        flow: &mut Flow,
        end_of_stream: bool,
        effects: &mut Vec<(u32, Effect)>,
    ) {
        let translated_stream = matches!(flow.response, ResponseMode::StreamWith(..));
        let status = flow.audit.status.unwrap_or(0);
        if translated_stream && status != 200 {
            return; // The upstream's error, answered in the gateway's own words.
        }
        let content_type = if translated_stream {
            Some("text/event-stream".to_string())
        } else {
            self.host.response_header("content-type")
        };
        let Some(masker) = self.answer_masker(content_type.as_deref()) else {
            return;
        };
        let encoded = self
            .host
            .response_header("content-encoding")
            .is_some_and(|e| !e.trim().eq_ignore_ascii_case("identity"));
        if encoded && masker.rewrites() {
            let reply = crate::error::GatewayError::UpstreamError(
                "the model server answered compressed, which the gateway cannot mask".into(),
            )
            .to_reply(self.realm());
            effects.push((id, Effect::SetResponseHeader(":status", "502".into())));
            effects.push((id, Effect::RemoveResponseHeader("content-encoding")));
            effects.push((id, Effect::RemoveResponseHeader("content-length")));
            effects.push((
                id,
                Effect::SetResponseHeader("content-type", "application/json".into()),
            ));
            flow.audit.status = Some(502);
            self.count("upstream_errors", 1);
            if !end_of_stream {
                flow.response = ResponseMode::Withheld(reply.body.into_bytes());
            }
            return;
        }
        if masker.rewrites() && !end_of_stream {
            effects.push((id, Effect::RemoveResponseHeader("content-length")));
        }
        flow.answer_mask = Some(masker);
    }

    /// The model server answered a call the gateway made for request `id`: reply with its
    /// translation.
    pub(super) fn model_server_answered(
        &mut self,
        id: u32,
        flow: &mut Flow,
        response: &CallResponse,
        effects: &mut Vec<(u32, Effect)>,
    ) {
        let Phase::Fetching(fetch) = std::mem::replace(&mut flow.phase, Phase::Head) else {
            return;
        };
        let reply = match &fetch {
            Fetch::Models(plan) => {
                let usable = |model: &str| self.may_use_model(flow, model);
                model_server::models_reply(plan, response, self.realm(), usable)
            }
            Fetch::Chat(_) | Fetch::Completion(_) | Fetch::Embeddings(_) => {
                let (mut reply, usage) = model_server::body_reply(&fetch, response, self.realm());
                if let Some((prompt, completion)) = usage {
                    flow.settled = true;
                    self.charge_usage(flow, prompt, completion, Some(id));
                }
                // Every answer that reaches the client is masked, whatever usage it reported
                // (vectors have no text).
                let vectors = matches!(fetch, Fetch::Embeddings(_));
                if (200..300).contains(&reply.status) && !vectors {
                    reply.body = self.mask_whole_answer(flow, reply.body);
                }
                reply
            }
        };
        if matches!(reply.status, 502 | 504) {
            self.count("upstream_errors", 1);
        }
        if flow.mesh_charging {
            return self.answer_after_charge(flow, reply);
        }
        self.answer(id, flow, reply, effects);
    }

    /// Charges the upstream's token usage to the request's budgets, once (at the response's
    /// end, or when the request ends early).
    /// `request`: the request still going on (its answer's end may wait for a mesh charge);
    /// `None` when it is ending.
    pub(super) fn settle_usage(&mut self, flow: &mut Flow, request: Option<u32>) {
        if std::mem::replace(&mut flow.settled, true) {
            return;
        }
        let split = match std::mem::replace(&mut flow.response, ResponseMode::AsIs) {
            ResponseMode::CountUsage(scanner) => scanner.finish_split(),
            ResponseMode::Streaming(stream) => {
                let usage = stream.usage();
                flow.response = ResponseMode::Streaming(stream);
                usage
            }
            other => {
                flow.response = other;
                None
            }
        };
        if let Some((prompt, completion)) = split {
            self.charge_usage(flow, prompt, completion, request);
        }
    }

    fn charge_usage(
        &mut self,
        flow: &mut Flow,
        prompt: u64,
        completion: u64,
        request: Option<u32>,
    ) {
        self.count("llm_prompt_tokens", prompt);
        self.count("llm_completion_tokens", completion);
        flow.audit.prompt_tokens = Some(prompt);
        flow.audit.completion_tokens = Some(completion);
        if let Some(admission) = flow.admission() {
            crate::ratelimit::settle(
                &self.config.rate_limits,
                &admission.token_charges,
                prompt.saturating_add(completion),
                self.host.store(),
                self.host.now_ms(),
            );
        }
        self.charge_mesh_budgets(request, flow, prompt.saturating_add(completion));
    }

    /// The response is complete: usage is charged and the final audit record becomes filter
    /// state, for Envoy's access log (written after this, before the request ends).
    fn finish_response(&mut self, id: u32, flow: &mut Flow, effects: &mut Vec<(u32, Effect)>) {
        self.settle_usage(flow, Some(id));
        self.record_answer_masked(flow);
        if !self.config.audit.records {
            return;
        }
        flow.audit.duration_ms = self.host.now_ms().saturating_sub(flow.audit.time_ms);
        // An audit record names who called from where.
        self.read_client(flow);
        let log_line = self.config.audit.log_line && log::log_enabled!(log::Level::Info);
        let record = flow.audit.to_json();
        if log_line {
            flow.published_audit = Some(record.clone());
        }
        effects.push((id, Effect::PublishAudit(record)));
    }

    /// The client's address for the audit record, read once (a property read is one of the
    /// dearer host calls), and only when a record is written.
    fn read_client(&self, flow: &mut Flow) {
        if flow.audit.client.is_none() {
            flow.audit.client = self.host.remote_address();
        }
    }

    /// Writes the request's final audit record as the plugin's own log line (`audit.log_line`),
    /// unless Envoy's log level for Wasm drops it anyway.
    pub(super) fn emit_audit(&mut self, flow: &mut Flow) {
        let audit = &self.config.audit;
        if !audit.log_line || !audit.records || !log::log_enabled!(log::Level::Info) {
            return;
        }
        let record = match flow.published_audit.take() {
            Some(record) => record,
            None => {
                // No complete response (reset, or a stream cut short): what is known now.
                flow.audit.duration_ms = self.host.now_ms().saturating_sub(flow.audit.time_ms);
                self.read_client(flow);
                flow.audit.to_json()
            }
        };
        log::info!("ai-gateway audit {record}");
    }
}
