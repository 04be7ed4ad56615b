//! The root context: one per worker. Owns the compiled config and the worker state, ticks to
//! keep remote keys fresh and to finish requests that waited for keys, and receives the
//! answers to the fetches it dispatched.

use std::cell::RefCell;
use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

use super::host;
use super::request::{finish_waiting, GatewayRequest};
use super::translation::{self, MAX_FETCHED_BYTES};
use super::worker::Worker;
use crate::config;
use crate::jwks::fetch::FetchResponse;
use crate::jwks::keys::MAX_JWKS_BYTES;
use crate::pipeline::Translation;

/// How often the worker looks at shared keys and waiting requests.
const TICK: Duration = Duration::from_millis(100);

#[derive(Default)]
pub struct GatewayRoot {
    worker: Option<Rc<RefCell<Worker>>>,
    /// Dispatched fetches: call token -> provider index.
    fetches: HashMap<u32, usize>,
    /// Model lists fetched for requests that waited for keys: call token -> (request, plan).
    model_calls: HashMap<u32, (u32, Translation)>,
    /// The OIDC discovery fetch in flight.
    discovery_call: Option<u32>,
}

impl GatewayRoot {
    /// Dispatches the JWKS fetches the worker claimed (paths resolved by the worker).
    fn dispatch(&mut self, worker: &Rc<RefCell<Worker>>, providers: Vec<usize>) {
        let config = Rc::clone(&worker.borrow().config);
        for provider in providers {
            let Some(remote) = config.providers.get(provider).and_then(|p| p.remote()) else {
                continue;
            };
            let path = worker.borrow().jwks_path(remote).unwrap_or_default();
            self.dispatch_jwks(worker, provider, remote, &path);
        }
    }

    fn dispatch_jwks(
        &mut self,
        worker: &Rc<RefCell<Worker>>,
        provider: usize,
        remote: &crate::jwt::RemoteJwks,
        path: &str,
    ) {
        match host::dispatch_get(remote, path) {
            Some(token) => {
                self.fetches.insert(token, provider);
            }
            None => {
                let failed = FetchResponse {
                    status: None,
                    body: None,
                };
                worker
                    .borrow_mut()
                    .fetch_done(provider, &failed, host::now_ms());
            }
        }
    }

    /// Finishes waiting requests that can be decided, and dispatches fetches they need.
    fn resolve_waiting(&mut self, worker: &Rc<RefCell<Worker>>) {
        let resolved = worker.borrow_mut().resolve_waiting(host::now_ms(), true);
        self.dispatch(worker, resolved.to_fetch);
        let config = Rc::clone(&worker.borrow().config);
        let realm = config.token.realm.clone();
        for (context_id, result) in resolved.decided {
            // Answers the gateway fetches itself come back to the context that asked: here.
            if let Ok(admitted) = &result {
                if let (
                    Some(plan @ (Translation::Models | Translation::Model(_))),
                    Some(settings),
                ) = (&admitted.forwarding.translation, &config.translate)
                {
                    let caller = translation::caller_headers(&admitted.forwarding);
                    let call = translation::dispatch(settings, "GET", "/api/tags", None, &caller);
                    if let Some(token) = call {
                        self.model_calls.insert(token, (context_id, plan.clone()));
                        continue;
                    }
                }
            }
            match &result {
                Ok(_) => worker.borrow().metrics.inc("requests_allowed"),
                Err(error) => worker
                    .borrow()
                    .metrics
                    .inc(crate::observe::refusal_metric(error)),
            }
            if host::set_effective_context(context_id) {
                finish_waiting(&result, &realm);
            }
        }
    }

    /// Answers the login callbacks whose ID-token keys arrived (or whose wait ended).
    fn resolve_parked_logins(&mut self, worker: &Rc<RefCell<Worker>>) {
        let realm = worker.borrow().config.token.realm.clone();
        let decided =
            super::login::resolve_parked(&mut worker.borrow_mut(), host::now_ms(), &realm);
        for (context_id, reply, sub) in decided {
            worker.borrow().metrics.inc(if sub.is_some() {
                "oauth2_logins_succeeded"
            } else {
                "oauth2_logins_failed"
            });
            if host::set_effective_context(context_id) {
                host::send_reply(&reply);
            }
        }
    }
}

