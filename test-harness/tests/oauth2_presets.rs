//! `oauth2.preset` through the real Envoy: the browser login of WeCom, DingTalk, Feishu and
//! GitHub against stand-ins that follow each provider's documented calls (see
//! `test_harness::presets`), ending in the same session cookie an OIDC login sets.
//!
//! Each test starts its own stand-in and Envoy, so they run in parallel.

use std::net::SocketAddr;

use serde_json::{json, Value};
use test_harness::contract::assert_contract_error;
use test_harness::idp::reserve_port;
use test_harness::oidc::{pkce_challenge, query_param, random_token, Browser};
use test_harness::presets::common::path_of;
use test_harness::presets::dingtalk::{self, DingTalkUser};
use test_harness::presets::feishu::{self, FeishuUser};
use test_harness::presets::github::{self, GitHubUser};
use test_harness::presets::wecom::{self, WeComUser};
use test_harness::presets::{StandIn, TEST_USER_PARAM};
use test_harness::{Envoy, Request, Response, Upstream};

const SESSION_SECRET: &str = "session-secret-for-tests-32bytes!!";
const CLIENT_SECRET: &str = "preset-client-secret-0123456789";
/// Envoy worker threads (the harness's default), so per-worker state is exercised.
const WORKERS: u32 = 2;

/// The gateway under test and the upstream behind it.
struct Gateway {
    addr: SocketAddr,
    upstream: Upstream,
    envoy: Envoy,
}

impl Gateway {
    fn base(&self) -> String {
        format!("http://{}", self.addr)
    }

    fn callback(&self) -> String {
        format!("{}/oauth2/callback", self.base())
    }
}

/// The plugin config: `oauth2` (the preset's fields) plus what every test shares.
fn config(oauth2: Value) -> String {
    let mut oauth2 = oauth2;
    oauth2["cluster"] = json!("idp");
    oauth2["client_secret"] = json!({"env": "OAUTH_CLIENT_SECRET"});
    oauth2["allow_insecure_cookies"] = json!(true);
    oauth2["session"] = json!({"cookie": "gw_session", "secret": {"env": "SESSION_SECRET"},
        "ttl_s": 3600, "scopes": ["chat:read", "chat:write"]});
    json!({
        "rules": [{"match": {"path": "/v1/chat/completions", "methods": ["POST"]},
                   "scopes": ["chat:write"]}],
        "oauth2": oauth2
    })
    .to_string()
}

/// Starts Envoy on `addr` with `oauth2`, the token and API calls going to `idp`.
fn start_gateway(addr: SocketAddr, idp: SocketAddr, oauth2: Value, secret: &str) -> Gateway {
    start_gateway_on(addr, idp, oauth2, secret, WORKERS)
}

/// [`start_gateway`] with `workers` Envoy worker threads.
fn start_gateway_on(
    addr: SocketAddr,
    idp: SocketAddr,
    oauth2: Value,
    secret: &str,
    workers: u32,
) -> Gateway {
    let upstream = Upstream::start();
    let envoy = Envoy::builder(&config(oauth2))
        .upstream(upstream.addr())
        .concurrency(workers)
        .idp(idp)
        .listener_port(addr.port())
        .env("OAUTH_CLIENT_SECRET", secret)
        .env("SESSION_SECRET", SESSION_SECRET)
        .start()
        .unwrap_or_else(|e| panic!("envoy did not start: {}", e.log));
    Gateway {
        addr,
        upstream,
        envoy,
    }
}

/// `GET /oauth2/login?rd=/`: the 302 to the provider's authorize URL, which is returned.
fn begin_login(gw: &Gateway, browser: &mut Browser, authorize: &str) -> String {
    let response = browser.get(&format!("{}/oauth2/login?rd=%2F", gw.base()));
    assert_eq!(response.status, 302, "{}", response.text());
    let location = response.header("location").unwrap_or_default().to_string();
    assert!(
        location.starts_with(&format!("{authorize}?")),
        "login goes to the provider's authorize endpoint: {location}"
    );
    assert!(
        !location.contains("code_verifier"),
        "the verifier never travels in a URL"
    );
    location
}

/// The browser at the provider's authorize URL as `user`: returns where the provider sends it
/// back (the gateway's callback with the code), not yet requested.
fn provider_login(gw: &Gateway, browser: &mut Browser, authorize_url: &str, user: &str) -> String {
    let url = format!("{authorize_url}&{TEST_USER_PARAM}={user}");
    let response = browser.get(&url);
    assert_eq!(
        response.status,
        302,
        "provider refused: {}",
        response.text()
    );
    let back = response.header("location").unwrap_or_default().to_string();
    assert!(back.starts_with(&format!("{}?", gw.callback())), "{back}");
    back
}

/// A whole login of `user`: the callback's response.
fn log_in(gw: &Gateway, browser: &mut Browser, authorize: &str, user: &str) -> Response {
    let authorize_url = begin_login(gw, browser, authorize);
    let callback = provider_login(gw, browser, &authorize_url, user);
    browser.get(&callback)
}

/// The callback set a session (the same cookie an OIDC login sets): 302 home, the session
/// cookie stored; its value.
fn assert_session(gw: &Gateway, browser: &Browser, landed: &Response) -> String {
    assert_eq!(landed.status, 302, "{}", landed.text());
    assert_eq!(landed.header("location"), Some("/"));
    let cookie = landed
        .headers
        .iter()
        .find(|(n, v)| n == "set-cookie" && v.starts_with("gw_session="))
        .map(|(_, v)| v.as_str())
        .unwrap_or_default();
    for attribute in ["HttpOnly", "SameSite=Lax", "Path=/", "Max-Age=3600"] {
        assert!(cookie.contains(attribute), "{attribute} in {cookie:?}");
    }
    browser
        .cookie(&gw.addr.to_string(), "gw_session")
        .expect("session cookie set")
}

