//! `Set-Cookie` values for the flow and session cookies.

/// `name=value; Path=/; Max-Age=N; HttpOnly; Secure; SameSite=Lax`.
///
/// - `HttpOnly`: scripts (an XSS in a chat UI) cannot read the session.
/// - `Secure` (unless `secure` is false, for plain-http local development): never sent in clear.
/// - `SameSite=Lax`: not sent on cross-site subrequests or POSTs (CSRF), yet still sent on the
///   top-level GET that brings the browser back from the IdP, which the flow cookie needs.
/// - `Path=/` and no `Domain`: the cookie stays on this host (and a `__Host-` name is valid).
///
/// Name and value are ours (a token name; base64url or JWT), but as a safeguard any byte that
/// is not allowed in them (RFC 6265 4.1.1: controls, whitespace, `;`, `,`, `"`, `\`, and for
/// the name also separators like `=`) is dropped, so nothing can add an attribute or header.
pub fn set_cookie(name: &str, value: &str, max_age_s: u64, secure: bool) -> String {
    let name: String = name.chars().filter(|c| is_token_char(*c)).collect();
    let value: String = value.chars().filter(|c| is_cookie_octet(*c)).collect();
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; Max-Age={max_age_s}; HttpOnly{secure}; SameSite=Lax")
}

/// A `Set-Cookie` value deleting the cookie: empty value, `Max-Age=0`, same attributes.
pub fn clear_cookie(name: &str, secure: bool) -> String {
    set_cookie(name, "", 0, secure)
}

/// RFC 6265 cookie-octet: printable ASCII except space, `"`, `,`, `;` and `\`.
fn is_cookie_octet(c: char) -> bool {
    c.is_ascii_graphic() && !matches!(c, '"' | ',' | ';' | '\\')
}

/// RFC 7230 token character (a cookie name).
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_cookie_attributes() {
        assert_eq!(
            set_cookie("__Host-aigw_session", "h.p.s", 3600, true),
            "__Host-aigw_session=h.p.s; Path=/; Max-Age=3600; HttpOnly; Secure; SameSite=Lax"
        );
        assert_eq!(
            set_cookie("aigw_flow", "abc-_.def", 600, false),
            "aigw_flow=abc-_.def; Path=/; Max-Age=600; HttpOnly; SameSite=Lax"
        );
    }

    #[test]
    fn clear_cookie_attributes() {
        assert_eq!(
            clear_cookie("aigw_session", true),
            "aigw_session=; Path=/; Max-Age=0; HttpOnly; Secure; SameSite=Lax"
        );
        assert_eq!(
            clear_cookie("aigw_session", false),
            "aigw_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax"
        );
    }

    #[test]
    fn nothing_can_be_injected() {
        assert_eq!(
            set_cookie("a=b; Domain=evil", "v; Domain=evil.test\r\nX: y", 1, true),
            "abDomainevil=vDomain=evil.testX:y; Path=/; Max-Age=1; HttpOnly; Secure; SameSite=Lax"
        );
    }
}
