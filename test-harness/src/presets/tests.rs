//! The stand-ins on their own (no Envoy): the documented refusals really happen, so a gateway
//! test that passes through them proves the gateway sent what the provider requires.

use serde_json::{json, Value};

use super::common::{query, StandIn, TEST_USER_PARAM};
use super::{dingtalk, feishu, github, wecom};
use crate::http::{Request, Response};
use crate::oidc::{form_encode, pkce_challenge, query_param};

const CALLBACK: &str = "http://127.0.0.1:9/oauth2/callback";

fn get<S: Send + 'static>(stand_in: &StandIn<S>, target: &str) -> Response {
    Request::get(target).send(stand_in.addr()).expect("answer")
}

/// The authorize step as `user`: the `(code param, value)` the redirect carries.
fn code_from<S: Send + 'static>(stand_in: &StandIn<S>, target: &str, name: &str) -> String {
    let response = get(stand_in, target);
    assert_eq!(response.status, 302, "{}", response.text());
    let location = response.header("location").unwrap().to_string();
    assert!(location.starts_with(CALLBACK), "{location}");
    query_param(&location, name).unwrap_or_else(|| panic!("{name} in {location}"))
}

fn github() -> github::GitHub {
    github::start(
        "cid",
        "secret",
        CALLBACK,
        vec![github::GitHubUser {
            login: "octocat".into(),
            id: 1,
            name: None,
            email: None,
            orgs: vec!["acme".into()],
        }],
    )
}

fn github_token(hub: &github::GitHub, form: &[(&str, &str)], accept_json: bool) -> Response {
    let mut request = Request::post("/login/oauth/access_token")
        .header("content-type", "application/x-www-form-urlencoded")
        .body(form_encode(form));
    if accept_json {
        request = request.header("accept", "application/json");
    }
    request.send(hub.addr()).expect("answer")
}

#[test]
fn github_codes_are_single_use_and_bound_to_the_pkce_challenge() {
    let hub = github();
    let authorize = format!(
        "/login/oauth/authorize?client_id=cid&redirect_uri={}&scope=read:user&state=s&code_challenge={}&code_challenge_method=S256",
        crate::oidc::form_encode_component(CALLBACK),
        pkce_challenge("right-verifier-right-verifier-right-verifier")
    );
    let code = code_from(&hub, &authorize, "code");
    let form = |code: &str, verifier: &str| {
        vec![
            ("client_id", "cid".to_string()),
            ("client_secret", "secret".to_string()),
            ("code", code.to_string()),
            ("code_verifier", verifier.to_string()),
        ]
    };
    let send = |pairs: Vec<(&str, String)>, json: bool| {
        let pairs: Vec<(&str, &str)> = pairs.iter().map(|(k, v)| (*k, v.as_str())).collect();
        github_token(&hub, &pairs, json)
    };
    // A wrong verifier spends the code; errors are HTTP 200.
    let wrong = send(form(&code, "wrong"), true);
    assert_eq!(wrong.status, 200);
    assert_eq!(wrong.json()["error"], "bad_verification_code");
    let again = send(
        form(&code, "right-verifier-right-verifier-right-verifier"),
        true,
    );
    assert_eq!(again.json()["error"], "bad_verification_code");
    // A fresh code with the right verifier; without Accept: application/json, form-encoded.
    let code = code_from(&hub, &authorize, "code");
    let ok = send(
        form(&code, "right-verifier-right-verifier-right-verifier"),
        false,
    );
    let answer = query(&format!("?{}", ok.text()));
    assert_eq!(answer.get("token_type"), Some("bearer"), "{}", ok.text());
    let token = answer.get("access_token").unwrap().to_string();
    // No User-Agent: 403; the orgs need read:org, which this token lacks.
    let user = |ua: bool, path: &str| {
        let mut request = Request::get(path).bearer(&token);
        if ua {
            request = request.header("user-agent", "test");
        }
        request.send(hub.addr()).unwrap()
    };
    assert_eq!(user(false, "/user").status, 403);
    assert_eq!(user(true, "/user").json()["login"], "octocat");
    assert_eq!(user(true, "/user/orgs").status, 403);
    let wrong_secret = github_token(
        &hub,
        &[("client_id", "cid"), ("client_secret", "x"), ("code", "c")],
        true,
    );
    assert_eq!(wrong_secret.json()["error"], "incorrect_client_credentials");
}

