//! The configuration document as users write it (see `shared/spec/plugin-config.md` and the
//! README). Unknown fields are refused everywhere: a typo must not silently disable a check.
//! Sections that a later release implements are unknown fields until then.

use serde::Deserialize;

pub use crate::authz::AuthMode;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigDocument {
    #[serde(default)]
    pub providers: Vec<ProviderSection>,
    #[serde(default)]
    pub token: TokenSection,
    #[serde(default)]
    pub rules: Vec<RouteRuleSection>,
    #[serde(default)]
    pub default_rule: RuleSection,
    #[serde(default)]
    pub rate_limits: Vec<RateLimitSection>,
    /// The rate-limit service that counts `scope: "mesh"` limits across Envoy replicas.
    #[serde(default)]
    pub rate_limit_service: Option<RateLimitServiceSection>,
    #[serde(default)]
    pub translate: Option<TranslateSection>,
    #[serde(default)]
    pub oauth2: Option<OAuth2Section>,
    #[serde(default)]
    pub audit: Option<AuditSection>,
    #[serde(default)]
    pub roles: Option<RolesSection>,
    #[serde(default)]
    pub models: Option<ModelsSection>,
    #[serde(default)]
    pub data_protection: Option<DataProtectionSection>,
    #[serde(default)]
    pub cors: Option<CorsSection>,
    #[serde(default)]
    pub emergency_access: Option<EmergencyAccessSection>,
    #[serde(default)]
    pub forward: ForwardSection,
    #[serde(default)]
    pub limits: LimitsSection,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TokenSection {
    /// Header carrying `Bearer <token>`; `null` disables it.
    #[serde(default = "default_token_header")]
    pub header: Option<String>,
    /// Cookie carrying a bare token (the session cookie).
    #[serde(default)]
    pub cookie: Option<String>,
    /// The realm named in `WWW-Authenticate`.
    #[serde(default = "default_realm")]
    pub realm: String,
}

impl Default for TokenSection {
    fn default() -> Self {
        Self {
            header: default_token_header(),
            cookie: None,
            realm: default_realm(),
        }
    }
}

fn default_token_header() -> Option<String> {
    Some("authorization".to_string())
}

fn default_realm() -> String {
    "ai-gateway".to_string()
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleSection {
    #[serde(default)]
    pub auth: AuthMode,
    #[serde(default)]
    pub scopes: Vec<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardSection {
    #[serde(default = "default_user_header")]
    pub user_header: String,
    #[serde(default = "default_scopes_header")]
    pub scopes_header: String,
    #[serde(default)]
    pub strip_authorization: bool,
}

impl Default for ForwardSection {
    fn default() -> Self {
        Self {
            user_header: default_user_header(),
            scopes_header: default_scopes_header(),
            strip_authorization: false,
        }
    }
}

fn default_user_header() -> String {
    "x-user-id".to_string()
}

fn default_scopes_header() -> String {
    "x-user-scopes".to_string()
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LimitsSection {
    #[serde(default = "default_max_request_body_bytes")]
    pub max_request_body_bytes: u64,
    #[serde(default = "default_max_token_bytes")]
    pub max_token_bytes: u64,
}

impl Default for LimitsSection {
    fn default() -> Self {
        Self {
            max_request_body_bytes: default_max_request_body_bytes(),
            max_token_bytes: default_max_token_bytes(),
        }
    }
}

fn default_max_request_body_bytes() -> u64 {
    10 * 1024 * 1024
}

fn default_max_token_bytes() -> u64 {
    8192
}

/// A JWT issuer the gateway trusts.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderSection {
    pub name: String,
    /// Required for JWT providers; optional with `introspection` (then the answer's `iss`,
    /// when it has one, must match).
    #[serde(default)]
    pub issuer: Option<String>,
    /// Required for JWT providers; optional with `introspection`.
    #[serde(default)]
    pub audiences: Option<Vec<String>>,
    /// RFC 7662: tokens of this provider are checked by the IdP instead of by signature.
    #[serde(default)]
    pub introspection: Option<IntrospectionSection>,
    /// Defaults to the algorithms the configured keys can verify.
    #[serde(default)]
    pub algorithms: Option<Vec<String>>,
    #[serde(default)]
    pub hs256_secret: Option<SecretSection>,
    #[serde(default)]
    pub jwks: Option<JwksSection>,
    #[serde(default = "default_clock_skew_s")]
    pub clock_skew_s: u64,
    #[serde(default = "default_scope_claim")]
    pub scope_claim: String,
}

fn default_clock_skew_s() -> u64 {
    30
}

fn default_scope_claim() -> String {
    "scope".to_string()
}

/// A secret: `{"env": "NAME"}` (a host variable passed to the VM) or `{"inline": "..."}`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SecretSection {
    #[serde(default)]
    pub env: Option<String>,
    #[serde(default)]
    pub inline: Option<String>,
}

impl std::fmt::Debug for SecretSection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print an inline secret, not even in a debug dump.
        f.debug_struct("SecretSection")
            .field("env", &self.env)
            .field("inline", &self.inline.as_ref().map(|_| "<redacted>"))
            .finish()
    }
}

