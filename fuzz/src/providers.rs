//! The JWT providers the `jwt` target verifies against: an HS256 secret, an inline JWKS with
//! one RS256, ES256 and EdDSA key, a provider with both, and a remote one. The same providers
//! with other keys (`decoy`) must never accept what the real ones accept: a token the fuzzer
//! made verify under both would mean a signature that was not checked.

use gateway_core::config::load;
use gateway_core::jwt::Provider;

/// Public keys only; the seed tokens in `corpus/jwt` were signed by their (discarded) private
/// halves, so the fuzzer starts from tokens that verify.
const JWKS: &str = include_str!("jwks_real.json");
const DECOY_JWKS: &str = include_str!("jwks_decoy.json");
pub const SECRET: &str = "fuzz-hs256-secret-0123456789abcdef";
const DECOY_SECRET: &str = "decoy-hs256-secret-0123456789abcdef";
/// The seed tokens are valid at this time.
pub const NOW: u64 = 1_900_000_000;

pub fn real() -> Vec<Provider> {
    compile(SECRET, JWKS)
}

pub fn decoy() -> Vec<Provider> {
    compile(DECOY_SECRET, DECOY_JWKS)
}

fn compile(secret: &str, jwks: &str) -> Vec<Provider> {
    let text = format!(
        r#"{{"providers": [
            {{"name": "hs", "issuer": "https://hs.test", "audiences": ["gw"],
              "hs256_secret": {{"inline": "{secret}"}}}},
            {{"name": "pk", "issuer": "https://pk.test", "audiences": ["gw", "other"],
              "jwks": {{"inline": {jwks}}}}},
            {{"name": "both", "issuer": "https://both.test", "audiences": ["gw"],
              "algorithms": ["HS256", "RS256", "ES256", "EdDSA"],
              "hs256_secret": {{"inline": "{secret}"}}, "jwks": {{"inline": {jwks}}}}},
            {{"name": "remote", "issuer": "https://remote.test", "audiences": ["gw"],
              "jwks": {{"remote": {{"cluster": "idp", "authority": "idp", "path": "/jwks"}}}}}}
          ],
          "roles": {{"claims": ["roles", "realm_access.roles"],
                     "grants": {{"admin": ["gateway:admin"], "guest": ["chat:read"]}}}},
          "default_rule": {{"auth": "required"}}}}"#
    );
    match load(text.as_bytes()) {
        Ok(config) => config.providers,
        Err(error) => panic!("fuzz providers config: {error}"),
    }
}
