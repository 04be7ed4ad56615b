//! The browser login driven through the gateway's entry points with a fake host: the login
//! redirect, the callback's token exchange, the ID token's verification (waiting for its keys
//! when the IdP rotated them), the session cookie, logout, and requests that end midway. Every
//! callback is answered exactly once, and none is left waiting.

use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use base64::Engine;
use jwt_simple::prelude::{Claims, Duration, EdDSAKeyPairLike};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use crate::config::FLOW_COOKIE;
use crate::error::LocalReply;
use crate::fake_host::FakeHost;
use crate::gateway::flow::Phase;
use crate::gateway::tests::{effects_on, jwks, reply_of, Key, Worker, CONFIG, NOW_MS};
use crate::gateway::{Effect, Next, Output};
use crate::oauth2::{
    form_encode, open_flow, parse_query, pkce_challenge_s256, query_value, seal_flow, FlowState,
    FLOW_TTL_S,
};
use crate::outgoing::{CallResponse, OutgoingCall};

mod presets;
mod role_limits;

/// `oauth2.session.secret` of [`CONFIG`].
const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
const ISSUER: &str = "https://idp.test";
const REDIRECT_URI: &str = "https://chat.test/oauth2/callback";
const LOGIN: &str = "/oauth2/login";
const CALLBACK: &str = "/oauth2/callback";
const LOGOUT: &str = "/oauth2/logout";
const SESSION_COOKIE: &str = "gw_session";
/// Where the calls go, on the IdP's cluster.
const DISCOVERY: &str = "/.well-known/openid-configuration";
const CERTS: &str = "/certs";
const TOKEN: &str = "/token";
/// `oauth2.timeout_ms` (its default): the token call's and the ID token keys' fetch timeout.
const IDP_TIMEOUT_MS: u64 = 5000;

fn discovery_document() -> Value {
    json!({
        "issuer": ISSUER,
        "authorization_endpoint": "https://idp.test/authorize",
        "token_endpoint": "https://idp.test/token",
        "jwks_uri": "https://idp.test/certs",
        "end_session_endpoint": "https://idp.test/logout",
        "response_types_supported": ["code"]
    })
}

fn json_answer(status: u32, body: &Value) -> CallResponse {
    CallResponse {
        status: Some(status),
        body: Some(body.to_string().into_bytes()),
    }
}

/// The last call dispatched to `path`: its token, the call and its owner.
fn last_call(worker: &Worker, path: &str) -> (u32, OutgoingCall, Option<u32>) {
    worker
        .host
        .state
        .calls
        .borrow()
        .iter()
        .rev()
        .find(|(_, call, _)| call.path() == path)
        .cloned()
        .unwrap_or_else(|| panic!("a call to {path}"))
}

fn answer_last(worker: &mut Worker, path: &str, response: CallResponse) -> Output {
    let (token, _, _) = last_call(worker, path);
    worker.answer(token, response)
}

fn calls_to(worker: &Worker, path: &str) -> usize {
    worker.host.state.calls_to(path).len()
}

fn call_header<'a>(call: &'a OutgoingCall, name: &str) -> Option<&'a str> {
    call.headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// A worker whose discovery document and ID-token keys arrived the way they do in Envoy: the
/// first tick fetches the document, the next one the keys it names.
fn ready_worker_with(config: &str, document: &Value, keys: &[&Key]) -> Worker {
    let mut worker = Worker::with_config(config, FakeHost::new(NOW_MS));
    worker.gateway.on_tick();
    answer_last(&mut worker, DISCOVERY, json_answer(200, document));
    worker.gateway.on_tick();
    answer_last(&mut worker, CERTS, jwks(keys));
    worker
}

fn ready_worker(keys: &[&Key]) -> Worker {
    ready_worker_with(CONFIG, &discovery_document(), keys)
}

/// A browser's GET: a page navigation, with `cookies`.
/// Every browser request's W3C trace context.
const TRACEPARENT: &str = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";

fn browse(worker: &mut Worker, id: u32, path: &str, cookies: &[(&str, &str)]) -> Output {
    let mut headers: Vec<(String, String)> = [
        (":method", "GET"),
        (":path", path),
        (":scheme", "https"),
        (":authority", "chat.test"),
        ("accept", "text/html,application/xhtml+xml"),
    ]
    .into_iter()
    .map(|(n, v)| (n.to_string(), v.to_string()))
    .collect();
    headers.push(("x-request-id".into(), format!("req-{id}")));
    headers.push(("traceparent".into(), TRACEPARENT.into()));
    if !cookies.is_empty() {
        let cookie: Vec<String> = cookies.iter().map(|(n, v)| format!("{n}={v}")).collect();
        headers.push(("cookie".into(), cookie.join("; ")));
    }
    worker.gateway.on_request_headers(id, headers, true)
}

fn header<'a>(reply: &'a LocalReply, name: &str) -> Option<&'a str> {
    reply
        .headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

fn set_cookies(reply: &LocalReply) -> Vec<&str> {
    reply
        .headers
        .iter()
        .filter(|(n, _)| n == "set-cookie")
        .map(|(_, v)| v.as_str())
        .collect()
}

/// The `Set-Cookie` of cookie `name`, if the reply has one.
fn set_cookie_of<'a>(reply: &'a LocalReply, name: &str) -> Option<&'a str> {
    let prefix = format!("{name}=");
    set_cookies(reply)
        .into_iter()
        .find(|c| c.starts_with(&prefix))
}

/// The value a `Set-Cookie` sets.
fn cookie_value(set_cookie: &str) -> &str {
    let pair = set_cookie.split(';').next().unwrap_or("");
    pair.split_once('=').map_or("", |(_, v)| v)
}

/// The `Set-Cookie` deleting cookie `name`, with the attributes it was set with.
fn cleared(name: &str) -> String {
    format!("{name}=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax")
}

fn error_of(reply: &LocalReply) -> Value {
    let body: Value = serde_json::from_str(&reply.body)
        .unwrap_or_else(|e| panic!("a JSON error body ({e}): {}", reply.body));
    body["error"].clone()
}

/// The query of a `Location`, decoded.
fn location_query(reply: &LocalReply) -> Vec<(String, String)> {
    let location = header(reply, "location").expect("a location");
    location
        .split_once('?')
        .map(|(_, q)| parse_query(q))
        .unwrap_or_default()
}

fn now_s(worker: &Worker) -> u64 {
    worker.host.state.now_ms.get() / 1000
}

/// The request was answered and nothing of it is left: not waiting, no call in flight for it.
fn assert_settled(worker: &Worker, id: u32) {
    let flow = worker
        .gateway
        .flows
        .get(&id)
        .unwrap_or_else(|| panic!("request {id} is kept until it ends"));
    assert!(flow.answered_locally(), "request {id} was answered");
    assert!(
        !worker.gateway.waiting.contains(&id),
        "request {id} waits no more"
    );
    assert!(
        !worker
            .gateway
            .calls
            .values()
            .any(|(call, _)| call.request() == Some(id)),
        "no call in flight for request {id}"
    );
}

