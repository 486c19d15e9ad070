//! Configuration of `rds-export-start` and `rds-export-poll`.
//!
//! Both functions name the same bucket, key prefix and export task id prefix, so that the poll
//! finds exactly the tasks the start function created.

use chrono::Duration;

use super::alerting::{DEFAULT_STATE_PREFIX, STATE_PREFIX};
use super::credentials::{SECRET_ARN, WECOM_WEBHOOK_KEY};
use super::sync::{
    AWS_ENDPOINT_URL_S3, DEFAULT_CONCURRENCY, DEFAULT_PART_SIZE_MIB, OSS_PREFIX,
    S3_FORCE_PATH_STYLE, SYNC_CONCURRENCY, SYNC_PART_SIZE_MIB,
};
use super::{ConfigError, Lookup, flag, optional, parsed, prefix, required};
use crate::aws::export_id;
use crate::aws::rds::Source;
use crate::jobs::export_poll::{DEFAULT_STUCK_AFTER, ExportPollConfig};
use crate::jobs::export_start::{DEFAULT_S3_PREFIX, ExportStartConfig, MAX_CONCURRENT_EXPORTS};
use crate::jobs::sync::SyncSettings;
use crate::oss::OssConfig;
use crate::secret::{AliyunCredentials, Secret};
use crate::storage::s3::S3ClientOptions;
use crate::validate::snapshot::{DEFAULT_MAX_AGE, SnapshotPolicy};

pub const RDS_SOURCES: &str = "RDS_SOURCES";
pub const EXPORT_BUCKET: &str = "EXPORT_BUCKET";
pub const EXPORT_PREFIX: &str = "EXPORT_PREFIX";
pub const EXPORT_IAM_ROLE_ARN: &str = "EXPORT_IAM_ROLE_ARN";
pub const EXPORT_KMS_KEY_ID: &str = "EXPORT_KMS_KEY_ID";
pub const EXPORT_ONLY: &str = "EXPORT_ONLY";
pub const EXPORT_ID_PREFIX: &str = "EXPORT_ID_PREFIX";
pub const EXPORT_MAX_CONCURRENT: &str = "EXPORT_MAX_CONCURRENT";
pub const SNAPSHOT_MAX_AGE_HOURS: &str = "SNAPSHOT_MAX_AGE_HOURS";
pub const SNAPSHOT_REQUIRE_ENCRYPTION: &str = "SNAPSHOT_REQUIRE_ENCRYPTION";
pub const EXPORT_STUCK_AFTER_HOURS: &str = "EXPORT_STUCK_AFTER_HOURS";
pub const AWS_ENDPOINT_URL_RDS: &str = "AWS_ENDPOINT_URL_RDS";

/// The folder under the state prefix that contains the export transition markers.
pub const EXPORT_MARKER_FOLDER: &str = "exports";

/// How to reach RDS, beyond what `aws_config` reads from the environment.
#[derive(Debug, Clone, Default)]
pub struct RdsClientOptions {
    /// Overrides the endpoint, e.g. the scripted RDS fake or moto on 127.0.0.1.
    pub endpoint_url: Option<String>,
}

/// Everything `rds-export-start` reads at cold start.
#[derive(Debug, Clone)]
pub struct ExportStartFunctionConfig {
    pub job: ExportStartConfig,
    pub rds: RdsClientOptions,
    pub s3: S3ClientOptions,
}

