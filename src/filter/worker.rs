//! One worker's state, shared by its root context and its requests: the authenticator (verified
//! tokens, parsed keys), requests waiting for keys, and this worker's fetch identity.
//!
//! Host calls that can re-enter the VM (sending a reply, resuming a request) are never made
//! while this state is borrowed: methods here return what to do, callers do it afterwards.

use std::collections::hash_map::RandomState;
use std::collections::HashMap;
use std::hash::{BuildHasher, Hasher};
use std::rc::Rc;

use super::host::HostStore;
use crate::auth::{prepare_shared_state, Authenticator};
use crate::config::GatewayConfig;
use crate::error::{GatewayError, LocalReply};
use crate::jwks::fetch::{self, claim_fetch, finish_fetch, on_need_keys, FetchResponse, KeysWait};
use crate::jwt::cache::DEFAULT_CAPACITY;
use crate::jwt::{Identity, Verdict};
use crate::oauth2::{parse_discovery, url_path, Endpoints};
use crate::pipeline::{complete_auth, userinfo_reply, Forwarding, PendingAuth};
use crate::ratelimit::{self, counter, Admission};
use crate::store::SharedStore;

/// Shared-data key of the OIDC discovery document, and the fetch slot's name.
const DISCOVERY_KEY: &str = "ai-gateway/oidc/discovery";
const DISCOVERY_SLOT: &str = "oidc-discovery";

/// What the root context must dispatch after a tick.
#[derive(Debug, Default)]
pub struct TickWork {
    /// Providers whose JWKS to fetch, with the path to fetch.
    pub jwks: Vec<(usize, String)>,
    /// The OIDC discovery document.
    pub discovery: bool,
}

/// A request allowed through: its header edits and what the rate limits recorded.
#[derive(Debug)]
pub struct Admitted {
    pub forwarding: Forwarding,
    pub admission: Admission,
    /// The gateway's own answer instead of forwarding (the userinfo endpoint).
    pub answer: Option<LocalReply>,
}

/// What a request does after an authentication step.
#[derive(Debug)]
pub enum AuthStep {
    /// Decided: forward, or refuse.
    Done(Result<Admitted, GatewayError>),
    /// The fetch slot is ours: dispatch the fetch for `provider`, then wait.
    StartFetch {
        provider: usize,
        /// The answer if the fetch cannot even be dispatched: 503 only when no keys were ever
        /// fetched, else the token's own refusal (`unknown kid`), as the contract says.
        if_undispatched: GatewayError,
    },
    /// A fetch is in flight elsewhere: wait until `until_ms` at the latest.
    Wait { until_ms: u64 },
}

/// The waiting requests that could be decided, and the fetches still needed.
#[derive(Default)]
pub struct Resolved {
    /// Context id and its decision; these no longer wait.
    pub decided: Vec<(u32, Result<Admitted, GatewayError>)>,
    /// Providers whose fetch this worker claimed and must dispatch.
    pub to_fetch: Vec<usize>,
}

/// Whether the ID-token keys can be refetched now (a callback's ID token names an unknown key).
pub enum IdTokenKeys {
    /// The fetch slot is ours: dispatch the fetch of `path` for `provider`.
    Fetch { provider: usize, path: String },
    /// Another worker's fetch is in flight; it ends by `until_ms`.
    Wait { until_ms: u64 },
    /// Not allowed now (`min_refresh_interval_s`) or nowhere to fetch from.
    NotNow { retry_after_s: u64 },
}

struct Waiting {
    pending: PendingAuth,
    until_ms: u64,
}

pub struct Worker {
    pub config: Rc<GatewayConfig>,
    pub metrics: super::metrics::Metrics,
    auth: Authenticator,
    /// Identifies this worker's claims on the shared fetch slots.
    owner: u64,
    /// Requests paused until keys arrive, by context id.
    waiting: HashMap<u32, Waiting>,
    /// Admissions of requests decided by the root context, for their response phase.
    admissions: HashMap<u32, Admission>,
    /// With `admissions`: the identity headers a decided request got (for the calls the
    /// gateway makes on its behalf, see `translation::caller_headers`).
    caller_headers: HashMap<u32, Vec<(String, String)>>,
    /// Login callbacks waiting for the ID-token keys another worker fetches, by context id,
    /// with the end of their wait.
    parked_logins: HashMap<u32, (super::login::ParkedLogin, u64)>,
    /// The OIDC discovery document, once fetched (by any worker).
    discovery: Option<Endpoints>,
    discovery_version: Option<u32>,
}

