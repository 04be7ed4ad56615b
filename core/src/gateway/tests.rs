//! The request flow with a fake host: decisions reached in the header callback, on a tick, on
//! the request's own fetch answer and on another request's must be the same; waits are bounded
//! whatever the IdP does; the login callback's steps.

use std::rc::Rc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::{Claims, Duration, Ed25519KeyPair, EdDSAKeyPairLike};
use serde::Serialize;
use serde_json::{json, Value};

use super::*;
use crate::fake_host::FakeHost;
use crate::outgoing::CallResponse;

pub(super) const NOW_MS: u64 = 1_700_000_000_000;

pub(super) const CONFIG: &str = r#"{
    "providers": [{"name": "sso", "issuer": "https://idp.test", "audiences": ["gw"],
        "algorithms": ["EdDSA"],
        "jwks": {"remote": {"cluster": "idp", "authority": "idp", "path": "/jwks",
                            "timeout_ms": 1500, "min_refresh_interval_s": 30}}}],
    "rules": [{"match": {"prefix": "/admin/"}, "scopes": ["admin"]}],
    "default_rule": {"auth": "required", "scopes": []},
    "translate": {"to": "ollama", "cluster": "ollama", "authority": "ollama"},
    "oauth2": {"cluster": "idp", "authority": "idp", "issuer": "https://idp.test",
        "client_id": "web", "client_secret": {"inline": "s"},
        "redirect_uri": "https://chat.test/oauth2/callback",
        "session": {"secret": {"inline": "0123456789abcdef0123456789abcdef"}}}
}"#;

pub(super) struct Key {
    pub(super) pair: Ed25519KeyPair,
    pub(super) kid: String,
}

impl Key {
    pub(super) fn new(kid: &str) -> Self {
        Self {
            pair: Ed25519KeyPair::generate().with_key_id(kid),
            kid: kid.into(),
        }
    }

    pub(super) fn jwk(&self) -> Value {
        json!({"kty": "OKP", "crv": "Ed25519", "kid": self.kid, "alg": "EdDSA",
               "x": URL_SAFE_NO_PAD.encode(self.pair.public_key().to_bytes())})
    }

    fn token(&self, sub: &str, scope: &str) -> String {
        #[derive(Serialize, serde::Deserialize)]
        struct Extra {
            scope: String,
        }
        let claims = Claims::with_custom_claims(
            Extra {
                scope: scope.into(),
            },
            Duration::from_hours(1),
        )
        .with_issuer("https://idp.test")
        .with_audience("gw")
        .with_subject(sub);
        self.pair.sign(claims).unwrap()
    }
}

pub(super) fn jwks(keys: &[&Key]) -> CallResponse {
    let keys: Vec<Value> = keys.iter().map(|k| k.jwk()).collect();
    CallResponse {
        status: Some(200),
        body: Some(json!({ "keys": keys }).to_string().into_bytes()),
    }
}

/// A worker: its gateway and the host it sees.
pub(super) struct Worker {
    pub(super) gateway: Gateway,
    pub(super) host: FakeHost,
}

impl Worker {
    pub(super) fn new(host: FakeHost) -> Self {
        Self::with_config(CONFIG, host)
    }

    pub(super) fn with_config(config: &str, host: FakeHost) -> Self {
        let config = crate::config::load(config.as_bytes()).unwrap();
        // The fake clock must start where the tokens' `iat` is.
        host.state
            .now_ms
            .set(jwt_simple::prelude::Clock::now_since_epoch().as_millis());
        Self {
            gateway: Gateway::new(Rc::new(config), Box::new(host.clone())),
            host,
        }
    }

    pub(super) fn get(&mut self, id: u32, path: &str, token: &str) -> Output {
        let headers = vec![
            (":method".to_string(), "GET".to_string()),
            (":path".to_string(), path.to_string()),
            (":authority".to_string(), "gw".to_string()),
            ("authorization".to_string(), format!("Bearer {token}")),
            ("x-request-id".to_string(), format!("req-{id}")),
        ];
        self.gateway.on_request_headers(id, headers, true)
    }

    /// Answers the JWKS call dispatched last with `response`.
    fn answer_jwks(&mut self, response: CallResponse) -> Output {
        let token = *self
            .host
            .state
            .calls_to("/jwks")
            .last()
            .expect("a JWKS call");
        self.answer(token, response)
    }

    /// Answers call `token`, in the context it was dispatched from (as the SDK delivers it).
    pub(super) fn answer(&mut self, token: u32, response: CallResponse) -> Output {
        *self.host.state.answer.borrow_mut() = response;
        let receiver = self
            .host
            .state
            .calls
            .borrow()
            .iter()
            .find(|(t, _, _)| *t == token)
            .and_then(|(_, _, running)| *running);
        self.gateway.on_call_response(token, 0, receiver)
    }

    fn jwks_calls(&self) -> usize {
        self.host.state.calls_to("/jwks").len()
    }

    /// The request's audit record at its end.
    pub(super) fn audit(&mut self, id: u32) -> Value {
        let mut flow = self.gateway.flows.remove(&id).expect("a flow");
        let record = serde_json::from_str(&flow.audit.to_json()).unwrap();
        self.gateway.settle_usage(&mut flow, None);
        record
    }
}

/// The effects on request `id`, with the parts that differ by nature (random ids) left out.
pub(super) fn effects_on(output: &Output, id: u32) -> Vec<Effect> {
    output
        .effects
        .iter()
        .filter(|(target, _)| *target == id)
        .map(|(_, effect)| effect.clone())
        .collect()
}

pub(super) fn reply_of(output: &Output, id: u32) -> LocalReply {
    effects_on(output, id)
        .into_iter()
        .find_map(|e| match e {
            Effect::Reply(reply) => Some(reply),
            _ => None,
        })
        .unwrap_or_else(|| panic!("no reply for {id} in {output:?}"))
}

/// A worker that has the keys already.
fn worker_with_keys(keys: &[&Key]) -> Worker {
    let mut worker = Worker::new(FakeHost::new(NOW_MS));
    worker.gateway.on_tick();
    assert_eq!(worker.jwks_calls(), 1, "the tick fetches the keys at start");
    worker.answer_jwks(jwks(keys));
    worker
}

