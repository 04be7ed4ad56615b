//! DingTalk (钉钉). open.dingtalk.com: 实现登录第三方网站
//! /document/orgapp/tutorial-obtaining-user-personal-information (the authorize URL; the
//! browser comes back with `authCode`), 获取用户token /document/orgapp/obtain-user-token,
//! 获取用户通讯录个人信息 /document/orgapp/dingtalk-retrieve-user-information. Errors are HTTP
//! 4xx/5xx with `{"code": "...", "message": "...", "requestid": "..."}`. No PKCE: `state` only.
//!
//! The login is open to any DingTalk user, members of the app's organization or not: with
//! scope `openid corpid` the user picks an organization and the token answer carries its
//! `corpId`, which must be one of `allowed_corp_ids` before anything else is asked.

use serde_json::json;

use super::{
    error_code, http_error, object, success, text, token, PresetCall, PresetConfig, PresetError,
    PresetLogin, PresetUser, Progress, Step, Target,
};

pub(super) fn token_call(config: &PresetConfig, login: &PresetLogin) -> PresetCall {
    let body = json!({
        "clientId": config.client_id,
        "clientSecret": config.client_secret,
        "code": login.code,
        "grantType": "authorization_code",
    });
    PresetCall::post(
        Target::Token,
        &config.token_path,
        "application/json",
        body.to_string().into_bytes(),
    )
}

/// A refusal: its `code` when the body has one, else the HTTP status.
fn refused(step: Step, status: u32, body: &[u8]) -> PresetError {
    // The pages do not tell a bad `authCode` from bad app credentials (both 4xx with a
    // `code`): a refused token call counts as a bad code.
    let bad_code = step == Step::Token && status < 500;
    match object(step, body) {
        Ok(answer) if answer.contains_key("code") => PresetError::Refused {
            step,
            code: error_code(answer.get("code")),
            bad_code,
        },
        // A gateway's or proxy's page, not DingTalk's error: not a readable answer.
        _ if status >= 500 => PresetError::Unreadable(step),
        _ => http_error(step, status),
    }
}

pub(super) fn advance(
    config: &PresetConfig,
    login: &mut PresetLogin,
    status: u32,
    body: &[u8],
) -> Result<Progress, PresetError> {
    if !success(status) {
        return Err(refused(login.step, status, body));
    }
    match login.step {
        Step::Token => {
            let answer = object(Step::Token, body)?;
            login.token =
                token(&answer, "accessToken").ok_or(PresetError::Unreadable(Step::Token))?;
            // Absent when the scope lacked `corpid` (or the user picked no organization):
            // refused like a foreign one, the login fails closed.
            let member =
                text(&answer, "corpId").is_some_and(|corp| config.allowed_corp_ids.contains(&corp));
            if !member {
                return Err(PresetError::NotAllowed(
                    "the user is not a member of an allowed organization",
                ));
            }
            login.step = Step::User;
            Ok(Progress::Call(PresetCall::get(
                Target::Api,
                config.userinfo_path.clone(),
                &[("x-acs-dingtalk-access-token", &login.token)],
            )))
        }
        Step::User => {
            let user = object(Step::User, body)?;
            // `unionId` is the same person across the organization's apps; `openId` per app.
            let sub = text(&user, "unionId").ok_or(PresetError::Unreadable(Step::User))?;
            Ok(Progress::Done(PresetUser {
                sub,
                name: text(&user, "nick"),
                email: text(&user, "email"),
                username: None,
                orgs: None,
            }))
        }
        other => Err(PresetError::Unreadable(other)),
    }
}

#[cfg(test)]
mod tests;
