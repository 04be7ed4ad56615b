//! GitHub stand-in: the OAuth app web application flow and the two REST calls a login needs.
//!
//! Follows, as documented on docs.github.com:
//! - "Authorizing OAuth apps" (web application flow): `GET /login/oauth/authorize` with
//!   `client_id`, `redirect_uri`, `scope`, `state`, `code_challenge`, `code_challenge_method`
//!   (only `S256`); back to the redirect URI with `code` and `state`; a redirect URI that does
//!   not match the registered callback URL sends the browser to the registered one with
//!   `error=redirect_uri_mismatch`. Codes expire after 10 minutes and are single use.
//!   `POST /login/oauth/access_token` (form: `client_id`, `client_secret`, `code`,
//!   `redirect_uri`, `code_verifier`); the answer is form-encoded unless `Accept:
//!   application/json`; errors are HTTP 200 with `error`, `error_description`, `error_uri`
//!   (`bad_verification_code`, `incorrect_client_credentials`, `redirect_uri_mismatch`).
//! - "REST API endpoints for users: Get the authenticated user" (`GET /user`).
//! - "List organizations for the authenticated user" (`GET /user/orgs`): needs the `user` or
//!   `read:org` scope, else 403; "Using pagination in the REST API": 30 per page unless
//!   `per_page` (at most 100), a `Link` header with `rel="next"` while more follow.
//! - "Getting started with the REST API": requests without a `User-Agent` are refused (403).
//!
//! Unsure, from memory rather than the pages: the exact wording of the 403 bodies (no
//! `User-Agent`, missing scope); that a PKCE mismatch is `bad_verification_code` (GitHub does
//! not document the error it uses).

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{json, Value};

use super::common::{
    chosen_user, form, json_object, path_of, pkce_matches, query, redirect, token, with_query,
    CodeError, Codes, Grant, Params, StandIn,
};
use crate::upstream::{Recorded, Reply};

const CODE_LIFETIME: Duration = Duration::from_secs(600);
const DOCS: &str = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors";

/// A GitHub account.
#[derive(Debug, Clone)]
pub struct GitHubUser {
    pub login: String,
    pub id: u64,
    /// `None`: the profile has no name (the API answers `null`).
    pub name: Option<String>,
    /// The public email, `None` when the user keeps it private (`null`).
    pub email: Option<String>,
    pub orgs: Vec<String>,
}

/// The registered OAuth app, the accounts and what happened.
pub struct GitHubState {
    pub client_id: String,
    pub client_secret: String,
    /// The app's "Authorization callback URL".
    pub callback_url: String,
    pub users: Vec<GitHubUser>,
    pub codes: Codes,
    /// access token -> (login, granted scopes)
    pub tokens: HashMap<String, (String, Vec<String>)>,
    /// The next token request answers `bad_verification_code` whatever it carries.
    pub fail_next_token: bool,
}

pub type GitHub = StandIn<GitHubState>;

/// Starts a GitHub stand-in for one OAuth app.
pub fn start(
    client_id: &str,
    client_secret: &str,
    callback_url: &str,
    users: Vec<GitHubUser>,
) -> GitHub {
    StandIn::start(
        GitHubState {
            client_id: client_id.into(),
            client_secret: client_secret.into(),
            callback_url: callback_url.into(),
            users,
            codes: Codes::new(CODE_LIFETIME),
            tokens: HashMap::new(),
            fail_next_token: false,
        },
        handle,
    )
}

fn handle(state: &mut GitHubState, request: &Recorded) -> Reply {
    match (request.method.as_str(), path_of(&request.path)) {
        ("GET", "/login/oauth/authorize") => authorize(state, &query(&request.path)),
        ("POST", "/login/oauth/access_token") => access_token(state, request),
        ("GET", "/user") => api(state, request, |user, _, _| user_json(user)),
        ("GET", "/user/orgs") => api(state, request, orgs),
        _ => Reply::json(
            404,
            &json!({"message": "Not Found", "documentation_url": "https://docs.github.com/rest"}),
        ),
    }
}

/// Whether `uri` is the callback URL or under it (GitHub allows a subdirectory).
fn redirect_allowed(callback: &str, uri: &str) -> bool {
    uri == callback || uri.starts_with(&format!("{}/", callback.trim_end_matches('/')))
}

