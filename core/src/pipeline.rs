//! The per-request decision, free of host calls: given the compiled config and the request head,
//! either answer the request (with a contract error) or forward it with header edits. The filter
//! layer only gathers the inputs and applies the outcome.

use crate::authz::{route_path, rules, Requirement};
use crate::config::{AuthMode, GatewayConfig};
use crate::error::{GatewayError, LocalReply};
use crate::http::RequestHead;
use crate::jwt::{extract_token, Identity, TokenLocation};
use crate::ratelimit::{LimitFacts, LimitKey};

/// What to do with a request once its headers are known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadersOutcome {
    /// Answer with this error; the upstream receives nothing.
    Reply(GatewayError),
    /// Forward with these edits.
    Forward(Forwarding),
    /// Verify this token first, then finish with [`complete_auth`].
    Verify(PendingAuth),
}

/// Where a request's token came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenSource {
    /// A bearer token (header or token cookie): one that does not verify is refused.
    Bearer,
    /// The gateway's session cookie: one that does not verify (tampered, expired) is no session,
    /// and the request goes on as having none: refused with `refusal` (a login redirect or
    /// `AUTH_MISSING_TOKEN`) or, when the rule lets anonymous callers through, allowed.
    Session { refusal: Option<GatewayError> },
}

/// A request waiting for its token to be verified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingAuth {
    pub token: String,
    /// Where the token came from, and so what a token that does not verify means.
    pub source: TokenSource,
    /// Scopes the route requires, all of which the token must grant.
    pub required_scopes: Vec<String>,
    /// The edits decided so far (spoofed identity headers removed, ...).
    pub forwarding: Forwarding,
    /// With `emergency_access`: the caller's address is in `allow_ips` (break-glass tokens and
    /// their sessions are accepted from there only).
    pub emergency_address: bool,
}

/// Header edits to apply before the request goes upstream, and whether the body must be held.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Forwarding {
    /// Headers removed (all values) before forwarding.
    pub remove_headers: Vec<String>,
    /// Headers set (replacing any value) before forwarding.
    pub set_headers: Vec<(String, String)>,
    /// `Some(limit)`: the body's size is unknown (no `content-length`), so the body is held in
    /// the filter and counted until it ends or exceeds `limit`; none of it is forwarded before.
    pub hold_body_up_to: Option<u64>,
    /// What the rate limits need to count this request.
    pub limit_facts: LimitFacts,
    /// How the request is translated for the upstream, if it is.
    pub translation: Option<Translation>,
    /// The rule that decided (index in `rules`); `None`: `default_rule`.
    pub rule: Option<usize>,
    /// The request is for `oauth2.userinfo_path`: once the caller is verified, the gateway
    /// answers with [`userinfo_reply`] instead of forwarding.
    pub answer_userinfo: bool,
    /// Under `models`, or when a limit restricted to models applies, an untranslated request
    /// whose body names its model (`/api/chat`, ...): the body is held whole and its `model`
    /// checked (and counted by those limits) before any of it goes on.
    pub model_in_body: bool,
}

/// A request the gateway translates (OpenAI client, Ollama upstream).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Translation {
    /// `POST /v1/chat/completions` → `POST /api/chat`: the body is translated once complete.
    /// Streamed answers pass through the router, converted chunk by chunk; others are fetched
    /// by the gateway itself, so that an answer it cannot translate can still become a 502.
    Chat { session_id: Option<String> },
    /// `POST /v1/completions` → `POST /api/generate`, the way a chat is.
    Completion { session_id: Option<String> },
    /// `POST /v1/embeddings` → `POST /api/embed`: never streamed, so always fetched by the
    /// gateway.
    Embeddings,
    /// `GET /v1/models` → `GET /api/tags`, fetched by the gateway.
    Models,
    /// `GET /v1/models/{id}` → `GET /api/tags`, fetched by the gateway, one model picked.
    Model(String),
}

impl Translation {
    /// Where a translated body goes (`None`: nothing of the request is translated on the way).
    pub fn upstream_path(&self) -> Option<&'static str> {
        match self {
            Self::Chat { .. } => Some("/api/chat"),
            Self::Completion { .. } => Some("/api/generate"),
            Self::Embeddings => Some("/api/embed"),
            Self::Models | Self::Model(_) => None,
        }
    }

    /// The session id the upstream body gets (`inject_user`).
    pub fn session_id(&self) -> Option<&str> {
        match self {
            Self::Chat { session_id } | Self::Completion { session_id } => session_id.as_deref(),
            _ => None,
        }
    }

    /// The session id the upstream body gets (`inject_user`), for requests that carry one.
    pub fn session_id_mut(&mut self) -> Option<&mut Option<String>> {
        match self {
            Self::Chat { session_id } | Self::Completion { session_id } => Some(session_id),
            _ => None,
        }
    }
}

