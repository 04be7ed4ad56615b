//! Route rules in a real Envoy, with its path normalisation on and off: per-route scopes,
//! template scopes, `auth: none` and `optional`, and a table of path spellings that try to
//! reach a route they are not allowed on. In every refused case the upstream receives nothing.

use serde_json::json;
use test_harness::contract::{
    assert_contract_error, assert_insufficient_scope, assert_invalid_token,
};
use test_harness::tokens::{claims, Hs256Key};
use test_harness::{Envoy, Request, Upstream};

const SECRET: &[u8] = b"route-rules-secret-of-32-bytes!!";

fn config() -> String {
    json!({
        "providers": [{"name": "sso", "issuer": "https://idp.test", "audiences": ["gw"],
                       "hs256_secret": {"env": "JWT_SECRET"}}],
        "rules": [
            {"match": {"prefix": "/healthz"}, "auth": "none"},
            {"match": {"path": "/v1/chat/completions", "methods": ["POST"]}, "scopes": ["chat:write"]},
            {"match": {"prefix": "/v1/models"}, "scopes": ["chat:read"]},
            {"match": {"template": "/v1/history/{team}/**"}, "scopes": ["history:{team}"]},
            {"match": {"prefix": "/public/"}, "auth": "optional"}
        ],
        // Deny by default: what no rule allows needs a scope nobody has.
        "default_rule": {"auth": "required", "scopes": ["gateway:admin"]}
    })
    .to_string()
}

fn gateway(normalize: bool) -> (Upstream, Envoy) {
    let upstream = Upstream::start();
    let envoy = Envoy::builder(&config())
        .upstream(upstream.addr())
        .normalize_path(normalize)
        .env("JWT_SECRET", std::str::from_utf8(SECRET).unwrap())
        .start()
        .unwrap_or_else(|e| panic!("envoy did not start: {}", e.log));
    (upstream, envoy)
}

fn token(scope: &str) -> String {
    Hs256Key::new(SECRET).mint(&claims("https://idp.test", "gw", "alice", scope))
}

/// Spellings of `POST /v1/chat/completions` that must never reach it with a `chat:read` token.
const SPELLINGS: &[&str] = &[
    "/v1/chat/completions",
    "//v1/chat/completions",
    "/v1//chat/completions",
    "/v1/./chat/completions",
    "/./v1/chat/completions",
    "/v1/x/../chat/completions",
    "/v1/models/../chat/completions",
    "/v1%2Fchat%2Fcompletions",
    "/v1/chat%2fcompletions",
    "/v1/%2e/chat/completions",
    "/v1/x/%2e%2e/chat/completions",
    "/v1/%63hat/completions",
    "/v1/chat/completions/",
    "/v1/chat/completions;x=1",
    "/v1;/chat/completions",
    "/v1/chat/completions?q=/v1/models",
    "/v1/chat/completions#/v1/models",
    "/V1/CHAT/COMPLETIONS",
    "/v1/Chat/Completions",
    "/v1\\chat\\completions",
    "/v1/chat/completions%00",
    "/v1/chat/completions/.",
    "/v1/chat/completions%2F",
    "/v1/models%2F..%2Fchat/completions",
    "/v1/models/..%2Fchat/completions",
    "/v1%5Cchat%5Ccompletions",
    "/v1%5cchat%5ccompletions",
    "/v1/chat%5Ccompletions",
    "/v1/models/..%5Cchat/completions",
    "/v1/models%5c..%5cchat/completions",
];

fn spellings_cannot_reach_the_chat_route(normalize: bool) {
    let (upstream, envoy) = gateway(normalize);
    let read_only = token("chat:read");
    let mut reached = Vec::new();
    for path in SPELLINGS {
        let response = envoy.send(
            Request::post(path)
                .bearer(&read_only)
                .json(&json!({"model": "m", "messages": []})),
        );
        let code = response.json_code();
        eprintln!("normalize={normalize} {path:45} {} {code}", response.status);
        if (200..300).contains(&response.status) {
            reached.push(format!("{path} -> {}", response.status));
        }
        // An encoded backslash is refused as a malformed path, whatever Envoy normalises.
        if path.to_ascii_lowercase().contains("%5c") {
            assert_eq!(
                response.status,
                400,
                "normalize={normalize} {path}: {}",
                response.text()
            );
        }
        // Our refusals are the contract's JSON; Envoy may also refuse a malformed request
        // itself (400) before the filter runs. Either way: refused.
        if response.status == 400 && response.header("content-type") == Some("application/json") {
            assert_contract_error(&response, 400, "INVALID_PATH");
        } else if response.status == 403 {
            assert_contract_error(&response, 403, "AUTH_INSUFFICIENT_SCOPE");
        }
    }
    assert!(
        reached.is_empty(),
        "normalize={normalize}: reached: {reached:?}"
    );
    assert!(
        upstream.requests().is_empty(),
        "normalize={normalize}: upstream got {:?}",
        upstream
            .requests()
            .iter()
            .map(|r| &r.path)
            .collect::<Vec<_>>()
    );
    assert!(SPELLINGS.len() >= 15);

    // The same token may do what its scope allows, and a chat:write token may chat.
    assert_eq!(
        envoy
            .send(Request::get("/v1/models").bearer(&read_only))
            .status,
        200
    );
    let writer = token("chat:read chat:write");
    let chat = Request::post("/v1/chat/completions")
        .bearer(&writer)
        .body("{}");
    assert_eq!(envoy.send(chat).status, 200);
    assert_eq!(upstream.requests().len(), 2);
}

