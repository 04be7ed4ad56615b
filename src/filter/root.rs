//! The root context: one per worker; owns the compiled config and hands it to each request.

use std::rc::Rc;

use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::ContextType;

use super::host;
use super::request::GatewayRequest;
use crate::config::{self, GatewayConfig};

#[derive(Default)]
pub struct GatewayRoot {
    config: Option<Rc<GatewayConfig>>,
}

impl Context for GatewayRoot {}

impl RootContext for GatewayRoot {
    fn on_configure(&mut self, _plugin_configuration_size: usize) -> bool {
        match config::load(&host::plugin_configuration()) {
            Ok(config) => {
                log::info!("ai-gateway: configuration loaded");
                self.config = Some(Rc::new(config));
                true
            }
            Err(error) => {
                // One line naming the field; Envoy then refuses the plugin. A previous config
                // (runtime update) is dropped too: never serve with a config we did not accept.
                log::error!("{error}");
                self.config = None;
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        // Returning None would panic in the SDK; an unconfigured plugin refuses every request.
        Some(Box::new(GatewayRequest::new(self.config.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
