//! A host for native tests: a clock the test moves, an in-memory shared store (shareable
//! between several gateways, as Envoy's workers share it), recorded calls and counters.

use std::cell::{Cell, RefCell};
use std::collections::HashMap;
use std::rc::Rc;

use crate::host::Host;
use crate::outgoing::{CallResponse, GrpcCall, OutgoingCall};
use crate::store::{MemoryStore, SharedStore};

/// What the test sees and steers; shared by the [`FakeHost`] handed to a gateway.
#[derive(Default)]
pub struct HostState {
    pub now_ms: Cell<u64>,
    pub next_token: Cell<u32>,
    /// Every dispatched call: token, the call, the context it was dispatched from (`None`: the
    /// worker's root).
    pub calls: RefCell<Vec<(u32, OutgoingCall, Option<u32>)>>,
    /// The answer `call_response` gives next.
    pub answer: RefCell<CallResponse>,
    pub counters: RefCell<HashMap<&'static str, u64>>,
    pub named_counters: RefCell<HashMap<String, u64>>,
    pub histograms: RefCell<HashMap<String, Vec<u64>>>,
    pub gauges: RefCell<HashMap<&'static str, u64>>,
    /// The running callback's request body, response body and response headers.
    pub request_body: RefCell<Vec<u8>>,
    pub response_body: RefCell<Vec<u8>>,
    pub response_headers: RefCell<Vec<(String, String)>>,
    /// Every dispatched gRPC call: token, the call, the context it was dispatched from.
    pub grpc_calls: RefCell<Vec<(u32, GrpcCall, Option<u32>)>>,
    /// The message `grpc_response` gives next.
    pub grpc_answer: RefCell<Option<Vec<u8>>>,
    /// Dispatch fails (no such cluster).
    pub refuse_dispatch: Cell<bool>,
    /// The host has no random source (`random` fails).
    pub no_random: Cell<bool>,
    /// Random draws so far: each draw differs from the last, as a real source's would.
    pub random_draws: Cell<u32>,
    /// The cluster of the request's route.
    pub routed_cluster: RefCell<Option<String>>,
}

impl HostState {
    pub fn counter(&self, name: &str) -> u64 {
        self.counters.borrow().get(name).copied().unwrap_or(0)
    }

    pub fn named_counter(&self, name: &str) -> u64 {
        self.named_counters.borrow().get(name).copied().unwrap_or(0)
    }

    pub fn advance(&self, ms: u64) {
        self.now_ms.set(self.now_ms.get() + ms);
    }

    /// Calls dispatched whose `:path` is `path`.
    pub fn calls_to(&self, path: &str) -> Vec<u32> {
        self.calls
            .borrow()
            .iter()
            .filter(|(_, call, _)| call.path() == path)
            .map(|(token, _, _)| *token)
            .collect()
    }
}

#[derive(Clone)]
pub struct FakeHost {
    pub state: Rc<HostState>,
    pub store: Rc<MemoryStore>,
}

impl FakeHost {
    pub fn new(now_ms: u64) -> Self {
        let state = HostState::default();
        state.now_ms.set(now_ms);
        state.next_token.set(1);
        Self {
            state: Rc::new(state),
            store: Rc::new(MemoryStore::new()),
        }
    }

    /// Another worker of the same Envoy: same shared store and clock, its own calls.
    pub fn sibling(&self) -> Self {
        let state = HostState::default();
        state.now_ms.set(self.state.now_ms.get());
        state.next_token.set(1000);
        Self {
            state: Rc::new(state),
            store: Rc::clone(&self.store),
        }
    }
}

impl Host for FakeHost {
    fn now_ms(&self) -> u64 {
        self.state.now_ms.get()
    }

    fn store(&self) -> &dyn SharedStore {
        self.store.as_ref()
    }

    fn random(&self, buf: &mut [u8]) -> bool {
        if self.state.no_random.get() {
            return false;
        }
        let draw = self.state.random_draws.get();
        self.state.random_draws.set(draw.wrapping_add(1));
        for (i, b) in buf.iter_mut().enumerate() {
            *b = (i as u8)
                .wrapping_mul(31)
                .wrapping_add(self.state.next_token.get() as u8)
                .wrapping_add((draw as u8).wrapping_mul(101));
        }
        true
    }

    fn dispatch(&self, call: &OutgoingCall, running: Option<u32>) -> Option<u32> {
        if self.state.refuse_dispatch.get() {
            return None;
        }
        let token = self.state.next_token.get();
        self.state.next_token.set(token + 1);
        self.state
            .calls
            .borrow_mut()
            .push((token, call.clone(), running));
        Some(token)
    }

    fn dispatch_grpc(&self, call: &GrpcCall, running: Option<u32>) -> Option<u32> {
        if self.state.refuse_dispatch.get() {
            return None;
        }
        let token = self.state.next_token.get();
        self.state.next_token.set(token + 1);
        self.state
            .grpc_calls
            .borrow_mut()
            .push((token, call.clone(), running));
        Some(token)
    }

    fn grpc_response(&self, _body_size: usize, max_body: usize) -> Option<Vec<u8>> {
        self.state
            .grpc_answer
            .borrow()
            .clone()
            .filter(|b| b.len() <= max_body)
    }

    fn call_response(&self, _body_size: usize, max_body: usize) -> CallResponse {
        let mut answer = self.state.answer.borrow().clone();
        if answer.body.as_ref().is_some_and(|b| b.len() > max_body) {
            answer.body = Some(vec![b' '; max_body + 1]);
        }
        answer
    }

    fn count(&self, counter: &'static str, by: u64) {
        *self.state.counters.borrow_mut().entry(counter).or_default() += by;
    }

    fn count_named(&self, counter: &str, by: u64) {
        *self
            .state
            .named_counters
            .borrow_mut()
            .entry(counter.to_string())
            .or_default() += by;
    }

    fn histogram_named(&self, histogram: &str, value: u64) {
        self.state
            .histograms
            .borrow_mut()
            .entry(histogram.to_string())
            .or_default()
            .push(value);
    }

    fn gauge(&self, gauge: &'static str, value: u64) {
        self.state.gauges.borrow_mut().insert(gauge, value);
    }

    fn remote_address(&self) -> Option<String> {
        Some("127.0.0.1:40000".into())
    }

    fn request_body(&self, _size: usize) -> Option<Vec<u8>> {
        Some(self.state.request_body.borrow().clone())
    }

    fn response_body(&self, _size: usize) -> Option<Vec<u8>> {
        Some(self.state.response_body.borrow().clone())
    }

    fn routed_cluster(&self) -> Option<String> {
        self.state.routed_cluster.borrow().clone()
    }

    fn response_header(&self, name: &str) -> Option<String> {
        self.state
            .response_headers
            .borrow()
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
    }
}
