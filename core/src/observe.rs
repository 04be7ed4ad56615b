//! Observability, pure parts: how decisions are named in metrics, the audit record, and the
//! deterministic body sampling. The filter defines the metrics and writes the records.

use serde::Serialize;

use crate::error::GatewayError;
use crate::jwt::TokenError;

/// Common prefix of every metric (Envoy shows them under `wasmcustom.`).
pub const PREFIX: &str = "ai_gateway";

/// The decision counter for a refusal: `requests_<class>`.
pub fn refusal_metric(error: &GatewayError) -> &'static str {
    match error {
        GatewayError::MissingToken | GatewayError::LoginRedirect(_) => "requests_missing_token",
        GatewayError::InvalidToken(reason) => match token_error_class(reason) {
            "format" => "requests_invalid_token_format",
            "algorithm" => "requests_invalid_token_algorithm",
            "signature" => "requests_invalid_token_signature",
            "expired" => "requests_invalid_token_expired",
            "issuer" => "requests_invalid_token_issuer",
            "audience" => "requests_invalid_token_audience",
            "key" => "requests_invalid_token_key",
            "inactive" => "requests_invalid_token_inactive",
            "emergency" => "emergency_access_refused",
            _ => "requests_invalid_token_claims",
        },
        GatewayError::InsufficientScope { .. } => "requests_insufficient_scope",
        GatewayError::RateLimited(_) => "requests_rate_limited",
        // Apart from spent limits: a count here means shared data was too busy (fail closed).
        GatewayError::RateLimitUnavailable { .. } => "requests_rate_limit_unavailable",
        GatewayError::InvalidRequestBody(_) => "requests_bad_body",
        GatewayError::InvalidPath(_) => "requests_bad_path",
        GatewayError::RequestTooLarge { .. } => "requests_too_large",
        GatewayError::JwksUnavailable { .. } => "requests_jwks_unavailable",
        GatewayError::IntrospectionUnavailable { .. } => "requests_introspection_unavailable",
        GatewayError::RateLimitServiceUnavailable { .. } => {
            "requests_rate_limit_service_unavailable"
        }
        GatewayError::UpstreamError(_) => "upstream_errors",
        GatewayError::CrossSiteRequest => "requests_cross_site",
        GatewayError::ModelNotAllowed(_) => "requests_model_not_allowed",
        GatewayError::ContentBlocked(_) => "requests_content_blocked",
        GatewayError::CorsOriginNotAllowed => "requests_cors_refused",
        GatewayError::LoginUnavailable { .. } | GatewayError::LoginFailed { .. } => {
            "oauth2_logins_failed"
        }
        GatewayError::Internal(_) => "requests_internal_error",
    }
}

/// Every metric the gateway defines, so all exist (at 0) from the start.
pub const COUNTERS: &[&str] = &[
    "requests_allowed",
    "requests_missing_token",
    "requests_invalid_token_format",
    "requests_invalid_token_algorithm",
    "requests_invalid_token_signature",
    "requests_invalid_token_expired",
    "requests_invalid_token_issuer",
    "requests_invalid_token_audience",
    "requests_invalid_token_key",
    "requests_invalid_token_claims",
    "requests_insufficient_scope",
    "requests_rate_limited",
    "requests_rate_limit_unavailable",
    "requests_bad_body",
    "requests_bad_path",
    "requests_too_large",
    "requests_jwks_unavailable",
    "requests_introspection_unavailable",
    "requests_rate_limit_service_unavailable",
    "rate_limit_service_calls",
    "rate_limit_service_failures",
    "rate_limit_service_failed_open",
    "requests_invalid_token_inactive",
    "introspection_calls",
    "introspection_cache_hits",
    "emergency_access_admitted",
    "emergency_access_refused",
    "requests_cross_site",
    "requests_model_not_allowed",
    "requests_content_blocked",
    "requests_cors_refused",
    "cors_preflights",
    "requests_internal_error",
    "jwks_fetches_ok",
    "jwks_fetches_failed",
    "token_cache_hits",
    "token_cache_misses",
    "oauth2_logins_started",
    "oauth2_logins_succeeded",
    "oauth2_logins_failed",
    "translated_requests",
    "translated_streams",
    "llm_prompt_tokens",
    "llm_completion_tokens",
    "upstream_errors",
    "data_protection_masked_requests",
    "data_protection_masked_responses",
];

/// Gauges: keys in use per worker's view, and the rate limiter's shared-data slots.
pub const GAUGES: &[&str] = &["jwks_keys", "ratelimit_slots"];

/// A coarse class of token refusal, for metrics (details stay in the error body).
pub fn token_error_class(error: &TokenError) -> &'static str {
    match error {
        TokenError::MultipleTokens
        | TokenError::TooLarge { .. }
        | TokenError::NotBearer
        | TokenError::Malformed
        | TokenError::NotJws
        | TokenError::BadEncoding(_)
        | TokenError::NotJsonObject(_)
        | TokenError::DuplicateKey(_)
        | TokenError::InvalidHeader(_) => "format",
        TokenError::AlgorithmMissing
        | TokenError::AlgorithmNone
        | TokenError::AlgorithmUnsupported
        | TokenError::AlgorithmNotAllowed(_)
        | TokenError::ForbiddenHeader(_)
        | TokenError::CriticalHeader => "algorithm",
        TokenError::BadSignature => "signature",
        TokenError::Expired | TokenError::NotYetValid | TokenError::IssuedInFuture => "expired",
        TokenError::IssuerMissing | TokenError::UnknownIssuer => "issuer",
        TokenError::AudienceMismatch => "audience",
        TokenError::UnknownKid
        | TokenError::KeyAlgorithmMismatch
        | TokenError::NoKeyForAlgorithm => "key",
        TokenError::ClaimMissing(_) | TokenError::InvalidClaim(_) => "claims",
        TokenError::NotActive => "inactive",
        TokenError::AddressNotAllowed | TokenError::AlreadyUsed => "emergency",
    }
}

