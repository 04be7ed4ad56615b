//! Calendar-month budgets (`"window": "month"`) with an injected clock: exact counts within a
//! month, a fresh count at the first instant of the next one (leap Februaries, December to
//! January), the headers' reset, and token reservations and refunds across the boundary.

use super::*;
use crate::config::load;
use crate::store::MemoryStore;

/// Unix milliseconds (checked against `date -u`).
const JAN_15_2026_NOON: u64 = 1_768_478_400_000;
const FEB_1_2026: u64 = 1_769_904_000_000;
const LAST_MS_OF_JAN_2026: u64 = FEB_1_2026 - 1;
const FEB_29_2024: u64 = 1_709_164_800_000;
const MAR_1_2024: u64 = 1_709_251_200_000;
const JAN_1_2026: u64 = 1_767_225_600_000;

fn config(limits: &str) -> crate::config::GatewayConfig {
    let text = format!(
        r#"{{"providers": [{{"name": "p", "issuer": "i", "audiences": ["a"],
             "hs256_secret": {{"inline": "0123456789abcdef0123456789abcdef"}}}}],
            "rate_limits": {limits}}}"#
    );
    load(text.as_bytes()).unwrap()
}

fn monthly_requests(n: u64) -> crate::config::GatewayConfig {
    config(&format!(
        r#"[{{"name": "m", "key": "sub", "requests": {n}, "window": "month", "slots": 16}}]"#
    ))
}

fn alice() -> Identity {
    Identity {
        provider: 0,
        sub: "alice".into(),
        scopes: vec![],
        exp: u64::MAX,
        nbf: None,
        claims: vec![],
        roles: vec![],
    }
}

fn facts() -> LimitFacts {
    LimitFacts {
        applicable: vec![0],
        ..LimitFacts::default()
    }
}

fn prepared(cfg: &crate::config::GatewayConfig) -> MemoryStore {
    let store = MemoryStore::new();
    for limit in &cfg.rate_limits {
        counter::prepare(&store, &limit.name, limit.slots);
    }
    store
}

/// Admits one request of alice at `now`: the state it reports, or the refusal's.
fn request(
    cfg: &crate::config::GatewayConfig,
    store: &MemoryStore,
    now: u64,
) -> Result<Admission, RateLimitState> {
    match admit(&cfg.rate_limits, &facts(), Some(&alice()), store, now) {
        Ok(admission) => Ok(admission),
        Err(GatewayError::RateLimited(state)) => Err(state),
        Err(other) => panic!("{other:?}"),
    }
}

fn header(admission: &Admission, name: &str) -> String {
    admission
        .headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| panic!("{name} in {:?}", admission.headers))
}

#[test]
fn a_month_counts_exactly_and_starts_over_at_its_first_instant() {
    let cfg = monthly_requests(3);
    assert_eq!(cfg.rate_limits[0].period, Period::CalendarMonth);
    let store = prepared(&cfg);
    for i in 0..3 {
        request(&cfg, &store, JAN_15_2026_NOON + i * 86_400_000).unwrap();
    }
    // Two weeks later, still January: spent, whatever the time since the requests.
    let refused = request(&cfg, &store, LAST_MS_OF_JAN_2026).unwrap_err();
    assert_eq!((refused.remaining, refused.limit), (0, 3));
    // At the boundary both say "one second" (rounded up from 1 ms).
    assert_eq!((refused.reset_s, refused.retry_after_s), (1, 1));
    // 2026-02-01T00:00:00Z: a whole new count, no weighting of January.
    for remaining in [2, 1, 0] {
        let admitted = request(&cfg, &store, FEB_1_2026).unwrap();
        assert_eq!(
            header(&admitted, "x-ratelimit-remaining"),
            remaining.to_string()
        );
    }
    assert!(request(&cfg, &store, FEB_1_2026 + 1).is_err());
}

#[test]
fn the_headers_say_when_the_month_resets() {
    let cfg = monthly_requests(2);
    let store = prepared(&cfg);
    // From 2026-01-15T12:00Z to 2026-02-01T00:00Z: 16.5 days.
    let until_february = (FEB_1_2026 - JAN_15_2026_NOON) / 1000;
    assert_eq!(until_february, 1_425_600);
    let admitted = request(&cfg, &store, JAN_15_2026_NOON).unwrap();
    assert_eq!(header(&admitted, "x-ratelimit-limit"), "2");
    assert_eq!(header(&admitted, "x-ratelimit-remaining"), "1");
    assert_eq!(
        header(&admitted, "x-ratelimit-reset"),
        until_february.to_string()
    );
    request(&cfg, &store, JAN_15_2026_NOON).unwrap();
    // Refused: Retry-After is the month's end too (a month's count never slides out).
    let refused = request(&cfg, &store, JAN_15_2026_NOON + 500).unwrap_err();
    assert_eq!(refused.reset_s, until_february);
    assert_eq!(refused.retry_after_s, until_february);
    let reply = GatewayError::RateLimited(refused).to_reply("gw");
    for name in ["retry-after", "x-ratelimit-reset"] {
        assert!(
            reply
                .headers
                .contains(&(name.to_string(), until_february.to_string())),
            "{name}: {:?}",
            reply.headers
        );
    }
}

