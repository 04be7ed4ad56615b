//! Compiles `rate_limits`.

use std::collections::HashSet;

use super::models::compile_patterns;
use super::rules::compile_match;
use super::schema::RateLimitSection;
use super::validate;
use super::ConfigError;
use crate::ratelimit::{LimitKey, LimitKind, Period, RateLimit};
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
        });
    }
    Ok(limits)
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
