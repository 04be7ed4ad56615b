//! One descriptor as a limitador [`Limit`] and the values it is evaluated against.
//!
//! limitador 0.6 applies every limit of a namespace whose conditions hold for the values, and
//! a condition compares one value to a literal. So each limit gets one condition naming it
//! exactly: `rls_limit == "<id>"`, where the id is the SHA-256 (hex) of everything that tells
//! limits apart (the first entry, the other entries' keys, the override's number and window),
//! and the values hold `rls_limit` = that id and `rls_counted` = the other entries in one
//! value (the limit's one variable: one counter per caller). The limit of
//! `[limit=per-user, key=alice, model=qwen3]` with an override of 3 per MINUTE, in domain
//! `ai-gateway`, is:
//!
//! ```text
//! namespace  ai-gateway
//! max_value  3, seconds 60, name per-user
//! conditions rls_limit == "<id>"
//! variables  rls_counted      (values: rls_counted = "3:key5:alice5:model5:qwen3")
//! ```
//!
//! Without the id, `[limit=per-user, key=alice, model=qwen3]` would also count on the limit of
//! `[limit=per-user, key=alice]`, and on the same descriptor's limit with another number.

use std::collections::{BTreeSet, HashMap};

use limitador::limit::Limit;
use sha2::{Digest, Sha256};

use crate::limiter::Values;
use crate::proto::RateLimitDescriptor;
use crate::units::window_seconds;

/// The value naming the limit a descriptor counts on (an identifier limitador 0.6 parses).
pub const LIMIT_ID: &str = "rls_limit";
/// The one variable of every limit: the descriptor's other entries, in one value. limitador
/// 0.6's in-memory counters hash a counter's variables in map order (one counter could count
/// apart from itself with two or more), so there is always exactly one.
pub const COUNTED: &str = "rls_counted";

/// What identifies one limit: two descriptors with equal keys count on the same counters
/// when their variables' values are equal too.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct LimitKey {
    pub namespace: String,
    /// The first entry: the limit's condition.
    pub condition_key: String,
    pub condition_value: String,
    /// The other entries' keys, sorted (limitador keeps variables as a set).
    pub variables: Vec<String>,
    pub requests_per_unit: u32,
    /// The override's unit, as sent (echoed in the answer).
    pub unit: i32,
    pub window_seconds: u64,
}

/// A descriptor that carries a limit.
#[derive(Clone, Debug)]
pub struct DescriptorLimit {
    pub key: LimitKey,
    entries: HashMap<String, String>,
}

/// Why a descriptor is refused as malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvalidDescriptor {
    NoEntries,
    DuplicateKey(String),
    /// An entry named like a value this service adds (`rls_limit`, `rls_counted`).
    ReservedKey,
}

impl std::fmt::Display for InvalidDescriptor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InvalidDescriptor::NoEntries => write!(f, "a descriptor has no entries"),
            InvalidDescriptor::DuplicateKey(key) => {
                write!(f, "a descriptor has the key {key:?} twice")
            }
            InvalidDescriptor::ReservedKey => {
                write!(
                    f,
                    "a descriptor has the key {LIMIT_ID:?}, which this service reserves"
                )
            }
        }
    }
}

impl DescriptorLimit {
    /// The limit `descriptor` asks for in `namespace`; `None` without an override or with a
    /// unit of no known length (not limited).
    pub fn from_descriptor(
        namespace: &str,
        descriptor: &RateLimitDescriptor,
    ) -> Result<Option<Self>, InvalidDescriptor> {
        let (first, others) = descriptor
            .entries
            .split_first()
            .ok_or(InvalidDescriptor::NoEntries)?;
        // One value per key: the context is a map, and a second value would be lost.
        let mut entries = HashMap::with_capacity(descriptor.entries.len());
        for entry in &descriptor.entries {
            if entry.key == LIMIT_ID || entry.key == COUNTED {
                return Err(InvalidDescriptor::ReservedKey);
            }
            if entries
                .insert(entry.key.clone(), entry.value.clone())
                .is_some()
            {
                return Err(InvalidDescriptor::DuplicateKey(entry.key.clone()));
            }
        }
        let Some(limit) = &descriptor.limit else {
            return Ok(None);
        };
        let Some(window_seconds) = window_seconds(limit.unit) else {
            return Ok(None);
        };
        let variables: BTreeSet<String> = others.iter().map(|e| e.key.clone()).collect();
        Ok(Some(Self {
            key: LimitKey {
                namespace: namespace.to_string(),
                condition_key: first.key.clone(),
                condition_value: first.value.clone(),
                variables: variables.into_iter().collect(),
                requests_per_unit: limit.requests_per_unit,
                unit: limit.unit,
                window_seconds,
            },
            entries,
        }))
    }

    /// The limitador limit (see the module's doc).
    pub fn limit(&self) -> Limit {
        let key = &self.key;
        let mut limit = Limit::new(
            key.namespace.as_str(),
            i64::from(key.requests_per_unit),
            key.window_seconds,
            [format!("{LIMIT_ID} == \"{}\"", self.id())],
            [COUNTED],
        );
        limit.set_name(key.condition_value.clone());
        limit
    }