#[test]
fn a_request_decided_without_waiting_forwards_with_identity_and_audit() {
    let key = Key::new("k1");
    let mut worker = worker_with_keys(&[&key]);
    let out = worker.get(7, "/v1/anything", &key.token("alice", "chat"));
    assert_eq!(out.next, Next::Continue);
    let forward = effects_on(&out, 7);
    let [Effect::Forward { set, resume, .. }] = forward.as_slice() else {
        panic!("{forward:?}")
    };
    assert!(!resume, "its own header callback continues");
    assert!(
        set.contains(&("x-user-id".to_string(), "alice".to_string())),
        "{set:?}"
    );
    let audit = worker.audit(7);
    assert_eq!(audit["decision"], "allowed");
    assert_eq!(audit["sub"], "alice");
    assert_eq!(audit["provider"], "sso");
    assert_eq!(worker.host.state.counter("requests_allowed"), 1);
}

fn id(i: usize) -> u32 {
    10 + i as u32
}

/// Effects with what legitimately differs between a waited and a prompt decision taken out:
/// a waited request is resumed, a prompt one continues from its header callback.
fn normalized(mut effects: Vec<Effect>) -> Vec<Effect> {
    for effect in &mut effects {
        if let Effect::Forward { resume, .. } = effect {
            *resume = false;
        }
    }
    effects
}

fn without_times(mut audit: Value) -> Value {
    for field in ["time_ms", "duration_ms"] {
        audit.as_object_mut().unwrap().remove(field);
    }
    audit
}

const TAGS: &str = r#"{"models": [{"name": "qwen3", "model": "qwen3", "modified_at": "2025-01-01T00:00:00Z", "size": 1}]}"#;

fn tags() -> CallResponse {
    CallResponse {
        status: Some(200),
        body: Some(TAGS.as_bytes().to_vec()),
    }
}

/// The same requests decided at once (keys known) and after waiting for the first keys:
/// identical effects, model-server calls, answers, audit records and counters.
#[test]
fn waited_and_not_waited_requests_get_identical_outcomes() {
    let key = Key::new("k1");
    let token = key.token("alice", "chat");
    let paths = [
        "/oauth2/userinfo",
        "/v1/models",
        "/v1/models/qwen3",
        "/v1/plain",
        "/admin/x",
    ];

    let mut prompt = worker_with_keys(&[&key]);
    let direct: Vec<Output> = paths
        .iter()
        .enumerate()
        .map(|(i, path)| prompt.get(id(i), path, &token))
        .collect();

    let mut waited = Worker::new(FakeHost::new(NOW_MS));
    for (i, path) in paths.iter().enumerate() {
        let paused = waited.get(id(i), path, &token);
        assert_eq!(paused.next, Next::Pause, "{path}: waits for keys");
        assert!(
            paused.effects.is_empty(),
            "{path}: nothing happens while it waits"
        );
    }
    assert_eq!(waited.jwks_calls(), 1, "one fetch for all of them");
    let answered = waited.answer_jwks(jwks(&[&key]));

    for (i, path) in paths.iter().enumerate() {
        assert_eq!(
            normalized(effects_on(&answered, id(i))),
            normalized(effects_on(&direct[i], id(i))),
            "{path}: same effects waited or not"
        );
    }
    assert_eq!(
        reply_of(&answered, id(0)).status,
        200,
        "userinfo is answered by the gateway"
    );
    assert!(reply_of(&answered, id(0))
        .body
        .contains("\"sub\":\"alice\""));
    assert_eq!(reply_of(&answered, id(4)).status, 403);

    // The model lists are fetched by the gateway from /api/tags, for waited ones too. Decided
    // on the first request's callback (the keys came back to it), the waited ones' calls are
    // made on the next tick from the worker's own context: a call made from the first request
    // would be lost if it ended first.
    assert!(waited.host.state.calls_to("/api/tags").is_empty());
    let ticked = waited.gateway.on_tick();
    assert!(ticked.effects.is_empty(), "{ticked:?}");
    for (worker, dispatched_from) in [
        (&mut prompt, vec![Some(id(1)), Some(id(2))]),
        (&mut waited, vec![None, None]),
    ] {
        let calls = worker.host.state.calls_to("/api/tags");
        assert_eq!(calls.len(), 2, "/v1/models and /v1/models/qwen3");
        let from: Vec<Option<u32>> = worker
            .host
            .state
            .calls
            .borrow()
            .iter()
            .filter(|(_, call, _)| call.path() == "/api/tags")
            .map(|(_, _, running)| *running)
            .collect();
        assert_eq!(from, dispatched_from);
    }
    let lists: Vec<(LocalReply, LocalReply)> = [&mut prompt, &mut waited]
        .into_iter()
        .map(|worker| {
            let calls = worker.host.state.calls_to("/api/tags");
            let list = worker.answer(calls[0], tags());
            let one = worker.answer(calls[1], tags());
            (reply_of(&list, id(1)), reply_of(&one, id(2)))
        })
        .collect();
    assert_eq!(lists[0], lists[1]);
    assert_eq!(lists[0].0.status, 200);
    assert!(
        lists[0].0.body.contains("\"object\":\"list\""),
        "{}",
        lists[0].0.body
    );
    assert!(
        lists[0].1.body.contains("\"id\":\"qwen3\""),
        "{}",
        lists[0].1.body
    );

    for (i, path) in paths.iter().enumerate() {
        let (a, b) = (prompt.audit(id(i)), waited.audit(id(i)));
        assert_eq!(
            without_times(a.clone()),
            without_times(b),
            "{path}: same audit record"
        );
        assert_ne!(a["decision"], "pending", "{path}");
        assert_eq!(
            a["sub"], "alice",
            "{path}: every verified request names its subject"
        );
    }
    for counter in ["requests_allowed", "requests_insufficient_scope"] {
        assert_eq!(
            prompt.host.state.counter(counter),
            waited.host.state.counter(counter),
            "{counter}"
        );
    }
    assert_eq!(waited.host.state.counter("requests_allowed"), 4);
    assert_eq!(waited.host.state.counter("requests_insufficient_scope"), 1);
}

