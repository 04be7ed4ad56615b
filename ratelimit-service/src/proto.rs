//! Envoy's rate-limit messages, written by hand with Envoy's field numbers (no protoc).
//!
//! From `envoy/service/ratelimit/v3/rls.proto`,
//! `envoy/extensions/common/ratelimit/v3/ratelimit.proto` and `envoy/type/v3/ratelimit_unit.proto`.
//! Only the fields this service reads or writes are declared: a decoder skips the others, and
//! an encoder leaves them out (their default).

/// The gRPC path of `envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit`.
pub const SHOULD_RATE_LIMIT_PATH: &str =
    "/envoy.service.ratelimit.v3.RateLimitService/ShouldRateLimit";

/// The gRPC service name, for routing and for clients.
pub const SERVICE_NAME: &str = "envoy.service.ratelimit.v3.RateLimitService";

/// `envoy.service.ratelimit.v3.RateLimitRequest`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RateLimitRequest {
    #[prost(string, tag = "1")]
    pub domain: String,
    #[prost(message, repeated, tag = "2")]
    pub descriptors: Vec<RateLimitDescriptor>,
    /// 0 (unset) counts as 1.
    #[prost(uint32, tag = "3")]
    pub hits_addend: u32,
}

/// `envoy.extensions.common.ratelimit.v3.RateLimitDescriptor`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RateLimitDescriptor {
    #[prost(message, repeated, tag = "1")]
    pub entries: Vec<Entry>,
    #[prost(message, optional, tag = "2")]
    pub limit: Option<RateLimitOverride>,
    /// `google.protobuf.UInt64Value`: prost encodes `Option<u64>` as that wrapper, so a
    /// present 0 (check only) differs from absent (the request's `hits_addend`).
    #[prost(message, optional, tag = "3")]
    pub hits_addend: Option<u64>,
}

/// `RateLimitDescriptor.Entry`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct Entry {
    #[prost(string, tag = "1")]
    pub key: String,
    #[prost(string, tag = "2")]
    pub value: String,
}

/// `RateLimitDescriptor.RateLimitOverride`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RateLimitOverride {
    #[prost(uint32, tag = "1")]
    pub requests_per_unit: u32,
    #[prost(enumeration = "RateLimitUnit", tag = "2")]
    pub unit: i32,
}

/// `envoy.type.v3.RateLimitUnit` (the override's unit) and `RateLimitResponse.RateLimit.Unit`
/// (the answer's): the same numbers for 0 to 6. Envoy's `RateLimitUnit` stops at YEAR = 6;
/// the answer's `Unit` also has WEEK = 7, which is read here in both places.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum RateLimitUnit {
    Unknown = 0,
    Second = 1,
    Minute = 2,
    Hour = 3,
    Day = 4,
    Month = 5,
    Year = 6,
    Week = 7,
}

/// `envoy.service.ratelimit.v3.RateLimitResponse`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RateLimitResponse {
    #[prost(enumeration = "Code", tag = "1")]
    pub overall_code: i32,
    #[prost(message, repeated, tag = "2")]
    pub statuses: Vec<DescriptorStatus>,
}

/// `RateLimitResponse.Code`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, prost::Enumeration)]
#[repr(i32)]
pub enum Code {
    Unknown = 0,
    Ok = 1,
    OverLimit = 2,
}

/// `RateLimitResponse.DescriptorStatus`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct DescriptorStatus {
    #[prost(enumeration = "Code", tag = "1")]
    pub code: i32,
    #[prost(message, optional, tag = "2")]
    pub current_limit: Option<RateLimit>,
    #[prost(uint32, tag = "3")]
    pub limit_remaining: u32,
    #[prost(message, optional, tag = "4")]
    pub duration_until_reset: Option<Duration>,
}

/// `RateLimitResponse.RateLimit`.
#[derive(Clone, PartialEq, prost::Message)]
pub struct RateLimit {
    #[prost(string, tag = "3")]
    pub name: String,
    #[prost(uint32, tag = "1")]
    pub requests_per_unit: u32,
    #[prost(enumeration = "RateLimitUnit", tag = "2")]
    pub unit: i32,
}

