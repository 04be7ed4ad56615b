//! Configuration: parsed from the plugin's JSON document, validated, and compiled once (in
//! `on_configure`) into an immutable [`GatewayConfig`] that every request shares.

mod cors;
mod emergency;
mod introspection;
mod models;
mod oauth2;
mod protect;
mod providers;
mod ratelimits;
mod roles;
mod rules;
mod schema;
mod translate;

pub use oauth2::{rules_can_require, OAuth2Config, FLOW_COOKIE, SESSION_ISSUER};
pub use translate::TranslateSettings;
mod validate;

pub use providers::{resolve_secret, EnvReader, MIN_HS256_SECRET_BYTES};
pub use schema::AuthMode;

use crate::authz::RouteRule;
use crate::jwt::Provider;
pub use crate::jwt::TokenConfig;
use crate::model_metrics::MetricModels;
use crate::models::{ModelAllowList, ModelPattern};
use crate::protect::Protector;
use crate::ratelimit::{LimitKey, RateLimit};
use crate::roles::Roles;

use std::fmt;
use std::rc::Rc;

use schema::{ConfigDocument, ForwardSection, LimitsSection, RuleSection, TokenSection};

/// Largest body the gateway will buffer: bodies live in the VM's linear memory.
pub const MAX_REQUEST_BODY_BYTES_CEILING: u64 = 256 * 1024 * 1024;
/// Bounds of `limits.max_token_bytes` (Envoy's own header limit is 60 KiB by default).
pub const MAX_TOKEN_BYTES_RANGE: std::ops::RangeInclusive<u64> = 64..=65536;

/// The compiled configuration.
#[derive(Debug)]
pub struct GatewayConfig {
    pub providers: Vec<Provider>,
    pub token: TokenConfig,
    /// Tried in order; the first whose match fits decides. None fits: `default_rule`.
    pub rules: Vec<RouteRule>,
    pub default_rule: Rule,
    pub forward: ForwardConfig,
    pub limits: LimitsConfig,
    pub rate_limits: Vec<RateLimit>,
    /// Counts the `scope: "mesh"` limits across every Envoy replica.
    pub rate_limit_service: Option<crate::ratelimit::mesh::Service>,
    /// Claims kept from verified tokens: those `claim:` rate-limit keys need, and with browser
    /// login the `name` and `email` the userinfo endpoint answers with.
    pub kept_claims: Vec<String>,
    pub translate: Option<TranslateSettings>,
    pub oauth2: Option<OAuth2Config>,
    pub audit: AuditConfig,
    /// Roles that grant scopes. Bearer tokens of the configured providers get them at
    /// verification (each such provider shares this), and so do login ID tokens, whose granted
    /// scopes are carried in the session.
    pub roles: Option<Rc<Roles>>,
    /// `models.allow`: which models callers may use; `None`: every model.
    pub models: Option<ModelAllowList>,
    /// `data_protection`: values masked in prompts (and answers), prompts refused by pattern.
    pub data_protection: Option<Rc<Protector>>,
    /// The models per-model metrics name (the others are `other`).
    pub metric_models: MetricModels,
    /// `cors`: preflights answered, `Access-Control-*` on answers to allowed origins.
    pub cors: Option<crate::cors::Cors>,
    /// The provider whose tokens are checked by RFC 7662 introspection.
    pub introspection: Option<crate::introspect::Introspection>,
    /// `emergency_access`: break-glass tokens and the sessions they open.
    pub emergency: Option<crate::emergency::EmergencyAccess>,
}

/// The audit trail's settings.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AuditConfig {
    /// Whether requests get audit records (metrics are kept either way).
    pub records: bool,
    /// Fraction of requests whose bodies are logged (0: none, 1: all).
    pub sample_bodies: f64,
    pub max_logged_body_bytes: usize,
    /// The plugin also writes each record as an info log line.
    pub log_line: bool,
}

