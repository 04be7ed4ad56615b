//! Strict JSON: like `serde_json::from_slice::<Value>`, but a duplicate key at any depth is an
//! error. `serde_json` silently keeps the last of duplicates, and two components that pick
//! different duplicates (`{"sub":"alice","sub":"admin"}`) read two different documents.

use std::fmt;

use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Number, Value};

/// Why a document was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StrictJsonError {
    /// Not JSON (syntax), or nested deeper than serde_json's recursion limit.
    Invalid,
    /// The same key twice in one object.
    DuplicateKey,
}

impl fmt::Display for StrictJsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Invalid => f.write_str("not valid JSON"),
            Self::DuplicateKey => f.write_str("duplicate key"),
        }
    }
}

const DUPLICATE: &str = "duplicate key";

/// Parses `bytes` as JSON, refusing duplicate keys.
pub fn parse_strict(bytes: &[u8]) -> Result<Value, StrictJsonError> {
    let mut deserializer = serde_json::Deserializer::from_slice(bytes);
    let value = StrictValue::deserialize(&mut deserializer).map_err(|e| {
        if e.to_string().starts_with(DUPLICATE) {
            StrictJsonError::DuplicateKey
        } else {
            StrictJsonError::Invalid
        }
    })?;
    deserializer.end().map_err(|_| StrictJsonError::Invalid)?;
    Ok(value.0)
}

/// Parses `bytes` as a JSON object, refusing duplicate keys.
pub fn parse_strict_object(bytes: &[u8]) -> Result<Map<String, Value>, StrictJsonError> {
    match parse_strict(bytes)? {
        Value::Object(map) => Ok(map),
        _ => Err(StrictJsonError::Invalid),
    }
}

struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(StrictVisitor).map(StrictValue)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("any JSON value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }

    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::Number(v.into()))
    }

    fn visit_f64<E>(self, v: f64) -> Result<Value, E> {
        Ok(Number::from_f64(v).map_or(Value::Null, Value::Number))
    }

    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }

    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }

    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut items = Vec::new();
        while let Some(StrictValue(item)) = seq.next_element()? {
            items.push(item);
        }
        Ok(Value::Array(items))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut access: A) -> Result<Value, A::Error> {
        let mut map = Map::new();
        while let Some(key) = access.next_key::<String>()? {
            if map.contains_key(&key) {
                return Err(de::Error::custom(DUPLICATE));
            }
            let StrictValue(value) = access.next_value()?;
            map.insert(key, value);
        }
        Ok(Value::Object(map))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn parses_like_serde_json() {
        let text = br#"{"a": [1, -2, 3.5, "x", null, true, {"b": {}}], "c": "\u00e9"}"#;
        assert_eq!(
            parse_strict(text).unwrap(),
            serde_json::from_slice::<Value>(text).unwrap()
        );
    }

    #[test]
    fn duplicate_keys_are_refused_at_any_depth() {
        for text in [
            r#"{"sub": "alice", "sub": "admin"}"#,
            r#"{"a": {"x": 1, "x": 1}}"#,
            r#"[{"k": 1, "k": 2}]"#,
            r#"{"\u0073ub": 1, "sub": 2}"#,
        ] {
            assert_eq!(
                parse_strict(text.as_bytes()),
                Err(StrictJsonError::DuplicateKey),
                "{text}"
            );
        }
    }

    #[test]
    fn garbage_is_invalid_not_a_panic() {
        let deep = "[".repeat(10_000);
        for text in [
            "",
            "{",
            "{} x",
            "nul",
            "\"\\ud800\"",
            deep.as_str(),
            "{\"a\":1,}",
        ] {
            assert_eq!(
                parse_strict(text.as_bytes()),
                Err(StrictJsonError::Invalid),
                "{text}"
            );
        }
        assert_eq!(parse_strict(&[0xff, 0xfe]), Err(StrictJsonError::Invalid));
    }

    /// Found by the `request_body` fuzz target: a long decimal was read one ulp off, so the
    /// number written back (a translated or masked body) was another number.
    #[test]
    fn numbers_survive_a_round_trip() {
        for text in [
            "555555555555555555555555555555555555555",
            "0.30000000000000004441",
            "1.7976931348623157e308",
            "2.2250738585072011e-308",
            "[0.1,1e-7,123456789012345678901234567890]",
        ] {
            let value = parse_strict(text.as_bytes()).unwrap();
            let again = parse_strict(&serde_json::to_vec(&value).unwrap()).unwrap();
            assert_eq!(again, value, "{text}");
        }
    }

    #[test]
    fn object_helper_refuses_non_objects() {
        assert_eq!(parse_strict_object(b"[]"), Err(StrictJsonError::Invalid));
        assert_eq!(parse_strict_object(b"{\"a\":1}").unwrap()["a"], json!(1));
    }
}
