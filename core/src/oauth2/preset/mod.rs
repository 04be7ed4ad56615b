//! Login presets: OAuth2 providers that speak no OIDC (no discovery, no ID token), each with
//! its own authorize URL, token call, user-info call(s), field names and error shapes. The
//! pure protocol only: [`start`] gives a login's first call, [`advance`] reads each answer and
//! gives the next call or the user; the gateway dispatches the calls and mints the session.
//!
//! Every answer is hostile: parsed strictly (duplicate keys refused), bounded, and a provider's
//! free text (`message`, `error_description`, ...) is never repeated: details name the
//! provider, the step and its error code only.

mod dingtalk;
mod feishu;
mod github;
mod wecom;

#[cfg(test)]
mod tests;

use serde_json::{Map, Value};

use super::query::form_encode;
use crate::json::parse_strict;

/// The longest provider error code repeated in a message.
const MAX_CODE_CHARS: usize = 64;
/// The longest user id, name or e-mail kept from a provider's answer.
const MAX_FIELD_BYTES: usize = 256;
/// The `User-Agent` of the gateway's calls (GitHub refuses calls without one).
pub const USER_AGENT: &str = "ai-gateway";

/// Which provider a preset speaks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    Github,
    Wecom,
    Dingtalk,
    Feishu,
}

impl Preset {
    /// `oauth2.preset`: `Some(None)` for `"oidc"`, `None` for an unknown name.
    pub fn parse(name: &str) -> Option<Option<Preset>> {
        Some(match name {
            "oidc" => None,
            "github" => Some(Self::Github),
            "wecom" => Some(Self::Wecom),
            "dingtalk" => Some(Self::Dingtalk),
            "feishu" => Some(Self::Feishu),
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        match self {
            Self::Github => "github",
            Self::Wecom => "wecom",
            Self::Dingtalk => "dingtalk",
            Self::Feishu => "feishu",
        }
    }

    /// The host of the token call (`oauth2.authority`'s default).
    pub fn token_host(self) -> &'static str {
        match self {
            Self::Github => "github.com",
            Self::Wecom => "qyapi.weixin.qq.com",
            Self::Dingtalk => "api.dingtalk.com",
            Self::Feishu => "open.feishu.cn",
        }
    }

    /// The host of the user-info calls (`oauth2.api_authority`'s default).
    pub fn api_host(self) -> &'static str {
        match self {
            Self::Github => "api.github.com",
            other => other.token_host(),
        }
    }

    pub fn authorization_endpoint(self) -> &'static str {
        match self {
            Self::Github => "https://github.com/login/oauth/authorize",
            Self::Wecom => "https://login.work.weixin.qq.com/wwlogin/sso/login",
            Self::Dingtalk => "https://login.dingtalk.com/oauth2/auth",
            Self::Feishu => "https://accounts.feishu.cn/open-apis/authen/v1/authorize",
        }
    }

    /// The token call's path (WeCom: the app token's, `gettoken`).
    pub fn token_path(self) -> &'static str {
        match self {
            Self::Github => "/login/oauth/access_token",
            Self::Wecom => "/cgi-bin/gettoken",
            Self::Dingtalk => "/v1.0/oauth2/userAccessToken",
            Self::Feishu => "/open-apis/authen/v2/oauth/token",
        }
    }

    /// The user-info call's path (WeCom: the one redeeming the code, `auth/getuserinfo`).
    pub fn userinfo_path(self) -> &'static str {
        match self {
            Self::Github => "/user",
            Self::Wecom => "/cgi-bin/auth/getuserinfo",
            Self::Dingtalk => "/v1.0/contact/users/me",
            Self::Feishu => "/open-apis/authen/v1/user_info",
        }
    }

    /// `oauth2.scopes`' default (`orgs`: GitHub's `allowed_orgs` are set).
    pub fn default_scopes(self, orgs: bool) -> Vec<String> {
        let scopes: &[&str] = match self {
            Self::Github if orgs => &["read:user", "user:email", "read:org"],
            Self::Github => &["read:user", "user:email"],
            // `corpid`: the user picks an organization and the token answer names it
            // (`corpId`), which is checked against `allowed_corp_ids`.
            Self::Dingtalk => &["openid", "corpid"],
            // WeCom's web login takes no scope; Feishu's basic user info needs none.
            Self::Wecom | Self::Feishu => &[],
        };
        scopes.iter().map(|s| s.to_string()).collect()
    }

    /// Whether the provider takes PKCE (`code_challenge`, S256).
    pub fn pkce(self) -> bool {
        matches!(self, Self::Github | Self::Feishu)
    }

    /// The callback's query parameters that may carry the code, in order (DingTalk sends
    /// `authCode`).
    pub fn code_params(self) -> &'static [&'static str] {
        match self {
            Self::Dingtalk => &["authCode", "code"],
            _ => &["code"],
        }
    }
}

