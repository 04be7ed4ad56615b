//! One worker's gateway: every request's life as an explicit state machine ([`flow`]), the
//! state requests share (verified tokens, keys, requests waiting for keys, the calls in flight),
//! and the entry points the host layer forwards its callbacks to.
//!
//! The host layer calls one entry point per callback and applies the [`Output`] it returns:
//! what the callback answers ([`Next`]) and the [`Effect`]s on this request or on others (a
//! fetch answering decides every request that waited for it). Whatever path decides a request,
//! waited or not, ends in [`Gateway::finish`], which sets the audit record and the counters once
//! and turns the decision into effects.

mod body;
mod cors;
mod emergency;
mod finish;
mod flow;
mod introspection;
mod keys;
mod login;
mod mesh_limits;
mod model_access;
mod model_limits;
mod model_metrics;
mod model_server;
mod protection;
mod response;
#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::rc::Rc;

use crate::auth::{prepare_shared_state, Authenticator};
use crate::config::GatewayConfig;
use crate::error::LocalReply;
use crate::host::Host;
use crate::http::RequestHead;
use crate::jwt::cache::DEFAULT_CAPACITY;
use crate::oauth2::Endpoints;
use crate::pipeline::{self, HeadersOutcome};
use crate::ratelimit::counter;

pub use finish::Decision;
use flow::{Flow, Phase};

/// How often the host should call [`Gateway::on_tick`]: it adopts keys other workers fetched
/// and ends waits, so a waiting request is answered within its fetch's timeout plus one tick.
pub const TICK_MS: u64 = 100;
/// The tick's period when no keys are fetched (it still follows Envoy's log level).
pub const IDLE_TICK_MS: u64 = 1000;

/// What the callback that is running returns to the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Go on (headers or body continue towards the upstream or the client).
    Continue,
    /// Hold the request or response here.
    Pause,
}

/// A change to a request or its response, for the host layer to make once the core returned
/// (some of these re-enter the VM).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Edit the request's headers and let it go on. `resume`: the request is paused and must be
    /// resumed (it waited); otherwise it is the request's own header callback, which returns
    /// [`Next::Continue`].
    Forward {
        remove: Vec<String>,
        set: Vec<(String, String)>,
        resume: bool,
    },
    /// Answer the request with the gateway's own response; nothing more reaches the upstream.
    Reply(LocalReply),
    /// Replace the buffered request body (`size` bytes) with `body`.
    ReplaceRequestBody {
        size: usize,
        body: Vec<u8>,
    },
    /// Replace this callback's response body chunk (`size` bytes) with `body`.
    ReplaceResponseBody {
        size: usize,
        body: Vec<u8>,
    },
    SetResponseHeader(&'static str, String),
    AddResponseHeader(String, String),
    RemoveResponseHeader(&'static str),
    /// The final audit record, as filter state for Envoy's access log.
    PublishAudit(String),
    /// Let a paused response go on (its end waited for a token charge).
    ResumeResponse,
}

/// What an entry point returns: the running callback's answer, and effects by request
/// (context id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Output {
    pub next: Next,
    pub effects: Vec<(u32, Effect)>,
}

impl Output {
    fn new(next: Next) -> Self {
        Self {
            next,
            effects: Vec::new(),
        }
    }
}

/// What a call in flight was for, by its token.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Call {
    /// A provider's JWKS (scheduled, or for a token naming an unknown key).
    Jwks { provider: usize },
    /// The OIDC discovery document.
    Discovery,
    /// A login callback's token exchange.
    TokenExchange { request: u32 },
    /// The model server's answer to a translated request, fetched by the gateway.
    ModelServer { request: u32 },
    /// RFC 7662 introspection of the token with this SHA-256 (for every request that has it).
    Introspection { token: [u8; 32] },
    /// One of a login preset's calls (token, user info, ...) for a callback.
    PresetLogin { request: u32 },
}

impl Call {
    fn request(self) -> Option<u32> {
        match self {
            Self::TokenExchange { request }
            | Self::ModelServer { request }
            | Self::PresetLogin { request } => Some(request),
            Self::Jwks { .. } | Self::Discovery | Self::Introspection { .. } => None,
        }
    }
}

