//! The alert model: what every function hands to the alerter when something needs a human.
//!
//! An [`Alert`] names what happened ([`AlertKind`]), how bad it is ([`Severity`]), which resources
//! it concerns ([`ResourceIds`]) and the facts a reader needs ([`Fact`]). A job collects its alerts
//! in an [`AlertBatch`] and hands the batch to `Alerter::dispatch` once.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// The kind of event an alert reports. The serde names (`backup_stale`, ...) are the names used in the rules document.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AlertKind {
    /// No backup exists where one is expected.
    BackupMissing,
    /// The newest backup is older than the configured maximum age.
    BackupStale,
    /// A backup is much smaller than the one before it.
    BackupSizeDrop,
    /// A backup exists but its download link or object cannot be read.
    BackupNotDownloadable,
    /// Copying a backup between clouds failed.
    TransferFailed,
    /// A copied object's checksum differs from the source's.
    ChecksumMismatch,
    /// An RDS snapshot export task could not be started.
    ExportStartFailed,
    /// An RDS snapshot export task ended in failure.
    ExportFailed,
    /// An RDS snapshot export task was canceled.
    ExportCanceled,
    /// An RDS snapshot export task has made no progress for too long.
    ExportStuck,
    /// A sync run failed as a whole.
    SyncFailed,
    /// A sync run finished with objects left uncopied.
    SyncIncomplete,
    /// A function's configuration is invalid, so it cannot do its work.
    ConfigurationInvalid,
}

impl AlertKind {
    /// Every kind, in declaration order.
    pub const ALL: [AlertKind; 13] = [
        AlertKind::BackupMissing,
        AlertKind::BackupStale,
        AlertKind::BackupSizeDrop,
        AlertKind::BackupNotDownloadable,
        AlertKind::TransferFailed,
        AlertKind::ChecksumMismatch,
        AlertKind::ExportStartFailed,
        AlertKind::ExportFailed,
        AlertKind::ExportCanceled,
        AlertKind::ExportStuck,
        AlertKind::SyncFailed,
        AlertKind::SyncIncomplete,
        AlertKind::ConfigurationInvalid,
    ];

    /// Returns the name used in the rules document, fingerprints and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            AlertKind::BackupMissing => "backup_missing",
            AlertKind::BackupStale => "backup_stale",
            AlertKind::BackupSizeDrop => "backup_size_drop",
            AlertKind::BackupNotDownloadable => "backup_not_downloadable",
            AlertKind::TransferFailed => "transfer_failed",
            AlertKind::ChecksumMismatch => "checksum_mismatch",
            AlertKind::ExportStartFailed => "export_start_failed",
            AlertKind::ExportFailed => "export_failed",
            AlertKind::ExportCanceled => "export_canceled",
            AlertKind::ExportStuck => "export_stuck",
            AlertKind::SyncFailed => "sync_failed",
            AlertKind::SyncIncomplete => "sync_incomplete",
            AlertKind::ConfigurationInvalid => "configuration_invalid",
        }
    }
}

/// The urgency of an alert. Ordered, so `Severity::Critical > Severity::Warning`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// The resources an alert concerns. Every field is optional; the fingerprint uses all of them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct ResourceIds {
    /// RDS instance id, e.g. `rm-bp1abc` on Aliyun or a DB instance identifier on AWS.
    pub instance: Option<String>,
    pub backup_id: Option<String>,
    pub snapshot: Option<String>,
    pub export_id: Option<String>,
    pub bucket: Option<String>,
    pub key: Option<String>,
}

/// The name of one fact; each has a label in every message language.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FactName {
    /// Object or backup size, already formatted by the caller (e.g. `12.4 GiB`).
    Size,
    PreviousSize,
    ExpectedChecksum,
    ActualChecksum,
    /// A service error code, e.g. `SignatureDoesNotMatch`.
    ErrorCode,
    /// The cause of a failure, e.g. a `FailureCause` rendered as text.
    Cause,
    /// The newest backup's end time.
    BackupEndTime,
    /// The age of the newest backup.
    BackupAge,
    /// The configured maximum backup age.
    MaxAge,
    /// A task's status as the cloud reports it.
    Status,
    /// A task's progress, e.g. `37%`.
    Progress,
    /// How long a task has been running or unchanged.
    Elapsed,
    /// Any other detail, e.g. an error message.
    Detail,
}

/// One fact of an alert: a name and its value, formatted by the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fact {
    pub name: FactName,
    pub value: String,
}

/// One thing that needs a human's attention.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Alert {
    pub kind: AlertKind,
    pub severity: Severity,
    pub resource: ResourceIds,
    pub facts: Vec<Fact>,
    /// The function that raised the alert, e.g. `s3-oss-sync`.
    pub function: String,
    /// The Lambda request id of the invocation that raised the alert.
    pub request_id: String,
    pub occurred_at: DateTime<Utc>,
}

impl Alert {
    /// Starts an alert with no resource ids and no facts; add them with the builder methods.
    pub fn new(
        kind: AlertKind,
        severity: Severity,
        function: impl Into<String>,
        request_id: impl Into<String>,
        occurred_at: DateTime<Utc>,
    ) -> Self {
        Self {
            kind,
            severity,
            resource: ResourceIds::default(),
            facts: Vec::new(),
            function: function.into(),
            request_id: request_id.into(),
            occurred_at,
        }
    }

    pub fn instance(mut self, instance: impl Into<String>) -> Self {
        self.resource.instance = Some(instance.into());
        self
    }

    pub fn backup_id(mut self, backup_id: impl Into<String>) -> Self {
        self.resource.backup_id = Some(backup_id.into());
        self
    }

    pub fn snapshot(mut self, snapshot: impl Into<String>) -> Self {
        self.resource.snapshot = Some(snapshot.into());
        self
    }

    pub fn export_id(mut self, export_id: impl Into<String>) -> Self {
        self.resource.export_id = Some(export_id.into());
        self
    }

    pub fn bucket(mut self, bucket: impl Into<String>) -> Self {
        self.resource.bucket = Some(bucket.into());
        self
    }

    pub fn object(mut self, bucket: impl Into<String>, key: impl Into<String>) -> Self {
        self.resource.bucket = Some(bucket.into());
        self.resource.key = Some(key.into());
        self
    }

    pub fn fact(mut self, name: FactName, value: impl Into<String>) -> Self {
        self.facts.push(Fact {
            name,
            value: value.into(),
        });
        self
    }
}

/// The alerts one job run collected, dispatched together so that alerts of one kind share a
/// message.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AlertBatch {
    alerts: Vec<Alert>,
}

impl AlertBatch {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn push(&mut self, alert: Alert) {
        self.alerts.push(alert);
    }

    pub fn len(&self) -> usize {
        self.alerts.len()
    }

    pub fn is_empty(&self) -> bool {
        self.alerts.is_empty()
    }

    pub fn alerts(&self) -> &[Alert] {
        &self.alerts
    }

    pub fn into_alerts(self) -> Vec<Alert> {
        self.alerts
    }
}

impl FromIterator<Alert> for AlertBatch {
    fn from_iter<I: IntoIterator<Item = Alert>>(iter: I) -> Self {
        Self {
            alerts: iter.into_iter().collect(),
        }
    }
}

impl Extend<Alert> for AlertBatch {
    fn extend<I: IntoIterator<Item = Alert>>(&mut self, iter: I) {
        self.alerts.extend(iter);
    }
}
