//! Turns aws-sdk-s3 errors into [`StorageError`] with the operation, the `s3://` location, the
//! S3 error code, message and request id, and a retry decision from [`StorageError::kind_for`].

use aws_sdk_s3::config::http::HttpResponse;
use aws_sdk_s3::error::{ProvideErrorMetadata, SdkError};
use aws_sdk_s3::operation::RequestId;

use crate::storage::{ErrorKind, StorageError};

/// Converts a failed SDK call into a [`StorageError`].
pub(super) fn from_sdk<E>(
    operation: &'static str,
    location: String,
    error: SdkError<E, HttpResponse>,
) -> StorageError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
{
    let status = error
        .raw_response()
        .map(|response| response.status().as_u16());
    let code = error.code().map(str::to_owned);
    let request_id = error.request_id().map(str::to_owned);

    let kind = match &error {
        SdkError::ConstructionFailure(_) => ErrorKind::Permanent,
        // No answer, or an answer cut short: the same request may get through.
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) => ErrorKind::Transient,
        SdkError::ResponseError(_) => match status {
            Some(status) if status < 500 => StorageError::kind_for(status, code.as_deref()),
            _ => ErrorKind::Transient,
        },
        // A missing bucket is a configuration error; without this it would read as a
        // missing object (404), which callers skip as deleted.
        _ if code.as_deref() == Some("NoSuchBucket") => ErrorKind::Permanent,
        _ => StorageError::kind_for(status.unwrap_or(0), code.as_deref()),
    };
    let message = match error.message() {
        Some(message) if !message.is_empty() => message.to_owned(),
        _ => describe(&error, status),
    };

    let mut storage_error = StorageError::new(kind, operation, location, message);
    if let Some(code) = code {
        storage_error = storage_error.with_code(code);
    }
    if let Some(request_id) = request_id {
        storage_error = storage_error.with_request_id(request_id);
    }
    storage_error
}

/// Describes an error that carries no service message, from its `Display` chain.
fn describe<E>(error: &SdkError<E, HttpResponse>, status: Option<u16>) -> String
where
    E: std::error::Error + 'static,
{
    let chain = display_chain(error);
    match status {
        Some(status) => format!("HTTP status {status}: {chain}"),
        None => chain,
    }
}

/// Joins the `Display` text of an error and its sources. The SDK's own `DisplayErrorContext`
/// appends the `Debug` form, which would put raw responses into our messages.
pub(super) fn display_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        let cause_text = cause.to_string();
        if !text.ends_with(&cause_text) {
            text.push_str(": ");
            text.push_str(&cause_text);
        }
        source = cause.source();
    }
    text
}

/// Builds the error for a reply that lacks a field the protocol requires.
pub(super) fn missing_field(
    operation: &'static str,
    location: String,
    field: &str,
) -> StorageError {
    StorageError::new(
        ErrorKind::Permanent,
        operation,
        location,
        format!("the reply has no {field}; check that the endpoint is an S3 service"),
    )
}