/// What to do with a chunk of a held body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyOutcome {
    /// Keep buffering: more is coming.
    Buffer,
    /// The whole body is in and within limits: release headers and body.
    Release,
    /// Refuse: the body exceeded the limit.
    Reply(GatewayError),
}

/// Decides on a request from its headers.
pub fn on_request_headers(config: &GatewayConfig, head: &RequestHead) -> HeadersOutcome {
    match decide(config, head) {
        Ok(outcome) => outcome,
        Err(error) => HeadersOutcome::Reply(error),
    }
}

/// Under `data_protection` a body is held whole and scanned before any of it goes on (so its
/// length may change), and with `responses` the answer must come uncompressed to be read.
fn protected_forwarding(
    protector: &crate::protect::Protector,
    head: &RequestHead,
    limit: u64,
    forwarding: &mut Forwarding,
) {
    let mut remove = |name: &str| {
        if head.value(name).is_some() && !forwarding.remove_headers.iter().any(|n| n == name) {
            forwarding.remove_headers.push(name.into());
        }
    };
    if !head.end_of_stream {
        remove("content-length");
    }
    if protector.responses {
        remove("accept-encoding");
    }
    if !head.end_of_stream {
        forwarding.hold_body_up_to = Some(limit);
    }
}

fn decide(config: &GatewayConfig, head: &RequestHead) -> Result<HeadersOutcome, GatewayError> {
    // First: a path that could be read two ways is never matched one way and forwarded.
    let path = route_path(head.path()).map_err(GatewayError::InvalidPath)?;
    let limit = config.limits.max_request_body_bytes;
    let declared_length = head.content_length().map_err(|_| {
        GatewayError::InvalidRequestBody("content-length is not a valid number".into())
    })?;
    if declared_length.is_some_and(|length| length > limit) {
        return Err(GatewayError::RequestTooLarge { limit });
    }

    let mut forwarding = Forwarding {
        // A client must never be able to claim an identity: its copies go, whatever the rule.
        // (Only headers the request has are removed: every edit is a host call.)
        remove_headers: [&config.forward.user_header, &config.forward.scopes_header]
            .into_iter()
            .filter(|name| head.value(name).is_some())
            .cloned()
            .collect(),
        ..Forwarding::default()
    };
    strip_gateway_cookies(config, head, &mut forwarding);
    if config.cors.is_some() && head.value("origin").is_some() {
        // Checked here; the model server would apply its own origin list (Ollama answers 403
        // to origins outside OLLAMA_ORIGINS) to a browser call the gateway allowed.
        forwarding.remove_headers.push("origin".into());
    }

    if !head.end_of_stream && declared_length.is_none() {
        forwarding.hold_body_up_to = Some(limit);
    }
    forwarding.limit_facts = limit_facts(config, head, &path);
    forwarding.translation = translation(config, head, &path);
    if let Some(upstream_path) = forwarding
        .translation
        .as_ref()
        .and_then(Translation::upstream_path)
    {
        if head.end_of_stream {
            return Err(GatewayError::InvalidRequestBody(
                "this request needs a JSON body".into(),
            ));
        }
        // The body is rewritten (so its length changes) and the answer must be readable.
        for name in ["content-length", "accept-encoding"] {
            if head.value(name).is_some() {
                forwarding.remove_headers.push(name.into());
            }
        }
        forwarding
            .set_headers
            .push((":path".into(), upstream_path.into()));
        forwarding.hold_body_up_to = Some(limit);
    }
    // A model-restricted limit needs the model as much as `models` does (same hold, same check).
    let model_matters = config.models.is_some() || forwarding.limit_facts.model_limit;
    if model_matters
        && forwarding.translation.is_none()
        && crate::models::names_model_in_body(head.method(), &path)
    {
        if head.end_of_stream {
            return Err(GatewayError::InvalidRequestBody("model is required".into()));
        }
        forwarding.model_in_body = true;
        forwarding.hold_body_up_to = Some(limit);
    }
    if let Some(protector) = &config.data_protection {
        protected_forwarding(protector, head, limit, &mut forwarding);
    }
    if forwarding.limit_facts.token_budget && !head.end_of_stream {
        // Held whole so its max_tokens can be reserved before anything reaches the model.
        forwarding.hold_body_up_to = Some(limit);
    }

    let requirement = match &config.oauth2 {
        Some(oauth2) if path == oauth2.userinfo_path => {
            // Answered by the gateway for whoever the session or token names; no scopes, and
            // no rule can open it to anonymous callers.
            forwarding.answer_userinfo = true;
            forwarding.translation = None;
            Requirement {
                auth: AuthMode::Required,
                scopes: Vec::new(),
                rule: None,
            }
        }
        _ => requirement(config, head.method(), &path),
    };
    forwarding.rule = requirement.rule;
    let found = token_to_verify(config, &requirement, head, &mut forwarding)
        .map_err(|error| login_instead(config, head, error))?;
    match found {
        Some((token, location)) => {
            let from_session = config.oauth2.is_some() && location == TokenLocation::Cookie;
            if from_session {
                check_same_origin(config, head)?;
                // A session caller's session_id is its session's `sid` (set once verified),
                // never what the client sends in x-session-id.
                if let Some(session_id) = forwarding
                    .translation
                    .as_mut()
                    .and_then(Translation::session_id_mut)
                {
                    *session_id = None;
                }
            }
            let anonymous_ok =
                requirement.auth == AuthMode::Optional && requirement.scopes.is_empty();
            let source = if from_session {
                TokenSource::Session {
                    refusal: (!anonymous_ok)
                        .then(|| login_instead(config, head, GatewayError::MissingToken)),
                }
            } else {
                TokenSource::Bearer
            };
            Ok(HeadersOutcome::Verify(PendingAuth {
                token,
                source,
                required_scopes: requirement.scopes,
                forwarding,
                emergency_address: emergency_address(config, head),
            }))
        }
        None => Ok(HeadersOutcome::Forward(forwarding)),
    }
}

