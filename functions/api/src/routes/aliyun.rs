//! The Aliyun routes: an instance's backups with their validation verdicts, and starting a pull
//! of one backup.

use axum::Json;
use axum::extract::{Path, State};
use axum::response::IntoResponse;
use chrono::{DateTime, Utc};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use serde_json::json;
use utoipa::{IntoParams, ToSchema};

use backup_bridge::aliyun::{Backup, BackupStatus, BackupType, BackupWindow};
use backup_bridge::api::download_url;
use backup_bridge::jobs::pull::{is_safe_id, target_key};
use backup_bridge::validate::backup::{Verdict, validate_instance};

use super::{ApiQuery, aliyun_error, parse_time};
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct BackupsQuery {
    /// Start of the window, RFC 3339; defaults to the pull's lookback before `to`.
    pub from: Option<String>,
    /// End of the window, RFC 3339; defaults to now.
    pub to: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BackupsReply {
    pub instance_id: String,
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// The instance's verdicts: a single `ok`, or the problems found.
    pub verdicts: Vec<VerdictItem>,
    pub backups: Vec<BackupItem>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct VerdictItem {
    /// `ok`, `missing`, `stale`, `not_downloadable`, `size_drop`, `zero_size` or `failed`.
    pub verdict: String,
    pub backup_id: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct BackupItem {
    pub backup_id: String,
    /// `Success`, `Failed`, or what the RDS API reports.
    pub status: String,
    pub method: Option<String>,
    pub backup_type: Option<String>,
    pub mode: Option<String>,
    pub start: DateTime<Utc>,
    pub end: Option<DateTime<Utc>>,
    pub size_bytes: u64,
    /// True when the backup has a download URL on the configured network.
    pub downloadable: bool,
    /// The verdicts that name this backup.
    pub verdicts: Vec<String>,
}

/// Returns the stable name of a verdict, such as `stale`.
pub fn verdict_name(verdict: &Verdict) -> &'static str {
    verdict_parts(verdict).0
}

/// Returns the stable name and the backup id of a verdict.
fn verdict_parts(verdict: &Verdict) -> (&'static str, Option<&str>) {
    match verdict {
        Verdict::Missing => ("missing", None),
        Verdict::Stale { backup_id, .. } => ("stale", Some(backup_id)),
        Verdict::NotDownloadable { backup_id } => ("not_downloadable", Some(backup_id)),
        Verdict::SizeDrop { backup_id, .. } => ("size_drop", Some(backup_id)),
        Verdict::ZeroSize { backup_id } => ("zero_size", Some(backup_id)),
        Verdict::Failed { backup_id } => ("failed", Some(backup_id)),
        Verdict::Ok { backup_id } => ("ok", Some(backup_id)),
    }
}

/// Rejects an instance that is not configured, so the API reads only the instances it pulls.
fn configured_instance(state: &AppState, id: &str) -> Result<(), ApiError> {
    if state.config.pull.settings.instances.iter().any(|known| known == id) {
        return Ok(());
    }
    Err(ApiError::not_found(
        "instance_not_found",
        &format!("已配置的实例 {id}"),
        &format!("configured instance {id}"),
    ))
}

/// Lists an instance's backups in a window, with the validation verdicts.
#[utoipa::path(
    get,
    path = "/aliyun/instances/{id}/backups",
    tag = "aliyun",
    params(("id" = String, Path, description = "ApsaraDB RDS instance id"), BackupsQuery),
    responses(
        (status = 200, description = "Backups and verdicts", body = BackupsReply),
        (status = 400, description = "Invalid `from` or `to`", body = ErrorBody),
        (status = 404, description = "The instance is not configured", body = ErrorBody),
        (status = 502, description = "The RDS API failed", body = ErrorBody),
    )
)]
pub async fn list_backups(
    State(state): State<AppState>,
    Path(id): Path<String>,
    ApiQuery(query): ApiQuery<BackupsQuery>,
) -> Result<Json<BackupsReply>, ApiError> {
    configured_instance(&state, &id)?;
    let settings = &state.config.pull.settings;
    let now = Utc::now();
    let to = parse_time("to", query.to.as_deref())?.unwrap_or(now);
    let from = parse_time("from", query.from.as_deref())?.unwrap_or(to - settings.lookback);
    if from >= to {
        return Err(ApiError::invalid("from", "必须早于 to", "must be earlier than to"));
    }
    let window = BackupWindow::new(from, to)
        .map_err(|_| ApiError::invalid("from", "时间窗口无效", "the window is invalid"))?;
    let backups = state
        .aliyun
        .list_backups(&id, &window)
        .await
        .map_err(|error| aliyun_error(&error))?;
    let report = validate_instance(&id, &backups, now, &settings.validation);
    let network = settings.validation.network;
    let items = backups
        .iter()
        .map(|backup| BackupItem {
            backup_id: backup.backup_id.clone(),
            status: backup.status.as_str().to_string(),
            method: backup.method.as_ref().map(|m| m.as_str().to_string()),
            backup_type: backup.backup_type.as_ref().map(|t| t.as_str().to_string()),
            mode: backup.mode.as_ref().map(|m| m.as_str().to_string()),
            start: backup.start,
            end: backup.end,
            size_bytes: backup.size_bytes,
            downloadable: download_url(backup, network).is_some(),
            verdicts: report
                .verdicts
                .iter()
                .map(verdict_parts)
                .filter(|(_, backup_id)| *backup_id == Some(backup.backup_id.as_str()))
                .map(|(name, _)| name.to_string())
                .collect(),
        })
        .collect();
    let verdicts = report
        .verdicts
        .iter()
        .map(|verdict| {
            let (name, backup_id) = verdict_parts(verdict);
            VerdictItem {
                verdict: name.to_string(),
                backup_id: backup_id.map(str::to_string),
            }
        })
        .collect();
    Ok(Json(BackupsReply {
        instance_id: id,
        from,
        to,
        verdicts,
        backups: items,
    }))
}

