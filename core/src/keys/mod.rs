//! Turning a JWKS document (RFC 7517) fetched from an identity provider into verification keys.
//!
//! The document comes from the network and is treated as hostile: every rule below either keeps
//! a key or skips it with a short reason, and nothing in here can panic. One bad key never
//! fails the whole document; only a document with no usable key at all is an error.
//!
//! Only asymmetric signature keys are kept: RSA (RS256, 2048 bits and up), EC P-256 (ES256) and
//! Ed25519 (EdDSA). Each key verifies exactly one algorithm, so a token can never pick how a key
//! is used (algorithm confusion).

mod algorithm;
pub mod rsa;

use std::fmt;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine as _;
use jwt_simple::prelude::{ES256PublicKey, Ed25519PublicKey};

use rsa::RsaVerifier;
use serde_json::{Map, Value};
use sha2::{Digest, Sha256};

pub use algorithm::Algorithm;

/// Documents larger than this are refused before any parsing.
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Entries of `keys` beyond this many are ignored.
pub const MAX_KEYS: usize = 100;
/// Smallest RSA modulus accepted: shorter moduli are factorable.
pub const MIN_RSA_BITS: usize = 2048;
/// Largest RSA modulus looked at: bounds the cost a hostile JWKS can impose.
const MAX_RSA_BITS: usize = 8192;
/// Largest RSA public exponent, in bytes (after leading zeros are stripped); 65537 needs 3.
const MAX_RSA_EXPONENT_BYTES: usize = 4;
/// Longest excerpt of a document-supplied string quoted in a skip reason.
const MAX_QUOTED_CHARS: usize = 64;

/// JWK members that only private or symmetric keys carry (RFC 7518 §6.2.2, §6.3.2, §6.4.1).
const PRIVATE_MEMBERS: [&str; 8] = ["d", "p", "q", "dp", "dq", "qi", "oth", "k"];

/// JOSE `alg` names of each key family: a name from the family that is not the one supported
/// algorithm gets a clearer reason than a name from another family.
const RSA_ALG_NAMES: [&str; 6] = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"];
const EC_ALG_NAMES: [&str; 4] = ["ES256", "ES384", "ES512", "ES256K"];
const OKP_ALG_NAMES: [&str; 3] = ["EdDSA", "Ed25519", "Ed448"];

/// One usable verification key from a JWKS.
#[derive(Clone)]
pub struct Jwk {
    pub kid: Option<String>,
    /// The `alg` the JWK declares, if any (already checked to be consistent with the key type).
    pub declared_alg: Option<Algorithm>,
    pub key: PublicKey,
}

impl Jwk {
    /// Whether this key may verify a token signed with `alg`.
    fn fits(&self, alg: Algorithm) -> bool {
        let declared_fits = match self.declared_alg {
            None => true,
            Some(declared) => declared == alg,
        };
        self.key.algorithm() == alg && declared_fits
    }
}

impl fmt::Debug for Jwk {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Jwk")
            .field("kid", &self.kid)
            .field("declared_alg", &self.declared_alg)
            .field("key", &self.key)
            .finish()
    }
}

/// The public key of a [`Jwk`], typed by the one algorithm it verifies.
// At most MAX_KEYS of these exist, built once per JWKS refresh: the size of the RSA variant
// does not matter, and boxing it would only complicate matching on it.
#[allow(clippy::large_enum_variant)]
#[derive(Clone)]
pub enum PublicKey {
    Rsa(RsaVerifier),
    Ec(ES256PublicKey),
    Ed(Ed25519PublicKey),
}

impl PublicKey {
    /// The one algorithm this key verifies: Rsa→RS256, Ec→ES256, Ed→EdDSA.
    pub fn algorithm(&self) -> Algorithm {
        match self {
            Self::Rsa(_) => Algorithm::RS256,
            Self::Ec(_) => Algorithm::ES256,
            Self::Ed(_) => Algorithm::EdDSA,
        }
    }
}

/// Names the key type only: key material has no place in logs.
impl fmt::Debug for PublicKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let name = match self {
            Self::Rsa(_) => "Rsa",
            Self::Ec(_) => "Ec",
            Self::Ed(_) => "Ed",
        };
        write!(f, "{name}({})", self.algorithm())
    }
}

/// The usable keys of one JWKS document, plus a fingerprint of its content.
#[derive(Clone)]
pub struct KeySet {
    keys: Vec<Jwk>,
    fingerprint: u64,
}

impl KeySet {
    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// SHA-256-derived u64 of the raw document bytes: equal documents give equal fingerprints,
    /// so a refresh that brings the same keys can be told apart from a rotation.
    pub fn fingerprint(&self) -> u64 {
        self.fingerprint
    }

    pub fn keys(&self) -> &[Jwk] {
        &self.keys
    }

    /// Keys that may verify a token with header `kid` and `alg`.
    pub fn find(&self, kid: Option<&str>, alg: Algorithm) -> KeyLookup<'_> {
        match kid {
            Some(kid) => {
                // Exact, case-sensitive match. A key without a kid is no fallback for a token
                // that names one: the token said which key it wants.
                let named: Vec<&Jwk> = self
                    .keys
                    .iter()
                    .filter(|key| key.kid.as_deref() == Some(kid))
                    .collect();
                if named.is_empty() {
                    return KeyLookup::UnknownKid;
                }
                let fitting: Vec<&Jwk> = named.into_iter().filter(|key| key.fits(alg)).collect();
                if fitting.is_empty() {
                    // The token names a real key but claims an algorithm that key is not for.
                    KeyLookup::AlgorithmMismatch
                } else {
                    KeyLookup::Found(fitting)
                }
            }
            None => {
                let fitting: Vec<&Jwk> = self.keys.iter().filter(|key| key.fits(alg)).collect();
                if fitting.is_empty() {
                    KeyLookup::NoKeyForAlgorithm
                } else {
                    KeyLookup::Found(fitting)
                }
            }
        }
    }
}

impl fmt::Debug for KeySet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("KeySet")
            .field("fingerprint", &format_args!("{:016x}", self.fingerprint))
            .field("keys", &self.keys)
            .finish()
    }
}

/// The outcome of [`KeySet::find`].
#[derive(Debug)]
pub enum KeyLookup<'a> {
    /// Candidate keys (non-empty): with a kid, the keys with that kid whose type fits `alg`;
    /// without a kid, every key whose type fits `alg`.
    Found(Vec<&'a Jwk>),
    /// A kid was given and no key has it.
    UnknownKid,
    /// A key with that kid exists but its type or declared alg does not fit `alg`
    /// (e.g. an RS256 token naming an EC key's kid): algorithm confusion, refuse.
    AlgorithmMismatch,
    /// No kid given and no key of a type that fits `alg`.
    NoKeyForAlgorithm,
}

/// Why a whole JWKS document is refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JwksError {
    /// The document is over [`MAX_JWKS_BYTES`].
    TooLarge { limit: usize },
    /// Not valid JSON, or not a JSON object.
    NotJson,
    /// No `keys` array.
    NoKeysArray,
    /// Parsed, but zero keys passed the rules.
    NoUsableKeys,
}

