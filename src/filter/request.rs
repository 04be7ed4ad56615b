//! One HTTP request: gathers the head, asks the pipeline, verifies the token (waiting for keys
//! when needed), counts it against the rate limits, applies the outcome; on the way back, adds
//! the rate-limit headers and reads the LLM usage for token budgets.

use std::cell::RefCell;
use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use super::host;
use super::login::{self, LoginStep};
use super::translation::{self, MAX_FETCHED_BYTES};
use super::worker::{Admitted, AuthStep, Worker};
use crate::error::GatewayError;
use crate::http::RequestHead;
use crate::jwks::fetch::FetchResponse;
use crate::jwks::keys::MAX_JWKS_BYTES;
use crate::pipeline::{self, BodyOutcome, Forwarding, HeadersOutcome, PendingAuth, Translation};
use crate::ratelimit::usage::UsageScanner;
use crate::ratelimit::Admission;
use crate::translate::{self, Caller, ResponseContext, StreamTranslator};

/// An answer the gateway fetched itself from the translation upstream.
enum Fetch {
    Models(Translation),
    Chat(ResponseContext),
}

/// Realm used before any configuration is known.
const FALLBACK_REALM: &str = "ai-gateway";

pub struct GatewayRequest {
    context_id: u32,
    worker: Option<Rc<RefCell<Worker>>>,
    /// Set while a body of unknown length is held: the limit it must stay under.
    held_body_limit: Option<u64>,
    /// A JWKS fetch this request dispatched: (call token, provider).
    fetch: Option<(u32, usize)>,
    /// What the rate limits recorded, once admitted.
    admission: Option<Admission>,
    /// Reads the upstream's token usage when a token budget applies.
    usage: Option<UsageScanner>,
    /// How this request is translated, if it is.
    translation: Option<Translation>,
    /// A streamed chat: the context its chunks are translated with.
    stream_context: Option<ResponseContext>,
    /// The streamed answer being converted (NDJSON in, SSE out).
    stream: Option<StreamTranslator>,
    /// The upstream refused a streamed chat: its error body is translated once complete.
    error_status: Option<u32>,
    /// An answer being fetched by the gateway: (call token, what for).
    upstream_call: Option<(u32, Fetch)>,
    /// The gateway answered itself: the response is its own, not the upstream's.
    answered_locally: bool,
    /// What the audit record of this request will say.
    audit: crate::observe::AuditRecord,
    /// Bodies are logged for this request (sampled).
    sampled: bool,
    /// The audit record as published to the access log at the response's end, reused for the
    /// plugin's log line: serialised once per request.
    published_audit: Option<String>,
    /// The upstream's token usage was charged (once, at the response's end or at `on_done`).
    settled: bool,
    /// The identity headers this request was forwarded with (see `caller_headers`).
    caller_headers: Option<Vec<(String, String)>>,
    /// A login callback's token exchange in flight: (call token, the flow's state).
    login_call: Option<(u32, crate::oauth2::FlowState)>,
    /// A login callback's refetch of the ID-token keys: (call token, provider, the login).
    login_keys: Option<(u32, usize, login::ParkedLogin)>,
}

/// Finishes a request on the current effective context: forward it with its edits, or refuse.
pub fn finish_waiting(result: &Result<Admitted, GatewayError>, realm: &str) {
    match result {
        Ok(admitted) => {
            if host::apply_header_edits(&admitted.forwarding) {
                host::resume_request();
            } else {
                host::send_reply(
                    &GatewayError::Internal("could not edit request headers").to_reply(realm),
                );
            }
        }
        Err(error) => host::send_reply(&error.to_reply(realm)),
    }
}

impl GatewayRequest {
    pub fn new(context_id: u32, worker: Option<Rc<RefCell<Worker>>>) -> Self {
        Self {
            context_id,
            worker,
            held_body_limit: None,
            fetch: None,
            admission: None,
            usage: None,
            translation: None,
            stream_context: None,
            stream: None,
            error_status: None,
            upstream_call: None,
            answered_locally: false,
            login_call: None,
            login_keys: None,
            audit: crate::observe::AuditRecord::default(),
            sampled: false,
            published_audit: None,
            settled: false,
            caller_headers: None,
        }
    }

