//! Rate limits restricted to models, applied once the body named the model: the request is
//! counted by those whose patterns match (see `ratelimit::by_model`). A refusal here is a
//! body-time refusal like the others, answered through `Gateway::finish` by the caller.

use crate::error::GatewayError;
use crate::ratelimit::{by_model, Admission};

use super::flow::Flow;
use super::Gateway;

impl Gateway {
    /// Counts the request, which runs `model` (as the upstream gets it), against its pending
    /// model-restricted limits.
    pub(super) fn admit_model(&self, flow: &mut Flow, model: &str) -> Result<(), GatewayError> {
        let Some(admission) = flow.admission.as_mut() else {
            return Ok(());
        };
        if admission.pending.is_empty() {
            return Ok(());
        }
        let admitted = by_model::admit_model(
            &self.config.rate_limits,
            admission,
            model,
            self.host.store(),
            self.host.now_ms(),
        );
        refused_by_limit(admission, admitted)
    }
}

/// A 429 after admission carries the `X-RateLimit-*` of the limit that refused, as one at
/// header time does: the headers of the limits that admitted the request are dropped, or the
/// reply would carry two sets (they are added to every response of an admitted request).
pub(super) fn refused_by_limit(
    admission: &mut Admission,
    outcome: Result<(), GatewayError>,
) -> Result<(), GatewayError> {
    if let Err(GatewayError::RateLimited(_) | GatewayError::RateLimitUnavailable { .. }) = &outcome
    {
        admission.headers.clear();
    }
    outcome
}
