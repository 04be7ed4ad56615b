//! The non-panicking host calls, natively: this test binary defines the two host functions
//! (the wasm build imports them from Envoy), answering with a status the test chooses.

use std::cell::RefCell;

use crate::raw;

/// `BadArgument`: what Envoy answers for the headers of a call whose response overflowed its
/// buffer (seen in `test-harness/tests/idp_faults.rs`); the SDK's getters panicked on it.
const BAD_ARGUMENT: u32 = 2;

/// The ABI's numbers for a dispatched call's response headers and body.
const HEADERS: u32 = 6;
const BODY: u32 = 4;

thread_local! {
    /// The status and value the fake host answers with.
    static ANSWER: RefCell<(u32, Option<Vec<u8>>)> = const { RefCell::new((0, None)) };
}

fn answer(status: u32, value: Option<&[u8]>) {
    ANSWER.with(|a| *a.borrow_mut() = (status, value.map(<[u8]>::to_vec)));
}

/// Writes the chosen answer the way the host does: into memory the module allocated.
fn respond(data: *mut *mut u8, size: *mut usize) -> u32 {
    ANSWER.with(|a| {
        let (status, value) = a.borrow().clone();
        if let Some(value) = value {
            let mut value = value.into_boxed_slice();
            // SAFETY: the out-parameters point at the caller's locals.
            unsafe {
                *size = value.len();
                *data = value.as_mut_ptr();
            }
            std::mem::forget(value);
        }
        status
    })
}

#[no_mangle]
extern "C" fn proxy_get_header_map_value(
    _map_type: u32,
    _key_data: *const u8,
    _key_size: usize,
    return_value_data: *mut *mut u8,
    return_value_size: *mut usize,
) -> u32 {
    respond(return_value_data, return_value_size)
}

#[no_mangle]
extern "C" fn proxy_get_buffer_bytes(
    _buffer_type: u32,
    _start: usize,
    _max_size: usize,
    return_buffer_data: *mut *mut u8,
    return_buffer_size: *mut usize,
) -> u32 {
    respond(return_buffer_data, return_buffer_size)
}

#[test]
fn an_unexpected_status_is_no_value_not_a_panic() {
    answer(BAD_ARGUMENT, None);
    assert_eq!(raw::map_value(HEADERS, ":status"), None);
    assert_eq!(raw::buffer(BODY, 0, 10), None);
}

#[test]
fn ok_gives_the_value_and_an_empty_one_when_there_is_none() {
    answer(0, Some(b"200"));
    assert_eq!(raw::map_value(HEADERS, ":status"), Some(b"200".to_vec()));
    answer(0, Some(br#"{"keys": []}"#));
    assert_eq!(raw::buffer(BODY, 0, 12), Some(br#"{"keys": []}"#.to_vec()));
    answer(0, None);
    assert_eq!(raw::buffer(BODY, 0, 0), Some(Vec::new()));
}