#[test]
fn path_spellings_cannot_bypass_a_rule_with_normalisation_on() {
    spellings_cannot_reach_the_chat_route(true);
}

#[test]
fn path_spellings_cannot_bypass_a_rule_with_normalisation_off() {
    spellings_cannot_reach_the_chat_route(false);
}

#[test]
fn missing_scope_is_403_with_the_required_scopes() {
    let (upstream, envoy) = gateway(true);
    let response = envoy.send(
        Request::post("/v1/chat/completions")
            .bearer(&token("chat:read"))
            .body("{}"),
    );
    assert_insufficient_scope(&response, "chat:write");
    assert_eq!(response.json()["error"]["type"], "permission_error");
    assert!(upstream.requests().is_empty());
}

fn history_scopes_follow_the_team_in_the_path(normalize: bool) {
    let (upstream, envoy) = gateway(normalize);
    let team_a = token("history:team-a");
    let allowed = envoy.send(Request::get("/v1/history/team-a/conversations/7").bearer(&team_a));
    assert_eq!(allowed.status, 200, "{}", allowed.text());
    assert_eq!(
        envoy
            .send(Request::get("/v1/history/team-a").bearer(&team_a))
            .status,
        200
    );
    for path in [
        "/v1/history/team-b/conversations/7",
        "/v1/history/team-a/../team-b/conversations",
        "/v1/history/team-a/%2e%2e/team-b/x",
        "/v1/history/team-a%2F..%2Fteam-b/x",
        "/v1/history//team-b/x",
        "/v1/history/team-b",
    ] {
        let response = envoy.send(Request::get(path).bearer(&team_a));
        assert!(
            matches!(response.status, 400 | 403),
            "normalize={normalize} {path}: {} {}",
            response.status,
            response.text()
        );
    }
    let paths: Vec<String> = upstream.requests().iter().map(|r| r.path.clone()).collect();
    assert_eq!(
        paths,
        vec!["/v1/history/team-a/conversations/7", "/v1/history/team-a"],
        "normalize={normalize}"
    );
    let response = envoy.send(Request::get("/v1/history/team-b/x").bearer(&team_a));
    assert!(response
        .header("www-authenticate")
        .unwrap()
        .contains("scope=\"history:team-b\""));
}

#[test]
fn history_scopes_follow_the_team_with_normalisation_on() {
    history_scopes_follow_the_team_in_the_path(true);
}

#[test]
fn history_scopes_follow_the_team_with_normalisation_off() {
    history_scopes_follow_the_team_in_the_path(false);
}

#[test]
fn auth_none_and_optional_behave_as_stated() {
    let (upstream, envoy) = gateway(true);
    // none: no token needed, and a bad token is not even looked at.
    assert_eq!(envoy.send(Request::get("/healthz")).status, 200);
    assert_eq!(
        envoy
            .send(Request::get("/healthz").bearer("garbage"))
            .status,
        200
    );
    // optional: anonymous passes without identity; a valid token adds it; a bad one is refused.
    let anonymous = envoy.send(Request::get("/public/page").header("x-user-id", "spoofed"));
    assert_eq!(anonymous.status, 200);
    let known = envoy.send(Request::get("/public/page").bearer(&token("chat:read")));
    assert_eq!(known.status, 200);
    let forged = Hs256Key::new(b"forged-secret-forged-secret-32-b!").mint(&claims(
        "https://idp.test",
        "gw",
        "eve",
        "",
    ));
    assert_invalid_token(
        &envoy.send(Request::get("/public/page").bearer(&forged)),
        "invalid signature",
    );
    let received = upstream.requests();
    assert_eq!(received.len(), 4);
    assert_eq!(
        received[2].header("x-user-id"),
        None,
        "anonymous: no identity"
    );
    assert_eq!(received[3].header("x-user-id"), Some("alice"));
    // Required by default, with a scope nobody has.
    assert_contract_error(
        &envoy.send(Request::get("/elsewhere")),
        401,
        "AUTH_MISSING_TOKEN",
    );
    assert_contract_error(
        &envoy.send(Request::get("/elsewhere").bearer(&token("chat:read"))),
        403,
        "AUTH_INSUFFICIENT_SCOPE",
    );
    assert_eq!(upstream.requests().len(), 4);
}