/// Whether the caller's address is one `emergency_access.allow_ips` names.
fn emergency_address(config: &GatewayConfig, head: &RequestHead) -> bool {
    let Some(access) = &config.emergency else {
        return false;
    };
    let forwarded: Vec<&str> = head.values("x-forwarded-for").collect();
    let forwarded = (!forwarded.is_empty()).then(|| forwarded.join(","));
    let ip = crate::ratelimit::client_ip(
        head.remote_address.as_deref(),
        forwarded.as_deref(),
        access.trusted_hops,
    );
    access.allows(ip.as_deref())
}

/// With browser login configured, a page navigation without a session goes to the login page
/// (with where it was going) instead of getting a 401.
fn login_instead(config: &GatewayConfig, head: &RequestHead, error: GatewayError) -> GatewayError {
    let Some(oauth2) = &config.oauth2 else {
        return error;
    };
    let navigation = head.method() == "GET"
        && head
            .value("accept")
            .is_some_and(|accept| accept.contains("text/html"));
    if error != GatewayError::MissingToken || !navigation {
        return error;
    }
    let rd = crate::oauth2::form_encode(&[("rd", head.path())]);
    GatewayError::LoginRedirect(format!("{}?{rd}", oauth2.login_path))
}

/// A state-changing request that carries the session cookie must come from our own pages.
fn check_same_origin(config: &GatewayConfig, head: &RequestHead) -> Result<(), GatewayError> {
    let Some(oauth2) = &config.oauth2 else {
        return Ok(());
    };
    if matches!(head.method(), "GET" | "HEAD" | "OPTIONS") {
        return Ok(());
    }
    // An origin `cors` lets carry credentials is one the session may come from.
    let credentialed = |origin: &str| {
        config
            .cors
            .as_ref()
            .is_some_and(|cors| cors.credentials && cors.allows(origin))
    };
    match head.value("origin") {
        Some(origin) if origin != oauth2.origin && !credentialed(origin) => {
            Err(GatewayError::CrossSiteRequest)
        }
        _ => Ok(()),
    }
}

/// The translation the request gets, when `translate` targets Ollama.
fn translation(config: &GatewayConfig, head: &RequestHead, path: &str) -> Option<Translation> {
    let settings = config.translate.as_ref()?;
    if settings.config.target != crate::translate::Target::Ollama {
        return None;
    }
    let path = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    let session_id = || {
        head.value("x-session-id")
            .filter(|v| !v.is_empty() && v.len() <= 256)
            .map(str::to_string)
    };
    match (head.method(), path) {
        ("POST", "/v1/chat/completions") => Some(Translation::Chat {
            session_id: session_id(),
        }),
        ("POST", "/v1/completions") => Some(Translation::Completion {
            session_id: session_id(),
        }),
        ("POST", "/v1/embeddings") => Some(Translation::Embeddings),
        ("GET", "/v1/models") => Some(Translation::Models),
        ("GET", other) => other
            .strip_prefix("/v1/models/")
            .filter(|id| !id.is_empty() && !id.contains('/'))
            .map(|id| Translation::Model(id.to_string())),
        _ => None,
    }
}

