//! Counting in shared data, exact across workers, in bounded memory.
//!
//! Shared-data keys never expire and cannot be deleted, so each limit owns a fixed number of
//! caller slots (`slots`) and never creates another key. The slots are grouped by [`WAYS`] into
//! buckets, one shared-data key each. A caller hashes (SHA-256) to one bucket, and everything
//! that decides its count is in that one key, read and written with one compare-and-swap: the
//! host has no multi-key transactions, and a count split over several keys (probing) could not
//! be kept exact across workers.
//!
//! In its bucket a caller uses its own slot; else it takes a free one (never used, or idle:
//! nothing left in its windows); else, when every slot holds an active caller, it is counted in
//! the bucket's shared overflow count, together with the other callers there. The guarantee:
//! **a caller is never admitted beyond what its own exact count allows**, whatever the number
//! of callers:
//! - the overflow count is the sum of its callers' counts, so each of them is below it;
//! - the overflow remembers who used it (a 64-bit fingerprint set per window), and a caller in
//!   that set that later takes a free slot starts with the overflow's count, not a fresh one
//!   (a fresh count there would let it through up to twice its limit in a window);
//! - a slot is only taken over when idle, so its former owner loses nothing that still counts.
//!
//! The price of saturation is the other way: callers sharing the overflow share one limit, and
//! a fingerprint collision can carry the overflow's count into an innocent caller's new slot.
//! Both refuse early; neither admits more.
//!
//! Memory: a bucket is one key with a [`BUCKET_BYTES`] value. With the key string and Envoy's
//! map entry, Envoy's heap holds at most 96 bytes per slot (about 72 measured with a short
//! limit name), so 0.75 MiB for the default 8192 slots; `test-harness/tests/rate_limit_memory.rs`
//! checks that bound with 100,000 distinct callers.
//!
//! The host lets two workers both "create" an absent key (CAS is only checked on existing
//! keys), which could lose an increment. So every bucket is created at configure time by
//! [`prepare`] (the main thread configures before workers serve); afterwards every update is a
//! compare-and-swap, retried at most [`CAS_RETRIES`] times. When retries run out the request is
//! refused (fail closed), never silently allowed. A bucket that does not decode (not written by
//! this code) also refuses: it is never trusted, and never a panic.

use sha2::{Digest, Sha256};

use super::period::Period;
use super::window::{SlotState, Window};
use crate::store::{ensure_exists, SharedStore, StoreError};

/// Caller slots per bucket (one shared-data key).
pub const WAYS: u64 = 4;
pub const CAS_RETRIES: usize = 16;

/// Bytes of a bucket's header: its window index and the overflow count.
const HEADER_LEN: usize = 40;
/// Bytes per caller slot in a bucket: owner, current and previous count.
const SLOT_LEN: usize = 24;
/// Bytes of a full bucket's value: [`WAYS`] slots and the header (136).
pub const BUCKET_BYTES: usize = HEADER_LEN + WAYS as usize * SLOT_LEN;

/// Shared-data key of a bucket (`v2`: buckets; the earlier one-key-per-slot layout used other
/// keys, so a plugin upgraded in a running Envoy never reads that format).
pub fn bucket_key(limit: &str, bucket: u64) -> String {
    format!("ai-gateway/rl/v2/{limit}/{bucket}")
}

/// Number of buckets (shared-data keys) holding `slots` caller slots.
pub fn bucket_count(slots: u64) -> u64 {
    slots.max(1).div_ceil(WAYS)
}

/// Caller slots of `bucket`: [`WAYS`], fewer in the last bucket when `slots` is not a multiple.
fn ways_of(bucket: u64, slots: u64) -> usize {
    let ways = slots.max(1).saturating_sub(bucket * WAYS).min(WAYS);
    usize::try_from(ways).unwrap_or(1)
}

/// Creates every bucket of a limit (configure time).
pub fn prepare(store: &dyn SharedStore, limit: &str, slots: u64) {
    for bucket in 0..bucket_count(slots) {
        let empty = Bucket::empty(ways_of(bucket, slots)).encode();
        ensure_exists(store, &bucket_key(limit, bucket), &empty);
    }
}

