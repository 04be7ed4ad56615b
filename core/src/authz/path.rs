//! The request path as rules see it. Rules are matched on the path the upstream will act on,
//! so any spelling that different components could read differently is refused rather than
//! guessed at: encoded slashes and backslashes, dot segments (plain or percent-encoded), empty
//! segments, `;` parameters, backslashes, control and non-ASCII bytes, malformed escapes, and
//! escapes of `%`, `?` and `#` (read again, the decoded path would decode further or end early).
//! Envoy's `normalize_path` / `merge_slashes` may already have cleaned the path; when they are
//! off, this check alone keeps matching safe.

use std::borrow::Cow;
use std::fmt;

/// Why a path is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PathError {
    NotAbsolute,
    ForbiddenCharacter,
    Backslash,
    EncodedSeparator,
    DotSegment,
    EmptySegment,
    Parameter,
    BadEscape,
    EncodedDelimiter,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::NotAbsolute => "path must start with /",
            Self::ForbiddenCharacter => "path contains a control or non-ASCII character",
            Self::Backslash => "path contains a backslash",
            Self::EncodedSeparator => "path contains an encoded slash, backslash or NUL",
            Self::DotSegment => "path contains a dot segment",
            Self::EmptySegment => "path contains an empty segment",
            Self::Parameter => "path contains a ; parameter",
            Self::BadEscape => "path contains a malformed percent-encoding",
            Self::EncodedDelimiter => "path contains an encoded %, ? or #",
        })
    }
}

/// The path of `target` as the upstream will act on it: query and fragment dropped,
/// percent-escapes decoded (upstreams such as Go's `net/http` route on the decoded path, so
/// `/v1/%63hat` is `/v1/chat` to them and must be to the rules too), once every check passed.
/// The result is a fixed point: `route_path` of it (its non-ASCII characters escaped again, as
/// raw ones are refused) is itself.
pub fn route_path(target: &str) -> Result<Cow<'_, str>, PathError> {
    let end = target.find(['?', '#']).unwrap_or(target.len());
    let raw = target.get(..end).unwrap_or(target);
    if !raw.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    let path = decode(raw)?;
    if path == "/" {
        return Ok(path);
    }
    // One trailing slash is allowed (`/v1/models/`); rules ignore it when matching.
    let body = path.get(1..).unwrap_or("");
    let body = body.strip_suffix('/').unwrap_or(body);
    for segment in body.split('/') {
        if segment.is_empty() {
            return Err(PathError::EmptySegment);
        }
        if segment == "." || segment == ".." {
            return Err(PathError::DotSegment);
        }
    }
    Ok(path)
}

