//! Aliyun OSS: the V4 request signer, endpoint parsing, configuration and [`OssStore`], the OSS
//! adapter of the storage ports.

pub mod endpoint;
pub mod signer;

pub use endpoint::{EndpointError, EndpointKind, EndpointOptions, OssEndpoint, Scheme};
