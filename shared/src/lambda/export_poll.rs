//! The `rds-export-poll` handler: the schedule's input or an RDS export event in, the export
//! transitions and reconciliation counts out.
//!
//! Lambda retries the invocation only when `DescribeExportTasks` failed in a way that may pass
//! (throttling, 5xx, no reply), and input that matches no trigger is returned as an error.
//! Everything else is reported in the result and not retried. `FAILED`, `CANCELED` and stuck
//! exports are alerted once, because a marker per task and state is written with a conditional
//! put. A reconciliation that ran out of time or could not copy an object continues on the next
//! poll.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};

use super::export_alerts::{AlertOrigin, poll_alerts, run_failure_alert};
use super::export_start::{ExportInvocationError, build_rds_client};
use super::{record_run, send_alerts_and_record_run};
use crate::alert::{AlertBatch, AlertKind, deadline_before};
use crate::aws::rds_client::RdsClient;
use crate::config::{
    AlertingConfig, Alerts, ConfigError, ExportPollFunctionConfig, Lookup, load_secrets,
};
use crate::events::rds::{ExportPollTrigger, parse_export_poll};
use crate::jobs::export_poll::{self, ExportPollConfig, ExportPollReport, TransitionKind};
use crate::jobs::reconcile::SyncReconciler;
use crate::jobs::sync::SyncSettings;
use crate::metrics::JobMetrics;
use crate::oss::OssStore;
use crate::storage::s3::{S3Store, build_client};

/// The function's name in alerts and logs.
pub const FUNCTION_NAME: &str = "rds-export-poll";
/// Time kept back from the invocation deadline for sending alerts.
const ALERT_MARGIN: Duration = Duration::from_secs(5);
/// Time kept back from the invocation deadline when reconciling: writing markers, alerting and
/// the copy that is still running when the budget ends. A short invocation keeps a quarter of
/// its remaining time instead, so that it still reconciles something.
const RECONCILE_MARGIN: Duration = Duration::from_secs(30);

/// The clients and settings that every invocation of `rds-export-poll` shares.
pub struct ExportPollFunction {
    rds: RdsClient,
    /// The export bucket: the exported objects and the state markers.
    store: S3Store,
    sink: OssStore,
    config: ExportPollConfig,
    sync: SyncSettings,
    alerts: Alerts,
}

impl ExportPollFunction {
    /// Reads the configuration and credentials and builds the clients, once per cold start.
    ///
    /// # Errors
    /// A [`ConfigError`] that names the missing or invalid variable.
    pub async fn from_env(
        lookup: Lookup<'_>,
        sdk_config: &aws_config::SdkConfig,
    ) -> Result<Self, ConfigError> {
        let secrets = load_secrets(lookup, sdk_config).await?;
        let config = ExportPollFunctionConfig::from_env(lookup, secrets.aliyun)?;
        let store = S3Store::new(build_client(sdk_config, &config.s3), config.bucket.clone());
        let alerting = AlertingConfig::from_env(lookup, secrets.wecom_webhook_key, &store).await?;
        let alerts = Alerts::new(alerting, Arc::new(store.clone()))?
            .with_summary_lister(Arc::new(store.clone()));
        let sink = OssStore::new(config.oss.clone()).map_err(|error| ConfigError::Invalid {
            name: "OSS_ENDPOINT",
            value: config.oss.endpoint.host().to_string(),
            reason: error.to_string(),
        })?;
        tracing::info!(
            bucket = config.bucket,
            source_prefix = config.sync.source_prefix,
            oss_bucket = config.oss.bucket,
            oss_prefix = config.sync.target_prefix,
            id_prefix = config.job.id_prefix,
            marker_prefix = config.job.marker_prefix,
            "rds-export-poll configured"
        );
        Ok(Self {
            rds: build_rds_client(sdk_config, &config.rds),
            store,
            sink,
            config: config.job,
            sync: config.sync,
            alerts,
        })
    }

