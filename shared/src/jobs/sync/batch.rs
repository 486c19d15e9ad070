//! One invocation of the sync: every record of an S3 notification, each with its own result.

use futures::stream::{self, StreamExt};

use super::{SyncError, SyncOutcome, SyncSettings, sync_record};
use crate::events::{EventError, S3Notification, parse_s3_notification};
use crate::storage::{ObjectSink, ObjectSource};

/// The result of one record in an event.
#[derive(Debug)]
pub struct RecordReport {
    /// The decoded source key, or the raw text when the record could not be parsed.
    pub key: String,
    pub result: Result<SyncOutcome, SyncError>,
}

/// The results of one invocation.
#[derive(Debug, Default)]
pub struct SyncBatchReport {
    /// True for the `s3:TestEvent` message, which names no object.
    pub test_event: bool,
    pub records: Vec<RecordReport>,
}

impl SyncBatchReport {
    /// Returns true when Lambda should retry the invocation: some record failed in a way that
    /// may succeed later. Records that already succeeded are skipped as `AlreadySynced` then.
    pub fn should_fail(&self) -> bool {
        self.records
            .iter()
            .any(|record| record.result.as_ref().is_err_and(SyncError::is_retryable))
    }
}

/// Runs every record of an S3 notification, at most `record_concurrency` at a time, and logs one
/// line per object with its key, bytes, parts, seconds and outcome.
pub async fn sync_event(
    event: serde_json::Value,
    source: &dyn ObjectSource,
    sink: &dyn ObjectSink,
    settings: &SyncSettings,
) -> SyncBatchReport {
    let records = match parse_s3_notification(event) {
        Ok(S3Notification::TestEvent) => {
            tracing::info!("ignored the s3:TestEvent message");
            return SyncBatchReport {
                test_event: true,
                records: Vec::new(),
            };
        }
        Ok(S3Notification::Records(records)) => records,
        Err(error) => {
            tracing::error!(%error, "dropped an event that is not an S3 notification");
            let report = RecordReport {
                key: String::new(),
                result: Err(error.into()),
            };
            return SyncBatchReport {
                test_event: false,
                records: vec![report],
            };
        }
    };

    let runs = records.into_iter().map(|record| async move {
        let report = match record {
            Ok(record) => RecordReport {
                key: record.key.clone(),
                result: sync_record(source, sink, &record, settings).await,
            },
            Err(error) => RecordReport {
                key: invalid_record_key(&error),
                result: Err(error.into()),
            },
        };
        log_record(&report);
        report
    });
    let records = stream::iter(runs)
        .buffered(settings.record_concurrency.max(1))
        .collect()
        .await;
    SyncBatchReport {
        test_event: false,
        records,
    }
}

fn invalid_record_key(error: &EventError) -> String {
    match error {
        EventError::InvalidKey(invalid) => invalid.raw.clone(),
        _ => String::new(),
    }
}

fn log_record(report: &RecordReport) {
    let key = report.key.as_str();
    match &report.result {
        Ok(SyncOutcome::Copied {
            bytes,
            parts,
            crc64,
            seconds,
        }) => {
            tracing::info!(
                key,
                bytes,
                parts,
                crc64,
                seconds,
                outcome = "copied",
                "synced object"
            );
        }
        Ok(SyncOutcome::Skipped { reason }) => {
            tracing::info!(key, reason, outcome = "skipped", "synced object")
        }
        Ok(outcome @ SyncOutcome::SourceMissing) => {
            tracing::warn!(
                key,
                outcome = outcome.label(),
                "source object no longer exists; not retried"
            )
        }
        Ok(outcome) => tracing::info!(key, outcome = outcome.label(), "synced object"),
        Err(error) => {
            tracing::error!(key, %error, retryable = error.is_retryable(), outcome = "failed", "failed to sync object")
        }
    }
}
