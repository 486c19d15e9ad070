//! Configuration of the `api` function.
//!
//! The API reports the settings of every other function and queries the same clouds. So it reads
//! their variables with their own readers: `aliyun-backup-pull` (`PULL_BUCKET`, `RDS_INSTANCE_IDS`,
//! `ALIYUN_*`, `BACKUP_*`, `DOWNLOAD_*`, `PULL_*`), `rds-export-start` (`RDS_SOURCES`,
//! `EXPORT_*`, `SNAPSHOT_*`), `rds-export-poll` (`EXPORT_STUCK_AFTER_HOURS`, `STATE_PREFIX`) and
//! `s3-oss-sync` (`SOURCE_BUCKET`, `SYNC_*`, `OSS_*`), plus the credentials
//! (`ALIYUN_CREDENTIALS_SECRET_ARN` or `ALIBABA_CLOUD_*`, `WECOM_WEBHOOK_KEY`) and the variables
//! below, which only the API reads.

use super::alerting::{ALERT_RULES, ALERT_RULES_S3_KEY, WECOM_BASE_URL};
use super::credentials::{SECRET_ARN, WECOM_WEBHOOK_KEY};
use super::{
    ConfigError, ExportPollFunctionConfig, ExportStartFunctionConfig, Lookup, PullConfig,
    SyncConfig, optional, required,
};
use crate::secret::{AliyunCredentials, Secret};
use crate::secrets::BridgeSecrets;

/// The name or ARN of the `aliyun-backup-pull` function that `POST .../pull` invokes.
pub const PULL_FUNCTION_NAME: &str = "PULL_FUNCTION_NAME";
/// Overrides the Lambda endpoint, e.g. a fake Invoke endpoint on 127.0.0.1 in tests.
pub const AWS_ENDPOINT_URL_LAMBDA: &str = "AWS_ENDPOINT_URL_LAMBDA";
/// The version string that `GET /health` reports as the build, e.g. a commit id.
pub const API_BUILD: &str = "API_BUILD";

/// Everything the `api` function reads at cold start. `Debug` leaves every secret out, because
/// each secret is a [`Secret`].
#[derive(Debug, Clone)]
pub struct ApiConfig {
    pub pull: PullConfig,
    pub export_start: ExportStartFunctionConfig,
    pub export_poll: ExportPollFunctionConfig,
    pub sync: SyncConfig,
    /// The AccessKey pair for the RDS API and OSS.
    pub aliyun: AliyunCredentials,
    /// The function that `POST .../pull` invokes with `InvocationType=Event`.
    pub pull_function_name: String,
    pub lambda_endpoint_url: Option<String>,
    /// `None` when no robot is configured. The API only reports whether a key is set.
    pub wecom_webhook_key: Option<Secret>,
    pub wecom_base_url: Option<String>,
    /// The secret that contains the Aliyun keys, when they do not come from the environment.
    pub credentials_secret_arn: Option<String>,
    /// `ALERT_RULES` and `ALERT_RULES_S3_KEY`, shown by `GET /config` because they contain no
    /// secret.
    pub alert_rules: Option<String>,
    pub alert_rules_s3_key: Option<String>,
    /// The build that `GET /health` reports, or `"unknown"` when `API_BUILD` is unset.
    pub build: String,
}