/// The only effect on request `id` is its reply.
fn only_reply(output: &Output, id: u32) -> LocalReply {
    let effects = effects_on(output, id);
    assert!(
        matches!(effects.as_slice(), [Effect::Reply(_)]),
        "one reply for {id}: {effects:?}"
    );
    assert!(
        output.effects.iter().all(|(target, _)| *target == id),
        "nothing else is touched: {output:?}"
    );
    reply_of(output, id)
}

/// A login redirect that was answered, and what the browser keeps from it.
struct Started {
    reply: LocalReply,
    /// The flow sealed in the flow cookie.
    flow: FlowState,
    /// The flow cookie's value.
    cookie: String,
}

fn start_login(worker: &mut Worker, id: u32, path: &str) -> Started {
    let out = browse(worker, id, path, &[]);
    assert_eq!(out.next, Next::Pause);
    let reply = only_reply(&out, id);
    assert_eq!(reply.status, 302, "{reply:?}");
    let query = location_query(&reply);
    let state = query_value(&query, "state").expect("a state");
    let cookie =
        cookie_value(set_cookie_of(&reply, FLOW_COOKIE).expect("a flow cookie")).to_string();
    let flow = open_flow(SECRET, Some(&cookie), Some(state), now_s(worker))
        .expect("the flow cookie opens with the state sent to the IdP");
    Started {
        reply,
        flow,
        cookie,
    }
}

/// The callback the IdP sends the browser to, with `query` and (when `Some`) the flow cookie.
fn callback(worker: &mut Worker, id: u32, query: &[(&str, &str)], flow: Option<&str>) -> Output {
    let path = format!("{CALLBACK}?{}", form_encode(query));
    let cookies: Vec<(&str, &str)> = flow.map(|c| (FLOW_COOKIE, c)).into_iter().collect();
    browse(worker, id, &path, &cookies)
}

/// A login on request `id` and its callback on `id + 1`, paused at the token call: the flow and
/// the token call's token.
fn until_token_call(worker: &mut Worker, id: u32) -> (Started, u32) {
    let started = start_login(worker, id, LOGIN);
    let state = started.flow.state.clone();
    let out = callback(
        worker,
        id + 1,
        &[("code", "the-code"), ("state", &state)],
        Some(&started.cookie),
    );
    assert_eq!(out.next, Next::Pause);
    assert!(out.effects.is_empty(), "{out:?}");
    let (token, _, owner) = last_call(worker, TOKEN);
    assert_eq!(
        owner,
        Some(id + 1),
        "the token call belongs to the callback"
    );
    (started, token)
}

#[derive(Serialize, Deserialize)]
struct Profile {
    email: String,
    name: String,
}

/// An ID token from the IdP, for client `audience`.
fn id_token(key: &Key, sub: &str, nonce: Option<&str>, audience: &str) -> String {
    let claims = Claims::with_custom_claims(
        Profile {
            email: format!("{sub}@example.test"),
            name: format!("{sub} example"),
        },
        Duration::from_mins(5),
    )
    .with_issuer(ISSUER)
    .with_audience(audience)
    .with_subject(sub);
    let claims = match nonce {
        Some(nonce) => claims.with_nonce(nonce),
        None => claims,
    };
    key.pair.sign(claims).unwrap()
}

fn token_response(id_token: &str) -> CallResponse {
    json_answer(
        200,
        &json!({"access_token": "at", "token_type": "Bearer", "expires_in": 300,
                "id_token": id_token, "scope": "openid profile email"}),
    )
}

/// The claims of a session token.
fn session_claims(session: &str) -> Value {
    let payload = session.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
}

/// A whole login of `sub` (login on `id`, callback on `id + 1`): the callback's answer and the
/// ID token the IdP gave.
fn log_in(worker: &mut Worker, id: u32, key: &Key, sub: &str) -> (LocalReply, String) {
    let (started, token) = until_token_call(worker, id);
    let id_token = id_token(key, sub, Some(&started.flow.nonce), "web");
    let out = worker.answer(token, token_response(&id_token));
    let reply = only_reply(&out, id + 1);
    assert_eq!(reply.status, 302, "{reply:?}");
    (reply, id_token)
}

#[test]
fn login_is_unavailable_until_discovery_and_the_id_token_keys_arrive() {
    let key = Key::new("idp-1");
    let mut worker = Worker::new(FakeHost::new(NOW_MS));

    // Nothing known yet: never fail open.
    let out = browse(&mut worker, 1, LOGIN, &[]);
    assert_eq!(out.next, Next::Pause);
    let reply = only_reply(&out, 1);
    assert_eq!(reply.status, 503);
    assert_eq!(header(&reply, "retry-after"), Some("1"));
    assert_eq!(header(&reply, "location"), None);
    assert!(set_cookies(&reply).is_empty(), "{reply:?}");
    assert_eq!(error_of(&reply)["code"], "LOGIN_UNAVAILABLE");
    assert!(
        worker.host.state.calls.borrow().is_empty(),
        "the login request itself dispatches nothing"
    );
    assert_settled(&worker, 1);
    let audit = worker.audit(1);
    assert_eq!(audit["event"], "login");
    assert_eq!(audit["decision"], "login_failed");
    assert_eq!(audit["code"], "LOGIN_UNAVAILABLE");
    assert_eq!(audit["sub"], Value::Null);
    assert_eq!(worker.host.state.counter("oauth2_logins_failed"), 1);

    // The tick fetches the discovery document from the IdP's cluster.
    worker.gateway.on_tick();
    let (_, call, owner) = last_call(&worker, DISCOVERY);
    assert_eq!(owner, None, "the worker's own call");
    assert_eq!(call.cluster, "idp");
    assert_eq!(call_header(&call, ":method"), Some("GET"));
    assert_eq!(call_header(&call, ":authority"), Some("idp"));
    assert_eq!(
        calls_to(&worker, CERTS),
        0,
        "the ID token's keys are located by discovery"
    );
    answer_last(
        &mut worker,
        DISCOVERY,
        json_answer(200, &discovery_document()),
    );

    // Endpoints known, keys not yet: still unavailable.
    let out = browse(&mut worker, 2, LOGIN, &[]);
    assert_eq!(only_reply(&out, 2).status, 503);
    assert_settled(&worker, 2);

    // The next tick fetches the keys at the discovered jwks_uri.
    worker.gateway.on_tick();
    assert_eq!(calls_to(&worker, CERTS), 1);
    assert_eq!(
        calls_to(&worker, DISCOVERY),
        1,
        "discovery is not fetched again"
    );
    answer_last(&mut worker, CERTS, jwks(&[&key]));

    let started = start_login(&mut worker, 3, LOGIN);
    let reply = &started.reply;
    let location = header(reply, "location").unwrap();
    assert!(
        location.starts_with("https://idp.test/authorize?"),
        "{location}"
    );
    assert!(reply.body.is_empty());
    assert_eq!(header(reply, "cache-control"), Some("no-store"));
    let query = location_query(reply);
    let param = |name: &str| query_value(&query, name).unwrap_or_else(|| panic!("{name}"));
    assert_eq!(param("response_type"), "code");
    assert_eq!(param("client_id"), "web");
    assert_eq!(param("redirect_uri"), REDIRECT_URI);
    assert_eq!(param("scope"), "openid profile email");
    assert_eq!(param("state"), started.flow.state);
    assert_eq!(param("nonce"), started.flow.nonce);
    assert_eq!(param("code_challenge_method"), "S256");
    assert_eq!(
        param("code_challenge"),
        pkce_challenge_s256(&started.flow.verifier),
        "the challenge of the verifier kept in the flow cookie"
    );
    assert_eq!(started.flow.verifier.len(), 43, "256 random bits");
    assert!(!started.flow.state.is_empty() && !started.flow.nonce.is_empty());
    assert_ne!(started.flow.state, started.flow.nonce, "drawn separately");
    assert!(
        !location.contains(&started.flow.verifier),
        "the verifier never goes through the IdP"
    );
    // The flow cookie: short-lived, HttpOnly, Secure, Lax (it must come back on the IdP's redirect).
    assert_eq!(set_cookies(reply).len(), 1);
    assert_eq!(
        set_cookie_of(reply, FLOW_COOKIE).unwrap(),
        format!(
            "{FLOW_COOKIE}={}; Path=/; Max-Age={FLOW_TTL_S}; HttpOnly; Secure; SameSite=Lax",
            started.cookie
        )
    );
    assert_eq!(started.flow.rd, "/");
    assert_eq!(started.flow.expires_at, now_s(&worker) + FLOW_TTL_S);

    assert_settled(&worker, 3);
    let audit = worker.audit(3);
    assert_eq!(audit["event"], "login");
    assert_eq!(audit["decision"], "login_started");
    assert_eq!(audit["code"], Value::Null);
    assert_eq!(audit["path"], LOGIN);
    assert_eq!(worker.host.state.counter("oauth2_logins_started"), 1);
    assert_eq!(worker.host.state.counter("oauth2_logins_failed"), 2);
}