/// What a route requires of the caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rule {
    pub auth: AuthMode,
    pub scopes: Vec<String>,
}

/// What the upstream learns about the caller.
#[derive(Debug, Clone)]
pub struct ForwardConfig {
    pub user_header: String,
    pub scopes_header: String,
    pub strip_authorization: bool,
    /// Cookies taken out of `Cookie` before forwarding (the gateway's credentials: login flow
    /// and session, and the token cookie under `strip_authorization`), decided at configure.
    pub stripped_cookies: Vec<String>,
}

#[derive(Debug, Clone, Copy)]
pub struct LimitsConfig {
    pub max_request_body_bytes: u64,
    pub max_token_bytes: usize,
}

/// An invalid configuration: the JSON path of the offending field and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub path: String,
    pub reason: String,
}

impl ConfigError {
    fn new(path: impl Into<String>, reason: impl Into<String>) -> Self {
        Self {
            path: path.into(),
            reason: reason.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "config: {}: {}", self.path, self.reason)
    }
}

impl std::error::Error for ConfigError {}

/// Path used for errors about the document as a whole.
const DOCUMENT: &str = "(document)";

/// Parses, validates and compiles the plugin configuration, reading `{"env": ...}` secrets from
/// the process environment (inside Envoy: the variables in `host_env_keys`).
pub fn load(bytes: &[u8]) -> Result<GatewayConfig, ConfigError> {
    load_with_env(bytes, &|name| std::env::var(name).ok())
}

/// [`load`] with an explicit environment, for tests.
pub fn load_with_env(bytes: &[u8], env: EnvReader<'_>) -> Result<GatewayConfig, ConfigError> {
    let text =
        std::str::from_utf8(bytes).map_err(|_| ConfigError::new(DOCUMENT, "is not valid UTF-8"))?;
    let document: ConfigDocument = if text.trim().is_empty() {
        ConfigDocument::default()
    } else {
        parse(text)?
    };
    compile(document, env)
}

fn parse(text: &str) -> Result<ConfigDocument, ConfigError> {
    // serde would also read a struct from a JSON array: refuse anything but an object first.
    if !text.trim_start().starts_with('{') {
        return Err(ConfigError::new(DOCUMENT, "must be a JSON object"));
    }
    // Deserialised straight from the text (not via `Value`) so duplicate keys are refused.
    let mut deserializer = serde_json::Deserializer::from_str(text);
    let document: ConfigDocument =
        serde_path_to_error::deserialize(&mut deserializer).map_err(|e| {
            let path = display_path(&e.path().to_string());
            describe(path, e.into_inner())
        })?;
    deserializer
        .end()
        .map_err(|e| describe(DOCUMENT.to_string(), e))?;
    Ok(document)
}

fn describe(path: String, error: serde_json::Error) -> ConfigError {
    use serde_json::error::Category;
    if matches!(
        error.classify(),
        Category::Syntax | Category::Eof | Category::Io
    ) {
        return ConfigError::new(DOCUMENT, format!("is not valid JSON: {error}"));
    }
    let message = error.to_string();
    // serde says "unknown field `x`, expected one of ..." with the path already naming `x`.
    if let Some(rest) = message.strip_prefix("unknown field `") {
        let reason = match rest.split_once(", expected") {
            Some((_, expected)) => format!("unknown field (expected{expected})"),
            None => "unknown field".to_string(),
        };
        return ConfigError::new(path, reason);
    }
    // ... but "duplicate field `x`" and "missing field `x`" with the path of the parent.
    if let Some(rest) = message.strip_prefix("missing field `") {
        if let Some((field, _)) = rest.split_once('`') {
            return ConfigError::new(child_path(&path, field), "is required");
        }
    }
    if let Some(rest) = message.strip_prefix("duplicate field `") {
        if let Some((field, _)) = rest.split_once('`') {
            return ConfigError::new(child_path(&path, field), "duplicate field");
        }
    }
    ConfigError::new(path, message)
}

