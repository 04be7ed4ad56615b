//! Browser login: the login redirect, the callback's token exchange and session cookie, and
//! logout. The protocol pieces are pure (`crate::oauth2`); these steps gather their inputs
//! (random bytes, cookies, the IdP's endpoints), dispatch the token exchange and build the
//! replies. Every answer ends in [`Gateway::finish`] as a [`Decision::Login`].

use std::rc::Rc;

use crate::config::{rules_can_require, GatewayConfig, OAuth2Config, FLOW_COOKIE, SESSION_ISSUER};
use crate::error::{GatewayError, LocalReply};
use crate::http::RequestHead;
use crate::jwks::fetch::{claim_fetch, FetchDecision};
use crate::jwt::{Identity, Verdict};
use crate::oauth2::preset::authorization_url as preset_authorization_url;
use crate::oauth2::{
    authorization_url, check_nonce, clear_cookie, form_encode, mint_session, open_flow,
    parse_query, parse_token_response, pkce_challenge_s256, pkce_verifier, query_value,
    random_token, raw_query_value, sanitize_rd, seal_flow, session_scopes, set_cookie,
    token_request, url_path, Endpoints, FlowState, SessionClaims, TokenExchangeError, FLOW_TTL_S,
};
use crate::outgoing::{CallResponse, OutgoingCall};

use super::finish::{Decision, LoginEvent};
use super::flow::{Flow, IdTokenWait, Phase};
use super::{Call, Effect, Gateway, Next, TICK_MS};

mod preset;

pub(super) use preset::PresetWait;

/// The login endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum LoginRoute {
    Login,
    Callback,
    Logout,
}

/// Which login endpoint `path` is, if any.
pub(super) fn route(config: &GatewayConfig, path: &str) -> Option<LoginRoute> {
    let oauth2 = config.oauth2.as_ref()?;
    let path = path.split('?').next().unwrap_or(path);
    if path == oauth2.login_path {
        Some(LoginRoute::Login)
    } else if path == oauth2.callback_path {
        Some(LoginRoute::Callback)
    } else if path == oauth2.logout_path {
        Some(LoginRoute::Logout)
    } else {
        None
    }
}

fn query_of(head: &RequestHead) -> Vec<(String, String)> {
    head.path()
        .split_once('?')
        .map(|(_, q)| parse_query(q))
        .unwrap_or_default()
}

fn redirect(location: &str, cookies: Vec<String>) -> LocalReply {
    let mut headers = vec![
        ("location".to_string(), location.to_string()),
        ("cache-control".to_string(), "no-store".to_string()),
        ("content-type".to_string(), "text/plain".to_string()),
    ];
    headers.extend(cookies.into_iter().map(|c| ("set-cookie".to_string(), c)));
    LocalReply {
        status: 302,
        headers,
        body: String::new(),
    }
}

/// A failed login: the contract's error, and the flow cookie cleared.
fn failed(oauth2: &OAuth2Config, status: u32, details: String, realm: &str) -> LocalReply {
    with_flow_cleared(
        oauth2,
        GatewayError::LoginFailed { status, details }.to_reply(realm),
    )
}

/// No keys for the ID token, and none to be had now: 503 with `Retry-After`. The code is spent,
/// so the flow cookie goes too (the next attempt starts a new login).
fn keys_unavailable(oauth2: &OAuth2Config, retry_after_s: u64, realm: &str) -> LocalReply {
    with_flow_cleared(
        oauth2,
        GatewayError::LoginUnavailable { retry_after_s }.to_reply(realm),
    )
}

fn with_flow_cleared(oauth2: &OAuth2Config, mut reply: LocalReply) -> LocalReply {
    reply.headers.push((
        "set-cookie".to_string(),
        clear_cookie(FLOW_COOKIE, oauth2.secure_cookies),
    ));
    reply
}