#[test]
fn a_scope_refusal_names_who_was_refused() {
    let key = Key::new("k1");
    let mut worker = worker_with_keys(&[&key]);
    let out = worker.get(3, "/admin/users", &key.token("bob", "chat"));
    assert_eq!(reply_of(&out, 3).status, 403);
    let audit = worker.audit(3);
    assert_eq!(audit["decision"], "refused");
    assert_eq!(audit["code"], "AUTH_INSUFFICIENT_SCOPE");
    assert_eq!(audit["sub"], "bob");
    assert_eq!(audit["provider"], "sso");
}

/// A worker whose keys are older than `min_refresh_interval_s`, so a new `kid` may refetch.
fn worker_past_refresh_interval(keys: &[&Key]) -> Worker {
    let worker = worker_with_keys(keys);
    worker.host.state.advance(31_000);
    worker
}

#[test]
fn a_rotated_key_is_decided_for_every_waiting_request_by_one_refetch() {
    let (old, new) = (Key::new("k1"), Key::new("k2"));
    let mut worker = worker_past_refresh_interval(&[&old]);
    let first = worker.get(1, "/v1/a", &new.token("alice", "chat"));
    let second = worker.get(2, "/v1/models", &new.token("bob", "chat"));
    assert_eq!((first.next, second.next), (Next::Pause, Next::Pause));
    assert_eq!(
        worker.jwks_calls(),
        2,
        "one refetch (after the start's fetch) for both"
    );
    // The answer reaches the first request's context; both are decided there.
    let answered = worker.answer_jwks(jwks(&[&old, &new]));
    let first_effects = effects_on(&answered, 1);
    let [Effect::Forward { resume, .. }] = first_effects.as_slice() else {
        panic!("{answered:?}")
    };
    assert!(resume, "a waited request is resumed");
    assert!(
        effects_on(&answered, 2).is_empty(),
        "the model list is fetched first"
    );
    // Decided on the first request's callback: fetched on the tick, from the worker's context.
    assert!(worker.host.state.calls_to("/api/tags").is_empty());
    worker.gateway.on_tick();
    let tags_calls = worker.host.state.calls_to("/api/tags");
    assert_eq!(tags_calls.len(), 1);
    assert!(worker
        .host
        .state
        .calls
        .borrow()
        .iter()
        .any(|(t, _, from)| *t == tags_calls[0] && from.is_none()));
    let listed = worker.answer(tags_calls[0], tags());
    assert_eq!(reply_of(&listed, 2).status, 200);
    assert_eq!(worker.audit(1)["sub"], "alice");
    assert_eq!(worker.audit(2)["sub"], "bob");
}

#[test]
fn a_request_waiting_on_another_workers_fetch_is_decided_on_its_tick() {
    let (old, new) = (Key::new("k1"), Key::new("k2"));
    let mut one = worker_past_refresh_interval(&[&old]);
    let mut two = Worker::new(one.host.sibling());
    two.host.state.now_ms.set(one.host.state.now_ms.get());
    two.gateway.on_tick();
    assert_eq!(two.jwks_calls(), 0, "the keys are shared: nothing to fetch");
    assert_eq!(
        one.get(1, "/v1/a", &new.token("alice", "chat")).next,
        Next::Pause
    );
    assert_eq!(
        two.get(1, "/v1/b", &new.token("bob", "chat")).next,
        Next::Pause
    );
    assert_eq!(
        two.jwks_calls(),
        0,
        "at most one fetch per provider in flight"
    );
    one.answer_jwks(jwks(&[&old, &new]));
    two.host.state.advance(100);
    let ticked = two.gateway.on_tick();
    let ticked_effects = effects_on(&ticked, 1);
    let [Effect::Forward { resume: true, .. }] = ticked_effects.as_slice() else {
        panic!("{ticked:?}")
    };
    assert_eq!(two.audit(1)["decision"], "allowed");
}

#[test]
fn a_fetch_that_ends_without_the_key_refuses_at_once_and_is_not_repeated() {
    let (old, new) = (Key::new("k1"), Key::new("k2"));
    let mut worker = worker_past_refresh_interval(&[&old]);
    worker.get(1, "/v1/a", &new.token("alice", "chat"));
    let answered = worker.answer_jwks(jwks(&[&old]));
    let reply = reply_of(&answered, 1);
    assert_eq!(reply.status, 401);
    assert!(reply.body.contains("AUTH_INVALID_TOKEN"), "{}", reply.body);
    for _ in 0..20 {
        worker.host.state.advance(100);
        worker.gateway.on_tick();
    }
    assert_eq!(worker.jwks_calls(), 2, "no second refetch for it");
    assert_eq!(worker.audit(1)["decision"], "refused");
}

#[test]
fn a_slow_idp_answers_the_waiting_request_within_the_fetch_timeout_plus_a_tick() {
    let (old, new) = (Key::new("k1"), Key::new("k2"));
    let mut worker = worker_past_refresh_interval(&[&old]);
    worker.get(1, "/v1/a", &new.token("alice", "chat"));
    let mut answered_at = None;
    for step in 1..=40 {
        worker.host.state.advance(100);
        let out = worker.gateway.on_tick();
        if !effects_on(&out, 1).is_empty() {
            assert_eq!(
                reply_of(&out, 1).status,
                401,
                "keys exist: the token's own refusal"
            );
            answered_at = Some(step * 100);
            break;
        }
    }
    let at = answered_at.expect("answered");
    assert!(
        (1500..=1600).contains(&at),
        "answered after {at} ms (timeout 1500 ms, tick 100 ms)"
    );
    // Requests meanwhile and after: bounded answers, one fetch in flight at most.
    for i in 0..30 {
        worker.host.state.advance(200);
        let out = worker.get(100 + i, "/v1/a", &new.token("alice", "chat"));
        for _ in 0..17 {
            if !effects_on(&out, 100 + i).is_empty() {
                break;
            }
            worker.host.state.advance(100);
            let ticked = worker.gateway.on_tick();
            if !effects_on(&ticked, 100 + i).is_empty() {
                break;
            }
        }
        assert!(
            !worker.gateway.waiting.contains(&(100 + i)),
            "request {i} answered within 1.6 s"
        );
    }
    assert_eq!(
        worker.jwks_calls(),
        2,
        "no refetch before min_refresh_interval_s"
    );
}

