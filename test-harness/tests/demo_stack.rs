//! The demo as shipped: the repo's `envoy.yaml` (ports moved to ephemeral ones, nothing else
//! changed), the users of `demo/users.json` in a real OpenID Provider, the Ollama stand-in. The
//! chat page's files, login, the two users' different scopes, the per-user limit, API tokens,
//! and the page itself in headless Chromium.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use serde_json::{json, Value};
use test_harness::contract::assert_contract_error;
use test_harness::demo::{DemoStack, DEMO_MODEL};
use test_harness::oidc::{login, Browser};
use test_harness::tokens::{now, Hs256Key};
use test_harness::{paths, Request, Response};

fn log_in(stack: &DemoStack, user: &str) -> String {
    let mut browser = Browser::new();
    let base = stack.base();
    let mut redirect = browser.get(&format!("{base}/oauth2/login?rd=/chat"));
    for _ in 0..50 {
        if redirect.status != 503 {
            break;
        }
        // Discovery is fetched on start; the demo answers 503 until it has it.
        std::thread::sleep(Duration::from_millis(200));
        redirect = browser.get(&format!("{base}/oauth2/login?rd=/chat"));
    }
    assert_eq!(redirect.status, 302, "{}", redirect.text());
    let authorize = redirect.header("location").unwrap().to_string();
    let callback = login(
        &mut browser,
        &authorize,
        &format!("{base}/oauth2/callback"),
        user,
    );
    let landed = browser.get(&callback);
    assert_eq!(landed.status, 302, "{}", landed.text());
    assert_eq!(landed.header("location"), Some("/chat"));
    browser
        .cookie(&stack.envoy.addr().to_string(), "gw_session")
        .expect("a session cookie")
}

fn chat_with_session(stack: &DemoStack, session: &str, text: &str) -> Response {
    stack.envoy.send(
        Request::post("/v1/chat/completions")
            .header("cookie", format!("gw_session={session}"))
            .header("origin", stack.base())
            .json(&json!({"model": DEMO_MODEL, "messages": [{"role": "user", "content": text}]})),
    )
}

