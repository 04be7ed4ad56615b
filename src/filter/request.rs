//! One HTTP request: gathers the head, asks the pipeline, verifies the token (waiting for keys
//! when needed), counts it against the rate limits, applies the outcome; on the way back, adds
//! the rate-limit headers and reads the LLM usage for token budgets.

use std::cell::RefCell;
use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use super::host;
use super::worker::{Admitted, AuthStep, Worker};
use crate::error::GatewayError;
use crate::http::RequestHead;
use crate::jwks::fetch::FetchResponse;
use crate::jwks::keys::MAX_JWKS_BYTES;
use crate::pipeline::{self, BodyOutcome, Forwarding, HeadersOutcome, PendingAuth};
use crate::ratelimit::usage::UsageScanner;
use crate::ratelimit::Admission;

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
        }
    }

    fn realm(&self) -> String {
        self.worker
            .as_ref()
            .map_or(FALLBACK_REALM.to_string(), |w| {
                w.borrow().config.token.realm.clone()
            })
    }

    fn refuse(&self, error: &GatewayError) -> Action {
        host::send_reply(&error.to_reply(&self.realm()));
        Action::Pause
    }

    fn forward(&mut self, admitted: Admitted) -> Action {
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
            AuthStep::StartFetch { provider } => {
                let config = Rc::clone(&worker.borrow().config);
                let remote = config.providers.get(provider).and_then(|p| p.remote());
                let Some(token) = remote.and_then(host::dispatch_get) else {
                    let failed = FetchResponse {
                        status: None,
                        body: None,
                    };
                    worker.borrow_mut().fetch_done(provider, &failed, now);
                    return self.refuse(&GatewayError::JwksUnavailable { retry_after_s: 1 });
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
    fn reserve_tokens(&mut self, body_size: usize) -> Result<(), GatewayError> {
        let has_budget = self
            .admission()
            .is_some_and(|a| !a.token_charges.is_empty());
        let Some(worker) = self.worker.clone().filter(|_| has_budget) else {
            return Ok(());
        };
        let Some(tokens) = host::request_body(body_size)
            .as_deref()
            .and_then(crate::ratelimit::requested_tokens)
        else {
            return Ok(());
        };
        match self.admission.as_mut() {
            Some(admission) => worker.borrow().reserve(admission, tokens, host::now_ms()),
            None => Ok(()),
        }
    }

    fn settle_usage(&mut self) {
        let (Some(scanner), Some(worker)) = (self.usage.take(), self.worker.clone()) else {
            return;
        };
        if let (Some(used), Some(admission)) = (scanner.finish(), self.admission.as_ref()) {
            worker.borrow().settle(admission, used, host::now_ms());
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
        if !config.rate_limits.is_empty() {
            head.remote_address = host::remote_address();
        }
        match pipeline::on_request_headers(&config, &head) {
            HeadersOutcome::Reply(error) => self.refuse(&error),
            HeadersOutcome::Forward(forwarding) => self.forward_anonymous(&worker, forwarding),
            HeadersOutcome::Verify(pending) => self.verify(&worker, pending),
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(limit) = self.held_body_limit else {
            return Action::Continue;
        };
        match pipeline::on_request_body(limit, body_size, end_of_stream) {
            BodyOutcome::Buffer => Action::Pause,
            BodyOutcome::Release => {
                self.held_body_limit = None;
                match self.reserve_tokens(body_size) {
                    Ok(()) => Action::Continue,
                    Err(error) => self.refuse(&error),
                }
            }
            BodyOutcome::Reply(error) => {
                self.held_body_limit = None;
                self.refuse(&error)
            }
        }
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let Some(admission) = self.admission() else {
            return Action::Continue;
        };
        let headers = admission.headers.clone();
        let budgets = !admission.token_charges.is_empty();
        for (name, value) in &headers {
            host::add_response_header(name, value);
        }
        if budgets && !end_of_stream {
            self.usage = Some(UsageScanner::new());
        }
        Action::Continue
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
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
