//! Browser login through a real OpenID Provider (npm oidc-provider): the full code flow with
//! PKCE, the session cookie on protected routes, replay and tampering, logout, a foreign `rd`,
//! an IdP that is down at start.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use test_harness::contract::assert_contract_error;
use test_harness::idp::reserve_port;
use test_harness::oidc::{login, Browser, OidcClient, OidcOptions, OidcProvider};
use test_harness::{Envoy, Request, Response, Upstream};

const CLIENT_ID: &str = "qwen-web-chat";
const CLIENT_SECRET: &str = "test-client-secret-0123456789abcdef";
const SESSION_SECRET: &str = "session-secret-for-tests-32bytes!!";

struct Setup {
    gateway: SocketAddr,
    upstream: Upstream,
    envoy: Envoy,
    idp: Option<OidcProvider>,
}

fn base(gateway: SocketAddr) -> String {
    format!("http://{gateway}")
}

fn options(gateway: SocketAddr, idp_port: u16) -> OidcOptions {
    OidcOptions {
        port: idp_port,
        clients: vec![OidcClient {
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            redirect_uris: vec![format!("{}/oauth2/callback", base(gateway))],
            post_logout_redirect_uris: vec![format!("{}/", base(gateway))],
            auth_method: "client_secret_basic".into(),
        }],
        ..OidcOptions::default()
    }
}

fn config(gateway: SocketAddr, idp: SocketAddr) -> String {
    json!({
        "rules": [
            {"match": {"path": "/v1/chat/completions", "methods": ["POST"]}, "scopes": ["chat:write"]},
            {"match": {"template": "/v1/history/{team}/**"}, "scopes": ["history:{team}"]}
        ],
        "oauth2": {
            "cluster": "idp",
            "authority": idp.to_string(),
            "issuer": format!("http://{idp}"),
            "client_id": CLIENT_ID,
            "client_secret": {"env": "OAUTH_CLIENT_SECRET"},
            "redirect_uri": format!("{}/oauth2/callback", base(gateway)),
            "scopes": ["openid", "profile", "email", "chat:read", "chat:write", "history:team-a", "history:team-b"],
            "post_logout_redirect_uri": format!("{}/", base(gateway)),
            "allow_insecure_cookies": true,
            "session": {"secret": {"env": "SESSION_SECRET"}, "ttl_s": 3600, "scopes": ["chat:read"]}
        }
    })
    .to_string()
}

/// Gateway on a reserved port, IdP on `idp_port` (started now unless `idp_down`).
fn start(idp_down: bool) -> Setup {
    let gateway = reserve_port();
    let idp_port = reserve_port();
    let idp = (!idp_down).then(|| OidcProvider::start(options(gateway, idp_port.port())));
    let upstream = Upstream::start();
    let envoy = Envoy::builder(&config(gateway, idp_port))
        .upstream(upstream.addr())
        .idp(idp_port)
        .listener_port(gateway.port())
        .env("OAUTH_CLIENT_SECRET", CLIENT_SECRET)
        .env("SESSION_SECRET", SESSION_SECRET)
        .start()
        .unwrap_or_else(|e| panic!("envoy did not start: {}", e.log));
    Setup {
        gateway,
        upstream,
        envoy,
        idp,
    }
}

