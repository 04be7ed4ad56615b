//! Compiles `rate_limits`.

use std::collections::HashSet;

use super::models::compile_patterns;
use super::rules::compile_match;
use super::schema::{RateLimitSection, RateLimitServiceSection};
use super::validate;
use super::ConfigError;
use crate::ratelimit::mesh::proto::Unit;
use crate::ratelimit::mesh::Service;
use crate::ratelimit::{LimitKey, LimitKind, Period, RateLimit, Scope};
use crate::roles::Roles;

/// Slots per limit when not given: at most 0.75 MiB of Envoy heap per limit (96 bytes a slot;
/// see `ratelimit::counter`).
pub const DEFAULT_SLOTS: u64 = 8192;
pub const MAX_SLOTS: u64 = 1 << 20;
/// The longest sliding window: 31 days (the longest month), so a monthly budget may also be
/// a sliding one. A slot stays busy for two windows, so longer ones would mostly saturate.
pub const MAX_WINDOW_S: u64 = 31 * 86_400;

pub fn compile_rate_limits(
    sections: Vec<RateLimitSection>,
    have_providers: bool,
    roles: Option<&Roles>,
    have_service: bool,
) -> Result<Vec<RateLimit>, ConfigError> {
    let mut names = HashSet::new();
    let mut limits = Vec::with_capacity(sections.len());
    for (i, s) in sections.into_iter().enumerate() {
        let at = |field: &str| format!("rate_limits[{i}].{field}");
        validate::object_name(&s.name).map_err(|r| ConfigError::new(at("name"), r))?;
        if !names.insert(s.name.clone()) {
            return Err(ConfigError::new(at("name"), "must be unique"));
        }
        let key = match s.key.as_str() {
            "sub" => LimitKey::Sub,
            // Roles come only from the `roles` section: without it no caller holds any.
            "role" => match roles {
                Some(roles) => {
                    LimitKey::Role(roles.grants().iter().map(|(r, _)| r.clone()).collect())
                }
                None => {
                    return Err(ConfigError::new(
                        at("key"),
                        "counts callers by role, but no roles are configured",
                    ))
                }
            },
            "ip" => LimitKey::Ip {
                trusted_hops: s.trusted_hops,
            },
            other => match other.split_once(':') {
                Some(("header", name)) => LimitKey::Header(
                    validate::header_name(name).map_err(|r| ConfigError::new(at("key"), r))?,
                ),
                Some(("claim", name)) if !name.is_empty() => LimitKey::Claim(name.to_string()),
                _ => {
                    return Err(ConfigError::new(
                        at("key"),
                        "must be \"sub\", \"ip\", \"role\", \"header:NAME\" or \"claim:NAME\"",
                    ))
                }
            },
        };
        if s.trusted_hops > 0 && !matches!(key, LimitKey::Ip { .. }) {
            return Err(ConfigError::new(
                at("trusted_hops"),
                "only applies to key \"ip\"",
            ));
        }
        if s.trusted_hops > 16 {
            return Err(ConfigError::new(at("trusted_hops"), "must be at most 16"));
        }
        if matches!(key, LimitKey::Sub | LimitKey::Claim(_) | LimitKey::Role(_)) && !have_providers
        {
            return Err(ConfigError::new(
                at("key"),
                "counts verified callers, but no provider is configured",
            ));
        }
        let kind = match (s.requests, s.tokens) {
            (Some(n), None) if n > 0 => LimitKind::Requests(n),
            (None, Some(n)) if n > 0 => LimitKind::Tokens(n),
            (Some(0), None) | (None, Some(0)) => {
                return Err(ConfigError::new(
                    at(if s.requests.is_some() {
                        "requests"
                    } else {
                        "tokens"
                    }),
                    "must be at least 1",
                ))
            }
            _ => {
                return Err(ConfigError::new(
                    format!("rate_limits[{i}]"),
                    "needs exactly one of \"requests\" and \"tokens\"",
                ))
            }
        };
        let period =
            period(s.window_s, s.window.as_deref()).map_err(|(f, r)| ConfigError::new(at(f), r))?;
        let scope = match s.scope.as_deref() {
            None | Some("local") => Scope::Local,
            Some("mesh") => Scope::Mesh,
            Some(_) => {
                return Err(ConfigError::new(
                    at("scope"),
                    "must be \"local\" or \"mesh\"",
                ))
            }
        };
        if scope == Scope::Mesh {
            mesh_limit(&s, have_service).map_err(|(f, r)| ConfigError::new(at(f), r))?;
        }
        let slots = s.slots.unwrap_or(DEFAULT_SLOTS);
        if !(1..=MAX_SLOTS).contains(&slots) {
            return Err(ConfigError::new(
                at("slots"),
                format!("must be between 1 and {MAX_SLOTS}"),
            ));
        }
        let matcher = s
            .matcher
            .map(|m| compile_match(&at("match"), m))
            .transpose()?;
        let models = s
            .models
            .map(|m| compile_patterns(&at("models"), &m))
            .transpose()?;
        limits.push(RateLimit {
            name: s.name,
            key,
            kind,
            period,
            matcher,
            models,
            slots,
            scope,
        });
    }
    Ok(limits)
}

