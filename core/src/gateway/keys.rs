//! Tokens and the keys they need: verifying a request's token, waiting for its provider's keys
//! (one fetch per provider in flight for all workers, through the shared fetch slot), deciding
//! the waiting requests, and the scheduled JWKS and discovery fetches.
//!
//! A waiting request is decided once its keys arrive, once the fetch it waited for has ended
//! without them, or at its deadline (its fetch's timeout plus one tick), whichever comes first:
//! it never waits for a second fetch, so a slow or broken IdP cannot hold it longer.

use std::rc::Rc;

use crate::error::GatewayError;
use crate::jwks::fetch::{
    self, claim_fetch, fetch_in_flight, finish_fetch, release_slot, FetchDecision, FetchTiming,
};
use crate::jwt::{TokenError, Verdict};
use crate::oauth2::{parse_discovery, url_path};
use crate::outgoing::{CallResponse, OutgoingCall};
use crate::pipeline::{complete_auth, userinfo_reply, PendingAuth, TokenSource};

use super::finish::Decision;
use super::flow::{KeysWait, Phase};
use super::{Call, Effect, Gateway, TICK_MS};

/// Shared-data key of the OIDC discovery document, and the fetch slot's name.
pub(super) const DISCOVERY_KEY: &str = "ai-gateway/oidc/discovery";
pub(super) const DISCOVERY_SLOT: &str = "oidc-discovery";

/// What a request does after its token was looked at.
pub(super) enum AuthStep {
    Done(Decision),
    Wait(Box<KeysWait>),
    /// Waiting for the token's introspection.
    Introspecting(Box<super::flow::IntrospectionWait>),
}

impl Gateway {
    /// Verifies the request's token. With `may_fetch` (a request just arrived), claims and
    /// dispatches a fetch when its provider's keys are needed.
    pub(super) fn authenticate(&mut self, pending: &PendingAuth, may_fetch: bool) -> AuthStep {
        if let Some(decision) = self.emergency_step(pending) {
            return AuthStep::Done(decision);
        }
        if let Some(step) = self.introspection_step(pending) {
            return step;
        }
        let verdict = self.verify(&pending.token);
        let (provider, otherwise) = match verdict {
            Verdict::Verified(identity) => return AuthStep::Done(self.verified(pending, identity)),
            Verdict::Refused(error) => return AuthStep::Done(self.not_verified(pending, error)),
            Verdict::NeedKeys {
                provider,
                otherwise,
            } => (provider, otherwise),
        };
        let config = Rc::clone(&self.config);
        let Some((remote, name)) = config
            .providers
            .get(provider)
            .and_then(|p| Some((p.remote()?, p.name.as_str())))
        else {
            return AuthStep::Done(Decision::refused(
                GatewayError::InvalidToken(otherwise),
                None,
            ));
        };
        let now = self.host.now_ms();
        let have_keys = self.auth.have_keys(provider);
        let wait = Box::new(KeysWait {
            pending: pending.clone(),
            provider,
            otherwise: otherwise.clone(),
            deadline_ms: now + remote.timeout_ms + TICK_MS,
        });
        if !may_fetch {
            return AuthStep::Wait(wait);
        }
        let claimed = claim_fetch(
            self.host.store(),
            name,
            remote.into(),
            now,
            have_keys,
            self.owner,
        );
        match claimed {
            FetchDecision::Start => {
                if self.fetch_jwks(provider) {
                    AuthStep::Wait(wait)
                } else {
                    let error = fetch::unavailable(have_keys, otherwise, 1000);
                    AuthStep::Done(Decision::refused(error, None))
                }
            }
            FetchDecision::InFlight { .. } => AuthStep::Wait(wait),
            FetchDecision::NotBefore { at_ms } => {
                let error = fetch::unavailable(have_keys, otherwise, at_ms.saturating_sub(now));
                AuthStep::Done(Decision::refused(error, None))
            }
        }
    }

    /// Verifies `token`, adopting keys another worker fetched when this one has none for it.
    fn verify(&mut self, token: &str) -> Verdict {
        let config = Rc::clone(&self.config);
        let (providers, keep) = (&config.providers, &config.kept_claims);
        let now_s = self.host.now_ms() / 1000;
        let mut verdict = self.auth.authenticate(providers, token, now_s, keep);
        if matches!(verdict, Verdict::NeedKeys { .. })
            && self.auth.sync(providers, self.host.store())
        {
            verdict = self.auth.authenticate(providers, token, now_s, keep);
        }
        let (hits, misses) = self.auth.take_cache_counts();
        self.count("token_cache_hits", hits);
        self.count("token_cache_misses", misses);
        verdict
    }

