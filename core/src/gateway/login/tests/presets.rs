//! Login presets driven through the gateway's entry points: no discovery and no keys, the
//! provider's calls one after the other on the configured clusters, the same session an OIDC
//! login starts, the failures as `LOGIN_FAILED`, and WeCom's app token kept per worker.

use super::*;
use crate::oauth2::pkce_challenge_s256;

const GITHUB: &str = r#"{
    "providers": [],
    "rules": [{"match": {"prefix": "/admin/"}, "scopes": ["admin"]}],
    "default_rule": {"auth": "required", "scopes": []},
    "roles": {"claims": ["orgs"], "grants": {"acme": ["admin"]}},
    "oauth2": {"preset": "github", "cluster": "gh", "api_cluster": "gh-api",
        "client_id": "web", "client_secret": {"inline": "s"},
        "redirect_uri": "https://chat.test/oauth2/callback",
        "allowed_orgs": ["acme"],
        "post_logout_redirect_uri": "https://chat.test/bye",
        "session": {"secret": {"inline": "0123456789abcdef0123456789abcdef"},
                    "scopes": ["chat"]}}
}"#;

const WECOM: &str = r#"{
    "default_rule": {"auth": "required", "scopes": []},
    "oauth2": {"preset": "wecom", "cluster": "wx", "agent_id": "1000002",
        "client_id": "corp", "client_secret": {"inline": "corp-secret"},
        "redirect_uri": "https://chat.test/oauth2/callback",
        "authorization_endpoint": "http://127.0.0.1:9999/wwlogin/sso/login",
        "session": {"secret": {"inline": "0123456789abcdef0123456789abcdef"}}}
}"#;

const DINGTALK: &str = r#"{
    "default_rule": {"auth": "required", "scopes": []},
    "oauth2": {"preset": "dingtalk", "cluster": "dt",
        "client_id": "ding", "client_secret": {"inline": "ding-secret"},
        "redirect_uri": "https://chat.test/oauth2/callback",
        "token_endpoint": "http://127.0.0.1:9999/stand-in/token",
        "allowed_corp_ids": ["c"],
        "session": {"secret": {"inline": "0123456789abcdef0123456789abcdef"}}}
}"#;

fn worker(config: &str) -> Worker {
    let mut worker = Worker::with_config(config, FakeHost::new(NOW_MS));
    // The tick fetches nothing for a preset: no discovery, no keys.
    worker.gateway.on_tick();
    assert!(worker.host.state.calls.borrow().is_empty());
    worker
}

/// The only call dispatched since `before` calls: its token and the call.
fn next_call(worker: &Worker, before: usize, owner: u32) -> (u32, OutgoingCall) {
    let calls = worker.host.state.calls.borrow();
    assert_eq!(calls.len(), before + 1, "one new call: {calls:?}");
    let (token, call, from) = calls.last().cloned().unwrap();
    assert_eq!(from, Some(owner), "dispatched from the callback");
    (token, call)
}

fn calls(worker: &Worker) -> usize {
    worker.host.state.calls.borrow().len()
}

fn pseudo<'a>(call: &'a OutgoingCall, name: &str) -> &'a str {
    call_header(call, name).unwrap_or_else(|| panic!("{name} in {call:?}"))
}

/// A login on `id`, its callback on `id + 1` with `code_param`: paused at the first call.
fn to_first_call(worker: &mut Worker, id: u32, code_param: &str) -> (Started, u32, OutgoingCall) {
    let started = start_login(worker, id, "/oauth2/login?rd=%2Fchat%2F");
    let before = calls(worker);
    let state = started.flow.state.clone();
    let out = callback(
        worker,
        id + 1,
        &[(code_param, "the-code"), ("state", &state)],
        Some(&started.cookie),
    );
    assert_eq!(out.next, Next::Pause);
    assert!(out.effects.is_empty(), "{out:?}");
    let (token, call) = next_call(worker, before, id + 1);
    (started, token, call)
}

/// Answers `token` with a JSON body and returns the next call (none is answered yet).
fn answer_then_call(
    worker: &mut Worker,
    token: u32,
    body: Value,
    owner: u32,
) -> (u32, OutgoingCall) {
    let before = calls(worker);
    let out = worker.answer(token, json_answer(200, &body));
    assert!(out.effects.is_empty(), "{out:?}");
    next_call(worker, before, owner)
}

