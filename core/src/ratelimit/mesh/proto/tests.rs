use super::*;

/// The bytes `protoc --encode` gives for the same request (field by field, written out).
#[test]
fn a_request_is_written_as_protoc_would() {
    let descriptors = [Descriptor {
        entries: vec![("limit".into(), "u".into()), ("key".into(), "a".into())],
        limit: Some((10, Unit::Minute)),
        hits_addend: Some(0),
    }];
    let bytes = encode_request("d", &descriptors, 1);
    let expected: Vec<u8> = [
        &[0x0a, 1, b'd'][..],
        // descriptors (2): entries ×2, limit, hits_addend (empty wrapper)
        &[0x12, 30],
        &[
            0x0a, 10, 0x0a, 5, b'l', b'i', b'm', b'i', b't', 0x12, 1, b'u',
        ],
        &[0x0a, 8, 0x0a, 3, b'k', b'e', b'y', 0x12, 1, b'a'],
        &[0x12, 4, 0x08, 10, 0x10, 2],
        &[0x1a, 0],
        &[0x18, 1],
    ]
    .concat();
    assert_eq!(bytes, expected);
}

#[test]
fn hits_are_varints_and_absent_when_not_set() {
    let d = Descriptor {
        entries: vec![],
        limit: None,
        hits_addend: Some(300),
    };
    assert_eq!(
        encode_request("", &[d], 0),
        vec![0x0a, 0, 0x12, 5, 0x1a, 3, 0x08, 0xac, 0x02]
    );
    let d = Descriptor {
        entries: vec![],
        limit: None,
        hits_addend: None,
    };
    assert_eq!(encode_request("", &[d], 0), vec![0x0a, 0, 0x12, 0]);
}

fn status_bytes(code: u8, per_unit: u8, remaining: u8, seconds: u8, nanos: u8) -> Vec<u8> {
    let mut limit = vec![0x08, per_unit, 0x10, 2];
    limit.extend([0x1a, 1, b'n']);
    let mut s = vec![0x08, code, 0x12, limit.len() as u8];
    s.extend(limit);
    s.extend([0x18, remaining]);
    let mut duration = vec![0x08, seconds];
    if nanos > 0 {
        duration.extend([0x10, nanos]);
    }
    s.extend([0x22, duration.len() as u8]);
    s.extend(duration);
    s
}

#[test]
fn a_response_is_read_with_every_status() {
    let first = status_bytes(1, 10, 7, 42, 0);
    let second = status_bytes(2, 5, 0, 3, 9);
    let mut bytes = vec![0x08, 2];
    for s in [&first, &second] {
        bytes.push(0x12);
        bytes.push(s.len() as u8);
        bytes.extend(s.iter());
    }
    // An unknown field the service may add (raw_body = 5), skipped.
    bytes.extend([0x2a, 2, b'h', b'i']);
    let response = decode_response(&bytes).expect("a response");
    assert_eq!(response.overall, Code::OverLimit);
    assert_eq!(
        response.statuses,
        vec![
            Status {
                code: Code::Ok,
                limit: Some(10),
                remaining: 7,
                reset_s: Some(42)
            },
            Status {
                code: Code::OverLimit,
                limit: Some(5),
                remaining: 0,
                reset_s: Some(4)
            },
        ]
    );
}

#[test]
fn an_empty_response_is_unknown_and_garbage_is_refused() {
    assert_eq!(
        decode_response(&[]),
        Some(Response {
            overall: Code::Unknown,
            statuses: vec![]
        })
    );
    for garbage in [
        &[0x12, 50, 1][..],
        &[0x08],
        &[0x0f],
        &[
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f,
        ],
        b"<html>",
    ] {
        assert_eq!(decode_response(garbage), None, "{garbage:?}");
    }
}

#[test]
fn any_bytes_are_read_without_panicking() {
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for len in 0..400 {
        let bytes: Vec<u8> = (0..len % 40)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        let _ = decode_response(&bytes);
    }
}

#[test]
fn units_are_exact_lengths_only() {
    assert_eq!(Unit::of_seconds(60), Some(Unit::Minute));
    assert_eq!(Unit::of_seconds(86_400), Some(Unit::Day));
    assert_eq!(Unit::of_seconds(120), None);
}
