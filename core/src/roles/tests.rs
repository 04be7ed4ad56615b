//! Which claims grant what, and which hostile shapes grant nothing.

use serde_json::{json, Map, Value};

use super::*;
use crate::json::{parse_strict_object, StrictJsonError};

/// `roles`, `groups` and Keycloak's `realm_access.roles`; admin / user / guest as in the spec.
fn roles() -> Roles {
    let path = |p: &str| p.split('.').map(String::from).collect::<Vec<_>>();
    let scopes = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
    Roles::new(
        vec![path("roles"), path("groups"), path("realm_access.roles")],
        vec![
            (
                "admin".into(),
                scopes(&["gateway:admin", "chat:read", "chat:write"]),
            ),
            ("user".into(), scopes(&["chat:read", "chat:write"])),
            ("guest".into(), scopes(&["chat:read"])),
        ],
    )
}

fn claims(value: Value) -> Map<String, Value> {
    match value {
        Value::Object(map) => map,
        other => panic!("claims must be an object: {other}"),
    }
}

fn granted(value: Value) -> Vec<String> {
    roles().granted_scopes(&claims(value))
}

#[test]
fn each_claim_shape_that_names_a_role_grants_its_scopes() {
    let admin = ["gateway:admin", "chat:read", "chat:write"];
    assert_eq!(
        granted(json!({"realm_access": {"roles": ["admin"]}})),
        admin
    );
    assert_eq!(granted(json!({"roles": ["admin"]})), admin);
    assert_eq!(
        granted(json!({"roles": "admin"})),
        admin,
        "a string is one role"
    );
    assert_eq!(granted(json!({"groups": ["guest"]})), ["chat:read"]);
    assert_eq!(granted(json!({"sub": "alice"})), Vec::<String>::new());
    assert_eq!(granted(json!({"roles": []})), Vec::<String>::new());
    // Roles nobody configured are ignored, as are claims nobody configured.
    assert_eq!(
        granted(json!({"roles": ["offline_access", "user"], "other": ["admin"]})),
        ["chat:read", "chat:write"]
    );
}

#[test]
fn role_names_match_exactly() {
    for near in [
        "Admin",
        "ADMIN",
        "admin ",
        " admin",
        "admin\u{0}",
        "adm",
        "admins",
    ] {
        assert_eq!(
            granted(json!({"roles": [near]})),
            Vec::<String>::new(),
            "{near:?}"
        );
    }
}

#[test]
fn granted_scopes_are_deduplicated_in_the_order_of_grants() {
    let expected = ["gateway:admin", "chat:read", "chat:write"];
    // The same roles, in any order and from several claims, give the same list.
    for value in [
        json!({"roles": ["guest", "user", "admin"]}),
        json!({"roles": ["admin", "guest"], "groups": "user"}),
        json!({"groups": ["user"], "realm_access": {"roles": ["guest", "admin", "admin"]}}),
    ] {
        assert_eq!(granted(value.clone()), expected, "{value}");
    }
}

#[test]
fn the_tokens_own_scopes_come_first() {
    let mut scopes = vec!["chat:write".to_string(), "history:team-a".to_string()];
    roles().add_granted_scopes(&claims(json!({"roles": ["admin"]})), &mut scopes);
    assert_eq!(
        scopes,
        ["chat:write", "history:team-a", "gateway:admin", "chat:read"]
    );
    let mut untouched = vec!["chat:write".to_string()];
    roles().add_granted_scopes(&claims(json!({"roles": ["nobody"]})), &mut untouched);
    assert_eq!(untouched, ["chat:write"]);
}

