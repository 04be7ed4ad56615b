//! Every proxy-wasm host call of the filter: the core's [`Host`] implemented with them, and the
//! effects the core returns applied with them. A failing host call is a value, never a panic.

use std::cell::Cell;
use std::cell::RefCell;
use std::collections::HashMap;
use std::time::Duration;

use gateway_core::error::{GatewayError, LocalReply};
use gateway_core::gateway::{Effect, Next, Output};
use gateway_core::host::Host;
use gateway_core::observe::{COUNTERS, GAUGES, PREFIX};
use gateway_core::outgoing::{CallResponse, GrpcCall, OutgoingCall};
use gateway_core::store::{SharedStore, StoreError};
use proxy_wasm::hostcalls;
use proxy_wasm::types::{Action, BufferType, LogLevel, MapType, MetricType, Status};

thread_local! {
    /// The context whose callback is running (the host's effective context), so that a call
    /// dispatched on behalf of another request can switch to it and back.
    static CURRENT: Cell<u32> = const { Cell::new(0) };
    /// The clock as first read in the running callback: one host call per callback instead of
    /// one per reader (a request's first callback reads it three times).
    static NOW_MS: Cell<Option<u64>> = const { Cell::new(None) };
}

/// Marks `context` as the running callback's context until the guard drops (callbacks nest:
/// a local reply runs the same request's response callbacks inside the call that sent it).
pub struct Entered(u32);

pub fn enter(context: u32) -> Entered {
    NOW_MS.with(|now| now.set(None));
    Entered(CURRENT.with(|current| current.replace(context)))
}

impl Drop for Entered {
    fn drop(&mut self) {
        NOW_MS.with(|now| now.set(None));
        CURRENT.with(|current| current.set(self.0));
    }
}

fn current() -> u32 {
    CURRENT.with(Cell::get)
}

pub fn install_log_and_panic_hook() {
    proxy_wasm::set_log_level(LogLevel::Info);
    // After set_log_level, which installs the SDK's own hook (that one unwraps the log call).
    std::panic::set_hook(Box::new(|info| {
        let _ = hostcalls::log(
            LogLevel::Critical,
            &format!("ai-gateway: panic, this worker's VM is now unusable: {info}"),
        );
    }));
}

/// Logs below Envoy's level for Wasm are not even formatted (the audit line is written per
/// request: `--component-log-level wasm:warning` makes it cost nothing).
pub fn sync_log_level() {
    if let Ok(level) = hostcalls::get_log_level() {
        proxy_wasm::set_log_level(level);
    }
}

pub fn plugin_configuration() -> Vec<u8> {
    hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX)
        .ok()
        .flatten()
        .unwrap_or_default()
}

pub fn set_tick_period(ms: u64) {
    let _ = hostcalls::set_tick_period(Duration::from_millis(ms));
}

/// All request headers. Values are read as bytes and decoded lossily: the SDK's `get_map`
/// unwraps UTF-8 decoding, so a hostile header value with a byte >= 0x80 would panic the VM.
pub fn request_headers() -> Option<Vec<(String, String)>> {
    let pairs = hostcalls::get_map_bytes(MapType::HttpRequestHeaders).ok()?;
    Some(
        pairs
            .into_iter()
            .map(|(name, value)| {
                // Valid UTF-8 (nearly always) is kept without a copy.
                let value = String::from_utf8(value)
                    .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned());
                (name, value)
            })
            .collect(),
    )
}

