//! The error contract: every reply the gateway produces itself is built here, from a typed error,
//! so status, JSON body and headers (`WWW-Authenticate`, `Retry-After`, ...) stay consistent.

use serde_json::json;

use crate::authz::PathError;
use crate::jwt::TokenError;

/// Why the gateway answers a request itself instead of forwarding it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GatewayError {
    /// No token where the route requires one.
    MissingToken,
    /// A token was presented and is not acceptable.
    InvalidToken(TokenError),
    /// The token is fine but lacks scopes the route requires.
    InsufficientScope { required: Vec<String> },
    /// A rate limit is spent.
    RateLimited(RateLimitState),
    /// The rate-limit state in shared data could not be updated: refused (fail closed). Carries
    /// the limit that could not count, for the `X-RateLimit-*` headers every 429 has.
    RateLimitUnavailable { limit: u64 },
    /// The body is not valid JSON or not an acceptable request.
    InvalidRequestBody(String),
    /// The path could be read differently by different components (rules must not be bypassed).
    InvalidPath(PathError),
    /// The body is larger than `limits.max_request_body_bytes`.
    RequestTooLarge { limit: u64 },
    /// Keys were never fetched and the IdP cannot be reached.
    JwksUnavailable { retry_after_s: u64 },
    /// Token introspection could not answer (IdP down, slow, or answering garbage).
    IntrospectionUnavailable { retry_after_s: u64 },
    /// The mesh-wide rate-limit service gave no answer (down, slow, or garbage) and
    /// `rate_limit_service.failure_mode` is `deny`.
    RateLimitServiceUnavailable { retry_after_s: u64 },
    /// The upstream answered in a form that cannot be translated.
    UpstreamError(String),
    /// A browser navigation without a session: sent to the login page (`302`).
    LoginRedirect(String),
    /// Login cannot start: the identity provider's configuration is not fetched yet.
    LoginUnavailable { retry_after_s: u64 },
    /// The login flow failed (bad or replayed state, IdP error, token exchange failure).
    LoginFailed { status: u32, details: String },
    /// A state-changing request carrying the session cookie from another site.
    CrossSiteRequest,
    /// `models.allow` does not let the caller use this model (canonical name).
    ModelNotAllowed(String),
    /// A prompt matched a `data_protection.deny` pattern: its name (never the text).
    ContentBlocked(String),
    /// A CORS preflight from an origin `cors.allow_origins` does not name.
    CorsOriginNotAllowed,
    /// The gateway itself could not do its job (host call failed, plugin not configured).
    /// Never a reason to forward: the request is refused.
    Internal(&'static str),
}

/// The numbers behind a 429 and behind the `X-RateLimit-*` headers of allowed responses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimitState {
    pub limit: u64,
    pub remaining: u64,
    /// Seconds until the current window ends (`X-RateLimit-Reset`).
    pub reset_s: u64,
    /// Seconds until the refused request would fit (`Retry-After`); 0 when admitted.
    pub retry_after_s: u64,
}

/// A reply ready to hand to the host: status, headers and body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u32,
    pub headers: Vec<(String, String)>,
    pub body: String,
}

impl GatewayError {
    pub fn status(&self) -> u32 {
        match self {
            Self::MissingToken | Self::InvalidToken(_) => 401,
            Self::InsufficientScope { .. } => 403,
            Self::RateLimited(_) | Self::RateLimitUnavailable { .. } => 429,
            Self::InvalidRequestBody(_) | Self::InvalidPath(_) | Self::ContentBlocked(_) => 400,
            Self::RequestTooLarge { .. } => 413,
            Self::JwksUnavailable { .. }
            | Self::IntrospectionUnavailable { .. }
            | Self::RateLimitServiceUnavailable { .. } => 503,
            Self::UpstreamError(_) => 502,
            Self::Internal(_) => 500,
            Self::LoginRedirect(_) => 302,
            Self::LoginUnavailable { .. } => 503,
            Self::LoginFailed { status, .. } => *status,
            Self::CrossSiteRequest | Self::ModelNotAllowed(_) | Self::CorsOriginNotAllowed => 403,
        }
    }