/// A non-zero 64-bit hash of the caller's identity.
pub fn caller_hash(identity: &str) -> u64 {
    let digest = Sha256::digest(identity.as_bytes());
    let mut raw = [0u8; 8];
    raw.copy_from_slice(&digest[..8]);
    u64::from_le_bytes(raw) | 1
}

fn bucket_of(caller: u64, slots: u64) -> u64 {
    caller % bucket_count(slots)
}

/// The caller's bit in an overflow's fingerprint set (the hash's top six bits).
fn fingerprint(caller: u64) -> u64 {
    1u64 << (caller >> 58)
}

/// The overflow count of a bucket and who used it, per window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
struct Overflow {
    curr: u64,
    prev: u64,
    /// Fingerprints of the callers counted in `curr` / `prev`.
    guests_curr: u64,
    guests_prev: u64,
}

/// One bucket: the window index every count in it refers to, its overflow and its slots.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Bucket {
    window: u64,
    overflow: Overflow,
    /// `(owner, curr, prev)`; owner 0: never used.
    slots: Vec<(u64, u64, u64)>,
}

fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let raw: [u8; 8] = bytes.get(at..at + 8)?.try_into().ok()?;
    Some(u64::from_le_bytes(raw))
}

impl Bucket {
    fn empty(ways: usize) -> Self {
        Bucket {
            window: 0,
            overflow: Overflow::default(),
            slots: vec![(0, 0, 0); ways.max(1)],
        }
    }

    fn encode(&self) -> Vec<u8> {
        let o = &self.overflow;
        let mut out = Vec::with_capacity(HEADER_LEN + SLOT_LEN * self.slots.len());
        for value in [self.window, o.curr, o.prev, o.guests_curr, o.guests_prev] {
            out.extend_from_slice(&value.to_le_bytes());
        }
        for &(owner, curr, prev) in &self.slots {
            for value in [owner, curr, prev] {
                out.extend_from_slice(&value.to_le_bytes());
            }
        }
        out
    }

    /// `None` unless it is a header and at least one whole slot.
    fn decode(bytes: &[u8]) -> Option<Self> {
        let body = bytes.len().checked_sub(HEADER_LEN)?;
        if body == 0 || body % SLOT_LEN != 0 {
            return None;
        }
        let slots = (0..body / SLOT_LEN)
            .map(|i| {
                let at = HEADER_LEN + i * SLOT_LEN;
                Some((
                    read_u64(bytes, at)?,
                    read_u64(bytes, at + 8)?,
                    read_u64(bytes, at + 16)?,
                ))
            })
            .collect::<Option<Vec<_>>>()?;
        Some(Bucket {
            window: read_u64(bytes, 0)?,
            overflow: Overflow {
                curr: read_u64(bytes, 8)?,
                prev: read_u64(bytes, 16)?,
                guests_curr: read_u64(bytes, 24)?,
                guests_prev: read_u64(bytes, 32)?,
            },
            slots,
        })
    }

    /// Rolls every count forward to the window of `now_ms`. A clock behind the bucket's window
    /// (another worker's clock read a moment later) keeps the bucket as it is: never forgets.
    /// The previous window's counts are kept only where they still weigh (not for a month).
    fn roll(&mut self, now_ms: u64, period: Period) {
        let window = period.index(now_ms);
        let keep_prev = match window.checked_sub(self.window) {
            None | Some(0) => return,
            Some(1) => period.weighs_previous(),
            _ => false,
        };
        let roll = |curr: u64| if keep_prev { curr } else { 0 };
        for slot in &mut self.slots {
            *slot = (slot.0, 0, roll(slot.1));
        }
        let o = self.overflow;
        self.overflow = Overflow {
            curr: 0,
            prev: roll(o.curr),
            guests_curr: 0,
            guests_prev: roll(o.guests_curr),
        };
        self.window = window;
    }