#[test]
fn login_keeps_only_a_same_origin_rd() {
    let key = Key::new("idp-1");
    let mut worker = ready_worker(&[&key]);
    let cases = [
        ("rd=%2Fchat%2Fc%2F1%3Fx%3D1", "/chat/c/1?x=1"),
        ("rd=/v1/models", "/v1/models"),
        ("rd=https%3A%2F%2Fevil.test%2F", "/"),
        ("rd=//evil.test", "/"),
        ("rd=%2F%2Fevil.test", "/"),
        ("rd=/%5Cevil.test", "/"),
        ("rd=/a/../..//evil.test", "/"),
        ("other=1", "/"),
    ];
    for (i, (query, rd)) in cases.iter().enumerate() {
        let started = start_login(&mut worker, 1 + i as u32, &format!("{LOGIN}?{query}"));
        assert_eq!(started.flow.rd, *rd, "{query}");
        let location = header(&started.reply, "location").unwrap();
        assert!(!location.contains("evil"), "{location}");
    }
}

#[test]
fn a_callback_exchanges_the_code_and_starts_the_session() {
    let key = Key::new("idp-1");
    let mut worker = ready_worker(&[&key]);
    let started = start_login(&mut worker, 1, &format!("{LOGIN}?rd=%2Fchat%3Fx%3D1"));
    assert_eq!(started.flow.rd, "/chat?x=1");

    let state = started.flow.state.clone();
    let out = callback(
        &mut worker,
        2,
        &[("code", "the-code"), ("state", &state)],
        Some(&started.cookie),
    );
    assert_eq!(out.next, Next::Pause, "paused for the token endpoint");
    assert!(out.effects.is_empty(), "{out:?}");
    assert!(matches!(
        worker.gateway.flows[&2].phase,
        Phase::TokenExchange(_)
    ));
    assert_eq!(calls_to(&worker, TOKEN), 1);

    // The token request: the code with its PKCE verifier, authenticated with HTTP Basic (the
    // default when discovery lists no method).
    let (token, call, owner) = last_call(&worker, TOKEN);
    assert_eq!(owner, Some(2));
    assert_eq!(call.cluster, "idp");
    assert_eq!(call.timeout_ms, IDP_TIMEOUT_MS);
    assert_eq!(call_header(&call, ":method"), Some("POST"));
    assert_eq!(call_header(&call, ":authority"), Some("idp"));
    assert_eq!(
        call_header(&call, "content-type"),
        Some("application/x-www-form-urlencoded")
    );
    assert_eq!(call_header(&call, "accept"), Some("application/json"));
    assert_eq!(call_header(&call, "traceparent"), Some(TRACEPARENT));
    let basic = format!("Basic {}", STANDARD.encode("web:s"));
    assert_eq!(call_header(&call, "authorization"), Some(basic.as_str()));
    let form = parse_query(std::str::from_utf8(call.body.as_deref().unwrap()).unwrap());
    assert_eq!(query_value(&form, "grant_type"), Some("authorization_code"));
    assert_eq!(query_value(&form, "code"), Some("the-code"));
    assert_eq!(query_value(&form, "redirect_uri"), Some(REDIRECT_URI));
    assert_eq!(
        query_value(&form, "code_verifier"),
        Some(started.flow.verifier.as_str())
    );
    assert_eq!(query_value(&form, "client_id"), Some("web"));
    assert_eq!(query_value(&form, "client_secret"), None, "{form:?}");
    assert_eq!(form.len(), 5, "{form:?}");

    // The IdP answers with an ID token signed by a key the gateway has.
    let id_token = id_token(&key, "alice", Some(&started.flow.nonce), "web");
    let out = worker.answer(token, token_response(&id_token));
    let reply = only_reply(&out, 2);
    assert_eq!(reply.status, 302, "{reply:?}");
    assert_eq!(header(&reply, "location"), Some("/chat?x=1"), "back to rd");
    assert_eq!(header(&reply, "cache-control"), Some("no-store"));
    assert_eq!(set_cookies(&reply).len(), 2, "{reply:?}");
    let session_cookie = set_cookie_of(&reply, SESSION_COOKIE).expect("a session cookie");
    let session = cookie_value(session_cookie);
    assert_eq!(
        session_cookie,
        format!("{SESSION_COOKIE}={session}; Path=/; Max-Age=3600; HttpOnly; Secure; SameSite=Lax")
    );
    assert_eq!(
        set_cookie_of(&reply, FLOW_COOKIE),
        Some(cleared(FLOW_COOKIE).as_str()),
        "the flow is over"
    );

    let claims = session_claims(session);
    assert_eq!(claims["iss"], "urn:ai-gateway:session");
    assert_eq!(claims["aud"], "web");
    assert_eq!(claims["sub"], "alice");
    assert_eq!(claims["email"], "alice@example.test");
    assert_eq!(claims["name"], "alice example");
    assert_eq!(
        claims["scope"], "",
        "none of the IdP's scopes is one the rules require"
    );
    assert!(claims["sid"].as_str().is_some_and(|sid| !sid.is_empty()));
    assert_eq!(claims["idt"], id_token.as_str(), "kept for logout");
    assert_eq!(
        claims["exp"].as_u64().unwrap() - claims["iat"].as_u64().unwrap(),
        3600
    );

    assert_settled(&worker, 2);
    let audit = worker.audit(2);
    assert_eq!(audit["event"], "login");
    assert_eq!(audit["decision"], "login_succeeded");
    assert_eq!(audit["sub"], "alice");
    assert_eq!(audit["code"], Value::Null);
    assert_eq!(audit["path"], CALLBACK, "never the code in the query");
    assert!(!audit.to_string().contains("the-code"), "{audit}");
    let counter = |name| worker.host.state.counter(name);
    assert_eq!(counter("oauth2_logins_started"), 1);
    assert_eq!(counter("oauth2_logins_succeeded"), 1);
    assert_eq!(counter("oauth2_logins_failed"), 0);
}

