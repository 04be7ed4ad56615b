//! Opaque tokens: the introspection step of authentication. A token's answer comes from the
//! shared cache, or from a call this worker makes (claiming the token's slot so the others
//! wait for it instead of calling too); requests wait until the answer is in, for at most the
//! call's timeout. The IdP failing is a 503 with `Retry-After`, never a way in.

use std::rc::Rc;

use crate::error::GatewayError;
use crate::introspect::cache::{self, Entry, Lookup, Refusal};
use crate::introspect::response::{judge, ActiveToken, Verdict};
use crate::introspect::{introspects, request, Introspection};
use crate::jwt::cache::{digest, TokenDigest};
use crate::jwt::Identity;
use crate::outgoing::CallResponse;
use crate::pipeline::{PendingAuth, TokenSource};

use super::finish::Decision;
use super::flow::IntrospectionWait;
use super::keys::AuthStep;
use super::{Call, Effect, Gateway, TICK_MS};

/// How long a failed call keeps the IdP "unavailable" for everyone (one retry per second).
const UNAVAILABLE_MS: u64 = 1000;
/// Introspection calls one worker has in flight at most: a flood of made-up tokens (each one a
/// call) meets 503s beyond this instead of the gateway flooding the IdP.
const MAX_CALLS_IN_FLIGHT: usize = 64;

impl Gateway {
    /// `Some` when the request's token is one the introspecting provider checks.
    pub(super) fn introspection_step(&mut self, pending: &PendingAuth) -> Option<AuthStep> {
        let config = Rc::clone(&self.config);
        let settings = config.introspection.as_ref()?;
        // The gateway's own sessions are never sent to the IdP (in the token cookie they may
        // arrive as bearer tokens).
        let bearer = matches!(pending.source, TokenSource::Bearer);
        if !bearer || !introspects(settings, &pending.token) || gateway_issued(&pending.token) {
            return None;
        }
        Some(self.introspect(pending, settings))
    }

    fn introspect(&mut self, pending: &PendingAuth, settings: &Introspection) -> AuthStep {
        let token = digest(&pending.token);
        let now = self.host.now_ms();
        let slots = &settings.cache;
        if let Some(active) = self.introspection_memo.get(&token, now).cloned() {
            self.count("introspection_cache_hits", 1);
            return AuthStep::Done(self.verified(pending, identity(settings, active, now)));
        }
        match cache::lookup(self.host.store(), slots, &token, now) {
            Lookup::Active(active, until_ms) => {
                self.count("introspection_cache_hits", 1);
                self.introspection_memo
                    .insert(token, active.clone(), until_ms, now);
                AuthStep::Done(self.verified(pending, identity(settings, active, now)))
            }
            Lookup::Refused(error) => {
                self.count("introspection_cache_hits", 1);
                AuthStep::Done(self.not_verified(pending, error))
            }
            Lookup::Unavailable { retry_after_ms } => AuthStep::Done(unavailable(retry_after_ms)),
            Lookup::InFlight => self.introspection_wait(pending, settings, now),
            Lookup::Miss { cas } => {
                let in_flight = self
                    .calls
                    .values()
                    .filter(|(call, _)| matches!(call, Call::Introspection { .. }))
                    .count();
                if in_flight >= MAX_CALLS_IN_FLIGHT {
                    return AuthStep::Done(unavailable(UNAVAILABLE_MS));
                }
                let until = now + settings.timeout_ms + TICK_MS;
                if !cache::claim(self.host.store(), slots, &token, cas, self.owner, until) {
                    // Another worker claimed it between the read and the write.
                    return self.introspection_wait(pending, settings, now);
                }
                let call = request::call(settings, &pending.token);
                self.count("introspection_calls", 1);
                if self.dispatch(&call, Call::Introspection { token }) {
                    self.introspection_wait(pending, settings, now)
                } else {
                    let entry = Entry::Unavailable {
                        until_ms: now + UNAVAILABLE_MS,
                    };
                    cache::record(self.host.store(), slots, &token, &entry);
                    AuthStep::Done(unavailable(UNAVAILABLE_MS))
                }
            }
        }
    }