/// `rate_limit_service`.
pub fn compile_service(section: RateLimitServiceSection) -> Result<Service, ConfigError> {
    let at = |field: &str| format!("rate_limit_service.{field}");
    if section.cluster.is_empty() {
        return Err(ConfigError::new(at("cluster"), "must not be empty"));
    }
    if section.domain.is_empty() || section.domain.len() > 256 {
        return Err(ConfigError::new(
            at("domain"),
            "must be 1 to 256 characters",
        ));
    }
    if !(1..=60_000).contains(&section.timeout_ms) {
        return Err(ConfigError::new(
            at("timeout_ms"),
            "must be between 1 and 60000",
        ));
    }
    let fail_open = match section.failure_mode.as_str() {
        "deny" => false,
        "allow" => true,
        _ => {
            return Err(ConfigError::new(
                at("failure_mode"),
                "must be \"deny\" or \"allow\"",
            ))
        }
    };
    Ok(Service {
        cluster: section.cluster,
        domain: section.domain,
        timeout_ms: section.timeout_ms,
        fail_open,
    })
}

/// What a `scope: "mesh"` limit cannot have: windows the rate-limit service has no unit for
/// (its windows are fixed ones of one unit), model lists (the service is asked before the
/// body names the model), slots (the service keeps the counts).
fn mesh_limit(s: &RateLimitSection, have_service: bool) -> Result<(), (&'static str, String)> {
    if !have_service {
        return Err((
            "scope",
            "is \"mesh\", but no rate_limit_service is configured".into(),
        ));
    }
    if s.window.is_some() {
        return Err((
            "window",
            "is not supported with scope \"mesh\" (use window_s)".into(),
        ));
    }
    if s.window_s.is_some_and(|w| Unit::of_seconds(w).is_none()) {
        return Err((
            "window_s",
            "with scope \"mesh\" must be 1, 60, 3600 or 86400 (a unit of the rate-limit service)"
                .into(),
        ));
    }
    if s.models.is_some() {
        return Err(("models", "is not supported with scope \"mesh\"".into()));
    }
    if s.slots.is_some() {
        return Err((
            "slots",
            "only applies to scope \"local\" (the service keeps mesh counts)".into(),
        ));
    }
    Ok(())
}

/// The limit's window: `window_s` (a sliding window) or `window: "month"`, exactly one; `Err`
/// names the field to blame and why.
fn period(window_s: Option<u64>, window: Option<&str>) -> Result<Period, (&'static str, String)> {
    match (window_s, window) {
        (Some(_), Some(_)) => Err(("window", "cannot be given with \"window_s\"".into())),
        (None, None) => Err(("window_s", "is required (or \"window\": \"month\")".into())),
        (None, Some("month")) => Ok(Period::CalendarMonth),
        (None, Some(_)) => Err(("window", "must be \"month\"".into())),
        (Some(seconds), None) if (1..=MAX_WINDOW_S).contains(&seconds) => Ok(Period::Sliding {
            window_ms: seconds * 1000,
        }),
        (Some(_), None) => Err((
            "window_s",
            format!("must be between 1 and {MAX_WINDOW_S} (31 days)"),
        )),
    }
}

#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod tests;
