//! What the core needs from the proxy, as a trait: the proxy-wasm layer implements it with host
//! calls, tests with [`crate::fake_host::FakeHost`]. Nothing here can re-enter the VM: replies,
//! resumptions and request edits are returned as [`crate::gateway::Effect`]s instead, applied by
//! the host layer once the core has returned.

use crate::outgoing::{CallResponse, GrpcCall, OutgoingCall};
use crate::store::SharedStore;

pub trait Host {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
    /// The data every worker of this Envoy shares.
    fn store(&self) -> &dyn SharedStore;
    /// Fills `buf` with random bytes; false when the host has no random source.
    fn random(&self, buf: &mut [u8]) -> bool;
    /// Dispatches `call` from the context whose callback is running: `running` is that request,
    /// or `None` for the worker's own (root) context. The answer comes back to that same context
    /// (and reaches [`crate::gateway::Gateway::on_call_response`] with the returned token); Envoy
    /// cancels the call if that request ends first. The proxy-wasm SDK routes an answer to the
    /// context that was running at dispatch, whatever effective context was set, so a call is
    /// never made on another request's behalf from a third context.
    fn dispatch(&self, call: &OutgoingCall, running: Option<u32>) -> Option<u32>;
    /// The answer to a dispatched call, its body read only when within `max_body` bytes.
    fn call_response(&self, body_size: usize, max_body: usize) -> CallResponse;
    /// Dispatches a unary gRPC call, like [`Host::dispatch`] (same context rules); its answer
    /// reaches [`crate::gateway::Gateway::on_grpc_response`].
    fn dispatch_grpc(&self, call: &GrpcCall, running: Option<u32>) -> Option<u32>;
    /// The answered gRPC call's message (`None` when larger than `max_body` or unreadable).
    fn grpc_response(&self, body_size: usize, max_body: usize) -> Option<Vec<u8>>;
    /// Adds to one of [`crate::observe::COUNTERS`].
    fn count(&self, counter: &'static str, by: u64);
    /// Adds to a counter named at run time (`data_protection.prompt.email`): defined by the host
    /// on first use. Callers keep the set of names bounded (configured names only).
    fn count_named(&self, counter: &str, by: u64);
    /// Records a value in a histogram named at run time (defined on first use, bounded names).
    fn histogram_named(&self, histogram: &str, value: u64);
    /// Sets one of [`crate::observe::GAUGES`].
    fn gauge(&self, gauge: &'static str, value: u64);

    // The request whose callback is running.
    /// The downstream peer's address.
    fn remote_address(&self) -> Option<String>;
    /// The buffered request body (`size` bytes).
    fn request_body(&self, size: usize) -> Option<Vec<u8>>;
    /// This callback's response body chunk (`size` bytes).
    fn response_body(&self, size: usize) -> Option<Vec<u8>>;
    fn response_header(&self, name: &str) -> Option<String>;
    /// The cluster the request's route chose (`xds.cluster_name`, resolved by Envoy before the
    /// filters run).
    fn routed_cluster(&self) -> Option<String>;
}
