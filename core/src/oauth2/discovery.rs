//! OIDC discovery (OpenID Connect Discovery 1.0; RFC 8414 for the auth-method default): the
//! endpoints of the configured IdP, read from its `/.well-known/openid-configuration`.

use serde_json::{Map, Value};

use super::url::parse_absolute;

/// How the client authenticates at the token endpoint (RFC 6749 2.3.1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ClientAuth {
    /// `client_secret_basic`: HTTP Basic with the form-encoded id and secret.
    Basic,
    /// `client_secret_post`: `client_id` and `client_secret` in the form body.
    Post,
}

/// The IdP endpoints the login flow uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoints {
    pub issuer: String,
    /// Absolute URL (the browser is sent there).
    pub authorization_endpoint: String,
    /// Absolute URL.
    pub token_endpoint: String,
    /// Absolute URL.
    pub jwks_uri: String,
    /// For RP-initiated logout; `None` when absent or not an absolute http(s) URL.
    pub end_session_endpoint: Option<String>,
    pub token_auth: ClientAuth,
}

/// The longest piece of the document quoted in an error message.
const MAX_QUOTED_CHARS: usize = 120;

/// Parses a discovery document.
///
/// Its `issuer` must equal `expected_issuer` exactly, with no normalisation (OIDC Discovery
/// 4.3): otherwise a document served from (or redirected to) the wrong place could substitute
/// another IdP's endpoints and keys. The authorization, token and JWKS endpoints must be
/// absolute http(s) URLs without userinfo or fragment; an unusable optional `end_session_endpoint` is
/// ignored rather than failing the whole login.
pub fn parse_discovery(body: &[u8], expected_issuer: &str) -> Result<Endpoints, String> {
    let document: Map<String, Value> = match serde_json::from_slice(body) {
        Ok(Value::Object(map)) => map,
        _ => return Err("discovery document is not a JSON object".to_string()),
    };
    let issuer = match document.get("issuer") {
        Some(Value::String(issuer)) => issuer,
        _ => return Err("discovery document has no issuer".to_string()),
    };
    if issuer != expected_issuer {
        return Err(format!(
            "discovery issuer {} does not equal the configured issuer {}",
            quoted(issuer),
            quoted(expected_issuer)
        ));
    }
    Ok(Endpoints {
        issuer: issuer.clone(),
        authorization_endpoint: required_url(&document, "authorization_endpoint")?,
        token_endpoint: required_url(&document, "token_endpoint")?,
        jwks_uri: required_url(&document, "jwks_uri")?,
        end_session_endpoint: match document.get("end_session_endpoint") {
            Some(Value::String(url)) if is_endpoint_url(url) => Some(url.clone()),
            _ => None,
        },
        token_auth: token_auth(document.get("token_endpoint_auth_methods_supported")),
    })
}

fn required_url(document: &Map<String, Value>, name: &str) -> Result<String, String> {
    match document.get(name) {
        Some(Value::String(url)) if is_endpoint_url(url) => Ok(url.clone()),
        Some(Value::String(_)) => Err(format!("discovery {name} is not an absolute http(s) URL")),
        Some(_) => Err(format!("discovery {name} is not a string")),
        None => Err(format!("discovery document has no {name}")),
    }
}

/// An absolute http(s) URL without a fragment (RFC 6749 3.1 and 3.2 forbid one: our query
/// would be appended after it and never reach the server).
fn is_endpoint_url(url: &str) -> bool {
    !url.contains('#') && parse_absolute(url).is_some()
}

/// `client_secret_basic` when listed, or when the list is absent (RFC 8414 2: the default);
/// else `client_secret_post` when listed; else Basic (nothing we support is offered: Basic is
/// the method every server must support, RFC 6749 2.3.1).
fn token_auth(methods: Option<&Value>) -> ClientAuth {
    let Some(Value::Array(methods)) = methods else {
        return ClientAuth::Basic;
    };
    let lists = |wanted: &str| methods.iter().any(|m| m.as_str() == Some(wanted));
    if lists("client_secret_basic") {
        ClientAuth::Basic
    } else if lists("client_secret_post") {
        ClientAuth::Post
    } else {
        ClientAuth::Basic
    }
}

