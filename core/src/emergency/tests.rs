use jwt_simple::prelude::{Claims, Duration, HS256Key, MACLike};

use super::*;
use crate::store::{ensure_exists, MemoryStore, SharedStore};

const KEY: &[u8] = b"break-glass-key-of-at-least-32-bytes!!";
const NOW: u64 = 1_800_000_000;

fn access() -> EmergencyAccess {
    EmergencyAccess {
        allow: vec![
            AddressRange::parse("10.0.0.0/24").unwrap(),
            AddressRange::parse("127.0.0.1").unwrap(),
            AddressRange::parse("fd00::/8").unwrap(),
        ],
        key: KEY.to_vec(),
        session_key: session_key(KEY),
        scopes: vec!["gateway:admin".into()],
        max_ttl_s: 3600,
        trusted_hops: 0,
        cookie: "gw_emergency".into(),
        secure_cookie: true,
        session_provider: 0,
    }
}

fn mint(key: &[u8], iss: &str, iat: u64, exp: u64, jti: Option<&str>) -> String {
    let mut claims = Claims::create(Duration::from_secs(0)).with_issuer(iss);
    claims.issued_at = Some(Duration::from_secs(iat));
    claims.expires_at = Some(Duration::from_secs(exp));
    claims.invalid_before = None;
    claims = claims.with_subject("oncall@example.com");
    if let Some(jti) = jti {
        claims = claims.with_jwt_id(jti);
    }
    HS256Key::from_bytes(key).authenticate(claims).unwrap()
}

#[test]
fn a_fresh_token_verifies_with_its_subject_and_jti() {
    let token = mint(KEY, EMERGENCY_ISSUER, NOW - 10, NOW + 600, Some("j1"));
    assert!(is_emergency_token(&token));
    let glass = verify(&token, &access(), NOW).unwrap();
    assert_eq!(glass.sub, "oncall@example.com");
    assert_eq!(glass.jti, "j1");
    assert_eq!(glass.exp, NOW + 600);
}

#[test]
fn wrong_key_issuer_lifetime_or_missing_jti_are_refused() {
    let a = access();
    let other_key = mint(
        b"another-key-of-at-least-32-bytes-long!",
        EMERGENCY_ISSUER,
        NOW,
        NOW + 60,
        Some("j"),
    );
    assert_eq!(verify(&other_key, &a, NOW), Err(TokenError::BadSignature));
    let other_iss = mint(KEY, "https://idp.example.com", NOW, NOW + 60, Some("j"));
    assert!(!is_emergency_token(&other_iss));
    assert!(verify(&other_iss, &a, NOW).is_err());
    let too_long = mint(KEY, EMERGENCY_ISSUER, NOW, NOW + 3601, Some("j"));
    assert_eq!(
        verify(&too_long, &a, NOW),
        Err(TokenError::InvalidClaim("exp"))
    );
    let old = mint(KEY, EMERGENCY_ISSUER, NOW - 7200, NOW + 60, Some("j"));
    assert!(
        verify(&old, &a, NOW).is_err(),
        "issued longer ago than max_ttl_s"
    );
    let expired = mint(KEY, EMERGENCY_ISSUER, NOW - 700, NOW - 100, Some("j"));
    assert!(verify(&expired, &a, NOW).is_err());
    let no_jti = mint(KEY, EMERGENCY_ISSUER, NOW, NOW + 60, None);
    assert_eq!(
        verify(&no_jti, &a, NOW),
        Err(TokenError::ClaimMissing("jti"))
    );
    let future = mint(KEY, EMERGENCY_ISSUER, NOW + 600, NOW + 900, Some("j"));
    assert!(verify(&future, &a, NOW).is_err(), "iat in the future");
}

#[test]
fn a_session_token_never_verifies_as_a_break_glass_token() {
    let a = access();
    let token = mint(&a.session_key, EMERGENCY_ISSUER, NOW, NOW + 60, Some("j"));
    assert_eq!(verify(&token, &a, NOW), Err(TokenError::BadSignature));
}

#[test]
fn hostile_tokens_are_not_taken_for_break_glass() {
    for token in [
        "",
        ".",
        "..",
        "a.b.c",
        "a.b.c.d",
        "x.eyJpc3MiOjF9.y",
        &"a.".repeat(5000),
    ] {
        assert!(!is_emergency_token(token), "{token}");
    }
}