    /// The values this descriptor is evaluated against (see the module's doc).
    pub fn values(&self) -> Values {
        // The other entries by key (sorted), each part length-prefixed: unambiguous.
        let counted: String = self
            .key
            .variables
            .iter()
            .filter_map(|name| Some((name, self.entries.get(name)?)))
            .map(|(name, value)| format!("{}:{name}{}:{value}", name.len(), value.len()))
            .collect();
        Values::from([
            (LIMIT_ID.to_string(), self.id()),
            (COUNTED.to_string(), counted),
        ])
    }

    /// What tells this limit apart from every other, hashed into a literal any value is safe
    /// in (the condition's grammar has no escapes).
    fn id(&self) -> String {
        let key = &self.key;
        let mut hash = Sha256::new();
        for part in [&key.condition_key, &key.condition_value]
            .into_iter()
            .chain(&key.variables)
        {
            hash.update((part.len() as u64).to_le_bytes());
            hash.update(part.as_bytes());
        }
        hash.update(key.requests_per_unit.to_le_bytes());
        hash.update(key.window_seconds.to_le_bytes());
        hash.finalize().iter().map(|b| format!("{b:02x}")).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Entry, RateLimitOverride, RateLimitUnit};

    fn descriptor(
        entries: &[(&str, &str)],
        limit: Option<(u32, RateLimitUnit)>,
    ) -> RateLimitDescriptor {
        RateLimitDescriptor {
            entries: entries
                .iter()
                .map(|(k, v)| Entry {
                    key: k.to_string(),
                    value: v.to_string(),
                })
                .collect(),
            limit: limit.map(|(n, unit)| RateLimitOverride {
                requests_per_unit: n,
                unit: unit as i32,
            }),
            hits_addend: None,
        }
    }

    #[test]
    fn without_override_or_unit_nothing_is_limited() {
        let plain = descriptor(&[("limit", "per-user")], None);
        assert!(DescriptorLimit::from_descriptor("d", &plain)
            .unwrap()
            .is_none());
        let unknown = descriptor(&[("limit", "per-user")], Some((3, RateLimitUnit::Unknown)));
        assert!(DescriptorLimit::from_descriptor("d", &unknown)
            .unwrap()
            .is_none());
    }

    #[test]
    fn malformed_descriptors_are_refused() {
        let empty = descriptor(&[], Some((3, RateLimitUnit::Minute)));
        assert_eq!(
            DescriptorLimit::from_descriptor("d", &empty).unwrap_err(),
            InvalidDescriptor::NoEntries
        );
        let twice = descriptor(
            &[("limit", "per-user"), ("key", "a"), ("key", "b")],
            Some((3, RateLimitUnit::Minute)),
        );
        assert_eq!(
            DescriptorLimit::from_descriptor("d", &twice).unwrap_err(),
            InvalidDescriptor::DuplicateKey("key".into())
        );
    }

    #[test]
    fn the_limit_reads_as_documented() {
        let d = descriptor(
            &[("limit", "per-user"), ("model", "qwen3"), ("key", "alice")],
            Some((3, RateLimitUnit::Minute)),
        );
        let described = DescriptorLimit::from_descriptor("ai-gateway", &d)
            .unwrap()
            .unwrap();
        let limit = described.limit();
        assert_eq!(limit.namespace().as_ref(), "ai-gateway");
        assert_eq!(limit.max_value(), 3);
        assert_eq!(limit.seconds(), 60);
        assert_eq!(limit.name(), Some("per-user"));
        let values = described.values();
        let id = values.get(LIMIT_ID).unwrap();
        assert_eq!(id.len(), 64);
        let conditions: Vec<String> = limit.conditions().into_iter().collect();
        assert_eq!(conditions, [format!("{LIMIT_ID} == \"{id}\"")]);
        let variables: Vec<String> = limit.variables().into_iter().collect();
        assert_eq!(variables, [COUNTED]);
        assert!(limit.applies(&values));
        assert_eq!(
            values.get(COUNTED).map(String::as_str),
            Some("3:key5:alice5:model5:qwen3")
        );
    }

    #[test]
    fn limits_differing_in_shape_or_numbers_are_apart() {
        let id = |entries: &[(&str, &str)], n: u32, unit: RateLimitUnit| {
            DescriptorLimit::from_descriptor("d", &descriptor(entries, Some((n, unit))))
                .unwrap()
                .unwrap()
                .values()
                .remove(LIMIT_ID)
                .unwrap()
        };
        let base = id(&[("limit", "u"), ("key", "a")], 3, RateLimitUnit::Minute);
        assert_eq!(
            base,
            id(&[("limit", "u"), ("key", "b")], 3, RateLimitUnit::Minute)
        );
        for other in [
            id(
                &[("limit", "u"), ("key", "a"), ("model", "m")],
                3,
                RateLimitUnit::Minute,
            ),
            id(&[("limit", "u"), ("key", "a")], 4, RateLimitUnit::Minute),
            id(&[("limit", "u"), ("key", "a")], 3, RateLimitUnit::Hour),
            id(&[("limit", "v"), ("key", "a")], 3, RateLimitUnit::Minute),
        ] {
            assert_ne!(base, other);
        }
        let reserved = descriptor(
            &[("limit", "u"), (LIMIT_ID, "x")],
            Some((3, RateLimitUnit::Minute)),
        );
        assert_eq!(
            DescriptorLimit::from_descriptor("d", &reserved).unwrap_err(),
            InvalidDescriptor::ReservedKey
        );
    }
}
