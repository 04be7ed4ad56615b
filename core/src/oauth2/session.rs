//! From a verified ID token to the gateway's own session: the nonce check, the scopes the
//! session carries, and the session token itself.

use jwt_simple::prelude::{Audiences, Duration, HS256Key, JWTClaims, MACLike};
use serde::Serialize;

use super::crypto::constant_time_eq;

/// Session secrets shorter than this are refused (RFC 7518 3.2: at least the hash size).
const MIN_SESSION_SECRET_BYTES: usize = 32;

/// The largest timestamp the JWT library represents exactly (it keeps seconds in 32 bits).
const MAX_TIMESTAMP: u64 = u32::MAX as u64;

/// The session claim carrying the caller's configured roles: the session provider reads its
/// roles from it (the ID token that held them is not presented again).
pub const SESSION_ROLES_CLAIM: &str = "roles";

/// Checks the ID token's `nonce` against the one sealed in the flow cookie (OIDC Core 3.1.3.7
/// step 11): this binds the ID token to this browser's login, so a token obtained elsewhere
/// and injected into the callback is refused. Missing or empty is refused; the comparison is
/// constant-time.
pub fn check_nonce(claims_nonce: Option<&str>, expected: &str) -> Result<(), String> {
    let Some(nonce) = claims_nonce else {
        return Err("ID token has no nonce".to_string());
    };
    if expected.is_empty() || !constant_time_eq(nonce.as_bytes(), expected.as_bytes()) {
        return Err("ID token nonce does not match".to_string());
    }
    Ok(())
}

/// Scopes for the session: the IdP-granted scopes (space-separated `granted`) that are ours
/// (`ours` says which: the gateway's rules can require them), in granted order without
/// duplicates; `default` when nothing granted is ours or `granted` is absent. Scopes the IdP
/// granted for its own purposes (`openid`, `email`, ...) never reach the session, and the
/// session never holds a scope of ours that the IdP did not grant, except through the
/// configured `default`.
pub fn session_scopes(
    granted: Option<&str>,
    ours: &dyn Fn(&str) -> bool,
    default: &[String],
) -> Vec<String> {
    let mut scopes: Vec<String> = Vec::new();
    for scope in granted.unwrap_or("").split_ascii_whitespace() {
        if ours(scope) && !scopes.iter().any(|s| s == scope) {
            scopes.push(scope.to_string());
        }
    }
    if scopes.is_empty() {
        default.to_vec()
    } else {
        scopes
    }
}

/// What goes into the session token.
pub struct SessionClaims<'a> {
    pub issuer: &'a str,
    pub audience: &'a str,
    pub sub: &'a str,
    pub email: Option<&'a str>,
    pub name: Option<&'a str>,
    pub scopes: &'a [String],
    /// The configured roles the ID token held, in `roles.grants` order (for `role` limits).
    pub roles: &'a [String],
    /// The session's id (`sid`): random, minted at login; the upstream's `session_id` for
    /// callers authenticated by this session.
    pub session_id: &'a str,
    /// The ID token, kept for logout's `id_token_hint`.
    pub id_token: Option<&'a str>,
}

/// The session's claims beyond the registered ones.
#[derive(Serialize)]
struct SessionExtra<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    email: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    scope: String,
    #[serde(skip_serializing_if = "<[String]>::is_empty")]
    roles: &'a [String],
    sid: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    idt: Option<&'a str>,
}

