//! Compiles `models`: every entry's scopes valid scope tokens, every model a valid pattern, no
//! empty list (an empty `allow` or `models` would lock callers out by a slip of the editor).

use super::schema::ModelsSection;
use super::validate;
use super::ConfigError;
use crate::models::{ModelAllowList, ModelPattern};

pub fn compile_models(section: ModelsSection) -> Result<ModelAllowList, ConfigError> {
    if section.allow.is_empty() {
        return Err(ConfigError::new(
            "models.allow",
            "must have at least one entry",
        ));
    }
    let mut entries = Vec::with_capacity(section.allow.len());
    for (i, entry) in section.allow.into_iter().enumerate() {
        let at = format!("models.allow[{i}]");
        let mut scopes: Vec<String> = Vec::with_capacity(entry.scopes.len());
        for (j, scope) in entry.scopes.into_iter().enumerate() {
            validate::scope_token(&scope)
                .map_err(|r| ConfigError::new(format!("{at}.scopes[{j}]"), r))?;
            if !scopes.contains(&scope) {
                scopes.push(scope);
            }
        }
        if entry.models.is_empty() {
            return Err(ConfigError::new(
                format!("{at}.models"),
                "must name at least one model",
            ));
        }
        let mut patterns: Vec<ModelPattern> = Vec::with_capacity(entry.models.len());
        for (j, model) in entry.models.iter().enumerate() {
            let pattern = ModelPattern::parse(model)
                .map_err(|r| ConfigError::new(format!("{at}.models[{j}]"), r))?;
            if !patterns.contains(&pattern) {
                patterns.push(pattern);
            }
        }
        entries.push((scopes, patterns));
    }
    Ok(ModelAllowList::new(entries))
}