impl Gateway {
    /// A login endpoint's request: answered now, or paused for the token exchange.
    pub(super) fn login(
        &mut self,
        id: u32,
        flow: &mut Flow,
        route: LoginRoute,
        head: &RequestHead,
        effects: &mut Vec<(u32, Effect)>,
    ) -> Next {
        let config = Rc::clone(&self.config);
        let Some(oauth2) = config.oauth2.as_ref() else {
            let error = GatewayError::Internal("login is not configured");
            return self.finish(id, flow, Decision::refused(error, None), false, effects);
        };
        // A login's steps may reach different workers: adopt what the others fetched.
        self.sync_discovery();
        self.auth.sync(&config.providers, self.host.store());
        if let Some(preset) = &oauth2.preset {
            // The audit names the provider a preset's login went through.
            flow.audit.provider = Some(preset.preset.name().to_string());
        }
        let (reply, event) = match route {
            LoginRoute::Login => (self.login_redirect(oauth2, head), LoginEvent::Start),
            LoginRoute::Logout => (self.logout(oauth2, head), LoginEvent::Logout),
            LoginRoute::Callback => match self.callback(id, oauth2, head) {
                Ok(phase) => {
                    flow.phase = phase;
                    return Next::Pause;
                }
                Err(reply) => (reply, LoginEvent::Callback),
            },
        };
        let decision = Decision::Login {
            reply,
            event,
            sub: None,
        };
        self.finish(id, flow, decision, false, effects)
    }

    /// The IdP's endpoints (see [`crate::config::OAuth2Config::endpoints`]). `None` until
    /// every one the flow needs is known (login then answers 503).
    fn endpoints(&self) -> Option<Endpoints> {
        self.config
            .oauth2
            .as_ref()?
            .endpoints(self.discovery.as_ref())
    }

    fn login_redirect(&self, oauth2: &OAuth2Config, head: &RequestHead) -> LocalReply {
        let realm = self.realm();
        // Never fail open: no login until the IdP's configuration and keys are known (a
        // preset has neither: its endpoints are configured).
        let keys = self.auth.have_keys(oauth2.id_token_provider);
        let endpoints = self.endpoints().filter(|_| keys);
        if endpoints.is_none() && oauth2.preset.is_none() {
            return GatewayError::LoginUnavailable { retry_after_s: 1 }.to_reply(realm);
        }
        let (Some(verifier_bytes), Some(state_bytes), Some(nonce_bytes)) = (
            self.random::<32>(),
            self.random::<16>(),
            self.random::<16>(),
        ) else {
            return GatewayError::Internal("no random source").to_reply(realm);
        };
        let verifier = pkce_verifier(&verifier_bytes);
        // The raw (still encoded) value: sanitize_rd decodes it exactly once.
        let raw_query = head.path().split_once('?').map_or("", |(_, q)| q);
        let state = FlowState {
            state: random_token(&state_bytes),
            nonce: random_token(&nonce_bytes),
            verifier: verifier.clone(),
            rd: sanitize_rd(raw_query_value(raw_query, "rd")),
            expires_at: self.host.now_ms() / 1000 + FLOW_TTL_S,
        };
        let challenge = pkce_challenge_s256(&verifier);
        let location = match (&oauth2.preset, endpoints) {
            (Some(preset), _) => preset_authorization_url(preset, &state.state, &challenge),
            (None, Some(endpoints)) => authorization_url(
                &endpoints.authorization_endpoint,
                &oauth2.client_id,
                &oauth2.redirect_uri,
                &oauth2.scopes,
                &state.state,
                &state.nonce,
                &challenge,
            ),
            (None, None) => {
                return GatewayError::LoginUnavailable { retry_after_s: 1 }.to_reply(realm)
            }
        };
        let cookie = set_cookie(
            FLOW_COOKIE,
            &seal_flow(&oauth2.session_secret, &state),
            FLOW_TTL_S,
            oauth2.secure_cookies,
        );
        redirect(&location, vec![cookie])
    }

