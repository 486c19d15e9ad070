//! The `rds-export-start` handler: the schedule's input, an RDS automated-snapshot event
//! (instance or cluster) or `{"snapshot_id": …}` in, one result per source out.
//!
//! Lambda retries the invocation only when listing the account's export tasks failed in a way
//! that may pass (throttling, 5xx, no reply). Input that matches no trigger is returned as an
//! error as well, so an asynchronous invocation ends in the on-failure destination. Permanent
//! faults (`KMSKeyNotAccessibleFault`, `IamRoleNotFound`, access denied, …), snapshot verdicts
//! and missing snapshots are alerted once and returned in the result, not retried. An account
//! already running five exports defers the rest to the next run.

use std::sync::Arc;
use std::time::Duration;

use aws_smithy_types::retry::RetryConfig;
use chrono::Utc;
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};

use super::export_alerts::{AlertOrigin, run_failure_alert, start_alerts};
use super::send_alerts_and_record_run;
use crate::alert::{AlertBatch, AlertKind, deadline_before};
use crate::aws::rds::RdsError;
use crate::aws::rds_client::RdsClient;
use crate::config::export::load_webhook_key;
use crate::config::{
    AlertingConfig, Alerts, ConfigError, ExportStartFunctionConfig, Lookup, RdsClientOptions,
};
use crate::events::rds::{EventError, ExportStartTrigger, parse_export_start};
use crate::jobs::export_start::{self, ExportOutcome, ExportStartConfig, ExportStartReport};
use crate::metrics::JobMetrics;
use crate::storage::s3::{S3Store, build_client};

/// The function's name in alerts and logs.
pub const FUNCTION_NAME: &str = "rds-export-start";
/// Time kept back from the invocation deadline for sending alerts.
const ALERT_MARGIN: Duration = Duration::from_secs(5);

/// A failed invocation of an export function.
#[derive(Debug, thiserror::Error)]
pub enum ExportInvocationError {
    /// The input is no trigger the function accepts; sending it again changes nothing.
    #[error(transparent)]
    InvalidInput(#[from] EventError),
    /// An RDS request failed in a way that may pass on a retry.
    #[error("{0}; the invocation may be retried")]
    Retryable(RdsError),
}

impl From<ExportInvocationError> for lambda_runtime::Diagnostic {
    fn from(error: ExportInvocationError) -> Self {
        let error_type = match &error {
            ExportInvocationError::InvalidInput(_) => "InvalidInput",
            ExportInvocationError::Retryable(_) => "RetryableRdsFailure",
        };
        Self {
            error_type: error_type.to_string(),
            error_message: error.to_string(),
        }
    }
}

/// Builds the RDS adapter with the SDK's own retries off, because [`RdsClient`] retries every
/// request and page itself, and with `AWS_ENDPOINT_URL_RDS` applied when set.
pub fn build_rds_client(
    sdk_config: &aws_config::SdkConfig,
    options: &RdsClientOptions,
) -> RdsClient {
    let mut builder =
        aws_sdk_rds::config::Builder::from(sdk_config).retry_config(RetryConfig::disabled());
    if let Some(endpoint) = &options.endpoint_url {
        builder = builder.endpoint_url(endpoint);
    }
    RdsClient::new(aws_sdk_rds::Client::from_conf(builder.build()))
}

/// The clients and settings that every invocation of `rds-export-start` shares.
pub struct ExportStartFunction {
    rds: RdsClient,
    config: ExportStartConfig,
    alerts: Alerts,
}

impl ExportStartFunction {
    /// Reads the configuration and builds the clients, once per cold start. Alert markers live
    /// in the export bucket under `STATE_PREFIX`.
    ///
    /// # Errors
    /// A [`ConfigError`] that names the missing or invalid variable.
    pub async fn from_env(
        lookup: Lookup<'_>,
        sdk_config: &aws_config::SdkConfig,
    ) -> Result<Self, ConfigError> {
        let config = ExportStartFunctionConfig::from_env(lookup)?;
        let store = S3Store::new(
            build_client(sdk_config, &config.s3),
            config.job.s3_bucket.clone(),
        );
        let webhook_key = load_webhook_key(lookup, sdk_config).await?;
        let alerting = AlertingConfig::from_env(lookup, webhook_key, &store).await?;
        let alerts =
            Alerts::new(alerting, Arc::new(store.clone()))?.with_summary_lister(Arc::new(store));
        let sources: Vec<String> = config.job.sources.iter().map(ToString::to_string).collect();
        tracing::info!(
            sources = sources.join(", "),
            bucket = config.job.s3_bucket,
            prefix = config.job.s3_prefix,
            id_prefix = config.job.id_prefix,
            "rds-export-start configured"
        );
        Ok(Self {
            rds: build_rds_client(sdk_config, &config.rds),
            config: config.job,
            alerts,
        })
    }

