//! What the core needs from the proxy, as a trait: the proxy-wasm layer implements it with host
//! calls, tests with [`crate::fake_host::FakeHost`]. Nothing here can re-enter the VM: replies,
//! resumptions and request edits are returned as [`crate::gateway::Effect`]s instead, applied by
//! the host layer once the core has returned.

use crate::outgoing::{CallResponse, OutgoingCall};
use crate::store::SharedStore;

pub trait Host {
    /// Milliseconds since the Unix epoch.
    fn now_ms(&self) -> u64;
    /// The data every worker of this Envoy shares.
    fn store(&self) -> &dyn SharedStore;
    /// Fills `buf` with random bytes; false when the host has no random source.
    fn random(&self, buf: &mut [u8]) -> bool;
    /// Dispatches `call`; its answer reaches [`crate::gateway::Gateway::on_call_response`] with the
    /// returned token. `owner` is the request whose life the call belongs to (Envoy cancels a
    /// request's calls when it ends), or `None` for the worker's own calls.
    fn dispatch(&self, call: &OutgoingCall, owner: Option<u32>) -> Option<u32>;
    /// The answer to a dispatched call, its body read only when within `max_body` bytes.
    fn call_response(&self, body_size: usize, max_body: usize) -> CallResponse;
    /// Adds to one of [`crate::observe::COUNTERS`].
    fn count(&self, counter: &'static str, by: u64);
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
}
