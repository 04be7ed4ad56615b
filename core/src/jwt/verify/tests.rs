//! The verifier against a table of good, hostile and edge-case tokens. Tokens are signed here
//! from raw header and claims JSON, so each case fails for exactly the reason it names.

use std::rc::Rc;
use std::sync::OnceLock;

use base64::engine::general_purpose::{URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use jwt_simple::prelude::*;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use super::*;
use crate::config::load;
use crate::keys::{parse_jwks, KeySet};

const NOW: u64 = 1_900_000_000;
const SECRET: &str = "0123456789abcdef0123456789abcdef";
const HS_ISS: &str = "https://hs.test";
const PK_ISS: &str = "https://pk.test";
const REMOTE_ISS: &str = "https://remote.test";

struct Keys {
    rsa: RS256KeyPair,
    rsa_other: RS256KeyPair,
    ec: ES256KeyPair,
    ed: Ed25519KeyPair,
    jwks: Value,
}

fn keys() -> &'static Keys {
    static KEYS: OnceLock<Keys> = OnceLock::new();
    KEYS.get_or_init(|| {
        let rsa = RS256KeyPair::generate(2048).unwrap();
        let rsa_other = RS256KeyPair::generate(2048).unwrap();
        let ec = ES256KeyPair::generate();
        let ed = Ed25519KeyPair::generate();
        let c = rsa.public_key().to_components();
        let point = ec.public_key().public_key().to_bytes_uncompressed();
        let jwks = json!({"keys": [
            {"kty": "RSA", "kid": "k-rsa", "alg": "RS256", "use": "sig",
             "n": b64(&c.n), "e": b64(&c.e)},
            {"kty": "EC", "kid": "k-ec", "crv": "P-256", "x": b64(&point[1..33]), "y": b64(&point[33..65])},
            {"kty": "OKP", "kid": "k-ed", "crv": "Ed25519", "x": b64(&ed.public_key().to_bytes())},
        ]});
        Keys { rsa, rsa_other, ec, ed, jwks }
    })
}