#[test]
fn client_secret_post_from_discovery_puts_the_secret_in_the_form() {
    let key = Key::new("idp-1");
    let mut document = discovery_document();
    document["token_endpoint_auth_methods_supported"] = json!(["client_secret_post"]);
    let mut worker = ready_worker_with(CONFIG, &document, &[&key]);
    until_token_call(&mut worker, 1);
    let (_, call, _) = last_call(&worker, TOKEN);
    assert_eq!(call_header(&call, "authorization"), None);
    let form = parse_query(std::str::from_utf8(call.body.as_deref().unwrap()).unwrap());
    assert_eq!(query_value(&form, "client_id"), Some("web"));
    assert_eq!(query_value(&form, "client_secret"), Some("s"));
    assert_eq!(form.len(), 6, "{form:?}");
}

#[test]
fn a_callback_without_its_flow_is_refused_and_calls_nothing() {
    let key = Key::new("idp-1");
    let mut worker = ready_worker(&[&key]);
    let started = start_login(&mut worker, 1, LOGIN);
    let state = started.flow.state.as_str();
    let nonce = started.flow.nonce.as_str();
    let cookie = started.cookie.as_str();
    let foreign = seal_flow(
        SECRET,
        &FlowState {
            state: "the-attackers-state".into(),
            ..started.flow.clone()
        },
    );
    let mut tampered = started.cookie.clone();
    let first = if tampered.starts_with('A') { "B" } else { "A" };
    tampered.replace_range(0..1, first);
    // What happened, the callback's query, its flow cookie, the refusal's details.
    type Case<'a> = (&'a str, Vec<(&'a str, &'a str)>, Option<&'a str>, &'a str);
    let cases: [Case; 10] = [
        (
            "state mismatch",
            vec![("code", "c"), ("state", "forged")],
            Some(cookie),
            "state does not match",
        ),
        (
            "the nonce for the state",
            vec![("code", "c"), ("state", nonce)],
            Some(cookie),
            "state does not match",
        ),
        (
            "no state",
            vec![("code", "c")],
            Some(cookie),
            "state does not match",
        ),
        (
            "no flow cookie",
            vec![("code", "c"), ("state", state)],
            None,
            "login state cookie is missing",
        ),
        (
            "empty flow cookie",
            vec![("code", "c"), ("state", state)],
            Some(""),
            "login state cookie is missing",
        ),
        (
            "another login's cookie (login CSRF)",
            vec![("code", "c"), ("state", state)],
            Some(&foreign),
            "state does not match",
        ),
        (
            "tampered cookie",
            vec![("code", "c"), ("state", state)],
            Some(&tampered),
            "login state cookie was tampered with",
        ),
        (
            "the IdP's error",
            vec![
                ("error", "access_denied"),
                ("error_description", "<b>denied</b>"),
                ("state", state),
            ],
            Some(cookie),
            "the identity provider refused the login",
        ),
        (
            "no code",
            vec![("state", state)],
            Some(cookie),
            "no authorization code",
        ),
        (
            "empty code",
            vec![("code", ""), ("state", state)],
            Some(cookie),
            "no authorization code",
        ),
    ];
    for (i, (case, query, flow, details)) in cases.iter().enumerate() {
        let id = 10 + i as u32;
        let out = callback(&mut worker, id, query, *flow);
        assert_eq!(out.next, Next::Pause, "{case}");
        let reply = only_reply(&out, id);
        assert_eq!(reply.status, 401, "{case}");
        assert_eq!(
            header(&reply, "www-authenticate"),
            Some("Bearer realm=\"ai-gateway\""),
            "{case}"
        );
        let error = error_of(&reply);
        assert_eq!(error["code"], "LOGIN_FAILED", "{case}");
        assert_eq!(error["details"], *details, "{case}");
        assert!(
            !reply.body.contains("<b>"),
            "{case}: the IdP's text is not echoed"
        );
        assert_eq!(
            set_cookies(&reply),
            vec![cleared(FLOW_COOKIE).as_str()],
            "{case}: the flow cookie goes, no session"
        );
        assert_settled(&worker, id);
        let audit = worker.audit(id);
        assert_eq!(audit["decision"], "login_failed", "{case}");
        assert_eq!(audit["code"], "LOGIN_FAILED", "{case}");
        assert_eq!(audit["sub"], Value::Null, "{case}");
    }
    assert_eq!(calls_to(&worker, TOKEN), 0, "no code was exchanged");

    // A flow cookie past its lifetime.
    worker.host.state.advance(FLOW_TTL_S * 1000);
    let out = callback(
        &mut worker,
        30,
        &[("code", "c"), ("state", state)],
        Some(cookie),
    );
    let reply = only_reply(&out, 30);
    assert_eq!(reply.status, 401);
    assert_eq!(error_of(&reply)["details"], "login state cookie expired");
    assert_settled(&worker, 30);
    assert_eq!(calls_to(&worker, TOKEN), 0);
    assert_eq!(
        worker.host.state.counter("oauth2_logins_failed"),
        cases.len() as u64 + 1
    );
    assert_eq!(worker.host.state.counter("oauth2_logins_succeeded"), 0);
}