#[test]
fn with_no_keys_and_a_silent_idp_a_request_gets_503_at_its_deadline() {
    let key = Key::new("k1");
    let mut worker = Worker::new(FakeHost::new(NOW_MS));
    worker.get(1, "/v1/a", &key.token("alice", "chat"));
    assert_eq!(worker.jwks_calls(), 1);
    worker.host.state.advance(1_650);
    let out = worker.gateway.on_tick();
    let reply = reply_of(&out, 1);
    assert_eq!(reply.status, 503);
    assert!(
        reply.headers.iter().any(|(n, _)| n == "retry-after"),
        "{reply:?}"
    );
    assert_eq!(worker.audit(1)["code"], "JWKS_UNAVAILABLE");
}

#[test]
fn an_idp_answering_garbage_or_nothing_refuses_the_waiting_request_at_once() {
    let key = Key::new("k1");
    let answers = [
        CallResponse {
            status: Some(200),
            body: Some(b"<html>".to_vec()),
        },
        CallResponse {
            status: Some(500),
            body: None,
        },
        CallResponse::NONE,
    ];
    for answer in answers {
        let mut worker = Worker::new(FakeHost::new(NOW_MS));
        worker.get(1, "/v1/a", &key.token("alice", "chat"));
        let out = worker.answer_jwks(answer.clone());
        assert_eq!(reply_of(&out, 1).status, 503, "{answer:?}");
        assert_eq!(worker.host.state.counter("jwks_fetches_failed"), 1);
        assert_eq!(worker.host.state.counter("requests_jwks_unavailable"), 1);
    }
}

#[test]
fn a_fetch_that_cannot_be_dispatched_refuses_at_once() {
    let key = Key::new("k1");
    let mut worker = Worker::new(FakeHost::new(NOW_MS));
    worker.host.state.refuse_dispatch.set(true);
    let out = worker.get(1, "/v1/a", &key.token("alice", "chat"));
    assert_eq!(reply_of(&out, 1).status, 503);
    assert!(worker.gateway.waiting.is_empty());
}

#[test]
fn a_request_that_ends_while_waiting_is_forgotten() {
    let key = Key::new("k1");
    let mut worker = Worker::new(FakeHost::new(NOW_MS));
    worker.get(1, "/v1/a", &key.token("alice", "chat"));
    worker.gateway.on_done(1);
    // The keys fetch it dispatched is cancelled by Envoy with it: nothing of it is kept.
    assert!(worker.gateway.calls.is_empty());
    let out = worker.answer_jwks(jwks(&[&key]));
    assert!(out.effects.is_empty(), "{out:?}");
    assert!(worker.gateway.flows.is_empty());
}

#[test]
fn without_translate_cluster_the_gateways_calls_go_where_the_route_goes() {
    let key = Key::new("k1");
    let config = CONFIG.replace(r#", "cluster": "ollama", "authority": "ollama""#, "");
    assert_ne!(config, CONFIG);
    let mut worker = Worker::with_config(&config, FakeHost::new(NOW_MS));
    worker.gateway.on_tick();
    worker.answer_jwks(jwks(&[&key]));
    *worker.host.state.routed_cluster.borrow_mut() = Some("models-route".into());
    worker.get(1, "/v1/models", &key.token("alice", "chat"));
    let calls = worker.host.state.calls.borrow().clone();
    let (_, call, _) = calls.last().unwrap();
    assert_eq!(call.path(), "/api/tags");
    assert_eq!(call.cluster, "models-route");
    assert!(
        call.headers.contains(&(":authority".into(), "gw".into())),
        "{call:?}"
    );
    // No route cluster and none configured: refused, never left hanging.
    *worker.host.state.routed_cluster.borrow_mut() = None;
    let out = worker.get(2, "/v1/models", &key.token("alice", "chat"));
    assert_eq!(reply_of(&out, 2).status, 502);
}

/// A token of `sso` whose Keycloak realm roles are `roles`, with no scope of its own.
pub(super) fn token_with_realm_roles(key: &Key, sub: &str, roles: &[&str]) -> String {
    #[derive(Serialize, serde::Deserialize)]
    struct Extra {
        realm_access: Value,
    }
    let claims = Claims::with_custom_claims(
        Extra {
            realm_access: json!({ "roles": roles }),
        },
        Duration::from_hours(1),
    )
    .with_issuer("https://idp.test")
    .with_audience("gw")
    .with_subject(sub);
    key.pair.sign(claims).unwrap()
}

#[test]
fn realm_roles_grant_the_scopes_a_rule_requires() {
    let key = Key::new("k1");
    let config = CONFIG.replace(
        r#""rules": [{"match": {"prefix": "/admin/"}, "scopes": ["admin"]}],"#,
        r#""rules": [{"match": {"prefix": "/admin/"}, "scopes": ["gateway:admin"]}],
           "roles": {"claims": ["realm_access.roles"],
                     "grants": {"admin": ["gateway:admin", "chat:read"], "guest": ["chat:read"]}},"#,
    );
    assert_ne!(config, CONFIG);
    let mut worker = Worker::with_config(&config, FakeHost::new(NOW_MS));
    worker.gateway.on_tick();
    worker.answer_jwks(jwks(&[&key]));

    let admin = token_with_realm_roles(&key, "alice", &["offline_access", "admin"]);
    // The second request is answered from the verified-token cache, granted scopes included.
    for id in [1, 2] {
        let out = worker.get(id, "/admin/users", &admin);
        let forward = effects_on(&out, id);
        let [Effect::Forward { set, .. }] = forward.as_slice() else {
            panic!("{forward:?}")
        };
        assert!(
            set.contains(&(
                "x-user-scopes".to_string(),
                "gateway:admin chat:read".to_string()
            )),
            "{set:?}"
        );
    }
    assert_eq!(worker.host.state.counter("token_cache_hits"), 1);

    let guest = token_with_realm_roles(&key, "bob", &["guest"]);
    let out = worker.get(3, "/admin/users", &guest);
    let reply = reply_of(&out, 3);
    assert_eq!(reply.status, 403);
    assert_eq!(worker.audit(3)["code"], "AUTH_INSUFFICIENT_SCOPE");
    // Role names are case-sensitive: `Admin` is not `admin`.
    let near = token_with_realm_roles(&key, "carol", &["Admin"]);
    assert_eq!(
        reply_of(&worker.get(4, "/admin/users", &near), 4).status,
        403
    );
}

/// `CONFIG` with a model allow-list (`team:research` may use every `qwen3`, everyone else
/// `qwen3:8b` and `llama3`), a default model and aliases; the worker has `key`.
fn models_worker(key: &Key) -> Worker {
    let config = CONFIG.replace(
        r#""translate": {"to": "ollama", "cluster": "ollama", "authority": "ollama"},"#,
        r#""translate": {"to": "ollama", "cluster": "ollama", "authority": "ollama",
                         "default_model": "Qwen3:8B",
                         "model_aliases": {"research": "qwen3:32b", "small": " QWEN3:8b "}},
           "models": {"allow": [
               {"scopes": ["team:research"], "models": ["qwen3:32b", "qwen3:*"]},
               {"scopes": [], "models": ["qwen3:8b", "llama3"]}]},"#,
    );
    assert_ne!(config, CONFIG);
    let mut worker = Worker::with_config(&config, FakeHost::new(NOW_MS));
    worker.gateway.on_tick();
    worker.answer_jwks(jwks(&[key]));
    worker
}

