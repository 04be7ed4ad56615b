//! Just enough absolute-URL parsing for IdP endpoints and our own redirect URI: `http(s)://`
//! authority, path and query. Strict: anything unusual is refused rather than guessed at.

/// An absolute `http`/`https` URL split into the parts we use.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct AbsoluteUrl<'a> {
    /// Lower-case: `http` or `https`.
    pub scheme: &'static str,
    /// As written (a bracketed IPv6 literal keeps its brackets).
    pub host: &'a str,
    pub port: Option<u16>,
    /// Path and query, without any fragment; empty when the URL has neither.
    pub path_and_query: &'a str,
}

/// Parses `url` as an absolute `http(s)` URL. Refused: other schemes, an empty host, userinfo
/// (`user@host` is a classic way to disguise the real host), a port that is not a number up to
/// 65535, and whitespace, control characters or backslashes anywhere (parsers disagree on
/// them). A fragment is dropped.
pub(crate) fn parse_absolute(url: &str) -> Option<AbsoluteUrl<'_>> {
    if url
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || c == '\\')
    {
        return None;
    }
    let (scheme, rest) = url.split_once("://")?;
    let scheme = if scheme.eq_ignore_ascii_case("https") {
        "https"
    } else if scheme.eq_ignore_ascii_case("http") {
        "http"
    } else {
        return None;
    };
    let rest = rest.split('#').next().unwrap_or("");
    let authority_end = rest.find(['/', '?']).unwrap_or(rest.len());
    let (authority, path_and_query) = rest.split_at_checked(authority_end)?;
    if authority.contains('@') {
        return None;
    }
    let (host, port) = split_host_port(authority)?;
    if host.is_empty() {
        return None;
    }
    Some(AbsoluteUrl {
        scheme,
        host,
        port,
        path_and_query,
    })
}

fn split_host_port(authority: &str) -> Option<(&str, Option<u16>)> {
    let (host, port) = if authority.starts_with('[') {
        let host = authority.split_inclusive(']').next()?;
        if !host.ends_with(']') {
            return None;
        }
        let after = authority.strip_prefix(host)?;
        match after {
            "" => (host, None),
            _ => (host, Some(after.strip_prefix(':')?)),
        }
    } else {
        match authority.split_once(':') {
            Some((host, port)) => (host, Some(port)),
            None => (authority, None),
        }
    };
    let port = match port {
        None => None,
        Some(digits) => {
            if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                return None;
            }
            Some(digits.parse::<u16>().ok()?)
        }
    };
    Some((host, port))
}

/// The path (with query) of an absolute URL, for a call on a cluster:
/// `https://idp/x/token?a` → `/x/token?a`; `https://idp` → `/`. The fragment is dropped.
pub fn url_path(url: &str) -> Option<String> {
    let parsed = parse_absolute(url)?;
    Some(if parsed.path_and_query.starts_with('/') {
        parsed.path_and_query.to_string()
    } else {
        format!("/{}", parsed.path_and_query)
    })
}

/// The origin of an absolute URL, serialised as browsers do (scheme and host lower-cased, a
/// default port omitted): `https://chat.example.com:8443/cb` → `https://chat.example.com:8443`,
/// `HTTPS://Chat.Example.com:443/` → `https://chat.example.com`.
pub fn url_origin(url: &str) -> Option<String> {
    let parsed = parse_absolute(url)?;
    let host = parsed.host.to_ascii_lowercase();
    let default_port = match parsed.scheme {
        "https" => 443,
        _ => 80,
    };
    Some(match parsed.port {
        Some(port) if port != default_port => format!("{}://{host}:{port}", parsed.scheme),
        _ => format!("{}://{host}", parsed.scheme),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths() {
        let cases = [
            ("https://idp/x/token?a", Some("/x/token?a")),
            (
                "https://idp.example.com:8443/realms/r/token",
                Some("/realms/r/token"),
            ),
            ("https://idp", Some("/")),
            ("https://idp/", Some("/")),
            ("https://idp?a=b", Some("/?a=b")),
            ("https://idp/p#frag", Some("/p")),
            ("http://[::1]:8080/t", Some("/t")),
            ("HTTP://idp/t", Some("/t")),
            ("/relative", None),
            ("idp/x", None),
            ("ftp://idp/x", None),
            ("https:///x", None),
            ("https://user@idp/x", None),
            ("https://idp:port/x", None),
            ("https://idp:99999/x", None),
            ("https://idp:/x", None),
            ("https://idp/a b", None),
            ("https://idp\\x/y", None),
            ("https://idp/x\n", None),
            ("", None),
            ("https://", None),
            ("https://[::1/x", None),
            ("https://[::1]x/y", None),
        ];
        for (url, path) in cases {
            assert_eq!(url_path(url).as_deref(), path, "for {url:?}");
        }
    }

    #[test]
    fn origins() {
        let cases = [
            (
                "https://chat.example.com:8443/cb",
                Some("https://chat.example.com:8443"),
            ),
            (
                "https://chat.example.com/cb?x=1",
                Some("https://chat.example.com"),
            ),
            (
                "HTTPS://Chat.Example.COM:443/",
                Some("https://chat.example.com"),
            ),
            ("http://localhost:80/x", Some("http://localhost")),
            (
                "http://localhost:10000/oauth2/callback",
                Some("http://localhost:10000"),
            ),
            ("http://localhost:443", Some("http://localhost:443")),
            ("http://[::1]:8080/x", Some("http://[::1]:8080")),
            (
                "https://chat.example.com?x",
                Some("https://chat.example.com"),
            ),
            ("javascript://x", None),
            ("//chat.example.com/cb", None),
            ("https://evil@chat.example.com/", None),
        ];
        for (url, origin) in cases {
            assert_eq!(url_origin(url).as_deref(), origin, "for {url:?}");
        }
    }
}
