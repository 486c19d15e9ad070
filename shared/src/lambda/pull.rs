//! The `aliyun-backup-pull` handler: a schedule, a direct request or a continuation in, one
//! result per backup out, and alerts for every problem found.
//!
//! Lambda retries the invocation when a failure may succeed later: throttling or 5xx from the
//! RDS API, network errors, a size or checksum mismatch of a first run, or a hand-over that
//! Lambda refused for now. A continuation run whose copy failed is not retried, because the
//! failure aborted its multipart upload; the next schedule copies that backup from the start.
//! Invalid events, backups that cannot be pulled and invalid downloads are reported, alerted
//! and not retried.

mod invoke;

use std::sync::Arc;
use std::time::Duration;

use chrono::Utc;
use lambda_runtime::LambdaEvent;
use serde_json::{Value, json};

pub use invoke::{LambdaSelfInvoke, NoSelfInvoke};

use super::send_alerts_and_record_run;
use crate::alert::{Alert, AlertBatch, AlertKind, FactName, Severity, deadline_before};
use crate::aliyun::{RdsClient, RpcClient};
use crate::config::{AlertingConfig, Alerts, ConfigError, Lookup, PullConfig, load_secrets};
use crate::jobs::pull::{
    Continuation, PullError, PullOutcome, PullPorts, PullReport, PullSettings, PullTrigger,
    run_pull,
};
use crate::metrics::{self, JobMetrics, MetricWriter, StdoutMetricWriter};
use crate::storage::http::HttpSource;
use crate::storage::s3::{S3Store, build_client};
use crate::validate::backup::{InstanceReport, Verdict};

/// The function's name in alerts and logs.
pub const FUNCTION_NAME: &str = "aliyun-backup-pull";
/// Time kept back from the invocation deadline for sending alerts.
const ALERT_MARGIN: Duration = Duration::from_secs(5);

/// The clients and settings that every invocation of `aliyun-backup-pull` shares.
pub struct PullFunction {
    ports: PullPorts,
    settings: PullSettings,
    bucket: String,
    alerts: Alerts,
}

/// An invocation that Lambda should retry, naming the failures.
#[derive(Debug, thiserror::Error)]
#[error("{failed} failures will be retried: {summary}")]
pub struct RetryablePullFailure {
    pub failed: usize,
    pub summary: String,
}

impl From<RetryablePullFailure> for lambda_runtime::Diagnostic {
    fn from(failure: RetryablePullFailure) -> Self {
        Self {
            error_type: "RetryablePullFailure".to_string(),
            error_message: failure.to_string(),
        }
    }
}

impl PullFunction {
    /// Reads the configuration and credentials and builds the clients, once per cold start.
    /// The self-invoke goes through `continuation` when given, else through Lambda `Invoke` of
    /// `AWS_LAMBDA_FUNCTION_NAME`.
    ///
    /// # Errors
    /// A [`ConfigError`] that names the missing or invalid variable.
    pub async fn from_env(
        lookup: Lookup<'_>,
        sdk_config: &aws_config::SdkConfig,
        continuation: Option<Arc<dyn Continuation>>,
    ) -> Result<Self, ConfigError> {
        let secrets = load_secrets(lookup, sdk_config).await?;
        let config = PullConfig::from_env(lookup)?;
        let sink = S3Store::new(build_client(sdk_config, &config.s3), config.bucket.clone());
        let alerting = AlertingConfig::from_env(lookup, secrets.wecom_webhook_key, &sink).await?;
        let alerts = Alerts::new(alerting, Arc::new(sink.clone()))?
            .with_summary_lister(Arc::new(sink.clone()));

        let endpoint = config.rds.endpoint.authority();
        let rpc = RpcClient::new(secrets.aliyun, config.rds.clone()).map_err(|error| {
            ConfigError::Invalid {
                name: "ALIYUN_RDS_ENDPOINT",
                value: endpoint.clone(),
                reason: error.to_string(),
            }
        })?;
        let download =
            HttpSource::new(config.download.clone()).map_err(|error| ConfigError::Invalid {
                name: "DOWNLOAD_ALLOWED_HOSTS",
                value: config.download.allowed_host_suffixes.join(","),
                reason: error.to_string(),
            })?;
        let continuation: Arc<dyn Continuation> = match (continuation, &config.function_name) {
            (Some(continuation), _) => continuation,
            (None, Some(name)) => Arc::new(LambdaSelfInvoke::new(
                aws_sdk_lambda::Client::new(sdk_config),
                name.clone(),
            )),
            (None, None) => Arc::new(NoSelfInvoke),
        };
        tracing::info!(
            bucket = config.bucket,
            prefix = config.settings.prefix,
            instances = ?config.settings.instances,
            rds_endpoint = endpoint,
            part_size = config.settings.transfer.part_size,
            concurrency = config.settings.transfer.concurrency,
            deadline_margin_seconds = config.settings.deadline_margin.as_secs(),
            "aliyun-backup-pull configured"
        );
        Ok(Self {
            ports: PullPorts {
                catalog: Arc::new(RdsClient::new(rpc)),
                download: Arc::new(download),
                sink: Arc::new(sink),
                continuation,
            },
            settings: config.settings,
            bucket: config.bucket,
            alerts,
        })
    }