/// `POST path` with `body` in one chunk: the header callback's output, then the body's.
fn models_post(
    worker: &mut Worker,
    id: u32,
    path: &str,
    token: &str,
    body: &str,
) -> (Output, Output) {
    let headers = [
        (":method", "POST".to_string()),
        (":path", path.to_string()),
        (":authority", "gw".to_string()),
        ("authorization", format!("Bearer {token}")),
        ("content-type", "application/json".to_string()),
        ("x-request-id", format!("req-{id}")),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value))
    .collect();
    let head = worker.gateway.on_request_headers(id, headers, false);
    *worker.host.state.request_body.borrow_mut() = body.as_bytes().to_vec();
    let body = worker.gateway.on_request_body(id, body.len(), true);
    (head, body)
}

fn models_chat(model: Option<&str>, stream: bool) -> String {
    let mut chat = json!({"messages": [{"role": "user", "content": "hi"}], "stream": stream});
    if let Some(model) = model {
        chat["model"] = json!(model);
    }
    chat.to_string()
}

/// What the body callback did with a request: `Some(model)` it went on (streamed: the
/// translated body replaces the client's; not streamed: the gateway's `/api/chat` call carries
/// it), `None` it was refused with `status` and nothing went upstream.
fn models_outcome(worker: &Worker, id: u32, body: &Output, status: u32) -> Option<String> {
    let replaced = effects_on(body, id).into_iter().find_map(|e| match e {
        Effect::ReplaceRequestBody { body, .. } => Some(body),
        _ => None,
    });
    let called = worker
        .host
        .state
        .calls
        .borrow()
        .iter()
        .filter(|(_, call, from)| call.path() == "/api/chat" && *from == Some(id))
        .find_map(|(_, call, _)| call.body.clone());
    let sent = replaced.or(called);
    if let Some(sent) = sent {
        let sent: Value = serde_json::from_slice(&sent).unwrap();
        return Some(sent["model"].as_str().unwrap().to_string());
    }
    let reply = reply_of(body, id);
    assert_eq!(reply.status, status, "{}", reply.body);
    assert_eq!(body.next, Next::Pause);
    None
}

#[test]
fn a_chat_for_a_model_the_caller_may_not_use_is_refused_before_the_upstream_gets_it() {
    let key = Key::new("k1");
    let mut worker = models_worker(&key);
    let bob = key.token("bob", "chat");
    let alice = key.token("alice", "chat team:research");

    // Streamed and not, named directly or through an alias: refused, nothing sent.
    for (id, model, stream) in [
        (1, "qwen3:32b", true),
        (2, "qwen3:32b", false),
        (3, "research", true),
        (4, "research", false),
    ] {
        let (_, body) = models_post(
            &mut worker,
            id,
            "/v1/chat/completions",
            &bob,
            &models_chat(Some(model), stream),
        );
        assert_eq!(models_outcome(&worker, id, &body, 403), None, "{model}");
        let reply: Value = serde_json::from_str(&reply_of(&body, id).body).unwrap();
        assert_eq!(reply["error"]["code"], "MODEL_NOT_ALLOWED");
        assert_eq!(reply["error"]["type"], "permission_error");
        assert_eq!(
            reply["error"]["details"],
            "the model `qwen3:32b` is not allowed"
        );
        let audit = worker.audit(id);
        assert_eq!(audit["decision"], "refused");
        assert_eq!(audit["code"], "MODEL_NOT_ALLOWED");
        assert_eq!(audit["sub"], "bob", "who tried");
        assert_eq!(audit["provider"], "sso");
    }
    assert!(worker.host.state.calls_to("/api/chat").is_empty());
    assert_eq!(worker.host.state.counter("requests_model_not_allowed"), 4);

    // Allowed ones go on as before: streamed through the route, or fetched by the gateway.
    let (_, body) = models_post(
        &mut worker,
        5,
        "/v1/chat/completions",
        &alice,
        &models_chat(Some("research"), true),
    );
    assert_eq!(body.next, Next::Continue);
    assert_eq!(
        models_outcome(&worker, 5, &body, 0).as_deref(),
        Some("qwen3:32b")
    );
    let (_, body) = models_post(
        &mut worker,
        6,
        "/v1/chat/completions",
        &bob,
        &models_chat(None, false),
    );
    assert_eq!(
        models_outcome(&worker, 6, &body, 0).as_deref(),
        Some("Qwen3:8B"),
        "the default model, allowed"
    );
    assert_eq!(worker.audit(6)["decision"], "allowed");

    // Two `model` keys: the strict parser refuses the body (no model is guessed).
    let (_, body) = models_post(
        &mut worker,
        7,
        "/v1/chat/completions",
        &bob,
        r#"{"model": "qwen3:8b", "model": "qwen3:32b", "messages": [{"role": "user", "content": "x"}]}"#,
    );
    assert_eq!(models_outcome(&worker, 7, &body, 400), None);
    assert_eq!(worker.audit(7)["code"], "INVALID_REQUEST_BODY");
}

