//! Compiles `oauth2`: the login flow's settings, plus two internal providers: the gateway's own
//! sessions (HS256 tokens in the session cookie, verified like any token) and the IdP's ID
//! tokens (verified only in the login callback, never accepted as a bearer token).

mod preset;

use super::providers::{resolve_secret, EnvReader, MIN_HS256_SECRET_BYTES};
use super::schema::{default_oauth2_scopes, OAuth2Section};
use super::validate;
use super::ConfigError;
use crate::jwt::{Algorithm, KeySource, Provider, Purpose, RemoteJwks};
use crate::oauth2::{url_origin, url_path, ClientAuth, Endpoints, PresetConfig};

/// The issuer of the gateway's session tokens.
pub const SESSION_ISSUER: &str = "urn:ai-gateway:session";
/// The short-lived cookie carrying the login flow's state between login and callback.
pub const FLOW_COOKIE: &str = "gw_oauth2_flow";

#[derive(Debug, Clone)]
pub struct OAuth2Config {
    pub cluster: String,
    pub authority: String,
    pub issuer: String,
    /// A login preset (`oauth2.preset` other than `oidc`): no discovery, no ID token.
    pub preset: Option<PresetConfig>,
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uri: String,
    /// The path of `redirect_uri`: where the IdP sends the browser back.
    pub callback_path: String,
    /// The origin of `redirect_uri`: what cross-site checks compare `Origin` with.
    pub origin: String,
    pub scopes: Vec<String>,
    pub login_path: String,
    pub logout_path: String,
    pub userinfo_path: String,
    pub session_cookie: String,
    pub session_secret: Vec<u8>,
    pub session_ttl_s: u64,
    pub session_scopes: Vec<String>,
    pub secure_cookies: bool,
    pub post_logout_redirect_uri: Option<String>,
    pub authorization_endpoint: Option<String>,
    pub token_endpoint: Option<String>,
    pub end_session_endpoint: Option<String>,
    pub timeout_ms: u64,
    /// Index of the internal session provider in `providers`.
    pub session_provider: usize,
    /// Index of the internal ID-token provider in `providers`.
    pub id_token_provider: usize,
}

impl OAuth2Config {
    /// The IdP's endpoints: explicit ones from the config, the rest from the discovery document
    /// (`discovered`). `None` until the authorization and token endpoints are known. The JWKS
    /// URI, `end_session_endpoint` (unless explicit) and the client authentication method come
    /// only from discovery, which is therefore fetched even when both endpoints are explicit.
    pub fn endpoints(&self, discovered: Option<&Endpoints>) -> Option<Endpoints> {
        let pick = |explicit: &Option<String>, found: Option<&String>| {
            explicit.clone().or_else(|| found.cloned())
        };
        Some(Endpoints {
            issuer: self.issuer.clone(),
            authorization_endpoint: pick(
                &self.authorization_endpoint,
                discovered.map(|d| &d.authorization_endpoint),
            )?,
            token_endpoint: pick(&self.token_endpoint, discovered.map(|d| &d.token_endpoint))?,
            jwks_uri: discovered.map(|d| d.jwks_uri.clone()).unwrap_or_default(),
            end_session_endpoint: self
                .end_session_endpoint
                .clone()
                .or_else(|| discovered.and_then(|d| d.end_session_endpoint.clone())),
            token_auth: discovered.map_or(ClientAuth::Basic, |d| d.token_auth),
        })
    }
}

