//! The status of each configured source: its newest backup or snapshot, that backup's age
//! against the configured maximum, and whether its copy has reached the other cloud.

use chrono::{DateTime, TimeDelta, Utc};

use crate::aliyun::{AliyunError, Backup, BackupStatus, BackupType, BackupWindow};
use crate::aws::export_id;
use crate::aws::rds::{ExportFilter, ExportService, ExportTask, RdsError, Snapshot, SnapshotCatalog, Source};
use crate::jobs::export_start::ExportStartConfig;
use crate::jobs::pull::{BackupCatalog, PullSettings, target_key};
use crate::storage::{MarkerStore, ObjectSink, StorageError};
use crate::validate::backup::{DownloadNetwork, InstanceReport, validate_instance};
use crate::validate::snapshot::{SnapshotVerdict, judge};

/// A status that could not be determined, with the cloud's error.
#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error(transparent)]
    Aliyun(#[from] AliyunError),
    #[error(transparent)]
    Rds(#[from] RdsError),
    #[error(transparent)]
    Storage(#[from] StorageError),
}

/// One Aliyun RDS instance.
#[derive(Debug, Clone)]
pub struct AliyunSourceStatus {
    pub instance_id: String,
    /// The newest successful full backup in the pull's lookback window.
    pub newest: Option<Backup>,
    /// Time since the newest backup ended (or started, when it has no end time).
    pub age: Option<TimeDelta>,
    pub max_age: TimeDelta,
    /// The S3 key that the pull writes the newest backup to, when it has a download URL.
    pub s3_key: Option<String>,
    /// True when an object exists at `s3_key`.
    pub in_s3: bool,
    pub report: InstanceReport,
}

/// One Amazon RDS instance or Aurora cluster.
#[derive(Debug, Clone)]
pub struct RdsSourceStatus {
    pub source: Source,
    pub verdict: SnapshotVerdict,
    /// The newest available snapshot, or the newest of any status when none is available.
    pub newest: Option<Snapshot>,
    pub age: Option<TimeDelta>,
    pub max_age: TimeDelta,
    /// The export task id that `rds-export-start` gives the newest snapshot.
    pub task_id: Option<String>,
    pub task: Option<ExportTask>,
    /// True when `rds-export-poll` recorded that every exported object reached OSS.
    pub in_oss: bool,
}

/// Returns the download URL that the pull uses for `backup` on `network`.
pub fn download_url(backup: &Backup, network: DownloadNetwork) -> Option<&str> {
    match network {
        DownloadNetwork::Public => backup.download_url.as_deref(),
        DownloadNetwork::Intranet => backup.intranet_download_url.as_deref(),
    }
}

/// Finds the newest successful full backup of `instance_id` and checks whether the pull copied
/// it to `s3`, whose keys start with `settings.prefix`.
///
/// # Errors
/// The RDS API's error, or the S3 HEAD's.
pub async fn aliyun_status(
    catalog: &dyn BackupCatalog,
    s3: &dyn ObjectSink,
    settings: &PullSettings,
    instance_id: &str,
    now: DateTime<Utc>,
) -> Result<AliyunSourceStatus, StatusError> {
    let window = BackupWindow::last(settings.lookback, now)?;
    let backups = catalog.list_backups(instance_id, &window).await?;
    let report = validate_instance(instance_id, &backups, now, &settings.validation);
    let newest = backups
        .into_iter()
        .filter(|backup| backup.status == BackupStatus::Success)
        .filter(|backup| matches!(backup.backup_type, None | Some(BackupType::FullBackup)))
        .max_by_key(|backup| backup.end.unwrap_or(backup.start));
    let age = newest
        .as_ref()
        .map(|backup| now - backup.end.unwrap_or(backup.start));
    let s3_key = newest.as_ref().and_then(|backup| {
        download_url(backup, settings.validation.network)
            .map(|url| target_key(&settings.prefix, backup, url))
    });
    let in_s3 = match &s3_key {
        Some(key) => s3.head(key).await?.is_some(),
        None => false,
    };
    Ok(AliyunSourceStatus {
        instance_id: instance_id.to_string(),
        newest,
        age,
        max_age: settings.validation.max_age,
        s3_key,
        in_s3,
        report,
    })
}

/// Returns the key of the marker that `rds-export-poll` writes once an export is fully in OSS.
/// It follows the poll's layout `<marker prefix>/<task id>/SYNCED`.
pub fn synced_marker_key(marker_prefix: &str, task_id: &str) -> String {
    format!("{}/{task_id}/SYNCED", marker_prefix.trim_end_matches('/'))
}

/// Judges the snapshots of `source`, finds the export task of the newest one and checks the
/// poll's synced marker in `markers`.
///
/// # Errors
/// The RDS error of listing snapshots or export tasks, or the marker read's.
pub async fn rds_status(
    catalog: &dyn SnapshotCatalog,
    exports: &dyn ExportService,
    markers: &dyn MarkerStore,
    config: &ExportStartConfig,
    marker_prefix: &str,
    source: &Source,
    now: DateTime<Utc>,
) -> Result<RdsSourceStatus, StatusError> {
    let snapshots = catalog.list_snapshots(source).await?;
    let verdict = judge(source, &snapshots, &config.policy, now);
    let newest = match &verdict {
        SnapshotVerdict::Valid(snapshot)
        | SnapshotVerdict::Stale { snapshot, .. }
        | SnapshotVerdict::NotEncrypted { snapshot } => Some(snapshot.clone()),
        SnapshotVerdict::NotAvailable { newest, .. } => Some(newest.clone()),
        SnapshotVerdict::NoSnapshot { .. } => None,
    };
    let age = newest
        .as_ref()
        .and_then(|snapshot| snapshot.created)
        .map(|created| now - created);
    let task_id = newest
        .as_ref()
        .map(|snapshot| export_id::with_prefix(&config.id_prefix, &snapshot.id));
    let (task, in_oss) = match &task_id {
        Some(task_id) => {
            let filter = ExportFilter {
                task_id: Some(task_id.clone()),
                source_arn: None,
            };
            let task = exports
                .describe_exports(&filter)
                .await?
                .into_iter()
                .find(|task| &task.id == task_id);
            let marker = synced_marker_key(marker_prefix, task_id);
            (task, markers.read_marker(&marker).await?.is_some())
        }
        None => (None, false),
    };
    Ok(RdsSourceStatus {
        source: source.clone(),
        verdict,
        newest,
        age,
        max_age: config.policy.max_age,
        task_id,
        task,
        in_oss,
    })
}
