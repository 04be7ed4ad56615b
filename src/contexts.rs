//! The proxy-wasm contexts: one root per worker (configuration, tick, its own calls' answers)
//! and one per request. Each callback forwards to the worker's core `Gateway` and applies what
//! it returns, after the core's borrow has ended (applying can re-enter the VM).

use std::cell::RefCell;
use std::rc::Rc;

use gateway_core::config;
use gateway_core::gateway::{Gateway, Output};
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, ContextType};

use crate::host::{self, WasmHost};

type Shared = Rc<RefCell<Gateway>>;

pub struct Root {
    id: u32,
    gateway: Option<Shared>,
}

impl Root {
    pub fn new(id: u32) -> Self {
        Self { id, gateway: None }
    }
}

impl Context for Root {
    fn on_http_call_response(&mut self, token: u32, _headers: usize, body_size: usize, _: usize) {
        let _entered = host::enter(self.id);
        if let Some(gateway) = &self.gateway {
            let output = gateway
                .borrow_mut()
                .on_call_response(token, body_size, None);
            host::apply(self.id, output);
        }
    }

    fn on_grpc_call_response(&mut self, token: u32, status_code: u32, response_size: usize) {
        let _entered = host::enter(self.id);
        if let Some(gateway) = &self.gateway {
            let output =
                gateway
                    .borrow_mut()
                    .on_grpc_response(token, status_code, response_size, None);
            host::apply(self.id, output);
        }
    }
}

impl RootContext for Root {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        let _entered = host::enter(self.id);
        match config::load(&host::plugin_configuration()) {
            Ok(config) => {
                host::sync_log_level();
                let gateway = Gateway::new(Rc::new(config), Box::new(WasmHost::new()));
                // The tick also follows Envoy's log level (changeable at run time through the
                // admin `/logging` endpoint), so it always runs; faster while keys are fetched.
                host::set_tick_period(gateway.tick_period_ms());
                log::info!("ai-gateway: configuration loaded");
                self.gateway = Some(Rc::new(RefCell::new(gateway)));
                true
            }
            Err(error) => {
                // One line naming the field; Envoy then refuses the plugin. A previous config
                // (runtime update) is dropped too: never serve with a config we did not accept.
                log::error!("{error}");
                self.gateway = None;
                false
            }
        }
    }

    fn on_tick(&mut self) {
        let _entered = host::enter(self.id);
        host::sync_log_level();
        if let Some(gateway) = &self.gateway {
            let output = gateway.borrow_mut().on_tick();
            host::apply(self.id, output);
        }
    }

    fn create_http_context(&self, id: u32) -> Option<Box<dyn HttpContext>> {
        // Returning None would panic in the SDK; an unconfigured plugin refuses every request.
        Some(Box::new(Request {
            id,
            gateway: self.gateway.clone(),
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Request {
    id: u32,
    gateway: Option<Shared>,
}

impl Request {
    /// Runs one core entry point for this request and applies its output.
    fn forward(&self, step: impl FnOnce(&mut Gateway) -> Output) -> Action {
        let _entered = host::enter(self.id);
        let Some(gateway) = &self.gateway else {
            return Action::Continue;
        };
        let output = step(&mut gateway.borrow_mut());
        host::apply(self.id, output)
    }
}

impl Context for Request {
    fn on_http_call_response(&mut self, token: u32, _headers: usize, body_size: usize, _: usize) {
        let id = self.id;
        self.forward(|gateway| gateway.on_call_response(token, body_size, Some(id)));
    }

    fn on_grpc_call_response(&mut self, token: u32, status_code: u32, response_size: usize) {
        let id = self.id;
        self.forward(|gateway| {
            gateway.on_grpc_response(token, status_code, response_size, Some(id))
        });
    }

    fn on_done(&mut self) -> bool {
        if let Some(gateway) = &self.gateway {
            let _entered = host::enter(self.id);
            gateway.borrow_mut().on_done(self.id);
        }
        true
    }
}

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let _entered = host::enter(self.id);
        if self.gateway.is_none() {
            host::refuse_unedited("the gateway is not configured");
            return Action::Pause;
        }
        let Some(headers) = host::request_headers() else {
            host::refuse_unedited("request headers unavailable");
            return Action::Pause;
        };
        let id = self.id;
        self.forward(|gateway| gateway.on_request_headers(id, headers, end_of_stream))
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let id = self.id;
        self.forward(|gateway| gateway.on_request_body(id, body_size, end_of_stream))
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        let id = self.id;
        self.forward(|gateway| gateway.on_request_trailers(id))
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let id = self.id;
        self.forward(|gateway| gateway.on_response_headers(id, end_of_stream))
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let id = self.id;
        self.forward(|gateway| gateway.on_response_body(id, body_size, end_of_stream))
    }
}
