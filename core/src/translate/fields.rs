//! Reading fields of an OpenAI request body, shared by the request and message translations.

use serde_json::{Map, Value};

use super::TranslateError;

pub(crate) fn invalid(details: impl Into<String>) -> TranslateError {
    TranslateError::InvalidBody(details.into())
}

/// The value of `key`, treating an explicit `null` as absent (as OpenAI does).
pub(crate) fn field<'a>(obj: &'a Map<String, Value>, key: &str) -> Option<&'a Value> {
    obj.get(key).filter(|v| !v.is_null())
}

/// `key` as an optional string, or an error naming `path`.
pub(crate) fn opt_str<'a>(
    obj: &'a Map<String, Value>,
    key: &str,
    path: &str,
) -> Result<Option<&'a str>, TranslateError> {
    match field(obj, key) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(invalid(format!("{path} must be a string"))),
    }
}