impl Worker {
    pub fn new(config: Rc<GatewayConfig>) -> Self {
        prepare_shared_state(&config.providers, &HostStore);
        if config.oauth2.is_some() {
            fetch::prepare(&HostStore, DISCOVERY_SLOT);
        }
        for limit in &config.rate_limits {
            counter::prepare(&HostStore, &limit.name, limit.slots);
        }
        let owner = RandomState::new().build_hasher().finish() | 1;
        let metrics = super::metrics::Metrics::define();
        metrics.set(
            "ratelimit_slots",
            config.rate_limits.iter().map(|l| l.slots).sum(),
        );
        Self {
            metrics,
            auth: Authenticator::new(&config.providers, DEFAULT_CAPACITY),
            config,
            owner,
            waiting: HashMap::new(),
            admissions: HashMap::new(),
            caller_headers: HashMap::new(),
            parked_logins: HashMap::new(),
            discovery: None,
            discovery_version: None,
        }
    }

    pub fn has_remote_keys(&self) -> bool {
        self.config.providers.iter().any(|p| p.remote().is_some())
    }

    /// Verifies the request's token; with `may_fetch`, may claim a fetch when keys are needed.
    pub fn evaluate(&mut self, pending: &PendingAuth, now_ms: u64, may_fetch: bool) -> AuthStep {
        let config = Rc::clone(&self.config);
        let providers = &config.providers;
        let now_s = now_ms / 1000;
        let keep = &config.kept_claims;
        let mut verdict = self
            .auth
            .authenticate(providers, &pending.token, now_s, keep);
        if matches!(verdict, Verdict::NeedKeys { .. }) && self.auth.sync(providers, &HostStore) {
            // Another worker may have brought the keys already.
            verdict = self
                .auth
                .authenticate(providers, &pending.token, now_s, keep);
        }
        let (hits, misses) = self.auth.take_cache_counts();
        self.metrics.add("token_cache_hits", hits);
        self.metrics.add("token_cache_misses", misses);
        let (provider, otherwise) = match verdict {
            Verdict::Verified(identity) => {
                let decided = complete_auth(&config, pending, &identity)
                    .and_then(|forwarding| self.admit(forwarding, Some(&identity), now_ms))
                    .map(|mut admitted| {
                        if admitted.forwarding.answer_userinfo {
                            admitted.answer = Some(userinfo_reply(&identity));
                        }
                        admitted
                    });
                return AuthStep::Done(decided);
            }
            Verdict::Refused(error) => {
                // A session cookie that does not verify is no session (tampered, expired).
                return AuthStep::Done(match &pending.if_no_session {
                    Some(Some(refusal)) => Err(refusal.clone()),
                    Some(None) => self.admit(pending.forwarding.clone(), None, now_ms),
                    None => Err(GatewayError::InvalidToken(error)),
                });
            }
            Verdict::NeedKeys {
                provider,
                otherwise,
            } => (provider, otherwise),
        };
        let Some((remote, name)) = providers
            .get(provider)
            .and_then(|p| Some((p.remote()?, p.name.as_str())))
        else {
            return AuthStep::Done(Err(GatewayError::InvalidToken(otherwise)));
        };
        let have_keys = self.auth.have_keys(provider);
        if !may_fetch {
            let until_ms = now_ms + remote.timeout_ms + fetch::IN_FLIGHT_GRACE_MS;
            return AuthStep::Wait { until_ms };
        }
        let decision = claim_fetch(&HostStore, name, remote, now_ms, have_keys, self.owner);
        let if_undispatched = fetch::unavailable(have_keys, otherwise.clone(), 1000);
        match on_need_keys(decision, have_keys, otherwise, now_ms) {
            KeysWait::StartFetch => AuthStep::StartFetch {
                provider,
                if_undispatched,
            },
            KeysWait::Wait { until_ms } => AuthStep::Wait { until_ms },
            KeysWait::Refuse(error) => AuthStep::Done(Err(error)),
        }
    }

