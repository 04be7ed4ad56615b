//! Admission split by model: limits restricted to models wait for the body's model, count only
//! their models, and merge into the header-time admission (charges and headers).

use super::by_model::admit_model;
use super::*;
use crate::config::load;
use crate::store::MemoryStore;

fn config(limits: &str) -> crate::config::GatewayConfig {
    let text = format!(
        r#"{{"providers": [{{"name": "p", "issuer": "i", "audiences": ["a"],
             "hs256_secret": {{"inline": "0123456789abcdef0123456789abcdef"}}}}],
            "rate_limits": {limits}}}"#
    );
    load(text.as_bytes()).unwrap()
}

fn identity(sub: &str) -> Identity {
    Identity {
        provider: 0,
        sub: sub.into(),
        scopes: vec![],
        exp: u64::MAX,
        nbf: None,
        claims: vec![],
        roles: vec![],
    }
}

fn prepared(cfg: &crate::config::GatewayConfig) -> MemoryStore {
    let store = MemoryStore::new();
    for limit in &cfg.rate_limits {
        counter::prepare(&store, &limit.name, limit.slots);
    }
    store
}

fn all(cfg: &crate::config::GatewayConfig) -> LimitFacts {
    LimitFacts {
        applicable: (0..cfg.rate_limits.len()).collect(),
        remote_address: Some("1.1.1.1:1".into()),
        ..LimitFacts::default()
    }
}

fn header<'a>(admission: &'a Admission, name: &str) -> Option<&'a str> {
    admission
        .headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

const NOW: u64 = 600_000;

#[test]
fn a_model_limit_waits_for_the_model_and_counts_only_its_models() {
    let cfg = config(
        r#"[{"name": "all", "key": "sub", "requests": 100, "window_s": 60},
            {"name": "big", "key": "sub", "requests": 2, "window_s": 60,
             "models": ["qwen3:32b", "llama3:*"]}]"#,
    );
    let store = prepared(&cfg);
    let alice = identity("alice");
    let admit_for = |model: &str| {
        let mut admission = admit(&cfg.rate_limits, &all(&cfg), Some(&alice), &store, NOW)?;
        // At header time only `all` counted; `big` waits, with its caller.
        assert_eq!(admission.pending.len(), 1);
        assert_eq!(header(&admission, "x-ratelimit-limit"), Some("100"));
        admit_model(&cfg.rate_limits, &mut admission, model, &store, NOW)?;
        assert!(admission.pending.is_empty(), "counted once at most");
        // A second look (it cannot happen, but must not count twice).
        admit_model(&cfg.rate_limits, &mut admission, model, &store, NOW)?;
        Ok::<_, GatewayError>(admission)
    };
    // Other models, in any spelling, are not counted by `big`: its headers never show.
    for model in ["qwen3:8b", "qwen3", "mistral", "llama3x:1b", ""] {
        let admission = admit_for(model).unwrap();
        assert_eq!(
            header(&admission, "x-ratelimit-limit"),
            Some("100"),
            "{model}"
        );
    }
    // Its models are (aliases are resolved before this: the model the upstream gets).
    let admission = admit_for(" Qwen3:32B").unwrap();
    assert_eq!(
        header(&admission, "x-ratelimit-limit"),
        Some("2"),
        "tightest"
    );
    assert_eq!(header(&admission, "x-ratelimit-remaining"), Some("1"));
    let admission = admit_for("llama3").unwrap();
    assert_eq!(header(&admission, "x-ratelimit-remaining"), Some("0"));
    match admit_for("llama3:70b") {
        Err(GatewayError::RateLimited(state)) => {
            assert_eq!((state.limit, state.remaining), (2, 0));
            assert!(state.retry_after_s >= 1);
        }
        other => panic!("{other:?}"),
    }
    // Still open for other models.
    assert!(admit_for("qwen3:8b").is_ok());
}

