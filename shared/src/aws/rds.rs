//! Amazon RDS snapshots and snapshot export tasks: the domain types and the two ports
//! ([`SnapshotCatalog`], [`ExportService`]) that the export jobs use. The `aws-sdk-rds` adapter
//! lives in `crate::aws::rds_client`; no SDK type appears here.

use std::fmt;

use async_trait::async_trait;
use chrono::{DateTime, Utc};

pub use super::rds_error::{RdsError, RdsErrorKind};

/// The kind of database a snapshot belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum SourceKind {
    /// An RDS DB instance; its snapshots come from `DescribeDBSnapshots`.
    Instance,
    /// An Aurora DB cluster; its snapshots come from `DescribeDBClusterSnapshots`.
    Cluster,
}

/// A configured database whose snapshots are exported.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Source {
    /// An RDS DB instance identifier.
    Instance(String),
    /// An Aurora DB cluster identifier.
    Cluster(String),
}

impl Source {
    pub fn kind(&self) -> SourceKind {
        match self {
            Source::Instance(_) => SourceKind::Instance,
            Source::Cluster(_) => SourceKind::Cluster,
        }
    }

    /// Returns the DB instance or cluster identifier.
    pub fn id(&self) -> &str {
        match self {
            Source::Instance(id) | Source::Cluster(id) => id,
        }
    }
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Instance(id) => write!(f, "instance {id}"),
            Source::Cluster(id) => write!(f, "cluster {id}"),
        }
    }
}

/// The snapshot type, from the `SnapshotType` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SnapshotKind {
    /// Taken by the backup window (`automated`); its identifier starts with `rds:`.
    Automated,
    /// Taken on request (`manual`).
    Manual,
    /// Any other type, such as `shared`, `public` or `awsbackup`, kept verbatim.
    Other(String),
}

impl SnapshotKind {
    /// Parses the `SnapshotType` value, ignoring case.
    pub fn parse(value: &str) -> Self {
        match value.to_ascii_lowercase().as_str() {
            "automated" => SnapshotKind::Automated,
            "manual" => SnapshotKind::Manual,
            _ => SnapshotKind::Other(value.to_string()),
        }
    }
}

/// The status value of a snapshot that can be exported.
pub const SNAPSHOT_AVAILABLE: &str = "available";

/// One DB snapshot or DB cluster snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub arn: String,
    /// `DBSnapshotIdentifier` or `DBClusterSnapshotIdentifier`.
    pub id: String,
    pub source: Source,
    /// `SnapshotCreateTime`; RDS leaves it out while a snapshot is still being created.
    pub created: Option<DateTime<Utc>>,
    /// The status as RDS sends it, e.g. `available`, `creating`, `failed`.
    pub status: String,
    /// `Encrypted` for instance snapshots, `StorageEncrypted` for cluster snapshots.
    pub encrypted: bool,
    pub kind: SnapshotKind,
}

impl Snapshot {
    /// Returns true when the status is `available`, ignoring case.
    pub fn is_available(&self) -> bool {
        self.status.eq_ignore_ascii_case(SNAPSHOT_AVAILABLE)
    }
}

/// The status of an export task. RDS documents upper-case values, while its `status` filter wants
/// lower case, so parsing ignores case.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ExportStatus {
    /// RDS restores the snapshot before extracting data.
    Starting,
    InProgress,
    Complete,
    Failed,
    Canceling,
    Canceled,
    /// A value this code does not know, kept verbatim.
    Unknown(String),
}

impl ExportStatus {
    /// Parses a status value, ignoring case; both spellings of "canceled" are accepted.
    pub fn parse(value: &str) -> Self {
        match value.trim().to_ascii_uppercase().as_str() {
            "STARTING" => ExportStatus::Starting,
            "IN_PROGRESS" | "INPROGRESS" => ExportStatus::InProgress,
            "COMPLETE" | "COMPLETED" => ExportStatus::Complete,
            "FAILED" => ExportStatus::Failed,
            "CANCELING" | "CANCELLING" => ExportStatus::Canceling,
            "CANCELED" | "CANCELLED" => ExportStatus::Canceled,
            _ => ExportStatus::Unknown(value.to_string()),
        }
    }

    /// Returns true while the task still counts towards the per-account limit of concurrent
    /// exports (`STARTING`, `IN_PROGRESS`, `CANCELING`).
    pub fn is_active(&self) -> bool {
        matches!(
            self,
            ExportStatus::Starting | ExportStatus::InProgress | ExportStatus::Canceling
        )
    }

    /// Returns true for `COMPLETE`, `FAILED` and `CANCELED`.
    pub fn is_terminal(&self) -> bool {
        matches!(
            self,
            ExportStatus::Complete | ExportStatus::Failed | ExportStatus::Canceled
        )
    }

