//! CORS answered by the gateway (`cors`): browser apps on other origins calling with a bearer
//! token. A true preflight (`OPTIONS` with `Origin` and `Access-Control-Request-Method`) is
//! answered here, before any authentication, and never forwarded; actual requests from an
//! allowed origin get the `Access-Control-*` headers on every answer, the gateway's own errors
//! included, so the page can read them (and `Retry-After`).

use crate::http::RequestHead;

/// The CORS headers of an answer (the gateway sets them; an upstream's are removed).
pub const RESPONSE_HEADERS: [&str; 6] = [
    "access-control-allow-origin",
    "access-control-allow-credentials",
    "access-control-allow-methods",
    "access-control-allow-headers",
    "access-control-expose-headers",
    "access-control-max-age",
];

/// One `allow_origins` entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OriginPattern {
    /// Any origin (`*`); never with credentials.
    Any,
    /// One origin, compared exactly (scheme, host, port), lower-cased.
    Exact(String),
    /// `scheme://*.domain[:port]`: any subdomain (at any depth) of `domain`, never `domain`.
    Subdomains { scheme: String, suffix: String },
}

impl OriginPattern {
    /// Parses a configured origin; `Err` says why it is refused.
    pub fn parse(text: &str) -> Result<Self, String> {
        if text == "*" {
            return Ok(Self::Any);
        }
        let lower = text.to_ascii_lowercase();
        let Some((scheme, rest)) = lower.split_once("://") else {
            return Err("must be `*` or `scheme://host[:port]`".into());
        };
        if scheme != "http" && scheme != "https" {
            return Err("the scheme must be http or https".into());
        }
        let valid_host = |host: &str| {
            !host.is_empty()
                && host
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':'))
        };
        match rest.strip_prefix("*.") {
            Some(suffix) if valid_host(suffix) && suffix.contains('.') => Ok(Self::Subdomains {
                scheme: scheme.to_string(),
                suffix: format!(".{suffix}"),
            }),
            Some(_) => Err("a wildcard must be `scheme://*.domain.tld`".into()),
            None if valid_host(rest) && !rest.contains('*') => Ok(Self::Exact(lower)),
            None => Err("must be an origin: `scheme://host[:port]`, no path".into()),
        }
    }

    fn allows(&self, origin: &str) -> bool {
        match self {
            Self::Any => true,
            Self::Exact(exact) => origin.eq_ignore_ascii_case(exact),
            Self::Subdomains { scheme, suffix } => {
                let origin = origin.to_ascii_lowercase();
                origin
                    .strip_prefix(scheme.as_str())
                    .and_then(|rest| rest.strip_prefix("://"))
                    .is_some_and(|host| {
                        host.len() > suffix.len()
                            && host.ends_with(suffix.as_str())
                            && host.bytes().all(|b| {
                                b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b':')
                            })
                    })
            }
        }
    }
}

/// The compiled `cors` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Cors {
    pub origins: Vec<OriginPattern>,
    /// Upper-case methods.
    pub methods: Vec<String>,
    /// Lower-case header names.
    pub headers: Vec<String>,
    pub expose_headers: Vec<String>,
    pub credentials: bool,
    pub max_age_s: u64,
}

/// What CORS makes of a request's head.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CorsStep {
    /// Not a preflight: go on (with these headers on the answer: empty when the request has no
    /// allowed `Origin`).
    Continue(Vec<(&'static str, String)>),
    /// A preflight from an allowed origin: answer `204` with these headers.
    Preflight(Vec<(&'static str, String)>),
    /// A preflight from another origin: `403 CORS_ORIGIN_NOT_ALLOWED`.
    Refused,
}

impl Cors {
    pub fn step(&self, head: &RequestHead) -> CorsStep {
        let origin = head.value("origin").filter(|o| !o.is_empty());
        let preflight =
            head.method() == "OPTIONS" && head.value("access-control-request-method").is_some();
        match (origin, preflight) {
            (Some(origin), true) if self.allows(origin) => {
                let mut headers = self.common(origin);
                headers.push(("access-control-allow-methods", self.methods.join(", ")));
                if !self.headers.is_empty() {
                    headers.push(("access-control-allow-headers", self.headers.join(", ")));
                }
                headers.push(("access-control-max-age", self.max_age_s.to_string()));
                CorsStep::Preflight(headers)
            }
            (Some(_), true) => CorsStep::Refused,
            (Some(origin), false) if self.allows(origin) => {
                let mut headers = self.common(origin);
                if !self.expose_headers.is_empty() {
                    headers.push((
                        "access-control-expose-headers",
                        self.expose_headers.join(", "),
                    ));
                }
                CorsStep::Continue(headers)
            }
            // No Origin: not a browser's cross-origin call; an OPTIONS without the request
            // method is not a preflight and gets no bypass.
            _ => CorsStep::Continue(Vec::new()),
        }
    }

    /// Whether `origin` may call (and, with credentials, carry the session cookie).
    pub fn allows(&self, origin: &str) -> bool {
        self.origins.iter().any(|pattern| pattern.allows(origin))
    }

    fn common(&self, origin: &str) -> Vec<(&'static str, String)> {
        let mut headers = vec![
            ("access-control-allow-origin", origin.to_string()),
            ("vary", "Origin".to_string()),
        ];
        if self.credentials {
            headers.push(("access-control-allow-credentials", "true".to_string()));
        }
        headers
    }
}

#[cfg(test)]
mod tests;
