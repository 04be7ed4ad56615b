//! Break-glass: the emergency step of authentication. A break-glass token (by its claimed
//! issuer) from an allowed address is verified, its `jti` spent for every worker, and its first
//! request admitted with `emergency_access.scopes`; the answer carries a session for the
//! requests that follow, accepted from allowed addresses only. Every use and every refusal is
//! logged at warning level and counted.

use std::rc::Rc;

use crate::emergency::{
    is_emergency_token, spend, verify, Spend, EMERGENCY_SESSION_AUDIENCE, EMERGENCY_SESSION_ISSUER,
};
use crate::error::GatewayError;
use crate::jwt::{Identity, TokenError};
use crate::oauth2::{mint_session, set_cookie, SessionClaims};
use crate::pipeline::{PendingAuth, TokenSource};

use super::finish::Decision;
use super::Gateway;

impl Gateway {
    /// `Some` when the request carries a break-glass token and `emergency_access` is set.
    pub(super) fn emergency_step(&mut self, pending: &PendingAuth) -> Option<Decision> {
        let config = Rc::clone(&self.config);
        let access = config.emergency.as_ref()?;
        let bearer = matches!(pending.source, TokenSource::Bearer);
        if !bearer || !is_emergency_token(&pending.token) {
            return None;
        }
        let now = self.host.now_ms() / 1000;
        if !pending.emergency_address {
            return Some(self.emergency_refused(TokenError::AddressNotAllowed));
        }
        let glass = match verify(&pending.token, access, now) {
            Ok(glass) => glass,
            Err(error) => return Some(self.emergency_refused(error)),
        };
        let identity = Identity {
            provider: access.session_provider,
            sub: glass.sub.clone(),
            scopes: access.scopes.clone(),
            exp: glass.exp,
            nbf: None,
            claims: vec![("sid".into(), glass.jti.clone())],
            roles: Vec::new(),
        };
        // The break-glass token goes no further than the gateway (it is spent anyway).
        let mut admitted = pending.clone();
        if let Some(header) = &config.token.header {
            admitted.forwarding.remove_headers.push(header.clone());
        }
        // Decided first, spent only if admitted: a refused first request (scope, limit) does not
        // burn the token.
        let mut decision = self.verified(&admitted, identity);
        let Decision::Allow(allowed) = &mut decision else {
            return Some(decision);
        };
        match spend(self.host.store(), &glass.jti, glass.exp, now) {
            Spend::First => {}
            Spend::Reused => return Some(self.emergency_refused(TokenError::AlreadyUsed)),
            Spend::Unavailable => {
                log::warn!("emergency access: the use of a token could not be recorded; refused");
                let error = GatewayError::Internal("the break-glass use could not be recorded");
                return Some(Decision::refused(error, None));
            }
        }
        let ttl_s = glass.exp.saturating_sub(now).max(1);
        let session = mint_session(
            &access.session_key,
            &SessionClaims {
                issuer: EMERGENCY_SESSION_ISSUER,
                audience: EMERGENCY_SESSION_AUDIENCE,
                sub: &glass.sub,
                email: None,
                name: None,
                scopes: &access.scopes,
                roles: &[],
                session_id: &glass.jti,
                id_token: None,
            },
            now,
            ttl_s,
        );
        let Ok(session) = session else {
            let error = GatewayError::Internal("the break-glass session could not be made");
            return Some(Decision::refused(error, None));
        };
        log::warn!(
            "emergency access: break-glass token {} admitted for {}; a session follows until {}",
            glass.jti.escape_debug(),
            glass.sub.escape_debug(),
            glass.exp
        );
        self.count("emergency_access_admitted", 1);
        let cookie = set_cookie(&access.cookie, &session, ttl_s, access.secure_cookie);
        allowed
            .admission
            .headers
            .push(("set-cookie".into(), cookie));
        Some(decision)
    }

    /// A break-glass session presented from an address `allow_ips` does not name.
    pub(super) fn emergency_session_refusal(
        &self,
        pending: &PendingAuth,
        identity: &Identity,
    ) -> Option<Decision> {
        let access = self.config.emergency.as_ref()?;
        if identity.provider != access.session_provider || pending.emergency_address {
            return None;
        }
        Some(self.emergency_refused(TokenError::AddressNotAllowed))
    }

    fn emergency_refused(&self, error: TokenError) -> Decision {
        log::warn!("emergency access refused: {error}");
        Decision::refused(GatewayError::InvalidToken(error), None)
    }
}
