use super::proto::{decode_response, encode_request, Descriptor, Unit};
use super::*;
use crate::config::load;

const CONFIG: &str = r#"{
    "providers": [{"name": "idp", "issuer": "https://idp", "audiences": ["gw"],
                   "jwks": {"remote": {"cluster": "idp", "authority": "idp", "path": "/jwks"}}}],
    "rate_limit_service": {"cluster": "rls", "domain": "gw"},
    "rate_limits": [
        {"name": "local-user", "key": "sub", "requests": 5, "window_s": 60},
        {"name": "mesh-user", "key": "sub", "requests": 10, "window_s": 60, "scope": "mesh"},
        {"name": "mesh-tokens", "key": "sub", "tokens": 1000, "window_s": 3600, "scope": "mesh"}
    ]
}"#;

fn identity(sub: &str) -> Identity {
    Identity {
        provider: 0,
        sub: sub.into(),
        scopes: vec![],
        exp: 0,
        nbf: None,
        claims: vec![],
        roles: vec![],
    }
}

fn facts() -> LimitFacts {
    LimitFacts {
        applicable: vec![0, 1, 2],
        ..LimitFacts::default()
    }
}

fn status(code: u8, limit: u8, remaining: u8, reset: u8) -> Vec<u8> {
    let mut s = vec![0x08, code, 0x12, 2, 0x08, limit, 0x18, remaining];
    s.extend([0x22, 2, 0x08, reset]);
    s
}

fn response(overall: u8, statuses: &[Vec<u8>]) -> Vec<u8> {
    let mut out = vec![0x08, overall];
    for s in statuses {
        out.push(0x12);
        out.push(s.len() as u8);
        out.extend(s);
    }
    out
}

#[test]
fn mesh_limits_are_planned_from_the_verified_caller_and_local_ones_are_not() {
    let config = load(CONFIG.as_bytes()).unwrap();
    let plan = plan(&config.rate_limits, &facts(), Some(&identity("alice")));
    assert_eq!(
        plan.checks,
        vec![
            Descriptor {
                entries: vec![
                    ("limit".into(), "mesh-user".into()),
                    ("key".into(), "sub:0:alice".into())
                ],
                limit: Some((10, Unit::Minute)),
                hits_addend: Some(1),
            },
            Descriptor {
                entries: vec![
                    ("limit".into(), "mesh-tokens".into()),
                    ("key".into(), "sub:0:alice".into())
                ],
                limit: Some((1000, Unit::Hour)),
                hits_addend: Some(0),
            },
        ]
    );
    assert_eq!(plan.check_limits, vec![10, 1000]);
    assert_eq!(plan.budgets.len(), 1);
    assert_eq!(plan.budgets[0].hits_addend, None);
    // Anonymous: a `sub` limit does not count it.
    assert!(plan_of(&config, None).is_empty());
}

fn plan_of(config: &crate::config::GatewayConfig, who: Option<&Identity>) -> MeshPlan {
    plan(&config.rate_limits, &facts(), who)
}

#[test]
fn a_charge_sends_the_tokens_as_every_budgets_hits() {
    let config = load(CONFIG.as_bytes()).unwrap();
    let service = config.rate_limit_service.clone().unwrap();
    let plan = plan_of(&config, Some(&identity("bob")));
    assert_eq!(charge_request(&service, &plan, 0), None);
    let charge = charge_request(&service, &plan, 321).unwrap();
    let mut expected = plan.budgets[0].clone();
    expected.hits_addend = Some(321);
    assert_eq!(charge, encode_request("gw", &[expected], 321));
    assert_eq!(
        check_request(&service, &plan),
        encode_request("gw", &plan.checks, 1)
    );
}

#[test]
fn the_answer_admits_with_the_tightest_state_or_refuses_with_the_spent_limit() {
    let config = load(CONFIG.as_bytes()).unwrap();
    let plan = plan_of(&config, Some(&identity("alice")));
    let ok = response(1, &[status(1, 10, 7, 30), status(1, 100, 50, 90)]);
    assert_eq!(
        judge(0, Some(&ok), &plan),
        Verdict::Admit(Some(RateLimitState {
            limit: 10,
            remaining: 7,
            reset_s: 30,
            retry_after_s: 0
        }))
    );
    let over = response(2, &[status(1, 10, 3, 30), status(2, 100, 0, 90)]);
    assert_eq!(
        judge(0, Some(&over), &plan),
        Verdict::Refuse(RateLimitState {
            limit: 100,
            remaining: 0,
            reset_s: 90,
            retry_after_s: 90
        })
    );
    assert!(decode_response(&over).is_some());
}

