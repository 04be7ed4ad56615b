use super::*;
use crate::config::load;
use crate::pipeline::requirement;

fn t(source: &str) -> Template {
    Template::parse(source).unwrap()
}

#[test]
fn templates_match_one_segment_per_variable_and_any_rest() {
    let template = t("/v1/history/{team}/**");
    assert_eq!(
        template.captures("/v1/history/team-a"),
        Some(vec![("team", "team-a")])
    );
    assert_eq!(
        template.captures("/v1/history/team-a/"),
        Some(vec![("team", "team-a")])
    );
    assert_eq!(
        template.captures("/v1/history/team-a/x/y"),
        Some(vec![("team", "team-a")])
    );
    assert_eq!(template.captures("/v1/history"), None);
    assert_eq!(template.captures("/v1/history/"), None);
    assert_eq!(
        template.captures("/v1/History/team-a"),
        None,
        "case-sensitive"
    );
    assert_eq!(template.captures("/v2/history/team-a"), None);

    let exact = t("/v1/models/{id}");
    assert_eq!(
        exact.captures("/v1/models/qwen3"),
        Some(vec![("id", "qwen3")])
    );
    assert_eq!(
        exact.captures("/v1/models/qwen3/extra"),
        None,
        "no rest without **"
    );
    let two = t("/orgs/{org}/teams/{team}");
    assert_eq!(
        two.captures("/orgs/acme/teams/red"),
        Some(vec![("org", "acme"), ("team", "red")])
    );
    let root = t("/");
    assert_eq!(root.captures("/"), Some(vec![]));
    assert_eq!(root.captures("/x"), None);
    assert_eq!(t("/**").captures("/anything/at/all"), Some(vec![]));
}

#[test]
fn malformed_templates_are_refused() {
    for bad in [
        "v1/x",
        "/v1/**/x",
        "/v1/{}",
        "/v1/{1team}",
        "/v1/{team}/{team}",
        "/v1//x",
        "/v1/../x",
        "/v1/a{b}",
        "/v1/x*",
        "/v1/%2F",
        "/v1/{te-am}",
    ] {
        assert!(Template::parse(bad).is_err(), "{bad}");
    }
}

fn rules(json: &str) -> crate::config::GatewayConfig {
    let text = format!(
        r#"{{"providers": [{{"name": "p", "issuer": "i", "audiences": ["a"],
             "hs256_secret": {{"inline": "0123456789abcdef0123456789abcdef"}}}}],
            "rules": {json}, "default_rule": {{"auth": "required", "scopes": ["default"]}}}}"#
    );
    load(text.as_bytes()).unwrap()
}

#[test]
fn first_matching_rule_decides_then_the_default() {
    let cfg = rules(
        r#"[
        {"match": {"prefix": "/healthz"}, "auth": "none"},
        {"match": {"path": "/v1/chat/completions", "methods": ["post"]}, "scopes": ["chat:write"]},
        {"match": {"prefix": "/v1/"}, "scopes": ["chat:read"]},
        {"match": {"template": "/v2/history/{team}/**"}, "auth": "optional", "scopes": ["history:{team}", "chat:read"]}
    ]"#,
    );
    let r = |method: &str, path: &str| requirement(&cfg, method, path);
    assert_eq!(r("GET", "/healthz").auth, AuthMode::None);
    assert_eq!(r("GET", "/healthz/deep").rule, Some(0));
    let chat = r("POST", "/v1/chat/completions");
    assert_eq!(
        (chat.rule, chat.scopes.clone()),
        (Some(1), vec!["chat:write".to_string()])
    );
    assert_eq!(
        r("POST", "/v1/chat/completions/").rule,
        Some(1),
        "trailing slash: same rule"
    );
    assert_eq!(
        r("GET", "/v1/chat/completions").rule,
        Some(2),
        "method differs: next rule"
    );
    assert_eq!(
        r("post", "/v1/chat/completions").rule,
        Some(2),
        "methods are case-sensitive"
    );
    assert_eq!(r("GET", "/v1/models").scopes, vec!["chat:read"]);
    let history = r("GET", "/v2/history/team-a/2024/05");
    assert_eq!(history.auth, AuthMode::Optional);
    assert_eq!(history.scopes, vec!["history:team-a", "chat:read"]);
    let fallback = r("GET", "/V1/models");
    assert_eq!(
        (fallback.rule, fallback.scopes),
        (None, vec!["default".to_string()])
    );
    assert_eq!(r("DELETE", "/other").auth, AuthMode::Required);
}

#[test]
fn template_scopes_substitute_the_captured_segment() {
    let cfg = rules(
        r#"[{"match": {"template": "/orgs/{org}/teams/{team}/**"}, "scopes": ["org:{org}", "{org}:{team}:read"]}]"#,
    );
    assert_eq!(
        requirement(&cfg, "GET", "/orgs/acme/teams/red/members").scopes,
        vec!["org:acme", "acme:red:read"]
    );
}

#[test]
fn shadowed_rules_are_detected() {
    let m = |path: PathMatch, methods: Option<&[&str]>| RouteMatch {
        path,
        methods: methods.map(|ms| ms.iter().map(|m| m.to_string()).collect()),
    };
    let prefix = |p: &str| PathMatch::Prefix(p.into());
    let exact = |p: &str| PathMatch::Exact(p.into());
    let template = |p: &str| PathMatch::Template(t(p));
    assert!(m(prefix("/v1/"), None).shadows(&m(exact("/v1/chat"), Some(&["POST"]))));
    assert!(m(prefix("/v1"), None).shadows(&m(prefix("/v1/models"), None)));
    assert!(m(prefix("/v1/"), None).shadows(&m(template("/v1/history/{team}/**"), None)));
    assert!(!m(prefix("/v1/history/t"), None).shadows(&m(template("/v1/history/{team}"), None)));
    assert!(m(exact("/a"), Some(&["GET", "POST"])).shadows(&m(exact("/a"), Some(&["POST"]))));
    assert!(!m(exact("/a"), Some(&["GET"])).shadows(&m(exact("/a"), Some(&["POST"]))));
    assert!(!m(exact("/a"), Some(&["GET"])).shadows(&m(exact("/a"), None)));
    assert!(m(template("/v1/models/{id}"), None).shadows(&m(exact("/v1/models/x"), None)));
    assert!(!m(exact("/v1/models/x"), None).shadows(&m(template("/v1/models/{id}"), None)));
}

#[test]
fn scope_patterns_need_their_variables() {
    let template = t("/h/{team}");
    assert!(ScopePattern::parse("history:{team}", Some(&template)).is_ok());
    assert!(ScopePattern::parse("history:{org}", Some(&template)).is_err());
    assert!(ScopePattern::parse("history:{team}", None).is_err());
    assert!(ScopePattern::parse("history:{team", Some(&template)).is_err());
    assert!(ScopePattern::parse("history:team}", Some(&template)).is_err());
    let plain = ScopePattern::parse("chat:read", None).unwrap();
    assert_eq!(plain.resolve(&vec![]), "chat:read");
}

#[test]
fn scope_patterns_know_which_scopes_they_can_require() {
    let template = t("/h/{team}/**");
    let pattern = ScopePattern::parse("history:{team}", Some(&template)).unwrap();
    assert!(pattern.could_require("history:team-a"));
    assert!(!pattern.could_require("history:"));
    assert!(!pattern.could_require("chat:read"));
    let plain = ScopePattern::parse("chat:read", None).unwrap();
    assert!(plain.could_require("chat:read"));
    assert!(!plain.could_require("chat:read2"));
}