/// A failed login: `LOGIN_FAILED` with `status` (401 the browser's code or state is bad, 403
/// the user is not allowed, 502 the provider or the gateway's own configuration failed, as
/// for OIDC logins), the flow cookie deleted, no session.
fn assert_login_failed(response: &Response, status: u16) {
    assert_contract_error(response, status, "LOGIN_FAILED");
    assert!(
        response.headers.iter().any(|(n, v)| n == "set-cookie"
            && v.starts_with("gw_oauth2_flow=;")
            && v.contains("Max-Age=0")),
        "flow cookie not cleared: {:?}",
        response.headers
    );
    assert!(
        !response
            .headers
            .iter()
            .any(|(n, v)| n == "set-cookie" && v.starts_with("gw_session=")),
        "no session: {:?}",
        response.headers
    );
}

/// A faulty provider or configuration at each step named in `cases` (the browser did nothing
/// wrong): every one must be `LOGIN_FAILED` 502, as an OIDC token endpoint that is down or an
/// `invalid_client` is. All cases are run before comparing, so one report shows them all.
fn assert_faults_are_502(cases: Vec<(&str, Response)>) {
    let got: Vec<(&str, u16, String)> = cases
        .iter()
        .map(|(case, response)| {
            let details = response.json()["error"]["details"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            (
                *case,
                response.status,
                format!("{} {details}", response.json_code()),
            )
        })
        .collect();
    let statuses: Vec<(&str, u16)> = got.iter().map(|(c, s, _)| (*c, *s)).collect();
    let expected: Vec<(&str, u16)> = cases.iter().map(|(c, _)| (*c, 502)).collect();
    assert_eq!(statuses, expected, "{got:#?}");
    for (_, response) in &cases {
        assert_login_failed(response, 502);
    }
}

/// The browser's half of a login as `user`: the callback URL, not yet requested.
fn to_callback(gw: &Gateway, browser: &mut Browser, authorize: &str, user: &str) -> String {
    let authorize_url = begin_login(gw, browser, authorize);
    provider_login(gw, browser, &authorize_url, user)
}

/// `/oauth2/userinfo` with the session: the mapped identity.
fn userinfo(gw: &Gateway, session: &str) -> Value {
    let me = gw
        .envoy
        .send(Request::get("/oauth2/userinfo").header("cookie", format!("gw_session={session}")));
    assert_eq!(me.status, 200, "{}", me.text());
    me.json()
}

/// A chat request with the session reaches the upstream as `sub`.
fn assert_chat_as(gw: &Gateway, session: &str, sub: &str) {
    let before = gw.upstream.requests().len();
    let chat = gw.envoy.send(
        Request::post("/v1/chat/completions")
            .header("cookie", format!("gw_session={session}"))
            .header("origin", gw.base())
            .json(&json!({"model": "m", "messages": [{"role": "user", "content": "hi"}]})),
    );
    assert_eq!(chat.status, 200, "{}", chat.text());
    let received = gw.upstream.requests();
    assert_eq!(received.len(), before + 1);
    assert_eq!(received[before].header("x-user-id"), Some(sub));
}

/// A callback whose `state` is not the flow's is refused before any provider call.
fn assert_state_mismatch_refused<S: Send + 'static>(
    gw: &Gateway,
    stand_in: &StandIn<S>,
    authorize: &str,
    user: &str,
) {
    let mut browser = Browser::new();
    let authorize_url = begin_login(gw, &mut browser, authorize);
    let callback = provider_login(gw, &mut browser, &authorize_url, user);
    let calls_before = stand_in.requests().len();
    let state = query_param(&callback, "state").expect("state comes back");
    let forged = callback.replace(&format!("state={state}"), "state=forged");
    let response = browser.get(&forged);
    assert_contract_error(&response, 401, "LOGIN_FAILED");
    assert_eq!(
        stand_in.requests().len(),
        calls_before,
        "no provider call for a forged state"
    );
}

/// `authorize_url` with its `code_challenge` replaced by one for another verifier.
fn with_foreign_challenge(authorize_url: &str) -> String {
    let challenge = query_param(authorize_url, "code_challenge").expect("a code_challenge");
    authorize_url.replace(
        &format!("code_challenge={challenge}"),
        &format!("code_challenge={}", pkce_challenge(&random_token())),
    )
}

// ---------------------------------------------------------------- GitHub

const GITHUB_AUTHORIZE: &str = "/login/oauth/authorize";

fn github_users() -> Vec<GitHubUser> {
    vec![
        GitHubUser {
            login: "octocat".into(),
            id: 583231,
            name: Some("The Octocat".into()),
            email: Some("octocat@github.test".into()),
            orgs: vec!["acme".into(), "other".into()],
        },
        GitHubUser {
            login: "busy".into(),
            id: 2000002,
            name: Some("Busy Bee".into()),
            email: None,
            orgs: (0..60)
                .map(|i| {
                    if i == 45 {
                        "acme".into()
                    } else {
                        format!("org-{i}")
                    }
                })
                .collect(),
        },
        GitHubUser {
            login: "hubot".into(),
            id: 480938,
            name: None,
            email: None,
            orgs: vec!["acme".into()],
        },
        GitHubUser {
            login: "outsider".into(),
            id: 1000001,
            name: Some("Out Sider".into()),
            email: Some("out@github.test".into()),
            orgs: vec!["other".into()],
        },
    ]
}

