//! Trigger events turned into domain records: S3 notifications with their keys decoded, and the
//! RDS events and direct inputs that start or poll exports.

mod key;
pub mod rds;
mod s3;

pub use key::{InvalidKey, decode_s3_key};
pub use s3::{EventError, S3Notification, S3ObjectRecord, parse_s3_notification};
