//! The rest of the OpenAI API through a real Envoy to the Ollama stand-in, with the official
//! `openai` SDK unmodified: `embeddings.create` (single, batch, float, base64 — the SDK's own
//! default — and `dimensions`), `completions.create` (streamed and not), reasoning deltas as
//! `reasoning_content`; token budgets charged with what the model server reports.

use base64::Engine;
use serde_json::{json, Value};
use test_harness::contract::assert_contract_error;
use test_harness::ollama::{self, OllamaConfig};
use test_harness::openai_sdk;
use test_harness::{Envoy, Request, Upstream};

fn config(extra: Value) -> String {
    let mut config = json!({
        "default_rule": {"auth": "none"},
        "translate": {"to": "ollama", "default_model": "qwen3:32b",
                      "model_aliases": {"text-embedding-3-small": "nomic-embed-text:latest"}}
    });
    if let (Value::Object(config), Value::Object(extra)) = (&mut config, extra) {
        config.extend(extra);
    }
    config.to_string()
}

fn stand_in() -> OllamaConfig {
    OllamaConfig {
        models: vec!["qwen3:32b".into(), "nomic-embed-text:latest".into()],
        ..OllamaConfig::default()
    }
}

fn gateway(upstream: &Upstream, extra: Value) -> Envoy {
    Envoy::builder(&config(extra))
        .upstream(upstream.addr())
        .start()
        .unwrap_or_else(|e| panic!("envoy did not start: {}", e.log))
}

fn sdk(envoy: &Envoy, scenario: &str, extra: &[&str]) -> Value {
    openai_sdk::run(envoy.addr(), "unused", scenario, extra)
}

fn floats(value: &Value) -> Vec<f32> {
    value
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32)
        .collect()
}

#[test]
fn sdk_embeddings_single_batch_float_and_base64() {
    let upstream = ollama::start(stand_in());
    let envoy = gateway(&upstream, json!({}));
    let texts = ["The quick brown fox", "你好，世界"];
    // Single input as a string, the SDK's default encoding (it asks for base64 and decodes).
    let single = sdk(
        &envoy,
        "embeddings",
        &[
            "--model",
            "text-embedding-3-small",
            "--single",
            "--input",
            texts[0],
        ],
    );
    assert_eq!(single["ok"], true, "{single}");
    assert_eq!(
        floats(&single["vectors"][0]),
        ollama::expected_embedding(texts[0], 8)
    );
    assert!(
        single["usage"]["prompt_tokens"].as_u64().unwrap() > 0,
        "{single}"
    );
    let sent: Value = serde_json::from_slice(&upstream.requests().last().unwrap().body).unwrap();
    assert_eq!(upstream.requests().last().unwrap().path, "/api/embed");
    assert_eq!(sent["model"], "nomic-embed-text:latest");
    assert_eq!(sent["input"], json!([texts[0]]));
    // A batch, floats, with dimensions.
    let batch = sdk(
        &envoy,
        "embeddings",
        &[
            "--model",
            "nomic-embed-text",
            "--input",
            texts[0],
            "--input",
            texts[1],
            "--encoding",
            "float",
            "--dimensions",
            "4",
        ],
    );
    assert_eq!(batch["ok"], true, "{batch}");
    assert_eq!(batch["indexes"], json!([0, 1]));
    for (i, text) in texts.iter().enumerate() {
        assert_eq!(
            floats(&batch["vectors"][i]),
            ollama::expected_embedding(text, 4)
        );
    }
    // base64 asked explicitly: little-endian f32, as OpenAI sends it.
    let b64 = sdk(
        &envoy,
        "embeddings",
        &[
            "--model",
            "nomic-embed-text",
            "--input",
            texts[1],
            "--encoding",
            "base64",
        ],
    );
    assert_eq!(b64["ok"], true, "{b64}");
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64["vectors"][0]["base64"].as_str().unwrap())
        .unwrap();
    let decoded: Vec<f32> = bytes
        .chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect();
    assert_eq!(decoded, ollama::expected_embedding(texts[1], 8));
}

#[test]
fn embeddings_refusals_and_upstream_errors_in_the_contract_shape() {
    let upstream = ollama::start(stand_in());
    let envoy = gateway(&upstream, json!({}));
    let response = envoy.send(
        Request::post("/v1/embeddings")
            .json(&json!({"model": "nomic-embed-text", "input": [[1, 2, 3]]})),
    );
    assert_contract_error(&response, 400, "INVALID_REQUEST_BODY");
    assert!(response.text().contains("token ids"), "{}", response.text());
    assert_eq!(upstream.requests().len(), 0);
    // An unknown model: Ollama's 404 as OpenAI's, which the SDK raises as NotFoundError.
    let result = sdk(
        &envoy,
        "embeddings",
        &["--model", "missing-model", "--input", "x"],
    );
    assert_eq!(result["error_class"], "NotFoundError", "{result}");
}

