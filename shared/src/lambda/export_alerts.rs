//! Alerts of the export functions: snapshot verdicts, start failures, export transitions and
//! incomplete reconciliations, built from the jobs' reports.

use chrono::{DateTime, Utc};

use crate::alert::{Alert, AlertBatch, AlertKind, FactName, Severity};
use crate::aws::rds::{RdsError, Source};
use crate::jobs::export_poll::{ExportPollReport, TransitionKind};
use crate::jobs::export_start::{ExportOutcome, ExportStartReport};
use crate::jobs::reconcile::ReconcileFailure;
use crate::validate::snapshot::SnapshotVerdict;

/// Failures listed in one alert; the rest are counted.
const MAX_LISTED_FAILURES: usize = 5;

/// The invocation an alert comes from.
#[derive(Debug, Clone, Copy)]
pub struct AlertOrigin<'a> {
    pub function: &'a str,
    pub request_id: &'a str,
    pub now: DateTime<Utc>,
}

impl AlertOrigin<'_> {
    fn alert(&self, kind: AlertKind, severity: Severity) -> Alert {
        Alert::new(kind, severity, self.function, self.request_id, self.now)
    }
}

/// Returns one alert per source that was skipped by a verdict, not found, or failed to start.
/// Started, existing and deferred exports raise none.
pub fn start_alerts(report: &ExportStartReport, origin: AlertOrigin<'_>) -> AlertBatch {
    let mut batch = AlertBatch::new();
    for entry in &report.sources {
        let alert = match &entry.outcome {
            ExportOutcome::Skipped { verdict } => verdict_alert(verdict, origin),
            ExportOutcome::NotFound { snapshot_id } => Some(
                origin
                    .alert(AlertKind::ExportStartFailed, Severity::Warning)
                    .snapshot(snapshot_id)
                    .fact(FactName::Cause, "the snapshot was not found in RDS"),
            ),
            ExportOutcome::Failed {
                snapshot_id,
                task_id,
                code,
                message,
                ..
            } => {
                let mut alert = origin.alert(AlertKind::ExportStartFailed, Severity::Critical);
                if let Some(source) = &entry.source {
                    alert = alert.instance(source_label(source));
                }
                if let Some(snapshot_id) = snapshot_id {
                    alert = alert.snapshot(snapshot_id);
                }
                if let Some(task_id) = task_id {
                    alert = alert.export_id(task_id);
                }
                if let Some(code) = code {
                    alert = alert.fact(FactName::ErrorCode, code);
                }
                Some(alert.fact(FactName::Detail, message))
            }
            ExportOutcome::Started { .. }
            | ExportOutcome::AlreadyExists { .. }
            | ExportOutcome::Deferred { .. } => None,
        };
        if let Some(alert) = alert {
            batch.push(alert);
        }
    }
    batch
}

/// Turns a snapshot verdict into an alert: no usable snapshot is `backup_missing`, an old one is
/// `backup_stale`, and an unencrypted one, when encryption is required, is `export_start_failed`.
fn verdict_alert(verdict: &SnapshotVerdict, origin: AlertOrigin<'_>) -> Option<Alert> {
    let alert = match verdict {
        SnapshotVerdict::Valid(_) => return None,
        SnapshotVerdict::NoSnapshot { source } => origin
            .alert(AlertKind::BackupMissing, Severity::Critical)
            .instance(source_label(source))
            .fact(FactName::Cause, "the source has no snapshot"),
        SnapshotVerdict::NotAvailable { source, newest } => origin
            .alert(AlertKind::BackupMissing, Severity::Critical)
            .instance(source_label(source))
            .snapshot(&newest.id)
            .fact(FactName::Status, &newest.status)
            .fact(FactName::Cause, "no snapshot of the source is available"),
        SnapshotVerdict::Stale {
            snapshot,
            age,
            max_age,
        } => origin
            .alert(AlertKind::BackupStale, Severity::Warning)
            .instance(source_label(&snapshot.source))
            .snapshot(&snapshot.id)
            .fact(FactName::BackupAge, hours(*age))
            .fact(FactName::MaxAge, hours(*max_age)),
        SnapshotVerdict::NotEncrypted { snapshot } => origin
            .alert(AlertKind::ExportStartFailed, Severity::Critical)
            .instance(source_label(&snapshot.source))
            .snapshot(&snapshot.id)
            .fact(
                FactName::Cause,
                "the snapshot is not encrypted and SNAPSHOT_REQUIRE_ENCRYPTION is true",
            ),
    };
    Some(alert)
}

