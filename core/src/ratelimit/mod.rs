//! Rate limits: request counts and LLM token budgets per caller, counted in shared data so that
//! every Envoy worker sees one count ([`counter`]), over sliding windows or calendar months
//! ([`period`], [`window`]).

pub mod by_model;
pub mod counter;
pub mod mesh;
pub mod period;
pub mod usage;
pub mod window;

use counter::{caller_hash, consume, Charged, CountError};
pub use period::Period;
use window::Window;

use crate::authz::RouteMatch;
use crate::error::{GatewayError, RateLimitState};
use crate::jwt::Identity;
use crate::models::ModelPattern;
use crate::store::SharedStore;

/// Who a limit counts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LimitKey {
    /// The verified subject (with its provider). Anonymous requests are not counted by it.
    Sub,
    /// The downstream address, or an `x-forwarded-for` entry when hops are trusted.
    Ip { trusted_hops: u32 },
    /// A request header's value.
    Header(String),
    /// A verified claim's value.
    Claim(String),
    /// The first of these roles (the configured ones, in `roles.grants` order) that the
    /// verified caller holds: everyone holding it shares one count (a team's budget).
    /// Callers holding none of them are not counted by it.
    Role(Vec<String>),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LimitKind {
    Requests(u64),
    /// LLM tokens, as reported by the upstream's usage.
    Tokens(u64),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RateLimit {
    pub name: String,
    pub key: LimitKey,
    pub kind: LimitKind,
    /// A sliding window of `window_s`, or calendar months.
    pub period: Period,
    /// Routes it applies to; `None`: all.
    pub matcher: Option<RouteMatch>,
    /// Models it counts (`None`: every request, model or not). Such a limit is admitted once
    /// the body names the model ([`by_model`]); a request naming none is never counted by it.
    pub models: Option<Vec<ModelPattern>>,
    pub slots: u64,
    /// Where it is counted.
    pub scope: Scope,
}

/// Where a limit is counted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Scope {
    /// In this Envoy's shared data: every worker of this Envoy shares one count.
    #[default]
    Local,
    /// By the rate-limit service ([`mesh`]): every Envoy replica shares one count.
    Mesh,
}

impl RateLimit {
    fn window(&self) -> Window {
        let limit = match self.kind {
            LimitKind::Requests(n) | LimitKind::Tokens(n) => n,
        };
        Window {
            limit,
            period: self.period,
        }
    }

    fn limit(&self) -> u64 {
        self.window().limit
    }

    /// Whether this limit counts a request for `model` (any spelling).
    pub fn counts_model(&self, model: &str) -> bool {
        self.models
            .as_deref()
            .is_none_or(|patterns| crate::models::matches_any(patterns, model))
    }
}

/// What a request looks like to the limits, gathered before authentication.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LimitFacts {
    /// Indices of the limits whose `match` fits the request.
    pub applicable: Vec<usize>,
    pub remote_address: Option<String>,
    pub forwarded_for: Option<String>,
    /// Values of the headers that limits are keyed on.
    pub headers: Vec<(String, String)>,
    /// A token budget applies: the body is read for `max_tokens` to reserve.
    pub token_budget: bool,
    /// A limit restricted to models applies: a body naming its model is held whole to read it.
    pub model_limit: bool,
}

/// A token budget charged for this request, to reconcile with the upstream's usage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TokenCharge {
    pub limit: usize,
    pub caller: u64,
    /// Tokens reserved at admission (charged already).
    pub reserved: u64,
    /// Where the reservation was counted, to give back what the usage did not take.
    pub reservation: Option<Charged>,
}

