//! Route rules: what a request must present, decided by the first rule whose match fits.
//! Compiled once at configure time; matching a request is a walk over the rules with no
//! allocation beyond the captured template variables.

use serde::Deserialize;

/// What a rule requires of the caller's token (the config's `auth`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AuthMode {
    /// A valid token is required.
    #[default]
    Required,
    /// A token, if present, must be valid; without one the caller is anonymous.
    Optional,
    /// No token is looked at.
    None,
}

impl AuthMode {
    pub fn name(self) -> &'static str {
        match self {
            Self::Required => "required",
            Self::Optional => "optional",
            Self::None => "none",
        }
    }
}

/// How a rule's path is matched (case-sensitive; one trailing slash of the request is ignored
/// by `Exact` and `Template`, so `/x/` gets the rule of `/x`, never a looser one).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    Exact(String),
    /// Plain string prefix, as Envoy's route `prefix`.
    Prefix(String),
    Template(Template),
}

/// `/v1/history/{team}/**`: literal segments, `{name}` for exactly one segment, and an optional
/// trailing `/**` for any rest (including none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    source: String,
    segments: Vec<Segment>,
    rest: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Segment {
    Literal(String),
    Variable(String),
}

/// Variables captured by a template match: (name, segment).
pub type Captures<'a> = Vec<(&'a str, &'a str)>;

impl Template {
    pub fn parse(source: &str) -> Result<Self, String> {
        let body = source
            .strip_prefix('/')
            .ok_or_else(|| "must start with /".to_string())?;
        let mut segments = Vec::new();
        let mut rest = false;
        let parts: Vec<&str> = if body.is_empty() {
            Vec::new()
        } else {
            body.split('/').collect()
        };
        for (i, part) in parts.iter().enumerate() {
            if *part == "**" {
                if i + 1 != parts.len() {
                    return Err("`**` may only be the last segment".into());
                }
                rest = true;
            } else if let Some(name) = part.strip_prefix('{').and_then(|p| p.strip_suffix('}')) {
                let valid = name
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
                    && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
                if !valid {
                    return Err(format!("`{{{name}}}` is not a valid variable name"));
                }
                if segments
                    .iter()
                    .any(|s| matches!(s, Segment::Variable(n) if n == name))
                {
                    return Err(format!("variable `{{{name}}}` is used twice"));
                }
                segments.push(Segment::Variable(name.to_string()));
            } else {
                check_literal_segment(part)?;
                segments.push(Segment::Literal((*part).to_string()));
            }
        }
        Ok(Self {
            source: source.to_string(),
            segments,
            rest,
        })
    }

    pub fn has_variable(&self, name: &str) -> bool {
        self.segments
            .iter()
            .any(|s| matches!(s, Segment::Variable(n) if n == name))
    }

    /// The captured variables when `path` (already checked by `route_path`) matches.
    pub fn captures<'a>(&'a self, path: &'a str) -> Option<Captures<'a>> {
        let trimmed = trim_trailing_slash(path);
        let body = trimmed.strip_prefix('/')?;
        // "/" has no segments at all (not one empty segment).
        let mut parts = (!body.is_empty())
            .then(|| body.split('/'))
            .into_iter()
            .flatten();
        let mut captures = Vec::new();
        for segment in &self.segments {
            let part = parts.next()?;
            match segment {
                Segment::Literal(literal) if literal == part => {}
                Segment::Literal(_) => return None,
                Segment::Variable(name) => captures.push((name.as_str(), part)),
            }
        }
        if parts.next().is_some() && !self.rest {
            return None;
        }
        Some(captures)
    }

    /// The one path this template matches (with or without a trailing slash) when it has no
    /// variable and no `/**`.
    fn literal_path(&self) -> Option<&str> {
        let literal = !self.rest
            && self
                .segments
                .iter()
                .all(|s| matches!(s, Segment::Literal(_)));
        literal.then_some(self.source.as_str())
    }

    /// The longest text every matching path starts with: the literal segments before the first
    /// variable, and the `/` after them when a variable follows (`/v1/history/{team}/**` →
    /// `/v1/history/`; `/v1/**` → `/v1`, which it matches itself).
    fn common_start(&self) -> String {
        let mut start = String::from("/");
        for (i, segment) in self.segments.iter().enumerate() {
            if i > 0 {
                start.push('/');
            }
            match segment {
                Segment::Literal(literal) => start.push_str(literal),
                Segment::Variable(_) => return start,
            }
        }
        start
    }