    /// Where `caller` is counted, and its count there.
    fn locate(&self, caller: u64) -> (Place, SlotState) {
        let state = |curr, prev| SlotState {
            owner: caller,
            window: self.window,
            curr,
            prev,
        };
        if let Some(i) = self.slots.iter().position(|s| s.0 == caller) {
            let (_, curr, prev) = self.slots[i];
            return (Place::Own(i), state(curr, prev));
        }
        if let Some(i) = self
            .slots
            .iter()
            .position(|&(owner, curr, prev)| owner == 0 || (curr == 0 && prev == 0))
        {
            // A caller the overflow may be counting carries that count into its slot.
            let o = self.overflow;
            return if (o.guests_curr | o.guests_prev) & fingerprint(caller) != 0 {
                (Place::Claim(i), state(o.curr, o.prev))
            } else {
                (Place::Claim(i), state(0, 0))
            };
        }
        let o = self.overflow;
        (Place::Overflow, state(o.curr, o.prev))
    }

    /// Adds `cost` for `caller` where [`Bucket::locate`] put it; returns where it was counted.
    fn add(&mut self, caller: u64, place: Place, counted: SlotState, cost: u64) -> Place {
        match place {
            Place::Own(i) | Place::Claim(i) => {
                if let Some(slot) = self.slots.get_mut(i) {
                    *slot = (caller, counted.curr.saturating_add(cost), counted.prev);
                }
                Place::Own(i)
            }
            Place::Overflow => {
                self.overflow.curr = self.overflow.curr.saturating_add(cost);
                self.overflow.guests_curr |= fingerprint(caller);
                Place::Overflow
            }
        }
    }
}

/// Where in its bucket a caller is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Place {
    /// Its own slot.
    Own(usize),
    /// A free slot it is about to take.
    Claim(usize),
    /// The bucket's shared overflow count.
    Overflow,
}

/// Where a cost was counted, to give it back from the same count.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Charged {
    pub bucket: u64,
    pub place: Place,
    /// Index of the window it was counted in.
    pub window: u64,
}

/// A counted request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Counted {
    pub charged: Charged,
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

/// Reads a caller's bucket, rolled to `now_ms` (or to the bucket's window if the clock is
/// behind it); returns it, its CAS version and the time to judge it at.
///
/// A bucket more than one window ahead of the clock was not rolled there by a worker's clock
/// (they differ by moments): it was counted under another window setting of the same limit
/// (e.g. `window_s` made longer, or changed to `"month"`), whose indices mean other times.
/// Judged as it is, it would pin the limit to a far-future window that never ends; it is
/// started over instead, as a changed window setting promises.
fn read(
    store: &dyn SharedStore,
    key: &str,
    period: Period,
    now_ms: u64,
) -> Result<(Bucket, u32, u64), CountError> {
    let (bytes, cas) = store.get(key).ok_or(CountError::Store)?;
    let mut bucket = Bucket::decode(&bytes).ok_or(CountError::Store)?;
    let index = period.index(now_ms);
    if bucket.window > index.saturating_add(1) {
        bucket = Bucket {
            window: index,
            ..Bucket::empty(bucket.slots.len())
        };
    }
    let now_ms = now_ms.max(period.start_ms(bucket.window));
    bucket.roll(now_ms, period);
    Ok((bucket, cas, now_ms))
}

/// Counts `cost` for `caller` if it fits its window. A cost of 0 (a token budget checked
/// before its usage is known) only reads.
pub fn consume(
    store: &dyn SharedStore,
    limit: &str,
    slots: u64,
    window: Window,
    caller: u64,
    cost: u64,
    now_ms: u64,
) -> Result<Counted, CountError> {
    let bucket_index = bucket_of(caller, slots);
    let key = bucket_key(limit, bucket_index);
    for _ in 0..CAS_RETRIES {
        let (mut bucket, cas, now_ms) = read(store, &key, window.period, now_ms)?;
        let (place, state) = bucket.locate(caller);
        if !window.fits(&state, now_ms, cost) {
            return Err(CountError::Spent {
                retry_after_s: window.retry_after_s(&state, now_ms, cost),
                reset_s: window.reset_s(now_ms),
            });
        }
        let counted_at = bucket.add(caller, place, state, cost);
        let after = SlotState {
            curr: state.curr.saturating_add(cost),
            ..state
        };
        let counted = Counted {
            charged: Charged {
                bucket: bucket_index,
                place: counted_at,
                window: bucket.window,
            },
            remaining: window.remaining(&after, now_ms),
            reset_s: window.reset_s(now_ms),
        };
        if cost == 0 {
            return Ok(counted);
        }
        match store.set(&key, &bucket.encode(), Some(cas)) {
            Ok(()) => return Ok(counted),
            Err(StoreError::CasMismatch) => continue,
            Err(StoreError::Failed) => return Err(CountError::Store),
        }
    }
    Err(CountError::Store)
}