    /// A verified caller: the route's scopes, then the rate limits.
    pub(super) fn verified(
        &mut self,
        pending: &PendingAuth,
        identity: crate::jwt::Identity,
    ) -> Decision {
        if let Some(refusal) = self.emergency_session_refusal(pending, &identity) {
            return refusal;
        }
        let forwarding = match complete_auth(&self.config, pending, &identity) {
            Ok(forwarding) => forwarding,
            Err(error) => return Decision::refused(error, Some(self.subject(&identity))),
        };
        let mut decision = self.admit(forwarding, Some(&identity));
        if let Decision::Allow(admitted) = &mut decision {
            if admitted.forwarding.answer_userinfo {
                admitted.answer = Some(userinfo_reply(&identity));
            }
        }
        decision
    }

    /// A token that does not verify. A session cookie that does not verify (tampered, expired)
    /// is no session: the request goes on as having none.
    pub(super) fn not_verified(&mut self, pending: &PendingAuth, error: TokenError) -> Decision {
        match &pending.source {
            TokenSource::Session {
                refusal: Some(refusal),
            } => Decision::refused(refusal.clone(), None),
            TokenSource::Session { refusal: None } => self.admit(pending.forwarding.clone(), None),
            TokenSource::Bearer => Decision::refused(GatewayError::InvalidToken(error), None),
        }
    }

    /// Whether a fetch of `provider`'s keys is running (here or on another worker).
    pub(super) fn keys_fetch_in_flight(&self, provider: usize) -> bool {
        let Some((remote, name)) = self
            .config
            .providers
            .get(provider)
            .and_then(|p| Some((p.remote()?, p.name.as_str())))
        else {
            return false;
        };
        fetch_in_flight(self.host.store(), name, remote.into(), self.host.now_ms())
    }

    /// Decides every waiting request (and login callback) whose keys arrived, whose fetch ended
    /// without them, or whose deadline passed; the others keep waiting.
    pub(super) fn resolve_waiting(&mut self, effects: &mut Vec<(u32, Effect)>) {
        if self.waiting.is_empty() {
            return;
        }
        let config = Rc::clone(&self.config);
        self.auth.sync(&config.providers, self.host.store());
        let now = self.host.now_ms();
        for id in std::mem::take(&mut self.waiting) {
            let Some(mut flow) = self.flows.remove(&id) else {
                continue;
            };
            let still_waiting = match std::mem::replace(&mut flow.phase, Phase::Head) {
                Phase::WaitingKeys(wait) => match self.authenticate(&wait.pending, false) {
                    AuthStep::Done(decision) => {
                        self.finish(id, &mut flow, decision, true, effects);
                        false
                    }
                    AuthStep::Wait(_)
                        if now < wait.deadline_ms && self.keys_fetch_in_flight(wait.provider) =>
                    {
                        flow.phase = Phase::WaitingKeys(wait);
                        true
                    }
                    AuthStep::Wait(_) | AuthStep::Introspecting(_) => {
                        // The fetch ended (or never answered in time) without a key for it.
                        let have_keys = self.auth.have_keys(wait.provider);
                        let error = fetch::unavailable(have_keys, wait.otherwise, 1000);
                        self.finish(id, &mut flow, Decision::refused(error, None), true, effects);
                        false
                    }
                },
                Phase::WaitingIdTokenKeys(wait) => self.resolve_login(id, &mut flow, wait, effects),
                Phase::WaitingIntrospection(wait) => {
                    self.resolve_introspection(id, &mut flow, wait, effects)
                }
                other => {
                    flow.phase = other;
                    false
                }
            };
            if still_waiting {
                self.waiting.push(id);
            }
            self.flows.insert(id, flow);
        }
    }

    /// Dispatches the fetch of `provider`'s keys, whose slot this worker claimed. A call that
    /// cannot be dispatched is recorded as failed (the slot is freed).
    pub(super) fn fetch_jwks(&mut self, provider: usize) -> bool {
        let config = Rc::clone(&self.config);
        let Some(remote) = config.providers.get(provider).and_then(|p| p.remote()) else {
            return false;
        };
        let path = self.jwks_path(remote).unwrap_or_default();
        let call =
            OutgoingCall::get_json(&remote.cluster, &remote.authority, remote.timeout_ms, &path);
        let dispatched = self.dispatch(&call, Call::Jwks { provider });
        if !dispatched {
            self.jwks_fetched(provider, &CallResponse::NONE);
        }
        dispatched
    }

    /// Records the answer to a JWKS fetch this worker dispatched.
    pub(super) fn jwks_fetched(&mut self, provider: usize, response: &CallResponse) {
        let config = Rc::clone(&self.config);
        let Some(p) = config.providers.get(provider) else {
            return;
        };
        let now = self.host.now_ms();
        match finish_fetch(self.host.store(), &p.name, now, self.owner, response) {
            Ok(keys) => {
                self.count("jwks_fetches_ok", 1);
                self.host.gauge("jwks_keys", keys as u64);
                log::info!(
                    "ai-gateway: JWKS of provider {}: {keys} usable keys",
                    p.name
                )
            }
            Err(e) => {
                self.count("jwks_fetches_failed", 1);
                log::warn!(
                    "ai-gateway: JWKS fetch for provider {} failed: {e}; keeping the last good keys",
                    p.name
                )
            }
        }
        self.auth.sync(&config.providers, self.host.store());
    }

