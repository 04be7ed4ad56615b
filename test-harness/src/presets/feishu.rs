//! Feishu (飞书) stand-in: the OAuth 2 authorization-code flow with PKCE and user_info.
//!
//! Follows open.feishu.cn:
//! - /document/authentication-management/access-token/obtain-oauth-code 获取授权码: the browser
//!   goes to `GET /open-apis/authen/v1/authorize` (accounts.feishu.cn) with `client_id` (the
//!   App ID), `redirect_uri` (must be registered under 安全设置 -> 重定向URL), `scope`,
//!   `state`, `code_challenge`, `code_challenge_method` (`S256` or `plain`, plain when
//!   omitted); back to `redirect_uri?code=...&state=...`. Codes are valid 5 minutes, single use.
//! - .../get-user-access-token 获取 user_access_token: `POST /open-apis/authen/v2/oauth/token`,
//!   `Content-Type: application/json; charset=utf-8`, body `grant_type=authorization_code`,
//!   `client_id`, `client_secret`, `code`, `redirect_uri` (required when the authorize request
//!   had one), `code_verifier` (required when it had a challenge) -> `{"code":0,
//!   "access_token","expires_in","refresh_token","refresh_token_expires_in","scope",
//!   "token_type":"Bearer"}` (the refresh fields only with `offline_access`); errors are
//!   HTTP 4xx/5xx `{"code","error","error_description"}`.
//! - /document/server-docs/authentication-management/login-state-management/get 获取用户信息:
//!   `GET /open-apis/authen/v1/user_info`, `Authorization: Bearer <user_access_token>` ->
//!   `{"code":0,"msg":"success","data":{...}}`; `user_id` only with the employee-id permission,
//!   `email`/`enterprise_email` only with the email permissions; `tenant_key` the user's
//!   tenant.
//!
//! Unsure (from memory of the error-code tables): 20001 invalid_request, 20002 invalid_client,
//! 20003 invalid_grant (code not found), 20004 invalid_grant (code expired), 20065 (code
//! used), 20071 (redirect_uri mismatch), 20049 (code_verifier check failed), 20036
//! unsupported_grant_type, all HTTP 400 here (invalid_client may be 401 on the real service);
//! user_info's 99991661 (no token) / 99991668 (invalid user token) and their HTTP status.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};

use super::common::{
    chosen_user, error_page, json_object, json_str, path_of, pkce_matches, query, redirect, token,
    with_query, CodeError, Codes, Grant, Params, StandIn,
};
use crate::upstream::{Recorded, Reply};

const CODE_LIFETIME: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
pub struct FeishuUser {
    pub open_id: String,
    pub union_id: String,
    /// `None`: the app lacks the employee-id permission, so user_info omits it.
    pub user_id: Option<String>,
    pub name: String,
    pub en_name: String,
    pub email: Option<String>,
    pub enterprise_email: Option<String>,
    /// The user's tenant (an app-store app is installed by many; user_info names it).
    pub tenant_key: String,
}

pub struct FeishuState {
    pub client_id: String,
    pub client_secret: String,
    pub redirect_uris: Vec<String>,
    pub users: Vec<FeishuUser>,
    pub codes: Codes,
    /// user_access_token -> open_id
    pub tokens: HashMap<String, String>,
    /// The next token call answers 20050 server_error (HTTP 500) whatever it carries.
    pub fail_next_token: bool,
}

pub type Feishu = StandIn<FeishuState>;

pub fn start(
    client_id: &str,
    client_secret: &str,
    redirect_uris: Vec<String>,
    users: Vec<FeishuUser>,
) -> Feishu {
    StandIn::start(
        FeishuState {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            redirect_uris,
            users,
            codes: Codes::new(CODE_LIFETIME),
            tokens: HashMap::new(),
            fail_next_token: false,
        },
        handle,
    )
}

fn handle(state: &mut FeishuState, request: &Recorded) -> Reply {
    match (request.method.as_str(), path_of(&request.path)) {
        ("GET", "/open-apis/authen/v1/authorize") => authorize(state, &query(&request.path)),
        ("POST", "/open-apis/authen/v2/oauth/token") => oauth_token(state, request),
        ("GET", "/open-apis/authen/v1/user_info") => user_info(state, request),
        _ => Reply::json(404, &json!({"code": 404, "msg": "404 page not found"})),
    }
}