    /// Runs one invocation and returns one result per backup.
    ///
    /// # Errors
    /// [`RetryablePullFailure`] when some failure may succeed on a retry; see the module
    /// documentation for which.
    pub async fn handle(&self, event: LambdaEvent<Value>) -> Result<Value, RetryablePullFailure> {
        let request_id = event.context.request_id.clone();
        let lambda_deadline = event.context.deadline;
        let trigger = match PullTrigger::from_event(&event.payload) {
            Ok(trigger) => trigger,
            Err(error) => {
                tracing::error!(%error, "ignored an invalid event");
                return Ok(json!({ "outcome": "invalid_event", "error": error.to_string() }));
            }
        };
        let is_continuation = matches!(trigger, PullTrigger::Continuation(_));
        let pause_at = deadline_before(lambda_deadline, self.settings.deadline_margin);
        let report = run_pull(trigger, &self.ports, &self.settings, Utc::now(), pause_at).await;

        let alerts = alerts_for(&report, &request_id, &self.bucket);
        let alert_deadline = deadline_before(lambda_deadline, ALERT_MARGIN);
        send_alerts_and_record_run(
            &self.alerts,
            alerts,
            FUNCTION_NAME,
            &request_id,
            &job_metrics(&report),
            alert_deadline,
        )
        .await;
        publish_backup_ages(&report, Utc::now());

        let retried: Vec<String> = report
            .listing_errors
            .iter()
            .chain(
                report
                    .backups
                    .iter()
                    .filter_map(|backup| backup.result.as_ref().err()),
            )
            .filter(|error| should_retry(error, is_continuation))
            .map(ToString::to_string)
            .collect();
        if !retried.is_empty() {
            return Err(RetryablePullFailure {
                failed: retried.len(),
                summary: retried.join("; "),
            });
        }
        Ok(report_json(&report))
    }
}

/// Counts the backups that succeeded and failed (a failed listing counts as a failure) and sums
/// the completed pulls, for the dashboard and the daily summary. A pull that spanned several
/// invocations counts towards the bytes but not the throughput, because only its last run is
/// timed.
pub fn job_metrics(report: &PullReport) -> JobMetrics {
    let mut metrics = JobMetrics::failed(report.listing_errors.len() as u64);
    for backup in &report.backups {
        match &backup.result {
            Ok(PullOutcome::Pulled {
                bytes,
                seconds,
                runs,
                ..
            }) => {
                metrics.succeeded += 1;
                metrics.add_copy(*bytes, (*runs == 1).then_some(*seconds));
            }
            Ok(_) => metrics.succeeded += 1,
            Err(_) => metrics.failures += 1,
        }
    }
    metrics
}

/// Writes the age of each validated instance's newest full backup for the dashboard.
fn publish_backup_ages(report: &PullReport, now: chrono::DateTime<Utc>) {
    for validation in &report.validations {
        if let Some(end) = validation.newest_full_end {
            let hours = (now - end).num_seconds() as f64 / 3600.0;
            let line = metrics::backup_age_line(FUNCTION_NAME, &validation.instance_id, hours, now);
            StdoutMetricWriter.write_line(&line);
        }
    }
}

/// Returns true when Lambda should retry. A continuation run is retried only while its
/// multipart upload is still open.
fn should_retry(error: &PullError, is_continuation: bool) -> bool {
    error.is_retryable() && !(is_continuation && matches!(error, PullError::Transfer { .. }))
}

/// Turns verdicts and failures into alerts.
pub fn alerts_for(report: &PullReport, request_id: &str, bucket: &str) -> AlertBatch {
    let mut batch = AlertBatch::new();
    let alert = |kind: AlertKind, severity: Severity| {
        Alert::new(kind, severity, FUNCTION_NAME, request_id, Utc::now())
    };
    for validation in &report.validations {
        for verdict in &validation.verdicts {
            if let Some(alert) = verdict_alert(validation, verdict, &alert) {
                batch.push(alert);
            }
        }
    }
    for error in &report.listing_errors {
        let instance_id = match error {
            PullError::Catalog { instance_id, .. } => instance_id.clone(),
            _ => String::new(),
        };
        batch.push(
            alert(AlertKind::BackupMissing, Severity::Warning)
                .instance(instance_id)
                .fact(FactName::Detail, error.to_string()),
        );
    }
    for backup in &report.backups {
        let Err(error) = &backup.result else {
            continue;
        };
        let (kind, severity) = match error {
            _ if error.is_checksum_mismatch() => (AlertKind::ChecksumMismatch, Severity::Critical),
            PullError::NotPullable { .. } | PullError::InvalidDownload { .. } => {
                (AlertKind::BackupNotDownloadable, Severity::Warning)
            }
            _ => (AlertKind::TransferFailed, Severity::Warning),
        };
        batch.push(
            alert(kind, severity)
                .instance(backup.instance_id.clone())
                .backup_id(backup.backup_id.clone())
                .bucket(bucket)
                .fact(FactName::Detail, error.to_string()),
        );
    }
    batch
}

