//! `oauth2.preset`: which fields a preset takes, and its compiled settings. Fields that belong
//! to OIDC or to another preset are refused, naming the field: accepting and ignoring them
//! would hide a mistake.

use super::super::schema::OAuth2Section;
use super::super::ConfigError;
use crate::oauth2::{url_path, Preset, PresetConfig};

/// `oauth2.preset`: `None` for `oidc` (or unset).
pub(super) fn preset_of(s: &OAuth2Section) -> Result<Option<Preset>, ConfigError> {
    match s.preset.as_deref() {
        None => Ok(None),
        Some(name) => Preset::parse(name).ok_or_else(|| {
            ConfigError::new(
                "oauth2.preset",
                "must be one of \"oidc\", \"wecom\", \"dingtalk\", \"feishu\", \"github\"",
            )
        }),
    }
}

/// Refuses the fields `preset` does not take.
pub(super) fn check_fields(s: &OAuth2Section, preset: Option<Preset>) -> Result<(), ConfigError> {
    let refuse = |field: &str, why: &str| Err(ConfigError::new(format!("oauth2.{field}"), why));
    let Some(preset) = preset else {
        for (field, set) in [
            ("api_cluster", s.api_cluster.is_some()),
            ("api_authority", s.api_authority.is_some()),
            ("userinfo_endpoint", s.userinfo_endpoint.is_some()),
            ("agent_id", s.agent_id.is_some()),
            ("allowed_orgs", s.allowed_orgs.is_some()),
            ("allowed_corp_ids", s.allowed_corp_ids.is_some()),
            ("allowed_tenants", s.allowed_tenants.is_some()),
        ] {
            if set {
                return refuse(field, "is only taken by a login preset (oauth2.preset)");
            }
        }
        return Ok(());
    };
    for (field, set) in [
        ("issuer", s.issuer.is_some()),
        ("jwks_uri", s.jwks_uri.is_some()),
        ("end_session_endpoint", s.end_session_endpoint.is_some()),
    ] {
        if set {
            return refuse(
                field,
                &format!("is OIDC only; preset \"{}\" has none", preset.name()),
            );
        }
    }
    if preset != Preset::Wecom && s.agent_id.is_some() {
        return refuse("agent_id", "is only taken by preset \"wecom\"");
    }
    if preset != Preset::Github && s.allowed_orgs.is_some() {
        return refuse("allowed_orgs", "is only taken by preset \"github\"");
    }
    if preset != Preset::Dingtalk && s.allowed_corp_ids.is_some() {
        return refuse("allowed_corp_ids", "is only taken by preset \"dingtalk\"");
    }
    if preset != Preset::Feishu && s.allowed_tenants.is_some() {
        return refuse("allowed_tenants", "is only taken by preset \"feishu\"");
    }
    if preset == Preset::Wecom && s.scopes.is_some() {
        return refuse("scopes", "WeCom's web login takes no scopes");
    }
    Ok(())
}

