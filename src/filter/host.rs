//! Host calls wrapped so that a failure is a value, never a panic.

use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType, Status};

use crate::error::LocalReply;
use crate::jwks::fetch::FetchResponse;
use crate::jwt::RemoteJwks;
use crate::pipeline::Forwarding;
use crate::store::{SharedStore, StoreError};

/// All request headers. Values are read as bytes and decoded lossily: the SDK's `get_map`
/// unwraps UTF-8 decoding, so a hostile header value with a byte >= 0x80 would panic the VM.
pub fn request_headers() -> Option<Vec<(String, String)>> {
    let pairs = hostcalls::get_map_bytes(MapType::HttpRequestHeaders).ok()?;
    Some(
        pairs
            .into_iter()
            .map(|(name, value)| (name, String::from_utf8_lossy(&value).into_owned()))
            .collect(),
    )
}

pub fn remove_request_header(name: &str) -> bool {
    hostcalls::remove_map_value(MapType::HttpRequestHeaders, name).is_ok()
}

pub fn set_request_header(name: &str, value: &str) -> bool {
    hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value)).is_ok()
}

pub fn plugin_configuration() -> Vec<u8> {
    hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
        .ok()
        .flatten()
        .unwrap_or_default()
}

pub fn send_reply(reply: &LocalReply) {
    let headers: Vec<(&str, &str)> = reply
        .headers
        .iter()
        .map(|(k, v)| (k.as_str(), v.as_str()))
        .collect();
    if hostcalls::send_http_response(reply.status, headers, Some(reply.body.as_bytes())).is_err() {
        log::error!("ai-gateway: could not send the local reply; resetting the request");
        let _ = hostcalls::reset_http_request();
    }
}

/// Milliseconds since the Unix epoch, from the host clock.
pub fn now_ms() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// Proxy-wasm shared data: one store for every worker of this Envoy (same `vm_id`).
pub struct HostStore;

impl SharedStore for HostStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        match hostcalls::get_shared_data(key) {
            Ok((Some(value), Some(cas))) => Some((value, cas)),
            _ => None,
        }
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        match hostcalls::set_shared_data(key, Some(value), cas) {
            Ok(()) => Ok(()),
            Err(Status::CasMismatch) => Err(StoreError::CasMismatch),
            Err(_) => Err(StoreError::Failed),
        }
    }
}

/// Dispatches `GET path` to `cluster`; the answer comes to the calling context's
/// `on_http_call_response` with the returned token.
pub fn dispatch_get(remote: &RemoteJwks, path: &str) -> Option<u32> {
    let headers = vec![
        (":method", "GET"),
        (":path", path),
        (":authority", remote.authority.as_str()),
        ("accept", "application/json"),
        ("user-agent", "ai-gateway"),
    ];
    hostcalls::dispatch_http_call(
        &remote.cluster,
        headers,
        None,
        vec![],
        Duration::from_millis(remote.timeout_ms),
    )
    .ok()
}

/// The answer to a dispatched call: its status (none after a timeout or connection failure)
/// and its body, read only when it is within `max_body` bytes.
pub fn call_response(body_size: usize, max_body: usize) -> FetchResponse {
    let status = hostcalls::get_map_value_bytes(MapType::HttpCallResponseHeaders, ":status")
        .ok()
        .flatten()
        .and_then(|s| std::str::from_utf8(&s).ok()?.parse().ok());
    let body = if body_size > max_body {
        // Oversized: report a body just over the cap without copying it into the VM.
        Some(vec![b' '; max_body + 1])
    } else {
        hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
            .ok()
            .flatten()
    };
    FetchResponse { status, body }
}

/// Makes `context_id` the target of the following host calls (to finish a request that was
/// waiting, from the root context's tick).
pub fn set_effective_context(context_id: u32) -> bool {
    hostcalls::set_effective_context(context_id).is_ok()
}

pub fn resume_request() -> bool {
    hostcalls::resume_http_request().is_ok()
}

pub fn set_tick_period(period: Duration) {
    let _ = hostcalls::set_tick_period(period);
}

/// Applies the pipeline's header edits to the current (effective) request.
pub fn apply_header_edits(forwarding: &Forwarding) -> bool {
    let removed = forwarding
        .remove_headers
        .iter()
        .all(|name| remove_request_header(name));
    let set = forwarding
        .set_headers
        .iter()
        .all(|(name, value)| set_request_header(name, value));
    removed && set
}

/// The downstream peer's address (`source.address`).
pub fn remote_address() -> Option<String> {
    hostcalls::get_property(vec!["source", "address"])
        .ok()
        .flatten()
        .and_then(|bytes| String::from_utf8(bytes).ok())
}

pub fn add_response_header(name: &str, value: &str) -> bool {
    hostcalls::add_map_value(MapType::HttpResponseHeaders, name, value).is_ok()
}

/// The response body chunk of this callback (`body_size` bytes).
pub fn response_body_chunk(body_size: usize) -> Option<Vec<u8>> {
    hostcalls::get_buffer(BufferType::HttpResponseBody, 0, body_size)
        .ok()
        .flatten()
}

/// The buffered request body (`body_size` bytes).
pub fn request_body(body_size: usize) -> Option<Vec<u8>> {
    hostcalls::get_buffer(BufferType::HttpRequestBody, 0, body_size)
        .ok()
        .flatten()
}

pub fn set_request_body(size: usize, body: &[u8]) -> bool {
    hostcalls::set_buffer(BufferType::HttpRequestBody, 0, size, body).is_ok()
}

pub fn set_response_body(size: usize, body: &[u8]) -> bool {
    hostcalls::set_buffer(BufferType::HttpResponseBody, 0, size, body).is_ok()
}

pub fn response_header(name: &str) -> Option<String> {
    hostcalls::get_map_value_bytes(MapType::HttpResponseHeaders, name)
        .ok()
        .flatten()
        .map(|v| String::from_utf8_lossy(&v).into_owned())
}

pub fn set_response_header(name: &str, value: &str) -> bool {
    hostcalls::set_map_value(MapType::HttpResponseHeaders, name, Some(value)).is_ok()
}

pub fn remove_response_header(name: &str) -> bool {
    hostcalls::remove_map_value(MapType::HttpResponseHeaders, name).is_ok()
}

/// Publishes the audit record as filter state (`wasm.ai_gateway_audit`), for Envoy's access log.
pub fn set_audit_property(record: &str) {
    let _ = hostcalls::set_property(vec!["ai_gateway_audit"], Some(record.as_bytes()));
}

pub fn audit_log(record: &str) {
    log::info!("ai-gateway audit {record}");
}