/// `google.protobuf.Duration`.
#[derive(Clone, Copy, PartialEq, Eq, prost::Message)]
pub struct Duration {
    #[prost(int64, tag = "1")]
    pub seconds: i64,
    #[prost(int32, tag = "2")]
    pub nanos: i32,
}

impl From<std::time::Duration> for Duration {
    fn from(d: std::time::Duration) -> Self {
        Self {
            seconds: i64::try_from(d.as_secs()).unwrap_or(i64::MAX),
            // Below 1e9, so it fits.
            nanos: d.subsec_nanos() as i32,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[test]
    fn descriptor_hits_addend_present_zero_differs_from_absent() {
        let absent = RateLimitDescriptor {
            entries: vec![],
            limit: None,
            hits_addend: None,
        };
        let zero = RateLimitDescriptor {
            hits_addend: Some(0),
            ..absent.clone()
        };
        assert!(absent.encode_to_vec().is_empty());
        // Field 3, length-delimited, an empty UInt64Value.
        assert_eq!(zero.encode_to_vec(), vec![0x1a, 0x00]);
        let decoded = RateLimitDescriptor::decode(&[0x1a, 0x00][..]).expect("decodes");
        assert_eq!(decoded.hits_addend, Some(0));
    }

    #[test]
    fn request_field_numbers_match_envoy() {
        let request = RateLimitRequest {
            domain: "d".into(),
            descriptors: vec![RateLimitDescriptor {
                entries: vec![Entry {
                    key: "k".into(),
                    value: "v".into(),
                }],
                limit: Some(RateLimitOverride {
                    requests_per_unit: 3,
                    unit: RateLimitUnit::Minute as i32,
                }),
                hits_addend: Some(5),
            }],
            hits_addend: 2,
        };
        let bytes = request.encode_to_vec();
        // domain (1, "d"), descriptors (2, ...), hits_addend (3, varint 2).
        assert_eq!(&bytes[..3], &[0x0a, 0x01, b'd']);
        assert_eq!(bytes[3], 0x12);
        assert_eq!(&bytes[bytes.len() - 2..], &[0x18, 0x02]);
        // Inside the descriptor: entries (1), limit (2: requests_per_unit 1, unit 2),
        // hits_addend (3: value 1).
        let descriptor = &bytes[5..bytes.len() - 2];
        assert_eq!(
            descriptor,
            &[
                0x0a, 0x06, 0x0a, 0x01, b'k', 0x12, 0x01, b'v', // entry
                0x12, 0x04, 0x08, 0x03, 0x10, 0x02, // limit
                0x1a, 0x02, 0x08, 0x05, // hits_addend
            ]
        );
        assert_eq!(
            RateLimitRequest::decode(&bytes[..]).expect("decodes"),
            request
        );
    }

    #[test]
    fn response_field_numbers_match_envoy() {
        let response = RateLimitResponse {
            overall_code: Code::OverLimit as i32,
            statuses: vec![DescriptorStatus {
                code: Code::OverLimit as i32,
                current_limit: Some(RateLimit {
                    name: "n".into(),
                    requests_per_unit: 3,
                    unit: RateLimitUnit::Minute as i32,
                }),
                limit_remaining: 1,
                duration_until_reset: Some(Duration {
                    seconds: 7,
                    nanos: 0,
                }),
            }],
        };
        let bytes = response.encode_to_vec();
        assert_eq!(
            bytes,
            vec![
                0x08, 0x02, // overall_code
                0x12, 0x11, // statuses
                0x08, 0x02, // code
                0x12, 0x07, 0x08, 0x03, 0x10, 0x02, 0x1a, 0x01, b'n', // current_limit
                0x18, 0x01, // limit_remaining
                0x22, 0x02, 0x08, 0x07, // duration_until_reset
            ]
        );
    }
}