/// The result of admission: headers for the response, and token budgets to settle.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Admission {
    /// `X-RateLimit-*` of the tightest limit.
    pub headers: Vec<(String, String)>,
    pub token_charges: Vec<TokenCharge>,
    /// The verified subject, when there is one (for the upstream body's audit fields).
    pub subject: Option<String>,
    /// The provider that verified it (`oauth2-session` for browser sessions).
    pub provider: Option<String>,
    /// Limits restricted to models, with the caller each counts: left for the body, which
    /// names the model ([`by_model::admit_model`]). The caller is worked out here, while the
    /// identity is at hand.
    pub pending: Vec<PendingLimit>,
    /// The tightest state so far, so that limits admitted later merge into the headers.
    tightest: Option<RateLimitState>,
    /// What the rate-limit service is asked before the request goes on (`scope: mesh`).
    pub mesh: mesh::MeshPlan,
}

/// A model-restricted limit that applies to a request, not counted yet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PendingLimit {
    pub limit: usize,
    pub caller: u64,
}

impl Admission {
    /// Makes `state` the one the headers show if it is tighter than what they show.
    pub fn note(&mut self, state: RateLimitState) {
        if self.tightest.is_none_or(|t| state.remaining < t.remaining) {
            self.tightest = Some(state);
            self.headers = crate::error::rate_limit_headers(&state);
        }
    }
}

/// The caller identity a limit counts, or `None` when the limit does not count this request.
pub fn caller_identity(
    limit: &RateLimit,
    facts: &LimitFacts,
    identity: Option<&Identity>,
) -> Option<String> {
    match &limit.key {
        LimitKey::Sub => identity.map(|id| format!("sub\u{0}{}\u{0}{}", id.provider, id.sub)),
        LimitKey::Claim(name) => identity.and_then(|id| {
            id.claims
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| format!("claim\u{0}{}\u{0}{v}", id.provider))
        }),
        // Not per provider: a role is the gateway's (`roles` applies to every provider), so a
        // team's browser sessions and bearer tokens share its budget.
        LimitKey::Role(roles) => identity.and_then(|id| {
            roles
                .iter()
                .find(|role| id.roles.contains(role))
                .map(|role| format!("role\u{0}{role}"))
        }),
        LimitKey::Ip { trusted_hops } => client_ip(
            facts.remote_address.as_deref(),
            facts.forwarded_for.as_deref(),
            *trusted_hops,
        )
        .map(|ip| format!("ip\u{0}{ip}")),
        LimitKey::Header(name) => facts
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| format!("header\u{0}{v}")),
    }
}

/// The client address: the downstream peer, or, with `trusted_hops` > 0 (the number of
/// trusted proxies in front of Envoy), an `x-forwarded-for` entry counted from the right.
/// Envoy (with `use_remote_address: true`, which the gateway requires) appends one entry for
/// its own peer; each trusted proxy appended the address it saw before that. So the client is
/// the entry `trusted_hops` to the left of the last one. Entries a client wrote itself are
/// further left and never chosen; with fewer entries than that, the peer address is used.
pub fn client_ip(
    remote: Option<&str>,
    forwarded_for: Option<&str>,
    trusted_hops: u32,
) -> Option<String> {
    if trusted_hops > 0 {
        if let Some(list) = forwarded_for {
            let entries: Vec<&str> = list.split(',').map(str::trim).collect();
            let hops = usize::try_from(trusted_hops).unwrap_or(usize::MAX);
            let index = entries.len().checked_sub(hops.saturating_add(1));
            if let Some(entry) = index.and_then(|i| entries.get(i)) {
                if !entry.is_empty() {
                    return Some((*entry).to_string());
                }
            }
        }
    }
    remote.map(strip_port)
}

/// `1.2.3.4:5678` → `1.2.3.4`; `[::1]:5678` → `::1`.
fn strip_port(address: &str) -> String {
    if let Some(rest) = address.strip_prefix('[') {
        return rest.split(']').next().unwrap_or(rest).to_string();
    }
    match address.rsplit_once(':') {
        Some((host, port)) if !host.contains(':') && port.bytes().all(|b| b.is_ascii_digit()) => {
            host.to_string()
        }
        _ => address.to_string(),
    }
}

