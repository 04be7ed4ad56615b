//! Compiles the `providers` section: every field checked, secrets resolved, inline keys parsed.

use std::collections::HashSet;

use jwt_simple::prelude::HS256Key;

use super::introspection::compile_introspection;
use super::schema::{JwksSection, ProviderSection, RemoteJwksSection, SecretSection};
use super::ConfigError;
use crate::introspect::Introspection;
use crate::jwt::{Algorithm, KeySource, Provider, RemoteJwks};
use crate::keys::parse_jwks;

/// HS256 secrets shorter than this are refused (RFC 7518 section 3.2: at least the hash size).
pub const MIN_HS256_SECRET_BYTES: usize = 32;
/// Bounds of `clock_skew_s`.
pub const MAX_CLOCK_SKEW_S: u64 = 300;

/// Reads a host environment variable (the VM sees those in `host_env_keys`).
pub type EnvReader<'a> = &'a dyn Fn(&str) -> Option<String>;

/// The providers, and the one that introspects (at most one: an opaque token names no
/// issuer, so there would be no telling which to ask).
pub fn compile_providers(
    sections: Vec<ProviderSection>,
    env: EnvReader<'_>,
) -> Result<(Vec<Provider>, Option<Introspection>), ConfigError> {
    let mut names = HashSet::new();
    let mut issuers = HashSet::new();
    let mut providers = Vec::with_capacity(sections.len());
    let mut introspection: Option<Introspection> = None;
    for (i, section) in sections.into_iter().enumerate() {
        let at = |field: &str| format!("providers[{i}].{field}");
        if !names.insert(section.name.clone()) {
            return Err(ConfigError::new(at("name"), "must be unique"));
        }
        let issuer = section.issuer.clone().unwrap_or_default();
        let reserved = [
            super::SESSION_ISSUER,
            crate::emergency::EMERGENCY_ISSUER,
            crate::emergency::EMERGENCY_SESSION_ISSUER,
        ];
        if reserved.contains(&issuer.as_str()) {
            return Err(ConfigError::new(
                at("issuer"),
                "is reserved for the gateway's own tokens",
            ));
        }
        let issuer_optional = section.introspection.is_some() && issuer.is_empty();
        if !issuer_optional && !issuers.insert(issuer) {
            return Err(ConfigError::new(
                at("issuer"),
                "must be unique (the provider is chosen by the token's iss)",
            ));
        }
        if section.introspection.is_some() {
            if introspection.is_some() {
                return Err(ConfigError::new(
                    at("introspection"),
                    "only one provider may use introspection",
                ));
            }
            let (provider, settings) = compile_introspection(i, section, env)?;
            providers.push(provider);
            introspection = Some(settings);
        } else {
            providers.push(compile_provider(i, section, env)?);
        }
    }
    if let Some(settings) = introspection.as_ref().filter(|s| s.all_tokens) {
        if providers.len() > 1 {
            // Every bearer token would go to this IdP, including the other providers' JWTs.
            return Err(ConfigError::new(
                format!("providers[{}].introspection.tokens", settings.provider),
                "\"all\" sends every bearer token to this IdP: it cannot be combined with \
                 other providers",
            ));
        }
    }
    Ok((providers, introspection))
}

fn compile_provider(
    i: usize,
    s: ProviderSection,
    env: EnvReader<'_>,
) -> Result<Provider, ConfigError> {
    let at = |field: &str| format!("providers[{i}].{field}");
    super::validate::object_name(&s.name).map_err(|r| ConfigError::new(at("name"), r))?;
    let issuer = s
        .issuer
        .ok_or_else(|| ConfigError::new(at("issuer"), "is required"))?;
    if issuer.is_empty() {
        return Err(ConfigError::new(at("issuer"), "must not be empty"));
    }
    let audiences = s
        .audiences
        .ok_or_else(|| ConfigError::new(at("audiences"), "is required"))?;
    if audiences.is_empty() {
        return Err(ConfigError::new(at("audiences"), "must not be empty"));
    }
    check_claim_settings(i, &audiences, s.clock_skew_s, &s.scope_claim)?;

    let hs256 = s
        .hs256_secret
        .map(|secret| hs256_key(&secret, &at("hs256_secret"), env))
        .transpose()?;
    let keys = s
        .jwks
        .map(|jwks| key_source(jwks, &at("jwks")))
        .transpose()?
        .unwrap_or(KeySource::None);
    let algorithms = algorithms(i, s.algorithms, hs256.is_some(), &keys)?;

    Ok(Provider {
        name: s.name,
        purpose: crate::jwt::Purpose::Api,
        issuer,
        audiences,
        algorithms,
        hs256,
        keys,
        clock_skew_s: s.clock_skew_s,
        scope_claim: s.scope_claim,
        roles: None,
    })
}

/// What every provider's claims are checked with: audiences named, a bounded clock skew, a
/// scope claim.
pub(super) fn check_claim_settings(
    i: usize,
    audiences: &[String],
    clock_skew_s: u64,
    scope_claim: &str,
) -> Result<(), ConfigError> {
    if let Some(j) = audiences.iter().position(String::is_empty) {
        return Err(ConfigError::new(
            format!("providers[{i}].audiences[{j}]"),
            "must not be empty",
        ));
    }
    if clock_skew_s > MAX_CLOCK_SKEW_S {
        return Err(ConfigError::new(
            format!("providers[{i}].clock_skew_s"),
            format!("must be at most {MAX_CLOCK_SKEW_S}"),
        ));
    }
    if scope_claim.is_empty() {
        return Err(ConfigError::new(
            format!("providers[{i}].scope_claim"),
            "must not be empty",
        ));
    }
    Ok(())
}

