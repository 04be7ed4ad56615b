//! The fixed configurations the other targets run against, each built once per process.

use std::collections::HashMap;

use gateway_core::config::{load, GatewayConfig};
use gateway_core::introspect::Introspection;
use gateway_core::oauth2::ClientAuth;
use gateway_core::protect::detect::Kind;
use gateway_core::protect::{MaskEntry, Protector, Rule};
use gateway_core::translate::{Target, TranslateConfig};

/// Route rules of every kind (exact with methods, prefix, templates with variables and `**`),
/// compiled by the real config loader so the fuzzer sees what a deployment would.
pub fn rules_config() -> GatewayConfig {
    let text = r#"{"providers": [{"name": "p", "issuer": "i", "audiences": ["a"],
            "hs256_secret": {"inline": "0123456789abcdef0123456789abcdef"}}],
        "rules": [
            {"match": {"prefix": "/healthz"}, "auth": "none"},
            {"match": {"path": "/v1/chat/completions", "methods": ["POST"]},
             "scopes": ["chat:write"]},
            {"match": {"prefix": "/v1/models"}, "scopes": ["chat:read"]},
            {"match": {"template": "/v1/history/{team}/**"}, "scopes": ["history:{team}"]},
            {"match": {"template": "/orgs/{org}/teams/{team}"}, "auth": "optional",
             "scopes": ["org:{org}:{team}"]},
            {"match": {"path": "/"}, "auth": "none"}
        ],
        "default_rule": {"auth": "required", "scopes": ["default"]}}"#;
    match load(text.as_bytes()) {
        Ok(config) => config,
        Err(error) => panic!("fuzz rules config: {error}"),
    }
}

/// Every built-in detector and a custom regex masked, two deny patterns.
pub fn protector() -> Protector {
    let rule = |name: &str| Rule {
        name: name.into(),
        replacement: format!("[{name}]"),
    };
    let mut entries: Vec<MaskEntry> = Kind::ALL
        .iter()
        .map(|&kind| MaskEntry::Builtin(kind, rule(kind.name())))
        .collect();
    entries.push(MaskEntry::Custom("EMP-[0-9]{6}".into(), rule("employee")));
    entries.push(MaskEntry::Custom(r"(?i)secret-\w+".into(), rule("secret")));
    let deny = vec![
        ("internal".into(), "(?i)internal use only".into()),
        ("key".into(), r"BEGIN [A-Z]+ PRIVATE KEY".into()),
    ];
    match Protector::new(entries, deny, true) {
        Ok(protector) => protector,
        Err(error) => panic!("fuzz protector: {error:?}"),
    }
}

/// Ollama translation with a default model and an alias, injecting the caller.
pub fn translate_config(target: Target) -> TranslateConfig {
    TranslateConfig {
        target,
        default_model: Some("qwen3:8b".into()),
        model_aliases: HashMap::from([("gpt-4o".to_string(), "qwen3:32b".to_string())]),
        inject_user: true,
    }
}

/// An introspection provider checking issuer and audience.
pub fn introspection() -> Introspection {
    Introspection {
        provider: 0,
        cluster: "idp".into(),
        authority: "idp".into(),
        path: "/introspect".into(),
        client_id: "gw".into(),
        client_secret: "s".into(),
        client_auth: ClientAuth::Basic,
        cache_ttl_s: 60,
        timeout_ms: 1000,
        all_tokens: false,
        cache: gateway_core::introspect::cache::Table {
            namespace: "fuzz".into(),
            slots: 64,
        },
        issuer: "https://idp.test".into(),
        audiences: vec!["gw".into()],
        scope_claim: "scope".into(),
        clock_skew_s: 30,
        require_token_type: false,
    }
}