/// The limits that apply to the request and the caller-side facts they are keyed on.
fn limit_facts(config: &GatewayConfig, head: &RequestHead, path: &str) -> LimitFacts {
    let mut facts = LimitFacts::default();
    for (i, limit) in config.rate_limits.iter().enumerate() {
        let applies = limit
            .matcher
            .as_ref()
            .is_none_or(|m| m.captures(head.method(), path).is_some());
        if !applies {
            continue;
        }
        facts.applicable.push(i);
        if matches!(limit.kind, crate::ratelimit::LimitKind::Tokens(_)) {
            facts.token_budget = true;
        }
        if limit.models.is_some() {
            facts.model_limit = true;
        }
        match &limit.key {
            LimitKey::Header(name) => {
                if let Some(value) = head.value(name) {
                    if !facts.headers.iter().any(|(n, _)| n == name) {
                        facts.headers.push((name.clone(), value.to_string()));
                    }
                }
            }
            LimitKey::Ip { trusted_hops } if *trusted_hops > 0 => {
                // All values, in order: a second header must not hide the proxies' entries.
                let all: Vec<&str> = head.values("x-forwarded-for").collect();
                if !all.is_empty() {
                    facts.forwarded_for = Some(all.join(","));
                }
            }
            _ => {}
        }
    }
    if !facts.applicable.is_empty() {
        facts.remote_address = head.remote_address.clone();
    }
    facts
}

/// What the first matching rule (else `default_rule`) requires of this request.
pub fn requirement(config: &GatewayConfig, method: &str, path: &str) -> Requirement {
    rules::select(&config.rules, method, path).unwrap_or_else(|| Requirement {
        auth: config.default_rule.auth,
        scopes: config.default_rule.scopes.clone(),
        rule: None,
    })
}

/// The token the rule needs verified, if any. Without a token, `required` refuses and
/// The gateway's own cookies are credentials for the gateway, not for the upstream: the login
/// flow cookie (it holds the PKCE verifier) and the session cookie never leave it, and a token
/// cookie goes too when `strip_authorization` asks it for tokens. Other cookies pass unchanged.
fn strip_gateway_cookies(config: &GatewayConfig, head: &RequestHead, forwarding: &mut Forwarding) {
    let ours = &config.forward.stripped_cookies;
    if ours.is_empty() || head.value("cookie").is_none() {
        return;
    }
    let mut removed = false;
    let kept: Vec<&str> = head
        .values("cookie")
        .flat_map(|header| header.split(';'))
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .filter(|pair| {
            let name = pair.split_once('=').map_or(*pair, |(name, _)| name).trim();
            let ours = ours.iter().any(|cookie| cookie == name);
            removed |= ours;
            !ours
        })
        .collect();
    if !removed {
        return;
    }
    if kept.is_empty() {
        forwarding.remove_headers.push("cookie".into());
    } else {
        forwarding
            .set_headers
            .push(("cookie".into(), kept.join("; ")));
    }
}

/// `optional` lets the caller through anonymously (unless the rule requires scopes, which an
/// anonymous caller cannot have).
fn token_to_verify(
    config: &GatewayConfig,
    requirement: &Requirement,
    head: &RequestHead,
    forwarding: &mut Forwarding,
) -> Result<Option<(String, TokenLocation)>, GatewayError> {
    if requirement.auth == AuthMode::None {
        return Ok(None);
    }
    let found = extract_token(&config.token, head, config.limits.max_token_bytes)
        .map_err(GatewayError::InvalidToken)?;
    let Some(found) = found else {
        return match requirement.auth {
            AuthMode::Optional if requirement.scopes.is_empty() => Ok(None),
            _ => Err(GatewayError::MissingToken),
        };
    };
    if config.forward.strip_authorization && found.location == TokenLocation::Header {
        if let Some(header) = &config.token.header {
            forwarding.remove_headers.push(header.clone());
        }
    }
    Ok(Some((found.token.to_string(), found.location)))
}

/// Finishes a request whose token verified: the route's scopes must all be granted; then the
/// upstream learns who the caller is.
pub fn complete_auth(
    config: &GatewayConfig,
    pending: &PendingAuth,
    identity: &Identity,
) -> Result<Forwarding, GatewayError> {
    let missing = pending
        .required_scopes
        .iter()
        .any(|scope| !identity.scopes.contains(scope));
    if missing {
        return Err(GatewayError::InsufficientScope {
            required: pending.required_scopes.clone(),
        });
    }
    let mut forwarding = pending.forwarding.clone();
    if matches!(pending.source, TokenSource::Session { .. }) {
        if let Some(session_id) = forwarding
            .translation
            .as_mut()
            .and_then(Translation::session_id_mut)
        {
            *session_id = session_sid(config, identity);
        }
    }
    forwarding
        .set_headers
        .push((config.forward.user_header.clone(), identity.sub.clone()));
    forwarding.set_headers.push((
        config.forward.scopes_header.clone(),
        identity.scopes.join(" "),
    ));
    Ok(forwarding)
}

