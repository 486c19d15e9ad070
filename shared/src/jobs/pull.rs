//! The Aliyun backup pull: per configured RDS instance, list the backups of the lookback window,
//! validate them, and copy each successful backup that S3 does not hold yet, verified by size
//! and CRC-64.
//!
//! A copy that does not fit in one invocation stops at a part boundary before the deadline and
//! continues in a fresh invocation through the [`Continuation`] port, with the S3 multipart
//! upload left open. Every run uploads at least one part, so a pull always advances.

mod catalog;
mod continuation;
mod copy;
mod download;
mod error;
mod target;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, TimeDelta, Utc};
use serde::Deserialize;
use serde_json::Value;

pub use catalog::{BackupCatalog, window_around};
pub use continuation::{
    Continuation, ContinuationError, ContinuationPayload, MAX_PAYLOAD_BYTES, RecordedContinuations,
};
pub use error::PullError;
pub use target::{
    BACKUP_END_METADATA_KEY, BACKUP_ID_METADATA_KEY, BACKUP_START_METADATA_KEY,
    INSTANCE_ID_METADATA_KEY, file_name_from_url, is_safe_id, object_metadata, target_key,
};

use crate::aliyun::{Backup, BackupMethod, BackupStatus, BackupWindow};
use crate::storage::{ObjectSink, ObjectSource};
use crate::transfer::{PartLimits, TransferSettings};
use crate::validate::backup::{
    DownloadNetwork, InstanceReport, ValidationSettings, validate_instance,
};
use copy::BackupCopy;

/// The default S3 prefix of pulled backups. It must not overlap the prefix that the S3→OSS sync
/// listens on, or every pulled backup would be copied to OSS again.
pub const DEFAULT_PULL_PREFIX: &str = "aliyun-rds/";

/// Settings of the pull: which instances, where the copies go, and when a copy pauses.
#[derive(Debug, Clone)]
pub struct PullSettings {
    /// The RDS instances the schedule validates and pulls.
    pub instances: Vec<String>,
    /// S3 key prefix of pulled backups, ending in `/`.
    pub prefix: String,
    /// How far back the schedule lists backups, and where a direct request looks a backup up.
    /// The size check compares with the previous full backup, so it should span two cycles.
    pub lookback: TimeDelta,
    pub validation: ValidationSettings,
    /// Part sizing, concurrency and retries of the copy; `limits` must be [`PartLimits::S3`]
    /// outside tests.
    pub transfer: TransferSettings,
    /// Time kept back from the invocation deadline: the copy pauses at the first part boundary
    /// after the deadline minus this margin.
    pub deadline_margin: Duration,
    /// A download URL that expires sooner than this is replaced before a request.
    pub url_expiry_margin: TimeDelta,
}

impl Default for PullSettings {
    fn default() -> Self {
        Self {
            instances: Vec::new(),
            prefix: DEFAULT_PULL_PREFIX.to_string(),
            lookback: TimeDelta::days(3),
            validation: ValidationSettings::default(),
            transfer: TransferSettings {
                part_size: 16 * 1024 * 1024,
                limits: PartLimits::S3,
                ..TransferSettings::default()
            },
            deadline_margin: Duration::from_secs(60),
            url_expiry_margin: TimeDelta::minutes(5),
        }
    }
}

/// The ports the pull works through.
#[derive(Clone)]
pub struct PullPorts {
    pub catalog: Arc<dyn BackupCatalog>,
    /// Reads download URLs (an `HttpSource` outside tests).
    pub download: Arc<dyn ObjectSource>,
    /// The S3 bucket the backups go to.
    pub sink: Arc<dyn ObjectSink>,
    pub continuation: Arc<dyn Continuation>,
}

