//! What each descriptor of a request asks: nothing, a check, or hits to count.

use crate::descriptor_limit::{DescriptorLimit, InvalidDescriptor};
use crate::proto::RateLimitDescriptor;

/// Hits beyond this are refused: Redis counts in signed 64 bits.
const MAX_HITS: u64 = i64::MAX as u64;

#[derive(Debug)]
pub enum Plan {
    /// No limit (no override, or a unit of no known length): OK, nothing counted.
    Unlimited,
    /// `hits_addend` present and 0: over when one more hit would go over; nothing counted.
    CheckOnly(DescriptorLimit),
    /// Count these hits.
    Count(DescriptorLimit, u64),
}

/// Why a request is refused as malformed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum InvalidPlan {
    Descriptor(usize, InvalidDescriptor),
    TooManyHits(usize, u64),
}

impl std::fmt::Display for InvalidPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            InvalidPlan::Descriptor(index, why) => write!(f, "descriptor {index}: {why}"),
            InvalidPlan::TooManyHits(index, hits) => {
                write!(
                    f,
                    "descriptor {index}: hits_addend {hits} is over {MAX_HITS}"
                )
            }
        }
    }
}

impl Plan {
    /// The plan for the `index`th descriptor of a request to `namespace` whose own
    /// `hits_addend` is `request_hits` (0 counts as 1, as Envoy's proto says).
    pub fn new(
        namespace: &str,
        index: usize,
        descriptor: &RateLimitDescriptor,
        request_hits: u32,
    ) -> Result<Plan, InvalidPlan> {
        let limit = DescriptorLimit::from_descriptor(namespace, descriptor)
            .map_err(|why| InvalidPlan::Descriptor(index, why))?;
        let Some(limit) = limit else {
            return Ok(Plan::Unlimited);
        };
        Ok(match descriptor.hits_addend {
            Some(0) => Plan::CheckOnly(limit),
            Some(hits) if hits > MAX_HITS => return Err(InvalidPlan::TooManyHits(index, hits)),
            Some(hits) => Plan::Count(limit, hits),
            None => Plan::Count(limit, u64::from(request_hits.max(1))),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::{Entry, RateLimitOverride, RateLimitUnit};

    fn descriptor(hits_addend: Option<u64>) -> RateLimitDescriptor {
        RateLimitDescriptor {
            entries: vec![Entry {
                key: "limit".into(),
                value: "per-user".into(),
            }],
            limit: Some(RateLimitOverride {
                requests_per_unit: 3,
                unit: RateLimitUnit::Minute as i32,
            }),
            hits_addend,
        }
    }

    fn hits(plan: Plan) -> Option<u64> {
        match plan {
            Plan::Count(_, hits) => Some(hits),
            Plan::CheckOnly(_) => Some(0),
            Plan::Unlimited => None,
        }
    }

    #[test]
    fn hits_come_from_the_descriptor_else_the_request() {
        let plan = |own, request| hits(Plan::new("d", 0, &descriptor(own), request).unwrap());
        assert_eq!(plan(None, 0), Some(1));
        assert_eq!(plan(None, 4), Some(4));
        assert_eq!(plan(Some(7), 4), Some(7));
        assert_eq!(plan(Some(0), 4), Some(0));
    }

    #[test]
    fn a_present_zero_is_check_only() {
        let plan = Plan::new("d", 0, &descriptor(Some(0)), 5).unwrap();
        assert!(matches!(plan, Plan::CheckOnly(_)));
    }

    #[test]
    fn hits_past_i64_are_refused() {
        let refused = Plan::new("d", 2, &descriptor(Some(u64::MAX)), 1).unwrap_err();
        assert_eq!(refused, InvalidPlan::TooManyHits(2, u64::MAX));
    }

    #[test]
    fn no_override_is_unlimited() {
        let mut d = descriptor(None);
        d.limit = None;
        assert!(matches!(Plan::new("d", 0, &d, 1).unwrap(), Plan::Unlimited));
    }
}
