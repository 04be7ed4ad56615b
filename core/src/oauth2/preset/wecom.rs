//! WeCom (企业微信). developer.work.weixin.qq.com: 企业微信Web登录 /document/path/98151 (the web
//! login URL), 构造网页授权链接 /document/path/91022, 获取access_token /document/path/91039 (the
//! app token: cached, never fetched per login), 获取访问用户身份 /document/path/91023 (the code
//! gives `userid`, or `openid` for a non-member), 读取成员 /document/path/90196 (name, e-mail).
//! Every answer is HTTP 200 with `errcode` (0: success). No PKCE: `state` only.
//!
//! The app secret and tokens travel in query strings: these calls' paths are never logged.

use serde_json::{Map, Value};

use super::{
    error_code, http_error, object, success, text, token, PresetCall, PresetConfig, PresetError,
    PresetLogin, PresetUser, Progress, Step, Target,
};
use crate::oauth2::form_encode;

const MEMBER_PATH: &str = "/cgi-bin/user/get";
/// `errcode`s saying the app token is invalid (40014) or expired (42001): the cache drops it.
const STALE_TOKEN: [i64; 2] = [40014, 42001];
/// `errcode` of an invalid code (used, expired, for another app): the browser's fault.
const INVALID_CODE: i64 = 40029;

fn app_token_call(config: &PresetConfig) -> PresetCall {
    let query = form_encode(&[
        ("corpid", &config.client_id),
        ("corpsecret", &config.client_secret),
    ]);
    PresetCall::get(Target::Token, format!("{}?{query}", config.token_path), &[])
}

fn user_id_call(config: &PresetConfig, login: &PresetLogin) -> PresetCall {
    let query = form_encode(&[("access_token", &login.token), ("code", &login.code)]);
    PresetCall::get(
        Target::Api,
        format!("{}?{query}", config.userinfo_path),
        &[],
    )
}

/// `gettoken`, or straight `getuserinfo` with the worker's cached app token.
pub(super) fn first_call(
    config: &PresetConfig,
    login: &mut PresetLogin,
    app_token: Option<&str>,
) -> PresetCall {
    match app_token {
        Some(cached) => {
            login.token = cached.to_string();
            login.cached_app_token = true;
            login.step = Step::UserId;
            user_id_call(config, login)
        }
        None => {
            login.step = Step::AppToken;
            app_token_call(config)
        }
    }
}

/// The answer's `errcode` (absent counts as 0, as in the docs' success examples without it).
fn errcode(answer: &Map<String, Value>, step: Step) -> Result<i64, PresetError> {
    match answer.get("errcode") {
        None => Ok(0),
        Some(Value::Number(n)) => n.as_i64().ok_or(PresetError::Unreadable(step)),
        Some(_) => Err(PresetError::Unreadable(step)),
    }
}

/// The answer, once HTTP and `errcode` say success.
fn read(step: Step, status: u32, body: &[u8]) -> Result<Map<String, Value>, (i64, PresetError)> {
    if !success(status) {
        return Err((0, http_error(step, status)));
    }
    let answer = object(step, body).map_err(|e| (0, e))?;
    match errcode(&answer, step).map_err(|e| (0, e))? {
        0 => Ok(answer),
        code => Err((
            code,
            PresetError::Refused {
                step,
                code: error_code(answer.get("errcode")),
                bad_code: step == Step::UserId && code == INVALID_CODE,
            },
        )),
    }
}

pub(super) fn advance(
    config: &PresetConfig,
    login: &mut PresetLogin,
    status: u32,
    body: &[u8],
) -> Result<Progress, PresetError> {
    match login.step {
        Step::AppToken => {
            let answer = read(Step::AppToken, status, body).map_err(|(_, e)| e)?;
            let app_token =
                token(&answer, "access_token").ok_or(PresetError::Unreadable(Step::AppToken))?;
            let expires_in = match answer.get("expires_in") {
                Some(Value::Number(n)) => n.as_u64().unwrap_or(0),
                _ => 0,
            };
            login.fresh_app_token = Some((app_token.clone(), expires_in));
            login.token = app_token;
            login.step = Step::UserId;
            Ok(Progress::Call(user_id_call(config, login)))
        }
        Step::UserId => {
            let answer = match read(Step::UserId, status, body) {
                Ok(answer) => answer,
                Err((code, error)) => {
                    if STALE_TOKEN.contains(&code) {
                        login.app_token_rejected = true;
                        // A cached token expired early (another login, a reset secret): fetch a
                        // new one, once; the code was not redeemed.
                        if login.cached_app_token {
                            login.cached_app_token = false;
                            login.step = Step::AppToken;
                            return Ok(Progress::Call(app_token_call(config)));
                        }
                    }
                    return Err(error);
                }
            };
            let Some(user_id) = text(&answer, "userid") else {
                if answer.contains_key("openid") {
                    return Err(PresetError::NotAllowed(
                        "the user is not a member of the organization",
                    ));
                }
                return Err(PresetError::Unreadable(Step::UserId));
            };
            let query = form_encode(&[("access_token", &login.token), ("userid", &user_id)]);
            login.user = Some(PresetUser {
                sub: user_id,
                ..PresetUser::default()
            });
            login.step = Step::Member;
            Ok(Progress::Call(PresetCall::get(
                Target::Api,
                format!("{MEMBER_PATH}?{query}"),
                &[],
            )))
        }
        Step::Member => {
            let answer = match read(Step::Member, status, body) {
                Ok(answer) => answer,
                Err((code, error)) => {
                    login.app_token_rejected = STALE_TOKEN.contains(&code);
                    return Err(error);
                }
            };
            let mut user = login
                .user
                .take()
                .ok_or(PresetError::Unreadable(Step::Member))?;
            user.name = text(&answer, "name");
            user.email = text(&answer, "email").or_else(|| text(&answer, "biz_mail"));
            Ok(Progress::Done(user))
        }
        other => Err(PresetError::Unreadable(other)),
    }
}

#[cfg(test)]
mod tests;