#[test]
fn sdk_completions_streamed_and_not_with_usage() {
    let stand_in = stand_in();
    let upstream = ollama::start(stand_in.clone());
    let envoy = gateway(&upstream, json!({}));
    let prompt = "Once upon a time";
    let expected = ollama::expected_generate_text(&stand_in, &json!({"prompt": prompt}));
    let whole = sdk(&envoy, "completion", &["--message", prompt]);
    assert_eq!(whole["ok"], true, "{whole}");
    assert_eq!(whole["object"], "text_completion");
    assert!(
        whole["id"].as_str().unwrap().starts_with("cmpl-"),
        "{whole}"
    );
    assert_eq!(whole["text"], expected.as_str());
    assert_eq!(whole["finish_reason"], "stop");
    assert!(whole["usage"]["completion_tokens"].as_u64().unwrap() > 0);
    let sent = upstream.requests().last().unwrap().clone();
    assert_eq!(sent.path, "/api/generate");
    let body: Value = serde_json::from_slice(&sent.body).unwrap();
    assert_eq!(body["prompt"], prompt);
    assert_eq!(body["stream"], false);

    let streamed = sdk(&envoy, "completion", &["--message", prompt, "--stream"]);
    assert_eq!(streamed["ok"], true, "{streamed}");
    assert_eq!(streamed["text"], expected.as_str());
    assert!(streamed["chunks"].as_u64().unwrap() > 2, "{streamed}");
    assert_eq!(streamed["finish_reason"], "stop");
    assert!(
        streamed["usage"]["completion_tokens"].as_u64().unwrap() > 0,
        "{streamed}"
    );
    // max_tokens reaches Ollama as num_predict, and a cut answer says `length`.
    let cut = sdk(
        &envoy,
        "completion",
        &["--message", prompt, "--max-tokens", "2"],
    );
    let body: Value = serde_json::from_slice(&upstream.requests().last().unwrap().body).unwrap();
    assert_eq!(body["options"]["num_predict"], 2);
    assert_eq!(cut["finish_reason"], "length", "{cut}");
}

#[test]
fn streamed_chat_reasoning_arrives_as_reasoning_content() {
    let upstream = ollama::start(OllamaConfig {
        think: Some("Let me think about it.".into()),
        ..stand_in()
    });
    let envoy = gateway(&upstream, json!({}));
    let response = envoy.send(Request::post("/v1/chat/completions").json(&json!({
        "model": "qwen3:32b", "stream": true, "reasoning_effort": "high",
        "messages": [{"role": "user", "content": "why?"}]
    })));
    assert_eq!(response.status, 200, "{}", response.text());
    let mut reasoning = String::new();
    for event in response.text().split("\n\n") {
        let Some(data) = event.strip_prefix("data: ") else {
            continue;
        };
        if data == "[DONE]" {
            continue;
        }
        let chunk: Value = serde_json::from_str(data).unwrap();
        if let Some(piece) = chunk["choices"][0]["delta"]["reasoning_content"].as_str() {
            reasoning.push_str(piece);
        }
    }
    assert_eq!(reasoning, "Let me think about it.");
    let sent: Value = serde_json::from_slice(&upstream.requests().last().unwrap().body).unwrap();
    assert_eq!(sent["think"], "high");
}

#[test]
fn token_budgets_are_charged_for_embeddings_and_completions() {
    let upstream = ollama::start(stand_in());
    let envoy = gateway(
        &upstream,
        json!({"rate_limits": [{"name": "budget", "key": "ip", "tokens": 1_000_000, "window_s": 60}]}),
    );
    let before = envoy.gateway_counters();
    let response = envoy.send(
        Request::post("/v1/embeddings")
            .json(&json!({"model": "nomic-embed-text", "input": "one two three"})),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    let prompt = response.json()["usage"]["prompt_tokens"].as_u64().unwrap();
    assert!(prompt > 0);
    let response = envoy.send(
        Request::post("/v1/completions").json(&json!({"model": "qwen3:32b", "prompt": "hello"})),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    let usage = &response.json()["usage"];
    let after = envoy.gateway_counters();
    let counted =
        |name: &str| after.get(name).copied().unwrap_or(0) - before.get(name).copied().unwrap_or(0);
    assert_eq!(
        counted("llm_prompt_tokens"),
        prompt + usage["prompt_tokens"].as_u64().unwrap()
    );
    assert_eq!(
        counted("llm_completion_tokens"),
        usage["completion_tokens"].as_u64().unwrap()
    );
    // The budget's remaining count went down by what was used.
    let remaining: u64 = response
        .header("x-ratelimit-remaining")
        .unwrap()
        .parse()
        .unwrap();
    assert!(remaining < 1_000_000, "{remaining}");
}