impl ExportStartFunctionConfig {
    /// Reads the sources, the export destination, the role and key, and the snapshot rules.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first variable that is missing or invalid.
    pub fn from_env(lookup: Lookup<'_>) -> Result<Self, ConfigError> {
        let sources = parse_sources(&required(
            lookup,
            RDS_SOURCES,
            "set it to a comma-separated list such as instance:prod-db,cluster:aurora-1",
        )?)?;
        let iam_role_arn = required(
            lookup,
            EXPORT_IAM_ROLE_ARN,
            "set it to the ARN of the role that RDS assumes to write the export to S3",
        )?;
        if !iam_role_arn.starts_with("arn:") {
            return Err(invalid(
                EXPORT_IAM_ROLE_ARN,
                iam_role_arn,
                "expected an IAM role ARN",
            ));
        }
        let kms_key_id = required(
            lookup,
            EXPORT_KMS_KEY_ID,
            "set it to the KMS key ARN or id that encrypts the export; RDS requires one",
        )?;
        let export_only = optional(lookup, EXPORT_ONLY)
            .map(|list| {
                list.split(',')
                    .map(str::trim)
                    .filter(|entry| !entry.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let max_age_hours: i64 = parsed(
            lookup,
            SNAPSHOT_MAX_AGE_HOURS,
            DEFAULT_MAX_AGE.num_hours(),
            "a whole number of hours",
        )?;
        if max_age_hours < 1 {
            return Err(invalid(
                SNAPSHOT_MAX_AGE_HOURS,
                max_age_hours.to_string(),
                "expected at least 1 hour",
            ));
        }
        let max_concurrent_exports: usize = parsed(
            lookup,
            EXPORT_MAX_CONCURRENT,
            MAX_CONCURRENT_EXPORTS,
            "a whole number of exports",
        )?;
        if !(1..=MAX_CONCURRENT_EXPORTS).contains(&max_concurrent_exports) {
            return Err(invalid(
                EXPORT_MAX_CONCURRENT,
                max_concurrent_exports.to_string(),
                "expected 1 to 5, the number of exports RDS runs at once per account",
            ));
        }
        let job = ExportStartConfig {
            sources,
            s3_bucket: export_bucket(lookup)?,
            s3_prefix: export_prefix(lookup)?,
            iam_role_arn,
            kms_key_id,
            export_only,
            id_prefix: id_prefix(lookup),
            policy: SnapshotPolicy {
                max_age: Duration::hours(max_age_hours),
                require_encryption: flag(lookup, SNAPSHOT_REQUIRE_ENCRYPTION)?,
            },
            max_concurrent_exports,
        };
        Ok(Self {
            job,
            rds: rds_options(lookup),
            s3: s3_options(lookup)?,
        })
    }
}

/// Everything `rds-export-poll` reads at cold start. `Debug` leaves credentials out.
#[derive(Debug, Clone)]
pub struct ExportPollFunctionConfig {
    /// The bucket that receives the exports and contains the state markers.
    pub bucket: String,
    pub job: ExportPollConfig,
    /// Copy settings of the reconciliation: `<EXPORT_PREFIX>/` in S3 maps to `OSS_PREFIX`.
    pub sync: SyncSettings,
    pub oss: OssConfig,
    pub rds: RdsClientOptions,
    pub s3: S3ClientOptions,
}

impl ExportPollFunctionConfig {
    /// Reads the bucket, prefixes, stuck limit and the OSS destination, with the Aliyun
    /// credentials already loaded.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first variable that is missing or invalid.
    pub fn from_env(
        lookup: Lookup<'_>,
        credentials: AliyunCredentials,
    ) -> Result<Self, ConfigError> {
        let bucket = export_bucket(lookup)?;
        let s3_prefix = export_prefix(lookup)?;
        let stuck_after_hours: i64 = parsed(
            lookup,
            EXPORT_STUCK_AFTER_HOURS,
            DEFAULT_STUCK_AFTER.num_hours(),
            "a whole number of hours",
        )?;
        if stuck_after_hours < 1 {
            return Err(invalid(
                EXPORT_STUCK_AFTER_HOURS,
                stuck_after_hours.to_string(),
                "expected at least 1 hour",
            ));
        }
        let state_prefix = prefix(lookup, STATE_PREFIX, DEFAULT_STATE_PREFIX)?;
        let job = ExportPollConfig {
            id_prefix: id_prefix(lookup),
            marker_prefix: format!("{state_prefix}{EXPORT_MARKER_FOLDER}"),
            default_s3_prefix: s3_prefix.clone(),
            stuck_after: Duration::hours(stuck_after_hours),
        };

        let part_size_mib: u64 = parsed(
            lookup,
            SYNC_PART_SIZE_MIB,
            DEFAULT_PART_SIZE_MIB,
            "a whole number of MiB",
        )?;
        if !(1..=5 * 1024).contains(&part_size_mib) {
            return Err(invalid(
                SYNC_PART_SIZE_MIB,
                part_size_mib.to_string(),
                "expected 1 to 5120 MiB",
            ));
        }
        let concurrency: usize = parsed(
            lookup,
            SYNC_CONCURRENCY,
            DEFAULT_CONCURRENCY,
            "a whole number of parts",
        )?;
        if !(1..=64).contains(&concurrency) {
            return Err(invalid(
                SYNC_CONCURRENCY,
                concurrency.to_string(),
                "expected 1 to 64 parts in flight",
            ));
        }
        let sync = SyncSettings {
            source_bucket: Some(bucket.clone()),
            source_prefix: format!("{s3_prefix}/"),
            target_prefix: prefix(lookup, OSS_PREFIX, "iotdb-backup/mysql/")?,
            part_size: part_size_mib * 1024 * 1024,
            concurrency,
            ..SyncSettings::default()
        };
        Ok(Self {
            bucket,
            job,
            sync,
            oss: OssConfig::from_env_with_credentials(lookup, credentials)?,
            rds: rds_options(lookup),
            s3: s3_options(lookup)?,
        })
    }
}

/// Parses `instance:<id>` and `cluster:<id>` entries separated by commas. A bare id counts as
/// an instance.
///
/// # Errors
/// [`ConfigError::Invalid`] naming `RDS_SOURCES` for an empty list, an unknown kind or an empty id.
pub fn parse_sources(list: &str) -> Result<Vec<Source>, ConfigError> {
    let mut sources = Vec::new();
    for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
        let (kind, id) = entry.split_once(':').unwrap_or(("instance", entry));
        let id = id.trim();
        if id.is_empty() {
            return Err(invalid(
                RDS_SOURCES,
                list.to_string(),
                "an entry has no identifier",
            ));
        }
        let source = match kind.trim().to_ascii_lowercase().as_str() {
            "instance" => Source::Instance(id.to_string()),
            "cluster" => Source::Cluster(id.to_string()),
            other => {
                let reason = format!("source kind {other} is neither instance nor cluster");
                return Err(invalid(RDS_SOURCES, list.to_string(), &reason));
            }
        };
        if !sources.contains(&source) {
            sources.push(source);
        }
    }
    if sources.is_empty() {
        return Err(invalid(
            RDS_SOURCES,
            list.to_string(),
            "expected at least one source",
        ));
    }
    Ok(sources)
}

/// Reads the WeCom webhook key of a function that needs no Aliyun credentials: from
/// `WECOM_WEBHOOK_KEY`, else from the secret named by `ALIYUN_CREDENTIALS_SECRET_ARN` when set.
/// `None` means alerts are only logged.
///
/// # Errors
/// The [`ConfigError`] of reading the secret.
pub async fn load_webhook_key(
    lookup: Lookup<'_>,
    sdk_config: &aws_config::SdkConfig,
) -> Result<Option<Secret>, ConfigError> {
    if let Some(key) = optional(lookup, WECOM_WEBHOOK_KEY) {
        return Ok(Some(Secret::new(key)));
    }
    if optional(lookup, SECRET_ARN).is_none() {
        return Ok(None);
    }
    Ok(super::load_secrets(lookup, sdk_config)
        .await?
        .wecom_webhook_key)
}

fn export_bucket(lookup: Lookup<'_>) -> Result<String, ConfigError> {
    required(
        lookup,
        EXPORT_BUCKET,
        "set it to the S3 bucket that receives the RDS exports",
    )
}

/// Reads the export key prefix: RDS wants it without a trailing `/` and rejects `:`.
fn export_prefix(lookup: Lookup<'_>) -> Result<String, ConfigError> {
    let value = optional(lookup, EXPORT_PREFIX).unwrap_or_else(|| DEFAULT_S3_PREFIX.to_string());
    let trimmed = value.trim_end_matches('/');
    if trimmed.is_empty()
        || trimmed.starts_with('/')
        || trimmed.contains(':')
        || trimmed.contains("//")
        || trimmed.chars().any(char::is_control)
    {
        return Err(invalid(
            EXPORT_PREFIX,
            value.clone(),
            "expected a key prefix such as mysql, without a leading slash or a colon",
        ));
    }
    Ok(trimmed.to_string())
}

fn id_prefix(lookup: Lookup<'_>) -> String {
    let value =
        optional(lookup, EXPORT_ID_PREFIX).unwrap_or_else(|| export_id::DEFAULT_PREFIX.into());
    export_id::normalize_prefix(&value)
}

fn rds_options(lookup: Lookup<'_>) -> RdsClientOptions {
    RdsClientOptions {
        endpoint_url: optional(lookup, AWS_ENDPOINT_URL_RDS),
    }
}

fn s3_options(lookup: Lookup<'_>) -> Result<S3ClientOptions, ConfigError> {
    Ok(S3ClientOptions {
        endpoint_url: optional(lookup, AWS_ENDPOINT_URL_S3),
        force_path_style: flag(lookup, S3_FORCE_PATH_STYLE)?,
    })
}

fn invalid(name: &'static str, value: String, reason: &str) -> ConfigError {
    ConfigError::Invalid {
        name,
        value,
        reason: reason.to_string(),
    }
}

#[cfg(test)]
#[path = "export_tests.rs"]
mod tests;