    /// Starts the exports that the trigger requests and returns one result per source.
    ///
    /// # Errors
    /// [`ExportInvocationError::InvalidInput`] for input that matches no trigger, and
    /// [`ExportInvocationError::Retryable`] when listing the export tasks may pass on a retry.
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, ExportInvocationError> {
        let request_id = event.context.request_id.clone();
        let deadline = deadline_before(event.context.deadline, ALERT_MARGIN);
        let trigger = parse_export_start(&event.payload).inspect_err(|error| {
            tracing::error!(%error, "rejected an input that matches no trigger");
        })?;
        let now = Utc::now();
        let origin = AlertOrigin {
            function: FUNCTION_NAME,
            request_id: &request_id,
            now,
        };

        let result = export_start::run(&trigger, &self.rds, &self.rds, &self.config, now).await;
        match result {
            Ok(report) => {
                let alerts = start_alerts(&report, origin);
                send_alerts_and_record_run(
                    &self.alerts,
                    alerts,
                    FUNCTION_NAME,
                    &request_id,
                    &job_metrics(&report),
                    deadline,
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
                    AlertKind::ExportStartFailed,
                    &error,
                    origin,
                ));
                send_alerts_and_record_run(
                    &self.alerts,
                    batch,
                    FUNCTION_NAME,
                    &request_id,
                    &JobMetrics::failed(1),
                    deadline,
                )
                .await;
                Ok(json!({
                    "trigger": trigger_name(&trigger),
                    "sources": [],
                    "error": { "code": error.code(), "message": error.to_string() },
                }))
            }
        }
    }
}

/// Counts what one run did, for the dashboard and the daily summary. A source fails when RDS
/// rejected its export, its snapshot was not found or its newest snapshot fails a rule, and
/// each of these is alerted. A source succeeds when its export started or exists already. A
/// deferred export counts as neither, because the next run starts it. Starting exports copies
/// no bytes, so the byte counts stay zero.
pub fn job_metrics(report: &ExportStartReport) -> JobMetrics {
    let mut metrics = JobMetrics::default();
    for entry in &report.sources {
        match entry.outcome {
            ExportOutcome::Started { .. } | ExportOutcome::AlreadyExists { .. } => {
                metrics.succeeded += 1;
            }
            ExportOutcome::Failed { .. }
            | ExportOutcome::NotFound { .. }
            | ExportOutcome::Skipped { .. } => metrics.failures += 1,
            ExportOutcome::Deferred { .. } => {}
        }
    }
    metrics
}

fn trigger_name(trigger: &ExportStartTrigger) -> &'static str {
    match trigger {
        ExportStartTrigger::Schedule => "schedule",
        ExportStartTrigger::Snapshot { .. } => "snapshot",
        ExportStartTrigger::Ignored { .. } => "ignored",
    }
}

/// Renders the report as the invocation's JSON result.
pub fn report_json(trigger: &ExportStartTrigger, report: &ExportStartReport) -> Value {
    let sources: Vec<Value> = report
        .sources
        .iter()
        .map(|entry| {
            let mut value = json!({
                "source": entry.source.as_ref().map(ToString::to_string),
                "outcome": entry.outcome.name(),
            });
            let fields = match &entry.outcome {
                ExportOutcome::Started {
                    snapshot_id,
                    task_id,
                }
                | ExportOutcome::AlreadyExists {
                    snapshot_id,
                    task_id,
                } => json!({ "snapshot_id": snapshot_id, "task_id": task_id }),
                ExportOutcome::Deferred {
                    snapshot_id,
                    task_id,
                    active_exports,
                } => json!({
                    "snapshot_id": snapshot_id, "task_id": task_id,
                    "active_exports": active_exports,
                }),
                ExportOutcome::Skipped { verdict } => json!({ "verdict": verdict.name() }),
                ExportOutcome::NotFound { snapshot_id } => json!({ "snapshot_id": snapshot_id }),
                ExportOutcome::Failed {
                    snapshot_id,
                    task_id,
                    code,
                    request_id,
                    message,
                } => json!({
                    "snapshot_id": snapshot_id, "task_id": task_id, "code": code,
                    "request_id": request_id, "error": message,
                }),
            };
            if let (Some(target), Value::Object(extra)) = (value.as_object_mut(), fields) {
                target.extend(extra);
            }
            value
        })
        .collect();
    json!({ "trigger": trigger_name(trigger), "sources": sources })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::aws::rds::Source;
    use crate::jobs::export_start::SourceReport;
    use crate::validate::snapshot::SnapshotVerdict;

    fn entry(outcome: ExportOutcome) -> SourceReport {
        SourceReport {
            source: None,
            outcome,
        }
    }

    #[test]
    fn metrics_count_alerted_sources_as_failures() {
        let report = ExportStartReport {
            sources: vec![
                entry(ExportOutcome::Started {
                    snapshot_id: "snap-a".to_string(),
                    task_id: "task-a".to_string(),
                }),
                entry(ExportOutcome::AlreadyExists {
                    snapshot_id: "snap-b".to_string(),
                    task_id: "task-b".to_string(),
                }),
                entry(ExportOutcome::Deferred {
                    snapshot_id: "snap-c".to_string(),
                    task_id: "task-c".to_string(),
                    active_exports: 5,
                }),
                entry(ExportOutcome::NotFound {
                    snapshot_id: "snap-gone".to_string(),
                }),
                entry(ExportOutcome::Skipped {
                    verdict: SnapshotVerdict::NoSnapshot {
                        source: Source::Instance("never-snapshotted".to_string()),
                    },
                }),
                entry(ExportOutcome::Failed {
                    snapshot_id: Some("snap-d".to_string()),
                    task_id: None,
                    code: Some("KMSKeyNotAccessibleFault".to_string()),
                    request_id: None,
                    message: "the KMS key is disabled".to_string(),
                }),
            ],
        };

        let metrics = job_metrics(&report);

        // Not found, no snapshot and rejected fail, and the deferred export counts as neither.
        assert_eq!(metrics.failures, 3);
        assert_eq!(metrics.succeeded, 2);
        assert_eq!(metrics.bytes_copied, 0);
    }
}
