//! Browser login through a real OpenID Provider (npm oidc-provider): the full code flow with
//! PKCE, the session cookie on protected routes, replay and tampering, logout, a foreign `rd`,
//! an IdP that is down at start.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use test_harness::contract::assert_contract_error;
use test_harness::idp::reserve_port;
use test_harness::oidc::{
    gateway_login, gateway_login_redirect, jwt_payload, login, logout as oidc_logout, query_param,
    Browser, OidcClient, OidcOptions, OidcProvider,
};
use test_harness::ollama::{self, OllamaConfig};
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
    gateway_login_redirect(browser, gateway, rd)
}

/// Fills in the IdP's login form as `user`; returns the callback URL the IdP redirects to.
fn idp_callback(s: &Setup, browser: &mut Browser, authorize: &str, user: &str) -> String {
    let callback_prefix = format!("{}/oauth2/callback", base(s.gateway));
    login(browser, authorize, &callback_prefix, user)
}

/// Logs `user` in; returns the callback's response (the session-setting redirect).
fn log_in(s: &Setup, browser: &mut Browser, user: &str, rd: &str) -> Response {
    gateway_login(browser, s.gateway, user, rd)
}

fn host(gateway: SocketAddr) -> String {
    gateway.to_string()
}

/// The response deletes the flow cookie (empty value, `Max-Age=0`).
fn assert_flow_cookie_cleared(response: &Response) {
    assert!(
        response.headers.iter().any(|(n, v)| n == "set-cookie"
            && v.starts_with("gw_oauth2_flow=;")
            && v.contains("Max-Age=0")),
        "flow cookie not cleared: {:?}",
        response.headers
    );
}

/// A failed callback: the contract's `LOGIN_FAILED` with `status`, the flow cookie deleted, no
/// session started.
fn assert_login_failed(response: &Response, status: u16) {
    assert_contract_error(response, status, "LOGIN_FAILED");
    assert_flow_cookie_cleared(response);
    assert_no_session_set(response);
}

/// The response sets no session cookie.
fn assert_no_session_set(response: &Response) {
    assert!(
        !response
            .headers
            .iter()
            .any(|(n, v)| n == "set-cookie" && v.starts_with("gw_session=")),
        "{:?}",
        response.headers
    );
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
    let callback = idp_callback(&s, &mut browser, &authorize, "alice");
    let saved_flow_cookie = browser
        .cookie(&host(s.gateway), "gw_oauth2_flow")
        .expect("flow cookie stored");
    let landed = browser.get(&callback);
    assert_eq!(landed.status, 302, "{}", landed.text());
    assert_eq!(landed.header("location"), Some("/v1/history/team-a/x"));
    assert_flow_cookie_cleared(&landed);
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
    assert_eq!(sub, "alice", "the IdP user's sub reaches the upstream");
    // The session is the gateway's credential: the upstream never sees it.
    let cookie = received[0].header("cookie").unwrap_or_default();
    assert!(!cookie.contains(&session), "session forwarded: {cookie}");
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

    // Both workers accept it: separate connections until each worker has served some.
    for _ in 0..60 {
        assert_eq!(
            api_with_session(&s, &session, "/v1/chat/completions").status,
            200
        );
    }
    s.envoy.assert_every_worker_served(2);

    // Logins are counted in Envoy's stats.
    let stats = s.envoy.admin_get("/stats?filter=ai_gateway.oauth2").text();
    assert!(stats.contains("oauth2_logins_started: 1"), "{stats}");
    assert!(stats.contains("oauth2_logins_succeeded: 1"), "{stats}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while !s.envoy.access_log().contains("\"event\":\"login\"") && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        s.envoy.access_log().contains("\"event\":\"login\""),
        "login audit record"
    );

    // A replayed callback URL fails: the flow cookie is gone and the code is spent.
    let replay = browser.get(&callback);
    assert_contract_error(&replay, 401, "LOGIN_FAILED");
    assert_flow_cookie_cleared(&replay);
    // Replayed with the saved flow cookie, the state checks pass; the IdP refuses the spent
    // code (invalid_grant): still the browser's failure, 401, not a gateway error.
    let mut replayer = Browser::new();
    replayer.set_cookie(&host(s.gateway), "gw_oauth2_flow", &saved_flow_cookie);
    let replay = replayer.get(&callback);
    assert_contract_error(&replay, 401, "LOGIN_FAILED");
    let details = replay.json()["error"]["details"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(details.contains("already used"), "{details}");
    assert_flow_cookie_cleared(&replay);
    assert_no_session_set(&replay);

    // Logout: the session cookie is cleared and the browser goes to the IdP's end_session.
    let logout = browser.get(&format!("{}/oauth2/logout", base(s.gateway)));
    assert_eq!(logout.status, 302);
    let to_idp = logout.header("location").unwrap().to_string();
    let idp = s.idp.as_ref().unwrap();
    let end_session = idp.discovery()["end_session_endpoint"]
        .as_str()
        .expect("the IdP advertises end_session_endpoint")
        .to_string();
    assert!(to_idp.starts_with(&format!("{end_session}?")), "{to_idp}");
    assert!(query_param(&to_idp, "id_token_hint").is_some_and(|h| h.split('.').count() == 3));
    assert_eq!(
        query_param(&to_idp, "client_id").as_deref(),
        Some(CLIENT_ID)
    );
    assert_eq!(
        query_param(&to_idp, "post_logout_redirect_uri"),
        Some(format!("{}/", base(s.gateway)))
    );
    assert!(logout.headers.iter().any(|(n, v)| n == "set-cookie"
        && v.starts_with("gw_session=;")
        && v.contains("Max-Age=0")));
    // The IdP accepts it and sends the browser back to the post-logout URI.
    let (_, back) = oidc_logout(&mut browser, &to_idp, &format!("{}/", base(s.gateway)));
    assert!(back.starts_with(&format!("{}/", base(s.gateway))), "{back}");
    // The same browser (its cookie jar) is logged out: API 401, navigation to the login.
    assert!(browser.cookie(&host(s.gateway), "gw_session").is_none());
    let after = browser.send(
        &format!("{}/v1/chat/completions", base(s.gateway)),
        Request::post("/")
            .header("origin", base(s.gateway))
            .json(&json!({"model": "m", "messages": []})),
    );
    assert_contract_error(&after, 401, "AUTH_MISSING_TOKEN");
    let navigation = browser.send(
        &format!("{}/v1/history/team-a/1", base(s.gateway)),
        Request::get("/").header("accept", "text/html"),
    );
    assert_eq!(navigation.status, 302);
    assert_eq!(
        navigation.header("location"),
        Some("/oauth2/login?rd=%2Fv1%2Fhistory%2Fteam-a%2F1")
    );
    drop(s.idp);
}