/// Where a provider's public keys come from: exactly one of `inline` and `remote`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JwksSection {
    #[serde(default)]
    pub inline: Option<serde_json::Value>,
    #[serde(default)]
    pub remote: Option<RemoteJwksSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteJwksSection {
    pub cluster: String,
    pub authority: String,
    pub path: String,
    #[serde(default = "default_cache_ttl_s")]
    pub cache_ttl_s: u64,
    #[serde(default = "default_min_refresh_interval_s")]
    pub min_refresh_interval_s: u64,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_cache_ttl_s() -> u64 {
    600
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IntrospectionSection {
    pub cluster: String,
    pub authority: String,
    pub path: String,
    pub client_id: String,
    pub client_secret: SecretSection,
    /// `client_secret_basic` (default) or `client_secret_post`.
    #[serde(default)]
    pub client_auth: Option<String>,
    #[serde(default = "default_introspection_cache_ttl_s")]
    pub cache_ttl_s: u64,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    /// `opaque` (default): tokens that are not JWTs; `all`: every bearer token.
    #[serde(default)]
    pub tokens: Option<String>,
    #[serde(default = "default_introspection_cache_slots")]
    pub cache_slots: u32,
    /// The answer must say the token is an access token (`token_type: Bearer`, ...): refresh
    /// and ID tokens are introspected as active too.
    #[serde(default = "default_true")]
    pub require_token_type: bool,
}

fn default_introspection_cache_ttl_s() -> u64 {
    60
}

fn default_introspection_cache_slots() -> u32 {
    1024
}

/// `emergency_access`: break-glass when the IdP is down.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmergencyAccessSection {
    pub allow_ips: Vec<String>,
    pub key: SecretSection,
    pub scopes: Vec<String>,
    #[serde(default = "default_emergency_max_ttl_s")]
    pub max_ttl_s: u64,
    /// As for `ip` rate limits: proxies in front of Envoy whose `x-forwarded-for` is trusted.
    #[serde(default)]
    pub trusted_hops: u32,
    /// The session's cookie when no `token.cookie` / `oauth2.session.cookie` is configured.
    #[serde(default = "default_emergency_cookie")]
    pub cookie: String,
    /// For a local plain-http setup only: the session cookie without `Secure`.
    #[serde(default)]
    pub allow_insecure_cookies: bool,
}

fn default_emergency_max_ttl_s() -> u64 {
    3600
}

fn default_emergency_cookie() -> String {
    "gw_emergency".to_string()
}

fn default_min_refresh_interval_s() -> u64 {
    30
}

fn default_timeout_ms() -> u64 {
    2000
}

/// One entry of `rules`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RouteRuleSection {
    /// What metrics call the rule (its index when unnamed).
    #[serde(default)]
    pub name: Option<String>,
    #[serde(rename = "match")]
    pub matcher: MatchSection,
    #[serde(default)]
    pub auth: AuthMode,
    #[serde(default)]
    pub scopes: Vec<String>,
}

