//! backup-bridge: keeps MySQL backups copied between Aliyun and AWS.
//!
//! Data flows one way: a trigger event reaches a job, which uses the transfer engine over the
//! [`storage`] ports; adapters for S3 and OSS implement those ports.

pub mod alert;
pub mod aliyun;
pub mod api;
pub mod aws;
pub mod checksum;
pub mod config;
pub mod events;
pub mod jobs;
pub mod lambda;
pub mod metrics;
pub mod oss;
pub mod retry;
pub mod secret;
pub mod secrets;
pub mod storage;
pub mod transfer;
pub mod validate;
