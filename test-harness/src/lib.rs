//! Test harness: runs the built `.wasm` inside a real Envoy, next to a recording upstream and an
//! IdP stand-in (JWKS), all on loopback with ephemeral ports, and cleans up by pid.
//!
//! A typical test:
//! ```no_run
//! use test_harness::{Envoy, Request, Upstream};
//! let upstream = Upstream::start();
//! let envoy = Envoy::builder(r#"{"default_rule": {"auth": "none"}}"#)
//!     .upstream(upstream.addr())
//!     .start()
//!     .expect("envoy starts");
//! let response = envoy.send(Request::get("/hello"));
//! assert_eq!(response.status, 200);
//! assert_eq!(upstream.requests().len(), 1);
//! ```

pub mod bootstrap;
pub mod contract;
pub mod demo;
pub mod envoy;
pub mod faulty;
pub mod http;
pub mod idp;
pub mod oidc;
pub mod ollama;
pub mod opaque;
pub mod openai_sdk;
pub mod paths;
pub mod presets;
pub mod process;
pub mod rate_limit_service;
pub mod redis;
pub mod tokens;
pub mod upstream;
pub mod xds;

pub use envoy::{Envoy, EnvoyBuilder, EnvoyExit};
pub use http::{Request, Response};
pub use upstream::{Recorded, Reply, Upstream};
