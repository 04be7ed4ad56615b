//! Feishu's calls and answers as open.feishu.cn documents them (v2 oauth/token,
//! authen/v1/user_info): `code` 0 for success, errors with numeric codes.

use serde_json::{json, Value};

use super::super::tests::{body, call_of, config, header, user_of};
use super::super::*;

fn token_answer() -> Vec<u8> {
    body(json!({
        "code": 0, "access_token": "u-token", "expires_in": 7200, "refresh_token": "r",
        "refresh_token_expires_in": 604800, "scope": "auth:user.id:read", "token_type": "Bearer"
    }))
}

fn user_info(data: Value) -> Vec<u8> {
    body(json!({"code": 0, "msg": "success", "data": data}))
}

#[test]
fn token_call_is_json_with_pkce_and_user_info_uses_bearer() {
    let config = config(Preset::Feishu);
    let (mut login, call) = start(&config, "CODE", "the-verifier", None);
    assert_eq!((call.method, call.target), ("POST", Target::Token));
    assert_eq!(call.path, "/open-apis/authen/v2/oauth/token");
    assert_eq!(
        header(&call, "content-type"),
        Some("application/json; charset=utf-8")
    );
    let sent: Value = serde_json::from_slice(call.body.as_deref().unwrap()).unwrap();
    assert_eq!(
        sent,
        json!({
            "grant_type": "authorization_code", "client_id": "client-id",
            "client_secret": "s3cret", "code": "CODE",
            "redirect_uri": "https://chat.test/oauth2/callback", "code_verifier": "the-verifier"
        })
    );
    let call = call_of(advance(&config, &mut login, Some(200), &token_answer()));
    assert_eq!((call.method, call.target), ("GET", Target::Api));
    assert_eq!(call.path, "/open-apis/authen/v1/user_info");
    assert_eq!(header(&call, "authorization"), Some("Bearer u-token"));
    let answer = user_info(json!({
        "name": "张三", "en_name": "San Zhang", "open_id": "ou_1", "union_id": "on_1",
        "user_id": "5d9bdxxx", "email": "zhangsan@example.com",
        "enterprise_email": "zhangsan@corp.example", "tenant_key": "t"
    }));
    let user = user_of(advance(&config, &mut login, Some(200), &answer));
    assert_eq!(user.sub, "5d9bdxxx");
    assert_eq!(user.name.as_deref(), Some("张三"));
    assert_eq!(user.email.as_deref(), Some("zhangsan@corp.example"));
}

#[test]
fn without_user_id_the_open_id_and_plain_email() {
    let config = config(Preset::Feishu);
    let (mut login, _) = start(&config, "CODE", "v", None);
    call_of(advance(&config, &mut login, Some(200), &token_answer()));
    let answer = user_info(json!({"name": "Li", "open_id": "ou_2", "email": "li@example.com"}));
    let user = user_of(advance(&config, &mut login, Some(200), &answer));
    assert_eq!(user.sub, "ou_2");
    assert_eq!(user.email.as_deref(), Some("li@example.com"));
}

#[test]
fn a_refused_code_names_feishus_codes_only() {
    let config = config(Preset::Feishu);
    let (mut login, _) = start(&config, "CODE", "v", None);
    let answer = body(
        json!({"code": 20003, "error": "invalid_grant", "error_description": "The authorization code has expired."}),
    );
    let error = advance(&config, &mut login, Some(400), &answer).unwrap_err();
    assert_eq!(error.status(), 401);
    assert_eq!(
        error.details(Preset::Feishu),
        "feishu token call failed: error 20003 invalid_grant"
    );
    // Not the code's fault: the provider's or the configuration's, 502 (a non-zero code
    // with HTTP 200 is a refusal too).
    for (status, answer) in [
        (200, json!({"code": 20050, "error": "server_error"})),
        (
            500,
            json!({"code": 20050, "error": "server_error", "error_description": "x"}),
        ),
        (
            400,
            json!({"code": 20002, "error": "invalid_client", "error_description": "x"}),
        ),
    ] {
        let (mut login, _) = start(&config, "CODE", "v", None);
        let error = advance(&config, &mut login, Some(status), &body(answer.clone())).unwrap_err();
        assert_eq!(error.status(), 502, "{answer}");
    }
}

