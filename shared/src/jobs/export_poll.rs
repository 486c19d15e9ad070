//! The `rds-export-poll` job: follow the export tasks this deployment started until they end.
//!
//! Each transition (`COMPLETE`, `FAILED`, `CANCELED`, stuck, fully synced) is reported once. A
//! transition counts as reported when its marker `<marker prefix>/<task id>/<state>` exists.
//! [`run`] lists the transitions that have no marker yet, and the caller alerts on them. Then
//! [`commit`] writes each marker with a conditional put and keeps only the transitions whose
//! marker this call created. So a poller that dies after seeing a transition and before alerting
//! leaves no marker, and the next poll reports the transition again. Two pollers at once both
//! alert, and the alert's own deduplication sends one message. A completed export is reconciled
//! against OSS on every poll until the reconciler finds every object in place.
//!
//! Failures: listing the export tasks fails the run (`Err`, so Lambda may retry it). A failed
//! marker read or write, or a failed reconciliation, is logged and listed in the report, and the
//! next poll retries it.

use async_trait::async_trait;
use bytes::Bytes;
use chrono::{DateTime, Duration, Utc};

use crate::aws::export_id;
use crate::aws::rds::{ExportFilter, ExportService, ExportStatus, ExportTask, RdsError};
use crate::events::rds::ExportPollTrigger;
use crate::storage::MarkerStore;

/// The default time after which a running export counts as stuck.
pub const DEFAULT_STUCK_AFTER: Duration = Duration::hours(24);

/// Settings of the export poll job.
#[derive(Debug, Clone)]
pub struct ExportPollConfig {
    /// Prefix of the export task ids this deployment starts (see [`export_id::with_prefix`]).
    pub id_prefix: String,
    /// Key prefix of the transition markers, without a trailing `/`, e.g. `exports/state`.
    pub marker_prefix: String,
    /// S3 key prefix used when a task does not state its own.
    pub default_s3_prefix: String,
    /// A task `STARTING` or `IN_PROGRESS` for longer than this is reported as stuck.
    pub stuck_after: Duration,
}

/// Object counts of one reconciliation of `<s3 prefix>/<export id>/` against OSS.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ReconcileCounts {
    /// Objects listed in S3.
    pub listed: u64,
    /// Objects already in OSS with the same size and CRC-64.
    pub matched: u64,
    /// Objects copied by this reconciliation.
    pub copied: u64,
    /// Objects left for the next poll because the time budget ran out.
    pub remaining: u64,
    /// Objects whose copy failed.
    pub failed: u64,
}

impl ReconcileCounts {
    /// Returns true when every listed object is in OSS.
    pub fn fully_synced(&self) -> bool {
        self.remaining == 0 && self.failed == 0 && self.matched + self.copied == self.listed
    }
}

/// Compares an export's objects in S3 with OSS and copies what is missing, within `deadline`.
/// The sync engine implements it; the job only reads the counts.
#[async_trait]
pub trait Reconciler: Send + Sync {
    /// Reconciles every object under `s3_key_prefix` (ending in `/`) with its OSS copy.
    async fn reconcile(
        &self,
        s3_key_prefix: &str,
        deadline: tokio::time::Instant,
    ) -> Result<ReconcileCounts, String>;
}

/// A state change reported by this poll.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TransitionKind {
    Completed,
    Failed,
    Canceled,
    /// Running longer than the configured limit.
    Stuck {
        running_for: Duration,
    },
    /// Every object of a completed export is in OSS.
    Synced {
        counts: ReconcileCounts,
    },
}

impl TransitionKind {
    /// Returns the state part of the marker key.
    pub fn marker_state(&self) -> &'static str {
        match self {
            TransitionKind::Completed => "COMPLETE",
            TransitionKind::Failed => "FAILED",
            TransitionKind::Canceled => "CANCELED",
            TransitionKind::Stuck { .. } => "STUCK",
            TransitionKind::Synced { .. } => "SYNCED",
        }
    }
}

