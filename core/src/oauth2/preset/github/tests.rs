//! GitHub's calls and answers as docs.github.com documents them ("Authorizing OAuth apps",
//! "Get the authenticated user", "List organizations for the authenticated user").

use serde_json::json;

use super::super::tests::{body, call_of, config, header, user_of};
use super::super::*;
use crate::oauth2::query::{parse_query, query_value};

fn token_answer() -> Vec<u8> {
    body(
        json!({"access_token": "gho_16C7e42F292c6912E7710c838347Ae178B4a", "scope": "read:user,user:email", "token_type": "bearer"}),
    )
}

fn octocat() -> Vec<u8> {
    body(json!({
        "login": "octocat", "id": 583231, "node_id": "MDQ6VXNlcjU4MzIzMQ==",
        "name": "The Octocat", "email": null, "type": "User", "site_admin": false
    }))
}

#[test]
fn token_call_is_a_form_post_with_pkce_and_json_answers() {
    let config = config(Preset::Github);
    let (login, call) = start(&config, "a-code", "the-verifier", None);
    assert_eq!(login.step, Step::Token);
    assert_eq!(call.target, Target::Token);
    assert_eq!(call.method, "POST");
    assert_eq!(call.path, "/login/oauth/access_token");
    assert_eq!(header(&call, "accept"), Some("application/json"));
    assert_eq!(
        header(&call, "content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(header(&call, "user-agent"), Some(USER_AGENT));
    let form = parse_query(std::str::from_utf8(call.body.as_deref().unwrap()).unwrap());
    assert_eq!(query_value(&form, "client_id"), Some("client-id"));
    assert_eq!(query_value(&form, "client_secret"), Some("s3cret"));
    assert_eq!(query_value(&form, "code"), Some("a-code"));
    assert_eq!(query_value(&form, "code_verifier"), Some("the-verifier"));
    assert_eq!(
        query_value(&form, "redirect_uri"),
        Some("https://chat.test/oauth2/callback")
    );
}

#[test]
fn success_reads_the_user_with_the_api_headers() {
    let config = config(Preset::Github);
    let (mut login, _) = start(&config, "a-code", "v", None);
    let call = call_of(advance(&config, &mut login, Some(200), &token_answer()));
    assert_eq!(call.target, Target::Api);
    assert_eq!(call.method, "GET");
    assert_eq!(call.path, "/user");
    assert_eq!(
        header(&call, "authorization"),
        Some("Bearer gho_16C7e42F292c6912E7710c838347Ae178B4a")
    );
    assert_eq!(header(&call, "accept"), Some("application/vnd.github+json"));
    assert_eq!(header(&call, "x-github-api-version"), Some("2022-11-28"));
    assert_eq!(header(&call, "user-agent"), Some(USER_AGENT));
    assert_eq!(
        call.headers.iter().filter(|(n, _)| n == "accept").count(),
        1
    );
    let user = user_of(advance(&config, &mut login, Some(200), &octocat()));
    assert_eq!(user.sub, "583231");
    assert_eq!(user.name.as_deref(), Some("The Octocat"));
    assert_eq!(user.email, None);
    assert_eq!(user.username.as_deref(), Some("octocat"));
    assert_eq!(user.claims()["preferred_username"], "octocat");
}

#[test]
fn name_falls_back_to_the_login() {
    let config = config(Preset::Github);
    let (mut login, _) = start(&config, "c", "v", None);
    call_of(advance(&config, &mut login, Some(200), &token_answer()));
    let answer =
        body(json!({"login": "hubot", "id": 2, "name": null, "email": "hubot@github.com"}));
    let user = user_of(advance(&config, &mut login, Some(200), &answer));
    assert_eq!(user.name.as_deref(), Some("hubot"));
    assert_eq!(user.email.as_deref(), Some("hubot@github.com"));
}

#[test]
fn errors_come_with_status_200_and_their_text_is_not_repeated() {
    let config = config(Preset::Github);
    let (mut login, _) = start(&config, "c", "v", None);
    let answer = body(json!({
        "error": "bad_verification_code",
        "error_description": "The code passed is incorrect or expired. <secret-looking text>",
        "error_uri": "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/#bad-verification-code"
    }));
    let error = advance(&config, &mut login, Some(200), &answer).unwrap_err();
    assert_eq!(error.status(), 401);
    let details = error.details(Preset::Github);
    assert_eq!(
        details,
        "github token call failed: error bad_verification_code"
    );
    // The gateway's own configuration is wrong: 502, as an OIDC `invalid_client`.
    for code in ["incorrect_client_credentials", "redirect_uri_mismatch"] {
        let (mut login, _) = start(&config, "c", "v", None);
        let answer = body(json!({"error": code, "error_description": "d"}));
        let error = advance(&config, &mut login, Some(200), &answer).unwrap_err();
        assert_eq!(error.status(), 502, "{code}");
    }
    // GitHub down, or Envoy's own 504 for a call past its timeout.
    let (mut login, _) = start(&config, "c", "v", None);
    let error = advance(&config, &mut login, Some(503), b"unavailable").unwrap_err();
    assert_eq!(error.status(), 502);
    let (mut login, _) = start(&config, "c", "v", None);
    let error = advance(&config, &mut login, Some(504), b"upstream request timeout").unwrap_err();
    assert_eq!(error, PresetError::NoAnswer(Step::Token));
    assert_eq!(error.status(), 504);
}

#[test]
fn refused_user_call_and_odd_ids() {
    let config = config(Preset::Github);
    let (mut login, _) = start(&config, "c", "v", None);
    call_of(advance(&config, &mut login, Some(200), &token_answer()));
    let mut again = login.clone();
    let error = advance(
        &config,
        &mut login,
        Some(401),
        &body(json!({"message": "Bad credentials", "documentation_url": "https://docs.github.com/rest"})),
    )
    .unwrap_err();
    assert_eq!(error.status(), 502);
    assert_eq!(
        error.details(Preset::Github),
        "github user info call failed: error HTTP 401"
    );
    for id in [
        json!("583231"),
        json!(-1),
        json!(0),
        json!(1.5),
        json!(null),
    ] {
        let mut login = again.clone();
        let answer = body(json!({"login": "octocat", "id": id}));
        assert_eq!(
            advance(&config, &mut login, Some(200), &answer),
            Err(PresetError::Unreadable(Step::User)),
            "id {id}"
        );
    }
    let user = user_of(advance(&config, &mut again, Some(200), &octocat()));
    assert_eq!(user.sub, "583231");
}

#[test]
fn token_answer_without_a_token_is_unreadable() {
    let config = config(Preset::Github);
    for answer in [
        json!({}),
        json!({"access_token": ""}),
        json!({"access_token": 5}),
    ] {
        let (mut login, _) = start(&config, "c", "v", None);
        assert_eq!(
            advance(&config, &mut login, Some(200), &body(answer)),
            Err(PresetError::Unreadable(Step::Token))
        );
    }
}

fn with_orgs() -> PresetConfig {
    let mut config = config(Preset::Github);
    config.allowed_orgs = vec!["Acme".into(), "other".into()];
    config
}

fn at_orgs(config: &PresetConfig) -> PresetLogin {
    let (mut login, _) = start(config, "c", "v", None);
    call_of(advance(config, &mut login, Some(200), &token_answer()));
    let call = call_of(advance(config, &mut login, Some(200), &octocat()));
    assert_eq!(call.path, "/user/orgs?per_page=100");
    assert_eq!(call.target, Target::Api);
    assert_eq!(
        header(&call, "authorization"),
        Some("Bearer gho_16C7e42F292c6912E7710c838347Ae178B4a")
    );
    login
}

#[test]
fn a_member_of_an_allowed_org_gets_in_with_its_orgs() {
    let config = with_orgs();
    let mut login = at_orgs(&config);
    let orgs = body(json!([
        {"login": "github", "id": 1, "url": "https://api.github.com/orgs/github"},
        {"login": "acme", "id": 2}
    ]));
    let user = user_of(advance(&config, &mut login, Some(200), &orgs));
    assert_eq!(user.sub, "583231");
    assert_eq!(
        user.orgs,
        Some(vec!["github".to_string(), "acme".to_string()])
    );
    assert_eq!(user.claims()["orgs"], json!(["github", "acme"]));
}

#[test]
fn a_non_member_is_refused_with_403() {
    let config = with_orgs();
    for orgs in [
        json!([]),
        json!([{"login": "acme-evil"}, {"login": "github"}]),
    ] {
        let mut login = at_orgs(&config);
        let error = advance(&config, &mut login, Some(200), &body(orgs)).unwrap_err();
        assert_eq!(error.status(), 403);
        assert_eq!(
            error.details(Preset::Github),
            "github: the user is a member of no allowed organization"
        );
    }
    // The scope to read orgs was not granted: GitHub answers 403.
    let mut login = at_orgs(&config);
    let error = advance(
        &config,
        &mut login,
        Some(403),
        &body(json!({"message": "x"})),
    )
    .unwrap_err();
    assert_eq!(error.status(), 502);
    let mut login = at_orgs(&config);
    assert_eq!(
        advance(
            &config,
            &mut login,
            Some(200),
            &body(json!({"login": "acme"}))
        ),
        Err(PresetError::Unreadable(Step::Orgs))
    );
    let mut login = at_orgs(&config);
    assert_eq!(
        advance(&config, &mut login, Some(200), &body(json!(["acme"]))),
        Err(PresetError::Unreadable(Step::Orgs))
    );
}
