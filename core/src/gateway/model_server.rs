//! The calls the gateway makes to the model server for translated requests it answers itself
//! (model lists, non-streamed chats), and the replies it builds from their answers.

use crate::error::{GatewayError, LocalReply};
use crate::observe::AuditRecord;
use crate::outgoing::{CallResponse, OutgoingCall};
use crate::pipeline::{Forwarding, Translation};
use crate::translate::{self, ResponseContext};

use super::flow::Fetch;

/// Largest upstream answer the gateway fetches into the VM (model lists, non-streamed chats).
pub const MAX_FETCHED_BYTES: usize = 16 * 1024 * 1024;

/// What the model server learns about the caller on a call the gateway makes for it: the
/// gateway's identity headers (never pseudo-headers) and the request id, as on a forwarded
/// request.
pub(super) fn caller_headers(
    forwarding: &Forwarding,
    audit: &AuditRecord,
) -> Vec<(String, String)> {
    let mut headers: Vec<(String, String)> = forwarding
        .set_headers
        .iter()
        .filter(|(name, _)| !name.starts_with(':'))
        .cloned()
        .collect();
    if let Some(id) = &audit.request_id {
        headers.push(("x-request-id".to_string(), id.clone()));
    }
    headers
}

/// The call that fetches `fetch`'s answer.
pub(super) fn call(
    timeout_ms: u64,
    (cluster, authority): &(String, String),
    fetch: &Fetch,
    caller_headers: &[(String, String)],
    body: Option<Vec<u8>>,
) -> OutgoingCall {
    let (method, path) = match fetch {
        Fetch::Models(_) => ("GET", "/api/tags"),
        Fetch::Chat(_) => ("POST", "/api/chat"),
        Fetch::Completion(_) => ("POST", "/api/generate"),
        Fetch::Embeddings(_) => ("POST", "/api/embed"),
    };
    let mut call = OutgoingCall::new(cluster, authority, timeout_ms, method, path)
        .header("accept", "application/json");
    if let Some(body) = body {
        call = call.header("content-type", "application/json").body(body);
    }
    call.headers.extend(caller_headers.iter().cloned());
    call
}

/// A fresh answer id (`chatcmpl-…`, `cmpl-…`) from 12 random bytes.
pub(super) fn answer_id(prefix: &str, random: [u8; 12]) -> String {
    let hex: String = random.iter().map(|b| format!("{b:02x}")).collect();
    format!("{prefix}-{hex}")
}

fn json_reply(status: u32, body: Vec<u8>) -> LocalReply {
    LocalReply {
        status,
        headers: vec![("content-type".to_string(), "application/json".to_string())],
        // Serialised JSON is UTF-8: kept without a copy (lossy only if it ever were not).
        body: String::from_utf8(body)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned()),
    }
}

/// The reply for a request with no answer at all (timeout, connection refused).
fn no_answer(realm: &str) -> LocalReply {
    GatewayError::UpstreamError("the model server did not answer".into()).to_reply(realm)
}

/// The reply to `GET /v1/models` or `/v1/models/{id}` from `/api/tags`, among the models the
/// caller may use (`usable`): one it may not is answered as one that does not exist.
pub(super) fn models_reply(
    plan: &Translation,
    response: &CallResponse,
    realm: &str,
    usable: impl Fn(&str) -> bool,
) -> LocalReply {
    let (Some(status), Some(body)) = (response.status, response.body.as_deref()) else {
        return no_answer(realm);
    };
    if !(200..300).contains(&status) {
        return error_reply(status, body, realm);
    }
    let result = match plan {
        Translation::Model(id) => translate::model_object_where(body, id, usable).map(|found| {
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
        _ => translate::models_list_where(body, usable).map(|list| json_reply(200, list)),
    };
    result.unwrap_or_else(|e| GatewayError::UpstreamError(e.0).to_reply(realm))
}

/// The reply to a fetched chat, completion or embeddings request, and the tokens it used
/// (prompt, completion) when it succeeded.
pub(super) fn body_reply(
    fetch: &Fetch,
    response: &CallResponse,
    realm: &str,
) -> (LocalReply, Option<(u64, u64)>) {
    let (Some(status), Some(body)) = (response.status, response.body.as_deref()) else {
        return (no_answer(realm), None);
    };
    let status = u16::try_from(status).unwrap_or(502);
    let translated = match fetch {
        Fetch::Chat(ctx) => translate::chat_answer(status, body, ctx),
        Fetch::Completion(ctx) => translate::completion_answer(status, body, ctx),
        Fetch::Embeddings(request) => {
            return match translate::embeddings_response(status, body, request) {
                Ok((status, answer, prompt)) => (
                    json_reply(u32::from(status), answer),
                    prompt.map(|prompt| (prompt, 0)),
                ),
                Err(e) => (GatewayError::UpstreamError(e.0).to_reply(realm), None),
            };
        }
        Fetch::Models(_) => return (no_answer(realm), None),
    };
    match translated {
        // The usage the translation read: the answer is parsed once (it may be megabytes).
        Ok(translated) => (
            json_reply(u32::from(translated.status), translated.body),
            translated.usage,
        ),
        Err(e) => (GatewayError::UpstreamError(e.0).to_reply(realm), None),
    }
}

/// An upstream error status: OpenAI's error shape with the same status (via the chat
/// translation, which knows Ollama's `{"error": ...}`).
pub(super) fn error_reply(status: u32, body: &[u8], realm: &str) -> LocalReply {
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