    fn realm(&self) -> String {
        self.worker
            .as_ref()
            .map_or(FALLBACK_REALM.to_string(), |w| {
                w.borrow().config.token.realm.clone()
            })
    }

    fn refuse(&mut self, error: &GatewayError) -> Action {
        self.answered_locally = true;
        self.record_refusal(error);
        host::send_reply(&error.to_reply(&self.realm()));
        Action::Pause
    }

    /// Counts a refusal and remembers it for the audit record.
    fn record_refusal(&mut self, error: &GatewayError) {
        if let Some(worker) = &self.worker {
            worker
                .borrow()
                .metrics
                .inc(crate::observe::refusal_metric(error));
        }
        self.audit.decision = "refused";
        self.audit.code = Some(error.code());
    }

    /// What every audit record has: when, what, for whom (never a token or cookie; the path
    /// without its query, which may carry codes).
    fn start_audit(&mut self, head: &RequestHead, config: &crate::config::GatewayConfig) {
        let request_id = head.value("x-request-id").map(str::to_string);
        self.sampled = crate::observe::sampled(
            request_id.as_deref().unwrap_or(""),
            config.audit.sample_bodies,
        );
        self.audit = crate::observe::AuditRecord {
            time_ms: host::now_ms(),
            request_id,
            method: head.method().to_string(),
            path: head.path().split('?').next().unwrap_or("").to_string(),
            decision: "pending",
            // The key of `ip` rate limits; otherwise read only for a log line (`fetch_client`).
            client: (!config.rate_limits.is_empty())
                .then(host::remote_address)
                .flatten(),
            ..crate::observe::AuditRecord::default()
        };
    }

    fn record_login_reply(&mut self, route: login::LoginRoute, reply: &crate::error::LocalReply) {
        let (decision, counter) = match (route, reply.status) {
            (login::LoginRoute::Login, 302) => ("login_started", Some("oauth2_logins_started")),
            (login::LoginRoute::Logout, _) => ("logout", None),
            _ => ("login_failed", Some("oauth2_logins_failed")),
        };
        if let Some(counter) = counter {
            self.count(counter, 1);
        }
        if decision == "login_failed" {
            self.audit.code = Some(if reply.status == 503 {
                "LOGIN_UNAVAILABLE"
            } else {
                "LOGIN_FAILED"
            });
        }
        self.audit.event = Some(if route == login::LoginRoute::Logout {
            "logout"
        } else {
            "login"
        });
        self.audit.decision = decision;
    }

    /// Keeps up to `max_logged_body_bytes` of a sampled body for the audit record.
    fn keep_body(&self, kept: &mut Option<String>, chunk: &[u8]) {
        if !self.sampled {
            return;
        }
        let max = self
            .worker
            .as_ref()
            .map_or(0, |w| w.borrow().config.audit.max_logged_body_bytes);
        let current = kept.get_or_insert_with(String::new);
        if current.len() < max {
            current.push_str(&crate::observe::truncated(chunk, max - current.len()));
        }
    }

    fn count(&self, name: &str, by: u64) {
        if let Some(worker) = &self.worker {
            worker.borrow().metrics.add(name, by);
        }
    }

    fn reply(&mut self, reply: &crate::error::LocalReply) {
        self.answered_locally = true;
        host::send_reply(reply);
    }

    /// The response is complete: usage is charged and the final audit record becomes filter
    /// state, for Envoy's access log (written after this, before `on_done`).
    fn finish_response(&mut self) {
        self.settle_usage();
        if !self.records_enabled() {
            return;
        }
        self.audit.duration_ms = host::now_ms().saturating_sub(self.audit.time_ms);
        if log::log_enabled!(log::Level::Info) {
            // The plugin's log line will reuse this record: it names the client.
            self.fetch_client();
        }
        let record = self.audit.to_json();
        host::set_audit_property(&record);
        self.published_audit = Some(record);
    }

    /// The client's address for the audit record, read only when a record will be written
    /// with it (a property read is one of the dearer host calls; the access log has
    /// `%DOWNSTREAM_REMOTE_ADDRESS%` of its own).
    fn fetch_client(&mut self) {
        if self.audit.client.is_none() {
            self.audit.client = host::remote_address();
        }
    }