    /// Polls the export tasks of this deployment, reports new transitions and reconciles
    /// completed exports with OSS within the invocation's time.
    ///
    /// # Errors
    /// [`ExportInvocationError::InvalidInput`] for input that matches no trigger, and
    /// [`ExportInvocationError::Retryable`] when listing the export tasks may pass on a retry.
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, ExportInvocationError> {
        let request_id = event.context.request_id.clone();
        let alert_deadline = deadline_before(event.context.deadline, ALERT_MARGIN);
        let remaining = crate::alert::remaining_before(event.context.deadline);
        let margin = RECONCILE_MARGIN.min(remaining / 4);
        let reconcile_deadline = deadline_before(event.context.deadline, margin);
        let budget = reconcile_deadline.saturating_duration_since(tokio::time::Instant::now());
        let trigger = parse_export_poll(&event.payload).inspect_err(|error| {
            tracing::error!(%error, "rejected an input that matches no trigger");
        })?;
        let now = Utc::now();
        let origin = AlertOrigin {
            function: FUNCTION_NAME,
            request_id: &request_id,
            now,
        };

        let reconciler = SyncReconciler::new(
            self.store.bucket(),
            &self.store,
            &self.store,
            &self.sink,
            &self.sync,
        );
        let result = export_poll::run(
            &trigger,
            &self.rds,
            &self.store,
            &reconciler,
            &self.config,
            now,
            budget,
        )
        .await;
        match result {
            Ok(mut report) => {
                let failures = reconciler.take_failures();
                let batch = poll_alerts(&report, &failures, origin);
                let alerts_raised = batch.len();
                self.alerts.dispatch(batch, alert_deadline).await;
                // Markers only after the alerts: a poller that dies before alerting leaves the
                // transitions unreported for the next poll.
                export_poll::commit(&mut report, &self.store, &self.config).await;
                record_run(
                    &self.alerts,
                    FUNCTION_NAME,
                    &request_id,
                    &job_metrics(&report),
                    alerts_raised,
                    alert_deadline,
                )
                .await;
                Ok(report_json(&trigger, &report))
            }
            Err(error) if error.is_retryable() => {
                tracing::error!(%error, "failed to list export tasks; the invocation may be retried");
                Err(ExportInvocationError::Retryable(error))
            }
            Err(error) => {
                tracing::error!(%error, code = error.code(), "failed to list export tasks");
                let mut batch = AlertBatch::new();
                batch.push(run_failure_alert(
                    AlertKind::ConfigurationInvalid,
                    &error,
                    origin,
                ));
                send_alerts_and_record_run(
                    &self.alerts,
                    batch,
                    FUNCTION_NAME,
                    &request_id,
                    &JobMetrics::failed(1),
                    alert_deadline,
                )
                .await;
                Ok(json!({
                    "trigger": trigger_name(&trigger),
                    "error": { "code": error.code(), "message": error.to_string() },
                }))
            }
        }
    }
}

/// Counts failed, canceled and stuck exports, the objects whose reconciliation copy failed and
/// the marker or reconciliation errors as failures, and the exports that this poll found fully
/// in OSS as successes, for the dashboard and the daily summary. A task that the poll only looked
/// at again, running or ended earlier, counts as neither, so a schedule that polls every few
/// minutes does not count one export many times. Run it after [`export_poll::commit`], so a
/// transition whose marker was not written is counted by the poll that writes it, not twice.
// NOTE: the bytes copied by reconciliation are not counted, because `ReconcileCounts` holds
// object counts only.
pub fn job_metrics(report: &ExportPollReport) -> JobMetrics {
    let transitions = report
        .transitions
        .iter()
        .filter(|transition| {
            matches!(
                transition.kind,
                TransitionKind::Failed | TransitionKind::Canceled | TransitionKind::Stuck { .. }
            )
        })
        .count() as u64;
    let copies: u64 = report
        .reconciled
        .iter()
        .map(|(_, counts)| counts.failed)
        .sum();
    let synced = report
        .transitions
        .iter()
        .filter(|transition| matches!(transition.kind, TransitionKind::Synced { .. }))
        .count() as u64;
    JobMetrics {
        succeeded: synced,
        ..JobMetrics::failed(transitions + copies + report.errors.len() as u64)
    }
}

