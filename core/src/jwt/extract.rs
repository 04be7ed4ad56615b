//! Finds the one token of a request in the configured places (a header with the Bearer scheme,
//! a cookie), before any crypto. Ambiguity is refused: two tokens are never "pick one".

use super::TokenError;
use crate::http::RequestHead;

/// Where tokens are looked for.
#[derive(Debug, Clone)]
pub struct TokenConfig {
    /// Lower-case header name, or `None` when tokens are not read from a header.
    pub header: Option<String>,
    pub cookie: Option<String>,
    pub realm: String,
}

/// Where the token was found; the filter may strip it from there before forwarding.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TokenLocation {
    Header,
    Cookie,
}

/// A syntactically acceptable token and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FoundToken<'a> {
    pub token: &'a str,
    pub location: TokenLocation,
}

/// Looks for the request's token. `Ok(None)`: there is none. Errors are refusals
/// (`AUTH_INVALID_TOKEN`) decided without looking inside the token.
pub fn extract_token<'a>(
    config: &'a TokenConfig,
    head: &'a RequestHead,
    max_token_bytes: usize,
) -> Result<Option<FoundToken<'a>>, TokenError> {
    let mut found: Option<FoundToken<'a>> = None;
    let mut keep = |candidate: FoundToken<'a>| -> Result<(), TokenError> {
        if found.replace(candidate).is_some() {
            return Err(TokenError::MultipleTokens);
        }
        Ok(())
    };

    if let Some(header) = config.header.as_deref() {
        for value in head.values(header) {
            let token = bearer_token(value, max_token_bytes)?;
            keep(FoundToken {
                token,
                location: TokenLocation::Header,
            })?;
        }
    }
    if let Some(cookie) = config.cookie.as_deref() {
        for value in head.cookie_values(cookie) {
            // An emptied cookie (as a logout leaves it) is no token.
            if value.is_empty() {
                continue;
            }
            check_token_syntax(value, max_token_bytes)?;
            keep(FoundToken {
                token: value,
                location: TokenLocation::Cookie,
            })?;
        }
    }
    Ok(found)
}

/// `Bearer <token>` with a case-insensitive scheme (RFC 6750 section 2.1).
fn bearer_token(value: &str, max_token_bytes: usize) -> Result<&str, TokenError> {
    // Checked first so an oversized header costs nothing more.
    if value.len() > max_token_bytes + "Bearer ".len() + 16 {
        return Err(TokenError::TooLarge {
            limit: max_token_bytes,
        });
    }
    let value = value.trim_matches(|c| c == ' ' || c == '\t');
    let (scheme, rest) = match value.split_once([' ', '\t']) {
        Some(parts) => parts,
        None if value.eq_ignore_ascii_case("bearer") => return Err(TokenError::Malformed),
        None => return Err(TokenError::NotBearer),
    };
    if !scheme.eq_ignore_ascii_case("bearer") {
        return Err(TokenError::NotBearer);
    }
    let token = rest.trim_start_matches([' ', '\t']);
    check_token_syntax(token, max_token_bytes)?;
    Ok(token)
}

/// The bytes of a `b64token` before its `=` padding, as a table: one load per byte of a token
/// read on every request (a kilobyte for RS256).
const B64TOKEN: [bool; 256] = {
    let mut table = [false; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        table[b] =
            c.is_ascii_alphanumeric() || matches!(c, b'-' | b'.' | b'_' | b'~' | b'+' | b'/');
        b += 1;
    }
    table
};

