//! Rate limits in a real Envoy with two workers: exact counts under concurrency, windows,
//! per-caller keys, forged x-forwarded-for, token budgets charged from the upstream's usage.

use std::thread;
use std::time::Duration;

use serde_json::{json, Value};
use test_harness::contract::assert_contract_error;
use test_harness::tokens::{claims, now, Hs256Key};
use test_harness::upstream::Reply;
use test_harness::{Envoy, Request, Response, Upstream};

const SECRET: &str = "rate-limit-tests-secret-32-bytes!";

fn config(limits: Value, default_auth: &str) -> String {
    json!({
        "providers": [{"name": "sso", "issuer": "https://idp.test", "audiences": ["gw"],
                       "hs256_secret": {"env": "JWT_SECRET"}}],
        "default_rule": {"auth": default_auth},
        "rate_limits": limits
    })
    .to_string()
}

fn gateway_with(upstream: Upstream, config: &str) -> (Upstream, Envoy) {
    let envoy = Envoy::builder(config)
        .upstream(upstream.addr())
        .concurrency(2)
        .env("JWT_SECRET", SECRET)
        .start()
        .unwrap_or_else(|e| panic!("envoy did not start: {}", e.log));
    (upstream, envoy)
}

fn gateway(config: &str) -> (Upstream, Envoy) {
    gateway_with(Upstream::start(), config)
}

fn token(sub: &str) -> String {
    Hs256Key::new(SECRET.as_bytes()).mint(&claims("https://idp.test", "gw", sub, "chat:read"))
}

/// Sends `total` requests over `connections` parallel clients; returns every response.
fn burst(envoy: &Envoy, request: Request, total: usize, connections: usize) -> Vec<Response> {
    burst_each(envoy, vec![request; connections], total / connections)
}

fn count(responses: &[Response], status: u16) -> usize {
    responses.iter().filter(|r| r.status == status).count()
}

#[test]
fn exactly_the_limit_passes_under_concurrency_every_time() {
    let (upstream, envoy) = gateway(&config(
        json!([{"name": "per-user", "key": "sub", "requests": 100, "window_s": 3600}]),
        "required",
    ));
    for round in 0..3 {
        // A new subject per round: a fresh count, same Envoy.
        let request = Request::get("/v1/models").bearer(&token(&format!("user-{round}")));
        let responses = burst(&envoy, request, 400, 16);
        assert_eq!(count(&responses, 200), 100, "round {round}");
        assert_eq!(count(&responses, 429), 300, "round {round}");
    }
    assert_eq!(upstream.requests().len(), 300);
    // Both workers took connections, so the count really was shared across workers.
    envoy.assert_every_worker_served(2);
    assert!(
        envoy.connections_per_worker().iter().sum::<u64>() >= 1200,
        "a connection per request"
    );
}

#[test]
fn an_invalid_token_never_creates_a_count() {
    // One slot (and its overflow): a forged token that counted anywhere would take from the
    // real user's limit, whatever its subject.
    let limit = 5;
    let (upstream, envoy) = gateway(&config(
        json!([{"name": "per-user", "key": "sub", "requests": limit, "window_s": 3600, "slots": 1}]),
        "required",
    ));
    let forger = Hs256Key::new(b"not-the-gateway-secret-32-bytes!!");
    let mut expired = claims("https://idp.test", "gw", "alice", "chat:read");
    expired["exp"] = json!(now() - 3600);
    let mut other_audience = claims("https://idp.test", "gw", "alice", "chat:read");
    other_audience["aud"] = json!("someone-else");
    let genuine = token("alice");
    let (genuine_head, genuine_sig) = genuine.rsplit_once('.').expect("a JWT");
    let tampered_sig = format!(
        "{genuine_head}.{}{}",
        if genuine_sig.starts_with('A') {
            "B"
        } else {
            "A"
        },
        &genuine_sig[1..]
    );
    let mut forged = vec![
        forger.mint(&claims("https://idp.test", "gw", "alice", "chat:read")),
        Hs256Key::new(SECRET.as_bytes()).mint(&expired),
        Hs256Key::new(SECRET.as_bytes()).mint(&other_audience),
        tampered_sig,
        "not-a-jwt".to_string(),
    ];
    forged.extend((0..10).map(|i| {
        forger.mint(&claims(
            "https://idp.test",
            "gw",
            &format!("mallory-{i}"),
            "chat:read",
        ))
    }));
    for _ in 0..3 {
        for token in &forged {
            let response = envoy.send(Request::get("/v1/models").bearer(token));
            assert_eq!(response.status, 401, "{}", response.text());
        }
    }
    assert!(upstream.requests().is_empty());
    // The real alice still has her whole limit.
    let responses: Vec<Response> = (0..limit + 3)
        .map(|_| envoy.send(Request::get("/v1/models").bearer(&genuine)))
        .collect();
    assert_eq!(
        responses[0].header("x-ratelimit-remaining"),
        Some((limit - 1).to_string().as_str())
    );
    assert_eq!(count(&responses, 200), limit as usize);
    assert_eq!(count(&responses, 429), 3);
    assert_eq!(upstream.requests().len(), limit as usize);
}

