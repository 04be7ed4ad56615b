//! `jwt::verify` / `verify_keeping` on arbitrary token strings against fixed providers (HS256,
//! inline RS256/ES256/EdDSA, both, remote). Properties: never panics; a verified token is a
//! compact JWS (three parts) whose identity is the verifier's own; and the same providers with
//! other keys never accept it (its signature was checked, not assumed).
#![no_main]

use std::rc::Rc;
use std::sync::OnceLock;

use gateway_core::jwt::{verify, verify_keeping, Provider, Verdict};
use gateway_core::keys::{parse_jwks, KeySet};
use gateway_fuzz::providers::{self, NOW};
use libfuzzer_sys::fuzz_target;

struct Fixture {
    real: Vec<Provider>,
    decoy: Vec<Provider>,
    real_remote: Rc<KeySet>,
    decoy_remote: Rc<KeySet>,
}

// The providers hold `Rc`s (they are built per VM, single-threaded); the fuzzer runs one
// thread, so the fixture is per thread.
thread_local! {
    static FIXTURE: Fixture = {
        let keys = |text: &str| match parse_jwks(text.as_bytes()) {
            Ok((set, _)) => Rc::new(set),
            Err(error) => panic!("fuzz JWKS: {error:?}"),
        };
        Fixture {
            real: providers::real(),
            decoy: providers::decoy(),
            real_remote: keys(include_str!("../src/jwks_real.json")),
            decoy_remote: keys(include_str!("../src/jwks_decoy.json")),
        }
    };
}

static KEEP: OnceLock<Vec<String>> = OnceLock::new();

fuzz_target!(|data: &[u8]| {
    let Ok(token) = std::str::from_utf8(data) else {
        return;
    };
    let keep = KEEP.get_or_init(|| vec!["tenant".into(), "email".into(), "sub".into()]);
    FIXTURE.with(|f| {
        let real_keys = |_: usize| Some(f.real_remote.clone());
        let decoy_keys = |_: usize| Some(f.decoy_remote.clone());
        let verdict = verify_keeping(token, &f.real, &real_keys, NOW, keep);
        // Keeping claims never changes the verdict on the token itself.
        let plain = verify(token, &f.real, &real_keys, NOW);
        match (&verdict, &plain) {
            (Verdict::Verified(a), Verdict::Verified(b)) => {
                assert_eq!((&a.sub, &a.scopes, a.exp), (&b.sub, &b.scopes, b.exp));
            }
            (a, b) => assert_eq!(a, b),
        }
        // No remote keys fetched yet: never verified, at most "fetch the keys".
        let unfetched = verify(token, &f.real, &|_| None, NOW);
        if let Verdict::Verified(identity) = &unfetched {
            assert_ne!(
                identity.provider, 3,
                "remote provider verified without keys"
            );
        }
        if let Verdict::Verified(identity) = verdict {
            assert_eq!(
                token.split('.').count(),
                3,
                "verified a token that is not a JWS"
            );
            assert!(identity.provider < f.real.len());
            assert!(identity.exp > 0);
            for (name, _) in &identity.claims {
                assert!(keep.contains(name), "kept a claim not asked for: {name}");
            }
            let forged = verify(token, &f.decoy, &decoy_keys, NOW);
            assert!(
                !matches!(forged, Verdict::Verified(_)),
                "a token verified under two different key sets"
            );
        }
    });
});
