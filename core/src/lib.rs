//! The AI gateway's core: every decision the Proxy-Wasm filter makes, with no proxy-wasm
//! dependency. The filter crate (`src/`) only forwards Envoy's callbacks to [`gateway::Gateway`]
//! and applies the effects it returns; the host's services (shared data, clock, randomness,
//! dispatched calls, metrics) are behind [`host::Host`], so all of this is unit-tested natively
//! (and compiled to wasm32 for the wasm unit-test run).

// A panic aborts the VM and fails every request on that worker: no unwrap/expect/panic outside
// tests.
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

pub mod auth;
pub mod authz;
pub mod config;
pub mod cors;
pub mod emergency;
pub mod error;
#[cfg(test)]
pub mod fake_host;
pub mod gateway;
pub mod host;
pub mod http;
pub mod introspect;
pub mod json;
pub mod jwks;
pub mod jwt;
pub mod keys;
pub mod model_metrics;
pub mod models;
pub mod oauth2;
pub mod observe;
pub mod outgoing;
pub mod pipeline;
pub mod protect;
pub mod ratelimit;
pub mod roles;
pub mod store;
pub mod translate;
