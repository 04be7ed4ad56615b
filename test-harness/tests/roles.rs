//! Roles from the IdP grant scopes, in a real Envoy with the real OpenID Provider: a user whose
//! role is `user` may chat, a `guest` may list models but not chat, an `admin` reaches an
//! admin-only route; a browser session (roles from the ID token at login) gets the same scopes
//! as a bearer token of the same person.

use std::net::SocketAddr;

use serde_json::{json, Value};
use test_harness::contract::assert_insufficient_scope;
use test_harness::idp::reserve_port;
use test_harness::oidc::{gateway_login, Browser, OidcClient, OidcOptions, OidcProvider, OidcUser};
use test_harness::tokens::{claims, Hs256Key};
use test_harness::{Envoy, Request, Response, Upstream};

const CLIENT_ID: &str = "roles-web";
const CLIENT_SECRET: &str = "roles-client-secret-0123456789abcdef";
const SESSION_SECRET: &str = "roles-session-secret-of-32-bytes!!";
const CLI_SECRET: &str = "roles-cli-secret-of-at-least-32-bytes";
const CLI_ISSUER: &str = "https://cli.test";

/// Who is who at the IdP: (login, roles).
const PEOPLE: [(&str, &str); 3] = [("carol", "admin"), ("dave", "user"), ("erin", "guest")];

fn base(gateway: SocketAddr) -> String {
    format!("http://{gateway}")
}

fn config(gateway: SocketAddr, idp: SocketAddr) -> String {
    json!({
        "providers": [{"name": "cli", "issuer": CLI_ISSUER, "audiences": ["gw"],
                       "hs256_secret": {"env": "CLI_SECRET"}}],
        "roles": {
            "claims": ["realm_access.roles"],
            "grants": {"admin": ["gateway:admin", "chat:read", "chat:write"],
                       "user": ["chat:read", "chat:write"], "guest": ["chat:read"]}
        },
        "rules": [
            {"match": {"path": "/v1/chat/completions", "methods": ["POST"]}, "scopes": ["chat:write"]},
            {"match": {"prefix": "/v1/models"}, "scopes": ["chat:read"]},
            {"match": {"prefix": "/admin/"}, "scopes": ["gateway:admin"]}
        ],
        "default_rule": {"auth": "required", "scopes": ["gateway:admin"]},
        "forward": {"user_header": "x-user-id", "scopes_header": "x-user-scopes"},
        "oauth2": {
            "cluster": "idp", "authority": idp.to_string(), "issuer": format!("http://{idp}"),
            "client_id": CLIENT_ID, "client_secret": {"env": "OAUTH_CLIENT_SECRET"},
            "redirect_uri": format!("{}/oauth2/callback", base(gateway)),
            "allow_insecure_cookies": true,
            "session": {"secret": {"env": "SESSION_SECRET"}}
        }
    })
    .to_string()
}

struct Setup {
    gateway: SocketAddr,
    upstream: Upstream,
    envoy: Envoy,
    _idp: OidcProvider,
}

fn start() -> Setup {
    let gateway = reserve_port();
    let idp_port = reserve_port();
    let users = PEOPLE
        .iter()
        .map(|(login, role)| {
            OidcUser::new(login, &format!("{login}@example.test"), login, "")
                .with_roles(&["offline_access", role])
        })
        .collect();
    let idp = OidcProvider::start(OidcOptions {
        port: idp_port.port(),
        clients: vec![OidcClient {
            client_id: CLIENT_ID.into(),
            client_secret: CLIENT_SECRET.into(),
            redirect_uris: vec![format!("{}/oauth2/callback", base(gateway))],
            post_logout_redirect_uris: vec![],
            auth_method: "client_secret_basic".into(),
        }],
        users,
    });
    let upstream = Upstream::start();
    let envoy = Envoy::builder(&config(gateway, idp_port))
        .upstream(upstream.addr())
        .idp(idp_port)
        .listener_port(gateway.port())
        .env("OAUTH_CLIENT_SECRET", CLIENT_SECRET)
        .env("SESSION_SECRET", SESSION_SECRET)
        .env("CLI_SECRET", CLI_SECRET)
        .start()
        .unwrap_or_else(|e| panic!("envoy did not start: {}", e.log));
    Setup {
        gateway,
        upstream,
        envoy,
        _idp: idp,
    }
}

/// Logs `user` in through the IdP; the session cookie's value.
fn session_of(s: &Setup, user: &str) -> String {
    let mut browser = Browser::new();
    let answer = gateway_login(&mut browser, s.gateway, user, "/");
    assert_eq!(answer.status, 302, "{}", answer.text());
    browser
        .cookie(&s.gateway.to_string(), "gw_session")
        .expect("a session cookie")
}

/// A bearer token of the same person from the API provider, with the same IdP roles claim.
fn bearer_of(user: &str, role: &str) -> String {
    let mut token = claims(CLI_ISSUER, "gw", user, "");
    token["realm_access"] = json!({"roles": ["offline_access", role]});
    Hs256Key::new(CLI_SECRET.as_bytes()).mint(&token)
}

enum Credential<'a> {
    Session(&'a str),
    Bearer(&'a str),
}

fn send(s: &Setup, credential: &Credential, request: Request) -> Response {
    let request = match credential {
        Credential::Session(session) => request
            .header("cookie", format!("gw_session={session}"))
            .header("origin", base(s.gateway)),
        Credential::Bearer(token) => request.bearer(token),
    };
    s.envoy.send(request)
}

/// What one credential may do: (models, chat, admin) statuses, and the scopes the upstream was
/// told of on the models request.
fn abilities(s: &Setup, credential: &Credential) -> (Vec<u16>, Value) {
    let before = s.upstream.requests().len();
    let models = send(s, credential, Request::get("/v1/models"));
    let scopes = s.upstream.requests()[before..]
        .first()
        .and_then(|r| r.header("x-user-scopes").map(str::to_string))
        .map(|scopes| {
            let mut list: Vec<String> = scopes.split(' ').map(str::to_string).collect();
            list.sort();
            json!(list)
        })
        .unwrap_or(Value::Null);
    let chat = send(
        s,
        credential,
        Request::post("/v1/chat/completions").json(&json!({"model": "m", "messages": []})),
    );
    let admin = send(s, credential, Request::get("/admin/stats"));
    if chat.status == 403 {
        assert_insufficient_scope(&chat, "chat:write");
    }
    if admin.status == 403 {
        assert_insufficient_scope(&admin, "gateway:admin");
    }
    (vec![models.status, chat.status, admin.status], scopes)
}

#[test]
fn idp_roles_decide_what_sessions_and_bearer_tokens_may_do_alike() {
    let s = start();
    let expected = [
        ("carol", vec![200, 200, 200]),
        ("dave", vec![200, 200, 403]),
        ("erin", vec![200, 403, 403]),
    ];
    for ((user, role), (_, statuses)) in PEOPLE.iter().zip(expected) {
        let session = session_of(&s, user);
        let token = bearer_of(user, role);
        let by_session = abilities(&s, &Credential::Session(&session));
        let by_token = abilities(&s, &Credential::Bearer(&token));
        assert_eq!(by_session.0, statuses, "{user} ({role}) with a session");
        assert_eq!(
            by_session, by_token,
            "{user}: a session and a bearer token alike"
        );
    }
    // Refused requests never reached the upstream: 3 models + 2 chats + 1 admin, twice.
    assert_eq!(s.upstream.requests().len(), 12);
}