/// The `sid` of a gateway session (`None` for any other provider's token, even in the cookie).
fn session_sid(config: &GatewayConfig, identity: &Identity) -> Option<String> {
    let is_session = config
        .oauth2
        .as_ref()
        .is_some_and(|o| o.session_provider == identity.provider);
    if !is_session {
        return None;
    }
    identity
        .claims
        .iter()
        .find(|(name, _)| name == "sid")
        .map(|(_, sid)| sid.clone())
}

/// What `oauth2.userinfo_path` answers a verified caller: who they are, from verified claims only
/// (`name` and `email` when the token or session has them as strings).
pub fn userinfo_reply(identity: &Identity) -> LocalReply {
    let mut info = serde_json::Map::new();
    info.insert("sub".into(), identity.sub.clone().into());
    for (name, value) in &identity.claims {
        if name == "name" || name == "email" {
            info.insert(name.clone(), value.clone().into());
        }
    }
    info.insert("scopes".into(), identity.scopes.clone().into());
    info.insert("expires_at".into(), identity.exp.into());
    LocalReply {
        status: 200,
        headers: vec![
            ("content-type".into(), "application/json".into()),
            // Personal data: never cached by the browser or anything in between.
            ("cache-control".into(), "no-store".into()),
        ],
        body: serde_json::Value::Object(info).to_string(),
    }
}

