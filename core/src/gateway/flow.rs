//! One request's state: where it is in its life ([`Phase`]), what happens to its response
//! ([`ResponseMode`]), and what its audit record will say.

use crate::config::GatewayConfig;
use crate::host::Host;
use crate::http::RequestHead;
use crate::jwt::TokenError;
use crate::models::Grant;
use crate::oauth2::{FlowState, TokenResponse};
use crate::observe::{sampled, truncated, AuditRecord};
use crate::pipeline::{PendingAuth, Translation};
use crate::ratelimit::usage::UsageScanner;
use crate::ratelimit::Admission;
use crate::translate::{CompletionStreamTranslator, ResponseContext, StreamTranslator};

/// Where a request is in its life. The request-side phases, in order: `Head` (never seen after
/// the header callback), then waiting (for keys, or a login's token endpoint), then `HoldingBody`
/// or straight on to `Forwarded` / `Fetching` / `Answered`.
pub(super) enum Phase {
    Head,
    /// Paused until its token's provider keys arrive, or its wait ends.
    WaitingKeys(Box<KeysWait>),
    /// A login callback paused until the token endpoint answers.
    TokenExchange(crate::oauth2::FlowState),
    /// A login callback paused until the ID token's keys arrive, or its wait ends.
    WaitingIdTokenKeys(Box<IdTokenWait>),
    /// Paused until the IdP says whether its opaque token is active (this worker's call or
    /// another's), or its wait ends.
    WaitingIntrospection(Box<IntrospectionWait>),
    /// A login preset's callback paused until the provider answers its current call.
    PresetLogin(Box<super::login::PresetWait>),
    /// Allowed; its body is held whole (size unknown, translated, or its `max_tokens` reserved)
    /// up to `limit` bytes before any of it goes on.
    HoldingBody {
        limit: u64,
    },
    /// On its way to the upstream through the route.
    Forwarded,
    /// Decided on another request's callback: its model-server call is made on the next tick.
    FetchDue {
        fetch: Fetch,
        body: Option<Vec<u8>>,
    },
    /// The gateway fetches the answer from the model server itself.
    Fetching(Fetch),
    /// Allowed here, waiting for the rate-limit service's check of its mesh-wide limits.
    WaitingMeshLimits(Box<super::finish::Admitted>),
    /// Decided on another request's callback: its mesh check is dispatched on the next tick.
    MeshDue(Box<super::finish::Admitted>),
    /// A fetched answer, sent once the rate-limit service has its tokens.
    ChargingThenAnswer(crate::error::LocalReply),
    /// The gateway answered it itself.
    Answered,
}

/// A request paused until its provider's keys arrive.
pub(super) struct KeysWait {
    pub pending: PendingAuth,
    pub provider: usize,
    /// The refusal when keys exist but none fits the token (`unknown kid`, ...).
    pub otherwise: TokenError,
    /// Decided by then at the latest.
    pub deadline_ms: u64,
}

/// A request paused for its token's introspection.
pub(super) struct IntrospectionWait {
    pub pending: PendingAuth,
    /// Decided by then at the latest (503 if no answer came).
    pub deadline_ms: u64,
}

/// A callback whose token exchange succeeded but whose ID token names a signing key the
/// gateway has not fetched yet (the IdP rotated its keys): it waits for the keys, since the
/// one-time code is already spent.
pub(super) struct IdTokenWait {
    pub flow: FlowState,
    pub tokens: TokenResponse,
    pub deadline_ms: u64,
}

/// An answer the gateway fetches from the model server.
pub(super) enum Fetch {
    /// `/v1/models` or `/v1/models/{id}` from `/api/tags`.
    Models(Translation),
    /// A non-streamed chat from `/api/chat`.
    Chat(ResponseContext),
    /// A non-streamed completion from `/api/generate`.
    Completion(ResponseContext),
    /// Embeddings from `/api/embed` (what the answer's shape depends on; its body is sent).
    Embeddings(crate::translate::EmbeddingsRequest),
}

/// What happens to the upstream's response as it passes.
pub(super) enum ResponseMode {
    AsIs,
    /// The upstream's token usage is read for the token budgets.
    CountUsage(UsageScanner),
    /// A streamed chat or completion, once its response starts (NDJSON in, SSE out).
    StreamWith(ResponseContext, StreamApi),
    Streaming(AnswerStream),
    /// The upstream refused a streamed chat: its error body, translated once complete.
    ErrorBody(u32),
    /// Not sent as it came: this replaces it (an answer that cannot be masked).
    Withheld(Vec<u8>),
}

/// Which OpenAI API a streamed answer speaks.
#[derive(Clone, Copy)]
pub(super) enum StreamApi {
    Chat,
    Completion,
}

/// A streamed answer being translated, chunk by chunk.
pub(super) enum AnswerStream {
    Chat(StreamTranslator),
    Completion(CompletionStreamTranslator),
}

impl AnswerStream {
    pub fn new(context: ResponseContext, api: StreamApi) -> Self {
        match api {
            StreamApi::Chat => Self::Chat(StreamTranslator::new(context)),
            StreamApi::Completion => Self::Completion(CompletionStreamTranslator::new(context)),
        }
    }

    pub fn feed(&mut self, chunk: &[u8]) -> Vec<u8> {
        match self {
            Self::Chat(t) => t.feed(chunk),
            Self::Completion(t) => t.feed(chunk),
        }
    }

    pub fn finish(&mut self) -> Vec<u8> {
        match self {
            Self::Chat(t) => t.finish(),
            Self::Completion(t) => t.finish(),
        }
    }

    pub fn usage(&self) -> Option<(u64, u64)> {
        match self {
            Self::Chat(t) => t.usage(),
            Self::Completion(t) => t.usage(),
        }
    }
}

