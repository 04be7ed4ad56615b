//! WeCom (企业微信) stand-in: web login for a self-built app and the three server calls.
//!
//! Follows developer.work.weixin.qq.com:
//! - /document/path/98151 企业微信Web登录: the browser goes to `GET /wwlogin/sso/login` with
//!   `login_type=CorpApp`, `appid` (the corpid), `agentid`, `redirect_uri`, `state`; back to
//!   `redirect_uri?code=CODE&state=STATE`. The redirect URI's host must be the app's trusted
//!   domain. (/document/path/91022 is the in-client variant of the same code.)
//! - /document/path/91039 获取access_token: `GET /cgi-bin/gettoken?corpid&corpsecret` ->
//!   `{"errcode":0,"errmsg":"ok","access_token","expires_in":7200}`; the secret belongs to one
//!   app, so the token does too. Callers must cache it (the doc says so; frequent calls are
//!   rate limited); within its lifetime gettoken answers the same token again.
//! - /document/path/91023 获取访问用户身份: `GET /cgi-bin/auth/getuserinfo?access_token&code` ->
//!   a member's `userid` (+ `user_ticket` only for snsapi_privateinfo, not the web login), a
//!   non-member's `openid` (+ `external_userid`). Codes are single use and expire after 5
//!   minutes.
//! - /document/path/90196 读取成员: `GET /cgi-bin/user/get?access_token&userid`.
//! - /document/path/90313 全局错误码: HTTP 200 with errcode != 0: 40001 invalid secret, 40013
//!   invalid corpid, 40014 invalid access_token, 40029 invalid code, 41001/41002/41004/41008
//!   missing access_token/corpid/secret/code, 42001 access_token expired, 60111 userid not
//!   found.
//!
//! Unsure: the exact errmsg wording (real ones add a hint and the caller's IP); the error page
//! the login shows for a bad appid/agentid/redirect_uri (the stand-in answers 400 HTML); since
//! 2022-06-20 user/get stops returning email/biz_mail/mobile to newly created apps (they must
//! come from user_ticket): the stand-in returns them, as for apps created before.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use super::common::{
    chosen_user, error_page, path_of, query, redirect, token, with_query, CodeError, Codes, Grant,
    Params, StandIn,
};
use crate::upstream::{Recorded, Reply};

const CODE_LIFETIME: Duration = Duration::from_secs(300);
const TOKEN_LIFETIME_S: u64 = 7200;

/// A person logging in: a member of the corp (`userid`) or not (an `openid` only).
#[derive(Debug, Clone)]
pub struct WeComUser {
    /// The member's userid, or for a non-member the openid getuserinfo answers.
    pub id: String,
    pub member: bool,
    pub name: String,
    pub email: Option<String>,
    pub biz_mail: Option<String>,
}

/// The corp, its one self-built app, the people and what happened.
pub struct WeComState {
    pub corpid: String,
    pub agent_id: String,
    pub secret: String,
    /// The app's trusted domain (可信域名): host[:port] redirect URIs must be on.
    pub trusted_domain: String,
    pub users: Vec<WeComUser>,
    pub codes: Codes,
    /// access token -> issued at
    pub tokens: HashMap<String, Instant>,
    /// The next getuserinfo (the code exchange) answers 40029 whatever it carries.
    pub fail_next_token: bool,
}

pub type WeCom = StandIn<WeComState>;

impl WeComState {
    /// Makes every issued access token expired (42001 on next use).
    pub fn expire_tokens(&mut self) {
        let past = Instant::now()
            .checked_sub(Duration::from_secs(TOKEN_LIFETIME_S + 1))
            .unwrap_or_else(Instant::now);
        self.tokens.values_mut().for_each(|t| *t = past);
    }
}

/// Starts a WeCom stand-in for one corp with one self-built app.
pub fn start(
    corpid: &str,
    agent_id: &str,
    secret: &str,
    trusted_domain: &str,
    users: Vec<WeComUser>,
) -> WeCom {
    StandIn::start(
        WeComState {
            corpid: corpid.into(),
            agent_id: agent_id.into(),
            secret: secret.into(),
            trusted_domain: trusted_domain.into(),
            users,
            codes: Codes::new(CODE_LIFETIME),
            tokens: HashMap::new(),
            fail_next_token: false,
        },
        handle,
    )
}

fn handle(state: &mut WeComState, request: &Recorded) -> Reply {
    let params = query(&request.path);
    let answer = match (request.method.as_str(), path_of(&request.path)) {
        ("GET", "/wwlogin/sso/login") => return sso_login(state, &params),
        ("GET", "/cgi-bin/gettoken") => gettoken(state, &params),
        ("GET", "/cgi-bin/auth/getuserinfo") => getuserinfo(state, &params),
        ("GET", "/cgi-bin/user/get") => user_get(state, &params),
        _ => return Reply::text(404, "not found"),
    };
    // The API answers HTTP 200 whatever the errcode.
    Reply::json(200, &answer)
}

fn err(code: u32, what: &str) -> Value {
    json!({"errcode": code,
           "errmsg": format!("{what}, more info at https://open.work.weixin.qq.com/devtool/query?e={code}")})
}

