use super::*;
use crate::config::load;
use crate::store::MemoryStore;

#[test]
fn client_ip_ignores_forwarded_for_unless_hops_are_trusted() {
    assert_eq!(
        client_ip(Some("10.0.0.9:5555"), Some("6.6.6.6"), 0).as_deref(),
        Some("10.0.0.9")
    );
    assert_eq!(client_ip(Some("[::1]:80"), None, 0).as_deref(), Some("::1"));
    assert_eq!(client_ip(Some("::1"), None, 0).as_deref(), Some("::1"));
    // One trusted proxy appended the client it saw, then Envoy appended its own entry.
    assert_eq!(
        client_ip(Some("10.0.0.1:1"), Some("6.6.6.6, 1.2.3.4, 10.0.0.1"), 1).as_deref(),
        Some("1.2.3.4")
    );
    assert_eq!(
        client_ip(
            Some("10.0.0.1:1"),
            Some("6.6.6.6, 1.2.3.4, 10.0.0.2, 10.0.0.1"),
            2
        )
        .as_deref(),
        Some("1.2.3.4")
    );
    // Fewer entries than trusted hops (no proxy in front after all): the peer address.
    assert_eq!(
        client_ip(Some("10.0.0.1:1"), Some("1.2.3.4"), 1).as_deref(),
        Some("10.0.0.1")
    );
    assert_eq!(
        client_ip(Some("10.0.0.1:1"), Some("1.2.3.4, 10.0.0.1"), 2).as_deref(),
        Some("10.0.0.1")
    );
    assert_eq!(client_ip(None, None, 0), None);
}

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
        claims: vec![("tenant".into(), "acme".into())],
        roles: vec![],
    }
}

fn facts(applicable: Vec<usize>, ip: &str) -> LimitFacts {
    LimitFacts {
        applicable,
        remote_address: Some(format!("{ip}:1234")),
        forwarded_for: None,
        headers: vec![("x-api-key".into(), "k1".into())],
        token_budget: false,
        model_limit: false,
    }
}

fn prepared(cfg: &crate::config::GatewayConfig) -> MemoryStore {
    let store = MemoryStore::new();
    for limit in &cfg.rate_limits {
        counter::prepare(&store, &limit.name, limit.slots);
    }
    store
}

#[test]
fn a_spent_later_limit_gives_back_what_earlier_limits_counted() {
    let cfg = config(
        r#"[{"name": "user", "key": "sub", "requests": 5, "window_s": 60, "slots": 64},
            {"name": "ip", "key": "ip", "requests": 2, "window_s": 60, "slots": 64}]"#,
    );
    let store = prepared(&cfg);
    let now = 600_000;
    let alice = identity("alice");
    for _ in 0..2 {
        admit(
            &cfg.rate_limits,
            &facts(vec![0, 1], "1.1.1.1"),
            Some(&alice),
            &store,
            now,
        )
        .unwrap();
    }
    for _ in 0..3 {
        let refused = admit(
            &cfg.rate_limits,
            &facts(vec![0, 1], "1.1.1.1"),
            Some(&alice),
            &store,
            now,
        );
        assert!(matches!(refused, Err(GatewayError::RateLimited(_))));
    }
    // The user limit only counted the two admitted requests: 3 left, from other addresses.
    for ip in ["2.2.2.2", "3.3.3.3", "4.4.4.4"] {
        admit(
            &cfg.rate_limits,
            &facts(vec![0, 1], ip),
            Some(&alice),
            &store,
            now,
        )
        .unwrap();
    }
    let refused = admit(
        &cfg.rate_limits,
        &facts(vec![0, 1], "5.5.5.5"),
        Some(&alice),
        &store,
        now,
    );
    match refused {
        Err(GatewayError::RateLimited(state)) => {
            assert_eq!((state.limit, state.remaining), (5, 0));
            assert!(state.retry_after_s >= 1);
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn headers_describe_the_tightest_limit() {
    let cfg = config(
        r#"[{"name": "user", "key": "sub", "requests": 100, "window_s": 60},
            {"name": "key", "key": "header:x-api-key", "requests": 3, "window_s": 10}]"#,
    );
    let store = prepared(&cfg);
    let admission = admit(
        &cfg.rate_limits,
        &facts(vec![0, 1], "1.1.1.1"),
        Some(&identity("a")),
        &store,
        5_000,
    )
    .unwrap();
    let get = |n: &str| {
        admission
            .headers
            .iter()
            .find(|(k, _)| k == n)
            .map(|(_, v)| v.clone())
    };
    assert_eq!(get("x-ratelimit-limit").as_deref(), Some("3"));
    assert_eq!(get("x-ratelimit-remaining").as_deref(), Some("2"));
    assert_eq!(get("x-ratelimit-reset").as_deref(), Some("5"));
}

#[test]
fn keys_come_from_verified_data_or_the_connection() {
    let cfg = config(
        r#"[{"name": "s", "key": "sub", "requests": 1, "window_s": 60},
            {"name": "c", "key": "claim:tenant", "requests": 1, "window_s": 60},
            {"name": "h", "key": "header:x-api-key", "requests": 1, "window_s": 60},
            {"name": "i", "key": "ip", "requests": 1, "window_s": 60}]"#,
    );
    let f = facts(vec![0, 1, 2, 3], "9.9.9.9");
    let alice = identity("alice");
    let keys: Vec<Option<String>> = cfg
        .rate_limits
        .iter()
        .map(|l| caller_identity(l, &f, Some(&alice)))
        .collect();
    assert_eq!(keys[0].as_deref(), Some("sub\u{0}0\u{0}alice"));
    assert_eq!(keys[1].as_deref(), Some("claim\u{0}0\u{0}acme"));
    assert_eq!(keys[2].as_deref(), Some("header\u{0}k1"));
    assert_eq!(keys[3].as_deref(), Some("ip\u{0}9.9.9.9"));
    // Anonymous: sub and claim limits do not count the request.
    assert_eq!(caller_identity(&cfg.rate_limits[0], &f, None), None);
    assert_eq!(caller_identity(&cfg.rate_limits[1], &f, None), None);
}

