use super::*;

fn cors(origins: &[&str], credentials: bool) -> Cors {
    Cors {
        origins: origins
            .iter()
            .map(|o| OriginPattern::parse(o).unwrap())
            .collect(),
        methods: vec!["GET".into(), "POST".into()],
        headers: vec!["authorization".into(), "content-type".into()],
        expose_headers: vec!["retry-after".into(), "x-ratelimit-remaining".into()],
        credentials,
        max_age_s: 600,
    }
}

fn head(method: &str, headers: &[(&str, &str)]) -> RequestHead {
    let mut all = vec![
        (":method".to_string(), method.to_string()),
        (":path".to_string(), "/v1/chat/completions".to_string()),
    ];
    all.extend(headers.iter().map(|(n, v)| (n.to_string(), v.to_string())));
    RequestHead::new(all, true)
}

fn value<'a>(headers: &'a [(&'static str, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, v)| v.as_str())
}

#[test]
fn a_preflight_from_an_allowed_origin_is_answered_with_the_allowances() {
    let c = cors(&["https://app.example.com"], false);
    let step = c.step(&head(
        "OPTIONS",
        &[
            ("origin", "https://app.example.com"),
            ("access-control-request-method", "POST"),
            (
                "access-control-request-headers",
                "authorization, content-type",
            ),
        ],
    ));
    let CorsStep::Preflight(headers) = step else {
        panic!("{step:?}")
    };
    assert_eq!(
        value(&headers, "access-control-allow-origin"),
        Some("https://app.example.com")
    );
    assert_eq!(value(&headers, "vary"), Some("Origin"));
    assert_eq!(
        value(&headers, "access-control-allow-methods"),
        Some("GET, POST")
    );
    assert_eq!(
        value(&headers, "access-control-allow-headers"),
        Some("authorization, content-type")
    );
    assert_eq!(value(&headers, "access-control-max-age"), Some("600"));
    assert_eq!(value(&headers, "access-control-allow-credentials"), None);
}

#[test]
fn a_preflight_from_another_origin_is_refused_and_a_bare_options_gets_no_bypass() {
    let c = cors(&["https://app.example.com"], false);
    let other = head(
        "OPTIONS",
        &[
            ("origin", "https://evil.example"),
            ("access-control-request-method", "POST"),
        ],
    );
    assert_eq!(c.step(&other), CorsStep::Refused);
    // OPTIONS without Access-Control-Request-Method is not a preflight.
    let bare = head("OPTIONS", &[("origin", "https://app.example.com")]);
    assert!(matches!(c.step(&bare), CorsStep::Continue(h) if !h.is_empty()));
    let no_origin = head("OPTIONS", &[("access-control-request-method", "POST")]);
    assert_eq!(c.step(&no_origin), CorsStep::Continue(Vec::new()));
}

#[test]
fn actual_requests_from_allowed_origins_get_exposed_headers_others_nothing() {
    let c = cors(&["https://*.corp.example.com"], true);
    let step = c.step(&head(
        "POST",
        &[("origin", "https://chat.eu.corp.example.com")],
    ));
    let CorsStep::Continue(headers) = step else {
        panic!("{step:?}")
    };
    assert_eq!(
        value(&headers, "access-control-expose-headers"),
        Some("retry-after, x-ratelimit-remaining")
    );
    assert_eq!(
        value(&headers, "access-control-allow-credentials"),
        Some("true")
    );
    for origin in [
        "https://corp.example.com",
        "http://chat.corp.example.com",
        "https://corp.example.com.evil.example",
        "https://evilcorp.example.com",
        "null",
    ] {
        assert_eq!(
            c.step(&head("POST", &[("origin", origin)])),
            CorsStep::Continue(Vec::new()),
            "{origin}"
        );
    }
}

#[test]
fn origins_parse_strictly() {
    assert_eq!(OriginPattern::parse("*"), Ok(OriginPattern::Any));
    assert_eq!(
        OriginPattern::parse("HTTPS://App.Example.com:8443"),
        Ok(OriginPattern::Exact("https://app.example.com:8443".into()))
    );
    for bad in [
        "app.example.com",
        "ftp://x.example",
        "https://x.example/path",
        "https://*",
        "https://*.com",
        "https://a.*.example.com",
        "",
    ] {
        assert!(OriginPattern::parse(bad).is_err(), "{bad}");
    }
}
