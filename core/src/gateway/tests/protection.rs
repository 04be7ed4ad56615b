//! The data-protection step in the flow: a denied prompt is answered and never forwarded, a
//! masked one replaces the body, an answer is masked chunk by chunk, one that cannot be read is
//! withheld, and the counts reach the audit record and the named counters.

use serde_json::{json, Value};

use super::super::*;
use super::{effects_on, reply_of};
use crate::fake_host::FakeHost;

const CONFIG: &str = r#"{
    "default_rule": {"auth": "none"},
    "data_protection": {
        "mask": [{"type": "email"}, {"type": "credit_card"},
                 {"name": "employee-id", "regex": "EMP-[0-9]{6}"}],
        "responses": true,
        "deny": [{"name": "internal", "regex": "(?i)internal use only"}]
    }
}"#;

fn worker() -> (Gateway, FakeHost) {
    let host = FakeHost::new(super::NOW_MS);
    let config = crate::config::load(CONFIG.as_bytes()).unwrap();
    (
        Gateway::new(std::rc::Rc::new(config), Box::new(host.clone())),
        host,
    )
}

/// Sends request `id` with `body` (held whole); the body callback's output.
fn post(gateway: &mut Gateway, host: &FakeHost, id: u32, body: &Value) -> Output {
    let headers = vec![
        (":method".to_string(), "POST".to_string()),
        (":path".to_string(), "/api/generate".to_string()),
        (
            "content-length".to_string(),
            body.to_string().len().to_string(),
        ),
        ("accept-encoding".to_string(), "gzip".to_string()),
    ];
    let out = gateway.on_request_headers(id, headers, false);
    let forward = effects_on(&out, id);
    let Some(Effect::Forward { remove, .. }) = forward.first() else {
        panic!("forwarded: {forward:?}");
    };
    // The body may change length, and the answer must come uncompressed to be read.
    assert!(remove.contains(&"content-length".to_string()), "{remove:?}");
    assert!(
        remove.contains(&"accept-encoding".to_string()),
        "{remove:?}"
    );
    let bytes = body.to_string().into_bytes();
    *host.state.request_body.borrow_mut() = bytes.clone();
    assert_eq!(gateway.on_request_body(id, 3, false).next, Next::Pause);
    gateway.on_request_body(id, bytes.len(), true)
}

#[test]
fn a_denied_prompt_is_answered_and_never_forwarded() {
    let (mut gateway, host) = worker();
    let out = post(
        &mut gateway,
        &host,
        1,
        &json!({"prompt": "For INTERNAL use only: the plan"}),
    );
    let reply = reply_of(&out, 1);
    assert_eq!(reply.status, 400);
    let body: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(body["error"]["code"], "CONTENT_BLOCKED");
    assert_eq!(
        body["error"]["details"],
        "the prompt matched the deny pattern `internal`"
    );
    assert!(!reply.body.contains("plan"));
    assert!(effects_on(&out, 1)
        .iter()
        .all(|e| !matches!(e, Effect::ReplaceRequestBody { .. })));
    assert_eq!(host.state.counter("requests_content_blocked"), 1);
}

#[test]
fn a_prompt_is_masked_before_it_goes_on() {
    let (mut gateway, host) = worker();
    let out = post(
        &mut gateway,
        &host,
        1,
        &json!({"model": "m", "prompt": "mail bob@example.com, EMP-123456"}),
    );
    assert_eq!(out.next, Next::Continue);
    let replaced = effects_on(&out, 1)
        .into_iter()
        .find_map(|e| match e {
            Effect::ReplaceRequestBody { body, .. } => Some(body),
            _ => None,
        })
        .expect("the body is replaced");
    let sent: Value = serde_json::from_slice(&replaced).unwrap();
    assert_eq!(sent["prompt"], "mail [FILTERED], [FILTERED]");
    assert_eq!(sent["model"], "m");
    assert_eq!(host.state.named_counter("data_protection.prompt.email"), 1);
    assert_eq!(
        host.state
            .named_counter("data_protection.prompt.employee-id"),
        1
    );
    // Nothing to mask: nothing replaced.
    let out = post(&mut gateway, &host, 2, &json!({"prompt": "hello"}));
    assert!(effects_on(&out, 2)
        .iter()
        .all(|e| !matches!(e, Effect::ReplaceRequestBody { .. })));
}