/// Checks the raw bytes and decodes percent-escapes. Escapes that would change the path's
/// structure or smuggle control bytes (`/`, `\`, `;`, NUL and other controls) are refused, and
/// so are `%`, `?` and `#`: `/v1/%2563hat` is `/v1/%63hat` to an upstream that decodes once but
/// `/v1/chat` to one that decodes twice (as `sanitize_rd` knows), and `/a%3F/b` is `/a` to
/// whatever parses the decoded path as a URL. Decoded bytes must form UTF-8.
fn decode(raw: &str) -> Result<Cow<'_, str>, PathError> {
    let bytes = raw.as_bytes();
    let mut decoded: Option<Vec<u8>> = None;
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let byte = match b {
            0x00..=0x1f | 0x7f..=0xff => return Err(PathError::ForbiddenCharacter),
            b'\\' => return Err(PathError::Backslash),
            b';' => return Err(PathError::Parameter),
            b'%' => {
                let value = bytes
                    .get(i + 1..i + 3)
                    .and_then(|hex| std::str::from_utf8(hex).ok())
                    .and_then(|hex| u8::from_str_radix(hex, 16).ok())
                    .ok_or(PathError::BadEscape)?;
                match value {
                    b'/' | b'\\' | 0 => return Err(PathError::EncodedSeparator),
                    b';' => return Err(PathError::Parameter),
                    b'%' | b'?' | b'#' => return Err(PathError::EncodedDelimiter),
                    0x01..=0x1f | 0x7f => return Err(PathError::ForbiddenCharacter),
                    _ => {}
                }
                let out =
                    decoded.get_or_insert_with(|| bytes.get(..i).unwrap_or_default().to_vec());
                out.push(value);
                i += 3;
                continue;
            }
            other => other,
        };
        if let Some(out) = decoded.as_mut() {
            out.push(byte);
        }
        i += 1;
    }
    match decoded {
        None => Ok(Cow::Borrowed(raw)),
        Some(out) => String::from_utf8(out)
            .map(Cow::Owned)
            .map_err(|_| PathError::BadEscape),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clean_paths_pass_without_query_or_fragment() {
        for (target, path) in [
            ("/", "/"),
            ("/v1/chat/completions", "/v1/chat/completions"),
            (
                "/v1/chat/completions?stream=true&x=/other",
                "/v1/chat/completions",
            ),
            ("/v1/models/", "/v1/models/"),
            ("/v1/models/qwen3:32b", "/v1/models/qwen3:32b"),
            ("/a%20b/c%41", "/a b/cA"),
            ("/v1/%63hat/completions", "/v1/chat/completions"),
            ("/v1/history/%E5%9B%A2%E9%98%9F", "/v1/history/团队"),
            ("/files/a.b/..c/...", "/files/a.b/..c/..."),
            ("/x#frag", "/x"),
            ("/?q", "/"),
        ] {
            assert_eq!(route_path(target).as_deref(), Ok(path), "{target}");
        }
    }

    #[test]
    fn accepted_paths_are_fixed_points() {
        for target in ["/a%20b/c%41", "/v1/%63hat/completions", "/v1/%25%3F", "/?q"] {
            if let Ok(path) = route_path(target) {
                assert_eq!(route_path(&path).as_deref(), Ok(&*path), "{target}");
            }
        }
        let path = route_path("/v1/history/%E5%9B%A2").unwrap();
        assert_eq!(path, "/v1/history/团");
        assert_eq!(route_path("/v1/history/%E5%9B%A2").as_deref(), Ok(&*path));
    }

    #[test]
    fn ambiguous_spellings_are_refused() {
        let cases: &[(&str, PathError)] = &[
            ("", PathError::NotAbsolute),
            ("v1/chat", PathError::NotAbsolute),
            ("*", PathError::NotAbsolute),
            ("http://evil/v1/chat", PathError::NotAbsolute),
            ("//v1/chat/completions", PathError::EmptySegment),
            ("/v1//chat/completions", PathError::EmptySegment),
            ("/v1/chat/completions//", PathError::EmptySegment),
            ("/v1/./chat/completions", PathError::DotSegment),
            ("/v1/x/../chat/completions", PathError::DotSegment),
            ("/v1/chat/completions/..", PathError::DotSegment),
            ("/v1/%2e%2e/chat", PathError::DotSegment),
            ("/v1/%2E/chat", PathError::DotSegment),
            ("/v1/.%2e/chat", PathError::DotSegment),
            ("/v1%2Fchat%2Fcompletions", PathError::EncodedSeparator),
            ("/v1/chat%2fcompletions", PathError::EncodedSeparator),
            ("/v1%5Cchat", PathError::EncodedSeparator),
            ("/v1/chat%00", PathError::EncodedSeparator),
            ("/v1/chat%3Bx", PathError::Parameter),
            ("/v1/chat%0d%0aX: y", PathError::ForbiddenCharacter),
            ("/v1/%ff", PathError::BadEscape),
            ("/v1\\chat\\completions", PathError::Backslash),
            ("/v1/chat/completions;x=1", PathError::Parameter),
            ("/v1;/chat/completions", PathError::Parameter),
            ("/v1/chat\u{7f}", PathError::ForbiddenCharacter),
            ("/v1/ch\tat", PathError::ForbiddenCharacter),
            ("/v1/chät", PathError::ForbiddenCharacter),
            ("/v1/%zz", PathError::BadEscape),
            ("/v1/%2", PathError::BadEscape),
            ("/v1/%", PathError::BadEscape),
            // Found by the `paths_rules` fuzz target: each decoded to a path that
            // `route_path` reads differently again.
            ("/v1/history/%2541", PathError::EncodedDelimiter),
            ("/v1/%2563hat", PathError::EncodedDelimiter),
            ("/v1/100%25", PathError::EncodedDelimiter),
            ("/v1/models%3F/x", PathError::EncodedDelimiter),
            ("/v1/models%23x", PathError::EncodedDelimiter),
        ];
        for (target, error) in cases {
            assert_eq!(route_path(target).as_deref(), Err(error), "{target:?}");
        }
    }
}
