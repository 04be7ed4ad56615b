//! `keys::parse_jwks` and `oauth2::parse_discovery` on arbitrary bytes (what an IdP, or
//! whoever answers in its place, sends). Properties: never panics; a JWKS that parses has keys,
//! parses again to the same fingerprint, finds each of its keys by kid; its keys then verify
//! (or refuse) real tokens without panicking; a discovery document that parses has the
//! expected issuer and endpoints without fragments.
#![no_main]

use std::rc::Rc;

use gateway_core::jwt::{verify, Provider, Verdict};
use gateway_core::keys::{parse_jwks, KeyLookup};
use gateway_core::oauth2::{parse_discovery, url_origin};
use gateway_fuzz::providers::{self, NOW};
use libfuzzer_sys::fuzz_target;

const ISSUER: &str = "https://idp.test/realms/main";
/// Tokens of the `remote` provider, signed by the keys of `src/jwks_real.json`.
const REMOTE_TOKENS: &str = include_str!("../src/remote_tokens.txt");

thread_local! {
    static PROVIDERS: Vec<Provider> = providers::real();
}

fuzz_target!(|data: &[u8]| {
    jwks(data);
    discovery(data);
});

fn jwks(data: &[u8]) {
    let Ok((set, _skipped)) = parse_jwks(data) else {
        return;
    };
    assert!(!set.is_empty(), "a JWKS without usable keys was accepted");
    match parse_jwks(data) {
        Ok((again, _)) => assert_eq!(set.fingerprint(), again.fingerprint()),
        Err(error) => panic!("the same JWKS parsed once and then not: {error:?}"),
    }
    for key in set.keys() {
        if let Some(kid) = key.kid.as_deref() {
            let found = set.find(Some(kid), key.key.algorithm());
            assert!(
                matches!(found, KeyLookup::Found(_) | KeyLookup::AlgorithmMismatch),
                "a key is not found by its own kid"
            );
        }
    }
    let set = Rc::new(set);
    PROVIDERS.with(|providers| {
        for token in REMOTE_TOKENS.lines() {
            let verdict = verify(token, providers, &|_| Some(set.clone()), NOW);
            if let Verdict::Verified(identity) = verdict {
                assert_eq!(
                    identity.provider, 3,
                    "verified by a provider it was not for"
                );
            }
        }
    });
}

fn discovery(data: &[u8]) {
    let Ok(endpoints) = parse_discovery(data, ISSUER) else {
        return;
    };
    assert_eq!(endpoints.issuer, ISSUER);
    for url in [
        &endpoints.authorization_endpoint,
        &endpoints.token_endpoint,
        &endpoints.jwks_uri,
    ] {
        assert!(!url.contains('#'), "endpoint with a fragment: {url:?}");
        let lower = url.to_ascii_lowercase();
        assert!(
            lower.starts_with("https://") || lower.starts_with("http://"),
            "endpoint that is not http(s): {url:?}"
        );
        assert!(
            url_origin(url).is_some(),
            "endpoint without an origin: {url:?}"
        );
    }
}
