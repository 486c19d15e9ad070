//! Configuration of `aliyun-backup-pull`.

use std::time::Duration;

use chrono::TimeDelta;

use super::sync::{AWS_ENDPOINT_URL_S3, S3_FORCE_PATH_STYLE, SYNC_SOURCE_PREFIX};
use super::{ConfigError, Lookup, flag, optional, parsed, prefix, required};
use crate::aliyun::{Endpoint, RpcConfig};
use crate::jobs::pull::{DEFAULT_PULL_PREFIX, PullSettings};
use crate::storage::http::HttpSourceConfig;
use crate::storage::s3::S3ClientOptions;
use crate::transfer::{PartLimits, TransferSettings};
use crate::validate::backup::{DownloadNetwork, ValidationSettings};

pub const PULL_BUCKET: &str = "PULL_BUCKET";
pub const PULL_PREFIX: &str = "PULL_PREFIX";
pub const RDS_INSTANCE_IDS: &str = "RDS_INSTANCE_IDS";
pub const ALIYUN_REGION: &str = "ALIYUN_REGION";
pub const ALIYUN_RDS_ENDPOINT: &str = "ALIYUN_RDS_ENDPOINT";
pub const ALIYUN_RDS_ALLOW_HTTP: &str = "ALIYUN_RDS_ALLOW_HTTP";
pub const PULL_LOOKBACK_HOURS: &str = "PULL_LOOKBACK_HOURS";
pub const BACKUP_MAX_AGE_HOURS: &str = "BACKUP_MAX_AGE_HOURS";
pub const BACKUP_MIN_SIZE_PERCENT: &str = "BACKUP_MIN_SIZE_PERCENT";
pub const DOWNLOAD_NETWORK: &str = "DOWNLOAD_NETWORK";
pub const DOWNLOAD_ALLOWED_HOSTS: &str = "DOWNLOAD_ALLOWED_HOSTS";
pub const DOWNLOAD_ALLOW_HTTP: &str = "DOWNLOAD_ALLOW_HTTP";
pub const PULL_PART_SIZE_MIB: &str = "PULL_PART_SIZE_MIB";
pub const PULL_CONCURRENCY: &str = "PULL_CONCURRENCY";
pub const PULL_DEADLINE_MARGIN_SECONDS: &str = "PULL_DEADLINE_MARGIN_SECONDS";
/// Set by Lambda; the function invokes itself by this name to continue a long pull.
pub const AWS_LAMBDA_FUNCTION_NAME: &str = "AWS_LAMBDA_FUNCTION_NAME";

/// Default part size, the engine's: 4 parts in flight and one being filled hold about 80 MiB of
/// body in memory. Parts grow for a backup that would need more than 10,000 of them.
pub const DEFAULT_PART_SIZE_MIB: u64 = 16;
pub const DEFAULT_CONCURRENCY: usize = 4;
pub const DEFAULT_DEADLINE_MARGIN_SECONDS: u64 = 60;
pub const DEFAULT_LOOKBACK_HOURS: i64 = 72;

/// Everything `aliyun-backup-pull` reads at cold start, except credentials. Holds no secret.
#[derive(Debug, Clone)]
pub struct PullConfig {
    /// The S3 bucket that receives the backups.
    pub bucket: String,
    pub settings: PullSettings,
    pub rds: RpcConfig,
    pub download: HttpSourceConfig,
    pub s3: S3ClientOptions,
    /// The function's own name, for the asynchronous self-invoke; `None` outside Lambda.
    pub function_name: Option<String>,
}