impl Context for GatewayRoot {
    fn on_http_call_response(
        &mut self,
        token_id: u32,
        _num_headers: usize,
        body_size: usize,
        _num_trailers: usize,
    ) {
        if self.discovery_call == Some(token_id) {
            self.discovery_call = None;
            if let Some(worker) = self.worker.clone() {
                let response = host::call_response(body_size, MAX_JWKS_BYTES);
                worker.borrow_mut().discovery_done(&response);
            }
            return;
        }
        if let Some((context_id, plan)) = self.model_calls.remove(&token_id) {
            let response = host::call_response(body_size, MAX_FETCHED_BYTES);
            let realm = self
                .worker
                .as_ref()
                .map_or_else(String::new, |w| w.borrow().config.token.realm.clone());
            let reply = translation::models_reply(&plan, &response, &realm);
            if host::set_effective_context(context_id) {
                host::send_reply(&reply);
            }
            return;
        }
        let Some(provider) = self.fetches.remove(&token_id) else {
            return;
        };
        let Some(worker) = self.worker.clone() else {
            return;
        };
        let response = host::call_response(body_size, MAX_JWKS_BYTES);
        worker
            .borrow_mut()
            .fetch_done(provider, &response, host::now_ms());
        self.resolve_waiting(&worker);
    }
}

/// How often Envoy's log level is looked at when nothing else needs the tick.
const LOG_LEVEL_POLL: Duration = Duration::from_secs(1);

/// Logs below Envoy's level for Wasm are not even formatted (the audit line is written per
/// request: `--component-log-level wasm:warning` makes it cost nothing).
fn sync_log_level() {
    if let Ok(level) = proxy_wasm::hostcalls::get_log_level() {
        proxy_wasm::set_log_level(level);
    }
}

impl RootContext for GatewayRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        match config::load(&host::plugin_configuration()) {
            Ok(config) => {
                let worker = Worker::new(Rc::new(config));
                sync_log_level();
                // The tick also follows Envoy's log level (changeable at run time through the
                // admin `/logging` endpoint), so it always runs; faster while keys are fetched.
                host::set_tick_period(if worker.has_remote_keys() {
                    TICK
                } else {
                    LOG_LEVEL_POLL
                });
                log::info!("ai-gateway: configuration loaded");
                self.worker = Some(Rc::new(RefCell::new(worker)));
                true
            }
            Err(error) => {
                // One line naming the field; Envoy then refuses the plugin. A previous config
                // (runtime update) is dropped too: never serve with a config we did not accept.
                log::error!("{error}");
                self.worker = None;
                false
            }
        }
    }

    fn on_tick(&mut self) {
        sync_log_level();
        let Some(worker) = self.worker.clone() else {
            return;
        };
        let work = worker.borrow_mut().tick(host::now_ms());
        let config = Rc::clone(&worker.borrow().config);
        for (provider, path) in work.jwks {
            if let Some(remote) = config.providers.get(provider).and_then(|p| p.remote()) {
                self.dispatch_jwks(&worker, provider, remote, &path);
            }
        }
        if work.discovery {
            let remote = worker.borrow().discovery_fetch();
            match remote.as_ref().and_then(|r| host::dispatch_get(r, &r.path)) {
                Some(token) => self.discovery_call = Some(token),
                None => worker.borrow_mut().discovery_done(&FetchResponse {
                    status: None,
                    body: None,
                }),
            }
        }
        self.resolve_waiting(&worker);
        self.resolve_parked_logins(&worker);
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Returning None would panic in the SDK; an unconfigured plugin refuses every request.
        Some(Box::new(GatewayRequest::new(
            context_id,
            self.worker.clone(),
        )))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
