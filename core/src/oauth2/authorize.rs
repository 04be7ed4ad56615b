//! The authorization request the browser is redirected to (RFC 6749 4.1.1, OIDC Core 3.1.2.1,
//! RFC 7636 4.3).

use super::query::form_encode;

/// The authorization request URL: `response_type=code`, `client_id`, `redirect_uri`, `scope`
/// (space-joined), `state`, `nonce`, `code_challenge` and `code_challenge_method=S256`, every
/// value form-encoded, appended to `endpoint` with `?`, or with `&` when the endpoint already
/// has a query (RFC 6749 3.1: its query must be kept).
pub fn authorization_url(
    endpoint: &str,
    client_id: &str,
    redirect_uri: &str,
    scopes: &[String],
    state: &str,
    nonce: &str,
    challenge: &str,
) -> String {
    let scope = scopes.join(" ");
    let query = form_encode(&[
        ("response_type", "code"),
        ("client_id", client_id),
        ("redirect_uri", redirect_uri),
        ("scope", &scope),
        ("state", state),
        ("nonce", nonce),
        ("code_challenge", challenge),
        ("code_challenge_method", "S256"),
    ]);
    let separator = match endpoint.find('?') {
        None => "?",
        Some(_) if endpoint.ends_with('?') || endpoint.ends_with('&') => "",
        Some(_) => "&",
    };
    format!("{endpoint}{separator}{query}")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::oauth2::query::{parse_query, query_value};

    fn url(endpoint: &str) -> String {
        authorization_url(
            endpoint,
            "gateway client",
            "https://chat.example.com/oauth2/callback?x=1&y=2",
            &[
                "openid".to_string(),
                "email".to_string(),
                "chat:write".to_string(),
            ],
            "st&te=",
            "n+nce",
            "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        )
    }

    #[test]
    fn every_parameter_encoded() {
        assert_eq!(
            url("https://idp.example.com/auth"),
            "https://idp.example.com/auth?response_type=code&client_id=gateway+client\
             &redirect_uri=https%3A%2F%2Fchat.example.com%2Foauth2%2Fcallback%3Fx%3D1%26y%3D2\
             &scope=openid+email+chat%3Awrite&state=st%26te%3D&nonce=n%2Bnce\
             &code_challenge=E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM\
             &code_challenge_method=S256"
        );
    }

    #[test]
    fn parameters_read_back() {
        let full = url("https://idp.example.com/auth");
        let (_, query) = full.split_once('?').unwrap();
        let pairs = parse_query(query);
        let expected = [
            ("response_type", "code"),
            ("client_id", "gateway client"),
            (
                "redirect_uri",
                "https://chat.example.com/oauth2/callback?x=1&y=2",
            ),
            ("scope", "openid email chat:write"),
            ("state", "st&te="),
            ("nonce", "n+nce"),
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ),
            ("code_challenge_method", "S256"),
        ];
        assert_eq!(pairs.len(), expected.len());
        for (name, value) in expected {
            assert_eq!(query_value(&pairs, name), Some(value), "{name}");
        }
    }

    #[test]
    fn separator_follows_the_endpoint() {
        assert!(url("https://idp/auth?tenant=a")
            .starts_with("https://idp/auth?tenant=a&response_type=code&"));
        assert!(url("https://idp/auth?").starts_with("https://idp/auth?response_type=code&"));
        assert!(
            url("https://idp/auth?t=a&").starts_with("https://idp/auth?t=a&response_type=code&")
        );
        assert!(url("https://idp/auth").starts_with("https://idp/auth?response_type=code&"));
    }
}