/// `text` quoted with control characters escaped and cut short, safe for a log line.
fn quoted(text: &str) -> String {
    let short: String = text.chars().take(MAX_QUOTED_CHARS).collect();
    let ellipsis = if short.len() < text.len() { "..." } else { "" };
    format!("{short:?}{ellipsis}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const ISSUER: &str = "https://idp.example.com/realms/main";

    fn document() -> Value {
        json!({
            "issuer": ISSUER,
            "authorization_endpoint": "https://idp.example.com/realms/main/protocol/openid-connect/auth",
            "token_endpoint": "https://idp.example.com/realms/main/protocol/openid-connect/token",
            "jwks_uri": "https://idp.example.com/realms/main/protocol/openid-connect/certs",
            "end_session_endpoint": "https://idp.example.com/realms/main/protocol/openid-connect/logout",
            "token_endpoint_auth_methods_supported": ["private_key_jwt", "client_secret_basic", "client_secret_post"],
            "response_types_supported": ["code"]
        })
    }

    fn parse(doc: &Value) -> Result<Endpoints, String> {
        parse_discovery(doc.to_string().as_bytes(), ISSUER)
    }

    fn with(name: &str, value: Value) -> Value {
        let mut doc = document();
        doc[name] = value;
        doc
    }

    fn without(name: &str) -> Value {
        let mut doc = document();
        doc.as_object_mut().unwrap().remove(name);
        doc
    }

    #[test]
    fn good_document() {
        assert_eq!(
            parse(&document()),
            Ok(Endpoints {
                issuer: ISSUER.into(),
                authorization_endpoint:
                    "https://idp.example.com/realms/main/protocol/openid-connect/auth".into(),
                token_endpoint: "https://idp.example.com/realms/main/protocol/openid-connect/token"
                    .into(),
                jwks_uri: "https://idp.example.com/realms/main/protocol/openid-connect/certs"
                    .into(),
                end_session_endpoint: Some(
                    "https://idp.example.com/realms/main/protocol/openid-connect/logout".into()
                ),
                token_auth: ClientAuth::Basic,
            })
        );
        let plain_http = json!({
            "issuer": ISSUER,
            "authorization_endpoint": "http://localhost:8080/auth",
            "token_endpoint": "http://keycloak:8080/token",
            "jwks_uri": "http://keycloak:8080/certs"
        });
        let endpoints = parse(&plain_http).unwrap();
        assert_eq!(endpoints.end_session_endpoint, None);
        assert_eq!(endpoints.token_auth, ClientAuth::Basic);
    }

    #[test]
    fn issuer_must_match_exactly() {
        for issuer in [
            json!("https://idp.example.com/realms/main/"),
            json!("https://IDP.example.com/realms/main"),
            json!("https://evil.test/realms/main"),
            json!(""),
            json!(42),
            Value::Null,
        ] {
            assert!(parse(&with("issuer", issuer.clone())).is_err(), "{issuer}");
        }
        assert_eq!(
            parse(&without("issuer")),
            Err("discovery document has no issuer".into())
        );
        let message = parse(&with("issuer", json!("https://evil.test\n"))).unwrap_err();
        assert_eq!(
            message,
            "discovery issuer \"https://evil.test\\n\" does not equal the configured issuer \
             \"https://idp.example.com/realms/main\""
        );
        let long = parse(&with("issuer", json!("x".repeat(5000)))).unwrap_err();
        assert!(long.len() < 400);
    }

    #[test]
    fn missing_endpoints() {
        for name in ["authorization_endpoint", "token_endpoint", "jwks_uri"] {
            assert_eq!(
                parse(&without(name)),
                Err(format!("discovery document has no {name}"))
            );
            assert_eq!(
                parse(&with(name, json!(["https://idp/x"]))),
                Err(format!("discovery {name} is not a string"))
            );
        }
    }

    #[test]
    fn endpoints_must_be_absolute() {
        for name in ["authorization_endpoint", "token_endpoint", "jwks_uri"] {
            for url in [
                "/protocol/openid-connect/token",
                "idp.example.com/token",
                "//idp.example.com/token",
                "javascript:alert(1)",
                "ftp://idp.example.com/token",
                "https://attacker@idp.example.com/token",
                "https://idp.example.com/token#x",
                "https:// idp.example.com/token",
                "",
            ] {
                assert_eq!(
                    parse(&with(name, json!(url))),
                    Err(format!("discovery {name} is not an absolute http(s) URL")),
                    "{name} = {url:?}"
                );
            }
        }
        let bad_logout = parse(&with("end_session_endpoint", json!("/logout"))).unwrap();
        assert_eq!(bad_logout.end_session_endpoint, None);
        let odd_logout = parse(&with("end_session_endpoint", json!(7))).unwrap();
        assert_eq!(odd_logout.end_session_endpoint, None);
    }

    #[test]
    fn auth_method_selection() {
        let cases = [
            (Some(json!(["client_secret_basic"])), ClientAuth::Basic),
            (Some(json!(["client_secret_post"])), ClientAuth::Post),
            (
                Some(json!(["private_key_jwt", "client_secret_post"])),
                ClientAuth::Post,
            ),
            (
                Some(json!(["client_secret_post", "client_secret_basic"])),
                ClientAuth::Basic,
            ),
            (Some(json!(["private_key_jwt"])), ClientAuth::Basic),
            (Some(json!([])), ClientAuth::Basic),
            (Some(json!("client_secret_post")), ClientAuth::Basic),
            (
                Some(json!([1, null, {"a": "client_secret_post"}])),
                ClientAuth::Basic,
            ),
            (None, ClientAuth::Basic),
        ];
        for (methods, expected) in cases {
            let doc = match &methods {
                Some(m) => with("token_endpoint_auth_methods_supported", m.clone()),
                None => without("token_endpoint_auth_methods_supported"),
            };
            assert_eq!(parse(&doc).unwrap().token_auth, expected, "{methods:?}");
        }
    }

    #[test]
    fn not_json() {
        for body in [
            &b""[..],
            b"<html>",
            b"[]",
            b"\"x\"",
            b"null",
            &[0xff, 0xfe][..],
        ] {
            assert_eq!(
                parse_discovery(body, ISSUER),
                Err("discovery document is not a JSON object".into())
            );
        }
    }
}