#[test]
fn user_info_errors() {
    let config = config(Preset::Feishu);
    let (mut login, _) = start(&config, "CODE", "v", None);
    call_of(advance(&config, &mut login, Some(200), &token_answer()));
    let mut other = login.clone();
    let answer = body(json!({"code": 99991663, "msg": "Invalid access token for authorization."}));
    let error = advance(&config, &mut login, Some(400), &answer).unwrap_err();
    assert_eq!(error.status(), 502);
    assert_eq!(
        error.details(Preset::Feishu),
        "feishu user info call failed: error 99991663"
    );
    for data in [json!(null), json!({"name": "x"}), json!({"open_id": ""})] {
        let mut login = other.clone();
        assert_eq!(
            advance(&config, &mut login, Some(200), &user_info(data.clone())),
            Err(PresetError::Unreadable(Step::User)),
            "{data}"
        );
    }
    let answer = user_info(json!({"open_id": "ou_3"}));
    assert_eq!(
        user_of(advance(&config, &mut other, Some(200), &answer)).sub,
        "ou_3"
    );
}

/// Feishu's user info for a user of `tenant` (`None`: no `tenant_key`).
fn user_of_tenant(tenant: Option<Value>) -> Vec<u8> {
    let mut data = json!({"name": "张三", "open_id": "ou_1", "union_id": "on_1"});
    if let Some(tenant) = tenant {
        data["tenant_key"] = tenant;
    }
    user_info(data)
}

#[test]
fn without_allowed_tenants_any_tenant_logs_in() {
    let config = config(Preset::Feishu);
    for tenant in [Some(json!("736588c9260f175d")), Some(json!("other")), None] {
        let (mut login, _) = start(&config, "CODE", "v", None);
        call_of(advance(&config, &mut login, Some(200), &token_answer()));
        let answer = user_of_tenant(tenant.clone());
        assert_eq!(
            user_of(advance(&config, &mut login, Some(200), &answer)).sub,
            "ou_1",
            "{tenant:?}"
        );
    }
}

#[test]
fn allowed_tenants_admit_only_their_users() {
    let mut config = config(Preset::Feishu);
    config.allowed_tenants = vec!["736588c9260f175d".into(), "2ed263bf32cf1651".into()];
    for tenant in ["736588c9260f175d", "2ed263bf32cf1651"] {
        let (mut login, _) = start(&config, "CODE", "v", None);
        call_of(advance(&config, &mut login, Some(200), &token_answer()));
        let answer = user_of_tenant(Some(json!(tenant)));
        assert_eq!(
            user_of(advance(&config, &mut login, Some(200), &answer)).sub,
            "ou_1",
            "{tenant}"
        );
    }
    for tenant in [
        Some(json!("another-tenant")),
        Some(json!("736588C9260F175D")),
        Some(json!("")),
        Some(json!(null)),
        Some(json!(7)),
        None,
    ] {
        let (mut login, _) = start(&config, "CODE", "v", None);
        call_of(advance(&config, &mut login, Some(200), &token_answer()));
        let error = advance(
            &config,
            &mut login,
            Some(200),
            &user_of_tenant(tenant.clone()),
        )
        .unwrap_err();
        assert_eq!(
            error,
            PresetError::NotAllowed("the user is not a member of an allowed tenant"),
            "{tenant:?}"
        );
        assert_eq!(error.status(), 403);
        assert_eq!(
            error.details(Preset::Feishu),
            "feishu: the user is not a member of an allowed tenant"
        );
    }
}
