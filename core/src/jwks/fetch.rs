//! Remote JWKS shared by all workers: one fetch serves every worker, and refetches (on a
//! schedule, or for an unknown `kid`) are rate-limited for all workers together.
//!
//! Two shared-data keys per provider:
//! - `ai-gateway/jwks/<name>/keys`: `<fetched_at_ms>\n<JWKS document>`, the last good keys.
//!   Its CAS version tells a worker whether to re-parse; keys are parsed once per version.
//! - `ai-gateway/jwks/<name>/fetch`: the fetch slot, `<busy> <started_ms> <owner>`. A worker
//!   starts a fetch only by winning a CAS on this slot, and only when no fetch is in flight and
//!   the last one started long enough ago (1 s while no keys were ever fetched, else
//!   `min_refresh_interval_s`). A slot whose owner vanished (its VM died mid-fetch) frees
//!   itself after `timeout_ms` plus a grace period.
//!
//! A failed fetch (error status, timeout, garbage, oversized, no usable keys) leaves the last
//! good keys in place.

use std::rc::Rc;

use crate::error::GatewayError;
use crate::jwt::{RemoteJwks, TokenError};
use crate::keys::{parse_jwks, JwksError, KeySet, MAX_JWKS_BYTES};
use crate::outgoing::CallResponse;
use crate::store::{ensure_exists, SharedStore, StoreError};

/// How often a fetch may start while no keys were ever fetched.
pub const INITIAL_RETRY_MS: u64 = 1000;
/// Added to `timeout_ms` before an unfinished fetch is considered lost.
pub const IN_FLIGHT_GRACE_MS: u64 = 1000;
/// Bounded CAS retries when releasing the slot.
const CAS_RETRIES: usize = 8;
const IDLE_SLOT: &[u8] = b"0 0 0";

pub fn keys_key(provider: &str) -> String {
    format!("ai-gateway/jwks/{provider}/keys")
}

pub fn slot_key(provider: &str) -> String {
    format!("ai-gateway/jwks/{provider}/fetch")
}

/// Creates the slot, so that later claims are real CAS operations. Called at configure time.
pub fn prepare(store: &dyn SharedStore, provider: &str) {
    ensure_exists(store, &slot_key(provider), IDLE_SLOT);
}

/// One worker's view of a provider's remote keys.
#[derive(Default)]
pub struct ProviderKeys {
    keys: Option<Rc<KeySet>>,
    seen_version: Option<u32>,
    fetched_at_ms: u64,
}

impl ProviderKeys {
    pub fn keys(&self) -> Option<Rc<KeySet>> {
        self.keys.clone()
    }

    pub fn fingerprint(&self) -> Option<u64> {
        self.keys.as_ref().map(|k| k.fingerprint())
    }

    /// Adopts the shared copy when its version changed. Returns true when the keys changed.
    pub fn sync(&mut self, store: &dyn SharedStore, provider: &str) -> bool {
        let Some((bytes, version)) = store.get(&keys_key(provider)) else {
            return false;
        };
        if self.seen_version == Some(version) {
            return false;
        }
        self.seen_version = Some(version);
        let Some((fetched_at_ms, document)) = decode_entry(&bytes) else {
            return false;
        };
        self.fetched_at_ms = fetched_at_ms;
        match parse_jwks(document) {
            Ok((set, _)) => {
                let changed = self.fingerprint() != Some(set.fingerprint());
                self.keys = Some(Rc::new(set));
                changed
            }
            Err(_) => false,
        }
    }

    /// Whether a scheduled refresh is due: no keys yet, or 90 % of the TTL has passed (so keys
    /// are renewed before the TTL runs out).
    pub fn refresh_due(&self, remote: &RemoteJwks, now_ms: u64) -> bool {
        let ttl_ms = remote.cache_ttl_s.saturating_mul(1000);
        self.keys.is_none() || now_ms >= self.fetched_at_ms.saturating_add(ttl_ms - ttl_ms / 10)
    }
}

/// How long a fetch may run and how often it may start once keys exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FetchTiming {
    pub timeout_ms: u64,
    pub min_refresh_interval_s: u64,
}

impl From<&RemoteJwks> for FetchTiming {
    fn from(remote: &RemoteJwks) -> Self {
        Self {
            timeout_ms: remote.timeout_ms,
            min_refresh_interval_s: remote.min_refresh_interval_s,
        }
    }
}

/// Whether this worker may start a fetch now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FetchDecision {
    /// The slot is ours: dispatch the call, then report with [`finish_fetch`].
    Start,
    /// Another fetch is running; it ends (or is given up) by `until_ms`.
    InFlight { until_ms: u64 },
    /// Too soon after the last fetch; the next may start at `at_ms`.
    NotBefore { at_ms: u64 },
}

struct Slot {
    busy: bool,
    started_ms: u64,
    owner: u64,
}

impl Slot {
    /// When a fetch started at `started_ms` is given up as lost (its owner's VM died).
    fn in_flight_until(&self, timing: FetchTiming) -> u64 {
        self.started_ms
            .saturating_add(timing.timeout_ms + IN_FLIGHT_GRACE_MS)
    }
}

fn read_slot(store: &dyn SharedStore, key: &str) -> Option<(Slot, u32)> {
    let (bytes, cas) = store.get(key)?;
    let text = std::str::from_utf8(&bytes).ok()?;
    let mut fields = text.split(' ');
    let slot = Slot {
        busy: fields.next()? == "1",
        started_ms: fields.next()?.parse().ok()?,
        owner: fields.next()?.parse().ok()?,
    };
    Some((slot, cas))
}

