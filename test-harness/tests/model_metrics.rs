//! Per-model metrics and trace context in a real Envoy: after a scripted mix of requests,
//! `/stats/prometheus` has the requests, tokens, errors and histograms per rule and model as
//! labels (through the `stats_tags` `envoy.yaml` ships), unnamed models fold into `other`; the
//! W3C trace headers reach the model server on routed and on gateway-fetched answers.

use serde_json::{json, Value};
use test_harness::ollama::{self, OllamaConfig};
use test_harness::{Envoy, Request};

const TRACEPARENT: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

fn config() -> String {
    json!({
        "rules": [{"name": "chat", "match": {"prefix": "/v1/"}, "auth": "none"}],
        "default_rule": {"auth": "none"},
        "translate": {"to": "ollama", "default_model": "qwen3:32b",
                      "model_aliases": {"small": "llama3.2:3b"}},
        "data_protection": {"mask": [{"type": "email"}], "responses": true}
    })
    .to_string()
}

fn chat(model: &str, stream: bool) -> Request {
    Request::post("/v1/chat/completions").json(&json!({
        "model": model, "stream": stream,
        "messages": [{"role": "user", "content": "count my tokens please"}]
    }))
}

/// The value of the Prometheus sample `name` whose labels include all of `labels`.
fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines().find_map(|line| {
        let rest = line.strip_prefix(name)?;
        let (labels_part, value) = match rest.strip_prefix('{') {
            Some(rest) => rest.split_once("} ")?,
            None => ("", rest.strip_prefix(' ')?),
        };
        labels
            .iter()
            .all(|(k, v)| labels_part.contains(&format!("{k}=\"{v}\"")))
            .then(|| value.trim().parse().ok())?
    })
}

#[test]
fn prometheus_shows_requests_tokens_errors_and_latency_per_rule_and_model() {
    let upstream = ollama::start(OllamaConfig {
        models: vec!["qwen3:32b".into(), "llama3.2:3b".into()],
        // Thinking that names an address: masked in every answer.
        think: Some("I could ask ops@example.com".into()),
        ..OllamaConfig::default()
    });
    let envoy = Envoy::builder(&config())
        .upstream(upstream.addr())
        .start()
        .unwrap_or_else(|e| panic!("envoy did not start: {}", e.log));
    let mut prompt_tokens = 0;
    let mut completion_tokens = 0;
    for _ in 0..3 {
        let response = envoy.send(chat("qwen3:32b", false));
        assert_eq!(response.status, 200, "{}", response.text());
        let usage = &response.json()["usage"];
        prompt_tokens += usage["prompt_tokens"].as_u64().unwrap();
        completion_tokens += usage["completion_tokens"].as_u64().unwrap();
    }
    for _ in 0..2 {
        let response = envoy.send(chat("small", true));
        assert_eq!(response.status, 200, "{}", response.text());
    }
    // An address in the prompt: masked before the model sees it.
    let response = envoy.send(
        Request::post("/v1/chat/completions").json(&json!({"model": "qwen3:32b",
            "messages": [{"role": "user", "content": "mail bob@example.com"}]})),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        response.json()["choices"][0]["message"]["content"],
        "You said: mail [FILTERED]"
    );
    prompt_tokens += response.json()["usage"]["prompt_tokens"].as_u64().unwrap();
    completion_tokens += response.json()["usage"]["completion_tokens"]
        .as_u64()
        .unwrap();
    // Not served by the stand-in, not named in the config: `other`, with its error code.
    let response = envoy.send(chat("mistral:7b", false));
    assert_eq!(response.status, 404, "{}", response.text());

    // Histograms reach the admin output at Envoy's stats flush (every 5 s by default).
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
    let mut text = envoy.admin_get("/stats/prometheus").text();
    while sample(
        &text,
        "ai_gateway_model_duration_ms_count",
        &[("ai_gateway_model", "other")],
    ) != Some(1.0)
        && std::time::Instant::now() < deadline
    {
        std::thread::sleep(std::time::Duration::from_millis(250));
        text = envoy.admin_get("/stats/prometheus").text();
    }
    let qwen = [
        ("ai_gateway_rule", "chat"),
        ("ai_gateway_model", "qwen3:32b"),
    ];
    let llama = [
        ("ai_gateway_rule", "chat"),
        ("ai_gateway_model", "llama3.2:3b"),
    ];
    let other = [("ai_gateway_rule", "chat"), ("ai_gateway_model", "other")];
    let metric = |name: &str| format!("ai_gateway_model_{name}");
    assert_eq!(
        sample(&text, &metric("requests"), &qwen),
        Some(4.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, &metric("requests"), &llama),
        Some(2.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, &metric("requests"), &other),
        Some(1.0),
        "{text}"
    );
    assert_eq!(
        sample(&text, &metric("prompt_tokens"), &qwen),
        Some(prompt_tokens as f64)
    );
    assert_eq!(
        sample(&text, &metric("completion_tokens"), &qwen),
        Some(completion_tokens as f64)
    );
    assert!(sample(&text, &metric("prompt_tokens"), &llama).unwrap() > 0.0);
    let not_found = [
        ("ai_gateway_rule", "chat"),
        ("ai_gateway_model", "other"),
        ("ai_gateway_code", "MODEL_NOT_FOUND"),
    ];
    assert_eq!(
        sample(&text, &metric("errors"), &not_found),
        Some(1.0),
        "{text}"
    );
    assert_eq!(sample(&text, &metric("errors"), &qwen), None, "{text}");
    // Histograms: every request's duration, the streamed ones' time to first token.
    assert_eq!(
        sample(&text, &metric("duration_ms_count"), &qwen),
        Some(4.0)
    );
    assert_eq!(
        sample(&text, &metric("first_token_ms_count"), &llama),
        Some(2.0)
    );
    assert_eq!(sample(&text, &metric("first_token_ms_count"), &qwen), None);
    let masked = [("ai_gateway_mask", "email")];
    let prompt_masked = "ai_gateway_data_protection_prompt";
    assert_eq!(sample(&text, prompt_masked, &masked), Some(1.0), "{text}");
    let answer_masked = "ai_gateway_data_protection_answer";
    // Six answers, each carrying the thinking twice (`reasoning` and `reasoning_content`).
    assert_eq!(sample(&text, answer_masked, &masked), Some(12.0), "{text}");
    // No label leaks into the metric name.
    assert!(!text.contains("qwen3:32b_"), "{text}");
    // Every metric the shipped dashboard queries exists.
    let dashboard = std::fs::read_to_string(
        test_harness::paths::repo_root().join("deploy/grafana/ai-gateway-dashboard.json"),
    )
    .unwrap();
    let mut names: Vec<&str> = dashboard
        .match_indices("ai_gateway_")
        .map(|(at, _)| {
            let rest = &dashboard[at..];
            let end = rest
                .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .unwrap_or(rest.len());
            &rest[..end]
        })
        .collect();
    // Label names are not metrics.
    names.retain(|n| {
        ![
            "ai_gateway_model",
            "ai_gateway_rule",
            "ai_gateway_code",
            "ai_gateway_mask",
        ]
        .contains(n)
    });
    names.sort_unstable();
    names.dedup();
    assert!(names.len() >= 10, "{names:?}");
    for name in names {
        assert!(
            text.lines().any(|l| l.starts_with(name)),
            "the dashboard queries `{name}`, which Envoy does not export"
        );
    }
}