    /// Checks the callback and dispatches its token exchange (a preset's first call): the
    /// phase it waits in; `Err` is the answer when it cannot go on.
    fn callback(
        &mut self,
        id: u32,
        oauth2: &OAuth2Config,
        head: &RequestHead,
    ) -> Result<Phase, LocalReply> {
        let realm = self.realm().to_string();
        let query = query_of(head);
        if query_value(&query, "error").is_some() {
            // The IdP's error_description is not echoed: it is text from outside.
            let details = "the identity provider refused the login".into();
            return Err(failed(oauth2, 401, details, &realm));
        }
        let cookie = head.cookie_values(FLOW_COOKIE).next();
        let now_s = self.host.now_ms() / 1000;
        let state = open_flow(
            &oauth2.session_secret,
            cookie,
            query_value(&query, "state"),
            now_s,
        )
        .map_err(|e| failed(oauth2, 401, e.to_string(), &realm))?;
        let code_params = oauth2
            .preset
            .as_ref()
            .map_or(&["code"][..], |p| p.preset.code_params());
        let Some(code) = code_params
            .iter()
            .find_map(|name| query_value(&query, name).filter(|c| !c.is_empty()))
        else {
            return Err(failed(oauth2, 401, "no authorization code".into(), &realm));
        };
        if let Some(preset) = &oauth2.preset {
            return self.preset_start(id, oauth2, preset, head, state, code);
        }
        let Some(endpoints) = self.endpoints() else {
            return Err(GatewayError::LoginUnavailable { retry_after_s: 1 }.to_reply(&realm));
        };
        let (headers, body) = token_request(
            code,
            &state.verifier,
            &oauth2.redirect_uri,
            &oauth2.client_id,
            &oauth2.client_secret,
            endpoints.token_auth,
        );
        let path = url_path(&endpoints.token_endpoint).unwrap_or_else(|| "/".into());
        let mut call = OutgoingCall::new(
            &oauth2.cluster,
            &oauth2.authority,
            oauth2.timeout_ms,
            "POST",
            &path,
        )
        .body(body.into_bytes());
        call.headers.extend(headers);
        // The IdP's logs join the login's trace.
        call.headers.extend(super::flow::trace_context(head));
        if self.dispatch(&call, Call::TokenExchange { request: id }) {
            Ok(Phase::TokenExchange(state))
        } else {
            let details = "the token endpoint could not be called".into();
            Err(failed(oauth2, 502, details, &realm))
        }
    }

    /// The token endpoint answered the callback of request `id`: validate the ID token, start
    /// the session, go back to `rd`; or wait for the ID token's keys.
    pub(super) fn token_exchanged(
        &mut self,
        id: u32,
        flow: &mut Flow,
        response: &CallResponse,
        effects: &mut Vec<(u32, Effect)>,
    ) {
        let Phase::TokenExchange(state) = std::mem::replace(&mut flow.phase, Phase::Head) else {
            return;
        };
        let config = Rc::clone(&self.config);
        let Some(oauth2) = config.oauth2.as_ref() else {
            return;
        };
        let realm = self.realm().to_string();
        let tokens = match response.status.map(|status| {
            parse_token_response(status, response.body.as_deref().unwrap_or_default())
        }) {
            Some(Ok(tokens)) => tokens,
            None => {
                let details = "the token endpoint did not answer in time".into();
                return self.login_answered(
                    id,
                    flow,
                    failed(oauth2, 504, details, &realm),
                    None,
                    effects,
                );
            }
            // A replayed, expired or foreign code: the login failed, the IdP is fine.
            Some(Err(e)) => {
                let status = match e {
                    TokenExchangeError::InvalidGrant => 401,
                    TokenExchangeError::Timeout => 504,
                    TokenExchangeError::Failed(_) => 502,
                };
                let reply = failed(oauth2, status, e.to_string(), &realm);
                return self.login_answered(id, flow, reply, None, effects);
            }
        };
        let now = self.host.now_ms();
        let wait = Box::new(IdTokenWait {
            flow: state,
            tokens,
            deadline_ms: 0,
        });
        let wait = match self.start_session(oauth2, wait) {
            Ok((reply, sub)) => return self.login_answered(id, flow, reply, sub, effects),
            Err(wait) => wait,
        };
        // Unknown signing key: refetch the keys (as requests do for an unknown kid, within the
        // provider's min_refresh_interval_s shared by all workers), then verify again.
        let index = oauth2.id_token_provider;
        let Some((provider, remote)) = config
            .providers
            .get(index)
            .and_then(|p| Some((p, p.remote()?)))
        else {
            return self.login_answered(
                id,
                flow,
                keys_unavailable(oauth2, 1, &realm),
                None,
                effects,
            );
        };
        let have_keys = self.auth.have_keys(index);
        let claimed = match self.jwks_path(remote) {
            Some(_) => claim_fetch(
                self.host.store(),
                &provider.name,
                remote.into(),
                now,
                have_keys,
                self.owner,
            ),
            None => FetchDecision::NotBefore { at_ms: now + 1000 },
        };
        let waits = match claimed {
            FetchDecision::Start => self.fetch_jwks(index),
            FetchDecision::InFlight { .. } => true,
            FetchDecision::NotBefore { at_ms } => {
                let retry_after_s = at_ms.saturating_sub(now).div_ceil(1000).max(1);
                let reply = keys_unavailable(oauth2, retry_after_s, &realm);
                return self.login_answered(id, flow, reply, None, effects);
            }
        };
        if !waits {
            return self.login_answered(
                id,
                flow,
                keys_unavailable(oauth2, 1, &realm),
                None,
                effects,
            );
        }
        let mut wait = wait;
        wait.deadline_ms = now + remote.timeout_ms + TICK_MS;
        flow.phase = Phase::WaitingIdTokenKeys(wait);
        self.waiting.push(id);
    }

