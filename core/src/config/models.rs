//! Compiles `models` (and the model patterns `rate_limits[].models` shares): every entry's scopes valid scope tokens, every model a valid pattern, no
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
        let patterns = compile_patterns(&format!("{at}.models"), &entry.models)?;
        entries.push((scopes, patterns));
    }
    Ok(ModelAllowList::new(entries))
}

/// A list of model patterns at `at` (`models.allow[0].models`, `rate_limits[2].models`): not
/// empty, every entry a valid pattern (an error names it, `at[j]`), duplicates dropped.
pub fn compile_patterns(at: &str, models: &[String]) -> Result<Vec<ModelPattern>, ConfigError> {
    if models.is_empty() {
        return Err(ConfigError::new(at, "must name at least one model"));
    }
    let mut patterns: Vec<ModelPattern> = Vec::with_capacity(models.len());
    for (j, model) in models.iter().enumerate() {
        let pattern =
            ModelPattern::parse(model).map_err(|r| ConfigError::new(format!("{at}[{j}]"), r))?;
        if !patterns.contains(&pattern) {
            patterns.push(pattern);
        }
    }
    Ok(patterns)
}
