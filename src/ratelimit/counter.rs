//! Counting in shared data, exact across workers.
//!
//! Each limit owns a fixed number of slots (`slots`), so memory is bounded whatever the number
//! of callers: shared-data keys never expire and cannot be deleted, and these are the only keys
//! a limit ever creates. A caller hashes (SHA-256) to a slot and probes up to [`PROBES`] slots:
//! its own, else an idle one (nothing left in its windows), which it takes over. If every probe
//! is busy with other callers, it shares the first probe's count: a collision can refuse a
//! caller early, never admit anyone beyond a limit.
//!
//! The host lets two workers both "create" an absent key (CAS is only checked on existing
//! keys), which could lose an increment. So every slot is created at configure time by
//! [`prepare`] (the main thread configures before workers serve); afterwards every update is a
//! compare-and-swap, retried at most [`CAS_RETRIES`] times. When retries run out the request is
//! refused (fail closed), never silently allowed.

use sha2::{Digest, Sha256};

use super::window::{SlotState, Window};
use crate::store::{ensure_exists, SharedStore, StoreError};

pub const PROBES: u64 = 4;
pub const CAS_RETRIES: usize = 16;

pub fn slot_key(limit: &str, index: u64) -> String {
    format!("ai-gateway/rl/{limit}/{index}")
}

/// Creates every slot of a limit (configure time).
pub fn prepare(store: &dyn SharedStore, limit: &str, slots: u64) {
    let empty = SlotState::default().encode();
    for index in 0..slots {
        ensure_exists(store, &slot_key(limit, index), &empty);
    }
}

/// A non-zero 64-bit hash of the caller's identity.
pub fn caller_hash(identity: &str) -> u64 {
    let digest = Sha256::digest(identity.as_bytes());
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(raw) | 1
}

fn probe_index(caller: u64, probe: u64, slots: u64) -> u64 {
    // Double hashing: the step is odd, so probes differ for any slot count.
    caller.wrapping_add(probe.wrapping_mul((caller >> 32) | 1)) % slots.max(1)
}

/// A counted request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    pub slot: u64,
    pub remaining: u64,
    pub reset_s: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CountError {
    /// The limit is spent.
    Spent { retry_after_s: u64, reset_s: u64 },
    /// Shared data could not be updated (CAS retries exhausted, or the host refused).
    Store,
}

/// Counts `cost` for `caller` if it fits the window.
pub fn consume(
    store: &dyn SharedStore,
    limit: &str,
    slots: u64,
    window: Window,
    caller: u64,
    cost: u64,
    now_ms: u64,
) -> Result<Counted, CountError> {
    for _ in 0..CAS_RETRIES {
        let (slot, state, cas) = choose_slot(store, limit, slots, window, caller, now_ms)?;
        if !window.fits(&state, now_ms, cost) {
            return Err(CountError::Spent {
                retry_after_s: window.retry_after_s(&state, now_ms, cost),
                reset_s: window.reset_s(now_ms),
            });
        }
        let mut next = state;
        next.curr = next.curr.saturating_add(cost);
        if next.owner == 0 || state.is_idle() {
            next.owner = caller;
        }
        match store.set(&slot_key(limit, slot), &next.encode(), Some(cas)) {
            Ok(()) => {
                return Ok(Counted {
                    slot,
                    remaining: window.remaining(&next, now_ms),
                    reset_s: window.reset_s(now_ms),
                })
            }
            Err(StoreError::CasMismatch) => continue,
            Err(StoreError::Failed) => return Err(CountError::Store),
        }
    }
    Err(CountError::Store)
}

/// The slot for `caller`: its own, else the first idle probe, else the first probe (shared).
fn choose_slot(
    store: &dyn SharedStore,
    limit: &str,
    slots: u64,
    window: Window,
    caller: u64,
    now_ms: u64,
) -> Result<(u64, SlotState, u32), CountError> {
    let mut first: Option<(u64, SlotState, u32)> = None;
    let mut idle: Option<(u64, SlotState, u32)> = None;
    for probe in 0..PROBES {
        let index = probe_index(caller, probe, slots);
        let (bytes, cas) = store
            .get(&slot_key(limit, index))
            .ok_or(CountError::Store)?;
        let state = SlotState::decode(&bytes).at(now_ms, window.window_ms);
        if state.owner == caller {
            return Ok((index, state, cas));
        }
        if idle.is_none() && (state.owner == 0 || state.is_idle()) {
            idle = Some((index, state, cas));
        }
        first.get_or_insert((index, state, cas));
    }
    idle.or(first).ok_or(CountError::Store)
}

