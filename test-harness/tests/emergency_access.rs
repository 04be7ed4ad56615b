//! Break-glass access: a single-use HS256 token from an allowed address admits its first
//! request and opens a session; a reused `jti` (even sent to both workers at once), another
//! address, or a token living longer than allowed gets 401.

use std::sync::{Arc, Barrier};
use std::thread;

use serde_json::json;
use test_harness::contract::assert_contract_error;
use test_harness::tokens::{now, Hs256Key};
use test_harness::{Envoy, Request, Upstream};

const KEY: &str = "break-glass-key-for-tests-32-bytes!!";

fn gateway(upstream: &Upstream, allow: &[&str], workers: u32) -> Envoy {
    let config = json!({
        "providers": [{"name": "sso", "issuer": "https://idp.test", "audiences": ["gw"],
                       "hs256_secret": {"inline": "some-other-secret-of-at-least-32-bytes"}}],
        "rules": [{"match": {"prefix": "/admin"}, "scopes": ["gateway:admin"]}],
        "emergency_access": {"allow_ips": allow, "key": {"env": "BREAK_GLASS_KEY"},
                             "scopes": ["gateway:admin"], "max_ttl_s": 600,
                             "allow_insecure_cookies": true}
    });
    Envoy::builder(&config.to_string())
        .upstream(upstream.addr())
        .concurrency(workers)
        .env("BREAK_GLASS_KEY", KEY)
        .start()
        .unwrap_or_else(|e| panic!("envoy did not start: {}", e.log))
}

fn break_glass(jti: &str, ttl: i64) -> String {
    let iat = now();
    Hs256Key::new(KEY.as_bytes()).mint(&json!({
        "iss": "urn:ai-gateway:emergency", "sub": "oncall@example.com", "jti": jti,
        "iat": iat, "exp": iat + ttl
    }))
}

fn admin(envoy: &Envoy, token: Option<&str>, cookie: Option<&str>) -> test_harness::Response {
    let mut request = Request::get("/admin/status");
    if let Some(token) = token {
        request = request.bearer(token);
    }
    if let Some(cookie) = cookie {
        request = request.header("cookie", cookie);
    }
    request.send(envoy.addr()).expect("response")
}

fn jti() -> String {
    format!("jti-{}", rand::random::<u64>())
}

#[test]
fn the_first_use_is_admitted_with_a_session_and_the_second_is_refused() {
    let upstream = Upstream::start();
    let envoy = gateway(&upstream, &["127.0.0.0/8"], 1);
    let token = break_glass(&jti(), 300);
    let first = admin(&envoy, Some(&token), None);
    assert_eq!(first.status, 200, "{}", first.text());
    let cookie = first
        .header("set-cookie")
        .expect("a session cookie")
        .split(';')
        .next()
        .unwrap()
        .to_string();
    assert!(cookie.starts_with("gw_emergency="), "{cookie}");
    let forwarded = upstream.requests();
    let user = forwarded[0]
        .headers
        .iter()
        .find(|(n, _)| n == "x-user-id")
        .map(|(_, v)| v.clone());
    assert_eq!(user.as_deref(), Some("oncall@example.com"));

    let again = admin(&envoy, Some(&token), None);
    assert_contract_error(&again, 401, "AUTH_INVALID_TOKEN");
    assert!(again.text().contains("already used"), "{}", again.text());

    let with_session = admin(&envoy, None, Some(&format!("{cookie}; theme=dark")));
    assert_eq!(with_session.status, 200, "{}", with_session.text());
    let forwarded = upstream.requests();
    assert_eq!(forwarded.len(), 2);
    // Neither the break-glass token nor its session reaches the upstream; other cookies do.
    assert!(forwarded[0]
        .headers
        .iter()
        .all(|(n, _)| n != "authorization"));
    let cookies: Vec<&str> = forwarded[1]
        .headers
        .iter()
        .filter(|(n, _)| n == "cookie")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(cookies, ["theme=dark"]);
    let counters = envoy.gateway_counters();
    assert_eq!(counters.get("emergency_access_admitted").copied(), Some(1));
}

#[test]
fn outside_the_allowed_range_neither_token_nor_forwarded_for_helps() {
    let upstream = Upstream::start();
    let envoy = gateway(&upstream, &["10.0.0.0/24"], 1);
    let token = break_glass(&jti(), 300);
    let refused = Request::get("/admin/status")
        .bearer(&token)
        .header("x-forwarded-for", "10.0.0.5")
        .send(envoy.addr())
        .expect("response");
    assert_contract_error(&refused, 401, "AUTH_INVALID_TOKEN");
    assert!(upstream.requests().is_empty());
}

#[test]
fn a_token_living_longer_than_allowed_or_signed_otherwise_is_refused() {
    let upstream = Upstream::start();
    let envoy = gateway(&upstream, &["127.0.0.1"], 1);
    let long = break_glass(&jti(), 601);
    assert_contract_error(&admin(&envoy, Some(&long), None), 401, "AUTH_INVALID_TOKEN");
    let iat = now();
    let forged = Hs256Key::new(b"not-the-break-glass-key-but-32-bytes!").mint(&json!({
        "iss": "urn:ai-gateway:emergency", "sub": "x", "jti": jti(), "iat": iat, "exp": iat + 60
    }));
    assert_contract_error(
        &admin(&envoy, Some(&forged), None),
        401,
        "AUTH_INVALID_TOKEN",
    );
    assert!(upstream.requests().is_empty());
}

#[test]
fn the_same_token_sent_to_both_workers_at_once_is_admitted_once() {
    let upstream = Upstream::start();
    let envoy = gateway(&upstream, &["127.0.0.1"], 2);
    for _ in 0..3 {
        let token = break_glass(&jti(), 300);
        let clients = 8;
        let barrier = Arc::new(Barrier::new(clients));
        let addr = envoy.addr();
        let handles: Vec<_> = (0..clients)
            .map(|_| {
                let (barrier, token) = (Arc::clone(&barrier), token.clone());
                thread::spawn(move || {
                    barrier.wait();
                    Request::get("/admin/status")
                        .bearer(&token)
                        .send(addr)
                        .expect("response")
                        .status
                })
            })
            .collect();
        let statuses: Vec<u16> = handles.into_iter().map(|h| h.join().unwrap()).collect();
        assert_eq!(
            statuses.iter().filter(|s| **s == 200).count(),
            1,
            "{statuses:?}"
        );
        assert!(
            statuses.iter().all(|s| *s == 200 || *s == 401),
            "{statuses:?}"
        );
    }
}

#[test]
fn the_helper_script_mints_a_token_the_gateway_admits_once() {
    let script =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/break-glass-token.py");
    let output = std::process::Command::new("python3")
        .arg(&script)
        .args(["oncall@example.com", "120"])
        .env("BREAK_GLASS_KEY", KEY)
        .output()
        .expect("python3 runs the script");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let token = String::from_utf8(output.stdout).unwrap().trim().to_string();
    let upstream = Upstream::start();
    let envoy = gateway(&upstream, &["127.0.0.1"], 1);
    assert_eq!(admin(&envoy, Some(&token), None).status, 200);
    assert_contract_error(
        &admin(&envoy, Some(&token), None),
        401,
        "AUTH_INVALID_TOKEN",
    );
}
