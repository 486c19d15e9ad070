//! The `s3-oss-sync` handler: an S3 notification in, one result per record out.
//!
//! Lambda retries the invocation (twice for asynchronous S3 notifications, then the on-failure
//! destination) when a record failed in a way that may succeed later: network errors, 5xx,
//! throttling, a checksum mismatch. Records outside the source bucket or prefix, objects
//! deleted before the copy, conflicts and malformed records are reported in the result and the
//! log, alerted where they need a person, and not retried.

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};

use super::send_alerts_and_record_run;
use crate::alert::{Alert, AlertBatch, AlertKind, FactName, Severity, deadline_before};
use crate::config::{AlertingConfig, Alerts, ConfigError, Lookup, SyncConfig, load_secrets};
use crate::jobs::sync::{
    RecordReport, SyncBatchReport, SyncError, SyncOutcome, SyncSettings, sync_event,
};
use crate::metrics::JobMetrics;
use crate::oss::OssStore;
use crate::storage::s3::{S3Store, build_client};
use crate::transfer::TransferError;

/// The function's name in alerts and logs.
pub const FUNCTION_NAME: &str = "s3-oss-sync";
/// Time kept back from the invocation deadline for sending alerts.
const ALERT_MARGIN: Duration = Duration::from_secs(5);

/// The clients and settings that every invocation of `s3-oss-sync` shares.
pub struct SyncFunction {
    source: S3Store,
    sink: OssStore,
    settings: SyncSettings,
    alerts: Alerts,
}

/// An invocation that Lambda should retry, naming the records that failed.
#[derive(Debug, thiserror::Error)]
#[error("{failed} of {total} records failed and will be retried: {summary}")]
pub struct RetryableFailure {
    pub failed: usize,
    pub total: usize,
    pub summary: String,
}

impl From<RetryableFailure> for lambda_runtime::Diagnostic {
    fn from(failure: RetryableFailure) -> Self {
        Self {
            error_type: "RetryableSyncFailure".to_string(),
            error_message: failure.to_string(),
        }
    }
}

impl SyncFunction {
    /// Reads the configuration and credentials and builds the clients, once per cold start.
    ///
    /// # Errors
    /// A [`ConfigError`] that names the missing or invalid variable.
    pub async fn from_env(
        lookup: Lookup<'_>,
        sdk_config: &aws_config::SdkConfig,
    ) -> Result<Self, ConfigError> {
        let secrets = load_secrets(lookup, sdk_config).await?;
        let config = SyncConfig::from_env(lookup, secrets.aliyun)?;
        let s3_client = build_client(sdk_config, &config.s3);
        let source = S3Store::new(s3_client, config.source_bucket.clone());
        let alerting = AlertingConfig::from_env(lookup, secrets.wecom_webhook_key, &source).await?;
        let source_prefix = &config.settings.source_prefix;
        if alerting.state_prefix.starts_with(source_prefix.as_str())
            || source_prefix.starts_with(alerting.state_prefix.as_str())
        {
            // Markers under the sync prefix would trigger the sync and be copied to OSS.
            return Err(ConfigError::Invalid {
                name: "STATE_PREFIX",
                value: alerting.state_prefix,
                reason: format!("must not overlap SYNC_SOURCE_PREFIX {source_prefix}"),
            });
        }
        let alerts = Alerts::new(alerting, Arc::new(source.clone()))?
            .with_summary_lister(Arc::new(source.clone()));
        let sink = OssStore::new(config.oss.clone()).map_err(|error| ConfigError::Invalid {
            name: "OSS_ENDPOINT",
            value: config.oss.endpoint.host().to_string(),
            reason: error.to_string(),
        })?;
        tracing::info!(
            source_bucket = config.source_bucket,
            source_prefix = config.settings.source_prefix,
            oss_bucket = config.oss.bucket,
            oss_prefix = config.settings.target_prefix,
            part_size = config.settings.part_size,
            concurrency = config.settings.concurrency,
            "s3-oss-sync configured"
        );
        Ok(Self {
            source,
            sink,
            settings: config.settings,
            alerts,
        })
    }

