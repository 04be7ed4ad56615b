//! Verifies a token against the configured providers. Order matters: structure and header
//! rules first, then the provider (by `iss`), then claims (cheap, and they spare the expensive
//! signature check for tokens that would be refused anyway), then the key and the signature.

use std::rc::Rc;

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use jwt_simple::prelude::{
    Duration, ECDSAP256PublicKeyLike, EdDSAPublicKeyLike, MACLike, NoCustomClaims, UnixTimeStamp,
    VerificationOptions,
};
use serde_json::{Map, Value};

use super::claims::{check_claims, ClaimRules};
use super::{Algorithm, KeySource, Part, Provider, Purpose, TokenError};
use crate::json::{parse_strict_object, StrictJsonError};
use crate::keys::rsa::RsaVerifier;
use crate::keys::{Jwk, KeyLookup, KeySet, PublicKey};

/// Header parameters that carry a key or a key URL inside the token: trusting them would let
/// the token choose its own key. Nothing is ever fetched from a URL in a token.
const FORBIDDEN_HEADERS: [&str; 4] = ["jku", "x5u", "jwk", "x5c"];

/// A verified caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Identity {
    /// Index of the provider in the config.
    pub provider: usize,
    pub sub: String,
    /// The token's own scopes, then those its roles grant (`roles`).
    pub scopes: Vec<String>,
    pub exp: u64,
    pub nbf: Option<u64>,
    /// The claims rate limits are keyed on (`claim:NAME`), as strings.
    pub claims: Vec<(String, String)>,
    /// The configured roles the token holds, in `roles.grants` order (for `role` rate limits
    /// and the session minted at login): worked out once, so the cached identity has them.
    pub roles: Vec<String>,
}

/// The outcome of a verification.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    Verified(Identity),
    Refused(TokenError),
    /// The provider's remote keys are missing, or have no key the token names: the keys must
    /// be (re)fetched before the token can be judged. `otherwise` is the refusal to give if no
    /// fetch can happen while some keys exist.
    NeedKeys {
        provider: usize,
        otherwise: TokenError,
    },
}

/// The parts of a token that passed the structural checks.
struct Parsed {
    claims: Map<String, Value>,
    algorithm: Algorithm,
    kid: Option<String>,
}

/// Verifies `token` at time `now` (Unix seconds). `remote_keys(i)` gives the current keys of
/// provider `i` when its keys are remote (`None`: never fetched).
pub fn verify(
    token: &str,
    providers: &[Provider],
    remote_keys: &dyn Fn(usize) -> Option<Rc<KeySet>>,
    now: u64,
) -> Verdict {
    verify_keeping(token, providers, remote_keys, now, &[])
}

/// [`verify`], also keeping the string or number values of the claims named in `keep`.
pub fn verify_keeping(
    token: &str,
    providers: &[Provider],
    remote_keys: &dyn Fn(usize) -> Option<Rc<KeySet>>,
    now: u64,
    keep: &[String],
) -> Verdict {
    let accept = |_: usize, p: &Provider| p.purpose == Purpose::Api;
    match verify_inner(token, providers, &accept, remote_keys, now, keep) {
        Ok(verdict) => verdict,
        Err(error) => Verdict::Refused(error),
    }
}

/// Verifies an ID token of the login flow against provider `index` only, keeping `keep`.
pub fn verify_id_token(
    token: &str,
    providers: &[Provider],
    index: usize,
    remote_keys: &dyn Fn(usize) -> Option<Rc<KeySet>>,
    now: u64,
    keep: &[String],
) -> Verdict {
    let accept = |i: usize, _: &Provider| i == index;
    match verify_inner(token, providers, &accept, remote_keys, now, keep) {
        Ok(verdict) => verdict,
        Err(error) => Verdict::Refused(error),
    }
}