/// Returns the alert for a failure of the whole run, such as access denied on
/// `DescribeExportTasks`.
pub fn run_failure_alert(kind: AlertKind, error: &RdsError, origin: AlertOrigin<'_>) -> Alert {
    let mut alert = origin.alert(kind, Severity::Critical);
    if let Some(code) = error.code() {
        alert = alert.fact(FactName::ErrorCode, code);
    }
    alert.fact(FactName::Detail, error.to_string())
}

/// Returns one alert per `FAILED`, `CANCELED` or stuck transition, and one per export whose
/// reconciliation left objects that could not be copied. `failures` are the reconciler's.
pub fn poll_alerts(
    report: &ExportPollReport,
    failures: &[ReconcileFailure],
    origin: AlertOrigin<'_>,
) -> AlertBatch {
    let mut batch = AlertBatch::new();
    for transition in &report.transitions {
        let (kind, severity) = match &transition.kind {
            TransitionKind::Failed => (AlertKind::ExportFailed, Severity::Critical),
            TransitionKind::Canceled => (AlertKind::ExportCanceled, Severity::Warning),
            TransitionKind::Stuck { .. } => (AlertKind::ExportStuck, Severity::Warning),
            TransitionKind::Completed | TransitionKind::Synced { .. } => continue,
        };
        let mut alert = origin
            .alert(kind, severity)
            .export_id(&transition.task_id)
            .snapshot(&transition.snapshot_arn)
            .fact(FactName::Status, transition.kind.marker_state());
        if let TransitionKind::Stuck { running_for } = &transition.kind {
            alert = alert.fact(FactName::Elapsed, hours(*running_for));
        }
        if let Some(cause) = &transition.failure_cause {
            alert = alert.fact(FactName::Cause, cause);
        }
        if let Some(warning) = &transition.warning {
            alert = alert.fact(FactName::Detail, warning);
        }
        batch.push(alert);
    }

    for (task_id, counts) in &report.reconciled {
        if counts.failed == 0 {
            continue;
        }
        let folder = format!("/{task_id}/");
        let own: Vec<&ReconcileFailure> = failures
            .iter()
            .filter(|failure| failure.key.contains(&folder))
            .collect();
        let mut detail = format!(
            "{} of {} objects could not be copied ({} matched, {} copied, {} left for the next poll)",
            counts.failed, counts.listed, counts.matched, counts.copied, counts.remaining
        );
        for failure in own.iter().take(MAX_LISTED_FAILURES) {
            detail.push_str(&format!("\n{}: {}", failure.key, failure.reason));
        }
        if own.len() > MAX_LISTED_FAILURES {
            detail.push_str(&format!("\nand {} more", own.len() - MAX_LISTED_FAILURES));
        }
        let severity = if own.iter().any(|failure| failure.conflict) {
            Severity::Critical
        } else {
            Severity::Warning
        };
        batch.push(
            origin
                .alert(AlertKind::SyncIncomplete, severity)
                .export_id(task_id)
                .fact(FactName::Detail, detail),
        );
    }
    batch
}

/// Names a source in the `instance` resource field, e.g. `cluster:aurora-1`, so that an instance
/// and a cluster with the same identifier stay apart.
fn source_label(source: &Source) -> String {
    match source {
        Source::Instance(id) => format!("instance:{id}"),
        Source::Cluster(id) => format!("cluster:{id}"),
    }
}

fn hours(duration: chrono::Duration) -> String {
    if duration == chrono::Duration::MAX {
        return "unknown".to_string();
    }
    format!("{:.1} h", duration.num_minutes() as f64 / 60.0)
}
