//! `oauth2.preset`: defaults per preset, and every field a preset does not take refused by
//! name.

use crate::config::load;
use crate::oauth2::Preset;

fn section(fields: &str) -> String {
    format!(
        r#"{{"oauth2": {{"cluster": "idp", "client_id": "web", "client_secret": {{"inline": "s"}},
            "redirect_uri": "https://chat.test/oauth2/callback",
            "session": {{"secret": {{"inline": "0123456789abcdef0123456789abcdef"}}}}{fields}}}}}"#
    )
}

fn error(fields: &str) -> String {
    match load(section(fields).as_bytes()) {
        Ok(_) => panic!("refused: {fields}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn github_defaults() {
    let config = load(section(r#", "preset": "github""#).as_bytes()).unwrap();
    let oauth2 = config.oauth2.unwrap();
    assert_eq!(oauth2.authority, "github.com");
    assert_eq!(oauth2.scopes, ["read:user", "user:email"]);
    let preset = oauth2.preset.unwrap();
    assert_eq!(preset.preset, Preset::Github);
    assert_eq!(preset.api_cluster, "idp");
    assert_eq!(preset.api_authority, "api.github.com");
    assert_eq!(preset.token_path, "/login/oauth/access_token");
    assert_eq!(preset.userinfo_path, "/user");
    assert_eq!(
        preset.authorization_endpoint,
        "https://github.com/login/oauth/authorize"
    );
    // No ID token, no keys to fetch.
    assert!(config.providers.iter().all(|p| p.remote().is_none()));
    assert!(oauth2.authorization_endpoint.is_none() && oauth2.token_endpoint.is_none());
}

#[test]
fn overrides_keep_only_the_paths_of_the_call_endpoints() {
    let fields = r#", "preset": "github", "authority": "127.0.0.1:9999", "api_cluster": "api",
        "api_authority": "127.0.0.1:9998", "allowed_orgs": ["acme"],
        "authorization_endpoint": "http://127.0.0.1:9999/login/oauth/authorize",
        "token_endpoint": "http://elsewhere.test/login/oauth/access_token",
        "userinfo_endpoint": "http://elsewhere.test/api/user""#;
    let oauth2 = load(section(fields).as_bytes()).unwrap().oauth2.unwrap();
    assert_eq!(oauth2.authority, "127.0.0.1:9999");
    assert_eq!(oauth2.scopes, ["read:user", "user:email", "read:org"]);
    let preset = oauth2.preset.unwrap();
    assert_eq!(preset.api_cluster, "api");
    assert_eq!(preset.api_authority, "127.0.0.1:9998");
    assert_eq!(preset.token_path, "/login/oauth/access_token");
    assert_eq!(preset.userinfo_path, "/api/user");
    assert_eq!(preset.allowed_orgs, ["acme"]);
    assert_eq!(
        preset.authorization_endpoint,
        "http://127.0.0.1:9999/login/oauth/authorize"
    );
}

#[test]
fn each_preset_has_its_hosts_and_scopes() {
    for (preset, authority, scopes) in [
        ("dingtalk", "api.dingtalk.com", vec!["openid", "corpid"]),
        ("feishu", "open.feishu.cn", vec![]),
        ("wecom", "qyapi.weixin.qq.com", vec![]),
    ] {
        let fields = match preset {
            "wecom" => format!(r#", "preset": "{preset}", "agent_id": "1000002""#),
            "dingtalk" => format!(r#", "preset": "{preset}", "allowed_corp_ids": ["ding1"]"#),
            _ => format!(r#", "preset": "{preset}""#),
        };
        let oauth2 = load(section(&fields).as_bytes()).unwrap().oauth2.unwrap();
        assert_eq!(oauth2.authority, authority, "{preset}");
        assert_eq!(oauth2.scopes, scopes, "{preset}");
    }
    // `oidc` is today's flow, unchanged.
    let fields = r#", "preset": "oidc", "authority": "idp", "issuer": "https://idp.test""#;
    let oauth2 = load(section(fields).as_bytes()).unwrap().oauth2.unwrap();
    assert!(oauth2.preset.is_none());
    assert_eq!(oauth2.scopes, ["openid", "profile", "email"]);
}

#[test]
fn fields_a_preset_does_not_take_are_refused_by_name() {
    let cases = [
        (
            r#", "preset": "okta""#,
            "config: oauth2.preset: must be one of",
        ),
        (
            r#", "preset": "github", "issuer": "https://github.com""#,
            "config: oauth2.issuer: is OIDC only",
        ),
        (
            r#", "preset": "feishu", "jwks_uri": "https://x/jwks""#,
            "config: oauth2.jwks_uri: is OIDC only",
        ),
        (
            r#", "preset": "dingtalk", "allowed_corp_ids": ["c"], "end_session_endpoint": "https://x/logout""#,
            "config: oauth2.end_session_endpoint: is OIDC only",
        ),
        (
            r#", "preset": "github", "agent_id": "1""#,
            "config: oauth2.agent_id: is only taken by preset \"wecom\"",
        ),
        (
            r#", "preset": "feishu", "allowed_orgs": ["acme"]"#,
            "config: oauth2.allowed_orgs: is only taken by preset \"github\"",
        ),
        (
            r#", "preset": "wecom""#,
            "config: oauth2.agent_id: is required with preset \"wecom\"",
        ),
        (
            r#", "preset": "github", "allowed_corp_ids": ["ding1"]"#,
            "config: oauth2.allowed_corp_ids: is only taken by preset \"dingtalk\"",
        ),
        (
            r#", "preset": "feishu", "allowed_corp_ids": ["ding1"]"#,
            "config: oauth2.allowed_corp_ids: is only taken by preset \"dingtalk\"",
        ),
        (
            r#", "preset": "dingtalk", "allowed_corp_ids": ["ding1"], "allowed_tenants": ["t"]"#,
            "config: oauth2.allowed_tenants: is only taken by preset \"feishu\"",
        ),
        (
            r#", "preset": "wecom", "agent_id": "1", "allowed_tenants": ["t"]"#,
            "config: oauth2.allowed_tenants: is only taken by preset \"feishu\"",
        ),
        (
            r#", "authority": "idp", "issuer": "https://idp.test", "allowed_corp_ids": ["c"]"#,
            "config: oauth2.allowed_corp_ids: is only taken by a login preset",
        ),
        (
            r#", "authority": "idp", "issuer": "https://idp.test", "allowed_tenants": ["t"]"#,
            "config: oauth2.allowed_tenants: is only taken by a login preset",
        ),
        (
            r#", "preset": "dingtalk""#,
            "config: oauth2.allowed_corp_ids: is required with preset \"dingtalk\"",
        ),
        (
            r#", "preset": "dingtalk", "allowed_corp_ids": []"#,
            "config: oauth2.allowed_corp_ids: must name at least one",
        ),
        (
            r#", "preset": "dingtalk", "allowed_corp_ids": ["ding1", "a b"]"#,
            "config: oauth2.allowed_corp_ids[1]: must be a DingTalk corpId",
        ),
        (
            r#", "preset": "dingtalk", "allowed_corp_ids": [""]"#,
            "config: oauth2.allowed_corp_ids[0]: must be a DingTalk corpId",
        ),
        (
            r#", "preset": "dingtalk", "allowed_corp_ids": ["ding1"], "scopes": ["openid"]"#,
            "config: oauth2.scopes: must include \"openid\" and \"corpid\"",
        ),
        (
            r#", "preset": "dingtalk", "allowed_corp_ids": ["ding1"], "scopes": ["corpid"]"#,
            "config: oauth2.scopes: must include \"openid\" and \"corpid\"",
        ),
        (
            r#", "preset": "feishu", "allowed_tenants": []"#,
            "config: oauth2.allowed_tenants: must name at least one",
        ),
        (
            r#", "preset": "feishu", "allowed_tenants": ["t/1"]"#,
            "config: oauth2.allowed_tenants[0]: must be a Feishu tenant_key",
        ),
        (
            r#", "preset": "wecom", "agent_id": "10x""#,
            "config: oauth2.agent_id: must be digits",
        ),
        (
            r#", "preset": "wecom", "agent_id": "1", "scopes": ["snsapi_base"]"#,
            "config: oauth2.scopes: WeCom's web login takes no scopes",
        ),
        (
            r#", "preset": "github", "allowed_orgs": []"#,
            "config: oauth2.allowed_orgs: must name at least one",
        ),
        (
            r#", "preset": "github", "allowed_orgs": ["a/b"]"#,
            "config: oauth2.allowed_orgs[0]: must be a GitHub organization login",
        ),
        (
            r#", "preset": "github", "userinfo_endpoint": "/user""#,
            "config: oauth2.userinfo_endpoint: must be an absolute http(s) URL",
        ),
        (
            r#", "preset": "github", "api_authority": " ""#,
            "config: oauth2.api_authority: must not be empty",
        ),
        (
            r#", "authority": "idp", "issuer": "https://idp.test", "agent_id": "1""#,
            "config: oauth2.agent_id: is only taken by a login preset",
        ),
        (
            r#", "authority": "idp", "issuer": "https://idp.test", "api_cluster": "x""#,
            "config: oauth2.api_cluster: is only taken by a login preset",
        ),
        (
            r#", "issuer": "https://idp.test""#,
            "config: oauth2.authority: is required",
        ),
        (
            r#", "authority": "idp""#,
            "config: oauth2.issuer: is required",
        ),
        (
            r#", "authority": "idp", "issuer": "https://idp.test", "scopes": ["email"]"#,
            "config: oauth2.scopes: must include \"openid\"",
        ),
    ];
    for (fields, expected) in cases {
        let message = error(fields);
        assert!(
            message.starts_with(expected),
            "{fields}\n  got:      {message}\n  expected: {expected}..."
        );
    }
}

#[test]
fn presets_need_no_openid_scope() {
    let fields = r#", "preset": "github", "scopes": ["read:user"]"#;
    let oauth2 = load(section(fields).as_bytes()).unwrap().oauth2.unwrap();
    assert_eq!(oauth2.scopes, ["read:user"]);
}

#[test]
fn dingtalk_takes_its_allowed_organizations_and_more_scopes() {
    let fields = r#", "preset": "dingtalk", "allowed_corp_ids": ["ding8196cd9a2b2405da24f2f5bc6c1eb6f2", "ding2"],
        "scopes": ["openid", "corpid", "Contact.User.Read"]"#;
    let oauth2 = load(section(fields).as_bytes()).unwrap().oauth2.unwrap();
    assert_eq!(oauth2.scopes, ["openid", "corpid", "Contact.User.Read"]);
    let preset = oauth2.preset.unwrap();
    assert_eq!(
        preset.allowed_corp_ids,
        ["ding8196cd9a2b2405da24f2f5bc6c1eb6f2", "ding2"]
    );
    assert!(preset.allowed_tenants.is_empty());
}

#[test]
fn feishu_tenants_are_optional() {
    let oauth2 = load(section(r#", "preset": "feishu""#).as_bytes())
        .unwrap()
        .oauth2
        .unwrap();
    assert!(oauth2.preset.unwrap().allowed_tenants.is_empty());
    let fields = r#", "preset": "feishu", "allowed_tenants": ["736588c9260f175d"]"#;
    let preset = load(section(fields).as_bytes())
        .unwrap()
        .oauth2
        .unwrap()
        .preset
        .unwrap();
    assert_eq!(preset.allowed_tenants, ["736588c9260f175d"]);
    assert!(preset.allowed_corp_ids.is_empty());
}