/// The host[:port] of an http(s) URL.
fn host_of(url: &str) -> Option<&str> {
    let rest = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))?;
    rest.split(['/', '?', '#']).next()
}

fn sso_login(state: &mut WeComState, params: &Params) -> Reply {
    if params.get("login_type") != Some("CorpApp") {
        return error_page(400, "login_type must be CorpApp for a self-built app");
    }
    if params.get("appid") != Some(state.corpid.as_str()) {
        return error_page(400, "invalid appid (40013 invalid corpid)");
    }
    if params.get("agentid") != Some(state.agent_id.as_str()) {
        return error_page(400, "invalid agentid (40056)");
    }
    let Some(redirect_uri) = params.get("redirect_uri") else {
        return error_page(400, "redirect_uri missing");
    };
    if host_of(redirect_uri) != Some(state.trusted_domain.as_str()) {
        return error_page(
            400,
            "redirect_uri is not on the app's trusted domain (50001)",
        );
    }
    let first = state.users.first().map(|u| u.id.as_str());
    let Some(user) = chosen_user(params, first).map(str::to_string) else {
        return error_page(400, "no user to log in");
    };
    if !state.users.iter().any(|u| u.id == user) {
        return error_page(400, "unknown test user");
    }
    let code = state.codes.issue(Grant {
        user,
        client_id: state.agent_id.clone(),
        redirect_uri: Some(redirect_uri.to_string()),
        scope: String::new(),
        challenge: None,
    });
    let mut pairs = vec![("code", code.as_str())];
    if let Some(s) = params.get("state") {
        pairs.push(("state", s));
    }
    redirect(&with_query(redirect_uri, &pairs))
}

fn gettoken(state: &mut WeComState, params: &Params) -> Value {
    let Some(corpid) = params.get("corpid") else {
        return err(41002, "corpid missing");
    };
    if corpid != state.corpid {
        return err(40013, "invalid corpid");
    }
    let Some(secret) = params.get("corpsecret") else {
        return err(41004, "corpsecret missing");
    };
    if secret != state.secret {
        return err(40001, "invalid credential");
    }
    // "有效期内重复获取返回相同结果": within its lifetime the same token comes back, with
    // what is left of it; a new one only once it expired.
    let live = state
        .tokens
        .iter()
        .map(|(t, issued)| (t, issued.elapsed().as_secs()))
        .find(|(_, age)| *age < TOKEN_LIFETIME_S)
        .map(|(t, age)| (t.clone(), TOKEN_LIFETIME_S - age));
    let (access_token, expires_in) = live.unwrap_or_else(|| {
        let fresh = token("");
        state.tokens.insert(fresh.clone(), Instant::now());
        (fresh, TOKEN_LIFETIME_S)
    });
    json!({"errcode": 0, "errmsg": "ok", "access_token": access_token, "expires_in": expires_in})
}

/// The access_token check every API call starts with.
fn check_token(state: &WeComState, params: &Params) -> Result<(), Value> {
    let Some(presented) = params.get("access_token") else {
        return Err(err(41001, "access_token missing"));
    };
    match state.tokens.get(presented) {
        None => Err(err(40014, "invalid access_token")),
        Some(issued) if issued.elapsed().as_secs() >= TOKEN_LIFETIME_S => {
            Err(err(42001, "access_token expired"))
        }
        Some(_) => Ok(()),
    }
}

fn getuserinfo(state: &mut WeComState, params: &Params) -> Value {
    if let Err(e) = check_token(state, params) {
        return e;
    }
    let Some(code) = params.get("code") else {
        return err(41008, "missing code");
    };
    if std::mem::take(&mut state.fail_next_token) {
        return err(40029, "invalid code");
    }
    let grant = match state.codes.take(code) {
        Ok(grant) => grant,
        Err(CodeError::Unknown | CodeError::Expired | CodeError::Used) => {
            return err(40029, "invalid code")
        }
    };
    match state.users.iter().find(|u| u.id == grant.user) {
        Some(user) if user.member => {
            json!({"errcode": 0, "errmsg": "ok", "userid": user.id})
        }
        Some(user) => {
            json!({"errcode": 0, "errmsg": "ok", "openid": user.id, "external_userid": ""})
        }
        None => err(40029, "invalid code"),
    }
}

fn user_get(state: &WeComState, params: &Params) -> Value {
    if let Err(e) = check_token(state, params) {
        return e;
    }
    let Some(userid) = params.get("userid") else {
        return err(41009, "missing userid");
    };
    let Some(user) = state.users.iter().find(|u| u.member && u.id == userid) else {
        return err(60111, "userid not found");
    };
    json!({
        "errcode": 0, "errmsg": "ok",
        "userid": user.id, "name": user.name,
        "department": [1], "order": [0], "position": "", "mobile": "",
        "gender": "0", "email": user.email.clone().unwrap_or_default(),
        "biz_mail": user.biz_mail.clone().unwrap_or_default(),
        "is_leader_in_dept": [0], "direct_leader": [], "avatar": "", "thumb_avatar": "",
        "telephone": "", "alias": "", "status": 1, "address": "", "main_department": 1,
        "open_userid": format!("wo{}", user.id)
    })
}
