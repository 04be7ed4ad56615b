//! Host calls wrapped so that a failure is a value, never a panic.

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType};

use crate::error::LocalReply;

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
