//! Feishu (飞书). open.feishu.cn: 获取授权码
//! /document/authentication-management/access-token/obtain-oauth-code (the authorize URL,
//! PKCE), 获取 user_access_token
//! /document/authentication-management/access-token/get-user-access-token (v2 token call;
//! errors `{"code": 20003, "error": "invalid_grant", ...}` with HTTP 4xx), 获取用户信息
//! /document/server-docs/authentication-management/login-state-management/get (`{"code": 0,
//! "data": {...}}`; errors `{"code": 99991663, "msg": ...}`).
//!
//! A self-built app (企业自建应用) is its tenant's only; an app on the app store is any
//! installing tenant's: `allowed_tenants`, when set, limits the user info's `tenant_key`.

use serde_json::{json, Map, Value};

use super::{
    error_code, http_error, object, text, token, PresetCall, PresetConfig, PresetError,
    PresetLogin, PresetUser, Progress, Step, Target,
};

pub(super) fn token_call(config: &PresetConfig, login: &PresetLogin) -> PresetCall {
    let body = json!({
        "grant_type": "authorization_code",
        "client_id": config.client_id,
        "client_secret": config.client_secret,
        "code": login.code,
        "redirect_uri": config.redirect_uri,
        "code_verifier": login.verifier,
    });
    PresetCall::post(
        Target::Token,
        &config.token_path,
        "application/json; charset=utf-8",
        body.to_string().into_bytes(),
    )
}

/// The answer when its `code` is 0 (absent counts as 0), else its refusal: the numeric `code`,
/// and the OAuth `error` when there is one.
fn read(step: Step, status: u32, body: &[u8]) -> Result<Map<String, Value>, PresetError> {
    let answer = match object(step, body) {
        Ok(answer) => answer,
        Err(_) if (300..500).contains(&status) => return Err(http_error(step, status)),
        Err(e) => return Err(e),
    };
    let ok = match answer.get("code") {
        None => (200..300).contains(&status),
        Some(Value::Number(n)) => n.as_i64() == Some(0) && (200..300).contains(&status),
        Some(_) => false,
    };
    if ok {
        return Ok(answer);
    }
    let code = match (answer.get("code"), answer.get("error")) {
        (Some(code), Some(error)) => {
            format!("{} {}", error_code(Some(code)), error_code(Some(error)))
        }
        (Some(code), None) => error_code(Some(code)),
        (None, Some(error)) => error_code(Some(error)),
        (None, None) => return Err(http_error(step, status)),
    };
    // `invalid_grant` (20003 not found, 20004 expired, 20049 verifier, ...): the code's fault;
    // `invalid_client`, `server_error`, ...: the provider's or the configuration's.
    let bad_code =
        step == Step::Token && answer.get("error").and_then(Value::as_str) == Some("invalid_grant");
    Err(PresetError::Refused {
        step,
        code,
        bad_code,
    })
}

pub(super) fn advance(
    config: &PresetConfig,
    login: &mut PresetLogin,
    status: u32,
    body: &[u8],
) -> Result<Progress, PresetError> {
    match login.step {
        Step::Token => {
            let answer = read(Step::Token, status, body)?;
            login.token =
                token(&answer, "access_token").ok_or(PresetError::Unreadable(Step::Token))?;
            let bearer = format!("Bearer {}", login.token);
            login.step = Step::User;
            Ok(Progress::Call(PresetCall::get(
                Target::Api,
                config.userinfo_path.clone(),
                &[("authorization", &bearer)],
            )))
        }
        Step::User => {
            let answer = read(Step::User, status, body)?;
            let Some(Value::Object(data)) = answer.get("data") else {
                return Err(PresetError::Unreadable(Step::User));
            };
            if !config.allowed_tenants.is_empty() {
                let allowed = text(data, "tenant_key")
                    .is_some_and(|key| config.allowed_tenants.contains(&key));
                if !allowed {
                    return Err(PresetError::NotAllowed(
                        "the user is not a member of an allowed tenant",
                    ));
                }
            }
            // `user_id` (the tenant's employee id) needs its own permission; `open_id` is
            // per app and always there.
            let sub = text(data, "user_id")
                .or_else(|| text(data, "open_id"))
                .ok_or(PresetError::Unreadable(Step::User))?;
            Ok(Progress::Done(PresetUser {
                sub,
                name: text(data, "name"),
                email: text(data, "enterprise_email").or_else(|| text(data, "email")),
                username: None,
                orgs: None,
            }))
        }
        other => Err(PresetError::Unreadable(other)),
    }
}

#[cfg(test)]
mod tests;
