//! Aliyun OpenAPI: the V3 request signer, a generic RPC client with retries, and the ApsaraDB
//! RDS calls built on it.

pub mod client;
pub mod error;
pub mod rds;
mod rds_wire;
pub mod signer;

pub use client::{Endpoint, RpcClient, RpcConfig};
pub use error::AliyunError;
pub use rds::{
    Backup, BackupFilters, BackupMethod, BackupMode, BackupStatus, BackupType, BackupWindow,
    PageSize, RdsClient,
};
