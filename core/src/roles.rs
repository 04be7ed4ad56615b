//! Roles → scopes: IdP roles or groups found in a verified token's claims (Keycloak's
//! `realm_access.roles`, Azure AD's `roles`, `groups`) grant the scopes configured for them.
//! Worked out once per token, at verification: the cached identity carries the result.
//!
//! The IdP signs the claims but their shape is still not trusted: a claim that is anything other
//! than a string or a bounded array of bounded strings grants nothing (other claims still may).

use std::collections::BTreeSet;

use serde_json::{Map, Value};

/// A claim with more roles than this grants nothing.
pub const MAX_ROLES_PER_CLAIM: usize = 256;
/// A claim holding a role longer than this (in bytes) grants nothing.
pub const MAX_ROLE_BYTES: usize = 256;

/// The compiled `roles` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roles {
    /// Claim paths, split at their dots (`realm_access.roles` → `["realm_access", "roles"]`).
    claims: Vec<Vec<String>>,
    /// Role → scopes, in the configuration's order; roles unique, scopes unique per role.
    grants: Vec<(String, Vec<String>)>,
}

impl Roles {
    /// Built by the configuration, which has validated the paths, role names and scopes.
    pub fn new(claims: Vec<Vec<String>>, grants: Vec<(String, Vec<String>)>) -> Self {
        Self { claims, grants }
    }

    pub fn claims(&self) -> &[Vec<String>] {
        &self.claims
    }

    pub fn grants(&self) -> &[(String, Vec<String>)] {
        &self.grants
    }

    /// The roles the configured claims hold, matched later exactly (case-sensitive).
    pub fn roles_in<'c>(&self, claims: &'c Map<String, Value>) -> BTreeSet<&'c str> {
        self.claims
            .iter()
            .filter_map(|path| lookup(claims, path).and_then(roles_of))
            .flatten()
            .collect()
    }

    /// The configured roles the claims hold, in the order of `grants` (so the same roles give
    /// the same list whatever their order in the token): what rate limits keyed on `role` see.
    pub fn held(&self, claims: &Map<String, Value>) -> Vec<String> {
        let roles = self.roles_in(claims);
        self.grants
            .iter()
            .filter(|(role, _)| roles.contains(role.as_str()))
            .map(|(role, _)| role.clone())
            .collect()
    }

    /// The same roles read from the gateway's own session token instead: its `claim` (written
    /// at login from the ID token's roles), granting no scopes, since the session's scopes were
    /// settled at login. Only configured roles are read back, so a session minted under an
    /// older `roles` section holds none that is no longer configured.
    pub fn carried_in(&self, claim: &str) -> Roles {
        Roles {
            claims: vec![vec![claim.to_string()]],
            grants: self
                .grants
                .iter()
                .map(|(role, _)| (role.clone(), Vec::new()))
                .collect(),
        }
    }

    /// The scopes the token's roles grant, deduplicated, in the order of `grants`: the same
    /// roles give the same list whatever their order in the token.
    pub fn granted_scopes(&self, claims: &Map<String, Value>) -> Vec<String> {
        let roles = self.roles_in(claims);
        let mut scopes: Vec<String> = Vec::new();
        if roles.is_empty() {
            return scopes;
        }
        for (role, granted) in &self.grants {
            if !roles.contains(role.as_str()) {
                continue;
            }
            for scope in granted {
                if !scopes.contains(scope) {
                    scopes.push(scope.clone());
                }
            }
        }
        scopes
    }

    /// Whether some role grants `scope`.
    pub fn grants_scope(&self, scope: &str) -> bool {
        self.grants
            .iter()
            .any(|(_, granted)| granted.iter().any(|s| s == scope))
    }

    /// Appends the granted scopes `scopes` lacks: the token's own stay first.
    pub fn add_granted_scopes(&self, claims: &Map<String, Value>, scopes: &mut Vec<String>) {
        for scope in self.granted_scopes(claims) {
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
    }
}

/// The value at `path`; `None` when it is absent or a step on the way is not an object.
fn lookup<'c>(claims: &'c Map<String, Value>, path: &[String]) -> Option<&'c Value> {
    let (last, parents) = path.split_last()?;
    let mut object = claims;
    for segment in parents {
        object = object.get(segment)?.as_object()?;
    }
    object.get(last)
}

/// The roles one claim holds: a string, or an array of strings, all within the bounds. Any other
/// shape (or one bad entry) gives `None`, so a malformed claim never grants part of itself.
fn roles_of(value: &Value) -> Option<Vec<&str>> {
    match value {
        Value::String(_) => Some(vec![role(value)?]),
        Value::Array(items) if items.len() <= MAX_ROLES_PER_CLAIM => {
            items.iter().map(role).collect()
        }
        _ => None,
    }
}

fn role(value: &Value) -> Option<&str> {
    value.as_str().filter(|r| r.len() <= MAX_ROLE_BYTES)
}

#[cfg(test)]
mod tests;