/// A preset login's settings, compiled from `oauth2`.
#[derive(Clone, PartialEq, Eq)]
pub struct PresetConfig {
    pub preset: Preset,
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uri: String,
    pub scopes: Vec<String>,
    pub authorization_endpoint: String,
    /// Paths on `authority` (token) and `api_authority` (user info).
    pub token_path: String,
    pub userinfo_path: String,
    pub api_cluster: String,
    pub api_authority: String,
    /// WeCom's `agentid`.
    pub agent_id: Option<String>,
    /// GitHub: the user must belong to one of these organizations (logins, any case).
    pub allowed_orgs: Vec<String>,
    /// DingTalk (never empty there): the organization the user picked at login (the token
    /// answer's `corpId`) must be one of these.
    pub allowed_corp_ids: Vec<String>,
    /// Feishu, when not empty: the user's tenant (user info's `tenant_key`) must be one of
    /// these.
    pub allowed_tenants: Vec<String>,
}

/// The browser's redirect to the provider: `state` always, the PKCE `challenge` where the
/// provider takes it.
pub fn authorization_url(config: &PresetConfig, state: &str, challenge: &str) -> String {
    let scope = config.scopes.join(" ");
    let id = config.client_id.as_str();
    let uri = config.redirect_uri.as_str();
    let mut params: Vec<(&str, &str)> = match config.preset {
        Preset::Github | Preset::Feishu => vec![("client_id", id), ("redirect_uri", uri)],
        Preset::Wecom => vec![
            ("login_type", "CorpApp"),
            ("appid", id),
            ("agentid", config.agent_id.as_deref().unwrap_or("")),
            ("redirect_uri", uri),
        ],
        Preset::Dingtalk => vec![
            ("redirect_uri", uri),
            ("response_type", "code"),
            ("client_id", id),
        ],
    };
    if config.preset != Preset::Wecom && !scope.is_empty() {
        params.push(("scope", &scope));
    }
    params.push(("state", state));
    if config.preset == Preset::Dingtalk {
        params.push(("prompt", "consent"));
        // `corpId` ("the organization the user is to pick", meaningful with scope `corpid`)
        // preselects the only allowed one. A convenience, not a check: the token answer's
        // `corpId` is what is checked.
        if let [corp_id] = config.allowed_corp_ids.as_slice() {
            params.push(("corpId", corp_id));
        }
    }
    if config.preset.pkce() {
        params.push(("code_challenge", challenge));
        params.push(("code_challenge_method", "S256"));
    }
    let endpoint = config.authorization_endpoint.as_str();
    let separator = match endpoint.find('?') {
        None => "?",
        Some(_) if endpoint.ends_with('?') || endpoint.ends_with('&') => "",
        Some(_) => "&",
    };
    format!("{endpoint}{separator}{}", form_encode(&params))
}

/// Where a call goes: the token call's cluster and authority, or the API's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    Token,
    Api,
}

/// One call of a preset login.
#[derive(Clone, PartialEq, Eq)]
pub struct PresetCall {
    pub target: Target,
    pub method: &'static str,
    /// May carry secrets in its query (WeCom): never logged.
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

impl PresetCall {
    fn get(target: Target, path: String, headers: &[(&str, &str)]) -> Self {
        let mut all = vec![("accept".to_string(), "application/json".to_string())];
        all.retain(|(n, _)| !headers.iter().any(|(h, _)| h == n));
        all.extend(headers.iter().map(|(n, v)| (n.to_string(), v.to_string())));
        all.push(("user-agent".to_string(), USER_AGENT.to_string()));
        Self {
            target,
            method: "GET",
            path,
            headers: all,
            body: None,
        }
    }