#[derive(Debug, Serialize, ToSchema)]
pub struct PullAccepted {
    pub instance_id: String,
    pub backup_id: String,
    /// The function that runs the pull.
    pub function: String,
    /// `s3://<bucket>/<key>`, where the verified backup appears.
    pub s3_uri: String,
    /// The route that shows the instance's backups; `/status` shows whether the copy arrived.
    pub follow: String,
}

/// Starts the pull of one backup in `aliyun-backup-pull` and returns at once.
#[utoipa::path(
    post,
    path = "/aliyun/instances/{id}/backups/{backup_id}/pull",
    tag = "aliyun",
    params(
        ("id" = String, Path, description = "ApsaraDB RDS instance id"),
        ("backup_id" = String, Path, description = "Backup set id"),
    ),
    responses(
        (status = 202, description = "Pull started", body = PullAccepted),
        (status = 400, description = "Invalid backup id", body = ErrorBody),
        (status = 404, description = "Unknown instance or backup", body = ErrorBody),
        (status = 409, description = "The backup cannot be pulled", body = ErrorBody),
        (status = 502, description = "The RDS API or Lambda failed", body = ErrorBody),
    )
)]
pub async fn start_pull(
    State(state): State<AppState>,
    Path((id, backup_id)): Path<(String, String)>,
) -> Result<impl IntoResponse, ApiError> {
    configured_instance(&state, &id)?;
    if !is_safe_id(&backup_id) {
        return Err(ApiError::invalid(
            "backup_id",
            "应为备份集 ID，不含斜杠",
            "expected a backup set id without slashes",
        ));
    }
    let config = &state.config.pull;
    let now = Utc::now();
    let window = BackupWindow::last(config.settings.lookback, now)
        .map_err(|error| aliyun_error(&error))?;
    let backup = state
        .aliyun
        .find_backup(&id, &backup_id, &window)
        .await
        .map_err(|error| aliyun_error(&error))?
        .ok_or_else(|| {
            ApiError::not_found(
                "backup_not_found",
                &format!("拉取回溯窗口内的备份 {backup_id}"),
                &format!("backup {backup_id} within the pull's lookback window"),
            )
        })?;
    let url = pullable_url(&backup, config.settings.validation.network)?;
    let key = target_key(&config.settings.prefix, &backup, url);
    let event = json!({ "instance_id": id, "backup_id": backup_id });
    if let Err(error) = state.pull_invoker.invoke_event(&event).await {
        tracing::warn!(instance_id = %id, backup_id = %backup_id, error = %error, "pull invoke failed");
        return Err(ApiError::cloud("lambda_error", Some(&error.code), &error.to_string()));
    }
    tracing::info!(instance_id = %id, backup_id = %backup_id, key = %key, "pull started");
    let reply = PullAccepted {
        function: state.pull_invoker.function_name().to_string(),
        s3_uri: format!("s3://{}/{key}", config.bucket),
        follow: format!("/aliyun/instances/{id}/backups"),
        instance_id: id,
        backup_id,
    };
    Ok((StatusCode::ACCEPTED, Json(reply)))
}

/// Returns the download URL of a backup the pull accepts: a successful full backup with a URL
/// on the configured network.
fn pullable_url(
    backup: &Backup,
    network: backup_bridge::validate::backup::DownloadNetwork,
) -> Result<&str, ApiError> {
    let reject = |zh: &str, en: &str| {
        ApiError::new(
            StatusCode::CONFLICT,
            "backup_not_pullable",
            format!("备份 {} 无法拉取：{zh}", backup.backup_id),
            format!("backup {} cannot be pulled: {en}", backup.backup_id),
        )
    };
    if backup.status != BackupStatus::Success {
        return Err(reject("备份未成功", "it did not succeed"));
    }
    if matches!(backup.backup_type, Some(BackupType::IncrementalBackup)) {
        return Err(reject("增量备份不会被拉取", "incremental backups are not pulled"));
    }
    download_url(backup, network)
        .ok_or_else(|| reject("没有所配置网络的下载地址", "it has no download URL on the configured network"))
}
