//! The token request of the authorization-code grant (RFC 6749 4.1.3, RFC 7636 4.5) and its
//! response (RFC 6749 5.1, 5.2).

use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use serde_json::{Map, Value};

use super::discovery::ClientAuth;
use super::query::{form_encode, form_urlencode};

/// The longest OAuth error code we repeat in a message.
const MAX_ERROR_CODE_CHARS: usize = 64;

/// The headers and form body of the token request.
///
/// With [`ClientAuth::Basic`], `Authorization: Basic base64(urlencode(id) ":" urlencode(secret))`
/// (RFC 6749 2.3.1 requires the form-encoding first, so a `:` in the id or secret cannot shift
/// the split). With [`ClientAuth::Post`], `client_secret` goes in the body. `client_id` is in the
/// body either way (RFC 6749 4.1.3 asks for it when the client is not authenticated otherwise;
/// servers accept it alongside Basic).
pub fn token_request(
    code: &str,
    verifier: &str,
    redirect_uri: &str,
    client_id: &str,
    client_secret: &str,
    auth: ClientAuth,
) -> (Vec<(String, String)>, String) {
    let mut headers = vec![
        (
            "content-type".to_string(),
            "application/x-www-form-urlencoded".to_string(),
        ),
        ("accept".to_string(), "application/json".to_string()),
    ];
    let mut form = vec![
        ("grant_type", "authorization_code"),
        ("code", code),
        ("redirect_uri", redirect_uri),
        ("code_verifier", verifier),
        ("client_id", client_id),
    ];
    match auth {
        ClientAuth::Basic => {
            let credentials = format!(
                "{}:{}",
                form_urlencode(client_id),
                form_urlencode(client_secret)
            );
            headers.push((
                "authorization".to_string(),
                format!("Basic {}", STANDARD.encode(credentials)),
            ));
        }
        ClientAuth::Post => form.push(("client_secret", client_secret)),
    }
    (headers, form_encode(&form))
}

/// What the login needs from a successful token response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenResponse {
    pub id_token: String,
    pub access_token: Option<String>,
    pub scope: Option<String>,
}

/// Why the token endpoint's answer brought no ID token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TokenExchangeError {
    /// The OAuth error `invalid_grant` (RFC 6749 5.2): the code is invalid, expired, already
    /// used (a replayed callback), or was issued for another client or redirect URI. The
    /// browser's fault, not the IdP's: the login failed, nothing is down.
    InvalidGrant,
    /// HTTP 504: no answer in time. Envoy answers a dispatched call that exceeds its timeout
    /// with its own 504, as does any gateway in front of a token endpoint that is too slow.
    Timeout,
    /// Any other refusal or an unusable answer, described in our own words.
    Failed(String),
}

impl std::fmt::Display for TokenExchangeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::InvalidGrant => {
                f.write_str("the authorization code is invalid, expired or already used")
            }
            Self::Timeout => f.write_str("the token endpoint did not answer in time"),
            Self::Failed(message) => f.write_str(message),
        }
    }
}

/// Reads the token endpoint's answer: HTTP 200 with a JSON object holding a string `id_token`.
///
/// An OAuth error object (any status, since some servers send errors with 200) becomes
/// [`TokenExchangeError::InvalidGrant`] for `invalid_grant`, else `token endpoint refused:
/// <error>`, repeating the error code only when it is a plain `[A-Za-z0-9_]+` word, and never
/// `error_description` or `error_uri`: those are free text from a remote party and would end up
/// in logs and possibly in a page shown to the user. Anything else is described in our own
/// words.
pub fn parse_token_response(status: u32, body: &[u8]) -> Result<TokenResponse, TokenExchangeError> {
    let failed = |message: String| Err(TokenExchangeError::Failed(message));
    let object: Option<Map<String, Value>> = match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => Some(map),
        _ => None,
    };
    let error = object
        .as_ref()
        .and_then(|o| o.get("error"))
        .filter(|e| !e.is_null());
    if let Some(error) = error {
        return match error.as_str().filter(|code| is_plain_code(code)) {
            Some("invalid_grant") => Err(TokenExchangeError::InvalidGrant),
            Some(code) => failed(format!("token endpoint refused: {code}")),
            None => failed("token endpoint refused the request".to_string()),
        };
    }
    if status == 504 {
        return Err(TokenExchangeError::Timeout);
    }
    if status != 200 {
        return failed(format!("token endpoint answered HTTP {status}"));
    }
    let Some(object) = object else {
        return failed("token response is not a JSON object".to_string());
    };
    let id_token = match object.get("id_token") {
        Some(Value::String(token)) if !token.is_empty() => token.clone(),
        _ => return failed("token response has no id_token".to_string()),
    };
    let text = |name: &str| object.get(name).and_then(Value::as_str).map(str::to_string);
    Ok(TokenResponse {
        id_token,
        access_token: text("access_token"),
        scope: text("scope"),
    })
}

