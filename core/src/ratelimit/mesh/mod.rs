//! Limits counted across every Envoy replica (`scope: "mesh"`): the gateway asks a rate-limit
//! service speaking Envoy's `ratelimit.v3` gRPC API (envoyproxy/ratelimit, Limitador, ...),
//! which counts in Redis. Descriptors are built here from what the gateway verified, never
//! from headers a client could set (a `header:` key excepted, by its own definition).
//!
//! One descriptor per limit: `limit` = the limit's name, `key` = the caller it counts, with the
//! limit's numbers as the descriptor's override (the config holds them; the service is told).
//! A request limit's descriptor counts one hit. A token budget's is a check only (its own
//! `hits_addend` 0: "is there room for one more token"); the tokens the upstream reports are
//! charged after the answer with a second call whose hits are those tokens.

pub mod proto;

use proto::{Code, Descriptor, Unit};

use super::{caller_identity, LimitFacts, LimitKind, Period, RateLimit, Scope};
use crate::error::RateLimitState;
use crate::jwt::Identity;

/// `rate_limit_service`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    pub cluster: String,
    pub domain: String,
    pub timeout_ms: u64,
    /// `failure_mode: allow`: no answer admits (counted); else a 503.
    pub fail_open: bool,
}

/// What the service is asked for one request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MeshPlan {
    /// Asked before the request goes on, in order.
    pub checks: Vec<Descriptor>,
    /// The limit each check is for (its numbers, for the headers when the service sends none).
    pub check_limits: Vec<u64>,
    /// Token budgets to charge with the upstream's usage (their descriptors, hits unset).
    pub budgets: Vec<Descriptor>,
}

impl MeshPlan {
    pub fn is_empty(&self) -> bool {
        self.checks.is_empty()
    }
}

/// The mesh limits that apply to a request, for the caller each counts.
pub fn plan(limits: &[RateLimit], facts: &LimitFacts, identity: Option<&Identity>) -> MeshPlan {
    let mut plan = MeshPlan::default();
    for &index in &facts.applicable {
        let Some(limit) = limits.get(index).filter(|l| l.scope == Scope::Mesh) else {
            continue;
        };
        let Some(caller) = caller_identity(limit, facts, identity) else {
            continue;
        };
        let Some(unit) = unit(limit.period) else {
            continue;
        };
        let (number, hits) = match limit.kind {
            LimitKind::Requests(n) => (n, 1),
            LimitKind::Tokens(n) => (n, 0),
        };
        let descriptor = Descriptor {
            entries: vec![
                ("limit".into(), limit.name.clone()),
                // The caller as `caller_identity` names it, readable in the service's keys.
                ("key".into(), caller.replace('\u{0}', ":")),
            ],
            limit: Some((number, unit)),
            hits_addend: Some(hits),
        };
        if matches!(limit.kind, LimitKind::Tokens(_)) {
            plan.budgets.push(Descriptor {
                hits_addend: None,
                ..descriptor.clone()
            });
        }
        plan.checks.push(descriptor);
        plan.check_limits.push(number);
    }
    plan
}

fn unit(period: Period) -> Option<Unit> {
    match period {
        Period::Sliding { window_ms } => Unit::of_seconds(window_ms / 1000),
        Period::CalendarMonth => None,
    }
}

/// The admission call's message.
pub fn check_request(service: &Service, plan: &MeshPlan) -> Vec<u8> {
    proto::encode_request(&service.domain, &plan.checks, 1)
}

/// The charge of `tokens` to every budget of the plan (`None`: nothing to charge).
pub fn charge_request(service: &Service, plan: &MeshPlan, tokens: u64) -> Option<Vec<u8>> {
    if plan.budgets.is_empty() || tokens == 0 {
        return None;
    }
    let charges: Vec<Descriptor> = plan
        .budgets
        .iter()
        .map(|budget| Descriptor {
            hits_addend: Some(tokens),
            ..budget.clone()
        })
        .collect();
    let hits = u32::try_from(tokens).unwrap_or(u32::MAX);
    Some(proto::encode_request(&service.domain, &charges, hits))
}

/// What the service's answer means for the request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Within every limit; the tightest state, for the `X-RateLimit-*` headers.
    Admit(Option<RateLimitState>),
    Refuse(RateLimitState),
    /// No usable answer (gRPC error, timeout, garbage).
    Unavailable,
}

/// Judges the answer to the admission call. `grpc_status` 0 is OK.
pub fn judge(grpc_status: u32, body: Option<&[u8]>, plan: &MeshPlan) -> Verdict {
    if grpc_status != 0 {
        return Verdict::Unavailable;
    }
    let Some(response) = body.and_then(proto::decode_response) else {
        return Verdict::Unavailable;
    };
    let state = |i: usize, status: &proto::Status| {
        let limit = status
            .limit
            .or_else(|| plan.check_limits.get(i).copied())
            .unwrap_or(0);
        let reset_s = status.reset_s.unwrap_or(1).max(1);
        RateLimitState {
            limit,
            remaining: if status.code == Code::OverLimit {
                0
            } else {
                status.remaining.min(limit)
            },
            reset_s,
            retry_after_s: if status.code == Code::OverLimit {
                reset_s
            } else {
                0
            },
        }
    };
    // A budget's check-only descriptor is spent once nothing remains: envoyproxy/ratelimit
    // answers OK for 0 hits on a counter exactly at its limit (it refuses only beyond).
    let spent = |i: usize, status: &proto::Status| {
        status.code == Code::OverLimit
            || (status.code == Code::Ok
                && status.remaining == 0
                && plan.checks.get(i).is_some_and(|d| d.hits_addend == Some(0)))
    };
    let states: Vec<(bool, RateLimitState)> = response
        .statuses
        .iter()
        .enumerate()
        .map(|(i, status)| {
            let over = spent(i, status);
            let mut state = state(i, status);
            if over {
                state.remaining = 0;
                state.retry_after_s = state.reset_s;
            }
            (over, state)
        })
        .collect();
    let refused = states
        .iter()
        .filter(|(over, _)| *over)
        .map(|(_, state)| *state)
        .max_by_key(|state| state.retry_after_s);
    match (response.overall, refused) {
        (Code::Unknown, _) => Verdict::Unavailable,
        (_, Some(state)) => Verdict::Refuse(state),
        (Code::OverLimit, None) => Verdict::Refuse(RateLimitState {
            limit: plan.check_limits.first().copied().unwrap_or(0),
            remaining: 0,
            reset_s: 1,
            retry_after_s: 1,
        }),
        (Code::Ok, None) => Verdict::Admit(
            states
                .iter()
                .map(|(_, state)| *state)
                .min_by_key(|state| state.remaining),
        ),
    }
}

/// Whether a charge was recorded (the answer to [`charge_request`]); over the limit is
/// recorded too (the service counts hits beyond it).
pub fn charged(grpc_status: u32, body: Option<&[u8]>) -> bool {
    grpc_status == 0
        && body
            .and_then(proto::decode_response)
            .is_some_and(|r| r.overall != Code::Unknown)
}

#[cfg(test)]
mod tests;
