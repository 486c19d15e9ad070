//! The Amazon RDS routes: snapshots with their verdicts, starting an export, and following
//! exports up to their copy in OSS.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use utoipa::{IntoParams, ToSchema};

use backup_bridge::api::{compare_export, synced_marker_key};
use backup_bridge::aws::export_id;
use backup_bridge::aws::rds::{ExportFilter, ExportStatus, ExportTask, Snapshot, Source, SourceKind};
use backup_bridge::config::export::parse_sources;
use backup_bridge::jobs::export_start::{ExportOutcome, export_snapshot};
use backup_bridge::storage::MarkerStore;
use backup_bridge::validate::snapshot::{SnapshotVerdict, judge};

use super::{ApiQuery, rds_error, storage_error};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// Longest snapshot identifier or ARN accepted in a path.
const MAX_SNAPSHOT_ID_LEN: usize = 255;

/// Writes a source as `RDS_SOURCES` does: `instance:<id>` or `cluster:<id>`.
pub fn source_text(source: &Source) -> String {
    match source {
        Source::Instance(id) => format!("instance:{id}"),
        Source::Cluster(id) => format!("cluster:{id}"),
    }
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct SnapshotsQuery {
    /// One configured source such as `instance:prod-db` or `cluster:aurora-1`; all when absent.
    pub source: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SnapshotsReply {
    pub sources: Vec<SourceSnapshots>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SourceSnapshots {
    /// `instance:<id>` or `cluster:<id>`.
    pub source: String,
    /// `valid`, `no_snapshot`, `not_available`, `stale` or `not_encrypted`, for the newest
    /// available snapshot against the export rules.
    pub verdict: String,
    pub snapshots: Vec<SnapshotItem>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SnapshotItem {
    pub id: String,
    pub arn: String,
    pub created: Option<DateTime<Utc>>,
    pub status: String,
    pub encrypted: bool,
    /// `automated`, `manual`, or the type RDS reports.
    pub kind: String,
}

impl From<&Snapshot> for SnapshotItem {
    fn from(snapshot: &Snapshot) -> Self {
        Self {
            id: snapshot.id.clone(),
            arn: snapshot.arn.clone(),
            created: snapshot.created,
            status: snapshot.status.clone(),
            encrypted: snapshot.encrypted,
            kind: format!("{:?}", snapshot.kind).to_lowercase(),
        }
    }
}

/// Lists the snapshots of the configured sources, each source with its verdict.
#[utoipa::path(
    get,
    path = "/aws/snapshots",
    tag = "aws",
    params(SnapshotsQuery),
    responses(
        (status = 200, description = "Snapshots by source", body = SnapshotsReply),
        (status = 400, description = "Invalid `source`", body = ErrorBody),
        (status = 404, description = "The source is not configured", body = ErrorBody),
        (status = 502, description = "RDS failed", body = ErrorBody),
    )
)]
pub async fn list_snapshots(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<SnapshotsQuery>,
) -> Result<Json<SnapshotsReply>, ApiError> {
    let configured = &state.config.export_start.job.sources;
    let sources = match query.source.as_deref().map(str::trim) {
        None | Some("") => configured.clone(),
        Some(text) => {
            let parsed = parse_sources(text).map_err(|_| {
                ApiError::invalid(
                    "source",
                    "应为 instance:<id> 或 cluster:<id>",
                    "expected instance:<id> or cluster:<id>",
                )
            })?;
            if let Some(unknown) = parsed.iter().find(|source| !configured.contains(source)) {
                let text = source_text(unknown);
                return Err(ApiError::not_found(
                    "source_not_found",
                    &format!("已配置的数据源 {text}"),
                    &format!("configured source {text}"),
                ));
            }
            parsed
        }
    };
    let now = Utc::now();
    let policy = state.config.export_start.job.policy;
    let mut reply = SnapshotsReply { sources: Vec::new() };
    for source in sources {
        let snapshots = state
            .snapshots
            .list_snapshots(&source)
            .await
            .map_err(|error| rds_error(&error))?;
        let verdict = judge(&source, &snapshots, &policy, now);
        reply.sources.push(SourceSnapshots {
            source: source_text(&source),
            verdict: verdict.name().to_string(),
            snapshots: snapshots.iter().map(SnapshotItem::from).collect(),
        });
    }
    Ok(Json(reply))
}

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ExportQuery {
    /// `instance` (default) for a DB snapshot, `cluster` for an Aurora cluster snapshot.
    pub kind: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExportAccepted {
    pub snapshot_id: String,
    pub task_id: String,
    /// `s3://<bucket>/<prefix>/<task id>/`, where RDS writes the export.
    pub s3_uri: String,
    /// The route that reports the export's progress.
    pub follow: String,
}

/// Starts the export of one snapshot, with the identifier rules of `rds-export-start`.
#[utoipa::path(
    post,
    path = "/aws/snapshots/{id}/export",
    tag = "aws",
    params(("id" = String, Path, description = "Snapshot identifier or ARN"), ExportQuery),
    responses(
        (status = 202, description = "Export started", body = ExportAccepted),
        (status = 400, description = "Invalid identifier or kind", body = ErrorBody),
        (status = 404, description = "No such snapshot", body = ErrorBody),
        (status = 409, description = "Already exported, export limit reached, or the snapshot fails a rule", body = ErrorBody),
        (status = 502, description = "RDS failed", body = ErrorBody),
    )
)]
pub async fn start_export(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<ExportQuery>,
) -> Result<impl IntoResponse, ApiError> {
    let kind = match query.kind.as_deref() {
        None | Some("instance") => SourceKind::Instance,
        Some("cluster") => SourceKind::Cluster,
        Some(_) => return Err(ApiError::invalid("kind", "应为 instance 或 cluster", "expected instance or cluster")),
    };
    if !is_snapshot_id(&id) {
        return Err(ApiError::invalid(
            "id",
            "应为快照标识符或 ARN（字母、数字、连字符、冒号）",
            "expected a snapshot identifier or ARN (letters, digits, hyphens, colons)",
        ));
    }
    let config = &state.config.export_start.job;
    let report = export_snapshot(
        state.snapshots.as_ref(),
        state.exports.as_ref(),
        config,
        kind,
        &id,
        Utc::now(),
    )
    .await
    .map_err(|error| rds_error(&error))?;
    let Some(entry) = report.sources.into_iter().next() else {
        return Err(ApiError::not_found("snapshot_not_found", &format!("快照 {id}"), &format!("snapshot {id}")));
    };
    match entry.outcome {
        ExportOutcome::Started { snapshot_id, task_id } => {
            let reply = ExportAccepted {
                s3_uri: format!("s3://{}/{}/{task_id}/", config.s3_bucket, config.s3_prefix),
                follow: format!("/aws/exports/{task_id}"),
                snapshot_id,
                task_id,
            };
            Ok((StatusCode::ACCEPTED, Json(reply)))
        }
        ExportOutcome::AlreadyExists { task_id, .. } => Err(ApiError::new(
            StatusCode::CONFLICT,
            "export_exists",
            format!("导出任务 {task_id} 已存在"),
            format!("export task {task_id} already exists"),
        )),
        ExportOutcome::Deferred { active_exports, .. } => Err(ApiError::new(
            StatusCode::CONFLICT,
            "export_limit_reached",
            format!("账户已有 {active_exports} 个导出任务在运行，请稍后再试"),
            format!("the account already runs {active_exports} exports; try again later"),
        )),
        ExportOutcome::Skipped { verdict } => Err(skipped(&verdict)),
        ExportOutcome::NotFound { snapshot_id } => Err(ApiError::not_found(
            "snapshot_not_found",
            &format!("快照 {snapshot_id}"),
            &format!("snapshot {snapshot_id}"),
        )),
        ExportOutcome::Failed { code, message, .. } => {
            tracing::warn!(snapshot_id = %id, code = code.as_deref(), error = %message, "export start failed");
            Err(ApiError::cloud("rds_error", code.as_deref(), &message))
        }
    }
}

fn skipped(verdict: &SnapshotVerdict) -> ApiError {
    let (zh, en) = match verdict {
        SnapshotVerdict::NotAvailable { newest, .. } => (
            format!("快照状态为 {}，不是 available", newest.status),
            format!("the snapshot is {}, not available", newest.status),
        ),
        SnapshotVerdict::NotEncrypted { .. } => (
            "配置要求加密，但快照未加密".to_string(),
            "encryption is required and the snapshot is not encrypted".to_string(),
        ),
        other => (
            format!("快照未通过检查：{}", other.name()),
            format!("the snapshot fails a rule: {}", other.name()),
        ),
    };
    ApiError::new(StatusCode::CONFLICT, "snapshot_not_exportable", zh, en)
}

/// Accepts what RDS accepts in a snapshot identifier or ARN: letters, digits, `-`, `:` and the
/// `/` of an ARN, at most 255 characters.
fn is_snapshot_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= MAX_SNAPSHOT_ID_LEN
        && id.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | ':' | '/'))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExportsReply {
    pub exports: Vec<ExportItem>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ExportItem {
    pub id: String,
    pub source_arn: String,
    /// `STARTING`, `IN_PROGRESS`, `COMPLETE`, `FAILED`, `CANCELING`, `CANCELED`, or what RDS reports.
    pub status: String,
    pub percent: Option<i32>,
    pub total_extracted_gb: Option<i32>,
    pub failure_cause: Option<String>,
    pub warning: Option<String>,
    pub started: Option<DateTime<Utc>>,
    pub s3_bucket: Option<String>,
    pub s3_prefix: Option<String>,
    /// The comparison with OSS, for a complete export in [`export`] only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub oss: Option<OssCopy>,
}

/// How much of a complete export has reached OSS.
#[derive(Debug, Serialize, ToSchema)]
pub struct OssCopy {
    /// True once `rds-export-poll` recorded that every object reached OSS.
    pub synced: bool,
    pub listed: u64,
    pub present: u64,
    pub missing: u64,
    pub different: u64,
}

impl From<&ExportTask> for ExportItem {
    fn from(task: &ExportTask) -> Self {
        Self {
            id: task.id.clone(),
            source_arn: task.source_arn.clone(),
            status: task.status.as_str().to_string(),
            percent: task.percent,
            total_extracted_gb: task.total_extracted_gb,
            failure_cause: task.failure_cause.clone(),
            warning: task.warning.clone(),
            started: task.started,
            s3_bucket: task.s3_bucket.clone(),
            s3_prefix: task.s3_prefix.clone(),
            oss: None,
        }
    }
}

/// Lists the export tasks that this deployment started (their ids carry its prefix).
#[utoipa::path(
    get,
    path = "/aws/exports",
    tag = "aws",
    responses(
        (status = 200, description = "Export tasks", body = ExportsReply),
        (status = 502, description = "RDS failed", body = ErrorBody),
    )
)]
pub async fn list_exports(State(state): State<AppState>) -> Result<Json<ExportsReply>, ApiError> {
    let own_prefix = format!("{}-", state.config.export_start.job.id_prefix);
    let tasks = state
        .exports
        .describe_exports(&ExportFilter::default())
        .await
        .map_err(|error| rds_error(&error))?;
    let exports = tasks
        .iter()
        .filter(|task| task.id.starts_with(&own_prefix))
        .map(ExportItem::from)
        .collect();
    Ok(Json(ExportsReply { exports }))
}