    /// Counts an allowed request against the rate limits that apply to it.
    pub fn admit(
        &self,
        forwarding: Forwarding,
        identity: Option<&Identity>,
        now_ms: u64,
    ) -> Result<Admitted, GatewayError> {
        let mut admission = ratelimit::admit(
            &self.config.rate_limits,
            &forwarding.limit_facts,
            identity,
            &HostStore,
            now_ms,
        )?;
        admission.provider = identity
            .and_then(|id| self.config.providers.get(id.provider))
            .map(|p| p.name.clone());
        Ok(Admitted {
            forwarding,
            admission,
            answer: None,
        })
    }

    /// Charges the tokens an upstream reported to the request's token budgets.
    pub fn settle(&self, admission: &Admission, used: u64, now_ms: u64) {
        ratelimit::settle(
            &self.config.rate_limits,
            &admission.token_charges,
            used,
            &HostStore,
            now_ms,
        );
    }

    /// Reserves a request's `max_tokens` in its token budgets.
    pub fn reserve(
        &self,
        admission: &mut Admission,
        tokens: u64,
        now_ms: u64,
    ) -> Result<(), GatewayError> {
        ratelimit::reserve(
            &self.config.rate_limits,
            &mut admission.token_charges,
            tokens,
            &HostStore,
            now_ms,
        )
    }

    /// The admission of a request the root context decided.
    pub fn take_admission(&mut self, context_id: u32) -> Option<Admission> {
        self.admissions.remove(&context_id)
    }

    /// The identity headers of a request the root context decided.
    pub fn take_caller_headers(&mut self, context_id: u32) -> Option<Vec<(String, String)>> {
        self.caller_headers.remove(&context_id)
    }

    /// Parks a request until keys arrive (or its wait ends).
    pub fn wait(&mut self, context_id: u32, pending: PendingAuth, until_ms: u64) {
        self.waiting
            .insert(context_id, Waiting { pending, until_ms });
    }

    /// The request ended (or was answered): never act on it again.
    pub fn forget(&mut self, context_id: u32) {
        self.waiting.remove(&context_id);
        self.admissions.remove(&context_id);
        self.caller_headers.remove(&context_id);
        self.parked_logins.remove(&context_id);
    }

    /// Parks a login callback until the ID-token keys arrive (or `until_ms`).
    pub fn park_login(
        &mut self,
        context_id: u32,
        parked: super::login::ParkedLogin,
        until_ms: u64,
    ) {
        self.parked_logins.insert(context_id, (parked, until_ms));
    }

    /// Every parked login callback (the caller parks again those still waiting).
    pub fn take_parked_logins(&mut self) -> Vec<(u32, super::login::ParkedLogin, u64)> {
        self.parked_logins
            .drain()
            .map(|(id, (parked, until_ms))| (id, parked, until_ms))
            .collect()
    }

    /// A callback's ID token names a key not fetched yet: claims a refetch of the ID-token
    /// provider's keys through the same shared slot as every other fetch, so the provider's
    /// `min_refresh_interval_s` holds for all workers together.
    pub fn claim_id_token_keys(&self, now_ms: u64) -> IdTokenKeys {
        let not_now = IdTokenKeys::NotNow { retry_after_s: 1 };
        let Some(index) = self.config.oauth2.as_ref().map(|o| o.id_token_provider) else {
            return not_now;
        };
        let Some((provider, remote)) = self
            .config
            .providers
            .get(index)
            .and_then(|p| Some((p, p.remote()?)))
        else {
            return not_now;
        };
        let Some(path) = self.jwks_path(remote) else {
            return not_now;
        };
        let have_keys = self.auth.have_keys(index);
        match claim_fetch(
            &HostStore,
            &provider.name,
            remote,
            now_ms,
            have_keys,
            self.owner,
        ) {
            fetch::FetchDecision::Start => IdTokenKeys::Fetch {
                provider: index,
                path,
            },
            fetch::FetchDecision::InFlight { until_ms } => IdTokenKeys::Wait { until_ms },
            fetch::FetchDecision::NotBefore { at_ms } => IdTokenKeys::NotNow {
                retry_after_s: at_ms.saturating_sub(now_ms).div_ceil(1000).max(1),
            },
        }
    }

