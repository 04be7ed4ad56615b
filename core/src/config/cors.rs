//! Compiles `cors`: origins that parse, methods that are tokens, header names that are valid,
//! and never credentials for any origin (`*`).

use super::schema::CorsSection;
use super::{validate, ConfigError};
use crate::cors::{Cors, OriginPattern};

/// Browsers cap it lower anyway (Chromium: 2 hours).
const MAX_AGE_LIMIT_S: u64 = 86_400;

pub fn compile_cors(section: CorsSection) -> Result<Cors, ConfigError> {
    if section.allow_origins.is_empty() {
        return Err(ConfigError::new(
            "cors.allow_origins",
            "must name at least one origin",
        ));
    }
    let mut origins = Vec::with_capacity(section.allow_origins.len());
    for (i, origin) in section.allow_origins.iter().enumerate() {
        let pattern = OriginPattern::parse(origin)
            .map_err(|r| ConfigError::new(format!("cors.allow_origins[{i}]"), r))?;
        if !origins.contains(&pattern) {
            origins.push(pattern);
        }
    }
    if section.allow_credentials && origins.contains(&OriginPattern::Any) {
        return Err(ConfigError::new(
            "cors.allow_credentials",
            "cannot be true when allow_origins has `*`",
        ));
    }
    let mut methods: Vec<String> = Vec::new();
    for (i, method) in section.allow_methods.iter().enumerate() {
        let token = !method.is_empty() && method.bytes().all(|b| b.is_ascii_alphabetic());
        if !token {
            return Err(ConfigError::new(
                format!("cors.allow_methods[{i}]"),
                format!("`{method}` is not an HTTP method"),
            ));
        }
        let upper = method.to_ascii_uppercase();
        if !methods.contains(&upper) {
            methods.push(upper);
        }
    }
    let headers = header_names("cors.allow_headers", &section.allow_headers)?;
    let expose_headers = header_names("cors.expose_headers", &section.expose_headers)?;
    if section.max_age_s > MAX_AGE_LIMIT_S {
        return Err(ConfigError::new(
            "cors.max_age_s",
            format!("must be at most {MAX_AGE_LIMIT_S}"),
        ));
    }
    Ok(Cors {
        origins,
        methods,
        headers,
        expose_headers,
        credentials: section.allow_credentials,
        max_age_s: section.max_age_s,
    })
}

fn header_names(at: &str, names: &[String]) -> Result<Vec<String>, ConfigError> {
    let mut out: Vec<String> = Vec::with_capacity(names.len());
    for (i, name) in names.iter().enumerate() {
        let name =
            validate::header_name(name).map_err(|r| ConfigError::new(format!("{at}[{i}]"), r))?;
        if !out.contains(&name) {
            out.push(name);
        }
    }
    Ok(out)
}
