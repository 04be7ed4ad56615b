//! Break-glass access when the IdP is down: a single-use HS256 token (`emergency_access.key`)
//! admitted only from allow-listed addresses, once per `jti` across all workers, and the short
//! session its first request opens. Pure: the shared store and the clock are passed in.

mod address;
mod spent;
#[cfg(test)]
mod tests;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::{Duration, HS256Key, MACLike, NoCustomClaims, VerificationOptions};

pub use address::AddressRange;
pub use spent::{spend, Spend, SPENT_KEY};

use crate::jwt::TokenError;

/// The `iss` of break-glass tokens.
pub const EMERGENCY_ISSUER: &str = "urn:ai-gateway:emergency";
/// The `iss` of the sessions they open (signed with a key derived from `emergency_access.key`,
/// so a session can never pass as a break-glass token, nor the other way round).
pub const EMERGENCY_SESSION_ISSUER: &str = "urn:ai-gateway:emergency-session";
/// The audience of those sessions.
pub const EMERGENCY_SESSION_AUDIENCE: &str = "ai-gateway";
/// The name of the internal provider verifying those sessions (audit records say it).
pub const EMERGENCY_PROVIDER: &str = "emergency";
/// Leeway for `iat` and `exp`: clocks of the minting host and Envoy differ a little.
pub const CLOCK_SKEW_S: u64 = 30;

/// The compiled `emergency_access` section.
#[derive(Clone)]
pub struct EmergencyAccess {
    pub allow: Vec<AddressRange>,
    /// Verifies the break-glass tokens.
    pub key: Vec<u8>,
    /// Signs the sessions they open (HMAC of `key`, see [`session_key`]).
    pub session_key: Vec<u8>,
    pub scopes: Vec<String>,
    pub max_ttl_s: u64,
    /// Proxies in front of Envoy whose `x-forwarded-for` entries are trusted (as rate limits).
    pub trusted_hops: u32,
    /// The cookie the session goes in.
    pub cookie: String,
    pub secure_cookie: bool,
    /// Index of the internal session provider in `providers`.
    pub session_provider: usize,
}

impl std::fmt::Debug for EmergencyAccess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the key.
        f.debug_struct("EmergencyAccess")
            .field("allow", &self.allow)
            .field("scopes", &self.scopes)
            .field("max_ttl_s", &self.max_ttl_s)
            .field("cookie", &self.cookie)
            .finish_non_exhaustive()
    }
}

impl EmergencyAccess {
    /// Whether `address` (an IP, no port) is in `allow_ips`.
    pub fn allows(&self, address: Option<&str>) -> bool {
        let Some(ip) = address.and_then(|a| a.parse::<std::net::IpAddr>().ok()) else {
            return false;
        };
        self.allow.iter().any(|range| range.contains(ip))
    }
}

/// The session-signing key: SHA-256 of a purpose label and the key, so one configured secret
/// serves both without one token kind ever verifying as the other.
pub fn session_key(key: &[u8]) -> Vec<u8> {
    use sha2::{Digest, Sha256};
    Sha256::new()
        .chain_update(b"ai-gateway emergency session\0")
        .chain_update(key)
        .finalize()
        .to_vec()
}

/// Whether `token` claims to be a break-glass token (its unverified `iss`): only such tokens
/// take the break-glass path, every other goes to the providers as usual.
pub fn is_emergency_token(token: &str) -> bool {
    claimed_issuer(token).is_some_and(|iss| iss == EMERGENCY_ISSUER)
}

/// The `iss` a compact JWT claims, unverified (which path it takes, never whom to trust).
/// `None` for anything else, and for payloads over 2 kB (the gateway's own tokens are small).
pub fn claimed_issuer(token: &str) -> Option<String> {
    let mut parts = token.split('.');
    let (Some(_), Some(payload), Some(_), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return None;
    };
    if payload.len() > 2048 {
        return None;
    }
    let bytes = URL_SAFE_NO_PAD.decode(payload).ok()?;
    #[derive(serde::Deserialize)]
    struct Iss {
        iss: Option<String>,
    }
    serde_json::from_slice::<Iss>(&bytes).ok()?.iss
}

/// A break-glass token that verified: who, which use, until when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BreakGlass {
    pub sub: String,
    pub jti: String,
    pub exp: u64,
}

/// Verifies a break-glass token at `now` (Unix seconds): HS256 with the key, `iss`, a `sub`, a
/// `jti`, `iat` not in the future, `exp` not passed and at most `max_ttl_s` after `iat`.
pub fn verify(token: &str, access: &EmergencyAccess, now: u64) -> Result<BreakGlass, TokenError> {
    let options = VerificationOptions {
        allowed_issuers: Some([EMERGENCY_ISSUER.to_string()].into()),
        time_tolerance: Some(Duration::from_secs(CLOCK_SKEW_S)),
        artificial_time: Some(Duration::from_secs(now)),
        max_validity: Some(Duration::from_secs(access.max_ttl_s)),
        ..VerificationOptions::default()
    };
    let claims = HS256Key::from_bytes(&access.key)
        .verify_token::<NoCustomClaims>(token, Some(options))
        .map_err(|_| TokenError::BadSignature)?;
    let iat = claims
        .issued_at
        .ok_or(TokenError::ClaimMissing("iat"))?
        .as_secs();
    let exp = claims
        .expires_at
        .ok_or(TokenError::ClaimMissing("exp"))?
        .as_secs();
    if exp.saturating_sub(iat) > access.max_ttl_s {
        return Err(TokenError::InvalidClaim("exp"));
    }
    if exp <= now {
        return Err(TokenError::Expired);
    }
    let sub = claims
        .subject
        .filter(|s| !s.is_empty() && !s.chars().any(char::is_control))
        .ok_or(TokenError::ClaimMissing("sub"))?;
    let jti = claims
        .jwt_id
        .filter(|j| !j.is_empty() && j.len() <= 256)
        .ok_or(TokenError::ClaimMissing("jti"))?;
    Ok(BreakGlass { sub, jti, exp })
}
