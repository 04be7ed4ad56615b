//! Signed cookie values: `base64url(payload) "." base64url(HMAC-SHA256(secret, first part))`.
//! They are signed, not encrypted: the browser can read the payload, so nothing confidential
//! beyond what the cookie's owner may see goes in it.

use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;

use super::crypto::{constant_time_eq, hmac_sha256};

/// Signs `payload` under `secret`. The secret should be at least 32 random bytes (the config
/// checks that); this function cannot refuse a weak one.
pub fn sign_value(secret: &[u8], payload: &[u8]) -> String {
    let body = URL_SAFE_NO_PAD.encode(payload);
    let mac = URL_SAFE_NO_PAD.encode(hmac_sha256(secret, body.as_bytes()));
    format!("{body}.{mac}")
}

/// The payload of a value made by [`sign_value`] under the same secret; `None` if the value is
/// malformed or its MAC does not match.
///
/// The MAC is recomputed over the first part exactly as received and compared, in constant
/// time, with the second part as *text*: comparing the encoded form (rather than decoded bytes)
/// means no alternative encoding of the same MAC (e.g. different unused trailing bits) is
/// accepted, so any change to any byte of the value is refused. The payload is decoded only
/// after the MAC matched.
pub fn verify_value(secret: &[u8], value: &str) -> Option<Vec<u8>> {
    let (body, mac) = value.split_once('.')?;
    let expected = URL_SAFE_NO_PAD.encode(hmac_sha256(secret, body.as_bytes()));
    if !constant_time_eq(expected.as_bytes(), mac.as_bytes()) {
        return None;
    }
    URL_SAFE_NO_PAD.decode(body).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";

    #[test]
    fn round_trip() {
        for payload in [&b""[..], b"x", b"{\"a\":1}", &[0u8, 255, 128, 46, 61][..]] {
            let value = sign_value(SECRET, payload);
            assert_eq!(verify_value(SECRET, &value).as_deref(), Some(payload));
        }
    }

    #[test]
    fn value_is_cookie_safe() {
        let value = sign_value(SECRET, b"any \x00 bytes; \"here\"");
        assert!(value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-_.".contains(&b)));
        assert_eq!(value.matches('.').count(), 1);
    }

    #[test]
    fn every_single_byte_tamper_is_refused() {
        let value = sign_value(SECRET, b"{\"state\":\"abc\",\"expires_at\":1700000000}");
        let replacements: Vec<u8> = (0u8..=127).collect();
        for index in 0..value.len() {
            for &replacement in &replacements {
                let mut bytes = value.clone().into_bytes();
                if bytes[index] == replacement {
                    continue;
                }
                bytes[index] = replacement;
                let tampered = String::from_utf8(bytes).unwrap();
                assert_eq!(
                    verify_value(SECRET, &tampered),
                    None,
                    "accepted {tampered:?}"
                );
            }
        }
        // Dropping or appending a byte is refused too.
        for index in 0..value.len() {
            let mut shorter = value.clone();
            shorter.remove(index);
            assert_eq!(verify_value(SECRET, &shorter), None);
        }
        assert_eq!(verify_value(SECRET, &format!("{value}A")), None);
        assert_eq!(verify_value(SECRET, &format!("A{value}")), None);
    }

    #[test]
    fn wrong_secret_is_refused() {
        let value = sign_value(SECRET, b"payload");
        assert_eq!(
            verify_value(b"another secret of 32 bytes long!", &value),
            None
        );
        assert_eq!(verify_value(b"", &value), None);
    }

    #[test]
    fn garbage_never_panics() {
        let mac_of_empty = URL_SAFE_NO_PAD.encode(hmac_sha256(SECRET, b""));
        let cases = [
            String::new(),
            ".".into(),
            "..".into(),
            "a.b".into(),
            "a.b.c".into(),
            "é.ü".into(),
            "\u{0}.\u{0}".into(),
            "====.====".into(),
            "!!!.".into(),
            "x".repeat(10_000),
            format!("{}.{}", "A".repeat(5), "B".repeat(43)),
            format!(".{mac_of_empty}"),
            format!("!.{}", URL_SAFE_NO_PAD.encode(hmac_sha256(SECRET, b"!"))),
        ];
        for case in &cases {
            let _ = verify_value(SECRET, case);
        }
        // An empty payload with a genuine MAC is a valid (empty) value.
        assert_eq!(verify_value(SECRET, &cases[11]), Some(vec![]));
        // A genuine MAC over a first part that is not base64url still yields nothing.
        assert_eq!(verify_value(SECRET, &cases[12]), None);
    }
}
