//! Model allow-lists in a real Envoy, with the official `openai` SDK: a caller sees only the
//! models it may use in `models.list()`, and a chat for any other model, however spelled
//! (alias, `:latest`, case, whitespace), streamed or not, is a `PermissionDeniedError` that
//! never reaches the model server; Ollama's own routes that name a model are checked alike.

use serde_json::{json, Value};
use test_harness::contract::assert_contract_error;
use test_harness::ollama::{self, OllamaConfig};
use test_harness::openai_sdk;
use test_harness::tokens::{claims, Hs256Key};
use test_harness::{Envoy, Request, Upstream};

const SECRET: &str = "model-access-secret-of-32-bytes!!";

fn gateway() -> (Upstream, Envoy) {
    let upstream = ollama::start(OllamaConfig {
        models: vec!["qwen3:32b".into(), "qwen3:8b".into(), "llama3:8b".into()],
        ..OllamaConfig::default()
    });
    let config = json!({
        "providers": [{"name": "sso", "issuer": "https://idp.test", "audiences": ["gw"],
                       "hs256_secret": {"env": "JWT_SECRET"}}],
        "translate": {"to": "ollama", "default_model": "qwen3:8b",
                      "model_aliases": {"gpt-4o": "qwen3:32b", "gpt-4o-mini": "qwen3:8b"}},
        "models": {"allow": [
            {"scopes": ["team:research"], "models": ["qwen3:*"]},
            {"scopes": [], "models": ["qwen3:8b"]}
        ]}
    });
    let envoy = Envoy::builder(&config.to_string())
        .upstream(upstream.addr())
        .env("JWT_SECRET", SECRET)
        .concurrency(2)
        .start()
        .unwrap_or_else(|e| panic!("envoy did not start: {}", e.log));
    (upstream, envoy)
}

fn token(sub: &str, scope: &str) -> String {
    Hs256Key::new(SECRET.as_bytes()).mint(&claims("https://idp.test", "gw", sub, scope))
}

fn chats_reaching_the_model_server(upstream: &Upstream) -> usize {
    upstream.count("/api/chat")
}

fn assert_permission_denied(result: &Value, model: &str) {
    assert_eq!(result["ok"], false, "{result}");
    assert_eq!(result["error_class"], "PermissionDeniedError", "{result}");
    assert_eq!(result["status"], 403, "{result}");
    let error = &result["body"];
    assert_eq!(error["code"], "MODEL_NOT_ALLOWED", "{result}");
    assert!(
        error["details"].as_str().is_some_and(|d| d.contains(model)),
        "names the model: {result}"
    );
}

#[test]
fn callers_see_and_use_only_their_models() {
    let (upstream, envoy) = gateway();
    let everyone = token("erin", "chat:read chat:write");
    let researcher = token("rita", "chat:read chat:write team:research");

    let listed = openai_sdk::run(envoy.addr(), &everyone, "models", &[]);
    assert_eq!(listed["ids"], json!(["qwen3:8b"]), "{listed}");
    let listed = openai_sdk::run(envoy.addr(), &researcher, "models", &[]);
    assert_eq!(listed["ids"], json!(["qwen3:32b", "qwen3:8b"]), "{listed}");
    let hidden = openai_sdk::run(envoy.addr(), &everyone, "model", &["--model", "qwen3:32b"]);
    assert_eq!(
        hidden["error_class"], "NotFoundError",
        "as if it did not exist: {hidden}"
    );

    // Every spelling of the research model, streamed or not: refused before the model server.
    for spelling in [
        "qwen3:32b",
        "gpt-4o",
        "QWEN3:32B",
        " qwen3:32b ",
        "Qwen3:32b",
    ] {
        for scenario in ["chat", "stream"] {
            let refused =
                openai_sdk::run(envoy.addr(), &everyone, scenario, &["--model", spelling]);
            assert_permission_denied(&refused, "qwen3:32b");
        }
    }
    let refused = openai_sdk::run(envoy.addr(), &everyone, "chat", &["--model", "llama3:8b"]);
    assert_permission_denied(&refused, "llama3:8b");
    assert_eq!(chats_reaching_the_model_server(&upstream), 0);

    // Allowed: the shared model by name, alias and default; the research model for researchers.
    for (caller, model) in [
        (&everyone, "qwen3:8b"),
        (&everyone, "gpt-4o-mini"),
        (&researcher, "qwen3:32b"),
        (&researcher, "gpt-4o"),
    ] {
        for scenario in ["chat", "stream"] {
            let answer = openai_sdk::run(envoy.addr(), caller, scenario, &["--model", model]);
            assert_eq!(answer["ok"], true, "{model} {scenario}: {answer}");
        }
    }
    assert_eq!(chats_reaching_the_model_server(&upstream), 8);
}

