//! AI gateway filter: a Proxy-Wasm plugin for Envoy and Istio that puts an identity system in
//! front of self-hosted LLMs.
//!
//! Everything except [`filter`] is pure logic with no host calls, so it is unit-tested natively
//! (`cargo test`) and compiled to wasm32 (the wasm unit-test run). `filter` is the thin layer that
//! talks to the proxy-wasm host and exists only on wasm32.

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
pub mod error;
pub mod http;
pub mod json;
pub mod jwks;
pub mod jwt;
pub mod oauth2;
pub mod observe;
pub mod pipeline;
pub mod ratelimit;
pub mod store;
pub mod translate;

// Not in test builds: it imports the proxy-wasm host functions, which only Envoy provides. It is
// tested in a real Envoy by the harness instead.
#[cfg(all(target_arch = "wasm32", not(test)))]
mod filter;