    /// Records the answer to a fetch this worker dispatched.
    pub fn fetch_done(&mut self, provider: usize, response: &FetchResponse, now_ms: u64) {
        let Some(p) = self.config.providers.get(provider) else {
            return;
        };
        match finish_fetch(&HostStore, &p.name, now_ms, self.owner, response) {
            Ok(keys) => {
                self.metrics.inc("jwks_fetches_ok");
                self.metrics.set("jwks_keys", keys as u64);
                log::info!(
                    "ai-gateway: JWKS of provider {}: {keys} usable keys",
                    p.name
                )
            }
            Err(e) => {
                self.metrics.inc("jwks_fetches_failed");
                log::warn!(
                    "ai-gateway: JWKS fetch for provider {} failed: {e}; keeping the last good keys",
                    p.name
                )
            }
        }
        let config = Rc::clone(&self.config);
        self.auth.sync(&config.providers, &HostStore);
    }

    /// The periodic work: adopt keys (and the discovery document) other workers fetched, and
    /// claim the scheduled fetches this worker should dispatch.
    pub fn tick(&mut self, now_ms: u64) -> TickWork {
        let config = Rc::clone(&self.config);
        self.auth.sync(&config.providers, &HostStore);
        self.sync_discovery();
        let mut work = TickWork::default();
        for (i, p) in config.providers.iter().enumerate() {
            let Some(remote) = p.remote() else { continue };
            let Some(path) = self.jwks_path(remote) else {
                continue;
            };
            let due = self
                .auth
                .keys(i)
                .is_some_and(|k| k.refresh_due(remote, now_ms));
            if due {
                let have_keys = self.auth.have_keys(i);
                if claim_fetch(&HostStore, &p.name, remote, now_ms, have_keys, self.owner)
                    == fetch::FetchDecision::Start
                {
                    work.jwks.push((i, path));
                }
            }
        }
        // Fetched until it arrives, even when both endpoints are explicit: the ID-token keys'
        // location, end_session_endpoint and the client authentication method come from it.
        if let Some(remote) = self.discovery_fetch() {
            if self.discovery.is_none()
                && claim_fetch(
                    &HostStore,
                    DISCOVERY_SLOT,
                    &remote,
                    now_ms,
                    false,
                    self.owner,
                ) == fetch::FetchDecision::Start
            {
                work.discovery = true;
            }
        }
        work
    }

    /// Where a provider's JWKS is fetched: its configured path, or the discovered `jwks_uri`.
    pub fn jwks_path(&self, remote: &crate::jwt::RemoteJwks) -> Option<String> {
        if !remote.path.is_empty() {
            return Some(remote.path.clone());
        }
        url_path(&self.discovery.as_ref()?.jwks_uri)
    }

    /// The discovery request, as a fetch on the IdP's cluster.
    pub fn discovery_fetch(&self) -> Option<crate::jwt::RemoteJwks> {
        let oauth2 = self.config.oauth2.as_ref()?;
        let base = url_path(&oauth2.issuer).unwrap_or_default();
        Some(crate::jwt::RemoteJwks {
            cluster: oauth2.cluster.clone(),
            authority: oauth2.authority.clone(),
            path: format!(
                "{}/.well-known/openid-configuration",
                base.trim_end_matches('/')
            ),
            cache_ttl_s: 3600,
            min_refresh_interval_s: 5,
            timeout_ms: oauth2.timeout_ms,
        })
    }

