//! Compiles `emergency_access`: the allowed ranges, the key (its own secret, at least 32
//! bytes), the scopes granted, and the internal provider that verifies the sessions it opens.

use jwt_simple::prelude::HS256Key;

use super::providers::{resolve_secret, EnvReader, MIN_HS256_SECRET_BYTES};
use super::schema::EmergencyAccessSection;
use super::{validate, ConfigError, TokenConfig};
use crate::emergency::{
    session_key, AddressRange, EmergencyAccess, CLOCK_SKEW_S, EMERGENCY_PROVIDER,
    EMERGENCY_SESSION_AUDIENCE, EMERGENCY_SESSION_ISSUER,
};
use crate::jwt::{Algorithm, KeySource, Provider, Purpose};

/// `max_ttl_s` at most a day: break-glass is for an outage, not a standing credential.
const MAX_TTL_LIMIT_S: u64 = 86_400;

/// The section, and the session provider (index `index` in `providers`). The session goes in
/// the token cookie: `token.cookie` (the login session's, with `oauth2`) or, when none is
/// configured, `cookie`, which becomes the token cookie. `secure_cookies`: `oauth2`'s setting.
pub fn compile_emergency(
    s: EmergencyAccessSection,
    env: EnvReader<'_>,
    index: usize,
    token: &mut TokenConfig,
    secure_cookies: Option<bool>,
) -> Result<(EmergencyAccess, Provider), ConfigError> {
    if s.allow_ips.is_empty() {
        return Err(ConfigError::new(
            "emergency_access.allow_ips",
            "must name at least one address or range",
        ));
    }
    let mut allow = Vec::with_capacity(s.allow_ips.len());
    for (i, entry) in s.allow_ips.iter().enumerate() {
        let range = AddressRange::parse(entry.trim())
            .map_err(|r| ConfigError::new(format!("emergency_access.allow_ips[{i}]"), r))?;
        allow.push(range);
    }
    let key = resolve_secret(&s.key, "emergency_access.key", env)?;
    if key.len() < MIN_HS256_SECRET_BYTES {
        return Err(ConfigError::new(
            "emergency_access.key",
            format!(
                "is {} bytes; at least {MIN_HS256_SECRET_BYTES} are required",
                key.len()
            ),
        ));
    }
    if s.scopes.is_empty() {
        return Err(ConfigError::new(
            "emergency_access.scopes",
            "must name the scopes break-glass grants",
        ));
    }
    for (i, scope) in s.scopes.iter().enumerate() {
        validate::scope_token(scope)
            .map_err(|r| ConfigError::new(format!("emergency_access.scopes[{i}]"), r))?;
    }
    if !(60..=MAX_TTL_LIMIT_S).contains(&s.max_ttl_s) {
        return Err(ConfigError::new(
            "emergency_access.max_ttl_s",
            format!("must be between 60 and {MAX_TTL_LIMIT_S}"),
        ));
    }
    if s.trusted_hops > 16 {
        return Err(ConfigError::new(
            "emergency_access.trusted_hops",
            "must be at most 16",
        ));
    }
    let cookie = match &token.cookie {
        Some(cookie) => cookie.clone(),
        None => {
            let cookie = validate::cookie_name(&s.cookie)
                .map_err(|r| ConfigError::new("emergency_access.cookie", r))?;
            token.cookie = Some(cookie.clone());
            cookie
        }
    };
    let session_key = session_key(key.as_bytes());
    let provider = Provider {
        name: EMERGENCY_PROVIDER.into(),
        purpose: Purpose::Api,
        issuer: EMERGENCY_SESSION_ISSUER.into(),
        audiences: vec![EMERGENCY_SESSION_AUDIENCE.into()],
        algorithms: vec![Algorithm::HS256],
        hs256: Some(HS256Key::from_bytes(&session_key)),
        keys: KeySource::None,
        clock_skew_s: CLOCK_SKEW_S,
        scope_claim: "scope".into(),
        roles: None,
    };
    let access = EmergencyAccess {
        allow,
        key: key.into_bytes(),
        session_key,
        scopes: s.scopes,
        max_ttl_s: s.max_ttl_s,
        trusted_hops: s.trusted_hops,
        cookie,
        secure_cookie: secure_cookies.unwrap_or(!s.allow_insecure_cookies),
        session_provider: index,
    };
    Ok((access, provider))
}
