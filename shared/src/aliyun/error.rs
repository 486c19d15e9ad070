//! Errors of Aliyun OpenAPI calls, with the Aliyun code, message and request id, and the one
//! place that decides whether a call is worth retrying.

use thiserror::Error;

/// A failed OpenAPI call. No variant carries a credential.
#[derive(Debug, Clone, Error)]
pub enum AliyunError {
    /// The service returned an error document `{Code, Message, RequestId}` or a bare status.
    #[error("{action} failed with http {status} {code}: {message} (request id {})", request_id.as_deref().unwrap_or("none"))]
    Service {
        action: String,
        status: u16,
        code: String,
        message: String,
        request_id: Option<String>,
    },
    /// The request got no response: connection refused or reset, timeout, body cut short.
    #[error("{action} request to {endpoint} failed: {message}")]
    Transport {
        action: String,
        endpoint: String,
        message: String,
    },
    /// The service returned 2xx with a body that is not the documented JSON.
    #[error("{action} returned an invalid response: {message} (request id {})", request_id.as_deref().unwrap_or("none"))]
    InvalidResponse {
        action: String,
        message: String,
        request_id: Option<String>,
    },
    /// The caller passed a value that no request can be built from.
    #[error("invalid {name}: {message}")]
    InvalidArgument { name: &'static str, message: String },
}

impl AliyunError {
    /// Returns true when sending the same call again may succeed: throttling, `ServiceUnavailable`,
    /// any 5xx, and transport failures. Signature, key, parameter and not-found errors are final.
    pub fn is_retryable(&self) -> bool {
        match self {
            AliyunError::Service { status, code, .. } => is_retryable_code(*status, code),
            AliyunError::Transport { .. } => true,
            AliyunError::InvalidResponse { .. } | AliyunError::InvalidArgument { .. } => false,
        }
    }

    /// Returns the Aliyun error code, when the service sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            AliyunError::Service { code, .. } => Some(code),
            _ => None,
        }
    }

    /// Returns the service's request id, for support tickets.
    pub fn request_id(&self) -> Option<&str> {
        match self {
            AliyunError::Service { request_id, .. }
            | AliyunError::InvalidResponse { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }
}

/// Classifies an HTTP status and Aliyun error code. Throttling arrives as `Throttling`,
/// `Throttling.User` or `Throttling.Api`, often with status 400, so the code decides first.
pub fn is_retryable_code(status: u16, code: &str) -> bool {
    if code.starts_with("Throttling") || code == "ServiceUnavailable" {
        return true;
    }
    (500..=599).contains(&status)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(status: u16, code: &str) -> AliyunError {
        AliyunError::Service {
            action: "DescribeBackups".into(),
            status,
            code: code.into(),
            message: "m".into(),
            request_id: Some("RID".into()),
        }
    }

    #[test]
    fn throttling_and_server_errors_are_retryable() {
        assert!(service(400, "Throttling.User").is_retryable());
        assert!(service(503, "Throttling").is_retryable());
        assert!(service(503, "ServiceUnavailable").is_retryable());
        assert!(service(500, "InternalError").is_retryable());
    }

    #[test]
    fn signature_key_parameter_and_not_found_errors_are_permanent() {
        assert!(!service(400, "SignatureDoesNotMatch").is_retryable());
        assert!(!service(404, "InvalidAccessKeyId.NotFound").is_retryable());
        assert!(!service(400, "InvalidParameter").is_retryable());
        assert!(!service(404, "InvalidDBInstanceId.NotFound").is_retryable());
        assert!(!service(400, "SignatureNonceUsed").is_retryable());
    }

    #[test]
    fn display_names_action_code_message_and_request_id() {
        assert_eq!(
            service(400, "InvalidParameter").to_string(),
            "DescribeBackups failed with http 400 InvalidParameter: m (request id RID)"
        );
    }
}