fn start_github(secret: &str) -> (github::GitHub, Gateway) {
    let addr = reserve_port();
    let callback = format!("http://{addr}/oauth2/callback");
    let stand_in = github::start("Iv1.gateway", CLIENT_SECRET, &callback, github_users());
    let oauth2 = json!({
        "preset": "github", "client_id": "Iv1.gateway", "redirect_uri": callback,
        "authorization_endpoint": stand_in.url(GITHUB_AUTHORIZE),
        "allowed_orgs": ["acme"]
    });
    let gw = start_gateway(addr, stand_in.addr(), oauth2, secret);
    (stand_in, gw)
}

#[test]
fn github_login_maps_id_name_email_and_reaches_the_upstream() {
    let (hub, gw) = start_github(CLIENT_SECRET);
    let authorize = hub.url(GITHUB_AUTHORIZE);
    assert_state_mismatch_refused(&gw, &hub, &authorize, "octocat");

    let mut browser = Browser::new();
    let authorize_url = begin_login(&gw, &mut browser, &authorize);
    assert_eq!(
        query_param(&authorize_url, "client_id").as_deref(),
        Some("Iv1.gateway")
    );
    assert_eq!(
        query_param(&authorize_url, "redirect_uri"),
        Some(gw.callback())
    );
    assert_eq!(
        query_param(&authorize_url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    assert!(query_param(&authorize_url, "state").is_some_and(|s| s.len() >= 16));
    let callback = provider_login(&gw, &mut browser, &authorize_url, "octocat");
    let landed = browser.get(&callback);
    let session = assert_session(&gw, &browser, &landed);

    let me = userinfo(&gw, &session);
    assert_eq!(me["sub"], "583231", "{me}");
    assert_eq!(me["name"], "The Octocat", "{me}");
    assert_eq!(me["email"], "octocat@github.test", "{me}");
    assert_chat_as(&gw, &session, "583231");

    // What GitHub received: the token request with the secret and the PKCE verifier (the
    // stand-in checked it against the challenge), JSON asked for; API calls with a User-Agent.
    let token_calls = hub.calls("/login/oauth/access_token");
    assert_eq!(token_calls.len(), 1);
    let body = String::from_utf8_lossy(&token_calls[0].body).to_string();
    assert!(body.contains("code_verifier="), "{body}");
    for api in ["/user", "/user/orgs"] {
        let calls = hub.calls(api);
        assert!(!calls.is_empty(), "{api} called");
        assert!(calls
            .iter()
            .all(|c| c.header("user-agent").is_some_and(|v| !v.is_empty())));
    }

    // No name on the profile: the login is the name; no public email: none.
    let mut browser = Browser::new();
    let landed = log_in(&gw, &mut browser, &authorize, "hubot");
    let session = assert_session(&gw, &browser, &landed);
    let me = userinfo(&gw, &session);
    assert_eq!(me["sub"], "480938", "{me}");
    assert_eq!(me["name"], "hubot", "{me}");
    assert!(me["email"].is_null() || me.get("email").is_none(), "{me}");

    // Member of "acme" on the second page of /user/orgs (GitHub lists 30 per page unless
    // per_page says otherwise): still a member.
    let mut browser = Browser::new();
    let landed = log_in(&gw, &mut browser, &authorize, "busy");
    assert_session(&gw, &browser, &landed);

    assert_secrets_not_logged(&gw, &[CLIENT_SECRET]);
    assert_host(&hub, "/login/oauth/access_token", "github.com");
    assert_host(&hub, "/user", "api.github.com");
    assert_host(&hub, "/user/orgs", "api.github.com");
    // Logout clears the session; GitHub's own session stays, the browser goes home.
    let logout = browser.get(&format!("{}/oauth2/logout", gw.base()));
    assert_eq!(logout.status, 302);
    assert_eq!(logout.header("location"), Some("/"));
    assert!(browser.cookie(&gw.addr.to_string(), "gw_session").is_none());
}

/// Every call to `path` carried the provider's real host name as `:authority` (Envoy sends
/// it as `host`), so a real provider behind the cluster would route it.
fn assert_host<S: Send + 'static>(stand_in: &StandIn<S>, path: &str, host: &str) {
    let calls = stand_in.calls(path);
    assert!(!calls.is_empty(), "{path} called");
    for call in calls {
        assert_eq!(call.header("host"), Some(host), "{path}");
    }
}

/// Neither the client secret nor the given credentials appear in Envoy's logs.
fn assert_secrets_not_logged(gw: &Gateway, secrets: &[&str]) {
    let logs = format!("{}{}", gw.envoy.log(), gw.envoy.access_log());
    for secret in secrets {
        assert!(!logs.contains(secret), "{secret} logged");
    }
}

#[test]
fn github_refusals_pkce_codes_orgs_and_errors() {
    let (hub, gw) = start_github(CLIENT_SECRET);
    let authorize = hub.url(GITHUB_AUTHORIZE);

    // A code issued for another PKCE challenge: GitHub refuses the gateway's verifier.
    let mut browser = Browser::new();
    let authorize_url = with_foreign_challenge(&begin_login(&gw, &mut browser, &authorize));
    let callback = provider_login(&gw, &mut browser, &authorize_url, "octocat");
    assert_login_failed(&browser.get(&callback), 401);
    assert_eq!(
        hub.calls("/login/oauth/access_token").len(),
        1,
        "the code was tried"
    );
    assert!(
        hub.calls("/user").is_empty(),
        "no user call without a token"
    );

    // A spent code (the same callback replayed with its flow cookie): refused.
    let mut browser = Browser::new();
    let authorize_url = begin_login(&gw, &mut browser, &authorize);
    let callback = provider_login(&gw, &mut browser, &authorize_url, "octocat");
    let flow = browser
        .cookie(&gw.addr.to_string(), "gw_oauth2_flow")
        .unwrap();
    let landed = browser.get(&callback);
    assert_session(&gw, &browser, &landed);
    let mut replayer = Browser::new();
    replayer.set_cookie(&gw.addr.to_string(), "gw_oauth2_flow", &flow);
    assert_login_failed(&replayer.get(&callback), 401);

    // GitHub's error shape (HTTP 200 with "error": "bad_verification_code"): the browser's
    // code is bad, 401 as for an OIDC invalid_grant.
    hub.with(|s| s.fail_next_token = true);
    let mut browser = Browser::new();
    let response = log_in(&gw, &mut browser, &authorize, "octocat");
    assert_login_failed(&response, 401);

    // Not a member of an allowed organization.
    let mut browser = Browser::new();
    assert_login_failed(&log_in(&gw, &mut browser, &authorize, "outsider"), 403);
}

#[test]
fn github_down_or_a_reset_client_secret_is_502() {
    let (hub, gw) = start_github(CLIENT_SECRET);
    let authorize = hub.url(GITHUB_AUTHORIZE);
    // Down at the token call (503).
    let mut browser = Browser::new();
    let callback = to_callback(&gw, &mut browser, &authorize, "octocat");
    hub.set_down(true);
    let down = browser.get(&callback);
    hub.set_down(false);
    // The app's secret reset on GitHub: HTTP 200 "incorrect_client_credentials".
    hub.with(|s| s.client_secret = "reset-on-github".into());
    let mut browser = Browser::new();
    let reset = log_in(&gw, &mut browser, &authorize, "octocat");
    assert_faults_are_502(vec![
        ("token call answered 503", down),
        ("incorrect_client_credentials", reset),
    ]);
    assert!(hub.calls("/user").is_empty());
}

// ---------------------------------------------------------------- WeCom

const WECOM_AUTHORIZE: &str = "/wwlogin/sso/login";

fn wecom_users() -> Vec<WeComUser> {
    vec![
        WeComUser {
            id: "zhangsan".into(),
            member: true,
            name: "张三".into(),
            email: None,
            biz_mail: Some("zhangsan@corp.wecom.work".into()),
        },
        WeComUser {
            id: "lisi".into(),
            member: true,
            name: "李四".into(),
            email: Some("lisi@corp.test".into()),
            biz_mail: Some("lisi@corp.wecom.work".into()),
        },
        WeComUser {
            id: "oDjGHs-1yCnGrRovBj2yHij5JAAA".into(),
            member: false,
            name: "visitor".into(),
            email: None,
            biz_mail: None,
        },
    ]
}

fn start_wecom(secret: &str) -> (wecom::WeCom, Gateway) {
    start_wecom_on(secret, WORKERS)
}

fn start_wecom_on(secret: &str, workers: u32) -> (wecom::WeCom, Gateway) {
    let addr = reserve_port();
    let callback = format!("http://{addr}/oauth2/callback");
    let stand_in = wecom::start(
        "ww1234567890abcdef",
        "1000002",
        CLIENT_SECRET,
        &addr.to_string(),
        wecom_users(),
    );
    let oauth2 = json!({
        "preset": "wecom", "client_id": "ww1234567890abcdef", "agent_id": "1000002",
        "redirect_uri": callback, "authorization_endpoint": stand_in.url(WECOM_AUTHORIZE)
    });
    let gw = start_gateway_on(addr, stand_in.addr(), oauth2, secret, workers);
    (stand_in, gw)
}

#[test]
fn wecom_login_maps_userid_and_caches_the_app_token() {
    let (wx, gw) = start_wecom(CLIENT_SECRET);
    let authorize = wx.url(WECOM_AUTHORIZE);
    assert_state_mismatch_refused(&gw, &wx, &authorize, "zhangsan");

    let mut browser = Browser::new();
    let authorize_url = begin_login(&gw, &mut browser, &authorize);
    for (name, value) in [
        ("login_type", "CorpApp"),
        ("appid", "ww1234567890abcdef"),
        ("agentid", "1000002"),
    ] {
        assert_eq!(
            query_param(&authorize_url, name).as_deref(),
            Some(value),
            "{authorize_url}"
        );
    }
    assert_eq!(
        query_param(&authorize_url, "redirect_uri"),
        Some(gw.callback())
    );
    let callback = provider_login(&gw, &mut browser, &authorize_url, "zhangsan");
    let landed = browser.get(&callback);
    let session = assert_session(&gw, &browser, &landed);
    let me = userinfo(&gw, &session);
    assert_eq!(me["sub"], "zhangsan", "{me}");
    assert_eq!(me["name"], "张三", "{me}");
    assert_eq!(
        me["email"], "zhangsan@corp.wecom.work",
        "no email: biz_mail"
    );
    assert_chat_as(&gw, &session, "zhangsan");

    let mut browser = Browser::new();
    let landed = log_in(&gw, &mut browser, &authorize, "lisi");
    let session = assert_session(&gw, &browser, &landed);
    let me = userinfo(&gw, &session);
    assert_eq!(me["sub"], "lisi", "{me}");
    assert_eq!(me["email"], "lisi@corp.test", "{me}");
    // The secret and the app token travel in WeCom's query strings: never logged.
    let app_tokens: Vec<String> = wx.with(|s| s.tokens.keys().cloned().collect());
    let mut secrets = vec![CLIENT_SECRET];
    secrets.extend(app_tokens.iter().map(String::as_str));
    assert_secrets_not_logged(&gw, &secrets);
    for path in [
        "/cgi-bin/gettoken",
        "/cgi-bin/auth/getuserinfo",
        "/cgi-bin/user/get",
    ] {
        assert_host(&wx, path, "qyapi.weixin.qq.com");
    }

    // The app token is cached, not fetched per login (the doc asks callers to cache it and
    // rate-limits gettoken): more logins, spread over both Envoy workers, fetch it at most
    // once per worker.
    for user in ["zhangsan", "lisi", "zhangsan", "lisi"] {
        let mut browser = Browser::new();
        let landed = log_in(&gw, &mut browser, &authorize, user);
        assert_session(&gw, &browser, &landed);
    }
    assert_eq!(wx.calls("/cgi-bin/auth/getuserinfo").len(), 6);
    let gettoken = wx.calls("/cgi-bin/gettoken");
    assert!(
        (1..=WORKERS as usize).contains(&gettoken.len()),
        "6 logins, {WORKERS} workers: {:?}",
        paths(&wx)
    );
    assert_eq!(gettoken[0].method, "GET");
    assert!(
        gettoken[0].path.contains("corpid=ww1234567890abcdef"),
        "{}",
        gettoken[0].path
    );
}

#[test]
fn wecom_app_token_is_fetched_once_for_two_logins_on_one_worker() {
    let (wx, gw) = start_wecom_on(CLIENT_SECRET, 1);
    let authorize = wx.url(WECOM_AUTHORIZE);
    for user in ["zhangsan", "lisi"] {
        let mut browser = Browser::new();
        let landed = log_in(&gw, &mut browser, &authorize, user);
        assert_session(&gw, &browser, &landed);
    }
    assert_eq!(wx.calls("/cgi-bin/auth/getuserinfo").len(), 2);
    assert_eq!(wx.calls("/cgi-bin/gettoken").len(), 1, "{:?}", paths(&wx));
}

fn paths<S: Send + 'static>(stand_in: &StandIn<S>) -> Vec<String> {
    stand_in
        .requests()
        .iter()
        .map(|r| path_of(&r.path).to_string())
        .collect()
}