/// Response headers of request `id` with `headers`; then `chunks` of its body. What the client
/// gets, and every effect.
fn answer(
    gateway: &mut Gateway,
    host: &FakeHost,
    id: u32,
    headers: &[(&str, &str)],
    chunks: &[&[u8]],
) -> (Vec<u8>, Vec<Effect>) {
    *host.state.response_headers.borrow_mut() = headers
        .iter()
        .map(|(n, v)| (n.to_string(), v.to_string()))
        .collect();
    let mut effects = effects_on(&gateway.on_response_headers(id, false), id);
    let mut sent = Vec::new();
    for (i, chunk) in chunks.iter().enumerate() {
        *host.state.response_body.borrow_mut() = chunk.to_vec();
        let out = gateway.on_response_body(id, chunk.len(), i + 1 == chunks.len());
        for effect in effects_on(&out, id) {
            if let Effect::ReplaceResponseBody { body, .. } = &effect {
                sent.extend_from_slice(body);
            }
            effects.push(effect);
        }
    }
    (sent, effects)
}

#[test]
fn a_streamed_answer_is_masked_across_chunks_and_counted_in_the_audit() {
    let (mut gateway, host) = worker();
    post(&mut gateway, &host, 1, &json!({"prompt": "hi"}));
    let lines = b"{\"response\":\"card 4111 11\",\"done\":false}\n{\"response\":\"11 1111 1111 ok\",\"done\":false}\n{\"response\":\"\",\"done\":true}\n";
    let (at1, at2) = (30, 61);
    let (sent, effects) = answer(
        &mut gateway,
        &host,
        1,
        &[(":status", "200"), ("content-type", "application/x-ndjson")],
        &[&lines[..at1], &lines[at1..at2], &lines[at2..]],
    );
    assert!(effects.contains(&Effect::RemoveResponseHeader("content-length")));
    let text: String = sent
        .split(|&b| b == b'\n')
        .filter(|l| !l.is_empty())
        .map(|l| {
            serde_json::from_slice::<Value>(l).unwrap()["response"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(text, "card [FILTERED] ok");
    let audit = effects
        .iter()
        .find_map(|e| match e {
            Effect::PublishAudit(record) => Some(record.clone()),
            _ => None,
        })
        .expect("an audit record");
    let audit: Value = serde_json::from_str(&audit).unwrap();
    assert_eq!(audit["masked"]["answer"]["credit_card"], 1, "{audit}");
    assert_eq!(
        host.state
            .named_counter("data_protection.answer.credit_card"),
        1
    );
    assert_eq!(host.state.counter("data_protection_masked_responses"), 1);
}

#[test]
fn a_compressed_answer_is_withheld_never_passed_unread() {
    let (mut gateway, host) = worker();
    post(&mut gateway, &host, 1, &json!({"prompt": "hi"}));
    let (sent, effects) = answer(
        &mut gateway,
        &host,
        1,
        &[
            (":status", "200"),
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
        ],
        &[b"\x1f\x8b\x08gzipped bytes", b"more"],
    );
    assert!(effects.contains(&Effect::SetResponseHeader(":status", "502".into())));
    let body: Value = serde_json::from_slice(&sent).unwrap();
    assert_eq!(body["error"]["code"], "UPSTREAM_ERROR");
    assert!(!String::from_utf8_lossy(&sent).contains("gzipped bytes"));
}

#[test]
fn binary_answers_pass_as_they_are() {
    let (mut gateway, host) = worker();
    post(&mut gateway, &host, 1, &json!({"prompt": "hi"}));
    let (sent, effects) = answer(
        &mut gateway,
        &host,
        1,
        &[(":status", "200"), ("content-type", "image/png")],
        &[b"\x89PNG 4111111111111111"],
    );
    assert_eq!(sent, b"\x89PNG 4111111111111111");
    assert!(!effects.contains(&Effect::RemoveResponseHeader("content-length")));
}
