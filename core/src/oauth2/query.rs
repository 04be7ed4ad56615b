//! Query strings and `application/x-www-form-urlencoded` bodies: parsing (tolerant, since the
//! input is whatever a browser or attacker sent) and encoding (strict, since IdPs read it).

/// Splits a query string (without the leading `?`) into decoded `(name, value)` pairs, in order.
/// Pairs are separated by `&`; empty pieces are skipped; a piece without `=` has an empty value.
/// `+` is a space and `%XX` a byte; an invalid escape is kept literally, and bytes that are not
/// UTF-8 become U+FFFD, so no input is an error.
pub fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| {
            let (name, value) = piece.split_once('=').unwrap_or((piece, ""));
            (form_decode(name), form_decode(value))
        })
        .collect()
}

/// The first value of `name`. Taking the first (rather than refusing duplicates) is safe for
/// our parameters because each one is then checked on its own (state against the cookie, code
/// by the IdP).
pub fn query_value<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
}

/// The first value of `name` in `query` as sent, still percent-encoded: for
/// [`sanitize_rd`](super::sanitize_rd), which must see the value before any decoding. Names
/// are compared after decoding, like [`parse_query`] does.
pub fn raw_query_value<'a>(query: &'a str, name: &str) -> Option<&'a str> {
    query
        .split('&')
        .filter(|piece| !piece.is_empty())
        .map(|piece| piece.split_once('=').unwrap_or((piece, "")))
        .find(|(n, _)| form_decode(n) == name)
        .map(|(_, v)| v)
}

/// `name=value&...`, each name and value form-urlencoded (unreserved characters kept, space
/// as `+`, every other byte `%XX`).
pub fn form_encode(pairs: &[(&str, &str)]) -> String {
    let mut out = String::new();
    for (index, (name, value)) in pairs.iter().enumerate() {
        if index > 0 {
            out.push('&');
        }
        out.push_str(&form_urlencode(name));
        out.push('=');
        out.push_str(&form_urlencode(value));
    }
    out
}

/// `application/x-www-form-urlencoded` encoding of one name or value: RFC 3986 unreserved
/// characters (`A-Z a-z 0-9 - . _ ~`) are kept, a space becomes `+`, every other byte `%XX`
/// (upper-case hex). Also the encoding RFC 6749 2.3.1 asks for the client id and secret.
pub(crate) fn form_urlencode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else if byte == b' ' {
            out.push('+');
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

/// Form decoding of one name or value: `+` is a space, then [`percent_decode`].
fn form_decode(text: &str) -> String {
    let decoded = percent_decode_bytes(text.as_bytes(), true);
    String::from_utf8_lossy(&decoded).into_owned()
}

/// RFC 3986 percent-decoding only (`+` stays `+`); invalid escapes are kept literally and
/// bytes that are not UTF-8 become U+FFFD.
pub(crate) fn percent_decode(text: &str) -> String {
    let decoded = percent_decode_bytes(text.as_bytes(), false);
    String::from_utf8_lossy(&decoded).into_owned()
}

fn percent_decode_bytes(input: &[u8], plus_as_space: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut rest = input;
    while let Some((&byte, tail)) = rest.split_first() {
        rest = tail;
        match byte {
            b'%' => {
                let escape = match tail {
                    [high, low, ..] => hex_value(*high).zip(hex_value(*low)),
                    _ => None,
                };
                match (escape, tail) {
                    (Some((high, low)), [_, _, after @ ..]) => {
                        out.push(high << 4 | low);
                        rest = after;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' if plus_as_space => out.push(b' '),
            _ => out.push(byte),
        }
    }
    out
}

fn hex_value(digit: u8) -> Option<u8> {
    char::from(digit)
        .to_digit(16)
        .and_then(|value| u8::try_from(value).ok())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, String)> {
        list.iter()
            .map(|(n, v)| (n.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn parses_and_decodes() {
        assert_eq!(
            parse_query("code=a%2Fb&state=x+y&empty=&flag&&rd=%2Fv1%3Fq%3D1"),
            pairs(&[
                ("code", "a/b"),
                ("state", "x y"),
                ("empty", ""),
                ("flag", ""),
                ("rd", "/v1?q=1")
            ])
        );
        assert_eq!(parse_query(""), vec![]);
        assert_eq!(parse_query("a=b=c"), pairs(&[("a", "b=c")]));
        assert_eq!(parse_query("%61=%C3%A9"), pairs(&[("a", "é")]));
    }

    #[test]
    fn invalid_escapes_are_kept_and_bad_utf8_is_lossy() {
        assert_eq!(
            parse_query("a=%&b=%4&c=%zz&d=%4g&e=100%25&f=%"),
            pairs(&[
                ("a", "%"),
                ("b", "%4"),
                ("c", "%zz"),
                ("d", "%4g"),
                ("e", "100%"),
                ("f", "%")
            ])
        );
        assert_eq!(parse_query("a=%FF%FE"), pairs(&[("a", "\u{FFFD}\u{FFFD}")]));
        assert_eq!(parse_query("a=%C3"), pairs(&[("a", "\u{FFFD}")]));
        assert_eq!(parse_query("é=ü"), pairs(&[("é", "ü")]));
    }

    #[test]
    fn first_value_wins() {
        let parsed = parse_query("state=1&state=2&code=c");
        assert_eq!(query_value(&parsed, "state"), Some("1"));
        assert_eq!(query_value(&parsed, "code"), Some("c"));
        assert_eq!(query_value(&parsed, "nope"), None);
        assert_eq!(query_value(&parsed, "STATE"), None);
    }

    #[test]
    fn raw_values() {
        let query = "code=c&rd=%2Fv1%2Fx%3Fy%3D1&r%64=second&flag&rd=third";
        assert_eq!(raw_query_value(query, "rd"), Some("%2Fv1%2Fx%3Fy%3D1"));
        assert_eq!(raw_query_value(query, "flag"), Some(""));
        assert_eq!(raw_query_value(query, "nope"), None);
        assert_eq!(raw_query_value("", "rd"), None);
        assert_eq!(raw_query_value("r%64=x", "rd"), Some("x"));
    }

    #[test]
    fn encodes() {
        assert_eq!(
            form_encode(&[
                ("a b", "c&d=e"),
                ("x", "/p?q#r"),
                ("u", "A-z_0.9~"),
                ("e", "é")
            ]),
            "a+b=c%26d%3De&x=%2Fp%3Fq%23r&u=A-z_0.9~&e=%C3%A9"
        );
        assert_eq!(form_encode(&[]), "");
        assert_eq!(form_encode(&[("k", "")]), "k=");
        assert_eq!(form_urlencode("+%"), "%2B%25");
    }

    #[test]
    fn encode_then_parse_round_trips() {
        let values = [
            "plain",
            "with space",
            "a+b",
            "100%",
            "%41",
            "&=?#/\\",
            "é ü 日本",
            "\u{0}\r\n",
            "",
        ];
        for value in values {
            let encoded = form_encode(&[("k", value), ("v", value)]);
            assert_eq!(parse_query(&encoded), pairs(&[("k", value), ("v", value)]));
        }
    }

    #[test]
    fn percent_decode_keeps_plus() {
        assert_eq!(percent_decode("a+b%20c%2"), "a+b c%2");
    }
}