fn algorithms(
    i: usize,
    given: Option<Vec<String>>,
    has_secret: bool,
    keys: &KeySource,
) -> Result<Vec<Algorithm>, ConfigError> {
    let has_keys = !matches!(keys, KeySource::None);
    let Some(names) = given else {
        // Default: what the configured keys can verify.
        let mut algs = Vec::new();
        if has_secret {
            algs.push(Algorithm::HS256);
        }
        if has_keys {
            algs.extend([Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA]);
        }
        if algs.is_empty() {
            return Err(ConfigError::new(
                format!("providers[{i}]"),
                "needs hs256_secret or jwks to verify tokens",
            ));
        }
        return Ok(algs);
    };
    if names.is_empty() {
        return Err(ConfigError::new(
            format!("providers[{i}].algorithms"),
            "must not be empty",
        ));
    }
    let mut algs = Vec::new();
    for (j, name) in names.iter().enumerate() {
        let at = format!("providers[{i}].algorithms[{j}]");
        if name.eq_ignore_ascii_case("none") {
            return Err(ConfigError::new(at, "\"none\" is never allowed"));
        }
        let Some(alg) = Algorithm::from_name(name) else {
            return Err(ConfigError::new(
                at,
                format!(
                    "unsupported algorithm `{}` (supported: HS256, RS256, ES256, EdDSA)",
                    name.escape_default()
                ),
            ));
        };
        if alg == Algorithm::HS256 && !has_secret {
            return Err(ConfigError::new(at, "HS256 needs hs256_secret"));
        }
        if alg.is_asymmetric() && !has_keys {
            return Err(ConfigError::new(at, format!("{alg} needs jwks")));
        }
        if !algs.contains(&alg) {
            algs.push(alg);
        }
    }
    if has_secret && !algs.contains(&Algorithm::HS256) {
        return Err(ConfigError::new(
            format!("providers[{i}].hs256_secret"),
            "is given but HS256 is not in algorithms",
        ));
    }
    Ok(algs)
}

/// Resolves a secret; `path` names its field.
pub fn resolve_secret(
    secret: &SecretSection,
    path: &str,
    env: EnvReader<'_>,
) -> Result<String, ConfigError> {
    match (&secret.env, &secret.inline) {
        (Some(name), None) => env(name).ok_or_else(|| {
            ConfigError::new(
                format!("{path}.env"),
                format!(
                    "host variable `{}` is not set or not passed to the VM \
                     (vm_config.environment_variables.host_env_keys)",
                    name.escape_default()
                ),
            )
        }),
        (None, Some(value)) => Ok(value.clone()),
        _ => Err(ConfigError::new(
            path,
            "must have exactly one of \"env\" and \"inline\"",
        )),
    }
}

fn hs256_key(
    secret: &SecretSection,
    path: &str,
    env: EnvReader<'_>,
) -> Result<HS256Key, ConfigError> {
    let value = resolve_secret(secret, path, env)?;
    if value.len() < MIN_HS256_SECRET_BYTES {
        // The length only: the secret itself is never logged.
        return Err(ConfigError::new(
            path,
            format!(
                "HS256 secret is {} bytes; at least {MIN_HS256_SECRET_BYTES} are required",
                value.len()
            ),
        ));
    }
    Ok(HS256Key::from_bytes(value.as_bytes()))
}

fn key_source(section: JwksSection, path: &str) -> Result<KeySource, ConfigError> {
    match (section.inline, section.remote) {
        (Some(document), None) => {
            let bytes = document.to_string().into_bytes();
            let (set, _skipped) = parse_jwks(&bytes)
                .map_err(|e| ConfigError::new(format!("{path}.inline"), e.to_string()))?;
            Ok(KeySource::Inline(set))
        }
        (None, Some(remote)) => Ok(KeySource::Remote(remote_jwks(
            remote,
            &format!("{path}.remote"),
        )?)),
        _ => Err(ConfigError::new(
            path,
            "must have exactly one of \"inline\" and \"remote\"",
        )),
    }
}

fn remote_jwks(s: RemoteJwksSection, path: &str) -> Result<RemoteJwks, ConfigError> {
    let at = |field: &str| format!("{path}.{field}");
    if s.cluster.is_empty() {
        return Err(ConfigError::new(at("cluster"), "must not be empty"));
    }
    if s.authority.is_empty()
        || s.authority
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(ConfigError::new(
            at("authority"),
            "must be a host name (and optional port)",
        ));
    }
    if !s.path.starts_with('/')
        || s.path
            .bytes()
            .any(|b| b.is_ascii_whitespace() || b.is_ascii_control())
    {
        return Err(ConfigError::new(
            at("path"),
            "must be an absolute path starting with '/'",
        ));
    }
    if !(1..=86_400).contains(&s.cache_ttl_s) {
        return Err(ConfigError::new(
            at("cache_ttl_s"),
            "must be between 1 and 86400",
        ));
    }
    if !(1..=86_400).contains(&s.min_refresh_interval_s) {
        return Err(ConfigError::new(
            at("min_refresh_interval_s"),
            "must be between 1 and 86400",
        ));
    }
    if !(100..=60_000).contains(&s.timeout_ms) {
        return Err(ConfigError::new(
            at("timeout_ms"),
            "must be between 100 and 60000",
        ));
    }
    Ok(RemoteJwks {
        cluster: s.cluster,
        authority: s.authority,
        path: s.path,
        cache_ttl_s: s.cache_ttl_s,
        min_refresh_interval_s: s.min_refresh_interval_s,
        timeout_ms: s.timeout_ms,
    })
}