#[test]
fn the_next_window_admits_again() {
    let (_upstream, envoy) = gateway(&config(
        json!([{"name": "per-user", "key": "sub", "requests": 5, "window_s": 1}]),
        "required",
    ));
    let request = Request::get("/").bearer(&token("alice"));
    let first = burst(&envoy, request.clone(), 8, 1);
    assert_eq!(count(&first, 200), 5);
    // The sliding window forgets a full window two windows later.
    thread::sleep(Duration::from_millis(2100));
    let second = burst(&envoy, request, 8, 1);
    assert_eq!(count(&second, 200), 5);
}

#[test]
fn two_users_do_not_share_a_count() {
    let (_upstream, envoy) = gateway(&config(
        json!([{"name": "per-user", "key": "sub", "requests": 3, "window_s": 3600}]),
        "required",
    ));
    let alice = burst(&envoy, Request::get("/").bearer(&token("alice")), 5, 1);
    let bob = burst(&envoy, Request::get("/").bearer(&token("bob")), 5, 1);
    assert_eq!((count(&alice, 200), count(&bob, 200)), (3, 3));
}

#[test]
fn refusals_and_admissions_carry_the_rate_limit_headers() {
    let (upstream, envoy) = gateway(&config(
        json!([{"name": "per-user", "key": "sub", "requests": 2, "window_s": 60}]),
        "required",
    ));
    let request = Request::get("/v1/models").bearer(&token("carol"));
    let first = envoy.send(request.clone());
    assert_eq!(first.status, 200);
    assert_eq!(first.header("x-ratelimit-limit"), Some("2"));
    assert_eq!(first.header("x-ratelimit-remaining"), Some("1"));
    let reset: u64 = first.header("x-ratelimit-reset").unwrap().parse().unwrap();
    assert!((1..=60).contains(&reset));
    assert_eq!(
        envoy.send(request.clone()).header("x-ratelimit-remaining"),
        Some("0")
    );
    let refused = envoy.send(request);
    assert_contract_error(&refused, 429, "RATE_LIMITED");
    assert_eq!(refused.json()["error"]["type"], "rate_limit_error");
    let retry: u64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!(retry >= 1, "{retry}");
    assert_eq!(refused.header("x-ratelimit-limit"), Some("2"));
    assert_eq!(refused.header("x-ratelimit-remaining"), Some("0"));
    assert!(refused.header("x-ratelimit-reset").is_some());
    assert_eq!(
        upstream.requests().len(),
        2,
        "the refused request never reached the upstream"
    );
}

#[test]
fn forged_forwarded_for_does_not_escape_an_ip_limit() {
    let (_upstream, envoy) = gateway(&config(
        json!([{"name": "per-ip", "key": "ip", "requests": 3, "window_s": 3600}]),
        "none",
    ));
    let statuses: Vec<u16> = (0..6)
        .map(|i| {
            envoy
                .send(Request::get("/").header("x-forwarded-for", format!("10.9.8.{i}")))
                .status
        })
        .collect();
    assert_eq!(statuses, vec![200, 200, 200, 429, 429, 429]);
}

#[test]
fn trusted_hops_count_the_address_the_proxy_saw() {
    let (_upstream, envoy) = gateway(&config(
        json!([{"name": "per-ip", "key": "ip", "requests": 2, "window_s": 3600, "trusted_hops": 1}]),
        "none",
    ));
    // The trusted proxy appended the client's address last; what the client wrote is ignored.
    let send = |forged: &str, seen: &str| {
        envoy
            .send(Request::get("/").header("x-forwarded-for", format!("{forged}, {seen}")))
            .status
    };
    assert_eq!(send("1.1.1.1", "203.0.113.7"), 200);
    assert_eq!(send("2.2.2.2", "203.0.113.7"), 200);
    assert_eq!(send("3.3.3.3", "203.0.113.7"), 429);
    assert_eq!(send("3.3.3.3", "203.0.113.8"), 200, "another client");
}