/// A rule's `match`: exactly one of `path`, `prefix`, `template`; optional `methods`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchSection {
    #[serde(default)]
    pub path: Option<String>,
    #[serde(default)]
    pub prefix: Option<String>,
    #[serde(default)]
    pub template: Option<String>,
    #[serde(default)]
    pub methods: Option<Vec<String>>,
}

/// One entry of `rate_limits`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitSection {
    pub name: String,
    /// `sub`, `ip`, `role`, `header:NAME` or `claim:NAME`.
    pub key: String,
    #[serde(default)]
    pub requests: Option<u64>,
    #[serde(default)]
    pub tokens: Option<u64>,
    /// A sliding window's length; exactly one of it and `window`.
    #[serde(default)]
    pub window_s: Option<u64>,
    /// `"month"`: UTC calendar months, counted exactly.
    #[serde(default)]
    pub window: Option<String>,
    #[serde(default, rename = "match")]
    pub matcher: Option<MatchSection>,
    /// Model patterns (as in `models.allow`): only requests for these models are counted.
    #[serde(default)]
    pub models: Option<Vec<String>>,
    /// For `key: "ip"`: how many proxies in front of Envoy append to `x-forwarded-for`.
    #[serde(default)]
    pub trusted_hops: u32,
    /// Shared-data slots (the memory bound): callers beyond share counts.
    #[serde(default)]
    pub slots: Option<u64>,
    /// `local` (this Envoy's shared data, the default) or `mesh` (the rate-limit service).
    #[serde(default)]
    pub scope: Option<String>,
}

/// `rate_limit_service`: Envoy's `ratelimit.v3` gRPC API, called by the gateway itself.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateLimitServiceSection {
    /// The Envoy cluster of the service (HTTP/2).
    pub cluster: String,
    #[serde(default = "default_rate_limit_domain")]
    pub domain: String,
    #[serde(default = "default_rate_limit_timeout_ms")]
    pub timeout_ms: u64,
    /// `deny` (the default: a clear 503) or `allow` when the service gives no answer.
    #[serde(default = "default_rate_limit_failure_mode")]
    pub failure_mode: String,
}

fn default_rate_limit_domain() -> String {
    "ai-gateway".to_string()
}

fn default_rate_limit_timeout_ms() -> u64 {
    500
}

fn default_rate_limit_failure_mode() -> String {
    "deny".to_string()
}

/// OpenAI-format clients in front of an Ollama (or OpenAI-compatible) upstream.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TranslateSection {
    #[serde(default = "default_from")]
    pub from: String,
    /// The section exists for Ollama upstreams; `openai` is the passthrough alternative.
    #[serde(default = "default_to")]
    pub to: String,
    #[serde(default)]
    pub default_model: Option<String>,
    #[serde(default)]
    pub model_aliases: UniqueMap,
    #[serde(default)]
    pub inject_user: bool,
    /// Envoy cluster of the upstream, for answers the gateway fetches itself.
    #[serde(default)]
    pub cluster: Option<String>,
    #[serde(default)]
    pub authority: Option<String>,
    #[serde(default = "default_translate_timeout_ms")]
    pub timeout_ms: u64,
}

fn default_from() -> String {
    "openai".to_string()
}

fn default_to() -> String {
    "ollama".to_string()
}

fn default_translate_timeout_ms() -> u64 {
    120_000
}