#[test]
fn the_page_login_scopes_and_limits_of_the_demo_config() {
    let stack = DemoStack::start(Duration::ZERO);

    // The page and its files, served by Envoy with a strict CSP, to anyone.
    let page = stack.envoy.send(Request::get("/chat"));
    assert_eq!(page.status, 200, "{}", page.text());
    assert_eq!(
        page.header("content-type"),
        Some("text/html; charset=utf-8")
    );
    let csp = page.header("content-security-policy").unwrap_or_default();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert!(page.text().contains("/chat/app.js"));
    for (path, kind) in [
        ("/chat/app.js", "text/javascript"),
        ("/chat/markdown.js", "text/javascript"),
        ("/chat/app.css", "text/css"),
    ] {
        let file = stack.envoy.send(Request::get(path));
        assert_eq!(file.status, 200, "{path}");
        assert!(
            file.header("content-type").unwrap().starts_with(kind),
            "{path}"
        );
        let on_disk = std::fs::read(paths::repo_root().join("demo").join(&path[1..])).unwrap();
        assert_eq!(file.body, on_disk, "{path} served whole");
    }
    let root = stack.envoy.send(Request::get("/"));
    assert_eq!(root.status, 301);
    assert!(root.header("location").unwrap().ends_with("/chat"));
    assert_eq!(stack.envoy.send(Request::get("/healthz")).status, 200);

    // Without a session or token: the API's 401, the userinfo's 401.
    assert_contract_error(
        &stack.envoy.send(Request::get("/v1/models")),
        401,
        "AUTH_MISSING_TOKEN",
    );
    assert_contract_error(
        &stack.envoy.send(Request::get("/oauth2/userinfo")),
        401,
        "AUTH_MISSING_TOKEN",
    );

    // alice: named by userinfo, may chat.
    let alice = log_in(&stack, "alice");
    let me = stack
        .envoy
        .send(Request::get("/oauth2/userinfo").header("cookie", format!("gw_session={alice}")));
    assert_eq!(me.status, 200, "{}", me.text());
    let me: Value = serde_json::from_slice(&me.body).unwrap();
    assert_eq!(me["name"], "Alice Chen");
    assert_eq!(me["sub"], "alice");
    let answer = chat_with_session(&stack, &alice, "Hello");
    assert_eq!(answer.status, 200, "{}", answer.text());
    let answer: Value = serde_json::from_slice(&answer.body).unwrap();
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        "You said: Hello"
    );
    let upstream = stack.ollama.requests();
    let chat = upstream.iter().find(|r| r.path == "/api/chat").unwrap();
    assert_eq!(chat.header("x-user-id"), Some("alice"));

    // bob: may list models, may not chat (no chat:write), and the page is told which scope.
    let bob = log_in(&stack, "bob");
    let models = stack
        .envoy
        .send(Request::get("/v1/models").header("cookie", format!("gw_session={bob}")));
    assert_eq!(models.status, 200, "{}", models.text());
    let refused = chat_with_session(&stack, &bob, "Hello");
    assert_contract_error(&refused, 403, "AUTH_INSUFFICIENT_SCOPE");
    assert!(refused
        .header("www-authenticate")
        .unwrap()
        .contains("scope=\"chat:write\""));

    // "At most 10 chats a minute" per user: alice has used one.
    let mut last = None;
    for _ in 0..9 {
        last = Some(chat_with_session(&stack, &alice, "again"));
    }
    assert_eq!(last.unwrap().status, 200);
    let limited = chat_with_session(&stack, &alice, "one too many");
    assert_contract_error(&limited, 429, "RATE_LIMITED");
    assert!(limited.header("retry-after").is_some());

    // API clients: a bearer token of the `cli` provider.
    let token = Hs256Key::new(stack.jwt_secret.as_bytes()).mint(&json!({
        "iss": "https://gateway.demo", "aud": "qwen-web-chat", "sub": "ci-bot",
        "scope": "chat:read chat:write", "iat": now(), "exp": now() + 600
    }));
    let streamed = stack.envoy.send(
        Request::post("/v1/chat/completions")
            .header("authorization", format!("Bearer {token}"))
            .json(&json!({"model": "gpt-4o", "stream": true,
                "messages": [{"role": "user", "content": "Hi"}]})),
    );
    assert_eq!(streamed.status, 200, "{}", streamed.text());
    assert_eq!(streamed.header("content-type"), Some("text/event-stream"));
    assert!(
        streamed.text().ends_with("data: [DONE]\n\n"),
        "{}",
        streamed.text()
    );
    // Deny by default: Ollama's own endpoints are out of reach, whatever the token, and so are
    // spellings that no rule names.
    for (method, path) in [
        ("POST", "/api/pull"),
        ("DELETE", "/api/delete"),
        ("POST", "/api/chat"),
        ("POST", "/V1/CHAT/COMPLETIONS"),
    ] {
        let response = stack.envoy.send(
            Request::new(method, path)
                .header("authorization", format!("Bearer {token}"))
                .json(&json!({"model": "qwen3:8b"})),
        );
        assert_contract_error(&response, 403, "AUTH_INSUFFICIENT_SCOPE");
    }
}

#[test]
fn the_chat_page_in_headless_chromium() {
    let chromium = PathBuf::from("/usr/bin/chromium");
    assert!(
        chromium.exists(),
        "Debian's chromium is not installed: run `make setup` (it installs chromium)"
    );
    // Slow pieces, so the answer visibly streams in.
    let stack = DemoStack::start(Duration::from_millis(15));
    let root = paths::repo_root();
    let screenshot = root.join("target/chat-page.png");
    let output = Command::new("node")
        .arg(root.join("test-harness/browser/chat-page.mjs"))
        .args(["--base", &stack.base()])
        .args(["--user", "alice", "--expect-name", "Alice Chen"])
        .args(["--forbidden-user", "bob"])
        .arg("--screenshot")
        .arg(&screenshot)
        .current_dir(&root)
        .output()
        .expect("run node");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "the browser test failed:\n{report}"
    );
    assert!(
        screenshot.exists(),
        "no screenshot at {}",
        screenshot.display()
    );
    eprintln!("{report}");
}
