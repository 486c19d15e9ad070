//! Aliyun OSS: the V4 request signer, endpoint parsing, configuration and [`OssStore`], the OSS
//! adapter of the storage ports.

mod client;
pub mod config;
pub mod endpoint;
mod operations;
mod response;
pub mod signer;
mod xml;

pub use client::OssStore;
pub use config::{OssConfig, OssConfigError, OssTimeouts};
pub use endpoint::{EndpointError, EndpointKind, EndpointOptions, OssEndpoint, Scheme};