fn write_slot(slot: &Slot) -> Vec<u8> {
    format!("{} {} {}", u8::from(slot.busy), slot.started_ms, slot.owner).into_bytes()
}

/// Tries to claim the provider's fetch slot for `owner` (a random id of this worker).
pub fn claim_fetch(
    store: &dyn SharedStore,
    slot: &str,
    timing: FetchTiming,
    now_ms: u64,
    have_keys: bool,
    owner: u64,
) -> FetchDecision {
    let key = slot_key(slot);
    let (slot, cas) = match read_slot(store, &key) {
        Some(found) => found,
        None => {
            // Not prepared (or unreadable): create it neutral, then claim by CAS like anyone.
            let _ = store.set(&key, IDLE_SLOT, None);
            match read_slot(store, &key) {
                Some(found) => found,
                None => {
                    return FetchDecision::NotBefore {
                        at_ms: now_ms + INITIAL_RETRY_MS,
                    }
                }
            }
        }
    };
    let in_flight_until = slot.in_flight_until(timing);
    if slot.busy && now_ms < in_flight_until {
        return FetchDecision::InFlight {
            until_ms: in_flight_until,
        };
    }
    let interval_ms = if have_keys {
        timing.min_refresh_interval_s.saturating_mul(1000)
    } else {
        INITIAL_RETRY_MS
    };
    let next_ms = slot.started_ms.saturating_add(interval_ms);
    if slot.started_ms != 0 && now_ms < next_ms {
        return FetchDecision::NotBefore { at_ms: next_ms };
    }
    let claimed = Slot {
        busy: true,
        started_ms: now_ms,
        owner,
    };
    match store.set(&key, &write_slot(&claimed), Some(cas)) {
        Ok(()) => FetchDecision::Start,
        Err(_) => FetchDecision::InFlight {
            until_ms: now_ms + timing.timeout_ms + IN_FLIGHT_GRACE_MS,
        },
    }
}

/// Whether a fetch of `slot` is running now (claimed, not finished, not given up).
pub fn fetch_in_flight(
    store: &dyn SharedStore,
    slot: &str,
    timing: FetchTiming,
    now_ms: u64,
) -> bool {
    read_slot(store, &slot_key(slot))
        .is_some_and(|(slot, _)| slot.busy && now_ms < slot.in_flight_until(timing))
}

/// Why a fetch brought no keys.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FetchError {
    NoResponse,
    Status(u32),
    Document(JwksError),
}

impl std::fmt::Display for FetchError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::NoResponse => f.write_str("no response (timeout or connection failure)"),
            Self::Status(status) => write!(f, "HTTP status {status}"),
            Self::Document(e) => write!(f, "{e}"),
        }
    }
}

/// Records the outcome of a fetch this worker started: stores good keys for every worker and
/// frees the slot. Returns the number of usable keys, or why there are none.
pub fn finish_fetch(
    store: &dyn SharedStore,
    provider: &str,
    now_ms: u64,
    owner: u64,
    response: &CallResponse,
) -> Result<usize, FetchError> {
    let outcome = validate(response);
    if let Ok(document) = &outcome {
        let mut entry = format!("{now_ms}\n").into_bytes();
        entry.extend_from_slice(document);
        // Unconditional: the newest good keys win; concurrent writers hold equally good keys.
        let _ = store.set(&keys_key(provider), &entry, None);
    }
    release_slot(store, provider, owner);
    outcome.and_then(|document| {
        parse_jwks(document)
            .map(|(set, _)| set.len())
            .map_err(FetchError::Document)
    })
}

fn validate(response: &CallResponse) -> Result<&[u8], FetchError> {
    let status = response.status.ok_or(FetchError::NoResponse)?;
    if status != 200 {
        return Err(FetchError::Status(status));
    }
    let body = response.body.as_deref().unwrap_or_default();
    if body.len() > MAX_JWKS_BYTES {
        return Err(FetchError::Document(JwksError::TooLarge {
            limit: MAX_JWKS_BYTES,
        }));
    }
    parse_jwks(body).map_err(FetchError::Document)?;
    Ok(body)
}

/// Marks the slot idle if it is still ours (a slow fetch may have been given up and re-claimed
/// by another worker, whose claim must stand). Keeps `started_ms` for the rate limit.
pub fn release_slot(store: &dyn SharedStore, provider: &str, owner: u64) {
    let key = slot_key(provider);
    for _ in 0..CAS_RETRIES {
        let Some((slot, cas)) = read_slot(store, &key) else {
            return;
        };
        if !slot.busy || slot.owner != owner {
            return;
        }
        let idle = Slot {
            busy: false,
            ..slot
        };
        match store.set(&key, &write_slot(&idle), Some(cas)) {
            Err(StoreError::CasMismatch) => continue,
            _ => return,
        }
    }
}

/// The refusal when keys cannot be had: 401 with `otherwise` when some keys exist, else 503
/// `JWKS_UNAVAILABLE` with the time until the next attempt.
pub fn unavailable(have_keys: bool, otherwise: TokenError, retry_in_ms: u64) -> GatewayError {
    if have_keys {
        GatewayError::InvalidToken(otherwise)
    } else {
        GatewayError::JwksUnavailable {
            retry_after_s: retry_in_ms.div_ceil(1000).max(1),
        }
    }
}

fn decode_entry(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let newline = bytes.iter().position(|b| *b == b'\n')?;
    let fetched_at = std::str::from_utf8(bytes.get(..newline)?)
        .ok()?
        .parse()
        .ok()?;
    Some((fetched_at, bytes.get(newline + 1..)?))
}

#[cfg(test)]
mod tests;
