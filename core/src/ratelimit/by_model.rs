//! Limits restricted to models (`rate_limits[].models`): the model is known only once the body
//! is in (after translation for a chat), so these limits are admitted then, not at header time.
//! [`admit`](super::admit) leaves them pending with their caller; [`admit_model`] counts those
//! whose patterns match the request's model, merging into the same [`Admission`] (its token
//! charges, so reservation and usage apply only to matching budgets, and its headers, so the
//! tightest limit of both stages is shown).

use super::{count, refund, Admission, Counted, RateLimit};
use crate::error::GatewayError;
use crate::store::SharedStore;

/// Counts the request, which runs `model`, against its pending limits that count that model.
/// The first spent one refuses, and what the others counted here is given back (what was
/// counted at header time stays, as for any refusal after admission). Pending limits are
/// consumed: a request is counted by them once at most.
pub fn admit_model(
    limits: &[RateLimit],
    admission: &mut Admission,
    model: &str,
    store: &dyn SharedStore,
    now_ms: u64,
) -> Result<(), GatewayError> {
    let mut counted: Vec<Counted> = Vec::new();
    for pending in std::mem::take(&mut admission.pending) {
        let matches = limits
            .get(pending.limit)
            .is_some_and(|limit| limit.counts_model(model));
        if !matches {
            continue;
        }
        if let Err(error) = count(
            limits,
            pending.limit,
            pending.caller,
            admission,
            &mut counted,
            store,
            now_ms,
        ) {
            refund(limits, &counted, store, now_ms);
            return Err(error);
        }
    }
    Ok(())
}