fn verdict_alert(
    validation: &InstanceReport,
    verdict: &Verdict,
    alert: &dyn Fn(AlertKind, Severity) -> Alert,
) -> Option<Alert> {
    let instance = validation.instance_id.clone();
    let alert = match verdict {
        Verdict::Ok { .. } => return None,
        Verdict::Missing => alert(AlertKind::BackupMissing, Severity::Critical).instance(instance),
        Verdict::Stale {
            backup_id,
            newest_end,
            age,
            max_age,
        } => alert(AlertKind::BackupStale, Severity::Critical)
            .instance(instance)
            .backup_id(backup_id.clone())
            .fact(FactName::BackupEndTime, newest_end.to_rfc3339())
            .fact(FactName::BackupAge, format!("{} h", age.num_hours()))
            .fact(FactName::MaxAge, format!("{} h", max_age.num_hours())),
        Verdict::NotDownloadable { backup_id } => {
            alert(AlertKind::BackupNotDownloadable, Severity::Warning)
                .instance(instance)
                .backup_id(backup_id.clone())
        }
        Verdict::SizeDrop {
            backup_id,
            current,
            previous,
            ..
        } => alert(AlertKind::BackupSizeDrop, Severity::Warning)
            .instance(instance)
            .backup_id(backup_id.clone())
            .fact(FactName::Size, format!("{current} bytes"))
            .fact(FactName::PreviousSize, format!("{previous} bytes")),
        Verdict::ZeroSize { backup_id } => alert(AlertKind::BackupSizeDrop, Severity::Critical)
            .instance(instance)
            .backup_id(backup_id.clone())
            .fact(FactName::Size, "0 bytes"),
        // A failed backup leaves a gap in the backups, so it is reported as a missing one.
        Verdict::Failed { backup_id } => alert(AlertKind::BackupMissing, Severity::Warning)
            .instance(instance)
            .backup_id(backup_id.clone())
            .fact(FactName::Status, "Failed"),
    };
    Some(alert)
}

/// Renders the report as the invocation's JSON result.
pub fn report_json(report: &PullReport) -> Value {
    let validations: Vec<Value> = report
        .validations
        .iter()
        .map(|validation| {
            let problems: Vec<String> = validation
                .verdicts
                .iter()
                .filter(|verdict| verdict.is_problem())
                .map(|verdict| format!("{verdict:?}"))
                .collect();
            json!({ "instance_id": validation.instance_id, "problems": problems })
        })
        .collect();
    let backups: Vec<Value> = report
        .backups
        .iter()
        .map(|backup| {
            let ids = json!({ "instance_id": backup.instance_id, "backup_id": backup.backup_id });
            let outcome = match &backup.result {
                Ok(PullOutcome::Pulled {
                    key,
                    bytes,
                    parts,
                    crc64,
                    runs,
                    seconds,
                    api_checksum_matches,
                }) => json!({
                    "outcome": "pulled", "key": key, "bytes": bytes, "parts": parts,
                    "crc64": crc64.to_string(), "runs": runs, "seconds": seconds,
                    "api_checksum_matches": api_checksum_matches,
                }),
                Ok(PullOutcome::AlreadyPulled { key }) => {
                    json!({ "outcome": "already_pulled", "key": key })
                }
                Ok(PullOutcome::Continued {
                    key,
                    upload_id,
                    bytes_done,
                    next_part,
                    next_run,
                }) => json!({
                    "outcome": "continued", "key": key, "upload_id": upload_id,
                    "bytes_done": bytes_done, "next_part": next_part, "next_run": next_run,
                }),
                Ok(PullOutcome::Deferred) => json!({ "outcome": "deferred" }),
                Err(error) => json!({
                    "outcome": "failed", "retryable": error.is_retryable(),
                    "error": error.to_string(),
                }),
            };
            merge(ids, outcome)
        })
        .collect();
    let listing_errors: Vec<String> = report
        .listing_errors
        .iter()
        .map(ToString::to_string)
        .collect();
    json!({ "validations": validations, "listing_errors": listing_errors, "backups": backups })
}

fn merge(mut base: Value, extra: Value) -> Value {
    if let (Some(base), Value::Object(extra)) = (base.as_object_mut(), extra) {
        base.extend(extra);
    }
    base
}