impl fmt::Display for JwksError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::TooLarge { limit } => write!(f, "JWKS document is larger than {limit} bytes"),
            Self::NotJson => f.write_str("JWKS document is not a JSON object"),
            Self::NoKeysArray => f.write_str("JWKS document has no \"keys\" array"),
            Self::NoUsableKeys => f.write_str("JWKS has no usable keys"),
        }
    }
}

impl std::error::Error for JwksError {}

/// Parses a JWKS document. Ok carries the usable keys and, for logging, one short reason per
/// skipped key ("key 2 (kid k9): RSA modulus of 1024 bits is under 2048"). Keys are numbered
/// by their 0-based position in the `keys` array.
pub fn parse_jwks(document: &[u8]) -> Result<(KeySet, Vec<String>), JwksError> {
    let (result, skipped) = parse_jwks_with_skipped(document);
    result.map(|keys| (keys, skipped))
}

/// Like [`parse_jwks`], but also returns the skip reasons when the document is refused, so
/// that a [`JwksError::NoUsableKeys`] can be logged with why every key was skipped.
pub fn parse_jwks_with_skipped(document: &[u8]) -> (Result<KeySet, JwksError>, Vec<String>) {
    let mut skipped = Vec::new();
    let result = parse_document(document, &mut skipped);
    (result, skipped)
}

fn parse_document(document: &[u8], skipped: &mut Vec<String>) -> Result<KeySet, JwksError> {
    // Checked before parsing: the size of what we parse is ours to bound, not the IdP's.
    if document.len() > MAX_JWKS_BYTES {
        return Err(JwksError::TooLarge {
            limit: MAX_JWKS_BYTES,
        });
    }
    // serde_json bounds nesting depth itself, so deeply nested input is an error, not a crash.
    let root: Value = serde_json::from_slice(document).map_err(|_| JwksError::NotJson)?;
    let Value::Object(root) = root else {
        return Err(JwksError::NotJson);
    };
    let Some(Value::Array(entries)) = root.get("keys") else {
        return Err(JwksError::NoKeysArray);
    };

    let mut keys = Vec::new();
    for (index, entry) in entries.iter().enumerate().take(MAX_KEYS) {
        match parse_key(entry) {
            Ok(jwk) => keys.push(jwk),
            Err(reason) => skipped.push(format!("{}: {reason}", key_label(index, entry))),
        }
    }
    if entries.len() > MAX_KEYS {
        skipped.push(format!(
            "{} keys beyond the first {MAX_KEYS} ignored",
            entries.len().saturating_sub(MAX_KEYS)
        ));
    }

    if keys.is_empty() {
        return Err(JwksError::NoUsableKeys);
    }
    Ok(KeySet {
        keys,
        fingerprint: fingerprint(document),
    })
}

/// The first 8 bytes of the SHA-256 of `document`, big-endian.
fn fingerprint(document: &[u8]) -> u64 {
    Sha256::digest(document)
        .iter()
        .take(8)
        .fold(0, |acc, byte| (acc << 8) | u64::from(*byte))
}

/// "key 2" or "key 2 (kid k9)", to prefix a skip reason.
fn key_label(index: usize, entry: &Value) -> String {
    match entry.get("kid").and_then(Value::as_str) {
        Some(kid) => format!("key {index} (kid {})", quote(kid)),
        None => format!("key {index}"),
    }
}

/// One entry of `keys`, or why it is skipped.
fn parse_key(entry: &Value) -> Result<Jwk, String> {
    let Value::Object(member) = entry else {
        return Err(format!("is {}, not a JSON object", json_type(entry)));
    };
    let kid = parse_kid(member)?;
    check_use(member)?;
    check_key_ops(member)?;
    check_no_private_members(member)?;
    let (key, declared_alg) = match required_str(member, "kty")? {
        "RSA" => parse_rsa(member)?,
        "EC" => parse_ec(member)?,
        "OKP" => parse_okp(member)?,
        // Security: a symmetric key published in a JWKS is known to everyone who can fetch it,
        // and accepting it would let an attacker sign HS256 tokens with "public" material.
        "oct" => return Err("symmetric (oct) keys are never taken from a JWKS".to_string()),
        other => return Err(format!("kty {} is not supported", quote(other))),
    };
    Ok(Jwk {
        kid,
        declared_alg,
        key,
    })
}

fn parse_kid(member: &Map<String, Value>) -> Result<Option<String>, String> {
    match member.get("kid") {
        None => Ok(None),
        Some(Value::String(kid)) => Ok(Some(kid.clone())),
        Some(other) => Err(format!("kid is {}, not a string", json_type(other))),
    }
}

/// `use`, if present, must be "sig": an encryption key must not verify signatures.
fn check_use(member: &Map<String, Value>) -> Result<(), String> {
    match member.get("use") {
        None => Ok(()),
        Some(Value::String(key_use)) if key_use == "sig" => Ok(()),
        Some(Value::String(key_use)) => Err(format!("use is {}, not sig", quote(key_use))),
        Some(other) => Err(format!("use is {}, not a string", json_type(other))),
    }
}

/// `key_ops`, if present, must allow "verify".
fn check_key_ops(member: &Map<String, Value>) -> Result<(), String> {
    match member.get("key_ops") {
        None => Ok(()),
        Some(Value::Array(ops)) if ops.iter().any(|op| op.as_str() == Some("verify")) => Ok(()),
        Some(Value::Array(_)) => Err("key_ops does not include verify".to_string()),
        Some(other) => Err(format!("key_ops is {}, not an array", json_type(other))),
    }
}

/// Security: a JWKS publishes public keys. One carrying private or secret material is a
/// misconfigured IdP (its secrets are now public); such keys are not trusted.
fn check_no_private_members(member: &Map<String, Value>) -> Result<(), String> {
    match PRIVATE_MEMBERS
        .iter()
        .find(|name| member.contains_key(**name))
    {
        Some(name) => Err(format!(
            "carries private member {name}; a JWKS must hold public keys only"
        )),
        None => Ok(()),
    }
}

/// The declared `alg`, which must be `expected` if present. `family` lists the alg names of the
/// key's own type, to tell "unsupported variant" from "wrong type altogether" in the reason.
fn declared_alg(
    member: &Map<String, Value>,
    expected: Algorithm,
    kty: &str,
    family: &[&str],
) -> Result<Option<Algorithm>, String> {
    match member.get("alg") {
        None => Ok(None),
        Some(Value::String(alg)) if alg == expected.name() => Ok(Some(expected)),
        Some(Value::String(alg)) if family.contains(&alg.as_str()) => Err(format!(
            "declares alg {alg}; only {expected} is supported for {kty} keys"
        )),
        Some(Value::String(alg)) => Err(format!(
            "declares alg {}, which is not for {kty} keys",
            quote(alg)
        )),
        Some(other) => Err(format!("alg is {}, not a string", json_type(other))),
    }
}

