//! `authz::route_path` and rule selection (`authz::rules::select`) over rules of every kind,
//! compiled once by the config loader. The input is `METHOD\nTARGET`. Properties: never panics;
//! an accepted path starts with `/` and has no empty or dot segment; normalising is idempotent
//! (the path rules see, its non-ASCII characters escaped, is a fixed point: whatever reads it
//! again reads the same path); the selected rule is the first that matches, with all of its
//! scopes.
#![no_main]

use gateway_core::authz::{route_path, rules::select};
use gateway_core::config::GatewayConfig;
use gateway_fuzz::settings;
use libfuzzer_sys::fuzz_target;

thread_local! {
    static CONFIG: GatewayConfig = settings::rules_config();
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let (method, target) = text.split_once('\n').unwrap_or(("GET", text));
    let Ok(path) = route_path(target) else {
        return;
    };
    assert!(path.starts_with('/'));
    let body = path.strip_prefix('/').unwrap_or(&path);
    let body = body.strip_suffix('/').unwrap_or(body);
    if !body.is_empty() {
        for segment in body.split('/') {
            assert!(!segment.is_empty(), "empty segment in {path:?}");
            assert!(segment != "." && segment != "..", "dot segment in {path:?}");
        }
    }
    // Raw non-ASCII bytes are refused, escaped ones decoded: read again escaped.
    let escaped = escape_non_ascii(&path);
    match route_path(&escaped) {
        Ok(again) => assert_eq!(again, path, "not idempotent: {target:?}"),
        Err(error) => panic!("{target:?} gave {path:?}, which is refused: {error:?}"),
    }

    CONFIG.with(|config| {
        let Some(requirement) = select(&config.rules, method, &path) else {
            return;
        };
        let index = requirement.rule.unwrap_or(usize::MAX);
        let rule = &config.rules[index];
        assert!(rule.matcher.captures(method, &path).is_some());
        for earlier in &config.rules[..index] {
            assert!(earlier.matcher.captures(method, &path).is_none());
        }
        assert_eq!(requirement.scopes.len(), rule.scopes.len());
        assert_eq!(requirement.auth, rule.auth);
    });
});

fn escape_non_ascii(path: &str) -> String {
    let mut out = String::with_capacity(path.len());
    for byte in path.bytes() {
        if byte.is_ascii() {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