    /// The contract's machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            Self::MissingToken => "AUTH_MISSING_TOKEN",
            Self::InvalidToken(_) => "AUTH_INVALID_TOKEN",
            Self::InsufficientScope { .. } => "AUTH_INSUFFICIENT_SCOPE",
            Self::RateLimited(_) | Self::RateLimitUnavailable { .. } => "RATE_LIMITED",
            Self::InvalidRequestBody(_) => "INVALID_REQUEST_BODY",
            Self::InvalidPath(_) => "INVALID_PATH",
            Self::RequestTooLarge { .. } => "REQUEST_TOO_LARGE",
            Self::JwksUnavailable { .. } => "JWKS_UNAVAILABLE",
            Self::IntrospectionUnavailable { .. } => "INTROSPECTION_UNAVAILABLE",
            Self::RateLimitServiceUnavailable { .. } => "RATE_LIMIT_SERVICE_UNAVAILABLE",
            Self::UpstreamError(_) => "UPSTREAM_ERROR",
            Self::Internal(_) => "INTERNAL_ERROR",
            Self::LoginRedirect(_) => "AUTH_MISSING_TOKEN",
            Self::LoginUnavailable { .. } => "LOGIN_UNAVAILABLE",
            Self::LoginFailed { .. } => "LOGIN_FAILED",
            Self::CrossSiteRequest => "CROSS_SITE_REQUEST",
            Self::ModelNotAllowed(_) => "MODEL_NOT_ALLOWED",
            Self::ContentBlocked(_) => "CONTENT_BLOCKED",
            Self::CorsOriginNotAllowed => "CORS_ORIGIN_NOT_ALLOWED",
        }
    }

    /// OpenAI's error `type`, so OpenAI SDKs classify the error as they would OpenAI's own.
    fn error_type(&self) -> &'static str {
        match self {
            Self::MissingToken | Self::InvalidToken(_) => "authentication_error",
            Self::InsufficientScope { .. } => "permission_error",
            Self::RateLimited(_) | Self::RateLimitUnavailable { .. } => "rate_limit_error",
            Self::InvalidRequestBody(_)
            | Self::InvalidPath(_)
            | Self::RequestTooLarge { .. }
            | Self::ContentBlocked(_) => "invalid_request_error",
            Self::LoginRedirect(_) | Self::LoginFailed { .. } => "authentication_error",
            Self::CrossSiteRequest | Self::ModelNotAllowed(_) | Self::CorsOriginNotAllowed => {
                "permission_error"
            }
            Self::JwksUnavailable { .. }
            | Self::IntrospectionUnavailable { .. }
            | Self::RateLimitServiceUnavailable { .. }
            | Self::UpstreamError(_)
            | Self::Internal(_)
            | Self::LoginUnavailable { .. } => "api_error",
        }
    }

    fn message(&self) -> &'static str {
        match self {
            Self::MissingToken => "Authentication required",
            Self::InvalidToken(_) => "Invalid or expired token",
            Self::InsufficientScope { .. } => "Insufficient scope",
            Self::RateLimited(_) | Self::RateLimitUnavailable { .. } => "Rate limit exceeded",
            Self::InvalidRequestBody(_) => "Invalid request body",
            Self::InvalidPath(_) => "Invalid request path",
            Self::RequestTooLarge { .. } => "Request body too large",
            Self::JwksUnavailable { .. } => "Signing keys are not available yet",
            Self::IntrospectionUnavailable { .. } => "Token introspection is not available",
            Self::RateLimitServiceUnavailable { .. } => "The rate-limit service is not available",
            Self::UpstreamError(_) => "Upstream returned a response that cannot be translated",
            Self::Internal(_) => "Internal gateway error",
            Self::LoginRedirect(_) => "Login required",
            Self::LoginUnavailable { .. } => "Login is not available yet",
            Self::LoginFailed { .. } => "Login failed",
            Self::CrossSiteRequest => "Cross-site request refused",
            Self::ModelNotAllowed(_) => "Model not allowed",
            Self::ContentBlocked(_) => "The request contains content that is not allowed",
            Self::CorsOriginNotAllowed => "Origin not allowed",
        }
    }

    /// What exactly failed. Built only from our own words: never a token, secret or header value.
    pub fn details(&self) -> String {
        match self {
            Self::MissingToken => "no bearer token in the request".to_string(),
            Self::InvalidToken(reason) => reason.to_string(),
            Self::InsufficientScope { required } => {
                format!("required scopes: {}", required.join(" "))
            }
            Self::RateLimited(state) => format!(
                "limit of {} reached; retry in {} s",
                state.limit,
                state.retry_after_s.max(1)
            ),
            Self::RateLimitUnavailable { .. } => {
                "the rate limit could not be checked; retry".to_string()
            }
            Self::InvalidRequestBody(why) | Self::UpstreamError(why) => why.clone(),
            Self::InvalidPath(why) => why.to_string(),
            Self::RequestTooLarge { limit } => format!("request body exceeds {limit} bytes"),
            Self::JwksUnavailable { .. } => {
                "the identity provider's keys have not been fetched yet".to_string()
            }
            Self::IntrospectionUnavailable { .. } => {
                "the identity provider's introspection endpoint gave no usable answer".to_string()
            }
            Self::RateLimitServiceUnavailable { .. } => {
                "the mesh-wide rate-limit service gave no usable answer".to_string()
            }
            Self::Internal(why) => (*why).to_string(),
            Self::LoginRedirect(_) => "no session: redirected to login".to_string(),
            Self::LoginUnavailable { .. } => {
                "the identity provider's configuration has not been fetched yet".to_string()
            }
            Self::LoginFailed { details, .. } => details.clone(),
            Self::CrossSiteRequest => {
                "a state-changing request from another origin carried the session cookie"
                    .to_string()
            }
            Self::ModelNotAllowed(model) => {
                format!("the model `{}` is not allowed", shortened(model))
            }
            Self::ContentBlocked(pattern) => {
                format!("the prompt matched the deny pattern `{pattern}`")
            }
            Self::CorsOriginNotAllowed => {
                "the request's origin is not in cors.allow_origins".to_string()
            }
        }
    }

    /// The full reply: status, contract JSON body, and the headers the contract requires.
    pub fn to_reply(&self, realm: &str) -> LocalReply {
        let body = json!({
            "error": {
                "message": self.message(),
                "type": self.error_type(),
                "code": self.code(),
                "details": self.details(),
                "param": null,
            }
        });
        let mut headers = vec![("content-type".to_string(), "application/json".to_string())];
        match self {
            Self::MissingToken => headers.push((
                "www-authenticate".to_string(),
                format!("Bearer realm=\"{}\"", quoted_string_safe(realm)),
            )),
            Self::InvalidToken(_) => headers.push((
                "www-authenticate".to_string(),
                format!(
                    "Bearer error=\"invalid_token\", error_description=\"{}\"",
                    quoted_string_safe(&self.details())
                ),
            )),
            Self::InsufficientScope { required } => headers.push((
                "www-authenticate".to_string(),
                format!(
                    "Bearer error=\"insufficient_scope\", scope=\"{}\"",
                    quoted_string_safe(&required.join(" "))
                ),
            )),
            Self::RateLimited(state) => {
                headers.push((
                    "retry-after".to_string(),
                    state.retry_after_s.max(1).to_string(),
                ));
                headers.extend(rate_limit_headers(state));
            }
            Self::RateLimitUnavailable { limit } => {
                headers.push(("retry-after".to_string(), "1".to_string()));
                headers.extend(rate_limit_headers(&RateLimitState {
                    limit: *limit,
                    remaining: 0,
                    reset_s: 1,
                    retry_after_s: 1,
                }));
            }
            // A failed login answers 401 too: RFC 9110 wants a challenge with every 401.
            Self::LoginFailed { status: 401, .. } => headers.push((
                "www-authenticate".to_string(),
                format!("Bearer realm=\"{}\"", quoted_string_safe(realm)),
            )),
            Self::LoginRedirect(location) => {
                headers.push(("location".to_string(), location.clone()));
                headers.push(("cache-control".to_string(), "no-store".to_string()));
            }
            Self::LoginUnavailable { retry_after_s } => {
                headers.push(("retry-after".to_string(), retry_after_s.max(&1).to_string()))
            }
            Self::JwksUnavailable { retry_after_s }
            | Self::IntrospectionUnavailable { retry_after_s }
            | Self::RateLimitServiceUnavailable { retry_after_s } => {
                headers.push(("retry-after".to_string(), retry_after_s.max(&1).to_string()))
            }
            _ => {}
        }
        LocalReply {
            status: self.status(),
            headers,
            body: body.to_string(),
        }
    }
}