fn github_to_orgs(worker: &mut Worker, id: u32) -> (Started, u32) {
    let (started, token, call) = to_first_call(worker, id, "code");
    assert_eq!(call.cluster, "gh");
    assert_eq!(pseudo(&call, ":authority"), "github.com");
    assert_eq!(pseudo(&call, ":path"), "/login/oauth/access_token");
    assert_eq!(pseudo(&call, "traceparent"), TRACEPARENT);
    let form = parse_query(std::str::from_utf8(call.body.as_deref().unwrap()).unwrap());
    assert_eq!(query_value(&form, "code"), Some("the-code"));
    assert_eq!(
        query_value(&form, "code_verifier"),
        Some(started.flow.verifier.as_str())
    );
    let (token, call) = answer_then_call(
        worker,
        token,
        json!({"access_token": "gho_x", "token_type": "bearer", "scope": "read:user"}),
        id + 1,
    );
    assert_eq!(call.cluster, "gh-api");
    assert_eq!(pseudo(&call, ":authority"), "api.github.com");
    assert_eq!(pseudo(&call, ":path"), "/user");
    assert_eq!(pseudo(&call, "authorization"), "Bearer gho_x");
    assert_eq!(pseudo(&call, "traceparent"), TRACEPARENT);
    let user = json!({"login": "octocat", "id": 583231, "name": null, "email": "octo@github.com"});
    let (token, call) = answer_then_call(worker, token, user, id + 1);
    assert_eq!(pseudo(&call, ":path"), "/user/orgs?per_page=100");
    (started, token)
}

#[test]
fn github_login_starts_the_same_session_as_oidc() {
    let mut worker = worker(GITHUB);
    let started = start_login(&mut worker, 1, "/oauth2/login?rd=%2Fchat%2F");
    let location = header(&started.reply, "location").unwrap();
    assert!(
        location.starts_with("https://github.com/login/oauth/authorize?"),
        "{location}"
    );
    let query = location_query(&started.reply);
    assert_eq!(query_value(&query, "client_id"), Some("web"));
    assert_eq!(
        query_value(&query, "scope"),
        Some("read:user user:email read:org")
    );
    assert_eq!(
        query_value(&query, "code_challenge"),
        Some(pkce_challenge_s256(&started.flow.verifier).as_str())
    );

    let (_, token) = github_to_orgs(&mut worker, 10);
    let out = worker.answer(token, json_answer(200, &json!([{"login": "ACME"}])));
    let reply = only_reply(&out, 11);
    assert_eq!(reply.status, 302, "{reply:?}");
    assert_eq!(header(&reply, "location"), Some("/chat/"));
    assert!(set_cookies(&reply).contains(&cleared(FLOW_COOKIE).as_str()));
    let session = cookie_value(set_cookie_of(&reply, SESSION_COOKIE).unwrap()).to_string();
    let claims = session_claims(&session);
    assert_eq!(claims["sub"], "583231");
    assert_eq!(claims["name"], "octocat");
    assert_eq!(claims["email"], "octo@github.com");
    // session.scopes, and the scope the `acme` org's role grants.
    assert_eq!(claims["scope"], "chat admin");
    assert_eq!(claims["roles"], json!(["acme"]));
    assert!(claims.get("idt").is_none());
    assert_settled(&worker, 11);
    let audit = worker.audit(11);
    assert_eq!(audit["decision"], "login_succeeded");
    assert_eq!(audit["provider"], "github");
    assert_eq!(audit["sub"], "583231");
    assert_eq!(worker.host.state.counter("oauth2_logins_succeeded"), 1);

    // The session works like any: userinfo, a rule's scope, logout.
    let out = browse(
        &mut worker,
        20,
        "/oauth2/userinfo",
        &[(SESSION_COOKIE, &session)],
    );
    let userinfo = only_reply(&out, 20);
    let body: Value = serde_json::from_str(&userinfo.body).unwrap();
    assert_eq!(body["sub"], "583231");
    assert_eq!(body["name"], "octocat");
    assert_eq!(body["email"], "octo@github.com");
    let out = browse(&mut worker, 21, "/admin/x", &[(SESSION_COOKIE, &session)]);
    assert!(
        matches!(effects_on(&out, 21).as_slice(), [Effect::Forward { .. }]),
        "{out:?}"
    );
    let out = browse(&mut worker, 22, LOGOUT, &[(SESSION_COOKIE, &session)]);
    let reply = only_reply(&out, 22);
    assert_eq!(header(&reply, "location"), Some("https://chat.test/bye"));
    assert!(set_cookies(&reply).contains(&cleared(SESSION_COOKIE).as_str()));
}

#[test]
fn a_github_user_in_no_allowed_org_is_refused() {
    let mut worker = worker(GITHUB);
    let (_, token) = github_to_orgs(&mut worker, 1);
    let out = worker.answer(token, json_answer(200, &json!([{"login": "other"}])));
    let reply = only_reply(&out, 2);
    assert_eq!(reply.status, 403);
    let error = error_of(&reply);
    assert_eq!(error["code"], "LOGIN_FAILED");
    assert!(set_cookie_of(&reply, SESSION_COOKIE).is_none());
    assert!(set_cookies(&reply).contains(&cleared(FLOW_COOKIE).as_str()));
    assert_settled(&worker, 2);
    let audit = worker.audit(2);
    assert_eq!(audit["decision"], "login_failed");
    assert_eq!(audit["provider"], "github");
    assert_eq!(audit["code"], "LOGIN_FAILED");
}

