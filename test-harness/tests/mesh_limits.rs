//! Limits counted across Envoy replicas (`scope: "mesh"`): two Envoys, each with two workers,
//! one real Redis (Debian's `redis-server`) and one rate-limit service (the `limitador` crate
//! behind a `ratelimit.v3` gRPC front, `ratelimit-service/`). Exact request counts under
//! concurrency, exact token budgets with the official `openai` SDK (streamed and not), forged
//! tokens that never count, and the service down or slow.

use std::thread;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use test_harness::contract::assert_contract_error;
use test_harness::ollama::{self, OllamaConfig};
use test_harness::rate_limit_service::RateLimitService;
use test_harness::redis::Redis;
use test_harness::tokens::{claims, Hs256Key};
use test_harness::{openai_sdk, Envoy, Request, Response, Upstream};

const SECRET: &str = "mesh-limit-tests-secret-32-bytes!";

fn config(limits: Value, failure_mode: &str) -> String {
    json!({
        "providers": [{"name": "sso", "issuer": "https://idp.test", "audiences": ["gw"],
                       "hs256_secret": {"env": "JWT_SECRET"}}],
        "default_rule": {"auth": "required"},
        "translate": {"to": "ollama", "default_model": "qwen3:32b"},
        "rate_limit_service": {"cluster": "rls", "domain": "mesh-tests", "timeout_ms": 400,
                               "failure_mode": failure_mode},
        "rate_limits": limits
    })
    .to_string()
}

fn envoy(config: &str, upstream: &Upstream, rls: &RateLimitService) -> Envoy {
    Envoy::builder(config)
        .upstream(upstream.addr())
        .rate_limit_service(rls.addr())
        .concurrency(2)
        .env("JWT_SECRET", SECRET)
        .start()
        .unwrap_or_else(|e| panic!("envoy did not start: {}", e.log))
}

fn token(sub: &str) -> String {
    Hs256Key::new(SECRET.as_bytes()).mint(&claims("https://idp.test", "gw", sub, "chat"))
}

/// `clients` parallel clients, client `i` sending `per_client` requests to `envoys[i % n]`.
fn burst(envoys: &[&Envoy], request: &Request, clients: usize, per_client: usize) -> Vec<Response> {
    let handles: Vec<_> = (0..clients)
        .map(|i| {
            let addr = envoys[i % envoys.len()].addr();
            let request = request.clone();
            thread::spawn(move || {
                (0..per_client)
                    .map(|_| request.send(addr).expect("response"))
                    .collect::<Vec<_>>()
            })
        })
        .collect();
    handles
        .into_iter()
        .flat_map(|h| h.join().expect("client"))
        .collect()
}

fn counter(envoy: &Envoy, name: &str) -> u64 {
    envoy.gateway_counters().get(name).copied().unwrap_or(0)
}

fn count(responses: &[Response], status: u16) -> usize {
    responses.iter().filter(|r| r.status == status).count()
}

#[test]
fn a_per_user_limit_is_exact_across_two_envoys_under_concurrency() {
    let redis = Redis::start();
    let rls = RateLimitService::start(&redis);
    let upstream = Upstream::start();
    let limits = json!([{"name": "per-user", "key": "sub", "requests": 40, "window_s": 3600,
                         "scope": "mesh"}]);
    let config = config(limits, "deny");
    let (a, b) = (
        envoy(&config, &upstream, &rls),
        envoy(&config, &upstream, &rls),
    );

    // Forged tokens naming alice (bad signature) are refused before any count.
    let forged = format!("{}x", token("alice"));
    for envoy in [&a, &b] {
        for _ in 0..5 {
            let refused = envoy.send(Request::get("/anything").bearer(&forged));
            assert_contract_error(&refused, 401, "AUTH_INVALID_TOKEN");
        }
    }
    for round in 0..2 {
        let request = Request::get("/anything").bearer(&token(&format!("alice-{round}")));
        let responses = burst(&[&a, &b], &request, 16, 10);
        assert_eq!(
            count(&responses, 200),
            40,
            "round {round}: exactly the limit"
        );
        assert_eq!(count(&responses, 429), 120, "round {round}");
        let refused = responses.iter().find(|r| r.status == 429).expect("a 429");
        assert_contract_error(refused, 429, "RATE_LIMITED");
        assert!(refused.header("retry-after").is_some());
        assert_eq!(refused.header("x-ratelimit-limit"), Some("40"));
    }
    assert_eq!(
        upstream.requests().len(),
        80,
        "only admitted requests reached the upstream"
    );
    for envoy in [&a, &b] {
        envoy.assert_every_worker_served(2);
    }
    // Another user has a count of their own.
    assert_eq!(
        a.send(Request::get("/anything").bearer(&token("bob")))
            .status,
        200
    );
}

/// Total tokens the SDK's answer reports (`usage.total_tokens`).
fn total_tokens(answer: &Value) -> u64 {
    answer["usage"]["total_tokens"]
        .as_u64()
        .unwrap_or_else(|| panic!("usage in {answer}"))
}

