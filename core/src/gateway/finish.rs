//! The one exit of a decision: [`Gateway::finish`] records it (audit decision, code, subject,
//! provider, rule, counters) and turns it into effects: forward with edits, answer locally,
//! fetch-and-translate, or refuse.

use crate::error::{GatewayError, LocalReply};
use crate::jwt::Identity;
use crate::models::Grant;
use crate::observe::refusal_metric;
use crate::pipeline::{Forwarding, Translation};
use crate::ratelimit::{self, Admission};

use super::flow::{Fetch, Flow, Phase};
use super::{model_server, Effect, Gateway, Next};

/// Who a decision was made for: the verified subject and its provider.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Subject {
    pub sub: String,
    pub provider: Option<String>,
}

/// How a request is decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Allowed and counted by the rate limits.
    Allow(Box<Admitted>),
    /// Refused; `by` when the caller was verified (who tried what they may not).
    Refuse {
        error: GatewayError,
        by: Option<Subject>,
    },
    /// A login endpoint's answer.
    Login {
        reply: LocalReply,
        event: LoginEvent,
        sub: Option<String>,
    },
}

/// What a login endpoint did, for the audit record and the counters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginEvent {
    /// `login_path`: the redirect to the IdP (or why it could not start).
    Start,
    /// `callback_path`: the session started (or why not).
    Callback,
    Logout,
}

/// A request allowed through: its header edits and what the rate limits recorded.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admitted {
    pub forwarding: Forwarding,
    pub admission: Admission,
    /// The gateway's own answer instead of forwarding (the userinfo endpoint).
    pub answer: Option<LocalReply>,
    /// Under `models`: the models the caller's scopes let it use.
    pub model_grant: Option<Grant>,
}

impl Decision {
    pub fn refused(error: GatewayError, by: Option<Subject>) -> Self {
        Self::Refuse { error, by }
    }
}

impl Gateway {
    /// Counts an allowed request against the rate limits that apply to it.
    pub(super) fn admit(&self, forwarding: Forwarding, identity: Option<&Identity>) -> Decision {
        let by = identity.map(|identity| self.subject(identity));
        // Anonymous callers hold no scopes: only an entry that asks for none can apply.
        let scopes = identity.map_or(&[][..], |identity| identity.scopes.as_slice());
        let model_grant = self.config.models.as_ref().map(|list| list.grant(scopes));
        let admission = ratelimit::admit(
            &self.config.rate_limits,
            &forwarding.limit_facts,
            identity,
            self.host.store(),
            self.host.now_ms(),
        );
        match admission {
            Ok(mut admission) => {
                admission.provider = by.as_ref().and_then(|by| by.provider.clone());
                if self.config.rate_limit_service.is_some() {
                    admission.mesh = ratelimit::mesh::plan(
                        &self.config.rate_limits,
                        &forwarding.limit_facts,
                        identity,
                    );
                }
                Decision::Allow(Box::new(Admitted {
                    forwarding,
                    admission,
                    answer: None,
                    model_grant,
                }))
            }
            Err(error) => Decision::refused(error, by),
        }
    }

    pub(super) fn subject(&self, identity: &Identity) -> Subject {
        Subject {
            sub: identity.sub.clone(),
            provider: self
                .config
                .providers
                .get(identity.provider)
                .map(|p| p.name.clone()),
        }
    }

    /// Records `decision` on request `id` and turns it into effects. `resume`: the request is
    /// paused (it waited) rather than in its own header callback.
    pub(super) fn finish(
        &mut self,
        id: u32,
        flow: &mut Flow,
        decision: Decision,
        resume: bool,
        effects: &mut Vec<(u32, Effect)>,
    ) -> Next {
        match decision {
            Decision::Allow(admitted) => {
                self.check_mesh_limits(id, flow, admitted, resume, effects)
            }
            Decision::Refuse { error, by } => {
                self.count(refusal_metric(&error), 1);
                flow.audit.decision = "refused";
                flow.audit.code = Some(error.code());
                if let Some(by) = by {
                    flow.audit.sub = Some(by.sub);
                    flow.audit.provider = by.provider;
                }
                let reply = error.to_reply(self.realm());
                self.answer(id, flow, reply, effects)
            }
            Decision::Login { reply, event, sub } => {
                let succeeded = match event {
                    LoginEvent::Start => reply.status == 302,
                    LoginEvent::Callback => sub.is_some(),
                    LoginEvent::Logout => true,
                };
                flow.audit.event = Some(if event == LoginEvent::Logout {
                    "logout"
                } else {
                    "login"
                });
                flow.audit.decision = match (event, succeeded) {
                    (LoginEvent::Logout, _) => "logout",
                    (LoginEvent::Start, true) => "login_started",
                    (LoginEvent::Callback, true) => "login_succeeded",
                    (_, false) => "login_failed",
                };
                match flow.audit.decision {
                    "login_started" => self.count("oauth2_logins_started", 1),
                    "login_succeeded" => self.count("oauth2_logins_succeeded", 1),
                    "login_failed" => {
                        self.count("oauth2_logins_failed", 1);
                        // The code the reply carries (login replies are built in one place each).
                        flow.audit.code = Some(match reply.status {
                            503 => "LOGIN_UNAVAILABLE",
                            500 => "INTERNAL_ERROR",
                            _ => "LOGIN_FAILED",
                        });
                    }
                    _ => {}
                }
                flow.audit.sub = sub;
                self.answer(id, flow, reply, effects)
            }
        }
    }

