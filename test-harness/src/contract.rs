//! Assertions about the gateway's error contract, shared by the integration tests.

use crate::http::Response;

/// Status, `content-type: application/json`, the body's `error.code`, and non-empty
/// `message`, `type` and `details`.
pub fn assert_contract_error(response: &Response, status: u16, code: &str) {
    assert_eq!(response.status, status, "{}", response.text());
    assert_eq!(
        response.header("content-type"),
        Some("application/json"),
        "{}",
        response.text()
    );
    let body = response.json();
    let error = &body["error"];
    assert_eq!(error["code"], code, "{body}");
    for field in ["message", "type", "details"] {
        assert!(
            error[field].as_str().is_some_and(|v| !v.is_empty()),
            "error.{field} missing in {body}"
        );
    }
}

/// A 401 `AUTH_INVALID_TOKEN` with the given `details`, in the body and in the contract's
/// `WWW-Authenticate: Bearer error="invalid_token", error_description="..."`.
pub fn assert_invalid_token(response: &Response, details: &str) {
    assert_contract_error(response, 401, "AUTH_INVALID_TOKEN");
    assert_eq!(response.json()["error"]["details"], details);
    assert_eq!(
        response.header("www-authenticate"),
        Some(format!("Bearer error=\"invalid_token\", error_description=\"{details}\"").as_str())
    );
}

/// A 403 `AUTH_INSUFFICIENT_SCOPE` naming `required` (space-separated) in the contract's
/// `WWW-Authenticate: Bearer error="insufficient_scope", scope="..."`.
pub fn assert_insufficient_scope(response: &Response, required: &str) {
    assert_contract_error(response, 403, "AUTH_INSUFFICIENT_SCOPE");
    assert_eq!(
        response.header("www-authenticate"),
        Some(format!("Bearer error=\"insufficient_scope\", scope=\"{required}\"").as_str())
    );
}