#[test]
fn wecom_refuses_non_members_and_invalid_codes_refetches_an_expired_token_502_on_a_reset_secret() {
    // One worker: the login after the expiry meets the cached (now expired) token.
    let (wx, gw) = start_wecom_on(CLIENT_SECRET, 1);
    let authorize = wx.url(WECOM_AUTHORIZE);

    // Not a member of the corp: getuserinfo names an openid, no userid.
    let mut browser = Browser::new();
    let response = log_in(
        &gw,
        &mut browser,
        &authorize,
        "oDjGHs-1yCnGrRovBj2yHij5JAAA",
    );
    assert_login_failed(&response, 403);
    assert!(wx.calls("/cgi-bin/user/get").is_empty());

    // WeCom's error shape: HTTP 200 with errcode 40029 (invalid code).
    wx.with(|s| s.fail_next_token = true);
    let mut browser = Browser::new();
    assert_login_failed(&log_in(&gw, &mut browser, &authorize, "zhangsan"), 401);

    // The app token expires early (42001): a login still works, with a new token.
    wx.with(wecom::WeComState::expire_tokens);
    let gettoken_before = wx.calls("/cgi-bin/gettoken").len();
    let getuserinfo_before = wx.calls("/cgi-bin/auth/getuserinfo").len();
    let mut browser = Browser::new();
    let landed = log_in(&gw, &mut browser, &authorize, "zhangsan");
    assert_session(&gw, &browser, &landed);
    assert_eq!(wx.calls("/cgi-bin/gettoken").len(), gettoken_before + 1);
    // The code was not spent by the refused call (42001 is about the token): tried again.
    assert_eq!(
        wx.calls("/cgi-bin/auth/getuserinfo").len(),
        getuserinfo_before + 2,
        "{:?}",
        paths(&wx)
    );

    // The app's secret reset in the admin console: the cached token stops working and
    // gettoken refuses the old secret (40001): the gateway's configuration, 502.
    wx.with(|s| {
        s.expire_tokens();
        s.secret = "reset-in-the-console".into();
    });
    let user_get_before = wx.calls("/cgi-bin/user/get").len();
    let mut browser = Browser::new();
    let response = log_in(&gw, &mut browser, &authorize, "zhangsan");
    assert_login_failed(&response, 502);
    assert_eq!(wx.calls("/cgi-bin/user/get").len(), user_get_before);
}

