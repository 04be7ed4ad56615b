//! Shared by the fuzz targets (`fuzz_targets/`): the fixed configurations they run against,
//! built once per process, and the cutting of an input into chunks.

pub mod chunks;
pub mod providers;
pub mod settings;
