//! The source of the Aliyun AccessKey pair and the WeCom key: the environment, or one
//! Secrets Manager secret named by ARN.

use super::{ConfigError, Lookup, optional};
use crate::secret::{AliyunCredentials, Secret};
use crate::secrets::{BridgeSecrets, load_aliyun_credentials};

pub const SECRET_ARN: &str = "ALIYUN_CREDENTIALS_SECRET_ARN";
pub const ACCESS_KEY_ID: &str = "ALIBABA_CLOUD_ACCESS_KEY_ID";
pub const ACCESS_KEY_SECRET: &str = "ALIBABA_CLOUD_ACCESS_KEY_SECRET";
pub const SECURITY_TOKEN: &str = "ALIBABA_CLOUD_SECURITY_TOKEN";
pub const WECOM_WEBHOOK_KEY: &str = "WECOM_WEBHOOK_KEY";

/// The source of the credentials.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CredentialsSource {
    Environment(BridgeSecrets),
    SecretsManager { secret_arn: String },
}

impl CredentialsSource {
    /// Chooses the source: the secret when `ALIYUN_CREDENTIALS_SECRET_ARN` is set, else the
    /// `ALIBABA_CLOUD_*` variables.
    ///
    /// # Errors
    /// [`ConfigError::Missing`] when neither is set or the pair is incomplete.
    pub fn from_env(lookup: Lookup<'_>) -> Result<Self, ConfigError> {
        if let Some(secret_arn) = optional(lookup, SECRET_ARN) {
            if !secret_arn.starts_with("arn:") {
                return Err(ConfigError::Invalid {
                    name: SECRET_ARN,
                    value: secret_arn,
                    reason: "expected a Secrets Manager ARN such as arn:aws:secretsmanager:…"
                        .into(),
                });
            }
            return Ok(Self::SecretsManager { secret_arn });
        }
        let hint = "set ALIYUN_CREDENTIALS_SECRET_ARN, or both ALIBABA_CLOUD_ACCESS_KEY_ID and ALIBABA_CLOUD_ACCESS_KEY_SECRET";
        let access_key_id = optional(lookup, ACCESS_KEY_ID).ok_or(ConfigError::Missing {
            name: ACCESS_KEY_ID,
            hint,
        })?;
        let access_key_secret =
            optional(lookup, ACCESS_KEY_SECRET).ok_or(ConfigError::Missing {
                name: ACCESS_KEY_SECRET,
                hint,
            })?;
        Ok(Self::Environment(BridgeSecrets {
            aliyun: AliyunCredentials {
                access_key_id,
                access_key_secret: Secret::new(access_key_secret),
                security_token: optional(lookup, SECURITY_TOKEN).map(Secret::new),
            },
            wecom_webhook_key: optional(lookup, WECOM_WEBHOOK_KEY).map(Secret::new),
        }))
    }
}

/// Reads the credentials from their source. A WeCom key in the environment takes precedence
/// over one in the secret.
///
/// # Errors
/// The configuration error, or the [`crate::secrets::SecretsError`] of reading the secret.
pub async fn load_secrets(
    lookup: Lookup<'_>,
    sdk_config: &aws_config::SdkConfig,
) -> Result<BridgeSecrets, ConfigError> {
    match CredentialsSource::from_env(lookup)? {
        CredentialsSource::Environment(secrets) => Ok(secrets),
        CredentialsSource::SecretsManager { secret_arn } => {
            let client = aws_sdk_secretsmanager::Client::new(sdk_config);
            let mut secrets = load_aliyun_credentials(&client, &secret_arn).await?;
            if let Some(key) = optional(lookup, WECOM_WEBHOOK_KEY) {
                secrets.wecom_webhook_key = Some(Secret::new(key));
            }
            Ok(secrets)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::test_env::lookup;

    #[test]
    fn secret_arn_takes_precedence_over_environment_keys() {
        let env = lookup(&[
            (
                SECRET_ARN,
                "arn:aws:secretsmanager:us-east-1:123456789012:secret:aliyun",
            ),
            (ACCESS_KEY_ID, "LTAIxxx"),
            (ACCESS_KEY_SECRET, "secret"),
        ]);
        let source = CredentialsSource::from_env(&env).unwrap();
        assert!(matches!(source, CredentialsSource::SecretsManager { .. }));
    }

    #[test]
    fn environment_keys_are_read_with_optional_token() {
        let env = lookup(&[
            (ACCESS_KEY_ID, "LTAIxxx"),
            (ACCESS_KEY_SECRET, "secret"),
            (SECURITY_TOKEN, "token"),
        ]);
        let CredentialsSource::Environment(secrets) = CredentialsSource::from_env(&env).unwrap()
        else {
            panic!("expected environment credentials");
        };
        assert_eq!(secrets.aliyun.access_key_id, "LTAIxxx");
        assert_eq!(secrets.aliyun.access_key_secret.expose(), "secret");
        assert_eq!(
            secrets.aliyun.security_token.as_ref().map(Secret::expose),
            Some("token")
        );
    }

    #[test]
    fn missing_secret_half_names_the_variable() {
        let env = lookup(&[(ACCESS_KEY_ID, "LTAIxxx")]);
        let error = CredentialsSource::from_env(&env).unwrap_err();
        assert!(error.to_string().contains(ACCESS_KEY_SECRET));
    }

    #[test]
    fn secret_arn_that_is_not_an_arn_is_rejected() {
        let env = lookup(&[(SECRET_ARN, "aliyun-keys")]);
        let error = CredentialsSource::from_env(&env).unwrap_err();
        assert!(
            error
                .to_string()
                .contains("ALIYUN_CREDENTIALS_SECRET_ARN=aliyun-keys")
        );
    }
}
