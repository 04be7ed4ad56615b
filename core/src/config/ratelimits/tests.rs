//! `window` / `window_s` and `key: "role"`: what compiles, and refusals naming the field.

use crate::config::load;
use crate::ratelimit::{LimitKey, Period};

const PROVIDER: &str = r#""providers": [{"name": "p", "issuer": "i", "audiences": ["a"],
    "hs256_secret": {"inline": "0123456789abcdef0123456789abcdef"}}]"#;
const ROLES: &str =
    r#""roles": {"claims": ["groups"], "grants": {"research": ["chat"], "user": ["chat"]}}"#;

fn load_limits(limits: &str, sections: &[&str]) -> Result<crate::config::GatewayConfig, String> {
    let mut parts: Vec<&str> = sections.to_vec();
    let limits = format!(r#""rate_limits": {limits}"#);
    parts.push(&limits);
    load(format!("{{{}}}", parts.join(", ")).as_bytes()).map_err(|e| e.to_string())
}

fn refused(limits: &str, sections: &[&str]) -> String {
    match load_limits(limits, sections) {
        Ok(_) => panic!("should be refused: {limits}"),
        Err(e) => e,
    }
}

#[test]
fn a_month_or_a_sliding_window_of_up_to_31_days() {
    let cfg = load_limits(
        r#"[{"name": "m", "key": "sub", "tokens": 1, "window": "month"},
            {"name": "s", "key": "sub", "requests": 1, "window_s": 2678400}]"#,
        &[PROVIDER],
    )
    .unwrap();
    assert_eq!(cfg.rate_limits[0].period, Period::CalendarMonth);
    assert_eq!(
        cfg.rate_limits[1].period,
        Period::Sliding {
            window_ms: 2_678_400_000
        }
    );
}

#[test]
fn exactly_one_of_window_and_window_s_is_required() {
    let cases: &[(&str, &str)] = &[
        (
            r#"[{"name": "a", "key": "sub", "requests": 1, "window_s": 1}, {"name": "b", "key": "sub", "requests": 1, "window": "week"}]"#,
            "config: rate_limits[1].window: must be \"month\"",
        ),
        (
            r#"[{"name": "a", "key": "sub", "requests": 1, "window": "month", "window_s": 60}]"#,
            "config: rate_limits[0].window: cannot be given with \"window_s\"",
        ),
        (
            r#"[{"name": "a", "key": "sub", "requests": 1}]"#,
            "config: rate_limits[0].window_s: is required (or \"window\": \"month\")",
        ),
        (
            r#"[{"name": "a", "key": "sub", "requests": 1, "window_s": 2678401}]"#,
            "config: rate_limits[0].window_s: must be between 1 and 2678400 (31 days)",
        ),
        (
            r#"[{"name": "a", "key": "sub", "requests": 1, "window_s": 0}]"#,
            "config: rate_limits[0].window_s: must be between 1 and 2678400",
        ),
        (
            r#"[{"name": "a", "key": "sub", "requests": 1, "window": 30}]"#,
            "config: rate_limits[0].window: invalid type",
        ),
    ];
    for (limits, expected) in cases {
        let message = refused(limits, &[PROVIDER]);
        assert!(
            message.starts_with(expected),
            "for {limits}\n  got:      {message}\n  expected: {expected}..."
        );
    }
}

#[test]
fn a_role_key_needs_roles_and_counts_the_configured_ones_in_grants_order() {
    let limit = r#"[{"name": "team", "key": "role", "requests": 1, "window": "month"}]"#;
    assert_eq!(
        refused(limit, &[PROVIDER]),
        "config: rate_limits[0].key: counts callers by role, but no roles are configured"
    );
    let cfg = load_limits(limit, &[PROVIDER, ROLES]).unwrap();
    assert_eq!(
        cfg.rate_limits[0].key,
        LimitKey::Role(vec!["research".into(), "user".into()])
    );
}