fn is_plain_code(code: &str) -> bool {
    !code.is_empty()
        && code.len() <= MAX_ERROR_CODE_CHARS
        && code.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth2::query::{parse_query, query_value};

    fn header<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
        headers
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    #[test]
    fn basic_request() {
        let (headers, body) = token_request(
            "the code/+",
            "dBjftJeZ4CVP-mJ92VP0GvU4N_5sMTZo69ieWGHEkiM",
            "https://chat.example.com/oauth2/callback",
            "client",
            "se cr:et",
            ClientAuth::Basic,
        );
        assert_eq!(
            header(&headers, "authorization"),
            Some(format!("Basic {}", STANDARD.encode("client:se+cr%3Aet")).as_str())
        );
        assert_eq!(
            header(&headers, "authorization"),
            Some("Basic Y2xpZW50OnNlK2NyJTNBZXQ=")
        );
        assert_eq!(
            header(&headers, "content-type"),
            Some("application/x-www-form-urlencoded")
        );
        assert_eq!(header(&headers, "accept"), Some("application/json"));
        assert_eq!(headers.len(), 3);
        assert_eq!(
            body,
            "grant_type=authorization_code&code=the+code%2F%2B\
             &redirect_uri=https%3A%2F%2Fchat.example.com%2Foauth2%2Fcallback\
             &code_verifier=dBjftJeZ4CVP-mJ92VP0GvU4N_5sMTZo69ieWGHEkiM&client_id=client"
        );
        assert!(!body.contains("secret"));
    }

    #[test]
    fn post_request() {
        let (headers, body) = token_request(
            "c",
            "v",
            "https://chat.example.com/cb",
            "my client",
            "se cr:et&x=y",
            ClientAuth::Post,
        );
        assert_eq!(header(&headers, "authorization"), None);
        assert_eq!(headers.len(), 2);
        let form = parse_query(&body);
        assert_eq!(query_value(&form, "grant_type"), Some("authorization_code"));
        assert_eq!(query_value(&form, "code"), Some("c"));
        assert_eq!(query_value(&form, "code_verifier"), Some("v"));
        assert_eq!(
            query_value(&form, "redirect_uri"),
            Some("https://chat.example.com/cb")
        );
        assert_eq!(query_value(&form, "client_id"), Some("my client"));
        assert_eq!(query_value(&form, "client_secret"), Some("se cr:et&x=y"));
        assert_eq!(query_value(&form, "x"), None);
        assert_eq!(form.len(), 6);
    }

    #[test]
    fn good_response() {
        let body = br#"{"access_token":"at","token_type":"Bearer","expires_in":300,
                        "id_token":"h.p.s","scope":"openid email","refresh_token":"rt"}"#;
        assert_eq!(
            parse_token_response(200, body),
            Ok(TokenResponse {
                id_token: "h.p.s".into(),
                access_token: Some("at".into()),
                scope: Some("openid email".into()),
            })
        );
        assert_eq!(
            parse_token_response(200, br#"{"id_token":"h.p.s","scope":7}"#),
            Ok(TokenResponse {
                id_token: "h.p.s".into(),
                access_token: None,
                scope: None,
            })
        );
    }

    #[test]
    fn missing_id_token() {
        for body in [
            &br#"{"access_token":"at","token_type":"Bearer"}"#[..],
            br#"{"id_token":""}"#,
            br#"{"id_token":null}"#,
            br#"{"id_token":["h.p.s"]}"#,
        ] {
            assert_eq!(
                parse_token_response(200, body),
                Err(TokenExchangeError::Failed(
                    "token response has no id_token".into()
                ))
            );
        }
    }

    #[test]
    fn error_json_does_not_echo_the_description() {
        let body = br#"{"error":"invalid_client","error_description":"<script>alert(1)</script>\r\nSet-Cookie: x","error_uri":"https://evil.test"}"#;
        for status in [400, 401, 200, 500] {
            let message = parse_token_response(status, body).unwrap_err();
            assert_eq!(
                message.to_string(),
                "token endpoint refused: invalid_client"
            );
        }
        for hostile in [
            json_error("invalid grant <b>"),
            json_error("x\r\ny"),
            json_error(""),
            json_error(&"a".repeat(65)),
            br#"{"error":42}"#.to_vec(),
        ] {
            assert_eq!(
                parse_token_response(400, &hostile),
                Err(TokenExchangeError::Failed(
                    "token endpoint refused the request".into()
                ))
            );
        }
    }

    #[test]
    fn a_504_is_a_timeout() {
        for body in [
            &b"upstream request timeout"[..],
            b"",
            br#"{"id_token":"h.p.s"}"#,
        ] {
            assert_eq!(
                parse_token_response(504, body),
                Err(TokenExchangeError::Timeout)
            );
        }
    }

    #[test]
    fn invalid_grant_is_its_own_error() {
        // A spent, expired or foreign code: whatever the status, and the description unechoed.
        for status in [400, 200, 401] {
            let error = parse_token_response(
                status,
                br#"{"error":"invalid_grant","error_description":"grant request is invalid"}"#,
            )
            .unwrap_err();
            assert_eq!(error, TokenExchangeError::InvalidGrant);
            assert_eq!(
                error.to_string(),
                "the authorization code is invalid, expired or already used"
            );
        }
        // Only the exact code.
        assert_eq!(
            parse_token_response(400, br#"{"error":"invalid_grant_x"}"#),
            Err(TokenExchangeError::Failed(
                "token endpoint refused: invalid_grant_x".into()
            ))
        );
    }

    fn json_error(code: &str) -> Vec<u8> {
        serde_json::json!({ "error": code, "error_description": "secret detail" })
            .to_string()
            .into_bytes()
    }

    #[test]
    fn not_json_and_server_errors() {
        assert_eq!(
            parse_token_response(200, b"<html>hello</html>"),
            Err(TokenExchangeError::Failed(
                "token response is not a JSON object".into()
            ))
        );
        assert_eq!(
            parse_token_response(200, b"[\"id_token\"]"),
            Err(TokenExchangeError::Failed(
                "token response is not a JSON object".into()
            ))
        );
        assert_eq!(
            parse_token_response(200, b""),
            Err(TokenExchangeError::Failed(
                "token response is not a JSON object".into()
            ))
        );
        assert_eq!(
            parse_token_response(500, b"Internal Server Error: stack trace here"),
            Err(TokenExchangeError::Failed(
                "token endpoint answered HTTP 500".into()
            ))
        );
        assert_eq!(
            parse_token_response(500, br#"{"id_token":"h.p.s"}"#),
            Err(TokenExchangeError::Failed(
                "token endpoint answered HTTP 500".into()
            ))
        );
        assert_eq!(
            parse_token_response(201, br#"{"id_token":"h.p.s"}"#),
            Err(TokenExchangeError::Failed(
                "token endpoint answered HTTP 201".into()
            ))
        );
        assert_eq!(
            parse_token_response(302, &[0xff, 0x00]),
            Err(TokenExchangeError::Failed(
                "token endpoint answered HTTP 302".into()
            ))
        );
        assert_eq!(
            parse_token_response(400, br#"{"error":null,"error_description":"boom"}"#),
            Err(TokenExchangeError::Failed(
                "token endpoint answered HTTP 400".into()
            ))
        );
    }
}
