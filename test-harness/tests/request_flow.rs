//! One request flow in a real Envoy with two workers: a request that had to wait for its
//! provider's keys (at start, before the first JWKS answer, and on key rotation) is answered
//! exactly like one that did not: the same status and body, the same upstream requests, the
//! same audit record (decision and `sub`, also for a scope refusal) and the same counters. A
//! waiting request is answered within one fetch timeout plus one tick whatever the IdP does,
//! with at most one fetch in flight.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use test_harness::contract::{assert_insufficient_scope, assert_invalid_token};
use test_harness::idp::{JwksBehaviour, JwksServer};
use test_harness::ollama::{self, OllamaConfig};
use test_harness::tokens::{claims, RsaKey};
use test_harness::{Envoy, Request, Response, Upstream};

const ISSUER: &str = "https://idp.test";
const AUDIENCE: &str = "gw";
const JWKS_PATH: &str = "/keys";
const WORKERS: usize = 2;

fn first_key() -> &'static RsaKey {
    static KEY: OnceLock<RsaKey> = OnceLock::new();
    KEY.get_or_init(|| RsaKey::generate("flow-1", 2048))
}

fn rotated_key() -> &'static RsaKey {
    static KEY: OnceLock<RsaKey> = OnceLock::new();
    KEY.get_or_init(|| RsaKey::generate("flow-2", 2048))
}

/// Remote JWKS, translation to Ollama, the browser-login section (for its userinfo endpoint)
/// and a scope rule: every kind of answer the issue found differing once a request waited.
fn config(timeout_ms: u64) -> String {
    json!({
        "providers": [{
            "name": "sso", "issuer": ISSUER, "audiences": [AUDIENCE], "algorithms": ["RS256"],
            "jwks": {"remote": {"cluster": "idp", "authority": "idp.test", "path": JWKS_PATH,
                                "cache_ttl_s": 600, "min_refresh_interval_s": 1,
                                "timeout_ms": timeout_ms}}
        }],
        "rules": [
            {"match": {"path": "/v1/chat/completions", "methods": ["POST"]}, "scopes": ["chat:write"]},
            {"match": {"prefix": "/v1/models"}, "scopes": ["chat:read"]},
            {"match": {"path": "/oauth2/userinfo"}, "auth": "required"}
        ],
        "default_rule": {"auth": "required", "scopes": ["gateway:admin"]},
        "translate": {"to": "ollama", "default_model": "qwen3:32b", "cluster": "upstream",
                      "authority": "ollama"},
        "oauth2": {
            "cluster": "idp", "authority": "idp.test", "issuer": "http://idp.test/login",
            "client_id": "gw", "client_secret": {"env": "OAUTH_CLIENT_SECRET"},
            "redirect_uri": "http://gw.test/oauth2/callback", "allow_insecure_cookies": true,
            "session": {"secret": {"env": "SESSION_SECRET"}}
        }
    })
    .to_string()
}

struct Setup {
    upstream: Upstream,
    idp: JwksServer,
    envoy: Envoy,
}

fn start(idp: JwksServer, timeout_ms: u64) -> Setup {
    let upstream = ollama::start(OllamaConfig::default());
    let envoy = Envoy::builder(&config(timeout_ms))
        .upstream(upstream.addr())
        .idp(idp.addr())
        .concurrency(WORKERS as u32)
        .env("OAUTH_CLIENT_SECRET", "client-secret-for-the-flow-tests")
        .env(
            "SESSION_SECRET",
            "session-secret-for-the-request-flow-tests-0123456789",
        )
        .start()
        .unwrap_or_else(|e| panic!("envoy did not start: {}", e.log));
    Setup {
        upstream,
        idp,
        envoy,
    }
}

/// A reader (may list models, may not chat) and a writer, signed by `key`.
struct Callers {
    reader: String,
    writer: String,
}

impl Callers {
    fn signed_by(key: &RsaKey) -> Self {
        Self {
            reader: key.mint(&claims(ISSUER, AUDIENCE, "alice", "chat:read")),
            writer: key.mint(&claims(ISSUER, AUDIENCE, "bob", "chat:read chat:write")),
        }
    }

