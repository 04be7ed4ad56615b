//! CORS in a real Envoy, from headless Chromium: a page on an allowed origin calls the gateway
//! with a bearer token (the browser's preflight is answered by the gateway, never forwarded),
//! reads the answer and then a 429's `Retry-After` through CORS; a page on another origin is
//! refused at its preflight and its call never reaches the model server.

use std::process::Command;

use serde_json::{json, Value};
use test_harness::ollama::{self, OllamaConfig};
use test_harness::paths;
use test_harness::tokens::{claims, Hs256Key};
use test_harness::upstream::Reply;
use test_harness::{Envoy, Request, Upstream};

const SECRET: &str = "cors-tests-secret-of-32-bytes-ok!";

/// A server for one origin: `/app.html`, an empty page to run `fetch` from.
fn page_server() -> Upstream {
    Upstream::with_handler(|_| Reply {
        status: 200,
        headers: vec![("content-type".into(), "text/html; charset=utf-8".into())],
        body: test_harness::upstream::ReplyBody::Full(
            b"<!doctype html><title>app</title><p>another origin</p>".to_vec(),
        ),
    })
}

fn origin(server: &Upstream) -> String {
    format!("http://127.0.0.1:{}", server.addr().port())
}

#[test]
fn a_page_on_an_allowed_origin_calls_with_a_bearer_token_and_reads_retry_after() {
    let allowed = page_server();
    let other = page_server();
    let upstream = ollama::start(OllamaConfig::default());
    let config = json!({
        "providers": [{"name": "sso", "issuer": "https://idp.test", "audiences": ["gw"],
                       "hs256_secret": {"env": "JWT_SECRET"}}],
        "default_rule": {"auth": "required"},
        "translate": {"to": "ollama", "default_model": "qwen3:32b"},
        "rate_limits": [{"name": "per-user", "key": "sub", "requests": 1, "window_s": 60}],
        "cors": {"allow_origins": [origin(&allowed)]}
    });
    let envoy = Envoy::builder(&config.to_string())
        .upstream(upstream.addr())
        .env("JWT_SECRET", SECRET)
        .start()
        .unwrap_or_else(|e| panic!("envoy did not start: {}", e.log));
    let token = Hs256Key::new(SECRET.as_bytes()).mint(&claims(
        "https://idp.test",
        "gw",
        "alice",
        "chat:write",
    ));
    let root = paths::repo_root();
    let output = Command::new("node")
        .arg(root.join("test-harness/browser/cors.mjs"))
        .args(["--gateway", &format!("http://{}", envoy.addr())])
        .args(["--token", &token, "--count", "2"])
        .args(["--page", &format!("{}/app.html", origin(&allowed))])
        .args(["--page", &format!("{}/app.html", origin(&other))])
        .current_dir(&root)
        .output()
        .expect("run node");
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        output.status.success(),
        "the browser run failed:\n{stdout}{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let results: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    let allowed_calls = &results[0]["calls"];
    assert_eq!(allowed_calls[0]["status"], 200, "{results}");
    let answer: Value = serde_json::from_str(allowed_calls[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(answer["object"], "chat.completion", "{answer}");
    assert_eq!(
        allowed_calls[0]["remaining"], "0",
        "exposed to the page: {results}"
    );
    // The limit is spent: the page reads the gateway's own 429 and its Retry-After.
    assert_eq!(allowed_calls[1]["status"], 429, "{results}");
    assert!(
        allowed_calls[1]["retryAfter"]
            .as_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            > 0,
        "{results}"
    );
    let refusal: Value = serde_json::from_str(allowed_calls[1]["body"].as_str().unwrap()).unwrap();
    assert_eq!(refusal["error"]["code"], "RATE_LIMITED");
    // Another origin: the preflight is refused, so the browser never sends the call.
    for call in results[1]["calls"].as_array().unwrap() {
        assert!(
            call["error"].as_str().unwrap().contains("Failed to fetch"),
            "{results}"
        );
    }
    // The model server saw one chat, and never an OPTIONS.
    let seen = upstream.requests();
    assert_eq!(
        seen.len(),
        1,
        "{:?}",
        seen.iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    assert!(seen.iter().all(|r| r.method != "OPTIONS"));
    // What the browser sent and got, seen raw: the refused preflight in the contract shape.
    let response = envoy.send(
        Request::new("OPTIONS", "/v1/chat/completions")
            .header("origin", origin(&other))
            .header("access-control-request-method", "POST"),
    );
    assert_eq!(response.status, 403);
    assert_eq!(response.json()["error"]["code"], "CORS_ORIGIN_NOT_ALLOWED");
    let response = envoy.send(
        Request::new("OPTIONS", "/v1/chat/completions")
            .header("origin", origin(&allowed))
            .header("access-control-request-method", "POST")
            .header(
                "access-control-request-headers",
                "authorization,content-type",
            ),
    );
    assert_eq!(response.status, 204);
    assert_eq!(
        response.header("access-control-allow-origin"),
        Some(origin(&allowed).as_str())
    );
    assert_eq!(response.header("vary"), Some("Origin"));
}
