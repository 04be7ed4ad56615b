//! One worker's authentication state: the verified-token cache and its view of each provider's
//! remote keys. Pure: the shared store is passed in.

use crate::jwks::fetch::{self, ProviderKeys};
use crate::jwt::cache::VerifiedCache;
use crate::jwt::{verify_id_token, verify_keeping, Provider, Verdict};
use crate::store::SharedStore;

pub struct Authenticator {
    /// One per provider, by index (only remote providers ever get keys).
    remote: Vec<ProviderKeys>,
    cache: VerifiedCache,
    /// Cache hits and misses since the last `take_cache_counts`.
    hits: u64,
    misses: u64,
}

impl Authenticator {
    /// `cache_secret`: this worker's random key for the token cache (`None`: the host has no
    /// randomness, and the cache keys by SHA-256).
    pub fn new(
        providers: &[Provider],
        cache_capacity: usize,
        cache_secret: Option<[u8; 16]>,
    ) -> Self {
        Self {
            remote: providers.iter().map(|_| ProviderKeys::default()).collect(),
            cache: VerifiedCache::new(cache_capacity, cache_secret),
            hits: 0,
            misses: 0,
        }
    }

    /// Adopts newer shared keys for every remote provider. Returns true if any keys changed.
    pub fn sync(&mut self, providers: &[Provider], store: &dyn SharedStore) -> bool {
        let mut changed = false;
        for (provider, keys) in providers.iter().zip(self.remote.iter_mut()) {
            if provider.remote().is_some() {
                changed |= keys.sync(store, &provider.name);
            }
        }
        changed
    }

    pub fn keys(&self, provider: usize) -> Option<&ProviderKeys> {
        self.remote.get(provider)
    }

    pub fn have_keys(&self, provider: usize) -> bool {
        self.remote
            .get(provider)
            .is_some_and(|k| k.keys().is_some())
    }

    pub fn cached_tokens(&self) -> usize {
        self.cache.len()
    }

    /// Verified-token cache hits and misses since the last call.
    pub fn take_cache_counts(&mut self) -> (u64, u64) {
        let counts = (self.hits, self.misses);
        self.hits = 0;
        self.misses = 0;
        counts
    }

    /// Verifies `token` at `now` (Unix seconds), from the cache when it was verified before.
    /// `keep_claims`: claim values to keep in the identity (for `claim:` rate-limit keys).
    pub fn authenticate(
        &mut self,
        providers: &[Provider],
        token: &str,
        now: u64,
        keep_claims: &[String],
    ) -> Verdict {
        let remote = &self.remote;
        let fingerprint = |p: usize| remote.get(p).and_then(ProviderKeys::fingerprint);
        let skew = |p: usize| providers.get(p).map_or(0, |p| p.clock_skew_s);
        let key = self.cache.key(token);
        if let Some(identity) = self.cache.get(&key, now, skew, fingerprint) {
            self.hits += 1;
            return Verdict::Verified(identity);
        }
        self.misses += 1;
        let verdict = verify_keeping(
            token,
            providers,
            &|p| remote.get(p).and_then(ProviderKeys::keys),
            now,
            keep_claims,
        );
        if let Verdict::Verified(identity) = &verdict {
            let keys_fingerprint = fingerprint(identity.provider);
            self.cache
                .insert(key, identity.clone(), keys_fingerprint, now);
        }
        verdict
    }
}

impl Authenticator {
    /// Verifies a request token without the cache (when claims beyond the cached ones are
    /// needed, e.g. the session's `idt` at logout).
    pub fn verify_uncached(
        &self,
        providers: &[Provider],
        token: &str,
        now: u64,
        keep: &[String],
    ) -> Verdict {
        let remote = &self.remote;
        verify_keeping(
            token,
            providers,
            &|p| remote.get(p).and_then(ProviderKeys::keys),
            now,
            keep,
        )
    }

    /// Verifies an ID token of the login flow against provider `index` (never cached).
    pub fn verify_id_token(
        &self,
        providers: &[Provider],
        index: usize,
        token: &str,
        now: u64,
        keep: &[String],
    ) -> Verdict {
        let remote = &self.remote;
        verify_id_token(
            token,
            providers,
            index,
            &|p| remote.get(p).and_then(ProviderKeys::keys),
            now,
            keep,
        )
    }
}

/// Prepares the shared fetch slots of every remote provider (configure time).
pub fn prepare_shared_state(providers: &[Provider], store: &dyn SharedStore) {
    for provider in providers.iter().filter(|p| p.remote().is_some()) {
        fetch::prepare(store, &provider.name);
    }
}
