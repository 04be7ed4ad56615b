//! `data_protection` in a real Envoy: planted values of every type never reach the Ollama
//! stand-in from a prompt, and never reach the client from an answer, whatever the chunking
//! (one byte per chunk included); the official `openai` SDK, streamed and not, and Ollama's
//! own NDJSON route. Deny patterns refuse with the contract's error; counts reach the audit
//! record and Envoy's stats.

use serde_json::{json, Value};
use test_harness::contract::assert_contract_error;
use test_harness::ollama::{self, Chunking, OllamaConfig};
use test_harness::openai_sdk;
use test_harness::upstream::Reply;
use test_harness::{Envoy, Request, Upstream};

/// One planted value of each type, in the order of [`template`]'s placeholders.
const PLANTED: [(&str, &str); 10] = [
    ("email", "li.lei@example.com.cn"),
    ("phone_cn", "+86 138 0013 8000"),
    ("id_card_cn", "11010519491231002X"),
    ("bank_card", "9558801234567890128"),
    ("credit_card", "4111 1111 1111 1111"),
    ("ssn_us", "123-45-6789"),
    ("ipv4", "10.20.30.40"),
    ("api_key", "sk-proj-AbCdEfGhIjKlMnOpQrStUvWx1234"),
    (
        "jwt",
        "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
    ),
    ("employee-id", "EMP-123456"),
];

const TEMPLATE: &str = "Contact {} or {}; 身份证 {}; bank {}; card {}; SSN {}; host {}; \
                        key {}; token {}; staff {}.";

/// The template with each placeholder filled by `fill(value)`.
fn template(fill: impl Fn(&str) -> String) -> String {
    let mut out = String::new();
    let mut values = PLANTED.iter();
    for (i, part) in TEMPLATE.split("{}").enumerate() {
        if i > 0 {
            out.push_str(&fill(values.next().unwrap().1));
        }
        out.push_str(part);
    }
    out
}

fn planted() -> String {
    template(str::to_string)
}

fn masked() -> String {
    template(|_| "[FILTERED]".to_string())
}

fn assert_no_planted_value(text: &str) {
    for (kind, value) in PLANTED {
        assert!(!text.contains(value), "{kind} `{value}` leaked: {text}");
    }
    // Nor a piece of the card long enough to matter.
    assert!(!text.contains("4111 1111"), "{text}");
}

fn config() -> String {
    let mut mask: Vec<Value> = PLANTED[..9]
        .iter()
        .map(|(kind, _)| json!({"type": kind}))
        .collect();
    mask.push(json!({"name": "employee-id", "regex": "EMP-[0-9]{6}"}));
    json!({
        "default_rule": {"auth": "none"},
        "translate": {"to": "ollama", "default_model": "qwen3:32b"},
        "audit": {"sample_bodies": 1.0, "max_logged_body_bytes": 4096},
        "data_protection": {
            "mask": mask, "responses": true,
            "deny": [{"name": "internal", "regex": "(?i)internal use only"}]
        }
    })
    .to_string()
}

fn gateway(upstream: &Upstream) -> Envoy {
    Envoy::builder(&config())
        .upstream(upstream.addr())
        .start()
        .unwrap_or_else(|e| panic!("envoy did not start: {}", e.log))
}

fn sdk(envoy: &Envoy, scenario: &str, extra: &[&str]) -> Value {
    openai_sdk::run(envoy.addr(), "unused", scenario, extra)
}

#[test]
fn planted_values_in_prompts_never_reach_the_model() {
    let upstream = ollama::start(OllamaConfig::default());
    let envoy = gateway(&upstream);
    let prompt = planted();
    for scenario in ["chat", "stream"] {
        let result = sdk(
            &envoy,
            scenario,
            &[
                "--message",
                &prompt,
                "--system",
                &format!("Escalate: {prompt}"),
            ],
        );
        assert_eq!(result["ok"], true, "{result}");
        let sent = upstream.requests().last().unwrap().clone();
        let sent_text = String::from_utf8_lossy(&sent.body);
        assert_no_planted_value(&sent_text);
        let body: Value = serde_json::from_slice(&sent.body).unwrap();
        assert_eq!(
            body["messages"][0]["content"],
            format!("Escalate: {}", masked())
        );
        assert_eq!(body["messages"][1]["content"], masked());
        // The stand-in repeats the (masked) prompt; the client gets it as sent.
        assert_eq!(result["content"], format!("You said: {}", masked()));
    }
    // Untranslated, Ollama's own route and shape (images are media, not text: untouched).
    let response = envoy.send(Request::post("/api/chat").json(&json!({
        "model": "qwen3:32b", "stream": false,
        "messages": [{"role": "user", "content": prompt, "images": ["aGVsbG8="]}]
    })));
    assert_eq!(response.status, 200, "{}", response.text());
    let sent: Value = serde_json::from_slice(&upstream.requests().last().unwrap().body).unwrap();
    assert_eq!(sent["messages"][0]["content"], masked());
    assert_eq!(sent["messages"][0]["images"][0], "aGVsbG8=");
}