/// Counts the request against every applicable limit, in order. The first spent limit refuses
/// (and what earlier limits counted for this request is given back). Token budgets are only
/// checked here (refused when spent) and charged from the upstream's usage later. Limits
/// restricted to models are left pending for the body (see [`by_model`]).
pub fn admit(
    limits: &[RateLimit],
    facts: &LimitFacts,
    identity: Option<&Identity>,
    store: &dyn SharedStore,
    now_ms: u64,
) -> Result<Admission, GatewayError> {
    let mut counted: Vec<Counted> = Vec::new();
    let mut admission = Admission::default();
    for &index in &facts.applicable {
        let Some(limit) = limits.get(index) else {
            continue;
        };
        if limit.scope == Scope::Mesh {
            // Counted by the rate-limit service (see `mesh::plan`).
            continue;
        }
        let Some(identity_key) = caller_identity(limit, facts, identity) else {
            continue;
        };
        let caller = caller_hash(&format!("{}\u{0}{identity_key}", limit.name));
        if limit.models.is_some() {
            admission.pending.push(PendingLimit {
                limit: index,
                caller,
            });
            continue;
        }
        if let Err(error) = count(
            limits,
            index,
            caller,
            &mut admission,
            &mut counted,
            store,
            now_ms,
        ) {
            refund(limits, &counted, store, now_ms);
            return Err(error);
        }
    }
    admission.subject = identity.map(|id| id.sub.clone());
    Ok(admission)
}

/// Counts one request against limit `index` for `caller` (a token budget: checks it is not
/// spent and records the charge to settle), noting its state for the headers and what it
/// counted (to give back if a later limit refuses).
fn count(
    limits: &[RateLimit],
    index: usize,
    caller: u64,
    admission: &mut Admission,
    counted: &mut Vec<Counted>,
    store: &dyn SharedStore,
    now_ms: u64,
) -> Result<(), GatewayError> {
    let Some(limit) = limits.get(index) else {
        return Ok(());
    };
    let cost = match limit.kind {
        LimitKind::Requests(_) => 1,
        LimitKind::Tokens(_) => 0,
    };
    let c = consume(
        store,
        &limit.name,
        limit.slots,
        limit.window(),
        caller,
        cost,
        now_ms,
    )
    .map_err(|error| refusal(limit, error))?;
    counted.push(Counted {
        limit: index,
        caller,
        cost,
        charged: c.charged,
    });
    if let LimitKind::Tokens(_) = limit.kind {
        admission.token_charges.push(TokenCharge {
            limit: index,
            caller,
            reserved: 0,
            reservation: None,
        });
    }
    admission.note(RateLimitState {
        limit: limit.limit(),
        remaining: c.remaining,
        reset_s: c.reset_s,
        retry_after_s: 0,
    });
    Ok(())
}

/// The contract's answer when a limit cannot count a request (admission or token reservation).
fn refusal(limit: &RateLimit, error: CountError) -> GatewayError {
    if error == CountError::Store {
        log::warn!(
            "ai-gateway: rate limit {}: shared data busy; refusing",
            limit.name
        );
    }
    match error {
        CountError::Spent {
            retry_after_s,
            reset_s,
        } => GatewayError::RateLimited(RateLimitState {
            limit: limit.limit(),
            remaining: 0,
            reset_s,
            retry_after_s,
        }),
        CountError::Store => GatewayError::RateLimitUnavailable {
            limit: limit.limit(),
        },
    }
}

/// What one limit counted for a request, to give back if the request is refused after all.
struct Counted {
    limit: usize,
    caller: u64,
    cost: u64,
    charged: Charged,
}