fn verify_inner(
    token: &str,
    providers: &[Provider],
    accept: &dyn Fn(usize, &Provider) -> bool,
    remote_keys: &dyn Fn(usize) -> Option<Rc<KeySet>>,
    now: u64,
    keep: &[String],
) -> Result<Verdict, TokenError> {
    let parsed = parse(token)?;
    let (index, provider) = select_provider(&parsed.claims, providers, accept)?;
    if !provider.algorithms.contains(&parsed.algorithm) {
        return Err(TokenError::AlgorithmNotAllowed(parsed.algorithm));
    }
    let claims = check_claims(
        &parsed.claims,
        &ClaimRules {
            audiences: &provider.audiences,
            scope_claim: &provider.scope_claim,
            clock_skew_s: provider.clock_skew_s,
            now,
        },
    )?;
    let options = verification_options(provider, now);
    let signature_ok = if parsed.algorithm == Algorithm::HS256 {
        let key = provider
            .hs256
            .as_ref()
            .ok_or(TokenError::NoKeyForAlgorithm)?;
        key.verify_token::<NoCustomClaims>(token, Some(options))
            .is_ok()
    } else {
        let set = match &provider.keys {
            KeySource::Inline(set) => Some(KeyRef::Borrowed(set)),
            KeySource::Remote(_) => remote_keys(index).map(KeyRef::Shared),
            KeySource::None => return Err(TokenError::NoKeyForAlgorithm),
        };
        let Some(set) = set else {
            return Ok(Verdict::NeedKeys {
                provider: index,
                otherwise: TokenError::UnknownKid,
            });
        };
        let remote = matches!(provider.keys, KeySource::Remote(_));
        match set.get().find(parsed.kid.as_deref(), parsed.algorithm) {
            KeyLookup::Found(keys) => keys.iter().any(|jwk| signature_valid(jwk, token, &options)),
            KeyLookup::UnknownKid if remote => {
                return Ok(Verdict::NeedKeys {
                    provider: index,
                    otherwise: TokenError::UnknownKid,
                })
            }
            KeyLookup::NoKeyForAlgorithm if remote => {
                return Ok(Verdict::NeedKeys {
                    provider: index,
                    otherwise: TokenError::NoKeyForAlgorithm,
                })
            }
            KeyLookup::UnknownKid => return Err(TokenError::UnknownKid),
            KeyLookup::NoKeyForAlgorithm => return Err(TokenError::NoKeyForAlgorithm),
            KeyLookup::AlgorithmMismatch => return Err(TokenError::KeyAlgorithmMismatch),
        }
    };
    if !signature_ok {
        return Err(TokenError::BadSignature);
    }
    let mut scopes = claims.scopes;
    let mut held = Vec::new();
    if let Some(roles) = &provider.roles {
        roles.add_granted_scopes(&parsed.claims, &mut scopes);
        held = roles.held(&parsed.claims);
    }
    Ok(Verdict::Verified(Identity {
        provider: index,
        sub: claims.sub,
        scopes,
        exp: claims.exp,
        nbf: claims.nbf,
        claims: kept_claims(&parsed.claims, keep),
        roles: held,
    }))
}

pub(crate) fn kept_claims(claims: &Map<String, Value>, keep: &[String]) -> Vec<(String, String)> {
    keep.iter()
        .filter_map(|name| {
            let value = match claims.get(name)? {
                Value::String(s) if !s.chars().any(char::is_control) => s.clone(),
                Value::Number(n) => n.to_string(),
                Value::Bool(b) => b.to_string(),
                _ => return None,
            };
            Some((name.clone(), value))
        })
        .collect()
}

enum KeyRef<'a> {
    Borrowed(&'a KeySet),
    Shared(Rc<KeySet>),
}

impl KeyRef<'_> {
    fn get(&self) -> &KeySet {
        match self {
            Self::Borrowed(set) => set,
            Self::Shared(set) => set,
        }
    }
}

