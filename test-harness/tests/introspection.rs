//! Opaque access tokens checked by RFC 7662 introspection against the real OpenID Provider
//! (npm oidc-provider, its introspection endpoint enabled): active and revoked tokens, scopes,
//! the shared cache and its expiry, one call for a burst, and an IdP that is down.

use std::sync::{Arc, Barrier};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use test_harness::contract::assert_contract_error;
use test_harness::oidc::{OidcClient, OidcOptions, OidcProvider};
use test_harness::opaque::{access_token, refresh_token, revoke};
use test_harness::{Envoy, Request, Upstream};

const SCOPE: &str = "openid chat:read chat:write";

fn config(idp: &OidcProvider, cache_ttl_s: u64) -> Value {
    let client = OidcClient::default();
    json!({
        "providers": [{"name": "opaque", "audiences": [client.client_id],
            "issuer": idp.issuer,
            "introspection": {"cluster": "idp", "authority": idp.host_port(),
                "path": "/token/introspection", "client_id": client.client_id,
                "client_secret": {"env": "INTROSPECTION_SECRET"},
                "cache_ttl_s": cache_ttl_s, "timeout_ms": 1000}}],
        "rules": [{"match": {"path": "/v1/chat/completions", "methods": ["POST"]}, "scopes": ["chat:write"]}],
        "default_rule": {"auth": "required", "scopes": []}
    })
}

fn gateway(idp: &OidcProvider, upstream: &Upstream, cache_ttl_s: u64, workers: u32) -> Envoy {
    Envoy::builder(&config(idp, cache_ttl_s).to_string())
        .upstream(upstream.addr())
        .idp(idp.addr)
        .concurrency(workers)
        .env("INTROSPECTION_SECRET", &OidcClient::default().client_secret)
        .start()
        .unwrap_or_else(|e| panic!("envoy did not start: {}", e.log))
}

fn calls(envoy: &Envoy) -> u64 {
    envoy
        .gateway_counters()
        .get("introspection_calls")
        .copied()
        .unwrap_or(0)
}

fn get(envoy: &Envoy, token: &str) -> test_harness::Response {
    Request::get("/v1/models")
        .bearer(token)
        .send(envoy.addr())
        .expect("response")
}

#[test]
fn active_tokens_pass_with_their_subject_and_revoked_ones_stop_once_the_cache_expires() {
    let idp = OidcProvider::start(OidcOptions::default());
    let upstream = Upstream::start();
    let envoy = gateway(&idp, &upstream, 2, 1);
    let client = OidcClient::default();
    let alice = access_token(&idp, &client, "alice", SCOPE);

    let ok = get(&envoy, &alice);
    assert_eq!(ok.status, 200, "{}", ok.text());
    let seen = upstream.requests();
    let last = seen.last().expect("forwarded");
    let header = |name: &str| {
        last.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(header("x-user-id"), Some("alice"));
    assert!(header("x-user-scopes").is_some_and(|s| s.contains("chat:write")));
    assert_eq!(calls(&envoy), 1);
    // Cached: no second call.
    assert_eq!(get(&envoy, &alice).status, 200);
    assert_eq!(calls(&envoy), 1);

    // bob holds chat:read only: the chat route's scope is missing.
    let bob = access_token(&idp, &client, "bob", SCOPE);
    let chat = Request::post("/v1/chat/completions")
        .bearer(&bob)
        .header("content-type", "application/json")
        .body(r#"{"model":"m","messages":[]}"#)
        .send(envoy.addr())
        .expect("response");
    assert_contract_error(&chat, 403, "AUTH_INSUFFICIENT_SCOPE");

    // A token the IdP never issued: inactive.
    let unknown = get(&envoy, "NotATokenTheIdPKnows0123456789abcdefghij");
    assert_contract_error(&unknown, 401, "AUTH_INVALID_TOKEN");
    assert!(
        unknown.text().contains("token is not active"),
        "{}",
        unknown.text()
    );

    // Revoked: still served from the cache until it expires (cache_ttl_s), then refused.
    revoke(&idp, &client, &alice);
    assert_eq!(get(&envoy, &alice).status, 200, "within cache_ttl_s");
    thread::sleep(Duration::from_millis(2200));
    let revoked = get(&envoy, &alice);
    assert_contract_error(&revoked, 401, "AUTH_INVALID_TOKEN");
    assert!(calls(&envoy) >= 4, "the expired answer was asked again");
    let forwarded = upstream.requests().len();
    assert_eq!(forwarded, 3, "refused requests never reached the upstream");
}

#[test]
fn a_burst_with_one_new_token_on_both_workers_makes_one_call() {
    let idp = OidcProvider::start(OidcOptions::default());
    let upstream = Upstream::start();
    let envoy = gateway(&idp, &upstream, 60, 2);
    let token = access_token(&idp, &OidcClient::default(), "alice", SCOPE);
    let clients = 16;
    let barrier = Arc::new(Barrier::new(clients));
    let addr = envoy.addr();
    let handles: Vec<_> = (0..clients)
        .map(|_| {
            let (barrier, token) = (Arc::clone(&barrier), token.clone());
            thread::spawn(move || {
                barrier.wait();
                Request::get("/v1/models")
                    .bearer(&token)
                    .send(addr)
                    .expect("response")
                    .status
            })
        })
        .collect();
    for handle in handles {
        assert_eq!(handle.join().expect("client"), 200);
    }
    assert_eq!(
        calls(&envoy),
        1,
        "one introspection call for the whole burst"
    );
}

#[test]
fn an_idp_that_is_down_gives_503_with_retry_after_and_forwards_nothing() {
    let mut idp = OidcProvider::start(OidcOptions::default());
    let upstream = Upstream::start();
    let envoy = gateway(&idp, &upstream, 60, 1);
    let token = access_token(&idp, &OidcClient::default(), "alice", SCOPE);
    idp.stop();
    let started = Instant::now();
    let down = get(&envoy, &token);
    assert_contract_error(&down, 503, "INTROSPECTION_UNAVAILABLE");
    assert!(down.header("retry-after").is_some(), "Retry-After");
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "within the timeout"
    );
    assert!(upstream.requests().is_empty(), "never fail open");
}

#[test]
fn a_refresh_token_is_not_an_access_token() {
    // oidc-provider answers `active` for it, naming no token type (access tokens: `Bearer`).
    let idp = OidcProvider::start(OidcOptions::default());
    let upstream = Upstream::start();
    let envoy = gateway(&idp, &upstream, 60, 1);
    let refresh = refresh_token(&idp, &OidcClient::default(), "alice", SCOPE);
    let refused = get(&envoy, &refresh);
    assert_contract_error(&refused, 401, "AUTH_INVALID_TOKEN");
    assert!(upstream.requests().is_empty());
}
