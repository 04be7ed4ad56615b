//! JWT handling: finding the token in a request ([`extract`]) and the typed reasons a token is
//! refused ([`TokenError`]).

mod extract;

pub use extract::{extract_token, FoundToken, TokenLocation};

use std::fmt;

/// Why a presented token is refused. Its `Display` text is the contract's `details`: it names
/// what failed and never echoes the token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenError {
    /// Two or more tokens (several headers, several cookies, or header and cookie together).
    MultipleTokens,
    /// The token (or the header carrying it) exceeds `limits.max_token_bytes`.
    TooLarge { limit: usize },
    /// The authorization header does not use the Bearer scheme.
    NotBearer,
    /// The authorization header or cookie is not a well-formed bearer token.
    Malformed,
    /// A token was presented but no provider is configured that could verify it.
    NoVerifier,
}

impl fmt::Display for TokenError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::MultipleTokens => f.write_str("more than one token in the request"),
            Self::TooLarge { limit } => write!(f, "token exceeds {limit} bytes"),
            Self::NotBearer => f.write_str("authorization scheme is not Bearer"),
            Self::Malformed => f.write_str("malformed bearer token"),
            Self::NoVerifier => f.write_str("no provider is configured to verify tokens"),
        }
    }
}
