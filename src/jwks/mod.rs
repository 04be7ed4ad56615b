//! Provider keys: parsing JWKS documents ([`keys`]) and fetching them once for all workers
//! ([`fetch`]).

pub mod fetch;
pub mod keys;
