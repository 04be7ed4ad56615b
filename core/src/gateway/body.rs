//! The request body: held whole when the flow needs it (size unknown, a chat to translate,
//! `max_tokens` to reserve), then translated and sent on, or its answer fetched.

use crate::error::GatewayError;
use crate::pipeline::{self, BodyOutcome, Translation};
use crate::translate::{self, Caller, ResponseContext};

use super::finish::Decision;
use super::flow::{Fetch, Flow, Phase, ResponseMode, StreamApi};
use super::{model_limits, model_server, Effect, Gateway, Next};

impl Gateway {
    pub(super) fn request_body(
        &mut self,
        id: u32,
        flow: &mut Flow,
        buffered: usize,
        end_of_stream: bool,
        effects: &mut Vec<(u32, Effect)>,
    ) -> Next {
        match flow.phase {
            Phase::HoldingBody { limit } => {
                match pipeline::on_request_body(limit, buffered, end_of_stream) {
                    BodyOutcome::Buffer => Next::Pause,
                    BodyOutcome::Release => self.complete_body(id, flow, buffered, effects),
                    BodyOutcome::Reply(error) => {
                        let decision = Decision::refused(error, None);
                        self.finish(id, flow, decision, true, effects)
                    }
                }
            }
            Phase::Forwarded => {
                if flow.sampled {
                    if let Some(chunk) = self.host.request_body(buffered) {
                        flow.keep_request_body(&chunk, self.config.audit.max_logged_body_bytes);
                    }
                }
                Next::Continue
            }
            // Not decided yet: nothing of it may pass.
            Phase::Head
            | Phase::WaitingKeys(_)
            | Phase::WaitingIntrospection(_)
            | Phase::TokenExchange(_)
            | Phase::WaitingIdTokenKeys(_)
            | Phase::PresetLogin(_)
            | Phase::WaitingMeshLimits(_)
            | Phase::MeshDue(_) => Next::Pause,
            Phase::FetchDue { .. }
            | Phase::Fetching(_)
            | Phase::ChargingThenAnswer(_)
            | Phase::Answered => Next::Continue,
        }
    }

    /// The whole request body is in: translate a chat, reserve tokens, then send the chat on
    /// (streamed: through the route) or fetch its answer (not streamed).
    fn complete_body(
        &mut self,
        id: u32,
        flow: &mut Flow,
        size: usize,
        effects: &mut Vec<(u32, Effect)>,
    ) -> Next {
        let body = self.host.request_body(size).unwrap_or_default();
        self.keep_prompt(flow, &body);
        flow.phase = Phase::Forwarded;
        let config = std::rc::Rc::clone(&self.config);
        let body_translation = flow
            .translation
            .clone()
            .filter(|t| t.upstream_path().is_some());
        let (Some(translation), Some(settings)) = (body_translation, &config.translate) else {
            return self.forward_untranslated(id, flow, size, &body, effects);
        };
        let caller = Caller {
            user_id: flow.admission().and_then(|a| a.subject.clone()),
            session_id: translation.session_id().map(str::to_string),
        };
        let translated = match translated(&translation, &body, &settings.config, &caller) {
            Ok(translated) => translated,
            Err(translate::TranslateError::InvalidBody(why)) => {
                let error = GatewayError::InvalidRequestBody(why);
                return self.finish(id, flow, Decision::refused(error, None), true, effects);
            }
        };
        // The model the upstream would get (after default and alias) is the one checked and
        // counted by model-restricted limits (before reserving: their budgets reserve too).
        let checked = self
            .check_model(flow, &translated.model)
            .and_then(|()| self.admit_model(flow, &translated.model));
        // What the model will see is checked and masked after translation.
        let protected = checked.and_then(|()| self.protect_prompt(flow, &translated.body));
        let upstream_body =
            match protected.and_then(|masked| Ok((self.reserve_tokens(flow, &body)?, masked))) {
                Ok(((), masked)) => masked.unwrap_or(translated.body),
                Err(error) => {
                    return self.finish(id, flow, Decision::refused(error, None), true, effects)
                }
            };
        let Some(random) = self.random::<12>() else {
            let error = GatewayError::Internal("no random source");
            return self.finish(id, flow, Decision::refused(error, None), true, effects);
        };
        self.count("translated_requests", 1);
        let (prefix, api) = match &translated.answer {
            Answer::Chat => ("chatcmpl", StreamApi::Chat),
            Answer::Completion => ("cmpl", StreamApi::Completion),
            Answer::Embeddings(request) => {
                let fetch = Fetch::Embeddings(request.clone());
                return self.fetch_from_model_server(id, flow, fetch, Some(upstream_body), effects);
            }
        };
        let context = ResponseContext {
            id: model_server::answer_id(prefix, random),
            now_s: self.host.now_ms() / 1000,
            include_usage: translated.include_usage,
        };
        if !translated.stream {
            let fetch = match api {
                StreamApi::Chat => Fetch::Chat(context),
                StreamApi::Completion => Fetch::Completion(context),
            };
            return self.fetch_from_model_server(id, flow, fetch, Some(upstream_body), effects);
        }
        self.count("translated_streams", 1);
        effects.push((
            id,
            Effect::ReplaceRequestBody {
                size,
                body: upstream_body,
            },
        ));
        flow.response = ResponseMode::StreamWith(context, api);
        Next::Continue
    }

