//! The demo as shipped: the repo's `envoy.yaml` (ports moved to ephemeral ones, nothing else
//! changed), the users of `demo/users.json` in a real OpenID Provider, the Ollama stand-in. The
//! chat page's files, login, the two users' different scopes, the per-user limit, API tokens,
//! and the page itself in headless Chromium.

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
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
        ("/chat/highlight.js", "text/javascript"),
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

    // The image the page attached (a 3000x2000 PNG) reached the model server as Ollama's
    // `images[0]`: a JPEG, downscaled in the browser to the page's data-max-image-px.
    let html = std::fs::read_to_string(root.join("demo/chat/index.html")).unwrap();
    let max_px =
        html_number(&html, "data-max-image-px").expect("data-max-image-px in index.html") as usize;
    let max_mb = html_number(&html, "data-max-image-mb").expect("data-max-image-mb in index.html");
    let chats: Vec<Value> = stack
        .ollama
        .requests()
        .iter()
        .filter(|r| r.path == "/api/chat")
        .map(|r| serde_json::from_slice(&r.body).expect("a JSON chat body"))
        .collect();
    let with_image = chats
        .iter()
        .find(|chat| {
            chat["messages"]
                .as_array()
                .unwrap()
                .iter()
                .any(|m| m["images"].is_array())
        })
        .unwrap_or_else(|| {
            panic!(
                "no chat with images reached the model server ({} chats)",
                chats.len()
            )
        });
    let message = with_image["messages"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["images"].is_array())
        .unwrap();
    assert_eq!(message["role"], "user");
    assert!(
        message["content"]
            .as_str()
            .unwrap()
            .contains("def area(w, h):"),
        "{}",
        message["content"]
    );
    let images = message["images"].as_array().unwrap();
    assert_eq!(images.len(), 1, "one image attached");
    let base64 = images[0].as_str().expect("images[0] is a string");
    let jpeg = base64::engine::general_purpose::STANDARD
        .decode(base64)
        .expect("images[0] is base64");
    assert_eq!(&jpeg[..2], &[0xFF, 0xD8], "images[0] is not a JPEG");
    let (width, height) = jpeg_size(&jpeg).expect("a SOF marker in the JPEG");
    assert!(
        width.max(height) <= max_px && width.max(height) == max_px.min(3000),
        "the JPEG is {width}x{height}, expected the 3000x2000 PNG scaled to {max_px} px"
    );
    assert!(
        (width * 2000).abs_diff(height * 3000) <= 3000,
        "aspect ratio kept: {width}x{height}"
    );
    // Far below the raw-size cap and the gateway's body limit: a 1024 px JPEG is well under 1 MiB.
    assert!(
        jpeg.len() < 1024 * 1024 && (jpeg.len() as f64) < max_mb * 1024.0 * 1024.0,
        "the JPEG is {} bytes",
        jpeg.len()
    );
    // What the page says it sent is what arrived (the gateway passed the base64 on unchanged).
    let sent = report
        .lines()
        .find_map(|line| line.strip_prefix("chat-page: image sent: "))
        .expect("the browser test printed what it sent");
    let sent: Value = serde_json::from_str(sent).unwrap();
    assert_eq!(
        sent["data_url_chars"].as_u64(),
        Some(("data:image/jpeg;base64,".len() + base64.len()) as u64)
    );
    assert_eq!(sent["jpeg_bytes"].as_u64(), Some(jpeg.len() as u64));
    assert_eq!(
        with_image["model"], DEMO_MODEL,
        "no vision model listed: the selected one"
    );
    eprintln!(
        "the model server received a {width}x{height} JPEG of {} bytes ({} base64 chars)",
        jpeg.len(),
        base64.len()
    );
}

/// The number in `name="..."` of an HTML file.
fn html_number(html: &str, name: &str) -> Option<f64> {
    let start = html.find(&format!("{name}=\""))? + name.len() + 2;
    let end = start + html[start..].find('"')?;
    html[start..end].parse().ok()
}

/// A JPEG's (width, height), from its first start-of-frame marker.
fn jpeg_size(jpeg: &[u8]) -> Option<(usize, usize)> {
    let mut i = 2;
    while i + 9 < jpeg.len() {
        if jpeg[i] != 0xFF {
            return None;
        }
        let marker = jpeg[i + 1];
        if marker == 0xFF {
            i += 1;
            continue;
        }
        let be16 = |at: usize| usize::from(jpeg[at]) << 8 | usize::from(jpeg[at + 1]);
        if (0xC0..=0xCF).contains(&marker) && ![0xC4, 0xC8, 0xCC].contains(&marker) {
            return Some((be16(i + 7), be16(i + 5)));
        }
        i += 2 + be16(i + 2);
    }
    None
}
