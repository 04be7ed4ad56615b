//! Compiles `rate_limits`.

use std::collections::HashSet;

use super::rules::compile_match;
use super::schema::RateLimitSection;
use super::validate;
use super::ConfigError;
use crate::ratelimit::{LimitKey, LimitKind, RateLimit};

/// Slots per limit when not given: at most 0.75 MiB of Envoy heap per limit (96 bytes a slot;
/// see `ratelimit::counter`).
pub const DEFAULT_SLOTS: u64 = 8192;
pub const MAX_SLOTS: u64 = 1 << 20;

pub fn compile_rate_limits(
    sections: Vec<RateLimitSection>,
    have_providers: bool,
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
                        "must be \"sub\", \"ip\", \"header:NAME\" or \"claim:NAME\"",
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
        if matches!(key, LimitKey::Sub | LimitKey::Claim(_)) && !have_providers {
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
        if !(1..=86_400).contains(&s.window_s) {
            return Err(ConfigError::new(
                at("window_s"),
                "must be between 1 and 86400",
            ));
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
        limits.push(RateLimit {
            name: s.name,
            key,
            kind,
            window_s: s.window_s,
            matcher,
            slots,
        });
    }
    Ok(limits)
}