/// Reports one export task and, once it is complete, how much of it has reached OSS.
#[utoipa::path(
    get,
    path = "/aws/exports/{id}",
    tag = "aws",
    params(("id" = String, Path, description = "Export task identifier")),
    responses(
        (status = 200, description = "The export task", body = ExportItem),
        (status = 400, description = "Invalid identifier", body = ErrorBody),
        (status = 404, description = "No such export task", body = ErrorBody),
        (status = 502, description = "RDS, S3 or OSS failed", body = ErrorBody),
    )
)]
pub async fn export(
    State(state): State<AppState>,
    Path(id): Path<String>,
) -> Result<Json<ExportItem>, ApiError> {
    if !export_id::is_valid(&id) {
        return Err(ApiError::invalid(
            "id",
            "应为导出任务标识符：以字母开头，由字母、数字和单个连字符组成，最长 60 个字符",
            "expected an export task identifier: a letter, then letters, digits and single hyphens, at most 60 characters",
        ));
    }
    let filter = ExportFilter {
        task_id: Some(id.clone()),
        source_arn: None,
    };
    let tasks = match state.exports.describe_exports(&filter).await {
        Ok(tasks) => tasks,
        Err(error) if error.code() == Some("ExportTaskNotFound") => Vec::new(),
        Err(error) => return Err(rds_error(&error)),
    };
    let Some(task) = tasks.iter().find(|task| task.id == id) else {
        return Err(ApiError::not_found(
            "export_not_found",
            &format!("导出任务 {id}"),
            &format!("export task {id}"),
        ));
    };
    let mut item = ExportItem::from(task);
    if task.status == ExportStatus::Complete {
        let poll = &state.config.export_poll;
        let s3_prefix = task.s3_prefix.as_deref().unwrap_or(&poll.job.default_s3_prefix);
        let key_prefix = format!("{}/{}/", s3_prefix.trim_end_matches('/'), task.id);
        let counts = compare_export(state.export_store.as_ref(), state.oss.as_ref(), &poll.sync, &key_prefix)
            .await
            .map_err(|error| storage_error(&error))?;
        let marker = synced_marker_key(&poll.job.marker_prefix, &task.id);
        let synced = state
            .export_store
            .read_marker(&marker)
            .await
            .map_err(|error| storage_error(&error))?
            .is_some();
        item.oss = Some(OssCopy {
            synced,
            listed: counts.listed,
            present: counts.present,
            missing: counts.missing,
            different: counts.different,
        });
    }
    Ok(Json(item))
}