fn authorize(state: &mut GitHubState, params: &Params) -> Reply {
    if params.get("client_id") != Some(state.client_id.as_str()) {
        return super::common::error_page(404, "Not Found: unknown client_id");
    }
    let state_param = params.get("state").unwrap_or("");
    let redirect_uri = params.get("redirect_uri");
    if let Some(uri) = redirect_uri {
        if !redirect_allowed(&state.callback_url, uri) {
            return redirect(&with_query(
                &state.callback_url,
                &[
                    ("error", "redirect_uri_mismatch"),
                    (
                        "error_description",
                        "The redirect_uri MUST match the registered callback URL for this application.",
                    ),
                    ("error_uri", DOCS),
                    ("state", state_param),
                ],
            ));
        }
    }
    let challenge = match (
        params.get("code_challenge"),
        params.get("code_challenge_method"),
    ) {
        (None, _) => None,
        (Some(c), Some("S256")) => Some((c.to_string(), "S256".to_string())),
        // "must be S256": plain (or a missing method) is not supported.
        (Some(_), _) => {
            return super::common::error_page(400, "code_challenge_method must be S256")
        }
    };
    let first = state.users.first().map(|u| u.login.as_str());
    let Some(login) = chosen_user(params, first).map(str::to_string) else {
        return super::common::error_page(400, "no user to log in");
    };
    if !state.users.iter().any(|u| u.login == login) {
        return super::common::error_page(400, "unknown test user");
    }
    let target = redirect_uri.unwrap_or(&state.callback_url).to_string();
    let code = state.codes.issue(Grant {
        user: login,
        client_id: state.client_id.clone(),
        redirect_uri: redirect_uri.map(str::to_string),
        scope: params.get("scope").unwrap_or("").to_string(),
        challenge,
    });
    let mut pairs = vec![("code", code.as_str())];
    if params.get("state").is_some() {
        pairs.push(("state", state_param));
    }
    redirect(&with_query(&target, &pairs))
}

/// The token request's parameters: a form body (documented) or JSON.
fn token_params(request: &Recorded) -> Params {
    let is_json = request
        .header("content-type")
        .is_some_and(|v| v.contains("json"));
    if !is_json {
        return form(&request.body);
    }
    let pairs = json_object(&request.body)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|(k, v)| v.as_str().map(|v| (k, v.to_string())))
        .collect();
    Params(pairs)
}

fn access_token(state: &mut GitHubState, request: &Recorded) -> Reply {
    let params = token_params(request);
    let answer = exchange(state, &params);
    let wants_json = request
        .header("accept")
        .is_some_and(|v| v.contains("application/json"));
    let pairs: Vec<(String, String)> = match &answer {
        Value::Object(map) => map
            .iter()
            .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_string()))
            .collect(),
        _ => Vec::new(),
    };
    if wants_json {
        return Reply::json(200, &answer);
    }
    // Without `Accept: application/json` GitHub answers form-encoded, errors included.
    let pairs: Vec<(&str, &str)> = pairs
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    let body = with_query("", &pairs).trim_start_matches('?').to_string();
    let mut reply = Reply::text(200, &body);
    reply.headers = vec![(
        "content-type".into(),
        "application/x-www-form-urlencoded; charset=utf-8".into(),
    )];
    reply
}

fn error(code: &str, description: &str) -> Value {
    json!({"error": code, "error_description": description, "error_uri": DOCS})
}

/// The token endpoint's answer (always HTTP 200, as GitHub does).
fn exchange(state: &mut GitHubState, params: &Params) -> Value {
    let bad_code = || {
        error(
            "bad_verification_code",
            "The code passed is incorrect or expired.",
        )
    };
    if std::mem::take(&mut state.fail_next_token) {
        return bad_code();
    }
    if params.get("client_id") != Some(state.client_id.as_str())
        || params.get("client_secret") != Some(state.client_secret.as_str())
    {
        return error(
            "incorrect_client_credentials",
            "The client_id and/or client_secret passed are incorrect.",
        );
    }
    let Some(code) = params.get("code") else {
        return bad_code();
    };
    let grant = match state.codes.take(code) {
        Ok(grant) => grant,
        Err(CodeError::Unknown | CodeError::Expired | CodeError::Used) => return bad_code(),
    };
    if grant.client_id != state.client_id {
        return bad_code();
    }
    if let Some(uri) = params.get("redirect_uri") {
        let authorized = grant.redirect_uri.as_deref().unwrap_or(&state.callback_url);
        if uri != authorized {
            return error(
                "redirect_uri_mismatch",
                "The redirect_uri MUST match the registered callback URL for this application.",
            );
        }
    }
    if let Some(challenge) = &grant.challenge {
        if !pkce_matches(challenge, params.get("code_verifier")) {
            return bad_code();
        }
    }
    let scopes: Vec<String> = grant
        .scope
        .split([' ', ','])
        .filter(|s| !s.is_empty())
        .map(str::to_string)
        .collect();
    let access_token = token("gho_");
    state
        .tokens
        .insert(access_token.clone(), (grant.user, scopes.clone()));
    json!({"access_token": access_token, "token_type": "bearer", "scope": scopes.join(",")})
}

