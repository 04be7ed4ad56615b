//! OpenAI clients against an Ollama upstream through the gateway: the official `openai` Python
//! SDK unmodified (chat, streaming, models, errors), and raw HTTP for what SDKs hide (chunk
//! splits, broken bodies, streaming latency, upstream failures).

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use test_harness::contract::assert_contract_error;
use test_harness::ollama::{self, Chunking, OllamaConfig};
use test_harness::openai_sdk;
use test_harness::tokens::{claims, Hs256Key};
use test_harness::upstream::Reply;
use test_harness::{Envoy, Request, Upstream};

const SECRET: &str = "translation-tests-secret-32-byte!";

fn config() -> String {
    json!({
        "providers": [{"name": "sso", "issuer": "https://idp.test", "audiences": ["gw"],
                       "hs256_secret": {"env": "JWT_SECRET"}}],
        "translate": {"from": "openai", "to": "ollama", "default_model": "qwen3:32b",
                      "model_aliases": {"gpt-4o": "qwen3:32b"}, "inject_user": true,
                      "cluster": "upstream", "authority": "ollama"},
        "limits": {"max_request_body_bytes": 65536}
    })
    .to_string()
}

fn gateway(upstream: Upstream) -> (Upstream, Envoy) {
    let envoy = Envoy::builder(&config())
        .upstream(upstream.addr())
        .env("JWT_SECRET", SECRET)
        .start()
        .unwrap_or_else(|e| panic!("envoy did not start: {}", e.log));
    (upstream, envoy)
}

fn token(sub: &str) -> String {
    Hs256Key::new(SECRET.as_bytes()).mint(&claims(
        "https://idp.test",
        "gw",
        sub,
        "chat:read chat:write",
    ))
}

/// Runs the openai SDK driver against `envoy`; its JSON line.
fn sdk(envoy: &Envoy, api_key: &str, scenario: &str, extra: &[&str]) -> Value {
    openai_sdk::run(envoy.addr(), api_key, scenario, extra)
}

#[test]
fn sdk_chat_completion_non_streaming() {
    let stand_in = OllamaConfig::default();
    let (upstream, envoy) = gateway(ollama::start(OllamaConfig::default()));
    let result = sdk(
        &envoy,
        &token("alice"),
        "chat",
        &["--model", "gpt-4o", "--message", "hello there"],
    );
    assert_eq!(result["ok"], true, "{result}");
    let expected = ollama::expected_text(
        &stand_in,
        &json!({"messages": [{"role": "user", "content": "hello there"}]}),
    );
    assert_eq!(result["content"], expected.as_str());
    assert_eq!(result["finish_reason"], "stop");
    assert!(
        result["usage"]["total_tokens"].as_u64().unwrap() > 0,
        "{result}"
    );
    // The upstream got Ollama's request: the aliased model, stream set explicitly, the caller.
    let sent: Value = serde_json::from_slice(&upstream.requests().last().unwrap().body).unwrap();
    assert_eq!(sent["model"], "qwen3:32b");
    assert_eq!(sent["stream"], false);
    assert_eq!(sent["user_id"], "alice");
}

#[test]
fn sdk_streaming_assembles_the_same_text_with_usage() {
    let stand_in = OllamaConfig::default();
    let (upstream, envoy) = gateway(ollama::start(OllamaConfig::default()));
    let result = sdk(
        &envoy,
        &token("bob"),
        "stream",
        &["--message", "stream this answer please"],
    );
    assert_eq!(result["ok"], true, "{result}");
    let expected = ollama::expected_text(
        &stand_in,
        &json!({"messages": [{"role": "user", "content": "stream this answer please"}]}),
    );
    assert_eq!(result["content"], expected.as_str());
    assert!(result["chunks"].as_u64().unwrap() > 2, "{result}");
    assert_eq!(result["finish_reason"], "stop");
    assert!(
        result["usage"]["completion_tokens"].as_u64().unwrap() > 0,
        "{result}"
    );
    let sent: Value = serde_json::from_slice(&upstream.requests().last().unwrap().body).unwrap();
    assert_eq!(sent["stream"], true);
    assert_eq!(sent["model"], "qwen3:32b", "default model");
}