/// One transition with the facts people need to act on it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    pub task_id: String,
    pub snapshot_arn: String,
    /// The task's status as RDS reported it, e.g. `FAILED`.
    pub status: String,
    pub kind: TransitionKind,
    pub failure_cause: Option<String>,
    pub warning: Option<String>,
}

/// The result of one poll.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportPollReport {
    /// Tasks of this deployment that the poll looked at.
    pub tasks_seen: usize,
    /// Transitions with no marker yet. After [`commit`], those whose marker this poll wrote.
    pub transitions: Vec<Transition>,
    /// Reconciliations run by this poll, by task id.
    pub reconciled: Vec<(String, ReconcileCounts)>,
    /// Marker or reconciliation failures, retried by the next poll.
    pub errors: Vec<String>,
}

/// Runs the job for one trigger. `reconcile_budget` bounds the time spent reconciling.
pub async fn run(
    trigger: &ExportPollTrigger,
    exports: &dyn ExportService,
    markers: &dyn MarkerStore,
    reconciler: &dyn Reconciler,
    config: &ExportPollConfig,
    now: DateTime<Utc>,
    reconcile_budget: std::time::Duration,
) -> Result<ExportPollReport, RdsError> {
    let filter = match trigger {
        ExportPollTrigger::Schedule => ExportFilter::default(),
        ExportPollTrigger::ExportEnded { snapshot_arn, .. } => ExportFilter {
            task_id: None,
            source_arn: snapshot_arn.clone(),
        },
        ExportPollTrigger::Ignored { event_id } => {
            tracing::info!(
                event_id = event_id.as_deref(),
                "ignoring an RDS event that ends no export"
            );
            return Ok(ExportPollReport::default());
        }
    };
    let deadline = tokio::time::Instant::now() + reconcile_budget;
    let own_prefix = format!("{}-", export_id::normalize_prefix(&config.id_prefix));

    let tasks = exports.describe_exports(&filter).await?;
    let mut report = ExportPollReport::default();
    for task in tasks.iter().filter(|t| t.id.starts_with(&own_prefix)) {
        report.tasks_seen += 1;
        poll_task(
            task,
            markers,
            reconciler,
            config,
            now,
            deadline,
            &mut report,
        )
        .await;
    }
    Ok(report)
}

async fn poll_task(
    task: &ExportTask,
    markers: &dyn MarkerStore,
    reconciler: &dyn Reconciler,
    config: &ExportPollConfig,
    now: DateTime<Utc>,
    deadline: tokio::time::Instant,
    report: &mut ExportPollReport,
) {
    match &task.status {
        ExportStatus::Starting | ExportStatus::InProgress => {
            tracing::info!(
                task_id = %task.id,
                status = %task.status,
                percent = task.percent,
                extracted_gb = task.total_extracted_gb,
                "export in progress"
            );
            let running_for = task.started.map(|started| now - started);
            if let Some(running_for) = running_for.filter(|d| *d > config.stuck_after) {
                report_once(
                    task,
                    TransitionKind::Stuck { running_for },
                    markers,
                    config,
                    report,
                )
                .await;
            }
        }
        ExportStatus::Failed => {
            report_once(task, TransitionKind::Failed, markers, config, report).await;
        }
        ExportStatus::Canceled => {
            report_once(task, TransitionKind::Canceled, markers, config, report).await;
        }
        ExportStatus::Complete => {
            report_once(task, TransitionKind::Completed, markers, config, report).await;
            reconcile(task, markers, reconciler, config, deadline, report).await;
        }
        ExportStatus::Canceling => {
            tracing::info!(task_id = %task.id, "export is being canceled");
        }
        ExportStatus::Unknown(status) => {
            tracing::warn!(task_id = %task.id, status, "export has a status this code does not know");
        }
    }
}