/// `GET /oauth2/login?rd=...` until discovery is ready; the 302 to the IdP.
fn login_redirect(browser: &mut Browser, gateway: SocketAddr, rd: &str) -> Response {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let response = browser.get(&format!("{}/oauth2/login?rd={rd}", base(gateway)));
        if response.status != 503 || Instant::now() > deadline {
            return response;
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Logs `user` in; returns the callback's response (the session-setting redirect).
fn log_in(s: &Setup, browser: &mut Browser, user: &str, rd: &str) -> Response {
    let redirect = login_redirect(browser, s.gateway, rd);
    assert_eq!(redirect.status, 302, "{}", redirect.text());
    let authorize = redirect.header("location").unwrap().to_string();
    let callback = login(
        browser,
        &authorize,
        &format!("{}/oauth2/callback", base(s.gateway)),
        user,
    );
    browser.get(&callback)
}

fn host(gateway: SocketAddr) -> String {
    gateway.to_string()
}

fn api_with_session(s: &Setup, session: &str, path: &str) -> Response {
    s.envoy.send(
        Request::post(path)
            .header("cookie", format!("gw_session={session}"))
            .header("origin", base(s.gateway))
            .json(&json!({"model": "m", "messages": []})),
    )
}

#[test]
fn full_flow_session_on_protected_routes_then_logout() {
    let s = start(false);
    let mut browser = Browser::new();
    let redirect = login_redirect(&mut browser, s.gateway, "%2Fv1%2Fhistory%2Fteam-a%2Fx");
    assert_eq!(redirect.status, 302);
    let authorize = redirect.header("location").unwrap().to_string();
    for param in [
        "response_type=code",
        "code_challenge_method=S256",
        "code_challenge=",
        "state=",
        "nonce=",
        "client_id=qwen-web-chat",
    ] {
        assert!(authorize.contains(param), "{param} missing in {authorize}");
    }
    assert!(
        !authorize.contains("code_verifier"),
        "the verifier never travels in a URL"
    );
    let flow_cookie = redirect
        .headers
        .iter()
        .find(|(n, v)| n == "set-cookie" && v.starts_with("gw_oauth2_flow="))
        .map(|(_, v)| v.clone())
        .expect("flow cookie");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=600"] {
        assert!(flow_cookie.contains(attribute), "{flow_cookie}");
    }
    let callback = login(
        &mut browser,
        &authorize,
        &format!("{}/oauth2/callback", base(s.gateway)),
        "alice",
    );
    let landed = browser.get(&callback);
    assert_eq!(landed.status, 302, "{}", landed.text());
    assert_eq!(landed.header("location"), Some("/v1/history/team-a/x"));
    let session_cookie = landed
        .headers
        .iter()
        .find(|(n, v)| n == "set-cookie" && v.starts_with("gw_session="))
        .map(|(_, v)| v.clone())
        .expect("session cookie");
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=3600"] {
        assert!(session_cookie.contains(attribute), "{session_cookie}");
    }
    assert!(
        !session_cookie.contains("Secure"),
        "allow_insecure_cookies: no Secure on plain http"
    );
    let session = browser
        .cookie(&host(s.gateway), "gw_session")
        .expect("session stored");

    // The session works on protected routes (alice was granted chat:write and history:team-a).
    let chat = api_with_session(&s, &session, "/v1/chat/completions");
    assert_eq!(chat.status, 200, "{}", chat.text());
    let received = s.upstream.requests();
    let sub = received[0]
        .header("x-user-id")
        .expect("identity forwarded")
        .to_string();
    assert!(!sub.is_empty());
    assert_eq!(
        s.envoy
            .send(
                Request::get("/v1/history/team-a/1")
                    .header("cookie", format!("gw_session={session}"))
            )
            .status,
        200
    );
    assert_contract_error(
        &s.envoy.send(
            Request::get("/v1/history/team-b/1").header("cookie", format!("gw_session={session}")),
        ),
        403,
        "AUTH_INSUFFICIENT_SCOPE",
    );
    // The userinfo endpoint names the session's user from verified claims, needing no scope.
    let me = s
        .envoy
        .send(Request::get("/oauth2/userinfo").header("cookie", format!("gw_session={session}")));
    assert_eq!(me.status, 200, "{}", me.text());
    assert_eq!(me.header("cache-control"), Some("no-store"));
    let me: Value = serde_json::from_str(&me.text()).unwrap();
    assert_eq!(me["sub"], sub.as_str());
    assert_eq!(me["name"], "Alice Example");
    assert_eq!(me["email"], "alice@example.test");
    assert!(me["scopes"]
        .as_array()
        .unwrap()
        .contains(&json!("chat:write")));
    assert!(me["expires_at"].as_u64().unwrap() > 0);
    assert_contract_error(
        &s.envoy.send(Request::get("/oauth2/userinfo")),
        401,
        "AUTH_MISSING_TOKEN",
    );
    assert_contract_error(
        &s.envoy
            .send(Request::get("/oauth2/userinfo").header("cookie", "gw_session=not.a.session")),
        401,
        "AUTH_MISSING_TOKEN",
    );
    assert!(
        s.upstream
            .requests()
            .iter()
            .all(|r| !r.path.contains("userinfo")),
        "the upstream never sees userinfo"
    );

    // Both workers accept it.
    for _ in 0..20 {
        assert_eq!(
            api_with_session(&s, &session, "/v1/chat/completions").status,
            200
        );
    }

    // Logins are counted in Envoy's stats.
    let stats = s.envoy.admin_get("/stats?filter=ai_gateway.oauth2").text();
    assert!(stats.contains("oauth2_logins_started: 1"), "{stats}");
    assert!(stats.contains("oauth2_logins_succeeded: 1"), "{stats}");
    assert!(
        s.envoy.log().contains("\"event\":\"login\""),
        "login audit record"
    );

    // A replayed callback URL fails: the flow cookie is gone and the code is spent.
    let replay = browser.get(&callback);
    assert_contract_error(&replay, 401, "LOGIN_FAILED");

    // Logout: the session cookie is cleared and the browser goes to the IdP's end_session.
    let logout = browser.get(&format!("{}/oauth2/logout", base(s.gateway)));
    assert_eq!(logout.status, 302);
    let to_idp = logout.header("location").unwrap();
    assert!(to_idp.contains("id_token_hint="), "{to_idp}");
    assert!(logout.headers.iter().any(|(n, v)| n == "set-cookie"
        && v.starts_with("gw_session=;")
        && v.contains("Max-Age=0")));
    let after = s
        .envoy
        .send(Request::post("/v1/chat/completions").json(&json!({})));
    assert_contract_error(&after, 401, "AUTH_MISSING_TOKEN");
    drop(s.idp);
}