impl PullConfig {
    /// Reads the configuration.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first variable that is missing or invalid, including a pull
    /// prefix that overlaps the sync prefix.
    pub fn from_env(lookup: Lookup<'_>) -> Result<Self, ConfigError> {
        let bucket = required(
            lookup,
            PULL_BUCKET,
            "set it to the S3 bucket that receives the Aliyun backups",
        )?;
        let pull_prefix = prefix(lookup, PULL_PREFIX, DEFAULT_PULL_PREFIX)?;
        let sync_prefix = prefix(lookup, SYNC_SOURCE_PREFIX, "mysql/")?;
        if pull_prefix.starts_with(&sync_prefix) || sync_prefix.starts_with(&pull_prefix) {
            return Err(ConfigError::Invalid {
                name: PULL_PREFIX,
                value: pull_prefix,
                reason: format!(
                    "overlaps {SYNC_SOURCE_PREFIX}={sync_prefix}, so pulled backups would be synced back to OSS; choose prefixes that do not contain each other"
                ),
            });
        }
        let instances = instance_ids(lookup)?;
        let lookback_hours: i64 = parsed(
            lookup,
            PULL_LOOKBACK_HOURS,
            DEFAULT_LOOKBACK_HOURS,
            "a whole number of hours",
        )?;
        in_range(PULL_LOOKBACK_HOURS, lookback_hours, 1, 24 * 60)?;
        let validation = validation_settings(lookup)?;

        let part_size_mib: u64 = parsed(
            lookup,
            PULL_PART_SIZE_MIB,
            DEFAULT_PART_SIZE_MIB,
            "a whole number of MiB",
        )?;
        in_range(PULL_PART_SIZE_MIB, part_size_mib, 5, 5 * 1024)?;
        let concurrency: usize = parsed(
            lookup,
            PULL_CONCURRENCY,
            DEFAULT_CONCURRENCY,
            "a whole number of parts",
        )?;
        in_range(PULL_CONCURRENCY, concurrency, 1, 64)?;
        let margin_seconds: u64 = parsed(
            lookup,
            PULL_DEADLINE_MARGIN_SECONDS,
            DEFAULT_DEADLINE_MARGIN_SECONDS,
            "a whole number of seconds",
        )?;

        let settings = PullSettings {
            instances,
            prefix: pull_prefix,
            lookback: TimeDelta::hours(lookback_hours),
            validation,
            transfer: TransferSettings {
                part_size: part_size_mib * 1024 * 1024,
                concurrency,
                limits: PartLimits::S3,
                ..TransferSettings::default()
            },
            deadline_margin: Duration::from_secs(margin_seconds),
            ..PullSettings::default()
        };
        Ok(Self {
            bucket,
            settings,
            rds: RpcConfig::rds(rds_endpoint(lookup)?),
            download: download_config(lookup)?,
            s3: S3ClientOptions {
                endpoint_url: optional(lookup, AWS_ENDPOINT_URL_S3),
                force_path_style: flag(lookup, S3_FORCE_PATH_STYLE)?,
            },
            function_name: optional(lookup, AWS_LAMBDA_FUNCTION_NAME),
        })
    }
}

fn in_range<T: PartialOrd + std::fmt::Display>(
    name: &'static str,
    value: T,
    min: T,
    max: T,
) -> Result<(), ConfigError> {
    if value < min || value > max {
        return Err(ConfigError::Invalid {
            name,
            value: value.to_string(),
            reason: format!("expected {min} to {max}"),
        });
    }
    Ok(())
}

fn instance_ids(lookup: Lookup<'_>) -> Result<Vec<String>, ConfigError> {
    let text = required(
        lookup,
        RDS_INSTANCE_IDS,
        "set it to the comma-separated ApsaraDB RDS instance ids to pull, such as rm-bp1abc",
    )?;
    let ids: Vec<String> = text
        .split(',')
        .map(str::trim)
        .filter(|id| !id.is_empty())
        .map(str::to_string)
        .collect();
    if ids.is_empty() || !ids.iter().all(|id| crate::jobs::pull::is_safe_id(id)) {
        return Err(ConfigError::Invalid {
            name: RDS_INSTANCE_IDS,
            value: text,
            reason: "expected instance ids such as rm-bp1abc,rm-bp2def without slashes".into(),
        });
    }
    Ok(ids)
}