    /// True when this template matches every path `later` matches.
    fn covers_template(&self, later: &Template) -> bool {
        let lengths = if self.rest {
            self.segments.len() <= later.segments.len()
        } else {
            !later.rest && self.segments.len() == later.segments.len()
        };
        // A literal covers only the same literal; a variable covers anything in that place.
        lengths
            && self
                .segments
                .iter()
                .zip(&later.segments)
                .all(|(mine, theirs)| match (mine, theirs) {
                    (Segment::Variable(_), _) => true,
                    (Segment::Literal(a), Segment::Literal(b)) => a == b,
                    (Segment::Literal(_), Segment::Variable(_)) => false,
                })
    }

    /// True when this template matches every path that starts with `prefix`. Such paths can
    /// be arbitrarily deep, so only a template with `/**` can; and the prefix's last, possibly
    /// partial, segment (`/v1/mod`) can be completed in any way, so the template must end
    /// before it or with a variable in its place.
    fn covers_prefix(&self, prefix: &str) -> bool {
        let Some(body) = prefix.strip_prefix('/') else {
            return false;
        };
        let mut complete: Vec<&str> = body.split('/').collect();
        let partial = complete.pop().unwrap_or("");
        // A prefix with an empty or dot segment matches no accepted path: not this check's
        // business.
        if !self.rest
            || complete
                .iter()
                .any(|s| s.is_empty() || *s == "." || *s == "..")
        {
            return false;
        }
        let leading = self
            .segments
            .iter()
            .zip(&complete)
            .all(|(segment, part)| segment.accepts(part));
        let wanted = self.segments.len();
        if partial.is_empty() {
            // `/v1/` itself is a match of the prefix, with only the complete segments.
            leading && wanted <= complete.len()
        } else {
            leading
                && (wanted <= complete.len()
                    || (wanted == complete.len() + 1
                        && matches!(self.segments.last(), Some(Segment::Variable(_)))))
        }
    }
}

impl Segment {
    fn accepts(&self, part: &str) -> bool {
        match self {
            Segment::Literal(literal) => literal == part,
            Segment::Variable(_) => true,
        }
    }
}

fn check_literal_segment(part: &str) -> Result<(), String> {
    if part.is_empty() {
        return Err("empty segment (`//`)".into());
    }
    if part == "." || part == ".." {
        return Err("dot segments cannot match any accepted path".into());
    }
    if part.contains(['{', '}', '*', '?', '#', ';', '\\', '%'])
        || !part.bytes().all(|b| (0x21..0x7f).contains(&b))
    {
        return Err(format!(
            "`{}` is not a literal path segment",
            part.escape_default()
        ));
    }
    Ok(())
}

fn trim_trailing_slash(path: &str) -> &str {
    if path.len() > 1 {
        path.strip_suffix('/').unwrap_or(path)
    } else {
        path
    }
}

impl PathMatch {
    /// The captured variables when `path` (already checked by `route_path`) matches (empty for
    /// exact and prefix matches).
    pub fn captures<'a>(&'a self, path: &'a str) -> Option<Captures<'a>> {
        match self {
            PathMatch::Exact(exact) => (trim_trailing_slash(path) == exact).then(Vec::new),
            PathMatch::Prefix(prefix) => path.starts_with(prefix.as_str()).then(Vec::new),
            PathMatch::Template(template) => template.captures(path),
        }
    }

    /// True when this matches every path `later` matches. Exact for matchers that match some
    /// path; a prefix that matches none (`/a//`) is never said to be covered by a template.
    pub fn covers(&self, later: &PathMatch) -> bool {
        match (self, later) {
            // `later` matches `/x` and `/x/`, which every matcher takes alike (a prefix that
            // takes `/x` takes `/x/`; exact paths and templates ignore the slash).
            (_, PathMatch::Exact(path)) => self.captures(path).is_some(),
            // A prefix matches endlessly many paths, an exact path two.
            (PathMatch::Exact(_), PathMatch::Prefix(_)) => false,
            (PathMatch::Exact(path), PathMatch::Template(t)) => t.literal_path() == Some(path),
            (PathMatch::Prefix(mine), PathMatch::Prefix(theirs)) => {
                theirs.starts_with(mine.as_str())
            }
            (PathMatch::Prefix(prefix), PathMatch::Template(t)) => {
                t.common_start().starts_with(prefix.as_str())
            }
            (PathMatch::Template(t), PathMatch::Prefix(prefix)) => t.covers_prefix(prefix),
            (PathMatch::Template(mine), PathMatch::Template(theirs)) => {
                mine.covers_template(theirs)
            }
        }
    }
}

/// A rule's `match`: a path matcher and, optionally, methods.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteMatch {
    pub path: PathMatch,
    /// Upper-case methods; `None` matches any.
    pub methods: Option<Vec<String>>,
}