    fn records_enabled(&self) -> bool {
        self.worker
            .as_ref()
            .is_some_and(|worker| worker.borrow().config.audit.records)
    }

    /// Writes the request's final audit record (the plugin's own log line), unless Envoy's log
    /// level for Wasm drops it anyway.
    fn emit_audit(&mut self) {
        if !log::log_enabled!(log::Level::Info) || !self.records_enabled() {
            return;
        }
        let record = match self.published_audit.take() {
            Some(record) => record,
            None => {
                // No complete response (reset, or a stream cut short): what is known now.
                self.audit.duration_ms = host::now_ms().saturating_sub(self.audit.time_ms);
                self.fetch_client();
                self.audit.to_json()
            }
        };
        host::audit_log(&record);
    }

    /// The caller's identity headers (as forwarded, also when the root context decided a
    /// parked request) and the request id, for calls the gateway makes on its behalf.
    fn caller_headers(&mut self) -> Vec<(String, String)> {
        let mut headers = match (self.caller_headers.take(), &self.worker) {
            (Some(headers), _) => headers,
            (None, Some(worker)) => worker
                .borrow_mut()
                .take_caller_headers(self.context_id)
                .unwrap_or_default(),
            (None, None) => Vec::new(),
        };
        if let Some(id) = &self.audit.request_id {
            headers.push(("x-request-id".to_string(), id.clone()));
        }
        headers
    }

    fn translate_settings(&self) -> Option<crate::config::TranslateSettings> {
        self.worker
            .as_ref()
            .and_then(|w| w.borrow().config.translate.clone())
    }

    fn forward(&mut self, admitted: Admitted) -> Action {
        self.count("requests_allowed", 1);
        self.audit.decision = "allowed";
        self.audit.sub = admitted.admission.subject.clone();
        self.audit.provider = admitted.admission.provider.clone();
        self.audit.rule = admitted.forwarding.rule;
        // As verified: a session caller's session_id is its session's `sid`.
        self.translation = admitted.forwarding.translation.clone();
        if admitted.forwarding.translation.is_some() {
            // Only translated requests lead to calls the gateway makes itself.
            self.caller_headers = Some(translation::caller_headers(&admitted.forwarding));
        }
        if let Some(answer) = &admitted.answer {
            self.reply(answer);
            self.admission = Some(admitted.admission);
            return Action::Pause;
        }
        if let Some(Translation::Models | Translation::Model(_)) = &admitted.forwarding.translation
        {
            // Answered by the gateway from /api/tags (see `translation`).
            self.admission = Some(admitted.admission);
            let call = self.translate_settings().and_then(|settings| {
                translation::dispatch(&settings, "GET", "/api/tags", None, &self.caller_headers())
            });
            return match (call, admitted.forwarding.translation) {
                (Some(token), Some(plan)) => {
                    self.upstream_call = Some((token, Fetch::Models(plan)));
                    Action::Pause
                }
                _ => self.refuse(&GatewayError::UpstreamError(
                    "the model server could not be called".into(),
                )),
            };
        }
        if !host::apply_header_edits(&admitted.forwarding) {
            return self.refuse(&GatewayError::Internal("could not edit request headers"));
        }
        // Headers go on: the host turns a paused header callback into "stop all", and the body
        // would never reach us. A held body is buffered here instead; Envoy's buffer filter
        // placed after this one keeps the router from seeing even the headers before the body
        // is complete.
        self.held_body_limit = admitted.forwarding.hold_body_up_to;
        self.admission = Some(admitted.admission);
        Action::Continue
    }

    fn forward_anonymous(
        &mut self,
        worker: &Rc<RefCell<Worker>>,
        forwarding: Forwarding,
    ) -> Action {
        let admitted = worker.borrow().admit(forwarding, None, host::now_ms());
        match admitted {
            Ok(admitted) => self.forward(admitted),
            Err(error) => self.refuse(&error),
        }
    }