fn send_reply(reply: &LocalReply) {
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

/// The answer when the host would not let a request be edited as decided: refused, never
/// forwarded half-edited.
pub fn refuse_unedited(why: &'static str) {
    send_reply(&GatewayError::Internal(why).to_reply("ai-gateway"));
}

fn set_effective_context(context: u32) -> bool {
    hostcalls::set_effective_context(context).is_ok()
}

/// Applies the core's output for the callback of `context` and returns what the callback
/// answers. Effects on other requests are made on their context, then this one is restored.
pub fn apply(context: u32, output: Output) -> Action {
    let mut next = output.next;
    // Unknown after an effect that runs callbacks of its request inside it (a reply, a resume).
    let mut effective = Some(context);
    for (target, effect) in output.effects {
        if effective != Some(target) {
            if !set_effective_context(target) {
                // That request is gone.
                continue;
            }
            effective = Some(target);
        }
        if matches!(
            effect,
            Effect::Reply(_) | Effect::Forward { resume: true, .. } | Effect::ResumeResponse
        ) {
            effective = None;
        }
        if !apply_effect(effect) && target == context {
            next = Next::Pause;
        }
    }
    if effective != Some(context) {
        set_effective_context(context);
    }
    match next {
        Next::Continue => Action::Continue,
        Next::Pause => Action::Pause,
    }
}

/// Makes one effect on the effective context. False when the request was refused instead
/// because the host would not make it.
fn apply_effect(effect: Effect) -> bool {
    match effect {
        Effect::Forward {
            remove,
            set,
            resume,
        } => {
            let removed = remove
                .iter()
                .all(|name| hostcalls::remove_map_value(MapType::HttpRequestHeaders, name).is_ok());
            let edited = removed
                && set.iter().all(|(name, value)| {
                    hostcalls::set_map_value(MapType::HttpRequestHeaders, name, Some(value)).is_ok()
                });
            if !edited {
                refuse_unedited("could not edit request headers");
                return false;
            }
            if resume {
                let _ = hostcalls::resume_http_request();
            }
        }
        Effect::Reply(reply) => send_reply(&reply),
        Effect::ReplaceRequestBody { size, body } => {
            if hostcalls::set_buffer(BufferType::HttpRequestBody, 0, size, &body).is_err() {
                refuse_unedited("could not rewrite the request body");
                return false;
            }
        }
        Effect::ReplaceResponseBody { size, body } => {
            let _ = hostcalls::set_buffer(BufferType::HttpResponseBody, 0, size, &body);
        }
        Effect::SetResponseHeader(name, value) => {
            let _ = hostcalls::set_map_value(MapType::HttpResponseHeaders, name, Some(&value));
        }
        Effect::AddResponseHeader(name, value) => {
            let _ = hostcalls::add_map_value(MapType::HttpResponseHeaders, &name, &value);
        }
        Effect::RemoveResponseHeader(name) => {
            let _ = hostcalls::remove_map_value(MapType::HttpResponseHeaders, name);
        }
        Effect::ResumeResponse => {
            let _ = hostcalls::resume_http_response();
        }
        Effect::PublishAudit(record) => {
            // Filter state `wasm.ai_gateway_audit`, for Envoy's access log.
            let _ = hostcalls::set_property(vec!["ai_gateway_audit"], Some(record.as_bytes()));
        }
    }
    true
}

/// Proxy-wasm shared data: one store for every worker of this Envoy (same `vm_id`).
struct HostStore;

impl SharedStore for HostStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        // The SDK gives an empty value as `None` beside its version: the key exists, and its
        // version must reach a compare-and-swap (a CAS of 0 is unconditional, so two workers
        // could both claim an idle introspection slot).
        match hostcalls::get_shared_data(key) {
            Ok((value, Some(cas))) => Some((value.unwrap_or_default(), cas)),
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

/// The core's host: Envoy through proxy-wasm. Metrics are defined once per worker (Envoy
/// shares a stat of the same name between workers) as `wasmcustom.ai_gateway.*`.
pub struct WasmHost {
    metrics: HashMap<&'static str, u32>,
    /// Counters named at run time, defined on first use.
    named: RefCell<HashMap<String, u32>>,
}

impl WasmHost {
    pub fn new() -> Self {
        let kinds = COUNTERS
            .iter()
            .map(|n| (*n, MetricType::Counter))
            .chain(GAUGES.iter().map(|n| (*n, MetricType::Gauge)));
        let metrics = kinds
            .filter_map(|(name, kind)| {
                let id = hostcalls::define_metric(kind, &format!("{PREFIX}.{name}")).ok()?;
                Some((name, id))
            })
            .collect();
        Self {
            metrics,
            named: RefCell::new(HashMap::new()),
        }
    }
}

impl WasmHost {
    /// The id of a metric named at run time, defined on first use.
    fn named_metric(&self, kind: MetricType, name: &str) -> Option<u32> {
        if let Some(id) = self.named.borrow().get(name) {
            return Some(*id);
        }
        let id = hostcalls::define_metric(kind, &format!("{PREFIX}.{name}")).ok()?;
        self.named.borrow_mut().insert(name.to_string(), id);
        Some(id)
    }
}

impl Host for WasmHost {
    fn now_ms(&self) -> u64 {
        if let Some(now) = NOW_MS.with(Cell::get) {
            return now;
        }
        let now = hostcalls::get_current_time()
            .ok()
            .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        NOW_MS.with(|cell| cell.set(Some(now)));
        now
    }

    fn store(&self) -> &dyn SharedStore {
        &HostStore
    }

    fn random(&self, buf: &mut [u8]) -> bool {
        getrandom::getrandom(buf).is_ok()
    }

    fn dispatch(&self, call: &OutgoingCall, running: Option<u32>) -> Option<u32> {
        // The core dispatches only from the context whose callback runs (the SDK hands the
        // answer to that one); anything else is a bug, refused rather than lost.
        if running.is_some_and(|running| running != current()) {
            return None;
        }
        let headers: Vec<(&str, &str)> = call
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        hostcalls::dispatch_http_call(
            &call.cluster,
            headers,
            call.body.as_deref(),
            vec![],
            Duration::from_millis(call.timeout_ms),
        )
        .ok()
    }

    fn dispatch_grpc(&self, call: &GrpcCall, running: Option<u32>) -> Option<u32> {
        if running.is_some_and(|running| running != current()) {
            return None;
        }
        hostcalls::dispatch_grpc_call(
            &call.cluster,
            call.service,
            call.method,
            vec![],
            Some(&call.message),
            Duration::from_millis(call.timeout_ms),
        )
        .ok()
    }

    fn grpc_response(&self, body_size: usize, max_body: usize) -> Option<Vec<u8>> {
        if body_size > max_body {
            return None;
        }
        crate::raw::buffer(BufferType::GrpcReceiveBuffer as u32, 0, body_size)
    }

    fn call_response(&self, body_size: usize, max_body: usize) -> CallResponse {
        // Not the SDK's getters: they panic on a status they do not expect, and Envoy answers
        // with one when a call's response overflowed its buffer (a 50 MB JWKS), which made the
        // worker's VM unusable (every later request 503).
        let status = crate::raw::map_value(MapType::HttpCallResponseHeaders as u32, ":status")
            .and_then(|s| std::str::from_utf8(&s).ok()?.parse().ok());
        let body = if body_size > max_body {
            // Oversized: report a body just over the cap without copying it into the VM.
            Some(vec![b' '; max_body + 1])
        } else {
            crate::raw::buffer(BufferType::HttpCallResponseBody as u32, 0, body_size)
        };
        CallResponse { status, body }
    }

    fn count(&self, counter: &'static str, by: u64) {
        if by == 0 {
            // Nothing to count: spare the host call.
            return;
        }
        if let Some(id) = self.metrics.get(counter) {
            let _ = hostcalls::increment_metric(*id, i64::try_from(by).unwrap_or(i64::MAX));
        }
    }

    fn count_named(&self, counter: &str, by: u64) {
        if by == 0 {
            return;
        }
        if let Some(id) = self.named_metric(MetricType::Counter, counter) {
            let _ = hostcalls::increment_metric(id, i64::try_from(by).unwrap_or(i64::MAX));
        }
    }

    fn histogram_named(&self, histogram: &str, value: u64) {
        if let Some(id) = self.named_metric(MetricType::Histogram, histogram) {
            let _ = hostcalls::record_metric(id, value);
        }
    }

    fn gauge(&self, gauge: &'static str, value: u64) {
        if let Some(id) = self.metrics.get(gauge) {
            let _ = hostcalls::record_metric(*id, value);
        }
    }

    fn remote_address(&self) -> Option<String> {
        hostcalls::get_property(vec!["source", "address"])
            .ok()
            .flatten()
            .and_then(|bytes| String::from_utf8(bytes).ok())
    }

    fn request_body(&self, size: usize) -> Option<Vec<u8>> {
        hostcalls::get_buffer(BufferType::HttpRequestBody, 0, size)
            .ok()
            .flatten()
    }

    fn response_body(&self, size: usize) -> Option<Vec<u8>> {
        hostcalls::get_buffer(BufferType::HttpResponseBody, 0, size)
            .ok()
            .flatten()
    }

    fn routed_cluster(&self) -> Option<String> {
        hostcalls::get_property(vec!["xds", "cluster_name"])
            .ok()
            .flatten()
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .filter(|name| !name.is_empty())
    }

    fn response_header(&self, name: &str) -> Option<String> {
        hostcalls::get_map_value_bytes(MapType::HttpResponseHeaders, name)
            .ok()
            .flatten()
            .map(|v| String::from_utf8_lossy(&v).into_owned())
    }
}
