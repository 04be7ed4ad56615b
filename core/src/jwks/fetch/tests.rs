use super::*;
use crate::store::MemoryStore;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::Ed25519KeyPair;
use serde_json::json;

const P: &str = "sso";

fn remote() -> RemoteJwks {
    RemoteJwks {
        cluster: "idp".into(),
        authority: "idp".into(),
        path: "/jwks".into(),
        cache_ttl_s: 600,
        min_refresh_interval_s: 30,
        timeout_ms: 2000,
    }
}

fn jwks_document(kids: &[&str]) -> Vec<u8> {
    let keys: Vec<_> = kids
        .iter()
        .map(|kid| {
            let pair = Ed25519KeyPair::generate();
            json!({"kty": "OKP", "crv": "Ed25519", "kid": kid,
                   "x": URL_SAFE_NO_PAD.encode(pair.public_key().to_bytes())})
        })
        .collect();
    json!({ "keys": keys }).to_string().into_bytes()
}

fn ok(body: Vec<u8>) -> CallResponse {
    CallResponse {
        status: Some(200),
        body: Some(body),
    }
}

#[test]
fn one_fetch_serves_every_worker() {
    let store = MemoryStore::new();
    prepare(&store, P);
    let (mut w1, mut w2) = (ProviderKeys::default(), ProviderKeys::default());
    let now = 1_000_000;
    assert_eq!(
        claim_fetch(&store, P, (&remote()).into(), now, false, 1),
        FetchDecision::Start
    );
    assert_eq!(
        claim_fetch(&store, P, (&remote()).into(), now + 10, false, 2),
        FetchDecision::InFlight {
            until_ms: now + 3000
        }
    );
    assert_eq!(
        finish_fetch(&store, P, now + 50, 1, &ok(jwks_document(&["a", "b"]))),
        Ok(2)
    );
    assert!(w1.sync(&store, P));
    assert!(w2.sync(&store, P));
    assert_eq!(w1.keys().unwrap().len(), 2);
    assert_eq!(w1.fingerprint(), w2.fingerprint());
    assert!(!w1.sync(&store, P), "same version: not parsed again");
}

#[test]
fn a_storm_of_claims_starts_one_fetch_per_interval() {
    let store = MemoryStore::new();
    prepare(&store, P);
    let t0 = 5_000_000;
    assert_eq!(
        claim_fetch(&store, P, (&remote()).into(), t0, false, 1),
        FetchDecision::Start
    );
    finish_fetch(&store, P, t0 + 5, 1, &ok(jwks_document(&["a"]))).unwrap();
    let mut starts = 0;
    for i in 0..200u64 {
        let now = t0 + 10 + i * 100; // 20 s of requests with unknown kids, two workers
        if claim_fetch(&store, P, (&remote()).into(), now, true, i % 2 + 1) == FetchDecision::Start
        {
            starts += 1;
            finish_fetch(&store, P, now + 5, i % 2 + 1, &ok(jwks_document(&["a"]))).unwrap();
        }
    }
    assert_eq!(starts, 0, "within min_refresh_interval of the first fetch");
    assert_eq!(
        claim_fetch(&store, P, (&remote()).into(), t0 + 30_000, true, 1),
        FetchDecision::Start
    );
}

#[test]
fn too_soon_is_not_before_the_interval() {
    let store = MemoryStore::new();
    let t0 = 10_000;
    assert_eq!(
        claim_fetch(&store, P, (&remote()).into(), t0, true, 1),
        FetchDecision::Start
    );
    finish_fetch(&store, P, t0 + 1, 1, &ok(jwks_document(&["a"]))).unwrap();
    assert_eq!(
        claim_fetch(&store, P, (&remote()).into(), t0 + 100, true, 2),
        FetchDecision::NotBefore { at_ms: t0 + 30_000 }
    );
}