    fn verify(&mut self, worker: &Rc<RefCell<Worker>>, pending: PendingAuth) -> Action {
        let now = host::now_ms();
        let step = worker.borrow_mut().evaluate(&pending, now, true);
        match step {
            AuthStep::Done(Ok(admitted)) => self.forward(admitted),
            AuthStep::Done(Err(error)) => self.refuse(&error),
            AuthStep::StartFetch {
                provider,
                if_undispatched,
            } => {
                let config = Rc::clone(&worker.borrow().config);
                let remote = config.providers.get(provider).and_then(|p| p.remote());
                let Some(token) = remote.and_then(|r| host::dispatch_get(r, &r.path)) else {
                    let failed = FetchResponse {
                        status: None,
                        body: None,
                    };
                    worker.borrow_mut().fetch_done(provider, &failed, now);
                    return self.refuse(&if_undispatched);
                };
                self.fetch = Some((token, provider));
                let until = now + remote.map_or(0, |r| r.timeout_ms) + 1000;
                self.park(worker, pending, until)
            }
            AuthStep::Wait { until_ms } => self.park(worker, pending, until_ms),
        }
    }

    /// Pauses the request until keys arrive; the body (if any) is held after it resumes.
    fn park(
        &mut self,
        worker: &Rc<RefCell<Worker>>,
        pending: PendingAuth,
        until_ms: u64,
    ) -> Action {
        self.held_body_limit = pending.forwarding.hold_body_up_to;
        worker.borrow_mut().wait(self.context_id, pending, until_ms);
        Action::Pause
    }

    /// The admission, also when the root context decided this request.
    fn admission(&mut self) -> Option<&Admission> {
        if self.admission.is_none() {
            if let Some(worker) = &self.worker {
                self.admission = worker.borrow_mut().take_admission(self.context_id);
            }
        }
        self.admission.as_ref()
    }

    /// With token budgets, reserves the body's `max_tokens` before the request goes on.
    fn reserve_tokens(&mut self, body: &[u8]) -> Result<(), GatewayError> {
        let has_budget = self
            .admission()
            .is_some_and(|a| !a.token_charges.is_empty());
        let Some(worker) = self.worker.clone().filter(|_| has_budget) else {
            return Ok(());
        };
        let Some(tokens) = crate::ratelimit::requested_tokens(body) else {
            return Ok(());
        };
        match self.admission.as_mut() {
            Some(admission) => worker.borrow().reserve(admission, tokens, host::now_ms()),
            None => Ok(()),
        }
    }

    /// The whole request body is in: translate a chat, reserve tokens, then send the chat on
    /// (streamed: through the router) or fetch its answer (not streamed).
    fn on_complete_body(&mut self, body_size: usize) -> Action {
        let body = host::request_body(body_size).unwrap_or_default();
        let mut kept = self.audit.request_body.take();
        self.keep_body(&mut kept, &body);
        self.audit.request_body = kept;
        let Some(Translation::Chat { session_id }) = self.translation.clone() else {
            return match self.reserve_tokens(&body) {
                Ok(()) => Action::Continue,
                Err(error) => self.refuse(&error),
            };
        };
        let Some(settings) = self.translate_settings() else {
            return Action::Continue;
        };
        let caller = Caller {
            user_id: self.admission().and_then(|a| a.subject.clone()),
            session_id,
        };
        let chat = match translate::chat_request(&body, &settings.config, &caller) {
            Ok(chat) => chat,
            Err(translate::TranslateError::InvalidBody(why)) => {
                return self.refuse(&GatewayError::InvalidRequestBody(why))
            }
        };
        if let Err(error) = self.reserve_tokens(&body) {
            return self.refuse(&error);
        }
        let context = translation::response_context(chat.include_usage, host::now_ms());
        self.count("translated_requests", 1);
        self.audit.model = Some(chat.model.clone());
        if chat.stream {
            self.count("translated_streams", 1);
            if !host::set_request_body(body_size, &chat.body) {
                return self.refuse(&GatewayError::Internal(
                    "could not rewrite the request body",
                ));
            }
            self.stream_context = Some(context);
            return Action::Continue;
        }
        let caller = self.caller_headers();
        match translation::dispatch(&settings, "POST", "/api/chat", Some(&chat.body), &caller) {
            Some(token) => {
                self.upstream_call = Some((token, Fetch::Chat(context)));
                Action::Pause
            }
            None => self.refuse(&GatewayError::UpstreamError(
                "the model server could not be called".into(),
            )),
        }
    }

