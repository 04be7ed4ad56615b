//! The thin proxy-wasm layer: gathers inputs from the host, calls the pure modules, applies their
//! outcome. Compiled for wasm32 only.

mod host;
mod login;
mod metrics;
mod request;
mod root;
mod translation;
mod worker;

use proxy_wasm::types::LogLevel;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    // After set_log_level, which installs the SDK's own hook (that one unwraps the log call).
    std::panic::set_hook(Box::new(|info| {
        let _ = proxy_wasm::hostcalls::log(
            LogLevel::Critical,
            &format!("ai-gateway: panic, this worker's VM is now unusable: {info}"),
        );
    }));
    proxy_wasm::set_root_context(|_| -> Box<dyn proxy_wasm::traits::RootContext> {
        Box::new(root::GatewayRoot::default())
    });
}}
