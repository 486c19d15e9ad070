//! The `rds-export-start` job: export the newest valid snapshot of each configured source to S3.
//!
//! Failures the handler should know about: listing the account's export tasks fails the whole run
//! (returned as `Err`, so Lambda may retry it). Everything else is a per-source outcome in the
//! report: a permanent fault is reported once with its AWS error code and not retried, a full
//! account is deferred to the next run, and `ExportTaskAlreadyExists` counts as started.

use chrono::{DateTime, Duration, Utc};

use crate::aws::export_id;
use crate::aws::rds::{
    ExportFilter, ExportService, RdsError, RdsErrorKind, Snapshot, SnapshotCatalog, Source,
    SourceKind, StartExport,
};
use crate::events::rds::ExportStartTrigger;
use crate::validate::snapshot::{SnapshotPolicy, SnapshotVerdict, judge};

/// The number of export tasks RDS runs at once per account; more are rejected.
pub const MAX_CONCURRENT_EXPORTS: usize = 5;

/// The S3 key prefix of exports; RDS rejects a prefix that contains `:`.
pub const DEFAULT_S3_PREFIX: &str = "mysql";

/// Settings of the export start job.
#[derive(Debug, Clone)]
pub struct ExportStartConfig {
    /// Sources exported on the schedule.
    pub sources: Vec<Source>,
    pub s3_bucket: String,
    /// Key prefix without a trailing `/`; RDS writes under `<prefix>/<export task id>/`.
    pub s3_prefix: String,
    pub iam_role_arn: String,
    pub kms_key_id: String,
    /// `ExportOnly` entries; empty exports the whole snapshot.
    pub export_only: Vec<String>,
    /// Prefix of the export task ids, which marks the tasks this deployment started.
    pub id_prefix: String,
    pub policy: SnapshotPolicy,
    /// Concurrent exports allowed before new ones are deferred.
    pub max_concurrent_exports: usize,
}

/// The result for one source or named snapshot.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExportOutcome {
    Started {
        snapshot_id: String,
        task_id: String,
    },
    /// A task with this id exists (found in the listing or rejected by RDS as a duplicate).
    AlreadyExists {
        snapshot_id: String,
        task_id: String,
    },
    /// The account runs the maximum number of exports; the next run tries again.
    Deferred {
        snapshot_id: String,
        task_id: String,
        active_exports: usize,
    },
    /// The snapshot fails a rule; nothing was started.
    Skipped { verdict: SnapshotVerdict },
    /// A snapshot named by an event or invocation does not exist.
    NotFound { snapshot_id: String },
    /// RDS rejected a request; `code` is the AWS error code when RDS sent one.
    Failed {
        snapshot_id: Option<String>,
        task_id: Option<String>,
        code: Option<String>,
        request_id: Option<String>,
        message: String,
    },
}

impl ExportOutcome {
    /// Returns a short stable name for logs and reports, e.g. `deferred`.
    pub fn name(&self) -> &'static str {
        match self {
            ExportOutcome::Started { .. } => "started",
            ExportOutcome::AlreadyExists { .. } => "already_exists",
            ExportOutcome::Deferred { .. } => "deferred",
            ExportOutcome::Skipped { .. } => "skipped",
            ExportOutcome::NotFound { .. } => "not_found",
            ExportOutcome::Failed { .. } => "failed",
        }
    }
}

/// The outcome for one source; `source` is `None` for a named snapshot that was not found.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceReport {
    pub source: Option<Source>,
    pub outcome: ExportOutcome,
}

/// The result of one run, one entry per source or named snapshot.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ExportStartReport {
    pub sources: Vec<SourceReport>,
}

impl ExportStartReport {
    /// Counts the entries whose outcome has this name (see [`ExportOutcome::name`]).
    pub fn count(&self, name: &str) -> usize {
        self.sources
            .iter()
            .filter(|s| s.outcome.name() == name)
            .count()
    }
}

/// Runs the job for one trigger at time `now`.
pub async fn run(
    trigger: &ExportStartTrigger,
    catalog: &dyn SnapshotCatalog,
    exports: &dyn ExportService,
    config: &ExportStartConfig,
    now: DateTime<Utc>,
) -> Result<ExportStartReport, RdsError> {
    match trigger {
        ExportStartTrigger::Schedule => export_sources(catalog, exports, config, now).await,
        ExportStartTrigger::Snapshot { kind, snapshot_id } => {
            export_snapshot(catalog, exports, config, *kind, snapshot_id, now).await
        }
        ExportStartTrigger::Ignored { event_id } => {
            tracing::info!(
                event_id = event_id.as_deref(),
                "ignoring an RDS event that needs no export"
            );
            Ok(ExportStartReport::default())
        }
    }
}

/// Exports the newest valid snapshot of every configured source.
pub async fn export_sources(
    catalog: &dyn SnapshotCatalog,
    exports: &dyn ExportService,
    config: &ExportStartConfig,
    now: DateTime<Utc>,
) -> Result<ExportStartReport, RdsError> {
    let mut slots = ExportSlots::load(exports, config).await?;
    let mut report = ExportStartReport::default();

    for source in &config.sources {
        let outcome = match catalog.list_snapshots(source).await {
            Ok(snapshots) => match judge(source, &snapshots, &config.policy, now) {
                SnapshotVerdict::Valid(snapshot) => {
                    start_one(exports, config, &mut slots, &snapshot).await
                }
                verdict => {
                    tracing::warn!(source = %source, verdict = verdict.name(), "skipping source");
                    ExportOutcome::Skipped { verdict }
                }
            },
            Err(error) => failed(None, None, &error),
        };
        log_outcome(Some(source), &outcome);
        report.sources.push(SourceReport {
            source: Some(source.clone()),
            outcome,
        });
    }
    Ok(report)
}