    /// The answer to a fetch this request made: reply with its translation.
    fn on_fetched(&mut self, fetch: Fetch, body_size: usize) {
        let response = host::call_response(body_size, MAX_FETCHED_BYTES);
        let realm = self.realm();
        let reply = match &fetch {
            Fetch::Models(plan) => translation::models_reply(plan, &response, &realm),
            Fetch::Chat(context) => {
                let (reply, used) = translation::chat_reply(context, &response, &realm);
                if let (Some(used), Some(worker)) = (used, self.worker.clone()) {
                    if let Some(admission) = self.admission() {
                        worker.borrow().settle(admission, used, host::now_ms());
                    }
                }
                reply
            }
        };
        if matches!(reply.status, 502 | 504) {
            self.count("upstream_errors", 1);
        }
        self.reply(&reply);
    }

    fn settle_usage(&mut self) {
        if std::mem::replace(&mut self.settled, true) {
            return;
        }
        let split = match (self.usage.take(), self.stream.as_ref()) {
            (Some(scanner), _) => scanner.finish_split(),
            (None, Some(stream)) => stream.usage(),
            _ => None,
        };
        if let Some((prompt, completion)) = split {
            self.record_tokens(prompt, completion);
        }
        let used = split.map(|(p, c)| p.saturating_add(c));
        if let (Some(used), Some(worker), Some(admission)) =
            (used, self.worker.clone(), self.admission.as_ref())
        {
            worker.borrow().settle(admission, used, host::now_ms());
        }
    }

    fn record_tokens(&mut self, prompt: u64, completion: u64) {
        self.count("llm_prompt_tokens", prompt);
        self.count("llm_completion_tokens", completion);
        self.audit.prompt_tokens = Some(prompt);
        self.audit.completion_tokens = Some(completion);
    }

    /// A streamed chat's answer arrives: SSE when the upstream streams, else its error body
    /// (translated once complete).
    fn start_stream(&mut self, context: ResponseContext) {
        let status = host::response_header(":status")
            .and_then(|s| s.parse().ok())
            .unwrap_or(502);
        host::remove_response_header("content-length");
        if status == 200 {
            host::set_response_header("content-type", "text/event-stream");
            host::set_response_header("cache-control", "no-cache");
            self.stream = Some(StreamTranslator::new(context));
        } else {
            host::set_response_header("content-type", "application/json");
            self.error_status = Some(status);
        }
    }
}

impl Context for GatewayRequest {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        if self
            .login_call
            .as_ref()
            .is_some_and(|(t, _)| *t == token_id)
        {
            if let (Some((_, flow)), Some(worker)) = (self.login_call.take(), self.worker.clone()) {
                self.on_token_response(&worker, flow, body_size);
            }
            return;
        }
        if self
            .login_keys
            .as_ref()
            .is_some_and(|(t, _, _)| *t == token_id)
        {
            if let (Some((_, provider, parked)), Some(worker)) =
                (self.login_keys.take(), self.worker.clone())
            {
                self.on_login_keys(&worker, provider, parked, body_size);
            }
            return;
        }
        if let Some((token, _)) = &self.upstream_call {
            if *token == token_id {
                if let Some((_, fetch)) = self.upstream_call.take() {
                    self.on_fetched(fetch, body_size);
                }
                return;
            }
        }
        let Some((token, provider)) = self.fetch else {
            return;
        };
        if token != token_id {
            return;
        }
        self.fetch = None;
        let Some(worker) = self.worker.clone() else {
            return;
        };
        let response = host::call_response(body_size, MAX_JWKS_BYTES);
        let now = host::now_ms();
        worker.borrow_mut().fetch_done(provider, &response, now);
        // Every request of this worker that waited for these keys, this one included. Fetches
        // they still need are left to the root's next tick (a call made here would answer here).
        let decided = worker.borrow_mut().resolve_waiting(now, false).decided;
        let realm = self.realm();
        let mine = decided.iter().position(|(id, _)| *id == self.context_id);
        for (id, result) in decided.iter().filter(|(id, _)| *id != self.context_id) {
            if host::set_effective_context(*id) {
                finish_waiting(result, &realm);
            }
        }
        if let Some(i) = mine {
            if host::set_effective_context(self.context_id) {
                if let Some((_, result)) = decided.get(i) {
                    finish_waiting(result, &realm);
                }
            }
        }
    }

    fn on_done(&mut self) -> bool {
        self.settle_usage();
        self.emit_audit();
        if let Some(worker) = &self.worker {
            worker.borrow_mut().forget(self.context_id);
        }
        true
    }
}

