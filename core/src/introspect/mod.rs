//! Opaque access tokens checked by RFC 7662 token introspection: the call to the IdP
//! ([`request`]), what its answer means ([`response`]), and the answers shared by all workers
//! ([`cache`], which also makes a burst of requests with one new token cost one call).

pub mod cache;
pub mod memo;
pub mod request;
pub mod response;
#[cfg(test)]
mod tests;

use crate::oauth2::ClientAuth;

/// The compiled `providers[].introspection` section, with what its provider checks.
#[derive(Clone)]
pub struct Introspection {
    /// Index of its provider in `providers` (audit records and metrics name it).
    pub provider: usize,
    pub cluster: String,
    pub authority: String,
    pub path: String,
    pub client_id: String,
    pub client_secret: String,
    pub client_auth: ClientAuth,
    pub cache_ttl_s: u64,
    pub timeout_ms: u64,
    /// Every bearer token is introspected, JWTs too (`tokens: "all"`); otherwise only those
    /// that are not JWTs.
    pub all_tokens: bool,
    /// Shared-data slots the answers are cached in (a bounded table, whatever the callers),
    /// in this configuration's namespace (set once the whole config is compiled).
    pub cache: cache::Table,
    /// `iss` the answer must have when it has one (empty: not checked).
    pub issuer: String,
    /// When not empty: the answer's `aud` must name one (or, without `aud`, its `client_id`).
    pub audiences: Vec<String>,
    pub scope_claim: String,
    pub clock_skew_s: u64,
    /// The answer must name the token an access token (`token_type` and the like); else an
    /// answer without a kind is taken as one.
    pub require_token_type: bool,
}

impl std::fmt::Debug for Introspection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print the client secret.
        f.debug_struct("Introspection")
            .field("provider", &self.provider)
            .field("cluster", &self.cluster)
            .field("path", &self.path)
            .field("client_id", &self.client_id)
            .field("cache_ttl_s", &self.cache_ttl_s)
            .finish_non_exhaustive()
    }
}

/// Whether `token` is introspected under `settings`: every token with `tokens: "all"`, else
/// those that are not compact JWS (three dot-separated parts).
pub fn introspects(settings: &Introspection, token: &str) -> bool {
    settings.all_tokens || token.split('.').count() != 3
}