#[test]
fn addresses_in_and_out_of_range() {
    let a = access();
    assert!(a.allows(Some("10.0.0.9")));
    assert!(a.allows(Some("127.0.0.1")));
    assert!(a.allows(Some("::ffff:10.0.0.200")), "IPv4-mapped");
    assert!(a.allows(Some("fd12::1")));
    assert!(!a.allows(Some("10.0.1.1")));
    assert!(!a.allows(Some("127.0.0.2")));
    assert!(!a.allows(Some("fe80::1")));
    assert!(!a.allows(Some("not an address")));
    assert!(!a.allows(None));
}

/// Found by the `introspection` fuzz target: a range written IPv4-mapped contained nothing,
/// not even its own address, since mapped clients are compared as IPv4.
#[test]
fn ipv4_mapped_ranges_contain_what_they_name() {
    let one = AddressRange::parse("::ffff:10.0.0.1").unwrap();
    assert!(one.contains("::ffff:10.0.0.1".parse().unwrap()));
    assert!(one.contains("10.0.0.1".parse().unwrap()));
    assert!(!one.contains("10.0.0.2".parse().unwrap()));
    let range = AddressRange::parse("::ffff:10.0.0.0/120").unwrap();
    assert_eq!(range, AddressRange::parse("10.0.0.0/24").unwrap());
    assert!(range.contains("::ffff:10.0.0.200".parse().unwrap()));
    assert!(!range.contains("10.0.1.1".parse().unwrap()));
    let all = AddressRange::parse("::ffff:0.0.0.0/96").unwrap();
    assert!(all.contains("8.8.8.8".parse().unwrap()));
    assert!(!all.contains("fd00::1".parse().unwrap()));
    assert!(AddressRange::parse("::ffff:0.0.0.0/95").is_err());
}

#[test]
fn ranges_parse_strictly() {
    assert!(AddressRange::parse("0.0.0.0/0")
        .unwrap()
        .contains("8.8.8.8".parse().unwrap()));
    for bad in [
        "10.0.0.7/24",
        "10.0.0.0/33",
        "10.0.0.0/",
        "10.0.0.0/-1",
        "host",
        "::/129",
        "",
    ] {
        assert!(AddressRange::parse(bad).is_err(), "{bad}");
    }
}

#[test]
fn a_jti_is_spent_once_and_expired_ones_are_forgotten() {
    let store = MemoryStore::new();
    ensure_exists(&store, SPENT_KEY, b"[]");
    assert_eq!(spend(&store, "a", NOW + 60, NOW), Spend::First);
    assert_eq!(spend(&store, "a", NOW + 60, NOW), Spend::Reused);
    assert_eq!(spend(&store, "b", NOW + 10, NOW), Spend::First);
    // After b's token expired, its entry goes with the next write.
    assert_eq!(spend(&store, "c", NOW + 90, NOW + 20), Spend::First);
    let (bytes, _) = store.get(SPENT_KEY).unwrap();
    let live: Vec<(String, u64)> = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(
        live.iter().map(|(j, _)| j.as_str()).collect::<Vec<_>>(),
        ["a", "c"]
    );
}

/// A store whose first write loses a race, as when another worker spent the same `jti` between
/// this worker's read and its write.
struct RacingStore {
    inner: MemoryStore,
    raced: std::cell::Cell<bool>,
}

impl SharedStore for RacingStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.inner.get(key)
    }
    fn set(
        &self,
        key: &str,
        value: &[u8],
        cas: Option<u32>,
    ) -> Result<(), crate::store::StoreError> {
        if !self.raced.replace(true) {
            self.inner.set(key, br#"[["a",1800000060]]"#, None).unwrap();
        }
        self.inner.set(key, value, cas)
    }
}

#[test]
fn a_race_for_the_same_jti_admits_one() {
    let store = RacingStore {
        inner: MemoryStore::new(),
        raced: std::cell::Cell::new(false),
    };
    ensure_exists(&store.inner, SPENT_KEY, b"[]");
    assert_eq!(spend(&store, "a", NOW + 60, NOW), Spend::Reused);
}
