//! The queries and actions behind the HTTP API: starting a pull without waiting for it, comparing
//! an export with its OSS copy without copying, and the per-source status page.
//!
//! Nothing here runs long: API Gateway ends a request after 30 seconds, so work that copies data
//! is handed to the functions that own it.

pub mod export_sync;
pub mod invoke;
pub mod status;

pub use export_sync::{SyncCounts, compare_export};
pub use invoke::{AsyncInvoker, InvokeError, LambdaEventInvoker};
pub use status::{
    AliyunSourceStatus, RdsSourceStatus, StatusError, aliyun_status, download_url, rds_status,
    synced_marker_key,
};
