//! Metrics in Envoy's own stats and the audit trail: counters move for each decision, a JWKS
//! fetch, cache hits and a stream's tokens; audit records carry the decision and never a token
//! or cookie; body sampling at 0 and 1.

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use test_harness::idp::JwksServer;
use test_harness::ollama::{self, OllamaConfig};
use test_harness::tokens::{claims, Hs256Key, RsaKey};
use test_harness::{Envoy, Request, Upstream};

const SECRET: &str = "observability-secret-of-32-bytes!";

/// Waits until `name` reaches `at_least` (stats are flushed shortly after the request).
fn counter_reaches(envoy: &Envoy, name: &str, at_least: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let value = envoy.gateway_counters().get(name).copied().unwrap_or(0);
        if value >= at_least || Instant::now() > deadline {
            return value;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn gateway(config: Value, upstream: Upstream) -> (Upstream, Envoy) {
    let envoy = Envoy::builder(&config.to_string())
        .upstream(upstream.addr())
        .env("JWT_SECRET", SECRET)
        .start()
        .unwrap_or_else(|e| panic!("envoy did not start: {}", e.log));
    (upstream, envoy)
}

fn token(sub: &str, scope: &str) -> String {
    Hs256Key::new(SECRET.as_bytes()).mint(&claims("https://idp.test", "gw", sub, scope))
}

fn provider() -> Value {
    json!([{"name": "sso", "issuer": "https://idp.test", "audiences": ["gw"], "hs256_secret": {"env": "JWT_SECRET"}}])
}

#[test]
fn counters_move_for_each_decision() {
    let config = json!({
        "providers": provider(),
        "rules": [{"match": {"prefix": "/admin"}, "scopes": ["admin"]}],
        "rate_limits": [{"name": "tight", "key": "sub", "requests": 1, "window_s": 3600, "match": {"prefix": "/limited"}}],
        "limits": {"max_request_body_bytes": 100}
    });
    let (_upstream, envoy) = gateway(config, Upstream::start());
    let good = token("alice", "chat:read");
    let forged = Hs256Key::new(b"another-secret-another-secret-32!").mint(&claims(
        "https://idp.test",
        "gw",
        "eve",
        "",
    ));
    envoy.send(Request::get("/ok").bearer(&good));
    envoy.send(Request::get("/ok"));
    envoy.send(Request::get("/ok").bearer(&forged));
    envoy.send(Request::get("/admin").bearer(&good));
    envoy.send(Request::get("/limited").bearer(&good));
    envoy.send(Request::get("/limited").bearer(&good));
    envoy.send(Request::get("/a/../b").bearer(&good));
    envoy.send(Request::post("/ok").bearer(&good).body(vec![b'x'; 101]));
    for (name, expected) in [
        ("requests_allowed", 2),
        ("requests_missing_token", 1),
        ("requests_invalid_token_signature", 1),
        ("requests_insufficient_scope", 1),
        ("requests_rate_limited", 1),
        ("requests_too_large", 1),
        ("token_cache_hits", 1),
        ("token_cache_misses", 1),
    ] {
        assert!(
            counter_reaches(&envoy, name, expected) >= expected,
            "{name}: {:?}",
            envoy.gateway_counters()
        );
    }
    assert!(
        envoy.gateway_counters().contains_key("ratelimit_slots"),
        "{:?}",
        envoy.gateway_counters()
    );
}

#[test]
fn jwks_fetches_and_stream_tokens_are_counted() {
    let key = RsaKey::generate("k1", 2048);
    let jwks = JwksServer::start("/jwks", vec![key.jwk()]);
    let config = json!({
        "providers": [{"name": "sso", "issuer": "https://idp.test", "audiences": ["gw"],
                       "jwks": {"remote": {"cluster": "idp", "authority": "idp", "path": "/jwks"}}}],
        "translate": {"to": "ollama", "cluster": "upstream", "default_model": "qwen3:32b"}
    });
    let upstream = ollama::start(OllamaConfig::default());
    let envoy = Envoy::builder(&config.to_string())
        .upstream(upstream.addr())
        .idp(jwks.addr())
        .start()
        .unwrap_or_else(|e| panic!("envoy did not start: {}", e.log));
    assert!(counter_reaches(&envoy, "jwks_fetches_ok", 1) >= 1);
    let t = key.mint(&claims("https://idp.test", "gw", "bob", ""));
    let response = envoy.send(Request::post("/v1/chat/completions").bearer(&t).json(&json!({
        "stream": true, "messages": [{"role": "user", "content": "count these words please"}]
    })));
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(counter_reaches(&envoy, "translated_streams", 1) >= 1);
    assert!(counter_reaches(&envoy, "llm_completion_tokens", 1) >= 1);
    assert!(counter_reaches(&envoy, "llm_prompt_tokens", 1) >= 1);
    let records = envoy.wait_for_audit_records(1);
    let chat = records
        .iter()
        .find(|r| r["path"] == "/v1/chat/completions")
        .expect("audit record");
    assert_eq!(chat["model"], "qwen3:32b");
    assert!(chat["completion_tokens"].as_u64().unwrap() > 0, "{chat}");
}

#[test]
fn audit_records_have_the_decision_and_never_a_secret() {
    let config = json!({"providers": provider(), "token": {"cookie": "gw_session"}, "audit": {"sample_bodies": 0}});
    let (_upstream, envoy) = gateway(config, Upstream::start());
    let good = token("carol", "chat:read");
    envoy.send(
        Request::get("/allowed?q=1")
            .bearer(&good)
            .header("x-request-id", "req-allowed"),
    );
    envoy.send(
        Request::get("/refused")
            .header("cookie", "gw_session=not.a.valid-token")
            .header("x-request-id", "req-refused"),
    );
    envoy.send(
        Request::post("/posted")
            .bearer(&good)
            .header("x-request-id", "req-body")
            .body("secret prompt text"),
    );
    let records = envoy.wait_for_audit_records(3);
    // Envoy (at the edge) replaces a client's x-request-id with its own: find records by path.
    let by_path = |path: &str| {
        records
            .iter()
            .find(|r| r["path"] == path)
            .unwrap_or_else(|| panic!("{path}: {records:?}"))
            .clone()
    };
    let allowed = by_path("/allowed");
    assert!(allowed["request_id"]
        .as_str()
        .is_some_and(|id| id != "req-allowed"));
    assert_eq!(allowed["decision"], "allowed");
    assert_eq!(allowed["sub"], "carol");
    assert_eq!(allowed["provider"], "sso");
    assert_eq!(allowed["status"], 200);
    assert_eq!(allowed["path"], "/allowed", "no query in the record");
    assert!(allowed["client"].is_string() && allowed["duration_ms"].is_u64());
    let refused = by_path("/refused");
    assert_eq!(refused["decision"], "refused");
    assert_eq!(refused["code"], "AUTH_INVALID_TOKEN");
    assert_eq!(refused["status"], 401);
    assert!(
        by_path("/posted").get("request_body").is_none(),
        "sampling 0: no bodies"
    );
    // Envoy's own access log carries the record too.
    let deadline = Instant::now() + Duration::from_secs(10);
    while !envoy.access_log().contains("/allowed") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        envoy.access_log().contains("\"decision\":\"allowed\""),
        "{}",
        envoy.access_log()
    );
    for secret in [good.as_str(), "not.a.valid-token", SECRET] {
        assert!(
            !envoy.log().contains(secret),
            "the Envoy log contains a secret"
        );
        assert!(
            !envoy.access_log().contains(secret),
            "the access log contains a secret"
        );
    }
}

#[test]
fn sampling_at_one_logs_truncated_bodies() {
    let config =
        json!({"providers": provider(), "audit": {"sample_bodies": 1, "max_logged_body_bytes": 8}});
    let (_upstream, envoy) = gateway(config, Upstream::start());
    let response = envoy.send(
        Request::post("/posted")
            .bearer(&token("dan", ""))
            .header("x-request-id", "req-sampled")
            .body("0123456789abcdef"),
    );
    assert_eq!(response.status, 200);
    let records = envoy.wait_for_audit_records(1);
    let record = records
        .iter()
        .find(|r| r["path"] == "/posted")
        .expect("record");
    assert_eq!(record["request_body"], "01234567");
    assert_eq!(record["response_body"], "{\"ok\":tr");
}

#[test]
fn at_wasm_log_level_warning_the_access_log_alone_carries_the_record() {
    let config = json!({"providers": provider(), "audit": {"sample_bodies": 0}});
    let upstream = Upstream::start();
    let envoy = Envoy::builder(&config.to_string())
        .upstream(upstream.addr())
        .env("JWT_SECRET", SECRET)
        .log_level("warning")
        .start()
        .unwrap_or_else(|e| panic!("envoy did not start: {}", e.log));
    let good = token("dave", "chat:read");
    for path in ["/quiet-1", "/quiet-2"] {
        assert_eq!(envoy.send(Request::get(path).bearer(&good)).status, 200);
    }
    let deadline = Instant::now() + Duration::from_secs(10);
    while !envoy.access_log().contains("/quiet-2") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    let access = envoy.access_log();
    assert!(
        access.contains("\"decision\":\"allowed\"") && access.contains("\"sub\":\"dave\""),
        "{access}"
    );
    assert!(
        !envoy.log().contains("ai-gateway audit"),
        "the plugin's own line follows Envoy's log level:\n{}",
        envoy.log()
    );
}

#[test]
fn records_off_writes_no_audit_but_keeps_the_metrics() {
    let config = json!({"providers": provider(), "audit": {"records": false}});
    let (_upstream, envoy) = gateway(config, Upstream::start());
    let good = token("erin", "chat:read");
    assert_eq!(envoy.send(Request::get("/off").bearer(&good)).status, 200);
    counter_reaches(&envoy, "requests_allowed", 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    while !envoy.access_log().contains("/off") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        envoy.access_log().contains("/off"),
        "{}",
        envoy.access_log()
    );
    assert!(
        !envoy.access_log().contains("\"decision\""),
        "no record in the access log: {}",
        envoy.access_log()
    );
    assert!(envoy.audit_records().is_empty(), "no plugin audit line");
}

#[test]
fn the_plugins_own_log_line_is_off_unless_asked_for() {
    for log_line in [false, true] {
        let config = json!({"providers": provider(), "audit": {"log_line": log_line}});
        let (_upstream, envoy) = gateway(config, Upstream::start());
        let response = envoy.send(Request::get("/lined").bearer(&token("erin", "")));
        assert_eq!(response.status, 200);
        let records = envoy.wait_for_audit_records(1);
        assert_eq!(records.len(), 1, "the access log always carries the record");
        assert_eq!(records[0]["sub"], "erin");
        if log_line {
            let deadline = Instant::now() + Duration::from_secs(10);
            while envoy.audit_log_lines().is_empty() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(50));
            }
            assert_eq!(envoy.audit_log_lines(), records, "the same record, once");
        } else {
            assert!(
                !envoy.log().contains("ai-gateway audit"),
                "no plugin line by default"
            );
        }
    }
}