fn child_path(parent: &str, field: &str) -> String {
    if parent == DOCUMENT {
        field.to_string()
    } else {
        format!("{parent}.{field}")
    }
}

fn display_path(path: &str) -> String {
    if path.is_empty() || path == "." {
        DOCUMENT.to_string()
    } else {
        path.to_string()
    }
}

fn compile(doc: ConfigDocument, env: EnvReader<'_>) -> Result<GatewayConfig, ConfigError> {
    let roles = doc
        .roles
        .map(roles::compile_roles)
        .transpose()?
        .map(Rc::new);
    let (mut providers, introspection) = providers::compile_providers(doc.providers, env)?;
    // The configured providers, and below the ID token's (its roles go into the session at
    // login); the session's own provider only reads the roles back from the session's claim,
    // granting nothing: its scopes were settled at login.
    for provider in &mut providers {
        provider.roles = roles.clone();
    }
    let oauth2 = match doc.oauth2 {
        Some(section) => {
            if let Some(i) = providers.iter().position(|p| p.name.starts_with("oauth2-")) {
                return Err(ConfigError::new(
                    format!("providers[{i}].name"),
                    "names starting with \"oauth2-\" are reserved",
                ));
            }
            let (config, mut session, mut id_token) =
                oauth2::compile_oauth2(section, env, providers.len())?;
            id_token.roles = roles.clone();
            session.roles = roles
                .as_deref()
                .map(|r| Rc::new(r.carried_in(crate::oauth2::SESSION_ROLES_CLAIM)));
            providers.push(session);
            providers.push(id_token);
            Some(config)
        }
        None => None,
    };
    let mut token = compile_token(doc.token)?;
    if let Some(oauth2) = &oauth2 {
        match &token.cookie {
            None => token.cookie = Some(oauth2.session_cookie.clone()),
            Some(cookie) if *cookie == oauth2.session_cookie => {}
            Some(_) => {
                return Err(ConfigError::new(
                    "token.cookie",
                    "must be oauth2.session.cookie (or unset) when oauth2 is configured",
                ))
            }
        }
    }
    let emergency = match doc.emergency_access {
        Some(section) => {
            let reserved = crate::emergency::EMERGENCY_PROVIDER;
            if let Some(i) = providers.iter().position(|p| p.name == reserved) {
                return Err(ConfigError::new(
                    format!("providers[{i}].name"),
                    format!("\"{reserved}\" is reserved when emergency_access is configured"),
                ));
            }
            let secure = oauth2.as_ref().map(|o| o.secure_cookies);
            let (access, provider) =
                emergency::compile_emergency(section, env, providers.len(), &mut token, secure)?;
            providers.push(provider);
            Some(access)
        }
        None => None,
    };
    let rules = rules::compile_rules(doc.rules)?;
    let default_rule = compile_rule("default_rule", doc.default_rule)?;
    if providers.is_empty() {
        let needs_token = std::iter::once(("default_rule".to_string(), default_rule.auth))
            .chain(
                rules
                    .iter()
                    .enumerate()
                    .map(|(i, r)| (format!("rules[{i}]"), r.auth)),
            )
            .find(|(_, auth)| *auth != AuthMode::None);
        if let Some((rule, auth)) = needs_token {
            return Err(ConfigError::new(
                "providers",
                format!(
                    "at least one provider is needed: {rule}.auth is \"{}\"",
                    auth.name()
                ),
            ));
        }
    }
    let mut forward = compile_forward(doc.forward, &token)?;
    if let Some(oauth2) = &oauth2 {
        forward.stripped_cookies = vec![FLOW_COOKIE.to_string(), oauth2.session_cookie.clone()];
    }
    if let Some(access) = &emergency {
        // A break-glass session never reaches the upstream.
        if !forward.stripped_cookies.contains(&access.cookie) {
            forward.stripped_cookies.push(access.cookie.clone());
        }
    }
    if let (true, Some(cookie)) = (forward.strip_authorization, &token.cookie) {
        if !forward.stripped_cookies.contains(cookie) {
            forward.stripped_cookies.push(cookie.clone());
        }
    }
    let limits = compile_limits(doc.limits)?;
    let rate_limit_service = doc
        .rate_limit_service
        .map(ratelimits::compile_service)
        .transpose()?;
    let rate_limits = ratelimits::compile_rate_limits(
        doc.rate_limits,
        !providers.is_empty(),
        roles.as_deref(),
        rate_limit_service.is_some(),
    )?;
    let translate = doc
        .translate
        .map(translate::compile_translate)
        .transpose()?;
    let models = doc.models.map(models::compile_models).transpose()?;
    let data_protection = doc
        .data_protection
        .map(protect::compile_data_protection)
        .transpose()?
        .map(Rc::new);
    let cors = doc.cors.map(cors::compile_cors).transpose()?;
    let audit = compile_audit(doc.audit)?;
    let mut kept_claims: Vec<String> = Vec::new();
    for limit in &rate_limits {
        if let LimitKey::Claim(name) = &limit.key {
            if !kept_claims.contains(name) {
                kept_claims.push(name.clone());
            }
        }
    }
    if oauth2.is_some() {
        // `sid`: the session's id, the upstream's `session_id` for session callers.
        for name in ["name", "email", "sid"] {
            if !kept_claims.iter().any(|kept| kept == name) {
                kept_claims.push(name.to_string());
            }
        }
    }
    let mut introspection = introspection;
    if let Some(settings) = &mut introspection {
        settings.cache.namespace =
            introspection::cache_namespace(settings, roles.as_deref(), &kept_claims);
    }
    let metric_models = metric_models(translate.as_ref(), models.as_ref(), &rate_limits);
    Ok(GatewayConfig {
        providers,
        token,
        rules,
        default_rule,
        forward,
        limits,
        rate_limits,
        rate_limit_service,
        kept_claims,
        translate,
        oauth2,
        audit,
        roles,
        models,
        data_protection,
        metric_models,
        cors,
        introspection,
        emergency,
    })
}

