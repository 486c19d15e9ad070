//! Shared pieces of the benchmark: the request that the harness hands to `bench-copy`, the
//! result that `bench-copy` prints, and resource usage read from the kernel.

pub mod clients;
pub mod protocol;
pub mod usage;