    fn introspection_wait(
        &self,
        pending: &PendingAuth,
        settings: &Introspection,
        now: u64,
    ) -> AuthStep {
        AuthStep::Introspecting(Box::new(IntrospectionWait {
            pending: pending.clone(),
            deadline_ms: now + settings.timeout_ms + 2 * TICK_MS,
        }))
    }

    /// Decides a waiting request again: answered from the cache, still waiting, or (past its
    /// deadline) refused as unavailable. Returns true while it keeps waiting.
    pub(super) fn resolve_introspection(
        &mut self,
        id: u32,
        flow: &mut super::flow::Flow,
        wait: Box<IntrospectionWait>,
        effects: &mut Vec<(u32, Effect)>,
    ) -> bool {
        let config = Rc::clone(&self.config);
        let Some(settings) = config.introspection.as_ref() else {
            return false;
        };
        let now = self.host.now_ms();
        let decision = match self.introspect(&wait.pending, settings) {
            AuthStep::Done(decision) => decision,
            AuthStep::Introspecting(_) if now < wait.deadline_ms => {
                flow.phase = super::flow::Phase::WaitingIntrospection(wait);
                return true;
            }
            _ => unavailable(UNAVAILABLE_MS),
        };
        self.finish(id, flow, decision, true, effects);
        false
    }

    /// The IdP answered (or the call failed): the answer goes to the shared cache, and every
    /// request waiting for it is decided.
    pub(super) fn introspected(
        &mut self,
        token: &TokenDigest,
        response: &CallResponse,
        effects: &mut Vec<(u32, Effect)>,
    ) {
        let config = Rc::clone(&self.config);
        let Some(settings) = config.introspection.as_ref() else {
            return;
        };
        let now = self.host.now_ms();
        let now_s = now / 1000;
        let ttl_until = now + settings.cache_ttl_s.max(1) * 1000;
        let entry = match judge(
            response,
            settings,
            config.roles.as_deref(),
            &config.kept_claims,
            now_s,
        ) {
            Ok(Verdict::Active(active)) => {
                // Never beyond the token's own expiry, but long enough to answer the requests
                // waiting for it (a token within its clock skew).
                let until_ms = active
                    .exp
                    .map_or(ttl_until, |exp| ttl_until.min(exp.saturating_mul(1000)))
                    .max(now + UNAVAILABLE_MS);
                Entry::Active {
                    token: active,
                    until_ms,
                }
            }
            Ok(Verdict::Refused(error)) => Entry::Refused {
                refusal: Refusal::of(&error),
                until_ms: ttl_until,
            },
            Err(reason) => {
                log::warn!("introspection: no usable answer from the IdP ({reason:?})");
                Entry::Unavailable {
                    until_ms: now + UNAVAILABLE_MS,
                }
            }
        };
        cache::record(self.host.store(), &settings.cache, token, &entry);
        self.resolve_waiting(effects);
    }

    /// A request that dispatched an introspection call ended before the answer (Envoy cancels
    /// the call): its claim on the slot goes, so the requests waiting call again.
    pub(super) fn introspection_abandoned(&self, token: &TokenDigest) {
        if let Some(settings) = &self.config.introspection {
            cache::release(self.host.store(), &settings.cache, token, self.owner);
        }
    }
}

/// A token the gateway issued itself (a session, a break-glass token), by its claimed issuer.
fn gateway_issued(token: &str) -> bool {
    use crate::emergency::{claimed_issuer, EMERGENCY_ISSUER, EMERGENCY_SESSION_ISSUER};
    claimed_issuer(token).is_some_and(|iss| {
        [
            EMERGENCY_ISSUER,
            EMERGENCY_SESSION_ISSUER,
            crate::config::SESSION_ISSUER,
        ]
        .contains(&iss.as_str())
    })
}

/// The caller an active answer names.
fn identity(settings: &Introspection, active: ActiveToken, now_ms: u64) -> Identity {
    Identity {
        provider: settings.provider,
        sub: active.sub,
        scopes: active.scopes,
        exp: active.exp.unwrap_or(now_ms / 1000 + settings.cache_ttl_s),
        nbf: None,
        claims: active.claims,
        roles: active.roles,
    }
}

fn unavailable(retry_after_ms: u64) -> Decision {
    let retry_after_s = retry_after_ms.div_ceil(1000).max(1);
    Decision::refused(
        GatewayError::IntrospectionUnavailable { retry_after_s },
        None,
    )
}