#[test]
fn every_spelling_of_a_model_gets_the_same_decision_and_the_first_matching_entry_decides() {
    let key = Key::new("k1");
    let mut worker = models_worker(&key);
    let bob = key.token("bob", "chat");
    let alice = key.token("alice", "chat team:research");
    let cases: [(&str, &[&str], bool); 6] = [
        // bob: the second entry.
        (
            &bob,
            &["qwen3:8b", " QWEN3:8B ", "Qwen3:8b", "small", ""],
            true,
        ),
        (&bob, &["llama3", "llama3:latest", " Llama3:LATEST"], true),
        (
            &bob,
            &["qwen3", "qwen3:latest", "QWEN3", "qwen3:32b "],
            false,
        ),
        // alice: the first entry, and only it (no llama3 there).
        (
            &alice,
            &["qwen3", "QWEN3:Latest", "qwen3:0.6b", "research"],
            true,
        ),
        (&alice, &["llama3", "llama3:latest"], false),
        (&alice, &["mistral", "qwen3x:8b"], false),
    ];
    let mut id = 100;
    for (token, spellings, allowed) in cases {
        for spelling in spellings {
            for stream in [true, false] {
                id += 1;
                let chat = models_chat(Some(spelling), stream);
                let (_, body) = models_post(&mut worker, id, "/v1/chat/completions", token, &chat);
                let sent = models_outcome(&worker, id, &body, 403);
                assert_eq!(sent.is_some(), allowed, "{spelling:?} stream {stream}");
            }
        }
    }
}

#[test]
fn the_model_list_shows_only_usable_models_and_hides_the_others_as_absent() {
    let key = Key::new("k1");
    let mut worker = models_worker(&key);
    let bob = key.token("bob", "chat");
    let alice = key.token("alice", "chat team:research");
    let tags = CallResponse {
        status: Some(200),
        body: Some(
            json!({"models": [{"name": "qwen3:8b"}, {"name": "qwen3:32b"},
                              {"name": "llama3:latest"}, {"name": "Mistral:7b"}]})
            .to_string()
            .into_bytes(),
        ),
    };
    let fetch = |worker: &mut Worker, id: u32, path: &str, token: &str| {
        worker.get(id, path, token);
        let call = *worker.host.state.calls_to("/api/tags").last().unwrap();
        let out = worker.answer(call, tags.clone());
        let reply = reply_of(&out, id);
        (
            reply.status,
            serde_json::from_str::<Value>(&reply.body).unwrap(),
        )
    };
    let ids = |list: &Value| -> Vec<String> {
        list["data"]
            .as_array()
            .unwrap()
            .iter()
            .map(|m| m["id"].as_str().unwrap().to_string())
            .collect()
    };
    let (status, list) = fetch(&mut worker, 1, "/v1/models", &bob);
    assert_eq!(status, 200);
    assert_eq!(ids(&list), ["qwen3:8b", "llama3:latest"]);
    let (_, list) = fetch(&mut worker, 2, "/v1/models", &alice);
    assert_eq!(ids(&list), ["qwen3:8b", "qwen3:32b"]);

    // A model bob may not use is answered exactly as one that does not exist.
    let (status, forbidden) = fetch(&mut worker, 3, "/v1/models/qwen3:32b", &bob);
    let (_, missing) = fetch(&mut worker, 4, "/v1/models/nothing:1", &bob);
    assert_eq!(status, 404);
    assert_eq!(forbidden["error"]["type"], "not_found_error");
    let message = forbidden["error"]["message"].as_str().unwrap();
    assert_eq!(message, "The model `qwen3:32b` does not exist");
    assert_eq!(
        forbidden.to_string().replace("qwen3:32b", "X"),
        missing.to_string().replace("nothing:1", "X")
    );
    let (status, _) = fetch(&mut worker, 5, "/v1/models/qwen3:32b", &alice);
    assert_eq!(status, 200);
    let (status, found) = fetch(&mut worker, 6, "/v1/models/llama3", &bob);
    assert_eq!((status, found["id"].as_str()), (200, Some("llama3")));
}

#[test]
fn untranslated_ollama_routes_are_checked_on_their_whole_body_and_forwarded_unchanged() {
    let key = Key::new("k1");
    let mut worker = models_worker(&key);
    let bob = key.token("bob", "chat");
    let cases = [
        (
            "/api/chat",
            r#"{"model": "qwen3:32b", "messages": []}"#,
            Some(403),
        ),
        (
            "/api/generate",
            r#"{"model": "QWEN3", "prompt": "x"}"#,
            Some(403),
        ),
        (
            "/api/embed",
            r#"{"model": "mistral", "input": "x"}"#,
            Some(403),
        ),
        (
            "/api/embeddings",
            r#"{"model": "qwen3:32b", "prompt": "x"}"#,
            Some(403),
        ),
        ("/api/chat", r#"{"messages": []}"#, Some(400)),
        ("/api/chat", r#"{"model": ["qwen3:8b"]}"#, Some(400)),
        (
            "/api/chat",
            r#"{"model": "qwen3:8b", "model": "qwen3:32b"}"#,
            Some(400),
        ),
        ("/api/chat", "not json", Some(400)),
        (
            "/api/chat",
            r#"{"model": " Qwen3:8B", "messages": []}"#,
            None,
        ),
        (
            "/api/generate",
            r#"{"model": "llama3", "prompt": "x"}"#,
            None,
        ),
    ];
    for (i, (path, body, refused)) in cases.into_iter().enumerate() {
        let id = 200 + i as u32;
        let (head, out) = models_post(&mut worker, id, path, &bob, body);
        // The headers go on (towards Envoy's buffer filter); the body is held until complete.
        assert_eq!(head.next, Next::Continue, "{path} {body}");
        match refused {
            Some(status) => {
                assert_eq!(reply_of(&out, id).status, status, "{path} {body}");
                assert_eq!(out.next, Next::Pause);
                let code = if status == 403 {
                    "MODEL_NOT_ALLOWED"
                } else {
                    "INVALID_REQUEST_BODY"
                };
                let audit = worker.audit(id);
                assert_eq!(
                    (audit["code"].as_str(), audit["sub"].as_str()),
                    (Some(code), Some("bob"))
                );
            }
            None => {
                assert_eq!(out.next, Next::Continue, "{path} {body}");
                assert!(effects_on(&out, id).is_empty(), "unchanged: {out:?}");
                assert_eq!(worker.audit(id)["decision"], "allowed");
            }
        }
    }
    assert!(
        !worker
            .host
            .state
            .calls
            .borrow()
            .iter()
            .any(|(_, call, _)| call.path().starts_with("/api/")),
        "the gateway calls no model server for these"
    );

    // Without `models`, the body is not held for this (a declared length: not held at all).
    let mut plain = worker_with_keys(&[&key]);
    let headers = vec![
        (":method".to_string(), "POST".to_string()),
        (":path".to_string(), "/api/chat".to_string()),
        ("authorization".to_string(), format!("Bearer {bob}")),
        ("content-length".to_string(), "20".to_string()),
    ];
    plain.gateway.on_request_headers(1, headers, false);
    *plain.host.state.request_body.borrow_mut() = br#"{"model": "qwen3:32b"}"#.to_vec();
    let out = plain.gateway.on_request_body(1, 20, true);
    assert_eq!(out.next, Next::Continue);
    assert!(out.effects.is_empty());
}

/// `CONFIG` with aliases, `limits` as `rate_limits` and no `models` section; the worker has `key`.
fn model_limits_worker(key: &Key, limits: &str) -> Worker {
    let config = CONFIG.replace(
        r#""translate": {"to": "ollama", "cluster": "ollama", "authority": "ollama"},"#,
        &format!(
            r#""translate": {{"to": "ollama", "cluster": "ollama", "authority": "ollama",
                             "model_aliases": {{"research": "qwen3:32b"}}}},
               "rate_limits": {limits},"#
        ),
    );
    assert_ne!(config, CONFIG);
    let mut worker = Worker::with_config(&config, FakeHost::new(NOW_MS));
    worker.gateway.on_tick();
    worker.answer_jwks(jwks(&[key]));
    worker
}

