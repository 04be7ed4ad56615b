//! The introspection step on one worker: one call for many requests with one token, a waiting
//! request decided by the call's answer, a bounded number of calls in flight, the IdP's
//! failure a 503 that forwards nothing.

use serde_json::json;

use super::super::*;
use super::{effects_on, reply_of, Worker, NOW_MS};
use crate::fake_host::FakeHost;
use crate::outgoing::CallResponse;

const CONFIG: &str = r#"{
    "providers": [{"name": "opaque", "introspection": {"cluster": "idp", "authority": "idp",
        "path": "/introspect", "client_id": "gw", "client_secret": {"inline": "s3cret"}}}],
    "default_rule": {"auth": "required", "scopes": []}
}"#;

fn active(sub: &str) -> CallResponse {
    CallResponse {
        status: Some(200),
        body: Some(
            json!({"active": true, "sub": sub, "token_type": "Bearer", "scope": "chat"})
                .to_string()
                .into_bytes(),
        ),
    }
}

fn forwarded(output: &Output, id: u32) -> bool {
    effects_on(output, id)
        .iter()
        .any(|e| matches!(e, Effect::Forward { .. }))
}

#[test]
fn requests_with_one_new_token_wait_for_one_call_and_go_on_with_its_answer() {
    let mut w = Worker::with_config(CONFIG, FakeHost::new(NOW_MS));
    assert_eq!(w.get(1, "/v1/models", "opaque-1").next, Next::Pause);
    assert_eq!(w.get(2, "/v1/models", "opaque-1").next, Next::Pause);
    let calls = w.host.state.calls_to("/introspect");
    assert_eq!(calls.len(), 1, "one call for both");
    let out = w.answer(calls[0], active("alice"));
    assert!(forwarded(&out, 1) && forwarded(&out, 2), "{out:?}");
    // Cached: the next request goes on at once, no call.
    let out = w.get(3, "/v1/models", "opaque-1");
    assert_eq!(out.next, Next::Continue);
    assert_eq!(w.host.state.calls_to("/introspect").len(), 1);
}

#[test]
fn an_idp_failure_is_a_503_and_nothing_is_forwarded() {
    let mut w = Worker::with_config(CONFIG, FakeHost::new(NOW_MS));
    w.get(1, "/v1/models", "opaque-2");
    let call = w.host.state.calls_to("/introspect")[0];
    let out = w.answer(call, CallResponse::NONE);
    let reply = reply_of(&out, 1);
    assert_eq!(reply.status, 503);
    assert!(reply.headers.iter().any(|(n, _)| n == "retry-after"));
    assert!(!forwarded(&out, 1));
}

#[test]
fn a_flood_of_new_tokens_meets_a_bound_on_calls_in_flight() {
    let mut w = Worker::with_config(CONFIG, FakeHost::new(NOW_MS));
    let mut refused = 0;
    for id in 1..=80u32 {
        let out = w.get(id, "/v1/models", &format!("made-up-{id}"));
        if out.next == Next::Pause && effects_on(&out, id).is_empty() {
            continue;
        }
        assert_eq!(reply_of(&out, id).status, 503);
        refused += 1;
    }
    assert_eq!(w.host.state.calls_to("/introspect").len(), 64);
    assert_eq!(refused, 16);
}