    /// One request of each kind: the gateway's own userinfo answer, a model list translated
    /// from `/api/tags`, a scope refusal of a verified caller, a translated non-streamed chat.
    fn requests(&self) -> Vec<Request> {
        let chat = json!({"model": "qwen3:32b", "messages": [{"role": "user", "content": "hi"}]});
        vec![
            Request::get("/oauth2/userinfo").bearer(&self.reader),
            Request::get("/v1/models").bearer(&self.reader),
            Request::post("/v1/chat/completions")
                .bearer(&self.reader)
                .json(&chat),
            Request::post("/v1/chat/completions")
                .bearer(&self.writer)
                .json(&chat),
        ]
    }
}

/// What a round of requests led to, in a form two rounds can be compared by.
#[derive(Debug, PartialEq)]
struct Outcome {
    /// Per request kind: status, content type and body (a chat's `id` and `created` removed).
    answers: Vec<(u16, Option<String>, Value)>,
    /// The upstream's requests (method and path), sorted.
    upstream: Vec<String>,
    /// The audit records' decision fields, sorted.
    audit: Vec<String>,
    /// How much each decision counter moved.
    counters: Vec<(&'static str, u64)>,
}

const COUNTED: &[&str] = &[
    "requests_allowed",
    "requests_insufficient_scope",
    "requests_invalid_token_key",
    "requests_jwks_unavailable",
    "translated_requests",
];

fn comparable(response: &Response) -> (u16, Option<String>, Value) {
    let mut body: Value =
        serde_json::from_slice(&response.body).unwrap_or_else(|_| Value::String(response.text()));
    if let Some(fields) = body.as_object_mut() {
        fields.remove("id");
        fields.remove("created");
    }
    (
        response.status,
        response.header("content-type").map(str::to_string),
        body,
    )
}

/// Sends `copies` of each of `callers`' requests at once, each on its own connection (so both
/// workers take some); returns what they led to and the shortest time one took.
fn round(s: &Setup, callers: &Callers, copies: usize) -> (Outcome, Duration) {
    let before_upstream = s.upstream.requests().len();
    let before_audit = s.envoy.audit_records().len();
    let before_counters = s.envoy.gateway_counters();
    let requests = callers.requests();
    let kinds = requests.len();
    let results: Vec<(usize, Response, Duration)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..copies)
            .flat_map(|_| requests.iter().cloned().enumerate())
            .map(|(kind, request)| {
                let envoy = &s.envoy;
                scope.spawn(move || {
                    let started = Instant::now();
                    let response = envoy.send(request);
                    (kind, response, started.elapsed())
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let mut answers: Vec<Option<(u16, Option<String>, Value)>> = vec![None; kinds];
    for (kind, response, _) in &results {
        let answer = comparable(response);
        match &answers[*kind] {
            None => answers[*kind] = Some(answer),
            Some(first) => assert_eq!(first, &answer, "copies of one request differ"),
        }
    }
    let fastest = results.iter().map(|(_, _, took)| *took).min().unwrap();
    let mut audit: Vec<String> = s.envoy.wait_for_audit_records(before_audit + results.len())
        [before_audit..]
        .iter()
        .map(|r| {
            format!(
                "{} {} decision={} sub={} provider={} rule={} code={} status={}",
                r["method"],
                r["path"],
                r["decision"],
                r["sub"],
                r["provider"],
                r["rule"],
                r["code"],
                r["status"]
            )
        })
        .collect();
    audit.sort();
    let mut upstream: Vec<String> = s.upstream.requests()[before_upstream..]
        .iter()
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    upstream.sort();
    // Counters are flushed to the stats shortly after the request.
    std::thread::sleep(Duration::from_millis(300));
    let after = s.envoy.gateway_counters();
    let counters = COUNTED
        .iter()
        .map(|name| {
            let moved = after.get(*name).copied().unwrap_or(0)
                - before_counters.get(*name).copied().unwrap_or(0);
            (*name, moved)
        })
        .collect();
    let outcome = Outcome {
        answers: answers.into_iter().map(Option::unwrap).collect(),
        upstream,
        audit,
        counters,
    };
    (outcome, fastest)
}

/// What every round must show, waited or not.
fn assert_answered_by_the_gateway(outcome: &Outcome, copies: usize) {
    let [userinfo, models, refused, chat] = &outcome.answers[..] else {
        panic!("{outcome:?}")
    };
    assert_eq!(userinfo.0, 200, "{outcome:#?}");
    assert_eq!(userinfo.2["sub"], "alice", "{outcome:#?}");
    assert_eq!(models.0, 200, "{outcome:#?}");
    assert_eq!(models.2["object"], "list", "{outcome:#?}");
    assert_eq!(refused.0, 403, "{outcome:#?}");
    assert_eq!(chat.0, 200, "{outcome:#?}");
    assert_eq!(chat.2["object"], "chat.completion", "{outcome:#?}");
    let mut expected = vec!["GET /api/tags".to_string(); copies];
    expected.extend(vec!["POST /api/chat".to_string(); copies]);
    assert_eq!(
        outcome.upstream, expected,
        "only the model server's own API is called"
    );
    assert!(
        outcome.audit.iter().all(|r| !r.contains("pending")),
        "{:#?}",
        outcome.audit
    );
    for record in &outcome.audit {
        assert!(
            !record.contains("sub=null"),
            "every caller was verified: {record}"
        );
    }
    assert!(
        outcome
            .audit
            .iter()
            .any(|r| r.contains("decision=\"refused\"")
                && r.contains("sub=\"alice\"")
                && r.contains("AUTH_INSUFFICIENT_SCOPE")),
        "a scope refusal names its subject: {:#?}",
        outcome.audit
    );
}

#[test]
fn requests_that_waited_for_keys_are_answered_like_those_that_did_not() {
    let idp = JwksServer::start(JWKS_PATH, vec![first_key().jwk()]);
    // The first JWKS answer comes late: the first requests wait for it.
    idp.set_behaviour(JwksBehaviour::Delay(Duration::from_millis(1500)));
    let s = start(idp, 4000);
    let copies = 3;
    let callers = Callers::signed_by(first_key());

    let (waited, fastest) = round(&s, &callers, copies);
    assert!(
        fastest >= Duration::from_millis(300),
        "the first round waited for the keys ({fastest:?})"
    );
    assert_eq!(s.idp.fetches(), 1, "one fetch for both workers");
    s.envoy.assert_every_worker_served(WORKERS);
    let (not_waited, _) = round(&s, &callers, copies);
    assert_answered_by_the_gateway(&not_waited, copies);
    assert_eq!(waited, not_waited, "at start");
    assert_insufficient_scope(
        &s.envoy.send(callers.requests().swap_remove(2)),
        "chat:write",
    );

    // Rotation: tokens signed by a key the gateway has not fetched yet wait for the refetch.
    std::thread::sleep(Duration::from_millis(1100)); // min_refresh_interval_s
    s.idp.set_keys(vec![first_key().jwk(), rotated_key().jwk()]);
    s.idp
        .set_behaviour(JwksBehaviour::Delay(Duration::from_millis(800)));
    let rotated = Callers::signed_by(rotated_key());
    let (waited, fastest) = round(&s, &rotated, copies);
    assert!(
        fastest >= Duration::from_millis(300),
        "the rotated tokens waited for the refetch ({fastest:?})"
    );
    assert_eq!(s.idp.fetches(), 2, "one refetch for both workers");
    let (not_waited, _) = round(&s, &rotated, copies);
    assert_answered_by_the_gateway(&not_waited, copies);
    assert_eq!(waited, not_waited, "on rotation");
}

/// Sends `n` requests with `token` at once; every answer and how long the slowest took.
fn burst(envoy: &Envoy, token: &str, n: usize) -> (Vec<Response>, Duration) {
    let started = Instant::now();
    let responses = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|_| scope.spawn(|| envoy.send(Request::get("/v1/models").bearer(token))))
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().unwrap())
            .collect::<Vec<_>>()
    });
    (responses, started.elapsed())
}

