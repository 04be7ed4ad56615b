//! The mesh-limits step on one worker: an allowed request waits for the rate-limit service's
//! check and goes on, is refused with the contract's 429, or meets `failure_mode`; a fetched
//! answer is sent only once its tokens are charged.

use serde_json::json;

use super::super::*;
use super::{effects_on, jwks, models_post, reply_of, Key, Worker, CONFIG, NOW_MS};
use crate::fake_host::FakeHost;
use crate::outgoing::CallResponse;
use crate::ratelimit::mesh::proto::{self, Descriptor};

const LIMITS: &str = r#"[
    {"name": "per-user", "key": "sub", "requests": 10, "window_s": 60, "scope": "mesh"},
    {"name": "tokens", "key": "sub", "tokens": 1000, "window_s": 3600, "scope": "mesh"}]"#;

fn worker(key: &Key, failure_mode: &str) -> Worker {
    let config = CONFIG.replace(
        r#""translate": {"to": "ollama", "cluster": "ollama", "authority": "ollama"},"#,
        &format!(
            r#""translate": {{"to": "ollama", "cluster": "ollama", "authority": "ollama"}},
               "rate_limits": {LIMITS},
               "rate_limit_service": {{"cluster": "rls", "domain": "gw", "timeout_ms": 200,
                                       "failure_mode": "{failure_mode}"}},"#
        ),
    );
    assert_ne!(config, CONFIG);
    let mut worker = Worker::with_config(&config, FakeHost::new(NOW_MS));
    worker.gateway.on_tick();
    worker.answer_jwks(jwks(&[key]));
    worker
}

/// The gRPC calls dispatched so far: token, message, context.
fn grpc_calls(w: &Worker) -> Vec<(u32, Vec<u8>, Option<u32>)> {
    w.host
        .state
        .grpc_calls
        .borrow()
        .iter()
        .map(|(token, call, from)| {
            assert_eq!(
                (call.cluster.as_str(), call.service, call.method),
                ("rls", proto::SERVICE, proto::METHOD)
            );
            assert_eq!(call.timeout_ms, 200);
            (*token, call.message.clone(), *from)
        })
        .collect()
}

fn grpc_answer(w: &mut Worker, token: u32, status: u32, message: Option<Vec<u8>>) -> Output {
    let from = grpc_calls(w)
        .into_iter()
        .find(|(t, _, _)| *t == token)
        .and_then(|(_, _, from)| from);
    *w.host.state.grpc_answer.borrow_mut() = message;
    w.gateway.on_grpc_response(token, status, 0, from)
}

/// `RateLimitResponse` with one status per descriptor: (code, limit, remaining, reset_s).
fn response(overall: u8, statuses: &[(u8, u8, u8, u8)]) -> Vec<u8> {
    let mut out = vec![0x08, overall];
    for &(code, limit, remaining, reset) in statuses {
        out.extend([0x12, 12, 0x08, code, 0x12, 2, 0x08, limit, 0x18, remaining]);
        out.extend([0x22, 2, 0x08, reset]);
    }
    out
}

fn descriptor(limit: &str, who: &str, per_unit: u64, unit: proto::Unit, hits: u64) -> Descriptor {
    Descriptor {
        entries: vec![
            ("limit".into(), limit.into()),
            ("key".into(), format!("sub:0:{who}")),
        ],
        limit: Some((per_unit, unit)),
        hits_addend: Some(hits),
    }
}

