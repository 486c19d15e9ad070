//! The one error type of the storage ports, with the context that produced it and the single
//! place that decides whether a failure is worth retrying.

use std::fmt;

/// What went wrong, as far as a caller needs to decide what to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// No object at the key (`NoSuchKey`, 404 on HEAD).
    NotFound,
    /// The multipart upload id is unknown or already finished (`NoSuchUpload`).
    NoSuchUpload,
    /// An object already exists and the write asked not to overwrite it
    /// (`FileAlreadyExists` on OSS, `PreconditionFailed` on S3).
    AlreadyExists,
    /// The request was refused for good: signature, permission, bad argument, bad digest.
    Permanent,
    /// The store or the link failed in a way that the same request may survive: 5xx, throttling,
    /// timeouts, resets, a body cut short.
    Transient,
}

/// A failed storage operation with its context.
#[derive(Debug, Clone)]
pub struct StorageError {
    pub kind: ErrorKind,
    /// The API operation, e.g. `UploadPart`.
    pub operation: &'static str,
    /// Where it happened, e.g. `oss://bucket/key`.
    pub location: String,
    /// The service's error code, e.g. `SignatureDoesNotMatch`, when it sent one.
    pub code: Option<String>,
    pub message: String,
    /// The service's request id, for support tickets.
    pub request_id: Option<String>,
}

impl StorageError {
    pub fn new(
        kind: ErrorKind,
        operation: &'static str,
        location: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        Self {
            kind,
            operation,
            location: location.into(),
            code: None,
            message: message.into(),
            request_id: None,
        }
    }

    pub fn with_code(mut self, code: impl Into<String>) -> Self {
        self.code = Some(code.into());
        self
    }

    pub fn with_request_id(mut self, request_id: impl Into<String>) -> Self {
        self.request_id = Some(request_id.into());
        self
    }

    /// Returns true when retrying the same request may succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind == ErrorKind::Transient
    }

    /// Classifies an HTTP status and service error code the same way for every store.
    pub fn kind_for(status: u16, code: Option<&str>) -> ErrorKind {
        match code {
            Some("NoSuchKey") => return ErrorKind::NotFound,
            Some("NoSuchUpload") => return ErrorKind::NoSuchUpload,
            Some("FileAlreadyExists" | "PreconditionFailed") => return ErrorKind::AlreadyExists,
            Some(c) if c.starts_with("Throttl") || c == "SlowDown" || c == "RequestTimeout" => {
                return ErrorKind::Transient;
            }
            _ => {}
        }
        match status {
            404 => ErrorKind::NotFound,
            408 | 429 | 500..=599 => ErrorKind::Transient,
            _ => ErrorKind::Permanent,
        }
    }
}

impl fmt::Display for StorageError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed for {}", self.operation, self.location)?;
        if let Some(code) = &self.code {
            write!(f, ": {code}")?;
        }
        write!(f, ": {}", self.message)?;
        if let Some(request_id) = &self.request_id {
            write!(f, " (request id {request_id})")?;
        }
        Ok(())
    }
}

impl std::error::Error for StorageError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_errors_and_throttling_are_retryable() {
        assert_eq!(StorageError::kind_for(503, None), ErrorKind::Transient);
        assert_eq!(
            StorageError::kind_for(500, Some("InternalError")),
            ErrorKind::Transient
        );
        assert_eq!(
            StorageError::kind_for(503, Some("SlowDown")),
            ErrorKind::Transient
        );
        assert_eq!(
            StorageError::kind_for(400, Some("RequestTimeout")),
            ErrorKind::Transient
        );
    }

    #[test]
    fn client_errors_are_permanent() {
        assert_eq!(
            StorageError::kind_for(403, Some("SignatureDoesNotMatch")),
            ErrorKind::Permanent
        );
        assert_eq!(
            StorageError::kind_for(400, Some("InvalidDigest")),
            ErrorKind::Permanent
        );
    }

    #[test]
    fn codes_with_their_own_meaning_are_classified_first() {
        assert_eq!(
            StorageError::kind_for(404, Some("NoSuchUpload")),
            ErrorKind::NoSuchUpload
        );
        assert_eq!(
            StorageError::kind_for(409, Some("FileAlreadyExists")),
            ErrorKind::AlreadyExists
        );
        assert_eq!(
            StorageError::kind_for(412, Some("PreconditionFailed")),
            ErrorKind::AlreadyExists
        );
        assert_eq!(
            StorageError::kind_for(404, Some("NoSuchKey")),
            ErrorKind::NotFound
        );
    }

    #[test]
    fn display_names_operation_location_code_and_request_id() {
        let error = StorageError::new(ErrorKind::Permanent, "PutObject", "oss://b/k", "denied")
            .with_code("AccessDenied")
            .with_request_id("RID1");
        assert_eq!(
            error.to_string(),
            "PutObject failed for oss://b/k: AccessDenied: denied (request id RID1)"
        );
    }
}