/// `X-RateLimit-*` headers, for 429s and for allowed responses alike.
pub fn rate_limit_headers(state: &RateLimitState) -> Vec<(String, String)> {
    vec![
        ("x-ratelimit-limit".to_string(), state.limit.to_string()),
        (
            "x-ratelimit-remaining".to_string(),
            state.remaining.to_string(),
        ),
        ("x-ratelimit-reset".to_string(), state.reset_s.to_string()),
    ]
}

/// At most 128 characters of a client-chosen name, for `details` (the body may be megabytes).
pub(crate) fn shortened(name: &str) -> String {
    match name.char_indices().nth(128) {
        Some((end, _)) => format!("{}...", name.get(..end).unwrap_or_default()),
        None => name.to_string(),
    }
}

/// Keeps a value inside an RFC 7230 quoted-string: drops `"`, `\` and control characters rather
/// than escaping them, since some clients do not unescape.
fn quoted_string_safe(value: &str) -> String {
    value
        .chars()
        .filter(|c| *c != '"' && *c != '\\' && !c.is_control())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn body(reply: &LocalReply) -> Value {
        serde_json::from_str(&reply.body).unwrap()
    }

    fn header<'a>(reply: &'a LocalReply, name: &str) -> Option<&'a str> {
        reply
            .headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn model_not_allowed_is_403_naming_the_model() {
        let reply = GatewayError::ModelNotAllowed("qwen3:32b".into()).to_reply("r");
        assert_eq!(reply.status, 403);
        assert_eq!(header(&reply, "www-authenticate"), None);
        let b = body(&reply);
        assert_eq!(b["error"]["code"], "MODEL_NOT_ALLOWED");
        assert_eq!(b["error"]["type"], "permission_error");
        assert_eq!(b["error"]["message"], "Model not allowed");
        assert_eq!(
            b["error"]["details"],
            "the model `qwen3:32b` is not allowed"
        );
        let long = GatewayError::ModelNotAllowed("é".repeat(1000)).details();
        assert!(long.chars().count() < 200, "{long}");
    }

    #[test]
    fn missing_token_is_401_with_bearer_realm() {
        let reply = GatewayError::MissingToken.to_reply("ai-gateway");
        assert_eq!(reply.status, 401);
        assert_eq!(header(&reply, "content-type"), Some("application/json"));
        assert_eq!(
            header(&reply, "www-authenticate"),
            Some("Bearer realm=\"ai-gateway\"")
        );
        let b = body(&reply);
        assert_eq!(b["error"]["code"], "AUTH_MISSING_TOKEN");
        assert_eq!(b["error"]["type"], "authentication_error");
        assert!(b["error"]["message"].is_string());
        assert!(b["error"]["details"].is_string());
    }

    #[test]
    fn invalid_token_names_the_reason_in_body_and_header() {
        let reply = GatewayError::InvalidToken(TokenError::MultipleTokens).to_reply("r");
        assert_eq!(reply.status, 401);
        let b = body(&reply);
        assert_eq!(b["error"]["code"], "AUTH_INVALID_TOKEN");
        assert_eq!(b["error"]["message"], "Invalid or expired token");
        let details = b["error"]["details"].as_str().unwrap();
        assert_eq!(details, TokenError::MultipleTokens.to_string());
        let www = header(&reply, "www-authenticate").unwrap();
        assert!(www.starts_with("Bearer "));
        assert!(www.contains("error=\"invalid_token\""));
        assert!(www.contains(&format!("error_description=\"{details}\"")));
    }

    #[test]
    fn insufficient_scope_lists_required_scopes() {
        let err = GatewayError::InsufficientScope {
            required: vec!["chat:write".into(), "history:team-a".into()],
        };
        let reply = err.to_reply("r");
        assert_eq!(reply.status, 403);
        assert_eq!(body(&reply)["error"]["code"], "AUTH_INSUFFICIENT_SCOPE");
        assert_eq!(body(&reply)["error"]["type"], "permission_error");
        let www = header(&reply, "www-authenticate").unwrap();
        assert!(www.contains("error=\"insufficient_scope\""));
        assert!(www.contains("scope=\"chat:write history:team-a\""));
    }

    #[test]
    fn rate_limited_carries_retry_and_ratelimit_headers() {
        let state = RateLimitState {
            limit: 10,
            remaining: 0,
            reset_s: 42,
            retry_after_s: 7,
        };
        let reply = GatewayError::RateLimited(state).to_reply("r");
        assert_eq!(reply.status, 429);
        assert_eq!(header(&reply, "retry-after"), Some("7"));
        assert_eq!(header(&reply, "x-ratelimit-limit"), Some("10"));
        assert_eq!(header(&reply, "x-ratelimit-remaining"), Some("0"));
        assert_eq!(header(&reply, "x-ratelimit-reset"), Some("42"));
        assert_eq!(body(&reply)["error"]["code"], "RATE_LIMITED");
    }

    #[test]
    fn retry_after_is_never_zero() {
        let reply = GatewayError::JwksUnavailable { retry_after_s: 0 }.to_reply("r");
        assert_eq!(reply.status, 503);
        assert_eq!(header(&reply, "retry-after"), Some("1"));
        assert_eq!(body(&reply)["error"]["code"], "JWKS_UNAVAILABLE");
    }

    #[test]
    fn every_variant_maps_to_its_contract_status_and_code() {
        let cases = [
            (
                GatewayError::InvalidRequestBody("x".into()),
                400,
                "INVALID_REQUEST_BODY",
            ),
            (
                GatewayError::RequestTooLarge { limit: 5 },
                413,
                "REQUEST_TOO_LARGE",
            ),
            (
                GatewayError::UpstreamError("x".into()),
                502,
                "UPSTREAM_ERROR",
            ),
            (GatewayError::Internal("x"), 500, "INTERNAL_ERROR"),
        ];
        for (err, status, code) in cases {
            let reply = err.to_reply("r");
            assert_eq!(reply.status, status, "{err:?}");
            assert_eq!(body(&reply)["error"]["code"], code, "{err:?}");
            assert_eq!(header(&reply, "content-type"), Some("application/json"));
        }
    }

    #[test]
    fn header_values_cannot_be_broken_out_of() {
        let err = GatewayError::InsufficientScope {
            required: vec!["a\"b\\c\r\nx".into()],
        };
        let reply = err.to_reply("re\"alm");
        let www = header(&reply, "www-authenticate").unwrap();
        assert_eq!(www, "Bearer error=\"insufficient_scope\", scope=\"abcx\"");
        let reply = GatewayError::MissingToken.to_reply("re\"al\r\nm");
        assert_eq!(
            header(&reply, "www-authenticate"),
            Some("Bearer realm=\"realm\"")
        );
    }

    /// The contract's exact forms, so clients that match them literally work.
    #[test]
    fn challenges_have_the_contracts_form() {
        let reply = GatewayError::InvalidToken(TokenError::Expired).to_reply("r");
        assert_eq!(
            header(&reply, "www-authenticate"),
            Some("Bearer error=\"invalid_token\", error_description=\"token is expired\"")
        );
        let reply = GatewayError::InsufficientScope {
            required: vec!["chat:write".into()],
        }
        .to_reply("r");
        assert_eq!(
            header(&reply, "www-authenticate"),
            Some("Bearer error=\"insufficient_scope\", scope=\"chat:write\"")
        );
    }

    #[test]
    fn every_429_carries_the_rate_limit_headers() {
        let reply = GatewayError::RateLimitUnavailable { limit: 7 }.to_reply("r");
        assert_eq!(reply.status, 429);
        assert_eq!(header(&reply, "retry-after"), Some("1"));
        assert_eq!(header(&reply, "x-ratelimit-limit"), Some("7"));
        assert_eq!(header(&reply, "x-ratelimit-remaining"), Some("0"));
        assert_eq!(header(&reply, "x-ratelimit-reset"), Some("1"));
    }

    #[test]
    fn a_failed_login_401_has_a_challenge() {
        let failed = |status| GatewayError::LoginFailed {
            status,
            details: "x".into(),
        };
        let reply = failed(401).to_reply("gw");
        assert_eq!(
            header(&reply, "www-authenticate"),
            Some("Bearer realm=\"gw\"")
        );
        assert_eq!(
            header(&failed(502).to_reply("gw"), "www-authenticate"),
            None
        );
    }
}