pub(super) struct Flow {
    pub phase: Phase,
    pub response: ResponseMode,
    pub audit: AuditRecord,
    /// Bodies are logged for this request (sampled).
    pub sampled: bool,
    /// What the rate limits recorded, once admitted.
    pub admission: Option<crate::ratelimit::Admission>,
    /// How the request is translated, once allowed.
    pub translation: Option<Translation>,
    /// The identity headers the request was allowed with, for calls the gateway makes on its
    /// behalf (the model server learns who the caller is, as on a forwarded request).
    pub caller_headers: Vec<(String, String)>,
    /// Where the gateway calls for this request's answer (translated requests): the cluster
    /// and `:authority`.
    pub model_server: Option<(String, String)>,
    /// The audit record as published at the response's end, reused for the log line.
    pub published_audit: Option<String>,
    /// The upstream's token usage was charged (once).
    pub settled: bool,
    /// The answer's end waits until the rate-limit service has its tokens.
    pub mesh_charging: bool,
    /// Under `models`: which models the caller may use, worked out from its scopes when it was
    /// allowed (the body naming the model comes later). `None` until then.
    pub model_grant: Option<Grant>,
    /// The body names a model to check (an untranslated model route under `models`).
    pub model_in_body: bool,
    /// With `data_protection.responses`: the answer's masker, once its headers are in.
    pub answer_mask: Option<crate::protect::answer::AnswerMasker>,
    /// The request's W3C trace context (`traceparent`, then `tracestate`), carried onto the
    /// calls the gateway makes for it.
    pub trace: Vec<(String, String)>,
    /// `Access-Control-*` headers every answer gets (a call from an allowed origin).
    pub cors: Vec<(&'static str, String)>,
    /// The answer is a stream (SSE or NDJSON): its first byte is its first token.
    pub streamed_answer: bool,
    /// When the first byte of a streamed answer passed (ms since the epoch).
    pub first_token_ms: Option<u64>,
}

impl Flow {
    /// What every audit record has: when, what, for whom (never a token or cookie; the path
    /// without its query, which may carry codes).
    pub fn start(head: &RequestHead, config: &GatewayConfig, host: &dyn Host) -> Self {
        let request_id = head.value("x-request-id").map(str::to_string);
        let trace = trace_context(head);
        let trace_id = trace
            .first()
            .and_then(|(_, parent)| parent.split('-').nth(1))
            .map(str::to_string);
        let audit = AuditRecord {
            time_ms: host.now_ms(),
            method: head.method().to_string(),
            path: head.path().split('?').next().unwrap_or("").to_string(),
            decision: "pending",
            // The key of `ip` rate limits; otherwise read only for a log line.
            client: (!config.rate_limits.is_empty() || config.emergency.is_some())
                .then(|| host.remote_address())
                .flatten(),
            request_id,
            trace_id,
            ..AuditRecord::default()
        };
        Self {
            phase: Phase::Head,
            response: ResponseMode::AsIs,
            sampled: sampled(
                audit.request_id.as_deref().unwrap_or(""),
                config.audit.sample_bodies,
            ),
            audit,
            admission: None,
            translation: None,
            caller_headers: Vec::new(),
            model_server: None,
            published_audit: None,
            settled: false,
            mesh_charging: false,
            model_grant: None,
            model_in_body: false,
            answer_mask: None,
            trace,
            cors: Vec::new(),
            streamed_answer: false,
            first_token_ms: None,
        }
    }

    pub fn answered_locally(&self) -> bool {
        matches!(self.phase, Phase::Answered)
    }

    pub fn admission(&self) -> Option<&Admission> {
        self.admission.as_ref()
    }

    /// Keeps up to `max` bytes of a sampled body for the audit record.
    pub fn keep_body(&self, kept: &mut Option<String>, chunk: &[u8], max: usize) {
        if !self.sampled {
            return;
        }
        let current = kept.get_or_insert_with(String::new);
        if current.len() < max {
            current.push_str(&truncated(chunk, max - current.len()));
        }
    }

    pub fn keep_request_body(&mut self, chunk: &[u8], max: usize) {
        let mut kept = self.audit.request_body.take();
        self.keep_body(&mut kept, chunk, max);
        self.audit.request_body = kept;
    }

    pub fn keep_response_body(&mut self, chunk: &[u8], max: usize) {
        let mut kept = self.audit.response_body.take();
        self.keep_body(&mut kept, chunk, max);
        self.audit.response_body = kept;
    }
}

/// `traceparent` (when it has the W3C form `00-<32 hex>-<16 hex>-<2 hex>`) and its
/// `tracestate`; nothing when there is no valid parent.
pub(super) fn trace_context(head: &RequestHead) -> Vec<(String, String)> {
    let Some(parent) = head
        .value("traceparent")
        .map(|p| p.trim().to_ascii_lowercase())
    else {
        return Vec::new();
    };
    let parts: Vec<&str> = parent.split('-').collect();
    let hex = |s: &str, len: usize| s.len() == len && s.bytes().all(|b| b.is_ascii_hexdigit());
    let valid = matches!(parts.as_slice(), [v, t, p, f]
        if hex(v, 2) && *v != "ff" && hex(t, 32) && hex(p, 16) && hex(f, 2)
            && *t != "00000000000000000000000000000000" && *p != "0000000000000000");
    if !valid {
        return Vec::new();
    }
    let mut trace = vec![("traceparent".to_string(), parent.clone())];
    let state_ok =
        |s: &&str| s.len() <= 512 && s.bytes().all(|b| (0x20..0x7f).contains(&b) && b != b'"');
    if let Some(state) = head.value("tracestate").filter(state_ok) {
        trace.push(("tracestate".to_string(), state.to_string()));
    }
    trace
}
