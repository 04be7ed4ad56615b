//! A browser session carries its roles: minted at login from the ID token's roles, read back
//! by the session provider, and counted by `role` limits like a bearer token of that role.

use super::*;
use crate::gateway::tests::token_with_realm_roles;

/// `CONFIG` with realm roles and a monthly request budget per role (3 per team).
fn team_budget_config() -> String {
    let config = CONFIG.replace(
        r#""default_rule":"#,
        r#""roles": {"claims": ["realm_access.roles"],
                     "grants": {"research": ["chat"], "user": ["chat"]}},
           "rate_limits": [{"name": "team", "key": "role", "requests": 3, "window": "month"}],
           "default_rule":"#,
    );
    assert_ne!(config, CONFIG);
    config
}

/// The status a request got: 0 when it was forwarded.
fn status(out: &Output, id: u32) -> u32 {
    match effects_on(out, id).as_slice() {
        [Effect::Forward { .. }] => 0,
        _ => reply_of(out, id).status,
    }
}

#[test]
fn a_session_carries_its_role_and_shares_the_teams_budget_with_bearer_tokens() {
    let key = Key::new("idp-1");
    let mut worker = ready_worker_with(&team_budget_config(), &discovery_document(), &[&key]);
    // The API provider's keys, fetched on the first tick, for the bearer tokens.
    answer_last(&mut worker, "/jwks", jwks(&[&key]));
    let (started, token) = until_token_call(&mut worker, 1);
    let id_token = id_token_with_roles(
        &key,
        "alice",
        &started.flow.nonce,
        &["offline_access", "research"],
    );
    let reply = only_reply(&worker.answer(token, token_response(&id_token)), 2);
    assert_eq!(reply.status, 302, "{reply:?}");
    let session = cookie_value(set_cookie_of(&reply, SESSION_COOKIE).unwrap()).to_string();
    // Only the configured roles the ID token held go into the session.
    assert_eq!(session_claims(&session)["roles"], json!(["research"]));

    // Two requests of alice's session and one of bob's bearer token spend the research
    // team's 3: one count whoever they are, however they authenticate.
    let with_session = |worker: &mut Worker, id: u32| {
        let out = browse(worker, id, "/v1/anything", &[(SESSION_COOKIE, &session)]);
        status(&out, id)
    };
    let bob = token_with_realm_roles(&key, "bob", &["research"]);
    assert_eq!(with_session(&mut worker, 10), 0);
    assert_eq!(status(&worker.get(11, "/v1/anything", &bob), 11), 0);
    assert_eq!(with_session(&mut worker, 12), 0);
    assert_eq!(status(&worker.get(13, "/v1/anything", &bob), 13), 429);
    assert_eq!(with_session(&mut worker, 14), 429);
    assert_eq!(worker.audit(14)["code"], "RATE_LIMITED");
    // Carol is a `user`: her team has its own budget.
    let carol = token_with_realm_roles(&key, "carol", &["user"]);
    assert_eq!(status(&worker.get(15, "/v1/anything", &carol), 15), 0);
}
