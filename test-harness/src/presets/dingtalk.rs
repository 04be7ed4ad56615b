//! DingTalk (钉钉) stand-in: the new-style (v1.0 API) login of an org app.
//!
//! Follows open.dingtalk.com:
//! - /document/orgapp/tutorial-obtaining-user-personal-information: the browser goes to
//!   `GET /oauth2/auth` (login.dingtalk.com) with `redirect_uri`, `response_type=code`,
//!   `client_id` (the AppKey), `scope=openid` (optionally `openid corpid`), `state`,
//!   `prompt=consent` (listed as required), and with `corpid` optionally `corpId` (the
//!   organization the user is to pick; it must be one the user belongs to) and `org_type`;
//!   after consent the browser goes to `redirect_uri?authCode=xxxx&state=xxxx`. The code
//!   arrives as `authCode`, not `code`. The login is open to any DingTalk user, of any
//!   organization or none.
//! - /document/orgapp/obtain-user-token: `POST /v1.0/oauth2/userAccessToken` (api.dingtalk.com),
//!   JSON `{"clientId","clientSecret","code","grantType":"authorization_code"}` ->
//!   `{"accessToken","refreshToken","expireIn":7200,"corpId"}`, `corpId` (the organization
//!   the user picked) only when the scope had `corpid`.
//! - /document/orgapp/dingtalk-retrieve-user-information: `GET /v1.0/contact/users/me` with the
//!   header `x-acs-dingtalk-access-token` -> `{"nick","unionId","openId","email","mobile",
//!   "avatarUrl","stateCode"}`.
//!   Errors of the v1.0 API: HTTP 400/401 `{"code","message","requestid"}`.
//!
//! Unsure: the exact error `code` strings and statuses per failure (the stand-in uses
//! `InvalidAuthentication` for bad credentials, codes and tokens, `MissingParameter` /
//! `InvalidParameter` for malformed requests); whether the code is bound to the redirect URI
//! (the token call does not carry one, so it cannot be checked); the code lifetime (5 minutes
//! assumed, single use); what DingTalk does with a preselected `corpId` the user is not in
//! (the stand-in lets the user pick one of their own: the first) and with `corpid` for a
//! user in no organization (the stand-in answers without `corpId`).

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};

use super::common::{
    chosen_user, error_page, json_object, json_str, path_of, query, redirect, token, with_query,
    Codes, Grant, Params, StandIn,
};
use crate::upstream::{Recorded, Reply};

const CODE_LIFETIME: Duration = Duration::from_secs(300);

#[derive(Debug, Clone)]
pub struct DingTalkUser {
    pub union_id: String,
    pub open_id: String,
    pub nick: String,
    pub email: Option<String>,
    pub mobile: String,
    /// The organizations (corpIds) the user belongs to; empty: a personal account.
    pub corp_ids: Vec<String>,
}

/// The org app (client), its redirect URLs, the people and what happened.
pub struct DingTalkState {
    pub client_id: String,
    pub client_secret: String,
    /// The app's registered redirect URLs (安全设置 -> 重定向URL).
    pub redirect_uris: Vec<String>,
    pub users: Vec<DingTalkUser>,
    pub codes: Codes,
    /// authCode -> the organization the user picked (scope `corpid` only)
    pub picked_corps: HashMap<String, String>,
    /// access token -> unionId
    pub tokens: HashMap<String, String>,
    /// The next userAccessToken call is refused as an invalid code.
    pub fail_next_token: bool,
}

pub type DingTalk = StandIn<DingTalkState>;

pub fn start(
    client_id: &str,
    client_secret: &str,
    redirect_uris: Vec<String>,
    users: Vec<DingTalkUser>,
) -> DingTalk {
    StandIn::start(
        DingTalkState {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            redirect_uris,
            users,
            codes: Codes::new(CODE_LIFETIME),
            picked_corps: HashMap::new(),
            tokens: HashMap::new(),
            fail_next_token: false,
        },
        handle,
    )
}

fn handle(state: &mut DingTalkState, request: &Recorded) -> Reply {
    match (request.method.as_str(), path_of(&request.path)) {
        ("GET", "/oauth2/auth") => auth(state, &query(&request.path)),
        ("POST", "/v1.0/oauth2/userAccessToken") => user_access_token(state, request),
        ("GET", "/v1.0/contact/users/me") => users_me(state, request),
        _ => api_error(404, "NotFound", "the API does not exist"),
    }
}

fn api_error(status: u16, code: &str, message: &str) -> Reply {
    Reply::json(
        status,
        &json!({"code": code, "message": message, "requestid": token("")}),
    )
}

