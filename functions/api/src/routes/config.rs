//! `GET /config`: the effective configuration of every function, each secret shown as `***`.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use serde::Serialize;
use utoipa::ToSchema;

use backup_bridge::config::ApiConfig;

use crate::state::AppState;

/// What `/config` prints in place of every secret value.
pub const REDACTED: &str = "***";

#[derive(Debug, Serialize, ToSchema)]
pub struct ConfigReply {
    /// Settings by function name, then by setting name. Values are text; secrets are `***`.
    pub functions: BTreeMap<String, BTreeMap<String, String>>,
}

/// Shows the effective configuration, with secrets replaced by `***`.
#[utoipa::path(
    get,
    path = "/config",
    tag = "config",
    responses((status = 200, description = "Effective configuration", body = ConfigReply))
)]
pub async fn config(State(state): State<AppState>) -> Json<ConfigReply> {
    Json(ConfigReply {
        functions: describe(&state.config),
    })
}

/// Builds the settings table from `config`. Secrets never enter it: each one is written as
/// [`REDACTED`] or as whether it is set.
pub fn describe(config: &ApiConfig) -> BTreeMap<String, BTreeMap<String, String>> {
    let mut functions = BTreeMap::new();
    let pull = &config.pull;
    functions.insert(
        "aliyun-backup-pull".to_string(),
        table([
            ("bucket", pull.bucket.clone()),
            ("prefix", pull.settings.prefix.clone()),
            ("instances", pull.settings.instances.join(",")),
            ("lookback_hours", pull.settings.lookback.num_hours().to_string()),
            ("backup_max_age_hours", pull.settings.validation.max_age.num_hours().to_string()),
            (
                "backup_min_size_fraction",
                pull.settings.validation.min_size_fraction.to_string(),
            ),
            ("download_network", format!("{:?}", pull.settings.validation.network).to_lowercase()),
            ("download_allowed_hosts", pull.download.allowed_host_suffixes.join(",")),
            ("rds_endpoint", pull.rds.endpoint.authority()),
            ("part_size_bytes", pull.settings.transfer.part_size.to_string()),
            ("concurrency", pull.settings.transfer.concurrency.to_string()),
            ("deadline_margin_seconds", pull.settings.deadline_margin.as_secs().to_string()),
        ]),
    );
    let start = &config.export_start.job;
    functions.insert(
        "rds-export-start".to_string(),
        table([
            (
                "sources",
                start.sources.iter().map(super::aws::source_text).collect::<Vec<_>>().join(","),
            ),
            ("bucket", start.s3_bucket.clone()),
            ("prefix", start.s3_prefix.clone()),
            ("iam_role_arn", start.iam_role_arn.clone()),
            ("kms_key_id", start.kms_key_id.clone()),
            ("export_only", start.export_only.join(",")),
            ("id_prefix", start.id_prefix.clone()),
            ("snapshot_max_age_hours", start.policy.max_age.num_hours().to_string()),
            ("require_encryption", start.policy.require_encryption.to_string()),
            ("max_concurrent_exports", start.max_concurrent_exports.to_string()),
        ]),
    );
    let poll = &config.export_poll;
    functions.insert(
        "rds-export-poll".to_string(),
        table([
            ("bucket", poll.bucket.clone()),
            ("marker_prefix", poll.job.marker_prefix.clone()),
            ("stuck_after_hours", poll.job.stuck_after.num_hours().to_string()),
            ("oss_bucket", poll.oss.bucket.clone()),
            ("oss_prefix", poll.sync.target_prefix.clone()),
        ]),
    );
    let sync = &config.sync;
    functions.insert(
        "s3-oss-sync".to_string(),
        table([
            ("source_bucket", sync.source_bucket.clone()),
            ("source_prefix", sync.settings.source_prefix.clone()),
            ("oss_endpoint", sync.oss.endpoint.host().to_string()),
            ("oss_region", sync.oss.region.clone()),
            ("oss_bucket", sync.oss.bucket.clone()),
            ("oss_prefix", sync.settings.target_prefix.clone()),
            ("part_size_bytes", sync.settings.part_size.to_string()),
            ("concurrency", sync.settings.concurrency.to_string()),
        ]),
    );
    let set_or_unset = |present: bool| if present { REDACTED } else { "" }.to_string();
    functions.insert(
        "api".to_string(),
        table([
            ("pull_function_name", config.pull_function_name.clone()),
            ("build", config.build.clone()),
            ("aliyun_access_key_id", config.aliyun.access_key_id.clone()),
            ("aliyun_access_key_secret", REDACTED.to_string()),
            ("aliyun_security_token", set_or_unset(config.aliyun.security_token.is_some())),
            ("credentials_secret_arn", config.credentials_secret_arn.clone().unwrap_or_default()),
            ("wecom_webhook_key", set_or_unset(config.wecom_webhook_key.is_some())),
            ("wecom_base_url", config.wecom_base_url.clone().unwrap_or_default()),
            ("alert_rules", config.alert_rules.clone().unwrap_or_default()),
            ("alert_rules_s3_key", config.alert_rules_s3_key.clone().unwrap_or_default()),
        ]),
    );
    functions
}

fn table<const N: usize>(rows: [(&str, String); N]) -> BTreeMap<String, String> {
    rows.into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect()
}