    /// Copies every record of the event and returns one result per record.
    ///
    /// # Errors
    /// [`RetryableFailure`] when some record may succeed on a retry; the records that succeeded
    /// are then found already synced by the retry.
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, RetryableFailure> {
        let request_id = event.context.request_id.clone();
        let deadline = deadline_before(event.context.deadline, ALERT_MARGIN);
        let report = sync_event(event.payload, &self.source, &self.sink, &self.settings).await;

        let alerts = alerts_for(&report, &request_id, self.source.bucket());
        send_alerts_and_record_run(
            &self.alerts,
            alerts,
            FUNCTION_NAME,
            &request_id,
            &job_metrics(&report),
            deadline,
        )
        .await;

        let body = report_json(&report);
        if report.should_fail() {
            let failed: Vec<&RecordReport> = report
                .records
                .iter()
                .filter(|record| record.result.as_ref().is_err_and(SyncError::is_retryable))
                .collect();
            let summary = failed
                .iter()
                .map(|record| record.key.as_str())
                .collect::<Vec<_>>()
                .join(", ");
            return Err(RetryableFailure {
                failed: failed.len(),
                total: report.records.len(),
                summary,
            });
        }
        Ok(body)
    }
}

/// Turns each failed record into an alert: checksum mismatches are critical, other failures
/// raise `sync_failed`.
fn alerts_for(report: &SyncBatchReport, request_id: &str, bucket: &str) -> AlertBatch {
    let mut batch = AlertBatch::new();
    for record in &report.records {
        let Err(error) = &record.result else {
            continue;
        };
        let (kind, severity) = match error {
            SyncError::Transfer(TransferError::ChecksumMismatch { .. }) => {
                (AlertKind::ChecksumMismatch, Severity::Critical)
            }
            _ => (AlertKind::SyncFailed, Severity::Warning),
        };
        let alert = Alert::new(kind, severity, FUNCTION_NAME, request_id, Utc::now())
            .object(bucket, record.key.clone())
            .fact(FactName::Detail, error.to_string());
        batch.push(alert);
    }
    batch
}

/// Counts the records that succeeded and failed and sums the copies, for the dashboard and the
/// daily summary.
pub fn job_metrics(report: &SyncBatchReport) -> JobMetrics {
    let mut metrics = JobMetrics::default();
    for record in &report.records {
        match &record.result {
            Ok(SyncOutcome::Copied { bytes, seconds, .. }) => {
                metrics.succeeded += 1;
                metrics.add_copy(*bytes, Some(*seconds));
            }
            Ok(_) => metrics.succeeded += 1,
            Err(_) => metrics.failures += 1,
        }
    }
    metrics
}

/// Renders the batch report as the invocation's JSON result.
pub fn report_json(report: &SyncBatchReport) -> Value {
    let records: Vec<Value> = report
        .records
        .iter()
        .map(|record| match &record.result {
            Ok(SyncOutcome::Copied {
                bytes,
                parts,
                crc64,
                seconds,
            }) => json!({
                "key": record.key, "outcome": "copied", "bytes": bytes, "parts": parts,
                "crc64": crc64.to_string(), "seconds": seconds,
            }),
            Ok(SyncOutcome::AlreadySynced) => {
                json!({ "key": record.key, "outcome": "already_synced" })
            }
            Ok(SyncOutcome::Skipped { reason }) => {
                json!({ "key": record.key, "outcome": "skipped", "reason": reason })
            }
            Ok(SyncOutcome::SourceMissing) => {
                json!({ "key": record.key, "outcome": "source_missing" })
            }
            Err(error) => json!({
                "key": record.key, "outcome": "failed", "retryable": error.is_retryable(),
                "error": error.to_string(),
            }),
        })
        .collect();
    json!({ "test_event": report.test_event, "records": records })
}
