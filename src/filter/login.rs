//! Browser login: the login redirect, the callback's token exchange and session cookie, and
//! logout. The protocol pieces are pure (`crate::oauth2`); this file gathers their inputs
//! (random bytes, cookies, the IdP's endpoints) and builds the replies.

use std::time::Duration;

use proxy_wasm::hostcalls;

use super::worker::{IdTokenKeys, Worker};
use crate::config::{rules_can_require, GatewayConfig, OAuth2Config, FLOW_COOKIE, SESSION_ISSUER};
use crate::error::{GatewayError, LocalReply};
use crate::http::RequestHead;
use crate::jwks::fetch::FetchResponse;
use crate::jwt::Verdict;
use crate::oauth2::{
    authorization_url, check_nonce, clear_cookie, form_encode, mint_session, open_flow,
    parse_query, parse_token_response, pkce_challenge_s256, pkce_verifier, query_value,
    random_token, raw_query_value, sanitize_rd, seal_flow, session_scopes, set_cookie,
    token_request, url_path, FlowState, SessionClaims, TokenExchangeError, TokenResponse,
    FLOW_TTL_S,
};

/// The login endpoints.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginRoute {
    Login,
    Callback,
    Logout,
}

/// Which login endpoint `path` is, if any.
pub fn route(config: &GatewayConfig, path: &str) -> Option<LoginRoute> {
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

/// What a login endpoint does next.
pub enum LoginStep {
    Reply(LocalReply),
    /// The token exchange was dispatched (call token); the callback waits for it.
    Exchange {
        call: u32,
        flow: FlowState,
    },
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

fn failed(oauth2: &OAuth2Config, status: u32, details: String, realm: &str) -> LocalReply {
    let mut reply = GatewayError::LoginFailed { status, details }.to_reply(realm);
    reply.headers.push((
        "set-cookie".to_string(),
        clear_cookie(FLOW_COOKIE, oauth2.secure_cookies),
    ));
    reply
}

fn random<const N: usize>() -> Option<[u8; N]> {
    let mut bytes = [0u8; N];
    getrandom::getrandom(&mut bytes).ok()?;
    Some(bytes)
}

/// Handles a login endpoint.
pub fn handle(
    route: LoginRoute,
    worker: &mut Worker,
    head: &RequestHead,
    now_ms: u64,
    realm: &str,
) -> LoginStep {
    let config = std::rc::Rc::clone(&worker.config);
    let Some(oauth2) = config.oauth2.as_ref() else {
        return LoginStep::Reply(GatewayError::Internal("login is not configured").to_reply(realm));
    };
    worker.refresh_from_shared();
    match route {
        LoginRoute::Login => LoginStep::Reply(login(oauth2, worker, head, now_ms, realm)),
        LoginRoute::Callback => callback(oauth2, worker, head, now_ms, realm),
        LoginRoute::Logout => LoginStep::Reply(logout(oauth2, worker, head, now_ms)),
    }
}

fn login(
    oauth2: &OAuth2Config,
    worker: &Worker,
    head: &RequestHead,
    now_ms: u64,
    realm: &str,
) -> LocalReply {
    // Never fail open: no login until the IdP's configuration and keys are known.
    let Some(endpoints) = worker.endpoints().filter(|_| worker.login_ready()) else {
        return GatewayError::LoginUnavailable { retry_after_s: 1 }.to_reply(realm);
    };
    let (Some(verifier_bytes), Some(state_bytes), Some(nonce_bytes)) =
        (random::<32>(), random::<16>(), random::<16>())
    else {
        return GatewayError::Internal("no random source").to_reply(realm);
    };
    let verifier = pkce_verifier(&verifier_bytes);
    // The raw (still encoded) value: sanitize_rd decodes it exactly once.
    let raw_query = head.path().split_once('?').map_or("", |(_, q)| q);
    let flow = FlowState {
        state: random_token(&state_bytes),
        nonce: random_token(&nonce_bytes),
        verifier: verifier.clone(),
        rd: sanitize_rd(raw_query_value(raw_query, "rd")),
        expires_at: now_ms / 1000 + FLOW_TTL_S,
    };
    let location = authorization_url(
        &endpoints.authorization_endpoint,
        &oauth2.client_id,
        &oauth2.redirect_uri,
        &oauth2.scopes,
        &flow.state,
        &flow.nonce,
        &pkce_challenge_s256(&verifier),
    );
    let cookie = set_cookie(
        FLOW_COOKIE,
        &seal_flow(&oauth2.session_secret, &flow),
        FLOW_TTL_S,
        oauth2.secure_cookies,
    );
    redirect(&location, vec![cookie])
}

fn callback(
    oauth2: &OAuth2Config,
    worker: &Worker,
    head: &RequestHead,
    now_ms: u64,
    realm: &str,
) -> LoginStep {
    let query = query_of(head);
    if query_value(&query, "error").is_some() {
        // The IdP's error_description is not echoed: it is text from outside.
        return LoginStep::Reply(failed(
            oauth2,
            401,
            "the identity provider refused the login".into(),
            realm,
        ));
    }
    let cookie = head.cookie_values(FLOW_COOKIE).next();
    let flow = match open_flow(
        &oauth2.session_secret,
        cookie,
        query_value(&query, "state"),
        now_ms / 1000,
    ) {
        Ok(flow) => flow,
        Err(e) => return LoginStep::Reply(failed(oauth2, 401, e.to_string(), realm)),
    };
    let Some(code) = query_value(&query, "code").filter(|c| !c.is_empty()) else {
        return LoginStep::Reply(failed(oauth2, 401, "no authorization code".into(), realm));
    };
    let Some(endpoints) = worker.endpoints() else {
        return LoginStep::Reply(
            GatewayError::LoginUnavailable { retry_after_s: 1 }.to_reply(realm),
        );
    };
    let (headers, body) = token_request(
        code,
        &flow.verifier,
        &oauth2.redirect_uri,
        &oauth2.client_id,
        &oauth2.client_secret,
        endpoints.token_auth,
    );
    let path = url_path(&endpoints.token_endpoint).unwrap_or_else(|| "/".into());
    let mut call_headers: Vec<(&str, &str)> = vec![
        (":method", "POST"),
        (":path", path.as_str()),
        (":authority", oauth2.authority.as_str()),
    ];
    call_headers.extend(headers.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    match hostcalls::dispatch_http_call(
        &oauth2.cluster,
        call_headers,
        Some(body.as_bytes()),
        vec![],
        Duration::from_millis(oauth2.timeout_ms),
    ) {
        Ok(call) => LoginStep::Exchange { call, flow },
        Err(_) => LoginStep::Reply(failed(
            oauth2,
            502,
            "the token endpoint could not be called".into(),
            realm,
        )),
    }
}

/// A callback whose token exchange succeeded but whose ID token names a signing key the
/// gateway has not fetched yet (the IdP rotated its keys): it waits for the keys, since the
/// one-time code is already spent.
pub struct ParkedLogin {
    pub flow: FlowState,
    pub tokens: TokenResponse,
}

/// What the callback does once the token endpoint answered.
pub enum Finish {
    /// Answer (the subject when the login succeeded, for the audit record).
    Reply(LocalReply, Option<String>),
    /// The ID-token keys' fetch slot is ours: dispatch the fetch of `path` for `provider`, then
    /// [`verify_parked`] when it answers.
    FetchKeys {
        provider: usize,
        path: String,
        parked: ParkedLogin,
    },
    /// Another worker is fetching the keys: park until `until_ms` (see [`resolve_parked`]).
    Wait { until_ms: u64, parked: ParkedLogin },
}

/// The token endpoint answered: validate the ID token, start the session, go back to `rd`.
pub fn finish(
    worker: &mut Worker,
    flow: FlowState,
    response: &FetchResponse,
    now_ms: u64,
    realm: &str,
) -> Finish {
    let config = std::rc::Rc::clone(&worker.config);
    let Some(oauth2) = config.oauth2.as_ref() else {
        return Finish::Reply(
            GatewayError::Internal("login is not configured").to_reply(realm),
            None,
        );
    };
    let Some(status) = response.status else {
        let reply = failed(
            oauth2,
            504,
            "the token endpoint did not answer in time".into(),
            realm,
        );
        return Finish::Reply(reply, None);
    };
    let tokens = match parse_token_response(status, response.body.as_deref().unwrap_or_default()) {
        Ok(tokens) => tokens,
        // A replayed, expired or foreign code: the login failed, the IdP is fine.
        Err(e @ TokenExchangeError::InvalidGrant) => {
            return Finish::Reply(failed(oauth2, 401, e.to_string(), realm), None)
        }
        Err(e @ TokenExchangeError::Timeout) => {
            return Finish::Reply(failed(oauth2, 504, e.to_string(), realm), None)
        }
        Err(e @ TokenExchangeError::Failed(_)) => {
            return Finish::Reply(failed(oauth2, 502, e.to_string(), realm), None)
        }
    };
    let parked = match verify_parked(worker, ParkedLogin { flow, tokens }, now_ms, realm) {
        Ok((reply, sub)) => return Finish::Reply(reply, sub),
        Err(parked) => parked,
    };
    // Unknown signing key: refetch the keys (as requests do for an unknown kid, within the
    // provider's min_refresh_interval_s shared by all workers), then verify again.
    match worker.claim_id_token_keys(now_ms) {
        IdTokenKeys::Fetch { provider, path } => Finish::FetchKeys {
            provider,
            path,
            parked,
        },
        IdTokenKeys::Wait { until_ms } => Finish::Wait { until_ms, parked },
        IdTokenKeys::NotNow { retry_after_s } => {
            Finish::Reply(keys_unavailable(oauth2, retry_after_s, realm), None)
        }
    }
}

/// No keys for the ID token, and none to be had now: 503 with `Retry-After`. The code is spent,
/// so the flow cookie goes too (the next attempt starts a new login).
pub fn keys_unavailable(oauth2: &OAuth2Config, retry_after_s: u64, realm: &str) -> LocalReply {
    let mut reply = GatewayError::LoginUnavailable { retry_after_s }.to_reply(realm);
    reply.headers.push((
        "set-cookie".to_string(),
        clear_cookie(FLOW_COOKIE, oauth2.secure_cookies),
    ));
    reply
}

/// Verifies a callback's ID token and starts the session. `Err` gives the login back when the
/// token's signing key is still unknown.
pub fn verify_parked(
    worker: &mut Worker,
    parked: ParkedLogin,
    now_ms: u64,
    realm: &str,
) -> Result<(LocalReply, Option<String>), ParkedLogin> {
    let verdict = worker.verify_id_token(&parked.tokens.id_token, now_ms);
    if let Verdict::NeedKeys { .. } = verdict {
        return Err(parked);
    }
    Ok(
        match start_session(worker, &parked, verdict, now_ms, realm) {
            Ok((reply, sub)) => (reply, Some(sub)),
            Err(reply) => (reply, None),
        },
    )
}

/// The parked callbacks of this worker whose keys arrived (verified now) or whose wait ended
/// (503): their context ids and answers. The others stay parked.
pub fn resolve_parked(
    worker: &mut Worker,
    now_ms: u64,
    realm: &str,
) -> Vec<(u32, LocalReply, Option<String>)> {
    let config = std::rc::Rc::clone(&worker.config);
    let Some(oauth2) = config.oauth2.as_ref() else {
        return Vec::new();
    };
    let mut decided = Vec::new();
    for (context_id, parked, until_ms) in worker.take_parked_logins() {
        match verify_parked(worker, parked, now_ms, realm) {
            Ok((reply, sub)) => decided.push((context_id, reply, sub)),
            Err(parked) if now_ms < until_ms => worker.park_login(context_id, parked, until_ms),
            Err(_) => decided.push((context_id, keys_unavailable(oauth2, 1, realm), None)),
        }
    }
    decided
}

fn start_session(
    worker: &mut Worker,
    parked: &ParkedLogin,
    verdict: Verdict,
    now_ms: u64,
    realm: &str,
) -> Result<(LocalReply, String), LocalReply> {
    let config = std::rc::Rc::clone(&worker.config);
    let Some(oauth2) = config.oauth2.as_ref() else {
        return Err(GatewayError::Internal("login is not configured").to_reply(realm));
    };
    let (flow, tokens) = (&parked.flow, &parked.tokens);
    let identity = match verdict {
        Verdict::Verified(identity) => identity,
        Verdict::Refused(e) => {
            return Err(failed(
                oauth2,
                502,
                format!("ID token rejected: {e}"),
                realm,
            ))
        }
        Verdict::NeedKeys { .. } => return Err(keys_unavailable(oauth2, 1, realm)),
    };
    let claim = |name: &str| {
        identity
            .claims
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    };
    if let Err(e) = check_nonce(claim("nonce"), &flow.nonce) {
        return Err(failed(oauth2, 401, e, realm));
    }
    // 128 random bits naming this session (the upstream's `session_id`).
    let Some(sid_bytes) = random::<16>() else {
        return Err(GatewayError::Internal("no random source").to_reply(realm));
    };
    let session_id = random_token(&sid_bytes);
    let ours = |scope: &str| rules_can_require(&config, scope);
    let scopes = session_scopes(tokens.scope.as_deref(), &ours, &oauth2.session_scopes);
    let session = mint_session(
        &oauth2.session_secret,
        &SessionClaims {
            issuer: SESSION_ISSUER,
            audience: &oauth2.client_id,
            sub: &identity.sub,
            email: claim("email"),
            name: claim("name"),
            scopes: &scopes,
            session_id: &session_id,
            id_token: Some(&tokens.id_token),
        },
        now_ms / 1000,
        oauth2.session_ttl_s,
    );
    let Ok(session) = session else {
        return Err(GatewayError::Internal("could not sign the session").to_reply(realm));
    };
    log::info!("ai-gateway: login succeeded for sub {}", identity.sub);
    let reply = redirect(
        &flow.rd,
        vec![
            set_cookie(
                &oauth2.session_cookie,
                &session,
                oauth2.session_ttl_s,
                oauth2.secure_cookies,
            ),
            clear_cookie(FLOW_COOKIE, oauth2.secure_cookies),
        ],
    );
    Ok((reply, identity.sub))
}

fn logout(
    oauth2: &OAuth2Config,
    worker: &mut Worker,
    head: &RequestHead,
    now_ms: u64,
) -> LocalReply {
    let id_token_hint = head
        .cookie_values(&oauth2.session_cookie)
        .next()
        .and_then(|token| worker.session_claims(token, now_ms))
        .and_then(|identity| identity.claims.into_iter().find(|(n, _)| n == "idt"))
        .map(|(_, idt)| idt);
    let location = match worker.endpoints().and_then(|e| e.end_session_endpoint) {
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
        None => "/".to_string(),
    };
    log::info!("ai-gateway: logout");
    redirect(
        &location,
        vec![clear_cookie(&oauth2.session_cookie, oauth2.secure_cookies)],
    )
}
