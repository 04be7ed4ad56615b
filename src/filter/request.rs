//! One HTTP request: gathers the head, asks the pipeline, applies the outcome.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use super::host;
use crate::config::GatewayConfig;
use crate::error::GatewayError;
use crate::http::RequestHead;
use crate::pipeline::{self, BodyOutcome, HeadersOutcome};

/// Realm used before any configuration is known.
const FALLBACK_REALM: &str = "ai-gateway";

pub struct GatewayRequest {
    config: Option<Rc<GatewayConfig>>,
    /// Set while a body of unknown length is held: the limit it must stay under.
    held_body_limit: Option<u64>,
}

impl GatewayRequest {
    pub fn new(config: Option<Rc<GatewayConfig>>) -> Self {
        Self {
            config,
            held_body_limit: None,
        }
    }

    fn refuse(&self, error: &GatewayError) -> Action {
        let realm = self
            .config
            .as_ref()
            .map_or(FALLBACK_REALM, |c| c.token.realm.as_str());
        host::send_reply(&error.to_reply(realm));
        Action::Pause
    }
}

impl Context for GatewayRequest {}

impl HttpContext for GatewayRequest {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let Some(config) = self.config.clone() else {
            return self.refuse(&GatewayError::Internal("the gateway is not configured"));
        };
        let Some(headers) = host::request_headers() else {
            return self.refuse(&GatewayError::Internal("request headers unavailable"));
        };
        let head = RequestHead::new(headers, end_of_stream);
        match pipeline::on_request_headers(&config, &head) {
            HeadersOutcome::Reply(error) => self.refuse(&error),
            HeadersOutcome::Forward(forwarding) => {
                let removed = forwarding
                    .remove_headers
                    .iter()
                    .all(|name| host::remove_request_header(name));
                let set = forwarding
                    .set_headers
                    .iter()
                    .all(|(name, value)| host::set_request_header(name, value));
                if !(removed && set) {
                    return self.refuse(&GatewayError::Internal("could not edit request headers"));
                }
                // Headers go on either way: the host turns a paused header callback into "stop
                // all", and the body would never reach us. A held body is buffered here instead;
                // Envoy's buffer filter placed after this one keeps the router from seeing even
                // the headers before the body is complete.
                self.held_body_limit = forwarding.hold_body_up_to;
                Action::Continue
            }
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
                Action::Continue
            }
            BodyOutcome::Reply(error) => {
                self.held_body_limit = None;
                self.refuse(&error)
            }
        }
    }
}