#[test]
fn ollama_routes_and_hostile_bodies_are_checked_too() {
    let (upstream, envoy) = gateway();
    let everyone = token("erin", "chat:read chat:write");
    let send = |path: &str, body: &str| {
        envoy.send(
            Request::post(path)
                .bearer(&everyone)
                .header("content-type", "application/json")
                .body(body.as_bytes().to_vec()),
        )
    };
    for path in ["/api/chat", "/api/generate", "/api/embed"] {
        assert_contract_error(
            &send(path, r#"{"model": "qwen3:32b", "prompt": "hi"}"#),
            403,
            "MODEL_NOT_ALLOWED",
        );
    }
    // A second `model` key cannot smuggle another model past the check.
    assert_contract_error(
        &send(
            "/v1/chat/completions",
            r#"{"model": "qwen3:8b", "model": "qwen3:32b", "messages": [{"role": "user", "content": "hi"}]}"#,
        ),
        400,
        "INVALID_REQUEST_BODY",
    );
    assert_contract_error(
        &send(
            "/api/chat",
            r#"{"model": "qwen3:8b", "model": "qwen3:32b"}"#,
        ),
        400,
        "INVALID_REQUEST_BODY",
    );
    // Ollama reads keys case-insensitively (the last wins): a `MODEL` beside `model` is refused,
    // and so is a digest; Ollama's default namespace names the same model.
    assert_contract_error(
        &send(
            "/api/chat",
            r#"{"model": "qwen3:8b", "MODEL": "qwen3:32b"}"#,
        ),
        400,
        "INVALID_REQUEST_BODY",
    );
    assert_contract_error(
        &send(
            "/api/generate",
            r#"{"model": "qwen3@sha256:0123", "prompt": "hi"}"#,
        ),
        400,
        "INVALID_REQUEST_BODY",
    );
    assert_contract_error(
        &send(
            "/api/chat",
            r#"{"model": "library/qwen3:32b", "messages": []}"#,
        ),
        403,
        "MODEL_NOT_ALLOWED",
    );
    assert!(upstream.requests().is_empty(), "{:?}", upstream.requests());
    // Allowed on Ollama's own route: forwarded unchanged.
    let body = r#"{"model":"qwen3:8b","messages":[{"role":"user","content":"hi"}],"stream":false}"#;
    let allowed = send("/api/chat", body);
    assert_eq!(allowed.status, 200, "{}", allowed.text());
    let received = upstream.requests();
    assert_eq!(received.len(), 1);
    assert_eq!(received[0].body, body.as_bytes());
}

#[test]
fn a_limit_restricted_to_a_model_counts_only_its_chats() {
    let upstream = ollama::start(OllamaConfig {
        models: vec!["qwen3:32b".into(), "qwen3:8b".into()],
        ..OllamaConfig::default()
    });
    let config = json!({
        "providers": [{"name": "sso", "issuer": "https://idp.test", "audiences": ["gw"],
                       "hs256_secret": {"env": "JWT_SECRET"}}],
        "translate": {"to": "ollama", "default_model": "qwen3:8b",
                      "model_aliases": {"gpt-4o": "qwen3:32b"}},
        "rate_limits": [{"name": "big-model", "key": "sub", "requests": 2, "window": "month",
                         "models": ["qwen3:32b"]}]
    });
    let envoy = Envoy::builder(&config.to_string())
        .upstream(upstream.addr())
        .env("JWT_SECRET", SECRET)
        .start()
        .unwrap_or_else(|e| panic!("envoy did not start: {}", e.log));
    let caller = token("erin", "chat:read chat:write");
    // The model list and the small model are never counted by it.
    for _ in 0..3 {
        let listed = openai_sdk::run(envoy.addr(), &caller, "models", &[]);
        assert_eq!(listed["ok"], true, "{listed}");
        let small = openai_sdk::run(envoy.addr(), &caller, "chat", &["--model", "qwen3:8b"]);
        assert_eq!(small["ok"], true, "{small}");
    }
    // Two chats with the big model, by name and by alias; the third is refused before Ollama.
    for model in ["qwen3:32b", "gpt-4o"] {
        let big = openai_sdk::run(envoy.addr(), &caller, "stream", &["--model", model]);
        assert_eq!(big["ok"], true, "{model}: {big}");
    }
    let chats_before = upstream.count("/api/chat");
    let refused = openai_sdk::run(envoy.addr(), &caller, "chat", &["--model", "QWEN3:32B"]);
    assert_eq!(refused["error_class"], "RateLimitError", "{refused}");
    assert_eq!(refused["body"]["code"], "RATE_LIMITED", "{refused}");
    assert_eq!(upstream.count("/api/chat"), chats_before);
    let small = openai_sdk::run(envoy.addr(), &caller, "chat", &["--model", "qwen3:8b"]);
    assert_eq!(small["ok"], true, "the small model is unaffected: {small}");
}

/// An HTTP/2 request whose body ends with trailers (Node's own http2 client): `status` and body.
fn post_with_trailers(envoy: &Envoy, path: &str, token: &str, body: &str) -> (u16, String) {
    let script = r#"
const http2 = require('node:http2');
const [url, path, token, body] = process.argv.slice(1);
const client = http2.connect(url);
const req = client.request({':method': 'POST', ':path': path, 'authorization': `Bearer ${token}`,
  'content-type': 'application/json'}, {waitForTrailers: true});
req.on('wantTrailers', () => req.sendTrailers({'x-checksum': 'abc'}));
let status = 0; let data = '';
req.on('response', (h) => { status = h[':status']; });
req.on('data', (d) => { data += d; });
req.on('end', () => { console.log(JSON.stringify({status, body: data})); client.close(); });
req.on('error', (e) => { console.log(JSON.stringify({status: 0, body: String(e)})); client.close(); });
req.end(body);
"#;
    let output = std::process::Command::new("node")
        .args(["-e", script])
        .arg(format!("http://{}", envoy.addr()))
        .args([path, token, body])
        .output()
        .expect("node");
    let line = String::from_utf8_lossy(&output.stdout).trim().to_string();
    let parsed: Value = serde_json::from_str(&line)
        .unwrap_or_else(|e| panic!("{e}: {line} {}", String::from_utf8_lossy(&output.stderr)));
    (
        parsed["status"].as_u64().unwrap_or(0) as u16,
        parsed["body"].as_str().unwrap_or_default().to_string(),
    )
}

#[test]
fn a_held_body_ended_by_http2_trailers_never_reaches_the_model_server_unread() {
    let (upstream, envoy) = gateway();
    let everyone = token("erin", "chat:read chat:write");
    for (path, body) in [
        ("/api/chat", r#"{"model": "qwen3:32b", "messages": []}"#),
        (
            "/v1/chat/completions",
            r#"{"model": "qwen3:32b", "messages": [{"role": "user", "content": "hi"}]}"#,
        ),
    ] {
        let (status, answer) = post_with_trailers(&envoy, path, &everyone, body);
        assert_eq!(status, 400, "{path}: {answer}");
        assert!(answer.contains("INVALID_REQUEST_BODY"), "{path}: {answer}");
    }
    assert!(upstream.requests().is_empty(), "{:?}", upstream.requests());
}