#[test]
fn a_budget_checked_at_exactly_its_limit_is_spent_even_when_the_service_says_ok() {
    let config = load(CONFIG.as_bytes()).unwrap();
    let plan = plan_of(&config, Some(&identity("alice")));
    // envoyproxy/ratelimit: 0 hits on a counter at its limit is OK with nothing remaining.
    let at_limit = response(1, &[status(1, 10, 4, 30), status(1, 100, 0, 90)]);
    assert_eq!(
        judge(0, Some(&at_limit), &plan),
        Verdict::Refuse(RateLimitState {
            limit: 100,
            remaining: 0,
            reset_s: 90,
            retry_after_s: 90
        })
    );
    // A request limit at 0 remaining has just admitted its last request.
    let last = response(1, &[status(1, 10, 0, 30), status(1, 100, 5, 90)]);
    assert!(matches!(judge(0, Some(&last), &plan), Verdict::Admit(Some(s)) if s.remaining == 0));
}

#[test]
fn errors_timeouts_and_garbage_are_unavailable_never_admitted() {
    let config = load(CONFIG.as_bytes()).unwrap();
    let plan = plan_of(&config, Some(&identity("alice")));
    let ok = response(1, &[]);
    // gRPC UNAVAILABLE (14), DEADLINE_EXCEEDED (4).
    assert_eq!(judge(14, Some(&ok), &plan), Verdict::Unavailable);
    assert_eq!(judge(4, None, &plan), Verdict::Unavailable);
    assert_eq!(judge(0, None, &plan), Verdict::Unavailable);
    assert_eq!(
        judge(0, Some(b"\x12\x40garbage"), &plan),
        Verdict::Unavailable
    );
    // A response without a code (UNKNOWN) says nothing.
    assert_eq!(judge(0, Some(&[]), &plan), Verdict::Unavailable);
    assert!(charged(0, Some(&ok)));
    assert!(!charged(14, Some(&ok)));
    assert!(!charged(0, Some(&[])));
}

#[test]
fn mesh_limits_refuse_what_the_service_cannot_count() {
    let with = |limit: &str, service: bool| {
        let service = if service {
            r#""rate_limit_service": {"cluster": "rls"},"#
        } else {
            ""
        };
        format!(
            r#"{{"providers": [{{"name": "idp", "issuer": "https://idp", "audiences": ["gw"],
                "jwks": {{"remote": {{"cluster": "idp", "authority": "idp", "path": "/jwks"}}}}}}], {service} "rate_limits": [{limit}]}}"#
        )
    };
    let cases = [
        (
            r#"{"name": "a", "key": "sub", "requests": 1, "window_s": 60, "scope": "mesh"}"#,
            false,
            "rate_limits[0].scope",
        ),
        (
            r#"{"name": "a", "key": "sub", "requests": 1, "window_s": 90, "scope": "mesh"}"#,
            true,
            "rate_limits[0].window_s",
        ),
        (
            r#"{"name": "a", "key": "sub", "tokens": 1, "window": "month", "scope": "mesh"}"#,
            true,
            "rate_limits[0].window",
        ),
        (
            r#"{"name": "a", "key": "sub", "requests": 1, "window_s": 60, "scope": "mesh", "models": ["q"]}"#,
            true,
            "rate_limits[0].models",
        ),
        (
            r#"{"name": "a", "key": "sub", "requests": 1, "window_s": 60, "scope": "mesh", "slots": 9}"#,
            true,
            "rate_limits[0].slots",
        ),
        (
            r#"{"name": "a", "key": "sub", "requests": 1, "window_s": 60, "scope": "world"}"#,
            true,
            "rate_limits[0].scope",
        ),
    ];
    for (limit, service, field) in cases {
        let error = load(with(limit, service).as_bytes()).unwrap_err();
        assert_eq!(error.path, field, "{limit}: {error}");
    }
    let bad_service = [
        (r#"{"cluster": ""}"#, "rate_limit_service.cluster"),
        (
            r#"{"cluster": "r", "failure_mode": "maybe"}"#,
            "rate_limit_service.failure_mode",
        ),
        (
            r#"{"cluster": "r", "timeout_ms": 0}"#,
            "rate_limit_service.timeout_ms",
        ),
        (
            r#"{"cluster": "r", "domain": ""}"#,
            "rate_limit_service.domain",
        ),
    ];
    for (service, field) in bad_service {
        let doc =
            format!(r#"{{"default_rule": {{"auth": "none"}}, "rate_limit_service": {service}}}"#);
        let error = load(doc.as_bytes()).unwrap_err();
        assert_eq!(error.path, field, "{service}: {error}");
    }
    let ok = load(with(cases[0].0, true).as_bytes()).unwrap();
    let service = ok.rate_limit_service.unwrap();
    assert_eq!(
        (
            service.domain.as_str(),
            service.timeout_ms,
            service.fail_open
        ),
        ("ai-gateway", 500, false)
    );
}