#[test]
fn a_token_budget_is_exact_across_envoys_for_streamed_and_plain_chats_with_the_sdk() {
    let redis = Redis::start();
    let rls = RateLimitService::start(&redis);
    let upstream = ollama::start(OllamaConfig::default());
    // One chat's usage, measured through a gateway without limits.
    let plain = Envoy::builder(
        &json!({"default_rule": {"auth": "none"},
                "translate": {"to": "ollama", "default_model": "qwen3:32b"}})
        .to_string(),
    )
    .upstream(upstream.addr())
    .start()
    .unwrap_or_else(|e| panic!("{}", e.log));
    let probe = openai_sdk::run(plain.addr(), "none", "chat", &[]);
    let per_chat = total_tokens(&probe);
    assert!(per_chat > 0);
    let stream_probe = openai_sdk::run(plain.addr(), "none", "stream", &[]);
    assert_eq!(total_tokens(&stream_probe), per_chat, "same usage streamed");

    // Exactly four chats' worth: four pass (spent < budget before each); before the fifth the
    // budget is spent to the token, so it is refused.
    let budget = per_chat * 4;
    let limits = json!([{"name": "tokens", "key": "sub", "tokens": budget, "window_s": 3600,
                         "scope": "mesh"}]);
    let config = config(limits, "deny");
    let (a, b) = (
        envoy(&config, &upstream, &rls),
        envoy(&config, &upstream, &rls),
    );
    let key = token("carol");
    let mut spent = 0;
    for (i, (envoy, scenario)) in [(&a, "chat"), (&b, "stream"), (&b, "chat"), (&a, "stream")]
        .into_iter()
        .enumerate()
    {
        let answer = openai_sdk::run(envoy.addr(), &key, scenario, &[]);
        assert_eq!(answer["ok"], true, "chat {i} ({scenario}): {answer}");
        spent += total_tokens(&answer);
    }
    assert_eq!(spent, 4 * per_chat);
    for (envoy, scenario) in [(&a, "chat"), (&b, "stream")] {
        let refused = openai_sdk::run(envoy.addr(), &key, scenario, &[]);
        assert_eq!(refused["ok"], false, "{refused}");
        assert_eq!(refused["status"], 429, "{refused}");
        assert_eq!(refused["body"]["code"], "RATE_LIMITED", "{refused}");
    }
    // Another caller's budget is untouched.
    let other = openai_sdk::run(b.addr(), &token("dan"), "chat", &[]);
    assert_eq!(other["ok"], true, "{other}");
}

#[test]
fn the_service_down_is_a_503_without_counting_and_counting_resumes_exactly() {
    let redis = Redis::start();
    let mut rls = RateLimitService::start(&redis);
    let upstream = Upstream::start();
    let limits = json!([{"name": "per-user", "key": "sub", "requests": 5, "window_s": 3600,
                         "scope": "mesh"}]);
    let config = config(limits, "deny");
    let (a, b) = (
        envoy(&config, &upstream, &rls),
        envoy(&config, &upstream, &rls),
    );
    let request = Request::get("/anything").bearer(&token("erin"));
    assert_eq!(a.send(request.clone()).status, 200);
    assert_eq!(b.send(request.clone()).status, 200);

    rls.stop();
    for envoy in [&a, &b] {
        let started = Instant::now();
        let refused = envoy.send(request.clone());
        assert_contract_error(&refused, 503, "RATE_LIMIT_SERVICE_UNAVAILABLE");
        assert!(refused.header("retry-after").is_some());
        assert!(started.elapsed() < Duration::from_secs(3), "no hang");
    }
    assert_eq!(
        upstream.requests().len(),
        2,
        "nothing refused was forwarded"
    );

    rls.start_again();
    // 2 counted before; the refused ones were not: exactly 3 more pass.
    let statuses: Vec<u16> = (0..5)
        .map(|i| [&a, &b][i % 2].send(request.clone()).status)
        .collect();
    assert_eq!(statuses, vec![200, 200, 200, 429, 429]);
    for envoy in [&a, &b] {
        assert!(counter(envoy, "rate_limit_service_failures") >= 1);
        assert!(counter(envoy, "requests_rate_limit_service_unavailable") >= 1);
    }
}

#[test]
fn a_hung_service_answers_503_within_the_timeout_or_passes_with_failure_mode_allow() {
    let redis = Redis::start();
    let mut rls = RateLimitService::start(&redis);
    let upstream = Upstream::start();
    let limits = json!([{"name": "per-user", "key": "sub", "requests": 5, "window_s": 3600,
                         "scope": "mesh"}]);
    let deny = envoy(&config(limits.clone(), "deny"), &upstream, &rls);
    let allow = envoy(&config(limits, "allow"), &upstream, &rls);
    let request = Request::get("/anything").bearer(&token("frank"));
    assert_eq!(deny.send(request.clone()).status, 200);
    rls.suspend();
    let started = Instant::now();
    let refused = deny.send(request.clone());
    let waited = started.elapsed();
    assert_contract_error(&refused, 503, "RATE_LIMIT_SERVICE_UNAVAILABLE");
    assert!(
        waited >= Duration::from_millis(350),
        "it waited for the service: {waited:?}"
    );
    assert!(
        waited < Duration::from_secs(3),
        "bounded by timeout_ms: {waited:?}"
    );
    let passed = allow.send(request.clone());
    assert_eq!(passed.status, 200, "failure_mode allow: {}", passed.text());
    assert_eq!(counter(&allow, "rate_limit_service_failed_open"), 1);
    rls.resume();
    assert_eq!(
        deny.send(request).status,
        200,
        "works again once it answers"
    );
}