fn refund(limits: &[RateLimit], counted: &[Counted], store: &dyn SharedStore, now_ms: u64) {
    for c in counted {
        let Some(limit) = limits.get(c.limit) else {
            continue;
        };
        if c.cost > 0
            && !counter::refund(
                store,
                &limit.name,
                limit.period,
                c.caller,
                c.charged,
                c.cost,
                now_ms,
            )
        {
            // Failing to give back only refuses this caller early.
            log::warn!(
                "ai-gateway: rate limit {}: shared data busy; {} stays counted",
                limit.name,
                c.cost
            );
        }
    }
}

/// The completion tokens a chat request asks for at most: OpenAI's `max_completion_tokens` or
/// `max_tokens`, or Ollama's `options.num_predict` (negative there means unbounded: none).
pub fn requested_tokens(body: &[u8]) -> Option<u64> {
    let value: serde_json::Value = serde_json::from_slice(body).ok()?;
    ["max_completion_tokens", "max_tokens"]
        .iter()
        .find_map(|field| value.get(field)?.as_u64())
        .or_else(|| value.get("options")?.get("num_predict")?.as_u64())
        .filter(|n| *n > 0)
}

/// Reserves `tokens` in every token budget of the request before it reaches the model: a
/// budget where they do not fit refuses it (and the other reservations are given back).
pub fn reserve(
    limits: &[RateLimit],
    charges: &mut [TokenCharge],
    tokens: u64,
    store: &dyn SharedStore,
    now_ms: u64,
) -> Result<(), GatewayError> {
    for i in 0..charges.len() {
        let Some(charge) = charges.get(i).copied() else {
            continue;
        };
        let Some(limit) = limits.get(charge.limit) else {
            continue;
        };
        match consume(
            store,
            &limit.name,
            limit.slots,
            limit.window(),
            charge.caller,
            tokens,
            now_ms,
        ) {
            Ok(counted) => {
                if let Some(c) = charges.get_mut(i) {
                    c.reserved = tokens;
                    c.reservation = Some(counted.charged);
                }
            }
            Err(error) => {
                let reserved: Vec<Counted> = charges
                    .iter()
                    .take(i)
                    .filter_map(|c| {
                        Some(Counted {
                            limit: c.limit,
                            caller: c.caller,
                            cost: c.reserved,
                            charged: c.reservation?,
                        })
                    })
                    .collect();
                refund(limits, &reserved, store, now_ms);
                for c in charges.iter_mut() {
                    c.reserved = 0;
                    c.reservation = None;
                }
                if error == CountError::Store {
                    log::warn!(
                        "ai-gateway: rate limit {}: shared data busy; refusing",
                        limit.name
                    );
                }
                return Err(refusal(limit, error));
            }
        }
    }
    Ok(())
}

/// Charges the tokens the upstream reported to every token budget of the request: what goes
/// beyond the reservation is charged where the caller is counted now (never lost because
/// another caller took a slot meanwhile); what the reservation held beyond the usage is given
/// back from where it was counted.
pub fn settle(
    limits: &[RateLimit],
    charges: &[TokenCharge],
    used: u64,
    store: &dyn SharedStore,
    now_ms: u64,
) {
    for charge in charges {
        let Some(limit) = limits.get(charge.limit) else {
            continue;
        };
        let recorded = match (used.checked_sub(charge.reserved), charge.reservation) {
            (Some(0), _) => true,
            (Some(extra), _) => counter::charge(
                store,
                &limit.name,
                limit.slots,
                limit.period,
                charge.caller,
                extra,
                now_ms,
            ),
            (None, Some(reservation)) => counter::refund(
                store,
                &limit.name,
                limit.period,
                charge.caller,
                reservation,
                charge.reserved - used,
                now_ms,
            ),
            (None, None) => true,
        };
        if !recorded {
            log::warn!(
                "ai-gateway: rate limit {}: shared data busy; could not record {used} tokens",
                limit.name
            );
        }
    }
}

#[cfg(test)]
mod model_tests;
#[cfg(test)]
mod month_tests;
#[cfg(test)]
mod role_tests;
#[cfg(test)]
mod tests;
