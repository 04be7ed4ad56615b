//! The floor of a filter written with the proxy-wasm Rust SDK (the gateway's SDK, same version
//! and release profile), for `make bench`. With an empty plugin configuration every request
//! only runs the SDK's callbacks (context creation, headers, body, log, done, delete). The
//! configuration can name host calls to make per request, the ones the gateway makes, so the
//! bench can price them without any of the gateway's own work:
//!
//! - `headers`: read the request's header map (every request to the gateway needs it);
//! - `address`: read the `source.address` property (the client, for `ip` limits and audit);
//! - `audit`: set a filter-state property for the access log (the audit record);
//! - `full_stack`: every host call of a full-stack request (RS256 cache hit, a scope rule, a
//!   rate limit, audit): the header map, the clock three times, the client address, a shared
//!   data read and compare-and-swap write, two counters, two request headers set, the response
//!   status read, three response headers added and the audit filter state.

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{Action, BufferType, ContextType, MapType, MetricType};

proxy_wasm::main! {{
    proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root::default()) });
}}

#[derive(Default, Clone, Copy)]
struct Calls {
    headers: bool,
    address: bool,
    audit: bool,
    full_stack: bool,
}

#[derive(Default)]
struct Root {
    calls: Calls,
    metric: u32,
}

impl Context for Root {}

impl RootContext for Root {
    fn on_configure(&mut self, _size: usize) -> bool {
        let config = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
            .ok()
            .flatten()
            .unwrap_or_default();
        let names = |word: &str| config.windows(word.len()).any(|w| w == word.as_bytes());
        self.calls = Calls {
            headers: names("headers"),
            address: names("address"),
            audit: names("audit"),
            full_stack: names("full_stack"),
        };
        self.metric =
            hostcalls::define_metric(MetricType::Counter, "sdk_floor.requests").unwrap_or_default();
        true
    }

    fn create_http_context(&self, _id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Request {
            calls: self.calls,
            metric: self.metric,
        }))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}

struct Request {
    calls: Calls,
    metric: u32,
}

impl Context for Request {}

impl HttpContext for Request {
    fn on_http_request_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let Calls {
            headers,
            address,
            full_stack,
            ..
        } = self.calls;
        if headers || full_stack {
            let _ = hostcalls::get_map_bytes(MapType::HttpRequestHeaders);
        }
        if address || full_stack {
            let _ = hostcalls::get_property(vec!["source", "address"]);
        }
        if full_stack {
            let _ = hostcalls::get_current_time();
            let _ = hostcalls::get_current_time();
            let (value, cas) = hostcalls::get_shared_data("sdk-floor").unwrap_or((None, None));
            let value = value.unwrap_or_else(|| vec![0; 16]);
            let _ = hostcalls::set_shared_data("sdk-floor", Some(&value), cas);
            let _ = hostcalls::increment_metric(self.metric, 1);
            let _ = hostcalls::increment_metric(self.metric, 1);
            let _ =
                hostcalls::set_map_value(MapType::HttpRequestHeaders, "x-user-id", Some("alice"));
            let _ = hostcalls::set_map_value(
                MapType::HttpRequestHeaders,
                "x-user-scopes",
                Some("chat:read chat:write"),
            );
        }
        Action::Continue
    }

    fn on_http_response_headers(&mut self, _headers: usize, _end_of_stream: bool) -> Action {
        let Calls {
            audit, full_stack, ..
        } = self.calls;
        if full_stack {
            let _ = hostcalls::get_map_value_bytes(MapType::HttpResponseHeaders, ":status");
            for (name, value) in [
                ("x-ratelimit-limit", "100000000"),
                ("x-ratelimit-remaining", "99999999"),
                ("x-ratelimit-reset", "22"),
            ] {
                let _ = hostcalls::add_map_value(MapType::HttpResponseHeaders, name, value);
            }
            let _ = hostcalls::get_current_time();
        }
        if audit || full_stack {
            let record = br#"{"time_ms":1796554058556,"event":"request","request_id":"abc-def","method":"GET","path":"/","sub":"alice","provider":"sso","rule":0,"decision":"allowed","status":200,"duration_ms":0,"client":"127.0.0.1:40000"}"#;
            let _ = hostcalls::set_property(vec!["ai_gateway_audit"], Some(record));
        }
        Action::Continue
    }
}