    /// A login callback waiting for the ID token's keys: answered once they arrived, or once the
    /// fetch ended without them or its deadline passed. True while it still waits.
    pub(super) fn resolve_login(
        &mut self,
        id: u32,
        flow: &mut Flow,
        wait: Box<IdTokenWait>,
        effects: &mut Vec<(u32, Effect)>,
    ) -> bool {
        let config = Rc::clone(&self.config);
        let Some(oauth2) = config.oauth2.as_ref() else {
            return false;
        };
        let deadline_ms = wait.deadline_ms;
        match self.start_session(oauth2, wait) {
            Ok((reply, sub)) => {
                self.login_answered(id, flow, reply, sub, effects);
                false
            }
            Err(wait)
                if self.host.now_ms() < deadline_ms
                    && self.keys_fetch_in_flight(oauth2.id_token_provider) =>
            {
                flow.phase = Phase::WaitingIdTokenKeys(wait);
                true
            }
            Err(_) => {
                let reply = keys_unavailable(oauth2, 1, self.realm());
                self.login_answered(id, flow, reply, None, effects);
                false
            }
        }
    }

    fn login_answered(
        &mut self,
        id: u32,
        flow: &mut Flow,
        reply: LocalReply,
        sub: Option<String>,
        effects: &mut Vec<(u32, Effect)>,
    ) {
        let decision = Decision::Login {
            reply,
            event: LoginEvent::Callback,
            sub,
        };
        self.finish(id, flow, decision, true, effects);
    }

    /// Verifies a callback's ID token and starts the session: the redirect and the subject
    /// (none when the login failed). `Err` gives the wait back while the token's signing key
    /// is unknown.
    fn start_session(
        &mut self,
        oauth2: &OAuth2Config,
        wait: Box<IdTokenWait>,
    ) -> Result<(LocalReply, Option<String>), Box<IdTokenWait>> {
        let realm = self.realm().to_string();
        let identity = match self.verify_id_token(oauth2, &wait.tokens.id_token) {
            Verdict::NeedKeys { .. } => return Err(wait),
            Verdict::Refused(e) => {
                let details = format!("ID token rejected: {e}");
                return Ok((failed(oauth2, 502, details, &realm), None));
            }
            Verdict::Verified(identity) => identity,
        };
        Ok(match self.session_cookie(oauth2, &wait, &identity) {
            Ok(cookie) => {
                log::info!("ai-gateway: login succeeded for sub {}", identity.sub);
                let reply = redirect(
                    &wait.flow.rd,
                    vec![cookie, clear_cookie(FLOW_COOKIE, oauth2.secure_cookies)],
                );
                (reply, Some(identity.sub))
            }
            Err(reply) => (reply, None),
        })
    }

    /// Verifies the ID token of a login callback. The callback may reach another worker than
    /// the login did: keys fetched by any worker are adopted first when missing here.
    fn verify_id_token(&mut self, oauth2: &OAuth2Config, token: &str) -> Verdict {
        let keep = ["nonce".to_string(), "email".to_string(), "name".to_string()];
        let config = Rc::clone(&self.config);
        let now_s = self.host.now_ms() / 1000;
        let index = oauth2.id_token_provider;
        let verify = |auth: &crate::auth::Authenticator| {
            auth.verify_id_token(&config.providers, index, token, now_s, &keep)
        };
        let verdict = verify(&self.auth);
        if matches!(verdict, Verdict::NeedKeys { .. })
            && self.auth.sync(&config.providers, self.host.store())
        {
            return verify(&self.auth);
        }
        verdict
    }

