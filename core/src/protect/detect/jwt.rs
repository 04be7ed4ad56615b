//! `jwt`: a JSON Web Token in compact form, `header.payload.signature`.
//!
//! The header and the payload start with `eyJ` (base64url of `{"`), all three parts are
//! base64url (`[A-Za-z0-9_-]`, no padding), the signature may be empty (`alg: none`), and the
//! header must decode to a JSON object with an `"alg"` member. Not preceded by a base64url
//! character. A token is at most [`MAX_BYTES`]: a longer one whose header is valid and whose
//! payload has started is masked up to that many bytes (the rest of it, a piece of payload or
//! signature, is not); one whose header or `.eyJ` does not fit is not a match.

use base64::alphabet::URL_SAFE;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

use super::text::{is_base64url, Src};

/// The longest token reported, and so the most a stream holds back.
pub(super) const MAX_BYTES: usize = 8 * 1024;

/// Lenient about the unused bits of the last character (some encoders set them).
const BASE64URL: GeneralPurpose = GeneralPurpose::new(
    &URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone)
        .with_decode_allow_trailing_bits(true),
);

/// The token at `s` (a word start whose first byte is `e`): its end.
pub(super) fn at(src: &Src, s: usize) -> Option<usize> {
    if src.before(s) == Some(b'-') || !src.starts_with(s, b"eyJ") {
        return None;
    }
    let cap = s + MAX_BYTES;
    let (header_end, capped) = run(src, s + 3, cap);
    if capped || src.at(header_end)? != b'.' || !header_ok(src.bytes.get(s..header_end)?) {
        return None;
    }
    let payload = header_end + 1;
    if payload + 3 > cap || !src.starts_with(payload, b"eyJ") {
        return None;
    }
    let (payload_end, capped) = run(src, payload + 3, cap);
    if capped {
        return Some(cap);
    }
    if src.at(payload_end)? != b'.' {
        return None;
    }
    let (end, _) = run(src, payload_end + 1, cap);
    Some(end)
}

/// The end of the base64url run at `i`, and whether it reached `cap` (and was cut there).
fn run(src: &Src, mut i: usize, cap: usize) -> (usize, bool) {
    while i < cap {
        match src.at(i) {
            Some(b) if is_base64url(b) => i += 1,
            _ => return (i, false),
        }
    }
    (cap, true)
}

/// Whether `header` is base64url of a JSON object with an `"alg"` member.
fn header_ok(header: &[u8]) -> bool {
    let Ok(json) = BASE64URL.decode(header) else {
        return false;
    };
    serde_json::from_slice::<serde_json::Map<String, serde_json::Value>>(&json)
        .is_ok_and(|object| object.contains_key("alg"))
}
