//! A login preset's callback after its `state` checked out: the provider's calls one after the
//! other (each answer read by [`crate::oauth2::preset::advance`]), then the same session an
//! OIDC login starts. WeCom's app token is kept per worker until shortly before it expires.

use std::rc::Rc;

use crate::config::{OAuth2Config, FLOW_COOKIE, SESSION_ISSUER};
use crate::error::{GatewayError, LocalReply};
use crate::http::RequestHead;
use crate::oauth2::preset::{
    advance, start, PresetCall, PresetConfig, PresetLogin, PresetUser, Progress, Target,
};
use crate::oauth2::{
    clear_cookie, mint_session, random_token, set_cookie, FlowState, SessionClaims,
};
use crate::outgoing::{CallResponse, OutgoingCall};

use super::super::flow::{trace_context, Flow, Phase};
use super::super::{Call, Effect, Gateway};
use super::{failed, redirect};

/// WeCom's app token is dropped this long before it expires (its docs: cache it until then).
const APP_TOKEN_MARGIN_S: u64 = 300;

/// A preset login between its calls: the checked flow cookie and the protocol's state.
pub(in crate::gateway) struct PresetWait {
    pub flow: FlowState,
    pub login: PresetLogin,
}

impl Gateway {
    /// Dispatches the login's first call: the phase the callback waits in, or its answer.
    pub(super) fn preset_start(
        &mut self,
        id: u32,
        oauth2: &OAuth2Config,
        preset: &PresetConfig,
        head: &RequestHead,
        state: FlowState,
        code: &str,
    ) -> Result<Phase, LocalReply> {
        let now = self.host.now_ms();
        let cached = self
            .app_token
            .as_ref()
            .filter(|(_, until)| now < *until)
            .map(|(token, _)| token.clone());
        let (login, call) = start(preset, code, &state.verifier, cached.as_deref());
        if self.dispatch_preset(id, oauth2, preset, call, trace_context(head)) {
            Ok(Phase::PresetLogin(Box::new(PresetWait {
                flow: state,
                login,
            })))
        } else {
            let details = format!("{} could not be called", preset.preset.name());
            Err(failed(oauth2, 502, details, self.realm()))
        }
    }

    fn dispatch_preset(
        &mut self,
        id: u32,
        oauth2: &OAuth2Config,
        preset: &PresetConfig,
        call: PresetCall,
        trace: Vec<(String, String)>,
    ) -> bool {
        let (cluster, authority) = match call.target {
            Target::Token => (&oauth2.cluster, &oauth2.authority),
            Target::Api => (&preset.api_cluster, &preset.api_authority),
        };
        let mut outgoing = OutgoingCall::new(
            cluster,
            authority,
            oauth2.timeout_ms,
            call.method,
            &call.path,
        );
        outgoing.headers.extend(call.headers);
        outgoing.headers.extend(trace);
        outgoing.body = call.body;
        self.dispatch(&outgoing, Call::PresetLogin { request: id })
    }

    /// The provider answered the current call of request `id`'s login: the next call, or the
    /// session and the redirect to `rd`, or the failure.
    pub(in crate::gateway) fn preset_answered(
        &mut self,
        id: u32,
        flow: &mut Flow,
        response: &CallResponse,
        effects: &mut Vec<(u32, Effect)>,
    ) {
        let Phase::PresetLogin(mut wait) = std::mem::replace(&mut flow.phase, Phase::Head) else {
            return;
        };
        let config = Rc::clone(&self.config);
        let Some((oauth2, preset)) = config
            .oauth2
            .as_ref()
            .and_then(|o| Some((o, o.preset.as_ref()?)))
        else {
            return;
        };
        let realm = self.realm().to_string();
        let body = response.body.as_deref().unwrap_or_default();
        let progress = advance(preset, &mut wait.login, response.status, body);
        self.keep_app_token(&mut wait.login);
        let reply = match progress {
            Ok(Progress::Call(call)) => {
                if self.dispatch_preset(id, oauth2, preset, call, flow.trace.clone()) {
                    flow.phase = Phase::PresetLogin(wait);
                    return;
                }
                let details = format!("{} could not be called", preset.preset.name());
                failed(oauth2, 502, details, &realm)
            }
            Ok(Progress::Done(user)) => match self.preset_session(oauth2, &user) {
                Ok(cookie) => {
                    log::info!(
                        "ai-gateway: {} login succeeded for sub {}",
                        preset.preset.name(),
                        user.sub
                    );
                    let reply = redirect(
                        &wait.flow.rd,
                        vec![cookie, clear_cookie(FLOW_COOKIE, oauth2.secure_cookies)],
                    );
                    return self.login_answered(id, flow, reply, Some(user.sub), effects);
                }
                Err(reply) => reply,
            },
            Err(e) => {
                let details = e.details(preset.preset);
                log::info!("ai-gateway: login failed: {details}");
                failed(oauth2, e.status(), details, &realm)
            }
        };
        self.login_answered(id, flow, reply, None, effects);
    }

    /// WeCom: adopts the app token a call fetched, or drops the one the provider refused.
    fn keep_app_token(&mut self, login: &mut PresetLogin) {
        if login.app_token_rejected {
            login.app_token_rejected = false;
            self.app_token = None;
        }
        if let Some((token, expires_in_s)) = login.fresh_app_token.take() {
            let now = self.host.now_ms();
            self.app_token = expires_in_s
                .checked_sub(APP_TOKEN_MARGIN_S)
                .filter(|left| *left > 0)
                .map(|left| (token, now.saturating_add(left.saturating_mul(1000))));
        }
    }

    /// The session cookie for the preset's user: the same session an OIDC login starts (the
    /// configured `session.scopes`, plus what `roles` grant for the user's claims).
    fn preset_session(
        &self,
        oauth2: &OAuth2Config,
        user: &PresetUser,
    ) -> Result<String, LocalReply> {
        let realm = self.realm();
        let Some(sid_bytes) = self.random::<16>() else {
            return Err(GatewayError::Internal("no random source").to_reply(realm));
        };
        let session_id = random_token(&sid_bytes);
        // The provider's scopes are its own API's permissions, never the gateway's.
        let mut scopes = oauth2.session_scopes.clone();
        let mut roles = Vec::new();
        if let Some(configured) = &self.config.roles {
            let claims = user.claims();
            configured.add_granted_scopes(&claims, &mut scopes);
            roles = configured.held(&claims);
        }
        let session = mint_session(
            &oauth2.session_secret,
            &SessionClaims {
                issuer: SESSION_ISSUER,
                audience: &oauth2.client_id,
                sub: &user.sub,
                email: user.email.as_deref(),
                name: user.name.as_deref(),
                scopes: &scopes,
                roles: &roles,
                session_id: &session_id,
                id_token: None,
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
}