#[test]
fn token_budgets_refuse_once_spent_and_are_charged_by_usage() {
    let cfg = config(r#"[{"name": "tokens", "key": "sub", "tokens": 1000, "window_s": 3600}]"#);
    let store = prepared(&cfg);
    let alice = identity("alice");
    let now = 7_200_000;
    let admission = admit(
        &cfg.rate_limits,
        &facts(vec![0], "1.1.1.1"),
        Some(&alice),
        &store,
        now,
    )
    .unwrap();
    assert_eq!(admission.token_charges.len(), 1);
    settle(
        &cfg.rate_limits,
        &admission.token_charges,
        999,
        &store,
        now + 1,
    );
    let admission = admit(
        &cfg.rate_limits,
        &facts(vec![0], "1.1.1.1"),
        Some(&alice),
        &store,
        now + 2,
    )
    .unwrap();
    settle(
        &cfg.rate_limits,
        &admission.token_charges,
        5,
        &store,
        now + 3,
    );
    assert!(matches!(
        admit(
            &cfg.rate_limits,
            &facts(vec![0], "1.1.1.1"),
            Some(&alice),
            &store,
            now + 4
        ),
        Err(GatewayError::RateLimited(_))
    ));
    assert!(admit(
        &cfg.rate_limits,
        &facts(vec![0], "1.1.1.1"),
        Some(&identity("bob")),
        &store,
        now + 5
    )
    .is_ok());
}

#[test]
fn an_unprepared_store_fails_closed() {
    let cfg = config(r#"[{"name": "user", "key": "sub", "requests": 5, "window_s": 60}]"#);
    let store = MemoryStore::new();
    assert_eq!(
        admit(
            &cfg.rate_limits,
            &facts(vec![0], "1.1.1.1"),
            Some(&identity("a")),
            &store,
            0
        ),
        Err(GatewayError::RateLimitUnavailable { limit: 5 })
    );
}

#[test]
fn max_tokens_are_read_from_openai_and_ollama_bodies() {
    assert_eq!(requested_tokens(br#"{"max_tokens": 300}"#), Some(300));
    assert_eq!(
        requested_tokens(br#"{"max_completion_tokens": 200, "max_tokens": 300}"#),
        Some(200)
    );
    assert_eq!(
        requested_tokens(br#"{"options": {"num_predict": 128}}"#),
        Some(128)
    );
    assert_eq!(
        requested_tokens(br#"{"options": {"num_predict": -1}}"#),
        None
    );
    assert_eq!(requested_tokens(br#"{"max_tokens": "300"}"#), None);
    assert_eq!(requested_tokens(b"not json"), None);
    assert_eq!(requested_tokens(br#"{"messages": []}"#), None);
}

#[test]
fn a_reservation_that_does_not_fit_is_refused_and_given_back() {
    let cfg = config(
        r#"[{"name": "t1", "key": "sub", "tokens": 1000, "window_s": 3600},
            {"name": "t2", "key": "sub", "tokens": 400, "window_s": 3600}]"#,
    );
    let store = prepared(&cfg);
    let alice = identity("alice");
    let now = 7_200_000;
    let mut admission = admit(
        &cfg.rate_limits,
        &facts(vec![0, 1], "1.1.1.1"),
        Some(&alice),
        &store,
        now,
    )
    .unwrap();
    assert!(matches!(
        reserve(
            &cfg.rate_limits,
            &mut admission.token_charges,
            500,
            &store,
            now
        ),
        Err(GatewayError::RateLimited(_))
    ));
    // t1's reservation was given back: 1000 still free there, 400 in t2.
    let mut again = admit(
        &cfg.rate_limits,
        &facts(vec![0, 1], "1.1.1.1"),
        Some(&alice),
        &store,
        now,
    )
    .unwrap();
    reserve(&cfg.rate_limits, &mut again.token_charges, 400, &store, now).unwrap();
    assert!(again.token_charges.iter().all(|c| c.reserved == 400));
    // The real usage was 100: 300 of each reservation come back.
    settle(&cfg.rate_limits, &again.token_charges, 100, &store, now + 1);
    let mut third = admit(
        &cfg.rate_limits,
        &facts(vec![0, 1], "1.1.1.1"),
        Some(&alice),
        &store,
        now + 2,
    )
    .unwrap();
    reserve(
        &cfg.rate_limits,
        &mut third.token_charges,
        300,
        &store,
        now + 2,
    )
    .unwrap();
}

#[test]
fn header_and_claim_limits_skip_requests_without_them() {
    // Like Envoy's `request_headers` descriptor: no value, no count (README says to pair such
    // a limit with a rule or an `ip`/`sub` limit).
    let cfg = config(
        r#"[{"name": "key", "key": "header:x-api-key", "requests": 1, "window_s": 60},
            {"name": "team", "key": "claim:team", "requests": 1, "window_s": 60},
            {"name": "ip", "key": "ip", "requests": 3, "window_s": 60}]"#,
    );
    let store = prepared(&cfg);
    let now = 600_000;
    let without_header = LimitFacts {
        headers: vec![],
        ..facts(vec![0, 1], "1.1.1.1")
    };
    // `identity` has a `tenant` claim, no `team`.
    for i in 0..5 {
        let admission = admit(
            &cfg.rate_limits,
            &without_header,
            Some(&identity("alice")),
            &store,
            now + i,
        )
        .unwrap();
        assert!(admission.headers.is_empty(), "no limit counted it");
    }
    // The same limits count requests that carry the header (or the claim).
    let with_header = facts(vec![0], "1.1.1.1");
    assert!(admit(&cfg.rate_limits, &with_header, None, &store, now).is_ok());
    assert!(admit(&cfg.rate_limits, &with_header, None, &store, now).is_err());
    let mut teamed = identity("bob");
    teamed.claims.push(("team".into(), "red".into()));
    let team_only = facts(vec![1], "1.1.1.1");
    assert!(admit(&cfg.rate_limits, &team_only, Some(&teamed), &store, now).is_ok());
    assert!(admit(&cfg.rate_limits, &team_only, Some(&teamed), &store, now).is_err());
    // Paired with an `ip` limit, leaving the header out escapes nothing.
    let paired = LimitFacts {
        headers: vec![],
        ..facts(vec![0, 2], "2.2.2.2")
    };
    let admitted = (0..5)
        .filter(|_| admit(&cfg.rate_limits, &paired, None, &store, now).is_ok())
        .count();
    assert_eq!(admitted, 3);
}