    fn post(target: Target, path: &str, content_type: &str, body: Vec<u8>) -> Self {
        Self {
            target,
            method: "POST",
            path: path.to_string(),
            headers: vec![
                ("content-type".to_string(), content_type.to_string()),
                ("accept".to_string(), "application/json".to_string()),
                ("user-agent".to_string(), USER_AGENT.to_string()),
            ],
            body: Some(body),
        }
    }
}

/// The signed-in user, as the session records it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PresetUser {
    pub sub: String,
    pub name: Option<String>,
    pub email: Option<String>,
    /// GitHub's `login`: the claim `preferred_username`.
    pub username: Option<String>,
    /// GitHub, with `allowed_orgs`: the user's organizations (the claim `orgs`).
    pub orgs: Option<Vec<String>>,
}

impl PresetUser {
    /// The user's claims, for `roles` (what an ID token would have carried).
    pub fn claims(&self) -> Map<String, Value> {
        let mut claims = Map::new();
        claims.insert("sub".into(), Value::String(self.sub.clone()));
        for (name, value) in [
            ("name", &self.name),
            ("email", &self.email),
            ("preferred_username", &self.username),
        ] {
            if let Some(value) = value {
                claims.insert(name.into(), Value::String(value.clone()));
            }
        }
        if let Some(orgs) = &self.orgs {
            let orgs = orgs.iter().cloned().map(Value::String).collect();
            claims.insert("orgs".into(), Value::Array(orgs));
        }
        claims
    }
}

/// Which call a login waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Step {
    /// The code exchanged for the user's token (GitHub, DingTalk, Feishu).
    Token,
    /// WeCom: the app's token (`gettoken`).
    AppToken,
    /// WeCom: the code exchanged for the user's id (`auth/getuserinfo`).
    UserId,
    /// WeCom: the member's name and e-mail (`user/get`).
    Member,
    /// The user's profile with the user's token.
    User,
    /// GitHub: the user's organizations.
    Orgs,
}

impl Step {
    fn name(self) -> &'static str {
        match self {
            Self::Token => "token",
            Self::AppToken => "gettoken",
            Self::UserId => "getuserinfo",
            Self::Member => "user/get",
            Self::User => "user info",
            Self::Orgs => "organizations",
        }
    }
}

/// A preset login between its calls.
#[derive(Clone, PartialEq, Eq)]
pub struct PresetLogin {
    pub step: Step,
    code: String,
    verifier: String,
    /// The user's access token, or WeCom's app token.
    token: String,
    user: Option<PresetUser>,
    /// WeCom: the app token came from the worker's cache (a rejected one is fetched anew once).
    cached_app_token: bool,
    /// WeCom: a new app token and its lifetime in seconds, for the worker's cache.
    pub fresh_app_token: Option<(String, u64)>,
    /// WeCom: the provider rejected the app token: the worker's cache drops it.
    pub app_token_rejected: bool,
}

/// What comes after an answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Progress {
    Call(PresetCall),
    Done(PresetUser),
}

/// Why a preset login failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PresetError {
    /// The provider answered a step with its error: its (sanitized) code. `bad_code`: the
    /// error says the authorization code is invalid, expired or spent (the browser's fault,
    /// 401, as an OIDC `invalid_grant`); any other refusal is the provider's or the gateway's
    /// configuration's (502).
    Refused {
        step: Step,
        code: String,
        bad_code: bool,
    },
    /// The user is not one the gateway admits (WeCom: not a member; GitHub: in no allowed org;
    /// DingTalk: logged in for an organization not allowed; Feishu: of a tenant not allowed).
    NotAllowed(&'static str),
    /// An answer that cannot be read (not JSON, fields missing).
    Unreadable(Step),
    /// No answer (timeout, connection refused).
    NoAnswer(Step),
}

impl PresetError {
    /// The `LOGIN_FAILED` reply's status.
    pub fn status(&self) -> u32 {
        match self {
            Self::Refused { bad_code: true, .. } => 401,
            Self::Refused { .. } | Self::Unreadable(_) => 502,
            Self::NotAllowed(_) => 403,
            Self::NoAnswer(_) => 504,
        }
    }

    /// The reply's details: the provider, the step, its error code; never its text.
    pub fn details(&self, preset: Preset) -> String {
        let provider = preset.name();
        match self {
            Self::Refused { step, code, .. } => {
                format!("{provider} {} call failed: error {code}", step.name())
            }
            Self::NotAllowed(why) => format!("{provider}: {why}"),
            Self::Unreadable(step) => {
                format!("{provider} {} answer could not be read", step.name())
            }
            Self::NoAnswer(step) => {
                format!("{provider} {} call did not answer in time", step.name())
            }
        }
    }
}