/// The trigger of an invocation.
#[derive(Debug, Clone, PartialEq)]
pub enum PullTrigger {
    /// Validate and pull every configured instance: `{"trigger": "schedule"}` or an EventBridge
    /// `Scheduled Event`.
    Schedule,
    /// Pull one backup: `{"instance_id": "…", "backup_id": "…"}`.
    Backup {
        instance_id: String,
        backup_id: String,
    },
    /// Continue a paused pull: `{"continuation": {…}}`.
    Continuation(Box<ContinuationPayload>),
}

/// An event that matches no trigger.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "unrecognised event: {reason}; send {{\"trigger\":\"schedule\"}}, {{\"instance_id\":…,\"backup_id\":…}} or a continuation"
)]
pub struct InvalidTrigger {
    pub reason: String,
}

#[derive(Deserialize)]
struct DirectRequest {
    instance_id: String,
    backup_id: String,
}

impl PullTrigger {
    /// Reads the trigger from an invocation's payload.
    pub fn from_event(event: &Value) -> Result<Self, InvalidTrigger> {
        let invalid = |reason: String| InvalidTrigger { reason };
        if let Some(payload) = event.get("continuation") {
            let payload: ContinuationPayload = serde_json::from_value(payload.clone())
                .map_err(|error| invalid(format!("invalid continuation payload: {error}")))?;
            return Ok(Self::Continuation(Box::new(payload)));
        }
        if event.get("instance_id").is_some() || event.get("backup_id").is_some() {
            let request: DirectRequest = serde_json::from_value(event.clone())
                .map_err(|error| invalid(format!("invalid backup request: {error}")))?;
            for (name, id) in [
                ("instance_id", &request.instance_id),
                ("backup_id", &request.backup_id),
            ] {
                if !is_safe_id(id) {
                    return Err(invalid(format!(
                        "{name} {id:?} is empty or contains a slash"
                    )));
                }
            }
            return Ok(Self::Backup {
                instance_id: request.instance_id,
                backup_id: request.backup_id,
            });
        }
        let scheduled = event.get("trigger").and_then(Value::as_str) == Some("schedule")
            || event.get("detail-type").and_then(Value::as_str) == Some("Scheduled Event");
        if scheduled {
            return Ok(Self::Schedule);
        }
        Err(invalid(
            "no trigger, instance_id or continuation field".into(),
        ))
    }
}

/// The outcome of one backup.
#[derive(Debug, Clone, PartialEq)]
pub enum PullOutcome {
    /// Copied and verified; `runs` counts the invocations the copy took.
    Pulled {
        key: String,
        bytes: u64,
        parts: u32,
        crc64: u64,
        runs: u32,
        /// Seconds of the last run.
        seconds: f64,
        /// Whether the API's `Checksum` equals the download's CRC-64; `None` when it was not
        /// compared (absent, not a number, or a resumed run).
        api_checksum_matches: Option<bool>,
    },
    /// S3 already contains the backup with the same size and CRC-64.
    AlreadyPulled { key: String },
    /// Paused at a part boundary and handed to invocation `next_run`.
    Continued {
        key: String,
        upload_id: String,
        bytes_done: u64,
        next_part: u32,
        next_run: u32,
    },
    /// Not started because the invocation's deadline had passed; the next schedule picks it up.
    Deferred,
}

/// The result of one backup.
#[derive(Debug)]
pub struct BackupReport {
    pub instance_id: String,
    pub backup_id: String,
    pub result: Result<PullOutcome, PullError>,
}

/// Everything one invocation did.
#[derive(Debug, Default)]
pub struct PullReport {
    /// The verdicts of each instance the schedule validated.
    pub validations: Vec<InstanceReport>,
    /// Instances whose backups could not be listed.
    pub listing_errors: Vec<PullError>,
    pub backups: Vec<BackupReport>,
}

impl PullReport {
    /// Returns true when some failure may succeed on a retry of the invocation.
    pub fn has_retryable_failure(&self) -> bool {
        self.listing_errors.iter().any(PullError::is_retryable)
            || self
                .backups
                .iter()
                .any(|backup| backup.result.as_ref().is_err_and(PullError::is_retryable))
    }
}