    fn sync_discovery(&mut self) {
        let Some(oauth2) = self.config.oauth2.as_ref() else {
            return;
        };
        let Some((bytes, version)) = HostStore.get(DISCOVERY_KEY) else {
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
    pub fn discovery_done(&mut self, response: &FetchResponse) {
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
                let _ = HostStore.set(DISCOVERY_KEY, body, None);
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
        fetch::release_slot(&HostStore, DISCOVERY_SLOT, self.owner);
        self.sync_discovery();
    }

    /// The IdP's endpoints (see [`crate::config::OAuth2Config::endpoints`]). `None` until
    /// every one the flow needs is known (login then answers 503).
    pub fn endpoints(&self) -> Option<Endpoints> {
        self.config
            .oauth2
            .as_ref()?
            .endpoints(self.discovery.as_ref())
    }

    /// Adopts what other workers fetched (discovery, keys) without waiting for the tick: a
    /// login's steps may reach different workers.
    pub fn refresh_from_shared(&mut self) {
        self.sync_discovery();
        let config = Rc::clone(&self.config);
        self.auth.sync(&config.providers, &HostStore);
    }

    /// Login can start: the IdP's endpoints and its ID-token keys are known.
    pub fn login_ready(&self) -> bool {
        let keys = self
            .config
            .oauth2
            .as_ref()
            .is_some_and(|o| self.auth.have_keys(o.id_token_provider));
        keys && self.endpoints().is_some()
    }

    /// Verifies the ID token of a login callback. The callback may reach another worker
    /// than the login did: keys fetched by any worker are adopted first when missing here.
    pub fn verify_id_token(&mut self, token: &str, now_ms: u64) -> Verdict {
        let Some(index) = self.config.oauth2.as_ref().map(|o| o.id_token_provider) else {
            return Verdict::Refused(crate::jwt::TokenError::UnknownIssuer);
        };
        let keep = ["nonce".to_string(), "email".to_string(), "name".to_string()];
        let config = Rc::clone(&self.config);
        let verify = |auth: &Authenticator| {
            auth.verify_id_token(&config.providers, index, token, now_ms / 1000, &keep)
        };
        let verdict = verify(&self.auth);
        if matches!(verdict, Verdict::NeedKeys { .. })
            && self.auth.sync(&config.providers, &HostStore)
        {
            return verify(&self.auth);
        }
        verdict
    }

    /// Claims of a valid session token (for logout's `id_token_hint`).
    pub fn session_claims(&self, token: &str, now_ms: u64) -> Option<Identity> {
        // Not from the cache: cached identities keep only the claims rate limits use.
        let keep = ["idt".to_string()];
        match self
            .auth
            .verify_uncached(&self.config.providers, token, now_ms / 1000, &keep)
        {
            Verdict::Verified(identity) => Some(identity),
            _ => None,
        }
    }

    /// Re-judges every waiting request. Returns the decided ones (removed from the waiting
    /// set) and, with `may_fetch`, the providers whose fetch this worker must now dispatch.
    pub fn resolve_waiting(&mut self, now_ms: u64, may_fetch: bool) -> Resolved {
        let ids: Vec<u32> = self.waiting.keys().copied().collect();
        let mut decided = Vec::new();
        let mut to_fetch = Vec::new();
        for id in ids {
            let Some(waiting) = self.waiting.remove(&id) else {
                continue;
            };
            match self.evaluate(&waiting.pending, now_ms, may_fetch) {
                AuthStep::Done(result) => {
                    if let Ok(admitted) = &result {
                        self.admissions.insert(id, admitted.admission.clone());
                        if admitted.forwarding.translation.is_some() {
                            let headers = super::translation::caller_headers(&admitted.forwarding);
                            self.caller_headers.insert(id, headers);
                        }
                    }
                    decided.push((id, result));
                }
                AuthStep::StartFetch { provider, .. } => {
                    to_fetch.push(provider);
                    self.waiting.insert(id, waiting);
                }
                AuthStep::Wait { until_ms } => {
                    // The fetch in flight bounds the wait: once it ends or is given up, the
                    // next evaluation starts a fetch or refuses.
                    let until_ms = if may_fetch {
                        until_ms
                    } else {
                        waiting.until_ms
                    };
                    self.waiting.insert(
                        id,
                        Waiting {
                            until_ms,
                            ..waiting
                        },
                    );
                }
            }
        }
        to_fetch.sort_unstable();
        to_fetch.dedup();
        Resolved { decided, to_fetch }
    }
}