pub struct Gateway {
    config: Rc<GatewayConfig>,
    host: Box<dyn Host>,
    auth: Authenticator,
    /// Identifies this worker's claims on the shared fetch slots.
    owner: u64,
    /// Every request in progress, by context id.
    flows: HashMap<u32, Flow>,
    /// Requests (and login callbacks) waiting for keys, decided by [`Gateway::resolve_waiting`].
    waiting: Vec<u32>,
    /// Calls in flight, by token: what each is for, and the request it was dispatched from
    /// (Envoy cancels it, unanswered, if that request ends first).
    calls: HashMap<u32, (Call, Option<u32>)>,
    /// The request whose callback is running, `None` on the worker's own (root) callbacks: calls
    /// are dispatched from it (see [`Host::dispatch`]).
    running: Option<u32>,
    /// Requests decided on another request's callback whose model-server call is made on the
    /// next tick, from the worker's own context (a call dispatched from that other request would
    /// be lost with it).
    due_fetches: Vec<u32>,
    /// Requests whose mesh-limit check waits for the next tick (see `mesh_limits`).
    due_mesh: Vec<u32>,
    /// gRPC calls in flight (their tokens are counted apart from HTTP calls'), like `calls`.
    grpc_calls: HashMap<u32, (mesh_limits::GrpcPurpose, Option<u32>)>,
    /// The OIDC discovery document, once fetched (by any worker).
    discovery: Option<Endpoints>,
    discovery_version: Option<u32>,
    /// WeCom's app token and when this worker stops using it (ms): one per app, not per login.
    app_token: Option<(String, u64)>,
    /// Active introspection answers this worker read, until they expire.
    introspection_memo: crate::introspect::memo::Memo,
}

impl Gateway {
    /// A configured worker: creates the shared state the config needs (fetch slots, rate-limit
    /// slots) and the gauges.
    pub fn new(config: Rc<GatewayConfig>, host: Box<dyn Host>) -> Self {
        prepare_shared_state(&config.providers, host.store());
        if let Some(settings) = &config.introspection {
            crate::introspect::cache::prepare(host.store(), &settings.cache);
        }
        if config.emergency.is_some() {
            crate::store::ensure_exists(host.store(), crate::emergency::SPENT_KEY, b"[]");
        }
        if config.oauth2.is_some() {
            crate::jwks::fetch::prepare(host.store(), keys::DISCOVERY_SLOT);
        }
        for limit in &config.rate_limits {
            counter::prepare(host.store(), &limit.name, limit.slots);
        }
        let mut owner = [0u8; 8];
        host.random(&mut owner);
        host.gauge(
            "ratelimit_slots",
            config.rate_limits.iter().map(|l| l.slots).sum(),
        );
        let mut cache_secret = [0u8; 16];
        let cache_secret = host.random(&mut cache_secret).then_some(cache_secret);
        Self {
            auth: Authenticator::new(&config.providers, DEFAULT_CAPACITY, cache_secret),
            config,
            host,
            owner: u64::from_le_bytes(owner) | 1,
            flows: HashMap::new(),
            waiting: Vec::new(),
            calls: HashMap::new(),
            running: None,
            due_fetches: Vec::new(),
            due_mesh: Vec::new(),
            grpc_calls: HashMap::new(),
            discovery: None,
            discovery_version: None,
            introspection_memo: crate::introspect::memo::Memo::new(DEFAULT_CAPACITY),
            app_token: None,
        }
    }

    /// How often [`Gateway::on_tick`] should run, in milliseconds.
    pub fn tick_period_ms(&self) -> u64 {
        let waits_on_others = self.config.introspection.is_some()
            || self.config.providers.iter().any(|p| p.remote().is_some());
        if waits_on_others {
            TICK_MS
        } else {
            IDLE_TICK_MS
        }
    }