#[test]
fn a_refused_code_a_silent_provider_and_an_unreadable_answer() {
    let mut worker = worker(GITHUB);
    let (_, token, _) = to_first_call(&mut worker, 1, "code");
    let refused = json!({"error": "bad_verification_code", "error_description": "The code passed is incorrect or expired."});
    let reply = only_reply(&worker.answer(token, json_answer(200, &refused)), 2);
    assert_eq!(reply.status, 401);
    let message = error_of(&reply).to_string();
    assert!(message.contains("bad_verification_code"), "{message}");
    assert!(!message.contains("incorrect"), "{message}");
    assert!(!message.contains("the-code"), "{message}");

    let (_, token, _) = to_first_call(&mut worker, 3, "code");
    let reply = only_reply(&worker.answer(token, CallResponse::NONE), 4);
    assert_eq!(reply.status, 504);

    let (_, token, _) = to_first_call(&mut worker, 5, "code");
    let broken = CallResponse {
        status: Some(200),
        body: Some(b"<html>".to_vec()),
    };
    let reply = only_reply(&worker.answer(token, broken), 6);
    assert_eq!(reply.status, 502);
    assert_eq!(error_of(&reply)["code"], "LOGIN_FAILED");
    for id in [2, 4, 6] {
        assert_settled(&worker, id);
    }
}

#[test]
fn a_preset_callback_checks_state_and_calls_nothing_without_it() {
    let mut worker = worker(GITHUB);
    let started = start_login(&mut worker, 1, LOGIN);
    for (id, state) in [(2, "forged"), (3, "")] {
        let out = callback(
            &mut worker,
            id,
            &[("code", "c"), ("state", state)],
            Some(&started.cookie),
        );
        let reply = only_reply(&out, id);
        assert_eq!(reply.status, 401);
        assert_eq!(error_of(&reply)["code"], "LOGIN_FAILED");
    }
    let out = callback(
        &mut worker,
        4,
        &[("code", "c"), ("state", &started.flow.state)],
        None,
    );
    assert_eq!(only_reply(&out, 4).status, 401);
    assert_eq!(calls(&worker), 0);
}

#[test]
fn a_callback_that_ends_midway_is_forgotten() {
    let mut worker = worker(GITHUB);
    let (_, token, _) = to_first_call(&mut worker, 1, "code");
    worker.gateway.on_done(2);
    assert!(worker.gateway.calls.is_empty());
    let out = worker.answer(token, json_answer(200, &json!({"access_token": "x"})));
    assert!(out.effects.is_empty());
    assert_eq!(calls(&worker), 1, "nothing more is called");
}

/// A whole WeCom login on `id`/`id + 1`, answering gettoken when it is called: whether it was.
fn wecom_login(worker: &mut Worker, id: u32) -> bool {
    let (_, mut token, mut call) = to_first_call(worker, id, "code");
    let fetched = call.path().starts_with("/cgi-bin/gettoken?");
    if fetched {
        assert_eq!(call.cluster, "wx");
        assert_eq!(pseudo(&call, ":authority"), "qyapi.weixin.qq.com");
        let query = parse_query(call.path().split_once('?').unwrap().1);
        assert_eq!(query_value(&query, "corpsecret"), Some("corp-secret"));
        let app = json!({"errcode": 0, "errmsg": "ok", "access_token": "APP", "expires_in": 7200});
        (token, call) = answer_then_call(worker, token, app, id + 1);
    }
    assert!(
        call.path().starts_with("/cgi-bin/auth/getuserinfo?"),
        "{call:?}"
    );
    let query = parse_query(call.path().split_once('?').unwrap().1);
    assert_eq!(query_value(&query, "access_token"), Some("APP"));
    assert_eq!(query_value(&query, "code"), Some("the-code"));
    let who = json!({"errcode": 0, "errmsg": "ok", "userid": "zhangsan"});
    let (token, call) = answer_then_call(worker, token, who, id + 1);
    assert!(call.path().starts_with("/cgi-bin/user/get?"), "{call:?}");
    let member = json!({"errcode": 0, "errmsg": "ok", "name": "张三", "email": "zs@corp.example"});
    let reply = only_reply(&worker.answer(token, json_answer(200, &member)), id + 1);
    assert_eq!(reply.status, 302, "{reply:?}");
    let claims = session_claims(cookie_value(set_cookie_of(&reply, SESSION_COOKIE).unwrap()));
    assert_eq!(claims["sub"], "zhangsan");
    assert_eq!(claims["name"], "张三");
    fetched
}

