//! Remote provider keys: fetched once for all workers ([`fetch`]); parsed by [`crate::keys`].

pub mod fetch;