/// A REST call: `User-Agent` required, then a valid token (`Bearer` or `token` scheme).
fn api(
    state: &GitHubState,
    request: &Recorded,
    answer: fn(&GitHubUser, &[String], &Params) -> Reply,
) -> Reply {
    if request.header("user-agent").is_none_or(str::is_empty) {
        return Reply::text(
            403,
            "Request forbidden by administrative rules. Please make sure your request has a User-Agent header (https://docs.github.com/en/rest/overview/resources-in-the-rest-api#user-agent-required).",
        );
    }
    let presented = request.header("authorization").and_then(|v| {
        v.strip_prefix("Bearer ")
            .or_else(|| v.strip_prefix("bearer "))
            .or_else(|| v.strip_prefix("token "))
    });
    let Some(presented) = presented else {
        return Reply::json(
            401,
            &json!({"message": "Requires authentication", "documentation_url": "https://docs.github.com/rest", "status": "401"}),
        );
    };
    let user = state
        .tokens
        .get(presented.trim())
        .and_then(|(login, scopes)| {
            Some((state.users.iter().find(|u| &u.login == login)?, scopes))
        });
    match user {
        Some((user, scopes)) => answer(user, scopes, &query(&request.path)),
        None => Reply::json(
            401,
            &json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest", "status": "401"}),
        ),
    }
}

fn user_json(user: &GitHubUser) -> Reply {
    Reply::json(
        200,
        &json!({
            "login": user.login, "id": user.id, "node_id": format!("MDQ6VXNlcj{}", user.id),
            "avatar_url": format!("https://avatars.githubusercontent.com/u/{}?v=4", user.id),
            "html_url": format!("https://github.com/{}", user.login),
            "type": "User", "site_admin": false,
            "name": user.name, "company": null, "blog": "", "location": null,
            "email": user.email, "hireable": null, "bio": null,
            "public_repos": 2, "followers": 0, "following": 0,
            "created_at": "2008-01-14T04:33:35Z", "updated_at": "2008-01-14T04:33:35Z"
        }),
    )
}

/// One page of the user's organizations: `per_page` (default 30, at most 100) and `page`
/// (from 1), with a `Link` header naming the next page while there is one ("Using pagination
/// in the REST API").
fn orgs(user: &GitHubUser, scopes: &[String], params: &Params) -> Reply {
    let allowed = ["user", "read:org", "write:org", "admin:org"];
    if !scopes.iter().any(|s| allowed.contains(&s.as_str())) {
        return Reply::json(
            403,
            &json!({"message": "This API requires the user or read:org scope.", "documentation_url": "https://docs.github.com/rest/orgs/orgs#list-organizations-for-the-authenticated-user", "status": "403"}),
        );
    }
    let number = |name: &str, default: usize| {
        params
            .get(name)
            .and_then(|v| v.parse::<usize>().ok())
            .filter(|n| *n > 0)
            .unwrap_or(default)
    };
    let per_page = number("per_page", 30).min(100);
    let page = number("page", 1);
    let start = per_page.saturating_mul(page - 1).min(user.orgs.len());
    let end = (start + per_page).min(user.orgs.len());
    let list: Vec<Value> = user.orgs[start..end]
        .iter()
        .enumerate()
        .map(|(i, login)| {
            let i = start + i;
            json!({"login": login, "id": 9000 + i, "node_id": format!("MDEyOk9yZ2FuaXphdGlvbj{i}"),
                   "url": format!("https://api.github.com/orgs/{login}"), "description": null})
        })
        .collect();
    let mut reply = Reply::json(200, &Value::Array(list));
    if end < user.orgs.len() {
        reply.headers.push((
            "link".into(),
            format!(
                "<https://api.github.com/user/orgs?per_page={per_page}&page={}>; rel=\"next\"",
                page + 1
            ),
        ));
    }
    reply
}
