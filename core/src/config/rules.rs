//! Compiles `rules`: matchers parsed, methods normalised, scope templates checked against the
//! match's variables, and rules that can never be reached refused.

use super::schema::{AuthMode, MatchSection, RouteRuleSection};
use super::validate;
use super::ConfigError;
use crate::authz::{route_path, PathMatch, RouteMatch, RouteRule, ScopePattern, Template};

pub fn compile_rules(sections: Vec<RouteRuleSection>) -> Result<Vec<RouteRule>, ConfigError> {
    let mut rules: Vec<RouteRule> = Vec::with_capacity(sections.len());
    for (i, section) in sections.into_iter().enumerate() {
        let rule = compile_rule(i, section)?;
        // First match wins, so a rule whose requests an earlier rule all takes never decides.
        if let Some(earlier) = rules.iter().position(|r| r.matcher.shadows(&rule.matcher)) {
            return Err(ConfigError::new(
                format!("rules[{i}].match"),
                format!("unreachable: rules[{earlier}] matches every request it would match"),
            ));
        }
        rules.push(rule);
    }
    Ok(rules)
}

fn compile_rule(i: usize, section: RouteRuleSection) -> Result<RouteRule, ConfigError> {
    let matcher = compile_match(&format!("rules[{i}].match"), section.matcher)?;
    let template = match &matcher.path {
        PathMatch::Template(t) => Some(t),
        _ => None,
    };
    let mut scopes: Vec<ScopePattern> = Vec::new();
    for (j, scope) in section.scopes.iter().enumerate() {
        let at = format!("rules[{i}].scopes[{j}]");
        validate::scope_token(scope).map_err(|r| ConfigError::new(&at, r))?;
        let pattern = ScopePattern::parse(scope, template).map_err(|r| ConfigError::new(&at, r))?;
        if !scopes.contains(&pattern) {
            scopes.push(pattern);
        }
    }
    if section.auth == AuthMode::None && !scopes.is_empty() {
        return Err(ConfigError::new(
            format!("rules[{i}].scopes"),
            "scopes cannot be checked when auth is \"none\"",
        ));
    }
    if let Some(name) = &section.name {
        let valid = !name.is_empty()
            && name.len() <= 64
            && name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
        if !valid {
            return Err(ConfigError::new(
                format!("rules[{i}].name"),
                "must be 1 to 64 letters, digits, `_` or `-` (it is a metrics label)",
            ));
        }
        if ["model", "rule", "code"].contains(&name.as_str()) {
            return Err(ConfigError::new(
                format!("rules[{i}].name"),
                "`model`, `rule` and `code` are reserved (they delimit metric labels)",
            ));
        }
    }
    Ok(RouteRule {
        name: section.name,
        matcher,
        auth: section.auth,
        scopes,
    })
}

/// Compiles a `match` object; `base` is its JSON path (`rules[2].match`).
pub fn compile_match(base: &str, m: MatchSection) -> Result<RouteMatch, ConfigError> {
    let at = |field: &str| format!("{base}.{field}");
    let path = match (m.path, m.prefix, m.template) {
        (Some(path), None, None) => {
            // An exact path must be one that the path check accepts, as it is.
            if path.contains(['?', '#', '%']) || route_path(&path).as_deref() != Ok(path.as_str()) {
                return Err(ConfigError::new(
                    at("path"),
                    "must be a clean absolute path (no query, dot or empty segments, encoded separators)",
                ));
            }
            let exact = if path.len() > 1 {
                path.trim_end_matches('/').to_string()
            } else {
                path
            };
            PathMatch::Exact(exact)
        }
        (None, Some(prefix), None) => {
            let clean = prefix.starts_with('/')
                && !prefix.contains(['?', '#', ';', '%', '\\'])
                && prefix.bytes().all(|b| (0x21..0x7f).contains(&b));
            if !clean {
                return Err(ConfigError::new(
                    at("prefix"),
                    "must start with / and contain no query, fragment, ';' or '\\\\'",
                ));
            }
            PathMatch::Prefix(prefix)
        }
        (None, None, Some(template)) => PathMatch::Template(
            Template::parse(&template).map_err(|r| ConfigError::new(at("template"), r))?,
        ),
        _ => {
            return Err(ConfigError::new(
                base,
                "needs exactly one of \"path\", \"prefix\" and \"template\"",
            ))
        }
    };
    let methods = match m.methods {
        None => None,
        Some(list) if list.is_empty() => {
            return Err(ConfigError::new(
                at("methods"),
                "must not be empty (omit it for any method)",
            ))
        }
        Some(list) => {
            let mut methods: Vec<String> = Vec::new();
            for (j, method) in list.iter().enumerate() {
                let name = validate::header_name(method)
                    .map_err(|_| {
                        ConfigError::new(format!("{base}.methods[{j}]"), "is not an HTTP method")
                    })?
                    .to_ascii_uppercase();
                if !methods.contains(&name) {
                    methods.push(name);
                }
            }
            Some(methods)
        }
    };
    Ok(RouteMatch { path, methods })
}
