//! The rules of the crate's doc, against limitador's in-memory storage.

use super::*;
use crate::proto::{Entry, RateLimitDescriptor, RateLimitOverride, RateLimitUnit};

const OK: i32 = Code::Ok as i32;
const OVER: i32 = Code::OverLimit as i32;

fn decider() -> Decider {
    Decider::new(Limiter::in_memory(10_000))
}

/// A descriptor with `entries` and a limit of `n` per `unit`.
fn limited(entries: &[(&str, &str)], n: u32, unit: RateLimitUnit) -> RateLimitDescriptor {
    RateLimitDescriptor {
        entries: entries
            .iter()
            .map(|(k, v)| Entry {
                key: k.to_string(),
                value: v.to_string(),
            })
            .collect(),
        limit: Some(RateLimitOverride {
            requests_per_unit: n,
            unit: unit as i32,
        }),
        hits_addend: None,
    }
}

fn per_user(user: &str, n: u32) -> RateLimitDescriptor {
    limited(
        &[("limit", "per-user"), ("key", user)],
        n,
        RateLimitUnit::Minute,
    )
}

fn with_hits(mut descriptor: RateLimitDescriptor, hits: u64) -> RateLimitDescriptor {
    descriptor.hits_addend = Some(hits);
    descriptor
}

fn request(descriptors: Vec<RateLimitDescriptor>) -> RateLimitRequest {
    RateLimitRequest {
        domain: "ai-gateway".into(),
        descriptors,
        hits_addend: 0,
    }
}

fn block_on<F: std::future::Future>(future: F) -> F::Output {
    tokio::runtime::Builder::new_current_thread()
        .enable_time()
        .build()
        .expect("runtime")
        .block_on(future)
}

/// The overall code and each status's (code, remaining).
fn ask(decider: &Decider, descriptors: Vec<RateLimitDescriptor>) -> (i32, Vec<(i32, u32)>) {
    let response = block_on(decider.decide(&request(descriptors))).expect("answered");
    let statuses = response
        .statuses
        .iter()
        .map(|s| (s.code, s.limit_remaining))
        .collect();
    (response.overall_code, statuses)
}

#[test]
fn three_per_minute_admits_three() {
    let d = decider();
    let answers: Vec<_> = (0..5)
        .map(|_| ask(&d, vec![per_user("alice", 3)]))
        .collect();
    assert_eq!(
        answers,
        [
            (OK, vec![(OK, 2)]),
            (OK, vec![(OK, 1)]),
            (OK, vec![(OK, 0)]),
            (OVER, vec![(OVER, 0)]),
            (OVER, vec![(OVER, 0)]),
        ]
    );
}

#[test]
fn the_status_names_the_limit_and_its_window() {
    let d = decider();
    let response = block_on(d.decide(&request(vec![per_user("alice", 3)]))).expect("answered");
    let status = &response.statuses[0];
    assert_eq!(
        status.current_limit,
        Some(RateLimit {
            name: "per-user".into(),
            requests_per_unit: 3,
            unit: RateLimitUnit::Minute as i32,
        })
    );
    let reset = status.duration_until_reset.expect("a reset");
    assert!(
        reset.seconds <= 60 && (reset.seconds, reset.nanos) > (0, 0),
        "{reset:?}"
    );
}

#[test]
fn each_key_has_its_own_counter() {
    let d = decider();
    assert_eq!(ask(&d, vec![per_user("alice", 1)]).0, OK);
    assert_eq!(ask(&d, vec![per_user("bob", 1)]).0, OK);
    assert_eq!(ask(&d, vec![per_user("alice", 1)]).0, OVER);
    // In one request, each descriptor on its own.
    let (overall, statuses) = ask(&d, vec![per_user("carol", 1), per_user("bob", 1)]);
    assert_eq!((overall, statuses), (OVER, vec![(OK, 0), (OVER, 0)]));
}

#[test]
fn descriptors_without_a_limit_are_ok_and_not_counted() {
    let d = decider();
    let mut plain = per_user("alice", 1);
    plain.limit = None;
    let unknown = limited(&[("limit", "x")], 0, RateLimitUnit::Unknown);
    for _ in 0..3 {
        let (overall, statuses) = ask(&d, vec![plain.clone(), unknown.clone()]);
        assert_eq!((overall, statuses), (OK, vec![(OK, 0), (OK, 0)]));
    }
}

#[test]
fn hits_come_from_the_descriptor_else_the_request() {
    let d = decider();
    let mut req = request(vec![per_user("alice", 10)]);
    req.hits_addend = 4;
    let response = block_on(d.decide(&req)).expect("answered");
    assert_eq!(response.statuses[0].limit_remaining, 6);
    req.descriptors[0].hits_addend = Some(5);
    let response = block_on(d.decide(&req)).expect("answered");
    assert_eq!(response.statuses[0].limit_remaining, 1);
}

#[test]
fn hits_over_the_limit_are_counted_all_the_same() {
    let d = decider();
    assert_eq!(
        ask(&d, vec![with_hits(per_user("alice", 10), 8)]).1,
        [(OK, 2)]
    );
    assert_eq!(
        ask(&d, vec![with_hits(per_user("alice", 10), 5)]).1,
        [(OVER, 0)]
    );
    // 13 counted: 2 more do not fit (they would if the 5 had been dropped).
    assert_eq!(
        ask(&d, vec![with_hits(per_user("alice", 10), 2)]).1,
        [(OVER, 0)]
    );
}