#[test]
fn trace_context_reaches_the_model_server_and_the_audit_record() {
    let upstream = ollama::start(OllamaConfig::default());
    let envoy = Envoy::builder(&config())
        .upstream(upstream.addr())
        .start()
        .unwrap_or_else(|e| panic!("envoy did not start: {}", e.log));
    for stream in [false, true] {
        let response = envoy.send(
            chat("qwen3:32b", stream)
                .header("traceparent", TRACEPARENT)
                .header("tracestate", "vendor=abc"),
        );
        assert_eq!(response.status, 200, "{}", response.text());
        let sent = upstream.requests().last().unwrap().clone();
        // Stream: routed by Envoy; not streamed: fetched by the gateway's own call.
        assert_eq!(
            sent.header("traceparent"),
            Some(TRACEPARENT),
            "stream {stream}"
        );
        assert_eq!(
            sent.header("tracestate"),
            Some("vendor=abc"),
            "stream {stream}"
        );
        // The request id Envoy gave the request, as the audit record has it.
        let records = envoy.wait_for_audit_records(usize::from(stream) + 1);
        let record = records.last().unwrap();
        assert_eq!(
            record["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736",
            "{record}"
        );
        assert_eq!(
            sent.header("x-request-id"),
            record["request_id"].as_str(),
            "stream {stream}"
        );
    }
    // A malformed parent is not carried by the gateway's own calls, nor recorded.
    let response = envoy.send(chat("qwen3:32b", false).header("traceparent", "garbage"));
    assert_eq!(response.status, 200);
    let sent = upstream.requests().last().unwrap().clone();
    assert_eq!(sent.header("traceparent"), None);
    let records: Vec<Value> = envoy.wait_for_audit_records(3);
    assert!(records.last().unwrap().get("trace_id").is_none());
}

#[test]
fn envoy_yaml_ships_the_same_stats_tags_the_tests_use() {
    let shipped = test_harness::demo::envoy_yaml();
    assert_eq!(
        shipped["stats_config"]["stats_tags"],
        test_harness::bootstrap::stats_tags()
    );
}
