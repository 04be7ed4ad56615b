//! Compiles a provider with `introspection` (RFC 7662): the call's target and client
//! credentials, the cache, and the claims its answers are checked against.

use super::providers::{check_claim_settings, resolve_secret, EnvReader};
use super::schema::ProviderSection;
use super::{validate, ConfigError};
use crate::introspect::Introspection;
use crate::jwt::{KeySource, Provider, Purpose};
use crate::oauth2::ClientAuth;

/// Bounds of `cache_slots`: each is a shared-data key holding one token's answer.
const CACHE_SLOTS: std::ops::RangeInclusive<u32> = 16..=65_536;
/// At most a day: a revoked token stays usable for as long as its answer is cached.
const MAX_CACHE_TTL_S: u64 = 86_400;

pub fn compile_introspection(
    i: usize,
    s: ProviderSection,
    env: EnvReader<'_>,
) -> Result<(Provider, Introspection), ConfigError> {
    let at = |field: &str| format!("providers[{i}].{field}");
    validate::object_name(&s.name).map_err(|r| ConfigError::new(at("name"), r))?;
    if s.hs256_secret.is_some() || s.jwks.is_some() || s.algorithms.is_some() {
        let field = if s.hs256_secret.is_some() {
            "hs256_secret"
        } else if s.jwks.is_some() {
            "jwks"
        } else {
            "algorithms"
        };
        return Err(ConfigError::new(
            at(field),
            "a provider with introspection checks its tokens with the IdP, not by signature \
             (configure JWTs as another provider)",
        ));
    }
    let issuer = s.issuer.unwrap_or_default();
    let audiences = s.audiences.unwrap_or_default();
    check_claim_settings(i, &audiences, s.clock_skew_s, &s.scope_claim)?;
    let Some(section) = s.introspection else {
        return Err(ConfigError::new(at("introspection"), "is required here"));
    };
    let at = |field: &str| format!("providers[{i}].introspection.{field}");
    for (field, value) in [
        ("cluster", &section.cluster),
        ("authority", &section.authority),
        ("client_id", &section.client_id),
    ] {
        if value.trim().is_empty() {
            return Err(ConfigError::new(at(field), "must not be empty"));
        }
    }
    if !section.path.starts_with('/') || section.path.contains('#') {
        return Err(ConfigError::new(at("path"), "must be an absolute path"));
    }
    let client_secret = resolve_secret(&section.client_secret, &at("client_secret"), env)?;
    if client_secret.is_empty() {
        return Err(ConfigError::new(at("client_secret"), "must not be empty"));
    }
    let client_auth = match section.client_auth.as_deref() {
        None | Some("client_secret_basic") => ClientAuth::Basic,
        Some("client_secret_post") => ClientAuth::Post,
        Some(_) => {
            return Err(ConfigError::new(
                at("client_auth"),
                "must be \"client_secret_basic\" or \"client_secret_post\"",
            ))
        }
    };
    let all_tokens = match section.tokens.as_deref() {
        None | Some("opaque") => false,
        Some("all") => true,
        Some(_) => {
            return Err(ConfigError::new(
                at("tokens"),
                "must be \"opaque\" or \"all\"",
            ))
        }
    };
    if section.cache_ttl_s == 0 {
        // The answer serves the requests waiting for it through the cache: it must last.
        return Err(ConfigError::new(at("cache_ttl_s"), "must be at least 1"));
    }
    if section.cache_ttl_s > MAX_CACHE_TTL_S {
        return Err(ConfigError::new(
            at("cache_ttl_s"),
            format!("must be at most {MAX_CACHE_TTL_S}"),
        ));
    }
    if !(100..=60_000).contains(&section.timeout_ms) {
        return Err(ConfigError::new(
            at("timeout_ms"),
            "must be between 100 and 60000",
        ));
    }
    if !CACHE_SLOTS.contains(&section.cache_slots) {
        return Err(ConfigError::new(
            at("cache_slots"),
            format!(
                "must be between {} and {}",
                CACHE_SLOTS.start(),
                CACHE_SLOTS.end()
            ),
        ));
    }
    let provider = Provider {
        name: s.name,
        purpose: Purpose::Introspection,
        issuer: issuer.clone(),
        audiences: audiences.clone(),
        algorithms: Vec::new(),
        hs256: None,
        keys: KeySource::None,
        clock_skew_s: s.clock_skew_s,
        scope_claim: s.scope_claim.clone(),
        roles: None,
    };
    let settings = Introspection {
        provider: i,
        cluster: section.cluster,
        authority: section.authority,
        path: section.path,
        client_id: section.client_id,
        client_secret,
        client_auth,
        cache_ttl_s: section.cache_ttl_s,
        timeout_ms: section.timeout_ms,
        all_tokens,
        cache: crate::introspect::cache::Table {
            namespace: String::new(),
            slots: section.cache_slots,
        },
        issuer,
        audiences,
        scope_claim: s.scope_claim,
        clock_skew_s: s.clock_skew_s,
        require_token_type: section.require_token_type,
    };
    Ok((provider, settings))
}

/// The cached answers' namespace: a fingerprint of everything an answer is judged by (where
/// it comes from, the claims checked, the scopes and roles worked out, the claims kept).
pub fn cache_namespace(
    settings: &Introspection,
    roles: Option<&crate::roles::Roles>,
    kept_claims: &[String],
) -> String {
    use sha2::{Digest, Sha256};
    let described = format!(
        "v1|{}|{}|{}|{}|{}|{:?}|{}|{}|{}|{}|{:?}|{:?}",
        settings.cluster,
        settings.authority,
        settings.path,
        settings.client_id,
        settings.issuer,
        settings.audiences,
        settings.scope_claim,
        settings.clock_skew_s,
        settings.all_tokens,
        settings.require_token_type,
        roles,
        kept_claims,
    );
    Sha256::digest(described.as_bytes())
        .iter()
        .take(8)
        .map(|b| format!("{b:02x}"))
        .collect()
}