#[test]
fn planted_values_in_streamed_answers_never_reach_the_client_whatever_the_chunking() {
    for chunking in Chunking::VARIETY {
        let upstream = ollama::start(OllamaConfig {
            reply: Some(planted()),
            chunking,
            ..OllamaConfig::default()
        });
        let envoy = gateway(&upstream);
        for scenario in ["stream", "chat"] {
            let result = sdk(&envoy, scenario, &["--message", "tell me"]);
            assert_eq!(result["ok"], true, "{chunking:?} {scenario}: {result}");
            assert_eq!(result["content"], masked(), "{chunking:?} {scenario}");
            assert_eq!(result["finish_reason"], "stop", "{chunking:?} {scenario}");
        }
        // Ollama's NDJSON, passed through (not translated), masked line by line.
        let response = envoy.send(Request::post("/api/chat").json(&json!({
            "model": "qwen3:32b", "stream": true,
            "messages": [{"role": "user", "content": "tell me"}]
        })));
        assert_eq!(response.status, 200, "{}", response.text());
        assert_no_planted_value(&response.text());
        let mut content = String::new();
        let mut done = 0;
        for line in response.text().lines().filter(|l| !l.is_empty()) {
            let line: Value = serde_json::from_str(line).unwrap();
            content.push_str(line["message"]["content"].as_str().unwrap_or(""));
            done += usize::from(line["done"] == true);
        }
        assert_eq!(content, masked(), "{chunking:?}");
        assert_eq!(done, 1, "{chunking:?}");
    }
}

#[test]
fn text_without_matches_passes_unchanged() {
    let reply = "The answer is 42 (v1.2.3), see section 4.5 — 你好，世界！ Card games are fun.";
    let upstream = ollama::start(OllamaConfig {
        reply: Some(reply.into()),
        chunking: Chunking::EveryByte,
        ..OllamaConfig::default()
    });
    let envoy = gateway(&upstream);
    for scenario in ["stream", "chat"] {
        let result = sdk(
            &envoy,
            scenario,
            &["--message", "Numbers 12345 and 2026-12-06"],
        );
        assert_eq!(result["content"], reply, "{scenario}: {result}");
    }
    let sent: Value = serde_json::from_slice(&upstream.requests().last().unwrap().body).unwrap();
    assert_eq!(
        sent["messages"][0]["content"],
        "Numbers 12345 and 2026-12-06"
    );
}

#[test]
fn answers_without_matches_pass_byte_for_byte() {
    // Odd spacing and key order: re-serialising would show.
    let json_answer = "{ \"b\": 1,  \"a\": \"Nothing to hide: 42 cards, v1.2.3.4.5\" }";
    let ndjson_answer =
        "{\"response\":\"Hello, \" ,\"done\":false}\n{\"response\":\"world.\",\"done\":true}\n";
    let upstream = Upstream::with_handler(move |request| {
        let (content_type, body) = if request.path == "/api/generate" {
            ("application/x-ndjson", ndjson_answer)
        } else {
            ("application/json", json_answer)
        };
        Reply::chunked(
            200,
            content_type,
            vec![(std::time::Duration::ZERO, body.as_bytes().to_vec())],
        )
    });
    let envoy = gateway(&upstream);
    let response = envoy.send(Request::post("/api/show").json(&json!({"model": "m"})));
    assert_eq!(response.text(), json_answer);
    let response = envoy.send(Request::post("/api/generate").json(&json!({"model": "m"})));
    assert_eq!(response.text(), ndjson_answer);
}