#[test]
fn the_token_endpoints_refusals_and_silence_answer_the_callback() {
    let key = Key::new("idp-1");
    let mut worker = ready_worker(&[&key]);
    let text = |status: u32, body: &str| CallResponse {
        status: Some(status),
        body: Some(body.as_bytes().to_vec()),
    };
    let cases = [
        (
            "invalid_grant",
            json_answer(
                400,
                &json!({"error": "invalid_grant", "error_description": "<script>x</script>"}),
            ),
            401,
            "the authorization code is invalid, expired or already used",
        ),
        (
            "another OAuth error",
            json_answer(401, &json!({"error": "invalid_client"})),
            502,
            "token endpoint refused: invalid_client",
        ),
        (
            "garbage",
            text(200, "<html>hello</html>"),
            502,
            "token response is not a JSON object",
        ),
        (
            "a server error",
            text(500, "stack trace"),
            502,
            "token endpoint answered HTTP 500",
        ),
        (
            "no id_token",
            json_answer(200, &json!({"access_token": "at"})),
            502,
            "token response has no id_token",
        ),
        (
            "a gateway timeout",
            text(504, "upstream request timeout"),
            504,
            "the token endpoint did not answer in time",
        ),
        (
            "no answer at all",
            CallResponse::NONE,
            504,
            "the token endpoint did not answer in time",
        ),
    ];
    for (i, (case, response, status, details)) in cases.iter().enumerate() {
        let id = 10 + 2 * i as u32;
        let (_, token) = until_token_call(&mut worker, id);
        let out = worker.answer(token, response.clone());
        let reply = only_reply(&out, id + 1);
        assert_eq!(reply.status, *status, "{case}");
        let error = error_of(&reply);
        assert_eq!(error["code"], "LOGIN_FAILED", "{case}");
        assert_eq!(error["details"], *details, "{case}");
        assert!(!reply.body.contains("script"), "{case}");
        assert_eq!(
            header(&reply, "www-authenticate").is_some(),
            *status == 401,
            "{case}: a challenge with every 401, only then"
        );
        assert_eq!(
            set_cookies(&reply),
            vec![cleared(FLOW_COOKIE).as_str()],
            "{case}: the spent flow goes, no session"
        );
        assert_settled(&worker, id + 1);
        let audit = worker.audit(id + 1);
        assert_eq!(audit["decision"], "login_failed", "{case}");
        assert_eq!(audit["code"], "LOGIN_FAILED", "{case}");
        assert_eq!(audit["sub"], Value::Null, "{case}");
    }
    assert_eq!(
        worker.host.state.counter("oauth2_logins_failed"),
        cases.len() as u64
    );
    assert_eq!(worker.host.state.counter("oauth2_logins_succeeded"), 0);
}

#[test]
fn a_token_call_that_cannot_be_dispatched_answers_502_at_once() {
    let key = Key::new("idp-1");
    let mut worker = ready_worker(&[&key]);
    let started = start_login(&mut worker, 1, LOGIN);
    worker.host.state.refuse_dispatch.set(true);
    let state = started.flow.state.clone();
    let out = callback(
        &mut worker,
        2,
        &[("code", "c"), ("state", &state)],
        Some(&started.cookie),
    );
    let reply = only_reply(&out, 2);
    assert_eq!(reply.status, 502);
    assert_eq!(
        error_of(&reply)["details"],
        "the token endpoint could not be called"
    );
    assert_eq!(set_cookies(&reply), vec![cleared(FLOW_COOKIE).as_str()]);
    assert_settled(&worker, 2);
    assert_eq!(worker.audit(2)["decision"], "login_failed");
}

#[test]
fn a_callback_before_discovery_is_unavailable_and_keeps_its_flow() {
    let mut worker = Worker::new(FakeHost::new(NOW_MS));
    let flow = FlowState {
        state: "st4te".into(),
        nonce: "n0nce".into(),
        verifier: "v".repeat(43),
        rd: "/".into(),
        expires_at: now_s(&worker) + FLOW_TTL_S,
    };
    let cookie = seal_flow(SECRET, &flow);
    let out = callback(
        &mut worker,
        1,
        &[("code", "c"), ("state", "st4te")],
        Some(&cookie),
    );
    let reply = only_reply(&out, 1);
    assert_eq!(reply.status, 503);
    assert_eq!(header(&reply, "retry-after"), Some("1"));
    assert_eq!(error_of(&reply)["code"], "LOGIN_UNAVAILABLE");
    assert!(
        set_cookies(&reply).is_empty(),
        "the code is not spent: the flow may be retried"
    );
    assert_eq!(calls_to(&worker, TOKEN), 0);
    assert_settled(&worker, 1);
    let audit = worker.audit(1);
    assert_eq!(audit["decision"], "login_failed");
    assert_eq!(audit["code"], "LOGIN_UNAVAILABLE");
}

#[test]
fn a_callback_reaching_another_worker_uses_the_shared_discovery_and_keys() {
    let key = Key::new("idp-1");
    let mut one = ready_worker(&[&key]);
    let started = start_login(&mut one, 1, LOGIN);
    // A worker that never ticked: it adopts what the first one fetched.
    let mut two = Worker::new(one.host.sibling());
    let state = started.flow.state.clone();
    let out = callback(
        &mut two,
        1,
        &[("code", "c"), ("state", &state)],
        Some(&started.cookie),
    );
    assert_eq!(out.next, Next::Pause);
    assert!(out.effects.is_empty(), "{out:?}");
    assert_eq!(calls_to(&two, TOKEN), 1);
    assert_eq!(calls_to(&one, TOKEN), 0);
    let id_token = id_token(&key, "alice", Some(&started.flow.nonce), "web");
    let out = answer_last(&mut two, TOKEN, token_response(&id_token));
    let reply = only_reply(&out, 1);
    assert_eq!(reply.status, 302, "{reply:?}");
    assert!(set_cookie_of(&reply, SESSION_COOKIE).is_some());
    assert_eq!(calls_to(&two, CERTS), 0, "no fetch of its own");
    assert_settled(&two, 1);
    assert_eq!(two.audit(1)["sub"], "alice");
    assert_eq!(two.host.state.counter("oauth2_logins_succeeded"), 1);
}