/// Splits and decodes the token and applies the header rules.
fn parse(token: &str) -> Result<Parsed, TokenError> {
    let mut parts = token.split('.');
    let (Some(header_b64), Some(payload_b64), Some(signature_b64), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err(TokenError::NotJws);
    };
    let header = decode_object(header_b64, Part::Header)?;
    let signature = URL_SAFE_NO_PAD
        .decode(signature_b64)
        .map_err(|_| TokenError::BadEncoding(Part::Signature))?;
    if signature.is_empty() {
        return Err(TokenError::BadEncoding(Part::Signature));
    }

    let algorithm = match header.get("alg") {
        None => return Err(TokenError::AlgorithmMissing),
        Some(Value::String(name)) if name.trim().eq_ignore_ascii_case("none") => {
            return Err(TokenError::AlgorithmNone)
        }
        Some(Value::String(name)) => {
            Algorithm::from_name(name).ok_or(TokenError::AlgorithmUnsupported)?
        }
        Some(_) => return Err(TokenError::InvalidHeader("alg")),
    };
    if let Some(name) = FORBIDDEN_HEADERS
        .iter()
        .find(|name| header.contains_key(**name))
    {
        return Err(TokenError::ForbiddenHeader(name));
    }
    if header.contains_key("crit") {
        return Err(TokenError::CriticalHeader);
    }
    for name in ["typ", "cty"] {
        if header.get(name).is_some_and(|v| !v.is_string()) {
            return Err(TokenError::InvalidHeader(name));
        }
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(kid)) => Some(kid.clone()),
        Some(_) => return Err(TokenError::InvalidHeader("kid")),
    };
    let claims = decode_object(payload_b64, Part::Payload)?;
    Ok(Parsed {
        claims,
        algorithm,
        kid,
    })
}

fn decode_object(b64: &str, part: Part) -> Result<Map<String, Value>, TokenError> {
    let bytes = URL_SAFE_NO_PAD
        .decode(b64)
        .map_err(|_| TokenError::BadEncoding(part))?;
    parse_strict_object(&bytes).map_err(|e| match e {
        StrictJsonError::DuplicateKey => TokenError::DuplicateKey(part),
        StrictJsonError::Invalid => TokenError::NotJsonObject(part),
    })
}

fn select_provider<'p>(
    claims: &Map<String, Value>,
    providers: &'p [Provider],
    accept: &dyn Fn(usize, &Provider) -> bool,
) -> Result<(usize, &'p Provider), TokenError> {
    let iss = match claims.get("iss") {
        None => return Err(TokenError::IssuerMissing),
        Some(Value::String(iss)) => iss,
        Some(_) => return Err(TokenError::InvalidClaim("iss")),
    };
    providers
        .iter()
        .enumerate()
        .find(|(i, p)| &p.issuer == iss && accept(*i, p))
        .ok_or(TokenError::UnknownIssuer)
}

/// jwt-simple checks the signature; its claim checks are made to agree with ours (which ran
/// first and are stricter): same clock, same tolerance, no size caps of its own.
fn verification_options(provider: &Provider, now: u64) -> VerificationOptions {
    VerificationOptions {
        accept_future: true,
        time_tolerance: Some(Duration::from_secs(provider.clock_skew_s)),
        artificial_time: Some(UnixTimeStamp::from_secs(now)),
        max_token_length: None,
        max_header_length: None,
        ..VerificationOptions::default()
    }
}

fn signature_valid(jwk: &Jwk, token: &str, options: &VerificationOptions) -> bool {
    let options = Some(options.clone());
    match &jwk.key {
        PublicKey::Rsa(key) => rs256_valid(key, token),
        PublicKey::Ec(key) => key.verify_token::<NoCustomClaims>(token, options).is_ok(),
        PublicKey::Ed(key) => key.verify_token::<NoCustomClaims>(token, options).is_ok(),
    }
}

/// RS256 with the gateway's own verifier (see `keys::rsa`): the signing input is everything
/// before the last dot; the claims were checked already (`check_claims`).
fn rs256_valid(key: &RsaVerifier, token: &str) -> bool {
    let Some((message, signature)) = token.rsplit_once('.') else {
        return false;
    };
    URL_SAFE_NO_PAD
        .decode(signature)
        .is_ok_and(|signature| key.verify_sha256(message.as_bytes(), &signature))
}

#[cfg(test)]
mod tests;
