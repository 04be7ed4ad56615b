//! Where the browser goes after login (`rd`). It comes from the login URL, which anyone can
//! craft, so only a same-origin relative reference is kept: anything else would make the login
//! endpoint an open redirector (RFC 6749 10.15, OAuth 2.0 Security BCP 4.11).

use super::query::percent_decode;

/// Values longer than this are refused (a browser redirect target has no need for more, and
/// it bounds the work done on hostile input).
const MAX_RD_BYTES: usize = 2048;

/// How many further decodings are checked after the first (see [`sanitize_rd`]). A value still
/// changing after that many is nested encoding with no honest purpose and is refused.
const MAX_EXTRA_DECODINGS: usize = 3;

/// What the browser is sent to when `rd` is absent or refused.
const FALLBACK: &str = "/";

/// The post-login target from the raw (still percent-encoded) `rd` query value: a same-origin
/// path such as `/x` or `/x?y`, or `/` when `rd` is absent or anything else.
///
/// Pass the value as it appears in the query ([`raw_query_value`](super::raw_query_value)),
/// not a value already decoded by [`parse_query`](super::parse_query): decoding it twice
/// stays safe (every level is checked) but turns a legitimate `%20` in the target into a
/// space, which is refused.
///
/// Decoding: the value is percent-decoded **exactly once** (the query layer's decoding; `+`
/// is kept as `+`, which means the same in the target's query and is harmless in a path), and
/// that once-decoded string is the target returned. The safety rules, however, are checked on
/// that string *and* on each further decoding of it, because browsers and upstream servers may
/// decode `%2F`, `%5C` and `%2e` in a path again (`/%2F%2Fevil` is `//evil` to some of them;
/// `%2e%2e` is a `..` segment to WHATWG URL parsers).
///
/// Rules, at every decoding level:
/// - it starts with `/` and its second character is neither `/` nor `\` (`//host` and `/\host`
///   are network-path references: another origin);
/// - no `\` anywhere (browsers read it as `/` in http(s) URLs);
/// - no control characters (browsers strip tab and newline, so `/\t/evil` becomes `//evil`;
///   CR/LF would split the `Location` header);
/// - no `.` or `..` path segment (normalising `/../..//evil` yields `//evil`).
///
/// And the returned (once-decoded) string uses only RFC 3986 URL characters (printable ASCII
/// minus space, `"`, `<`, `>`, `[`, `]`, `\`, `^`, `` ` ``, `{`, `|`, `}`), so it is a valid
/// `Location` value as is. Leading whitespace is not trimmed: `"   /x"` is refused.
pub fn sanitize_rd(raw: Option<&str>) -> String {
    match raw {
        Some(raw) if raw.len() <= MAX_RD_BYTES => match checked_target(raw) {
            Some(target) => target,
            None => FALLBACK.to_string(),
        },
        _ => FALLBACK.to_string(),
    }
}

fn checked_target(raw: &str) -> Option<String> {
    let target = percent_decode(raw);
    if !target.bytes().all(is_url_byte) || !is_safe_local_path(&target) {
        return None;
    }
    let mut level = target.clone();
    for _ in 0..MAX_EXTRA_DECODINGS {
        let next = percent_decode(&level);
        if next == level {
            return Some(target);
        }
        if !is_safe_local_path(&next) {
            return None;
        }
        level = next;
    }
    (percent_decode(&level) == level).then_some(target)
}

/// RFC 3986 characters: unreserved, reserved (less `[` and `]`, which only belong in an IPv6
/// host), and `%`.
fn is_url_byte(byte: u8) -> bool {
    byte.is_ascii_alphanumeric() || b"-._~:/?#@!$&'()*+,;=%".contains(&byte)
}

fn is_safe_local_path(text: &str) -> bool {
    let mut chars = text.chars();
    if chars.next() != Some('/') || matches!(chars.next(), Some('/' | '\\')) {
        return false;
    }
    if text.chars().any(|c| c == '\\' || c.is_control()) {
        return false;
    }
    let path = text.split(['?', '#']).next().unwrap_or("");
    !path.split('/').any(is_dot_segment)
}

/// `.` or `..`, also with a `;` parameter (`..;` is `..` to some servlet containers).
fn is_dot_segment(segment: &str) -> bool {
    let name = segment.split(';').next().unwrap_or(segment);
    name == "." || name == ".."
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hostile_values_become_root() {
        let hostile = [
            "//evil.test",
            "/\\evil.test",
            "\\\\evil",
            "\\/evil.test",
            "https://evil.test",
            "HTTPS://evil.test",
            "http:/evil",
            "http:evil",
            "javascript:alert(1)",
            "JaVaScRiPt:alert(1)",
            "data:text/html,<script>alert(1)</script>",
            "/%2F%2Fevil.test",
            "%2F%2Fevil.test",
            "%2f%2fevil.test",
            "/%2fevil.test",
            "/%5Cevil.test",
            "/%5cevil.test",
            "%5C%5Cevil",
            "/%252F%252Fevil.test",
            "/%25252F%25252Fevil.test",
            "/%2525252F%2525252Fevil.test",
            "/\u{0}",
            "/%00",
            "/x\r\nLocation: //evil",
            "/x%0D%0ALocation:%20//evil",
            "/\t/evil.test",
            "/%09/evil.test",
            "",
            "evil.test",
            "/.%2e/%2e%2e//evil",
            "/../..//evil",
            "/x/../../evil",
            "/x/%2e%2e/y",
            "/x/%252e%252e/y",
            "/./x",
            "/x/..;/y",
            "/x/.",
            "   /x",
            "%20/x",
            "/x y",
            "/x?y=\\evil",
            "/x?y=%5Cevil",
            "/x\"onload",
            "/<script>",
            "/é",
            "/%C3%A9",
            "/%FF",
            "?x=1",
            "#frag",
        ];
        for value in hostile {
            assert_eq!(sanitize_rd(Some(value)), "/", "kept {value:?}");
        }
        assert_eq!(sanitize_rd(None), "/");
        assert_eq!(
            sanitize_rd(Some(&format!("/{}", "a".repeat(MAX_RD_BYTES)))),
            "/"
        );
    }

    #[test]
    fn good_values_are_kept() {
        let good = [
            ("/", "/"),
            ("/v1/x?y=1", "/v1/x?y=1"),
            ("/v1/chat/completions", "/v1/chat/completions"),
            ("/x?y", "/x?y"),
            ("/x#section", "/x#section"),
            ("/a//b", "/a//b"),
            ("/x?next=//elsewhere", "/x?next=//elsewhere"),
            ("/x?a=b+c", "/x?a=b+c"),
            ("/file.txt", "/file.txt"),
            ("/...", "/..."),
            ("/x/.hidden", "/x/.hidden"),
            ("/a:b@c", "/a:b@c"),
            // The query layer's encoding is removed once.
            ("%2Fv1%2Fx%3Fy%3D1", "/v1/x?y=1"),
            ("/v1/chat?model=a%2520b", "/v1/chat?model=a%20b"),
            ("/path%2520with%2520space", "/path%20with%20space"),
        ];
        for (raw, kept) in good {
            assert_eq!(sanitize_rd(Some(raw)), kept, "for {raw:?}");
        }
    }
}
