//! Trigger events turned into domain records: S3 notifications with their keys decoded.

mod key;
mod s3;

pub use key::{InvalidKey, decode_s3_key};
pub use s3::{EventError, S3Notification, S3ObjectRecord, parse_s3_notification};
