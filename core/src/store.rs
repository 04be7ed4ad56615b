//! The shared key-value store every Envoy worker sees (proxy-wasm shared data), as a trait so
//! the logic that coordinates workers is testable natively.
//!
//! Host semantics to design around (proxy-wasm-cpp-host `shared_data.cc`):
//! - a CAS value is only checked when the key exists: setting an absent key succeeds whatever
//!   CAS is passed, so two workers can both "create" a key;
//! - keys never expire and cannot be deleted.

use std::cell::RefCell;
use std::collections::HashMap;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StoreError {
    /// The key changed since it was read.
    CasMismatch,
    /// The host refused for another reason.
    Failed,
}

pub trait SharedStore {
    /// The value (empty for a key set to nothing) and its CAS version, or `None` when the key
    /// was never set.
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)>;
    /// Sets `key`. With `Some(cas)`, only if the key still has that version (or does not exist).
    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError>;
}

/// Creates `key` with `initial` unless it exists. Two workers racing here may both write, so
/// `initial` must be a neutral value that is harmless to write twice; call it where no worker
/// can have written a meaningful value yet (the main thread configures before workers serve).
pub fn ensure_exists(store: &dyn SharedStore, key: &str, initial: &[u8]) {
    if store.get(key).is_none() {
        let _ = store.set(key, initial, None);
    }
}

/// An in-memory store with the host's semantics, for tests.
#[derive(Default)]
pub struct MemoryStore {
    entries: RefCell<HashMap<String, (Vec<u8>, u32)>>,
    next_cas: RefCell<u32>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Number of keys ever created.
    pub fn len(&self) -> usize {
        self.entries.borrow().len()
    }

    pub fn is_empty(&self) -> bool {
        self.entries.borrow().is_empty()
    }
}

impl SharedStore for MemoryStore {
    fn get(&self, key: &str) -> Option<(Vec<u8>, u32)> {
        self.entries.borrow().get(key).cloned()
    }

    fn set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), StoreError> {
        let mut entries = self.entries.borrow_mut();
        if let (Some(cas), Some((_, current))) = (cas, entries.get(key)) {
            if cas != 0 && cas != *current {
                return Err(StoreError::CasMismatch);
            }
        }
        let mut next = self.next_cas.borrow_mut();
        *next = next.wrapping_add(1).max(1);
        entries.insert(key.to_string(), (value.to_vec(), *next));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cas_is_checked_only_for_existing_keys() {
        let store = MemoryStore::new();
        assert_eq!(
            store.set("k", b"a", Some(12345)),
            Ok(()),
            "absent: any CAS passes"
        );
        let (_, v1) = store.get("k").unwrap();
        assert_eq!(
            store.set("k", b"b", Some(v1 + 1)),
            Err(StoreError::CasMismatch)
        );
        assert_eq!(store.set("k", b"b", Some(v1)), Ok(()));
        assert_eq!(store.set("k", b"c", Some(v1)), Err(StoreError::CasMismatch));
        assert_eq!(store.set("k", b"d", None), Ok(()), "no CAS: unconditional");
        assert_eq!(store.get("k").unwrap().0, b"d");
    }

    #[test]
    fn ensure_exists_never_overwrites() {
        let store = MemoryStore::new();
        ensure_exists(&store, "k", b"init");
        store.set("k", b"live", None).unwrap();
        ensure_exists(&store, "k", b"init");
        assert_eq!(store.get("k").unwrap().0, b"live");
    }
}
