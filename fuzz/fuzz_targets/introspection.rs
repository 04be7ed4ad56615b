//! What the IdP answers to an introspection call (`introspect::response::judge`, any status and
//! body), and the break-glass checks made on every bearer token and configured address
//! (`emergency::is_emergency_token`, `emergency::AddressRange::parse`). Properties: never
//! panics; only a 200 whose body is a JSON object with `active: true` is an active token, and
//! that token is not expired; a break-glass token claims so in a three-part JWS; a parsed
//! address range contains the address it was written with.
#![no_main]

use std::net::IpAddr;

use arbitrary::Arbitrary;
use gateway_core::emergency::{is_emergency_token, AddressRange};
use gateway_core::introspect::response::{judge, Verdict};
use gateway_core::introspect::Introspection;
use gateway_core::outgoing::CallResponse;
use gateway_fuzz::settings;
use libfuzzer_sys::fuzz_target;
use serde_json::Value;

const NOW: u64 = 1_900_000_000;

#[derive(Arbitrary, Debug)]
struct Input<'a> {
    /// `None`: no answer (timeout, reset).
    status: Option<u16>,
    has_body: bool,
    /// The answer's body; also read as a token and as an address.
    body: &'a [u8],
}

thread_local! {
    static SETTINGS: Introspection = settings::introspection();
}

fuzz_target!(|input: Input<'_>| {
    introspection(&input);
    if let Ok(text) = std::str::from_utf8(input.body) {
        if is_emergency_token(text) {
            assert_eq!(text.split('.').count(), 3);
        }
        address(text);
    }
});

fn introspection(input: &Input<'_>) {
    let answer = CallResponse {
        status: input.status.map(u32::from),
        body: input.has_body.then(|| input.body.to_vec()),
    };
    let keep = ["tenant".to_string()];
    SETTINGS.with(|settings| {
        let Ok(verdict) = judge(&answer, settings, None, &keep, NOW) else {
            return;
        };
        assert_eq!(answer.status, Some(200), "a verdict from a non-200 answer");
        let claims: serde_json::Map<String, Value> =
            match serde_json::from_slice(answer.body.as_deref().unwrap_or_default()) {
                Ok(Value::Object(claims)) => claims,
                other => panic!("a verdict from a body that is not an object: {other:?}"),
            };
        if let Verdict::Active(token) = verdict {
            assert_eq!(claims.get("active"), Some(&Value::Bool(true)));
            if let Some(exp) = token.exp {
                assert!(
                    exp.saturating_add(settings.clock_skew_s) > NOW,
                    "an expired token is active"
                );
            }
            for (name, _) in &token.claims {
                assert!(keep.contains(name));
            }
        }
    });
}

fn address(text: &str) {
    let Ok(range) = AddressRange::parse(text) else {
        return;
    };
    let written = text.split('/').next().unwrap_or(text);
    match written.parse::<IpAddr>() {
        Ok(ip) => assert!(
            range.contains(ip),
            "{text:?} does not contain its own address"
        ),
        Err(_) => panic!("{text:?} parsed without an address"),
    }
}