#[test]
fn a_model_token_budget_is_charged_only_for_its_models() {
    let cfg = config(
        r#"[{"name": "big", "key": "sub", "tokens": 1000, "window": "month",
             "models": ["qwen3:32b"]}]"#,
    );
    let store = prepared(&cfg);
    let alice = identity("alice");
    let facts = all(&cfg);
    assert!(!facts.token_budget, "set by the pipeline, not here");

    let mut other = admit(&cfg.rate_limits, &facts, Some(&alice), &store, NOW).unwrap();
    assert!(other.token_charges.is_empty(), "nothing before the model");
    admit_model(&cfg.rate_limits, &mut other, "qwen3:8b", &store, NOW).unwrap();
    assert!(other.token_charges.is_empty(), "another model: no charge");
    assert!(other.headers.is_empty());

    let mut big = admit(&cfg.rate_limits, &facts, Some(&alice), &store, NOW).unwrap();
    admit_model(&cfg.rate_limits, &mut big, "QWEN3:32b", &store, NOW).unwrap();
    assert_eq!(big.token_charges.len(), 1);
    assert_eq!(header(&big, "x-ratelimit-remaining"), Some("1000"));
    reserve(&cfg.rate_limits, &mut big.token_charges, 600, &store, NOW).unwrap();
    settle(&cfg.rate_limits, &big.token_charges, 900, &store, NOW);

    // 900 used: a reservation of 200 no longer fits; spending it refuses the model's requests.
    let mut next = admit(&cfg.rate_limits, &facts, Some(&alice), &store, NOW).unwrap();
    admit_model(&cfg.rate_limits, &mut next, "qwen3:32b", &store, NOW).unwrap();
    assert_eq!(header(&next, "x-ratelimit-remaining"), Some("100"));
    let refused = reserve(&cfg.rate_limits, &mut next.token_charges, 200, &store, NOW);
    assert!(matches!(refused, Err(GatewayError::RateLimited(_))));
    settle(&cfg.rate_limits, &next.token_charges, 100, &store, NOW);
    let mut spent = admit(&cfg.rate_limits, &facts, Some(&alice), &store, NOW).unwrap();
    let refused = admit_model(&cfg.rate_limits, &mut spent, "qwen3:32b", &store, NOW);
    assert!(matches!(refused, Err(GatewayError::RateLimited(_))));
}

#[test]
fn a_spent_model_limit_gives_back_what_the_others_counted_for_the_model() {
    let cfg = config(
        r#"[{"name": "wide", "key": "sub", "requests": 5, "window_s": 60, "models": ["qwen3:*"]},
            {"name": "narrow", "key": "sub", "requests": 1, "window_s": 60,
             "models": ["qwen3:32b"]}]"#,
    );
    let store = prepared(&cfg);
    let alice = identity("alice");
    let run = |model: &str| {
        let mut admission = admit(&cfg.rate_limits, &all(&cfg), Some(&alice), &store, NOW)?;
        admit_model(&cfg.rate_limits, &mut admission, model, &store, NOW).map(|()| admission)
    };
    run("qwen3:32b").unwrap();
    for _ in 0..3 {
        assert!(run("qwen3:32b").is_err(), "narrow is spent");
    }
    // `wide` counted 1 (the refused ones were given back): 4 left.
    for _ in 0..4 {
        run("qwen3:8b").unwrap();
    }
    assert!(run("qwen3:8b").is_err());
}

#[test]
fn anonymous_callers_leave_no_pending_sub_limit() {
    let cfg = config(
        r#"[{"name": "big", "key": "sub", "requests": 1, "window_s": 60, "models": ["m"]},
            {"name": "ip", "key": "ip", "requests": 1, "window_s": 60, "models": ["m"]}]"#,
    );
    let store = prepared(&cfg);
    let admission = admit(&cfg.rate_limits, &all(&cfg), None, &store, NOW).unwrap();
    let pending: Vec<usize> = admission.pending.iter().map(|p| p.limit).collect();
    assert_eq!(pending, [1], "no value, no count: as at header time");
}