#[test]
fn wecom_fetches_its_app_token_once_per_lifetime() {
    let mut worker = worker(WECOM);
    let started = start_login(&mut worker, 1, LOGIN);
    let location = header(&started.reply, "location").unwrap();
    assert!(location.starts_with("http://127.0.0.1:9999/wwlogin/sso/login?login_type=CorpApp&appid=corp&agentid=1000002&"), "{location}");
    assert!(!location.contains("code_challenge"));
    assert!(
        wecom_login(&mut worker, 10),
        "the first login fetches the app token"
    );
    assert!(
        !wecom_login(&mut worker, 20),
        "the second uses the cached one"
    );
    // 7200 s minus the margin: the next login fetches a new one.
    worker.host.state.advance(6_900 * 1000);
    assert!(wecom_login(&mut worker, 30));
    assert!(!wecom_login(&mut worker, 40));

    // The provider says the cached token expired: dropped, fetched again for this login.
    let (_, token, call) = to_first_call(&mut worker, 50, "code");
    assert!(call.path().starts_with("/cgi-bin/auth/getuserinfo?"));
    let expired = json!({"errcode": 42001, "errmsg": "access_token expired"});
    let (_, call) = answer_then_call(&mut worker, token, expired, 51);
    assert!(call.path().starts_with("/cgi-bin/gettoken?"), "{call:?}");
    assert!(worker.gateway.app_token.is_none());
}

#[test]
fn a_wecom_non_member_is_refused() {
    let mut worker = worker(WECOM);
    let (_, token, _) = to_first_call(&mut worker, 1, "code");
    let app = json!({"errcode": 0, "errmsg": "ok", "access_token": "APP", "expires_in": 7200});
    let (token, _) = answer_then_call(&mut worker, token, app, 2);
    let outsider = json!({"errcode": 0, "errmsg": "ok", "openid": "o-1"});
    let reply = only_reply(&worker.answer(token, json_answer(200, &outsider)), 2);
    assert_eq!(reply.status, 403);
    assert_eq!(error_of(&reply)["code"], "LOGIN_FAILED");
    assert!(!reply.body.contains("corp-secret") && !reply.body.contains("APP"));
}

#[test]
fn a_dingtalk_user_of_another_organization_is_refused_before_the_user_call() {
    let mut worker = worker(DINGTALK);
    let (_, token, _) = to_first_call(&mut worker, 1, "authCode");
    let before = calls(&worker);
    let other = json!({"accessToken": "AT", "refreshToken": "RT", "expireIn": 7200, "corpId": "x"});
    let reply = only_reply(&worker.answer(token, json_answer(200, &other)), 2);
    assert_eq!(reply.status, 403);
    assert_eq!(error_of(&reply)["code"], "LOGIN_FAILED");
    assert!(set_cookie_of(&reply, SESSION_COOKIE).is_none());
    assert_eq!(calls(&worker), before, "no user call");
}

#[test]
fn dingtalk_takes_the_code_as_auth_code_and_calls_the_overridden_path() {
    let mut worker = worker(DINGTALK);
    let (_, token, call) = to_first_call(&mut worker, 1, "authCode");
    assert_eq!(call.cluster, "dt");
    assert_eq!(pseudo(&call, ":authority"), "api.dingtalk.com");
    assert_eq!(pseudo(&call, ":path"), "/stand-in/token");
    let sent: Value = serde_json::from_slice(call.body.as_deref().unwrap()).unwrap();
    assert_eq!(sent["code"], "the-code");
    let (token, call) = answer_then_call(
        &mut worker,
        token,
        json!({"accessToken": "AT", "refreshToken": "RT", "expireIn": 7200, "corpId": "c"}),
        2,
    );
    assert_eq!(pseudo(&call, ":path"), "/v1.0/contact/users/me");
    assert_eq!(pseudo(&call, "x-acs-dingtalk-access-token"), "AT");
    let me = json!({"nick": "张三", "unionId": "u-1", "openId": "o-1", "email": "zs@example.com"});
    let reply = only_reply(&worker.answer(token, json_answer(200, &me)), 2);
    assert_eq!(reply.status, 302, "{reply:?}");
    let claims = session_claims(cookie_value(set_cookie_of(&reply, SESSION_COOKIE).unwrap()));
    assert_eq!(claims["sub"], "u-1");
    assert_eq!(worker.audit(2)["provider"], "dingtalk");
    // Logout without post_logout_redirect_uri: home.
    let reply = only_reply(&browse(&mut worker, 3, LOGOUT, &[]), 3);
    assert_eq!(header(&reply, "location"), Some("/"));
}
