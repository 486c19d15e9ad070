//! The error of the RDS ports, with the AWS error code, the request id and the one place that
//! decides whether a failure is worth retrying.

use thiserror::Error;

/// The class of a failed RDS request, which decides what a caller does next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RdsErrorKind {
    /// An export task with this identifier exists (`ExportTaskAlreadyExists`).
    AlreadyExists,
    /// The snapshot, cluster or export task does not exist.
    NotFound,
    /// The account runs as many exports as RDS allows; retry on a later run, not in a loop.
    LimitReached,
    /// A fault that the same request cannot survive: KMS key, IAM role, snapshot state,
    /// invalid parameter, access denied.
    Permanent,
    /// Throttling, a 5xx reply, a timeout or a broken connection.
    Transient,
}

/// A failed RDS request.
#[derive(Debug, Clone, Error)]
pub enum RdsError {
    /// RDS replied with an error document.
    #[error("{operation} failed for {target}: {code}: {message} (status {status}, request id {})", request_id.as_deref().unwrap_or("none"))]
    Service {
        /// The API action, e.g. `StartExportTask`.
        operation: &'static str,
        /// The snapshot, source or export task the request was about.
        target: String,
        /// The AWS error code, e.g. `KMSKeyNotAccessibleFault`.
        code: String,
        message: String,
        status: u16,
        request_id: Option<String>,
    },
    /// No reply arrived: connection refused or reset, timeout.
    #[error("{operation} failed for {target}: no reply from RDS: {message}")]
    Transport {
        operation: &'static str,
        target: String,
        message: String,
    },
    /// The SDK could not build or sign the request, so nothing was sent.
    #[error("{operation} could not be sent for {target}: {message}")]
    InvalidRequest {
        operation: &'static str,
        target: String,
        message: String,
    },
    /// RDS replied, but the reply cannot be used (unparsable XML, a required field missing).
    #[error("{operation} returned an invalid reply for {target}: {message}")]
    InvalidReply {
        operation: &'static str,
        target: String,
        message: String,
    },
}

impl RdsError {
    pub fn kind(&self) -> RdsErrorKind {
        match self {
            RdsError::Service { code, status, .. } => Self::kind_for(*status, code),
            RdsError::Transport { .. } => RdsErrorKind::Transient,
            RdsError::InvalidRequest { .. } | RdsError::InvalidReply { .. } => {
                RdsErrorKind::Permanent
            }
        }
    }

    /// Returns true when retrying the same request may succeed.
    pub fn is_retryable(&self) -> bool {
        self.kind() == RdsErrorKind::Transient
    }

    /// Returns the AWS error code when RDS sent one.
    pub fn code(&self) -> Option<&str> {
        match self {
            RdsError::Service { code, .. } => Some(code),
            _ => None,
        }
    }

    pub fn request_id(&self) -> Option<&str> {
        match self {
            RdsError::Service { request_id, .. } => request_id.as_deref(),
            _ => None,
        }
    }

    /// Classifies an HTTP status and AWS error code; the code wins where it is known.
    pub fn kind_for(status: u16, code: &str) -> RdsErrorKind {
        // Throttling first, because `RequestLimitExceeded` would otherwise look like the export
        // limit below.
        let throttled = code.starts_with("Throttl")
            || matches!(
                code,
                "RequestLimitExceeded" | "TooManyRequestsException" | "RequestThrottled"
            );
        if throttled {
            return RdsErrorKind::Transient;
        }
        match code {
            "ExportTaskAlreadyExists" | "ExportTaskAlreadyExistsFault" => {
                return RdsErrorKind::AlreadyExists;
            }
            "DBSnapshotNotFound"
            | "DBSnapshotNotFoundFault"
            | "DBClusterSnapshotNotFoundFault"
            | "DBClusterNotFoundFault"
            | "DBInstanceNotFound"
            | "ExportTaskNotFound" => return RdsErrorKind::NotFound,
            _ => {}
        }
        // NOTE: the StartExportTask reference lists no fault for the limit of five concurrent
        // exports per account, so any code naming a limit or quota is treated as that limit.
        if code.contains("Limit") || code.contains("Quota") {
            return RdsErrorKind::LimitReached;
        }
        match status {
            429 | 500..=599 => RdsErrorKind::Transient,
            _ => RdsErrorKind::Permanent,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn service(code: &str, status: u16) -> RdsError {
        RdsError::Service {
            operation: "StartExportTask",
            target: "rds:db-1".into(),
            code: code.into(),
            message: "m".into(),
            status,
            request_id: Some("req-1".into()),
        }
    }

    #[test]
    fn throttling_and_server_errors_are_retryable() {
        assert!(service("Throttling", 400).is_retryable());
        assert!(service("ThrottlingException", 400).is_retryable());
        assert!(service("RequestLimitExceeded", 400).is_retryable());
        assert!(service("InternalFailure", 500).is_retryable());
        assert!(service("ServiceUnavailable", 503).is_retryable());
    }

    #[test]
    fn export_faults_are_permanent() {
        for code in [
            "KMSKeyNotAccessibleFault",
            "IamRoleNotFound",
            "IamRoleMissingPermissions",
            "InvalidExportSourceState",
            "InvalidParameterValue",
            "InvalidS3BucketFault",
            "AccessDenied",
        ] {
            assert_eq!(
                service(code, 400).kind(),
                RdsErrorKind::Permanent,
                "code {code}"
            );
        }
    }

    #[test]
    fn codes_with_their_own_meaning_are_classified() {
        assert_eq!(
            service("ExportTaskAlreadyExists", 400).kind(),
            RdsErrorKind::AlreadyExists
        );
        assert_eq!(
            service("DBSnapshotNotFound", 404).kind(),
            RdsErrorKind::NotFound
        );
        assert_eq!(
            service("DBClusterSnapshotNotFoundFault", 404).kind(),
            RdsErrorKind::NotFound
        );
        assert_eq!(
            service("ExportTaskLimitReached", 400).kind(),
            RdsErrorKind::LimitReached
        );
    }

    #[test]
    fn transport_failures_are_retryable() {
        let error = RdsError::Transport {
            operation: "DescribeExportTasks",
            target: "all".into(),
            message: "connection refused".into(),
        };
        assert!(error.is_retryable());
        assert_eq!(error.code(), None);
    }

    #[test]
    fn display_names_operation_target_code_and_request_id() {
        let text = service("IamRoleNotFound", 404).to_string();
        assert_eq!(
            text,
            "StartExportTask failed for rds:db-1: IamRoleNotFound: m (status 404, request id req-1)"
        );
    }
}