    pub(super) fn allow(
        &mut self,
        id: u32,
        flow: &mut Flow,
        admitted: Admitted,
        resume: bool,
        effects: &mut Vec<(u32, Effect)>,
    ) -> Next {
        self.count("requests_allowed", 1);
        let Admitted {
            forwarding,
            admission,
            answer,
            model_grant,
        } = admitted;
        flow.audit.decision = "allowed";
        flow.audit.sub = admission.subject.clone();
        flow.audit.provider = admission.provider.clone();
        flow.audit.rule = forwarding.rule;
        flow.admission = Some(admission);
        flow.translation = forwarding.translation.clone();
        flow.model_grant = model_grant;
        flow.model_in_body = forwarding.model_in_body;
        if flow.translation.is_some() {
            // Only translated requests lead to calls the gateway makes on their behalf.
            flow.caller_headers = model_server::caller_headers(&forwarding, &flow.audit);
            flow.caller_headers.extend(flow.trace.iter().cloned());
        }
        if let Some(answer) = answer {
            return self.answer(id, flow, answer, effects);
        }
        if let Some(plan @ (Translation::Models | Translation::Model(_))) = &flow.translation {
            let plan = plan.clone();
            return self.fetch_from_model_server(id, flow, Fetch::Models(plan), None, effects);
        }
        flow.phase = match forwarding.hold_body_up_to {
            Some(limit) => Phase::HoldingBody { limit },
            None => Phase::Forwarded,
        };
        effects.push((
            id,
            Effect::Forward {
                remove: forwarding.remove_headers,
                set: forwarding.set_headers,
                resume,
            },
        ));
        // Headers go on: the host turns a paused header callback into "stop all", and the body
        // would never reach us. A held body is buffered in the body callback instead; Envoy's
        // buffer filter after this one keeps the router from seeing even the headers first.
        Next::Continue
    }

    /// Dispatches the model-server call that answers request `id`, or refuses it. Decided on
    /// another request's callback, the call waits for the next tick (see `due_fetches`).
    pub(super) fn fetch_from_model_server(
        &mut self,
        id: u32,
        flow: &mut Flow,
        fetch: Fetch,
        body: Option<Vec<u8>>,
        effects: &mut Vec<(u32, Effect)>,
    ) -> Next {
        if self.running.is_some_and(|running| running != id) {
            flow.phase = Phase::FetchDue { fetch, body };
            self.due_fetches.push(id);
            return Next::Pause;
        }
        let call = match (&self.config.translate, &flow.model_server) {
            (Some(settings), Some(target)) => Some(model_server::call(
                settings.timeout_ms,
                target,
                &fetch,
                &flow.caller_headers,
                body,
            )),
            _ => None,
        };
        let dispatched =
            call.is_some_and(|call| self.dispatch(&call, super::Call::ModelServer { request: id }));
        if !dispatched {
            let error = GatewayError::UpstreamError("the model server could not be called".into());
            return self.finish(id, flow, Decision::refused(error, None), true, effects);
        }
        flow.phase = Phase::Fetching(fetch);
        Next::Pause
    }

    /// The tick's part: the model-server calls of requests decided on another request's
    /// callback, made from the worker's own context.
    pub(super) fn dispatch_due_fetches(&mut self, effects: &mut Vec<(u32, Effect)>) {
        for id in std::mem::take(&mut self.due_fetches) {
            let Some(mut flow) = self.flows.remove(&id) else {
                continue;
            };
            if let Phase::FetchDue { fetch, body } = std::mem::replace(&mut flow.phase, Phase::Head)
            {
                self.fetch_from_model_server(id, &mut flow, fetch, body, effects);
            }
            self.flows.insert(id, flow);
        }
    }

    /// Answers request `id` with the gateway's own response.
    pub(super) fn answer(
        &mut self,
        id: u32,
        flow: &mut Flow,
        mut reply: LocalReply,
        effects: &mut Vec<(u32, Effect)>,
    ) -> Next {
        // An allowed origin's page reads the gateway's own answers too (errors, Retry-After).
        reply.headers.extend(
            flow.cors
                .iter()
                .map(|(name, value)| (name.to_string(), value.clone())),
        );
        flow.phase = Phase::Answered;
        effects.push((id, Effect::Reply(reply)));
        Next::Pause
    }
}
