//! The request body: held whole when the flow needs it (size unknown, a chat to translate,
//! `max_tokens` to reserve), then translated and sent on, or its answer fetched.

use crate::error::GatewayError;
use crate::pipeline::{self, BodyOutcome, Translation};
use crate::translate::{self, Caller, ResponseContext};

use super::finish::Decision;
use super::flow::{Fetch, Flow, Phase, ResponseMode};
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
            | Phase::TokenExchange(_)
            | Phase::WaitingIdTokenKeys(_) => Next::Pause,
            Phase::FetchDue { .. } | Phase::Fetching(_) | Phase::Answered => Next::Continue,
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
        let (Some(Translation::Chat { session_id }), Some(settings)) =
            (&flow.translation, &config.translate)
        else {
            if !flow.model_in_body {
                // Read anyway now that it is held: the audit and per-model metrics name it.
                if let Ok(model) = crate::models::requested_model(&body) {
                    flow.audit.model = Some(crate::error::shortened(&model));
                }
            }
            // A body that names no model is counted by no model-restricted limit.
            let checked = if flow.model_in_body {
                self.check_body_model(flow, &body)
                    .and_then(|model| self.admit_model(flow, &model))
            } else {
                Ok(())
            };
            // Forwarded (masked) once its model is allowed and counted.
            let protected = checked.and_then(|()| self.protect_prompt(flow, &body));
            return match protected
                .and_then(|masked| Ok((self.reserve_tokens(flow, &body)?, masked)))
            {
                Ok(((), masked)) => {
                    if let Some(masked) = masked {
                        effects.push((id, Effect::ReplaceRequestBody { size, body: masked }));
                    }
                    Next::Continue
                }
                Err(error) => self.finish(id, flow, Decision::refused(error, None), true, effects),
            };
        };
        let caller = Caller {
            user_id: flow.admission().and_then(|a| a.subject.clone()),
            session_id: session_id.clone(),
        };
        let chat = match translate::chat_request(&body, &settings.config, &caller) {
            Ok(chat) => chat,
            Err(translate::TranslateError::InvalidBody(why)) => {
                let error = GatewayError::InvalidRequestBody(why);
                return self.finish(id, flow, Decision::refused(error, None), true, effects);
            }
        };
        // The model the upstream would get (after default and alias) is the one checked and
        // counted by model-restricted limits (before reserving: their budgets reserve too).
        let checked = self
            .check_model(flow, &chat.model)
            .and_then(|()| self.admit_model(flow, &chat.model));
        // What the model will see is checked and masked after translation.
        let protected = checked.and_then(|()| self.protect_prompt(flow, &chat.body));
        let upstream_body =
            match protected.and_then(|masked| Ok((self.reserve_tokens(flow, &body)?, masked))) {
                Ok(((), masked)) => masked.unwrap_or(chat.body),
                Err(error) => {
                    return self.finish(id, flow, Decision::refused(error, None), true, effects)
                }
            };
        let Some(random) = self.random::<12>() else {
            let error = GatewayError::Internal("no random source");
            return self.finish(id, flow, Decision::refused(error, None), true, effects);
        };
        let context = ResponseContext {
            id: model_server::completion_id(random),
            now_s: self.host.now_ms() / 1000,
            include_usage: chat.include_usage,
        };
        self.count("translated_requests", 1);
        if !chat.stream {
            let fetch = Fetch::Chat(context);
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
        flow.response = ResponseMode::StreamWith(context);
        Next::Continue
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