#[test]
fn an_id_token_that_does_not_verify_fails_the_login() {
    let key = Key::new("idp-1");
    let impostor = Key::new("idp-1");
    let mut worker = ready_worker(&[&key]);
    type Mint<'a> = &'a dyn Fn(&str) -> String;
    let cases: [(&str, Mint, u32, &str); 4] = [
        (
            "another login's nonce",
            &|_| id_token(&key, "alice", Some("another-nonce"), "web"),
            401,
            "ID token nonce does not match",
        ),
        (
            "no nonce",
            &|_| id_token(&key, "alice", None, "web"),
            401,
            "ID token has no nonce",
        ),
        (
            "for another client",
            &|nonce| id_token(&key, "alice", Some(nonce), "gw"),
            502,
            "ID token rejected: ",
        ),
        (
            "a forged signature under a known kid",
            &|nonce| id_token(&impostor, "alice", Some(nonce), "web"),
            502,
            "ID token rejected: ",
        ),
    ];
    for (i, (case, mint, status, details)) in cases.iter().enumerate() {
        let id = 10 + 2 * i as u32;
        let (started, token) = until_token_call(&mut worker, id);
        let out = worker.answer(token, token_response(&mint(&started.flow.nonce)));
        let reply = only_reply(&out, id + 1);
        assert_eq!(reply.status, *status, "{case}: {reply:?}");
        let error = error_of(&reply);
        assert_eq!(error["code"], "LOGIN_FAILED", "{case}");
        assert!(
            error["details"].as_str().unwrap().starts_with(details),
            "{case}: {error}"
        );
        assert_eq!(
            set_cookies(&reply),
            vec![cleared(FLOW_COOKIE).as_str()],
            "{case}: no session"
        );
        assert_settled(&worker, id + 1);
        let audit = worker.audit(id + 1);
        assert_eq!(audit["decision"], "login_failed", "{case}");
        assert_eq!(audit["sub"], Value::Null, "{case}");
    }
    assert_eq!(
        calls_to(&worker, CERTS),
        1,
        "a known kid is never refetched"
    );
    assert_eq!(worker.host.state.counter("oauth2_logins_succeeded"), 0);
}

/// A worker whose ID-token keys are older than `min_refresh_interval_s` (30 s), so an unknown
/// `kid` may refetch them.
fn worker_past_refresh_interval(keys: &[&Key]) -> Worker {
    let worker = ready_worker(keys);
    worker.host.state.advance(31_000);
    worker
}

#[test]
fn an_id_token_signed_by_a_rotated_key_waits_for_the_refetch() {
    let (old, new) = (Key::new("idp-1"), Key::new("idp-2"));
    let mut worker = worker_past_refresh_interval(&[&old]);
    let (started, token) = until_token_call(&mut worker, 1);
    let id_token = id_token(&new, "alice", Some(&started.flow.nonce), "web");
    let out = worker.answer(token, token_response(&id_token));
    assert!(
        out.effects.is_empty(),
        "the code is spent: the callback waits for the keys ({out:?})"
    );
    assert!(matches!(
        worker.gateway.flows[&2].phase,
        Phase::WaitingIdTokenKeys(_)
    ));
    assert!(worker.gateway.waiting.contains(&2));
    assert_eq!(calls_to(&worker, CERTS), 2, "one refetch");
    let (_, call, _) = last_call(&worker, CERTS);
    assert_eq!(call.cluster, "idp");
    assert_eq!(call.timeout_ms, IDP_TIMEOUT_MS);

    // Ticks meanwhile neither answer it nor fetch again.
    for _ in 0..5 {
        worker.host.state.advance(100);
        let ticked = worker.gateway.on_tick();
        assert!(effects_on(&ticked, 2).is_empty(), "{ticked:?}");
    }
    assert_eq!(calls_to(&worker, CERTS), 2);

    let out = answer_last(&mut worker, CERTS, jwks(&[&old, &new]));
    let reply = only_reply(&out, 2);
    assert_eq!(reply.status, 302, "{reply:?}");
    assert_eq!(header(&reply, "location"), Some("/"));
    let session = cookie_value(set_cookie_of(&reply, SESSION_COOKIE).expect("a session"));
    assert_eq!(session_claims(session)["sub"], "alice");
    assert_eq!(
        set_cookie_of(&reply, FLOW_COOKIE),
        Some(cleared(FLOW_COOKIE).as_str())
    );
    assert_settled(&worker, 2);
    let audit = worker.audit(2);
    assert_eq!(audit["decision"], "login_succeeded");
    assert_eq!(audit["sub"], "alice");
    assert_eq!(worker.host.state.counter("oauth2_logins_succeeded"), 1);
    assert_eq!(worker.host.state.counter("oauth2_logins_failed"), 0);
}

#[test]
fn a_refetch_that_ends_without_the_key_answers_the_callback_at_once() {
    let (old, new) = (Key::new("idp-1"), Key::new("idp-2"));
    let answers = [
        ("keys without it", jwks(&[&old])),
        (
            "a server error",
            CallResponse {
                status: Some(500),
                body: None,
            },
        ),
        ("no answer", CallResponse::NONE),
    ];
    for (case, answer) in answers {
        let mut worker = worker_past_refresh_interval(&[&old]);
        let (started, token) = until_token_call(&mut worker, 1);
        let id_token = id_token(&new, "alice", Some(&started.flow.nonce), "web");
        let waiting = worker.answer(token, token_response(&id_token));
        assert!(waiting.effects.is_empty(), "{case}");
        let out = answer_last(&mut worker, CERTS, answer);
        let reply = only_reply(&out, 2);
        assert_eq!(reply.status, 503, "{case}: {reply:?}");
        assert_eq!(header(&reply, "retry-after"), Some("1"), "{case}");
        assert_eq!(error_of(&reply)["code"], "LOGIN_UNAVAILABLE", "{case}");
        assert_eq!(
            set_cookies(&reply),
            vec![cleared(FLOW_COOKIE).as_str()],
            "{case}: the code is spent, the flow goes"
        );
        assert_settled(&worker, 2);
        let audit = worker.audit(2);
        assert_eq!(audit["decision"], "login_failed", "{case}");
        assert_eq!(audit["code"], "LOGIN_UNAVAILABLE", "{case}");
        assert_eq!(worker.host.state.counter("oauth2_logins_failed"), 1);
    }
}

#[test]
fn a_silent_idp_answers_the_waiting_callback_within_the_fetch_timeout_plus_a_tick() {
    let (old, new) = (Key::new("idp-1"), Key::new("idp-2"));
    let mut worker = worker_past_refresh_interval(&[&old]);
    let (started, token) = until_token_call(&mut worker, 1);
    let id_token = id_token(&new, "alice", Some(&started.flow.nonce), "web");
    assert!(worker
        .answer(token, token_response(&id_token))
        .effects
        .is_empty());
    let mut answered_at = None;
    for step in 1..=80 {
        worker.host.state.advance(100);
        let out = worker.gateway.on_tick();
        if !effects_on(&out, 2).is_empty() {
            let reply = only_reply(&out, 2);
            assert_eq!(reply.status, 503, "{reply:?}");
            assert_eq!(error_of(&reply)["code"], "LOGIN_UNAVAILABLE");
            assert_eq!(set_cookies(&reply), vec![cleared(FLOW_COOKIE).as_str()]);
            answered_at = Some(step * 100);
            break;
        }
    }
    let at = answered_at.expect("answered");
    assert!(
        (IDP_TIMEOUT_MS..=IDP_TIMEOUT_MS + 100).contains(&at),
        "answered after {at} ms (fetch timeout {IDP_TIMEOUT_MS} ms, tick 100 ms)"
    );
    assert_settled(&worker, 2);
    assert_eq!(worker.audit(2)["code"], "LOGIN_UNAVAILABLE");
    // The late answer finds nobody to answer.
    let late = answer_last(&mut worker, CERTS, jwks(&[&old, &new]));
    assert!(late.effects.is_empty(), "{late:?}");
}

