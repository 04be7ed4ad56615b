//! The login flow's state (`state`, `nonce`, PKCE verifier, where to go afterwards), kept in a
//! short-lived signed cookie between the login redirect and the callback, so the filter holds
//! no per-login memory and any worker can serve the callback.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::crypto::constant_time_eq;
use super::signed::{sign_value, verify_value};

/// How long a login may take, from the redirect to the IdP to the callback.
pub const FLOW_TTL_S: u64 = 600;

/// What the callback needs from the login that started it.
///
/// The cookie is signed, not encrypted: the user's own browser can read the PKCE verifier.
/// That is acceptable because the cookie is `HttpOnly`, lives only for the login, and the code
/// it would unlock is also bound to our confidential client credentials and `redirect_uri`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FlowState {
    /// The `state` sent to the IdP; the callback must bring it back (CSRF, RFC 6749 10.12).
    pub state: String,
    /// The `nonce` sent to the IdP; the ID token must carry it (replay, OIDC Core 3.1.2.1).
    pub nonce: String,
    /// The PKCE `code_verifier` (RFC 7636).
    pub verifier: String,
    /// Where to send the browser after login, already sanitised by `sanitize_rd`.
    pub rd: String,
    /// Unix seconds after which the flow is refused.
    pub expires_at: u64,
}

/// Why a callback's flow cookie is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlowError {
    Missing,
    Tampered,
    Expired,
    StateMismatch,
}

impl fmt::Display for FlowError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Missing => "login state cookie is missing",
            Self::Tampered => "login state cookie was tampered with",
            Self::Expired => "login state cookie expired",
            Self::StateMismatch => "state does not match",
        })
    }
}

/// The cookie value carrying `flow`, signed under `secret`.
pub fn seal_flow(secret: &[u8], flow: &FlowState) -> String {
    // Serialising strings and an integer cannot fail; were it ever to, the empty payload would
    // simply be refused as tampered when opened.
    let payload = serde_json::to_vec(flow).unwrap_or_default();
    sign_value(secret, &payload)
}

/// Opens the flow cookie and checks it belongs to this callback: signature, expiry, and `state`
/// equal (constant time) to the callback's.
///
/// The state comparison is what defeats login CSRF: a callback URL crafted by an attacker (with
/// the attacker's own code) carries a state that does not match the victim's cookie. An empty
/// state never matches, so a flow sealed with an empty state cannot be completed.
pub fn open_flow(
    secret: &[u8],
    cookie: Option<&str>,
    callback_state: Option<&str>,
    now: u64,
) -> Result<FlowState, FlowError> {
    let cookie = match cookie {
        Some(value) if !value.is_empty() => value,
        _ => return Err(FlowError::Missing),
    };
    let payload = verify_value(secret, cookie).ok_or(FlowError::Tampered)?;
    let flow: FlowState = serde_json::from_slice(&payload).map_err(|_| FlowError::Tampered)?;
    if now >= flow.expires_at {
        return Err(FlowError::Expired);
    }
    let callback_state = callback_state.unwrap_or("");
    if flow.state.is_empty() || !constant_time_eq(flow.state.as_bytes(), callback_state.as_bytes())
    {
        return Err(FlowError::StateMismatch);
    }
    Ok(flow)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &[u8] = b"flow-secret-flow-secret-flow-sec";
    const NOW: u64 = 1_700_000_000;

    fn flow() -> FlowState {
        FlowState {
            state: "st4te-Token_value".into(),
            nonce: "n0nce".into(),
            verifier: "dBjftJeZ4CVP-mJ92VP0GvU4N_5sMTZo69ieWGHEkiM".into(),
            rd: "/v1/models?x=1".into(),
            expires_at: NOW + FLOW_TTL_S,
        }
    }

    #[test]
    fn seal_then_open() {
        let cookie = seal_flow(SECRET, &flow());
        assert_eq!(
            open_flow(SECRET, Some(&cookie), Some("st4te-Token_value"), NOW),
            Ok(flow())
        );
        assert_eq!(
            open_flow(
                SECRET,
                Some(&cookie),
                Some("st4te-Token_value"),
                NOW + FLOW_TTL_S - 1
            ),
            Ok(flow())
        );
    }

    #[test]
    fn expired() {
        let cookie = seal_flow(SECRET, &flow());
        for now in [NOW + FLOW_TTL_S, NOW + FLOW_TTL_S + 1, u64::MAX] {
            assert_eq!(
                open_flow(SECRET, Some(&cookie), Some("st4te-Token_value"), now),
                Err(FlowError::Expired)
            );
        }
    }

    #[test]
    fn state_mismatch() {
        let cookie = seal_flow(SECRET, &flow());
        for state in [
            Some("other"),
            Some(""),
            Some("st4te-Token_valuf"),
            Some("st4te"),
            None,
        ] {
            assert_eq!(
                open_flow(SECRET, Some(&cookie), state, NOW),
                Err(FlowError::StateMismatch)
            );
        }
        let empty = seal_flow(
            SECRET,
            &FlowState {
                state: String::new(),
                ..flow()
            },
        );
        assert_eq!(
            open_flow(SECRET, Some(&empty), Some(""), NOW),
            Err(FlowError::StateMismatch)
        );
    }

    #[test]
    fn missing() {
        assert_eq!(
            open_flow(SECRET, None, Some("x"), NOW),
            Err(FlowError::Missing)
        );
        assert_eq!(
            open_flow(SECRET, Some(""), Some("x"), NOW),
            Err(FlowError::Missing)
        );
    }

    #[test]
    fn tampered() {
        let cookie = seal_flow(SECRET, &flow());
        let state = Some("st4te-Token_value");
        // Signed under another secret.
        let other = seal_flow(b"another-secret-another-secret-an", &flow());
        assert_eq!(
            open_flow(SECRET, Some(&other), state, NOW),
            Err(FlowError::Tampered)
        );
        // A modified payload with the old MAC.
        let (_, mac) = cookie.split_once('.').unwrap();
        let mut longer = flow();
        longer.expires_at = u64::MAX;
        let forged_body = seal_flow(SECRET, &longer);
        let (body, _) = forged_body.split_once('.').unwrap();
        let forged = format!("{body}.{mac}");
        assert_eq!(
            open_flow(SECRET, Some(&forged), state, NOW),
            Err(FlowError::Tampered)
        );
        // Garbage.
        for junk in ["x", "a.b", ".", "....", "%%%"] {
            assert_eq!(
                open_flow(SECRET, Some(junk), state, NOW),
                Err(FlowError::Tampered)
            );
        }
        // A genuine signature over something that is not a flow.
        for payload in [&b"not json"[..], b"{}", b"{\"state\":1}", b"[]"] {
            let value = sign_value(SECRET, payload);
            assert_eq!(
                open_flow(SECRET, Some(&value), state, NOW),
                Err(FlowError::Tampered)
            );
        }
        let extra = sign_value(
            SECRET,
            br#"{"state":"s","nonce":"n","verifier":"v","rd":"/","expires_at":9999999999,"x":1}"#,
        );
        assert_eq!(
            open_flow(SECRET, Some(&extra), Some("s"), NOW),
            Err(FlowError::Tampered)
        );
    }

    #[test]
    fn messages() {
        assert_eq!(
            FlowError::Missing.to_string(),
            "login state cookie is missing"
        );
        assert_eq!(
            FlowError::Tampered.to_string(),
            "login state cookie was tampered with"
        );
        assert_eq!(FlowError::Expired.to_string(), "login state cookie expired");
        assert_eq!(FlowError::StateMismatch.to_string(), "state does not match");
    }
}