fn validation_settings(lookup: Lookup<'_>) -> Result<ValidationSettings, ConfigError> {
    let max_age_hours: i64 = parsed(lookup, BACKUP_MAX_AGE_HOURS, 26, "a whole number of hours")?;
    in_range(BACKUP_MAX_AGE_HOURS, max_age_hours, 1, 24 * 60)?;
    let min_size_percent: u32 = parsed(lookup, BACKUP_MIN_SIZE_PERCENT, 50, "a whole percentage")?;
    in_range(BACKUP_MIN_SIZE_PERCENT, min_size_percent, 0, 100)?;
    let network = match optional(lookup, DOWNLOAD_NETWORK).as_deref() {
        None | Some("public") => DownloadNetwork::Public,
        Some("intranet") => DownloadNetwork::Intranet,
        Some(other) => {
            return Err(ConfigError::Invalid {
                name: DOWNLOAD_NETWORK,
                value: other.to_string(),
                reason: "expected public or intranet".into(),
            });
        }
    };
    Ok(ValidationSettings {
        max_age: TimeDelta::hours(max_age_hours),
        min_size_fraction: f64::from(min_size_percent) / 100.0,
        network,
    })
}

fn rds_endpoint(lookup: Lookup<'_>) -> Result<Endpoint, ConfigError> {
    let allow_http = flag(lookup, ALIYUN_RDS_ALLOW_HTTP)?;
    match optional(lookup, ALIYUN_RDS_ENDPOINT) {
        Some(text) => Endpoint::parse(&text, allow_http).map_err(|error| ConfigError::Invalid {
            name: ALIYUN_RDS_ENDPOINT,
            value: text,
            reason: error.to_string(),
        }),
        None => {
            let region = optional(lookup, ALIYUN_REGION);
            Endpoint::rds_for_region(region.as_deref()).map_err(|error| ConfigError::Invalid {
                name: ALIYUN_REGION,
                value: region.unwrap_or_default(),
                reason: error.to_string(),
            })
        }
    }
}

