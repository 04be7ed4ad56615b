//! What the gateway refuses answers with the contract's JSON error, and the upstream receives
//! nothing.

use serde_json::json;
use test_harness::contract::{assert_contract_error, assert_invalid_token};
use test_harness::tokens::{claims, Hs256Key};
use test_harness::{Envoy, Request, Upstream};

const SECRET: &str = "an-hs256-secret-of-32-bytes-long!!";

/// `sections` with an HS256 provider (its secret from the host environment) added.
fn with_provider(sections: &str) -> String {
    let provider = r#""providers": [{"name": "sso", "issuer": "https://idp.test",
        "audiences": ["gw"], "hs256_secret": {"env": "JWT_SECRET"}}]"#;
    if sections.is_empty() {
        format!("{{{provider}}}")
    } else {
        format!("{{{provider}, {sections}}}")
    }
}

fn gateway(config: &str) -> (Upstream, Envoy) {
    let upstream = Upstream::start();
    let envoy = Envoy::builder(config)
        .upstream(upstream.addr())
        .env("JWT_SECRET", SECRET)
        .start()
        .unwrap_or_else(|e| panic!("envoy did not start: {}", e.log));
    (upstream, envoy)
}

#[test]
fn required_auth_without_token_is_401_missing_token() {
    let (upstream, envoy) = gateway(&with_provider(r#""default_rule": {"auth": "required"}"#));
    let response = envoy.send(
        Request::post("/v1/chat/completions")
            .json(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]})),
    );
    assert_contract_error(&response, 401, "AUTH_MISSING_TOKEN");
    assert_eq!(response.json()["error"]["type"], "authentication_error");
    assert_eq!(
        response.header("www-authenticate"),
        Some("Bearer realm=\"ai-gateway\"")
    );
    assert!(upstream.requests().is_empty());
}

#[test]
fn realm_comes_from_the_config() {
    let (_upstream, envoy) = gateway(&with_provider(r#""token": {"realm": "corp llm"}"#));
    let response = envoy.send(Request::get("/v1/models"));
    assert_eq!(
        response.header("www-authenticate"),
        Some("Bearer realm=\"corp llm\"")
    );
}

#[test]
fn malformed_or_ambiguous_credentials_are_401_invalid_token() {
    let (upstream, envoy) = gateway(&with_provider(r#""token": {"cookie": "gw_session"}"#));
    let token = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln";
    let cases: Vec<(&str, Request)> = vec![
        (
            "authorization scheme is not Bearer",
            Request::get("/x").header("authorization", "Basic dTpw"),
        ),
        (
            "malformed bearer token",
            Request::get("/x").header("authorization", "Bearer a b"),
        ),
        (
            "malformed bearer token",
            Request::get("/x").header("authorization", b"Bearer \xff\xfe"),
        ),
        (
            "more than one token in the request",
            Request::get("/x")
                .bearer(token)
                .header("cookie", format!("gw_session={token}")),
        ),
        (
            "token exceeds 8192 bytes",
            Request::get("/x").bearer(&"a".repeat(9000)),
        ),
        (
            "token is not a signed JWT",
            Request::get("/x").bearer("abc"),
        ),
    ];
    for (details, request) in cases {
        assert_invalid_token(&envoy.send(request), details);
    }
    assert!(upstream.requests().is_empty());
}

#[test]
fn a_token_signed_with_another_secret_is_never_forwarded() {
    let key = Hs256Key::new(b"some-other-secret-of-32-bytes-long");
    let token = key.mint(&claims("https://idp.test", "gw", "alice", "chat:read"));
    for auth in ["required", "optional"] {
        let (upstream, envoy) = gateway(&with_provider(&format!(
            r#""default_rule": {{"auth": "{auth}"}}"#
        )));
        let response = envoy.send(Request::get("/v1/models").bearer(&token));
        assert_invalid_token(&response, "invalid signature");
        assert!(upstream.requests().is_empty(), "{auth}");
        assert!(
            !envoy.log().contains(&token),
            "the token must never be logged"
        );
    }
}

#[test]
fn optional_auth_without_token_is_forwarded_anonymously() {
    let (upstream, envoy) = gateway(&with_provider(r#""default_rule": {"auth": "optional"}"#));
    let response = envoy.send(Request::get("/v1/models").header("x-user-id", "mallory"));
    assert_eq!(response.status, 200, "{}", response.text());
    let received = upstream.requests();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].header("x-user-id"), None);
}

#[test]
fn declared_oversized_body_is_413_and_nothing_is_forwarded() {
    let (upstream, envoy) = gateway(
        r#"{"default_rule": {"auth": "none"}, "limits": {"max_request_body_bytes": 1000}}"#,
    );
    let response = envoy.send(Request::post("/v1/chat/completions").body(vec![b'x'; 1001]));
    assert_contract_error(&response, 413, "REQUEST_TOO_LARGE");
    assert_eq!(response.json()["error"]["type"], "invalid_request_error");
    assert!(upstream.requests().is_empty());
}

#[test]
fn size_is_checked_before_auth() {
    let (upstream, envoy) = gateway(&with_provider(
        r#""limits": {"max_request_body_bytes": 10}"#,
    ));
    let response = envoy.send(Request::post("/v1/chat/completions").body(vec![b'x'; 11]));
    assert_contract_error(&response, 413, "REQUEST_TOO_LARGE");
    assert!(upstream.requests().is_empty());
}

#[test]
fn chunked_oversized_body_is_413_and_nothing_is_forwarded() {
    let (upstream, envoy) = gateway(
        r#"{"default_rule": {"auth": "none"}, "limits": {"max_request_body_bytes": 1000}}"#,
    );
    let chunks = vec![vec![b'x'; 600], vec![b'y'; 600]];
    let response = envoy.send(Request::post("/v1/chat/completions").chunked(chunks));
    assert_contract_error(&response, 413, "REQUEST_TOO_LARGE");
    // Give a late forward the chance to show up before concluding nothing was sent.
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(upstream.requests().is_empty(), "{:?}", upstream.requests());
}

#[test]
fn refusals_do_not_depend_on_the_worker() {
    // Two workers: many requests spread over both; every one is refused the same way.
    let (upstream, envoy) = gateway(&with_provider(""));
    for _ in 0..20 {
        let response = envoy.send(Request::get("/v1/models"));
        assert_contract_error(&response, 401, "AUTH_MISSING_TOKEN");
    }
    assert!(upstream.requests().is_empty());
}

#[test]
fn without_the_buffer_filter_a_refused_body_still_never_arrives_whole() {
    // Without Envoy's buffer filter the router has the headers before the body is judged: the
    // upstream then sees a request that is cut off (reset), never a complete one.
    let upstream = Upstream::start();
    let envoy = Envoy::builder(
        r#"{"default_rule": {"auth": "none"}, "limits": {"max_request_body_bytes": 1000}}"#,
    )
    .upstream(upstream.addr())
    .buffer_filter(false)
    .start()
    .unwrap_or_else(|e| panic!("envoy did not start: {}", e.log));
    let chunks = vec![vec![b'x'; 600], vec![b'y'; 600]];
    let response = envoy.send(Request::post("/v1/chat/completions").chunked(chunks));
    assert_contract_error(&response, 413, "REQUEST_TOO_LARGE");
    std::thread::sleep(std::time::Duration::from_millis(200));
    let received = upstream.requests();
    assert!(
        received.iter().all(|r| !r.complete && r.body.is_empty()),
        "{received:?}"
    );
}
