//! DingTalk's calls and answers as open.dingtalk.com documents them (obtain-user-token,
//! dingtalk-retrieve-user-information): JSON calls, errors as HTTP 4xx/5xx with `code`.

use serde_json::{json, Value};

use super::super::tests::{body, call_of, config, header, user_of};
use super::super::*;

fn token_answer() -> Vec<u8> {
    body(json!({"accessToken": "abcd", "refreshToken": "efgh", "expireIn": 7200, "corpId": "corp"}))
}

#[test]
fn token_call_is_json_and_user_call_has_the_token_header() {
    let config = config(Preset::Dingtalk);
    let (mut login, call) = start(&config, "AUTHCODE", "unused", None);
    assert_eq!((call.method, call.target), ("POST", Target::Token));
    assert_eq!(call.path, "/v1.0/oauth2/userAccessToken");
    assert_eq!(header(&call, "content-type"), Some("application/json"));
    let sent: Value = serde_json::from_slice(call.body.as_deref().unwrap()).unwrap();
    assert_eq!(
        sent,
        json!({"clientId": "client-id", "clientSecret": "s3cret", "code": "AUTHCODE", "grantType": "authorization_code"})
    );
    let call = call_of(advance(&config, &mut login, Some(200), &token_answer()));
    assert_eq!((call.method, call.target), ("GET", Target::Api));
    assert_eq!(call.path, "/v1.0/contact/users/me");
    assert_eq!(header(&call, "x-acs-dingtalk-access-token"), Some("abcd"));
    assert_eq!(header(&call, "authorization"), None);
    let me = body(json!({
        "nick": "张三", "avatarUrl": "https://x", "mobile": "150", "openId": "open1",
        "unionId": "union1", "email": "zhangsan@example.com", "stateCode": "86"
    }));
    let user = user_of(advance(&config, &mut login, Some(200), &me));
    assert_eq!(user.sub, "union1");
    assert_eq!(user.name.as_deref(), Some("张三"));
    assert_eq!(user.email.as_deref(), Some("zhangsan@example.com"));
}

#[test]
fn a_refused_code_is_401_with_dingtalks_code_only() {
    let config = config(Preset::Dingtalk);
    let (mut login, _) = start(&config, "AUTHCODE", "v", None);
    let answer = body(
        json!({"code": "InvalidAuthentication", "message": "不合法的临时授权码 secret", "requestid": "r1"}),
    );
    let error = advance(&config, &mut login, Some(400), &answer).unwrap_err();
    assert_eq!(error.status(), 401);
    assert_eq!(
        error.details(Preset::Dingtalk),
        "dingtalk token call failed: error InvalidAuthentication"
    );
    // DingTalk's own failure, even in its error shape: 502.
    let (mut login, _) = start(&config, "AUTHCODE", "v", None);
    let answer = body(json!({"code": "ServiceUnavailable", "message": "m", "requestid": "r"}));
    assert_eq!(
        advance(&config, &mut login, Some(503), &answer)
            .unwrap_err()
            .status(),
        502
    );
}

#[test]
fn user_call_errors_and_missing_union_id() {
    let config = config(Preset::Dingtalk);
    let (mut login, _) = start(&config, "AUTHCODE", "v", None);
    call_of(advance(&config, &mut login, Some(200), &token_answer()));
    let mut other = login.clone();
    let mut third = login.clone();
    let answer =
        body(json!({"code": "Forbidden.AccessDenied.AccessTokenPermissionDenied", "message": "m"}));
    let error = advance(&config, &mut login, Some(403), &answer).unwrap_err();
    assert_eq!(error.status(), 502);
    assert_eq!(
        advance(
            &config,
            &mut other,
            Some(200),
            &body(json!({"nick": "x", "openId": "o"}))
        ),
        Err(PresetError::Unreadable(Step::User))
    );
    // A proxy's HTML page on 502: not DingTalk's answer.
    assert_eq!(
        advance(&config, &mut third, Some(502), b"<html>bad gateway</html>"),
        Err(PresetError::Unreadable(Step::User))
    );
}

/// The token answer for an organization (`None`: without `corpId`, as when the scope lacks
/// `corpid`).
fn token_answer_for(corp: Option<Value>) -> Vec<u8> {
    let mut answer = json!({"accessToken": "abcd", "refreshToken": "efgh", "expireIn": 7200});
    if let Some(corp) = corp {
        answer["corpId"] = corp;
    }
    body(answer)
}

#[test]
fn an_allowed_organization_goes_on_to_the_user_call() {
    let mut config = config(Preset::Dingtalk);
    config.allowed_corp_ids = vec!["ding-a".into(), "dingb".into()];
    for corp in ["ding-a", "dingb"] {
        let (mut login, _) = start(&config, "AUTHCODE", "v", None);
        let answer = token_answer_for(Some(json!(corp)));
        let call = call_of(advance(&config, &mut login, Some(200), &answer));
        assert_eq!(call.path, "/v1.0/contact/users/me", "{corp}");
    }
}

#[test]
fn another_or_no_organization_is_403_before_the_user_call() {
    let config = config(Preset::Dingtalk);
    for corp in [
        Some(json!("ding-other")),
        // Exactly as configured: corpIds are not case-folded.
        Some(json!("CORP")),
        Some(json!(" corp")),
        Some(json!("")),
        Some(json!(null)),
        Some(json!(42)),
        Some(json!(["corp"])),
        None,
    ] {
        let (mut login, _) = start(&config, "AUTHCODE", "v", None);
        let error = advance(
            &config,
            &mut login,
            Some(200),
            &token_answer_for(corp.clone()),
        )
        .unwrap_err();
        assert_eq!(
            error,
            PresetError::NotAllowed("the user is not a member of an allowed organization"),
            "{corp:?}"
        );
        assert_eq!(error.status(), 403);
        assert_eq!(
            error.details(Preset::Dingtalk),
            "dingtalk: the user is not a member of an allowed organization"
        );
        // Nothing further: the login does not reach the user call.
        assert_eq!(login.step, Step::Token, "{corp:?}");
    }
}

#[test]
fn a_token_answer_without_its_token_is_unreadable_whatever_the_organization() {
    let config = config(Preset::Dingtalk);
    let (mut login, _) = start(&config, "AUTHCODE", "v", None);
    let answer = body(json!({"corpId": "corp", "expireIn": 7200}));
    assert_eq!(
        advance(&config, &mut login, Some(200), &answer),
        Err(PresetError::Unreadable(Step::Token))
    );
}
