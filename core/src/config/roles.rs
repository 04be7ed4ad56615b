//! Compiles `roles`: claim paths split and checked, every granted scope a valid scope token.

use super::schema::RolesSection;
use super::validate;
use super::ConfigError;
use crate::roles::{Roles, MAX_ROLE_BYTES};

pub fn compile_roles(section: RolesSection) -> Result<Roles, ConfigError> {
    if section.claims.is_empty() {
        return Err(ConfigError::new(
            "roles.claims",
            "must name at least one claim path",
        ));
    }
    let mut claims: Vec<Vec<String>> = Vec::with_capacity(section.claims.len());
    for (i, path) in section.claims.iter().enumerate() {
        let segments: Vec<String> = path.split('.').map(String::from).collect();
        if segments.iter().any(String::is_empty) {
            return Err(ConfigError::new(
                format!("roles.claims[{i}]"),
                "must be a dotted claim path without empty segments (e.g. \"realm_access.roles\")",
            ));
        }
        if !claims.contains(&segments) {
            claims.push(segments);
        }
    }
    if section.grants.0.is_empty() {
        return Err(ConfigError::new(
            "roles.grants",
            "must name at least one role",
        ));
    }
    let mut grants: Vec<(String, Vec<String>)> = Vec::with_capacity(section.grants.0.len());
    for (role, list) in section.grants.0 {
        if role.is_empty() {
            return Err(ConfigError::new(
                "roles.grants",
                "role names must not be empty",
            ));
        }
        let at = format!("roles.grants.{role}");
        if role.len() > MAX_ROLE_BYTES {
            // Such a role is never taken from a token, so it could never match.
            return Err(ConfigError::new(
                at,
                format!("role names must be at most {MAX_ROLE_BYTES} bytes"),
            ));
        }
        if list.is_empty() {
            return Err(ConfigError::new(at, "must grant at least one scope"));
        }
        let mut scopes: Vec<String> = Vec::with_capacity(list.len());
        for (j, scope) in list.into_iter().enumerate() {
            validate::scope_token(&scope).map_err(|r| ConfigError::new(format!("{at}[{j}]"), r))?;
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        grants.push((role, scopes));
    }
    Ok(Roles::new(claims, grants))
}
