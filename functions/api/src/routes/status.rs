//! `GET /status`: per configured source, the newest backup or export, its age against the
//! configured maximum, and whether it has reached the other cloud. A source whose cloud fails
//! shows the error in its entry, so one failing source does not hide the others.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, TimeDelta, Utc};
use futures::future::join_all;
use serde::Serialize;
use utoipa::ToSchema;

use backup_bridge::api::{StatusError, aliyun_status, rds_status};

use super::aws::source_text;
use super::{aliyun_error, rds_error, storage_error};
use crate::error::{ApiError, ErrorBody};
use crate::lang::Lang;
use crate::state::AppState;

#[derive(Debug, Serialize, ToSchema)]
pub struct StatusReply {
    pub generated_at: DateTime<Utc>,
    /// True when every source is fresh and copied.
    pub healthy: bool,
    pub aliyun: Vec<AliyunStatus>,
    pub rds: Vec<RdsStatus>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct AliyunStatus {
    pub instance_id: String,
    /// The newest successful full backup.
    pub backup_id: Option<String>,
    pub backup_end: Option<DateTime<Utc>>,
    pub age_seconds: Option<i64>,
    pub max_age_seconds: i64,
    /// True when the newest backup is younger than the maximum age.
    pub fresh: bool,
    /// Where the pull writes the newest backup in S3.
    pub s3_key: Option<String>,
    /// True when that S3 object exists.
    pub in_s3: bool,
    /// The validation verdict names, such as `ok` or `stale`.
    pub verdicts: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RdsStatus {
    /// `instance:<id>` or `cluster:<id>`.
    pub source: String,
    pub verdict: Option<String>,
    pub snapshot_id: Option<String>,
    pub snapshot_created: Option<DateTime<Utc>>,
    pub age_seconds: Option<i64>,
    pub max_age_seconds: i64,
    pub fresh: bool,
    pub export_task_id: Option<String>,
    /// The export task's status, or absent when the snapshot has no export yet.
    pub export_status: Option<String>,
    /// True when `rds-export-poll` recorded that the whole export reached OSS.
    pub in_oss: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorBody>,
}

fn error_body(error: &StatusError) -> ErrorBody {
    let error: ApiError = match error {
        StatusError::Aliyun(error) => aliyun_error(error),
        StatusError::Rds(error) => rds_error(error),
        StatusError::Storage(error) => storage_error(error),
    };
    error.body(Lang::En)
}

fn fresh(age: Option<TimeDelta>, max_age: TimeDelta) -> bool {
    age.is_some_and(|age| age <= max_age)
}

/// Shows, per configured source, the newest backup, its age and whether it has been copied.
#[utoipa::path(
    get,
    path = "/status",
    tag = "status",
    responses((status = 200, description = "Status of every configured source", body = StatusReply))
)]
pub async fn status(State(state): State<AppState>) -> Json<StatusReply> {
    let now = Utc::now();
    let config = &state.config;
    let aliyun = join_all(config.pull.settings.instances.iter().map(|instance_id| {
        let state = &state;
        async move {
            let settings = &state.config.pull.settings;
            let max_age_seconds = settings.validation.max_age.num_seconds();
            match aliyun_status(state.aliyun.as_ref(), state.pull_store.as_ref(), settings, instance_id, now).await {
                Ok(found) => AliyunStatus {
                    instance_id: found.instance_id,
                    backup_id: found.newest.as_ref().map(|b| b.backup_id.clone()),
                    backup_end: found.newest.as_ref().map(|b| b.end.unwrap_or(b.start)),
                    age_seconds: found.age.map(|age| age.num_seconds()),
                    max_age_seconds,
                    fresh: fresh(found.age, found.max_age),
                    s3_key: found.s3_key,
                    in_s3: found.in_s3,
                    verdicts: found
                        .report
                        .verdicts
                        .iter()
                        .map(verdict_name)
                        .map(str::to_string)
                        .collect(),
                    error: None,
                },
                Err(error) => AliyunStatus {
                    instance_id: instance_id.clone(),
                    backup_id: None,
                    backup_end: None,
                    age_seconds: None,
                    max_age_seconds,
                    fresh: false,
                    s3_key: None,
                    in_s3: false,
                    verdicts: Vec::new(),
                    error: Some(error_body(&error)),
                },
            }
        }
    }))
    .await;
    let rds = join_all(config.export_start.job.sources.iter().map(|source| {
        let state = &state;
        async move {
            let job = &state.config.export_start.job;
            let max_age_seconds = job.policy.max_age.num_seconds();
            let marker_prefix = &state.config.export_poll.job.marker_prefix;
            let found = rds_status(
                state.snapshots.as_ref(),
                state.exports.as_ref(),
                state.export_store.as_ref(),
                job,
                marker_prefix,
                source,
                now,
            )
            .await;
            match found {
                Ok(found) => RdsStatus {
                    source: source_text(source),
                    verdict: Some(found.verdict.name().to_string()),
                    snapshot_id: found.newest.as_ref().map(|s| s.id.clone()),
                    snapshot_created: found.newest.as_ref().and_then(|s| s.created),
                    age_seconds: found.age.map(|age| age.num_seconds()),
                    max_age_seconds,
                    fresh: fresh(found.age, found.max_age),
                    export_task_id: found.task_id,
                    export_status: found.task.map(|task| task.status.as_str().to_string()),
                    in_oss: found.in_oss,
                    error: None,
                },
                Err(error) => RdsStatus {
                    source: source_text(source),
                    verdict: None,
                    snapshot_id: None,
                    snapshot_created: None,
                    age_seconds: None,
                    max_age_seconds,
                    fresh: false,
                    export_task_id: None,
                    export_status: None,
                    in_oss: false,
                    error: Some(error_body(&error)),
                },
            }
        }
    }))
    .await;
    let healthy = aliyun.iter().all(|s| s.fresh && s.in_s3 && s.error.is_none())
        && rds.iter().all(|s| s.fresh && s.in_oss && s.error.is_none());
    Json(StatusReply {
        generated_at: now,
        healthy,
        aliyun,
        rds,
    })
}

fn verdict_name(verdict: &backup_bridge::validate::backup::Verdict) -> &'static str {
    super::aliyun::verdict_name(verdict)
}