/// Adds `delta` (negative: a refund) to `caller`'s current count in `slot`, if the slot is
/// still its own. Returns false when shared data could not be updated.
pub fn adjust(
    store: &dyn SharedStore,
    limit: &str,
    slot: u64,
    window_ms: u64,
    caller: u64,
    delta: i64,
    now_ms: u64,
) -> bool {
    for _ in 0..CAS_RETRIES {
        let Some((bytes, cas)) = store.get(&slot_key(limit, slot)) else {
            return false;
        };
        let mut state = SlotState::decode(&bytes).at(now_ms, window_ms);
        if state.owner != caller && !(delta > 0 && state.is_idle()) {
            // Taken over by another caller: a refund would credit them, a charge would bill them.
            return true;
        }
        state.owner = caller;
        state.curr = if delta >= 0 {
            state.curr.saturating_add(delta.unsigned_abs())
        } else {
            state.curr.saturating_sub(delta.unsigned_abs())
        };
        match store.set(&slot_key(limit, slot), &state.encode(), Some(cas)) {
            Ok(()) => return true,
            Err(StoreError::CasMismatch) => continue,
            Err(StoreError::Failed) => return false,
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::MemoryStore;

    const W: u64 = 60_000;

    fn window(limit: u64) -> Window {
        Window {
            limit,
            window_ms: W,
        }
    }

    #[test]
    fn exactly_the_limit_is_admitted_per_caller() {
        let store = MemoryStore::new();
        prepare(&store, "l", 64);
        let (alice, bob) = (caller_hash("alice"), caller_hash("bob"));
        let now = 10 * W;
        let admitted = (0..400)
            .filter(|i| consume(&store, "l", 64, window(100), alice, 1, now + i).is_ok())
            .count();
        assert_eq!(admitted, 100);
        assert!(
            consume(&store, "l", 64, window(100), bob, 1, now).is_ok(),
            "bob has his own count"
        );
        match consume(&store, "l", 64, window(100), alice, 1, now + 500) {
            Err(CountError::Spent {
                retry_after_s,
                reset_s,
            }) => {
                assert!(retry_after_s >= 1 && reset_s >= 1);
            }
            other => panic!("{other:?}"),
        }
        // Two windows later the caller is admitted again.
        assert!(consume(&store, "l", 64, window(100), alice, 1, now + 2 * W).is_ok());
    }

    #[test]
    fn memory_is_bounded_whatever_the_number_of_callers() {
        let store = MemoryStore::new();
        prepare(&store, "l", 128);
        for i in 0..100_000u64 {
            let caller = caller_hash(&format!("user-{i}"));
            let _ = consume(&store, "l", 128, window(5), caller, 1, 10 * W + i);
        }
        assert_eq!(store.len(), 128, "no key beyond the prepared slots");
    }

    #[test]
    fn collisions_share_a_count_and_never_admit_beyond_the_limit() {
        let store = MemoryStore::new();
        prepare(&store, "l", 1);
        let now = 10 * W;
        let mut admitted = 0;
        for i in 0..50 {
            let caller = caller_hash(&format!("caller-{}", i % 5));
            if consume(&store, "l", 1, window(10), caller, 1, now).is_ok() {
                admitted += 1;
            }
        }
        assert_eq!(admitted, 10, "one slot for five callers: one shared limit");
    }

    #[test]
    fn an_idle_slot_is_taken_over() {
        let store = MemoryStore::new();
        prepare(&store, "l", 1);
        let a = caller_hash("a");
        let b = caller_hash("b");
        for _ in 0..10 {
            consume(&store, "l", 1, window(10), a, 1, 10 * W).unwrap();
        }
        assert!(consume(&store, "l", 1, window(10), b, 1, 10 * W).is_err());
        // Once a's windows are over, b owns the slot with a fresh count.
        let counted = consume(&store, "l", 1, window(10), b, 1, 12 * W).unwrap();
        assert_eq!(counted.remaining, 9);
    }

    #[test]
    fn refunds_and_charges_apply_to_the_own_slot_only() {
        let store = MemoryStore::new();
        prepare(&store, "l", 8);
        let a = caller_hash("a");
        let counted = consume(&store, "l", 8, window(1000), a, 300, 10 * W).unwrap();
        assert_eq!(counted.remaining, 700);
        assert!(adjust(&store, "l", counted.slot, W, a, -200, 10 * W + 1));
        assert!(adjust(&store, "l", counted.slot, W, a, 850, 10 * W + 2));
        assert!(
            consume(&store, "l", 8, window(1000), a, 0, 10 * W + 3).is_ok(),
            "950 < 1000"
        );
        assert!(adjust(&store, "l", counted.slot, W, a, 50, 10 * W + 4));
        assert!(
            consume(&store, "l", 8, window(1000), a, 0, 10 * W + 5).is_err(),
            "spent"
        );
        // Another caller's slot is never touched.
        let b = caller_hash("b");
        assert!(adjust(&store, "l", counted.slot, W, b, -1000, 10 * W + 6));
        assert!(consume(&store, "l", 8, window(1000), a, 0, 10 * W + 7).is_err());
    }

    #[test]
    fn an_unprepared_or_failing_store_fails_closed() {
        let store = MemoryStore::new();
        assert_eq!(
            consume(&store, "never-prepared", 8, window(10), 1, 1, 0),
            Err(CountError::Store)
        );
    }
}