/// Envoy refuses to start with `oauth2`: the config error is logged naming `field`.
fn assert_config_error(oauth2: Value, field: &str) {
    let exit = match Envoy::builder(&config(oauth2))
        .concurrency(1)
        .env("OAUTH_CLIENT_SECRET", CLIENT_SECRET)
        .env("SESSION_SECRET", SESSION_SECRET)
        .start()
    {
        Ok(envoy) => panic!("started without {field}:\n{}", envoy.log_tail(30)),
        Err(exit) => exit,
    };
    let line = exit
        .log
        .lines()
        .find(|l| l.contains("config: "))
        .unwrap_or_default();
    assert!(
        line.contains("[error]") && line.contains(&format!("config: {field}")),
        "{}",
        exit.log
    );
}

#[test]
fn wecom_without_agent_id_is_a_config_error() {
    let oauth2 = json!({
        "preset": "wecom", "client_id": "ww1234567890abcdef",
        "redirect_uri": "http://127.0.0.1:9/oauth2/callback"
    });
    assert_config_error(oauth2, "oauth2.agent_id");
}

// ---------------------------------------------------------------- DingTalk

const DINGTALK_AUTHORIZE: &str = "/oauth2/auth";
/// The gateway's organization: `allowed_corp_ids`.
const DINGTALK_CORP: &str = "dingcorp0001";

