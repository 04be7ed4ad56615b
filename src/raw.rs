//! Host calls whose SDK wrappers panic on an unexpected status: here every status other than
//! `Ok` is `None`. Envoy answers with such a status for the headers of a dispatched call whose
//! response overflowed its buffer (a 50 MB JWKS, a 64 MB model answer); the SDK's getters
//! panicked on it and the worker's VM was unusable after. Compiled natively for its tests.

#[cfg(test)]
mod tests;

use std::ptr::null_mut;

/// `Ok` in the ABI.
const OK: u32 = 0;

// The SDK declares these too (same import, same wasm signature); the status is a plain
// u32 here so that a value the SDK's enum lacks is not undefined behaviour.
#[link(wasm_import_module = "env")]
extern "C" {
    fn proxy_get_header_map_value(
        map_type: u32,
        key_data: *const u8,
        key_size: usize,
        return_value_data: *mut *mut u8,
        return_value_size: *mut usize,
    ) -> u32;
    fn proxy_get_buffer_bytes(
        buffer_type: u32,
        start: usize,
        max_size: usize,
        return_buffer_data: *mut *mut u8,
        return_buffer_size: *mut usize,
    ) -> u32;
}

/// Takes ownership of what the host allocated (through the SDK's exported allocator).
///
/// # Safety
/// `data` is null or was allocated for `size` bytes by `proxy_on_memory_allocate`.
unsafe fn owned(data: *mut u8, size: usize) -> Vec<u8> {
    if data.is_null() {
        Vec::new()
    } else {
        // SAFETY: as the SDK does: the host wrote `size` bytes into a `Vec` allocation of
        // that capacity, made by the SDK's `proxy_on_memory_allocate`.
        unsafe { Vec::from_raw_parts(data, size, size) }
    }
}

/// A header map's value (`map_type` as the ABI numbers it); `None` unless the host says Ok.
pub fn map_value(map_type: u32, key: &str) -> Option<Vec<u8>> {
    let (mut data, mut size) = (null_mut(), 0);
    // SAFETY: the key is a live slice; the host writes the two out-parameters.
    let status = unsafe {
        proxy_get_header_map_value(map_type, key.as_ptr(), key.len(), &mut data, &mut size)
    };
    // SAFETY: written by the host on Ok (null or its allocation).
    (status == OK).then(|| unsafe { owned(data, size) })
}

/// Bytes of a buffer (`buffer_type` as the ABI numbers it); `None` unless the host says Ok.
pub fn buffer(buffer_type: u32, start: usize, max_size: usize) -> Option<Vec<u8>> {
    let (mut data, mut size) = (null_mut(), 0);
    // SAFETY: the host writes the two out-parameters.
    let status =
        unsafe { proxy_get_buffer_bytes(buffer_type, start, max_size, &mut data, &mut size) };
    // SAFETY: written by the host on Ok (null or its allocation).
    (status == OK).then(|| unsafe { owned(data, size) })
}