#[test]
fn wecom_token_is_reused_while_valid_and_errors_are_errcodes() {
    let wx = wecom::start(
        "corp",
        "1000002",
        "secret",
        "127.0.0.1:9",
        vec![wecom::WeComUser {
            id: "outsider".into(),
            member: false,
            name: "o".into(),
            email: None,
            biz_mail: None,
        }],
    );
    let token = |secret: &str| {
        get(
            &wx,
            &format!("/cgi-bin/gettoken?corpid=corp&corpsecret={secret}"),
        )
        .json()
    };
    assert_eq!(token("wrong")["errcode"], 40001);
    let first = token("secret");
    assert_eq!(first["errcode"], 0);
    assert_eq!(first["access_token"], token("secret")["access_token"]);
    let access_token = first["access_token"].as_str().unwrap().to_string();
    let login = format!(
        "/wwlogin/sso/login?login_type=CorpApp&appid=corp&agentid=1000002&redirect_uri={}&state=s&{TEST_USER_PARAM}=outsider",
        crate::oidc::form_encode_component(CALLBACK)
    );
    let code = code_from(&wx, &login, "code");
    let info = |code: &str| {
        get(
            &wx,
            &format!("/cgi-bin/auth/getuserinfo?access_token={access_token}&code={code}"),
        )
        .json()
    };
    let answer = info(&code);
    assert_eq!(answer["openid"], "outsider", "{answer}");
    assert!(answer.get("userid").is_none());
    assert_eq!(info(&code)["errcode"], 40029, "single use");
    wx.with(wecom::WeComState::expire_tokens);
    assert_eq!(info("any")["errcode"], 42001);
    assert_ne!(token("secret")["access_token"], json!(access_token));
    let wrong_agent = login.replace("agentid=1000002", "agentid=1000003");
    assert_eq!(get(&wx, &wrong_agent).status, 400);
}

#[test]
fn dingtalk_sends_authcode_and_requires_its_parameters() {
    let ding = dingtalk::start(
        "key",
        "secret",
        vec![CALLBACK.into()],
        vec![dingtalk::DingTalkUser {
            union_id: "u1".into(),
            open_id: "o1".into(),
            nick: "n".into(),
            email: None,
            mobile: "1".into(),
            corp_ids: vec!["corp".into()],
        }],
    );
    let auth = format!(
        "/oauth2/auth?redirect_uri={}&response_type=code&client_id=key&scope=openid&state=s&prompt=consent",
        crate::oidc::form_encode_component(CALLBACK)
    );
    assert_eq!(get(&ding, &auth.replace("&prompt=consent", "")).status, 400);
    let code = code_from(&ding, &auth, "authCode");
    let exchange = |secret: &str, code: &str| {
        Request::post("/v1.0/oauth2/userAccessToken")
            .json(
                &json!({"clientId": "key", "clientSecret": secret, "code": code,
                          "grantType": "authorization_code"}),
            )
            .send(ding.addr())
            .unwrap()
    };
    let refused = exchange("wrong", &code);
    assert_eq!(refused.status, 400);
    assert_eq!(refused.json()["code"], "InvalidAuthentication");
    let ok = exchange("secret", &code);
    assert_eq!(ok.status, 200, "{}", ok.text());
    let token = ok.json()["accessToken"].as_str().unwrap().to_string();
    assert_eq!(exchange("secret", &code).status, 400, "single use");
    let me = Request::get("/v1.0/contact/users/me")
        .header("x-acs-dingtalk-access-token", token.as_str())
        .send(ding.addr())
        .unwrap();
    assert_eq!(me.json()["unionId"], "u1");
    assert_eq!(get(&ding, "/v1.0/contact/users/me").status, 401);
}

/// Any DingTalk user can log in; with scope `corpid` the token answer names the organization
/// the user picked (the preselected one if theirs), without it none.
#[test]
fn dingtalk_names_the_picked_organization_only_with_scope_corpid() {
    let user = |union_id: &str, corp_ids: &[&str]| dingtalk::DingTalkUser {
        union_id: union_id.into(),
        open_id: format!("open-{union_id}"),
        nick: "n".into(),
        email: None,
        mobile: "1".into(),
        corp_ids: corp_ids.iter().map(|c| c.to_string()).collect(),
    };
    let ding = dingtalk::start(
        "key",
        "secret",
        vec![CALLBACK.into()],
        vec![
            user("ours", &["corp"]),
            user("both", &["elsewhere", "corp"]),
            user("outsider", &["elsewhere"]),
            user("personal", &[]),
        ],
    );
    let corp_of = |scope: &str, preselect: Option<&str>, who: &str| -> Value {
        let mut auth = format!(
            "/oauth2/auth?redirect_uri={}&response_type=code&client_id=key&scope={}&state=s&prompt=consent&{TEST_USER_PARAM}={who}",
            crate::oidc::form_encode_component(CALLBACK),
            crate::oidc::form_encode_component(scope),
        );
        if let Some(corp) = preselect {
            auth.push_str(&format!("&corpId={corp}"));
        }
        let code = code_from(&ding, &auth, "authCode");
        let answer = Request::post("/v1.0/oauth2/userAccessToken")
            .json(
                &json!({"clientId": "key", "clientSecret": "secret", "code": code,
                          "grantType": "authorization_code"}),
            )
            .send(ding.addr())
            .unwrap()
            .json();
        assert!(answer["accessToken"].is_string(), "{answer}");
        answer.get("corpId").cloned().unwrap_or(Value::Null)
    };
    assert_eq!(corp_of("openid", None, "ours"), Value::Null);
    assert_eq!(corp_of("openid", Some("corp"), "ours"), Value::Null);
    assert_eq!(corp_of("openid corpid", None, "ours"), json!("corp"));
    assert_eq!(corp_of("openid corpid", None, "both"), json!("elsewhere"));
    assert_eq!(
        corp_of("openid corpid", Some("corp"), "both"),
        json!("corp")
    );
    // Preselecting an organization the user is not in does not put them in it.
    assert_eq!(
        corp_of("openid corpid", Some("corp"), "outsider"),
        json!("elsewhere")
    );
    assert_eq!(
        corp_of("openid corpid", Some("corp"), "personal"),
        Value::Null
    );
}