impl HttpContext for GatewayRequest {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let Some(worker) = self.worker.clone() else {
            return self.refuse(&GatewayError::Internal("the gateway is not configured"));
        };
        let Some(headers) = host::request_headers() else {
            return self.refuse(&GatewayError::Internal("request headers unavailable"));
        };
        let mut head = RequestHead::new(headers, end_of_stream);
        let config = Rc::clone(&worker.borrow().config);
        self.start_audit(&head, &config);
        if let Some(route) = login::route(&config, head.path()) {
            let realm = self.realm();
            let step = login::handle(
                route,
                &mut worker.borrow_mut(),
                &head,
                host::now_ms(),
                &realm,
            );
            return match step {
                LoginStep::Reply(reply) => {
                    self.record_login_reply(route, &reply);
                    self.reply(&reply);
                    Action::Pause
                }
                LoginStep::Exchange { call, flow } => {
                    self.login_call = Some((call, flow));
                    Action::Pause
                }
            };
        }
        if !config.rate_limits.is_empty() {
            // Read once per request, for the audit record already.
            head.remote_address = self.audit.client.clone();
        }
        match pipeline::on_request_headers(&config, &head) {
            HeadersOutcome::Reply(error) => self.refuse(&error),
            HeadersOutcome::Forward(forwarding) => {
                self.translation = forwarding.translation.clone();
                self.forward_anonymous(&worker, forwarding)
            }
            HeadersOutcome::Verify(pending) => {
                self.translation = pending.forwarding.translation.clone();
                self.verify(&worker, pending)
            }
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(limit) = self.held_body_limit else {
            if self.sampled {
                if let Some(chunk) = host::request_body(body_size) {
                    let mut kept = self.audit.request_body.take();
                    self.keep_body(&mut kept, &chunk);
                    self.audit.request_body = kept;
                }
            }
            return Action::Continue;
        };
        match pipeline::on_request_body(limit, body_size, end_of_stream) {
            BodyOutcome::Buffer => Action::Pause,
            BodyOutcome::Release => {
                self.held_body_limit = None;
                self.on_complete_body(body_size)
            }
            BodyOutcome::Reply(error) => {
                self.held_body_limit = None;
                self.refuse(&error)
            }
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.audit.status = host::response_header(":status").and_then(|s| s.parse().ok());
        if end_of_stream {
            self.finish_response();
        }
        let Some(admission) = self.admission() else {
            return Action::Continue;
        };
        let headers = admission.headers.clone();
        let budgets = !admission.token_charges.is_empty();
        for (name, value) in &headers {
            host::add_response_header(name, value);
        }
        if self.answered_locally {
            return Action::Continue;
        }
        if let Some(context) = self.stream_context.take() {
            self.start_stream(context);
        } else if budgets && !end_of_stream {
            self.usage = Some(UsageScanner::new());
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let action = self.response_body(body_size, end_of_stream);
        if end_of_stream {
            self.finish_response();
        }
        action
    }
}

impl GatewayRequest {
    /// The callback's token exchange answered: finish the login, or fetch the ID token's keys.
    fn on_token_response(
        &mut self,
        worker: &Rc<RefCell<Worker>>,
        flow: crate::oauth2::FlowState,
        body_size: usize,
    ) {
        let response = host::call_response(body_size, MAX_JWKS_BYTES);
        let realm = self.realm();
        let now = host::now_ms();
        let finish = login::finish(&mut worker.borrow_mut(), flow, &response, now, &realm);
        match finish {
            login::Finish::Reply(reply, sub) => self.reply_login(&reply, sub),
            login::Finish::FetchKeys {
                provider,
                path,
                parked,
            } => {
                let config = Rc::clone(&worker.borrow().config);
                let remote = config.providers.get(provider).and_then(|p| p.remote());
                match remote.and_then(|r| host::dispatch_get(r, &path)) {
                    Some(token) => self.login_keys = Some((token, provider, parked)),
                    None => {
                        let failed = FetchResponse {
                            status: None,
                            body: None,
                        };
                        worker.borrow_mut().fetch_done(provider, &failed, now);
                        self.login_keys_unavailable(worker);
                    }
                }
            }
            login::Finish::Wait { until_ms, parked } => {
                worker
                    .borrow_mut()
                    .park_login(self.context_id, parked, until_ms);
            }
        }
    }

    /// The ID-token keys this callback fetched arrived: verify its ID token again.
    fn on_login_keys(
        &mut self,
        worker: &Rc<RefCell<Worker>>,
        provider: usize,
        parked: login::ParkedLogin,
        body_size: usize,
    ) {
        let response = host::call_response(body_size, MAX_JWKS_BYTES);
        let now = host::now_ms();
        worker.borrow_mut().fetch_done(provider, &response, now);
        let realm = self.realm();
        let verified = login::verify_parked(&mut worker.borrow_mut(), parked, now, &realm);
        match verified {
            Ok((reply, sub)) => self.reply_login(&reply, sub),
            // Fresh keys and still no key for this token.
            Err(_) => self.login_keys_unavailable(worker),
        }
    }

    fn login_keys_unavailable(&mut self, worker: &Rc<RefCell<Worker>>) {
        let config = Rc::clone(&worker.borrow().config);
        let realm = self.realm();
        let reply = match config.oauth2.as_ref() {
            Some(oauth2) => login::keys_unavailable(oauth2, 1, &realm),
            // Never leave a paused request without an answer.
            None => GatewayError::Internal("login is not configured").to_reply(&realm),
        };
        self.reply_login(&reply, None);
    }

    /// Answers a callback after its token exchange; `sub` when the login succeeded.
    fn reply_login(&mut self, reply: &crate::error::LocalReply, sub: Option<String>) {
        let succeeded = sub.is_some();
        self.count(
            if succeeded {
                "oauth2_logins_succeeded"
            } else {
                "oauth2_logins_failed"
            },
            1,
        );
        self.audit.event = Some("login");
        self.audit.decision = if succeeded {
            "login_succeeded"
        } else {
            "login_failed"
        };
        if !succeeded {
            self.audit.code = Some(if reply.status == 503 {
                "LOGIN_UNAVAILABLE"
            } else {
                "LOGIN_FAILED"
            });
        }
        self.audit.sub = sub;
        self.reply(reply);
    }

    fn response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if self.sampled && self.stream.is_none() && self.error_status.is_none() {
            if let Some(chunk) = host::response_body_chunk(body_size) {
                let mut kept = self.audit.response_body.take();
                self.keep_body(&mut kept, &chunk);
                self.audit.response_body = kept;
            }
        }
        if let Some(stream) = self.stream.as_mut() {
            // Each chunk is converted as it arrives: nothing waits for the whole answer.
            let chunk = host::response_body_chunk(body_size).unwrap_or_default();
            let mut out = stream.feed(&chunk);
            if end_of_stream {
                out.extend(stream.finish());
                self.settle_usage();
            }
            host::set_response_body(body_size, &out);
            let mut kept = self.audit.response_body.take();
            self.keep_body(&mut kept, &out);
            self.audit.response_body = kept;
            return Action::Continue;
        }
        if let Some(status) = self.error_status {
            if !end_of_stream {
                return Action::Pause;
            }
            let body = host::response_body_chunk(body_size).unwrap_or_default();
            let reply = translation::error_body(status, &body, &self.realm());
            host::set_response_body(body_size, reply.body.as_bytes());
            return Action::Continue;
        }
        if let Some(scanner) = self.usage.as_mut() {
            if let Some(chunk) = host::response_body_chunk(body_size) {
                scanner.feed(&chunk);
            }
            if end_of_stream {
                self.settle_usage();
            }
        }
        Action::Continue
    }
}