fn dingtalk_users() -> Vec<DingTalkUser> {
    vec![
        DingTalkUser {
            union_id: "z21HjQliSzpw0YWCNxmii6u2Os62cZ62iSiE".into(),
            open_id: "123openid".into(),
            nick: "王五".into(),
            email: Some("wangwu@corp.test".into()),
            mobile: "15000000000".into(),
            corp_ids: vec![DINGTALK_CORP.into()],
        },
        DingTalkUser {
            union_id: "uNoEmailUnionId0000000000000000000".into(),
            open_id: "456openid".into(),
            nick: "赵六".into(),
            email: None,
            mobile: "15000000001".into(),
            corp_ids: vec![DINGTALK_CORP.into()],
        },
        // A member of another organization too, listed first: the preselected corpId makes
        // DingTalk pick ours.
        DingTalkUser {
            union_id: "uBothOrgsUnionId000000000000000000".into(),
            open_id: "789openid".into(),
            nick: "钱九".into(),
            email: None,
            mobile: "15000000002".into(),
            corp_ids: vec!["dingcorp0002".into(), DINGTALK_CORP.into()],
        },
        // DingTalk's login is open to anyone: a user of another organization, and a personal
        // account in none.
        DingTalkUser {
            union_id: "uOtherOrgUnionId000000000000000000".into(),
            open_id: "000openid".into(),
            nick: "外人".into(),
            email: Some("outsider@other.test".into()),
            mobile: "15000000003".into(),
            corp_ids: vec!["dingcorp0002".into()],
        },
        DingTalkUser {
            union_id: "uPersonalUnionId000000000000000000".into(),
            open_id: "111openid".into(),
            nick: "个人".into(),
            email: None,
            mobile: "15000000004".into(),
            corp_ids: vec![],
        },
    ]
}

fn start_dingtalk() -> (dingtalk::DingTalk, Gateway) {
    let addr = reserve_port();
    let callback = format!("http://{addr}/oauth2/callback");
    let stand_in = dingtalk::start(
        "dingappkey0001",
        CLIENT_SECRET,
        vec![callback.clone()],
        dingtalk_users(),
    );
    let oauth2 = json!({
        "preset": "dingtalk", "client_id": "dingappkey0001", "redirect_uri": callback,
        "authorization_endpoint": stand_in.url(DINGTALK_AUTHORIZE),
        "allowed_corp_ids": [DINGTALK_CORP]
    });
    let gw = start_gateway(addr, stand_in.addr(), oauth2, CLIENT_SECRET);
    (stand_in, gw)
}

#[test]
fn dingtalk_login_takes_the_auth_code_and_maps_union_id() {
    let (ding, gw) = start_dingtalk();
    let authorize = ding.url(DINGTALK_AUTHORIZE);
    assert_state_mismatch_refused(
        &gw,
        &ding,
        &authorize,
        "z21HjQliSzpw0YWCNxmii6u2Os62cZ62iSiE",
    );

    let mut browser = Browser::new();
    let authorize_url = begin_login(&gw, &mut browser, &authorize);
    for (name, value) in [
        ("response_type", "code"),
        ("client_id", "dingappkey0001"),
        ("prompt", "consent"),
        ("scope", "openid corpid"),
        ("corpId", DINGTALK_CORP),
    ] {
        assert_eq!(
            query_param(&authorize_url, name).as_deref(),
            Some(value),
            "{authorize_url}"
        );
    }
    let callback = provider_login(
        &gw,
        &mut browser,
        &authorize_url,
        "z21HjQliSzpw0YWCNxmii6u2Os62cZ62iSiE",
    );
    assert!(query_param(&callback, "authCode").is_some(), "{callback}");
    let landed = browser.get(&callback);
    let session = assert_session(&gw, &browser, &landed);
    let me = userinfo(&gw, &session);
    assert_eq!(me["sub"], "z21HjQliSzpw0YWCNxmii6u2Os62cZ62iSiE", "{me}");
    assert_eq!(me["name"], "王五", "{me}");
    assert_eq!(me["email"], "wangwu@corp.test", "{me}");
    assert_chat_as(&gw, &session, "z21HjQliSzpw0YWCNxmii6u2Os62cZ62iSiE");

    let token_calls = ding.calls("/v1.0/oauth2/userAccessToken");
    assert_eq!(token_calls.len(), 1);
    let body: Value = serde_json::from_slice(&token_calls[0].body).expect("a JSON token request");
    assert_eq!(body["grantType"], "authorization_code", "{body}");
    assert_eq!(body["clientId"], "dingappkey0001", "{body}");
    assert_host(&ding, "/v1.0/oauth2/userAccessToken", "api.dingtalk.com");
    assert_host(&ding, "/v1.0/contact/users/me", "api.dingtalk.com");
    let me_calls = ding.calls("/v1.0/contact/users/me");
    assert_eq!(me_calls.len(), 1);
    assert!(me_calls[0].header("x-acs-dingtalk-access-token").is_some());

    // No email permission / none set: still a login, named by nick.
    let mut browser = Browser::new();
    let landed = log_in(
        &gw,
        &mut browser,
        &authorize,
        "uNoEmailUnionId0000000000000000000",
    );
    let me = userinfo(&gw, &assert_session(&gw, &browser, &landed));
    assert_eq!(me["sub"], "uNoEmailUnionId0000000000000000000", "{me}");
    assert_eq!(me["name"], "赵六", "{me}");

    // A member of ours and another organization: the preselected one is ours.
    let mut browser = Browser::new();
    let landed = log_in(
        &gw,
        &mut browser,
        &authorize,
        "uBothOrgsUnionId000000000000000000",
    );
    let me = userinfo(&gw, &assert_session(&gw, &browser, &landed));
    assert_eq!(me["sub"], "uBothOrgsUnionId000000000000000000", "{me}");
}

