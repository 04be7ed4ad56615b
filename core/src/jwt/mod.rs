//! JWT handling: finding the token in a request ([`extract`]), verifying it against the
//! configured providers ([`verify`]), and remembering tokens already verified ([`cache`]).

pub mod cache;
mod claims;
mod extract;
mod provider;
pub mod verify;

pub use crate::keys::Algorithm;
pub use extract::{extract_token, FoundToken, TokenConfig, TokenLocation};
pub use provider::{KeySource, Provider, Purpose, RemoteJwks};
pub use verify::{verify, verify_id_token, verify_keeping, Identity, Verdict};

use std::fmt;

/// The three parts of a compact JWS, for messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Part {
    Header,
    Payload,
    Signature,
}

impl Part {
    fn name(self) -> &'static str {
        match self {
            Self::Header => "header",
            Self::Payload => "payload",
            Self::Signature => "signature",
        }
    }
}

/// Why a presented token is refused. Its `Display` text is the contract's `details`: it names
/// what failed in our own words and never echoes the token or anything taken from it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    // Extraction, before any parsing.
    /// Two or more tokens (several headers, several cookies, or header and cookie together).
    MultipleTokens,
    /// The token (or the header carrying it) exceeds `limits.max_token_bytes`.
    TooLarge {
        limit: usize,
    },
    /// The authorization header does not use the Bearer scheme.
    NotBearer,
    /// The authorization header or cookie is not a well-formed bearer token.
    Malformed,

    // Structure.
    /// Not three dot-separated parts (a JWE, or not a JWT at all).
    NotJws,
    /// A part is not unpadded base64url.
    BadEncoding(Part),
    /// The header or payload is not a JSON object.
    NotJsonObject(Part),
    /// The header or payload has a key twice.
    DuplicateKey(Part),

    // Header.
    AlgorithmMissing,
    /// `alg: none`, in any spelling.
    AlgorithmNone,
    AlgorithmUnsupported,
    /// The algorithm is supported but not allowed for the token's issuer.
    AlgorithmNotAllowed(Algorithm),
    /// `jku`, `x5u`, `jwk` or `x5c`: keys or key URLs carried by the token itself.
    ForbiddenHeader(&'static str),
    /// A `crit` header: we implement no extensions, so any critical one is unknown.
    CriticalHeader,
    /// A header field of the wrong type (e.g. a numeric `kid`).
    InvalidHeader(&'static str),

    // Claims.
    IssuerMissing,
    UnknownIssuer,
    ClaimMissing(&'static str),
    /// A claim of the wrong type or out of range.
    InvalidClaim(&'static str),
    Expired,
    NotYetValid,
    IssuedInFuture,
    AudienceMismatch,

    // Keys and signature.
    UnknownKid,
    /// The key the token names does not fit its algorithm (algorithm confusion).
    KeyAlgorithmMismatch,
    NoKeyForAlgorithm,
    BadSignature,

    // Other token kinds.
    /// Token introspection says the token is not active (revoked, expired, unknown).
    NotActive,
    /// A break-glass token from an address outside `emergency_access.allow_ips`.
    AddressNotAllowed,
    /// A break-glass token whose `jti` was used before.
    AlreadyUsed,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MultipleTokens => f.write_str("more than one token in the request"),
            Self::TooLarge { limit } => write!(f, "token exceeds {limit} bytes"),
            Self::NotBearer => f.write_str("authorization scheme is not Bearer"),
            Self::Malformed => f.write_str("malformed bearer token"),
            Self::NotJws => f.write_str("token is not a signed JWT"),
            Self::BadEncoding(part) => write!(f, "token {} is not base64url", part.name()),
            Self::NotJsonObject(part) => write!(f, "token {} is not a JSON object", part.name()),
            Self::DuplicateKey(part) => write!(f, "token {} has duplicate keys", part.name()),
            Self::AlgorithmMissing => f.write_str("token header has no alg"),
            Self::AlgorithmNone => f.write_str("alg none is not allowed"),
            Self::AlgorithmUnsupported => f.write_str("unsupported algorithm"),
            Self::AlgorithmNotAllowed(alg) => {
                write!(f, "algorithm {alg} is not allowed for this issuer")
            }
            Self::ForbiddenHeader(name) => write!(f, "header parameter {name} is not allowed"),
            Self::CriticalHeader => f.write_str("unsupported critical header parameter"),
            Self::InvalidHeader(name) => write!(f, "header parameter {name} is invalid"),
            Self::IssuerMissing => f.write_str("iss claim missing"),
            Self::UnknownIssuer => f.write_str("unknown issuer"),
            Self::ClaimMissing(name) => write!(f, "{name} claim missing"),
            Self::InvalidClaim(name) => write!(f, "{name} claim is invalid"),
            Self::Expired => f.write_str("token is expired"),
            Self::NotYetValid => f.write_str("token is not yet valid"),
            Self::IssuedInFuture => f.write_str("token is issued in the future"),
            Self::AudienceMismatch => f.write_str("audience mismatch"),
            Self::UnknownKid => f.write_str("unknown kid"),
            Self::KeyAlgorithmMismatch => f.write_str("key does not match the token algorithm"),
            Self::NoKeyForAlgorithm => f.write_str("no key for the token algorithm"),
            Self::BadSignature => f.write_str("invalid signature"),
            Self::NotActive => f.write_str("token is not active"),
            Self::AddressNotAllowed => {
                f.write_str("emergency access is not allowed from this address")
            }
            Self::AlreadyUsed => f.write_str("emergency token was already used"),
        }
    }
}