/// A JSON object whose keys must be unique (serde's maps keep the last duplicate), in order.
#[derive(Debug, Default)]
pub struct UniqueMap<V = String>(pub Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for UniqueMap<V> {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Visitor<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> serde::de::Visitor<'de> for Visitor<V> {
            type Value = UniqueMap<V>;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("an object")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<UniqueMap<V>, A::Error> {
                let mut entries: Vec<(String, V)> = Vec::new();
                while let Some((key, value)) = map.next_entry::<String, V>()? {
                    if entries.iter().any(|(k, _)| *k == key) {
                        return Err(serde::de::Error::custom(format!("duplicate key `{key}`")));
                    }
                    entries.push((key, value));
                }
                Ok(UniqueMap(entries))
            }
        }
        deserializer.deserialize_map(Visitor(std::marker::PhantomData))
    }
}

/// IdP roles or groups that grant scopes, to bearer tokens of the configured providers.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RolesSection {
    /// Dotted claim paths (`realm_access.roles`), each a string or an array of strings.
    pub claims: Vec<String>,
    /// Role → the scopes it grants.
    pub grants: UniqueMap<Vec<String>>,
}

/// Which models a caller may use.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelsSection {
    /// Tried in order; the first entry whose scopes the caller all holds decides.
    pub allow: Vec<ModelAllowSection>,
}

/// One entry of `models.allow`. Both fields are required: an entry whose `scopes` were left out
/// by mistake would otherwise apply to every caller.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ModelAllowSection {
    pub scopes: Vec<String>,
    pub models: Vec<String>,
}

/// Browser login through the company's OpenID Provider.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OAuth2Section {
    /// `oidc` (the default) or a login preset: `wecom`, `dingtalk`, `feishu`, `github`.
    #[serde(default)]
    pub preset: Option<String>,
    pub cluster: String,
    /// Required with `oidc`; a preset defaults it to its token host.
    #[serde(default)]
    pub authority: Option<String>,
    /// Required with `oidc`; refused with a preset.
    #[serde(default)]
    pub issuer: Option<String>,
    pub client_id: String,
    pub client_secret: SecretSection,
    pub redirect_uri: String,
    /// `oidc`: `openid profile email` by default; a preset has its own default.
    #[serde(default)]
    pub scopes: Option<Vec<String>>,
    /// Presets: the cluster and `:authority` of the user-info calls (default: `cluster`, the
    /// preset's API host).
    #[serde(default)]
    pub api_cluster: Option<String>,
    #[serde(default)]
    pub api_authority: Option<String>,
    /// Presets: its path replaces the preset's user-info path.
    #[serde(default)]
    pub userinfo_endpoint: Option<String>,
    /// `wecom` only (required there): the app's `agentid`.
    #[serde(default)]
    pub agent_id: Option<String>,
    /// `github` only: the user must belong to one of these organizations.
    #[serde(default)]
    pub allowed_orgs: Option<Vec<String>>,
    /// `dingtalk` only (required there): the organization the user picks at login (the token
    /// answer's `corpId`) must be one of these; DingTalk's login is open to any DingTalk user.
    #[serde(default)]
    pub allowed_corp_ids: Option<Vec<String>>,
    /// `feishu` only, optional: the user's `tenant_key` must be one of these (an app-store app
    /// is open to every tenant that installs it).
    #[serde(default)]
    pub allowed_tenants: Option<Vec<String>>,
    #[serde(default = "default_login_path")]
    pub login_path: String,
    #[serde(default = "default_logout_path")]
    pub logout_path: String,
    /// Answers who the session (or bearer token) belongs to, for pages served behind the gateway.
    #[serde(default = "default_userinfo_path")]
    pub userinfo_path: String,
    pub session: SessionSection,
    /// Where the IdP sends the browser after logout.
    #[serde(default)]
    pub post_logout_redirect_uri: Option<String>,
    /// Cookies without `Secure`, for local plain-http demos only.
    #[serde(default)]
    pub allow_insecure_cookies: bool,
    /// Explicit endpoints (absolute URLs) override discovery.
    #[serde(default)]
    pub authorization_endpoint: Option<String>,
    #[serde(default)]
    pub token_endpoint: Option<String>,
    #[serde(default)]
    pub jwks_uri: Option<String>,
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
    #[serde(default = "default_oauth2_timeout_ms")]
    pub timeout_ms: u64,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SessionSection {
    #[serde(default = "default_session_cookie")]
    pub cookie: String,
    pub secret: SecretSection,
    #[serde(default = "default_session_ttl_s")]
    pub ttl_s: u64,
    #[serde(default)]
    pub scopes: Vec<String>,
}