fn parse_rsa(member: &Map<String, Value>) -> Result<(PublicKey, Option<Algorithm>), String> {
    let declared = declared_alg(member, Algorithm::RS256, "RSA", &RSA_ALG_NAMES)?;
    let n = base64url_member(member, "n")?;
    let e = base64url_member(member, "e")?;

    let n = strip_leading_zeros(&n);
    let bits = bit_length(n);
    // Security: moduli under 2048 bits can be factored, i.e. signatures forged.
    if bits < MIN_RSA_BITS {
        return Err(format!(
            "RSA modulus of {bits} bits is under {MIN_RSA_BITS}"
        ));
    }
    if bits > MAX_RSA_BITS {
        return Err(format!("RSA modulus of {bits} bits is over {MAX_RSA_BITS}"));
    }

    let e = strip_leading_zeros(&e);
    if e.len() > MAX_RSA_EXPONENT_BYTES {
        return Err(format!(
            "RSA exponent is longer than {MAX_RSA_EXPONENT_BYTES} bytes"
        ));
    }
    // Security: e = 1 makes every message its own signature; an even e is no RSA key at all.
    let odd = e.last().is_some_and(|low| low & 1 == 1);
    if !odd || e == [1] {
        return Err("RSA exponent must be odd and greater than 1".to_string());
    }

    // Prepared once here (Montgomery constants), so a verification is the exponentiation only.
    let key =
        RsaVerifier::from_components(n, e).map_err(|err| format!("RSA key refused: {err}"))?;
    Ok((PublicKey::Rsa(key), declared))
}

fn parse_ec(member: &Map<String, Value>) -> Result<(PublicKey, Option<Algorithm>), String> {
    let crv = required_str(member, "crv")?;
    if crv != "P-256" {
        return Err(format!(
            "EC curve {} is not supported, only P-256",
            quote(crv)
        ));
    }
    let declared = declared_alg(member, Algorithm::ES256, "EC", &EC_ALG_NAMES)?;
    let x = fixed_length_member(member, "x", 32)?;
    let y = fixed_length_member(member, "y", 32)?;

    // SEC1 uncompressed point: 0x04 || x || y. The library checks that it lies on the curve
    // (an off-curve point opens invalid-curve attacks).
    let mut point = Vec::with_capacity(65);
    point.push(0x04);
    point.extend_from_slice(&x);
    point.extend_from_slice(&y);
    let key =
        ES256PublicKey::from_bytes(&point).map_err(|_| "EC point is not on P-256".to_string())?;
    Ok((PublicKey::Ec(key), declared))
}

fn parse_okp(member: &Map<String, Value>) -> Result<(PublicKey, Option<Algorithm>), String> {
    let crv = required_str(member, "crv")?;
    if crv != "Ed25519" {
        return Err(format!(
            "OKP curve {} is not supported, only Ed25519",
            quote(crv)
        ));
    }
    let declared = declared_alg(member, Algorithm::EdDSA, "OKP", &OKP_ALG_NAMES)?;
    let x = fixed_length_member(member, "x", 32)?;
    // The library refuses small-order (weak) points.
    let key = Ed25519PublicKey::from_bytes(&x)
        .map_err(|_| "Ed25519 public key is invalid".to_string())?;
    Ok((PublicKey::Ed(key), declared))
}

fn required_str<'a>(member: &'a Map<String, Value>, name: &str) -> Result<&'a str, String> {
    match member.get(name) {
        None => Err(format!("{name} is missing")),
        Some(Value::String(value)) => Ok(value),
        Some(other) => Err(format!("{name} is {}, not a string", json_type(other))),
    }
}

/// A base64url member (RFC 7515 §2: unpadded, URL-safe alphabet). Padding, the standard
/// alphabet and non-canonical trailing bits are all refused: one encoding per value.
fn base64url_member(member: &Map<String, Value>, name: &str) -> Result<Vec<u8>, String> {
    let encoded = required_str(member, name)?;
    URL_SAFE_NO_PAD
        .decode(encoded)
        .map_err(|_| format!("{name} is not unpadded base64url"))
}

fn fixed_length_member(
    member: &Map<String, Value>,
    name: &str,
    length: usize,
) -> Result<Vec<u8>, String> {
    let bytes = base64url_member(member, name)?;
    if bytes.len() != length {
        return Err(format!(
            "{name} is {} bytes, expected {length}",
            bytes.len()
        ));
    }
    Ok(bytes)
}

fn strip_leading_zeros(bytes: &[u8]) -> &[u8] {
    let first = bytes
        .iter()
        .position(|&byte| byte != 0)
        .unwrap_or(bytes.len());
    bytes.get(first..).unwrap_or_default()
}

/// Bit length of a big-endian unsigned integer without leading zero bytes.
fn bit_length(bytes: &[u8]) -> usize {
    match bytes.split_first() {
        None => 0,
        Some((top, rest)) => rest.len() * 8 + (8 - top.leading_zeros() as usize),
    }
}

