//! `rate_limits[].models`: patterns as in `models.allow`, refusals naming the field.

use crate::config::load;
use crate::models::ModelPattern;

const PROVIDER: &str = r#""providers": [{"name": "p", "issuer": "i", "audiences": ["a"],
    "hs256_secret": {"inline": "0123456789abcdef0123456789abcdef"}}]"#;

fn load_limits(limits: &str) -> Result<crate::config::GatewayConfig, String> {
    load(format!(r#"{{{PROVIDER}, "rate_limits": {limits}}}"#).as_bytes())
        .map_err(|e| e.to_string())
}

#[test]
fn models_compile_to_patterns_and_are_optional() {
    let cfg = load_limits(
        r#"[{"name": "all", "key": "sub", "requests": 1, "window_s": 60},
            {"name": "big", "key": "sub", "tokens": 100000, "window": "month",
             "models": ["Qwen3:32b", "llama3:*", "mistral", "qwen3:32b"]}]"#,
    )
    .unwrap();
    assert_eq!(cfg.rate_limits[0].models, None);
    assert_eq!(
        cfg.rate_limits[1].models,
        Some(vec![
            ModelPattern::Exact("qwen3:32b".into()),
            ModelPattern::AnyTag("llama3".into()),
            ModelPattern::Exact("mistral:latest".into()),
        ]),
        "canonical, duplicates dropped"
    );
    assert!(cfg.rate_limits[1].counts_model(" LLAMA3:70b"));
    assert!(!cfg.rate_limits[1].counts_model("qwen3:8b"));
    assert!(cfg.rate_limits[0].counts_model("anything"));
}

#[test]
fn empty_lists_and_bad_patterns_are_refused_by_field() {
    let first = r#"{"name": "a", "key": "sub", "requests": 1, "window_s": 60}"#;
    let cases = [
        (r#""models": []"#, "config: rate_limits[2].models: must name at least one model"),
        (
            r#""models": ["qwen3:*:x"]"#,
            "config: rate_limits[2].models[0]: must have at most one `:` (name:tag)",
        ),
        (
            r#""models": ["ok", "qw*en"]"#,
            "config: rate_limits[2].models[1]: `*` is only allowed as the whole tag, as in `name:*`",
        ),
        (
            r#""models": ["qwen 3"]"#,
            "config: rate_limits[2].models[0]: must not contain whitespace or control characters",
        ),
        (r#""models": [""]"#, "config: rate_limits[2].models[0]: must not be empty"),
        (r#""models": "qwen3""#, "rate_limits"),
    ];
    for (models, expected) in cases {
        let limits = format!(
            r#"[{first}, {}, {{"name": "c", "key": "sub", "requests": 1, "window_s": 60, {models}}}]"#,
            first.replace("\"a\"", "\"b\"")
        );
        let error = load_limits(&limits).map(|_| ()).unwrap_err();
        assert!(
            error.starts_with(expected) || error.contains(expected),
            "{models}: {error}"
        );
    }
}