/// An Ollama-style NDJSON stream whose last line reports 26 + 290 tokens.
fn ollama_stream_upstream() -> Upstream {
    Upstream::with_handler(|_| {
        let lines = [
            r#"{"model":"qwen3","created_at":"2026-11-23T10:00:00.000000001Z","message":{"role":"assistant","content":"Hel"},"done":false}"#,
            r#"{"model":"qwen3","created_at":"2026-11-23T10:00:00.100000001Z","message":{"role":"assistant","content":"lo"},"done":false}"#,
            r#"{"model":"qwen3","created_at":"2026-11-23T10:00:00.200000001Z","message":{"role":"assistant","content":""},"done":true,"done_reason":"stop","total_duration":1,"load_duration":1,"prompt_eval_count":26,"prompt_eval_duration":1,"eval_count":290,"eval_duration":1}"#,
        ];
        let chunks = lines
            .iter()
            .map(|l| (Duration::from_millis(20), format!("{l}\n").into_bytes()))
            .collect();
        Reply::chunked(200, "application/x-ndjson", chunks)
    })
}

#[test]
fn a_token_budget_is_charged_from_the_stream_and_then_refuses() {
    let (upstream, envoy) = gateway_with(
        ollama_stream_upstream(),
        &config(
            json!([{"name": "tokens", "key": "sub", "tokens": 500, "window_s": 3600}]),
            "required",
        ),
    );
    let chat = Request::post("/api/chat")
        .bearer(&token("dave"))
        .json(&json!({"model": "qwen3", "messages": [{"role": "user", "content": "hi"}]}));
    let first = envoy.send(chat.clone());
    assert_eq!(first.status, 200, "{}", first.text());
    assert!(first.text().contains("\"done\":true"));
    // 316 of 500 used: not spent yet.
    let second = envoy.send(chat.clone());
    assert_eq!(second.status, 200, "{}", second.text());
    // 632 of 500: spent, refused before the model.
    let third = envoy.send(chat);
    assert_contract_error(&third, 429, "RATE_LIMITED");
    assert_eq!(upstream.requests().len(), 2);
    // Another user has a budget of their own.
    let other = envoy.send(Request::post("/api/chat").bearer(&token("erin")).body("{}"));
    assert_eq!(other.status, 200);
}

#[test]
fn max_tokens_is_reserved_before_the_model_is_reached() {
    let (upstream, envoy) = gateway_with(
        ollama_stream_upstream(),
        &config(
            json!([{"name": "tokens", "key": "sub", "tokens": 500, "window_s": 3600}]),
            "required",
        ),
    );
    let chat = |max_tokens: u64| {
        Request::post("/v1/chat/completions")
            .bearer(&token("frank"))
            .json(&json!({
                "model": "qwen3", "max_tokens": max_tokens,
                "messages": [{"role": "user", "content": "hi"}]
            }))
    };
    // More than the whole budget: refused before the model, nothing forwarded.
    assert_contract_error(&envoy.send(chat(600)), 429, "RATE_LIMITED");
    assert!(upstream.requests().is_empty());
    // 200 reserved, 316 used: 316 charged.
    assert_eq!(envoy.send(chat(200)).status, 200);
    // 316 + 200 reserved > 500: refused; a smaller reservation still fits.
    assert_contract_error(&envoy.send(chat(200)), 429, "RATE_LIMITED");
    assert_eq!(envoy.send(chat(100)).status, 200);
    assert_eq!(upstream.requests().len(), 2);
}