/// Runs one invocation of the pull. `deadline` is when the copy should pause, the invocation's
/// deadline minus the margin.
pub async fn run_pull(
    trigger: PullTrigger,
    ports: &PullPorts,
    settings: &PullSettings,
    now: DateTime<Utc>,
    deadline: tokio::time::Instant,
) -> PullReport {
    let mut report = PullReport::default();
    match trigger {
        PullTrigger::Schedule => {
            for instance_id in &settings.instances {
                pull_instance(instance_id, ports, settings, now, deadline, &mut report).await;
            }
        }
        PullTrigger::Backup {
            instance_id,
            backup_id,
        } => {
            let result = pull_by_id(&instance_id, &backup_id, ports, settings, now, deadline).await;
            report.backups.push(BackupReport {
                instance_id,
                backup_id,
                result,
            });
        }
        PullTrigger::Continuation(payload) => {
            let result = continue_pull(&payload, ports, settings, deadline).await;
            report.backups.push(BackupReport {
                instance_id: payload.instance_id,
                backup_id: payload.backup_id,
                result,
            });
        }
    }
    report
}

async fn pull_instance(
    instance_id: &str,
    ports: &PullPorts,
    settings: &PullSettings,
    now: DateTime<Utc>,
    deadline: tokio::time::Instant,
    report: &mut PullReport,
) {
    let listed = match BackupWindow::last(settings.lookback, now) {
        Ok(window) => ports.catalog.list_backups(instance_id, &window).await,
        Err(error) => Err(error),
    };
    let backups = match listed {
        Ok(backups) => backups,
        Err(source) => {
            let error = PullError::Catalog {
                instance_id: instance_id.to_string(),
                source,
            };
            tracing::error!(instance_id, %error, "failed to list backups");
            report.listing_errors.push(error);
            return;
        }
    };
    let validation = validate_instance(instance_id, &backups, now, &settings.validation);
    validation.log();
    report.validations.push(validation);

    let mut candidates: Vec<&Backup> = backups
        .iter()
        .filter(|backup| backup.instance_id == instance_id && is_candidate(backup, settings))
        .collect();
    candidates.sort_by_key(|backup| (backup.start, backup.backup_id.clone()));
    for backup in candidates {
        let result = if tokio::time::Instant::now() >= deadline {
            Ok(PullOutcome::Deferred)
        } else {
            pull_listed(backup, ports, settings, deadline).await
        };
        log_result(backup, &result);
        report.backups.push(BackupReport {
            instance_id: backup.instance_id.clone(),
            backup_id: backup.backup_id.clone(),
            result,
        });
    }
}

/// Returns true for a successful backup with a download URL for the configured network.
/// Snapshot backups have none; validation reports the newest of them as not downloadable.
fn is_candidate(backup: &Backup, settings: &PullSettings) -> bool {
    backup.status == BackupStatus::Success
        && backup.method != Some(BackupMethod::Snapshot)
        && download_url(backup, settings.validation.network).is_some()
        && backup.size_bytes > 0
}

fn download_url(backup: &Backup, network: DownloadNetwork) -> Option<&String> {
    match network {
        DownloadNetwork::Public => backup.download_url.as_ref(),
        DownloadNetwork::Intranet => backup.intranet_download_url.as_ref(),
    }
}

fn log_result(backup: &Backup, result: &Result<PullOutcome, PullError>) {
    if let Err(error) = result {
        tracing::error!(
            instance_id = backup.instance_id,
            backup_id = backup.backup_id,
            retryable = error.is_retryable(),
            %error,
            "failed to pull backup"
        );
    }
}

