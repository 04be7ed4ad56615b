//! Translation glue: turns what the upstream answered into the local reply an OpenAI client
//! gets (for answers the gateway fetched itself), and rewrites streamed answers chunk by chunk.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

use proxy_wasm::hostcalls;

use crate::config::TranslateSettings;
use crate::error::{GatewayError, LocalReply};
use crate::jwks::fetch::FetchResponse;
use crate::pipeline::Translation;
use crate::translate::{self, ResponseContext};

/// Largest upstream answer the gateway fetches into the VM (model lists, non-streamed chats).
pub const MAX_FETCHED_BYTES: usize = 16 * 1024 * 1024;

/// A fresh `chatcmpl-` id.
pub fn completion_id() -> String {
    let a = RandomState::new().build_hasher().finish();
    let b = RandomState::new().build_hasher().finish();
    format!("chatcmpl-{a:016x}{b:08x}")
}

pub fn response_context(include_usage: bool, now_ms: u64) -> ResponseContext {
    ResponseContext {
        id: completion_id(),
        now_s: now_ms / 1000,
        include_usage,
    }
}

/// Dispatches a request to the translation upstream; the answer comes to the calling context.
/// The headers a forwarded request carries about its caller (the gateway's identity headers,
/// not pseudo-headers), for calls the gateway makes itself on the request's behalf.
pub fn caller_headers(forwarding: &crate::pipeline::Forwarding) -> Vec<(String, String)> {
    forwarding
        .set_headers
        .iter()
        .filter(|(name, _)| !name.starts_with(':'))
        .cloned()
        .collect()
}

/// `caller_headers`: what the upstream learns about the caller (the gateway's identity headers,
/// the request id), as it would on a forwarded request.
pub fn dispatch(
    settings: &TranslateSettings,
    method: &str,
    path: &str,
    body: Option<&[u8]>,
    caller_headers: &[(String, String)],
) -> Option<u32> {
    let mut headers = vec![
        (":method", method),
        (":path", path),
        (":authority", settings.authority.as_str()),
        ("accept", "application/json"),
    ];
    if body.is_some() {
        headers.push(("content-type", "application/json"));
    }
    headers.extend(
        caller_headers
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str())),
    );
    hostcalls::dispatch_http_call(
        &settings.cluster,
        headers,
        body,
        vec![],
        Duration::from_millis(settings.timeout_ms),
    )
    .ok()
}

fn json_reply(status: u32, body: Vec<u8>) -> LocalReply {
    LocalReply {
        status,
        headers: vec![("content-type".to_string(), "application/json".to_string())],
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// The reply for a request with no answer at all (timeout, connection refused).
fn no_answer(realm: &str) -> LocalReply {
    GatewayError::UpstreamError("the model server did not answer".into()).to_reply(realm)
}

/// The reply to `GET /v1/models` or `/v1/models/{id}` from `/api/tags`.
pub fn models_reply(
    translation: &Translation,
    response: &FetchResponse,
    realm: &str,
) -> LocalReply {
    let (Some(status), Some(body)) = (response.status, response.body.as_deref()) else {
        return no_answer(realm);
    };
    if !(200..300).contains(&status) {
        return upstream_error_reply(status, body, realm);
    }
    let result = match translation {
        Translation::Model(id) => translate::model_object(body, id).map(|found| {
            found.map_or_else(
                || {
                    json_reply(
                        404,
                        translate::openai_error(404, &format!("The model `{id}` does not exist")),
                    )
                },
                |object| json_reply(200, object),
            )
        }),
        _ => translate::models_list(body).map(|list| json_reply(200, list)),
    };
    result.unwrap_or_else(|e| GatewayError::UpstreamError(e.0).to_reply(realm))
}

/// The reply to a non-streamed chat, and the tokens it used.
pub fn chat_reply(
    ctx: &ResponseContext,
    response: &FetchResponse,
    realm: &str,
) -> (LocalReply, Option<u64>) {
    let (Some(status), Some(body)) = (response.status, response.body.as_deref()) else {
        return (no_answer(realm), None);
    };
    let status = u16::try_from(status).unwrap_or(502);
    match translate::chat_response(status, body, ctx) {
        Ok((status, translated)) => {
            let mut usage = crate::ratelimit::usage::UsageScanner::new();
            usage.feed(body);
            (json_reply(u32::from(status), translated), usage.finish())
        }
        Err(e) => (GatewayError::UpstreamError(e.0).to_reply(realm), None),
    }
}

/// The body of an upstream error, in OpenAI's shape (its status is already on its way).
pub fn error_body(status: u32, body: &[u8], realm: &str) -> LocalReply {
    upstream_error_reply(status, body, realm)
}

/// An upstream error status: OpenAI's error shape with the same status (via the chat
/// translation, which knows Ollama's `{"error": ...}`).
fn upstream_error_reply(status: u32, body: &[u8], realm: &str) -> LocalReply {
    let code = u16::try_from(status).unwrap_or(502);
    let ctx = ResponseContext {
        id: String::new(),
        now_s: 0,
        include_usage: false,
    };
    match translate::chat_response(code, body, &ctx) {
        Ok((code, translated)) => json_reply(u32::from(code), translated),
        Err(e) => GatewayError::UpstreamError(e.0).to_reply(realm),
    }
}
