//! WeCom's calls and answers as developer.work.weixin.qq.com documents them (91039 gettoken,
//! 91023 auth/getuserinfo, 90196 user/get): HTTP 200 with `errcode`, the app token cached.

use serde_json::json;

use super::super::tests::{body, call_of, config, user_of};
use super::super::*;
use crate::oauth2::query::{parse_query, query_value};

fn query_of(call: &PresetCall) -> (String, Vec<(String, String)>) {
    let (path, query) = call.path.split_once('?').expect("a query");
    (path.to_string(), parse_query(query))
}

fn app_token() -> Vec<u8> {
    body(json!({"errcode": 0, "errmsg": "ok", "access_token": "APP-TOKEN", "expires_in": 7200}))
}

fn user_id() -> Vec<u8> {
    body(
        json!({"errcode": 0, "errmsg": "ok", "userid": "zhangsan", "user_ticket": "TICKET", "expires_in": 1800}),
    )
}

fn member() -> Vec<u8> {
    body(json!({
        "errcode": 0, "errmsg": "ok", "userid": "zhangsan", "name": "张三",
        "department": [1, 2], "email": "", "biz_mail": "zhangsan@corp.example"
    }))
}

#[test]
fn without_a_cached_token_the_app_token_comes_first() {
    let config = config(Preset::Wecom);
    let (mut login, call) = start(&config, "CODE", "unused", None);
    assert_eq!(login.step, Step::AppToken);
    assert_eq!((call.method, call.target), ("GET", Target::Token));
    let (path, query) = query_of(&call);
    assert_eq!(path, "/cgi-bin/gettoken");
    assert_eq!(query_value(&query, "corpid"), Some("client-id"));
    assert_eq!(query_value(&query, "corpsecret"), Some("s3cret"));

    let call = call_of(advance(&config, &mut login, Some(200), &app_token()));
    assert_eq!(login.fresh_app_token, Some(("APP-TOKEN".to_string(), 7200)));
    assert_eq!(call.target, Target::Api);
    let (path, query) = query_of(&call);
    assert_eq!(path, "/cgi-bin/auth/getuserinfo");
    assert_eq!(query_value(&query, "access_token"), Some("APP-TOKEN"));
    assert_eq!(query_value(&query, "code"), Some("CODE"));

    let call = call_of(advance(&config, &mut login, Some(200), &user_id()));
    let (path, query) = query_of(&call);
    assert_eq!(path, "/cgi-bin/user/get");
    assert_eq!(query_value(&query, "access_token"), Some("APP-TOKEN"));
    assert_eq!(query_value(&query, "userid"), Some("zhangsan"));

    let user = user_of(advance(&config, &mut login, Some(200), &member()));
    assert_eq!(user.sub, "zhangsan");
    assert_eq!(user.name.as_deref(), Some("张三"));
    // `email` empty: the business mailbox.
    assert_eq!(user.email.as_deref(), Some("zhangsan@corp.example"));
}

#[test]
fn a_cached_app_token_skips_gettoken() {
    let config = config(Preset::Wecom);
    let (login, call) = start(&config, "CODE", "v", Some("CACHED"));
    assert_eq!(login.step, Step::UserId);
    let (path, query) = query_of(&call);
    assert_eq!(path, "/cgi-bin/auth/getuserinfo");
    assert_eq!(query_value(&query, "access_token"), Some("CACHED"));
}

#[test]
fn an_expired_cached_token_is_dropped_and_fetched_again_once() {
    let config = config(Preset::Wecom);
    let (mut login, _) = start(&config, "CODE", "v", Some("OLD"));
    let expired = body(json!({"errcode": 42001, "errmsg": "access_token expired"}));
    let call = call_of(advance(&config, &mut login, Some(200), &expired));
    assert!(login.app_token_rejected);
    assert_eq!(login.step, Step::AppToken);
    assert!(call.path.starts_with("/cgi-bin/gettoken?"));
    login.app_token_rejected = false;
    call_of(advance(&config, &mut login, Some(200), &app_token()));
    // The fresh one is refused too: no second retry.
    let error = advance(&config, &mut login, Some(200), &expired).unwrap_err();
    assert!(login.app_token_rejected);
    assert_eq!(error.status(), 502);
    assert_eq!(
        error.details(Preset::Wecom),
        "wecom getuserinfo call failed: error 42001"
    );
}