#[test]
fn state_problems_and_tampered_sessions_are_refused() {
    let s = start(false);
    let mut browser = Browser::new();
    let redirect = login_redirect(&mut browser, s.gateway, "/");
    let authorize = redirect.header("location").unwrap().to_string();
    let callback = login(
        &mut browser,
        &authorize,
        &format!("{}/oauth2/callback", base(s.gateway)),
        "bob",
    );
    // A mismatched state.
    let mismatched = callback.replace("state=", "state=x");
    let response = browser.get(&mismatched);
    assert_contract_error(&response, 401, "LOGIN_FAILED");
    assert!(response.json()["error"]["details"]
        .as_str()
        .unwrap()
        .contains("state"));
    // Missing state cookie (another browser).
    assert_contract_error(&Browser::new().get(&callback), 401, "LOGIN_FAILED");

    // A good login, then a tampered session cookie: treated as no session.
    let landed = log_in(&s, &mut browser, "bob", "/");
    assert_eq!(landed.status, 302);
    let session = browser.cookie(&host(s.gateway), "gw_session").unwrap();
    let mut tampered = session.clone();
    tampered.pop();
    tampered.push(if session.ends_with('A') { 'B' } else { 'A' });
    assert_contract_error(
        &api_with_session(&s, &tampered, "/v1/models"),
        401,
        "AUTH_MISSING_TOKEN",
    );
    let navigation = s.envoy.send(
        Request::get("/v1/models")
            .header("cookie", format!("gw_session={tampered}"))
            .header("accept", "text/html"),
    );
    assert_eq!(navigation.status, 302);
    assert!(navigation
        .header("location")
        .unwrap()
        .starts_with("/oauth2/login?rd="));
    // bob has chat:read only: no chat.
    assert_contract_error(
        &api_with_session(&s, &session, "/v1/chat/completions"),
        403,
        "AUTH_INSUFFICIENT_SCOPE",
    );
    // A cross-site POST carrying the session cookie is refused.
    let cross = s.envoy.send(
        Request::post("/v1/models")
            .header("cookie", format!("gw_session={session}"))
            .header("origin", "https://evil.test")
            .body("{}"),
    );
    assert_contract_error(&cross, 403, "CROSS_SITE_REQUEST");
    assert!(s.upstream.requests().is_empty());
}

#[test]
fn a_foreign_rd_lands_on_the_root() {
    let s = start(false);
    let mut browser = Browser::new();
    let landed = log_in(&s, &mut browser, "alice", "%2F%2Fevil.test%2Fsteal");
    assert_eq!(landed.status, 302);
    assert_eq!(landed.header("location"), Some("/"));
}

#[test]
fn idp_down_at_start_gives_503_then_login_works_without_restart() {
    let mut s = start(true);
    let mut browser = Browser::new();
    let response = browser.get(&format!("{}/oauth2/login", base(s.gateway)));
    assert_contract_error(&response, 503, "LOGIN_UNAVAILABLE");
    assert!(response.header("retry-after").is_some());
    // The IdP comes up on its address; the gateway's tick fetches discovery and JWKS.
    let idp_addr: SocketAddr = {
        let cfg: Value = serde_json::from_str(&config(s.gateway, s.gateway)).unwrap();
        let _ = cfg;
        // The cluster address is what `start` reserved; recover it from the IdP options.
        s.envoy
            .admin_get("/clusters")
            .text()
            .lines()
            .find(|l| l.starts_with("idp::") && l.contains("::cx_active"))
            .and_then(|l| l.split("::").nth(1))
            .and_then(|a| a.parse().ok())
            .expect("idp cluster address")
    };
    s.idp = Some(OidcProvider::start(options(s.gateway, idp_addr.port())));
    let landed = log_in(&s, &mut browser, "alice", "/");
    assert_eq!(landed.status, 302, "{}", landed.text());
    assert!(browser.cookie(&host(s.gateway), "gw_session").is_some());
}

#[test]
fn a_token_endpoint_answering_garbage_is_a_clear_502() {
    // The explicit token_endpoint overrides discovery: here a path the IdP answers with 404.
    let gateway = reserve_port();
    let idp = OidcProvider::start(options(gateway, 0));
    let mut config: Value = serde_json::from_str(&config(gateway, idp.addr)).unwrap();
    config["oauth2"]["token_endpoint"] = json!(format!("{}/no-such-token-endpoint", idp.issuer));
    let upstream = Upstream::start();
    let envoy = Envoy::builder(&config.to_string())
        .upstream(upstream.addr())
        .idp(idp.addr)
        .listener_port(gateway.port())
        .env("OAUTH_CLIENT_SECRET", CLIENT_SECRET)
        .env("SESSION_SECRET", SESSION_SECRET)
        .start()
        .unwrap_or_else(|e| panic!("envoy did not start: {}", e.log));
    let s = Setup {
        gateway,
        upstream,
        envoy,
        idp: Some(idp),
    };
    let mut browser = Browser::new();
    let response = log_in(&s, &mut browser, "alice", "/");
    assert_contract_error(&response, 502, "LOGIN_FAILED");
    assert!(browser.cookie(&host(s.gateway), "gw_session").is_none());
}