/// The `X-RateLimit-*` the response of request `id` gets (`limit`, `remaining`), if any.
fn limit_headers_of(worker: &mut Worker, id: u32) -> Option<(String, String)> {
    let out = worker.gateway.on_response_headers(id, false);
    let added: Vec<(String, String)> = effects_on(&out, id)
        .into_iter()
        .filter_map(|e| match e {
            Effect::AddResponseHeader(name, value) => Some((name, value)),
            _ => None,
        })
        .collect();
    let value = |name: &str| {
        let values: Vec<&String> = added
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v)
            .collect();
        assert!(values.len() <= 1, "one set of headers: {added:?}");
        values.first().map(|v| (*v).clone())
    };
    Some((value("x-ratelimit-limit")?, value("x-ratelimit-remaining")?))
}

fn pair(limit: &str, remaining: &str) -> Option<(String, String)> {
    Some((limit.to_string(), remaining.to_string()))
}

#[test]
fn a_model_limit_counts_only_chats_for_its_models_and_the_tightest_limit_sets_the_headers() {
    let key = Key::new("k1");
    let mut worker = model_limits_worker(
        &key,
        r#"[{"name": "all", "key": "sub", "requests": 100, "window_s": 60},
            {"name": "big", "key": "sub", "requests": 2, "window_s": 60, "models": ["qwen3:32b"]}]"#,
    );
    let bob = key.token("bob", "chat");
    let chat = |worker: &mut Worker, id: u32, model: &str| {
        let body = models_chat(Some(model), true);
        models_post(worker, id, "/v1/chat/completions", &bob, &body).1
    };

    // Another model: only `all` counts it, and its headers are `all`'s.
    let out = chat(&mut worker, 1, "qwen3:8b");
    assert_eq!(out.next, Next::Continue);
    assert_eq!(limit_headers_of(&mut worker, 1), pair("100", "99"));
    // Through the alias and directly: `big` counts both, and is the tightest.
    let out = chat(&mut worker, 2, "research");
    assert_eq!(
        models_outcome(&worker, 2, &out, 0).as_deref(),
        Some("qwen3:32b")
    );
    assert_eq!(limit_headers_of(&mut worker, 2), pair("2", "1"));
    chat(&mut worker, 3, " QWEN3:32b");
    assert_eq!(limit_headers_of(&mut worker, 3), pair("2", "0"));

    // Spent: refused at body time with the 429 contract, nothing sent on.
    let out = chat(&mut worker, 4, "research");
    assert_eq!(models_outcome(&worker, 4, &out, 429), None);
    let reply = reply_of(&out, 4);
    let header = |name: &str| {
        reply
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(header("x-ratelimit-limit").as_deref(), Some("2"));
    assert_eq!(header("x-ratelimit-remaining").as_deref(), Some("0"));
    assert!(header("retry-after").is_some());
    let body: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(body["error"]["code"], "RATE_LIMITED");
    assert_eq!(
        limit_headers_of(&mut worker, 4),
        None,
        "only the refusing limit's headers, on the reply itself"
    );
    let audit = worker.audit(4);
    assert_eq!(
        (audit["decision"].as_str(), audit["code"].as_str()),
        (Some("refused"), Some("RATE_LIMITED"))
    );

    // Other models still go.
    let out = chat(&mut worker, 5, "qwen3:8b");
    assert_eq!(
        models_outcome(&worker, 5, &out, 0).as_deref(),
        Some("qwen3:8b")
    );
    assert_eq!(limit_headers_of(&mut worker, 5), pair("100", "95"));
}