/// Every model the configuration names: the ones per-model metrics label by name.
fn metric_models(
    translate: Option<&TranslateSettings>,
    models: Option<&ModelAllowList>,
    rate_limits: &[RateLimit],
) -> MetricModels {
    let mut patterns: Vec<ModelPattern> = Vec::new();
    if let Some(t) = translate {
        let named = t.config.default_model.iter().chain(
            t.config
                .model_aliases
                .iter()
                .flat_map(|(from, to)| [from, to]),
        );
        patterns.extend(named.filter_map(|name| ModelPattern::parse(name).ok()));
    }
    if let Some(models) = models {
        patterns.extend(models.patterns().cloned());
    }
    for limit in rate_limits {
        patterns.extend(limit.models.iter().flatten().cloned());
    }
    MetricModels::new(&patterns)
}

fn compile_audit(section: Option<schema::AuditSection>) -> Result<AuditConfig, ConfigError> {
    let Some(section) = section else {
        return Ok(AuditConfig {
            records: true,
            sample_bodies: 0.0,
            max_logged_body_bytes: 4096,
            log_line: false,
        });
    };
    if !(0.0..=1.0).contains(&section.sample_bodies) {
        return Err(ConfigError::new(
            "audit.sample_bodies",
            "must be between 0 and 1",
        ));
    }
    if section.max_logged_body_bytes > 1024 * 1024 {
        return Err(ConfigError::new(
            "audit.max_logged_body_bytes",
            "must be at most 1048576",
        ));
    }
    if !section.records && section.sample_bodies > 0.0 {
        return Err(ConfigError::new(
            "audit.sample_bodies",
            "bodies are logged in audit records, which `records: false` turns off",
        ));
    }
    if !section.records && section.log_line {
        return Err(ConfigError::new(
            "audit.log_line",
            "the log line writes audit records, which `records: false` turns off",
        ));
    }
    Ok(AuditConfig {
        log_line: section.log_line,
        records: section.records,
        sample_bodies: section.sample_bodies,
        max_logged_body_bytes: usize::try_from(section.max_logged_body_bytes).unwrap_or(4096),
    })
}