    /// A body that is not translated: forwarded (masked) once its model is allowed and counted.
    fn forward_untranslated(
        &mut self,
        id: u32,
        flow: &mut Flow,
        size: usize,
        body: &[u8],
        effects: &mut Vec<(u32, Effect)>,
    ) -> Next {
        if !flow.model_in_body {
            // Read anyway now that it is held: the audit and per-model metrics name it.
            if let Ok(model) = crate::models::requested_model(body) {
                flow.audit.model = Some(crate::error::shortened(&model));
            }
        }
        // A body that names no model is counted by no model-restricted limit.
        let checked = if flow.model_in_body {
            self.check_body_model(flow, body)
                .and_then(|model| self.admit_model(flow, &model))
        } else {
            Ok(())
        };
        let protected = checked.and_then(|()| self.protect_prompt(flow, body));
        match protected.and_then(|masked| Ok((self.reserve_tokens(flow, body)?, masked))) {
            Ok(((), masked)) => {
                if let Some(masked) = masked {
                    effects.push((id, Effect::ReplaceRequestBody { size, body: masked }));
                }
                Next::Continue
            }
            Err(error) => self.finish(id, flow, Decision::refused(error, None), true, effects),
        }
    }

    /// With token budgets, reserves the body's `max_tokens` before the request goes on.
    fn reserve_tokens(&self, flow: &mut Flow, body: &[u8]) -> Result<(), GatewayError> {
        let Some(admission) = flow.admission.as_mut() else {
            return Ok(());
        };
        if admission.token_charges.is_empty() {
            return Ok(());
        }
        let Some(tokens) = crate::ratelimit::requested_tokens(body) else {
            return Ok(());
        };
        let reserved = crate::ratelimit::reserve(
            &self.config.rate_limits,
            &mut admission.token_charges,
            tokens,
            self.host.store(),
            self.host.now_ms(),
        );
        model_limits::refused_by_limit(admission, reserved)
    }
}

/// A translated request body and what its answer will need.
struct Translated {
    body: Vec<u8>,
    model: String,
    stream: bool,
    include_usage: bool,
    answer: Answer,
}

enum Answer {
    Chat,
    Completion,
    Embeddings(translate::EmbeddingsRequest),
}

/// The request body in Ollama's terms, for a translation that has a body.
fn translated(
    translation: &Translation,
    body: &[u8],
    config: &translate::TranslateConfig,
    caller: &Caller,
) -> Result<Translated, translate::TranslateError> {
    match translation {
        Translation::Completion { .. } => {
            translate::completion_request(body, config, caller).map(|c| Translated {
                body: c.body,
                model: c.model,
                stream: c.stream,
                include_usage: c.include_usage,
                answer: Answer::Completion,
            })
        }
        Translation::Embeddings => {
            translate::embeddings_request(body, config).map(|mut request| Translated {
                body: std::mem::take(&mut request.body),
                model: request.model.clone(),
                stream: false,
                include_usage: false,
                answer: Answer::Embeddings(request),
            })
        }
        Translation::Chat { .. } => {
            translate::chat_request(body, config, caller).map(|c| Translated {
                body: c.body,
                model: c.model,
                stream: c.stream,
                include_usage: c.include_usage,
                answer: Answer::Chat,
            })
        }
        // Not reached: the models routes translate no body (filtered by the caller).
        Translation::Models | Translation::Model(_) => Err(translate::TranslateError::InvalidBody(
            "this route takes no body".into(),
        )),
    }
}
