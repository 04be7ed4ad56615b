//! Answers one `ShouldRateLimit` request with limitador (see the crate's doc for the rules).

use std::collections::HashSet;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::sync::Mutex as AsyncMutex;

use limitador::errors::LimitadorError;
use limitador::limit::Namespace;
use limitador::CheckResult;

use crate::descriptor_limit::{DescriptorLimit, LimitKey};
use crate::limiter::Limiter;
use crate::plan::Plan;
use crate::proto::{Code, DescriptorStatus, RateLimit, RateLimitRequest, RateLimitResponse};

/// Why a request got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// The request is malformed (gRPC INVALID_ARGUMENT).
    InvalidArgument(String),
    /// The counters could not be read or written (gRPC UNAVAILABLE).
    Unavailable(String),
    /// A limit this service built did not work: a bug here (gRPC INTERNAL).
    Internal(String),
}

impl From<LimitadorError> for Refusal {
    fn from(error: LimitadorError) -> Self {
        match error {
            LimitadorError::Storage(e) => Refusal::Unavailable(format!("storage: {e}")),
        }
    }
}

pub struct Decider {
    limiter: Limiter,
    /// The limits already given to limitador.
    added: Mutex<HashSet<LimitKey>>,
    /// One request decided at a time: limitador's Redis storage reads a counter and then
    /// increments it (two round trips), so two concurrent requests could both see room for one.
    /// Serialized here, this service's counts are exact; replicas of it would race again.
    deciding: AsyncMutex<()>,
}

impl Decider {
    pub fn new(limiter: Limiter) -> Self {
        Self {
            limiter,
            added: Mutex::new(HashSet::new()),
            deciding: AsyncMutex::new(()),
        }
    }

    pub async fn decide(&self, request: &RateLimitRequest) -> Result<RateLimitResponse, Refusal> {
        if request.domain.is_empty() {
            return Err(Refusal::InvalidArgument("domain is empty".into()));
        }
        let plans = request
            .descriptors
            .iter()
            .enumerate()
            .map(|(i, d)| Plan::new(&request.domain, i, d, request.hits_addend))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|why| Refusal::InvalidArgument(why.to_string()))?;
        let namespace = Namespace::from(request.domain.as_str());
        let _one_at_a_time = self.deciding.lock().await;

        let mut statuses: Vec<Option<DescriptorStatus>> = vec![None; plans.len()];
        let mut over = false;
        // Check-only descriptors first: when one is over, nothing is counted.
        for (status, plan) in statuses.iter_mut().zip(&plans) {
            if let Plan::CheckOnly(limit) = plan {
                let checked = self.check(&namespace, limit, 1).await?;
                over |= checked.code == Code::OverLimit as i32;
                *status = Some(checked);
            }
        }
        for (status, plan) in statuses.iter_mut().zip(&plans) {
            match plan {
                Plan::Unlimited => *status = Some(unlimited_status()),
                Plan::CheckOnly(_) => {}
                // Turned away already: what counting would answer, nothing counted.
                Plan::Count(limit, hits) if over => {
                    *status = Some(self.check(&namespace, limit, *hits).await?)
                }
                Plan::Count(limit, hits) => {
                    let counted = self.count(&namespace, limit, *hits).await?;
                    *status = Some(counted);
                }
            }
        }
        let statuses: Vec<DescriptorStatus> = statuses.into_iter().flatten().collect();
        let any_over = statuses.iter().any(|s| s.code == Code::OverLimit as i32);
        Ok(RateLimitResponse {
            overall_code: if any_over { Code::OverLimit } else { Code::Ok } as i32,
            statuses,
        })
    }

    /// Whether `hits` more would go over `limit`; counts nothing (limitador adds 0, which
    /// loads the counter).
    async fn check(
        &self,
        namespace: &Namespace,
        limit: &DescriptorLimit,
        hits: u64,
    ) -> Result<DescriptorStatus, Refusal> {
        self.ensure_added(limit);
        let result = self
            .limiter
            .check_rate_limited_and_update(namespace, &limit.values(), 0)
            .await?;
        let counter = the_counter(limit, &result)?;
        // Loaded before adding 0: max - value.
        let room = counter.remaining().unwrap_or(counter.max_value());
        let over = room < i64::try_from(hits).unwrap_or(i64::MAX);
        status(limit, over, room, counter.expires_in())
    }

    /// Counts `hits` on `limit`. Hits that go over are counted too: a cost already spent
    /// (tokens charged after a response) is never lost.
    async fn count(
        &self,
        namespace: &Namespace,
        limit: &DescriptorLimit,
        hits: u64,
    ) -> Result<DescriptorStatus, Refusal> {
        self.ensure_added(limit);
        let values = limit.values();
        let delta = i64::try_from(hits).unwrap_or(i64::MAX);
        let result = self
            .limiter
            .check_rate_limited_and_update(namespace, &values, delta)
            .await?;
        if result.limited {
            self.limiter
                .update_counters(namespace, &values, delta)
                .await?;
        }
        let counter = the_counter(limit, &result)?;
        // Loaded before this update: max - (value + delta).
        let room = counter.remaining().unwrap_or(counter.max_value() - delta);
        status(limit, result.limited, room, counter.expires_in())
    }

    fn ensure_added(&self, limit: &DescriptorLimit) {
        let mut added = self.added.lock().unwrap_or_else(PoisonError::into_inner);
        if added.insert(limit.key.clone()) {
            self.limiter.add_limit(limit.limit());
        }
    }
}

/// The one counter of `limit` in limitador's answer (the values match exactly this limit).
fn the_counter<'a>(
    limit: &DescriptorLimit,
    result: &'a CheckResult,
) -> Result<&'a limitador::counter::Counter, Refusal> {
    result.counters.first().ok_or_else(|| {
        Refusal::Internal(format!("no counter applied for the limit {:?}", limit.key))
    })
}

/// The status of a descriptor with no limit.
fn unlimited_status() -> DescriptorStatus {
    DescriptorStatus {
        code: Code::Ok as i32,
        current_limit: None,
        limit_remaining: 0,
        duration_until_reset: None,
    }
}

/// The status of `limit`: over or not, with `room` left (negative when over).
fn status(
    limit: &DescriptorLimit,
    over: bool,
    room: i64,
    expires_in: Option<Duration>,
) -> Result<DescriptorStatus, Refusal> {
    let key = &limit.key;
    let remaining = if over { 0 } else { room.max(0) };
    let window = Duration::from_secs(key.window_seconds);
    Ok(DescriptorStatus {
        code: if over { Code::OverLimit } else { Code::Ok } as i32,
        current_limit: Some(RateLimit {
            name: key.condition_value.clone(),
            requests_per_unit: key.requests_per_unit,
            unit: key.unit,
        }),
        // At most requests_per_unit, a u32.
        limit_remaining: u32::try_from(remaining).unwrap_or(u32::MAX),
        duration_until_reset: Some(expires_in.unwrap_or(window).into()),
    })
}

#[cfg(test)]
mod tests;