#[test]
fn hostile_shapes_grant_nothing() {
    let long = "a".repeat(MAX_ROLE_BYTES + 1);
    let many: Vec<String> = (0..MAX_ROLES_PER_CLAIM).map(|i| format!("r{i}")).collect();
    let mut too_many = many.clone();
    too_many.push("admin".into());
    let cases = [
        json!({"roles": {"admin": true}}),
        json!({"roles": {"0": "admin"}}),
        json!({"roles": 1}),
        json!({"roles": true}),
        json!({"roles": null}),
        json!({"roles": ["admin", 1]}),
        json!({"roles": ["admin", null]}),
        json!({"roles": ["admin", ["admin"]]}),
        json!({"roles": ["admin", {"role": "admin"}]}),
        json!({"roles": too_many}),
        json!({"roles": ["admin", long]}),
        json!({"roles": long}),
        // A path through something that is not an object.
        json!({"realm_access": "admin"}),
        json!({"realm_access": ["admin"]}),
        json!({"realm_access": [{"roles": ["admin"]}]}),
        json!({"realm_access": null}),
        json!({"realm_access": {"roles": {"roles": ["admin"]}}}),
        // A dotted name is not a path.
        json!({"realm_access.roles": ["admin"]}),
    ];
    for value in cases {
        assert_eq!(granted(value.clone()), Vec::<String>::new(), "{value}");
    }
    // Bounds are inclusive: exactly 256 roles, and a role of exactly 256 bytes, still count.
    let mut full = many;
    full[MAX_ROLES_PER_CLAIM - 1] = "guest".into();
    assert_eq!(granted(json!({"roles": full})), ["chat:read"]);
    let longest = "r".repeat(MAX_ROLE_BYTES);
    let roles = Roles::new(
        vec![vec!["roles".into()]],
        vec![(longest.clone(), vec!["chat:read".into()])],
    );
    assert_eq!(
        roles.granted_scopes(&claims(json!({ "roles": [longest] }))),
        ["chat:read"]
    );
}

#[test]
fn a_hostile_claim_spoils_only_itself() {
    assert_eq!(
        granted(json!({"roles": ["admin", 7], "groups": ["guest"]})),
        ["chat:read"]
    );
    assert_eq!(
        granted(json!({"roles": {"admin": 1}, "realm_access": {"roles": ["user"]}})),
        ["chat:read", "chat:write"]
    );
}

#[test]
fn duplicate_role_claims_never_reach_the_roles() {
    // Token payloads are parsed strictly: a second `roles` (at any depth) refuses the token, so
    // the IdP's value and an injected one can never be told apart differently.
    for payload in [
        r#"{"sub":"alice","roles":["guest"],"roles":["admin"]}"#,
        r#"{"sub":"alice","realm_access":{"roles":["guest"],"roles":["admin"]}}"#,
    ] {
        assert_eq!(
            parse_strict_object(payload.as_bytes()),
            Err(StrictJsonError::DuplicateKey),
            "{payload}"
        );
    }
}

#[test]
fn roles_are_collected_from_every_claim() {
    let claims =
        claims(json!({"roles": "b", "groups": ["a", "b"], "realm_access": {"roles": ["c"]}}));
    assert_eq!(
        roles().roles_in(&claims).into_iter().collect::<Vec<_>>(),
        ["a", "b", "c"]
    );
}

#[test]
fn the_roles_held_are_the_configured_ones_in_grants_order() {
    let held = roles().held(&claims(json!({
        "groups": ["guest", "staff"],
        "realm_access": {"roles": ["offline_access", "admin"]}
    })));
    assert_eq!(held, vec!["admin".to_string(), "guest".to_string()]);
    assert!(roles().held(&claims(json!({"groups": 5}))).is_empty());
}

#[test]
fn a_session_carries_its_roles_in_its_own_claim_granting_nothing() {
    let session = roles().carried_in("roles");
    // Only the session's `roles` claim is read: the IdP's claim paths are not its claims.
    let token = claims(json!({
        "roles": ["user", "unknown"],
        "realm_access": {"roles": ["admin"]}
    }));
    assert_eq!(session.held(&token), vec!["user".to_string()]);
    // Its scopes were settled at login: the roles add none.
    assert!(session.granted_scopes(&token).is_empty());
    let mut scopes = vec!["chat:read".to_string()];
    session.add_granted_scopes(&token, &mut scopes);
    assert_eq!(scopes, vec!["chat:read".to_string()]);
}
