//! Small syntax checks shared by the config sections.

/// An HTTP field name (RFC 9110 `token`), lower-cased. Pseudo-headers are refused.
pub fn header_name(value: &str) -> Result<String, String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if value.starts_with(':') {
        return Err("pseudo-headers cannot be used".into());
    }
    if !value.bytes().all(is_tchar) {
        return Err(format!("`{value}` is not a valid header name"));
    }
    Ok(value.to_ascii_lowercase())
}

/// A name that also appears in shared-data keys and logs: 1 to 64 of `[A-Za-z0-9._-]`.
pub fn object_name(value: &str) -> Result<(), String> {
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err("must be 1 to 64 characters of letters, digits, '-', '_' or '.'".into())
    }
}

/// Headers the gateway must never overwrite or treat as caller identity.
pub fn reserved_header(name: &str) -> bool {
    matches!(
        name,
        "host"
            | "content-length"
            | "content-type"
            | "transfer-encoding"
            | "connection"
            | "te"
            | "upgrade"
            | "cookie"
            | "authorization"
            | "x-forwarded-for"
            | "x-request-id"
    )
}

/// A cookie name (RFC 6265: a `token`).
pub fn cookie_name(value: &str) -> Result<String, String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if !value.bytes().all(is_tchar) {
        return Err(format!("`{value}` is not a valid cookie name"));
    }
    Ok(value.to_string())
}

/// An OAuth scope token (RFC 6749 section 3.3: `1*( %x21 / %x23-5B / %x5D-7E )`).
pub fn scope_token(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    let ok = value
        .bytes()
        .all(|b| b == 0x21 || (0x23..=0x5b).contains(&b) || (0x5d..=0x7e).contains(&b));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not a valid scope (no spaces, quotes or backslashes)",
            value.escape_default()
        ))
    }
}

/// Text that ends up inside a quoted-string header parameter.
pub fn quoted_text(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("must not be empty".into());
    }
    if value
        .bytes()
        .all(|b| (0x20..0x7f).contains(&b) && b != b'"' && b != b'\\')
    {
        Ok(())
    } else {
        Err("must be printable ASCII without quotes or backslashes".into())
    }
}

fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric()
        || matches!(
            b,
            b'!' | b'#'
                | b'$'
                | b'%'
                | b'&'
                | b'\''
                | b'*'
                | b'+'
                | b'-'
                | b'.'
                | b'^'
                | b'_'
                | b'`'
                | b'|'
                | b'~'
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_are_lowercased_and_checked() {
        assert_eq!(header_name("X-User-Id"), Ok("x-user-id".into()));
        assert!(header_name("").is_err());
        assert!(header_name(":path").is_err());
        assert!(header_name("x user").is_err());
        assert!(header_name("x\r\ny").is_err());
    }

    #[test]
    fn scope_tokens_follow_rfc_6749() {
        assert!(scope_token("chat:write").is_ok());
        assert!(scope_token("history:team-a").is_ok());
        for bad in ["", "a b", "a\"b", "a\\b", "ü", "a\tb"] {
            assert!(scope_token(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn cookie_names_and_quoted_text() {
        assert!(cookie_name("gw_session").is_ok());
        assert!(cookie_name("a=b").is_err());
        assert!(cookie_name("a;b").is_err());
        assert!(quoted_text("ai gateway").is_ok());
        assert!(quoted_text("a\"b").is_err());
        assert!(quoted_text("").is_err());
    }
}
