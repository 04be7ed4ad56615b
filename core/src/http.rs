//! A plain view of the request head, built once per request by the filter layer from the host's
//! header map, so the logic modules can read it without host calls.

/// Method, path and headers of a request, as Envoy hands them to the filter.
#[derive(Debug, Clone, Default)]
pub struct RequestHead {
    /// All headers, pseudo-headers (`:method`, `:path`, ...) included, in order. Names are
    /// lower-case (Envoy normalises them); duplicates are kept as separate entries.
    pub headers: Vec<(String, String)>,
    /// True when the request has no body (headers were the end of the stream).
    pub end_of_stream: bool,
    /// The downstream peer's address as Envoy saw it (`source.address`), e.g. `1.2.3.4:5678`.
    pub remote_address: Option<String>,
}

/// `content-length` could not be read as a single non-negative integer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BadContentLength;

impl RequestHead {
    pub fn new(headers: Vec<(String, String)>, end_of_stream: bool) -> Self {
        Self {
            headers,
            end_of_stream,
            remote_address: None,
        }
    }

    /// Every value of the header `name` (case-insensitive), in order.
    pub fn values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.headers
            .iter()
            .filter(move |(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The first value of the header `name`.
    pub fn value(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn method(&self) -> &str {
        self.value(":method").unwrap_or("")
    }

    pub fn path(&self) -> &str {
        self.value(":path").unwrap_or("")
    }

    /// The declared body length. Several differing values, or a value that is not a plain
    /// decimal number, are an error (Envoy normally refuses those before we see them).
    pub fn content_length(&self) -> Result<Option<u64>, BadContentLength> {
        let mut found: Option<u64> = None;
        for raw in self.values("content-length") {
            for part in raw.split(',') {
                let part = part.trim();
                if part.is_empty() || !part.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(BadContentLength);
                }
                let n: u64 = part.parse().map_err(|_| BadContentLength)?;
                match found {
                    Some(prev) if prev != n => return Err(BadContentLength),
                    _ => found = Some(n),
                }
            }
        }
        Ok(found)
    }

    /// Every value of the cookie `name` over all `cookie` headers (RFC 6265 `name=value` pairs
    /// separated by `;`). A name given twice yields two values.
    pub fn cookie_values<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a str> + 'a {
        self.values("cookie")
            .flat_map(|header| header.split(';'))
            .filter_map(move |pair| {
                let (k, v) = pair.split_once('=')?;
                (k.trim() == name).then(|| v.trim())
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn head(pairs: &[(&str, &str)]) -> RequestHead {
        RequestHead::new(
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            false,
        )
    }

    #[test]
    fn reads_pseudo_headers_and_values_case_insensitively() {
        let h = head(&[
            (":method", "POST"),
            (":path", "/x?y"),
            ("X-A", "1"),
            ("x-a", "2"),
        ]);
        assert_eq!(h.method(), "POST");
        assert_eq!(h.path(), "/x?y");
        assert_eq!(h.values("x-a").collect::<Vec<_>>(), vec!["1", "2"]);
        assert_eq!(h.value("missing"), None);
    }

    #[test]
    fn content_length_accepts_one_number_and_refuses_conflicts() {
        assert_eq!(head(&[]).content_length(), Ok(None));
        assert_eq!(
            head(&[("content-length", "12")]).content_length(),
            Ok(Some(12))
        );
        assert_eq!(
            head(&[("content-length", "12, 12")]).content_length(),
            Ok(Some(12))
        );
        for bad in ["-1", "1.5", "", "0x10", "12, 13", "99999999999999999999999"] {
            assert_eq!(
                head(&[("content-length", bad)]).content_length(),
                Err(BadContentLength),
                "{bad}"
            );
        }
        assert_eq!(
            head(&[("content-length", "1"), ("content-length", "2")]).content_length(),
            Err(BadContentLength)
        );
    }

    #[test]
    fn cookies_are_found_across_headers_and_pairs() {
        let h = head(&[
            ("cookie", "a=1; gw_session=abc ; b=2"),
            ("cookie", "gw_session=def"),
            ("cookie", "novalue; gw_sessionx=zzz"),
        ]);
        assert_eq!(
            h.cookie_values("gw_session").collect::<Vec<_>>(),
            vec!["abc", "def"]
        );
        assert_eq!(h.cookie_values("a").collect::<Vec<_>>(), vec!["1"]);
        assert_eq!(h.cookie_values("novalue").count(), 0);
    }
}
