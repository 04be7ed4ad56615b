//! Tokens already verified, remembered by their SHA-256 so the common case (one client sending
//! the same token many times) costs a hash and a lookup instead of a signature check (about
//! 1 ms for RS256 inside the VM).
//!
//! Bounds: at most `capacity` entries per worker. When full, expired entries are dropped first;
//! if it is still full, the whole cache is cleared (a burst of distinct tokens then costs fresh
//! verifications, never unbounded memory). An entry never outlives its token (`exp` is checked
//! on every hit) nor the keys it was verified with (each entry records the fingerprint of the
//! provider's JWKS at verification; any change of the JWKS content invalidates it).

use std::collections::HashMap;

use sha2::{Digest, Sha256};

use super::Identity;

/// Default number of entries per worker: about 200 bytes each, so a few MiB at most.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// The SHA-256 of a token: the cache key (the token itself is never stored).
pub type TokenDigest = [u8; 32];

pub fn digest(token: &str) -> TokenDigest {
    Sha256::digest(token.as_bytes()).into()
}

struct Entry {
    identity: Identity,
    /// The JWKS fingerprint the token was verified with; `None` for HS256 and inline keys,
    /// which only change with the configuration (and the cache with it).
    keys_fingerprint: Option<u64>,
}

pub struct VerifiedCache {
    entries: HashMap<TokenDigest, Entry>,
    capacity: usize,
}

/// Whether a cached identity is still within its validity window, given the provider's skew.
pub fn within_validity(identity: &Identity, now: u64, clock_skew_s: u64) -> bool {
    now < identity.exp.saturating_add(clock_skew_s)
        && identity
            .nbf
            .is_none_or(|nbf| nbf <= now.saturating_add(clock_skew_s))
}

impl VerifiedCache {
    pub fn new(capacity: usize) -> Self {
        Self {
            entries: HashMap::new(),
            capacity: capacity.max(1),
        }
    }

    pub fn len(&self) -> usize {
        self.entries.len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The identity verified earlier for this token, if still valid at `now`.
    /// `skew(provider)` is the provider's clock skew; `fingerprint(provider)` the current JWKS
    /// fingerprint of a remote provider.
    pub fn get(
        &mut self,
        digest: &TokenDigest,
        now: u64,
        skew: impl Fn(usize) -> u64,
        fingerprint: impl Fn(usize) -> Option<u64>,
    ) -> Option<Identity> {
        let entry = self.entries.get(digest)?;
        let provider = entry.identity.provider;
        if entry.keys_fingerprint != fingerprint(provider) {
            self.entries.remove(digest);
            return None;
        }
        if now >= entry.identity.exp.saturating_add(skew(provider)) {
            self.entries.remove(digest);
            return None;
        }
        // Not yet valid: not an error of the cache; verify afresh (and refuse).
        within_validity(&entry.identity, now, skew(provider)).then(|| entry.identity.clone())
    }

    pub fn insert(
        &mut self,
        digest: TokenDigest,
        identity: Identity,
        keys_fingerprint: Option<u64>,
        now: u64,
    ) {
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&digest) {
            self.entries.retain(|_, e| e.identity.exp > now);
            if self.entries.len() >= self.capacity {
                self.entries.clear();
            }
        }
        self.entries.insert(
            digest,
            Entry {
                identity,
                keys_fingerprint,
            },
        );
    }

    pub fn clear(&mut self) {
        self.entries.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(provider: usize, exp: u64) -> Identity {
        Identity {
            provider,
            sub: "alice".into(),
            scopes: vec!["chat:read".into()],
            exp,
            nbf: None,
            claims: vec![],
            roles: vec![],
        }
    }

    fn no_skew(_: usize) -> u64 {
        0
    }

    #[test]
    fn hit_until_exp_then_gone() {
        let mut cache = VerifiedCache::new(10);
        let d = digest("token-a");
        cache.insert(d, identity(0, 1000), None, 500);
        assert_eq!(
            cache.get(&d, 999, no_skew, |_| None),
            Some(identity(0, 1000))
        );
        assert_eq!(cache.get(&d, 1000, no_skew, |_| None), None);
        assert!(cache.is_empty(), "an expired entry is dropped");
    }

    #[test]
    fn skew_extends_validity_like_the_verifier() {
        let mut cache = VerifiedCache::new(10);
        let d = digest("t");
        cache.insert(d, identity(0, 1000), None, 500);
        assert!(cache.get(&d, 1029, |_| 30, |_| None).is_some());
        assert!(cache.get(&d, 1030, |_| 30, |_| None).is_none());
    }

    #[test]
    fn not_yet_valid_entries_are_not_served() {
        let mut cache = VerifiedCache::new(10);
        let d = digest("t");
        let mut id = identity(0, 5000);
        id.nbf = Some(2000);
        cache.insert(d, id.clone(), None, 100);
        assert_eq!(cache.get(&d, 1000, no_skew, |_| None), None);
        assert_eq!(cache.get(&d, 2000, no_skew, |_| None), Some(id));
    }

    #[test]
    fn a_jwks_change_invalidates_entries_of_that_provider() {
        let mut cache = VerifiedCache::new(10);
        let d = digest("t");
        cache.insert(d, identity(1, 5000), Some(7), 100);
        assert!(cache.get(&d, 200, no_skew, |_| Some(7)).is_some());
        assert!(cache.get(&d, 200, no_skew, |_| Some(8)).is_none());
        assert!(
            cache.get(&d, 200, no_skew, |_| Some(7)).is_none(),
            "removed for good"
        );
    }

    #[test]
    fn size_is_bounded_whatever_the_number_of_tokens() {
        let mut cache = VerifiedCache::new(100);
        for i in 0..10_000u64 {
            cache.insert(
                digest(&format!("token-{i}")),
                identity(0, 10_000 + i),
                None,
                0,
            );
            assert!(cache.len() <= 100);
        }
    }

    #[test]
    fn expired_entries_are_dropped_before_clearing() {
        let mut cache = VerifiedCache::new(3);
        cache.insert(digest("old1"), identity(0, 10), None, 0);
        cache.insert(digest("old2"), identity(0, 10), None, 0);
        cache.insert(digest("live"), identity(0, 1000), None, 0);
        cache.insert(digest("new"), identity(0, 1000), None, 50);
        assert_eq!(cache.len(), 2);
        assert!(cache.get(&digest("live"), 60, no_skew, |_| None).is_some());
    }

    #[test]
    fn different_tokens_have_different_digests() {
        assert_ne!(digest("a"), digest("b"));
        assert_eq!(digest("a"), digest("a"));
    }
}
