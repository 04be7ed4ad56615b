use serde_json::json;

use super::cache::{self, Entry, Lookup, Refusal};
use super::response::{judge, ActiveToken, Unavailable, Verdict};
use super::*;
use crate::jwt::cache::digest;
use crate::jwt::TokenError;
use crate::outgoing::CallResponse;
use crate::store::MemoryStore;

const NOW: u64 = 1_800_000_000;

fn table(slots: u32) -> cache::Table {
    cache::Table {
        namespace: "test".into(),
        slots,
    }
}

fn settings() -> Introspection {
    Introspection {
        provider: 2,
        cluster: "idp".into(),
        authority: "sso.example.com".into(),
        path: "/oauth2/introspect".into(),
        client_id: "gate:way".into(),
        client_secret: "s3cret&=".into(),
        client_auth: ClientAuth::Basic,
        cache_ttl_s: 60,
        timeout_ms: 2000,
        all_tokens: false,
        cache: table(64),
        issuer: "https://sso.example.com".into(),
        audiences: vec!["gateway".into()],
        scope_claim: "scope".into(),
        clock_skew_s: 30,
        require_token_type: false,
    }
}

fn answer(status: u32, body: serde_json::Value) -> CallResponse {
    CallResponse {
        status: Some(status),
        body: Some(body.to_string().into_bytes()),
    }
}

fn judged(body: serde_json::Value) -> Result<Verdict, Unavailable> {
    judge(
        &answer(200, body),
        &settings(),
        None,
        &["team".to_string()],
        NOW,
    )
}