/// Exports one named snapshot. The maximum age does not apply, because someone asked for this
/// snapshot; availability and encryption still do.
pub async fn export_snapshot(
    catalog: &dyn SnapshotCatalog,
    exports: &dyn ExportService,
    config: &ExportStartConfig,
    kind: SourceKind,
    snapshot_id: &str,
    now: DateTime<Utc>,
) -> Result<ExportStartReport, RdsError> {
    let (source, outcome) = match catalog.find_snapshot(kind, snapshot_id).await {
        Ok(Some(snapshot)) => {
            let policy = SnapshotPolicy {
                max_age: Duration::MAX,
                ..config.policy
            };
            let source = snapshot.source.clone();
            let outcome = match judge(&source, std::slice::from_ref(&snapshot), &policy, now) {
                SnapshotVerdict::Valid(snapshot) => {
                    let mut slots = ExportSlots::load(exports, config).await?;
                    start_one(exports, config, &mut slots, &snapshot).await
                }
                verdict => ExportOutcome::Skipped { verdict },
            };
            (Some(source), outcome)
        }
        Ok(None) => (
            None,
            ExportOutcome::NotFound {
                snapshot_id: snapshot_id.to_string(),
            },
        ),
        Err(error) => (None, failed(Some(snapshot_id), None, &error)),
    };
    log_outcome(source.as_ref(), &outcome);
    Ok(ExportStartReport {
        sources: vec![SourceReport { source, outcome }],
    })
}

/// The account's running exports, counted once per run and updated as this run starts more.
struct ExportSlots {
    active: usize,
    limit: usize,
    /// Ids of every task the account lists, whatever its status.
    known_ids: Vec<String>,
}

impl ExportSlots {
    async fn load(
        exports: &dyn ExportService,
        config: &ExportStartConfig,
    ) -> Result<Self, RdsError> {
        let tasks = exports.describe_exports(&ExportFilter::default()).await?;
        let active = tasks.iter().filter(|t| t.status.is_active()).count();
        let known_ids = tasks.into_iter().map(|t| t.id).collect();
        Ok(Self {
            active,
            limit: config.max_concurrent_exports,
            known_ids,
        })
    }
}

async fn start_one(
    exports: &dyn ExportService,
    config: &ExportStartConfig,
    slots: &mut ExportSlots,
    snapshot: &Snapshot,
) -> ExportOutcome {
    let task_id = export_id::with_prefix(&config.id_prefix, &snapshot.id);
    let snapshot_id = snapshot.id.clone();

    if slots.known_ids.contains(&task_id) {
        return ExportOutcome::AlreadyExists {
            snapshot_id,
            task_id,
        };
    }
    if slots.active >= slots.limit {
        return ExportOutcome::Deferred {
            snapshot_id,
            task_id,
            active_exports: slots.active,
        };
    }

    let request = StartExport {
        task_id: task_id.clone(),
        source_arn: snapshot.arn.clone(),
        s3_bucket: config.s3_bucket.clone(),
        s3_prefix: config.s3_prefix.trim_end_matches('/').to_string(),
        iam_role_arn: config.iam_role_arn.clone(),
        kms_key_id: config.kms_key_id.clone(),
        export_only: config.export_only.clone(),
    };
    match exports.start_export(&request).await {
        Ok(_) => {
            slots.active += 1;
            slots.known_ids.push(task_id.clone());
            ExportOutcome::Started {
                snapshot_id,
                task_id,
            }
        }
        Err(error) => match error.kind() {
            RdsErrorKind::AlreadyExists => ExportOutcome::AlreadyExists {
                snapshot_id,
                task_id,
            },
            RdsErrorKind::LimitReached => {
                // Another deployment or a person started exports since the count was taken.
                slots.active = slots.limit;
                ExportOutcome::Deferred {
                    snapshot_id,
                    task_id,
                    active_exports: slots.active,
                }
            }
            _ => failed(Some(&snapshot_id), Some(&task_id), &error),
        },
    }
}

fn failed(snapshot_id: Option<&str>, task_id: Option<&str>, error: &RdsError) -> ExportOutcome {
    ExportOutcome::Failed {
        snapshot_id: snapshot_id.map(str::to_string),
        task_id: task_id.map(str::to_string),
        code: error.code().map(str::to_string),
        request_id: error.request_id().map(str::to_string),
        message: error.to_string(),
    }
}

fn log_outcome(source: Option<&Source>, outcome: &ExportOutcome) {
    let source = source.map(ToString::to_string);
    match outcome {
        ExportOutcome::Failed { code, message, .. } => {
            tracing::error!(source, outcome = outcome.name(), code = code.as_deref(), error = %message, "export not started");
        }
        ExportOutcome::Deferred {
            task_id,
            active_exports,
            ..
        } => {
            tracing::warn!(
                source,
                task_id,
                active_exports,
                "export deferred to the next run"
            );
        }
        _ => tracing::info!(source, outcome = outcome.name(), "export start finished"),
    }
}