#[test]
fn a_waiting_request_is_answered_within_one_fetch_timeout_whatever_the_idp_does() {
    const TIMEOUT_MS: u64 = 1500;
    let idp = JwksServer::start(JWKS_PATH, vec![first_key().jwk()]);
    let s = start(idp, TIMEOUT_MS);
    let known = Callers::signed_by(first_key());
    // Keys in: the first key's tokens verify.
    let deadline = Instant::now() + Duration::from_secs(10);
    while s
        .envoy
        .send(Request::get("/v1/models").bearer(&known.reader))
        .status
        != 200
    {
        assert!(Instant::now() < deadline, "{}", s.envoy.log_tail(20));
        std::thread::sleep(Duration::from_millis(100));
    }
    // A token naming a key the IdP never serves: a refetch, then the token's own refusal.
    let unknown = Callers::signed_by(rotated_key()).reader;
    let bound = Duration::from_millis(TIMEOUT_MS + 100 + 900);
    let garbage = JwksBehaviour::Body(b"{\"keys\": [{\"kty\": 7".to_vec());
    for behaviour in [
        JwksBehaviour::Delay(Duration::from_secs(20)),
        JwksBehaviour::Status(500),
        garbage,
    ] {
        std::thread::sleep(Duration::from_millis(1100)); // min_refresh_interval_s
        s.idp.set_behaviour(behaviour.clone());
        let fetches = s.idp.fetches();
        let (responses, slowest) = burst(&s.envoy, &unknown, 8);
        for response in &responses {
            assert_invalid_token(response, "unknown kid");
        }
        assert!(slowest < bound, "{behaviour:?}: {slowest:?}");
        assert_eq!(s.idp.fetches(), fetches + 1, "{behaviour:?}: one fetch");
        // Tokens already verified keep working meanwhile.
        let response = s
            .envoy
            .send(Request::get("/v1/models").bearer(&known.reader));
        assert_eq!(response.status, 200, "{behaviour:?}");
    }

    // Held slow for longer than several timeouts: never two fetches in flight at once.
    s.idp
        .set_behaviour(JwksBehaviour::Delay(Duration::from_secs(20)));
    let ended = Instant::now() + Duration::from_millis(4 * TIMEOUT_MS);
    let first = s.idp.fetches();
    while Instant::now() < ended {
        let (responses, slowest) = burst(&s.envoy, &unknown, 2);
        assert!(slowest < bound, "{slowest:?}");
        for response in &responses {
            assert_invalid_token(response, "unknown kid");
        }
    }
    let times = s.idp.fetch_times();
    let during = &times[first..];
    assert!(!during.is_empty());
    for pair in during.windows(2) {
        assert!(
            pair[1] - pair[0] >= Duration::from_millis(TIMEOUT_MS - 100),
            "a fetch started while another was in flight: {:?}",
            pair[1] - pair[0]
        );
    }
    assert!(s.upstream.requests().iter().all(|r| r.path == "/api/tags"));
    s.envoy.assert_every_worker_served(WORKERS);

    // The IdP gone (its port closed): the same prompt refusal, known tokens unaffected.
    let Setup {
        upstream: _upstream,
        idp,
        envoy,
    } = s;
    drop(idp);
    std::thread::sleep(Duration::from_millis(TIMEOUT_MS + 200)); // the slow fetch ended
    let (responses, slowest) = burst(&envoy, &unknown, 8);
    for response in &responses {
        assert_invalid_token(response, "unknown kid");
    }
    assert!(slowest < bound, "IdP down: {slowest:?}");
    let response = envoy.send(Request::get("/v1/models").bearer(&known.reader));
    assert_eq!(response.status, 200, "IdP down");
}