/// Whether this request's bodies are logged: deterministic in the request id, so a retry of
/// the same request gets the same answer and a rate of 0 or 1 is exact.
pub fn sampled(request_id: &str, rate: f64) -> bool {
    if rate <= 0.0 {
        return false;
    }
    if rate >= 1.0 {
        return true;
    }
    // FNV-1a: stable across workers and builds.
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for b in request_id.bytes() {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    let bucket = hash % 1_000_000;
    (bucket as f64) < rate * 1_000_000.0
}

/// One request's audit record. Never a token, cookie, secret or `Authorization` value: only
/// what the gateway decided and who it decided it for. Serialised straight to a string in field
/// order (no intermediate JSON tree): it is written for every request.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AuditRecord {
    pub time_ms: u64,
    /// `login` / `logout` events of the browser flow; `None` is written as `request`.
    #[serde(serialize_with = "event_name")]
    pub event: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// The W3C trace id of the request's `traceparent`, to find its trace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub trace_id: Option<String>,
    pub method: String,
    pub path: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sub: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub provider: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub rule: Option<usize>,
    pub decision: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u32>,
    pub duration_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub model: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub prompt_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub completion_tokens: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client: Option<String>,
    /// How many values of each `data_protection` rule were masked: `{"prompt": {"email": 1},
    /// "answer": {...}}` (never the values).
    #[serde(skip_serializing_if = "serde_json::Map::is_empty")]
    pub masked: serde_json::Map<String, serde_json::Value>,
    /// The `data_protection.deny` pattern that refused the prompt.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub denied_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_body: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub response_body: Option<String>,
}

fn event_name<S: serde::Serializer>(
    event: &Option<&'static str>,
    serializer: S,
) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(event.unwrap_or("request"))
}

impl AuditRecord {
    /// The record as one line of JSON.
    pub fn to_json(&self) -> String {
        // Serialising plain strings and numbers cannot fail; an empty object is the safe answer
        // should it ever.
        serde_json::to_string(self).unwrap_or_else(|_| "{}".to_string())
    }
}

/// At most `max` bytes of a body, cut on a character boundary, for the audit log.
pub fn truncated(body: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(body.get(..body.len().min(max)).unwrap_or_default());
    text.trim_end_matches('\u{fffd}').to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_refusal_has_a_defined_counter() {
        let errors = [
            GatewayError::MissingToken,
            GatewayError::InvalidToken(TokenError::BadSignature),
            GatewayError::InvalidToken(TokenError::Expired),
            GatewayError::InvalidToken(TokenError::AlgorithmNone),
            GatewayError::InvalidToken(TokenError::NotJws),
            GatewayError::InvalidToken(TokenError::UnknownKid),
            GatewayError::InvalidToken(TokenError::AudienceMismatch),
            GatewayError::InvalidToken(TokenError::UnknownIssuer),
            GatewayError::InvalidToken(TokenError::ClaimMissing("sub")),
            GatewayError::InsufficientScope { required: vec![] },
            GatewayError::RateLimitUnavailable { limit: 10 },
            GatewayError::InvalidRequestBody("x".into()),
            GatewayError::RequestTooLarge { limit: 1 },
            GatewayError::JwksUnavailable { retry_after_s: 1 },
            GatewayError::UpstreamError("x".into()),
            GatewayError::CrossSiteRequest,
            GatewayError::ModelNotAllowed("x".into()),
            GatewayError::LoginUnavailable { retry_after_s: 1 },
            GatewayError::Internal("x"),
        ];
        for error in &errors {
            assert!(COUNTERS.contains(&refusal_metric(error)), "{error:?}");
        }
        assert_eq!(
            refusal_metric(&errors[1]),
            "requests_invalid_token_signature"
        );
        assert_eq!(refusal_metric(&errors[2]), "requests_invalid_token_expired");
    }

    #[test]
    fn sampling_is_exact_at_the_ends_and_deterministic() {
        assert!(!sampled("abc", 0.0));
        assert!(sampled("abc", 1.0));
        assert_eq!(sampled("req-1", 0.5), sampled("req-1", 0.5));
        let hits = (0..100_000)
            .filter(|i| sampled(&format!("req-{i}"), 0.01))
            .count();
        assert!((700..1300).contains(&hits), "{hits}");
    }

    #[test]
    fn records_omit_what_is_unknown_and_truncate_bodies() {
        let record = AuditRecord {
            method: "GET".into(),
            path: "/v1/models".into(),
            decision: "allowed",
            ..AuditRecord::default()
        };
        let value: serde_json::Value = serde_json::from_str(&record.to_json()).unwrap();
        assert_eq!(value["decision"], "allowed");
        assert_eq!(value["event"], "request");
        assert!(value.get("sub").is_none());
        assert_eq!(truncated("héllo".as_bytes(), 2), "h");
        assert_eq!(truncated(b"hello", 10), "hello");
    }
}