#[test]
fn state_problems_and_tampered_sessions_are_refused() {
    let s = start(false);
    let mut browser = Browser::new();
    let redirect = login_redirect(&mut browser, s.gateway, "/");
    let authorize = redirect.header("location").unwrap().to_string();
    let callback = idp_callback(&s, &mut browser, &authorize, "bob");
    // A mismatched state.
    let mismatched = callback.replace("state=", "state=x");
    let response = browser.get(&mismatched);
    assert_contract_error(&response, 401, "LOGIN_FAILED");
    assert!(response.json()["error"]["details"]
        .as_str()
        .unwrap()
        .contains("state"));
    assert_flow_cookie_cleared(&response);
    // Missing state cookie (another browser).
    let response = Browser::new().get(&callback);
    assert_contract_error(&response, 401, "LOGIN_FAILED");
    assert_flow_cookie_cleared(&response);

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

/// Gateway and IdP (`idp_options` edits the IdP's options), with `edit` applied to the
/// gateway's config (it sees the IdP, for its URLs).
fn start_with(idp_settings: Option<Value>, edit: impl FnOnce(&mut Value, &OidcProvider)) -> Setup {
    start_with_upstream(idp_settings, edit, Upstream::start())
}

/// [`start_with`], forwarding to `upstream`; `idp_settings` go to the IdP's test hooks before
/// the gateway starts.
fn start_with_upstream(
    idp_settings: Option<Value>,
    edit: impl FnOnce(&mut Value, &OidcProvider),
    upstream: Upstream,
) -> Setup {
    let gateway = reserve_port();
    let idp = OidcProvider::start(options(gateway, 0));
    if let Some(settings) = idp_settings {
        idp.test_settings(settings);
    }
    let mut config: Value = serde_json::from_str(&config(gateway, idp.addr)).unwrap();
    edit(&mut config, &idp);
    let envoy = Envoy::builder(&config.to_string())
        .upstream(upstream.addr())
        .idp(idp.addr)
        .listener_port(gateway.port())
        .env("OAUTH_CLIENT_SECRET", CLIENT_SECRET)
        .env("SESSION_SECRET", SESSION_SECRET)
        .start()
        .unwrap_or_else(|e| panic!("envoy did not start: {}", e.log));
    Setup {
        gateway,
        upstream,
        envoy,
        idp: Some(idp),
    }
}

#[test]
fn a_token_endpoint_answering_garbage_is_a_clear_502() {
    // The explicit token_endpoint overrides discovery: here a path the IdP answers with 404.
    let s = start_with(None, |config, idp| {
        config["oauth2"]["token_endpoint"] = json!(idp.url("/no-such-token-endpoint"));
    });
    let mut browser = Browser::new();
    let response = log_in(&s, &mut browser, "alice", "/");
    assert_login_failed(&response, 502);
    assert!(browser.cookie(&host(s.gateway), "gw_session").is_none());
}

#[test]
fn explicit_authorization_and_token_endpoints_still_discover_the_keys() {
    // Both endpoints explicit, no jwks_uri: the ID-token keys (and end_session_endpoint) still
    // come from discovery, so the login completes.
    let s = start_with(None, |config, idp| {
        let discovery = idp.discovery();
        config["oauth2"]["authorization_endpoint"] = discovery["authorization_endpoint"].clone();
        config["oauth2"]["token_endpoint"] = discovery["token_endpoint"].clone();
    });
    let mut browser = Browser::new();
    let landed = log_in(&s, &mut browser, "alice", "/");
    assert_eq!(landed.status, 302, "{}", landed.text());
    let session = browser
        .cookie(&host(s.gateway), "gw_session")
        .expect("session set");
    let chat = api_with_session(&s, &session, "/v1/chat/completions");
    assert_eq!(chat.status, 200, "{}", chat.text());
    let logout = browser.get(&format!("{}/oauth2/logout", base(s.gateway)));
    let end_session = s.idp.as_ref().unwrap().discovery()["end_session_endpoint"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        logout.header("location").unwrap().starts_with(&end_session),
        "{:?}",
        logout.header("location")
    );
}

/// The IdP's authorize URL for a fresh login (the browser now holds the flow cookie).
fn authorize_url(s: &Setup, browser: &mut Browser) -> String {
    let redirect = login_redirect(browser, s.gateway, "/");
    assert_eq!(redirect.status, 302, "{}", redirect.text());
    redirect.header("location").unwrap().to_string()
}

#[test]
fn an_idp_error_or_a_missing_state_on_the_callback_is_401() {
    let s = start(false);
    let callback = format!("{}/oauth2/callback", base(s.gateway));
    // The IdP sends the user back with an error (the user cancelled).
    let mut browser = Browser::new();
    let state = query_param(&authorize_url(&s, &mut browser), "state").unwrap();
    let response = browser.get(&format!("{callback}?error=access_denied&state={state}"));
    assert_login_failed(&response, 401);
    // A callback without a state parameter, the flow cookie present.
    let mut browser = Browser::new();
    authorize_url(&s, &mut browser);
    assert!(browser.cookie(&host(s.gateway), "gw_oauth2_flow").is_some());
    let response = browser.get(&format!("{callback}?code=some-code"));
    assert_login_failed(&response, 401);
}

#[test]
fn without_an_end_session_endpoint_logout_goes_to_the_root() {
    let s = start_with(Some(json!({"hide_end_session": true})), |_, _| {});
    let mut browser = Browser::new();
    let landed = log_in(&s, &mut browser, "alice", "/");
    assert_eq!(landed.status, 302, "{}", landed.text());
    let logout = browser.get(&format!("{}/oauth2/logout", base(s.gateway)));
    assert_eq!(logout.status, 302);
    assert_eq!(logout.header("location"), Some("/"));
    assert!(browser.cookie(&host(s.gateway), "gw_session").is_none());
}

#[test]
fn a_token_endpoint_that_is_down_is_502() {
    let s = start(false);
    let mut browser = Browser::new();
    let authorize = authorize_url(&s, &mut browser);
    let callback = idp_callback(&s, &mut browser, &authorize, "alice");
    // The IdP goes away between its login form and the token exchange.
    let mut s = s;
    s.idp.as_mut().unwrap().stop();
    let response = browser.get(&callback);
    assert_login_failed(&response, 502);
}

#[test]
fn a_slow_token_endpoint_is_504_within_the_timeout() {
    let s = start_with(None, |config, idp| {
        config["oauth2"]["token_endpoint"] = json!(idp.url("/__test/slow-token"));
        config["oauth2"]["timeout_ms"] = json!(1000);
    });
    let mut browser = Browser::new();
    let authorize = authorize_url(&s, &mut browser);
    let callback = idp_callback(&s, &mut browser, &authorize, "alice");
    let started = Instant::now();
    let response = browser.get(&callback);
    let took = started.elapsed();
    assert_login_failed(&response, 504);
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_millis(3000),
        "answered after {took:?} (timeout_ms 1000, the endpoint takes 5 s)"
    );
}