impl ApiConfig {
    /// Reads the configuration, with the credentials already loaded (see
    /// [`super::load_secrets`]).
    ///
    /// # Errors
    /// A [`ConfigError`] naming the first variable that is missing or invalid, as each function's
    /// own reader would report it.
    pub fn from_env(lookup: Lookup<'_>, secrets: BridgeSecrets) -> Result<Self, ConfigError> {
        let pull = PullConfig::from_env(lookup)?;
        let export_start = ExportStartFunctionConfig::from_env(lookup)?;
        let export_poll = ExportPollFunctionConfig::from_env(lookup, secrets.aliyun.clone())?;
        let sync = SyncConfig::from_env(lookup, secrets.aliyun.clone())?;
        let pull_function_name = required(
            lookup,
            PULL_FUNCTION_NAME,
            "set it to the name or ARN of the aliyun-backup-pull function",
        )?;
        let wecom_webhook_key = optional(lookup, WECOM_WEBHOOK_KEY)
            .map(Secret::new)
            .or(secrets.wecom_webhook_key);
        Ok(Self {
            pull,
            export_start,
            export_poll,
            sync,
            aliyun: secrets.aliyun,
            pull_function_name,
            lambda_endpoint_url: optional(lookup, AWS_ENDPOINT_URL_LAMBDA),
            wecom_webhook_key,
            wecom_base_url: optional(lookup, WECOM_BASE_URL),
            credentials_secret_arn: optional(lookup, SECRET_ARN),
            alert_rules: optional(lookup, ALERT_RULES),
            alert_rules_s3_key: optional(lookup, ALERT_RULES_S3_KEY),
            build: optional(lookup, API_BUILD).unwrap_or_else(|| "unknown".to_string()),
        })
    }

    /// Reads the credentials from their source, then the configuration.
    ///
    /// # Errors
    /// The [`ConfigError`] of the credentials or of [`ApiConfig::from_env`].
    pub async fn load(
        lookup: Lookup<'_>,
        sdk_config: &aws_config::SdkConfig,
    ) -> Result<Self, ConfigError> {
        let secrets = super::load_secrets(lookup, sdk_config).await?;
        Self::from_env(lookup, secrets)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_env::lookup;

    const BASE: [(&str, &str); 12] = [
        ("PULL_BUCKET", "backups"),
        ("RDS_INSTANCE_IDS", "rm-a"),
        ("RDS_SOURCES", "instance:prod-db"),
        ("EXPORT_BUCKET", "exports"),
        (
            "EXPORT_IAM_ROLE_ARN",
            "arn:aws:iam::123456789012:role/rds-export",
        ),
        (
            "EXPORT_KMS_KEY_ID",
            "arn:aws:kms:us-east-1:123456789012:key/abc",
        ),
        ("SOURCE_BUCKET", "exports"),
        ("OSS_ENDPOINT", "oss-cn-hangzhou.aliyuncs.com"),
        ("OSS_REGION", "cn-hangzhou"),
        ("OSS_BUCKET", "backups"),
        (PULL_FUNCTION_NAME, "aliyun-backup-pull"),
        (WECOM_WEBHOOK_KEY, "api-config-wecom-key"),
    ];

    fn secrets() -> BridgeSecrets {
        BridgeSecrets {
            aliyun: AliyunCredentials {
                access_key_id: "LTAI-test".into(),
                access_key_secret: Secret::new("api-config-secret"),
                security_token: None,
            },
            wecom_webhook_key: None,
        }
    }

    #[test]
    fn reads_every_function_configuration() {
        let config = ApiConfig::from_env(&lookup(&BASE), secrets()).unwrap();
        assert_eq!(config.pull.bucket, "backups");
        assert_eq!(config.export_start.job.s3_bucket, "exports");
        assert_eq!(config.export_poll.oss.bucket, "backups");
        assert_eq!(config.sync.source_bucket, "exports");
        assert_eq!(config.pull_function_name, "aliyun-backup-pull");
        assert_eq!(config.build, "unknown");
        assert_eq!(
            config.wecom_webhook_key.as_ref().map(Secret::expose),
            Some("api-config-wecom-key")
        );
    }

    #[test]
    fn missing_pull_function_name_is_named() {
        let pairs: Vec<_> = BASE
            .iter()
            .copied()
            .filter(|(name, _)| *name != PULL_FUNCTION_NAME)
            .collect();
        let error = ApiConfig::from_env(&lookup(&pairs), secrets()).unwrap_err();
        assert!(error.to_string().contains(PULL_FUNCTION_NAME));
    }

    #[test]
    fn debug_output_leaves_secrets_out() {
        let config = ApiConfig::from_env(&lookup(&BASE), secrets()).unwrap();
        let printed = format!("{config:?}");
        assert!(!printed.contains("api-config-secret"));
        assert!(!printed.contains("api-config-wecom-key"));
    }
}