#[test]
fn feishu_checks_redirect_uri_and_verifier() {
    let fs = feishu::start(
        "cli_x",
        "secret",
        vec![CALLBACK.into()],
        vec![feishu::FeishuUser {
            open_id: "ou_1".into(),
            union_id: "on_1".into(),
            user_id: None,
            name: "n".into(),
            en_name: "n".into(),
            email: None,
            enterprise_email: None,
            tenant_key: "736588c9260f175d".into(),
        }],
    );
    let verifier = "feishu-verifier-feishu-verifier-feishu-verifier";
    let authorize = format!(
        "/open-apis/authen/v1/authorize?client_id=cli_x&redirect_uri={}&scope=offline_access&state=s&code_challenge={}&code_challenge_method=S256",
        crate::oidc::form_encode_component(CALLBACK),
        pkce_challenge(verifier)
    );
    let exchange = |code: &str, redirect_uri: &str, verifier: &str| -> (u16, Value) {
        let response = Request::post("/open-apis/authen/v2/oauth/token")
            .json(
                &json!({"grant_type": "authorization_code", "client_id": "cli_x",
                "client_secret": "secret", "code": code, "redirect_uri": redirect_uri,
                "code_verifier": verifier}),
            )
            .send(fs.addr())
            .unwrap();
        (response.status, response.json())
    };
    let code = code_from(&fs, &authorize, "code");
    let (status, body) = exchange(&code, "http://127.0.0.1:9/other", verifier);
    assert_eq!((status, body["code"].clone()), (400, json!(20071)));
    let code = code_from(&fs, &authorize, "code");
    let (status, body) = exchange(&code, CALLBACK, "not-the-verifier");
    assert_eq!(
        (status, body["error"].clone()),
        (400, json!("invalid_grant"))
    );
    let code = code_from(&fs, &authorize, "code");
    let (status, body) = exchange(&code, CALLBACK, verifier);
    assert_eq!(status, 200, "{body}");
    assert!(body["refresh_token"].is_string(), "offline_access: {body}");
    let info = Request::get("/open-apis/authen/v1/user_info")
        .bearer(body["access_token"].as_str().unwrap())
        .send(fs.addr())
        .unwrap()
        .json();
    assert_eq!(info["data"]["tenant_key"], "736588c9260f175d", "{info}");
    let (_, body) = exchange(&code, CALLBACK, verifier);
    assert_eq!(body["code"], 20065, "single use");
}

#[test]
fn github_lists_orgs_30_per_page_unless_asked() {
    let hub = github::start(
        "cid",
        "secret",
        CALLBACK,
        vec![github::GitHubUser {
            login: "busy".into(),
            id: 2,
            name: None,
            email: None,
            orgs: (0..40).map(|i| format!("org-{i}")).collect(),
        }],
    );
    let authorize = format!(
        "/login/oauth/authorize?client_id=cid&redirect_uri={}&scope=read:org",
        crate::oidc::form_encode_component(CALLBACK)
    );
    let code = code_from(&hub, &authorize, "code");
    let token = github_token(
        &hub,
        &[
            ("client_id", "cid"),
            ("client_secret", "secret"),
            ("code", &code),
        ],
        true,
    )
    .json()["access_token"]
        .as_str()
        .unwrap()
        .to_string();
    let orgs = |target: &str| {
        Request::get(target)
            .bearer(&token)
            .header("user-agent", "test")
            .send(hub.addr())
            .unwrap()
    };
    let first = orgs("/user/orgs");
    assert_eq!(first.json().as_array().unwrap().len(), 30);
    assert!(first
        .header("link")
        .unwrap()
        .contains("page=2>; rel=\"next\""));
    let all = orgs("/user/orgs?per_page=100");
    assert_eq!(all.json().as_array().unwrap().len(), 40);
    assert!(all.header("link").is_none());
}