fn download_config(lookup: Lookup<'_>) -> Result<HttpSourceConfig, ConfigError> {
    let mut config = HttpSourceConfig {
        allow_plain_http: flag(lookup, DOWNLOAD_ALLOW_HTTP)?,
        ..HttpSourceConfig::default()
    };
    if let Some(hosts) = optional(lookup, DOWNLOAD_ALLOWED_HOSTS) {
        config.allowed_host_suffixes = hosts
            .split(',')
            .map(|host| host.trim().to_ascii_lowercase())
            .filter(|host| !host.is_empty())
            .collect();
        if config.allowed_host_suffixes.is_empty() {
            return Err(ConfigError::Invalid {
                name: DOWNLOAD_ALLOWED_HOSTS,
                value: hosts,
                reason: "expected host suffixes such as aliyuncs.com".into(),
            });
        }
    }
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_env::lookup;

    const BASE: [(&str, &str); 2] = [(PULL_BUCKET, "backups"), (RDS_INSTANCE_IDS, "rm-a, rm-b")];

    fn with(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut pairs = BASE.to_vec();
        pairs.extend_from_slice(extra);
        pairs
    }

    #[test]
    fn defaults_apply_when_only_required_variables_are_set() {
        let config = PullConfig::from_env(&lookup(&BASE)).unwrap();
        assert_eq!(config.bucket, "backups");
        assert_eq!(config.settings.instances, vec!["rm-a", "rm-b"]);
        assert_eq!(config.settings.prefix, "aliyun-rds/");
        assert_eq!(config.settings.transfer.part_size, 16 * 1024 * 1024);
        assert_eq!(config.settings.transfer.limits, PartLimits::S3);
        assert_eq!(config.settings.deadline_margin, Duration::from_secs(60));
        assert_eq!(config.settings.validation.max_age, TimeDelta::hours(26));
        assert_eq!(config.settings.validation.min_size_fraction, 0.5);
        assert_eq!(config.rds.endpoint.authority(), "rds.aliyuncs.com");
        assert_eq!(config.download.allowed_host_suffixes, vec!["aliyuncs.com"]);
        assert!(!config.download.allow_plain_http);
    }

    #[test]
    fn nested_pull_prefix_is_rejected() {
        let pairs = with(&[(PULL_PREFIX, "mysql/aliyun/")]);
        let error = PullConfig::from_env(&lookup(&pairs))
            .unwrap_err()
            .to_string();
        assert!(error.contains("PULL_PREFIX=mysql/aliyun/"), "{error}");
        assert!(error.contains("SYNC_SOURCE_PREFIX=mysql/"), "{error}");
    }

    #[test]
    fn sync_prefix_inside_pull_prefix_is_rejected() {
        let pairs = with(&[
            (PULL_PREFIX, "backups/"),
            (SYNC_SOURCE_PREFIX, "backups/mysql/"),
        ]);
        let error = PullConfig::from_env(&lookup(&pairs))
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("SYNC_SOURCE_PREFIX=backups/mysql/"),
            "{error}"
        );
    }

    #[test]
    fn sibling_prefixes_are_accepted() {
        let pairs = with(&[(PULL_PREFIX, "mysql-aliyun/")]);
        assert!(PullConfig::from_env(&lookup(&pairs)).is_ok());
    }

    #[test]
    fn missing_instance_ids_are_named() {
        let error = PullConfig::from_env(&lookup(&BASE[..1])).unwrap_err();
        assert!(error.to_string().contains(RDS_INSTANCE_IDS));
    }

    #[test]
    fn part_size_below_the_s3_minimum_is_rejected() {
        let pairs = with(&[(PULL_PART_SIZE_MIB, "4")]);
        let error = PullConfig::from_env(&lookup(&pairs)).unwrap_err();
        assert!(error.to_string().contains("PULL_PART_SIZE_MIB=4"));
    }

    #[test]
    fn other_region_gets_regional_endpoint() {
        let pairs = with(&[(ALIYUN_REGION, "eu-central-1")]);
        let config = PullConfig::from_env(&lookup(&pairs)).unwrap();
        assert_eq!(
            config.rds.endpoint.authority(),
            "rds.eu-central-1.aliyuncs.com"
        );
    }

    #[test]
    fn plain_http_endpoint_needs_the_flag() {
        let pairs = with(&[(ALIYUN_RDS_ENDPOINT, "http://127.0.0.1:9000")]);
        assert!(PullConfig::from_env(&lookup(&pairs)).is_err());
        let pairs = with(&[
            (ALIYUN_RDS_ENDPOINT, "http://127.0.0.1:9000"),
            (ALIYUN_RDS_ALLOW_HTTP, "true"),
        ]);
        assert!(PullConfig::from_env(&lookup(&pairs)).is_ok());
    }

    #[test]
    fn download_settings_are_read() {
        let pairs = with(&[
            (DOWNLOAD_NETWORK, "intranet"),
            (DOWNLOAD_ALLOWED_HOSTS, "aliyuncs.com, localhost"),
            (DOWNLOAD_ALLOW_HTTP, "true"),
        ]);
        let config = PullConfig::from_env(&lookup(&pairs)).unwrap();
        assert_eq!(
            config.settings.validation.network,
            DownloadNetwork::Intranet
        );
        assert_eq!(
            config.download.allowed_host_suffixes,
            vec!["aliyuncs.com", "localhost"]
        );
        assert!(config.download.allow_plain_http);
        let pairs = with(&[(DOWNLOAD_NETWORK, "vpc")]);
        assert!(PullConfig::from_env(&lookup(&pairs)).is_err());
    }
}