    /// Returns the upper-case name used in marker keys and reports.
    pub fn as_str(&self) -> &str {
        match self {
            ExportStatus::Starting => "STARTING",
            ExportStatus::InProgress => "IN_PROGRESS",
            ExportStatus::Complete => "COMPLETE",
            ExportStatus::Failed => "FAILED",
            ExportStatus::Canceling => "CANCELING",
            ExportStatus::Canceled => "CANCELED",
            ExportStatus::Unknown(value) => value,
        }
    }
}

impl fmt::Display for ExportStatus {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One snapshot export task as `DescribeExportTasks` or `StartExportTask` returns it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExportTask {
    /// `ExportTaskIdentifier`.
    pub id: String,
    /// ARN of the exported snapshot or cluster.
    pub source_arn: String,
    pub status: ExportStatus,
    /// `PercentProgress`, 0 to 100.
    pub percent: Option<i32>,
    /// `TotalExtractedDataInGB`.
    pub total_extracted_gb: Option<i32>,
    /// `FailureCause`, set when the task failed.
    pub failure_cause: Option<String>,
    /// `WarningMessage`, e.g. tables skipped during export.
    pub warning: Option<String>,
    /// `TaskStartTime`; absent until RDS starts the task.
    pub started: Option<DateTime<Utc>>,
    pub s3_bucket: Option<String>,
    pub s3_prefix: Option<String>,
}

/// The parameters of one `StartExportTask` request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StartExport {
    pub task_id: String,
    pub source_arn: String,
    pub s3_bucket: String,
    /// Key prefix inside the bucket, without a trailing `/`; RDS rejects a prefix with `:`.
    pub s3_prefix: String,
    pub iam_role_arn: String,
    /// The KMS key that encrypts the exported data; the service requires one.
    pub kms_key_id: String,
    /// `ExportOnly` entries (`database` or `database.table`); empty exports everything.
    pub export_only: Vec<String>,
}

/// Narrows `DescribeExportTasks`; an empty filter lists every task of the account and region.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportFilter {
    pub task_id: Option<String>,
    pub source_arn: Option<String>,
}

/// Lists snapshots of RDS instances and Aurora clusters.
#[async_trait]
pub trait SnapshotCatalog: Send + Sync {
    /// Lists every automated and manual snapshot of `source`, all pages, in the order RDS returns
    /// them. A source without snapshots returns an empty list, as RDS does.
    async fn list_snapshots(&self, source: &Source) -> Result<Vec<Snapshot>, RdsError>;

    /// Looks up one snapshot by identifier or ARN; returns `None` when RDS reports it not found.
    async fn find_snapshot(
        &self,
        kind: SourceKind,
        snapshot_id: &str,
    ) -> Result<Option<Snapshot>, RdsError>;
}

/// Starts and lists snapshot export tasks.
#[async_trait]
pub trait ExportService: Send + Sync {
    /// Starts one export task. An existing task with the same identifier fails with
    /// [`RdsErrorKind::AlreadyExists`].
    async fn start_export(&self, request: &StartExport) -> Result<ExportTask, RdsError>;

    /// Lists export tasks matching `filter`, all pages.
    async fn describe_exports(&self, filter: &ExportFilter) -> Result<Vec<ExportTask>, RdsError>;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn export_status_parses_any_case() {
        let cases = [
            ("complete", ExportStatus::Complete),
            ("COMPLETE", ExportStatus::Complete),
            ("In_Progress", ExportStatus::InProgress),
            ("starting", ExportStatus::Starting),
            ("FAILED", ExportStatus::Failed),
            ("canceled", ExportStatus::Canceled),
            ("CANCELLED", ExportStatus::Canceled),
            ("canceling", ExportStatus::Canceling),
        ];
        for (text, expected) in cases {
            assert_eq!(ExportStatus::parse(text), expected, "status {text}");
        }
    }

    #[test]
    fn export_status_keeps_unknown_values() {
        assert_eq!(
            ExportStatus::parse("paused"),
            ExportStatus::Unknown("paused".to_string())
        );
        assert_eq!(ExportStatus::parse("paused").as_str(), "paused");
    }

    #[test]
    fn only_running_tasks_count_as_active() {
        assert!(ExportStatus::Starting.is_active());
        assert!(ExportStatus::InProgress.is_active());
        assert!(ExportStatus::Canceling.is_active());
        assert!(!ExportStatus::Complete.is_active());
        assert!(!ExportStatus::Failed.is_active());
        assert!(!ExportStatus::Canceled.is_active());
        assert!(!ExportStatus::Unknown("x".into()).is_active());
    }

    #[test]
    fn snapshot_kind_parses_any_case() {
        assert_eq!(SnapshotKind::parse("Automated"), SnapshotKind::Automated);
        assert_eq!(SnapshotKind::parse("manual"), SnapshotKind::Manual);
        assert_eq!(
            SnapshotKind::parse("awsbackup"),
            SnapshotKind::Other("awsbackup".into())
        );
    }
}
