use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::matches;
use crate::protect::detect::{Kind, MAX_UNDECIDED_BYTES};

/// The jwt.io example.
pub(in crate::protect::detect::tests) const JWT_IO: &str = "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c";

fn b64(json: &str) -> String {
    URL_SAFE_NO_PAD.encode(json)
}

pub(in crate::protect::detect::tests) fn token(header: &str, payload: &str, sig: &str) -> String {
    format!("{}.{}.{sig}", b64(header), b64(payload))
}

fn jwts(text: &str) -> Vec<&str> {
    matches(Kind::Jwt, text)
}

#[test]
fn finds_tokens() {
    assert_eq!(jwts(JWT_IO), [JWT_IO]);
    for text in [
        format!("Authorization: Bearer {JWT_IO}\r\n"),
        format!("{{\"token\":\"{JWT_IO}\"}}"),
        format!("id_token={JWT_IO}&state=x"),
        format!("令牌：{JWT_IO}。"),
    ] {
        assert_eq!(jwts(&text), [JWT_IO], "{text}");
    }
    let rs = token(
        r#"{"alg":"RS256","kid":"k1"}"#,
        r#"{"sub":"u","scope":"a b"}"#,
        "c2lnbmF0dXJl-_x",
    );
    assert_eq!(jwts(&format!("t {rs} ")), [rs.as_str()]);
    // `alg: none`: the signature is empty.
    let unsigned = token(r#"{"alg":"none"}"#, r#"{"sub":"u"}"#, "");
    assert!(unsigned.ends_with('.'));
    assert_eq!(jwts(&format!("{unsigned} next")), [unsigned.as_str()]);
}

#[test]
fn rejects_what_is_not_a_token() {
    let no_alg = token(r#"{"typ":"JWT"}"#, r#"{"sub":"u"}"#, "sig");
    let not_json = format!("{}.{}.sig", b64(r#"{"alg":"#), b64(r#"{"sub":"u"}"#));
    let array = format!("{}.{}.sig", b64(r#"[{"alg":1}]"#), b64(r#"{"sub":"u"}"#));
    let payload_not_json_object =
        format!("{}.{}.sig", b64(r#"{"alg":"HS256"}"#), b64("hello world"));
    let two_parts = format!("{}.{}", b64(r#"{"alg":"HS256"}"#), b64(r#"{"sub":"u"}"#));
    for text in [
        no_alg,
        not_json,
        array,
        payload_not_json_object,
        two_parts,
        format!("-{JWT_IO}"),
        format!("x{JWT_IO}"),
        format!("_{JWT_IO}"),
        "eyJ.eyJ.eyJ".to_string(),
        "eyJhbGciOiJIUzI1NiJ9".to_string(),
    ] {
        assert!(jwts(&text).is_empty(), "{text}");
    }
}

#[test]
fn a_token_longer_than_the_cap_is_masked_up_to_it() {
    let payload = format!(r#"{{"data":"{}"}}"#, "x".repeat(10_000));
    let long = token(r#"{"alg":"HS256"}"#, &payload, "sig");
    assert!(long.len() > MAX_UNDECIDED_BYTES);
    let text = format!("a {long} b");
    assert_eq!(jwts(&text), [&long[..MAX_UNDECIDED_BYTES]]);
    // A header that alone does not fit is no token.
    let header = format!(r#"{{"alg":"HS256","x":"{}"}}"#, "y".repeat(7000));
    let huge_header = token(&header, r#"{"sub":"u"}"#, "sig");
    assert!(jwts(&huge_header).is_empty());
}