#[test]
fn a_rotated_key_within_the_refresh_interval_is_unavailable_at_once() {
    let (old, new) = (Key::new("idp-1"), Key::new("idp-2"));
    // The keys were fetched just now: no refetch before min_refresh_interval_s (30 s).
    let mut worker = ready_worker(&[&old]);
    let (started, token) = until_token_call(&mut worker, 1);
    let id_token = id_token(&new, "alice", Some(&started.flow.nonce), "web");
    let out = worker.answer(token, token_response(&id_token));
    let reply = only_reply(&out, 2);
    assert_eq!(reply.status, 503);
    assert_eq!(header(&reply, "retry-after"), Some("30"));
    assert_eq!(error_of(&reply)["code"], "LOGIN_UNAVAILABLE");
    assert_eq!(set_cookies(&reply), vec![cleared(FLOW_COOKIE).as_str()]);
    assert_eq!(calls_to(&worker, CERTS), 1, "no refetch");
    assert_settled(&worker, 2);
    assert_eq!(worker.audit(2)["decision"], "login_failed");
}

#[test]
fn a_refetch_that_cannot_be_dispatched_answers_the_callback_at_once() {
    let (old, new) = (Key::new("idp-1"), Key::new("idp-2"));
    let mut worker = worker_past_refresh_interval(&[&old]);
    let (started, token) = until_token_call(&mut worker, 1);
    worker.host.state.refuse_dispatch.set(true);
    let id_token = id_token(&new, "alice", Some(&started.flow.nonce), "web");
    let out = worker.answer(token, token_response(&id_token));
    let reply = only_reply(&out, 2);
    assert_eq!(reply.status, 503);
    assert_eq!(error_of(&reply)["code"], "LOGIN_UNAVAILABLE");
    assert_settled(&worker, 2);
    assert_eq!(worker.host.state.counter("jwks_fetches_failed"), 1);
}

#[test]
fn without_a_random_source_no_login_starts_and_no_session_is_minted() {
    let key = Key::new("idp-1");
    let mut worker = ready_worker(&[&key]);

    worker.host.state.no_random.set(true);
    let out = browse(&mut worker, 1, LOGIN, &[]);
    let reply = only_reply(&out, 1);
    assert_eq!(reply.status, 500);
    assert_eq!(header(&reply, "location"), None, "no guessable state");
    assert!(set_cookies(&reply).is_empty());
    assert_settled(&worker, 1);
    let audit = worker.audit(1);
    assert_eq!(audit["decision"], "login_failed");
    assert_eq!(
        audit["code"], "INTERNAL_ERROR",
        "the code the reply carries"
    );
    worker.host.state.no_random.set(false);

    let (started, token) = until_token_call(&mut worker, 2);
    worker.host.state.no_random.set(true);
    let id_token = id_token(&key, "alice", Some(&started.flow.nonce), "web");
    let out = worker.answer(token, token_response(&id_token));
    let reply = only_reply(&out, 3);
    assert_eq!(reply.status, 500);
    assert_eq!(set_cookie_of(&reply, SESSION_COOKIE), None);
    assert_settled(&worker, 3);
    let audit = worker.audit(3);
    assert_eq!(audit["decision"], "login_failed");
    assert_eq!(audit["code"], "INTERNAL_ERROR");
    assert_eq!(audit["sub"], Value::Null);
    assert_eq!(worker.host.state.counter("oauth2_logins_succeeded"), 0);
}

#[test]
fn the_session_authorises_requests_and_logout_ends_it_at_the_idp() {
    let key = Key::new("idp-1");
    let mut worker = ready_worker(&[&key]);
    let (reply, id_token) = log_in(&mut worker, 1, &key, "alice");
    let session = cookie_value(set_cookie_of(&reply, SESSION_COOKIE).unwrap()).to_string();

    // An API request with the session cookie: forwarded as alice, the gateway's cookie removed.
    let out = browse(
        &mut worker,
        10,
        "/v1/anything",
        &[(SESSION_COOKIE, &session), ("theme", "dark")],
    );
    assert_eq!(out.next, Next::Continue);
    let effects = effects_on(&out, 10);
    let [Effect::Forward { set, resume, .. }] = effects.as_slice() else {
        panic!("{out:?}")
    };
    assert!(!resume);
    assert!(
        set.contains(&("x-user-id".to_string(), "alice".to_string())),
        "{set:?}"
    );
    assert!(
        set.contains(&("cookie".to_string(), "theme=dark".to_string())),
        "{set:?}"
    );
    let audit = worker.audit(10);
    assert_eq!(audit["decision"], "allowed");
    assert_eq!(audit["sub"], "alice");
    assert_eq!(audit["provider"], "oauth2-session");

    // Who the session is, for the pages.
    let out = browse(
        &mut worker,
        11,
        "/oauth2/userinfo",
        &[(SESSION_COOKIE, &session)],
    );
    let userinfo = only_reply(&out, 11);
    assert_eq!(userinfo.status, 200);
    let body: Value = serde_json::from_str(&userinfo.body).unwrap();
    assert_eq!(body["sub"], "alice");
    assert_eq!(body["email"], "alice@example.test");

    // A forged session is no session: the page goes to login, back here afterwards.
    let out = browse(
        &mut worker,
        12,
        "/v1/anything",
        &[(SESSION_COOKIE, "e30.e30.c2ln")],
    );
    let to_login = only_reply(&out, 12);
    assert_eq!(to_login.status, 302);
    assert!(header(&to_login, "location")
        .unwrap()
        .starts_with("/oauth2/login?"));
    assert_eq!(
        query_value(&location_query(&to_login), "rd"),
        Some("/v1/anything")
    );

    // Logout: the session cookie goes, and the IdP ends its session for this ID token.
    let out = browse(&mut worker, 13, LOGOUT, &[(SESSION_COOKIE, &session)]);
    let reply = only_reply(&out, 13);
    assert_eq!(reply.status, 302);
    assert_eq!(header(&reply, "cache-control"), Some("no-store"));
    let location = header(&reply, "location").unwrap();
    assert!(
        location.starts_with("https://idp.test/logout?"),
        "{location}"
    );
    let query = location_query(&reply);
    assert_eq!(query_value(&query, "client_id"), Some("web"));
    assert_eq!(
        query_value(&query, "id_token_hint"),
        Some(id_token.as_str())
    );
    assert_eq!(query.len(), 2, "{query:?}");
    assert_eq!(set_cookies(&reply), vec![cleared(SESSION_COOKIE).as_str()]);
    assert_settled(&worker, 13);
    let audit = worker.audit(13);
    assert_eq!(audit["event"], "logout");
    assert_eq!(audit["decision"], "logout");
    assert_eq!(audit["code"], Value::Null);
    let counter = |name| worker.host.state.counter(name);
    assert_eq!(counter("oauth2_logins_started"), 1);
    assert_eq!(counter("oauth2_logins_succeeded"), 1);
    assert_eq!(counter("oauth2_logins_failed"), 0);
}