#[test]
fn dingtalk_users_of_another_organization_or_none_are_403() {
    let (ding, gw) = start_dingtalk();
    let authorize = ding.url(DINGTALK_AUTHORIZE);
    for user in [
        "uOtherOrgUnionId000000000000000000",
        "uPersonalUnionId000000000000000000",
    ] {
        let mut browser = Browser::new();
        let refused = log_in(&gw, &mut browser, &authorize, user);
        assert_login_failed(&refused, 403);
        assert_eq!(
            refused.json()["error"]["details"],
            "dingtalk: the user is not a member of an allowed organization",
            "{user}"
        );
        assert!(browser.cookie(&gw.addr.to_string(), "gw_session").is_none());
    }
    // Decided on the token answer: the user's profile is never asked for.
    assert_eq!(ding.calls("/v1.0/oauth2/userAccessToken").len(), 2);
    assert!(ding.calls("/v1.0/contact/users/me").is_empty());
}

#[test]
fn dingtalk_without_allowed_corp_ids_is_a_config_error() {
    // Without them any DingTalk user could log in: missing or empty, Envoy does not start.
    for allowed in [None, Some(json!([]))] {
        let mut oauth2 = json!({
            "preset": "dingtalk", "client_id": "dingappkey0001",
            "redirect_uri": "http://127.0.0.1:9/oauth2/callback"
        });
        if let Some(allowed) = allowed {
            oauth2["allowed_corp_ids"] = allowed;
        }
        assert_config_error(oauth2, "oauth2.allowed_corp_ids");
    }
}

#[test]
fn dingtalk_refusals_error_shape_and_replay() {
    let (ding, gw) = start_dingtalk();
    let authorize = ding.url(DINGTALK_AUTHORIZE);
    let user = "z21HjQliSzpw0YWCNxmii6u2Os62cZ62iSiE";

    // DingTalk's error shape: HTTP 400 {"code": "InvalidAuthentication", ...}.
    ding.with(|s| s.fail_next_token = true);
    let mut browser = Browser::new();
    assert_login_failed(&log_in(&gw, &mut browser, &authorize, user), 401);
    assert!(ding.calls("/v1.0/contact/users/me").is_empty());

    // A spent code replayed with its flow cookie.
    let mut browser = Browser::new();
    let authorize_url = begin_login(&gw, &mut browser, &authorize);
    let callback = provider_login(&gw, &mut browser, &authorize_url, user);
    let flow = browser
        .cookie(&gw.addr.to_string(), "gw_oauth2_flow")
        .unwrap();
    let landed = browser.get(&callback);
    assert_session(&gw, &browser, &landed);
    let mut replayer = Browser::new();
    replayer.set_cookie(&gw.addr.to_string(), "gw_oauth2_flow", &flow);
    assert_login_failed(&replayer.get(&callback), 401);
}

#[test]
fn dingtalk_down_is_502() {
    // (A reset clientSecret is not checked: the stand-in answers it with the same
    // `InvalidAuthentication` as a bad authCode, the pages we know do not tell them apart, so
    // the gateway cannot either.)
    let (ding, gw) = start_dingtalk();
    let authorize = ding.url(DINGTALK_AUTHORIZE);
    let mut browser = Browser::new();
    let callback = to_callback(
        &gw,
        &mut browser,
        &authorize,
        "z21HjQliSzpw0YWCNxmii6u2Os62cZ62iSiE",
    );
    ding.set_down(true);
    let down = browser.get(&callback);
    ding.set_down(false);
    assert_faults_are_502(vec![("token call answered 503", down)]);
}

// ---------------------------------------------------------------- Feishu

const FEISHU_AUTHORIZE: &str = "/open-apis/authen/v1/authorize";
/// The gateway's tenant: `allowed_tenants`.
const FEISHU_TENANT: &str = "736588c9260f175d";

fn feishu_users() -> Vec<FeishuUser> {
    vec![
        FeishuUser {
            open_id: "ou_caecc734c2e3328a62489fe0648c4b98".into(),
            union_id: "on_d89jhsdhjsajkda7828enjdj328ydhhw".into(),
            user_id: Some("5d9bdxxx".into()),
            name: "孙七".into(),
            en_name: "Sun Qi".into(),
            email: Some("sunqi@personal.test".into()),
            enterprise_email: Some("sunqi@corp.test".into()),
            tenant_key: FEISHU_TENANT.into(),
        },
        FeishuUser {
            open_id: "ou_noemployeeid000000000000000000".into(),
            union_id: "on_noemployeeid00000000000000000".into(),
            user_id: None,
            name: "周八".into(),
            en_name: "Zhou Ba".into(),
            email: Some("zhouba@personal.test".into()),
            enterprise_email: None,
            tenant_key: FEISHU_TENANT.into(),
        },
        // An app-store app is installed by other tenants too: their users can log in at
        // Feishu.
        FeishuUser {
            open_id: "ou_othertenant0000000000000000000".into(),
            union_id: "on_othertenant000000000000000000".into(),
            user_id: Some("9f8e7d6c".into()),
            name: "吴十".into(),
            en_name: "Wu Shi".into(),
            email: None,
            enterprise_email: Some("wushi@other.test".into()),
            tenant_key: "2ed263bf32cf1651".into(),
        },
    ]
}

fn start_feishu() -> (feishu::Feishu, Gateway) {
    let addr = reserve_port();
    let callback = format!("http://{addr}/oauth2/callback");
    let stand_in = feishu::start(
        "cli_a5ca35a685b0x26e",
        CLIENT_SECRET,
        vec![callback.clone()],
        feishu_users(),
    );
    let oauth2 = json!({
        "preset": "feishu", "client_id": "cli_a5ca35a685b0x26e", "redirect_uri": callback,
        "authorization_endpoint": stand_in.url(FEISHU_AUTHORIZE),
        "allowed_tenants": [FEISHU_TENANT]
    });
    let gw = start_gateway(addr, stand_in.addr(), oauth2, CLIENT_SECRET);
    (stand_in, gw)
}