async fn pull_by_id(
    instance_id: &str,
    backup_id: &str,
    ports: &PullPorts,
    settings: &PullSettings,
    now: DateTime<Utc>,
    deadline: tokio::time::Instant,
) -> Result<PullOutcome, PullError> {
    let catalog_error = |source| PullError::Catalog {
        instance_id: instance_id.to_string(),
        source,
    };
    let window = BackupWindow::last(settings.lookback, now).map_err(catalog_error)?;
    let backup = ports
        .catalog
        .find_backup(instance_id, backup_id, &window)
        .await
        .map_err(catalog_error)?
        .ok_or_else(|| PullError::BackupNotFound {
            instance_id: instance_id.to_string(),
            backup_id: backup_id.to_string(),
        })?;
    let result = pull_listed(&backup, ports, settings, deadline).await;
    log_result(&backup, &result);
    result
}

/// Pulls a backup as `DescribeBackups` listed it.
async fn pull_listed(
    backup: &Backup,
    ports: &PullPorts,
    settings: &PullSettings,
    deadline: tokio::time::Instant,
) -> Result<PullOutcome, PullError> {
    let not_pullable = |reason: &str| PullError::NotPullable {
        instance_id: backup.instance_id.clone(),
        backup_id: backup.backup_id.clone(),
        reason: reason.to_string(),
    };
    if backup.status != BackupStatus::Success {
        return Err(not_pullable(&format!(
            "its status is {}",
            backup.status.as_str()
        )));
    }
    if !is_safe_id(&backup.instance_id) || !is_safe_id(&backup.backup_id) {
        return Err(not_pullable("its instance or backup id contains a slash"));
    }
    let Some(url) = download_url(backup, settings.validation.network) else {
        return Err(not_pullable(
            "it has no download url for the configured network (snapshot backups have none)",
        ));
    };
    if backup.size_bytes == 0 {
        return Err(not_pullable("its BackupSize is 0"));
    }
    let copy = BackupCopy {
        ports,
        settings,
        backup,
        key: target_key(&settings.prefix, backup, url),
        run: 1,
    };
    copy.start(url.clone(), deadline).await
}

/// Continues a paused pull from its payload.
async fn continue_pull(
    payload: &ContinuationPayload,
    ports: &PullPorts,
    settings: &PullSettings,
    deadline: tokio::time::Instant,
) -> Result<PullOutcome, PullError> {
    let backup = Backup {
        backup_id: payload.backup_id.clone(),
        instance_id: payload.instance_id.clone(),
        status: BackupStatus::Success,
        mode: None,
        method: None,
        backup_type: None,
        start: payload.backup_start,
        end: payload.backup_end,
        size_bytes: payload.state.size,
        download_url: None,
        intranet_download_url: None,
        checksum: None,
        consistent_time: None,
        host_instance_id: None,
        is_available: None,
        store_status: None,
        engine: None,
        engine_version: None,
        encryption: None,
    };
    // A payload is trusted only as far as the key stays under this function's prefix.
    let expected_folder = format!(
        "{}{}/{}/{}/",
        settings.prefix,
        backup.instance_id,
        backup.start.format("%Y/%m/%d"),
        backup.backup_id
    );
    let key_is_ours = payload.state.key.starts_with(&expected_folder)
        && !payload.state.key[expected_folder.len()..].contains('/');
    if !is_safe_id(&backup.instance_id) || !is_safe_id(&backup.backup_id) || !key_is_ours {
        return Err(PullError::NotPullable {
            instance_id: backup.instance_id.clone(),
            backup_id: backup.backup_id.clone(),
            reason: format!(
                "continuation key {} is not under {expected_folder}",
                payload.state.key
            ),
        });
    }
    let copy = BackupCopy {
        ports,
        settings,
        backup: &backup,
        key: payload.state.key.clone(),
        run: payload.run,
    };
    let result = copy
        .resume(payload.state.clone(), payload.expected_crc64, deadline)
        .await;
    log_result(&backup, &result);
    result
}

#[cfg(test)]
mod tests;