/// Decides on a held body each time more of it arrives. `buffered` is the total so far.
pub fn on_request_body(limit: u64, buffered: usize, end_of_stream: bool) -> BodyOutcome {
    if u64::try_from(buffered).unwrap_or(u64::MAX) > limit {
        BodyOutcome::Reply(GatewayError::RequestTooLarge { limit })
    } else if end_of_stream {
        BodyOutcome::Release
    } else {
        BodyOutcome::Buffer
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config;
    use crate::jwt::TokenError;

    /// An HS256 provider, so rules that need tokens are valid configs.
    const PROVIDER: &str = r#""providers": [{"name": "sso", "issuer": "https://idp.test",
        "audiences": ["gw"], "hs256_secret": {"inline": "0123456789abcdef0123456789abcdef"}}]"#;

    fn cfg(sections: &str) -> GatewayConfig {
        let text = if sections.is_empty() {
            format!("{{{PROVIDER}}}")
        } else {
            format!("{{{PROVIDER}, {sections}}}")
        };
        config::load(text.as_bytes()).unwrap()
    }

    fn head(pairs: &[(&str, &str)], end_of_stream: bool) -> RequestHead {
        let mut headers = vec![
            (":method".to_string(), "POST".to_string()),
            (":path".to_string(), "/v1/chat/completions".to_string()),
        ];
        headers.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        RequestHead::new(headers, end_of_stream)
    }

    const OPEN: &str = r#""default_rule": {"auth": "none"}"#;

    fn identity(scopes: &[&str]) -> Identity {
        Identity {
            provider: 0,
            sub: "alice".into(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
            exp: u64::MAX,
            nbf: None,
            claims: vec![],
            roles: vec![],
        }
    }

    const LOGIN: &str = r#""oauth2": {"cluster": "idp", "authority": "idp",
        "issuer": "https://idp.test", "client_id": "web", "client_secret": {"inline": "s"},
        "redirect_uri": "https://chat.test/oauth2/callback",
        "session": {"secret": {"inline": "0123456789abcdef0123456789abcdef"}}},
        "default_rule": {"auth": "required", "scopes": ["chat:write"]}"#;

    fn get(path: &str, pairs: &[(&str, &str)]) -> RequestHead {
        let mut headers = vec![
            (":method".to_string(), "GET".to_string()),
            (":path".to_string(), path.to_string()),
        ];
        headers.extend(pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())));
        RequestHead::new(headers, true)
    }

    #[test]
    fn userinfo_needs_a_caller_but_no_scope() {
        let config = cfg(LOGIN);
        let outcome = on_request_headers(&config, &get("/oauth2/userinfo", &[]));
        assert_eq!(outcome, HeadersOutcome::Reply(GatewayError::MissingToken));
        let outcome = on_request_headers(
            &config,
            &get(
                "/oauth2/userinfo?x=1",
                &[("cookie", "gw_session=abc.def.ghi")],
            ),
        );
        let HeadersOutcome::Verify(pending) = outcome else {
            panic!("expected verify, got {outcome:?}")
        };
        assert!(pending.forwarding.answer_userinfo);
        assert!(
            pending.required_scopes.is_empty(),
            "default_rule's scopes do not apply"
        );
        // Other paths keep the default rule's scopes and are forwarded.
        let outcome = on_request_headers(
            &config,
            &get(
                "/oauth2/userinfo/x",
                &[("cookie", "gw_session=abc.def.ghi")],
            ),
        );
        let HeadersOutcome::Verify(pending) = outcome else {
            panic!("expected verify, got {outcome:?}")
        };
        assert!(!pending.forwarding.answer_userinfo);
        assert_eq!(pending.required_scopes, vec!["chat:write"]);
    }

    /// `session_id` for the upstream: the session's `sid` for session callers (their
    /// `x-session-id` ignored), the header for bearer-token callers.
    #[test]
    fn session_id_comes_from_the_session_for_session_callers() {
        let config = cfg(&format!(r#"{LOGIN}, "translate": {{"to": "ollama"}}"#));
        let session_provider = config
            .providers
            .iter()
            .position(|p| p.issuer == crate::config::SESSION_ISSUER)
            .unwrap();
        let chat = |pairs: &[(&str, &str)]| match on_request_headers(&config, &head(pairs, false)) {
            HeadersOutcome::Verify(pending) => pending,
            other => panic!("expected verify, got {other:?}"),
        };
        let mut session_caller = identity(&["chat:write"]);
        session_caller.provider = session_provider;
        session_caller.claims = vec![("sid".into(), "the-session-sid".into())];
        let session_id =
            |pending: &PendingAuth, id: &Identity| match complete_auth(&config, pending, id)
                .unwrap()
                .translation
            {
                Some(Translation::Chat { session_id }) => session_id,
                other => panic!("expected a chat, got {other:?}"),
            };

        let by_session = chat(&[("cookie", "gw_session=a.b.c"), ("x-session-id", "forged")]);
        assert_eq!(
            by_session.forwarding.translation,
            Some(Translation::Chat { session_id: None }),
            "never the client's header, even before verification"
        );
        assert_eq!(
            session_id(&by_session, &session_caller).as_deref(),
            Some("the-session-sid")
        );
        // Another provider's token in the cookie carries no session id of ours.
        let mut api_caller = session_caller.clone();
        api_caller.provider = 0;
        assert_eq!(session_id(&by_session, &api_caller), None);

        let by_bearer = chat(&[
            ("authorization", "Bearer a.b.c"),
            ("x-session-id", "client-chosen"),
        ]);
        assert_eq!(
            session_id(&by_bearer, &api_caller).as_deref(),
            Some("client-chosen")
        );
    }

    #[test]
    fn userinfo_reply_names_the_verified_caller_only() {
        let mut id = identity(&["chat:read"]);
        id.exp = 1_700_000_000;
        id.claims = vec![
            ("name".into(), "Alice <b>".into()),
            ("email".into(), "alice@example.com".into()),
            ("team".into(), "a".into()),
        ];
        let reply = userinfo_reply(&id);
        assert_eq!(reply.status, 200);
        assert!(reply
            .headers
            .contains(&("cache-control".into(), "no-store".into())));
        let body: serde_json::Value = serde_json::from_str(&reply.body).unwrap();
        assert_eq!(
            body,
            serde_json::json!({"sub": "alice", "name": "Alice <b>", "email": "alice@example.com",
                "scopes": ["chat:read"], "expires_at": 1_700_000_000u64})
        );
        let bare = userinfo_reply(&identity(&[]));
        let body: serde_json::Value = serde_json::from_str(&bare.body).unwrap();
        assert!(body.get("name").is_none() && body.get("team").is_none());
    }

    #[test]
    fn auth_none_forwards_and_strips_spoofed_identity_headers() {
        let outcome = on_request_headers(&cfg(OPEN), &head(&[("x-user-id", "admin")], true));
        let HeadersOutcome::Forward(fwd) = outcome else {
            panic!("expected forward, got {outcome:?}")
        };
        assert_eq!(
            fwd.remove_headers,
            vec!["x-user-id"],
            "the one the client sent"
        );
        assert!(fwd.set_headers.is_empty());
        let both = head(&[("x-user-scopes", "admin"), ("X-User-Id", "admin")], true);
        let HeadersOutcome::Forward(fwd) = on_request_headers(&cfg(OPEN), &both) else {
            panic!("expected forward")
        };
        assert_eq!(fwd.remove_headers, vec!["x-user-id", "x-user-scopes"]);
        assert_eq!(fwd.hold_body_up_to, None);
    }

    #[test]
    fn required_without_token_is_missing_token() {
        assert_eq!(
            on_request_headers(&cfg(""), &head(&[], true)),
            HeadersOutcome::Reply(GatewayError::MissingToken)
        );
    }

    #[test]
    fn optional_without_token_forwards_anonymously() {
        let outcome = on_request_headers(
            &cfg(r#""default_rule": {"auth": "optional"}"#),
            &head(&[], true),
        );
        assert!(matches!(outcome, HeadersOutcome::Forward(_)), "{outcome:?}");
    }

    #[test]
    fn a_present_token_is_always_verified_even_when_optional() {
        for auth in ["required", "optional"] {
            let config = cfg(&format!(
                r#""default_rule": {{"auth": "{auth}", "scopes": ["chat:read"]}}"#
            ));
            let outcome =
                on_request_headers(&config, &head(&[("authorization", "Bearer a.b.c")], true));
            let HeadersOutcome::Verify(pending) = outcome else {
                panic!("expected verify, got {outcome:?}")
            };
            assert_eq!(pending.token, "a.b.c");
            assert_eq!(pending.required_scopes, vec!["chat:read"]);
        }
    }

    #[test]
    fn verified_identity_is_forwarded_in_the_configured_headers() {
        let config =
            cfg(r#""forward": {"user_header": "x-caller", "scopes_header": "x-caller-scopes"}"#);
        let spoofed = [
            ("authorization", "Bearer t"),
            ("x-caller", "root"),
            ("x-caller-scopes", "admin"),
        ];
        let HeadersOutcome::Verify(pending) = on_request_headers(&config, &head(&spoofed, true))
        else {
            panic!("expected verify")
        };
        let fwd =
            complete_auth(&config, &pending, &identity(&["chat:read", "chat:write"])).unwrap();
        // The client's copies are removed (all values), then the gateway's are set.
        assert_eq!(fwd.remove_headers, vec!["x-caller", "x-caller-scopes"]);
        assert_eq!(
            fwd.set_headers,
            vec![
                ("x-caller".to_string(), "alice".to_string()),
                (
                    "x-caller-scopes".to_string(),
                    "chat:read chat:write".to_string()
                )
            ]
        );
    }

    #[test]
    fn missing_scopes_are_refused_with_the_required_list() {
        let config = cfg(r#""default_rule": {"scopes": ["chat:read", "chat:write"]}"#);
        let HeadersOutcome::Verify(pending) =
            on_request_headers(&config, &head(&[("authorization", "Bearer t")], true))
        else {
            panic!("expected verify")
        };
        assert_eq!(
            complete_auth(&config, &pending, &identity(&["chat:read"])),
            Err(GatewayError::InsufficientScope {
                required: vec!["chat:read".into(), "chat:write".into()]
            })
        );
        assert!(complete_auth(
            &config,
            &pending,
            &identity(&["chat:write", "chat:read", "x"])
        )
        .is_ok());
    }

    #[test]
    fn strip_authorization_removes_the_header_token() {
        let config = cfg(r#""forward": {"strip_authorization": true}"#);
        let HeadersOutcome::Verify(pending) =
            on_request_headers(&config, &head(&[("authorization", "Bearer t")], true))
        else {
            panic!("expected verify")
        };
        assert!(pending
            .forwarding
            .remove_headers
            .contains(&"authorization".to_string()));
    }

    fn forwarding_of(outcome: HeadersOutcome) -> Forwarding {
        match outcome {
            HeadersOutcome::Verify(pending) => pending.forwarding,
            HeadersOutcome::Forward(forwarding) => forwarding,
            HeadersOutcome::Reply(e) => panic!("unexpected refusal {e:?}"),
        }
    }

    #[test]
    fn the_gateways_cookies_never_reach_the_upstream() {
        let config = cfg(LOGIN);
        let cookies = "theme=dark; gw_session=s.e.s; gw_oauth2_flow=f; lang=zh";
        let fwd = forwarding_of(on_request_headers(
            &config,
            &get("/v1/models", &[("cookie", cookies)]),
        ));
        assert_eq!(
            fwd.set_headers,
            vec![("cookie".to_string(), "theme=dark; lang=zh".to_string())]
        );
        // Split over several cookie headers (HTTP/2), only ours: the header goes.
        let fwd = forwarding_of(on_request_headers(
            &config,
            &get(
                "/v1/models",
                &[
                    ("cookie", "gw_session=a.b.c"),
                    ("cookie", "gw_oauth2_flow=x"),
                ],
            ),
        ));
        assert!(fwd.remove_headers.contains(&"cookie".to_string()));
        assert!(!fwd.set_headers.iter().any(|(n, _)| n == "cookie"));
        // No cookie of ours: no edit at all (each edit is a host call).
        let fwd = forwarding_of(on_request_headers(
            &config,
            &get(
                "/v1/models",
                &[("authorization", "Bearer t"), ("cookie", "gw_sessionx=1")],
            ),
        ));
        assert!(!fwd.set_headers.iter().any(|(n, _)| n == "cookie"));
        assert!(!fwd.remove_headers.contains(&"cookie".to_string()));
    }

    #[test]
    fn a_token_cookie_is_stripped_only_when_asked() {
        let sections = |strip: bool| {
            format!(
                r#""token": {{"header": "authorization", "cookie": "tok"}},
                "forward": {{"strip_authorization": {strip}}}"#
            )
        };
        let request = get("/v1/models", &[("cookie", "tok=a.b.c; other=1")]);
        let fwd = forwarding_of(on_request_headers(&cfg(&sections(true)), &request));
        assert_eq!(
            fwd.set_headers,
            vec![("cookie".to_string(), "other=1".to_string())]
        );
        let fwd = forwarding_of(on_request_headers(&cfg(&sections(false)), &request));
        assert!(fwd.set_headers.is_empty());
    }

    #[test]
    fn malformed_authorization_is_invalid_token_before_anything_else() {
        assert_eq!(
            on_request_headers(&cfg(""), &head(&[("authorization", "Basic eA==")], true)),
            HeadersOutcome::Reply(GatewayError::InvalidToken(TokenError::NotBearer))
        );
    }

    #[test]
    fn declared_oversized_body_is_refused_at_headers() {
        let config =
            cfg(r#""default_rule": {"auth": "none"}, "limits": {"max_request_body_bytes": 100}"#);
        assert_eq!(
            on_request_headers(&config, &head(&[("content-length", "101")], false)),
            HeadersOutcome::Reply(GatewayError::RequestTooLarge { limit: 100 })
        );
        assert!(matches!(
            on_request_headers(&config, &head(&[("content-length", "100")], false)),
            HeadersOutcome::Forward(Forwarding {
                hold_body_up_to: None,
                ..
            })
        ));
    }

    #[test]
    fn size_is_checked_before_auth() {
        let config = cfg(r#""limits": {"max_request_body_bytes": 10}"#);
        assert_eq!(
            on_request_headers(&config, &head(&[("content-length", "11")], false)),
            HeadersOutcome::Reply(GatewayError::RequestTooLarge { limit: 10 })
        );
    }

    #[test]
    fn body_of_unknown_length_is_held_and_counted() {
        let config =
            cfg(r#""default_rule": {"auth": "none"}, "limits": {"max_request_body_bytes": 100}"#);
        let HeadersOutcome::Forward(fwd) = on_request_headers(&config, &head(&[], false)) else {
            panic!("expected forward")
        };
        assert_eq!(fwd.hold_body_up_to, Some(100));
        assert_eq!(on_request_body(100, 50, false), BodyOutcome::Buffer);
        assert_eq!(on_request_body(100, 100, true), BodyOutcome::Release);
        assert_eq!(
            on_request_body(100, 101, false),
            BodyOutcome::Reply(GatewayError::RequestTooLarge { limit: 100 })
        );
    }

    #[test]
    fn lengths_beyond_32_bits_are_not_truncated() {
        // On wasm32 usize is 32 bits: a 5 GB declared length must still be "too large".
        let config = cfg(OPEN);
        assert_eq!(
            on_request_headers(&config, &head(&[("content-length", "5000000000")], false)),
            HeadersOutcome::Reply(GatewayError::RequestTooLarge {
                limit: 10 * 1024 * 1024
            })
        );
        assert_eq!(
            on_request_body(u64::MAX, usize::MAX, true),
            BodyOutcome::Release
        );
    }

    #[test]
    fn ambiguous_paths_are_refused_before_anything_else() {
        use crate::authz::PathError;
        for (path, error) in [
            ("/v1/./chat/completions", PathError::DotSegment),
            ("//v1/chat/completions", PathError::EmptySegment),
            ("/v1%2Fchat/completions", PathError::EncodedSeparator),
            ("/v1/chat/completions;a=b", PathError::Parameter),
        ] {
            let mut h = head(&[("authorization", "Bearer t")], true);
            h.headers[1].1 = path.to_string();
            assert_eq!(
                on_request_headers(&cfg(OPEN), &h),
                HeadersOutcome::Reply(GatewayError::InvalidPath(error)),
                "{path}"
            );
        }
    }

    #[test]
    fn optional_rule_with_scopes_needs_a_token() {
        let config = cfg(
            r#""rules": [{"match": {"prefix": "/v1/"}, "auth": "optional", "scopes": ["chat:read"]}]"#,
        );
        assert_eq!(
            on_request_headers(&config, &head(&[], true)),
            HeadersOutcome::Reply(GatewayError::MissingToken)
        );
    }

    #[test]
    fn the_matching_rule_sets_the_required_scopes() {
        let config = cfg(
            r#""rules": [{"match": {"path": "/v1/chat/completions", "methods": ["POST"]}, "scopes": ["chat:write"]}]"#,
        );
        let HeadersOutcome::Verify(pending) =
            on_request_headers(&config, &head(&[("authorization", "Bearer t")], true))
        else {
            panic!("expected verify")
        };
        assert_eq!(pending.required_scopes, vec!["chat:write"]);
    }

    #[test]
    fn invalid_content_length_is_a_bad_request() {
        assert!(matches!(
            on_request_headers(&cfg(OPEN), &head(&[("content-length", "abc")], false)),
            HeadersOutcome::Reply(GatewayError::InvalidRequestBody(_))
        ));
    }
}