async fn reconcile(
    task: &ExportTask,
    markers: &dyn MarkerStore,
    reconciler: &dyn Reconciler,
    config: &ExportPollConfig,
    deadline: tokio::time::Instant,
    report: &mut ExportPollReport,
) {
    let synced_key = marker_key(config, &task.id, "SYNCED");
    match markers.read_marker(&synced_key).await {
        Ok(Some(_)) => return,
        Ok(None) => {}
        Err(error) => {
            tracing::error!(task_id = %task.id, %error, "failed to read the synced marker");
            report.errors.push(error.to_string());
            return;
        }
    }
    if tokio::time::Instant::now() >= deadline {
        tracing::info!(task_id = %task.id, "no time left to reconcile; the next poll continues");
        return;
    }

    let s3_prefix = task
        .s3_prefix
        .as_deref()
        .unwrap_or(&config.default_s3_prefix);
    let key_prefix = format!("{}/{}/", s3_prefix.trim_end_matches('/'), task.id);
    match reconciler.reconcile(&key_prefix, deadline).await {
        Ok(counts) => {
            tracing::info!(
                task_id = %task.id,
                listed = counts.listed,
                matched = counts.matched,
                copied = counts.copied,
                remaining = counts.remaining,
                failed = counts.failed,
                "reconciled export with OSS"
            );
            report.reconciled.push((task.id.clone(), counts));
            if counts.fully_synced() {
                report_once(
                    task,
                    TransitionKind::Synced { counts },
                    markers,
                    config,
                    report,
                )
                .await;
            }
        }
        Err(error) => {
            tracing::error!(task_id = %task.id, prefix = %key_prefix, error, "reconciliation failed");
            report
                .errors
                .push(format!("reconciliation of {key_prefix} failed: {error}"));
        }
    }
}

/// Lists `kind` for `task` in the report when its marker does not exist yet.
async fn report_once(
    task: &ExportTask,
    kind: TransitionKind,
    markers: &dyn MarkerStore,
    config: &ExportPollConfig,
    report: &mut ExportPollReport,
) {
    let key = marker_key(config, &task.id, kind.marker_state());
    match markers.read_marker(&key).await {
        Ok(Some(_)) => {}
        Ok(None) => report.transitions.push(Transition {
            task_id: task.id.clone(),
            snapshot_arn: task.source_arn.clone(),
            status: task.status.as_str().to_string(),
            kind,
            failure_cause: task.failure_cause.clone(),
            warning: task.warning.clone(),
        }),
        Err(error) => {
            tracing::error!(task_id = %task.id, marker = %key, %error, "failed to read the marker");
            report.errors.push(error.to_string());
        }
    }
}

/// Writes the marker of every transition in `report` and keeps those whose marker this call
/// created. Call it after alerting on the transitions: a transition whose marker another poller
/// wrote first is dropped, and one whose write failed stays unreported for the next poll.
pub async fn commit(
    report: &mut ExportPollReport,
    markers: &dyn MarkerStore,
    config: &ExportPollConfig,
) {
    let mut committed = Vec::with_capacity(report.transitions.len());
    for transition in std::mem::take(&mut report.transitions) {
        let key = marker_key(config, &transition.task_id, transition.kind.marker_state());
        let body = serde_json::json!({
            "task_id": transition.task_id,
            "snapshot_arn": transition.snapshot_arn,
            "status": transition.status,
            "failure_cause": transition.failure_cause,
            "warning": transition.warning,
        });
        match markers
            .create_marker(&key, Bytes::from(body.to_string()))
            .await
        {
            Ok(true) => {
                tracing::warn!(
                    task_id = %transition.task_id,
                    state = transition.kind.marker_state(),
                    failure_cause = transition.failure_cause.as_deref(),
                    warning = transition.warning.as_deref(),
                    "export transition"
                );
                committed.push(transition);
            }
            Ok(false) => {}
            Err(error) => {
                tracing::error!(task_id = %transition.task_id, marker = %key, %error, "failed to write the marker");
                report.errors.push(error.to_string());
            }
        }
    }
    report.transitions = committed;
}

fn marker_key(config: &ExportPollConfig, task_id: &str, state: &str) -> String {
    format!(
        "{}/{task_id}/{state}",
        config.marker_prefix.trim_end_matches('/')
    )
}