/// RFC 6750 `b64token`: `1*( ALPHA / DIGIT / "-" / "." / "_" / "~" / "+" / "/" ) *"="`.
/// This also refuses a comma-separated list, embedded whitespace and any control byte.
fn check_token_syntax(token: &str, max_token_bytes: usize) -> Result<(), TokenError> {
    if token.len() > max_token_bytes {
        return Err(TokenError::TooLarge {
            limit: max_token_bytes,
        });
    }
    let body = token.trim_end_matches('=');
    let body_ok = !body.is_empty() && body.bytes().all(|b| B64TOKEN[usize::from(b)]);
    if body_ok {
        Ok(())
    } else {
        Err(TokenError::Malformed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JWT: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhIn0.c2ln";

    fn config(cookie: Option<&str>) -> TokenConfig {
        TokenConfig {
            header: Some("authorization".into()),
            cookie: cookie.map(str::to_string),
            realm: "r".into(),
        }
    }

    fn head(pairs: &[(&str, &str)]) -> RequestHead {
        RequestHead::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            true,
        )
    }

    fn extract(cookie: Option<&str>, pairs: &[(&str, &str)]) -> Result<Option<String>, TokenError> {
        let cfg = config(cookie);
        let h = head(pairs);
        extract_token(&cfg, &h, 8192).map(|found| found.map(|f| f.token.to_string()))
    }

    #[test]
    fn no_header_no_cookie_is_no_token() {
        assert_eq!(extract(Some("gw"), &[("x", "y")]), Ok(None));
    }

    #[test]
    fn bearer_scheme_is_case_insensitive() {
        for scheme in ["Bearer", "bearer", "BEARER", "bEaReR"] {
            let value = format!("{scheme} {JWT}");
            assert_eq!(
                extract(None, &[("authorization", &value)]),
                Ok(Some(JWT.to_string())),
                "{scheme}"
            );
        }
    }

    #[test]
    fn surrounding_and_repeated_spaces_are_tolerated() {
        let value = format!("  Bearer   {JWT}  ");
        assert_eq!(
            extract(None, &[("authorization", &value)]),
            Ok(Some(JWT.to_string()))
        );
    }

    #[test]
    fn other_schemes_are_refused() {
        for value in ["Basic dXNlcjpwYXNz", "Token abc", "Bearerabc", "Digest x=y"] {
            assert_eq!(
                extract(None, &[("authorization", value)]),
                Err(TokenError::NotBearer),
                "{value}"
            );
        }
    }

    #[test]
    fn malformed_bearer_values_are_refused() {
        for value in [
            "Bearer",
            "Bearer ",
            "Bearer a b",
            "Bearer a,b",
            "Bearer abc\u{1}",
            "Bearer ====",
            "Bearer ä",
            "Bearer a\"b",
        ] {
            assert_eq!(
                extract(None, &[("authorization", value)]),
                Err(TokenError::Malformed),
                "{value:?}"
            );
        }
    }

    #[test]
    fn two_headers_or_header_and_cookie_are_multiple_tokens() {
        let bearer = format!("Bearer {JWT}");
        assert_eq!(
            extract(
                None,
                &[("authorization", &bearer), ("authorization", &bearer)]
            ),
            Err(TokenError::MultipleTokens)
        );
        let cookie = format!("gw={JWT}");
        assert_eq!(
            extract(
                Some("gw"),
                &[("authorization", &bearer), ("cookie", &cookie)]
            ),
            Err(TokenError::MultipleTokens)
        );
        let two = format!("gw={JWT}; gw={JWT}");
        assert_eq!(
            extract(Some("gw"), &[("cookie", &two)]),
            Err(TokenError::MultipleTokens)
        );
    }

    #[test]
    fn cookie_token_is_found_and_empty_cookie_ignored() {
        let cookie = format!("other=1; gw={JWT}");
        assert_eq!(
            extract(Some("gw"), &[("cookie", &cookie)]),
            Ok(Some(JWT.to_string()))
        );
        assert_eq!(extract(Some("gw"), &[("cookie", "gw=")]), Ok(None));
        assert_eq!(
            extract(Some("gw"), &[("cookie", "gw=a b")]),
            Err(TokenError::Malformed)
        );
    }

    #[test]
    fn cookie_is_ignored_when_not_configured() {
        let cookie = format!("gw={JWT}");
        assert_eq!(extract(None, &[("cookie", &cookie)]), Ok(None));
    }

    #[test]
    fn oversized_tokens_are_refused_before_parsing() {
        let big = "a".repeat(9000);
        assert_eq!(
            extract(None, &[("authorization", &format!("Bearer {big}"))]),
            Err(TokenError::TooLarge { limit: 8192 })
        );
        let huge = "x".repeat(1 << 20);
        assert_eq!(
            extract(None, &[("authorization", &huge)]),
            Err(TokenError::TooLarge { limit: 8192 })
        );
        assert_eq!(
            extract(Some("gw"), &[("cookie", &format!("gw={big}"))]),
            Err(TokenError::TooLarge { limit: 8192 })
        );
    }

    #[test]
    fn token_at_exactly_the_limit_is_accepted() {
        let exact = "a".repeat(8192);
        assert_eq!(
            extract(None, &[("authorization", &format!("Bearer {exact}"))]),
            Ok(Some(exact))
        );
    }
}
