//! JWT authentication in a real Envoy with two workers, against a JWKS server that counts its
//! fetches: every algorithm, refusals, one fetch for all workers, rotation, unknown-kid storms,
//! an IdP that is down, failing or slow.

use std::sync::OnceLock;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use test_harness::contract::{assert_contract_error, assert_invalid_token};
use test_harness::idp::{reserve_port, JwksBehaviour, JwksServer};
use test_harness::tokens::{b64url, claims, now, EcKey, EdKey, Hs256Key, RsaKey};
use test_harness::{Envoy, Request, Response, Upstream};

const ISSUER: &str = "https://idp.test";
const AUDIENCE: &str = "qwen-web-chat";
const SECRET: &[u8] = b"hs256-secret-for-tests-32-bytes!!";
const JWKS_PATH: &str = "/.well-known/jwks.json";

fn rsa() -> &'static RsaKey {
    static KEY: OnceLock<RsaKey> = OnceLock::new();
    KEY.get_or_init(|| RsaKey::generate("rsa-1", 2048))
}

fn rsa_rotated() -> &'static RsaKey {
    static KEY: OnceLock<RsaKey> = OnceLock::new();
    KEY.get_or_init(|| RsaKey::generate("rsa-2", 2048))
}

/// The plugin config: one provider with remote JWKS and an HS256 secret from the environment.
fn config(min_refresh_s: u64, cache_ttl_s: u64, timeout_ms: u64) -> String {
    json!({
        "providers": [{
            "name": "sso",
            "issuer": ISSUER,
            "audiences": [AUDIENCE],
            "algorithms": ["RS256", "ES256", "EdDSA", "HS256"],
            "hs256_secret": {"env": "JWT_SECRET"},
            "jwks": {"remote": {
                "cluster": "idp", "authority": "idp.test", "path": JWKS_PATH,
                "cache_ttl_s": cache_ttl_s, "min_refresh_interval_s": min_refresh_s,
                "timeout_ms": timeout_ms
            }}
        }],
        "default_rule": {"auth": "required"},
        "forward": {"user_header": "x-user-id", "scopes_header": "x-user-scopes"}
    })
    .to_string()
}

struct Setup {
    upstream: Upstream,
    idp: JwksServer,
    envoy: Envoy,
}

fn start_with(idp: JwksServer, config: &str) -> Setup {
    let upstream = Upstream::start();
    let envoy = Envoy::builder(config)
        .upstream(upstream.addr())
        .idp(idp.addr())
        .concurrency(2)
        .env("JWT_SECRET", std::str::from_utf8(SECRET).unwrap())
        .start()
        .unwrap_or_else(|e| panic!("envoy did not start: {}", e.log));
    Setup {
        upstream,
        idp,
        envoy,
    }
}

fn start(keys: Vec<Value>, min_refresh_s: u64) -> Setup {
    start_with(
        JwksServer::start(JWKS_PATH, keys),
        &config(min_refresh_s, 600, 2000),
    )
}

fn token_for(sub: &str) -> Value {
    claims(ISSUER, AUDIENCE, sub, "chat:read chat:write")
}

/// Waits for the keys fetched at start, then asserts `token` is let through.
fn assert_verified_once_keys_are_in(envoy: &Envoy, token: &str) {
    let response = send_until_ready(
        envoy,
        &Request::get("/").bearer(token),
        Duration::from_secs(10),
    );
    assert_eq!(response.status, 200, "{}", response.text());
}

