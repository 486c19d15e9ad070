//! The handlers, one module per group of routes. Handlers parse and check the request, call the
//! library and shape the reply; the rules themselves live in `backup_bridge`.

pub mod aliyun;
pub mod aws;
pub mod config;
pub mod docs;
pub mod health;
pub mod status;

use axum::extract::{FromRequestParts, Query};
use chrono::{DateTime, TimeDelta, Utc};
use http::request::Parts;
use serde::de::DeserializeOwned;

use backup_bridge::aliyun::AliyunError;
use backup_bridge::aws::rds::RdsError;
use backup_bridge::storage::StorageError;

use crate::error::ApiError;

/// `Query` whose rejection is an [`ApiError`] in the API's shape.
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        Query::<T>::from_request_parts(parts, state)
            .await
            .map(|Query(value)| Self(value))
            .map_err(|_| {
                ApiError::invalid(
                    "query",
                    "查询字符串无法解析",
                    "the query string cannot be parsed",
                )
            })
    }
}

/// Maps an Aliyun RDS API failure to 502 with the Aliyun code.
pub fn aliyun_error(error: &AliyunError) -> ApiError {
    tracing::warn!(error = %error, code = error.code(), "aliyun call failed");
    ApiError::cloud("aliyun_error", error.code(), &error.to_string())
}

/// Maps an Amazon RDS failure to 502 with the AWS code.
pub fn rds_error(error: &RdsError) -> ApiError {
    tracing::warn!(error = %error, code = error.code(), "rds call failed");
    ApiError::cloud("rds_error", error.code(), &error.to_string())
}

/// Maps an S3 or OSS failure to 502.
pub fn storage_error(error: &StorageError) -> ApiError {
    tracing::warn!(error = %error, "storage call failed");
    ApiError::cloud("storage_error", None, &error.to_string())
}

/// Parses an optional RFC 3339 time parameter, naming `field` when it is invalid.
pub fn parse_time(field: &str, value: Option<&str>) -> Result<Option<DateTime<Utc>>, ApiError> {
    match value {
        None | Some("") => Ok(None),
        Some(text) => DateTime::parse_from_rfc3339(text)
            .map(|time| Some(time.with_timezone(&Utc)))
            .map_err(|_| {
                ApiError::invalid(
                    field,
                    "应为 RFC 3339 时间，例如 2026-01-31T00:00:00Z",
                    "expected an RFC 3339 time such as 2026-01-31T00:00:00Z",
                )
            }),
    }
}

/// Returns a duration in whole seconds, rounded down, for replies.
pub fn seconds(duration: TimeDelta) -> i64 {
    duration.num_seconds()
}