fn authorize(state: &mut FeishuState, params: &Params) -> Reply {
    if params.get("client_id") != Some(state.client_id.as_str()) {
        return error_page(400, "20029: client_id is invalid");
    }
    let Some(redirect_uri) = params.get("redirect_uri") else {
        return error_page(400, "redirect_uri missing");
    };
    if !state.redirect_uris.iter().any(|u| u == redirect_uri) {
        return error_page(400, "20029: redirect_uri is not registered for this app");
    }
    let challenge = match params.get("code_challenge") {
        None => None,
        Some(c) => match params.get("code_challenge_method").unwrap_or("plain") {
            m @ ("S256" | "plain") => Some((c.to_string(), m.to_string())),
            _ => return error_page(400, "code_challenge_method must be S256 or plain"),
        },
    };
    let first = state.users.first().map(|u| u.open_id.as_str());
    let Some(user) = chosen_user(params, first).map(str::to_string) else {
        return error_page(400, "no user to log in");
    };
    if !state.users.iter().any(|u| u.open_id == user) {
        return error_page(400, "unknown test user");
    }
    let code = state.codes.issue(Grant {
        user,
        client_id: state.client_id.clone(),
        redirect_uri: Some(redirect_uri.to_string()),
        scope: params.get("scope").unwrap_or("").to_string(),
        challenge,
    });
    let mut pairs = vec![("code", code.as_str())];
    if let Some(s) = params.get("state") {
        pairs.push(("state", s));
    }
    redirect(&with_query(redirect_uri, &pairs))
}

fn token_error(status: u16, code: u32, error: &str, description: &str) -> Reply {
    Reply::json(
        status,
        &json!({"code": code, "error": error, "error_description": description}),
    )
}

fn oauth_token(state: &mut FeishuState, request: &Recorded) -> Reply {
    let is_json = request
        .header("content-type")
        .is_some_and(|v| v.starts_with("application/json"));
    let body = json_object(&request.body).filter(|_| is_json);
    let Some(body) = body else {
        return token_error(
            400,
            20001,
            "invalid_request",
            "The request body must be JSON.",
        );
    };
    for field in ["grant_type", "client_id", "client_secret", "code"] {
        if json_str(&body, field).is_none() {
            return token_error(
                400,
                20001,
                "invalid_request",
                &format!("{field} is required."),
            );
        }
    }
    if json_str(&body, "grant_type") != Some("authorization_code") {
        return token_error(
            400,
            20036,
            "unsupported_grant_type",
            "The grant_type is not supported.",
        );
    }
    if json_str(&body, "client_id") != Some(state.client_id.as_str())
        || json_str(&body, "client_secret") != Some(state.client_secret.as_str())
    {
        return token_error(
            400,
            20002,
            "invalid_client",
            "Client authentication failed.",
        );
    }
    if std::mem::take(&mut state.fail_next_token) {
        return token_error(
            500,
            20050,
            "server_error",
            "An unexpected server error occurred. Please retry your request.",
        );
    }
    let code = json_str(&body, "code").unwrap_or_default();
    let grant = match state.codes.take(code) {
        Ok(grant) => grant,
        Err(CodeError::Unknown) => {
            return token_error(
                400,
                20003,
                "invalid_grant",
                "The authorization code is not found.",
            )
        }
        Err(CodeError::Expired) => {
            return token_error(
                400,
                20004,
                "invalid_grant",
                "The authorization code has expired.",
            )
        }
        Err(CodeError::Used) => {
            return token_error(
                400,
                20065,
                "invalid_grant",
                "The authorization code has been used.",
            )
        }
    };
    if grant.redirect_uri.as_deref() != json_str(&body, "redirect_uri") {
        return token_error(
            400,
            20071,
            "invalid_grant",
            "The redirect_uri does not match.",
        );
    }
    if let Some(challenge) = &grant.challenge {
        if !pkce_matches(challenge, json_str(&body, "code_verifier")) {
            return token_error(400, 20049, "invalid_grant", "The code_verifier is invalid.");
        }
    }
    let access_token = token("u-");
    state.tokens.insert(access_token.clone(), grant.user);
    let mut answer = json!({"code": 0, "access_token": access_token, "expires_in": 7200,
        "scope": grant.scope, "token_type": "Bearer"});
    if grant.scope.split(' ').any(|s| s == "offline_access") {
        answer["refresh_token"] = json!(token("r-"));
        answer["refresh_token_expires_in"] = json!(604800);
    }
    Reply::json(200, &answer)
}

fn user_info(state: &FeishuState, request: &Recorded) -> Reply {
    let presented = request
        .header("authorization")
        .and_then(|v| v.strip_prefix("Bearer "))
        .filter(|v| !v.is_empty());
    let Some(presented) = presented else {
        return Reply::json(
            400,
            &json!({"code": 99991661, "msg": "Missing access token for authorization. Please make a request with token attached."}),
        );
    };
    let user = state
        .tokens
        .get(presented)
        .and_then(|open_id| state.users.iter().find(|u| &u.open_id == open_id));
    let Some(user) = user else {
        return Reply::json(
            400,
            &json!({"code": 99991668, "msg": "Invalid access token for authorization. Please make a request with token attached."}),
        );
    };
    let mut data = json!({"name": user.name, "en_name": user.en_name,
        "avatar_url": "", "avatar_thumb": "", "avatar_middle": "", "avatar_big": "",
        "open_id": user.open_id, "union_id": user.union_id, "tenant_key": user.tenant_key});
    for (key, value) in [
        ("user_id", &user.user_id),
        ("email", &user.email),
        ("enterprise_email", &user.enterprise_email),
    ] {
        if let Some(value) = value {
            data[key] = Value::String(value.clone());
        }
    }
    Reply::json(200, &json!({"code": 0, "msg": "success", "data": data}))
}