#[test]
fn an_id_token_whose_signature_does_not_verify_starts_no_session() {
    let s = start_with(None, |config, idp| {
        config["oauth2"]["token_endpoint"] = json!(idp.url("/__test/bad-id-token"));
    });
    let mut browser = Browser::new();
    let response = log_in(&s, &mut browser, "alice", "/");
    assert_login_failed(&response, 502);
    let details = response.json()["error"]["details"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(details.contains("ID token rejected"), "{details}");
    assert!(browser.cookie(&host(s.gateway), "gw_session").is_none());
}

#[test]
fn the_upstream_session_id_is_the_sessions_sid_not_the_clients_header() {
    let s = start_with_upstream(
        None,
        |config, _| {
            config["translate"] = json!({"to": "ollama", "default_model": "qwen3:32b",
                "inject_user": true, "cluster": "upstream", "authority": "ollama"});
        },
        ollama::start(OllamaConfig::default()),
    );
    let mut browser = Browser::new();
    let landed = log_in(&s, &mut browser, "alice", "/");
    assert_eq!(landed.status, 302, "{}", landed.text());
    let session = browser.cookie(&host(s.gateway), "gw_session").unwrap();
    let sid = jwt_payload(&session)["sid"]
        .as_str()
        .expect("the session has a sid")
        .to_string();
    assert_eq!(sid.len(), 22, "128 random bits, base64url: {sid}");
    let response = s.envoy.send(
        Request::post("/v1/chat/completions")
            .header("cookie", format!("gw_session={session}"))
            .header("origin", base(s.gateway))
            .header("x-session-id", "forged-by-the-client")
            .json(
                &json!({"model": "qwen3:32b", "session_id": "forged-in-the-body",
                          "messages": [{"role": "user", "content": "hi"}]}),
            ),
    );
    assert_eq!(response.status, 200, "{}", response.text());
    let sent: Value = serde_json::from_slice(&s.upstream.requests().last().unwrap().body).unwrap();
    assert_eq!(sent["session_id"], sid.as_str(), "{sent}");
    assert_eq!(sent["user_id"], "alice", "{sent}");
    // Another login is another session.
    let mut other = Browser::new();
    log_in(&s, &mut other, "alice", "/");
    let other_session = other.cookie(&host(s.gateway), "gw_session").unwrap();
    assert_ne!(jwt_payload(&other_session)["sid"], json!(sid));
}

#[test]
fn an_id_token_signed_with_a_key_not_yet_fetched_waits_for_the_refetch() {
    // The IdP's JWKS endpoint first serves only a decoy key (a rotation the gateway has not
    // seen): the gateway's keys do not include the ID token's signing key.
    let s = start_with(Some(json!({"decoy_jwks": true})), |_, _| {});
    let idp = s.idp.as_ref().unwrap();
    let callback_prefix = format!("{}/oauth2/callback", base(s.gateway));
    let mut browser = Browser::new();
    let authorize = authorize_url(&s, &mut browser);
    // The keys were fetched at the latest now (login waits for them).
    let keys_fetched_by = Instant::now();
    let callback = login(&mut browser, &authorize, &callback_prefix, "alice");
    // Within min_refresh_interval_s (30 s) of that fetch no refetch is allowed: 503 with
    // Retry-After, flow cookie cleared, no session.
    let response = browser.get(&callback);
    assert_contract_error(&response, 503, "LOGIN_UNAVAILABLE");
    let retry_after: u64 = response.header("retry-after").unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry_after), "{retry_after}");
    assert_flow_cookie_cleared(&response);
    assert_no_session_set(&response);

    // The rotation reaches the JWKS endpoint. A login whose callback comes once a refetch is
    // allowed waits for it and succeeds: the one-time code is not wasted.
    idp.test_settings(json!({"decoy_jwks": false}));
    let mut browser = Browser::new();
    let authorize = authorize_url(&s, &mut browser);
    let callback = login(&mut browser, &authorize, &callback_prefix, "alice");
    let allowed_at = keys_fetched_by + Duration::from_secs(31);
    std::thread::sleep(allowed_at.saturating_duration_since(Instant::now()));
    let landed = browser.get(&callback);
    assert_eq!(landed.status, 302, "{}", landed.text());
    assert!(browser.cookie(&host(s.gateway), "gw_session").is_some());
    let stats = s.envoy.admin_get("/stats?filter=ai_gateway").text();
    assert!(stats.contains("jwks_fetches_ok: 2"), "{stats}");
}