#[test]
fn logout_without_a_session_or_an_end_session_endpoint() {
    let key = Key::new("idp-1");

    // Before discovery, and with an IdP that has no end_session_endpoint: back to the root.
    let mut fresh = Worker::new(FakeHost::new(NOW_MS));
    let mut document = discovery_document();
    document
        .as_object_mut()
        .unwrap()
        .remove("end_session_endpoint");
    let mut no_end_session = ready_worker_with(CONFIG, &document, &[&key]);
    let (reply, _) = log_in(&mut no_end_session, 1, &key, "alice");
    let session = cookie_value(set_cookie_of(&reply, SESSION_COOKIE).unwrap()).to_string();
    for (worker, cookies) in [
        (&mut fresh, vec![]),
        (
            &mut no_end_session,
            vec![(SESSION_COOKIE, session.as_str())],
        ),
    ] {
        let out = browse(worker, 20, LOGOUT, &cookies);
        let reply = only_reply(&out, 20);
        assert_eq!(reply.status, 302);
        assert_eq!(header(&reply, "location"), Some("/"));
        assert_eq!(set_cookies(&reply), vec![cleared(SESSION_COOKIE).as_str()]);
        assert_settled(worker, 20);
        assert_eq!(worker.audit(20)["decision"], "logout");
    }

    // No valid session: no id_token_hint; post_logout_redirect_uri when configured.
    let config = CONFIG.replace(
        r#""client_id": "web","#,
        r#""client_id": "web", "post_logout_redirect_uri": "https://chat.test/bye","#,
    );
    assert_ne!(config, CONFIG);
    let mut worker = ready_worker_with(&config, &discovery_document(), &[&key]);
    for (id, cookies) in [
        (30, vec![]),
        (31, vec![(SESSION_COOKIE, "e30.e30.c2ln")]),
        (32, vec![(SESSION_COOKIE, "")]),
    ] {
        let out = browse(&mut worker, id, LOGOUT, &cookies);
        let reply = only_reply(&out, id);
        assert_eq!(reply.status, 302);
        let query = location_query(&reply);
        assert_eq!(
            query,
            vec![
                ("client_id".to_string(), "web".to_string()),
                (
                    "post_logout_redirect_uri".to_string(),
                    "https://chat.test/bye".to_string()
                ),
            ],
            "{cookies:?}"
        );
        assert_eq!(set_cookies(&reply), vec![cleared(SESSION_COOKIE).as_str()]);
        assert_settled(&worker, id);
    }
}

#[test]
fn a_callback_that_ends_during_its_token_exchange_is_forgotten() {
    let key = Key::new("idp-1");
    let mut worker = ready_worker(&[&key]);
    let (started, token) = until_token_call(&mut worker, 1);
    worker.gateway.on_done(2);
    assert!(!worker.gateway.flows.contains_key(&2));
    assert!(
        !worker.gateway.calls.contains_key(&token),
        "its call is dropped"
    );
    let id_token = id_token(&key, "alice", Some(&started.flow.nonce), "web");
    let out = worker.answer(token, token_response(&id_token));
    assert!(out.effects.is_empty(), "{out:?}");
    assert!(!worker.gateway.flows.contains_key(&2));
    assert_eq!(worker.host.state.counter("oauth2_logins_succeeded"), 0);
    assert_eq!(worker.host.state.counter("oauth2_logins_failed"), 0);
}

#[test]
fn a_callback_that_ends_while_waiting_for_the_id_tokens_keys_is_forgotten() {
    let (old, new) = (Key::new("idp-1"), Key::new("idp-2"));
    let mut worker = worker_past_refresh_interval(&[&old]);
    let (started, token) = until_token_call(&mut worker, 1);
    let id_token = id_token(&new, "alice", Some(&started.flow.nonce), "web");
    assert!(worker
        .answer(token, token_response(&id_token))
        .effects
        .is_empty());
    assert!(worker.gateway.waiting.contains(&2));
    worker.gateway.on_done(2);
    assert!(worker.gateway.waiting.is_empty());
    assert!(!worker.gateway.flows.contains_key(&2));
    let out = answer_last(&mut worker, CERTS, jwks(&[&old, &new]));
    assert!(out.effects.is_empty(), "{out:?}");
    worker.host.state.advance(IDP_TIMEOUT_MS + 1000);
    assert!(worker.gateway.on_tick().effects.is_empty());
    assert_eq!(worker.host.state.counter("oauth2_logins_succeeded"), 0);
    assert_eq!(worker.host.state.counter("oauth2_logins_failed"), 0);
}

/// An ID token whose Keycloak realm roles are `roles`.
fn id_token_with_roles(key: &Key, sub: &str, nonce: &str, roles: &[&str]) -> String {
    #[derive(Serialize, Deserialize)]
    struct WithRoles {
        realm_access: Value,
    }
    let claims = Claims::with_custom_claims(
        WithRoles {
            realm_access: json!({ "roles": roles }),
        },
        Duration::from_mins(5),
    )
    .with_issuer(ISSUER)
    .with_audience("web")
    .with_subject(sub)
    .with_nonce(nonce);
    key.pair.sign(claims).unwrap()
}

#[test]
fn the_id_tokens_roles_grant_the_session_the_scopes_a_bearer_token_would_get() {
    let key = Key::new("idp-1");
    let config = CONFIG.replace(
        r#""default_rule":"#,
        r#""roles": {"claims": ["realm_access.roles"], "grants": {"admin": ["admin"]}},
           "default_rule":"#,
    );
    assert_ne!(config, CONFIG);
    let mut worker = ready_worker_with(&config, &discovery_document(), &[&key]);
    for (id, sub, roles, expected) in [
        (1, "alice", &["offline_access", "admin"][..], "admin"),
        (11, "bob", &["guest"][..], ""),
    ] {
        let (started, token) = until_token_call(&mut worker, id);
        let id_token = id_token_with_roles(&key, sub, &started.flow.nonce, roles);
        let reply = only_reply(&worker.answer(token, token_response(&id_token)), id + 1);
        assert_eq!(reply.status, 302, "{reply:?}");
        let session = cookie_value(set_cookie_of(&reply, SESSION_COOKIE).unwrap()).to_string();
        assert_eq!(session_claims(&session)["scope"], expected, "{sub}");
        // The rule requiring `admin` lets the session through exactly when a role granted it.
        let out = browse(
            &mut worker,
            id + 2,
            "/admin/users",
            &[(SESSION_COOKIE, &session)],
        );
        let allowed = matches!(
            effects_on(&out, id + 2).as_slice(),
            [Effect::Forward { .. }]
        );
        assert_eq!(allowed, !expected.is_empty(), "{sub}: {out:?}");
    }
}
