//! The configuration document as users write it (see `shared/spec/plugin-config.md` and the
//! README). Unknown fields are refused everywhere: a typo must not silently disable a check.
//! Sections that a later release implements are unknown fields until then.

use serde::Deserialize;

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigDocument {
    #[serde(default)]
    pub token: TokenSection,
    #[serde(default)]
    pub default_rule: RuleSection,
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

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// A valid token is required.
    #[default]
    Required,
    /// A token, if present, must be valid; without one the caller is anonymous.
    Optional,
    /// No token is looked at.
    None,
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
