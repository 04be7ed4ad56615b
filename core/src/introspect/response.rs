//! What an introspection answer means (RFC 7662 section 2.2): `active` decides; for an active
//! token its `exp`, `nbf`, `iss`, `aud` / `client_id`, `scope` and `sub` are checked like a
//! JWT's claims. An answer that is not a 200 with a JSON object is the IdP failing, never a
//! verdict on the token: the request is refused as unavailable, never let through.

use serde_json::{Map, Value};

use super::Introspection;
use crate::jwt::TokenError;
use crate::outgoing::CallResponse;
use crate::roles::Roles;

/// An active token's caller, as cached and shared.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ActiveToken {
    pub sub: String,
    pub scopes: Vec<String>,
    pub roles: Vec<String>,
    pub claims: Vec<(String, String)>,
    /// The token's `exp` (Unix seconds), when the answer has one.
    pub exp: Option<u64>,
}

/// The IdP's verdict on a token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Active(ActiveToken),
    Refused(TokenError),
}

/// Why there is no verdict: the IdP is down, slow, or answered something else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unavailable {
    NoAnswer,
    Status(u32),
    Unreadable,
}

/// Judges the answer at `now` (Unix seconds). `keep`: claims kept for rate-limit keys.
pub fn judge(
    answer: &CallResponse,
    settings: &Introspection,
    roles: Option<&Roles>,
    keep: &[String],
    now: u64,
) -> Result<Verdict, Unavailable> {
    let status = answer.status.ok_or(Unavailable::NoAnswer)?;
    if status != 200 {
        return Err(Unavailable::Status(status));
    }
    let body = answer.body.as_deref().ok_or(Unavailable::Unreadable)?;
    let claims = crate::json::parse_strict_object(body).map_err(|_| Unavailable::Unreadable)?;
    match claims.get("active") {
        Some(Value::Bool(true)) => {}
        Some(Value::Bool(false)) => return Ok(Verdict::Refused(TokenError::NotActive)),
        _ => return Err(Unavailable::Unreadable),
    }
    Ok(match active(&claims, settings, roles, keep, now) {
        Ok(token) => Verdict::Active(token),
        Err(error) => Verdict::Refused(error),
    })
}

fn active(
    claims: &Map<String, Value>,
    settings: &Introspection,
    roles: Option<&Roles>,
    keep: &[String],
    now: u64,
) -> Result<ActiveToken, TokenError> {
    let skew = settings.clock_skew_s;
    let time = |name: &'static str| -> Result<Option<u64>, TokenError> {
        match claims.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Number(n)) => n
                .as_u64()
                .or_else(|| n.as_f64().filter(|f| *f >= 0.0).map(|f| f as u64))
                .map(Some)
                .ok_or(TokenError::InvalidClaim(name)),
            Some(_) => Err(TokenError::InvalidClaim(name)),
        }
    };
    // RFC 7662 2.1: `token_type_hint` is only a hint; the IdP also answers for refresh and ID
    // tokens. Whatever names the kind (RFC 7662 `token_type`, Ory's `token_use`, Keycloak's
    // `typ`) must say access token.
    // An answer that names no kind at all is refused too unless the IdP is known to leave it
    // out (`require_token_type: false`): oidc-provider, for one, names access tokens `Bearer`
    // and refresh tokens nothing.
    let mut named = false;
    for name in ["token_type", "token_use", "typ"] {
        match claims.get(name) {
            None | Some(Value::Null) => {}
            Some(Value::String(kind)) if is_access_token_kind(kind) => named = true,
            Some(_) => return Err(TokenError::InvalidClaim("token_type")),
        }
    }
    if settings.require_token_type && !named {
        return Err(TokenError::InvalidClaim("token_type"));
    }
    let exp = time("exp")?;
    if exp.is_some_and(|exp| exp.saturating_add(skew) <= now) {
        return Err(TokenError::Expired);
    }
    if time("nbf")?.is_some_and(|nbf| nbf > now.saturating_add(skew)) {
        return Err(TokenError::NotYetValid);
    }
    let text = |name: &str| match claims.get(name) {
        Some(Value::String(s)) if !s.is_empty() && !s.chars().any(char::is_control) => {
            Some(s.as_str())
        }
        _ => None,
    };
    // With an issuer configured, an `iss` that is there must be it (a malformed one too).
    let iss_present = !matches!(claims.get("iss"), None | Some(Value::Null));
    if !settings.issuer.is_empty() && iss_present && text("iss") != Some(settings.issuer.as_str()) {
        return Err(TokenError::UnknownIssuer);
    }
    if !settings.audiences.is_empty() {
        let named = |a: &str| settings.audiences.iter().any(|ours| ours == a);
        let fits = match claims.get("aud") {
            Some(Value::String(aud)) => named(aud),
            Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str().is_some_and(named)),
            None | Some(Value::Null) => text("client_id").is_some_and(named),
            Some(_) => false,
        };
        if !fits {
            return Err(TokenError::AudienceMismatch);
        }
    }
    // A token issued to a client acting for itself (client credentials) has no `sub`: the
    // client is the caller. A `sub` that is there but unusable is refused, never replaced.
    let sub = match claims.get("sub") {
        None | Some(Value::Null) => text("client_id")
            .ok_or(TokenError::ClaimMissing("sub"))?
            .to_string(),
        Some(Value::Number(n)) => n.to_string(),
        Some(_) => text("sub")
            .ok_or(TokenError::InvalidClaim("sub"))?
            .to_string(),
    };
    let mut scopes: Vec<String> = Vec::new();
    let mut add = |scope: &str| {
        if !scope.is_empty() && !scopes.iter().any(|s| s == scope) {
            scopes.push(scope.to_string());
        }
    };
    match claims.get(&settings.scope_claim) {
        Some(Value::String(s)) => s.split_ascii_whitespace().for_each(&mut add),
        Some(Value::Array(items)) => items.iter().filter_map(Value::as_str).for_each(&mut add),
        _ => {}
    }
    let mut held = Vec::new();
    if let Some(roles) = roles {
        roles.add_granted_scopes(claims, &mut scopes);
        held = roles.held(claims);
    }
    Ok(ActiveToken {
        sub,
        scopes,
        roles: held,
        claims: crate::jwt::verify::kept_claims(claims, keep),
        exp,
    })
}

/// The names IdPs give an access token's kind: RFC 7662 / RFC 6749 token types (`Bearer`,
/// `DPoP`, `N_A`), RFC 8693's URN, Ory's `access_token`, Keycloak's `Bearer`, RFC 9068's
/// `at+jwt`.
fn is_access_token_kind(kind: &str) -> bool {
    [
        "bearer",
        "dpop",
        "n_a",
        "access_token",
        "at+jwt",
        "application/at+jwt",
        "urn:ietf:params:oauth:token-type:access_token",
    ]
    .iter()
    .any(|known| kind.eq_ignore_ascii_case(known))
}