#[test]
fn failures_keep_the_last_good_keys() {
    let store = MemoryStore::new();
    let mut worker = ProviderKeys::default();
    let t0 = 1_000_000;
    claim_fetch(&store, P, (&remote()).into(), t0, false, 1);
    finish_fetch(&store, P, t0, 1, &ok(jwks_document(&["good"]))).unwrap();
    worker.sync(&store, P);
    let before = worker.fingerprint();
    let failures = [
        CallResponse {
            status: None,
            body: None,
        },
        CallResponse {
            status: Some(500),
            body: Some(b"oops".to_vec()),
        },
        ok(b"not json".to_vec()),
        ok(br#"{"keys": [{"kty": "oct", "k": "c2VjcmV0"}]}"#.to_vec()),
        ok(vec![b' '; MAX_JWKS_BYTES + 1]),
    ];
    for (i, failure) in failures.iter().enumerate() {
        let now = t0 + (i as u64 + 1) * 31_000;
        assert_eq!(
            claim_fetch(&store, P, (&remote()).into(), now, true, 1),
            FetchDecision::Start
        );
        assert!(
            finish_fetch(&store, P, now + 1, 1, failure).is_err(),
            "{failure:?}"
        );
        worker.sync(&store, P);
        assert_eq!(worker.fingerprint(), before);
    }
}

#[test]
fn without_keys_a_failed_fetch_is_retried_after_a_second() {
    let store = MemoryStore::new();
    let t0 = 1_000_000;
    assert_eq!(
        claim_fetch(&store, P, (&remote()).into(), t0, false, 1),
        FetchDecision::Start
    );
    let down = CallResponse {
        status: None,
        body: None,
    };
    assert_eq!(
        finish_fetch(&store, P, t0 + 5, 1, &down),
        Err(FetchError::NoResponse)
    );
    assert_eq!(
        claim_fetch(&store, P, (&remote()).into(), t0 + 500, false, 2),
        FetchDecision::NotBefore {
            at_ms: t0 + INITIAL_RETRY_MS
        }
    );
    assert_eq!(
        claim_fetch(&store, P, (&remote()).into(), t0 + 1000, false, 2),
        FetchDecision::Start
    );
}

#[test]
fn a_vanished_owner_frees_the_slot_after_timeout_and_grace() {
    let store = MemoryStore::new();
    let t0 = 1_000_000;
    assert_eq!(
        claim_fetch(&store, P, (&remote()).into(), t0, false, 1),
        FetchDecision::Start
    );
    let until = t0 + 2000 + IN_FLIGHT_GRACE_MS;
    assert_eq!(
        claim_fetch(&store, P, (&remote()).into(), until - 1, false, 2),
        FetchDecision::InFlight { until_ms: until }
    );
    assert_eq!(
        claim_fetch(&store, P, (&remote()).into(), until, false, 2),
        FetchDecision::Start
    );
    // The first owner's late answer must not release the second owner's claim.
    finish_fetch(&store, P, until + 1, 1, &ok(jwks_document(&["late"]))).unwrap();
    assert_eq!(
        claim_fetch(&store, P, (&remote()).into(), until + 2, false, 3),
        FetchDecision::InFlight {
            until_ms: until + 2000 + IN_FLIGHT_GRACE_MS
        }
    );
}

#[test]
fn a_slot_created_twice_is_harmless() {
    // The host lets two workers "create" a key: both write the neutral value, then only one
    // CAS claim can win.
    let store = MemoryStore::new();
    prepare(&store, P);
    prepare(&store, P);
    let first = claim_fetch(&store, P, (&remote()).into(), 9_000, false, 1);
    let second = claim_fetch(&store, P, (&remote()).into(), 9_000, false, 2);
    assert_eq!(first, FetchDecision::Start);
    assert!(matches!(second, FetchDecision::InFlight { .. }));
}

#[test]
fn refresh_is_due_before_the_ttl_runs_out() {
    let store = MemoryStore::new();
    let mut worker = ProviderKeys::default();
    assert!(worker.refresh_due(&remote(), 0), "no keys yet");
    let t0 = 1_000_000;
    claim_fetch(&store, P, (&remote()).into(), t0, false, 1);
    finish_fetch(&store, P, t0, 1, &ok(jwks_document(&["a"]))).unwrap();
    worker.sync(&store, P);
    assert!(!worker.refresh_due(&remote(), t0 + 539_999));
    assert!(worker.refresh_due(&remote(), t0 + 540_000));
}

#[test]
fn rotation_changes_the_fingerprint() {
    let store = MemoryStore::new();
    let mut worker = ProviderKeys::default();
    claim_fetch(&store, P, (&remote()).into(), 1_000, false, 1);
    finish_fetch(&store, P, 1_000, 1, &ok(jwks_document(&["a"]))).unwrap();
    assert!(worker.sync(&store, P));
    let first = worker.fingerprint();
    claim_fetch(&store, P, (&remote()).into(), 40_000, true, 1);
    finish_fetch(&store, P, 40_000, 1, &ok(jwks_document(&["b"]))).unwrap();
    assert!(worker.sync(&store, P));
    assert_ne!(worker.fingerprint(), first);
}

#[test]
fn unavailable_is_the_tokens_own_refusal_once_keys_exist_else_503() {
    assert_eq!(
        unavailable(false, TokenError::UnknownKid, 1_500),
        GatewayError::JwksUnavailable { retry_after_s: 2 }
    );
    assert_eq!(
        unavailable(true, TokenError::UnknownKid, 1_500),
        GatewayError::InvalidToken(TokenError::UnknownKid)
    );
}

#[test]
fn a_fetch_is_in_flight_from_its_claim_until_it_ends_or_is_given_up() {
    let store = MemoryStore::new();
    prepare(&store, P);
    let timing: FetchTiming = (&remote()).into();
    assert!(!fetch_in_flight(&store, P, timing, 5_000));
    assert_eq!(
        claim_fetch(&store, P, timing, 5_000, false, 1),
        FetchDecision::Start
    );
    assert!(fetch_in_flight(&store, P, timing, 5_001));
    // Given up after timeout_ms plus the grace period (its owner may be gone).
    assert!(!fetch_in_flight(
        &store,
        P,
        timing,
        5_000 + 2_000 + IN_FLIGHT_GRACE_MS
    ));
    release_slot(&store, P, 1);
    assert!(!fetch_in_flight(&store, P, timing, 5_002));
}

#[test]
fn garbage_in_shared_data_is_ignored_not_trusted() {
    let store = MemoryStore::new();
    store.set(&keys_key(P), b"no newline", None).unwrap();
    store.set(&slot_key(P), b"\xff garbage", None).unwrap();
    let mut worker = ProviderKeys::default();
    assert!(!worker.sync(&store, P));
    assert!(worker.keys().is_none());
    // An unreadable slot is reset to neutral and claimed by CAS.
    assert_eq!(
        claim_fetch(&store, P, (&remote()).into(), 5_000, false, 1),
        FetchDecision::Start
    );
}
