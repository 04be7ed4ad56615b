use super::*;
use crate::jwt::{Algorithm, KeySource};

const SECRET: &str = "0123456789abcdef0123456789abcdef";

/// A valid HS256 provider, to splice into documents.
fn hs_provider() -> String {
    format!(
        r#"{{"name": "sso", "issuer": "https://idp.test", "audiences": ["gw"],
            "hs256_secret": {{"inline": "{SECRET}"}}}}"#
    )
}

fn env(name: &str) -> Option<String> {
    match name {
        "JWT_SECRET" => Some(SECRET.to_string()),
        "SHORT_SECRET" => Some("too-short".to_string()),
        _ => None,
    }
}

fn load_str(text: &str) -> Result<GatewayConfig, ConfigError> {
    load_with_env(text.as_bytes(), &env)
}

/// A document with one HS256 provider and the given other sections.
fn with_provider(sections: &str) -> String {
    if sections.is_empty() {
        format!(r#"{{"providers": [{}]}}"#, hs_provider())
    } else {
        format!(r#"{{"providers": [{}], {sections}}}"#, hs_provider())
    }
}

fn error(text: &str) -> String {
    match load_str(text) {
        Ok(_) => panic!("config should be refused: {text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn empty_document_is_refused_because_the_default_rule_needs_a_provider() {
    for text in ["", "  \n", "{}"] {
        assert_eq!(
            error(text),
            "config: providers: at least one provider is needed: default_rule.auth is \"required\""
        );
    }
}

#[test]
fn optional_auth_needs_a_provider_too() {
    assert_eq!(
        error(r#"{"default_rule": {"auth": "optional"}}"#),
        "config: providers: at least one provider is needed: default_rule.auth is \"optional\""
    );
    assert!(load_str(r#"{"default_rule": {"auth": "none"}}"#).is_ok());
}

#[test]
fn defaults_fail_closed() {
    {
        let cfg = load_str(&with_provider("")).unwrap();
        assert_eq!(cfg.default_rule.auth, AuthMode::Required);
        assert_eq!(cfg.token.header.as_deref(), Some("authorization"));
        assert_eq!(cfg.token.cookie, None);
        assert_eq!(cfg.forward.user_header, "x-user-id");
        assert_eq!(cfg.forward.scopes_header, "x-user-scopes");
        assert!(!cfg.forward.strip_authorization);
        assert_eq!(cfg.limits.max_request_body_bytes, 10 * 1024 * 1024);
        assert_eq!(cfg.limits.max_token_bytes, 8192);
    }
}

#[test]
fn full_document_of_this_release_is_compiled() {
    let cfg = load_str(&with_provider(
        r#"
            "token": {"header": "Authorization", "cookie": "gw_session", "realm": "corp"},
            "default_rule": {"auth": "optional", "scopes": ["chat:read", "chat:read", "b"]},
            "forward": {"user_header": "X-Caller", "scopes_header": "x-caller-scopes",
                        "strip_authorization": true},
            "limits": {"max_request_body_bytes": 1024, "max_token_bytes": 4096}
        "#,
    ))
    .unwrap();
    assert_eq!(cfg.token.header.as_deref(), Some("authorization"));
    assert_eq!(cfg.token.cookie.as_deref(), Some("gw_session"));
    assert_eq!(cfg.token.realm, "corp");
    assert_eq!(
        cfg.default_rule,
        Rule {
            auth: AuthMode::Optional,
            scopes: vec!["chat:read".into(), "b".into()]
        }
    );
    assert_eq!(cfg.forward.user_header, "x-caller");
    assert!(cfg.forward.strip_authorization);
    assert_eq!(cfg.limits.max_request_body_bytes, 1024);
    assert_eq!(cfg.limits.max_token_bytes, 4096);
}

#[test]
fn header_null_disables_header_tokens_but_one_source_is_needed() {
    let cfg = load_str(&with_provider(
        r#""token": {"header": null, "cookie": "s"}"#,
    ))
    .unwrap();
    assert_eq!(cfg.token.header, None);
    assert_eq!(
        error(&with_provider(r#""token": {"header": null}"#)),
        "config: token: needs a header or a cookie to read tokens from"
    );
}

/// Each invalid document and the start of the one line that must name it.
#[test]
fn invalid_documents_name_the_field() {
    let cases: &[(&str, &str)] = &[
        ("not json", "config: (document): must be a JSON object"),
        ("{\"token\": ", "config: (document): is not valid JSON"),
        ("[1,2]", "config: (document): must be a JSON object"),
        ("{} {}", "config: (document): is not valid JSON"),
        (r#"{"tokn": {}}"#, "config: tokn: unknown field"),
        (
            r#"{"providers": []}"#,
            "config: providers: at least one provider is needed",
        ),
        (r#"{"telemetry": {}}"#, "config: telemetry: unknown field"),
        (
            r#"{"token": {"heder": "x"}}"#,
            "config: token.heder: unknown field",
        ),
        (
            r#"{"token": {"header": 5}}"#,
            "config: token.header: invalid type",
        ),
        (
            r#"{"token": {"header": ""}}"#,
            "config: token.header: must not be empty",
        ),
        (
            r#"{"token": {"header": ":path"}}"#,
            "config: token.header: pseudo-headers",
        ),
        (
            r#"{"token": {"cookie": "a;b"}}"#,
            "config: token.cookie: `a;b` is not a valid",
        ),
        (
            r#"{"token": {"realm": "a\"b"}}"#,
            "config: token.realm: must be printable",
        ),
        (
            r#"{"default_rule": {"auth": "maybe"}}"#,
            "config: default_rule.auth: unknown variant",
        ),
        (
            r#"{"default_rule": {"scopes": "chat"}}"#,
            "config: default_rule.scopes: invalid type",
        ),
        (
            r#"{"default_rule": {"scopes": ["ok", "a b"]}}"#,
            "config: default_rule.scopes[1]: ",
        ),
        (
            r#"{"default_rule": {"scopes": [""]}}"#,
            "config: default_rule.scopes[0]: must not be empty",
        ),
        (
            r#"{"default_rule": {"auth": "none", "scopes": ["x"]}}"#,
            "config: default_rule.scopes: scopes cannot be checked",
        ),
        (
            r#"{"default_rule": {"auth": "none", "extra": 1}}"#,
            "config: default_rule.extra: unknown field",
        ),
        (
            r#"{"forward": {"user_header": "x user"}}"#,
            "config: forward.user_header: `x user`",
        ),
        (
            r#"{"forward": {"user_header": "Host"}}"#,
            "config: forward.user_header: `host` is reserved",
        ),
        (
            r#"{"forward": {"user_header": "x-a", "scopes_header": "X-A"}}"#,
            "config: forward.scopes_header: must differ",
        ),
        (
            r#"{"token": {"header": "x-token"}, "forward": {"user_header": "x-token"}}"#,
            "config: forward.user_header: `x-token` is reserved",
        ),
        (
            r#"{"forward": {"strip_authorization": "yes"}}"#,
            "config: forward.strip_authorization: invalid type",
        ),
        (
            r#"{"limits": {"max_request_body_bytes": 0}}"#,
            "config: limits.max_request_body_bytes: must be between",
        ),
        (
            r#"{"limits": {"max_request_body_bytes": -1}}"#,
            "config: limits.max_request_body_bytes: invalid value",
        ),
        (
            r#"{"limits": {"max_request_body_bytes": 1.5}}"#,
            "config: limits.max_request_body_bytes: invalid type",
        ),
        (
            r#"{"limits": {"max_request_body_bytes": 99999999999999999999999}}"#,
            "config: limits.max_request_body_bytes: invalid type",
        ),
        (
            r#"{"limits": {"max_token_bytes": 10}}"#,
            "config: limits.max_token_bytes: must be between 64 and 65536",
        ),
        (
            r#"{"limits": {"max_token_bytes": "8192"}}"#,
            "config: limits.max_token_bytes: invalid type",
        ),
        (
            r#"{"limits": {"max_token_bytes": 100, "max_token_bytes": 200}}"#,
            "config: limits.max_token_bytes: duplicate field",
        ),
        (r#"{"limits": null}"#, "config: limits: invalid type: null"),
    ];
    for (text, expected) in cases {
        // Cases about other sections get a provider, so they fail for their own reason.
        let text = if text.starts_with("{\"") && !text.starts_with("{\"providers\"") {
            text.replacen('{', &format!("{{\"providers\": [{}], ", hs_provider()), 1)
        } else {
            text.to_string()
        };
        let text = &text;
        let message = error(text);
        assert!(
            message.starts_with(expected),
            "for {text}\n  got:      {message}\n  expected: {expected}..."
        );
        assert!(!message.contains('\n'), "one line only: {message:?}");
    }
}

#[test]
fn non_utf8_is_refused() {
    let err = load(&[0x7b, 0xff, 0x7d]).unwrap_err();
    assert_eq!(err.to_string(), "config: (document): is not valid UTF-8");
}

#[test]
fn deeply_nested_garbage_does_not_panic() {
    let deep = "[".repeat(100_000);
    assert!(load_str(&deep).is_err());
    let deep_obj = format!("{}{}", r#"{"token":"#.repeat(10_000), "}".repeat(10_000));
    assert!(load_str(&deep_obj).is_err());
}

#[test]
fn providers_compile_with_defaults() {
    let cfg = load_str(&with_provider("")).unwrap();
    let p = &cfg.providers[0];
    assert_eq!(p.name, "sso");
    assert_eq!(p.algorithms, vec![Algorithm::HS256]);
    assert_eq!(p.clock_skew_s, 30);
    assert_eq!(p.scope_claim, "scope");
    assert!(p.hs256.is_some());
    assert!(matches!(p.keys, KeySource::None));
}

#[test]
fn remote_jwks_defaults_and_env_secrets() {
    let cfg = load_str(
        r#"{"providers": [{"name": "kc", "issuer": "https://kc", "audiences": ["a", "b"],
             "algorithms": ["RS256", "HS256"], "hs256_secret": {"env": "JWT_SECRET"},
             "jwks": {"remote": {"cluster": "idp", "authority": "kc", "path": "/certs"}}}]}"#,
    )
    .unwrap();
    let p = &cfg.providers[0];
    assert_eq!(p.algorithms, vec![Algorithm::RS256, Algorithm::HS256]);
    let remote = p.remote().unwrap();
    assert_eq!(remote.cache_ttl_s, 600);
    assert_eq!(remote.min_refresh_interval_s, 30);
    assert_eq!(remote.timeout_ms, 2000);
    // No algorithms given: what the keys can verify.
    let cfg = load_str(
        r#"{"providers": [{"name": "kc", "issuer": "https://kc", "audiences": ["a"],
             "jwks": {"remote": {"cluster": "idp", "authority": "kc", "path": "/certs"}}}]}"#,
    )
    .unwrap();
    assert_eq!(
        cfg.providers[0].algorithms,
        vec![Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA]
    );
}

#[test]
fn secrets_never_appear_in_errors_or_debug_output() {
    let text = r#"{"providers": [{"name": "p", "issuer": "i", "audiences": ["a"],
                  "hs256_secret": {"inline": "short-but-secret"}}]}"#;
    let message = error(text);
    assert!(message.starts_with("config: providers[0].hs256_secret: HS256 secret is 16 bytes"));
    assert!(!message.contains("short-but-secret"));
    let cfg = load_str(&with_provider("")).unwrap();
    assert!(!format!("{cfg:?}").contains(SECRET));
}

#[test]
fn invalid_providers_name_the_field() {
    let remote = r#""jwks": {"remote": {"cluster": "idp", "authority": "kc", "path": "/certs"}}"#;
    let p = |fields: &str| format!(r#"{{"providers": [{{{fields}}}]}}"#);
    let base = r#""name": "p", "issuer": "https://i", "audiences": ["a"]"#;
    let cases: Vec<(String, &str)> = vec![
        (
            p(r#""issuer": "i", "audiences": ["a"], "hs256_secret": {"env": "JWT_SECRET"}"#),
            "config: providers[0].name: is required",
        ),
        (
            p(r#""name": "p", "audiences": ["a"]"#),
            "config: providers[0].issuer: is required",
        ),
        (
            p(r#""name": "p", "issuer": "i""#),
            "config: providers[0].audiences: is required",
        ),
        (
            p(&format!("{base}, \"audiences\": []")),
            "config: providers[0].audiences: duplicate field",
        ),
        (
            p(
                r#""name": "p", "issuer": "i", "audiences": [], "hs256_secret": {"env": "JWT_SECRET"}"#,
            ),
            "config: providers[0].audiences: must not be empty",
        ),
        (
            p(
                r#""name": "p", "issuer": "i", "audiences": [""], "hs256_secret": {"env": "JWT_SECRET"}"#,
            ),
            "config: providers[0].audiences[0]: must not be empty",
        ),
        (p(base), "config: providers[0]: needs hs256_secret or jwks"),
        (
            p(&format!(r#"{base}, "algorithms": ["none"], {remote}"#)),
            "config: providers[0].algorithms[0]: \"none\" is never allowed",
        ),
        (
            p(&format!(r#"{base}, "algorithms": ["NONE"], {remote}"#)),
            "config: providers[0].algorithms[0]: \"none\" is never allowed",
        ),
        (
            p(&format!(r#"{base}, "algorithms": ["RS512"], {remote}"#)),
            "config: providers[0].algorithms[0]: unsupported algorithm `RS512`",
        ),
        (
            p(&format!(r#"{base}, "algorithms": [], {remote}"#)),
            "config: providers[0].algorithms: must not be empty",
        ),
        (
            p(&format!(r#"{base}, "algorithms": ["HS256"], {remote}"#)),
            "config: providers[0].algorithms[0]: HS256 needs hs256_secret",
        ),
        (
            p(&format!(
                r#"{base}, "algorithms": ["RS256"], "hs256_secret": {{"env": "JWT_SECRET"}}"#
            )),
            "config: providers[0].algorithms[0]: RS256 needs jwks",
        ),
        (
            p(&format!(
                r#"{base}, "algorithms": ["RS256"], "hs256_secret": {{"env": "JWT_SECRET"}}, {remote}"#
            )),
            "config: providers[0].hs256_secret: is given but HS256 is not in algorithms",
        ),
        (
            p(&format!(
                r#"{base}, "hs256_secret": {{"env": "SHORT_SECRET"}}"#
            )),
            "config: providers[0].hs256_secret: HS256 secret is 9 bytes; at least 32",
        ),
        (
            p(&format!(r#"{base}, "hs256_secret": {{"env": "NOT_SET"}}"#)),
            "config: providers[0].hs256_secret.env: host variable `NOT_SET` is not set",
        ),
        (
            p(&format!(r#"{base}, "hs256_secret": {{}}"#)),
            "config: providers[0].hs256_secret: must have exactly one of \"env\" and \"inline\"",
        ),
        (
            p(&format!(
                r#"{base}, "hs256_secret": {{"env": "JWT_SECRET", "inline": "x"}}"#
            )),
            "config: providers[0].hs256_secret: must have exactly one",
        ),
        (
            p(&format!(r#"{base}, "hs256_secret": {{"file": "/etc/x"}}"#)),
            "config: providers[0].hs256_secret.file: unknown field",
        ),
        (
            p(&format!(r#"{base}, "jwks": {{}}"#)),
            "config: providers[0].jwks: must have exactly one of \"inline\" and \"remote\"",
        ),
        (
            p(&format!(r#"{base}, "jwks": {{"inline": {{"keys": []}}}}"#)),
            "config: providers[0].jwks.inline: ",
        ),
        (
            p(&format!(r#"{base}, "jwks": {{"inline": [1]}}"#)),
            "config: providers[0].jwks.inline: ",
        ),
        (
            p(&format!(
                r#"{base}, "jwks": {{"remote": {{"cluster": "idp", "authority": "kc"}}}}"#
            )),
            "config: providers[0].jwks.remote.path: is required",
        ),
        (
            p(&format!(
                r#"{base}, "jwks": {{"remote": {{"cluster": "", "authority": "kc", "path": "/x"}}}}"#
            )),
            "config: providers[0].jwks.remote.cluster: must not be empty",
        ),
        (
            p(&format!(
                r#"{base}, "jwks": {{"remote": {{"cluster": "idp", "authority": "kc", "path": "x"}}}}"#
            )),
            "config: providers[0].jwks.remote.path: must be an absolute path",
        ),
        (
            p(&format!(
                r#"{base}, "jwks": {{"remote": {{"cluster": "idp", "authority": "kc", "path": "/x", "cache_ttl_s": 0}}}}"#
            )),
            "config: providers[0].jwks.remote.cache_ttl_s: must be between 1 and 86400",
        ),
        (
            p(&format!(
                r#"{base}, "jwks": {{"remote": {{"cluster": "idp", "authority": "kc", "path": "/x", "timeout_ms": 5}}}}"#
            )),
            "config: providers[0].jwks.remote.timeout_ms: must be between 100 and 60000",
        ),
        (
            p(&format!(
                r#"{base}, "jwks": {{"remote": {{"cluster": "idp", "authority": "kc", "path": "/x", "min_refresh_interval_s": 0}}}}"#
            )),
            "config: providers[0].jwks.remote.min_refresh_interval_s: must be between 1",
        ),
        (
            p(&format!(r#"{base}, "clock_skew_s": 301, {remote}"#)),
            "config: providers[0].clock_skew_s: must be at most 300",
        ),
        (
            p(&format!(r#"{base}, "clock_skew_s": -1, {remote}"#)),
            "config: providers[0].clock_skew_s: invalid value",
        ),
        (
            p(&format!(r#"{base}, "scope_claim": "", {remote}"#)),
            "config: providers[0].scope_claim: must not be empty",
        ),
        (
            p(&format!(
                r#""name": "p q", "issuer": "i", "audiences": ["a"], {remote}"#
            )),
            "config: providers[0].name: must be 1 to 64 characters",
        ),
        (
            format!(r#"{{"providers": [{}, {}]}}"#, hs_provider(), hs_provider()),
            "config: providers[1].name: must be unique",
        ),
        (
            format!(
                r#"{{"providers": [{}, {}]}}"#,
                hs_provider(),
                hs_provider().replace("\"sso\"", "\"other\"")
            ),
            "config: providers[1].issuer: must be unique",
        ),
    ];
    for (text, expected) in &cases {
        let message = error(text);
        assert!(
            message.starts_with(expected),
            "for {text}\n  got:      {message}\n  expected: {expected}..."
        );
    }
}

#[test]
fn invalid_rules_name_the_field() {
    let cases: &[(&str, &str)] = &[
        (r#"[{"auth": "none"}]"#, "config: rules[0].match: is required"),
        (r#"[{"match": {}}]"#, "config: rules[0].match: needs exactly one of"),
        (r#"[{"match": {"path": "/a", "prefix": "/a"}}]"#, "config: rules[0].match: needs exactly one of"),
        (r#"[{"match": {"path": "a"}}]"#, "config: rules[0].match.path: must be a clean absolute path"),
        (r#"[{"match": {"path": "/a/../b"}}]"#, "config: rules[0].match.path: must be a clean absolute path"),
        (r#"[{"match": {"path": "/a?x=1"}}]"#, "config: rules[0].match.path: must be a clean absolute path"),
        (r#"[{"match": {"prefix": "v1"}}]"#, "config: rules[0].match.prefix: must start with /"),
        (r#"[{"match": {"template": "/v1/{x}/{x}"}}]"#, "config: rules[0].match.template: variable `{x}` is used twice"),
        (r#"[{"match": {"template": "/v1/**/x"}}]"#, "config: rules[0].match.template: `**` may only be the last segment"),
        (r#"[{"match": {"path": "/a", "methods": []}}]"#, "config: rules[0].match.methods: must not be empty"),
        (r#"[{"match": {"path": "/a", "methods": ["GE T"]}}]"#, "config: rules[0].match.methods[0]: is not an HTTP method"),
        (r#"[{"match": {"path": "/a", "verbs": ["GET"]}}]"#, "config: rules[0].match.verbs: unknown field"),
        (r#"[{"match": {"path": "/a"}, "scopes": ["history:{team}"]}]"#, "config: rules[0].scopes[0]: uses `{team}` but the rule's match has no such template variable"),
        (r#"[{"match": {"template": "/h/{team}"}, "scopes": ["history:{org}"]}]"#, "config: rules[0].scopes[0]: uses `{org}`"),
        (r#"[{"match": {"path": "/a"}, "scopes": ["a b"]}]"#, "config: rules[0].scopes[0]: `a b` is not a valid scope"),
        (r#"[{"match": {"path": "/a"}, "auth": "none", "scopes": ["x"]}]"#, "config: rules[0].scopes: scopes cannot be checked"),
        (r#"[{"match": {"path": "/a"}, "auth": "sometimes"}]"#, "config: rules[0].auth: unknown variant"),
        (r#"[{"match": {"prefix": "/v1/"}}, {"match": {"path": "/v1/chat"}}]"#, "config: rules[1].match: unreachable: rules[0] matches every request it would match"),
        (r#"[{"match": {"path": "/a"}}, {"match": {"path": "/a/", "methods": ["GET"]}}]"#, "config: rules[1].match: unreachable: rules[0]"),
        (r#"[{"match": {"template": "/v1/{a}/x"}}, {"match": {"template": "/v1/{b}/x"}}]"#, "config: rules[1].match: unreachable: rules[0]"),
        (r#"[{"match": {"template": "/v1/history/{team}/**"}}, {"match": {"prefix": "/v1/history/admin/"}, "auth": "none"}]"#, "config: rules[1].match: unreachable: rules[0]"),
    ];
    for (rules, expected) in cases {
        let text = with_provider(&format!(r#""rules": {rules}"#));
        let message = error(&text);
        assert!(
            message.starts_with(expected),
            "for {rules}\n  got:      {message}\n  expected: {expected}..."
        );
    }
}

/// The example rules of the plugin-config spec (also `route_rules`' and close to `envoy.yaml`'s).
const SPEC_RULES: &str = r#"
    {"match": {"prefix": "/healthz"}, "auth": "none"},
    {"match": {"path": "/v1/chat/completions", "methods": ["POST"]}, "scopes": ["chat:write"]},
    {"match": {"prefix": "/v1/models"}, "scopes": ["chat:read"]},
    {"match": {"template": "/v1/history/{team}/**"}, "scopes": ["history:{team}"]}"#;

#[test]
fn shadowed_rules_are_refused_naming_the_rule_that_shadows_them() {
    let cases: &[(&str, &str)] = &[
        // exact after exact, with methods
        (
            r#"{"match": {"path": "/a"}}, {"match": {"path": "/a"}, "auth": "none"}"#,
            "rules[1].match: unreachable: rules[0]",
        ),
        (
            r#"{"match": {"path": "/a", "methods": ["GET", "POST"]}}, {"match": {"path": "/a/", "methods": ["post"]}}"#,
            "rules[1].match: unreachable: rules[0]",
        ),
        // exact, prefix and template under a prefix
        (
            r#"{"match": {"prefix": "/v1/"}}, {"match": {"path": "/v1/chat", "methods": ["POST"]}}"#,
            "rules[1].match: unreachable: rules[0]",
        ),
        (
            r#"{"match": {"prefix": "/v1"}}, {"match": {"prefix": "/v1/models"}}"#,
            "rules[1].match: unreachable: rules[0]",
        ),
        (
            r#"{"match": {"prefix": "/v1/"}}, {"match": {"template": "/v1/history/{team}/**"}}"#,
            "rules[1].match: unreachable: rules[0]",
        ),
        (
            r#"{"match": {"prefix": "/v1/hi"}}, {"match": {"template": "/v1/history/{team}"}}"#,
            "rules[1].match: unreachable: rules[0]",
        ),
        (
            r#"{"match": {"prefix": "/"}}, {"match": {"template": "/**"}}"#,
            "rules[1].match: unreachable: rules[0]",
        ),
        // exact and prefix under a template
        (
            r#"{"match": {"template": "/v1/models/{id}"}}, {"match": {"path": "/v1/models/qwen3"}}"#,
            "rules[1].match: unreachable: rules[0]",
        ),
        (
            r#"{"match": {"template": "/v1/models"}}, {"match": {"path": "/v1/models/"}}"#,
            "rules[1].match: unreachable: rules[0]",
        ),
        (
            r#"{"match": {"path": "/v1/models"}}, {"match": {"template": "/v1/models"}}"#,
            "rules[1].match: unreachable: rules[0]",
        ),
        (
            r#"{"match": {"template": "/v1/**"}}, {"match": {"prefix": "/v1/"}}"#,
            "rules[1].match: unreachable: rules[0]",
        ),
        (
            r#"{"match": {"template": "/v1/history/{team}/**"}}, {"match": {"prefix": "/v1/history/team-a/"}}"#,
            "rules[1].match: unreachable: rules[0]",
        ),
        (
            r#"{"match": {"template": "/v1/{x}/**"}}, {"match": {"prefix": "/v1/hist"}}"#,
            "rules[1].match: unreachable: rules[0]",
        ),
        // template under template, segment by segment
        (
            r#"{"match": {"template": "/v1/{a}/x"}}, {"match": {"template": "/v1/{b}/x"}}"#,
            "rules[1].match: unreachable: rules[0]",
        ),
        (
            r#"{"match": {"template": "/v1/history/{team}/**"}, "scopes": ["history:{team}"]}, {"match": {"template": "/v1/history/admin/**"}, "scopes": ["admin"]}"#,
            "rules[1].match: unreachable: rules[0]",
        ),
        (
            r#"{"match": {"template": "/v1/{x}/**"}}, {"match": {"template": "/v1/{y}", "methods": ["GET"]}}"#,
            "rules[1].match: unreachable: rules[0]",
        ),
        (
            r#"{"match": {"template": "/**"}}, {"match": {"template": "/{org}/teams/{team}"}}"#,
            "rules[1].match: unreachable: rules[0]",
        ),
        // the first earlier rule that shadows is named, and the later rules' own index
        (
            r#"{"match": {"prefix": "/a"}}, {"match": {"prefix": "/b"}}, {"match": {"prefix": "/"}}, {"match": {"path": "/b/c"}}"#,
            "rules[3].match: unreachable: rules[1]",
        ),
    ];
    for (rules, shadowed) in cases {
        let text = with_provider(&format!(r#""rules": [{rules}]"#));
        assert_eq!(
            error(&text),
            format!("config: {shadowed} matches every request it would match"),
            "for {rules}"
        );
    }
    // A rule added after the spec's example that one of them already decides.
    let text = with_provider(&format!(
        r#""rules": [{SPEC_RULES}, {{"match": {{"template": "/v1/history/admin/**"}}, "auth": "none"}}]"#
    ));
    assert_eq!(
        error(&text),
        "config: rules[4].match: unreachable: rules[3] matches every request it would match"
    );
}

#[test]
fn overlapping_rules_that_can_still_decide_are_accepted() {
    let cases: &[&str] = &[
        SPEC_RULES,
        // envoy.yaml's and the WasmPlugin's rules
        r#"{"match": {"path": "/"}, "auth": "none"},
           {"match": {"path": "/healthz"}, "auth": "none"},
           {"match": {"path": "/chat"}, "auth": "none"},
           {"match": {"prefix": "/chat/"}, "auth": "none"},
           {"match": {"path": "/v1/chat/completions", "methods": ["POST"]}, "scopes": ["chat:write"]},
           {"match": {"prefix": "/v1/models"}, "scopes": ["chat:read"]},
           {"match": {"template": "/v1/history/{team}/**"}, "scopes": ["history:{team}"]}"#,
        // route_rules' rules
        r#"{"match": {"prefix": "/healthz"}, "auth": "none"},
           {"match": {"path": "/v1/chat/completions", "methods": ["POST"]}, "scopes": ["chat:write"]},
           {"match": {"prefix": "/v1/models"}, "scopes": ["chat:read"]},
           {"match": {"template": "/v1/history/{team}/**"}, "scopes": ["history:{team}"]},
           {"match": {"prefix": "/public/"}, "auth": "optional"}"#,
        // specific before general
        r#"{"match": {"path": "/v1/chat"}}, {"match": {"prefix": "/v1/"}}"#,
        r#"{"match": {"template": "/v1/history/admin/**"}, "scopes": ["admin"]},
           {"match": {"template": "/v1/history/{team}/**"}, "scopes": ["history:{team}"]}"#,
        r#"{"match": {"prefix": "/v1/models/"}}, {"match": {"template": "/v1/{x}/**"}}"#,
        r#"{"match": {"template": "/v1/models/{id}"}}, {"match": {"prefix": "/v1/models"}}"#,
        // general before specific with methods it does not cover
        r#"{"match": {"prefix": "/v1/", "methods": ["GET"]}}, {"match": {"path": "/v1/chat", "methods": ["POST"]}}"#,
        r#"{"match": {"path": "/a", "methods": ["GET"]}}, {"match": {"path": "/a"}}"#,
        r#"{"match": {"template": "/**", "methods": ["GET", "HEAD"]}}, {"match": {"prefix": "/v1/", "methods": ["HEAD", "POST"]}}"#,
        // partial overlap of paths: the later rule still decides some requests
        r#"{"match": {"prefix": "/v1/"}}, {"match": {"path": "/v1"}}"#,
        r#"{"match": {"prefix": "/v1/models/"}}, {"match": {"template": "/v1/models"}}"#,
        r#"{"match": {"prefix": "/v1/history/t"}}, {"match": {"template": "/v1/history/{team}"}}"#,
        r#"{"match": {"template": "/v1/history/{team}/**"}}, {"match": {"prefix": "/v1/history/"}}"#,
        r#"{"match": {"template": "/v1/models/**"}}, {"match": {"prefix": "/v1/models"}}"#,
        r#"{"match": {"template": "/v1/{x}"}}, {"match": {"template": "/v1/{x}/**"}}"#,
        r#"{"match": {"template": "/v1/{a}/x"}}, {"match": {"template": "/v1/{b}/y"}}"#,
        r#"{"match": {"path": "/v1/chat"}}, {"match": {"prefix": "/v1/chat"}}"#,
        r#"{"match": {"template": "/"}}, {"match": {"template": "/**"}}"#,
    ];
    for rules in cases {
        let text = with_provider(&format!(r#""rules": [{rules}]"#));
        if let Err(e) = load_str(&text) {
            panic!("should be accepted: {rules}\n  got: {e}");
        }
    }
}

#[test]
fn a_rule_that_needs_tokens_needs_a_provider() {
    assert_eq!(
        error(r#"{"default_rule": {"auth": "none"}, "rules": [{"match": {"prefix": "/v1/"}}]}"#),
        "config: providers: at least one provider is needed: rules[0].auth is \"required\""
    );
    assert!(load_str(
        r#"{"default_rule": {"auth": "none"}, "rules": [{"match": {"prefix": "/a"}, "auth": "none"}]}"#
    )
    .is_ok());
}

#[test]
fn invalid_rate_limits_name_the_field() {
    let cases: &[(&str, &str)] = &[
        (r#"[{"key": "sub", "requests": 1, "window_s": 1}]"#, "config: rate_limits[0].name: is required"),
        (r#"[{"name": "a b", "key": "sub", "requests": 1, "window_s": 1}]"#, "config: rate_limits[0].name: must be 1 to 64"),
        (r#"[{"name": "a", "key": "sub", "requests": 1, "window_s": 1}, {"name": "a", "key": "ip", "requests": 1, "window_s": 1}]"#, "config: rate_limits[1].name: must be unique"),
        (r#"[{"name": "a", "key": "user", "requests": 1, "window_s": 1}]"#, "config: rate_limits[0].key: must be \"sub\", \"ip\", \"role\", \"header:NAME\" or \"claim:NAME\""),
        (r#"[{"name": "a", "key": "header:bad name", "requests": 1, "window_s": 1}]"#, "config: rate_limits[0].key: `bad name` is not a valid header name"),
        (r#"[{"name": "a", "key": "claim:", "requests": 1, "window_s": 1}]"#, "config: rate_limits[0].key: must be"),
        (r#"[{"name": "a", "key": "sub", "window_s": 1}]"#, "config: rate_limits[0]: needs exactly one of \"requests\" and \"tokens\""),
        (r#"[{"name": "a", "key": "sub", "requests": 1, "tokens": 5, "window_s": 1}]"#, "config: rate_limits[0]: needs exactly one of"),
        (r#"[{"name": "a", "key": "sub", "requests": 0, "window_s": 1}]"#, "config: rate_limits[0].requests: must be at least 1"),
        (r#"[{"name": "a", "key": "sub", "requests": -1, "window_s": 1}]"#, "config: rate_limits[0].requests: invalid value"),
        (r#"[{"name": "a", "key": "sub", "requests": 1, "window_s": 0}]"#, "config: rate_limits[0].window_s: must be between 1 and 2678400"),
        (r#"[{"name": "a", "key": "sub", "requests": 1}]"#, "config: rate_limits[0].window_s: is required"),
        (r#"[{"name": "a", "key": "sub", "requests": 1, "window_s": 1, "trusted_hops": 1}]"#, "config: rate_limits[0].trusted_hops: only applies to key \"ip\""),
        (r#"[{"name": "a", "key": "ip", "requests": 1, "window_s": 1, "trusted_hops": 17}]"#, "config: rate_limits[0].trusted_hops: must be at most 16"),
        (r#"[{"name": "a", "key": "ip", "requests": 1, "window_s": 1, "slots": 0}]"#, "config: rate_limits[0].slots: must be between 1"),
        (r#"[{"name": "a", "key": "ip", "requests": 1, "window_s": 1, "match": {"prefix": "x"}}]"#, "config: rate_limits[0].match.prefix: must start with /"),
        (r#"[{"name": "a", "key": "ip", "requests": 1, "window_s": 1, "per": "minute"}]"#, "config: rate_limits[0].per: unknown field"),
    ];
    for (limits, expected) in cases {
        let text = with_provider(&format!(r#""rate_limits": {limits}"#));
        let message = error(&text);
        assert!(
            message.starts_with(expected),
            "for {limits}\n  got:      {message}\n  expected: {expected}..."
        );
    }
    assert_eq!(
        error(
            r#"{"default_rule": {"auth": "none"}, "rate_limits": [{"name": "a", "key": "sub", "requests": 1, "window_s": 1}]}"#
        ),
        "config: rate_limits[0].key: counts verified callers, but no provider is configured"
    );
    let ok = load_str(r#"{"default_rule": {"auth": "none"}, "rate_limits": [{"name": "a", "key": "ip", "requests": 1, "window_s": 1}]}"#).unwrap();
    assert_eq!(ok.rate_limits[0].slots, 8192);
}

#[test]
fn translate_section_is_checked() {
    let ok = load_str(&with_provider(
        r#""translate": {"to": "ollama", "default_model": "qwen3:32b", "model_aliases": {"gpt-4o": "qwen3:32b"}}"#,
    ))
    .unwrap();
    let t = ok.translate.unwrap();
    assert_eq!(t.cluster, None, "the route's cluster");
    let defaults = load_str(&with_provider(r#""translate": {}"#)).unwrap();
    assert_eq!(
        defaults.translate.unwrap().config.target,
        crate::translate::Target::Ollama
    );
    assert_eq!(t.authority, None);
    assert_eq!(t.timeout_ms, 120_000);
    assert_eq!(
        t.config.model_aliases.get("gpt-4o").map(String::as_str),
        Some("qwen3:32b")
    );
    let cases: &[(&str, &str)] = &[
        (
            r#"{"to": "vllm"}"#,
            "config: translate.to: must be \"ollama\" or \"openai\"",
        ),
        (
            r#"{"from": "anthropic", "to": "ollama"}"#,
            "config: translate.from: must be \"openai\"",
        ),
        (
            r#"{"to": "ollama", "default_model": " "}"#,
            "config: translate.default_model: must not be empty",
        ),
        (
            r#"{"to": "ollama", "model_aliases": {"a": "x", "a": "y"}}"#,
            "config: translate.model_aliases: duplicate key `a`",
        ),
        (
            r#"{"to": "ollama", "model_aliases": {"a": 1}}"#,
            "config: translate.model_aliases",
        ),
        (
            r#"{"to": "ollama", "timeout_ms": 5}"#,
            "config: translate.timeout_ms: must be between 1000 and 600000",
        ),
        (
            r#"{"to": "ollama", "stream": true}"#,
            "config: translate.stream: unknown field",
        ),
    ];
    for (section, expected) in cases {
        let message = error(&with_provider(&format!(r#""translate": {section}"#)));
        assert!(
            message.starts_with(expected),
            "for {section}\n  got:      {message}\n  expected: {expected}..."
        );
    }
}

#[test]
fn oauth2_section_is_checked() {
    let base = |extra: &str| {
        format!(
            r#"{{"oauth2": {{"cluster": "idp", "authority": "idp", "issuer": "https://idp.test",
                "client_id": "web", "client_secret": {{"inline": "s"}},
                "redirect_uri": "https://chat.test/oauth2/callback",
                "session": {{"secret": {{"env": "JWT_SECRET"}}}}{extra}}}}}"#
        )
    };
    let cfg = load_str(&base("")).unwrap();
    let oauth2 = cfg.oauth2.as_ref().unwrap();
    assert_eq!(oauth2.callback_path, "/oauth2/callback");
    assert_eq!(oauth2.origin, "https://chat.test");
    assert_eq!(
        cfg.token.cookie.as_deref(),
        Some("gw_session"),
        "the session cookie carries tokens"
    );
    assert!(oauth2.secure_cookies);
    assert_eq!(cfg.providers.len(), 2, "session and ID-token providers");
    let cases: &[(&str, &str)] = &[
        (
            r#", "redirect_uri": "http://chat.test/cb""#,
            "config: oauth2.redirect_uri: duplicate field",
        ),
        (
            r#", "scopes": ["profile"]"#,
            "config: oauth2.scopes: must include \"openid\"",
        ),
        (
            r#", "login_path": "/oauth2/callback""#,
            "config: oauth2.logout_path: login, logout and callback paths must differ",
        ),
        (
            r#", "userinfo_path": "/oauth2/login""#,
            "config: oauth2.userinfo_path: must differ from the login, logout and callback paths",
        ),
        (
            r#", "userinfo_path": "me""#,
            "config: oauth2.userinfo_path: must be an absolute path",
        ),
        (
            r#", "timeout_ms": 1"#,
            "config: oauth2.timeout_ms: must be between",
        ),
        (
            r#", "token_endpoint": "/token""#,
            "config: oauth2.token_endpoint: must be an absolute http(s) URL",
        ),
        (r#", "pkce": false"#, "config: oauth2.pkce: unknown field"),
    ];
    for (extra, expected) in cases {
        let message = error(&base(extra));
        assert!(
            message.starts_with(expected),
            "for {extra}\n  got:      {message}\n  expected: {expected}..."
        );
    }
    let insecure = base("").replace("https://chat.test", "http://chat.test");
    assert!(error(&insecure).starts_with("config: oauth2.redirect_uri: must be https"));
    let short = base("").replace(r#"{"env": "JWT_SECRET"}"#, r#"{"inline": "short"}"#);
    assert_eq!(
        error(&short),
        "config: oauth2.session.secret: is 5 bytes; at least 32 are required"
    );
}

#[test]
fn audit_section_is_checked() {
    let cfg = load_str(&with_provider(r#""audit": {"sample_bodies": 0.25}"#)).unwrap();
    assert_eq!(cfg.audit.sample_bodies, 0.25);
    assert_eq!(cfg.audit.max_logged_body_bytes, 4096);
    assert!(cfg.audit.records, "records are on by default");
    assert!(
        !cfg.audit.log_line,
        "the plugin's own line is off by default"
    );
    let lined = load_str(&with_provider(r#""audit": {"log_line": true}"#)).unwrap();
    assert!(lined.audit.log_line);
    assert!(error(&with_provider(
        r#""audit": {"records": false, "log_line": true}"#
    ))
    .starts_with("config: audit.log_line: the log line writes audit records"));
    let off = load_str(&with_provider(r#""audit": {"records": false}"#)).unwrap();
    assert!(!off.audit.records);
    assert!(error(&with_provider(
        r#""audit": {"records": false, "sample_bodies": 0.5}"#
    ))
    .starts_with("config: audit.sample_bodies: bodies are logged in audit records"));
    assert!(error(&with_provider(r#""audit": {"sample_bodies": 2}"#))
        .starts_with("config: audit.sample_bodies: must be between 0 and 1"));
    assert!(error(&with_provider(
        r#""audit": {"max_logged_body_bytes": 99999999}"#
    ))
    .starts_with("config: audit.max_logged_body_bytes: must be at most"));
    assert!(error(&with_provider(r#""audit": {"sample": 1}"#))
        .starts_with("config: audit.sample: unknown field"));
}

#[test]
fn roles_section_is_compiled_for_the_configured_providers_only() {
    let cfg = load_str(&format!(
        r#"{{"providers": [{}],
            "roles": {{"claims": ["roles", "realm_access.roles", "roles"],
                       "grants": {{"admin": ["gateway:admin", "chat:read", "gateway:admin"],
                                   "guest": ["chat:read"]}}}},
            "oauth2": {{"cluster": "idp", "authority": "idp", "issuer": "https://login.test",
                "client_id": "web", "client_secret": {{"inline": "s"}},
                "redirect_uri": "https://chat.test/oauth2/callback",
                "session": {{"secret": {{"inline": "{SECRET}"}}}}}}}}"#,
        hs_provider()
    ))
    .unwrap();
    let roles = cfg.roles.clone().unwrap();
    assert_eq!(
        roles.claims(),
        [
            vec!["roles".to_string()],
            vec!["realm_access".to_string(), "roles".to_string()]
        ],
        "split at dots, duplicates dropped"
    );
    assert_eq!(
        roles.grants(),
        [
            (
                "admin".to_string(),
                vec!["gateway:admin".to_string(), "chat:read".to_string()]
            ),
            ("guest".to_string(), vec!["chat:read".to_string()]),
        ],
        "in the document's order, scopes deduplicated"
    );
    let with_roles: Vec<&str> = cfg
        .providers
        .iter()
        .filter(|p| p.roles.as_ref().is_some_and(|r| Rc::ptr_eq(r, &roles)))
        .map(|p| p.name.as_str())
        .collect();
    assert_eq!(
        with_roles,
        ["sso", "oauth2-id-token"],
        "not the session's own provider"
    );
    assert!(load_str(&with_provider("")).unwrap().roles.is_none());
}

#[test]
fn roles_section_is_checked() {
    let grants = r#""grants": {"admin": ["gateway:admin"]}"#;
    let claims = r#""claims": ["roles"]"#;
    let cases: &[(String, &str)] = &[
        (
            format!(r#""claims": [], {grants}"#),
            "config: roles.claims: must name at least one claim path",
        ),
        (
            format!(r#""claims": ["roles", ""], {grants}"#),
            "config: roles.claims[1]: must be a dotted claim path",
        ),
        (
            format!(r#""claims": ["a..b"], {grants}"#),
            "config: roles.claims[0]: must be a dotted claim path",
        ),
        (
            format!(r#""claims": [".x"], {grants}"#),
            "config: roles.claims[0]: must be a dotted claim path",
        ),
        (
            format!(r#""claims": ["x."], {grants}"#),
            "config: roles.claims[0]: must be a dotted claim path",
        ),
        (
            format!(r#""claims": "roles", {grants}"#),
            "config: roles.claims: invalid type",
        ),
        (
            format!(r#""claims": ["roles", 1], {grants}"#),
            "config: roles.claims[1]: invalid type",
        ),
        (grants.to_string(), "config: roles.claims: is required"),
        (claims.to_string(), "config: roles.grants: is required"),
        (
            format!(r#"{claims}, "grants": {{}}"#),
            "config: roles.grants: must name at least one role",
        ),
        (
            format!(r#"{claims}, "grants": []"#),
            "config: roles.grants: invalid type",
        ),
        (
            format!(r#"{claims}, "grants": {{"admin": ["gateway:admin", "a b"]}}"#),
            "config: roles.grants.admin[1]: `a b` is not a valid scope",
        ),
        (
            format!(r#"{claims}, "grants": {{"admin": ["chat:read"], "user": [""]}}"#),
            "config: roles.grants.user[0]: must not be empty",
        ),
        (
            format!(r#"{claims}, "grants": {{"guest": []}}"#),
            "config: roles.grants.guest: must grant at least one scope",
        ),
        (
            format!(r#"{claims}, "grants": {{"guest": "chat:read"}}"#),
            "config: roles.grants.guest: invalid type",
        ),
        (
            format!(r#"{claims}, "grants": {{"admin": ["chat:read", 3]}}"#),
            "config: roles.grants.admin[1]: invalid type",
        ),
        (
            format!(r#"{claims}, "grants": {{"admin": ["a"], "admin": ["b"]}}"#),
            "config: roles.grants: duplicate key `admin`",
        ),
        (
            format!(r#"{claims}, "grants": {{"": ["chat:read"]}}"#),
            "config: roles.grants: role names must not be empty",
        ),
        (
            format!(
                r#"{claims}, "grants": {{"{}": ["chat:read"]}}"#,
                "r".repeat(257)
            ),
            "config: roles.grants.rrr",
        ),
        (
            format!(r#"{claims}, {grants}, "default": ["chat:read"]"#),
            "config: roles.default: unknown field",
        ),
        (
            format!(r#""claim": ["roles"], {grants}"#),
            "config: roles.claim: unknown field",
        ),
    ];
    for (section, expected) in cases {
        let message = error(&with_provider(&format!(r#""roles": {{{section}}}"#)));
        assert!(
            message.starts_with(expected),
            "for {section}\n  got:      {message}\n  expected: {expected}..."
        );
        assert!(!message.contains('\n'), "one line only: {message:?}");
    }
}

#[test]
fn models_section_is_compiled_in_order() {
    let cfg = load_str(&with_provider(
        r#""models": {"allow": [
            {"scopes": ["team:research"], "models": ["qwen3:32b", "Qwen3:*", "qwen3:*"]},
            {"scopes": [], "models": ["qwen3:8b"]}]}"#,
    ))
    .unwrap();
    let models = cfg.models.unwrap();
    let research = vec!["team:research".to_string()];
    assert!(models.may_use(&research, "qwen3:14b"));
    assert!(models.may_use(&[], "qwen3:8b"));
    assert!(!models.may_use(&[], "qwen3:14b"));
    assert!(load_str(&with_provider("")).unwrap().models.is_none());
}

#[test]
fn models_section_is_checked() {
    let cases = [
        (
            r#"{"allow": []}"#,
            "config: models.allow: must have at least one entry",
        ),
        (r#"{}"#, "config: models.allow: is required"),
        (
            r#"{"allow": [{"scopes": [], "models": ["a"]}, {"scopes": [], "models": []}]}"#,
            "config: models.allow[1].models: must name at least one model",
        ),
        (
            r#"{"allow": [{"scopes": [], "models": ["a", "b", ""]}]}"#,
            "config: models.allow[0].models[2]: must not be empty",
        ),
        (
            r#"{"allow": [{"scopes": [], "models": ["a", "b", "qwen 3"]}]}"#,
            "config: models.allow[0].models[2]: must not contain whitespace",
        ),
        (
            r#"{"allow": [{"scopes": [], "models": ["qwen*"]}]}"#,
            "config: models.allow[0].models[0]: `*` is only allowed",
        ),
        (
            r#"{"allow": [{"scopes": [], "models": ["*"]}]}"#,
            "config: models.allow[0].models[0]: `*` is only allowed",
        ),
        (
            r#"{"allow": [{"scopes": [], "models": ["qwen3:*b"]}]}"#,
            "config: models.allow[0].models[0]: `*` is only allowed",
        ),
        (
            r#"{"allow": [{"scopes": [], "models": ["a:b:c"]}]}"#,
            "config: models.allow[0].models[0]: must have at most one `:`",
        ),
        (
            r#"{"allow": [{"scopes": [], "models": ["qwen3:"]}]}"#,
            "config: models.allow[0].models[0]: needs a name before `:` and a tag",
        ),
        (
            r#"{"allow": [{"scopes": ["ok", "a b"], "models": ["a"]}]}"#,
            "config: models.allow[0].scopes[1]: `a b` is not a valid scope",
        ),
        (
            r#"{"allow": [{"scopes": [""], "models": ["a"]}]}"#,
            "config: models.allow[0].scopes[0]: must not be empty",
        ),
        (
            r#"{"allow": [{"models": ["a"]}]}"#,
            "config: models.allow[0].scopes: is required",
        ),
        (
            r#"{"allow": [{"scopes": [], "models": ["a"], "deny": []}]}"#,
            "config: models.allow[0].deny: unknown field",
        ),
        (
            r#"{"allow": [{"scopes": [], "models": [1]}]}"#,
            "config: models.allow[0].models[0]: invalid type",
        ),
    ];
    for (section, expected) in cases {
        let message = error(&with_provider(&format!(r#""models": {section}"#)));
        assert!(
            message.starts_with(expected),
            "for {section}\n  got:      {message}\n  expected: {expected}..."
        );
        assert!(!message.contains('\n'), "one line only: {message:?}");
    }
}

#[test]
fn an_introspecting_provider_is_compiled_and_its_mistakes_named() {
    let opaque = |fields: &str| {
        format!(
            r#"{{"providers": [{}, {{"name": "opaque", "introspection": {{"cluster": "idp",
                "authority": "sso", "path": "/introspect", "client_id": "gw",
                "client_secret": {{"inline": "s"}}{fields}}}}}]}}"#,
            hs_provider()
        )
    };
    let cfg = load_str(&opaque("")).unwrap();
    let settings = cfg.introspection.as_ref().expect("introspection");
    assert_eq!(settings.provider, 1);
    assert_eq!(cfg.providers[1].name, "opaque");
    assert_eq!((settings.cache_ttl_s, settings.timeout_ms), (60, 2000));
    assert!(!settings.all_tokens);
    assert!(
        !format!("{settings:?}").contains("secret"),
        "no secret in debug output"
    );
    for (fields, expected) in [
        (
            r#", "tokens": "jwt""#,
            "config: providers[1].introspection.tokens: must be",
        ),
        (
            r#", "client_auth": "none""#,
            "config: providers[1].introspection.client_auth: must be",
        ),
        (
            r#", "timeout_ms": 5"#,
            "config: providers[1].introspection.timeout_ms: must be between",
        ),
        (
            r#", "cache_slots": 1"#,
            "config: providers[1].introspection.cache_slots: must be between",
        ),
        (
            r#", "cache_ttl_s": 100000"#,
            "config: providers[1].introspection.cache_ttl_s: must be at most",
        ),
        (
            r#", "extra": 1"#,
            "config: providers[1].introspection.extra: unknown field",
        ),
    ] {
        let message = error(&opaque(fields));
        assert!(message.starts_with(expected), "{fields}: {message}");
    }
    let with_jwks = opaque("").replace(
        r#""name": "opaque","#,
        r#""name": "opaque", "hs256_secret": {"inline": "x"},"#,
    );
    assert!(error(&with_jwks)
        .starts_with("config: providers[1].hs256_secret: a provider with introspection"));
    let path = opaque("").replace(r#""/introspect""#, r#""introspect""#);
    assert!(error(&path)
        .starts_with("config: providers[1].introspection.path: must be an absolute path"));
}

#[test]
fn emergency_access_is_compiled_and_its_mistakes_named() {
    let section = |fields: &str| {
        with_provider(&format!(
            r#""emergency_access": {{"allow_ips": ["10.0.0.0/24", "::1"],
                "key": {{"inline": "break-glass-key-of-at-least-32-bytes"}},
                "scopes": ["gateway:admin"]{fields}}}"#
        ))
    };
    let cfg = load_str(&section("")).unwrap();
    let access = cfg.emergency.as_ref().expect("emergency");
    assert_eq!(access.max_ttl_s, 3600);
    assert_eq!(access.cookie, "gw_emergency");
    assert_eq!(
        cfg.token.cookie.as_deref(),
        Some("gw_emergency"),
        "its session is read back"
    );
    assert_eq!(cfg.providers[access.session_provider].name, "emergency");
    assert!(access.allows(Some("10.0.0.42")) && !access.allows(Some("10.0.1.1")));
    for (text, expected) in [
        (
            section("").replace(r#""10.0.0.0/24""#, r#""10.0.0.1/24""#),
            "config: emergency_access.allow_ips[0]: `10.0.0.1/24` has host bits set",
        ),
        (
            section("").replace(r#""::1""#, r#""localhost""#),
            "config: emergency_access.allow_ips[1]: `localhost` is not an IP address",
        ),
        (
            section(r#", "max_ttl_s": 10"#),
            "config: emergency_access.max_ttl_s: must be between 60",
        ),
        (
            section("").replace(r#"["gateway:admin"]"#, "[]"),
            "config: emergency_access.scopes: must name",
        ),
        (
            section("").replace("break-glass-key-of-at-least-32-bytes", "short"),
            "config: emergency_access.key: is 5 bytes",
        ),
        (
            section(r#", "allow": []"#),
            "config: emergency_access.allow: unknown field",
        ),
    ] {
        let message = error(&text);
        assert!(
            message.starts_with(expected),
            "got {message}, expected {expected}"
        );
    }
    let own_issuer = section("").replace("https://idp.test", "urn:ai-gateway:emergency-session");
    assert!(error(&own_issuer).starts_with("config: providers[0].issuer: is reserved"));
    let reserved = section("").replace(r#""name": "sso""#, r#""name": "emergency""#);
    assert!(error(&reserved).starts_with("config: providers[0].name: \"emergency\" is reserved"));
}