#[test]
fn an_invalid_code_is_401() {
    let config = config(Preset::Wecom);
    let (mut login, _) = start(&config, "CODE", "v", Some("T"));
    let answer =
        body(json!({"errcode": 40029, "errmsg": "invalid code, hint: [xyz] from ip: 1.2.3.4"}));
    let error = advance(&config, &mut login, Some(200), &answer).unwrap_err();
    assert_eq!(error.status(), 401);
    let details = error.details(Preset::Wecom);
    assert_eq!(details, "wecom getuserinfo call failed: error 40029");
    assert!(!details.contains("hint"));
    // Other refusals of getuserinfo are not the code's: 50001 (redirect_uri not trusted).
    let (mut login, _) = start(&config, "CODE", "v", Some("T"));
    let answer = body(json!({"errcode": 50001, "errmsg": "redirect_url not authorised"}));
    assert_eq!(
        advance(&config, &mut login, Some(200), &answer)
            .unwrap_err()
            .status(),
        502
    );
}

#[test]
fn a_non_member_is_refused_with_403() {
    let config = config(Preset::Wecom);
    let (mut login, _) = start(&config, "CODE", "v", Some("T"));
    let answer =
        body(json!({"errcode": 0, "errmsg": "ok", "openid": "OPENID", "external_userid": "EXT"}));
    let error = advance(&config, &mut login, Some(200), &answer).unwrap_err();
    assert_eq!(error.status(), 403);
    assert_eq!(
        error.details(Preset::Wecom),
        "wecom: the user is not a member of the organization"
    );
}

#[test]
fn a_bad_secret_fails_at_gettoken_without_the_secret() {
    let config = config(Preset::Wecom);
    let (mut login, _) = start(&config, "CODE", "v", None);
    let answer = body(json!({"errcode": 40001, "errmsg": "invalid credential s3cret"}));
    let error = advance(&config, &mut login, Some(200), &answer).unwrap_err();
    assert_eq!(error.status(), 502);
    let details = error.details(Preset::Wecom);
    assert_eq!(details, "wecom gettoken call failed: error 40001");
    assert!(login.fresh_app_token.is_none());
}

#[test]
fn user_get_errors_fail_the_login() {
    let config = config(Preset::Wecom);
    let (mut login, _) = start(&config, "CODE", "v", Some("T"));
    call_of(advance(&config, &mut login, Some(200), &user_id()));
    let mut expired = login.clone();
    let answer = body(
        json!({"errcode": 60011, "errmsg": "no privilege to access/modify contact/party/agent"}),
    );
    let error = advance(&config, &mut login, Some(200), &answer).unwrap_err();
    assert_eq!(error.status(), 502);
    assert!(!login.app_token_rejected);
    let answer = body(json!({"errcode": 42001, "errmsg": "access_token expired"}));
    advance(&config, &mut expired, Some(200), &answer).unwrap_err();
    assert!(expired.app_token_rejected);
}

#[test]
fn odd_errcodes_and_statuses() {
    let config = config(Preset::Wecom);
    for (status, answer) in [
        (200, json!({"errcode": "0", "userid": "x"})),
        (200, json!({"errcode": 0.5, "userid": "x"})),
        (200, json!({"errcode": 0, "userid": ""})),
        (200, json!({"errcode": 0})),
    ] {
        let (mut login, _) = start(&config, "CODE", "v", Some("T"));
        assert_eq!(
            advance(&config, &mut login, Some(status), &body(answer.clone())),
            Err(PresetError::Unreadable(Step::UserId)),
            "{answer}"
        );
    }
    let (mut login, _) = start(&config, "CODE", "v", Some("T"));
    let error = advance(&config, &mut login, Some(503), b"busy").unwrap_err();
    assert_eq!(
        error.details(Preset::Wecom),
        "wecom getuserinfo call failed: error HTTP 503"
    );
}
