//! Calls the gateway makes itself (JWKS and discovery fetches, the login's token exchange, the
//! model server for translated answers): one description of a call, one of its answer.

/// The largest answer read from the IdP's discovery and token endpoints (larger ones are
/// refused as broken, never copied into the VM).
pub const MAX_IDP_ANSWER_BYTES: usize = 256 * 1024;

/// A call to dispatch to an Envoy cluster.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutgoingCall {
    pub cluster: String,
    /// `:method`, `:path`, `:authority` first, then the other headers.
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub timeout_ms: u64,
}

impl OutgoingCall {
    /// A call with the pseudo-headers every dispatched call needs.
    pub fn new(cluster: &str, authority: &str, timeout_ms: u64, method: &str, path: &str) -> Self {
        Self {
            cluster: cluster.to_string(),
            headers: vec![
                (":method".into(), method.into()),
                (":path".into(), path.into()),
                (":authority".into(), authority.into()),
            ],
            body: None,
            timeout_ms,
        }
    }

    /// A `GET` of a JSON document (JWKS, discovery).
    pub fn get_json(cluster: &str, authority: &str, timeout_ms: u64, path: &str) -> Self {
        Self::new(cluster, authority, timeout_ms, "GET", path)
            .header("accept", "application/json")
            .header("user-agent", "ai-gateway")
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    pub fn body(mut self, body: Vec<u8>) -> Self {
        self.body = Some(body);
        self
    }

    pub fn path(&self) -> &str {
        self.headers
            .iter()
            .find(|(name, _)| name == ":path")
            .map_or("", |(_, value)| value)
    }
}

/// What came back from a dispatched call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CallResponse {
    /// `None`: no response (timeout, connection refused, reset).
    pub status: Option<u32>,
    pub body: Option<Vec<u8>>,
}

impl CallResponse {
    /// No answer at all (the call could not even be dispatched, or timed out).
    pub const NONE: CallResponse = CallResponse {
        status: None,
        body: None,
    };
}

/// A unary gRPC call to dispatch to an Envoy cluster (HTTP/2).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GrpcCall {
    pub cluster: String,
    pub service: &'static str,
    pub method: &'static str,
    /// The request message, serialized.
    pub message: Vec<u8>,
    pub timeout_ms: u64,
}

/// The largest gRPC answer read (a rate-limit service's answer is a few hundred bytes).
pub const MAX_GRPC_ANSWER_BYTES: usize = 64 * 1024;
