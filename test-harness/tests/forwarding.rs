//! The plugin loads in a real Envoy and, where no auth is required, forwards requests unchanged
//! except for the identity headers a client must never set.

use serde_json::json;
use test_harness::{Envoy, Request, Upstream};

const OPEN: &str = r#"{"default_rule": {"auth": "none"}}"#;

fn open_gateway() -> (Upstream, Envoy) {
    let upstream = Upstream::start();
    let envoy = Envoy::builder(OPEN)
        .upstream(upstream.addr())
        .start()
        .unwrap_or_else(|e| panic!("envoy did not start: {}", e.log));
    (upstream, envoy)
}

#[test]
fn plugin_loads_and_says_so() {
    let (_upstream, envoy) = open_gateway();
    assert!(
        envoy.log().contains("ai-gateway: configuration loaded"),
        "{}",
        envoy.log_tail(40)
    );
}

#[test]
fn request_reaches_upstream_unchanged() {
    let (upstream, envoy) = open_gateway();
    let body = json!({"model": "qwen3", "messages": [{"role": "user", "content": "héllo"}]});
    let response = envoy.send(
        Request::post("/v1/chat/completions?trace=1")
            .header("x-custom", "kept as is")
            .header("accept", "application/json")
            .json(&body),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.json(), json!({"ok": true}));

    let received = upstream.requests();
    assert_eq!(received.len(), 1);
    let r = &received[0];
    assert_eq!(r.method, "POST");
    assert_eq!(r.path, "/v1/chat/completions?trace=1");
    assert_eq!(r.header("x-custom"), Some("kept as is"));
    assert_eq!(r.header("accept"), Some("application/json"));
    assert_eq!(r.header("content-type"), Some("application/json"));
    assert_eq!(r.body, body.to_string().into_bytes());
}

#[test]
fn spoofed_identity_headers_never_reach_upstream() {
    let (upstream, envoy) = open_gateway();
    let response = envoy.send(
        Request::get("/v1/models")
            .header("x-user-id", "admin")
            .header("X-User-Id", "root")
            .header("x-user-scopes", "chat:write admin"),
    );
    assert_eq!(response.status, 200);
    let r = &upstream.requests()[0];
    assert!(r.header_values("x-user-id").is_empty(), "{:?}", r.headers);
    assert!(
        r.header_values("x-user-scopes").is_empty(),
        "{:?}",
        r.headers
    );
}

#[test]
fn non_utf8_header_values_do_not_break_the_vm() {
    let (upstream, envoy) = open_gateway();
    for _ in 0..3 {
        let response = envoy.send(Request::get("/x").header("x-weird", b"caf\xe9 \xff\xfe"));
        assert_eq!(response.status, 200, "{}", response.text());
    }
    assert_eq!(upstream.requests().len(), 3);
    assert!(!envoy.log().contains("panic"), "{}", envoy.log_tail(40));
}

#[test]
fn chunked_body_within_the_limit_is_forwarded_whole() {
    let upstream = Upstream::start();
    let envoy = Envoy::builder(
        r#"{"default_rule": {"auth": "none"}, "limits": {"max_request_body_bytes": 100000}}"#,
    )
    .upstream(upstream.addr())
    .start()
    .unwrap_or_else(|e| panic!("envoy did not start: {}", e.log));
    let chunks: Vec<Vec<u8>> = (0..10).map(|i| vec![b'a' + i as u8; 9000]).collect();
    let expected: Vec<u8> = chunks.concat();
    let response = envoy.send(Request::post("/upload").chunked(chunks));
    assert_eq!(response.status, 200, "{}", response.text());
    let received = upstream.requests();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].body.len(), expected.len());
    assert!(received[0].body == expected);
}