#[test]
fn a_request_waits_for_the_check_and_goes_on_with_the_services_headers() {
    let key = Key::new("k1");
    let mut w = worker(&key, "deny");
    let out = w.get(1, "/v1/anything", &key.token("alice", "chat"));
    assert_eq!(out.next, Next::Pause);
    assert!(effects_on(&out, 1).is_empty(), "nothing goes on yet");
    let calls = grpc_calls(&w);
    let [(token, message, from)] = calls.as_slice() else {
        panic!("{calls:?}")
    };
    assert_eq!(*from, Some(1), "dispatched from the request's own context");
    let expected = proto::encode_request(
        "gw",
        &[
            descriptor("per-user", "alice", 10, proto::Unit::Minute, 1),
            descriptor("tokens", "alice", 1000, proto::Unit::Hour, 0),
        ],
        1,
    );
    assert_eq!(*message, expected);
    let out = grpc_answer(
        &mut w,
        *token,
        0,
        Some(response(1, &[(1, 10, 6, 40), (1, 100, 90, 99)])),
    );
    let effects = effects_on(&out, 1);
    assert!(
        matches!(effects.as_slice(), [Effect::Forward { resume: true, .. }]),
        "{effects:?}"
    );
    let headers = w.gateway.on_response_headers(1, false);
    let added: Vec<_> = effects_on(&headers, 1)
        .into_iter()
        .filter_map(|e| match e {
            Effect::AddResponseHeader(name, value) => Some((name, value)),
            _ => None,
        })
        .collect();
    assert!(
        added.contains(&("x-ratelimit-remaining".into(), "6".into())),
        "{added:?}"
    );
    assert_eq!(w.host.state.counter("rate_limit_service_calls"), 1);
}

#[test]
fn over_the_limit_is_the_contracts_429_with_retry_after_and_nothing_goes_on() {
    let key = Key::new("k1");
    let mut w = worker(&key, "deny");
    w.get(1, "/v1/anything", &key.token("alice", "chat"));
    let token = grpc_calls(&w)[0].0;
    let out = grpc_answer(
        &mut w,
        token,
        0,
        Some(response(2, &[(2, 10, 0, 17), (1, 100, 9, 99)])),
    );
    let reply = reply_of(&out, 1);
    assert_eq!(reply.status, 429);
    let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(body["error"]["code"], "RATE_LIMITED");
    assert!(reply.headers.contains(&("retry-after".into(), "17".into())));
    assert!(reply
        .headers
        .contains(&("x-ratelimit-limit".into(), "10".into())));
    assert!(!effects_on(&out, 1)
        .iter()
        .any(|e| matches!(e, Effect::Forward { .. })));
    assert_eq!(w.audit(1)["sub"], "alice");
}

#[test]
fn no_answer_is_a_503_by_default_and_a_counted_pass_with_failure_mode_allow() {
    let key = Key::new("k1");
    for (failure_mode, expected) in [("deny", 503), ("allow", 0)] {
        let mut w = worker(&key, failure_mode);
        for (id, (status, message)) in [
            (14, None),                    // UNAVAILABLE
            (4, None),                     // DEADLINE_EXCEEDED
            (0, Some(b"<html>".to_vec())), // garbage
            (0, Some(Vec::new())),         // no code
        ]
        .into_iter()
        .enumerate()
        {
            let id = id as u32 + 1;
            w.get(id, "/v1/anything", &key.token("alice", "chat"));
            let token = grpc_calls(&w).last().unwrap().0;
            let out = grpc_answer(&mut w, token, status, message);
            let effects = effects_on(&out, id);
            if expected == 503 {
                let reply = reply_of(&out, id);
                assert_eq!(reply.status, 503);
                assert!(reply.body.contains("RATE_LIMIT_SERVICE_UNAVAILABLE"));
                assert!(reply.headers.iter().any(|(n, _)| n == "retry-after"));
            } else {
                assert!(
                    matches!(effects.as_slice(), [Effect::Forward { resume: true, .. }]),
                    "{effects:?}"
                );
            }
        }
        assert_eq!(w.host.state.counter("rate_limit_service_failures"), 4);
        let failed_open = if failure_mode == "allow" { 4 } else { 0 };
        assert_eq!(
            w.host.state.counter("rate_limit_service_failed_open"),
            failed_open
        );
    }
    // A call that cannot even be dispatched: the same.
    let mut w = worker(&key, "deny");
    w.host.state.refuse_dispatch.set(true);
    let out = w.get(9, "/v1/anything", &key.token("alice", "chat"));
    assert_eq!(reply_of(&out, 9).status, 503);
}