    /// A request's headers arrived: decide it now, or wait for keys, or hold its body.
    pub fn on_request_headers(
        &mut self,
        id: u32,
        headers: Vec<(String, String)>,
        end_of_stream: bool,
    ) -> Output {
        self.running = Some(id);
        let mut head = RequestHead::new(headers, end_of_stream);
        let config = Rc::clone(&self.config);
        let mut flow = Flow::start(&head, &config, self.host.as_ref());
        let mut out = Output::new(Next::Pause);
        if let Some(next) = self.cors_step(id, &mut flow, &head, &mut out.effects) {
            out.next = next;
        } else if let Some(route) = login::route(&config, head.path()) {
            out.next = self.login(id, &mut flow, route, &head, &mut out.effects);
        } else {
            head.remote_address = flow.audit.client.clone();
            let outcome = pipeline::on_request_headers(&config, &head);
            let plan = match &outcome {
                HeadersOutcome::Forward(forwarding) => forwarding.translation.as_ref(),
                HeadersOutcome::Verify(pending) => pending.forwarding.translation.as_ref(),
                HeadersOutcome::Reply(_) => None,
            };
            if plan.is_some() {
                flow.model_server = self.model_server(&head);
            }
            let decision = match outcome {
                HeadersOutcome::Reply(error) => Decision::refused(error, None),
                HeadersOutcome::Forward(forwarding) => self.admit(forwarding, None),
                HeadersOutcome::Verify(pending) => match self.authenticate(&pending, true) {
                    keys::AuthStep::Done(decision) => decision,
                    keys::AuthStep::Wait(wait) => {
                        flow.phase = Phase::WaitingKeys(wait);
                        self.waiting.push(id);
                        self.flows.insert(id, flow);
                        return out;
                    }
                    keys::AuthStep::Introspecting(wait) => {
                        flow.phase = Phase::WaitingIntrospection(wait);
                        self.waiting.push(id);
                        self.flows.insert(id, flow);
                        return out;
                    }
                },
            };
            out.next = self.finish(id, &mut flow, decision, false, &mut out.effects);
        }
        self.flows.insert(id, flow);
        out
    }

    /// A chunk of the request body (`buffered` bytes are held in all).
    pub fn on_request_body(&mut self, id: u32, buffered: usize, end_of_stream: bool) -> Output {
        self.with_flow(id, |gateway, flow, out| {
            out.next = gateway.request_body(id, flow, buffered, end_of_stream, &mut out.effects);
        })
    }

    /// The request's trailers arrived: its body ended without an end-of-stream body callback.
    /// A body the gateway holds (or a request not decided yet) is refused: Envoy would otherwise
    /// send the held body on unread once this callback continues.
    pub fn on_request_trailers(&mut self, id: u32) -> Output {
        self.with_flow(id, |gateway, flow, out| {
            if matches!(flow.phase, Phase::Forwarded | Phase::Answered) {
                return;
            }
            let error = crate::error::GatewayError::InvalidRequestBody(
                "request trailers are not accepted on a request whose body the gateway reads"
                    .into(),
            );
            out.next = gateway.finish(
                id,
                flow,
                Decision::refused(error, None),
                true,
                &mut out.effects,
            );
        })
    }

    pub fn on_response_headers(&mut self, id: u32, end_of_stream: bool) -> Output {
        self.with_flow(id, |gateway, flow, out| {
            gateway.response_headers(id, flow, end_of_stream, &mut out.effects);
        })
    }

    pub fn on_response_body(&mut self, id: u32, size: usize, end_of_stream: bool) -> Output {
        self.with_flow(id, |gateway, flow, out| {
            out.next = gateway.response_body(id, flow, size, end_of_stream, &mut out.effects);
        })
    }

    /// The request ended (completed or reset): its usage is charged, its audit line written,
    /// and nothing acts on it again.
    pub fn on_done(&mut self, id: u32) {
        self.waiting.retain(|w| *w != id);
        self.due_fetches.retain(|d| *d != id);
        self.due_mesh.retain(|d| *d != id);
        self.grpc_calls
            .retain(|_, (purpose, from)| purpose.request() != id && *from != Some(id));
        // A charge made now is dispatched from this request's own context.
        self.running = Some(id);
        let mut abandoned = Vec::new();
        self.calls.retain(|_, (call, from)| {
            let keep = call.request() != Some(id) && *from != Some(id);
            if let (false, Call::Introspection { token }) = (keep, call) {
                abandoned.push(*token);
            }
            keep
        });
        for token in abandoned {
            self.introspection_abandoned(&token);
        }
        if let Some(mut flow) = self.flows.remove(&id) {
            self.settle_usage(&mut flow, None);
            self.record_model_metrics(&flow);
            self.emit_audit(&mut flow);
        }
    }

