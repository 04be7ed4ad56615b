//! What every preset shares: the authorize URL per provider, the bounded reading of answers,
//! and errors that repeat codes but never a provider's text.

use serde_json::json;

use super::*;
use crate::oauth2::query::{parse_query, query_value};

/// A preset's settings as `oauth2` compiles them with its defaults.
pub(super) fn config(preset: Preset) -> PresetConfig {
    PresetConfig {
        preset,
        client_id: "client-id".into(),
        client_secret: "s3cret".into(),
        redirect_uri: "https://chat.test/oauth2/callback".into(),
        scopes: preset.default_scopes(false),
        authorization_endpoint: preset.authorization_endpoint().into(),
        token_path: preset.token_path().into(),
        userinfo_path: preset.userinfo_path().into(),
        api_cluster: "api".into(),
        api_authority: preset.api_host().into(),
        agent_id: (preset == Preset::Wecom).then(|| "1000002".into()),
        allowed_orgs: Vec::new(),
        allowed_corp_ids: match preset {
            Preset::Dingtalk => vec!["corp".into()],
            _ => Vec::new(),
        },
        allowed_tenants: Vec::new(),
    }
}

/// A JSON body.
pub(super) fn body(value: serde_json::Value) -> Vec<u8> {
    value.to_string().into_bytes()
}

pub(super) fn header<'a>(call: &'a PresetCall, name: &str) -> Option<&'a str> {
    call.headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The call a `Progress` asks for.
pub(super) fn call_of(progress: Result<Progress, PresetError>) -> PresetCall {
    match progress {
        Ok(Progress::Call(call)) => call,
        other => panic!("a next call, got {other:?}"),
    }
}

pub(super) fn user_of(progress: Result<Progress, PresetError>) -> PresetUser {
    match progress {
        Ok(Progress::Done(user)) => user,
        other => panic!("the user, got {other:?}"),
    }
}

fn url_query(url: &str) -> (String, Vec<(String, String)>) {
    let (base, query) = url.split_once('?').expect("a query");
    (base.to_string(), parse_query(query))
}

#[test]
fn github_authorize_url_has_pkce_and_scopes() {
    let (base, query) = url_query(&authorization_url(&config(Preset::Github), "st", "ch"));
    assert_eq!(base, "https://github.com/login/oauth/authorize");
    assert_eq!(query_value(&query, "client_id"), Some("client-id"));
    assert_eq!(
        query_value(&query, "redirect_uri"),
        Some("https://chat.test/oauth2/callback")
    );
    assert_eq!(query_value(&query, "scope"), Some("read:user user:email"));
    assert_eq!(query_value(&query, "state"), Some("st"));
    assert_eq!(query_value(&query, "code_challenge"), Some("ch"));
    assert_eq!(query_value(&query, "code_challenge_method"), Some("S256"));
}

#[test]
fn wecom_authorize_url_is_the_web_login_without_pkce() {
    let (base, query) = url_query(&authorization_url(&config(Preset::Wecom), "st", "ch"));
    assert_eq!(base, "https://login.work.weixin.qq.com/wwlogin/sso/login");
    assert_eq!(query_value(&query, "login_type"), Some("CorpApp"));
    assert_eq!(query_value(&query, "appid"), Some("client-id"));
    assert_eq!(query_value(&query, "agentid"), Some("1000002"));
    assert_eq!(query_value(&query, "state"), Some("st"));
    for absent in ["code_challenge", "scope", "client_id"] {
        assert_eq!(query_value(&query, absent), None, "{absent}");
    }
}

#[test]
fn dingtalk_authorize_url_asks_consent_without_pkce() {
    let (base, query) = url_query(&authorization_url(&config(Preset::Dingtalk), "st", "ch"));
    assert_eq!(base, "https://login.dingtalk.com/oauth2/auth");
    assert_eq!(query_value(&query, "response_type"), Some("code"));
    assert_eq!(query_value(&query, "client_id"), Some("client-id"));
    assert_eq!(query_value(&query, "scope"), Some("openid corpid"));
    assert_eq!(query_value(&query, "prompt"), Some("consent"));
    assert_eq!(query_value(&query, "state"), Some("st"));
    assert_eq!(query_value(&query, "code_challenge"), None);
}

#[test]
fn dingtalk_authorize_url_preselects_the_only_allowed_organization() {
    let mut dingtalk = config(Preset::Dingtalk);
    let (_, query) = url_query(&authorization_url(&dingtalk, "st", "ch"));
    assert_eq!(query_value(&query, "corpId"), Some("corp"));
    // Several allowed: the user picks one at DingTalk (the token answer's is checked).
    dingtalk.allowed_corp_ids.push("corp2".into());
    let (_, query) = url_query(&authorization_url(&dingtalk, "st", "ch"));
    assert_eq!(query_value(&query, "corpId"), None);
    for preset in [Preset::Github, Preset::Wecom, Preset::Feishu] {
        let (_, query) = url_query(&authorization_url(&config(preset), "st", "ch"));
        assert_eq!(query_value(&query, "corpId"), None, "{preset:?}");
    }
}