impl RouteMatch {
    /// The captured variables when the request matches (empty for exact and prefix matches).
    pub fn captures<'a>(&'a self, method: &str, path: &'a str) -> Option<Captures<'a>> {
        if let Some(methods) = &self.methods {
            if !methods.iter().any(|m| m == method) {
                return None;
            }
        }
        self.path.captures(path)
    }

    /// True when this match takes every request `later` would (so `later` never decides).
    pub fn shadows(&self, later: &RouteMatch) -> bool {
        let methods_cover = match (&self.methods, &later.methods) {
            (None, _) => true,
            (Some(_), None) => false,
            (Some(mine), Some(theirs)) => theirs.iter().all(|m| mine.contains(m)),
        };
        methods_cover && self.path.covers(&later.path)
    }
}

/// A required scope, possibly with template variables: `history:{team}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ScopePattern {
    parts: Vec<ScopePart>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum ScopePart {
    Literal(String),
    Variable(String),
}

impl ScopePattern {
    /// Parses `pattern`; every `{name}` must be a variable of `template`.
    pub fn parse(pattern: &str, template: Option<&Template>) -> Result<Self, String> {
        let mut parts = Vec::new();
        let mut rest = pattern;
        while let Some(open) = rest.find('{') {
            let (literal, after) = rest.split_at(open);
            if !literal.is_empty() {
                parts.push(ScopePart::Literal(literal.to_string()));
            }
            let close = after
                .find('}')
                .ok_or_else(|| format!("unclosed `{{` in `{pattern}`"))?;
            let name = after.get(1..close).unwrap_or("");
            if !template.is_some_and(|t| t.has_variable(name)) {
                return Err(format!(
                    "uses `{{{name}}}` but the rule's match has no such template variable"
                ));
            }
            parts.push(ScopePart::Variable(name.to_string()));
            rest = after.get(close + 1..).unwrap_or("");
        }
        if rest.contains('}') {
            return Err(format!("unmatched `}}` in `{pattern}`"));
        }
        if !rest.is_empty() {
            parts.push(ScopePart::Literal(rest.to_string()));
        }
        if parts.is_empty() {
            return Err("must not be empty".into());
        }
        Ok(Self { parts })
    }

    /// Whether `scope` is one this pattern can require (variables match any non-empty text).
    pub fn could_require(&self, scope: &str) -> bool {
        fn matches(parts: &[ScopePart], rest: &str) -> bool {
            match parts.split_first() {
                None => rest.is_empty(),
                Some((ScopePart::Literal(literal), tail)) => rest
                    .strip_prefix(literal.as_str())
                    .is_some_and(|after| matches(tail, after)),
                Some((ScopePart::Variable(_), tail)) => (1..=rest.len())
                    .filter(|i| rest.is_char_boundary(*i))
                    .any(|i| matches(tail, rest.get(i..).unwrap_or(""))),
            }
        }
        matches(&self.parts, scope)
    }

    /// The scope with captured variables substituted.
    pub fn resolve(&self, captures: &Captures<'_>) -> String {
        let mut scope = String::new();
        for part in &self.parts {
            match part {
                ScopePart::Literal(literal) => scope.push_str(literal),
                ScopePart::Variable(name) => {
                    let value = captures
                        .iter()
                        .find(|(n, _)| n == name)
                        .map_or("", |(_, v)| *v);
                    scope.push_str(value);
                }
            }
        }
        scope
    }
}

/// A compiled route rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RouteRule {
    /// What metrics call it (`rules[].name`); `None`: its index.
    pub name: Option<String>,
    pub matcher: RouteMatch,
    pub auth: AuthMode,
    pub scopes: Vec<ScopePattern>,
}

/// What the request must present: the outcome of rule selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requirement {
    pub auth: AuthMode,
    /// All must be granted (template variables already substituted).
    pub scopes: Vec<String>,
    /// Index of the rule that matched; `None` for `default_rule`.
    pub rule: Option<usize>,
}

/// The requirement of the first rule that matches `method` and `path` (a path checked by
/// `route_path`), or `None` when no rule does.
pub fn select(rules: &[RouteRule], method: &str, path: &str) -> Option<Requirement> {
    rules.iter().enumerate().find_map(|(i, rule)| {
        let captures = rule.matcher.captures(method, path)?;
        Some(Requirement {
            auth: rule.auth,
            scopes: rule.scopes.iter().map(|s| s.resolve(&captures)).collect(),
            rule: Some(i),
        })
    })
}

#[cfg(test)]
mod tests;