    /// A dispatched call answered (or failed): whatever it was for goes on. `receiver`: the
    /// request whose context it came back to (the one it was dispatched from), `None` for the
    /// worker's own.
    pub fn on_call_response(
        &mut self,
        token: u32,
        body_size: usize,
        receiver: Option<u32>,
    ) -> Output {
        self.running = receiver;
        let mut out = Output::new(Next::Continue);
        let Some((call, _)) = self.calls.remove(&token) else {
            return out;
        };
        match call {
            Call::Jwks { provider } => {
                let response = self
                    .host
                    .call_response(body_size, crate::keys::MAX_JWKS_BYTES);
                self.jwks_fetched(provider, &response);
                // Every request of this worker that waited for these keys.
                self.resolve_waiting(&mut out.effects);
            }
            Call::Discovery => {
                let response = self
                    .host
                    .call_response(body_size, crate::outgoing::MAX_IDP_ANSWER_BYTES);
                self.discovery_fetched(&response);
            }
            Call::TokenExchange { request } => {
                let response = self
                    .host
                    .call_response(body_size, crate::outgoing::MAX_IDP_ANSWER_BYTES);
                self.with_existing_flow(request, |gateway, flow| {
                    gateway.token_exchanged(request, flow, &response, &mut out.effects);
                });
            }
            Call::Introspection { token } => {
                let response = self
                    .host
                    .call_response(body_size, crate::outgoing::MAX_IDP_ANSWER_BYTES);
                self.introspected(&token, &response, &mut out.effects);
            }
            Call::PresetLogin { request } => {
                let response = self
                    .host
                    .call_response(body_size, crate::outgoing::MAX_IDP_ANSWER_BYTES);
                self.with_existing_flow(request, |gateway, flow| {
                    gateway.preset_answered(request, flow, &response, &mut out.effects);
                });
            }
            Call::ModelServer { request } => {
                let response = self
                    .host
                    .call_response(body_size, model_server::MAX_FETCHED_BYTES);
                self.with_existing_flow(request, |gateway, flow| {
                    gateway.model_server_answered(request, flow, &response, &mut out.effects);
                });
            }
        }
        out
    }

    /// The periodic work: adopt what other workers fetched, start scheduled fetches, and decide
    /// the waiting requests whose keys arrived or whose wait ended.
    pub fn on_tick(&mut self) -> Output {
        self.running = None;
        let mut out = Output::new(Next::Continue);
        self.start_scheduled_fetches();
        self.resolve_waiting(&mut out.effects);
        self.dispatch_due_fetches(&mut out.effects);
        self.dispatch_due_mesh_checks(&mut out.effects);
        out
    }

    /// Runs `step` on request `id`'s flow (taken out of the map meanwhile, so the step may use
    /// the rest of the gateway). An unknown request is left alone.
    fn with_flow(
        &mut self,
        id: u32,
        step: impl FnOnce(&mut Self, &mut Flow, &mut Output),
    ) -> Output {
        self.running = Some(id);
        let mut out = Output::new(Next::Continue);
        if let Some(mut flow) = self.flows.remove(&id) {
            step(self, &mut flow, &mut out);
            self.flows.insert(id, flow);
        }
        out
    }

    fn with_existing_flow(&mut self, id: u32, step: impl FnOnce(&mut Self, &mut Flow)) {
        if let Some(mut flow) = self.flows.remove(&id) {
            step(self, &mut flow);
            self.flows.insert(id, flow);
        }
    }

    fn count(&self, counter: &'static str, by: u64) {
        self.host.count(counter, by);
    }

    fn realm(&self) -> &str {
        &self.config.token.realm
    }

    /// Dispatches `call` for `purpose` from the running context; false when the host refused it.
    fn dispatch(&mut self, call: &crate::outgoing::OutgoingCall, purpose: Call) -> bool {
        match self.host.dispatch(call, self.running) {
            Some(token) => {
                self.calls.insert(token, (purpose, self.running));
                true
            }
            None => false,
        }
    }

    /// Where the gateway's own calls for a translated request go (cluster, `:authority`):
    /// `translate.cluster` and `.authority`, or else as the request itself would be forwarded,
    /// to the cluster its route chose with its own `:authority`. Read in the request's own
    /// callback.
    fn model_server(&self, head: &RequestHead) -> Option<(String, String)> {
        let settings = self.config.translate.as_ref()?;
        let (cluster, authority) = match &settings.cluster {
            Some(cluster) => (cluster.clone(), cluster.as_str()),
            None => (
                self.host.routed_cluster()?,
                head.value(":authority").unwrap_or(""),
            ),
        };
        let authority = settings
            .authority
            .as_deref()
            .unwrap_or(authority)
            .to_string();
        Some((cluster, authority))
    }

    /// `N` random bytes from the host, or `None` without a random source.
    fn random<const N: usize>(&self) -> Option<[u8; N]> {
        let mut bytes = [0u8; N];
        self.host.random(&mut bytes).then_some(bytes)
    }
}
