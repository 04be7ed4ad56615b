//! Browser login: the login redirect, the callback's token exchange and session cookie, and
//! logout. The protocol pieces are pure (`crate::oauth2`); this file gathers their inputs
//! (random bytes, cookies, the IdP's endpoints) and builds the replies.

use std::time::Duration;

use proxy_wasm::hostcalls;

use super::worker::Worker;
use crate::config::{GatewayConfig, OAuth2Config, FLOW_COOKIE, SESSION_ISSUER};
use crate::error::{GatewayError, LocalReply};
use crate::http::RequestHead;
use crate::jwks::fetch::FetchResponse;
use crate::jwt::Verdict;
use crate::oauth2::{
    authorization_url, check_nonce, clear_cookie, form_encode, mint_session, open_flow,
    parse_query, parse_token_response, pkce_challenge_s256, pkce_verifier, query_value,
    random_token, raw_query_value, sanitize_rd, seal_flow, set_cookie, token_request, url_path,
    FlowState, SessionClaims, FLOW_TTL_S,
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

/// The token endpoint answered: validate the ID token, start the session, go back to `rd`.
/// Returns the reply, and the subject when the login succeeded (for the audit record).
pub fn finish_with_subject(
    worker: &mut Worker,
    flow: &FlowState,
    response: &FetchResponse,
    now_ms: u64,
    realm: &str,
) -> (LocalReply, Option<String>) {
    match finish(worker, flow, response, now_ms, realm) {
        Ok((reply, sub)) => (reply, Some(sub)),
        Err(reply) => (reply, None),
    }
}

fn finish(
    worker: &mut Worker,
    flow: &FlowState,
    response: &FetchResponse,
    now_ms: u64,
    realm: &str,
) -> Result<(LocalReply, String), LocalReply> {
    let config = std::rc::Rc::clone(&worker.config);
    let Some(oauth2) = config.oauth2.as_ref() else {
        return Err(GatewayError::Internal("login is not configured").to_reply(realm));
    };
    let Some(status) = response.status else {
        return Err(failed(
            oauth2,
            504,
            "the token endpoint did not answer in time".into(),
            realm,
        ));
    };
    let tokens = match parse_token_response(status, response.body.as_deref().unwrap_or_default()) {
        Ok(tokens) => tokens,
        Err(e) => return Err(failed(oauth2, 502, e, realm)),
    };
    let identity = match worker.verify_id_token(&tokens.id_token, now_ms) {
        Verdict::Verified(identity) => identity,
        Verdict::Refused(e) => {
            return Err(failed(
                oauth2,
                502,
                format!("ID token rejected: {e}"),
                realm,
            ))
        }
        Verdict::NeedKeys { .. } => {
            return Err(GatewayError::LoginUnavailable { retry_after_s: 1 }.to_reply(realm))
        }
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
    let scopes = session_scopes(&config, tokens.scope.as_deref(), &oauth2.session_scopes);
    let session = mint_session(
        &oauth2.session_secret,
        &SessionClaims {
            issuer: SESSION_ISSUER,
            audience: &oauth2.client_id,
            sub: &identity.sub,
            email: claim("email"),
            name: claim("name"),
            scopes: &scopes,
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

/// The IdP-granted scopes the gateway's rules can require; none of ours: the session default.
fn session_scopes(
    config: &GatewayConfig,
    granted: Option<&str>,
    default: &[String],
) -> Vec<String> {
    let ours = |scope: &str| {
        config.default_rule.scopes.iter().any(|s| s == scope)
            || config
                .rules
                .iter()
                .flat_map(|r| r.scopes.iter())
                .any(|pattern| pattern.could_require(scope))
    };
    let mut scopes: Vec<String> = Vec::new();
    for scope in granted
        .unwrap_or("")
        .split(' ')
        .filter(|s| !s.is_empty() && ours(s))
    {
        if !scopes.iter().any(|s| s == scope) {
            scopes.push(scope.to_string());
        }
    }
    if scopes.is_empty() {
        default.to_vec()
    } else {
        scopes
    }
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