fn compile_token(section: TokenSection) -> Result<TokenConfig, ConfigError> {
    let header = section
        .header
        .map(|h| validate::header_name(&h).map_err(|r| ConfigError::new("token.header", r)))
        .transpose()?;
    let cookie = section
        .cookie
        .map(|c| validate::cookie_name(&c).map_err(|r| ConfigError::new("token.cookie", r)))
        .transpose()?;
    if header.is_none() && cookie.is_none() {
        return Err(ConfigError::new(
            "token",
            "needs a header or a cookie to read tokens from",
        ));
    }
    validate::quoted_text(&section.realm).map_err(|r| ConfigError::new("token.realm", r))?;
    Ok(TokenConfig {
        header,
        cookie,
        realm: section.realm,
    })
}

fn compile_rule(path: &str, section: RuleSection) -> Result<Rule, ConfigError> {
    let mut scopes: Vec<String> = Vec::with_capacity(section.scopes.len());
    for (i, scope) in section.scopes.into_iter().enumerate() {
        validate::scope_token(&scope)
            .map_err(|r| ConfigError::new(format!("{path}.scopes[{i}]"), r))?;
        if !scopes.contains(&scope) {
            scopes.push(scope);
        }
    }
    if section.auth == AuthMode::None && !scopes.is_empty() {
        return Err(ConfigError::new(
            format!("{path}.scopes"),
            "scopes cannot be checked when auth is \"none\"",
        ));
    }
    Ok(Rule {
        auth: section.auth,
        scopes,
    })
}

fn compile_forward(
    section: ForwardSection,
    token: &TokenConfig,
) -> Result<ForwardConfig, ConfigError> {
    let identity_header = |path: &str, value: &str| -> Result<String, ConfigError> {
        let name = validate::header_name(value).map_err(|r| ConfigError::new(path, r))?;
        if validate::reserved_header(&name) || token.header.as_deref() == Some(name.as_str()) {
            return Err(ConfigError::new(
                path,
                format!("`{name}` is reserved and cannot carry caller identity"),
            ));
        }
        Ok(name)
    };
    let user_header = identity_header("forward.user_header", &section.user_header)?;
    let scopes_header = identity_header("forward.scopes_header", &section.scopes_header)?;
    if user_header == scopes_header {
        return Err(ConfigError::new(
            "forward.scopes_header",
            "must differ from forward.user_header",
        ));
    }
    Ok(ForwardConfig {
        user_header,
        scopes_header,
        strip_authorization: section.strip_authorization,
        stripped_cookies: Vec::new(),
    })
}

fn compile_limits(section: LimitsSection) -> Result<LimitsConfig, ConfigError> {
    if !(1..=MAX_REQUEST_BODY_BYTES_CEILING).contains(&section.max_request_body_bytes) {
        return Err(ConfigError::new(
            "limits.max_request_body_bytes",
            format!("must be between 1 and {MAX_REQUEST_BODY_BYTES_CEILING}"),
        ));
    }
    if !MAX_TOKEN_BYTES_RANGE.contains(&section.max_token_bytes) {
        return Err(ConfigError::new(
            "limits.max_token_bytes",
            format!(
                "must be between {} and {}",
                MAX_TOKEN_BYTES_RANGE.start(),
                MAX_TOKEN_BYTES_RANGE.end()
            ),
        ));
    }
    Ok(LimitsConfig {
        max_request_body_bytes: section.max_request_body_bytes,
        // In range above, so this fits a 32-bit usize too.
        max_token_bytes: usize::try_from(section.max_token_bytes).unwrap_or(65536),
    })
}

#[cfg(test)]
mod tests;