/// The gateway's session token: an HS256 JWT `{iss, aud, sub, email?, name?, scope, roles?,
/// sid, iat, exp = now + ttl_s, idt?}` signed with `secret` (`roles` only when there are some).
///
/// Refused: a secret under 32 bytes, an empty issuer, audience, subject or session id (a
/// session must name who it is for, who may accept it and which session it is), a zero TTL, and an expiry beyond what the JWT library
/// represents exactly.
pub fn mint_session(
    secret: &[u8],
    claims: &SessionClaims<'_>,
    now: u64,
    ttl_s: u64,
) -> Result<String, String> {
    if secret.len() < MIN_SESSION_SECRET_BYTES {
        return Err(format!(
            "session secret is {} bytes; at least {MIN_SESSION_SECRET_BYTES} are required",
            secret.len()
        ));
    }
    if claims.issuer.is_empty()
        || claims.audience.is_empty()
        || claims.sub.is_empty()
        || claims.session_id.is_empty()
    {
        return Err("session needs an issuer, an audience, a subject and an id".to_string());
    }
    if ttl_s == 0 {
        return Err("session lifetime is zero".to_string());
    }
    let expires_at = now
        .checked_add(ttl_s)
        .filter(|exp| *exp <= MAX_TIMESTAMP)
        .ok_or_else(|| "session expiry is out of range".to_string())?;
    let jwt = JWTClaims {
        issued_at: Some(Duration::from_secs(now)),
        expires_at: Some(Duration::from_secs(expires_at)),
        invalid_before: None,
        issuer: Some(claims.issuer.to_string()),
        subject: Some(claims.sub.to_string()),
        audiences: Some(Audiences::AsString(claims.audience.to_string())),
        jwt_id: None,
        nonce: None,
        custom: SessionExtra {
            email: claims.email,
            name: claims.name,
            scope: claims.scopes.join(" "),
            roles: claims.roles,
            sid: claims.session_id,
            idt: claims.id_token,
        },
    };
    HS256Key::from_bytes(secret)
        .authenticate(jwt)
        .map_err(|error| format!("cannot sign the session: {error}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use jwt_simple::prelude::{NoCustomClaims, VerificationOptions};
    use serde_json::{json, Value};
    use std::collections::HashSet;

    const SECRET: &[u8] = b"session-secret-session-secret-se";

    fn strings(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn nonce() {
        assert_eq!(check_nonce(Some("abc"), "abc"), Ok(()));
        assert_eq!(
            check_nonce(None, "abc"),
            Err("ID token has no nonce".into())
        );
        for wrong in ["abd", "ab", "abcd", ""] {
            assert_eq!(
                check_nonce(Some(wrong), "abc"),
                Err("ID token nonce does not match".into())
            );
        }
        assert!(check_nonce(Some(""), "").is_err());
    }

    #[test]
    fn scopes() {
        let list = strings(&["chat", "models:read", "admin"]);
        let ours = |scope: &str| list.iter().any(|o| o == scope);
        let default = strings(&["chat"]);
        assert_eq!(
            session_scopes(
                Some("openid admin email models:read admin"),
                &ours,
                &default
            ),
            strings(&["admin", "models:read"])
        );
        assert_eq!(
            session_scopes(Some("openid email"), &ours, &default),
            default
        );
        assert_eq!(session_scopes(Some(""), &ours, &default), default);
        assert_eq!(session_scopes(None, &ours, &default), default);
        assert_eq!(
            session_scopes(Some("  chat\tadmin\n"), &ours, &default),
            strings(&["chat", "admin"])
        );
        assert_eq!(
            session_scopes(Some("CHAT chat:x"), &ours, &[]),
            Vec::<String>::new()
        );
    }

    fn claims<'a>(scopes: &'a [String]) -> SessionClaims<'a> {
        SessionClaims {
            issuer: "https://gateway.example.com",
            audience: "ai-gateway",
            sub: "user-123",
            email: Some("u@example.com"),
            name: Some("Ada \"L\" Lovelace"),
            scopes,
            roles: &[],
            session_id: "c2Vzc2lvbi0xMjg",
            id_token: Some("h.p.s"),
        }
    }

    fn payload(token: &str) -> Value {
        let middle = token.split('.').nth(1).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(middle).unwrap()).unwrap()
    }

    #[test]
    fn minted_session_verifies() {
        let now = 1_700_000_000;
        let scopes = strings(&["chat", "models:read"]);
        let token = mint_session(SECRET, &claims(&scopes), now, 3600).unwrap();

        let key = HS256Key::from_bytes(SECRET);
        let options = VerificationOptions {
            allowed_issuers: Some(HashSet::from(["https://gateway.example.com".to_string()])),
            allowed_audiences: Some(HashSet::from(["ai-gateway".to_string()])),
            artificial_time: Some(Duration::from_secs(now + 10)),
            time_tolerance: Some(Duration::from_secs(0)),
            ..Default::default()
        };
        let verified = key
            .verify_token::<NoCustomClaims>(&token, Some(options))
            .unwrap();
        assert_eq!(verified.subject.as_deref(), Some("user-123"));
        assert_eq!(verified.issued_at.map(|t| t.as_secs()), Some(now));
        assert_eq!(verified.expires_at.map(|t| t.as_secs()), Some(now + 3600));

        assert_eq!(
            payload(&token),
            json!({
                "iss": "https://gateway.example.com",
                "aud": "ai-gateway",
                "sub": "user-123",
                "email": "u@example.com",
                "name": "Ada \"L\" Lovelace",
                "scope": "chat models:read",
                "sid": "c2Vzc2lvbi0xMjg",
                "iat": now,
                "exp": now + 3600,
                "idt": "h.p.s"
            })
        );

        // Expired an hour later; refused under another key.
        let late = VerificationOptions {
            artificial_time: Some(Duration::from_secs(now + 3601)),
            time_tolerance: Some(Duration::from_secs(0)),
            ..Default::default()
        };
        assert!(key
            .verify_token::<NoCustomClaims>(&token, Some(late))
            .is_err());
        let other = HS256Key::from_bytes(b"other-secret-other-secret-other-");
        assert!(other
            .verify_token::<NoCustomClaims>(
                &token,
                Some(VerificationOptions {
                    artificial_time: Some(Duration::from_secs(now)),
                    ..Default::default()
                })
            )
            .is_err());
    }

    #[test]
    fn optional_claims_are_left_out() {
        let scopes: Vec<String> = vec![];
        let bare = SessionClaims {
            email: None,
            name: None,
            id_token: None,
            ..claims(&scopes)
        };
        let token = mint_session(SECRET, &bare, 100, 50).unwrap();
        assert_eq!(
            payload(&token),
            json!({
                "iss": "https://gateway.example.com",
                "aud": "ai-gateway",
                "sub": "user-123",
                "scope": "",
                "sid": "c2Vzc2lvbi0xMjg",
                "iat": 100,
                "exp": 150
            })
        );
    }

    #[test]
    fn the_roles_go_into_their_claim_when_there_are_some() {
        let scopes = strings(&["chat"]);
        let roles = strings(&["research", "user"]);
        let token = mint_session(
            SECRET,
            &SessionClaims {
                roles: &roles,
                ..claims(&scopes)
            },
            100,
            50,
        )
        .unwrap();
        assert_eq!(
            payload(&token)[SESSION_ROLES_CLAIM],
            json!(["research", "user"])
        );
        // None: no claim at all (as in `optional_claims_are_left_out`).
        let token = mint_session(SECRET, &claims(&scopes), 100, 50).unwrap();
        assert_eq!(payload(&token).get(SESSION_ROLES_CLAIM), None);
    }

    #[test]
    fn refusals() {
        let scopes = strings(&["chat"]);
        assert!(mint_session(b"short", &claims(&scopes), 0, 60).is_err());
        assert!(mint_session(
            SECRET,
            &SessionClaims {
                sub: "",
                ..claims(&scopes)
            },
            0,
            60
        )
        .is_err());
        assert!(mint_session(
            SECRET,
            &SessionClaims {
                issuer: "",
                ..claims(&scopes)
            },
            0,
            60
        )
        .is_err());
        assert!(mint_session(
            SECRET,
            &SessionClaims {
                audience: "",
                ..claims(&scopes)
            },
            0,
            60
        )
        .is_err());
        assert!(mint_session(
            SECRET,
            &SessionClaims {
                session_id: "",
                ..claims(&scopes)
            },
            0,
            60
        )
        .is_err());
        assert!(mint_session(SECRET, &claims(&scopes), 0, 0).is_err());
        assert!(mint_session(SECRET, &claims(&scopes), u64::MAX, 1).is_err());
        assert!(mint_session(SECRET, &claims(&scopes), u64::from(u32::MAX), 1).is_err());
        assert!(mint_session(SECRET, &claims(&scopes), u64::from(u32::MAX) - 1, 1).is_ok());
    }
}
