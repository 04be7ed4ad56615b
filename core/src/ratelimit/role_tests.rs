//! `key: "role"`: a team's shared budget. Callers are counted under the first configured role
//! (in `roles.grants` order) they hold; callers holding none are not counted.

use super::*;
use crate::config::load;
use crate::store::MemoryStore;

fn config() -> crate::config::GatewayConfig {
    let text = r#"{"providers": [{"name": "p", "issuer": "i", "audiences": ["a"],
             "hs256_secret": {"inline": "0123456789abcdef0123456789abcdef"}}],
        "roles": {"claims": ["realm_access.roles"],
                  "grants": {"admin": ["admin"], "research": ["chat"], "user": ["chat"]}},
        "rate_limits": [{"name": "team", "key": "role", "requests": 3, "window_s": 3600}]}"#;
    load(text.as_bytes()).unwrap()
}

fn caller(provider: usize, sub: &str, roles: &[&str]) -> Identity {
    Identity {
        provider,
        sub: sub.into(),
        scopes: vec![],
        exp: u64::MAX,
        nbf: None,
        claims: vec![],
        roles: roles.iter().map(|r| r.to_string()).collect(),
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

#[test]
fn the_limit_knows_the_configured_roles_in_grants_order() {
    let cfg = config();
    assert_eq!(
        cfg.rate_limits[0].key,
        LimitKey::Role(vec!["admin".into(), "research".into(), "user".into()])
    );
}

#[test]
fn callers_of_one_role_share_one_count_and_another_role_has_its_own() {
    let cfg = config();
    let store = prepared(&cfg);
    let now = 7_200_000;
    let admit_one = |who: &Identity| admit(&cfg.rate_limits, &facts(), Some(who), &store, now);
    let alice = caller(0, "alice", &["research"]);
    let bob = caller(0, "bob", &["research"]);
    let carol = caller(0, "carol", &["user"]);
    admit_one(&alice).unwrap();
    admit_one(&alice).unwrap();
    admit_one(&bob).unwrap();
    // The research team's 3 are spent, for both of them.
    assert!(matches!(admit_one(&bob), Err(GatewayError::RateLimited(_))));
    assert!(matches!(
        admit_one(&alice),
        Err(GatewayError::RateLimited(_))
    ));
    // A `user` has the user role's own count.
    for _ in 0..3 {
        admit_one(&carol).unwrap();
    }
    assert!(admit_one(&carol).is_err());
}

#[test]
fn a_caller_is_counted_under_its_first_configured_role() {
    let cfg = config();
    let f = facts();
    let key = |who: &Identity| caller_identity(&cfg.rate_limits[0], &f, Some(who));
    // `research` comes before `user` in grants, whatever the caller's own order.
    let both = caller(0, "dave", &["user", "research"]);
    assert_eq!(key(&both).as_deref(), Some("role\u{0}research"));
    // One role, whichever provider verified the caller (a session and a bearer token alike).
    assert_eq!(key(&caller(0, "a", &["research"])), key(&both));
    assert_eq!(key(&caller(3, "b", &["research"])), key(&both));
    // Unconfigured roles do not count; no role, or no caller at all: not counted.
    assert_eq!(key(&caller(0, "erin", &["guest"])), None);
    assert_eq!(key(&caller(0, "frank", &[])), None);
    assert_eq!(caller_identity(&cfg.rate_limits[0], &f, None), None);
    let store = prepared(&cfg);
    let admission = admit(
        &cfg.rate_limits,
        &f,
        Some(&caller(0, "erin", &["guest"])),
        &store,
        7_200_000,
    )
    .unwrap();
    assert!(admission.headers.is_empty(), "no limit counted it");
}