/// Compiles the section; returns it and the two internal providers (session, ID token).
pub fn compile_oauth2(
    s: OAuth2Section,
    env: EnvReader<'_>,
    next_provider_index: usize,
) -> Result<(OAuth2Config, Provider, Provider), ConfigError> {
    let nonempty = |field: &str, value: &str| -> Result<(), ConfigError> {
        if value.trim().is_empty() {
            Err(ConfigError::new(
                format!("oauth2.{field}"),
                "must not be empty",
            ))
        } else {
            Ok(())
        }
    };
    let preset = preset::preset_of(&s)?;
    preset::check_fields(&s, preset)?;
    let required = |field: &str| ConfigError::new(format!("oauth2.{field}"), "is required");
    nonempty("cluster", &s.cluster)?;
    let authority = match (&s.authority, preset) {
        (Some(authority), _) => authority.clone(),
        (None, Some(preset)) => preset.token_host().to_string(),
        (None, None) => return Err(required("authority")),
    };
    nonempty("authority", &authority)?;
    nonempty("client_id", &s.client_id)?;
    let issuer = match (&s.issuer, preset) {
        // Never matched by a token: presets have no ID token (the provider only keeps the
        // indices of the internal providers fixed).
        (_, Some(preset)) => format!("urn:ai-gateway:preset:{}", preset.name()),
        (None, None) => return Err(required("issuer")),
        (Some(issuer), None) => issuer.clone(),
    };
    if preset.is_none() && !(issuer.starts_with("https://") || issuer.starts_with("http://")) {
        return Err(ConfigError::new("oauth2.issuer", "must be an http(s) URL"));
    }
    let with_orgs = s.allowed_orgs.as_ref().is_some_and(|o| !o.is_empty());
    let scopes = match (&s.scopes, preset) {
        (Some(scopes), _) => scopes.clone(),
        (None, Some(preset)) => preset.default_scopes(with_orgs),
        (None, None) => default_oauth2_scopes(),
    };
    let callback_path = url_path(&s.redirect_uri)
        .map(|p| p.split('?').next().unwrap_or("").to_string())
        .filter(|p| p.starts_with('/'))
        .ok_or_else(|| {
            ConfigError::new("oauth2.redirect_uri", "must be an absolute http(s) URL")
        })?;
    let origin = url_origin(&s.redirect_uri).ok_or_else(|| {
        ConfigError::new("oauth2.redirect_uri", "must be an absolute http(s) URL")
    })?;
    if !s.redirect_uri.starts_with("https://") && !s.allow_insecure_cookies {
        return Err(ConfigError::new(
            "oauth2.redirect_uri",
            "must be https (or set allow_insecure_cookies for a local plain-http demo)",
        ));
    }
    for (field, path) in [
        ("login_path", &s.login_path),
        ("logout_path", &s.logout_path),
        ("userinfo_path", &s.userinfo_path),
    ] {
        if !path.starts_with('/') || path.contains(['?', '#']) {
            return Err(ConfigError::new(
                format!("oauth2.{field}"),
                "must be an absolute path",
            ));
        }
    }
    if s.login_path == s.logout_path
        || s.login_path == callback_path
        || s.logout_path == callback_path
    {
        return Err(ConfigError::new(
            "oauth2.logout_path",
            "login, logout and callback paths must differ",
        ));
    }
    if [&s.login_path, &s.logout_path, &callback_path].contains(&&s.userinfo_path) {
        return Err(ConfigError::new(
            "oauth2.userinfo_path",
            "must differ from the login, logout and callback paths",
        ));
    }
    for (i, scope) in scopes.iter().enumerate() {
        validate::scope_token(scope)
            .map_err(|r| ConfigError::new(format!("oauth2.scopes[{i}]"), r))?;
    }
    if preset.is_none() && !scopes.iter().any(|scope| scope == "openid") {
        return Err(ConfigError::new(
            "oauth2.scopes",
            "must include \"openid\" (the ID token is validated)",
        ));
    }
    for (i, scope) in s.session.scopes.iter().enumerate() {
        validate::scope_token(scope)
            .map_err(|r| ConfigError::new(format!("oauth2.session.scopes[{i}]"), r))?;
    }
    let client_secret = resolve_secret(&s.client_secret, "oauth2.client_secret", env)?;
    nonempty("client_secret", &client_secret)?;
    let session_secret = resolve_secret(&s.session.secret, "oauth2.session.secret", env)?;
    if session_secret.len() < MIN_HS256_SECRET_BYTES {
        return Err(ConfigError::new(
            "oauth2.session.secret",
            format!(
                "is {} bytes; at least {MIN_HS256_SECRET_BYTES} are required",
                session_secret.len()
            ),
        ));
    }
    let session_cookie = validate::cookie_name(&s.session.cookie)
        .map_err(|r| ConfigError::new("oauth2.session.cookie", r))?;
    if !(60..=30 * 86_400).contains(&s.session.ttl_s) {
        return Err(ConfigError::new(
            "oauth2.session.ttl_s",
            "must be between 60 and 2592000",
        ));
    }
    if !(500..=60_000).contains(&s.timeout_ms) {
        return Err(ConfigError::new(
            "oauth2.timeout_ms",
            "must be between 500 and 60000",
        ));
    }
    let endpoint = |field: &str, value: Option<String>| -> Result<Option<String>, ConfigError> {
        match value {
            Some(url) if url_path(&url).is_none() => Err(ConfigError::new(
                format!("oauth2.{field}"),
                "must be an absolute http(s) URL",
            )),
            other => Ok(other),
        }
    };
    let authorization_endpoint =
        endpoint("authorization_endpoint", s.authorization_endpoint.clone())?;
    let token_endpoint = endpoint("token_endpoint", s.token_endpoint.clone())?;
    let end_session_endpoint = endpoint("end_session_endpoint", s.end_session_endpoint.clone())?;
    let jwks_path = match endpoint("jwks_uri", s.jwks_uri.clone())? {
        Some(url) => url_path(&url).unwrap_or_default(),
        None => String::new(),
    };
    let preset = preset
        .map(|preset| {
            preset::compile_preset(
                &s,
                preset,
                &client_secret,
                &scopes,
                authorization_endpoint.as_deref(),
            )
        })
        .transpose()?;
    // A preset's endpoints are its own (`preset`): none for the OIDC flow.
    let (authorization_endpoint, token_endpoint) = match preset {
        Some(_) => (None, None),
        None => (authorization_endpoint, token_endpoint),
    };

    let session_provider = Provider {
        name: "oauth2-session".into(),
        purpose: Purpose::Api,
        issuer: SESSION_ISSUER.into(),
        audiences: vec![s.client_id.clone()],
        algorithms: vec![Algorithm::HS256],
        hs256: Some(jwt_simple::prelude::HS256Key::from_bytes(
            session_secret.as_bytes(),
        )),
        keys: KeySource::None,
        clock_skew_s: 30,
        scope_claim: "scope".into(),
        roles: None,
    };
    let id_token_provider = Provider {
        name: "oauth2-id-token".into(),
        purpose: Purpose::IdToken,
        issuer: issuer.clone(),
        audiences: vec![s.client_id.clone()],
        algorithms: vec![Algorithm::RS256, Algorithm::ES256, Algorithm::EdDSA],
        hs256: None,
        // A preset has no ID token: no keys are fetched for it.
        keys: match preset {
            Some(_) => KeySource::None,
            None => KeySource::Remote(RemoteJwks {
                cluster: s.cluster.clone(),
                authority: authority.clone(),
                path: jwks_path,
                cache_ttl_s: 600,
                min_refresh_interval_s: 30,
                timeout_ms: s.timeout_ms,
            }),
        },
        clock_skew_s: 60,
        scope_claim: "scope".into(),
        roles: None,
    };
    let config = OAuth2Config {
        cluster: s.cluster,
        authority,
        issuer,
        preset,
        client_id: s.client_id,
        client_secret,
        redirect_uri: s.redirect_uri,
        callback_path,
        origin,
        scopes,
        login_path: s.login_path,
        logout_path: s.logout_path,
        userinfo_path: s.userinfo_path,
        session_cookie,
        session_secret: session_secret.into_bytes(),
        session_ttl_s: s.session.ttl_s,
        session_scopes: s.session.scopes,
        secure_cookies: !s.allow_insecure_cookies,
        post_logout_redirect_uri: s.post_logout_redirect_uri,
        authorization_endpoint,
        token_endpoint,
        end_session_endpoint,
        timeout_ms: s.timeout_ms,
        session_provider: next_provider_index,
        id_token_provider: next_provider_index + 1,
    };
    Ok((config, session_provider, id_token_provider))
}