/// Sends until the answer is not a 503 (keys still being fetched at start), for at most `limit`.
fn send_until_ready(envoy: &Envoy, request: &Request, limit: Duration) -> Response {
    let deadline = Instant::now() + limit;
    loop {
        let response = envoy.send(request.clone());
        if response.status != 503 || Instant::now() > deadline {
            return response;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn every_algorithm_verifies_and_the_upstream_learns_the_user() {
    let ec = EcKey::generate("ec-1");
    let ed = EdKey::generate("ed-1");
    let s = start(vec![rsa().jwk(), ec.jwk(), ed.jwk()], 30);
    let tokens = [
        ("RS256", rsa().mint(&token_for("rs-user"))),
        ("ES256", ec.mint(&token_for("es-user"))),
        ("EdDSA", ed.mint(&token_for("ed-user"))),
        ("HS256", Hs256Key::new(SECRET).mint(&token_for("hs-user"))),
    ];
    for (alg, token) in &tokens {
        let request = Request::get("/v1/models").bearer(token);
        let response = send_until_ready(&s.envoy, &request, Duration::from_secs(10));
        assert_eq!(response.status, 200, "{alg}: {}", response.text());
    }
    let received = s.upstream.requests();
    assert_eq!(received.len(), 4);
    for (r, (alg, _)) in received.iter().zip(tokens.iter()) {
        let expected = format!("{}-user", &alg[..2].to_ascii_lowercase());
        assert_eq!(
            r.header_values("x-user-id"),
            vec![expected.as_str()],
            "{alg}"
        );
        assert_eq!(r.header("x-user-scopes"), Some("chat:read chat:write"));
        // The token itself still reaches the upstream unless strip_authorization is set.
        assert!(r.header("authorization").is_some());
    }
}

#[test]
fn bad_tokens_get_401_with_the_contract_and_nothing_is_forwarded() {
    let s = start(vec![rsa().jwk()], 30);
    let good = rsa().mint(&token_for("alice"));
    // Wait for the keys, so each refusal below is for the token, not for missing keys.
    assert_verified_once_keys_are_in(&s.envoy, &good);
    let forwarded_before = s.upstream.requests().len();

    let mut expired = token_for("alice");
    expired["exp"] = json!(now() - 3600);
    let mut wrong_aud = token_for("alice");
    wrong_aud["aud"] = json!("another-app");
    let mut wrong_iss = token_for("alice");
    wrong_iss["iss"] = json!("https://evil.test");
    let (head, rest) = good.split_once('.').unwrap();
    let (_, sig) = rest.split_once('.').unwrap();
    let mut admin = token_for("admin");
    admin["scope"] = json!("admin");
    let tampered = format!("{head}.{}.{sig}", b64url(admin.to_string().as_bytes()));
    let none = format!(
        "{}.{}.",
        b64url(br#"{"alg":"none","typ":"JWT"}"#),
        b64url(token_for("alice").to_string().as_bytes())
    );
    let none_sig = format!("{none}c2ln");
    let cases = [
        ("expired", rsa().mint(&expired), "token is expired"),
        (
            "wrong audience",
            rsa().mint(&wrong_aud),
            "audience mismatch",
        ),
        ("wrong issuer", rsa().mint(&wrong_iss), "unknown issuer"),
        ("tampered", tampered, "invalid signature"),
        ("alg none", none_sig, "alg none is not allowed"),
        (
            "HS256 keyed with the RSA modulus",
            Hs256Key::new(rsa().jwk()["n"].as_str().unwrap().as_bytes()).mint_with_header(
                &json!({"alg": "HS256", "kid": "rsa-1"}),
                &token_for("alice"),
            ),
            "invalid signature",
        ),
        (
            "jku pointing elsewhere",
            rsa().mint_with_header(
                &json!({"alg": "RS256", "kid": "rsa-1", "jku": "http://127.0.0.1:1/jwks"}),
                &token_for("alice"),
            ),
            "header parameter jku is not allowed",
        ),
    ];
    for (name, token, details) in &cases {
        let response = s.envoy.send(
            Request::post("/v1/chat/completions")
                .bearer(token)
                .body("{}"),
        );
        assert_invalid_token(&response, details);
        assert_eq!(
            response.json()["error"]["message"],
            "Invalid or expired token",
            "{name}"
        );
        assert!(
            !response.text().contains(token.as_str()),
            "{name}: body echoes the token"
        );
    }
    assert_eq!(
        s.upstream.requests().len(),
        forwarded_before,
        "nothing more was forwarded"
    );
    assert!(
        !s.envoy.log().contains(&good),
        "tokens never appear in Envoy's log"
    );
}

#[test]
fn one_fetch_serves_both_workers() {
    let s = start(vec![rsa().jwk()], 30);
    let token = rsa().mint(&token_for("alice"));
    assert_verified_once_keys_are_in(&s.envoy, &token);
    for i in 0..60 {
        let response = s
            .envoy
            .send(Request::get(&format!("/v1/models?i={i}")).bearer(&token));
        assert_eq!(response.status, 200, "{}", response.text());
    }
    assert_eq!(s.idp.fetches(), 1, "one fetch for the whole Envoy");
    s.envoy.assert_every_worker_served(2);
}

#[test]
fn a_rotated_key_is_accepted_after_one_refetch() {
    let s = start(vec![rsa().jwk()], 1);
    let old = rsa().mint(&token_for("alice"));
    assert_verified_once_keys_are_in(&s.envoy, &old);
    assert_eq!(s.idp.fetches(), 1);
    // The IdP rotates: the new key joins the set. Past min_refresh_interval_s, an unknown kid
    // triggers exactly one refetch and the request waits for it.
    s.idp.set_keys(vec![rsa().jwk(), rsa_rotated().jwk()]);
    std::thread::sleep(Duration::from_millis(1100));
    let new = rsa_rotated().mint(&token_for("bob"));
    let response = s.envoy.send(Request::get("/v1/models").bearer(&new));
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(s.idp.fetches(), 2);
    for _ in 0..20 {
        assert_eq!(s.envoy.send(Request::get("/").bearer(&new)).status, 200);
        assert_eq!(s.envoy.send(Request::get("/").bearer(&old)).status, 200);
    }
    assert_eq!(s.idp.fetches(), 2, "both workers use the refetched keys");
}

#[test]
fn a_storm_of_unknown_kids_causes_at_most_one_fetch_per_interval() {
    let interval_s = 2;
    let s = start(vec![rsa().jwk()], interval_s);
    let good = rsa().mint(&token_for("alice"));
    assert_verified_once_keys_are_in(&s.envoy, &good);
    let started = Instant::now();
    let mut refused = 0;
    for i in 0..200 {
        let token = rsa().mint_with_header(
            &json!({"alg": "RS256", "kid": format!("random-{i}-{}", now())}),
            &token_for("mallory"),
        );
        let response = s.envoy.send(Request::get("/").bearer(&token));
        assert_eq!(response.status, 401, "{}", response.text());
        if response.json()["error"]["details"] == "unknown kid" {
            refused += 1;
        }
    }
    let elapsed = started.elapsed().as_secs();
    let fetches = s.idp.fetches();
    let bound = 1 + (elapsed / interval_s + 1) as usize;
    assert!(
        fetches <= bound,
        "{fetches} fetches in {elapsed} s (bound {bound})"
    );
    assert_eq!(refused, 200);
    assert_eq!(
        s.upstream.requests().len(),
        1,
        "only the good token was forwarded"
    );
}

#[test]
fn idp_down_at_start_gives_503_then_works_without_restart() {
    let idp_addr = reserve_port();
    let upstream = Upstream::start();
    let envoy = Envoy::builder(&config(30, 600, 500))
        .upstream(upstream.addr())
        .idp(idp_addr)
        .env("JWT_SECRET", std::str::from_utf8(SECRET).unwrap())
        .start()
        .unwrap_or_else(|e| panic!("envoy did not start: {}", e.log));
    let token = rsa().mint(&token_for("alice"));
    let response = envoy.send(Request::get("/v1/models").bearer(&token));
    assert_contract_error(&response, 503, "JWKS_UNAVAILABLE");
    let retry: u64 = response.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry), "retry-after {retry}");
    assert!(upstream.requests().is_empty());

    let idp = JwksServer::start_on(idp_addr, JWKS_PATH, vec![rsa().jwk()]);
    let response = send_until_ready(
        &envoy,
        &Request::get("/v1/models").bearer(&token),
        Duration::from_secs(10),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    assert!(idp.fetches() >= 1);
}

#[test]
fn a_failing_refresh_keeps_the_old_keys() {
    // TTL 1 s: a refresh is due every 0.9 s; min interval 1 s spaces the attempts.
    let s = start_with(
        JwksServer::start(JWKS_PATH, vec![rsa().jwk()]),
        &config(1, 1, 1000),
    );
    let token = rsa().mint(&token_for("alice"));
    assert_verified_once_keys_are_in(&s.envoy, &token);
    for behaviour in [
        JwksBehaviour::Status(500),
        JwksBehaviour::Body(b"{not json".to_vec()),
        JwksBehaviour::Body(br#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#.to_vec()),
    ] {
        s.idp.set_behaviour(behaviour);
        let failed_before = failed_refreshes(&s.envoy);
        let before = s.idp.fetches();
        let after = s.idp.wait_for_fetches(before + 1, Duration::from_secs(5));
        assert!(after > before, "a refresh was attempted");
        std::thread::sleep(Duration::from_millis(200));
        // Fresh tokens (never cached), on separate connections so both workers verify with
        // the keys they hold after the failed refresh.
        for i in 0..10 {
            let fresh = rsa().mint(&token_for(&format!("alice-{after}-{i}")));
            let response = s.envoy.send(Request::get("/").bearer(&fresh));
            assert_eq!(response.status, 200, "{}", response.text());
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        while failed_refreshes(&s.envoy) <= failed_before {
            assert!(
                Instant::now() < deadline,
                "the failed refresh was not counted"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    assert_eq!(s.envoy.send(Request::get("/").bearer(&token)).status, 200);
    assert!(s.envoy.log().contains("keeping the last good keys"));
    s.envoy.assert_every_worker_served(2);
}

#[test]
fn a_cached_token_is_refused_once_its_key_leaves_the_jwks() {
    let s = start(vec![rsa().jwk()], 1);
    let old = rsa().mint(&token_for("alice"));
    assert_verified_once_keys_are_in(&s.envoy, &old);
    for _ in 0..20 {
        assert_eq!(s.envoy.send(Request::get("/").bearer(&old)).status, 200);
    }
    // The IdP replaces the key: once a token with the new kid triggers the refetch, tokens
    // verified with the removed key are refused, cached or not, on every worker.
    s.idp.set_keys(vec![rsa_rotated().jwk()]);
    std::thread::sleep(Duration::from_millis(1100));
    let new = rsa_rotated().mint(&token_for("bob"));
    let response = s.envoy.send(Request::get("/").bearer(&new));
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(s.idp.fetches(), 2);
    // The other worker adopts the new key set on its next tick (100 ms).
    std::thread::sleep(Duration::from_millis(300));
    let forwarded = s.upstream.requests().len();
    for _ in 0..20 {
        assert_invalid_token(&s.envoy.send(Request::get("/").bearer(&old)), "unknown kid");
    }
    assert_eq!(s.upstream.requests().len(), forwarded);
    s.envoy.assert_every_worker_served(2);
}

#[test]
fn a_slow_idp_gives_503_in_bounded_time_never_a_hang() {
    let idp = JwksServer::start(JWKS_PATH, vec![rsa().jwk()]);
    idp.set_behaviour(JwksBehaviour::Delay(Duration::from_secs(20)));
    let s = start_with(idp, &config(30, 600, 300));
    let token = rsa().mint(&token_for("alice"));
    let started = Instant::now();
    let response = s.envoy.send(Request::get("/v1/models").bearer(&token));
    assert_contract_error(&response, 503, "JWKS_UNAVAILABLE");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    assert!(s.upstream.requests().is_empty());
}

#[test]
fn spoofed_identity_headers_never_reach_the_upstream() {
    let s = start(vec![rsa().jwk()], 30);
    let token = rsa().mint(&token_for("alice"));
    let request = Request::get("/v1/models")
        .bearer(&token)
        .header("x-user-id", "admin")
        .header("x-user-scopes", "admin");
    let response = send_until_ready(&s.envoy, &request, Duration::from_secs(10));
    assert_eq!(response.status, 200, "{}", response.text());
    let r = s.upstream.requests().pop().unwrap();
    assert_eq!(r.header_values("x-user-id"), vec!["alice"]);
    assert_eq!(
        r.header_values("x-user-scopes"),
        vec!["chat:read chat:write"]
    );
}

#[test]
fn garbage_jwks_never_opens_the_gate() {
    let idp = JwksServer::start(JWKS_PATH, vec![]);
    idp.set_behaviour(JwksBehaviour::Body(vec![0xff; 4096]));
    let s = start_with(idp, &config(30, 600, 1000));
    let token = rsa().mint(&token_for("alice"));
    for _ in 0..5 {
        let response = s.envoy.send(Request::get("/").bearer(&token));
        assert_contract_error(&response, 503, "JWKS_UNAVAILABLE");
        std::thread::sleep(Duration::from_millis(300));
    }
    assert!(s.upstream.requests().is_empty());
    assert!(!s.envoy.log().contains("panic"), "{}", s.envoy.log_tail(30));
}

#[test]
fn a_token_in_the_session_cookie_is_verified_like_a_header_token() {
    let mut config: Value = serde_json::from_str(&config(30, 600, 2000)).unwrap();
    config["token"] = json!({"header": "authorization", "cookie": "gw_session"});
    let s = start_with(
        JwksServer::start(JWKS_PATH, vec![rsa().jwk()]),
        &config.to_string(),
    );
    let token = rsa().mint(&token_for("carol"));
    let request =
        Request::get("/v1/models").header("cookie", format!("theme=dark; gw_session={token}"));
    let response = send_until_ready(&s.envoy, &request, Duration::from_secs(10));
    assert_eq!(response.status, 200, "{}", response.text());
    assert_eq!(s.upstream.requests()[0].header("x-user-id"), Some("carol"));
    let forged = Hs256Key::new(b"not-the-configured-secret-32-bytes!").mint(&token_for("admin"));
    let response = s
        .envoy
        .send(Request::get("/").header("cookie", format!("gw_session={forged}")));
    assert_invalid_token(&response, "invalid signature");
    assert_eq!(s.upstream.requests().len(), 1);
}

#[test]
fn strip_authorization_keeps_the_token_from_the_upstream_from_either_source() {
    let mut config: Value = serde_json::from_str(&config(30, 600, 2000)).unwrap();
    config["token"] = json!({"header": "authorization", "cookie": "gw_token"});
    config["forward"]["strip_authorization"] = json!(true);
    let s = start_with(
        JwksServer::start(JWKS_PATH, vec![rsa().jwk()]),
        &config.to_string(),
    );
    let token = rsa().mint(&token_for("dora"));
    let by_header = Request::get("/v1/models")
        .header("authorization", format!("Bearer {token}"))
        .header("cookie", "theme=dark");
    let response = send_until_ready(&s.envoy, &by_header, Duration::from_secs(10));
    assert_eq!(response.status, 200, "{}", response.text());
    let by_cookie = Request::get("/v1/models")
        .header("cookie", format!("theme=dark; gw_token={token}; lang=zh"));
    assert_eq!(s.envoy.send(by_cookie).status, 200);
    let only_cookie = Request::get("/v1/models").header("cookie", format!("gw_token={token}"));
    assert_eq!(s.envoy.send(only_cookie).status, 200);

    let seen = s.upstream.requests();
    assert_eq!(seen.len(), 3);
    for request in &seen {
        assert_eq!(request.header("x-user-id"), Some("dora"));
        assert_eq!(request.header("authorization"), None);
        let cookie = request.header("cookie").unwrap_or_default();
        assert!(!cookie.contains(&token), "token forwarded in {cookie:?}");
        assert!(!cookie.contains("gw_token"), "{cookie:?}");
    }
    assert_eq!(seen[0].header("cookie"), Some("theme=dark"));
    assert_eq!(seen[1].header("cookie"), Some("theme=dark; lang=zh"));
    assert_eq!(seen[2].header("cookie"), None);
}

fn failed_refreshes(envoy: &Envoy) -> u64 {
    let counters = envoy.gateway_counters();
    counters.get("jwks_fetches_failed").copied().unwrap_or(0)
}