fn trigger_name(trigger: &ExportPollTrigger) -> &'static str {
    match trigger {
        ExportPollTrigger::Schedule => "schedule",
        ExportPollTrigger::ExportEnded { .. } => "export_event",
        ExportPollTrigger::Ignored { .. } => "ignored",
    }
}

/// Renders the report as the invocation's JSON result.
pub fn report_json(trigger: &ExportPollTrigger, report: &ExportPollReport) -> Value {
    let transitions: Vec<Value> = report
        .transitions
        .iter()
        .map(|transition| {
            let running_hours = match &transition.kind {
                TransitionKind::Stuck { running_for } => Some(running_for.num_minutes() / 60),
                _ => None,
            };
            json!({
                "task_id": transition.task_id,
                "snapshot_arn": transition.snapshot_arn,
                "state": transition.kind.marker_state(),
                "failure_cause": transition.failure_cause,
                "warning": transition.warning,
                "running_hours": running_hours,
            })
        })
        .collect();
    let reconciled: Vec<Value> = report
        .reconciled
        .iter()
        .map(|(task_id, counts)| {
            json!({
                "task_id": task_id,
                "listed": counts.listed,
                "matched": counts.matched,
                "copied": counts.copied,
                "remaining": counts.remaining,
                "failed": counts.failed,
                "fully_synced": counts.fully_synced(),
            })
        })
        .collect();
    json!({
        "trigger": trigger_name(trigger),
        "tasks_seen": report.tasks_seen,
        "transitions": transitions,
        "reconciled": reconciled,
        "errors": report.errors,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::export_poll::{ReconcileCounts, Transition};

    fn transition(task_id: &str, kind: TransitionKind) -> Transition {
        Transition {
            task_id: task_id.to_string(),
            snapshot_arn: format!("arn:aws:rds:us-east-1:123456789012:snapshot:{task_id}"),
            status: "FAILED".to_string(),
            kind,
            failure_cause: None,
            warning: None,
        }
    }

    #[test]
    fn metrics_count_failed_exports_copies_and_errors() {
        let report = ExportPollReport {
            tasks_seen: 9,
            transitions: vec![
                transition("completed", TransitionKind::Completed),
                transition("failed", TransitionKind::Failed),
                transition("canceled", TransitionKind::Canceled),
                transition(
                    "stuck",
                    TransitionKind::Stuck {
                        running_for: chrono::TimeDelta::hours(7),
                    },
                ),
                transition(
                    "all-copied",
                    TransitionKind::Synced {
                        counts: ReconcileCounts::default(),
                    },
                ),
            ],
            reconciled: vec![
                (
                    "partly-copied".to_string(),
                    ReconcileCounts {
                        listed: 10,
                        copied: 8,
                        failed: 2,
                        ..ReconcileCounts::default()
                    },
                ),
                (
                    "all-copied".to_string(),
                    ReconcileCounts {
                        listed: 4,
                        copied: 4,
                        ..ReconcileCounts::default()
                    },
                ),
            ],
            errors: vec!["failed to write the marker of task-x".to_string()],
        };

        let metrics = job_metrics(&report);

        // 3 failed, canceled or stuck exports, 2 failed copies and 1 marker error. Only the
        // synced export succeeded: the completed one is not in OSS in full yet.
        assert_eq!(metrics.failures, 6);
        assert_eq!(metrics.succeeded, 1);
    }

    #[test]
    fn tasks_seen_again_count_as_neither() {
        let report = ExportPollReport {
            tasks_seen: 5,
            ..ExportPollReport::default()
        };

        let metrics = job_metrics(&report);

        assert_eq!(metrics.failures, 0);
        assert_eq!(metrics.succeeded, 0);
    }
}