#[test]
fn feishu_login_with_pkce_maps_user_id_or_open_id() {
    let (fs, gw) = start_feishu();
    let authorize = fs.url(FEISHU_AUTHORIZE);
    assert_state_mismatch_refused(&gw, &fs, &authorize, "ou_caecc734c2e3328a62489fe0648c4b98");

    let mut browser = Browser::new();
    let authorize_url = begin_login(&gw, &mut browser, &authorize);
    assert_eq!(
        query_param(&authorize_url, "client_id").as_deref(),
        Some("cli_a5ca35a685b0x26e")
    );
    assert_eq!(
        query_param(&authorize_url, "redirect_uri"),
        Some(gw.callback())
    );
    assert_eq!(
        query_param(&authorize_url, "code_challenge_method").as_deref(),
        Some("S256")
    );
    let callback = provider_login(
        &gw,
        &mut browser,
        &authorize_url,
        "ou_caecc734c2e3328a62489fe0648c4b98",
    );
    let landed = browser.get(&callback);
    let session = assert_session(&gw, &browser, &landed);
    let me = userinfo(&gw, &session);
    assert_eq!(me["sub"], "5d9bdxxx", "user_id when present: {me}");
    assert_eq!(me["name"], "孙七", "{me}");
    assert_eq!(
        me["email"], "sunqi@corp.test",
        "enterprise_email first: {me}"
    );
    assert_chat_as(&gw, &session, "5d9bdxxx");

    let token_calls = fs.calls("/open-apis/authen/v2/oauth/token");
    assert_eq!(token_calls.len(), 1);
    let body: Value = serde_json::from_slice(&token_calls[0].body).expect("a JSON token request");
    assert_eq!(body["grant_type"], "authorization_code", "{body}");
    assert!(body["code_verifier"].is_string(), "{body}");
    assert_host(&fs, "/open-apis/authen/v2/oauth/token", "open.feishu.cn");
    assert_host(&fs, "/open-apis/authen/v1/user_info", "open.feishu.cn");
    let info_calls = fs.calls("/open-apis/authen/v1/user_info");
    assert_eq!(info_calls.len(), 1);
    assert!(info_calls[0]
        .header("authorization")
        .is_some_and(|v| v.starts_with("Bearer u-")));

    let mut browser = Browser::new();
    let landed = log_in(
        &gw,
        &mut browser,
        &authorize,
        "ou_noemployeeid000000000000000000",
    );
    let me = userinfo(&gw, &assert_session(&gw, &browser, &landed));
    assert_eq!(
        me["sub"], "ou_noemployeeid000000000000000000",
        "open_id without user_id: {me}"
    );
    assert_eq!(me["email"], "zhouba@personal.test", "{me}");
}

#[test]
fn feishu_a_user_of_another_tenant_is_403() {
    let (fs, gw) = start_feishu();
    let authorize = fs.url(FEISHU_AUTHORIZE);
    let mut browser = Browser::new();
    let refused = log_in(
        &gw,
        &mut browser,
        &authorize,
        "ou_othertenant0000000000000000000",
    );
    assert_login_failed(&refused, 403);
    assert_eq!(
        refused.json()["error"]["details"],
        "feishu: the user is not a member of an allowed tenant"
    );
    assert!(browser.cookie(&gw.addr.to_string(), "gw_session").is_none());
    assert_eq!(fs.calls("/open-apis/authen/v1/user_info").len(), 1);
    // The gateway's own tenant still logs in.
    let mut browser = Browser::new();
    let landed = log_in(
        &gw,
        &mut browser,
        &authorize,
        "ou_caecc734c2e3328a62489fe0648c4b98",
    );
    assert_session(&gw, &browser, &landed);
}

#[test]
fn feishu_refusals_pkce_and_error_shapes() {
    let (fs, gw) = start_feishu();
    let authorize = fs.url(FEISHU_AUTHORIZE);
    let user = "ou_caecc734c2e3328a62489fe0648c4b98";

    // A code bound to another challenge: Feishu refuses the gateway's verifier (HTTP 400).
    let mut browser = Browser::new();
    let authorize_url = with_foreign_challenge(&begin_login(&gw, &mut browser, &authorize));
    let callback = provider_login(&gw, &mut browser, &authorize_url, user);
    assert_login_failed(&browser.get(&callback), 401);
    assert!(fs.calls("/open-apis/authen/v1/user_info").is_empty());

    // An expired code (HTTP 400, 20004).
    let mut browser = Browser::new();
    let authorize_url = begin_login(&gw, &mut browser, &authorize);
    let callback = provider_login(&gw, &mut browser, &authorize_url, user);
    fs.with(|s| s.codes.age_all());
    assert_login_failed(&browser.get(&callback), 401);

    // After all that, a normal login still works.
    let mut browser = Browser::new();
    let landed = log_in(&gw, &mut browser, &authorize, user);
    assert_session(&gw, &browser, &landed);
}

#[test]
fn feishu_server_error_or_a_reset_client_secret_is_502() {
    let (fs, gw) = start_feishu();
    let authorize = fs.url(FEISHU_AUTHORIZE);
    let user = "ou_caecc734c2e3328a62489fe0648c4b98";
    // Feishu's error shape with HTTP 500: {"code": 20050, "error": "server_error", ...}.
    fs.with(|s| s.fail_next_token = true);
    let mut browser = Browser::new();
    let server_error = log_in(&gw, &mut browser, &authorize, user);
    // The app secret reset: HTTP 400 {"code": 20002, "error": "invalid_client"}.
    fs.with(|s| s.client_secret = "reset-in-the-console".into());
    let mut browser = Browser::new();
    let reset = log_in(&gw, &mut browser, &authorize, user);
    assert_faults_are_502(vec![
        ("20050 server_error (HTTP 500)", server_error),
        ("20002 invalid_client", reset),
    ]);
}