fn json_type(value: &Value) -> &'static str {
    match value {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

/// A document-supplied string made safe to log: at most [`MAX_QUOTED_CHARS`] characters, and
/// anything but printable ASCII replaced by '?' (no log injection through a kid).
fn quote(text: &str) -> String {
    let mut quoted: String = text
        .chars()
        .take(MAX_QUOTED_CHARS)
        .map(|c| {
            if c.is_ascii_graphic() || c == ' ' {
                c
            } else {
                '?'
            }
        })
        .collect();
    if text.chars().nth(MAX_QUOTED_CHARS).is_some() {
        quoted.push_str("...");
    }
    quoted
}

#[cfg(test)]
mod tests {
    use std::sync::OnceLock;

    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    use jwt_simple::prelude::{
        Claims, Duration, ECDSAP256KeyPairLike, ECDSAP256PublicKeyLike, ES256KeyPair,
        Ed25519KeyPair, EdDSAKeyPairLike, EdDSAPublicKeyLike, NoCustomClaims, RS256KeyPair,
        RSAKeyPairLike,
    };
    use serde_json::json;

    use super::*;

    // ---- fixtures -------------------------------------------------------------------------

    /// RSA generation is slow: one 2048-bit pair shared by all tests.
    fn rsa_pair() -> &'static RS256KeyPair {
        static PAIR: OnceLock<RS256KeyPair> = OnceLock::new();
        PAIR.get_or_init(|| RS256KeyPair::generate(2048).expect("RSA key generation"))
    }

    fn ec_pair() -> &'static ES256KeyPair {
        static PAIR: OnceLock<ES256KeyPair> = OnceLock::new();
        PAIR.get_or_init(ES256KeyPair::generate)
    }

    fn ed_pair() -> &'static Ed25519KeyPair {
        static PAIR: OnceLock<Ed25519KeyPair> = OnceLock::new();
        PAIR.get_or_init(Ed25519KeyPair::generate)
    }

    fn b64(bytes: &[u8]) -> String {
        URL_SAFE_NO_PAD.encode(bytes)
    }

    fn rsa_jwk(kid: &str) -> Value {
        let components = rsa_pair().public_key().to_components();
        json!({"kty": "RSA", "kid": kid, "n": b64(&components.n), "e": b64(&components.e)})
    }

    /// RSA JWK with a given modulus and exponent (for synthetic, non-generatable values).
    fn rsa_jwk_from(n: &[u8], e: &[u8]) -> Value {
        json!({"kty": "RSA", "kid": "synthetic", "n": b64(n), "e": b64(e)})
    }

    fn ec_point() -> Vec<u8> {
        ec_pair().public_key().public_key().to_bytes_uncompressed()
    }

    fn ec_jwk(kid: &str) -> Value {
        let point = ec_point();
        json!({
            "kty": "EC", "crv": "P-256", "kid": kid,
            "x": b64(point.get(1..33).unwrap()), "y": b64(point.get(33..65).unwrap()),
        })
    }

    fn ed_jwk(kid: &str) -> Value {
        let x = ed_pair().public_key().to_bytes();
        json!({"kty": "OKP", "crv": "Ed25519", "kid": kid, "x": b64(&x)})
    }

    fn with(mut jwk: Value, name: &str, value: Value) -> Value {
        jwk.as_object_mut().unwrap().insert(name.to_string(), value);
        jwk
    }

    fn without(mut jwk: Value, name: &str) -> Value {
        jwk.as_object_mut().unwrap().remove(name);
        jwk
    }

    fn document(keys: Vec<Value>) -> Vec<u8> {
        serde_json::to_vec(&json!({ "keys": keys })).unwrap()
    }

    fn parse_ok(keys: Vec<Value>) -> (KeySet, Vec<String>) {
        match parse_jwks(&document(keys)) {
            Ok(parsed) => parsed,
            Err(err) => panic!("document refused: {err}"),
        }
    }

    /// Asserts that `jwk` alone is accepted, and returns it.
    fn accepted(jwk: Value) -> Jwk {
        let (set, skipped) = parse_ok(vec![jwk]);
        assert!(skipped.is_empty(), "unexpected skips: {skipped:?}");
        assert_eq!(set.len(), 1);
        set.keys().first().unwrap().clone()
    }

    /// Asserts that `jwk` is skipped (next to a good key, so the document still parses) and
    /// returns the reason.
    fn skip_reason(jwk: Value) -> String {
        let (set, skipped) = parse_ok(vec![ed_jwk("filler"), jwk]);
        assert_eq!(
            set.len(),
            1,
            "the key was not skipped; reasons: {skipped:?}"
        );
        assert_eq!(skipped.len(), 1, "{skipped:?}");
        skipped.into_iter().next().unwrap()
    }

    fn assert_skipped(jwk: Value, expected_fragment: &str) {
        let reason = skip_reason(jwk);
        assert!(
            reason.contains(expected_fragment),
            "reason {reason:?} lacks {expected_fragment:?}"
        );
    }

    fn found(lookup: KeyLookup<'_>) -> Vec<&Jwk> {
        match lookup {
            KeyLookup::Found(keys) => {
                assert!(!keys.is_empty());
                keys
            }
            other => panic!("expected Found, got {other:?}"),
        }
    }

    fn kids(keys: &[&Jwk]) -> Vec<String> {
        keys.iter()
            .map(|key| key.kid.clone().unwrap_or_default())
            .collect()
    }

    // ---- accepted keys --------------------------------------------------------------------

    #[test]
    fn accepts_rsa_key() {
        let jwk = accepted(rsa_jwk("r1"));
        assert_eq!(jwk.kid.as_deref(), Some("r1"));
        assert_eq!(jwk.declared_alg, None);
        assert_eq!(jwk.key.algorithm(), Algorithm::RS256);
        assert!(matches!(jwk.key, PublicKey::Rsa(_)));
    }

    #[test]
    fn accepts_rsa_key_with_all_optional_members() {
        let jwk = rsa_jwk("r1");
        let jwk = with(jwk, "alg", json!("RS256"));
        let jwk = with(jwk, "use", json!("sig"));
        let jwk = with(jwk, "key_ops", json!(["sign", "verify"]));
        let jwk = with(jwk, "x5t", json!("ignored"));
        let jwk = accepted(jwk);
        assert_eq!(jwk.declared_alg, Some(Algorithm::RS256));
    }

    #[test]
    fn accepts_rsa_modulus_and_exponent_with_leading_zeros() {
        let components = rsa_pair().public_key().to_components();
        let mut n = vec![0, 0];
        n.extend_from_slice(&components.n);
        let mut e = vec![0];
        e.extend_from_slice(&components.e);
        accepted(rsa_jwk_from(&n, &e));
    }

    #[test]
    fn accepts_ec_key() {
        let jwk = accepted(with(ec_jwk("e1"), "alg", json!("ES256")));
        assert_eq!(jwk.kid.as_deref(), Some("e1"));
        assert_eq!(jwk.declared_alg, Some(Algorithm::ES256));
        assert_eq!(jwk.key.algorithm(), Algorithm::ES256);
        assert!(matches!(jwk.key, PublicKey::Ec(_)));
    }

    #[test]
    fn accepts_okp_key() {
        let jwk = accepted(with(ed_jwk("o1"), "alg", json!("EdDSA")));
        assert_eq!(jwk.kid.as_deref(), Some("o1"));
        assert_eq!(jwk.declared_alg, Some(Algorithm::EdDSA));
        assert_eq!(jwk.key.algorithm(), Algorithm::EdDSA);
        assert!(matches!(jwk.key, PublicKey::Ed(_)));
    }

    #[test]
    fn accepts_key_without_kid() {
        let jwk = accepted(without(ed_jwk("x"), "kid"));
        assert_eq!(jwk.kid, None);
    }

    #[test]
    fn keeps_order_and_counts_mixed_document() {
        let (set, skipped) = parse_ok(vec![
            rsa_jwk("r"),
            json!({"kty": "oct", "k": "c2VjcmV0"}),
            ec_jwk("e"),
            ed_jwk("o"),
        ]);
        assert_eq!(set.len(), 3);
        assert!(!set.is_empty());
        let all: Vec<&Jwk> = set.keys().iter().collect();
        assert_eq!(kids(&all), ["r", "e", "o"]);
        assert_eq!(skipped.len(), 1);
        assert!(skipped[0].starts_with("key 1: "), "{skipped:?}");
    }

    // ---- conversions proven by real signatures --------------------------------------------

    #[test]
    fn rsa_token_verifies_with_parsed_key() {
        let token = rsa_pair()
            .sign(Claims::create(Duration::from_hours(1)))
            .unwrap();
        let PublicKey::Rsa(key) = accepted(rsa_jwk("r")).key else {
            panic!("not an RSA key");
        };
        let (message, signature) = token.rsplit_once('.').unwrap();
        let signature = URL_SAFE_NO_PAD.decode(signature).unwrap();
        assert!(key.verify_sha256(message.as_bytes(), &signature));
        let tampered = format!("{message}x");
        assert!(!key.verify_sha256(tampered.as_bytes(), &signature));
    }

    #[test]
    fn es256_token_verifies_with_parsed_key() {
        let token = ec_pair()
            .sign(Claims::create(Duration::from_hours(1)))
            .unwrap();
        let PublicKey::Ec(key) = accepted(ec_jwk("e")).key else {
            panic!("not an EC key");
        };
        key.verify_token::<NoCustomClaims>(&token, None).unwrap();

        let other = ES256KeyPair::generate()
            .sign(Claims::create(Duration::from_hours(1)))
            .unwrap();
        assert!(key.verify_token::<NoCustomClaims>(&other, None).is_err());
    }

    #[test]
    fn eddsa_token_verifies_with_parsed_key() {
        let token = ed_pair()
            .sign(Claims::create(Duration::from_hours(1)))
            .unwrap();
        let PublicKey::Ed(key) = accepted(ed_jwk("o")).key else {
            panic!("not an Ed25519 key");
        };
        key.verify_token::<NoCustomClaims>(&token, None).unwrap();

        let other = Ed25519KeyPair::generate()
            .sign(Claims::create(Duration::from_hours(1)))
            .unwrap();
        assert!(key.verify_token::<NoCustomClaims>(&other, None).is_err());
    }

    // ---- RSA rules ------------------------------------------------------------------------

    /// A synthetic odd modulus of exactly `bits` bits.
    fn modulus_of_bits(bits: usize) -> Vec<u8> {
        let bytes = bits.div_ceil(8);
        let mut n = vec![0xA5; bytes];
        let top_bits = bits - (bytes - 1) * 8;
        n[0] = 1 << (top_bits - 1); // only the top bit: exactly `bits` bits
        n[bytes - 1] |= 1;
        n
    }

    #[test]
    fn synthetic_modulus_has_the_requested_bit_length() {
        for bits in [1, 7, 8, 9, 1024, 2047, 2048, 8193] {
            assert_eq!(bit_length(&modulus_of_bits(bits)), bits, "{bits}");
        }
        assert_eq!(bit_length(&[]), 0);
        assert_eq!(strip_leading_zeros(&[0, 0, 5, 0]), [5, 0]);
        assert_eq!(strip_leading_zeros(&[0, 0]), [0u8; 0]);
    }

    #[test]
    fn skips_1024_bit_rsa_key() {
        // jwt-simple refuses to generate keys under 2048 bits, so the modulus is synthetic; the
        // rule is checked before any cryptography happens.
        let reason = skip_reason(rsa_jwk_from(&modulus_of_bits(1024), &[1, 0, 1]));
        assert_eq!(
            reason,
            "key 1 (kid synthetic): RSA modulus of 1024 bits is under 2048"
        );
    }

    #[test]
    fn skips_rsa_key_one_byte_short_of_a_real_key() {
        let components = rsa_pair().public_key().to_components();
        let short = components.n.get(1..).unwrap();
        assert_skipped(rsa_jwk_from(short, &components.e), "is under 2048");
    }

    #[test]
    fn skips_2047_bit_modulus_even_with_padding_zeros() {
        let mut n = vec![0, 0, 0];
        n.extend(modulus_of_bits(2047));
        assert_skipped(rsa_jwk_from(&n, &[1, 0, 1]), "2047 bits is under 2048");
    }

    #[test]
    fn skips_oversized_rsa_modulus() {
        assert_skipped(
            rsa_jwk_from(&modulus_of_bits(8193), &[1, 0, 1]),
            "8193 bits is over 8192",
        );
        // At the bound: usable.
        let jwk = accepted(rsa_jwk_from(&modulus_of_bits(8192), &[1, 0, 1]));
        assert!(matches!(jwk.key, PublicKey::Rsa(_)));
    }

    #[test]
    fn skips_empty_modulus() {
        assert_skipped(rsa_jwk_from(&[], &[1, 0, 1]), "0 bits is under 2048");
    }

    #[test]
    fn skips_bad_rsa_exponents() {
        let n = rsa_pair().public_key().to_components().n;
        for e in [
            &[1, 0, 0][..], // even
            &[2],
            &[1], // e = 1
            &[0, 0, 1],
            &[], // e = 0
            &[0],
        ] {
            assert_skipped(
                rsa_jwk_from(&n, e),
                "exponent must be odd and greater than 1",
            );
        }
        assert_skipped(rsa_jwk_from(&n, &[1; 5]), "longer than 4 bytes");
        // Odd and small: a valid RSA key (signatures are checked by construct-and-compare, so
        // e = 3 forgeries against lenient parsers do not apply).
        assert!(matches!(
            accepted(rsa_jwk_from(&n, &[3])).key,
            PublicKey::Rsa(_)
        ));
    }

    #[test]
    fn skips_rsa_key_with_missing_or_non_string_components() {
        assert_skipped(without(rsa_jwk("r"), "n"), "n is missing");
        assert_skipped(without(rsa_jwk("r"), "e"), "e is missing");
        assert_skipped(with(rsa_jwk("r"), "n", json!(12345)), "n is a number");
        assert_skipped(with(rsa_jwk("r"), "e", json!(65537)), "e is a number");
    }

    #[test]
    fn skips_rsa_key_with_other_declared_alg() {
        for alg in ["RS512", "RS384", "PS256", "PS512"] {
            assert_skipped(
                with(rsa_jwk("r"), "alg", json!(alg)),
                &format!("declares alg {alg}; only RS256 is supported for RSA keys"),
            );
        }
        for alg in ["ES256", "EdDSA", "HS256", "none", "rs256", ""] {
            assert_skipped(
                with(rsa_jwk("r"), "alg", json!(alg)),
                "which is not for RSA keys",
            );
        }
        assert_skipped(with(rsa_jwk("r"), "alg", json!(null)), "alg is null");
        assert_skipped(
            with(rsa_jwk("r"), "alg", json!(["RS256"])),
            "alg is an array",
        );
    }

    // ---- base64url strictness -------------------------------------------------------------

    #[test]
    fn skips_padded_base64() {
        let components = rsa_pair().public_key().to_components();
        // 256 bytes need "==" padding in padded base64.
        let padded_n = URL_SAFE.encode(&components.n);
        assert!(padded_n.ends_with("=="));
        let jwk = with(rsa_jwk("r"), "n", json!(padded_n));
        assert_skipped(jwk, "n is not unpadded base64url");

        let x = ed_pair().public_key().to_bytes();
        let padded_x = URL_SAFE.encode(&x);
        assert!(padded_x.ends_with('='));
        assert_skipped(
            with(ed_jwk("o"), "x", json!(padded_x)),
            "x is not unpadded base64url",
        );
        assert_skipped(
            with(rsa_jwk("r"), "e", json!("AQAB==")),
            "e is not unpadded base64url",
        );
    }

    #[test]
    fn skips_standard_alphabet_and_junk_characters() {
        let x = ed_pair().public_key().to_bytes();
        let mut url_safe = b64(&x);
        url_safe.replace_range(0..1, "+");
        assert_skipped(
            with(ed_jwk("o"), "x", json!(url_safe)),
            "not unpadded base64url",
        );
        let mut slash = b64(&x);
        slash.replace_range(0..1, "/");
        assert_skipped(
            with(ed_jwk("o"), "x", json!(slash)),
            "not unpadded base64url",
        );
        // Bytes whose standard encoding needs '+' and '/'.
        let standard = STANDARD.encode([0xfb, 0xff, 0xfe]);
        assert_eq!(standard, "+//+");
        assert_skipped(
            with(rsa_jwk("r"), "e", json!(standard)),
            "e is not unpadded base64url",
        );
        for junk in [" AQAB", "AQ AB", "AQAB\n", "AQ.B", "A"] {
            assert_skipped(
                with(rsa_jwk("r"), "e", json!(junk)),
                "e is not unpadded base64url",
            );
        }
    }

    // ---- key-level rules shared by every kty ----------------------------------------------

    #[test]
    fn skips_oct_keys() {
        assert_skipped(
            json!({"kty": "oct", "kid": "h", "k": "c2VjcmV0", "alg": "HS256"}),
            "private member k",
        );
        assert_skipped(
            json!({"kty": "oct", "kid": "h"}),
            "symmetric (oct) keys are never",
        );
    }

    #[test]
    fn skips_keys_with_private_members() {
        for name in ["d", "p", "q", "dp", "dq", "qi", "oth", "k"] {
            assert_skipped(
                with(rsa_jwk("r"), name, json!("AQAB")),
                &format!("carries private member {name};"),
            );
        }
        assert_skipped(with(ec_jwk("e"), "d", json!("AQAB")), "private member d");
        assert_skipped(with(ed_jwk("o"), "d", json!(null)), "private member d");
    }

    #[test]
    fn skips_keys_not_for_signatures() {
        assert_skipped(
            with(rsa_jwk("r"), "use", json!("enc")),
            "use is enc, not sig",
        );
        assert_skipped(
            with(ec_jwk("e"), "use", json!("SIG")),
            "use is SIG, not sig",
        );
        assert_skipped(with(ed_jwk("o"), "use", json!(true)), "use is a boolean");
        assert_skipped(
            with(rsa_jwk("r"), "key_ops", json!(["encrypt", "sign"])),
            "key_ops does not include verify",
        );
        assert_skipped(
            with(rsa_jwk("r"), "key_ops", json!([])),
            "does not include verify",
        );
        assert_skipped(
            with(rsa_jwk("r"), "key_ops", json!("verify")),
            "key_ops is a string",
        );
        accepted(with(ed_jwk("o"), "key_ops", json!(["verify"])));
    }

    #[test]
    fn skips_kid_of_wrong_type() {
        for kid in [
            json!(7),
            json!(null),
            json!(["k"]),
            json!({"k": 1}),
            json!(false),
        ] {
            let reason = skip_reason(with(ed_jwk("o"), "kid", kid));
            assert!(reason.contains("kid is"), "{reason}");
            assert!(reason.ends_with("not a string"), "{reason}");
        }
    }

    #[test]
    fn skips_unknown_or_missing_kty() {
        assert_skipped(
            with(rsa_jwk("r"), "kty", json!("rsa")),
            "kty rsa is not supported",
        );
        assert_skipped(
            with(rsa_jwk("r"), "kty", json!("AKP")),
            "kty AKP is not supported",
        );
        assert_skipped(without(rsa_jwk("r"), "kty"), "kty is missing");
        assert_skipped(with(rsa_jwk("r"), "kty", json!(1)), "kty is a number");
    }

    #[test]
    fn skips_entries_that_are_not_objects() {
        let (set, skipped) = parse_ok(vec![
            json!(1),
            json!(null),
            json!("RSA"),
            json!([rsa_jwk("r")]),
            rsa_jwk("r"),
        ]);
        assert_eq!(set.len(), 1);
        assert_eq!(
            skipped,
            [
                "key 0: is a number, not a JSON object",
                "key 1: is null, not a JSON object",
                "key 2: is a string, not a JSON object",
                "key 3: is an array, not a JSON object",
            ]
        );
    }

    // ---- EC and OKP rules -----------------------------------------------------------------

    #[test]
    fn skips_ec_key_on_other_curves() {
        assert_skipped(
            with(ec_jwk("e"), "crv", json!("P-384")),
            "EC curve P-384 is not supported, only P-256",
        );
        assert_skipped(
            with(ec_jwk("e"), "crv", json!("secp256k1")),
            "EC curve secp256k1",
        );
        assert_skipped(without(ec_jwk("e"), "crv"), "crv is missing");
    }

    #[test]
    fn skips_ec_key_with_wrong_coordinate_length() {
        let point = ec_point();
        let x = point.get(1..33).unwrap();
        assert_skipped(
            with(ec_jwk("e"), "x", json!(b64(x.get(1..).unwrap()))),
            "x is 31 bytes, expected 32",
        );
        let mut long = vec![0];
        long.extend_from_slice(x);
        assert_skipped(
            with(ec_jwk("e"), "y", json!(b64(&long))),
            "y is 33 bytes, expected 32",
        );
        assert_skipped(without(ec_jwk("e"), "y"), "y is missing");
    }

    #[test]
    fn skips_ec_point_not_on_curve() {
        let zero = b64(&[0; 32]);
        let jwk = with(with(ec_jwk("e"), "x", json!(zero)), "y", json!(zero));
        assert_skipped(jwk, "EC point is not on P-256");
        let point = ec_point();
        let mut y = point.get(33..65).unwrap().to_vec();
        y[31] ^= 1;
        assert_skipped(with(ec_jwk("e"), "y", json!(b64(&y))), "not on P-256");
    }

    #[test]
    fn skips_ec_key_with_other_declared_alg() {
        assert_skipped(
            with(ec_jwk("e"), "alg", json!("ES384")),
            "declares alg ES384; only ES256 is supported for EC keys",
        );
        assert_skipped(
            with(ec_jwk("e"), "alg", json!("RS256")),
            "which is not for EC keys",
        );
        assert_skipped(
            with(ec_jwk("e"), "alg", json!("HS256")),
            "which is not for EC keys",
        );
    }

    #[test]
    fn skips_okp_keys_that_are_not_ed25519() {
        assert_skipped(
            with(ed_jwk("o"), "crv", json!("X25519")),
            "OKP curve X25519 is not supported, only Ed25519",
        );
        assert_skipped(with(ed_jwk("o"), "crv", json!("Ed448")), "OKP curve Ed448");
        let x = ed_pair().public_key().to_bytes();
        assert_skipped(
            with(ed_jwk("o"), "x", json!(b64(x.get(..31).unwrap()))),
            "x is 31 bytes, expected 32",
        );
        assert_skipped(
            with(ed_jwk("o"), "alg", json!("Ed25519")),
            "only EdDSA is supported for OKP keys",
        );
        assert_skipped(
            with(ed_jwk("o"), "alg", json!("ES256")),
            "which is not for OKP keys",
        );
        // The identity point is a small-order (weak) key.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert_skipped(with(ed_jwk("o"), "x", json!(b64(&identity))), "invalid");
    }

    // ---- find -----------------------------------------------------------------------------

    fn lookup_set() -> KeySet {
        parse_ok(vec![
            rsa_jwk("r1"),
            with(rsa_jwk("r2"), "alg", json!("RS256")),
            ec_jwk("e1"),
            ed_jwk("o1"),
            without(rsa_jwk("unused"), "kid"),
            // A kid shared across key types (some IdPs reuse kids).
            rsa_jwk("shared"),
            ec_jwk("shared"),
            // Two RSA keys with one kid, e.g. mid-rotation.
            rsa_jwk("twice"),
            rsa_jwk("twice"),
        ])
        .0
    }

    #[test]
    fn find_by_kid() {
        let set = lookup_set();
        assert_eq!(kids(&found(set.find(Some("r1"), Algorithm::RS256))), ["r1"]);
        assert_eq!(kids(&found(set.find(Some("e1"), Algorithm::ES256))), ["e1"]);
        assert_eq!(kids(&found(set.find(Some("o1"), Algorithm::EdDSA))), ["o1"]);
        let shared = found(set.find(Some("shared"), Algorithm::ES256));
        assert_eq!(shared.len(), 1);
        assert!(matches!(shared[0].key, PublicKey::Ec(_)));
        let shared = found(set.find(Some("shared"), Algorithm::RS256));
        assert!(matches!(shared[0].key, PublicKey::Rsa(_)));
        assert_eq!(found(set.find(Some("twice"), Algorithm::RS256)).len(), 2);
    }

    #[test]
    fn find_unknown_kid() {
        let set = lookup_set();
        assert!(matches!(
            set.find(Some("nope"), Algorithm::RS256),
            KeyLookup::UnknownKid
        ));
        // Exact comparison: case and whitespace matter.
        assert!(matches!(
            set.find(Some("R1"), Algorithm::RS256),
            KeyLookup::UnknownKid
        ));
        assert!(matches!(
            set.find(Some("r1 "), Algorithm::RS256),
            KeyLookup::UnknownKid
        ));
        assert!(matches!(
            set.find(Some(""), Algorithm::RS256),
            KeyLookup::UnknownKid
        ));
    }

    #[test]
    fn find_kid_of_other_key_type_is_algorithm_mismatch() {
        let set = lookup_set();
        for (kid, alg) in [
            ("e1", Algorithm::RS256),
            ("r1", Algorithm::ES256),
            ("r1", Algorithm::EdDSA),
            ("o1", Algorithm::ES256),
            // HS256 against a public key is the classic confusion attack.
            ("r1", Algorithm::HS256),
            ("e1", Algorithm::HS256),
            ("shared", Algorithm::EdDSA),
        ] {
            assert!(
                matches!(set.find(Some(kid), alg), KeyLookup::AlgorithmMismatch),
                "{kid} {alg}"
            );
        }
    }

    #[test]
    fn find_without_kid_returns_every_fitting_key() {
        let set = lookup_set();
        let rsa = found(set.find(None, Algorithm::RS256));
        assert_eq!(kids(&rsa), ["r1", "r2", "", "shared", "twice", "twice"]);
        assert!(rsa
            .iter()
            .all(|key| key.key.algorithm() == Algorithm::RS256));
        assert_eq!(
            kids(&found(set.find(None, Algorithm::ES256))),
            ["e1", "shared"]
        );
        assert_eq!(kids(&found(set.find(None, Algorithm::EdDSA))), ["o1"]);
    }

    #[test]
    fn find_without_kid_and_no_fitting_key() {
        let set = lookup_set();
        assert!(matches!(
            set.find(None, Algorithm::HS256),
            KeyLookup::NoKeyForAlgorithm
        ));
        let (rsa_only, _) = parse_ok(vec![rsa_jwk("r")]);
        assert!(matches!(
            rsa_only.find(None, Algorithm::ES256),
            KeyLookup::NoKeyForAlgorithm
        ));
        assert!(matches!(
            rsa_only.find(None, Algorithm::EdDSA),
            KeyLookup::NoKeyForAlgorithm
        ));
    }

    #[test]
    fn declared_alg_is_honoured_by_fits() {
        // Parsing never produces an inconsistent declared alg; `fits` still refuses one.
        let mut jwk = accepted(rsa_jwk("r"));
        jwk.declared_alg = Some(Algorithm::ES256);
        assert!(!jwk.fits(Algorithm::RS256));
        assert!(!jwk.fits(Algorithm::ES256));
        jwk.declared_alg = Some(Algorithm::RS256);
        assert!(jwk.fits(Algorithm::RS256));
    }

    // ---- fingerprint ----------------------------------------------------------------------

    #[test]
    fn fingerprint_follows_document_content() {
        let one = document(vec![rsa_jwk("r"), ec_jwk("e")]);
        let (a, _) = parse_jwks(&one).unwrap();
        let (b, _) = parse_jwks(&one.clone()).unwrap();
        assert_eq!(a.fingerprint(), b.fingerprint());

        let rotated = document(vec![rsa_jwk("r"), ec_jwk("e2")]);
        let (c, _) = parse_jwks(&rotated).unwrap();
        assert_ne!(a.fingerprint(), c.fingerprint());

        let reordered = document(vec![ec_jwk("e"), rsa_jwk("r")]);
        let (d, _) = parse_jwks(&reordered).unwrap();
        assert_ne!(a.fingerprint(), d.fingerprint());
    }

    #[test]
    fn fingerprint_is_the_sha256_prefix() {
        let doc = document(vec![ed_jwk("o")]);
        let (set, _) = parse_jwks(&doc).unwrap();
        let digest = Sha256::digest(&doc);
        let expected = u64::from_be_bytes(digest[..8].try_into().unwrap());
        assert_eq!(set.fingerprint(), expected);
    }

    // ---- document-level errors ------------------------------------------------------------

    #[test]
    fn refuses_too_large_document_before_parsing() {
        let huge = vec![b'x'; MAX_JWKS_BYTES + 1];
        assert_eq!(
            parse_jwks(&huge).unwrap_err(),
            JwksError::TooLarge {
                limit: MAX_JWKS_BYTES
            }
        );
        // Exactly at the limit is fine.
        let mut at_limit = document(vec![ed_jwk("o")]);
        at_limit.resize(MAX_JWKS_BYTES, b' ');
        assert!(parse_jwks(&at_limit).is_ok());
        at_limit.push(b' ');
        assert!(matches!(
            parse_jwks(&at_limit),
            Err(JwksError::TooLarge { .. })
        ));
    }

    #[test]
    fn refuses_non_json_and_non_objects() {
        for doc in [
            &b""[..],
            b"not json",
            b"{\"keys\": [",
            b"\xff\xfe",
            b"[]",
            b"[{\"keys\": []}]",
            b"\"keys\"",
            b"42",
            b"null",
            b"{\"keys\": []} trailing",
        ] {
            assert_eq!(
                parse_jwks(doc).unwrap_err(),
                JwksError::NotJson,
                "{}",
                String::from_utf8_lossy(doc)
            );
        }
    }

    #[test]
    fn refuses_document_without_keys_array() {
        for doc in [
            json!({}),
            json!({"Keys": [ed_jwk("o")]}),
            json!({"keys": null}),
            json!({"keys": ed_jwk("o")}),
            json!({"keys": "[]"}),
            json!({"keys": 1}),
        ] {
            let bytes = serde_json::to_vec(&doc).unwrap();
            assert_eq!(
                parse_jwks(&bytes).unwrap_err(),
                JwksError::NoKeysArray,
                "{doc}"
            );
        }
    }

    #[test]
    fn refuses_document_without_usable_keys() {
        assert_eq!(
            parse_jwks(&document(vec![])).unwrap_err(),
            JwksError::NoUsableKeys
        );
        let all_bad = document(vec![
            json!({"kty": "oct", "k": "c2VjcmV0"}),
            with(rsa_jwk("r"), "use", json!("enc")),
        ]);
        assert_eq!(parse_jwks(&all_bad).unwrap_err(), JwksError::NoUsableKeys);
        // The reasons stay available for the log line.
        let (result, skipped) = parse_jwks_with_skipped(&all_bad);
        assert_eq!(result.unwrap_err(), JwksError::NoUsableKeys);
        assert_eq!(skipped.len(), 2);
        assert!(
            skipped[1].starts_with("key 1 (kid r): use is enc"),
            "{skipped:?}"
        );
    }

    #[test]
    fn with_skipped_agrees_with_parse_jwks() {
        let doc = document(vec![rsa_jwk("r"), json!(null)]);
        let (result, skipped) = parse_jwks_with_skipped(&doc);
        let (set, skipped_too) = parse_jwks(&doc).unwrap();
        assert_eq!(result.unwrap().fingerprint(), set.fingerprint());
        assert_eq!(skipped, skipped_too);
        let (result, skipped) = parse_jwks_with_skipped(b"[]");
        assert_eq!(result.unwrap_err(), JwksError::NotJson);
        assert!(skipped.is_empty());
    }

    #[test]
    fn error_messages() {
        assert_eq!(
            JwksError::TooLarge { limit: 262144 }.to_string(),
            "JWKS document is larger than 262144 bytes"
        );
        assert_eq!(
            JwksError::NotJson.to_string(),
            "JWKS document is not a JSON object"
        );
        assert_eq!(
            JwksError::NoKeysArray.to_string(),
            "JWKS document has no \"keys\" array"
        );
        assert_eq!(
            JwksError::NoUsableKeys.to_string(),
            "JWKS has no usable keys"
        );
    }

    // ---- limits and hostile input ---------------------------------------------------------

    #[test]
    fn keys_beyond_max_are_ignored() {
        let mut keys: Vec<Value> = (0..MAX_KEYS).map(|i| ed_jwk(&format!("k{i}"))).collect();
        keys.push(ed_jwk("extra"));
        keys.push(json!("garbage, never looked at"));
        let (set, skipped) = parse_ok(keys);
        assert_eq!(set.len(), MAX_KEYS);
        assert!(matches!(
            set.find(Some("extra"), Algorithm::EdDSA),
            KeyLookup::UnknownKid
        ));
        assert_eq!(skipped, ["2 keys beyond the first 100 ignored"]);
    }

    #[test]
    fn reasons_quote_hostile_strings_safely() {
        let kid = format!("evil\n\u{1b}[31m\u{202e}{}", "k".repeat(500));
        let reason = skip_reason(with(rsa_jwk(&kid), "use", json!("enc\r\nINJECTED")));
        assert!(!reason.chars().any(|c| c.is_control()), "{reason:?}");
        assert!(reason.is_ascii());
        assert!(reason.starts_with("key 1 (kid evil??[31m?kkk"), "{reason}");
        assert!(reason.contains("...)"), "{reason}");
        assert!(
            reason.ends_with("use is enc??INJECTED, not sig"),
            "{reason}"
        );
        assert!(reason.len() < 200, "{reason}");
    }

    #[test]
    fn debug_output_shows_no_key_material() {
        let (set, _) = parse_ok(vec![rsa_jwk("r"), ec_jwk("e"), ed_jwk("o")]);
        let debug = format!("{set:?}");
        assert!(debug.contains("kid: Some(\"r\")"), "{debug}");
        assert!(debug.contains("Rsa(RS256)"), "{debug}");
        assert!(debug.contains("Ec(ES256)"), "{debug}");
        assert!(debug.contains("Ed(EdDSA)"), "{debug}");
        let n = b64(&rsa_pair().public_key().to_components().n);
        assert!(!debug.contains(n.get(..16).unwrap()));
        assert!(debug.len() < 600, "{debug}");
        let lookup = format!("{:?}", set.find(Some("e"), Algorithm::ES256));
        assert!(lookup.starts_with("Found(["), "{lookup}");
    }

    /// Values of every JSON type, including oversized and deeply nested ones.
    fn garbage_values() -> Vec<Value> {
        let mut nested = json!([]);
        for _ in 0..60 {
            nested = json!([nested, {"a": nested.clone()}]);
            if nested.to_string().len() > 20_000 {
                break;
            }
        }
        vec![
            json!(null),
            json!(true),
            json!(0),
            json!(-1),
            json!(1.5e308),
            json!(u64::MAX),
            json!(""),
            json!("AAAA"),
            json!("=="),
            json!("\u{0}\u{ffff}"),
            json!("A".repeat(100_000)),
            json!("_".repeat(3_000)),
            json!([]),
            json!([[[]]]),
            json!({}),
            json!({"kty": "RSA"}),
            nested,
        ]
    }

    #[test]
    fn garbage_inside_keys_never_panics() {
        let members = [
            "kty", "kid", "use", "key_ops", "alg", "n", "e", "crv", "x", "y", "d", "k",
        ];
        for base in [rsa_jwk("r"), ec_jwk("e"), ed_jwk("o")] {
            for member in members {
                for value in garbage_values() {
                    let doc = document(vec![with(base.clone(), member, value)]);
                    // Any outcome but a panic is fine; a refused document is a document error.
                    match parse_jwks(&doc) {
                        Ok((set, skipped)) => assert_eq!(set.len() + skipped.len(), 1),
                        Err(err) => assert!(
                            matches!(err, JwksError::NoUsableKeys | JwksError::TooLarge { .. }),
                            "{err}"
                        ),
                    }
                }
            }
        }
        // Garbage as whole entries.
        let (result, skipped) = parse_jwks_with_skipped(&document(garbage_values()));
        assert!(result.is_err());
        assert_eq!(skipped.len(), garbage_values().len());
    }

    #[test]
    fn deeply_nested_document_is_not_json() {
        let depth = 100_000;
        let mut doc = "{\"keys\":".to_string();
        doc.push_str(&"[".repeat(depth));
        doc.push_str(&"]".repeat(depth));
        doc.push('}');
        assert_eq!(parse_jwks(doc.as_bytes()).unwrap_err(), JwksError::NotJson);
    }

    #[test]
    fn every_truncation_of_a_document_is_handled() {
        let doc = document(vec![ec_jwk("e"), ed_jwk("o")]);
        for end in 0..doc.len() {
            let prefix = doc.get(..end).unwrap();
            assert!(parse_jwks(prefix).is_err(), "prefix of {end} bytes parsed");
        }
        assert!(parse_jwks(&doc).is_ok());
    }

    #[test]
    fn every_single_byte_corruption_is_handled() {
        let doc = document(vec![ed_jwk("o")]);
        for position in 0..doc.len() {
            for replacement in [b'"', b'A', b'=', b'\\', b'}', 0x80] {
                let mut corrupted = doc.clone();
                corrupted[position] = replacement;
                // Only the absence of a panic is asserted.
                let _ = parse_jwks(&corrupted);
            }
        }
    }
}