    /// The tick's fetches: adopt keys and discovery other workers fetched, then claim the
    /// refreshes that are due (and discovery until it arrives) and dispatch them.
    pub(super) fn start_scheduled_fetches(&mut self) {
        let config = Rc::clone(&self.config);
        self.auth.sync(&config.providers, self.host.store());
        self.sync_discovery();
        let now = self.host.now_ms();
        for (i, p) in config.providers.iter().enumerate() {
            let Some(remote) = p.remote() else { continue };
            if self.jwks_path(remote).is_none() {
                continue;
            }
            let due = self
                .auth
                .keys(i)
                .is_some_and(|k| k.refresh_due(remote, now));
            let have_keys = self.auth.have_keys(i);
            if due
                && claim_fetch(
                    self.host.store(),
                    &p.name,
                    remote.into(),
                    now,
                    have_keys,
                    self.owner,
                ) == FetchDecision::Start
            {
                self.fetch_jwks(i);
            }
        }
        // Fetched until it arrives, even when both endpoints are explicit: the ID-token keys'
        // location, end_session_endpoint and the client authentication method come from it.
        if self.discovery.is_none() {
            if let Some(call) = self.discovery_call() {
                // Claimed as "nothing fetched yet": retried every second until it arrives, and
                // never refreshed after (the refresh interval does not apply).
                let timing = FetchTiming {
                    timeout_ms: call.timeout_ms,
                    min_refresh_interval_s: 0,
                };
                let store = self.host.store();
                if claim_fetch(store, DISCOVERY_SLOT, timing, now, false, self.owner)
                    == FetchDecision::Start
                    && !self.dispatch(&call, Call::Discovery)
                {
                    self.discovery_fetched(&CallResponse::NONE);
                }
            }
        }
    }

    /// Where a provider's JWKS is fetched: its configured path, or the discovered `jwks_uri`.
    pub(super) fn jwks_path(&self, remote: &crate::jwt::RemoteJwks) -> Option<String> {
        if !remote.path.is_empty() {
            return Some(remote.path.clone());
        }
        url_path(&self.discovery.as_ref()?.jwks_uri)
    }

    /// The discovery request, on the IdP's cluster.
    fn discovery_call(&self) -> Option<OutgoingCall> {
        // A login preset has no discovery document.
        let oauth2 = self.config.oauth2.as_ref().filter(|o| o.preset.is_none())?;
        let base = url_path(&oauth2.issuer).unwrap_or_default();
        let path = format!(
            "{}/.well-known/openid-configuration",
            base.trim_end_matches('/')
        );
        Some(OutgoingCall::get_json(
            &oauth2.cluster,
            &oauth2.authority,
            oauth2.timeout_ms,
            &path,
        ))
    }

    /// Adopts the discovery document another worker fetched.
    pub(super) fn sync_discovery(&mut self) {
        let Some(oauth2) = self.config.oauth2.as_ref() else {
            return;
        };
        let Some((bytes, version)) = self.host.store().get(DISCOVERY_KEY) else {
            return;
        };
        if self.discovery_version == Some(version) {
            return;
        }
        self.discovery_version = Some(version);
        if let Ok(endpoints) = parse_discovery(&bytes, &oauth2.issuer) {
            self.discovery = Some(endpoints);
        }
    }

    /// Records the discovery document this worker fetched.
    pub(super) fn discovery_fetched(&mut self, response: &CallResponse) {
        let Some(oauth2) = self.config.oauth2.as_ref() else {
            return;
        };
        let body = response.body.as_deref().unwrap_or_default();
        match (response.status, parse_discovery(body, &oauth2.issuer)) {
            (None, _) => log::warn!(
                "ai-gateway: OIDC discovery of {}: no answer through cluster {:?} (unknown \
                 cluster, IdP unreachable or timed out); retrying",
                oauth2.issuer,
                oauth2.cluster
            ),
            (Some(200), Ok(_)) => {
                let _ = self.host.store().set(DISCOVERY_KEY, body, None);
                log::info!("ai-gateway: OIDC discovery of {} fetched", oauth2.issuer);
            }
            (status, Err(e)) => log::warn!(
                "ai-gateway: OIDC discovery of {} failed (status {status:?}): {e}; retrying",
                oauth2.issuer
            ),
            (status, Ok(_)) => log::warn!(
                "ai-gateway: OIDC discovery of {} answered status {status:?}; retrying",
                oauth2.issuer
            ),
        }
        release_slot(self.host.store(), DISCOVERY_SLOT, self.owner);
        self.sync_discovery();
    }
}
