//! Spent `jti`s, in one shared-data key every worker updates by compare-and-swap: the same
//! token sent to two workers at once is admitted by exactly one of them.

use crate::store::{SharedStore, StoreError};

pub const SPENT_KEY: &str = "ai-gateway/emergency/spent";
/// Kept until their token's `exp` (a token past it is refused anyway); beyond this many live
/// entries new uses are refused rather than the list growing without bound.
const MAX_LIVE: usize = 4096;
/// Compare-and-swap attempts before giving up (each lost race means another worker wrote).
const ATTEMPTS: usize = 16;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Spend {
    /// This use is the first: admitted.
    First,
    /// Spent before.
    Reused,
    /// The shared list could not be updated (full, or the host failed): refused, never open.
    Unavailable,
}

/// Marks `jti` (valid until `exp`) spent at `now`, unless it already is.
pub fn spend(store: &dyn SharedStore, jti: &str, exp: u64, now: u64) -> Spend {
    for _ in 0..ATTEMPTS {
        let (bytes, cas) = store.get(SPENT_KEY).unwrap_or_default();
        let mut live: Vec<(String, u64)> = serde_json::from_slice(&bytes).unwrap_or_default();
        if live.iter().any(|(spent, _)| spent == jti) {
            return Spend::Reused;
        }
        live.retain(|(_, until)| *until > now);
        if live.len() >= MAX_LIVE {
            return Spend::Unavailable;
        }
        live.push((jti.to_string(), exp));
        let Ok(value) = serde_json::to_vec(&live) else {
            return Spend::Unavailable;
        };
        match store.set(SPENT_KEY, &value, Some(cas)) {
            Ok(()) => return Spend::First,
            Err(StoreError::CasMismatch) => continue,
            Err(StoreError::Failed) => return Spend::Unavailable,
        }
    }
    Spend::Unavailable
}