fn b64(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

fn hmac_sha256(key: &[u8], message: &[u8]) -> Vec<u8> {
    let mut k = [0u8; 64];
    if key.len() > 64 {
        k[..32].copy_from_slice(&Sha256::digest(key));
    } else {
        k[..key.len()].copy_from_slice(key);
    }
    let inner: Vec<u8> = k
        .iter()
        .map(|b| b ^ 0x36)
        .chain(message.iter().copied())
        .collect();
    let inner_hash = Sha256::digest(&inner);
    let outer: Vec<u8> = k
        .iter()
        .map(|b| b ^ 0x5c)
        .chain(inner_hash.iter().copied())
        .collect();
    Sha256::digest(&outer).to_vec()
}

fn input(header: &str, claims: &str) -> String {
    format!("{}.{}", b64(header.as_bytes()), b64(claims.as_bytes()))
}

/// HS256 over raw JSON texts (so duplicate keys and odd types can be expressed).
fn hs_raw(header: &str, claims: &str, secret: &[u8]) -> String {
    let input = input(header, claims);
    format!("{input}.{}", b64(&hmac_sha256(secret, input.as_bytes())))
}

fn hs(claims: &Value) -> String {
    hs_raw(
        r#"{"alg":"HS256","typ":"JWT"}"#,
        &claims.to_string(),
        SECRET.as_bytes(),
    )
}

fn hs_header(header: &str, claims: &Value) -> String {
    hs_raw(header, &claims.to_string(), SECRET.as_bytes())
}

fn good_claims(iss: &str) -> Value {
    json!({"iss": iss, "aud": "gw", "sub": "alice", "iat": NOW - 10, "exp": NOW + 3600,
           "scope": "chat:read chat:write"})
}

fn with(mut claims: Value, key: &str, value: Value) -> Value {
    claims[key] = value;
    claims
}

fn without(mut claims: Value, key: &str) -> Value {
    claims.as_object_mut().unwrap().remove(key);
    claims
}

/// A token signed by a jwt-simple key pair with our claims (custom claims carry iss etc.).
fn signed(alg: &str, kid: &str, claims: &Value) -> String {
    let k = keys();
    let mut c = Claims::with_custom_claims(claims.clone(), Duration::from_secs(0));
    // Keep exactly our claims: jwt-simple adds iat/exp/nbf of its own otherwise.
    c.issued_at = None;
    c.expires_at = None;
    c.invalid_before = None;
    match alg {
        "RS256" => k.rsa.clone().with_key_id(kid).sign(c).unwrap(),
        "RS256-other" => k.rsa_other.clone().with_key_id(kid).sign(c).unwrap(),
        "ES256" => ES256KeyPair::from_bytes(&k.ec.to_bytes())
            .unwrap()
            .with_key_id(kid)
            .sign(c)
            .unwrap(),
        "EdDSA" => k.ed.clone().with_key_id(kid).sign(c).unwrap(),
        _ => unreachable!(),
    }
}

fn providers() -> Vec<Provider> {
    let text = json!({
        "providers": [
            {"name": "hs", "issuer": HS_ISS, "audiences": ["gw"], "hs256_secret": {"inline": SECRET}},
            {"name": "pk", "issuer": PK_ISS, "audiences": ["gw", "other"],
             "jwks": {"inline": keys().jwks}},
            {"name": "remote", "issuer": REMOTE_ISS, "audiences": ["gw"],
             "jwks": {"remote": {"cluster": "idp", "authority": "idp", "path": "/jwks"}}},
            {"name": "both", "issuer": "https://both.test", "audiences": ["gw"],
             "algorithms": ["HS256", "RS256"], "hs256_secret": {"inline": SECRET},
             "jwks": {"inline": keys().jwks}},
        ],
        "default_rule": {"auth": "required"}
    });
    load(text.to_string().as_bytes()).unwrap().providers
}

fn remote_set() -> Rc<KeySet> {
    Rc::new(parse_jwks(keys().jwks.to_string().as_bytes()).unwrap().0)
}

fn check(token: &str) -> Verdict {
    let set = remote_set();
    verify(token, &providers(), &|p| (p == 2).then(|| set.clone()), NOW)
}

fn refused(token: &str) -> TokenError {
    match check(token) {
        Verdict::Refused(e) => e,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn good_tokens_of_every_algorithm_verify() {
    let cases = [
        ("HS256", hs(&good_claims(HS_ISS)), 0),
        ("RS256", signed("RS256", "k-rsa", &good_claims(PK_ISS)), 1),
        ("ES256", signed("ES256", "k-ec", &good_claims(PK_ISS)), 1),
        ("EdDSA", signed("EdDSA", "k-ed", &good_claims(PK_ISS)), 1),
        (
            "RS256 remote",
            signed("RS256", "k-rsa", &good_claims(REMOTE_ISS)),
            2,
        ),
        (
            "no kid: every key of the type is tried",
            {
                let c = Claims::with_custom_claims(good_claims(PK_ISS), Duration::from_secs(0));
                let mut c = c;
                c.issued_at = None;
                c.expires_at = None;
                c.invalid_before = None;
                keys().rsa.sign(c).unwrap()
            },
            1,
        ),
    ];
    for (name, token, provider) in cases {
        match check(&token) {
            Verdict::Verified(id) => {
                assert_eq!(id.provider, provider, "{name}");
                assert_eq!(id.sub, "alice", "{name}");
                assert_eq!(id.scopes, vec!["chat:read", "chat:write"], "{name}");
                assert_eq!(id.exp, NOW + 3600, "{name}");
            }
            other => panic!("{name}: {other:?}"),
        }
    }
}

#[test]
fn audience_arrays_and_scope_arrays() {
    let claims = with(good_claims(PK_ISS), "aud", json!(["x", "other"]));
    let claims = with(claims, "scope", json!(["a", "b", "a"]));
    let Verdict::Verified(id) = check(&signed("RS256", "k-rsa", &claims)) else {
        panic!("expected verified")
    };
    assert_eq!(id.scopes, vec!["a", "b"]);
    let claims = without(good_claims(HS_ISS), "scope");
    let Verdict::Verified(id) = check(&hs(&claims)) else {
        panic!()
    };
    assert!(id.scopes.is_empty());
}

/// The table: each hostile token and the exact `details` it must produce.
#[test]
fn hostile_tokens_are_refused_with_the_exact_reason() {
    let good = good_claims(HS_ISS);
    let h = r#"{"alg":"HS256"}"#;
    let valid_rs = signed("RS256", "k-rsa", &good_claims(PK_ISS));
    let (rs_head, rs_rest) = valid_rs.split_once('.').unwrap();
    let (_, rs_sig) = rs_rest.split_once('.').unwrap();
    let rsa_public_der = keys().rsa.public_key().to_der().unwrap();
    let c = keys().rsa.public_key().to_components();
    let cases: Vec<(&str, String, &str)> = vec![
        ("empty", String::new(), "token is not a signed JWT"),
        ("one part", "abc".into(), "token is not a signed JWT"),
        ("two parts", "a.b".into(), "token is not a signed JWT"),
        (
            "JWE (five parts)",
            "a.b.c.d.e".into(),
            "token is not a signed JWT",
        ),
        (
            "header not base64",
            "!!!.e30.c2ln".into(),
            "token header is not base64url",
        ),
        (
            "padded header",
            format!("{}=.e30.c2ln", b64(b"{\"alg\":\"HS256\"}x")),
            "token header is not base64url",
        ),
        (
            "standard base64 alphabet ('+')",
            format!("{}+.e30.c2ln", b64(h.as_bytes())),
            "token header is not base64url",
        ),
        (
            "standard base64 with padding",
            format!("{}.e30.c2ln", URL_SAFE.encode(b"{\"alg\": \"HS256\"}")),
            "token header is not base64url",
        ),
        (
            "header not JSON",
            format!("{}.e30.c2ln", b64(b"not json")),
            "token header is not a JSON object",
        ),
        (
            "header a JSON array",
            format!("{}.e30.c2ln", b64(b"[\"HS256\"]")),
            "token header is not a JSON object",
        ),
        (
            "header duplicate alg",
            hs_raw(
                r#"{"alg":"none","alg":"HS256"}"#,
                &good.to_string(),
                SECRET.as_bytes(),
            ),
            "token header has duplicate keys",
        ),
        (
            "no alg",
            hs_header(r#"{"typ":"JWT"}"#, &good),
            "token header has no alg",
        ),
        (
            "alg none",
            hs_header(r#"{"alg":"none"}"#, &good),
            "alg none is not allowed",
        ),
        (
            "alg None",
            hs_header(r#"{"alg":"None"}"#, &good),
            "alg none is not allowed",
        ),
        (
            "alg NONE",
            hs_header(r#"{"alg":"NONE"}"#, &good),
            "alg none is not allowed",
        ),
        (
            "alg nOnE",
            hs_header(r#"{"alg":"nOnE"}"#, &good),
            "alg none is not allowed",
        ),
        (
            "alg none, empty signature",
            format!("{}.", input(r#"{"alg":"none"}"#, &good.to_string())),
            "token signature is not base64url",
        ),
        (
            "alg HS512",
            hs_header(r#"{"alg":"HS512"}"#, &good),
            "unsupported algorithm",
        ),
        (
            "alg lower case",
            hs_header(r#"{"alg":"hs256"}"#, &good),
            "unsupported algorithm",
        ),
        (
            "alg a number",
            hs_header(r#"{"alg":256}"#, &good),
            "header parameter alg is invalid",
        ),
        (
            "jku",
            hs_header(r#"{"alg":"HS256","jku":"https://evil.test/jwks"}"#, &good),
            "header parameter jku is not allowed",
        ),
        (
            "x5u",
            hs_header(r#"{"alg":"HS256","x5u":"https://evil.test/cert"}"#, &good),
            "header parameter x5u is not allowed",
        ),
        (
            "embedded jwk",
            hs_header(
                &format!(
                    r#"{{"alg":"RS256","jwk":{{"kty":"RSA","n":"{}","e":"{}"}}}}"#,
                    b64(&c.n),
                    b64(&c.e)
                ),
                &good,
            ),
            "header parameter jwk is not allowed",
        ),
        (
            "x5c",
            hs_header(r#"{"alg":"HS256","x5c":["MIIB"]}"#, &good),
            "header parameter x5c is not allowed",
        ),
        (
            "crit with unknown extension",
            hs_header(r#"{"alg":"HS256","crit":["exp"],"exp":1}"#, &good),
            "unsupported critical header parameter",
        ),
        (
            "crit empty",
            hs_header(r#"{"alg":"HS256","crit":[]}"#, &good),
            "unsupported critical header parameter",
        ),
        (
            "unencoded payload (b64 false)",
            hs_header(r#"{"alg":"HS256","b64":false,"crit":["b64"]}"#, &good),
            "unsupported critical header parameter",
        ),
        (
            "kid a number",
            hs_header(r#"{"alg":"HS256","kid":7}"#, &good),
            "header parameter kid is invalid",
        ),
        (
            "typ an object",
            hs_header(r#"{"alg":"HS256","typ":{}}"#, &good),
            "header parameter typ is invalid",
        ),
        (
            "payload not base64",
            format!("{}.%%%.c2ln", b64(h.as_bytes())),
            "token payload is not base64url",
        ),
        (
            "payload not JSON",
            hs_raw(h, "hello", SECRET.as_bytes()),
            "token payload is not a JSON object",
        ),
        (
            "payload a string",
            hs_raw(h, "\"alice\"", SECRET.as_bytes()),
            "token payload is not a JSON object",
        ),
        (
            "duplicate sub",
            hs_raw(
                h,
                &format!(
                    r#"{{"iss":"{HS_ISS}","aud":"gw","exp":{},"sub":"alice","sub":"admin"}}"#,
                    NOW + 60
                ),
                SECRET.as_bytes(),
            ),
            "token payload has duplicate keys",
        ),
        (
            "empty signature",
            format!("{}.", input(h, &good.to_string())),
            "token signature is not base64url",
        ),
        (
            "signature not base64",
            format!("{}.***", input(h, &good.to_string())),
            "token signature is not base64url",
        ),
        (
            "iss missing",
            hs(&without(good.clone(), "iss")),
            "iss claim missing",
        ),
        (
            "iss a number",
            hs(&with(good.clone(), "iss", json!(1))),
            "iss claim is invalid",
        ),
        (
            "iss unknown",
            hs(&with(good.clone(), "iss", json!("https://evil.test"))),
            "unknown issuer",
        ),
        (
            "iss differs in case",
            hs(&with(good.clone(), "iss", json!("https://HS.test"))),
            "unknown issuer",
        ),
        (
            "RS256 to an HS256-only issuer",
            signed("RS256", "k-rsa", &good_claims(HS_ISS)),
            "algorithm RS256 is not allowed for this issuer",
        ),
        (
            "key confusion: HS256 keyed with the RSA public key",
            hs_raw(
                r#"{"alg":"HS256","kid":"k-rsa"}"#,
                &good_claims(PK_ISS).to_string(),
                &rsa_public_der,
            ),
            "algorithm HS256 is not allowed for this issuer",
        ),
        (
            "key confusion where HS256 is allowed",
            hs_raw(
                r#"{"alg":"HS256","kid":"k-rsa"}"#,
                &good_claims("https://both.test").to_string(),
                &rsa_public_der,
            ),
            "invalid signature",
        ),
        (
            "exp missing (jwt-simple would accept)",
            hs(&without(good.clone(), "exp")),
            "exp claim missing",
        ),
        (
            "exp a string",
            hs(&with(good.clone(), "exp", json!(format!("{}", NOW + 60)))),
            "exp claim is invalid",
        ),
        (
            "exp a fraction",
            hs(&with(good.clone(), "exp", json!((NOW + 60) as f64 + 0.5))),
            "exp claim is invalid",
        ),
        (
            "exp negative",
            hs(&with(good.clone(), "exp", json!(-1))),
            "exp claim is invalid",
        ),
        (
            "exp past year 9999",
            hs(&with(good.clone(), "exp", json!(253_402_300_800u64))),
            "exp claim is invalid",
        ),
        (
            "exp overflowing",
            hs_raw(
                h,
                &format!(r#"{{"iss":"{HS_ISS}","aud":"gw","sub":"a","exp":1e400}}"#),
                SECRET.as_bytes(),
            ),
            "token payload is not a JSON object",
        ),
        (
            "exp u64 max",
            hs(&with(good.clone(), "exp", json!(u64::MAX))),
            "exp claim is invalid",
        ),
        (
            "exp null",
            hs(&with(good.clone(), "exp", Value::Null)),
            "exp claim is invalid",
        ),
        (
            "expired beyond skew",
            hs(&with(good.clone(), "exp", json!(NOW - 30))),
            "token is expired",
        ),
        (
            "expired 10 minutes (jwt-simple's 15 min default would accept)",
            hs(&with(good.clone(), "exp", json!(NOW - 600))),
            "token is expired",
        ),
        (
            "expired long ago",
            hs(&with(good.clone(), "exp", json!(0))),
            "token is expired",
        ),
        (
            "nbf beyond skew",
            hs(&with(good.clone(), "nbf", json!(NOW + 31))),
            "token is not yet valid",
        ),
        (
            "nbf a string",
            hs(&with(good.clone(), "nbf", json!("soon"))),
            "nbf claim is invalid",
        ),
        (
            "iat in the future",
            hs(&with(good.clone(), "iat", json!(NOW + 3000))),
            "token is issued in the future",
        ),
        (
            "iat a boolean",
            hs(&with(good.clone(), "iat", json!(true))),
            "iat claim is invalid",
        ),
        (
            "aud missing",
            hs(&without(good.clone(), "aud")),
            "aud claim missing",
        ),
        (
            "aud wrong",
            hs(&with(good.clone(), "aud", json!("other-app"))),
            "audience mismatch",
        ),
        (
            "aud array without ours",
            hs(&with(good.clone(), "aud", json!(["a", "b"]))),
            "audience mismatch",
        ),
        (
            "aud array with a number",
            hs(&with(good.clone(), "aud", json!(["gw", 1]))),
            "aud claim is invalid",
        ),
        (
            "aud empty array",
            hs(&with(good.clone(), "aud", json!([]))),
            "aud claim is invalid",
        ),
        (
            "aud a number",
            hs(&with(good.clone(), "aud", json!(42))),
            "aud claim is invalid",
        ),
        (
            "sub missing",
            hs(&without(good.clone(), "sub")),
            "sub claim missing",
        ),
        (
            "sub a number",
            hs(&with(good.clone(), "sub", json!(1))),
            "sub claim is invalid",
        ),
        (
            "sub empty",
            hs(&with(good.clone(), "sub", json!(""))),
            "sub claim is invalid",
        ),
        (
            "sub with a newline (header injection)",
            hs(&with(good.clone(), "sub", json!("alice\r\nx-admin: 1"))),
            "sub claim is invalid",
        ),
        (
            "scope a number",
            hs(&with(good.clone(), "scope", json!(7))),
            "scope claim is invalid",
        ),
        (
            "scope array with a number",
            hs(&with(good.clone(), "scope", json!(["a", 1]))),
            "scope claim is invalid",
        ),
        (
            "jti a number",
            hs(&with(good.clone(), "jti", json!(1))),
            "jti claim is invalid",
        ),
        (
            "HS256 with the wrong secret",
            hs_raw(h, &good.to_string(), b"another-secret-of-32-bytes-long!!"),
            "invalid signature",
        ),
        (
            "tampered payload",
            format!(
                "{rs_head}.{}.{rs_sig}",
                b64(with(good_claims(PK_ISS), "sub", json!("admin"))
                    .to_string()
                    .as_bytes())
            ),
            "invalid signature",
        ),
        (
            "signature one byte short",
            {
                let mut sig = URL_SAFE_NO_PAD.decode(rs_sig).unwrap();
                sig.pop();
                format!(
                    "{rs_head}.{}.{}",
                    rs_rest.split_once('.').unwrap().0,
                    b64(&sig)
                )
            },
            "invalid signature",
        ),
        (
            "signed by another key under a known kid",
            signed("RS256-other", "k-rsa", &good_claims(PK_ISS)),
            "invalid signature",
        ),
        (
            "unknown kid (inline keys)",
            signed("RS256", "k-unknown", &good_claims(PK_ISS)),
            "unknown kid",
        ),
        (
            "RS256 token naming the EC key",
            signed("RS256", "k-ec", &good_claims(PK_ISS)),
            "key does not match the token algorithm",
        ),
        (
            "ES256 token naming the RSA key",
            signed("ES256", "k-rsa", &good_claims(PK_ISS)),
            "key does not match the token algorithm",
        ),
        (
            "garbage",
            "\u{0}\u{1}..".into(),
            "token header is not base64url",
        ),
        (
            "a kilobyte of dots",
            ".".repeat(1024),
            "token is not a signed JWT",
        ),
    ];
    assert!(cases.len() >= 40, "the table has {} cases", cases.len());
    let mut failures = Vec::new();
    for (name, token, details) in &cases {
        let verdict = check(token);
        match &verdict {
            Verdict::Refused(e) if e.to_string() == *details => {}
            _ => failures.push(format!("{name}: expected `{details}`, got {verdict:?}")),
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}

#[test]
fn skew_is_honoured_at_the_edges() {
    let good = good_claims(HS_ISS);
    assert!(matches!(
        check(&hs(&with(good.clone(), "exp", json!(NOW - 29)))),
        Verdict::Verified(_)
    ));
    assert!(matches!(
        check(&hs(&with(good.clone(), "nbf", json!(NOW + 30)))),
        Verdict::Verified(_)
    ));
    assert_eq!(
        refused(&hs(&with(good.clone(), "exp", json!(NOW - 30)))),
        TokenError::Expired
    );
}

#[test]
fn remote_keys_missing_or_unknown_kid_need_keys() {
    let token = signed("RS256", "k-rsa", &good_claims(REMOTE_ISS));
    assert_eq!(
        verify(&token, &providers(), &|_| None, NOW),
        Verdict::NeedKeys {
            provider: 2,
            otherwise: TokenError::UnknownKid
        }
    );
    let rotated = signed("RS256", "k-new", &good_claims(REMOTE_ISS));
    assert_eq!(
        check(&rotated),
        Verdict::NeedKeys {
            provider: 2,
            otherwise: TokenError::UnknownKid
        }
    );
    // Claims are judged before keys are sought: an expired token never triggers a fetch.
    let expired = signed(
        "RS256",
        "k-new",
        &with(good_claims(REMOTE_ISS), "exp", json!(NOW - 100)),
    );
    assert_eq!(refused(&expired), TokenError::Expired);
}

#[test]
fn random_bytes_never_panic() {
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for len in 0..300 {
        let token: String = (0..len)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                let alphabet = b"abcXYZ019-_.=+/ \x00\xff";
                char::from(alphabet[(seed % alphabet.len() as u64) as usize])
            })
            .collect();
        let _ = check(&token);
    }
}

const IDP_ISS: &str = "https://login.test";
const CLIENT_ID: &str = "web-client";

/// The providers of a config with browser login: `pk` (an API provider), then the session and
/// ID-token providers; and the ID-token provider's index.
fn login_providers() -> (Vec<Provider>, usize) {
    let text = json!({
        "providers": [{"name": "pk", "issuer": PK_ISS, "audiences": ["gw", CLIENT_ID],
                       "jwks": {"inline": keys().jwks}}],
        "oauth2": {"cluster": "idp", "authority": "idp", "issuer": IDP_ISS,
                   "client_id": CLIENT_ID, "client_secret": {"inline": "s"},
                   "redirect_uri": "https://chat.test/oauth2/callback",
                   "session": {"secret": {"inline": SECRET}}},
        "default_rule": {"auth": "required"}
    });
    let config = load(text.to_string().as_bytes()).unwrap();
    let index = config.oauth2.as_ref().unwrap().id_token_provider;
    (config.providers, index)
}

fn id_claims() -> Value {
    json!({"iss": IDP_ISS, "aud": CLIENT_ID, "sub": "alice", "iat": NOW - 10,
           "exp": NOW + 300, "nonce": "n-123", "email": "alice@example.test"})
}

fn check_id_token(token: &str) -> Verdict {
    let (providers, index) = login_providers();
    let set = remote_set();
    let keep = ["nonce".to_string(), "email".to_string()];
    verify_id_token(
        token,
        &providers,
        index,
        &|p| (p == index).then(|| set.clone()),
        NOW,
        &keep,
    )
}

fn id_token_refused(token: &str) -> TokenError {
    match check_id_token(token) {
        Verdict::Refused(e) => e,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

#[test]
fn id_tokens_verify_against_the_id_token_provider_only() {
    let good = signed("RS256", "k-rsa", &id_claims());
    let Verdict::Verified(identity) = check_id_token(&good) else {
        panic!("a good ID token verifies")
    };
    assert_eq!(identity.sub, "alice");
    assert_eq!(
        identity.claims,
        vec![
            ("nonce".to_string(), "n-123".to_string()),
            ("email".to_string(), "alice@example.test".to_string())
        ]
    );
    // Never accepted as a bearer token.
    let (providers, index) = login_providers();
    let set = remote_set();
    assert_eq!(
        verify(
            &good,
            &providers,
            &|p| (p == index).then(|| set.clone()),
            NOW
        ),
        Verdict::Refused(TokenError::UnknownIssuer)
    );

    let wrong_aud = with(id_claims(), "aud", json!("another-client"));
    assert_eq!(
        id_token_refused(&signed("RS256", "k-rsa", &wrong_aud)),
        TokenError::AudienceMismatch
    );
    let wrong_iss = with(id_claims(), "iss", json!("https://evil.test"));
    assert_eq!(
        id_token_refused(&signed("RS256", "k-rsa", &wrong_iss)),
        TokenError::UnknownIssuer
    );
    // Past exp plus the 60 s skew.
    let expired = with(id_claims(), "exp", json!(NOW - 61));
    assert_eq!(
        id_token_refused(&signed("RS256", "k-rsa", &expired)),
        TokenError::Expired
    );
    // A token of an API provider (its issuer, even with the client as audience) is no ID token.
    let api = with(id_claims(), "iss", json!(PK_ISS));
    assert_eq!(
        id_token_refused(&signed("RS256", "k-rsa", &api)),
        TokenError::UnknownIssuer
    );
    // Signed by another key under the known kid.
    assert_eq!(
        id_token_refused(&signed("RS256-other", "k-rsa", &id_claims())),
        TokenError::BadSignature
    );
    // HS256 (e.g. signed with the session secret) is not an algorithm of the IdP.
    assert!(matches!(
        id_token_refused(&hs(&id_claims())),
        TokenError::AlgorithmNotAllowed(_)
    ));
    // A key the gateway has not fetched yet: the keys must be refetched (IdP key rotation).
    assert_eq!(
        check_id_token(&signed("RS256", "k-rotated", &id_claims())),
        Verdict::NeedKeys {
            provider: index,
            otherwise: TokenError::UnknownKid
        }
    );
}

/// `hs` and `pk` (API providers), then the session and ID-token providers, with roles read
/// from Keycloak's `realm_access.roles`; and the ID-token provider's index.
fn providers_with_roles() -> (Vec<Provider>, usize) {
    let text = json!({
        "providers": [
            {"name": "hs", "issuer": HS_ISS, "audiences": ["gw"], "hs256_secret": {"inline": SECRET}},
            {"name": "pk", "issuer": PK_ISS, "audiences": ["gw"], "jwks": {"inline": keys().jwks}}],
        "roles": {"claims": ["realm_access.roles"],
                  "grants": {"admin": ["gateway:admin", "chat:read"], "guest": ["chat:read"]}},
        "oauth2": {"cluster": "idp", "authority": "idp", "issuer": IDP_ISS,
                   "client_id": CLIENT_ID, "client_secret": {"inline": "s"},
                   "redirect_uri": "https://chat.test/oauth2/callback",
                   "session": {"secret": {"inline": SECRET}}},
        "default_rule": {"auth": "required"}
    });
    let config = load(text.to_string().as_bytes()).unwrap();
    let index = config.oauth2.as_ref().unwrap().id_token_provider;
    (config.providers, index)
}

fn scopes_of(verdict: Verdict) -> Vec<String> {
    match verdict {
        Verdict::Verified(identity) => identity.scopes,
        other => panic!("expected a verified token, got {other:?}"),
    }
}

#[test]
fn roles_add_scopes_to_bearer_and_id_tokens_never_to_sessions() {
    let (providers, id_index) = providers_with_roles();
    let set = remote_set();
    let keys = |p: usize| (p == id_index).then(|| set.clone());
    let admin = json!({"roles": ["admin"]});
    let bearer = |iss: &str| with(good_claims(iss), "realm_access", admin.clone());
    // The token's own scopes first, then the granted ones not already there.
    for token in [
        hs(&bearer(HS_ISS)),
        signed("RS256", "k-rsa", &bearer(PK_ISS)),
    ] {
        assert_eq!(
            scopes_of(verify(&token, &providers, &keys, NOW)),
            ["chat:read", "chat:write", "gateway:admin"]
        );
    }
    let guest = with(
        good_claims(HS_ISS),
        "realm_access",
        json!({"roles": ["guest"]}),
    );
    assert_eq!(
        scopes_of(verify(&hs(&guest), &providers, &keys, NOW)),
        ["chat:read", "chat:write"]
    );
    // The gateway's own session tokens get nothing from roles (they get theirs at login).
    let session = json!({"iss": crate::config::SESSION_ISSUER, "aud": CLIENT_ID, "sub": "alice",
                         "iat": NOW - 10, "exp": NOW + 300, "scope": "chat:write",
                         "realm_access": {"roles": ["admin"]}});
    assert_eq!(
        scopes_of(verify(&hs(&session), &providers, &keys, NOW)),
        ["chat:write"]
    );
    // The login flow's ID tokens do (their granted scopes go into the session).
    let id_token = with(id_claims(), "realm_access", admin.clone());
    let verdict = verify_id_token(
        &signed("RS256", "k-rsa", &id_token),
        &providers,
        id_index,
        &keys,
        NOW,
        &[],
    );
    assert_eq!(scopes_of(verdict), ["gateway:admin", "chat:read"]);
}

#[test]
fn a_token_with_duplicate_role_claims_is_refused() {
    let (providers, _) = providers_with_roles();
    let header = r#"{"alg":"HS256","typ":"JWT"}"#;
    let base = format!(
        r#""iss":"{HS_ISS}","aud":"gw","sub":"alice","iat":{},"exp":{}"#,
        NOW - 10,
        NOW + 3600
    );
    for roles in [
        r#""realm_access":{"roles":["guest"],"roles":["admin"]}"#,
        r#""realm_access":{"roles":["guest"]},"realm_access":{"roles":["admin"]}"#,
    ] {
        let token = hs_raw(header, &format!("{{{base},{roles}}}"), SECRET.as_bytes());
        assert_eq!(
            verify(&token, &providers, &|_| None, NOW),
            Verdict::Refused(TokenError::DuplicateKey(Part::Payload)),
            "{roles}"
        );
    }
}