#[test]
fn a_fetched_answer_is_sent_once_its_tokens_are_charged() {
    let key = Key::new("k1");
    let mut w = worker(&key, "deny");
    let bob = key.token("bob", "chat");
    let body = json!({"model": "qwen3", "stream": false,
                      "messages": [{"role": "user", "content": "hi"}]})
    .to_string();
    let (head, _) = models_post(&mut w, 1, "/v1/chat/completions", &bob, &body);
    assert_eq!(head.next, Next::Pause);
    let check = grpc_calls(&w)[0].0;
    grpc_answer(
        &mut w,
        check,
        0,
        Some(response(1, &[(1, 10, 9, 60), (1, 100, 99, 99)])),
    );
    // Resumed, the body callback sees the whole body.
    let out = w.gateway.on_request_body(1, body.len(), true);
    assert_eq!(out.next, Next::Pause, "fetched by the gateway");
    let chat_call = w.host.state.calls_to("/api/chat")[0];
    let answer = json!({"model": "qwen3", "done": true,
                        "message": {"role": "assistant", "content": "ok"},
                        "prompt_eval_count": 120, "eval_count": 80});
    let out = w.answer(
        chat_call,
        CallResponse {
            status: Some(200),
            body: Some(answer.to_string().into_bytes()),
        },
    );
    assert!(
        effects_on(&out, 1).is_empty(),
        "held for the charge: {out:?}"
    );
    let calls = grpc_calls(&w);
    let (charge, message, _) = calls.last().unwrap();
    let mut budget = descriptor("tokens", "bob", 1000, proto::Unit::Hour, 0);
    budget.hits_addend = Some(200);
    assert_eq!(*message, proto::encode_request("gw", &[budget], 200));
    let out = grpc_answer(&mut w, *charge, 0, Some(response(1, &[(1, 100, 80, 99)])));
    assert_eq!(reply_of(&out, 1).status, 200);
}

#[test]
fn a_passed_through_answers_end_waits_for_its_charge_then_resumes() {
    let key = Key::new("k1");
    let mut w = worker(&key, "deny");
    w.get(1, "/v1/anything", &key.token("carol", "chat"));
    let check = grpc_calls(&w)[0].0;
    grpc_answer(
        &mut w,
        check,
        0,
        Some(response(1, &[(1, 10, 9, 60), (1, 100, 99, 99)])),
    );
    w.gateway.on_response_headers(1, false);
    *w.host.state.response_body.borrow_mut() =
        br#"{"usage": {"prompt_tokens": 3, "completion_tokens": 4}}"#.to_vec();
    let size = w.host.state.response_body.borrow().len();
    let out = w.gateway.on_response_body(1, size, true);
    assert_eq!(out.next, Next::Pause, "the end waits");
    let calls = grpc_calls(&w);
    assert_eq!(calls.len(), 2);
    let out = grpc_answer(
        &mut w,
        calls[1].0,
        0,
        Some(response(1, &[(1, 100, 93, 99)])),
    );
    assert_eq!(effects_on(&out, 1), vec![Effect::ResumeResponse]);
    // Failing to charge still lets the answer end (logged, counted).
    w.get(2, "/v1/anything", &key.token("carol", "chat"));
    let check = grpc_calls(&w)[2].0;
    grpc_answer(
        &mut w,
        check,
        0,
        Some(response(1, &[(1, 10, 8, 60), (1, 100, 93, 99)])),
    );
    w.gateway.on_response_headers(2, false);
    let out = w.gateway.on_response_body(2, size, true);
    assert_eq!(out.next, Next::Pause);
    let charge = grpc_calls(&w)[3].0;
    let out = grpc_answer(&mut w, charge, 14, None);
    assert_eq!(effects_on(&out, 2), vec![Effect::ResumeResponse]);
    assert_eq!(w.host.state.counter("rate_limit_service_failures"), 1);
}

#[test]
fn a_request_ending_while_checked_is_forgotten() {
    let key = Key::new("k1");
    let mut w = worker(&key, "deny");
    w.get(1, "/v1/anything", &key.token("dave", "chat"));
    let token = grpc_calls(&w)[0].0;
    w.gateway.on_done(1);
    let out = grpc_answer(&mut w, token, 0, Some(response(1, &[])));
    assert!(out.effects.is_empty());
}