#[test]
fn check_only_admits_while_one_more_fits_and_counts_nothing() {
    let d = decider();
    let check = || with_hits(per_user("alice", 2), 0);
    for _ in 0..3 {
        assert_eq!(ask(&d, vec![check()]), (OK, vec![(OK, 2)]));
    }
    assert_eq!(ask(&d, vec![per_user("alice", 2)]).1, [(OK, 1)]);
    assert_eq!(ask(&d, vec![check()]), (OK, vec![(OK, 1)]));
    assert_eq!(ask(&d, vec![per_user("alice", 2)]).1, [(OK, 0)]);
    assert_eq!(ask(&d, vec![check()]), (OVER, vec![(OVER, 0)]));
}

#[test]
fn an_over_check_turns_the_request_away_before_anything_is_counted() {
    let d = decider();
    let budget = || {
        limited(
            &[("limit", "tokens"), ("key", "alice")],
            1,
            RateLimitUnit::Hour,
        )
    };
    assert_eq!(ask(&d, vec![budget()]).0, OK);
    // The counting descriptor comes first in the request, the check second: still nothing
    // is counted, and its status says what counting would have answered.
    let (overall, statuses) = ask(&d, vec![per_user("alice", 2), with_hits(budget(), 0)]);
    assert_eq!((overall, statuses), (OVER, vec![(OK, 2), (OVER, 0)]));
    assert_eq!(ask(&d, vec![per_user("alice", 2)]).1, [(OK, 1)]);
}

#[test]
fn another_number_or_window_is_another_limit() {
    let d = decider();
    assert_eq!(ask(&d, vec![per_user("alice", 1)]).0, OK);
    assert_eq!(ask(&d, vec![per_user("alice", 1)]).0, OVER);
    assert_eq!(ask(&d, vec![per_user("alice", 2)]).1, [(OK, 1)]);
    let hourly = limited(
        &[("limit", "per-user"), ("key", "alice")],
        1,
        RateLimitUnit::Hour,
    );
    assert_eq!(ask(&d, vec![hourly]).1, [(OK, 0)]);
}

#[test]
fn a_descriptor_with_more_entries_is_another_limit() {
    let d = decider();
    let per_model = |model| {
        limited(
            &[("limit", "per-user"), ("key", "alice"), ("model", model)],
            1,
            RateLimitUnit::Minute,
        )
    };
    assert_eq!(ask(&d, vec![per_user("alice", 1)]).0, OK);
    assert_eq!(ask(&d, vec![per_model("qwen3")]).0, OK);
    assert_eq!(ask(&d, vec![per_model("llama")]).0, OK);
    assert_eq!(ask(&d, vec![per_model("qwen3")]).0, OVER);
    // Entry order does not matter.
    let reordered = limited(
        &[("limit", "per-user"), ("model", "llama"), ("key", "alice")],
        1,
        RateLimitUnit::Minute,
    );
    assert_eq!(ask(&d, vec![reordered]).0, OVER);
}

#[test]
fn client_text_cannot_change_a_condition() {
    let d = decider();
    let sneaky = "x' || true || 'y";
    let first = limited(
        &[("limit", sneaky), ("key", "a'b\\c\n")],
        1,
        RateLimitUnit::Minute,
    );
    assert_eq!(ask(&d, vec![first.clone()]).0, OK);
    assert_eq!(ask(&d, vec![first]).0, OVER);
    // Another value of the condition is another limit, untouched.
    let other = limited(
        &[("limit", "x"), ("key", "a'b\\c\n")],
        1,
        RateLimitUnit::Minute,
    );
    assert_eq!(ask(&d, vec![other]).0, OK);
}

#[test]
fn malformed_requests_are_refused_and_count_nothing() {
    let d = decider();
    let mut no_domain = request(vec![per_user("alice", 1)]);
    no_domain.domain.clear();
    assert!(matches!(
        block_on(d.decide(&no_domain)),
        Err(Refusal::InvalidArgument(_))
    ));
    let empty = limited(&[], 1, RateLimitUnit::Minute);
    let refused = block_on(d.decide(&request(vec![per_user("alice", 1), empty])));
    assert!(
        matches!(refused, Err(Refusal::InvalidArgument(_))),
        "{refused:?}"
    );
    assert_eq!(ask(&d, vec![per_user("alice", 1)]).0, OK);
}

#[test]
fn zero_requests_per_unit_is_always_over() {
    let d = decider();
    assert_eq!(ask(&d, vec![per_user("alice", 0)]), (OVER, vec![(OVER, 0)]));
}

#[test]
fn domains_count_apart() {
    let d = decider();
    assert_eq!(ask(&d, vec![per_user("alice", 1)]).0, OK);
    let mut elsewhere = request(vec![per_user("alice", 1)]);
    elsewhere.domain = "other".into();
    let response = block_on(d.decide(&elsewhere)).expect("answered");
    assert_eq!(response.overall_code, OK);
}
