//! Claim checks on the raw JSON, before the signature: types, ranges and times are checked here
//! rather than trusted to a library (jwt-simple accepts a token without `exp`, and date types
//! below it may clamp out-of-range values instead of refusing them).

use serde_json::{Map, Value};

use super::TokenError;

/// 9999-12-31T23:59:59Z: no NumericDate beyond this is sane.
pub const MAX_NUMERIC_DATE: u64 = 253_402_300_799;

/// The claims the gateway uses, checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckedClaims {
    pub sub: String,
    pub exp: u64,
    pub nbf: Option<u64>,
    pub scopes: Vec<String>,
}

/// What the claims are checked against.
pub struct ClaimRules<'a> {
    pub audiences: &'a [String],
    pub scope_claim: &'a str,
    pub clock_skew_s: u64,
    pub now: u64,
}

pub fn check_claims(
    claims: &Map<String, Value>,
    rules: &ClaimRules<'_>,
) -> Result<CheckedClaims, TokenError> {
    let exp = numeric_date(claims, "exp")?.ok_or(TokenError::ClaimMissing("exp"))?;
    let nbf = numeric_date(claims, "nbf")?;
    let iat = numeric_date(claims, "iat")?;
    let skew = rules.clock_skew_s;
    let now = rules.now;
    // RFC 7519: the current time must be before exp; skew tolerates unsynchronised clocks.
    if now >= exp.saturating_add(skew) {
        return Err(TokenError::Expired);
    }
    if nbf.is_some_and(|nbf| nbf > now.saturating_add(skew)) {
        return Err(TokenError::NotYetValid);
    }
    if iat.is_some_and(|iat| iat > now.saturating_add(skew)) {
        return Err(TokenError::IssuedInFuture);
    }
    check_audience(claims, rules.audiences)?;
    let sub = match claims.get("sub") {
        None => return Err(TokenError::ClaimMissing("sub")),
        Some(Value::String(sub)) if !sub.is_empty() && !sub.chars().any(char::is_control) => {
            sub.clone()
        }
        Some(_) => return Err(TokenError::InvalidClaim("sub")),
    };
    for name in ["jti", "nonce"] {
        if claims.get(name).is_some_and(|v| !v.is_string()) {
            return Err(TokenError::InvalidClaim(name));
        }
    }
    let scopes = scopes(claims.get(rules.scope_claim))?;
    Ok(CheckedClaims {
        sub,
        exp,
        nbf,
        scopes,
    })
}

/// An integer NumericDate in `0..=MAX_NUMERIC_DATE`, or absent. Strings, fractions, negatives,
/// and values past the year 9999 are refused, not clamped.
fn numeric_date(
    claims: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<u64>, TokenError> {
    match claims.get(name) {
        None => Ok(None),
        Some(Value::Number(n)) => match n.as_u64() {
            Some(v) if v <= MAX_NUMERIC_DATE => Ok(Some(v)),
            _ => Err(TokenError::InvalidClaim(name)),
        },
        Some(_) => Err(TokenError::InvalidClaim(name)),
    }
}

fn check_audience(claims: &Map<String, Value>, allowed: &[String]) -> Result<(), TokenError> {
    let matches = |aud: &str| allowed.iter().any(|a| a == aud);
    match claims.get("aud") {
        None => Err(TokenError::ClaimMissing("aud")),
        Some(Value::String(aud)) => {
            if matches(aud) {
                Ok(())
            } else {
                Err(TokenError::AudienceMismatch)
            }
        }
        Some(Value::Array(items)) => {
            if items.is_empty() || items.len() > 64 || !items.iter().all(Value::is_string) {
                return Err(TokenError::InvalidClaim("aud"));
            }
            if items.iter().filter_map(Value::as_str).any(matches) {
                Ok(())
            } else {
                Err(TokenError::AudienceMismatch)
            }
        }
        Some(_) => Err(TokenError::InvalidClaim("aud")),
    }
}

/// A space-delimited string (RFC 8693 `scope`) or an array of strings (`scp`, Keycloak roles...).
fn scopes(value: Option<&Value>) -> Result<Vec<String>, TokenError> {
    let mut scopes: Vec<String> = Vec::new();
    let mut push = |scope: &str| {
        if !scope.is_empty() && !scopes.iter().any(|s| s == scope) {
            scopes.push(scope.to_string());
        }
    };
    match value {
        None | Some(Value::Null) => {}
        Some(Value::String(text)) => text.split(' ').for_each(&mut push),
        Some(Value::Array(items)) => {
            for item in items {
                let scope = item.as_str().ok_or(TokenError::InvalidClaim("scope"))?;
                if scope.contains(' ') {
                    return Err(TokenError::InvalidClaim("scope"));
                }
                push(scope);
            }
        }
        Some(_) => return Err(TokenError::InvalidClaim("scope")),
    }
    if scopes.iter().any(|s| s.chars().any(char::is_control)) {
        return Err(TokenError::InvalidClaim("scope"));
    }
    Ok(scopes)
}
