//! Opaque access tokens from the real OpenID Provider (`oidc.rs`): a user's token by the code
//! flow with PKCE, as a client application gets it, and its revocation (RFC 7009). What the
//! gateway checks by introspection (RFC 7662).

use crate::http::Request;
use crate::oidc::{
    basic_auth, form_encode, login, pkce_challenge, query_param, random_token, Browser, OidcClient,
    OidcProvider,
};

/// Any loopback redirect URI is accepted for clients registered without one.
const CALLBACK: &str = "http://127.0.0.1:9/callback";

/// `user`'s access token for `client`, with `scope` (the provider grants the user's share).
pub fn access_token(idp: &OidcProvider, client: &OidcClient, user: &str, scope: &str) -> String {
    tokens(idp, client, user, scope)["access_token"]
        .as_str()
        .expect("access_token")
        .to_string()
}

/// `user`'s refresh token (`offline_access` is added to `scope`, with `prompt=consent` as
/// OIDC asks).
pub fn refresh_token(idp: &OidcProvider, client: &OidcClient, user: &str, scope: &str) -> String {
    let scope = format!("{scope} offline_access");
    tokens(idp, client, user, &scope)["refresh_token"]
        .as_str()
        .expect("refresh_token")
        .to_string()
}

/// The token endpoint's answer to a code flow for `user`.
fn tokens(idp: &OidcProvider, client: &OidcClient, user: &str, scope: &str) -> serde_json::Value {
    let verifier = random_token();
    let state = random_token();
    let query = form_encode(&[
        ("response_type", "code"),
        ("client_id", &client.client_id),
        ("redirect_uri", CALLBACK),
        ("scope", scope),
        ("state", &state),
        ("nonce", &random_token()),
        ("code_challenge", &pkce_challenge(&verifier)),
        ("code_challenge_method", "S256"),
        ("prompt", "consent"),
    ]);
    let mut browser = Browser::new();
    let back = login(
        &mut browser,
        &idp.url(&format!("/auth?{query}")),
        CALLBACK,
        user,
    );
    let code = query_param(&back, "code").expect("code on the callback");
    let response = token_call(
        idp,
        client,
        "/token",
        &[
            ("grant_type", "authorization_code"),
            ("code", &code),
            ("code_verifier", &verifier),
            ("redirect_uri", CALLBACK),
        ],
    );
    assert_eq!(response.status, 200, "token: {}", response.text());
    let body = response.json();
    let access = body["access_token"].as_str().expect("access_token");
    assert_eq!(access.split('.').count(), 1, "an opaque token, not a JWT");
    body
}

/// Revokes `token` at the provider (as its client).
pub fn revoke(idp: &OidcProvider, client: &OidcClient, token: &str) {
    let response = token_call(
        idp,
        client,
        "/token/revocation",
        &[("token", token), ("token_type_hint", "access_token")],
    );
    assert_eq!(response.status, 200, "revocation: {}", response.text());
}

fn token_call(
    idp: &OidcProvider,
    client: &OidcClient,
    path: &str,
    form: &[(&str, &str)],
) -> crate::http::Response {
    Request::post(path)
        .header("host", idp.host_port())
        .header("content-type", "application/x-www-form-urlencoded")
        .header(
            "authorization",
            basic_auth(&client.client_id, &client.client_secret),
        )
        .body(form_encode(form))
        .send(idp.addr)
        .expect("the provider answers")
}
