//! GitHub OAuth apps. docs.github.com: "Authorizing OAuth apps" (the web flow, PKCE, the token
//! call answering `Accept: application/json`, errors with HTTP 200), "REST API endpoints for
//! users: Get the authenticated user", "List organizations for the authenticated user", and
//! "Getting started with the REST API" (`User-Agent` required, `X-GitHub-Api-Version`).

use serde_json::Value;

use super::{
    error_code, http_error, object, success, text, token, PresetCall, PresetConfig, PresetError,
    PresetLogin, PresetUser, Progress, Step, Target,
};
use crate::json::parse_strict;
use crate::oauth2::form_encode;

const API_VERSION: &str = "2022-11-28";
/// `per_page`'s maximum: a user in more organizations is checked against the first 100.
const ORGS_PATH: &str = "/user/orgs?per_page=100";

pub(super) fn token_call(config: &PresetConfig, login: &PresetLogin) -> PresetCall {
    let body = form_encode(&[
        ("client_id", &config.client_id),
        ("client_secret", &config.client_secret),
        ("code", &login.code),
        ("redirect_uri", &config.redirect_uri),
        ("code_verifier", &login.verifier),
    ]);
    PresetCall::post(
        Target::Token,
        &config.token_path,
        "application/x-www-form-urlencoded",
        body.into_bytes(),
    )
}

fn api_call(path: String, access_token: &str) -> PresetCall {
    let bearer = format!("Bearer {access_token}");
    PresetCall::get(
        Target::Api,
        path,
        &[
            ("accept", "application/vnd.github+json"),
            ("authorization", &bearer),
            ("x-github-api-version", API_VERSION),
        ],
    )
}

pub(super) fn advance(
    config: &PresetConfig,
    login: &mut PresetLogin,
    status: u32,
    body: &[u8],
) -> Result<Progress, PresetError> {
    match login.step {
        Step::Token => {
            if !success(status) {
                return Err(http_error(Step::Token, status));
            }
            let answer = object(Step::Token, body)?;
            // GitHub answers 200 for a refused code: `{"error": "bad_verification_code", ...}`.
            if answer.contains_key("error") {
                return Err(PresetError::Refused {
                    step: Step::Token,
                    code: error_code(answer.get("error")),
                    // Other errors (`incorrect_client_credentials`, `redirect_uri_mismatch`)
                    // are the gateway's configuration.
                    bad_code: answer.get("error").and_then(Value::as_str)
                        == Some("bad_verification_code"),
                });
            }
            login.token =
                token(&answer, "access_token").ok_or(PresetError::Unreadable(Step::Token))?;
            login.step = Step::User;
            Ok(Progress::Call(api_call(
                config.userinfo_path.clone(),
                &login.token,
            )))
        }
        Step::User => {
            if !success(status) {
                return Err(http_error(Step::User, status));
            }
            let user = object(Step::User, body)?;
            // `id` is stable; `login` can be renamed, so it is only `preferred_username`.
            let id = match user.get("id") {
                Some(Value::Number(n)) => n.as_u64().filter(|id| *id > 0),
                _ => None,
            }
            .ok_or(PresetError::Unreadable(Step::User))?;
            let username = text(&user, "login");
            let found = PresetUser {
                sub: id.to_string(),
                name: text(&user, "name").or_else(|| username.clone()),
                email: text(&user, "email"),
                username,
                orgs: None,
            };
            if config.allowed_orgs.is_empty() {
                return Ok(Progress::Done(found));
            }
            login.user = Some(found);
            login.step = Step::Orgs;
            Ok(Progress::Call(api_call(ORGS_PATH.into(), &login.token)))
        }
        Step::Orgs => {
            if !success(status) {
                return Err(http_error(Step::Orgs, status));
            }
            let Ok(Value::Array(entries)) = parse_strict(body) else {
                return Err(PresetError::Unreadable(Step::Orgs));
            };
            let mut orgs = Vec::new();
            for entry in &entries {
                let Value::Object(org) = entry else {
                    return Err(PresetError::Unreadable(Step::Orgs));
                };
                // Lower-cased: GitHub logins are case-insensitive, `roles` match exactly.
                if let Some(name) = text(org, "login") {
                    orgs.push(name.to_ascii_lowercase());
                }
            }
            let member = orgs.iter().any(|org| {
                config
                    .allowed_orgs
                    .iter()
                    .any(|allowed| allowed.eq_ignore_ascii_case(org))
            });
            if !member {
                return Err(PresetError::NotAllowed(
                    "the user is a member of no allowed organization",
                ));
            }
            let mut user = login
                .user
                .take()
                .ok_or(PresetError::Unreadable(Step::Orgs))?;
            user.orgs = Some(orgs);
            Ok(Progress::Done(user))
        }
        other => Err(PresetError::Unreadable(other)),
    }
}

#[cfg(test)]
mod tests;