#[test]
fn feishu_authorize_url_has_pkce() {
    let mut feishu = config(Preset::Feishu);
    let (base, query) = url_query(&authorization_url(&feishu, "st", "ch"));
    assert_eq!(
        base,
        "https://accounts.feishu.cn/open-apis/authen/v1/authorize"
    );
    assert_eq!(query_value(&query, "scope"), None, "no scope by default");
    assert_eq!(query_value(&query, "code_challenge"), Some("ch"));
    assert_eq!(query_value(&query, "code_challenge_method"), Some("S256"));
    feishu.scopes = vec!["contact:user.email:readonly".into()];
    feishu.authorization_endpoint = "http://127.0.0.1:9/authorize?tenant=x".into();
    let url = authorization_url(&feishu, "st", "ch");
    assert!(
        url.starts_with("http://127.0.0.1:9/authorize?tenant=x&client_id="),
        "{url}"
    );
    let (_, query) = url_query(&url);
    assert_eq!(
        query_value(&query, "scope"),
        Some("contact:user.email:readonly")
    );
}

#[test]
fn dingtalk_sends_the_code_as_auth_code() {
    assert_eq!(Preset::Dingtalk.code_params(), ["authCode", "code"]);
    assert_eq!(Preset::Github.code_params(), ["code"]);
}

#[test]
fn preset_names_round_trip() {
    for preset in [
        Preset::Github,
        Preset::Wecom,
        Preset::Dingtalk,
        Preset::Feishu,
    ] {
        assert_eq!(Preset::parse(preset.name()), Some(Some(preset)));
    }
    assert_eq!(Preset::parse("oidc"), Some(None));
    assert_eq!(Preset::parse("GitHub"), None);
    assert_eq!(Preset::parse(""), None);
}

#[test]
fn error_codes_are_repeated_only_when_harmless() {
    assert_eq!(
        error_code(Some(&json!("bad_verification_code"))),
        "bad_verification_code"
    );
    assert_eq!(error_code(Some(&json!(40029))), "40029");
    assert_eq!(
        error_code(Some(&json!("Invalid.Authentication"))),
        "Invalid.Authentication"
    );
    for hostile in [
        json!("<script>alert(1)</script>"),
        json!("a b"),
        json!("x".repeat(65)),
        json!(""),
        json!(null),
        json!({"code": 1}),
    ] {
        assert_eq!(error_code(Some(&hostile)), "unrecognized", "{hostile}");
    }
    assert_eq!(error_code(None), "unrecognized");
}

#[test]
fn fields_are_bounded_and_without_control_characters() {
    let map = json!({
        "ok": "Zhang San", "long": "x".repeat(257), "nl": "a\nb", "blank": "  ", "num": 5
    });
    let Value::Object(map) = map else { panic!() };
    assert_eq!(text(&map, "ok").as_deref(), Some("Zhang San"));
    for absent in ["long", "nl", "blank", "num", "missing"] {
        assert_eq!(text(&map, absent), None, "{absent}");
    }
    let tokens = json!({"t": "gho_abc", "space": "a b", "crlf": "a\r\nx-evil: 1"});
    let Value::Object(tokens) = tokens else {
        panic!()
    };
    assert_eq!(token(&tokens, "t").as_deref(), Some("gho_abc"));
    assert_eq!(token(&tokens, "space"), None);
    assert_eq!(token(&tokens, "crlf"), None);
}

#[test]
fn statuses_and_details_of_failures() {
    let refused = PresetError::Refused {
        step: Step::Token,
        code: "invalid_grant".into(),
        bad_code: true,
    };
    assert_eq!(refused.status(), 401);
    assert_eq!(
        refused.details(Preset::Feishu),
        "feishu token call failed: error invalid_grant"
    );
    let later = PresetError::Refused {
        step: Step::User,
        code: "99991663".into(),
        bad_code: false,
    };
    assert_eq!(later.status(), 502);
    assert_eq!(PresetError::NotAllowed("x").status(), 403);
    assert_eq!(PresetError::Unreadable(Step::User).status(), 502);
    assert_eq!(PresetError::NoAnswer(Step::Token).status(), 504);
}

#[test]
fn no_answer_is_a_timeout_for_every_preset() {
    for preset in [
        Preset::Github,
        Preset::Wecom,
        Preset::Dingtalk,
        Preset::Feishu,
    ] {
        let config = config(preset);
        let (mut login, _) = start(&config, "code", "verifier", None);
        let step = login.step;
        assert_eq!(
            advance(&config, &mut login, None, b""),
            Err(PresetError::NoAnswer(step))
        );
    }
}

#[test]
fn hostile_answers_are_unreadable_never_a_panic() {
    let hostile: Vec<Vec<u8>> = vec![
        b"".to_vec(),
        b"not json".to_vec(),
        b"[1,2]".to_vec(),
        b"null".to_vec(),
        vec![0xff, 0xfe, b'{'],
        format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)).into_bytes(),
        br#"{"access_token":"a","access_token":"b","accessToken":"a","accessToken":"b"}"#.to_vec(),
        br#"{"errcode":0,"errcode":0,"access_token":"x","expires_in":7200}"#.to_vec(),
    ];
    for preset in [
        Preset::Github,
        Preset::Wecom,
        Preset::Dingtalk,
        Preset::Feishu,
    ] {
        let config = config(preset);
        for body in &hostile {
            for status in [200, 400, 500] {
                let (mut login, _) = start(&config, "code", "verifier", None);
                let result = advance(&config, &mut login, Some(status), body);
                assert!(
                    matches!(
                        result,
                        Err(PresetError::Unreadable(_)) | Err(PresetError::Refused { .. })
                    ),
                    "{preset:?} {status} {:?}: {result:?}",
                    String::from_utf8_lossy(&body[..body.len().min(40)])
                );
            }
        }
    }
}
