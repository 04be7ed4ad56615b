//! The Envoy bootstrap a test runs: one listener with the wasm filter and the router, an admin
//! endpoint, and clusters for the upstream and the IdP, all on loopback with ephemeral ports.

use std::net::SocketAddr;
use std::path::Path;

use serde_json::{json, Value};

/// What varies between tests.
#[derive(Debug, Clone)]
pub struct BootstrapParams<'a> {
    pub wasm: &'a Path,
    /// The plugin configuration, passed verbatim as `configuration.value`.
    pub plugin_config: &'a str,
    pub upstream: SocketAddr,
    pub idp: Option<SocketAddr>,
    /// Envoy's `normalize_path` and `merge_slashes`.
    pub normalize_path: bool,
    /// Host variables the VM may read (`vm_config.environment_variables.host_env_keys`).
    pub host_env_keys: Vec<String>,
    /// Route timeout, seconds.
    pub route_timeout_s: u64,
    /// Where Envoy writes its access log.
    pub access_log: &'a Path,
    /// The listener's port; 0: ephemeral.
    pub listener_port: u16,
    /// Envoy's buffer filter after the gateway (as in the demo), with this byte limit: the
    /// router sees nothing of a request until its body is complete. `None`: no buffer filter.
    pub buffer_max_bytes: Option<u64>,
    /// A rate-limit service (`ratelimit.v3` gRPC) as cluster `rls`, over HTTP/2.
    pub rate_limit_service: Option<SocketAddr>,
}

pub fn bootstrap(p: &BootstrapParams<'_>) -> Value {
    let mut clusters = vec![cluster("upstream", p.upstream)];
    if let Some(idp) = p.idp {
        clusters.push(cluster("idp", idp));
    }
    if let Some(rls) = p.rate_limit_service {
        clusters.push(grpc_cluster("rls", rls));
    }
    let mut http_filters = vec![json!({
        "name": "envoy.filters.http.wasm",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "gateway",
                "root_id": "gateway",
                "fail_open": false,
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    "value": p.plugin_config
                },
                "vm_config": {
                    "vm_id": "gateway",
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": p.wasm.to_string_lossy()}},
                    "environment_variables": {"host_env_keys": p.host_env_keys}
                }
            }
        }
    })];
    if let Some(max) = p.buffer_max_bytes {
        http_filters.push(json!({
            "name": "envoy.filters.http.buffer",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.buffer.v3.Buffer",
                "max_request_bytes": max
            }
        }));
    }
    http_filters.push(json!({
        "name": "envoy.filters.http.router",
        "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}
    }));
    json!({
        "admin": {"address": socket(0)},
        "stats_config": {"stats_tags": stats_tags()},
        "static_resources": {
            "listeners": [{
                "name": "main",
                "address": socket(p.listener_port),
                "per_connection_buffer_limit_bytes": 64 * 1024 * 1024,
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "ingress",
                        // An edge proxy: the downstream address is the peer's, never taken
                        // from a client's x-forwarded-for.
                        "use_remote_address": true,
                        // Envoy's own access log, with the gateway's audit record.
                        "access_log": [{
                            "name": "envoy.access_loggers.file",
                            "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                                "path": p.access_log.to_string_lossy(),
                                "log_format": {"text_format_source": {"inline_string":
                                    "%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %RESPONSE_CODE% audit=%FILTER_STATE(wasm.ai_gateway_audit:PLAIN)%\n"}}
                            }
                        }],
                        "normalize_path": p.normalize_path,
                        "merge_slashes": p.normalize_path,
                        "route_config": {"name": "main", "virtual_hosts": [{
                            "name": "all",
                            "domains": ["*"],
                            "routes": [{
                                "match": {"prefix": "/"},
                                "route": {"cluster": "upstream", "timeout": format!("{}s", p.route_timeout_s)}
                            }]
                        }]},
                        "http_filters": http_filters
                    }
                }]}]
            }],
            "clusters": clusters
        }
    })
}

fn socket(port: u16) -> Value {
    json!({"socket_address": {"address": "127.0.0.1", "port_value": port}})
}

fn cluster(name: &str, addr: SocketAddr) -> Value {
    json!({
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": socket(addr.port())}}]}]
        }
    })
}

/// A cluster speaking HTTP/2 only, as gRPC needs.
pub fn grpc_cluster(name: &str, addr: SocketAddr) -> Value {
    let mut c = cluster(name, addr);
    c["typed_extension_protocol_options"] = json!({
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "explicit_http_config": {"http2_protocol_options": {}}
        }
    });
    c
}

/// The `stats_tags` that turn the gateway's per-model metric names into labels, as in
/// `envoy.yaml` (`observability.rs` checks that the two agree).
pub fn stats_tags() -> Value {
    json!([
        {"tag_name": "ai_gateway_model",
         "regex": r"^wasmcustom\.ai_gateway\.model\..*?(\.model\.(.+))$"},
        {"tag_name": "ai_gateway_rule",
         "regex": r"^wasmcustom\.ai_gateway\.model\..*?(\.rule\.([^.]+))\.model\."},
        {"tag_name": "ai_gateway_code",
         "regex": r"^wasmcustom\.ai_gateway\.model\.errors(\.code\.([^.]+))"},
        {"tag_name": "ai_gateway_mask",
         "regex": r"^wasmcustom\.ai_gateway\.data_protection\.(?:prompt|answer)(\.([^.]+))$"},
    ])
}
