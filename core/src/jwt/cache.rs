//! Tokens already verified, remembered by a 128-bit keyed hash so the common case (one client
//! sending the same token many times) costs a hash and a lookup instead of a signature check.
//!
//! The hash is SipHash-2-4 with a 128-bit output, keyed by 16 random bytes drawn once per
//! worker: a pseudo-random function, so without the key nobody can make a token land on a
//! cached one. It replaced SHA-256, which costs several microseconds per request inside the VM
//! for a 2048-bit RS256 token (no SHA instructions there); SipHash is a few times cheaper. A host
//! that gives no randomness gets SHA-256 (truncated to 128 bits) instead.
//!
//! Bounds: at most `capacity` entries per worker. When full, expired entries are dropped first;
//! if it is still full, the whole cache is cleared (a burst of distinct tokens then costs fresh
//! verifications, never unbounded memory). An entry never outlives its token (`exp` is checked
//! on every hit) nor the keys it was verified with (each entry records the fingerprint of the
//! provider's JWKS at verification; any change of the JWKS content invalidates it).

use std::collections::HashMap;
use std::hash::Hasher;

use sha2::{Digest, Sha256};
use siphasher::sip128::{Hasher128, SipHasher24};

use super::Identity;

/// Default number of entries per worker: about 200 bytes each, so a few MiB at most.
pub const DEFAULT_CAPACITY: usize = 10_000;

/// The SHA-256 of a token: the key of tokens shared between workers (introspection answers in
/// shared data), where every worker must compute the same one.
pub type TokenDigest = [u8; 32];

pub fn digest(token: &str) -> TokenDigest {
    Sha256::digest(token.as_bytes()).into()
}

/// A token's key in one worker's cache (the token itself is never stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct CacheKey([u8; 16]);

struct Entry {
    identity: Identity,
    /// The JWKS fingerprint the token was verified with; `None` for HS256 and inline keys,
    /// which only change with the configuration (and the cache with it).
    keys_fingerprint: Option<u64>,
}

pub struct VerifiedCache {
    entries: HashMap<CacheKey, Entry>,
    capacity: usize,
    /// The worker's SipHash key; `None`: SHA-256.
    secret: Option<[u8; 16]>,
}

/// Whether a cached identity is still within its validity window, given the provider's skew.
pub fn within_validity(identity: &Identity, now: u64, clock_skew_s: u64) -> bool {
    now < identity.exp.saturating_add(clock_skew_s)
        && identity
            .nbf
            .is_none_or(|nbf| nbf <= now.saturating_add(clock_skew_s))
}

impl VerifiedCache {
    /// `secret`: 16 random bytes for this worker, or `None` when the host has no randomness.
    pub fn new(capacity: usize, secret: Option<[u8; 16]>) -> Self {
        Self {
            entries: HashMap::new(),
            capacity: capacity.max(1),
            secret,
        }
    }

    /// The key `token` is cached under.
    pub fn key(&self, token: &str) -> CacheKey {
        match &self.secret {
            Some(secret) => {
                let mut hasher = SipHasher24::new_with_key(secret);
                hasher.write(token.as_bytes());
                CacheKey(hasher.finish128().as_bytes())
            }
            None => {
                let digest = digest(token);
                let mut key = [0u8; 16];
                key.copy_from_slice(digest.get(..16).unwrap_or(&[0; 16]));
                CacheKey(key)
            }
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
        key: &CacheKey,
        now: u64,
        skew: impl Fn(usize) -> u64,
        fingerprint: impl Fn(usize) -> Option<u64>,
    ) -> Option<Identity> {
        let entry = self.entries.get(key)?;
        let provider = entry.identity.provider;
        if entry.keys_fingerprint != fingerprint(provider) {
            self.entries.remove(key);
            return None;
        }
        if now >= entry.identity.exp.saturating_add(skew(provider)) {
            self.entries.remove(key);
            return None;
        }
        // Not yet valid: not an error of the cache; verify afresh (and refuse).
        within_validity(&entry.identity, now, skew(provider)).then(|| entry.identity.clone())
    }

    pub fn insert(
        &mut self,
        key: CacheKey,
        identity: Identity,
        keys_fingerprint: Option<u64>,
        now: u64,
    ) {
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            self.entries.retain(|_, e| e.identity.exp > now);
            if self.entries.len() >= self.capacity {
                self.entries.clear();
            }
        }
        self.entries.insert(
            key,
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

    const SECRET: [u8; 16] = *b"0123456789abcdef";

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
        let mut cache = VerifiedCache::new(10, Some(SECRET));
        let d = cache.key("token-a");
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
        let mut cache = VerifiedCache::new(10, Some(SECRET));
        let d = cache.key("t");
        cache.insert(d, identity(0, 1000), None, 500);
        assert!(cache.get(&d, 1029, |_| 30, |_| None).is_some());
        assert!(cache.get(&d, 1030, |_| 30, |_| None).is_none());
    }

    #[test]
    fn not_yet_valid_entries_are_not_served() {
        let mut cache = VerifiedCache::new(10, Some(SECRET));
        let d = cache.key("t");
        let mut id = identity(0, 5000);
        id.nbf = Some(2000);
        cache.insert(d, id.clone(), None, 100);
        assert_eq!(cache.get(&d, 1000, no_skew, |_| None), None);
        assert_eq!(cache.get(&d, 2000, no_skew, |_| None), Some(id));
    }

    #[test]
    fn a_jwks_change_invalidates_entries_of_that_provider() {
        let mut cache = VerifiedCache::new(10, Some(SECRET));
        let d = cache.key("t");
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
        let mut cache = VerifiedCache::new(100, Some(SECRET));
        for i in 0..10_000u64 {
            cache.insert(
                cache.key(&format!("token-{i}")),
                identity(0, 10_000 + i),
                None,
                0,
            );
            assert!(cache.len() <= 100);
        }
    }

    #[test]
    fn expired_entries_are_dropped_before_clearing() {
        let mut cache = VerifiedCache::new(3, Some(SECRET));
        cache.insert(cache.key("old1"), identity(0, 10), None, 0);
        cache.insert(cache.key("old2"), identity(0, 10), None, 0);
        cache.insert(cache.key("live"), identity(0, 1000), None, 0);
        cache.insert(cache.key("new"), identity(0, 1000), None, 50);
        assert_eq!(cache.len(), 2);
        assert!(cache
            .get(&cache.key("live"), 60, no_skew, |_| None)
            .is_some());
    }

    #[test]
    fn different_tokens_have_different_digests() {
        assert_ne!(digest("a"), digest("b"));
        assert_eq!(digest("a"), digest("a"));
    }

    #[test]
    fn keys_depend_on_the_token_and_the_workers_secret() {
        let a = VerifiedCache::new(10, Some(SECRET));
        let b = VerifiedCache::new(10, Some(*b"another-secret!!"));
        assert_eq!(a.key("t"), a.key("t"));
        assert_ne!(a.key("t"), a.key("u"));
        assert_ne!(
            a.key("t"),
            b.key("t"),
            "another worker's secret, another key"
        );
        let plain = VerifiedCache::new(10, None);
        assert_eq!(plain.key("t"), plain.key("t"));
        assert_ne!(plain.key("t"), plain.key("u"));
        assert_ne!(plain.key("t"), a.key("t"));
    }

    #[test]
    fn without_randomness_the_key_is_the_sha256_prefix() {
        let plain = VerifiedCache::new(10, None);
        let sha = digest("token");
        assert_eq!(plain.key("token").0[..], sha[..16]);
    }
}
