//! Configuration of `s3-oss-sync`.

use super::{ConfigError, Lookup, flag, parsed, prefix, required};
use crate::jobs::sync::SyncSettings;
use crate::oss::OssConfig;
use crate::secret::AliyunCredentials;
use crate::storage::s3::S3ClientOptions;

pub const SOURCE_BUCKET: &str = "SOURCE_BUCKET";
pub const SYNC_SOURCE_PREFIX: &str = "SYNC_SOURCE_PREFIX";
pub const OSS_PREFIX: &str = "OSS_PREFIX";
pub const SYNC_PART_SIZE_MIB: &str = "SYNC_PART_SIZE_MIB";
pub const SYNC_CONCURRENCY: &str = "SYNC_CONCURRENCY";
pub const AWS_ENDPOINT_URL_S3: &str = "AWS_ENDPOINT_URL_S3";
pub const S3_FORCE_PATH_STYLE: &str = "S3_FORCE_PATH_STYLE";

/// Default part size: with 4 parts in flight, a copy keeps about 40 MiB of body in memory.
pub const DEFAULT_PART_SIZE_MIB: u64 = 8;
pub const DEFAULT_CONCURRENCY: usize = 4;

/// Everything `s3-oss-sync` reads at cold start. `Debug` leaves credentials out.
#[derive(Debug, Clone)]
pub struct SyncConfig {
    /// The S3 bucket whose events are copied; events naming another bucket are skipped.
    pub source_bucket: String,
    pub settings: SyncSettings,
    pub oss: OssConfig,
    pub s3: S3ClientOptions,
}

impl SyncConfig {
    /// Reads the configuration, with the Aliyun credentials already loaded.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first variable that is missing or invalid.
    pub fn from_env(
        lookup: Lookup<'_>,
        credentials: AliyunCredentials,
    ) -> Result<Self, ConfigError> {
        let source_bucket = required(
            lookup,
            SOURCE_BUCKET,
            "set it to the S3 bucket that receives the RDS exports",
        )?;
        let source_prefix = prefix(lookup, SYNC_SOURCE_PREFIX, "mysql/")?;
        let target_prefix = prefix(lookup, OSS_PREFIX, "iotdb-backup/mysql/")?;
        let part_size_mib: u64 = parsed(
            lookup,
            SYNC_PART_SIZE_MIB,
            DEFAULT_PART_SIZE_MIB,
            "a whole number of MiB",
        )?;
        if !(1..=5 * 1024).contains(&part_size_mib) {
            return Err(ConfigError::Invalid {
                name: SYNC_PART_SIZE_MIB,
                value: part_size_mib.to_string(),
                reason: "expected 1 to 5120 MiB".into(),
            });
        }
        let concurrency: usize = parsed(
            lookup,
            SYNC_CONCURRENCY,
            DEFAULT_CONCURRENCY,
            "a whole number of parts",
        )?;
        if !(1..=64).contains(&concurrency) {
            return Err(ConfigError::Invalid {
                name: SYNC_CONCURRENCY,
                value: concurrency.to_string(),
                reason: "expected 1 to 64 parts in flight".into(),
            });
        }
        let oss = OssConfig::from_env_with_credentials(lookup, credentials)?;
        let s3 = S3ClientOptions {
            endpoint_url: super::optional(lookup, AWS_ENDPOINT_URL_S3),
            force_path_style: flag(lookup, S3_FORCE_PATH_STYLE)?,
        };
        let settings = SyncSettings {
            source_prefix,
            target_prefix,
            source_bucket: Some(source_bucket.clone()),
            part_size: part_size_mib * 1024 * 1024,
            concurrency,
            ..SyncSettings::default()
        };
        Ok(Self {
            source_bucket,
            settings,
            oss,
            s3,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_env::lookup;
    use crate::secret::Secret;

    fn credentials() -> AliyunCredentials {
        AliyunCredentials {
            access_key_id: "LTAI-test".into(),
            access_key_secret: Secret::new("sync-config-secret"),
            security_token: None,
        }
    }

    const BASE: [(&str, &str); 4] = [
        (SOURCE_BUCKET, "exports"),
        ("OSS_ENDPOINT", "oss-cn-hangzhou.aliyuncs.com"),
        ("OSS_REGION", "cn-hangzhou"),
        ("OSS_BUCKET", "backups"),
    ];

    #[test]
    fn defaults_apply_when_only_required_variables_are_set() {
        let config = SyncConfig::from_env(&lookup(&BASE), credentials()).unwrap();
        assert_eq!(config.source_bucket, "exports");
        assert_eq!(config.settings.source_prefix, "mysql/");
        assert_eq!(config.settings.target_prefix, "iotdb-backup/mysql/");
        assert_eq!(config.settings.part_size, 8 * 1024 * 1024);
        assert_eq!(config.settings.concurrency, 4);
        assert!(!config.s3.force_path_style);
    }

    #[test]
    fn missing_source_bucket_is_named() {
        let error = SyncConfig::from_env(&lookup(&BASE[1..]), credentials()).unwrap_err();
        assert!(error.to_string().contains("SOURCE_BUCKET"));
    }

    #[test]
    fn endpoint_containing_the_bucket_is_rejected() {
        let mut pairs = BASE.to_vec();
        pairs[1] = ("OSS_ENDPOINT", "backups.oss-cn-hangzhou.aliyuncs.com");
        let error = SyncConfig::from_env(&lookup(&pairs), credentials()).unwrap_err();
        assert!(error.to_string().contains("OSS_ENDPOINT"));
    }

    #[test]
    fn zero_concurrency_is_rejected() {
        let mut pairs = BASE.to_vec();
        pairs.push((SYNC_CONCURRENCY, "0"));
        let error = SyncConfig::from_env(&lookup(&pairs), credentials()).unwrap_err();
        assert!(error.to_string().contains("SYNC_CONCURRENCY=0"));
    }

    #[test]
    fn debug_output_leaves_the_secret_out() {
        let config = SyncConfig::from_env(&lookup(&BASE), credentials()).unwrap();
        assert!(!format!("{config:?}").contains("sync-config-secret"));
    }
}