/// Without Envoy's buffer filter after the gateway, the router has a chat's headers before its
/// body is judged. The gateway still answers a non-streamed chat with the one call it makes
/// itself: the routed copy is cut off before its body, so the model server never runs it.
#[test]
fn without_the_buffer_filter_a_fetched_chat_reaches_the_model_server_once() {
    let upstream = ollama::start(OllamaConfig::default());
    let config = json!({
        "default_rule": {"auth": "none"},
        "translate": {"to": "ollama", "default_model": "qwen3:32b"}
    });
    let envoy = Envoy::builder(&config.to_string())
        .upstream(upstream.addr())
        .buffer_filter(false)
        .start()
        .unwrap_or_else(|e| panic!("envoy did not start: {}", e.log));
    let chat = json!({"model": "qwen3:32b", "messages": [{"role": "user", "content": "hi"}]});
    let response = envoy.send(Request::post("/v1/chat/completions").json(&chat));
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json()["object"], "chat.completion");
    let models = envoy.send(Request::get("/v1/models"));
    assert_eq!(models.status, 200, "{}", models.text());
    std::thread::sleep(Duration::from_millis(300));
    let received = upstream.requests();
    let complete: Vec<String> = received
        .iter()
        .filter(|r| r.complete)
        .map(|r| format!("{} {}", r.method, r.path))
        .collect();
    assert_eq!(
        complete,
        vec!["POST /api/chat", "GET /api/tags"],
        "{received:?}"
    );
    assert!(
        received.iter().all(|r| r.complete || r.body.is_empty()),
        "{received:?}"
    );
}
