//! The CORS step: a preflight is answered before authentication and never forwarded, another
//! origin's is refused, and the gateway's own errors carry the headers an allowed page needs.

use serde_json::Value;

use super::super::*;
use super::{effects_on, reply_of};
use crate::fake_host::FakeHost;

const CONFIG: &str = r#"{
    "providers": [{"name": "sso", "issuer": "https://idp.test", "audiences": ["gw"],
                   "hs256_secret": {"inline": "0123456789abcdef0123456789abcdef"}}],
    "default_rule": {"auth": "required", "scopes": []},
    "cors": {"allow_origins": ["https://app.example.com"], "max_age_s": 60}
}"#;

fn gateway() -> (Gateway, FakeHost) {
    let host = FakeHost::new(super::NOW_MS);
    let config = crate::config::load(CONFIG.as_bytes()).unwrap();
    (
        Gateway::new(std::rc::Rc::new(config), Box::new(host.clone())),
        host,
    )
}

fn request(method: &str, headers: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut all = vec![
        (":method".to_string(), method.to_string()),
        (":path".to_string(), "/v1/chat/completions".to_string()),
        (":authority".to_string(), "gw".to_string()),
    ];
    all.extend(headers.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    all
}

fn header<'a>(reply: &'a crate::error::LocalReply, name: &str) -> Option<&'a str> {
    reply
        .headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn a_preflight_needs_no_token_and_is_never_forwarded() {
    let (mut gateway, host) = gateway();
    let out = gateway.on_request_headers(
        1,
        request(
            "OPTIONS",
            &[
                ("origin", "https://app.example.com"),
                ("access-control-request-method", "POST"),
            ],
        ),
        true,
    );
    let reply = reply_of(&out, 1);
    assert_eq!(reply.status, 204);
    assert_eq!(
        header(&reply, "access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(header(&reply, "access-control-max-age"), Some("60"));
    assert!(effects_on(&out, 1)
        .iter()
        .all(|e| !matches!(e, Effect::Forward { .. })));
    assert_eq!(host.state.counter("cors_preflights"), 1);
}

#[test]
fn another_origins_preflight_is_refused_in_the_contract_shape() {
    let (mut gateway, host) = gateway();
    let out = gateway.on_request_headers(
        1,
        request(
            "OPTIONS",
            &[
                ("origin", "https://evil.example"),
                ("access-control-request-method", "POST"),
            ],
        ),
        true,
    );
    let reply = reply_of(&out, 1);
    assert_eq!(reply.status, 403);
    let body: Value = serde_json::from_str(&reply.body).unwrap();
    assert_eq!(body["error"]["code"], "CORS_ORIGIN_NOT_ALLOWED");
    assert_eq!(header(&reply, "access-control-allow-origin"), None);
    assert_eq!(host.state.counter("requests_cors_refused"), 1);
}

#[test]
fn the_gateways_own_errors_carry_the_headers_an_allowed_page_reads() {
    let (mut gateway, _host) = gateway();
    // No token: 401, readable by the page.
    let out = gateway.on_request_headers(
        1,
        request("POST", &[("origin", "https://app.example.com")]),
        true,
    );
    let reply = reply_of(&out, 1);
    assert_eq!(reply.status, 401);
    assert_eq!(
        header(&reply, "access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert!(header(&reply, "access-control-expose-headers")
        .unwrap()
        .contains("retry-after"));
    // A bare OPTIONS is not a preflight: it needs a token like anything else.
    let out = gateway.on_request_headers(
        2,
        request("OPTIONS", &[("origin", "https://app.example.com")]),
        true,
    );
    assert_eq!(reply_of(&out, 2).status, 401);
    // Another origin's actual request gets no CORS headers.
    let out =
        gateway.on_request_headers(3, request("POST", &[("origin", "https://x.example")]), true);
    assert_eq!(
        header(&reply_of(&out, 3), "access-control-allow-origin"),
        None
    );
}

#[test]
fn forwarded_calls_lose_their_origin_and_the_upstreams_cors_headers() {
    let config = r#"{
        "default_rule": {"auth": "none"},
        "cors": {"allow_origins": ["https://app.example.com"]}
    }"#;
    let host = FakeHost::new(super::NOW_MS);
    let config = crate::config::load(config.as_bytes()).unwrap();
    let mut gateway = Gateway::new(std::rc::Rc::new(config), Box::new(host.clone()));
    for (id, origin) in [(1, "https://app.example.com"), (2, "https://other.example")] {
        let out = gateway.on_request_headers(id, request("GET", &[("origin", origin)]), true);
        let Some(Effect::Forward { remove, .. }) = effects_on(&out, id).into_iter().next() else {
            panic!("forwarded: {out:?}")
        };
        assert!(remove.contains(&"origin".to_string()), "{remove:?}");
        *host.state.response_headers.borrow_mut() = vec![
            (":status".into(), "200".into()),
            ("access-control-allow-origin".into(), "*".into()),
            ("access-control-allow-credentials".into(), "true".into()),
        ];
        let effects = effects_on(&gateway.on_response_headers(id, true), id);
        for name in crate::cors::RESPONSE_HEADERS {
            assert!(
                effects.contains(&Effect::RemoveResponseHeader(name)),
                "{name}"
            );
        }
        let ours = effects.contains(&Effect::SetResponseHeader(
            "access-control-allow-origin",
            "https://app.example.com".into(),
        ));
        assert_eq!(ours, id == 1, "{effects:?}");
        assert!(
            effects.contains(&Effect::AddResponseHeader("vary".into(), "Origin".into())),
            "{effects:?}"
        );
    }
}
