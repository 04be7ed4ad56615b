//! Compiles `data_protection`: each `mask` entry a known built-in `type` or a named, valid
//! `regex`; each `deny` entry a named, valid regex. Errors name the entry's field.

use super::schema::{DataProtectionSection, MaskSection};
use super::ConfigError;
use crate::protect::detect::Kind;
use crate::protect::{MaskEntry, ProtectError, Protector, Rule};

const MAX_NAME_BYTES: usize = 64;
const MAX_REPLACEMENT_BYTES: usize = 256;
const MAX_ENTRIES: usize = 64;

pub fn compile_data_protection(section: DataProtectionSection) -> Result<Protector, ConfigError> {
    const AT: &str = "data_protection";
    if section.mask.is_empty() && section.deny.is_empty() {
        return Err(ConfigError::new(AT, "needs `mask` or `deny` entries"));
    }
    if section.responses && section.mask.is_empty() {
        return Err(ConfigError::new(
            format!("{AT}.responses"),
            "masks answers with the `mask` entries, and there are none",
        ));
    }
    for (list, len) in [("mask", section.mask.len()), ("deny", section.deny.len())] {
        if len > MAX_ENTRIES {
            return Err(ConfigError::new(
                format!("{AT}.{list}"),
                format!("at most {MAX_ENTRIES} entries"),
            ));
        }
    }
    replacement(&format!("{AT}.replacement"), &section.replacement)?;
    let mut entries = Vec::with_capacity(section.mask.len());
    let mut names: Vec<String> = Vec::new();
    for (i, entry) in section.mask.into_iter().enumerate() {
        let at = format!("{AT}.mask[{i}]");
        let entry = mask_entry(&at, entry, &section.replacement)?;
        let name = match &entry {
            MaskEntry::Builtin(_, rule) | MaskEntry::Custom(_, rule) => rule.name.clone(),
        };
        if names.contains(&name) {
            return Err(ConfigError::new(
                format!("{at}.name"),
                format!("`{name}` is already the name of another entry"),
            ));
        }
        names.push(name);
        entries.push(entry);
    }
    let mut deny = Vec::with_capacity(section.deny.len());
    for (i, entry) in section.deny.into_iter().enumerate() {
        name(&format!("{AT}.deny[{i}].name"), &entry.name)?;
        if deny.iter().any(|(n, _)| *n == entry.name) {
            return Err(ConfigError::new(
                format!("{AT}.deny[{i}].name"),
                format!("`{}` is already the name of another entry", entry.name),
            ));
        }
        deny.push((entry.name, entry.regex));
    }
    Protector::new(entries, deny, section.responses).map_err(|e| match e {
        ProtectError::Mask(i, e) => ConfigError::new(format!("{AT}.mask[{i}].regex"), e.reason),
        ProtectError::Deny(e) => {
            ConfigError::new(format!("{AT}.deny[{}].regex", e.index), e.reason)
        }
    })
}

fn mask_entry(at: &str, entry: MaskSection, default: &str) -> Result<MaskEntry, ConfigError> {
    let replacement_text = match entry.replacement {
        Some(text) => {
            replacement(&format!("{at}.replacement"), &text)?;
            text
        }
        None => default.to_string(),
    };
    match (entry.kind, entry.regex) {
        (Some(kind), None) => {
            let Some(parsed) = Kind::parse(&kind) else {
                let known: Vec<&str> = Kind::ALL.iter().map(|k| k.name()).collect();
                return Err(ConfigError::new(
                    format!("{at}.type"),
                    format!(
                        "unknown type `{}`; known: {}",
                        short(&kind),
                        known.join(", ")
                    ),
                ));
            };
            let rule_name = match entry.name {
                Some(given) => {
                    name(&format!("{at}.name"), &given)?;
                    given
                }
                None => parsed.name().to_string(),
            };
            Ok(MaskEntry::Builtin(
                parsed,
                Rule {
                    name: rule_name,
                    replacement: replacement_text,
                },
            ))
        }
        (None, Some(regex)) => {
            let Some(given) = entry.name else {
                return Err(ConfigError::new(
                    format!("{at}.name"),
                    "is required with `regex` (it names the matches in the audit)",
                ));
            };
            name(&format!("{at}.name"), &given)?;
            Ok(MaskEntry::Custom(
                regex,
                Rule {
                    name: given,
                    replacement: replacement_text,
                },
            ))
        }
        (Some(_), Some(_)) => Err(ConfigError::new(
            at,
            "has both `type` and `regex`; an entry is one or the other",
        )),
        (None, None) => Err(ConfigError::new(at, "needs `type` or `regex`")),
    }
}

/// A rule name shows in the audit record and in metric names.
fn name(at: &str, name: &str) -> Result<(), ConfigError> {
    let valid = !name.is_empty()
        && name.len() <= MAX_NAME_BYTES
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if valid {
        Ok(())
    } else {
        Err(ConfigError::new(
            at,
            format!("must be 1 to {MAX_NAME_BYTES} letters, digits, `_` or `-`"),
        ))
    }
}

fn replacement(at: &str, text: &str) -> Result<(), ConfigError> {
    if text.len() > MAX_REPLACEMENT_BYTES {
        return Err(ConfigError::new(
            at,
            format!("at most {MAX_REPLACEMENT_BYTES} bytes"),
        ));
    }
    Ok(())
}

fn short(text: &str) -> String {
    text.chars().take(40).collect()
}