fn auth(state: &mut DingTalkState, params: &Params) -> Reply {
    if params.get("client_id") != Some(state.client_id.as_str()) {
        return error_page(400, "client_id is invalid");
    }
    if params.get("response_type") != Some("code") {
        return error_page(400, "response_type must be code");
    }
    let scope = params.get("scope").unwrap_or("");
    if !scope.split([' ', '+']).any(|s| s == "openid") {
        return error_page(400, "scope must include openid");
    }
    if params.get("prompt") != Some("consent") {
        return error_page(400, "prompt must be consent");
    }
    let Some(redirect_uri) = params.get("redirect_uri") else {
        return error_page(400, "redirect_uri missing");
    };
    if !state.redirect_uris.iter().any(|u| u == redirect_uri) {
        return error_page(400, "redirect_uri is not registered for this app");
    }
    let first = state.users.first().map(|u| u.union_id.as_str());
    let Some(user) = chosen_user(params, first).map(str::to_string) else {
        return error_page(400, "no user to log in");
    };
    let Some(member_of) = state
        .users
        .iter()
        .find(|u| u.union_id == user)
        .map(|u| u.corp_ids.clone())
    else {
        return error_page(400, "unknown test user");
    };
    // With `corpid` the user picks an organization of theirs: the preselected one if they are
    // in it, else (here) their first.
    let picked = scope
        .split([' ', '+'])
        .any(|s| s == "corpid")
        .then(|| {
            params
                .get("corpId")
                .filter(|id| member_of.iter().any(|c| c == id))
                .map(str::to_string)
                .or_else(|| member_of.first().cloned())
        })
        .flatten();
    let code = state.codes.issue(Grant {
        user,
        client_id: state.client_id.clone(),
        redirect_uri: Some(redirect_uri.to_string()),
        scope: scope.to_string(),
        challenge: None,
    });
    if let Some(corp) = picked {
        state.picked_corps.insert(code.clone(), corp);
    }
    let mut pairs = vec![("authCode", code.as_str())];
    if let Some(s) = params.get("state") {
        pairs.push(("state", s));
    }
    redirect(&with_query(redirect_uri, &pairs))
}

fn user_access_token(state: &mut DingTalkState, request: &Recorded) -> Reply {
    let Some(body) = json_object(&request.body) else {
        return api_error(400, "InvalidParameter", "the body must be a JSON object");
    };
    for field in ["clientId", "clientSecret", "grantType"] {
        if json_str(&body, field).is_none() {
            return api_error(400, "MissingParameter", &format!("{field} is mandatory"));
        }
    }
    if json_str(&body, "clientId") != Some(state.client_id.as_str())
        || json_str(&body, "clientSecret") != Some(state.client_secret.as_str())
    {
        return api_error(
            400,
            "InvalidAuthentication",
            "clientId or clientSecret is invalid",
        );
    }
    if json_str(&body, "grantType") != Some("authorization_code") {
        return api_error(400, "InvalidParameter", "grantType is invalid");
    }
    let Some(code) = json_str(&body, "code") else {
        return api_error(400, "MissingParameter", "code is mandatory");
    };
    if std::mem::take(&mut state.fail_next_token) {
        return api_error(400, "InvalidAuthentication", "invalid authCode");
    }
    let Ok(grant) = state.codes.take(code) else {
        return api_error(400, "InvalidAuthentication", "invalid authCode");
    };
    if grant.client_id != state.client_id {
        return api_error(400, "InvalidAuthentication", "invalid authCode");
    }
    let access_token = token("");
    state.tokens.insert(access_token.clone(), grant.user);
    let mut answer =
        json!({"accessToken": access_token, "refreshToken": token(""), "expireIn": 7200});
    if let Some(corp) = state.picked_corps.remove(code) {
        answer["corpId"] = json!(corp);
    }
    Reply::json(200, &answer)
}

fn users_me(state: &DingTalkState, request: &Recorded) -> Reply {
    let Some(presented) = request
        .header("x-acs-dingtalk-access-token")
        .filter(|v| !v.is_empty())
    else {
        return api_error(
            401,
            "MissingAccessToken",
            "x-acs-dingtalk-access-token is mandatory",
        );
    };
    let user = state
        .tokens
        .get(presented)
        .and_then(|union_id| state.users.iter().find(|u| &u.union_id == union_id));
    let Some(user) = user else {
        return api_error(401, "InvalidAuthentication", "access token is invalid");
    };
    let mut answer = json!({"nick": user.nick, "unionId": user.union_id, "openId": user.open_id,
        "mobile": user.mobile, "avatarUrl": "", "stateCode": "86"});
    if let (Some(email), Value::Object(map)) = (&user.email, &mut answer) {
        map.insert("email".into(), json!(email));
    }
    Reply::json(200, &answer)
}
