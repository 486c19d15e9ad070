//! `GET /health`: liveness, and with `deep=true` one check per dependency, each with its
//! status and latency. No check sends a WeCom message.

use std::future::Future;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use chrono::{TimeDelta, Utc};
use http::StatusCode;
use serde::{Deserialize, Serialize};
use tokio::time::Instant;
use utoipa::{IntoParams, ToSchema};

use backup_bridge::aliyun::BackupWindow;
use backup_bridge::storage::ObjectSink;

use super::ApiQuery;
use crate::error::{ApiError, ErrorBody};
use crate::state::AppState;

/// Time allowed for each deep check, well inside API Gateway's 30-second limit.
const CHECK_TIMEOUT: Duration = Duration::from_secs(5);
/// A key that no function writes; a HEAD of it proves the bucket answers to our credentials.
const PROBE_KEY: &str = "backup-bridge-health-probe";

#[derive(Debug, Deserialize, IntoParams)]
#[into_params(parameter_in = Query)]
pub struct HealthQuery {
    /// `true` to check every dependency; `false` or absent for liveness only.
    pub deep: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct HealthReply {
    /// `ok`, or `degraded` when a deep check failed.
    pub status: String,
    pub version: String,
    pub build: String,
    /// Present for `deep=true`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checks: Option<Vec<Check>>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Check {
    /// `s3`, `oss`, `aliyun_api`, `rds` or `wecom`.
    pub name: String,
    /// `ok`, `error`, or `not_configured` for a WeCom robot without a key.
    pub status: String,
    pub latency_ms: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Reports liveness, or the state of every dependency.
#[utoipa::path(
    get,
    path = "/health",
    tag = "health",
    params(HealthQuery),
    responses(
        (status = 200, description = "Alive; every deep check passed", body = HealthReply),
        (status = 400, description = "Invalid `deep`", body = ErrorBody),
        (status = 503, description = "A deep check failed", body = HealthReply),
    )
)]
pub async fn health(
    State(state): State<AppState>,
    ApiQuery(query): ApiQuery<HealthQuery>,
) -> Result<Response, ApiError> {
    let deep = match query.deep.as_deref() {
        None | Some("false") => false,
        Some("true") => true,
        Some(_) => return Err(ApiError::invalid("deep", "应为 true 或 false", "expected true or false")),
    };
    let mut reply = HealthReply {
        status: "ok".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        build: state.config.build.clone(),
        checks: None,
    };
    if !deep {
        return Ok(Json(reply).into_response());
    }
    let checks = deep_checks(&state).await;
    let healthy = checks.iter().all(|check| check.status != "error");
    reply.checks = Some(checks);
    if healthy {
        Ok(Json(reply).into_response())
    } else {
        reply.status = "degraded".into();
        Ok((StatusCode::SERVICE_UNAVAILABLE, Json(reply)).into_response())
    }
}

async fn deep_checks(state: &AppState) -> Vec<Check> {
    let config = &state.config;
    let s3 = timed("s3", async {
        state.pull_store.head(PROBE_KEY).await.map(|_| ()).map_err(|e| e.to_string())
    });
    let oss = timed("oss", async {
        state.oss.head(PROBE_KEY).await.map(|_| ()).map_err(|e| e.to_string())
    });
    let aliyun = timed("aliyun_api", async {
        let instance = config.pull.settings.instances.first().cloned().unwrap_or_default();
        let window =
            BackupWindow::last(TimeDelta::hours(1), Utc::now()).map_err(|e| e.to_string())?;
        state
            .aliyun
            .list_backups(&instance, &window)
            .await
            .map(|_| ())
            .map_err(|e| e.to_string())
    });
    let rds = timed("rds", async {
        match config.export_start.job.sources.first() {
            Some(source) => state
                .snapshots
                .list_snapshots(source)
                .await
                .map(|_| ())
                .map_err(|e| e.to_string()),
            None => Ok(()),
        }
    });
    let (s3, oss, aliyun, rds) = tokio::join!(s3, oss, aliyun, rds);
    let wecom = Check {
        name: "wecom".into(),
        status: if config.wecom_webhook_key.is_some() { "ok" } else { "not_configured" }.into(),
        latency_ms: 0,
        message: None,
    };
    vec![s3, oss, aliyun, rds, wecom]
}

async fn timed(name: &str, check: impl Future<Output = Result<(), String>>) -> Check {
    let started = Instant::now();
    let result = match tokio::time::timeout(CHECK_TIMEOUT, check).await {
        Ok(result) => result,
        Err(_) => Err(format!("timed out after {} s", CHECK_TIMEOUT.as_secs())),
    };
    let latency_ms = u64::try_from(started.elapsed().as_millis()).unwrap_or(u64::MAX);
    if let Err(message) = &result {
        tracing::warn!(check = name, error = %message, "health check failed");
    }
    Check {
        name: name.into(),
        status: if result.is_ok() { "ok" } else { "error" }.into(),
        latency_ms,
        message: result.err(),
    }
}