#[test]
fn the_call_is_a_form_post_with_basic_client_authentication() {
    let call = request::call(&settings(), "opaque token+/=");
    assert_eq!(call.cluster, "idp");
    assert_eq!(call.path(), "/oauth2/introspect");
    let header = |name: &str| {
        call.headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    assert_eq!(header(":method"), Some("POST"));
    assert_eq!(header(":authority"), Some("sso.example.com"));
    assert_eq!(
        header("content-type"),
        Some("application/x-www-form-urlencoded")
    );
    // RFC 6749 2.3.1: form-encoded, then base64: `gate%3Away:s3cret%26%3D`.
    use base64::Engine;
    let expected = base64::engine::general_purpose::STANDARD.encode("gate%3Away:s3cret%26%3D");
    assert_eq!(
        header("authorization"),
        Some(format!("Basic {expected}").as_str())
    );
    assert_eq!(
        String::from_utf8(call.body.unwrap()).unwrap(),
        "token=opaque+token%2B%2F%3D&token_type_hint=access_token"
    );
}

#[test]
fn client_secret_post_puts_the_credentials_in_the_form() {
    let mut s = settings();
    s.client_auth = ClientAuth::Post;
    let call = request::call(&s, "t");
    assert!(call.headers.iter().all(|(n, _)| n != "authorization"));
    assert_eq!(
        String::from_utf8(call.body.unwrap()).unwrap(),
        "token=t&token_type_hint=access_token&client_id=gate%3Away&client_secret=s3cret%26%3D"
    );
}

#[test]
fn only_opaque_tokens_are_introspected_unless_all_are() {
    let mut s = settings();
    assert!(introspects(&s, "2YotnFZFEjr1zCsicMWpAA"));
    assert!(!introspects(&s, "a.b.c"));
    s.all_tokens = true;
    assert!(introspects(&s, "a.b.c"));
}

#[test]
fn an_active_token_gives_its_subject_scopes_and_kept_claims() {
    let verdict = judged(
        json!({"active": true, "sub": "alice", "scope": "chat:read chat:write chat:read",
        "aud": ["other", "gateway"], "iss": "https://sso.example.com", "exp": NOW + 100,
        "client_id": "web", "team": "blue"}),
    );
    assert_eq!(
        verdict,
        Ok(Verdict::Active(ActiveToken {
            sub: "alice".into(),
            scopes: vec!["chat:read".into(), "chat:write".into()],
            roles: vec![],
            claims: vec![("team".into(), "blue".into())],
            exp: Some(NOW + 100),
        }))
    );
}

#[test]
fn refusals_follow_the_claims() {
    let refused = |body| match judged(body) {
        Ok(Verdict::Refused(error)) => error,
        other => panic!("{other:?}"),
    };
    assert_eq!(refused(json!({"active": false})), TokenError::NotActive);
    assert_eq!(
        refused(json!({"active": true, "sub": "a", "aud": "gateway", "exp": NOW - 31})),
        TokenError::Expired
    );
    assert_eq!(
        refused(json!({"active": true, "sub": "a", "aud": "gateway", "nbf": NOW + 31})),
        TokenError::NotYetValid
    );
    assert_eq!(
        refused(json!({"active": true, "sub": "a", "aud": "gateway", "iss": "https://evil"})),
        TokenError::UnknownIssuer
    );
    assert_eq!(
        refused(json!({"active": true, "sub": "a", "aud": ["x", "y"]})),
        TokenError::AudienceMismatch
    );
    assert_eq!(
        refused(json!({"active": true, "sub": "a", "client_id": "someone-else"})),
        TokenError::AudienceMismatch
    );
    assert_eq!(
        refused(json!({"active": true, "aud": "gateway"})),
        TokenError::ClaimMissing("sub")
    );
    assert_eq!(
        refused(json!({"active": true, "sub": "a", "aud": "gateway", "exp": "soon"})),
        TokenError::InvalidClaim("exp")
    );
    for kind in [
        json!({"token_type": "refresh_token"}),
        json!({"token_use": "refresh_token"}),
        json!({"typ": "Refresh"}),
        json!({"typ": "ID"}),
        json!({"token_type": 7}),
    ] {
        let mut body = json!({"active": true, "sub": "a", "aud": "gateway"});
        body.as_object_mut()
            .unwrap()
            .extend(kind.as_object().unwrap().clone());
        assert_eq!(
            refused(body),
            TokenError::InvalidClaim("token_type"),
            "{kind}"
        );
    }
    assert_eq!(
        refused(
            json!({"active": true, "sub": "a", "aud": "gateway", "iss": ["https://sso.example.com"]})
        ),
        TokenError::UnknownIssuer,
        "a malformed iss is not an absent one"
    );
    assert_eq!(
        refused(json!({"active": true, "sub": "", "client_id": "gateway"})),
        TokenError::InvalidClaim("sub"),
        "an unusable sub is refused, not replaced by the client"
    );
}

#[test]
fn by_default_the_answer_must_name_an_access_token() {
    let mut s = settings();
    s.require_token_type = true;
    let j = |body: serde_json::Value| judge(&answer(200, body), &s, None, &[], NOW);
    // oidc-provider's answer for a refresh token: no kind at all.
    assert_eq!(
        j(json!({"active": true, "sub": "a", "client_id": "gateway", "scope": "x"})),
        Ok(Verdict::Refused(TokenError::InvalidClaim("token_type")))
    );
    assert!(matches!(
        j(json!({"active": true, "sub": "a", "client_id": "gateway", "token_type": "Bearer"})),
        Ok(Verdict::Active(_))
    ));
}

#[test]
fn access_token_kinds_pass_and_a_numeric_sub_is_its_decimal_string() {
    for kind in [
        "Bearer",
        "access_token",
        "urn:ietf:params:oauth:token-type:access_token",
    ] {
        match judged(json!({"active": true, "sub": 12345, "aud": "gateway", "token_type": kind})) {
            Ok(Verdict::Active(token)) => assert_eq!(token.sub, "12345"),
            other => panic!("{kind}: {other:?}"),
        }
    }
}

#[test]
fn without_aud_the_client_id_is_the_audience_and_the_caller_when_there_is_no_sub() {
    match judged(json!({"active": true, "client_id": "gateway", "scope": "x"})) {
        Ok(Verdict::Active(token)) => assert_eq!(token.sub, "gateway"),
        other => panic!("{other:?}"),
    }
}

#[test]
fn anything_but_a_readable_200_is_the_idp_failing() {
    let s = settings();
    let j = |a: &CallResponse| judge(a, &s, None, &[], NOW);
    assert_eq!(j(&CallResponse::NONE), Err(Unavailable::NoAnswer));
    assert_eq!(
        j(&answer(500, json!({"active": true}))),
        Err(Unavailable::Status(500))
    );
    assert_eq!(
        j(&answer(401, json!({"error": "invalid_client"}))),
        Err(Unavailable::Status(401))
    );
    for body in [
        &b"<html>"[..],
        b"",
        b"[]",
        b"{\"active\":\"true\"}",
        b"{\"active\":true,\"active\":false}",
    ] {
        let a = CallResponse {
            status: Some(200),
            body: Some(body.to_vec()),
        };
        assert_eq!(
            j(&a),
            Err(Unavailable::Unreadable),
            "{}",
            String::from_utf8_lossy(body)
        );
    }
}

#[test]
fn the_cache_answers_until_expiry_and_one_claim_wins() {
    let store = MemoryStore::new();
    cache::prepare(&store, &table(64));
    let token = digest("opaque-1");
    let Lookup::Miss { cas } = cache::lookup(&store, &table(64), &token, 1000) else {
        panic!("empty slot");
    };
    assert!(cache::claim(&store, &table(64), &token, cas, 7, 3000));
    assert!(
        !cache::claim(&store, &table(64), &token, cas, 8, 3000),
        "the second claim loses"
    );
    assert_eq!(
        cache::lookup(&store, &table(64), &token, 1500),
        Lookup::InFlight
    );
    let active = ActiveToken {
        sub: "alice".into(),
        scopes: vec![],
        roles: vec![],
        claims: vec![],
        exp: None,
    };
    cache::record(
        &store,
        &table(64),
        &token,
        &Entry::Active {
            token: active.clone(),
            until_ms: 5000,
        },
    );
    assert_eq!(
        cache::lookup(&store, &table(64), &token, 4999),
        Lookup::Active(active, 5000)
    );
    assert!(matches!(
        cache::lookup(&store, &table(64), &token, 5000),
        Lookup::Miss { .. }
    ));
    let refused = Entry::Refused {
        refusal: Refusal::NotActive,
        until_ms: 9000,
    };
    cache::record(&store, &table(64), &token, &refused);
    assert_eq!(
        cache::lookup(&store, &table(64), &token, 6000),
        Lookup::Refused(TokenError::NotActive)
    );
}

#[test]
fn a_pending_claim_expires_and_can_be_released_by_its_owner_only() {
    let store = MemoryStore::new();
    cache::prepare(&store, &table(16));
    let token = digest("t");
    let Lookup::Miss { cas } = cache::lookup(&store, &table(16), &token, 0) else {
        panic!();
    };
    assert!(cache::claim(&store, &table(16), &token, cas, 7, 2000));
    assert!(
        matches!(
            cache::lookup(&store, &table(16), &token, 2000),
            Lookup::Miss { .. }
        ),
        "stale claim"
    );
    cache::release(&store, &table(16), &token, 8);
    assert_eq!(
        cache::lookup(&store, &table(16), &token, 100),
        Lookup::InFlight,
        "not 8's to release"
    );
    cache::release(&store, &table(16), &token, 7);
    assert!(matches!(
        cache::lookup(&store, &table(16), &token, 100),
        Lookup::Miss { .. }
    ));
    cache::record(
        &store,
        &table(16),
        &token,
        &Entry::Unavailable { until_ms: 1100 },
    );
    assert_eq!(
        cache::lookup(&store, &table(16), &token, 100),
        Lookup::Unavailable {
            retry_after_ms: 1000
        }
    );
}

#[test]
fn the_memo_answers_until_expiry_and_stays_bounded() {
    use super::memo::Memo;
    let active = ActiveToken {
        sub: "a".into(),
        scopes: vec![],
        roles: vec![],
        claims: vec![],
        exp: None,
    };
    let mut memo = Memo::new(2);
    memo.insert(digest("1"), active.clone(), 100, 0);
    assert_eq!(memo.get(&digest("1"), 99), Some(&active));
    assert_eq!(memo.get(&digest("1"), 100), None, "expired");
    memo.insert(digest("2"), active.clone(), 50, 0);
    // Full: the expired entry goes first.
    memo.insert(digest("3"), active.clone(), 200, 60);
    assert_eq!(memo.len(), 2);
    assert_eq!(memo.get(&digest("2"), 60), None);
    assert!(memo.get(&digest("3"), 60).is_some());
    memo.insert(digest("4"), active, 200, 60);
    assert!(memo.len() <= 2);
}

#[test]
fn answers_under_one_namespace_are_not_read_under_another() {
    let store = MemoryStore::new();
    let ours = table(16);
    let theirs = cache::Table {
        namespace: "other".into(),
        slots: 16,
    };
    cache::prepare(&store, &ours);
    cache::prepare(&store, &theirs);
    let token = digest("t");
    let active = ActiveToken {
        sub: "a".into(),
        scopes: vec![],
        roles: vec![],
        claims: vec![],
        exp: None,
    };
    cache::record(
        &store,
        &theirs,
        &token,
        &Entry::Active {
            token: active,
            until_ms: 9000,
        },
    );
    assert!(matches!(
        cache::lookup(&store, &ours, &token, 0),
        Lookup::Miss { .. }
    ));
}
