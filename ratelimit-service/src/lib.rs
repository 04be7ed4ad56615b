//! `ai-gateway-rls`: Envoy's rate-limit service
//! (`envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`, gRPC) as a thin front over
//! [limitador](https://crates.io/crates/limitador) 0.6 with its counters in Redis, so several
//! gateway replicas count one limit together. It is for the tests and benchmarks; limitador
//! does all the counting.
//!
//! # How a request is answered
//!
//! - **Limits come with the request.** A descriptor's limit is its `limit` override
//!   (`requests_per_unit` per `unit`): the gateway's config holds the numbers and sends them
//!   (envoyproxy/ratelimit honours overrides too). A descriptor without an override, or whose
//!   unit is UNKNOWN (or a number Envoy does not define), is answered OK and nothing is
//!   counted. Windows: SECOND 1 s, MINUTE 60 s, HOUR 3600 s, DAY 86400 s, WEEK (7) 604800 s,
//!   MONTH 30 days, YEAR 365 days (envoyproxy/ratelimit's lengths). A window starts at a
//!   counter's first hit (limitador's counters expire; they are not aligned to the clock).
//!   Envoy's `envoy.type.v3.RateLimitUnit` stops at YEAR = 6; 7 is the answer's `Unit.WEEK`.
//! - **Each descriptor is its own limit**, as in envoyproxy/ratelimit. Its first entry is the
//!   limit's condition (`limit` = `per-user`), the other entries its variables (`key` =
//!   `alice`, maybe `model` = `qwen3`): one counter per value of the variables. A limit is
//!   told apart by the request's `domain` (limitador's namespace), its first entry, its other
//!   entries' keys, `requests_per_unit` and the unit: the same first entry with another
//!   number or window is another limit, with its own counters (so a changed number starts
//!   from 0). [`descriptor_limit`] shows the limitador `Limit` and context built for it.
//!   Each limit is added to limitador once (this process remembers which).
//! - **Hits** of a descriptor: its own `hits_addend` when present, else the request's
//!   `hits_addend`, where 0 (unset) counts 1.
//! - **Check only**: a descriptor whose own `hits_addend` is present and 0 is over when one
//!   more hit would go over its limit; nothing is counted for it.
//! - **Order**: every check-only descriptor is evaluated first. If one is over, the answer is
//!   OVER_LIMIT and nothing is counted; the other descriptors' statuses then say what
//!   counting would have answered (read only). Otherwise the counting descriptors are
//!   counted in request order: hits that fit are counted; hits that do not make the
//!   descriptor OVER_LIMIT **and are counted all the same** (a cost already spent, such as
//!   LLM tokens charged after a response, is never lost; envoyproxy/ratelimit counts hits
//!   over the limit too).
//! - **Answer**: `overall_code` OVER_LIMIT when any descriptor is over, else OK; one status
//!   per descriptor, in request order: its code; `current_limit` (the override's number and
//!   unit, named after the first entry's value); `limit_remaining` (from the counter as
//!   loaded, after this call's hits; 0 when over); `duration_until_reset` (the counter's
//!   remaining window, or the whole window for a new counter). A descriptor without a limit
//!   has code OK and nothing else.
//! - **Errors**: Redis unreachable, slow (over 1 s a command) or any other storage error:
//!   gRPC UNAVAILABLE with a message, never OK; the service keeps running and reconnects on a
//!   later call (descriptors counted before the error stay counted). Malformed requests (empty domain, a descriptor without entries or with a key
//!   twice, `hits_addend` over 2^63-1): INVALID_ARGUMENT, and nothing is counted.
//!
//! Counting in Redis is limitador's. Its Redis storage reads a counter, then increments it
//! (two round trips), so this service decides one request at a time: its counts are exact
//! (the tests check ±0 across two Envoys under concurrency); several replicas of it would race
//! on one counter. (envoyproxy/ratelimit increments first and compares after, so its replicas
//! are exact; it is what the compose file and the Istio kit run.)

pub mod cli;
pub mod decider;
pub mod descriptor_limit;
pub mod grpc;
pub mod limiter;
pub mod plan;
pub mod proto;
pub mod units;
