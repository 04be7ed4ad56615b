//! The two messages of Envoy's `envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`,
//! in protobuf wire format, by hand: a request to write and a response to read (a protobuf
//! library would cost the filter far more code than these two small messages need). Field
//! numbers as in `rls.proto`, `ratelimit.proto` (common) and `ratelimit_unit.proto`.

/// The gRPC service and method, as `dispatch_grpc_call` names them.
pub const SERVICE: &str = "envoy.service.ratelimit.v3.RateLimitService";
pub const METHOD: &str = "ShouldRateLimit";

/// `envoy.type.v3.RateLimitUnit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unit {
    Second = 1,
    Minute = 2,
    Hour = 3,
    Day = 4,
}

impl Unit {
    /// The unit whose length is exactly `seconds`.
    pub fn of_seconds(seconds: u64) -> Option<Self> {
        match seconds {
            1 => Some(Self::Second),
            60 => Some(Self::Minute),
            3600 => Some(Self::Hour),
            86_400 => Some(Self::Day),
            _ => None,
        }
    }
}

/// `envoy.extensions.common.ratelimit.v3.RateLimitDescriptor`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Descriptor {
    pub entries: Vec<(String, String)>,
    /// The limit override: requests (or tokens) per unit.
    pub limit: Option<(u64, Unit)>,
    /// This descriptor's own hits (`Some(0)`: check without counting).
    pub hits_addend: Option<u64>,
}

/// `RateLimitRequest { domain = 1, descriptors = 2, hits_addend = 3 }`.
pub fn encode_request(domain: &str, descriptors: &[Descriptor], hits_addend: u32) -> Vec<u8> {
    let mut out = Vec::new();
    string_field(&mut out, 1, domain);
    for descriptor in descriptors {
        let mut d = Vec::new();
        for (key, value) in &descriptor.entries {
            let mut entry = Vec::new();
            string_field(&mut entry, 1, key);
            string_field(&mut entry, 2, value);
            bytes_field(&mut d, 1, &entry);
        }
        if let Some((per_unit, unit)) = descriptor.limit {
            let mut limit = Vec::new();
            varint_field(&mut limit, 1, per_unit.min(u64::from(u32::MAX)));
            varint_field(&mut limit, 2, unit as u64);
            bytes_field(&mut d, 2, &limit);
        }
        if let Some(hits) = descriptor.hits_addend {
            // google.protobuf.UInt64Value: present even when 0 (an empty message).
            let mut wrapper = Vec::new();
            if hits > 0 {
                varint_field(&mut wrapper, 1, hits);
            }
            bytes_field(&mut d, 3, &wrapper);
        }
        bytes_field(&mut out, 2, &d);
    }
    if hits_addend > 0 {
        varint_field(&mut out, 3, u64::from(hits_addend));
    }
    out
}

/// `RateLimitResponse.Code`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Code {
    Unknown,
    Ok,
    OverLimit,
}

impl Code {
    fn of(value: u64) -> Self {
        match value {
            1 => Self::Ok,
            2 => Self::OverLimit,
            _ => Self::Unknown,
        }
    }
}

/// One `DescriptorStatus`: what the service said about one descriptor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub code: Code,
    /// `current_limit.requests_per_unit`.
    pub limit: Option<u64>,
    pub remaining: u64,
    /// `duration_until_reset`, whole seconds rounded up.
    pub reset_s: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Response {
    pub overall: Code,
    pub statuses: Vec<Status>,
}

/// Reads a `RateLimitResponse`; `None` when the bytes are not one (never panics).
pub fn decode_response(bytes: &[u8]) -> Option<Response> {
    let mut response = Response {
        overall: Code::Unknown,
        statuses: Vec::new(),
    };
    for field in Fields::new(bytes) {
        match field? {
            (1, Value::Varint(code)) => response.overall = Code::of(code),
            (2, Value::Bytes(status)) => response.statuses.push(decode_status(status)?),
            _ => {}
        }
    }
    Some(response)
}

fn decode_status(bytes: &[u8]) -> Option<Status> {
    let mut status = Status {
        code: Code::Unknown,
        limit: None,
        remaining: 0,
        reset_s: None,
    };
    for field in Fields::new(bytes) {
        match field? {
            (1, Value::Varint(code)) => status.code = Code::of(code),
            (2, Value::Bytes(limit)) => {
                for field in Fields::new(limit) {
                    if let (1, Value::Varint(n)) = field? {
                        status.limit = Some(n);
                    }
                }
            }
            (3, Value::Varint(n)) => status.remaining = n,
            (4, Value::Bytes(duration)) => {
                let (mut seconds, mut nanos) = (0u64, 0u64);
                for field in Fields::new(duration) {
                    match field? {
                        (1, Value::Varint(n)) => seconds = n,
                        (2, Value::Varint(n)) => nanos = n,
                        _ => {}
                    }
                }
                // Negative durations (as varints, huge) are nonsense: treated as none.
                if seconds < 1 << 40 {
                    status.reset_s = Some(seconds + u64::from(nanos > 0));
                }
            }
            _ => {}
        }
    }
    Some(status)
}

fn varint(out: &mut Vec<u8>, mut value: u64) {
    while value >= 0x80 {
        out.push((value as u8 & 0x7f) | 0x80);
        value >>= 7;
    }
    out.push(value as u8);
}

fn varint_field(out: &mut Vec<u8>, number: u64, value: u64) {
    varint(out, number << 3);
    varint(out, value);
}

fn bytes_field(out: &mut Vec<u8>, number: u64, bytes: &[u8]) {
    varint(out, number << 3 | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn string_field(out: &mut Vec<u8>, number: u64, value: &str) {
    bytes_field(out, number, value.as_bytes());
}

enum Value<'a> {
    Varint(u64),
    Bytes(&'a [u8]),
    /// Fixed-width fields, skipped.
    Other,
}

/// The fields of one message; an item is `None` once the bytes are malformed (and stays so).
struct Fields<'a> {
    rest: &'a [u8],
    broken: bool,
}

impl<'a> Fields<'a> {
    fn new(bytes: &'a [u8]) -> Self {
        Self {
            rest: bytes,
            broken: false,
        }
    }

    fn read_varint(&mut self) -> Option<u64> {
        let mut value = 0u64;
        for shift in (0..70).step_by(7) {
            let (&byte, rest) = self.rest.split_first()?;
            self.rest = rest;
            if shift == 63 && byte > 1 {
                return None;
            }
            value |= u64::from(byte & 0x7f) << shift;
            if byte < 0x80 {
                return Some(value);
            }
        }
        None
    }

    fn next_field(&mut self) -> Option<(u64, Value<'a>)> {
        let key = self.read_varint()?;
        let value = match key & 7 {
            0 => Value::Varint(self.read_varint()?),
            1 => self.skip(8)?,
            2 => {
                let len = usize::try_from(self.read_varint()?).ok()?;
                if len > self.rest.len() {
                    return None;
                }
                let (bytes, rest) = self.rest.split_at(len);
                self.rest = rest;
                Value::Bytes(bytes)
            }
            5 => self.skip(4)?,
            _ => return None,
        };
        Some((key >> 3, value))
    }

    fn skip(&mut self, n: usize) -> Option<Value<'a>> {
        if n > self.rest.len() {
            return None;
        }
        self.rest = &self.rest[n..];
        Some(Value::Other)
    }
}

impl<'a> Iterator for Fields<'a> {
    type Item = Option<(u64, Value<'a>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.broken || self.rest.is_empty() {
            return None;
        }
        let field = self.next_field();
        self.broken = field.is_none();
        Some(field)
    }
}

#[cfg(test)]
mod tests;