#[test]
fn a_leap_february_and_december_reset_on_their_last_day() {
    let cfg = monthly_requests(1);
    let store = prepared(&cfg);
    // 2024-02-29 is still February: a request on the 1st spends that day's too.
    request(&cfg, &store, FEB_29_2024 - 28 * 86_400_000).unwrap();
    let refused = request(&cfg, &store, MAR_1_2024 - 1).unwrap_err();
    assert_eq!(refused.retry_after_s, 1);
    request(&cfg, &store, MAR_1_2024).unwrap();
    // December 2025 → January 2026.
    let cfg = monthly_requests(1);
    let store = prepared(&cfg);
    request(&cfg, &store, JAN_1_2026 - 1_000).unwrap();
    let refused = request(&cfg, &store, JAN_1_2026 - 1).unwrap_err();
    assert_eq!((refused.reset_s, refused.retry_after_s), (1, 1));
    request(&cfg, &store, JAN_1_2026).unwrap();
}

#[test]
fn reservations_and_refunds_across_the_month_boundary() {
    let cfg =
        config(r#"[{"name": "t", "key": "sub", "tokens": 1000, "window": "month", "slots": 16}]"#);
    let store = prepared(&cfg);
    let remaining = |now: u64| {
        let admission = request(&cfg, &store, now).unwrap();
        header(&admission, "x-ratelimit-remaining")
    };
    // Within a month a refund gives back what the usage did not take.
    let mut within = request(&cfg, &store, JAN_15_2026_NOON).unwrap();
    reserve(
        &cfg.rate_limits,
        &mut within.token_charges,
        600,
        &store,
        JAN_15_2026_NOON,
    )
    .unwrap();
    settle(
        &cfg.rate_limits,
        &within.token_charges,
        100,
        &store,
        JAN_15_2026_NOON + 1,
    );
    assert_eq!(remaining(JAN_15_2026_NOON + 2), "900");

    // 800 reserved in January's last second, settled in February: January's reservation is
    // gone with January, so giving back 700 credits nothing to February...
    let mut late = request(&cfg, &store, LAST_MS_OF_JAN_2026 - 500).unwrap();
    reserve(
        &cfg.rate_limits,
        &mut late.token_charges,
        800,
        &store,
        LAST_MS_OF_JAN_2026 - 500,
    )
    .unwrap();
    assert_eq!(remaining(LAST_MS_OF_JAN_2026), "100");
    // ... where another request already used 500.
    let early = request(&cfg, &store, FEB_1_2026).unwrap();
    settle(
        &cfg.rate_limits,
        &early.token_charges,
        500,
        &store,
        FEB_1_2026,
    );
    settle(
        &cfg.rate_limits,
        &late.token_charges,
        100,
        &store,
        FEB_1_2026 + 1,
    );
    assert_eq!(remaining(FEB_1_2026 + 2), "500");
}

#[test]
fn usage_beyond_a_reservation_reported_next_month_is_charged_to_that_month() {
    let cfg =
        config(r#"[{"name": "t", "key": "sub", "tokens": 1000, "window": "month", "slots": 16}]"#);
    let store = prepared(&cfg);
    let mut late = request(&cfg, &store, LAST_MS_OF_JAN_2026 - 10).unwrap();
    reserve(
        &cfg.rate_limits,
        &mut late.token_charges,
        10,
        &store,
        LAST_MS_OF_JAN_2026 - 10,
    )
    .unwrap();
    // 210 used: the 10 reserved stay with January, the 200 beyond go to February's count.
    settle(
        &cfg.rate_limits,
        &late.token_charges,
        210,
        &store,
        FEB_1_2026 + 3,
    );
    let admission = request(&cfg, &store, FEB_1_2026 + 4).unwrap();
    assert_eq!(header(&admission, "x-ratelimit-remaining"), "800");
}

#[test]
fn a_limit_switched_from_a_sliding_window_to_months_starts_over() {
    // The same limit name counted with `window_s: 60` until now: its buckets hold an index
    // of minutes, far ahead of any month index. The month judges from a fresh count instead
    // of a window that would never end.
    let store = MemoryStore::new();
    counter::prepare(&store, "l", 4);
    let caller = caller_hash("alice");
    let sliding = Window {
        limit: 1,
        period: Period::Sliding { window_ms: 60_000 },
    };
    counter::consume(&store, "l", 4, sliding, caller, 1, JAN_15_2026_NOON).unwrap();
    assert!(counter::consume(&store, "l", 4, sliding, caller, 1, JAN_15_2026_NOON).is_err());
    let month = Window {
        limit: 1,
        period: Period::CalendarMonth,
    };
    let counted = counter::consume(&store, "l", 4, month, caller, 1, JAN_15_2026_NOON).unwrap();
    assert_eq!(counted.remaining, 0);
    assert!(counter::consume(&store, "l", 4, month, caller, 1, JAN_15_2026_NOON).is_err());
    assert!(counter::consume(&store, "l", 4, month, caller, 1, FEB_1_2026).is_ok());
}
