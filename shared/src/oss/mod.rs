//! Aliyun OSS: the V4 request signer (and, with the client, the OSS adapter of the storage ports).

pub mod signer;
