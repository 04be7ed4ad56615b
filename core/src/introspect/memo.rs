//! This worker's copy of active answers it has read from the shared table, until the same
//! expiry: a cached opaque token then costs a hash and a map lookup, not a shared-data read
//! and a JSON parse. Bounded; a full memo forgets what expired, and everything if need be.

use std::collections::HashMap;

use super::response::ActiveToken;
use crate::jwt::cache::TokenDigest;

pub struct Memo {
    entries: HashMap<TokenDigest, (ActiveToken, u64)>,
    capacity: usize,
}

impl Memo {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    /// The answer for `token`, while it lasts (`until_ms` as in the shared table).
    pub fn get(&self, token: &TokenDigest, now_ms: u64) -> Option<&ActiveToken> {
        self.entries
            .get(token)
            .filter(|(_, until_ms)| *until_ms > now_ms)
            .map(|(active, _)| active)
    }

    pub fn insert(&mut self, token: TokenDigest, active: ActiveToken, until_ms: u64, now_ms: u64) {
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&token) {
            self.entries.retain(|_, (_, until)| *until > now_ms);
            if self.entries.len() >= self.capacity {
                self.entries.clear();
            }
        }
        self.entries.insert(token, (active, until_ms));
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }
}