#[test]
fn sdk_models_unknown_model_and_bad_token() {
    let (_upstream, envoy) = gateway(ollama::start(OllamaConfig {
        models: vec!["qwen3:32b".into(), "llama3.2:latest".into()],
        ..OllamaConfig::default()
    }));
    let token = token("carol");
    let models = sdk(&envoy, &token, "models", &[]);
    assert_eq!(models["ok"], true, "{models}");
    let ids: Vec<&str> = models["ids"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(Value::as_str)
        .collect();
    assert_eq!(ids, vec!["qwen3:32b", "llama3.2:latest"]);
    let one = sdk(&envoy, &token, "model", &["--model", "llama3.2:latest"]);
    assert_eq!(one["id"], "llama3.2:latest", "{one}");
    let missing = sdk(&envoy, &token, "chat", &["--model", "no-such-model"]);
    assert_eq!(missing["ok"], false);
    assert_eq!(missing["error_class"], "NotFoundError", "{missing}");
    let bad = sdk(&envoy, "not-a-valid-token", "chat", &[]);
    assert_eq!(bad["error_class"], "AuthenticationError", "{bad}");
    assert!(
        bad["message"]
            .as_str()
            .unwrap()
            .contains("Invalid or expired token"),
        "{bad}"
    );
}

/// Without `translate.cluster`, the answers the gateway fetches itself (model lists,
/// non-streamed chats) go to the cluster the request's route chose: the route is the one place
/// that names the model server.
#[test]
fn without_a_translate_cluster_the_gateways_own_calls_follow_the_route() {
    let mut config: Value = serde_json::from_str(&config()).unwrap();
    let translate = config["translate"].as_object_mut().unwrap();
    translate.remove("cluster");
    translate.remove("authority");
    let upstream = ollama::start(OllamaConfig::default());
    let envoy = Envoy::builder(&config.to_string())
        .upstream(upstream.addr())
        .env("JWT_SECRET", SECRET)
        .start()
        .unwrap_or_else(|e| panic!("envoy did not start: {}", e.log));
    let token = token("erin");
    let models = sdk(&envoy, &token, "models", &[]);
    assert_eq!(models["ok"], true, "{models}");
    let chat = sdk(
        &envoy,
        &token,
        "chat",
        &["--model", "gpt-4o", "--message", "hi"],
    );
    assert_eq!(chat["ok"], true, "{chat}");
    let paths: Vec<String> = upstream.requests().into_iter().map(|r| r.path).collect();
    assert_eq!(
        paths,
        vec!["/api/tags", "/api/chat"],
        "both through the route's cluster"
    );
}

/// A streamed chat over raw HTTP: the SSE body.
fn raw_stream(envoy: &Envoy, message: &str) -> String {
    let response = envoy.send(
        Request::post("/v1/chat/completions")
            .bearer(&token("dave"))
            .json(&json!({
                "model": "qwen3:32b", "stream": true, "stream_options": {"include_usage": true},
                "messages": [{"role": "user", "content": message}]
            })),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(response.header("content-type"), Some("text/event-stream"));
    response.text()
}

/// The SSE payloads with the per-response id and timestamp removed (they differ per request).
fn normalised_events(sse: &str) -> Vec<Value> {
    sse.split("\n\n")
        .filter_map(|event| event.strip_prefix("data: "))
        .map(|data| {
            if data == "[DONE]" {
                return json!("[DONE]");
            }
            let mut v: Value = serde_json::from_str(data).unwrap_or_else(|e| panic!("{e}: {data}"));
            if let Some(o) = v.as_object_mut() {
                o.remove("id");
                o.remove("created");
            }
            v
        })
        .collect()
}

#[test]
fn chunk_splits_anywhere_give_the_same_stream() {
    let message = "héllo wörld, ünïcode splits 你好";
    let mut outputs = Vec::new();
    for chunking in Chunking::VARIETY {
        let (_upstream, envoy) = gateway(ollama::start(OllamaConfig {
            chunking,
            ..OllamaConfig::default()
        }));
        outputs.push(normalised_events(&raw_stream(&envoy, message)));
    }
    for other in &outputs[1..] {
        assert_eq!(&outputs[0], other);
    }
    let events = &outputs[0];
    assert_eq!(events.last(), Some(&json!("[DONE]")));
    assert_eq!(events[0]["choices"][0]["delta"]["role"], "assistant");
    let usage = &events[events.len() - 2];
    assert_eq!(usage["choices"], json!([]));
    assert!(usage["usage"]["total_tokens"].as_u64().unwrap() > 0);
}

#[test]
fn the_first_chunk_arrives_before_the_model_finishes() {
    let (_upstream, envoy) = gateway(ollama::start(OllamaConfig {
        delay: Duration::from_millis(250),
        reply: Some("one two three four five six seven eight".into()),
        ..OllamaConfig::default()
    }));
    let mut stream = TcpStream::connect(envoy.addr()).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    let body = json!({"model": "qwen3:32b", "stream": true, "messages": [{"role": "user", "content": "hi"}]}).to_string();
    let request = Request::post("/v1/chat/completions")
        .bearer(&token("erin"))
        .body(body);
    let started = Instant::now();
    stream.write_all(&request.to_bytes()).unwrap();
    let mut reader = BufReader::new(stream);
    let mut first_data = None;
    let mut line = String::new();
    while reader.read_line(&mut line).unwrap() > 0 {
        if line.starts_with("data: ") && first_data.is_none() {
            first_data = Some(started.elapsed());
        }
        line.clear();
    }
    let total = started.elapsed();
    let first = first_data.expect("a data event");
    assert!(
        total > Duration::from_secs(2),
        "the stand-in streams slowly: {total:?}"
    );
    assert!(
        first < total / 2,
        "first chunk at {first:?} of {total:?}: the stream was buffered"
    );
}

#[test]
fn broken_or_oversized_bodies_never_reach_the_upstream() {
    let (upstream, envoy) = gateway(ollama::start(OllamaConfig::default()));
    let t = token("frank");
    for (body, details_part) in [
        ("not json".to_string(), ""),
        ("[1, 2]".to_string(), ""),
        (r#"{"model": "m"}"#.to_string(), "messages"),
        (r#"{"model": "m", "messages": "hi"}"#.to_string(), "messages"),
        (r#"{"messages": [{"role": "user", "content": "a"}], "messages": []}"#.to_string(), ""),
        (r#"{"messages": [{"role": "user", "content": "a"}], "temperature": "hot"}"#.to_string(), "temperature"),
        (r#"{"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "https://evil.test/x.png"}}]}]}"#.to_string(), "remote image"),
    ] {
        let response = envoy.send(Request::post("/v1/chat/completions").bearer(&t).body(body.clone()));
        assert_contract_error(&response, 400, "INVALID_REQUEST_BODY");
        let details = response.json()["error"]["details"].as_str().unwrap().to_string();
        assert!(details.contains(details_part), "{body}: {details}");
    }
    let huge = format!(
        r#"{{"messages": [{{"role": "user", "content": "{}"}}]}}"#,
        "x".repeat(70_000)
    );
    assert_contract_error(
        &envoy.send(Request::post("/v1/chat/completions").bearer(&t).body(huge)),
        413,
        "REQUEST_TOO_LARGE",
    );
    assert!(upstream.requests().is_empty(), "{:?}", upstream.requests());
}

#[test]
fn an_upstream_answer_that_cannot_be_translated_is_502() {
    let upstream = Upstream::with_handler(|_| Reply::text(200, "this is not JSON"));
    let (_upstream, envoy) = gateway(upstream);
    let response = envoy.send(
        Request::post("/v1/chat/completions")
            .bearer(&token("gina"))
            .json(&json!({"messages": [{"role": "user", "content": "hi"}]})),
    );
    assert_contract_error(&response, 502, "UPSTREAM_ERROR");
    let deadline = Instant::now() + Duration::from_secs(10);
    let counted = loop {
        let stats = envoy
            .admin_get("/stats?filter=ai_gateway.upstream_errors")
            .text();
        if stats.contains("upstream_errors: 1") || Instant::now() > deadline {
            break stats;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(counted.contains("upstream_errors: 1"), "{counted}");
}

#[test]
fn an_error_mid_stream_becomes_an_sse_error_event() {
    let (_upstream, envoy) = gateway(ollama::start(OllamaConfig {
        fail_mid_stream: true,
        ..OllamaConfig::default()
    }));
    let sse = raw_stream(&envoy, "please fail");
    let events = normalised_events(&sse);
    assert!(
        events.iter().any(|e| e["error"]["message"].is_string()),
        "{sse}"
    );
    assert_eq!(events.last(), Some(&json!("[DONE]")));
}

#[test]
fn the_caller_in_the_upstream_body_comes_from_the_gateway_only() {
    let (upstream, envoy) = gateway(ollama::start(OllamaConfig::default()));
    let response = envoy.send(
        Request::post("/v1/chat/completions")
            .bearer(&token("hank"))
            .header("x-session-id", "session-42")
            .json(&json!({"model": "qwen3:32b", "user": "admin", "user_id": "admin", "session_id": "forged",
                          "messages": [{"role": "user", "content": "hi"}]})),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    let sent: Value = serde_json::from_slice(&upstream.requests().last().unwrap().body).unwrap();
    assert_eq!(sent["user_id"], "hank");
    assert_eq!(sent["session_id"], "session-42");
    assert!(
        sent.get("user").is_none(),
        "unknown OpenAI fields are dropped: {sent}"
    );
}

#[test]
fn openai_target_is_a_passthrough_with_auth_and_limits_only() {
    let upstream = Upstream::start();
    let config = json!({
        "providers": [{"name": "sso", "issuer": "https://idp.test", "audiences": ["gw"],
                       "hs256_secret": {"env": "JWT_SECRET"}}],
        "translate": {"to": "openai"}
    });
    let envoy = Envoy::builder(&config.to_string())
        .upstream(upstream.addr())
        .env("JWT_SECRET", SECRET)
        .start()
        .unwrap_or_else(|e| panic!("envoy did not start: {}", e.log));
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "hi"}], "n": 3});
    let response = envoy.send(
        Request::post("/v1/chat/completions")
            .bearer(&token("ivy"))
            .json(&body),
    );
    assert_eq!(response.status, 200);
    let received = upstream.requests();
    assert_eq!(received[0].path, "/v1/chat/completions");
    assert_eq!(
        received[0].body,
        body.to_string().into_bytes(),
        "forwarded unchanged"
    );
    let refused = envoy.send(Request::post("/v1/chat/completions").json(&body));
    assert_contract_error(&refused, 401, "AUTH_MISSING_TOKEN");
}