    /// The session cookie for a verified ID token, or the answer when the login fails.
    fn session_cookie(
        &self,
        oauth2: &OAuth2Config,
        wait: &IdTokenWait,
        identity: &Identity,
    ) -> Result<String, LocalReply> {
        let realm = self.realm();
        let claim = |name: &str| {
            identity
                .claims
                .iter()
                .find(|(n, _)| n == name)
                .map(|(_, v)| v.as_str())
        };
        check_nonce(claim("nonce"), &wait.flow.nonce).map_err(|e| failed(oauth2, 401, e, realm))?;
        // 128 random bits naming this session (the upstream's `session_id`).
        let Some(sid_bytes) = self.random::<16>() else {
            return Err(GatewayError::Internal("no random source").to_reply(realm));
        };
        let session_id = random_token(&sid_bytes);
        let ours = |scope: &str| rules_can_require(&self.config, scope);
        let mut scopes =
            session_scopes(wait.tokens.scope.as_deref(), &ours, &oauth2.session_scopes);
        // The scopes the ID token's roles grant, as a bearer token of the same person gets.
        if let Some(roles) = &self.config.roles {
            for scope in &identity.scopes {
                if roles.grants_scope(scope) && !scopes.contains(scope) {
                    scopes.push(scope.clone());
                }
            }
        }
        let session = mint_session(
            &oauth2.session_secret,
            &SessionClaims {
                issuer: SESSION_ISSUER,
                audience: &oauth2.client_id,
                sub: &identity.sub,
                email: claim("email"),
                name: claim("name"),
                scopes: &scopes,
                // The session's roles, as the ID token held them (the session provider reads
                // them back): `role` limits count the session like a bearer token.
                roles: &identity.roles,
                session_id: &session_id,
                id_token: Some(&wait.tokens.id_token),
            },
            self.host.now_ms() / 1000,
            oauth2.session_ttl_s,
        )
        .map_err(|_| GatewayError::Internal("could not sign the session").to_reply(realm))?;
        Ok(set_cookie(
            &oauth2.session_cookie,
            &session,
            oauth2.session_ttl_s,
            oauth2.secure_cookies,
        ))
    }

    fn logout(&self, oauth2: &OAuth2Config, head: &RequestHead) -> LocalReply {
        // Not from the cache: cached identities keep only the claims rate limits use.
        let keep = ["idt".to_string()];
        let now_s = self.host.now_ms() / 1000;
        let id_token_hint = head
            .cookie_values(&oauth2.session_cookie)
            .next()
            .and_then(|token| {
                match self
                    .auth
                    .verify_uncached(&self.config.providers, token, now_s, &keep)
                {
                    Verdict::Verified(identity) => Some(identity),
                    _ => None,
                }
            })
            .and_then(|identity| identity.claims.into_iter().find(|(n, _)| n == "idt"))
            .map(|(_, idt)| idt);
        let location = match self.endpoints().and_then(|e| e.end_session_endpoint) {
            Some(end_session) => {
                let mut params: Vec<(&str, &str)> = vec![("client_id", oauth2.client_id.as_str())];
                if let Some(hint) = &id_token_hint {
                    params.push(("id_token_hint", hint));
                }
                if let Some(back) = &oauth2.post_logout_redirect_uri {
                    params.push(("post_logout_redirect_uri", back));
                }
                let separator = if end_session.contains('?') { '&' } else { '?' };
                format!("{end_session}{separator}{}", form_encode(&params))
            }
            // A preset has no end-session endpoint: the provider's own session stays.
            None if oauth2.preset.is_some() => oauth2
                .post_logout_redirect_uri
                .clone()
                .unwrap_or_else(|| "/".to_string()),
            None => "/".to_string(),
        };
        log::info!("ai-gateway: logout");
        redirect(
            &location,
            vec![clear_cookie(&oauth2.session_cookie, oauth2.secure_cookies)],
        )
    }
}

#[cfg(test)]
mod tests;
