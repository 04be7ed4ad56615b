use super::*;

fn load_str(text: &str) -> Result<GatewayConfig, ConfigError> {
    load(text.as_bytes())
}

fn error(text: &str) -> String {
    match load_str(text) {
        Ok(_) => panic!("config should be refused: {text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn empty_document_means_defaults_that_fail_closed() {
    for text in ["", "  \n", "{}"] {
        let cfg = load_str(text).unwrap();
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
    let cfg = load_str(
        r#"{
            "token": {"header": "Authorization", "cookie": "gw_session", "realm": "corp"},
            "default_rule": {"auth": "optional", "scopes": ["chat:read", "chat:read", "b"]},
            "forward": {"user_header": "X-Caller", "scopes_header": "x-caller-scopes",
                        "strip_authorization": true},
            "limits": {"max_request_body_bytes": 1024, "max_token_bytes": 4096}
        }"#,
    )
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
    let cfg = load_str(r#"{"token": {"header": null, "cookie": "s"}}"#).unwrap();
    assert_eq!(cfg.token.header, None);
    assert_eq!(
        error(r#"{"token": {"header": null}}"#),
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
        (r#"{"providers": []}"#, "config: providers: unknown field"),
        (
            r#"{"rate_limits": []}"#,
            "config: rate_limits: unknown field",
        ),
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
