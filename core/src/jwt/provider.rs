//! A compiled JWT provider: who issues tokens, for which audiences, with which algorithms and
//! keys. Built once at configure time.

use std::fmt;
use std::rc::Rc;

use jwt_simple::prelude::HS256Key;

use super::Algorithm;
use crate::keys::KeySet;
use crate::roles::Roles;

pub struct Provider {
    pub name: String,
    pub purpose: Purpose,
    pub issuer: String,
    pub audiences: Vec<String>,
    pub algorithms: Vec<Algorithm>,
    pub hs256: Option<HS256Key>,
    pub keys: KeySource,
    pub clock_skew_s: u64,
    pub scope_claim: String,
    /// Roles its tokens hold and the scopes they grant (configured providers and the ID
    /// token's); for the session provider, the roles its own `roles` claim carries, granting
    /// nothing (see [`Roles::carried_in`]).
    pub roles: Option<Rc<Roles>>,
}

/// What a provider's tokens are accepted for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Purpose {
    /// Bearer tokens on requests (configured providers, and the gateway's own sessions).
    Api,
    /// Only the ID tokens of the login flow: never accepted as a bearer token.
    IdToken,
    /// Opaque tokens checked by introspection: never matched by a JWT's `iss`.
    Introspection,
}

/// Where the public keys for asymmetric algorithms come from.
pub enum KeySource {
    /// HS256 only.
    None,
    /// Given in the config, parsed once.
    Inline(KeySet),
    /// Fetched from the IdP by dispatched calls and shared by all workers.
    Remote(RemoteJwks),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteJwks {
    pub cluster: String,
    pub authority: String,
    /// Empty: taken from the OIDC discovery document (`jwks_uri`) once it is fetched.
    pub path: String,
    pub cache_ttl_s: u64,
    pub min_refresh_interval_s: u64,
    pub timeout_ms: u64,
}

impl Provider {
    pub fn remote(&self) -> Option<&RemoteJwks> {
        match &self.keys {
            KeySource::Remote(remote) => Some(remote),
            _ => None,
        }
    }
}

impl fmt::Debug for Provider {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keys = match &self.keys {
            KeySource::None => "none".to_string(),
            KeySource::Inline(set) => format!("inline ({} keys)", set.len()),
            KeySource::Remote(remote) => format!("remote {remote:?}"),
        };
        f.debug_struct("Provider")
            .field("name", &self.name)
            .field("purpose", &self.purpose)
            .field("issuer", &self.issuer)
            .field("audiences", &self.audiences)
            .field("algorithms", &self.algorithms)
            .field("hs256", &self.hs256.as_ref().map(|_| "<redacted>"))
            .field("keys", &keys)
            .field("clock_skew_s", &self.clock_skew_s)
            .field("scope_claim", &self.scope_claim)
            .field("roles", &self.roles)
            .finish()
    }
}
