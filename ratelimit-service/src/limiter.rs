//! limitador's limiter over Redis (the service) or in memory (unit tests), behind one type.

use std::collections::HashMap;
use std::time::Duration;

use limitador::errors::LimitadorError;
use limitador::limit::{Limit, Namespace};
use limitador::storage::redis::AsyncRedisStorage;
use limitador::{AsyncRateLimiter, CheckResult, RateLimiter};
use redis::aio::ConnectionManager;

/// How long one Redis command may take before the call fails (UNAVAILABLE) rather than hang.
const REDIS_RESPONSE_TIMEOUT: Duration = Duration::from_secs(1);
/// How long one connection attempt may take.
const REDIS_CONNECTION_TIMEOUT: Duration = Duration::from_millis(500);
/// Reconnection attempts per failure: few and short, so a call while Redis is down fails
/// within about a second and the first call after it is back reconnects.
const REDIS_RECONNECT_RETRIES: usize = 2;
const REDIS_RECONNECT_BASE: u64 = 2;
const REDIS_RECONNECT_FACTOR_MS: u64 = 50;

/// The values a limit is evaluated against (limitador 0.6's context).
pub type Values = HashMap<String, String>;

pub enum Limiter {
    /// Counters in Redis, shared by every replica of the service.
    Redis(AsyncRateLimiter),
    /// Counters in this process (unit tests).
    InMemory(RateLimiter),
}

impl Limiter {
    /// Connects to Redis at `url` (`redis://host:port`).
    pub async fn redis(url: &str) -> Result<Self, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let manager = ConnectionManager::new_with_backoff_and_timeouts(
            client,
            REDIS_RECONNECT_BASE,
            REDIS_RECONNECT_FACTOR_MS,
            REDIS_RECONNECT_RETRIES,
            REDIS_RESPONSE_TIMEOUT,
            REDIS_CONNECTION_TIMEOUT,
        )
        .await?;
        let storage = AsyncRedisStorage::new_with_conn_manager(manager);
        Ok(Limiter::Redis(AsyncRateLimiter::new_with_storage(
            Box::new(storage),
        )))
    }

    /// Counters in memory, at most `cache_size` of them.
    pub fn in_memory(cache_size: u64) -> Self {
        Limiter::InMemory(RateLimiter::new(cache_size))
    }

    /// Adds `limit` (nothing when an equal one is there).
    pub fn add_limit(&self, limit: Limit) {
        match self {
            Limiter::Redis(l) => l.add_limit(limit),
            Limiter::InMemory(l) => l.add_limit(limit),
        };
    }

    /// Counts `delta` unless that would go over (then counts nothing); the counters come back
    /// loaded, their `remaining` computed before this update (`max - (value + delta)`).
    pub async fn check_rate_limited_and_update(
        &self,
        namespace: &Namespace,
        values: &Values,
        delta: i64,
    ) -> Result<CheckResult, LimitadorError> {
        match self {
            Limiter::Redis(l) => {
                l.check_rate_limited_and_update(namespace, values, delta, true)
                    .await
            }
            Limiter::InMemory(l) => l.check_rate_limited_and_update(namespace, values, delta, true),
        }
    }

    /// Counts `delta`, over the limit or not.
    pub async fn update_counters(
        &self,
        namespace: &Namespace,
        values: &Values,
        delta: i64,
    ) -> Result<(), LimitadorError> {
        match self {
            Limiter::Redis(l) => l.update_counters(namespace, values, delta).await,
            Limiter::InMemory(l) => l.update_counters(namespace, values, delta),
        }
    }
}