/// Sends `per_connection` requests on each of `requests.len()` parallel clients, client `i`
/// sending `requests[i]`; returns every response.
fn burst_each(envoy: &Envoy, requests: Vec<Request>, per_connection: usize) -> Vec<Response> {
    let addr = envoy.addr();
    let handles: Vec<_> = requests
        .into_iter()
        .map(|request| {
            thread::spawn(move || {
                (0..per_connection)
                    .map(|_| request.send(addr).expect("response"))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().expect("client thread"))
        .collect()
}

fn team_token(sub: &str, team: &str) -> String {
    let mut claims = claims("https://idp.test", "gw", sub, "chat:read");
    claims["team"] = json!(team);
    Hs256Key::new(SECRET.as_bytes()).mint(&claims)
}

#[test]
fn a_team_budget_is_exact_for_its_members_together_under_concurrency() {
    let (upstream, envoy) = gateway(&config(
        json!([{"name": "per-team", "key": "claim:team", "requests": 100, "window_s": 3600}]),
        "required",
    ));
    // Sixteen members of one team, each on its own client, 400 requests in all.
    let members: Vec<Request> = (0..16)
        .map(|i| Request::get("/v1/models").bearer(&team_token(&format!("member-{i}"), "research")))
        .collect();
    let responses = burst_each(&envoy, members, 25);
    assert_eq!(count(&responses, 200), 100, "the team's budget, shared");
    assert_eq!(count(&responses, 429), 300);
    assert_eq!(upstream.requests().len(), 100);
    envoy.assert_every_worker_served(2);
    // Another team has its own budget; a new member of the first team has none left.
    let other = envoy.send(Request::get("/v1/models").bearer(&team_token("olga", "ops")));
    assert_eq!(other.status, 200);
    let late = envoy.send(Request::get("/v1/models").bearer(&team_token("newcomer", "research")));
    assert_contract_error(&late, 429, "RATE_LIMITED");
}

fn role_token(sub: &str, role: &str) -> String {
    let mut claims = claims("https://idp.test", "gw", sub, "chat:read");
    claims["groups"] = json!([role]);
    Hs256Key::new(SECRET.as_bytes()).mint(&claims)
}

#[test]
fn a_role_budget_is_shared_by_everyone_holding_the_role_under_concurrency() {
    let config = json!({
        "providers": [{"name": "sso", "issuer": "https://idp.test", "audiences": ["gw"],
                       "hs256_secret": {"env": "JWT_SECRET"}}],
        "roles": {"claims": ["groups"], "grants": {"research": ["chat:read"], "ops": ["chat:read"]}},
        "rate_limits": [{"name": "per-role", "key": "role", "requests": 100, "window_s": 3600}]
    });
    let (upstream, envoy) = gateway(&config.to_string());
    let members: Vec<Request> = (0..16)
        .map(|i| Request::get("/v1/models").bearer(&role_token(&format!("member-{i}"), "research")))
        .collect();
    let responses = burst_each(&envoy, members, 25);
    assert_eq!(count(&responses, 200), 100, "the role's budget, shared");
    assert_eq!(count(&responses, 429), 300);
    assert_eq!(upstream.requests().len(), 100);
    envoy.assert_every_worker_served(2);
    let other = envoy.send(Request::get("/v1/models").bearer(&role_token("olga", "ops")));
    assert_eq!(other.status, 200, "another role has its own budget");
}

/// Seconds from now until the next UTC month starts, by Python's own calendar (an oracle
/// independent of the gateway's date arithmetic).
fn seconds_to_next_month() -> i64 {
    let script = "import datetime as d\n\
        n = d.datetime.now(d.timezone.utc)\n\
        y, m = (n.year + 1, 1) if n.month == 12 else (n.year, n.month + 1)\n\
        print(int((d.datetime(y, m, 1, tzinfo=d.timezone.utc) - n).total_seconds()))";
    let output = std::process::Command::new("python3")
        .args(["-c", script])
        .output()
        .expect("python3");
    String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .expect("seconds")
}

#[test]
fn a_monthly_budget_says_it_resets_when_the_month_ends() {
    let (_upstream, envoy) = gateway(&config(
        json!([{"name": "monthly", "key": "sub", "requests": 2, "window": "month"}]),
        "required",
    ));
    let request = || Request::get("/v1/models").bearer(&token("mona"));
    let expected = seconds_to_next_month();
    let first = envoy.send(request());
    assert_eq!(first.status, 200);
    let reset: i64 = first.header("x-ratelimit-reset").unwrap().parse().unwrap();
    assert!(
        (reset - expected).abs() <= 2,
        "reset {reset} s, month ends in {expected} s"
    );
    assert_eq!(envoy.send(request()).status, 200);
    let refused = envoy.send(request());
    assert_contract_error(&refused, 429, "RATE_LIMITED");
    let retry: i64 = refused.header("retry-after").unwrap().parse().unwrap();
    assert!(
        (retry - expected).abs() <= 2,
        "retry after {retry} s, month ends in {expected} s"
    );
}