#[test]
fn a_model_token_budget_reserves_and_charges_only_chats_for_its_models() {
    let key = Key::new("k1");
    let mut worker = model_limits_worker(
        &key,
        r#"[{"name": "big", "key": "sub", "tokens": 1000, "window": "month",
             "models": ["qwen3:32b"]}]"#,
    );
    let bob = key.token("bob", "chat");
    // A non-streamed chat asking for `max_tokens`, answered with `used` tokens; its status.
    let chat = |worker: &mut Worker, id: u32, model: &str, max_tokens: u64, used: u64| {
        let body = json!({"model": model, "max_tokens": max_tokens, "stream": false,
                          "messages": [{"role": "user", "content": "hi"}]});
        let (_, out) = models_post(worker, id, "/v1/chat/completions", &bob, &body.to_string());
        let Some(call) = worker
            .host
            .state
            .calls
            .borrow()
            .iter()
            .rev()
            .find(|(_, call, from)| call.path() == "/api/chat" && *from == Some(id))
            .map(|(token, _, _)| *token)
        else {
            return reply_of(&out, id).status;
        };
        let answer = json!({"model": model, "done": true,
                            "message": {"role": "assistant", "content": "ok"},
                            "prompt_eval_count": used / 2, "eval_count": used - used / 2});
        let out = worker.answer(
            call,
            CallResponse {
                status: Some(200),
                body: Some(answer.to_string().into_bytes()),
            },
        );
        reply_of(&out, id).status
    };

    // Another model: neither reserved nor charged, however large.
    assert_eq!(chat(&mut worker, 1, "qwen3:8b", 5000, 5000), 200);
    assert_eq!(limit_headers_of(&mut worker, 1), None, "no limit applied");
    // The model's (through the alias): 600 reserved, 200 used, 400 given back.
    assert_eq!(chat(&mut worker, 2, "research", 600, 200), 200);
    assert_eq!(limit_headers_of(&mut worker, 2), pair("1000", "1000"));
    // 800 left: 801 does not fit (refused), 800 does.
    assert_eq!(chat(&mut worker, 3, "qwen3:32b", 801, 0), 429);
    assert_eq!(chat(&mut worker, 4, "qwen3:32b", 800, 800), 200);
    assert_eq!(limit_headers_of(&mut worker, 4), pair("1000", "800"));
    // Spent for the model, not for the others.
    assert_eq!(chat(&mut worker, 5, "research", 1, 1), 429);
    assert_eq!(chat(&mut worker, 6, "qwen3:8b", 10, 10), 200);
}

#[test]
fn an_untranslated_chat_for_a_limited_model_is_counted_and_the_model_list_is_not() {
    let key = Key::new("k1");
    let mut worker = model_limits_worker(
        &key,
        r#"[{"name": "big", "key": "sub", "requests": 1, "window_s": 60,
             "models": ["qwen3:32b", "llama3:*"]}]"#,
    );
    let bob = key.token("bob", "chat");
    // A declared length: without the limit's models such a body is not held at all.
    let post = |worker: &mut Worker, id: u32, path: &str, body: &str| {
        let headers = vec![
            (":method".to_string(), "POST".to_string()),
            (":path".to_string(), path.to_string()),
            ("authorization".to_string(), format!("Bearer {bob}")),
            ("content-length".to_string(), body.len().to_string()),
        ];
        let head = worker.gateway.on_request_headers(id, headers, false);
        assert_eq!(head.next, Next::Continue, "the headers go on");
        *worker.host.state.request_body.borrow_mut() = body.as_bytes().to_vec();
        worker.gateway.on_request_body(id, body.len(), true)
    };

    // The model list names no model: never counted by the limit.
    for id in [1, 2] {
        worker.get(id, "/v1/models", &bob);
        let call = *worker.host.state.calls_to("/api/tags").last().unwrap();
        assert_eq!(reply_of(&worker.answer(call, tags()), id).status, 200);
        assert_eq!(limit_headers_of(&mut worker, id), None);
    }
    // Another model is not counted either.
    let out = post(
        &mut worker,
        3,
        "/api/chat",
        r#"{"model": "qwen3:8b", "messages": []}"#,
    );
    assert_eq!(out.next, Next::Continue);
    assert!(effects_on(&out, 3).is_empty(), "forwarded unchanged");
    // The model's: counted (once), then refused.
    let out = post(
        &mut worker,
        4,
        "/api/chat",
        r#"{"model": "Qwen3:32B", "messages": []}"#,
    );
    assert_eq!(out.next, Next::Continue);
    assert!(effects_on(&out, 4).is_empty(), "forwarded unchanged");
    assert_eq!(limit_headers_of(&mut worker, 4), pair("1", "0"));
    let out = post(
        &mut worker,
        5,
        "/api/generate",
        r#"{"model": "llama3", "prompt": "x"}"#,
    );
    assert_eq!(reply_of(&out, 5).status, 429);
    assert_eq!(worker.audit(5)["code"], "RATE_LIMITED");
    // A model route's body must name its model when a limit counts by it (as under `models`).
    let out = post(&mut worker, 6, "/api/chat", r#"{"messages": []}"#);
    assert_eq!(reply_of(&out, 6).status, 400);
}

/// HTTP/2 lets a body end with trailers instead of an end-of-stream body callback: a body the
/// gateway holds is then refused, never sent on unread when the trailers callback continues.
#[test]
fn a_held_body_ended_by_trailers_is_refused_not_forwarded_unread() {
    let key = Key::new("k1");
    let mut worker = models_worker(&key);
    let token = key.token("erin", "chat");
    let headers = [
        (":method", "POST"),
        (":path", "/api/chat"),
        (":authority", "gw"),
        ("content-type", "application/json"),
    ]
    .into_iter()
    .map(|(name, value)| (name.to_string(), value.to_string()))
    .chain([("authorization".to_string(), format!("Bearer {token}"))])
    .collect();
    worker.gateway.on_request_headers(1, headers, false);
    let body = r#"{"model": "qwen3:32b", "messages": []}"#;
    *worker.host.state.request_body.borrow_mut() = body.as_bytes().to_vec();
    let held = worker.gateway.on_request_body(1, body.len(), false);
    assert_eq!(held.next, Next::Pause, "held until the whole body is in");
    let out = worker.gateway.on_request_trailers(1);
    assert_eq!(out.next, Next::Pause);
    assert_eq!(reply_of(&out, 1).status, 400);
    assert!(
        !effects_on(&out, 1).iter().any(|e| matches!(
            e,
            Effect::Forward { .. } | Effect::ReplaceRequestBody { .. }
        )),
        "{out:?}"
    );
    // A request already on its way (its body not read) keeps going.
    let (_, _) = models_post(&mut worker, 2, "/v1/anything", &token, "{}");
    let out = worker.gateway.on_request_trailers(2);
    assert!(out.effects.is_empty(), "{out:?}");
}

mod cors;
mod introspection;
mod mesh;
mod protection;