/// Charges `amount` to `caller` whatever its limit (usage that already happened), where it is
/// counted now: its own slot, else a free one, else the overflow. Never lost because another
/// caller took a slot meanwhile. Returns false when shared data could not be updated.
pub fn charge(
    store: &dyn SharedStore,
    limit: &str,
    slots: u64,
    period: Period,
    caller: u64,
    amount: u64,
    now_ms: u64,
) -> bool {
    let key = bucket_key(limit, bucket_of(caller, slots));
    for _ in 0..CAS_RETRIES {
        let Ok((mut bucket, cas, _)) = read(store, &key, period, now_ms) else {
            return false;
        };
        let (place, state) = bucket.locate(caller);
        bucket.add(caller, place, state, amount);
        match store.set(&key, &bucket.encode(), Some(cas)) {
            Ok(()) => return true,
            Err(StoreError::CasMismatch) => continue,
            Err(StoreError::Failed) => return false,
        }
    }
    false
}

/// Gives back `amount` that [`consume`] counted for `caller` at `charged`, from that same
/// count, in the window it is in now (the previous one after a boundary; nothing once it no
/// longer counts, so nothing after a month's end: the new month owes the caller nothing). A
/// slot that is no longer the caller's is left alone: it could only have been taken over once
/// idle, when the amount no longer counted. Returns false when shared data could not be
/// updated.
pub fn refund(
    store: &dyn SharedStore,
    limit: &str,
    period: Period,
    caller: u64,
    charged: Charged,
    amount: u64,
    now_ms: u64,
) -> bool {
    let key = bucket_key(limit, charged.bucket);
    for _ in 0..CAS_RETRIES {
        let Ok((mut bucket, cas, _)) = read(store, &key, period, now_ms) else {
            return false;
        };
        let in_prev = match bucket.window.checked_sub(charged.window) {
            Some(0) => false,
            Some(1) if period.weighs_previous() => true,
            _ => return true,
        };
        let take = |count: &mut u64| *count = count.saturating_sub(amount);
        match charged.place {
            Place::Own(i) | Place::Claim(i) => match bucket.slots.get_mut(i) {
                Some(slot) if slot.0 == caller => {
                    take(if in_prev { &mut slot.2 } else { &mut slot.1 })
                }
                _ => return true,
            },
            Place::Overflow => {
                let o = &mut bucket.overflow;
                take(if in_prev { &mut o.prev } else { &mut o.curr });
            }
        }
        match store.set(&key, &bucket.encode(), Some(cas)) {
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

    const P: Period = Period::Sliding { window_ms: W };

    fn window(limit: u64) -> Window {
        Window { limit, period: P }
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
        assert_eq!(
            store.len() as u64,
            bucket_count(128),
            "no key beyond the prepared buckets"
        );
        assert_eq!(bucket_count(128), 32);
        assert_eq!(bucket_count(1), 1);
        assert_eq!(bucket_count(4097), 1025);
        assert_eq!(
            (ways_of(1024, 4097), ways_of(0, 4097), ways_of(0, 1)),
            (1, 4, 1)
        );
    }

    #[test]
    fn collisions_share_the_overflow_and_never_admit_beyond_the_limit() {
        // One slot for five callers: the first owns it, the four others share the overflow.
        let store = MemoryStore::new();
        prepare(&store, "l", 1);
        let now = 10 * W;
        let mut admitted = [0; 5];
        for i in 0..50 {
            let caller = caller_hash(&format!("caller-{}", i % 5));
            if consume(&store, "l", 1, window(10), caller, 1, now).is_ok() {
                admitted[i % 5] += 1;
            }
        }
        assert_eq!(admitted[0], 10, "the owner has its own count");
        assert_eq!(
            admitted[1..].iter().sum::<u32>(),
            10,
            "the others share one count: {admitted:?}"
        );
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
        assert!(consume(&store, "l", 1, window(10), a, 1, 10 * W).is_err());
        // b finds the slot busy: counted in the overflow.
        let counted = consume(&store, "l", 1, window(10), b, 1, 10 * W).unwrap();
        assert_eq!(counted.charged.place, Place::Overflow);
        // Once every window of both is over, b owns the slot with a fresh count.
        let counted = consume(&store, "l", 1, window(10), b, 1, 12 * W).unwrap();
        assert_eq!(counted.charged.place, Place::Own(0));
        assert_eq!(counted.remaining, 9);
        // a now finds it busy and is counted in the overflow (its own windows are over).
        let counted = consume(&store, "l", 1, window(10), a, 1, 12 * W).unwrap();
        assert_eq!(
            (counted.charged.place, counted.remaining),
            (Place::Overflow, 9)
        );
    }

    #[test]
    fn a_caller_taking_a_slot_carries_the_overflow_count_it_may_be_in() {
        let store = MemoryStore::new();
        prepare(&store, "l", 1);
        let (owner, guest, newcomer) = (caller_hash("o"), caller_hash("g"), caller_hash("n"));
        assert_ne!(
            fingerprint(guest),
            fingerprint(newcomer),
            "pick other names"
        );
        consume(&store, "l", 1, window(10), owner, 1, 10 * W).unwrap();
        for _ in 0..6 {
            consume(&store, "l", 1, window(10), guest, 1, 11 * W).unwrap();
        }
        // Window 12: the owner's slot is idle. The guest takes it with the overflow's 6 (now
        // the previous window, weighted (W - 1) / W): 4 more fit, as for a caller alone, not 10.
        let admitted = (0..10)
            .filter(|_| consume(&store, "l", 1, window(10), guest, 1, 12 * W + 1).is_ok())
            .count();
        assert_eq!(admitted, 4);
        // A caller never counted in the overflow starts fresh when a slot is free for it.
        let store = MemoryStore::new();
        prepare(&store, "l", 2);
        consume(&store, "l", 2, window(10), owner, 1, 10 * W).unwrap();
        let counted = consume(&store, "l", 2, window(10), newcomer, 1, 10 * W).unwrap();
        assert_eq!(counted.remaining, 9);
    }

    #[test]
    fn refunds_come_from_where_the_cost_was_counted() {
        let store = MemoryStore::new();
        prepare(&store, "l", 8);
        let a = caller_hash("a");
        let w = window(1000);
        let counted = consume(&store, "l", 8, w, a, 300, 10 * W).unwrap();
        assert_eq!(counted.remaining, 700);
        assert!(refund(&store, "l", P, a, counted.charged, 200, 10 * W + 1));
        assert!(charge(&store, "l", 8, P, a, 850, 10 * W + 2));
        assert!(
            consume(&store, "l", 8, w, a, 0, 10 * W + 3).is_ok(),
            "950 < 1000"
        );
        assert!(charge(&store, "l", 8, P, a, 50, 10 * W + 4));
        assert!(
            consume(&store, "l", 8, w, a, 0, 10 * W + 5).is_err(),
            "spent"
        );
        // Another caller's refund never credits a's count.
        let b = caller_hash("b");
        assert!(refund(&store, "l", P, b, counted.charged, 1000, 10 * W + 6));
        assert!(consume(&store, "l", 8, w, a, 0, 10 * W + 7).is_err());
        // After a boundary, a refund comes from the previous window's count: at 11W + W/2,
        // 1000 * 0.5 still counts; giving back 400 leaves 300.
        let store = MemoryStore::new();
        prepare(&store, "l", 8);
        let counted = consume(&store, "l", 8, w, a, 1000, 10 * W + 5).unwrap();
        assert!(refund(&store, "l", P, a, counted.charged, 400, 11 * W));
        let left = consume(&store, "l", 8, w, a, 0, 11 * W + W / 2).unwrap();
        assert_eq!(left.remaining, 700);
        // Two windows on, nothing is given back (nothing counts any more).
        assert!(refund(&store, "l", P, a, counted.charged, 600, 12 * W));
        assert_eq!(
            consume(&store, "l", 8, w, a, 0, 12 * W).unwrap().remaining,
            1000
        );
    }

    #[test]
    fn a_usage_charge_is_kept_when_another_caller_took_the_slot() {
        // A token budget admits with cost 0, which holds no slot; by the time the response
        // ends another caller owns the only slot. The usage is counted anyway (overflow).
        let store = MemoryStore::new();
        prepare(&store, "l", 1);
        let w = window(1000);
        let (a, b) = (caller_hash("a"), caller_hash("b"));
        assert!(consume(&store, "l", 1, w, a, 0, 10 * W).is_ok());
        consume(&store, "l", 1, w, b, 1, 10 * W + 1).unwrap();
        assert!(charge(&store, "l", 1, P, a, 1000, 10 * W + 2));
        assert!(
            consume(&store, "l", 1, w, a, 0, 10 * W + 3).is_err(),
            "a's budget is spent"
        );
        assert!(
            consume(&store, "l", 1, w, b, 0, 10 * W + 4).is_ok(),
            "b's is not"
        );
    }

    #[test]
    fn a_clock_behind_the_bucket_forgets_nothing() {
        // Another worker rolled the bucket into window 11; this worker's clock still reads
        // window 10. Its count is judged at the start of window 11, not wiped.
        let store = MemoryStore::new();
        prepare(&store, "l", 4);
        let a = caller_hash("a");
        for _ in 0..10 {
            consume(&store, "l", 4, window(10), a, 1, 11 * W).unwrap();
        }
        assert!(consume(&store, "l", 4, window(10), a, 1, 11 * W - 1).is_err());
    }

    #[test]
    fn buckets_round_trip_and_garbage_fails_closed() {
        let bucket = Bucket {
            window: 9,
            overflow: Overflow {
                curr: 1,
                prev: 2,
                guests_curr: 3,
                guests_prev: u64::MAX,
            },
            slots: vec![(7, 3, u64::MAX), (0, 0, 0), (5, 1, 1)],
        };
        let bytes = bucket.encode();
        assert_eq!(bytes.len(), HEADER_LEN + 3 * SLOT_LEN);
        assert_eq!(Bucket::decode(&bytes), Some(bucket));
        assert_eq!(Bucket::empty(WAYS as usize).encode().len(), BUCKET_BYTES);
        for garbage in [&b"short"[..], &[0u8; 40][..], &[0xff; 65][..]] {
            assert_eq!(Bucket::decode(garbage), None);
        }
        let store = MemoryStore::new();
        store
            .set(&bucket_key("l", 0), b"not a bucket", None)
            .unwrap();
        assert_eq!(
            consume(&store, "l", 1, window(10), 1, 1, 0),
            Err(CountError::Store)
        );
    }

    /// A store whose every compare-and-swap loses (another worker always wrote first).
    struct AlwaysRaced {
        inner: MemoryStore,
        attempts: std::cell::Cell<usize>,
    }

    impl SharedStore for AlwaysRaced {
        fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
            self.inner.get(key)
        }
        fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
            if cas.is_some() {
                self.attempts.set(self.attempts.get() + 1);
                return Err(StoreError::CasMismatch);
            }
            self.inner.set(key, value, cas)
        }
    }

    #[test]
    fn exhausted_retries_fail_closed() {
        let store = AlwaysRaced {
            inner: MemoryStore::new(),
            attempts: std::cell::Cell::new(0),
        };
        prepare(&store, "l", 4);
        let a = caller_hash("a");
        assert_eq!(
            consume(&store, "l", 4, window(10), a, 1, 10 * W),
            Err(CountError::Store)
        );
        assert_eq!(store.attempts.get(), CAS_RETRIES);
        assert!(!charge(&store, "l", 4, P, a, 5, 10 * W));
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