/// Whether the gateway's rules can require `scope` (`default_rule.scopes`, or a rule's scope
/// pattern with its variables matching any text): an IdP-granted scope belongs in the session
/// only then (see [`crate::oauth2::session_scopes`]).
pub fn rules_can_require(config: &super::GatewayConfig, scope: &str) -> bool {
    config.default_rule.scopes.iter().any(|s| s == scope)
        || config
            .rules
            .iter()
            .flat_map(|rule| rule.scopes.iter())
            .any(|pattern| pattern.could_require(scope))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth2::session_scopes;

    fn config() -> super::super::GatewayConfig {
        let text = r#"{
            "rules": [
                {"match": {"path": "/v1/chat/completions"}, "scopes": ["chat:write"]},
                {"match": {"template": "/v1/history/{team}/**"}, "scopes": ["history:{team}"]}
            ],
            "default_rule": {"auth": "required", "scopes": ["chat:read"]},
            "oauth2": {"cluster": "idp", "authority": "idp", "issuer": "https://idp.test",
                "client_id": "web", "client_secret": {"inline": "s"},
                "redirect_uri": "https://chat.test/oauth2/callback",
                "session": {"secret": {"inline": "0123456789abcdef0123456789abcdef"},
                            "scopes": ["chat:read"]}}
        }"#;
        super::super::load(text.as_bytes()).unwrap()
    }

    #[test]
    fn explicit_endpoints_override_and_discovery_fills_the_rest() {
        let mut config = config();
        let Some(oauth2) = config.oauth2.as_mut() else {
            panic!("oauth2 configured");
        };
        // Nothing explicit, nothing discovered: no login yet.
        assert_eq!(oauth2.endpoints(None), None);
        oauth2.authorization_endpoint = Some("https://login.test/authorize".into());
        oauth2.token_endpoint = Some("https://login.test/token".into());
        // Both explicit: the flow can be built, but the keys' location, logout and the
        // client authentication method are still unknown until discovery arrives.
        let before = oauth2.endpoints(None).unwrap();
        assert_eq!(before.jwks_uri, "");
        assert_eq!(before.end_session_endpoint, None);
        let discovered = Endpoints {
            issuer: "https://idp.test".into(),
            authorization_endpoint: "https://idp.test/auth".into(),
            token_endpoint: "https://idp.test/token".into(),
            jwks_uri: "https://idp.test/jwks".into(),
            end_session_endpoint: Some("https://idp.test/session/end".into()),
            token_auth: ClientAuth::Post,
        };
        let merged = oauth2.endpoints(Some(&discovered)).unwrap();
        assert_eq!(
            merged.authorization_endpoint,
            "https://login.test/authorize"
        );
        assert_eq!(merged.token_endpoint, "https://login.test/token");
        assert_eq!(merged.jwks_uri, "https://idp.test/jwks");
        assert_eq!(
            merged.end_session_endpoint.as_deref(),
            Some("https://idp.test/session/end")
        );
        assert_eq!(merged.token_auth, ClientAuth::Post);
        oauth2.end_session_endpoint = Some("https://login.test/logout".into());
        assert_eq!(
            oauth2
                .endpoints(Some(&discovered))
                .unwrap()
                .end_session_endpoint
                .as_deref(),
            Some("https://login.test/logout")
        );
    }

    #[test]
    fn scopes_the_rules_can_require() {
        let config = config();
        for ours in ["chat:write", "chat:read", "history:team-a", "history:x"] {
            assert!(rules_can_require(&config, ours), "{ours}");
        }
        for not_ours in [
            "openid",
            "email",
            "history:",
            "chat:writer",
            "CHAT:WRITE",
            "",
        ] {
            assert!(!rules_can_require(&config, not_ours), "{not_ours}");
        }
    }

    /// What the callback computes: the session keeps the granted scopes the rules can require,
    /// else the configured default.
    #[test]
    fn session_scopes_from_the_rules() {
        let config = config();
        let Some(oauth2) = config.oauth2.as_ref() else {
            panic!("oauth2 configured");
        };
        let ours = |scope: &str| rules_can_require(&config, scope);
        assert_eq!(
            session_scopes(
                Some("openid email chat:write history:team-a chat:write"),
                &ours,
                &oauth2.session_scopes
            ),
            vec!["chat:write".to_string(), "history:team-a".to_string()]
        );
        assert_eq!(
            session_scopes(Some("openid profile"), &ours, &oauth2.session_scopes),
            vec!["chat:read".to_string()]
        );
        assert_eq!(
            session_scopes(None, &ours, &oauth2.session_scopes),
            vec!["chat:read".to_string()]
        );
    }
}
