//! What a browser (or anyone) sends to the login endpoints and with every request: headers
//! searched for the token (`jwt::extract_token`), the login flow cookie (`oauth2::open_flow`),
//! signed values (`oauth2::verify_value`), the callback's query (`oauth2::parse_query`) and the
//! post-login target (`oauth2::sanitize_rd`).
//!
//! The input is text, one field per line: flow cookie, callback state, signed value, query,
//! `rd`, then `name: value` header lines. Properties: never panics; a found token is one of the
//! header or cookie values and passes the token syntax; a signed value opens only if it is
//! exactly what signing its payload gives (no second encoding), never under another secret; a
//! flow opens only unexpired with the callback's state; `rd` always stays on this origin.
#![no_main]

use gateway_core::http::RequestHead;
use gateway_core::jwt::{extract_token, TokenConfig, TokenError, TokenLocation};
use gateway_core::oauth2::{
    open_flow, parse_query, raw_query_value, sanitize_rd, seal_flow, sign_value, url_origin,
    verify_value,
};
use libfuzzer_sys::fuzz_target;

const SECRET: &[u8] = b"fuzz-session-secret-0123456789abcdef";
const OTHER_SECRET: &[u8] = b"other-session-secret-0123456789abcdef";
const NOW: u64 = 1_900_000_000;
const MAX_TOKEN_BYTES: usize = 4096;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let cookie = lines.next().unwrap_or("");
    let state = lines.next();
    let signed = lines.next().unwrap_or("");
    let query = lines.next().unwrap_or("");
    let rd = lines.next();
    let headers: Vec<(String, String)> = lines
        .filter_map(|line| line.split_once(": "))
        .map(|(name, value)| (name.to_ascii_lowercase(), value.to_string()))
        .collect();

    tokens(headers);
    flow(cookie, state);
    signed_value(signed);
    query_and_rd(query, rd);
});

fn tokens(headers: Vec<(String, String)>) {
    let head = RequestHead::new(headers, true);
    for (header, cookie) in [
        (Some("authorization"), Some("gw_token")),
        (Some("x-token"), None),
        (None, Some("gw_token")),
    ] {
        let config = TokenConfig {
            header: header.map(str::to_string),
            cookie: cookie.map(str::to_string),
            realm: "gw".into(),
        };
        let Ok(Some(found)) = extract_token(&config, &head, MAX_TOKEN_BYTES) else {
            continue;
        };
        let token = found.token;
        assert!(!token.is_empty() && token.len() <= MAX_TOKEN_BYTES);
        assert!(
            token
                .bytes()
                .all(|b| b.is_ascii_graphic() && b != b',' && b != b'"'),
            "token with a forbidden byte: {token:?}"
        );
        let carried = match found.location {
            TokenLocation::Header => {
                header.is_some_and(|h| head.values(h).any(|value| value.contains(token)))
            }
            TokenLocation::Cookie => {
                cookie.is_some_and(|c| head.cookie_values(c).any(|value| value == token))
            }
        };
        assert!(carried, "token not taken from where it was said to be");
        // The same header once more: two tokens are ambiguous, never "pick one".
        if let (TokenLocation::Header, Some(name)) = (found.location, header) {
            let mut twice = vec![(name.to_string(), "Bearer x".to_string())];
            twice.extend(head.values(name).map(|v| (name.to_string(), v.to_string())));
            assert_eq!(
                extract_token(&config, &RequestHead::new(twice, true), MAX_TOKEN_BYTES),
                Err(TokenError::MultipleTokens)
            );
        }
    }
}

fn flow(cookie: &str, state: Option<&str>) {
    if let Ok(flow) = open_flow(SECRET, Some(cookie), state, NOW) {
        assert!(NOW < flow.expires_at);
        assert!(!flow.state.is_empty() && Some(flow.state.as_str()) == state);
        assert_eq!(
            seal_flow(SECRET, &flow),
            cookie,
            "a flow cookie opened from a variant"
        );
        assert!(open_flow(OTHER_SECRET, Some(cookie), state, NOW).is_err());
    }
}

fn signed_value(value: &str) {
    if let Some(payload) = verify_value(SECRET, value) {
        assert_eq!(
            sign_value(SECRET, &payload),
            value,
            "a second encoding was accepted"
        );
        assert_eq!(verify_value(OTHER_SECRET, value), None);
    }
}

fn query_and_rd(query: &str, rd: Option<&str>) {
    let pairs = parse_query(query);
    assert!(pairs.len() <= query.split('&').count());
    let target = sanitize_rd(rd);
    let from_query = sanitize_rd(raw_query_value(query, "rd"));
    for target in [target, from_query] {
        assert!(target.starts_with('/'), "rd not a path: {target:?}");
        assert!(
            !target.starts_with("//") && !target.starts_with("/\\"),
            "rd to another origin: {target:?}"
        );
        assert!(
            target
                .bytes()
                .all(|b| b.is_ascii_graphic() && !b"\"<>\\^`{|}".contains(&b)),
            "rd with a byte a Location header must not carry: {target:?}"
        );
        let url = format!("https://gw.test{target}");
        assert_eq!(
            url_origin(&url).as_deref(),
            Some("https://gw.test"),
            "rd leaves the origin: {target:?}"
        );
    }
}
