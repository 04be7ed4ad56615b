//! AI gateway filter: a Proxy-Wasm plugin for Envoy and Istio that puts an identity system in
//! front of self-hosted LLMs.
//!
//! This crate is the host layer only: [`contexts`] forwards each Envoy callback to the core's
//! `Gateway` (crate `gateway-core`, where every decision is made and tested natively) and
//! applies the effects it returns; [`host`] holds every proxy-wasm host call. It exists only on
//! wasm32; elsewhere the crate is empty.

#![cfg_attr(
    not(test),
    deny(
        clippy::unwrap_used,
        clippy::expect_used,
        clippy::panic,
        clippy::todo,
        clippy::unimplemented
    )
)]

#[cfg(all(target_arch = "wasm32", not(test)))]
mod contexts;
#[cfg(all(target_arch = "wasm32", not(test)))]
mod host;
// Host calls that never panic; natively only for its tests.
#[cfg(any(target_arch = "wasm32", test))]
mod raw;

#[cfg(all(target_arch = "wasm32", not(test)))]
proxy_wasm::main! {{
    host::install_log_and_panic_hook();
    proxy_wasm::set_root_context(|root_id| -> Box<dyn proxy_wasm::traits::RootContext> {
        Box::new(contexts::Root::new(root_id))
    });
}}