pub(super) fn default_oauth2_scopes() -> Vec<String> {
    vec!["openid".into(), "profile".into(), "email".into()]
}

fn default_login_path() -> String {
    "/oauth2/login".into()
}

fn default_logout_path() -> String {
    "/oauth2/logout".into()
}

fn default_userinfo_path() -> String {
    "/oauth2/userinfo".into()
}

fn default_oauth2_timeout_ms() -> u64 {
    5000
}

fn default_session_cookie() -> String {
    "gw_session".into()
}

fn default_session_ttl_s() -> u64 {
    3600
}

/// The audit trail: one record per request; bodies for a sample.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditSection {
    /// Audit records at all (access-log filter state and the plugin's log line).
    #[serde(default = "default_true")]
    pub records: bool,
    #[serde(default)]
    pub sample_bodies: f64,
    #[serde(default = "default_max_logged_body_bytes")]
    pub max_logged_body_bytes: u64,
    /// The plugin's own `ai-gateway audit {...}` log line per request, besides the access-log
    /// record (off by default: formatting and writing it costs more than the rest of a cached
    /// request, and the access log is the audit channel).
    #[serde(default)]
    pub log_line: bool,
}

fn default_true() -> bool {
    true
}

fn default_max_logged_body_bytes() -> u64 {
    4096
}

/// What must not reach the model, or come back from it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataProtectionSection {
    #[serde(default)]
    pub mask: Vec<MaskSection>,
    /// What replaces a masked value (an entry may have its own).
    #[serde(default = "default_replacement")]
    pub replacement: String,
    /// Mask the model's answers too, streamed ones included.
    #[serde(default)]
    pub responses: bool,
    #[serde(default)]
    pub deny: Vec<DenySection>,
}

fn default_replacement() -> String {
    "[FILTERED]".to_string()
}

/// One `mask` entry: a built-in `type`, or a `name`d `regex`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskSection {
    #[serde(rename = "type")]
    pub kind: Option<String>,
    pub name: Option<String>,
    pub regex: Option<String>,
    pub replacement: Option<String>,
}

/// One `deny` entry: a prompt matching `regex` is refused, naming `name`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenySection {
    pub name: String,
    pub regex: String,
}

/// Browser apps on other origins calling with a bearer token.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CorsSection {
    pub allow_origins: Vec<String>,
    #[serde(default = "default_cors_methods")]
    pub allow_methods: Vec<String>,
    #[serde(default = "default_cors_headers")]
    pub allow_headers: Vec<String>,
    #[serde(default = "default_cors_expose")]
    pub expose_headers: Vec<String>,
    #[serde(default)]
    pub allow_credentials: bool,
    #[serde(default = "default_cors_max_age")]
    pub max_age_s: u64,
}

fn default_cors_methods() -> Vec<String> {
    vec!["GET".into(), "POST".into()]
}

fn default_cors_headers() -> Vec<String> {
    vec!["authorization".into(), "content-type".into()]
}

fn default_cors_expose() -> Vec<String> {
    [
        "x-ratelimit-limit",
        "x-ratelimit-remaining",
        "x-ratelimit-reset",
        "retry-after",
    ]
    .map(String::from)
    .to_vec()
}

fn default_cors_max_age() -> u64 {
    600
}