#[test]
fn a_deny_pattern_refuses_the_prompt_naming_the_pattern_not_the_text() {
    let upstream = ollama::start(OllamaConfig::default());
    let envoy = gateway(&upstream);
    let secret = "Quarterly numbers, INTERNAL USE ONLY: revenue 12.5M";
    let response = envoy.send(Request::post("/v1/chat/completions").json(&json!({
        "model": "qwen3:32b",
        "messages": [{"role": "user", "content": [{"type": "text", "text": secret}]}]
    })));
    assert_contract_error(&response, 400, "CONTENT_BLOCKED");
    let details = response.json()["error"]["details"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(details.contains("internal"), "{details}");
    assert!(!response.text().contains("revenue"), "{}", response.text());
    // The SDK sees a 400 BadRequestError; nothing reached the model.
    let result = sdk(&envoy, "stream", &["--message", secret]);
    assert_eq!(result["status"], 400, "{result}");
    assert_eq!(result["error_class"], "BadRequestError", "{result}");
    assert_eq!(upstream.requests().len(), 0);
    let records = envoy.wait_for_audit_records(2);
    let record = records.last().unwrap();
    assert_eq!(record["code"], "CONTENT_BLOCKED", "{record}");
    assert_eq!(record["denied_by"], "internal", "{record}");
    assert!(!record.to_string().contains("revenue"), "{record}");
    assert_eq!(envoy.gateway_counters()["requests_content_blocked"], 2);
}

#[test]
fn counts_reach_the_audit_record_and_the_stats_never_the_values() {
    let upstream = ollama::start(OllamaConfig {
        reply: Some(format!("Reach me at {}", PLANTED[0].1)),
        ..OllamaConfig::default()
    });
    let envoy = gateway(&upstream);
    let result = sdk(&envoy, "stream", &["--message", &planted()]);
    assert_eq!(result["ok"], true, "{result}");
    let records = envoy.wait_for_audit_records(1);
    let record = records.last().unwrap();
    for (kind, _) in PLANTED {
        assert_eq!(record["masked"]["prompt"][kind], 1, "{kind}: {record}");
    }
    assert_eq!(record["masked"]["answer"]["email"], 1, "{record}");
    // Sampled bodies are logged masked.
    let logged = record.to_string();
    assert!(
        record["request_body"]
            .as_str()
            .unwrap()
            .contains("[FILTERED]"),
        "{record}"
    );
    assert!(
        record["response_body"]
            .as_str()
            .unwrap()
            .contains("[FILTERED]"),
        "{record}"
    );
    assert_no_planted_value(&logged);
    let counters = envoy.gateway_counters();
    assert_eq!(counters["data_protection.prompt.email"], 1, "{counters:?}");
    assert_eq!(
        counters["data_protection.prompt.employee-id"], 1,
        "{counters:?}"
    );
    assert_eq!(counters["data_protection.answer.email"], 1, "{counters:?}");
    assert_eq!(
        counters["data_protection_masked_requests"], 1,
        "{counters:?}"
    );
    assert_eq!(
        counters["data_protection_masked_responses"], 1,
        "{counters:?}"
    );
    assert_no_planted_value(&envoy.log());
}

#[test]
fn hostile_input_is_bounded_and_never_breaks_the_worker() {
    // Invalid UTF-8 split across chunks of an NDJSON answer, a value split inside it, and a
    // huge run of digits: the client gets a masked answer, the worker keeps serving.
    let line1 = b"{\"message\":{\"role\":\"assistant\",\"content\":\"bad \xe4".to_vec();
    let line2 = b"\xbd\xff card 4111 1111 ".to_vec();
    let line3 = b"1111 1111\"},\"done\":false}\n{\"message\":{\"role\":\"assistant\",\"content\":\"\"},\"done\":true}\n".to_vec();
    let upstream = Upstream::with_handler(move |request| {
        if request.path == "/api/generate" {
            Reply::chunked(
                200,
                "application/x-ndjson",
                vec![
                    (std::time::Duration::ZERO, line1.clone()),
                    (std::time::Duration::ZERO, line2.clone()),
                    (std::time::Duration::ZERO, line3.clone()),
                ],
            )
        } else {
            Reply::json(
                200,
                &json!({"echo": String::from_utf8_lossy(&request.body)}),
            )
        }
    });
    let envoy = gateway(&upstream);
    let response =
        envoy.send(Request::post("/api/generate").json(&json!({"model": "m", "prompt": "x"})));
    assert_eq!(response.status, 200);
    let text = response.text();
    assert!(text.contains("[FILTERED]"), "{text}");
    assert!(!text.contains("4111"), "{text}");
    // 100 kB of digits in a prompt: forwarded whole, nothing masked (no card is that long).
    let digits = "7".repeat(100_000);
    let started = std::time::Instant::now();
    let response =
        envoy.send(Request::post("/api/embed").json(&json!({"model": "m", "input": digits})));
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
    assert!(response.text().contains(&digits));
    // Pathological for backtracking engines; these are automata.
    let response = envoy.send(Request::post("/api/embed").json(&json!({"model": "m",
        "input": format!("{}@{}", "a.".repeat(30_000), "b-".repeat(30_000))})));
    assert_eq!(response.status, 200, "{}", response.text());
    // Still serving.
    let response =
        envoy.send(Request::post("/api/embed").json(&json!({"model": "m", "input": "ok"})));
    assert_eq!(response.status, 200);
}

#[test]
fn an_openai_compatible_upstreams_stream_is_masked_for_the_sdk() {
    // vLLM-style SSE: the card is split over three events, and the events over TCP chunks.
    let events: Vec<Vec<u8>> = ["Your card: 4111 ", "1111 1111", " 1111, thanks."]
        .iter()
        .enumerate()
        .map(|(i, piece)| {
            let chunk = json!({"id": "cmpl-1", "object": "chat.completion.chunk", "created": 1,
                "model": "qwen3", "choices": [{"index": 0, "delta": {"content": piece},
                "finish_reason": if i == 2 { json!("stop") } else { Value::Null }}]});
            format!("data: {chunk}\n\n").into_bytes()
        })
        .chain(std::iter::once(b"data: [DONE]\n\n".to_vec()))
        .collect();
    let upstream = Upstream::with_handler(move |_| {
        let body = events.concat();
        let cuts = [0, 50, 51, 130, 260, body.len()];
        let chunks = cuts
            .windows(2)
            .map(|w| {
                (
                    std::time::Duration::from_millis(5),
                    body[w[0]..w[1].min(body.len())].to_vec(),
                )
            })
            .collect();
        Reply::chunked(200, "text/event-stream", chunks)
    });
    let config = json!({"default_rule": {"auth": "none"},
        "data_protection": {"mask": [{"type": "credit_card"}], "responses": true}});
    let envoy = Envoy::builder(&config.to_string())
        .upstream(upstream.addr())
        .start()
        .unwrap_or_else(|e| panic!("envoy did not start: {}", e.log));
    let result = sdk(&envoy, "stream", &["--message", "hi"]);
    assert_eq!(result["ok"], true, "{result}");
    assert_eq!(result["content"], "Your card: [FILTERED], thanks.");
    assert_eq!(result["finish_reason"], "stop");
}

#[test]
fn a_fetched_answer_is_masked_whatever_usage_it_reports() {
    // Pretty-printed (newlines inside) and without counts: no usage to read, masked anyway.
    let upstream = Upstream::with_handler(|_| {
        Reply::text(
            200,
            "{\"model\": \"qwen3:32b\",\n \"message\": {\"role\": \"assistant\",\n \"content\": \"card 4111 1111 1111 1111\"},\n \"done\": true}",
        )
    });
    let envoy = gateway(&upstream);
    let response = envoy.send(Request::post("/v1/chat/completions").json(&json!({
        "model": "qwen3:32b", "messages": [{"role": "user", "content": "hi"}]
    })));
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(
        response.json()["choices"][0]["message"]["content"],
        "card [FILTERED]"
    );
    // A body that looks like JSON but cannot be read strictly is refused, never passed.
    let deep = format!(
        r#"{{"model": "m", "x": {}1{}, "prompt": "\u0034111 1111 1111 1111"}}"#,
        "[".repeat(200),
        "]".repeat(200)
    );
    let response = envoy.send(
        Request::post("/api/generate")
            .header("content-type", "application/json")
            .body(deep),
    );
    assert_contract_error(&response, 400, "INVALID_REQUEST_BODY");
}