/// A login's first call, once the callback's `state` checked out. `app_token`: WeCom's cached
/// app token, if the worker has a live one.
pub fn start(
    config: &PresetConfig,
    code: &str,
    verifier: &str,
    app_token: Option<&str>,
) -> (PresetLogin, PresetCall) {
    let mut login = PresetLogin {
        step: Step::Token,
        code: code.to_string(),
        verifier: verifier.to_string(),
        token: String::new(),
        user: None,
        cached_app_token: false,
        fresh_app_token: None,
        app_token_rejected: false,
    };
    let call = match config.preset {
        Preset::Github => github::token_call(config, &login),
        Preset::Dingtalk => dingtalk::token_call(config, &login),
        Preset::Feishu => feishu::token_call(config, &login),
        Preset::Wecom => wecom::first_call(config, &mut login, app_token),
    };
    (login, call)
}

/// Reads the answer to the login's current call (`status` `None`: no answer): the next call,
/// the user, or why the login failed.
pub fn advance(
    config: &PresetConfig,
    login: &mut PresetLogin,
    status: Option<u32>,
    body: &[u8],
) -> Result<Progress, PresetError> {
    // Envoy answers a dispatched call that exceeds its timeout with its own 504.
    let Some(status) = status.filter(|s| *s != 504) else {
        return Err(PresetError::NoAnswer(login.step));
    };
    match config.preset {
        Preset::Github => github::advance(config, login, status, body),
        Preset::Wecom => wecom::advance(config, login, status, body),
        Preset::Dingtalk => dingtalk::advance(config, login, status, body),
        Preset::Feishu => feishu::advance(config, login, status, body),
    }
}

/// The answer as a JSON object (duplicate keys refused), or `Unreadable`.
fn object(step: Step, body: &[u8]) -> Result<Map<String, Value>, PresetError> {
    match parse_strict(body) {
        Ok(Value::Object(map)) => Ok(map),
        _ => Err(PresetError::Unreadable(step)),
    }
}

/// A non-empty string field of at most [`MAX_FIELD_BYTES`] without control characters;
/// anything else counts as absent.
fn text(map: &Map<String, Value>, key: &str) -> Option<String> {
    match map.get(key) {
        Some(Value::String(s))
            if !s.trim().is_empty()
                && s.len() <= MAX_FIELD_BYTES
                && !s.chars().any(char::is_control) =>
        {
            Some(s.clone())
        }
        _ => None,
    }
}

/// A token field: non-empty, at most 4 KiB, visible ASCII only (it goes into a header or a
/// query).
fn token(map: &Map<String, Value>, key: &str) -> Option<String> {
    match map.get(key) {
        Some(Value::String(s))
            if !s.is_empty() && s.len() <= 4096 && s.bytes().all(|b| b.is_ascii_graphic()) =>
        {
            Some(s.clone())
        }
        _ => None,
    }
}

/// A provider's error code, safe to repeat: letters, digits, `_.-:` and at most
/// [`MAX_CODE_CHARS`]; anything else is `unrecognized`.
fn error_code(value: Option<&Value>) -> String {
    let raw = match value {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Number(n)) => n.to_string(),
        _ => return "unrecognized".into(),
    };
    let safe = !raw.is_empty()
        && raw.len() <= MAX_CODE_CHARS
        && raw
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-' | b':'));
    if safe {
        raw
    } else {
        "unrecognized".into()
    }
}

/// The error of an HTTP answer with no provider error code in it.
fn http_error(step: Step, status: u32) -> PresetError {
    PresetError::Refused {
        step,
        code: format!("HTTP {status}"),
        bad_code: false,
    }
}

fn success(status: u32) -> bool {
    (200..300).contains(&status)
}

// Debug output never shows the client secret, codes, tokens, or a path that carries a secret.

impl std::fmt::Debug for PresetConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresetConfig")
            .field("preset", &self.preset)
            .field("client_id", &self.client_id)
            .field("redirect_uri", &self.redirect_uri)
            .field("scopes", &self.scopes)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for PresetCall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresetCall")
            .field("target", &self.target)
            .field("method", &self.method)
            .finish_non_exhaustive()
    }
}

impl std::fmt::Debug for PresetLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PresetLogin")
            .field("step", &self.step)
            .finish_non_exhaustive()
    }
}