/// The preset's settings; `client_secret` already resolved.
pub(super) fn compile_preset(
    s: &OAuth2Section,
    preset: Preset,
    client_secret: &str,
    scopes: &[String],
    authorization_endpoint: Option<&str>,
) -> Result<PresetConfig, ConfigError> {
    let path_of = |field: &str, url: &Option<String>, default: &str| match url {
        None => Ok(default.to_string()),
        Some(url) => url_path(url).filter(|p| p.starts_with('/')).ok_or_else(|| {
            ConfigError::new(format!("oauth2.{field}"), "must be an absolute http(s) URL")
        }),
    };
    let agent_id = match (preset, &s.agent_id) {
        (Preset::Wecom, None) => {
            return Err(ConfigError::new(
                "oauth2.agent_id",
                "is required with preset \"wecom\" (the app's AgentId)",
            ))
        }
        (_, Some(id)) if id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit()) => {
            return Err(ConfigError::new("oauth2.agent_id", "must be digits"))
        }
        (_, id) => id.clone(),
    };
    let allowed_orgs = s.allowed_orgs.clone().unwrap_or_default();
    for (i, org) in allowed_orgs.iter().enumerate() {
        // GitHub logins: letters, digits and single hyphens, at most 39 characters.
        let valid = !org.is_empty()
            && org.len() <= 39
            && org.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !valid {
            return Err(ConfigError::new(
                format!("oauth2.allowed_orgs[{i}]"),
                "must be a GitHub organization login",
            ));
        }
    }
    if s.allowed_orgs.as_ref().is_some_and(Vec::is_empty) {
        return Err(ConfigError::new(
            "oauth2.allowed_orgs",
            "must name at least one organization (or be left out)",
        ));
    }
    let allowed_corp_ids =
        match (preset, &s.allowed_corp_ids) {
            (Preset::Dingtalk, None) => {
                return Err(ConfigError::new(
                    "oauth2.allowed_corp_ids",
                    "is required with preset \"dingtalk\" (the corpIds of the organizations whose \
                 members may log in: DingTalk's login is open to any DingTalk user)",
                ))
            }
            (Preset::Dingtalk, Some(ids)) if ids.is_empty() => return Err(ConfigError::new(
                "oauth2.allowed_corp_ids",
                "must name at least one organization's corpId (DingTalk's login is open to any \
                 DingTalk user)",
            )),
            (_, ids) => ids.clone().unwrap_or_default(),
        };
    identifiers("allowed_corp_ids", &allowed_corp_ids, "a DingTalk corpId")?;
    if preset == Preset::Dingtalk {
        for needed in ["openid", "corpid"] {
            if !scopes.iter().any(|scope| scope == needed) {
                return Err(ConfigError::new(
                    "oauth2.scopes",
                    "must include \"openid\" and \"corpid\" with preset \"dingtalk\" (the \
                     organization the user picked is checked against allowed_corp_ids)",
                ));
            }
        }
    }
    if s.allowed_tenants.as_ref().is_some_and(Vec::is_empty) {
        return Err(ConfigError::new(
            "oauth2.allowed_tenants",
            "must name at least one tenant_key (or be left out)",
        ));
    }
    let allowed_tenants = s.allowed_tenants.clone().unwrap_or_default();
    identifiers("allowed_tenants", &allowed_tenants, "a Feishu tenant_key")?;
    let api_cluster = s.api_cluster.clone().unwrap_or_else(|| s.cluster.clone());
    let api_authority = s
        .api_authority
        .clone()
        .unwrap_or_else(|| preset.api_host().to_string());
    for (field, value) in [
        ("api_cluster", &api_cluster),
        ("api_authority", &api_authority),
    ] {
        if value.trim().is_empty() {
            return Err(ConfigError::new(
                format!("oauth2.{field}"),
                "must not be empty",
            ));
        }
    }
    Ok(PresetConfig {
        preset,
        client_id: s.client_id.clone(),
        client_secret: client_secret.to_string(),
        redirect_uri: s.redirect_uri.clone(),
        scopes: scopes.to_vec(),
        authorization_endpoint: authorization_endpoint
            .unwrap_or(preset.authorization_endpoint())
            .to_string(),
        token_path: path_of("token_endpoint", &s.token_endpoint, preset.token_path())?,
        userinfo_path: path_of(
            "userinfo_endpoint",
            &s.userinfo_endpoint,
            preset.userinfo_path(),
        )?,
        api_cluster,
        api_authority,
        agent_id,
        allowed_orgs,
        allowed_corp_ids,
        allowed_tenants,
    })
}

/// The longest corpId or tenant_key taken.
const MAX_ID_CHARS: usize = 64;

/// `oauth2.{field}`'s entries: a provider's opaque id each (letters, digits, `_`, `-`, `.`,
/// at most [`MAX_ID_CHARS`]); compared exactly.
fn identifiers(field: &str, ids: &[String], what: &str) -> Result<(), ConfigError> {
    for (i, id) in ids.iter().enumerate() {
        let valid = !id.is_empty()
            && id.len() <= MAX_ID_CHARS
            && id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
        if !valid {
            return Err(ConfigError::new(
                format!("oauth2.{field}[{i}]"),
                format!("must be {what} (letters, digits, _ - . and at most {MAX_ID_CHARS})"),
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests;
