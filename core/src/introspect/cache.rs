//! Introspection answers shared by every worker, in a fixed table of shared-data slots (a token
//! hashes to one; keys can never be deleted, so one key per token would grow without bound).
//! A slot holds one token's state: an answer until it expires, or "a call is in flight" so a
//! burst of requests with the same new token makes one call. Two tokens meeting in one slot
//! only cost a second call.

use serde::{Deserialize, Serialize};

use super::response::ActiveToken;
use crate::jwt::cache::TokenDigest;
use crate::jwt::TokenError;
use crate::store::{ensure_exists, SharedStore};

const PREFIX: &str = "ai-gateway/introspection/";

/// Where one configuration's answers live: its own namespace (a fingerprint of everything an
/// answer was judged by), so another filter config sharing the VM, or this one after a reload
/// that changed the IdP, audiences, issuer, scopes or roles, never reads answers judged under
/// other rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Table {
    pub namespace: String,
    pub slots: u32,
}

/// A refusal worth remembering (the IdP's verdict; its failures are remembered apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Refusal {
    NotActive,
    Expired,
    NotYetValid,
    UnknownIssuer,
    AudienceMismatch,
    NoSubject,
    BadTime,
    NotAccessToken,
    BadSubject,
}

impl Refusal {
    pub fn of(error: &TokenError) -> Self {
        match error {
            TokenError::NotActive => Self::NotActive,
            TokenError::Expired => Self::Expired,
            TokenError::NotYetValid => Self::NotYetValid,
            TokenError::UnknownIssuer => Self::UnknownIssuer,
            TokenError::AudienceMismatch => Self::AudienceMismatch,
            TokenError::ClaimMissing(_) => Self::NoSubject,
            TokenError::InvalidClaim("token_type") => Self::NotAccessToken,
            TokenError::InvalidClaim("sub") => Self::BadSubject,
            _ => Self::BadTime,
        }
    }

    pub fn error(self) -> TokenError {
        match self {
            Self::NotActive => TokenError::NotActive,
            Self::Expired => TokenError::Expired,
            Self::NotYetValid => TokenError::NotYetValid,
            Self::UnknownIssuer => TokenError::UnknownIssuer,
            Self::AudienceMismatch => TokenError::AudienceMismatch,
            Self::NoSubject => TokenError::ClaimMissing("sub"),
            Self::BadTime => TokenError::InvalidClaim("exp"),
            Self::NotAccessToken => TokenError::InvalidClaim("token_type"),
            Self::BadSubject => TokenError::InvalidClaim("sub"),
        }
    }
}

/// What a slot says about its token, each state until `until_ms`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Entry {
    /// A worker (`owner`) is calling the IdP for it.
    Pending {
        owner: u64,
        until_ms: u64,
    },
    Active {
        token: ActiveToken,
        until_ms: u64,
    },
    Refused {
        refusal: Refusal,
        until_ms: u64,
    },
    /// The IdP failed just now: requests are refused until then instead of each calling again.
    Unavailable {
        until_ms: u64,
    },
}

impl Entry {
    fn until_ms(&self) -> u64 {
        match self {
            Self::Pending { until_ms, .. }
            | Self::Active { until_ms, .. }
            | Self::Refused { until_ms, .. }
            | Self::Unavailable { until_ms } => *until_ms,
        }
    }
}

#[derive(Serialize, Deserialize)]
struct Slot {
    /// The token's SHA-256, hex.
    token: String,
    entry: Entry,
}

/// What the table knows about a token now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lookup {
    /// Active, as the IdP said, until `until_ms`.
    Active(ActiveToken, u64),
    Refused(TokenError),
    Unavailable {
        retry_after_ms: u64,
    },
    /// Some worker is calling; wait.
    InFlight,
    /// Nothing usable: claim the slot with this version and call.
    Miss {
        cas: u32,
    },
}

fn hex(digest: &TokenDigest) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

fn slot_key(digest: &TokenDigest, table: &Table) -> String {
    let index =
        u32::from_le_bytes([digest[0], digest[1], digest[2], digest[3]]) % table.slots.max(1);
    format!("{PREFIX}{}/{index}", table.namespace)
}

/// Creates every slot (configure time), so claims are compare-and-swaps on existing keys.
pub fn prepare(store: &dyn SharedStore, table: &Table) {
    for index in 0..table.slots.max(1) {
        ensure_exists(store, &format!("{PREFIX}{}/{index}", table.namespace), b"");
    }
}

pub fn lookup(store: &dyn SharedStore, table: &Table, digest: &TokenDigest, now_ms: u64) -> Lookup {
    let Some((bytes, cas)) = store.get(&slot_key(digest, table)) else {
        return Lookup::Miss { cas: 0 };
    };
    let slot = serde_json::from_slice::<Slot>(&bytes)
        .ok()
        .filter(|slot| slot.token == hex(digest) && slot.entry.until_ms() > now_ms);
    match slot.map(|slot| slot.entry) {
        Some(Entry::Active { token, until_ms }) => Lookup::Active(token, until_ms),
        Some(Entry::Refused { refusal, .. }) => Lookup::Refused(refusal.error()),
        Some(Entry::Unavailable { until_ms }) => Lookup::Unavailable {
            retry_after_ms: until_ms - now_ms,
        },
        Some(Entry::Pending { .. }) => Lookup::InFlight,
        None => Lookup::Miss { cas },
    }
}

/// Marks the slot in flight for `owner` until `until_ms`, if it still has version `cas`. False:
/// another worker got there first.
pub fn claim(
    store: &dyn SharedStore,
    table: &Table,
    digest: &TokenDigest,
    cas: u32,
    owner: u64,
    until_ms: u64,
) -> bool {
    let entry = Entry::Pending { owner, until_ms };
    write(store, table, digest, &entry, Some(cas))
}

/// Stores what the IdP said (whoever holds the slot now: the newest answer wins).
pub fn record(store: &dyn SharedStore, table: &Table, digest: &TokenDigest, entry: &Entry) {
    write(store, table, digest, entry, None);
}

/// Frees a slot `owner` claimed but whose call will never answer (its request ended and Envoy
/// cancelled the call), so the next request calls again instead of waiting for nothing.
pub fn release(store: &dyn SharedStore, table: &Table, digest: &TokenDigest, owner: u64) {
    let key = slot_key(digest, table);
    let Some((bytes, cas)) = store.get(&key) else {
        return;
    };
    let ours = serde_json::from_slice::<Slot>(&bytes).is_ok_and(|slot| {
        slot.token == hex(digest)
            && matches!(slot.entry, Entry::Pending { owner: o, .. } if o == owner)
    });
    if ours {
        let _ = store.set(&key, b"", Some(cas));
    }
}

fn write(
    store: &dyn SharedStore,
    table: &Table,
    digest: &TokenDigest,
    entry: &Entry,
    cas: Option<u32>,
) -> bool {
    let slot = Slot {
        token: hex(digest),
        entry: entry.clone(),
    };
    let Ok(value) = serde_json::to_vec(&slot) else {
        return false;
    };
    store.set(&slot_key(digest, table), &value, cas).is_ok()
}
