//! Errors of the pull, each with the instance and backup it concerns and a retry decision.

use crate::aliyun::AliyunError;
use crate::storage::StorageError;
use crate::transfer::TransferError;

/// A pull of one backup, or the listing of one instance, that failed.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// `DescribeBackups` failed.
    #[error("failed to list the backups of instance {instance_id}: {source}")]
    Catalog {
        instance_id: String,
        #[source]
        source: AliyunError,
    },
    /// No backup with this id exists in the searched window.
    #[error(
        "backup {backup_id} of instance {instance_id} was not found; check the ids and that the backup is inside the lookback window"
    )]
    BackupNotFound {
        instance_id: String,
        backup_id: String,
    },
    /// The backup cannot be pulled as it is: not successful, no download URL, or no size.
    #[error("backup {backup_id} of instance {instance_id} cannot be pulled: {reason}")]
    NotPullable {
        instance_id: String,
        backup_id: String,
        reason: String,
    },
    /// The download does not match what `DescribeBackups` promised, or lacks the CRC-64 header
    /// that the copy is verified against.
    #[error("download of backup {backup_id} of instance {instance_id} is invalid: {reason}")]
    InvalidDownload {
        instance_id: String,
        backup_id: String,
        reason: String,
    },
    /// Opening the download or reading the S3 target failed.
    #[error("backup {backup_id} of instance {instance_id}: {source}")]
    Storage {
        instance_id: String,
        backup_id: String,
        #[source]
        source: StorageError,
    },
    /// The copy into S3 failed or its checks did not match; the multipart upload is aborted.
    #[error("failed to copy backup {backup_id} of instance {instance_id}: {source}")]
    Transfer {
        instance_id: String,
        backup_id: String,
        #[source]
        source: TransferError,
    },
    /// The paused pull could not be handed to the next invocation.
    #[error(
        "failed to hand backup {backup_id} of instance {instance_id} (upload {upload_id}) to the next invocation: {message}"
    )]
    Continuation {
        instance_id: String,
        backup_id: String,
        upload_id: String,
        message: String,
        retryable: bool,
    },
}

impl PullError {
    /// Returns true when running the same pull again may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            PullError::Catalog { source, .. } => source.is_retryable(),
            PullError::Storage { source, .. } => source.is_retryable(),
            PullError::Transfer { source, .. } => source.is_retryable(),
            PullError::Continuation { retryable, .. } => *retryable,
            PullError::BackupNotFound { .. }
            | PullError::NotPullable { .. }
            | PullError::InvalidDownload { .. } => false,
        }
    }

    /// Returns true when the copied bytes did not match a checksum.
    pub fn is_checksum_mismatch(&self) -> bool {
        matches!(
            self,
            PullError::Transfer {
                source: TransferError::ChecksumMismatch { .. },
                ..
            }
        )
    }
}
