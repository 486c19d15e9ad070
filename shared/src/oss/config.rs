//! Configuration of one OSS bucket: endpoint, region, bucket, credentials and HTTP timeouts,
//! read once from the environment and validated as a whole.

use std::net::SocketAddr;
use std::time::Duration;

use thiserror::Error;

use super::endpoint::{EndpointError, EndpointOptions, OssEndpoint, is_region_id};
use crate::secret::{AliyunCredentials, Secret};

/// Environment variables read by [`OssConfig::from_env`].
pub mod vars {
    /// The endpoint host, such as `oss-cn-hangzhou.aliyuncs.com`, or a custom domain.
    pub const ENDPOINT: &str = "OSS_ENDPOINT";
    /// The region that V4 signatures name, such as `cn-hangzhou`.
    pub const REGION: &str = "OSS_REGION";
    pub const BUCKET: &str = "OSS_BUCKET";
    /// `true` when `OSS_ENDPOINT` is a custom domain (CNAME) bound to the bucket.
    pub const CUSTOM_DOMAIN: &str = "OSS_CUSTOM_DOMAIN";
    /// `true` to accept an `http://` endpoint. For tests against local servers only.
    pub const ALLOW_HTTP: &str = "OSS_ALLOW_HTTP";
    pub const ACCESS_KEY_ID: &str = "ALIBABA_CLOUD_ACCESS_KEY_ID";
    pub const ACCESS_KEY_SECRET: &str = "ALIBABA_CLOUD_ACCESS_KEY_SECRET";
    /// The STS token that comes with temporary credentials.
    pub const SECURITY_TOKEN: &str = "ALIBABA_CLOUD_SECURITY_TOKEN";
}

/// HTTP timeouts of the OSS client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OssTimeouts {
    /// Time allowed to open a TCP and TLS connection.
    pub connect: Duration,
    /// Time allowed between two reads of a response; a stalled body fails after this.
    pub read: Duration,
    /// How long an idle pooled connection is kept for reuse.
    pub pool_idle: Duration,
}

impl Default for OssTimeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            read: Duration::from_secs(60),
            pool_idle: Duration::from_secs(50),
        }
    }
}

/// Everything needed to reach one OSS bucket. `Debug` shows the AccessKey id but never the
/// secret or the STS token.
#[derive(Debug, Clone)]
pub struct OssConfig {
    pub endpoint: OssEndpoint,
    /// The region in the V4 credential scope, such as `cn-hangzhou`.
    pub region: String,
    pub bucket: String,
    pub credentials: AliyunCredentials,
    pub timeouts: OssTimeouts,
    /// Test-only DNS overrides (host name to socket address), passed to reqwest's
    /// `ClientBuilder::resolve` so that tests reach `bucket.oss-<region>.aliyuncs.com` on
    /// 127.0.0.1. [`OssConfig::from_env`] always leaves it empty.
    pub resolve: Vec<(String, SocketAddr)>,
}

/// A missing or invalid setting. Every message names the variable, and none contains a secret.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum OssConfigError {
    #[error("missing environment variable {name}: {hint}")]
    Missing {
        name: &'static str,
        hint: &'static str,
    },
    #[error("invalid environment variable {name}={value}: {reason}")]
    Invalid {
        name: &'static str,
        value: String,
        reason: String,
    },
    #[error("invalid environment variable {name}: {source}")]
    Endpoint {
        name: &'static str,
        #[source]
        source: EndpointError,
    },
}

impl OssConfig {
    /// Reads the whole configuration, credentials included, from `lookup` (normally
    /// `|name| std::env::var(name).ok()`).
    ///
    /// # Errors
    /// Returns an [`OssConfigError`] naming the first variable that is missing or invalid.
    pub fn from_env(lookup: impl Fn(&str) -> Option<String>) -> Result<Self, OssConfigError> {
        let credentials = credentials_from_env(&lookup)?;
        Self::from_env_with_credentials(lookup, credentials)
    }

    /// Reads everything but the credentials from `lookup` and uses `credentials` as given, for
    /// callers that take them from a secret store.
    ///
    /// # Errors
    /// Returns an [`OssConfigError`] naming the first variable that is missing or invalid.
    pub fn from_env_with_credentials(
        lookup: impl Fn(&str) -> Option<String>,
        credentials: AliyunCredentials,
    ) -> Result<Self, OssConfigError> {
        let endpoint_value = required(
            &lookup,
            vars::ENDPOINT,
            "set it to oss-<region>.aliyuncs.com or a custom domain",
        )?;
        let region = required(
            &lookup,
            vars::REGION,
            "set it to the bucket's region, such as cn-hangzhou",
        )?;
        let bucket = required(
            &lookup,
            vars::BUCKET,
            "set it to the name of the OSS bucket",
        )?;
        let options = EndpointOptions {
            custom_domain: flag(&lookup, vars::CUSTOM_DOMAIN)?,
            allow_http: flag(&lookup, vars::ALLOW_HTTP)?,
        };

        if !is_region_id(&region) {
            return Err(OssConfigError::Invalid {
                name: vars::REGION,
                value: region,
                reason: "expected a region id such as cn-hangzhou".into(),
            });
        }
        if let Err(reason) = check_bucket_name(&bucket) {
            return Err(OssConfigError::Invalid {
                name: vars::BUCKET,
                value: bucket,
                reason: reason.into(),
            });
        }

        let endpoint_error = |source| OssConfigError::Endpoint {
            name: vars::ENDPOINT,
            source,
        };
        let endpoint = OssEndpoint::parse(&endpoint_value, options).map_err(endpoint_error)?;
        endpoint.check_region(&region).map_err(endpoint_error)?;

        Ok(Self {
            endpoint,
            region,
            bucket,
            credentials,
            timeouts: OssTimeouts::default(),
            resolve: Vec::new(),
        })
    }
}

/// Reads the AccessKey pair and the optional STS token.
fn credentials_from_env(
    lookup: &impl Fn(&str) -> Option<String>,
) -> Result<AliyunCredentials, OssConfigError> {
    let access_key_id = required(
        lookup,
        vars::ACCESS_KEY_ID,
        "set it to the RAM user's AccessKey id",
    )?;
    let access_key_secret = required(
        lookup,
        vars::ACCESS_KEY_SECRET,
        "set it to the RAM user's AccessKey secret",
    )?;
    let security_token = lookup(vars::SECURITY_TOKEN)
        .map(|token| token.trim().to_string())
        .filter(|token| !token.is_empty())
        .map(Secret::new);
    Ok(AliyunCredentials {
        access_key_id,
        access_key_secret: Secret::new(access_key_secret),
        security_token,
    })
}

/// Returns the trimmed value, treating an empty value as missing.
fn required(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
    hint: &'static str,
) -> Result<String, OssConfigError> {
    match lookup(name).map(|value| value.trim().to_string()) {
        Some(value) if !value.is_empty() => Ok(value),
        _ => Err(OssConfigError::Missing { name, hint }),
    }
}

/// Reads an optional boolean; unset or empty means false.
fn flag(
    lookup: &impl Fn(&str) -> Option<String>,
    name: &'static str,
) -> Result<bool, OssConfigError> {
    let Some(value) = lookup(name) else {
        return Ok(false);
    };
    match value.trim().to_ascii_lowercase().as_str() {
        "" | "false" | "0" | "no" => Ok(false),
        "true" | "1" | "yes" => Ok(true),
        _ => Err(OssConfigError::Invalid {
            name,
            value,
            reason: "expected true or false".into(),
        }),
    }
}

/// Checks the OSS bucket naming rules: 3 to 63 characters of lowercase letters, digits and
/// hyphens, starting and ending with a letter or digit.
fn check_bucket_name(bucket: &str) -> Result<(), &'static str> {
    if !(3..=63).contains(&bucket.len()) {
        return Err("a bucket name has 3 to 63 characters");
    }
    if !bucket
        .bytes()
        .all(|byte| byte.is_ascii_lowercase() || byte.is_ascii_digit() || byte == b'-')
    {
        return Err("a bucket name contains only lowercase letters, digits and hyphens");
    }
    if bucket.starts_with('-') || bucket.ends_with('-') {
        return Err("a bucket name starts and ends with a letter or digit");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::oss::endpoint::EndpointKind;

    fn environment(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(name, value)| (name.to_string(), value.to_string()))
            .collect()
    }

    fn valid_environment() -> HashMap<String, String> {
        environment(&[
            (vars::ENDPOINT, "oss-cn-hangzhou.aliyuncs.com"),
            (vars::REGION, "cn-hangzhou"),
            (vars::BUCKET, "backup-bucket"),
            (vars::ACCESS_KEY_ID, "LTAI-test-id"),
            (vars::ACCESS_KEY_SECRET, "test-secret-value"),
            (vars::SECURITY_TOKEN, "test-token-value"),
        ])
    }

    fn load(env: &HashMap<String, String>) -> Result<OssConfig, OssConfigError> {
        OssConfig::from_env(|name| env.get(name).cloned())
    }

    #[test]
    fn reads_every_variable() {
        let config = load(&valid_environment()).unwrap();
        assert_eq!(
            config.endpoint.kind(),
            &EndpointKind::Standard {
                region: "cn-hangzhou".into()
            }
        );
        assert_eq!(config.region, "cn-hangzhou");
        assert_eq!(config.bucket, "backup-bucket");
        assert_eq!(config.credentials.access_key_id, "LTAI-test-id");
        assert_eq!(
            config.credentials.access_key_secret.expose(),
            "test-secret-value"
        );
        assert_eq!(
            config
                .credentials
                .security_token
                .as_ref()
                .map(Secret::expose),
            Some("test-token-value")
        );
        assert!(config.resolve.is_empty());
    }

    #[test]
    fn debug_output_hides_secret_and_token() {
        let printed = format!("{:?}", load(&valid_environment()).unwrap());
        assert!(printed.contains("LTAI-test-id"));
        assert!(!printed.contains("test-secret-value"));
        assert!(!printed.contains("test-token-value"));
    }

    #[test]
    fn missing_variables_are_named() {
        for name in [
            vars::ENDPOINT,
            vars::REGION,
            vars::BUCKET,
            vars::ACCESS_KEY_ID,
            vars::ACCESS_KEY_SECRET,
        ] {
            let mut env = valid_environment();
            env.remove(name);
            let error = load(&env).unwrap_err();
            assert!(
                matches!(error, OssConfigError::Missing { name: missing, .. } if missing == name),
                "{name}"
            );
            assert!(error.to_string().contains(name), "{error}");

            env.insert(name.to_string(), "  ".to_string());
            let error = load(&env).unwrap_err();
            assert!(
                matches!(error, OssConfigError::Missing { .. }),
                "{name} set to blanks"
            );
        }
    }

    #[test]
    fn security_token_is_optional() {
        let mut env = valid_environment();
        env.remove(vars::SECURITY_TOKEN);
        assert_eq!(load(&env).unwrap().credentials.security_token, None);
    }

    #[test]
    fn malformed_variables_are_named() {
        let cases = [
            (vars::REGION, "CN Hangzhou"),
            (vars::BUCKET, "Backup_Bucket"),
            (vars::BUCKET, "ab"),
            (vars::BUCKET, "-bucket"),
            (vars::CUSTOM_DOMAIN, "maybe"),
            (vars::ALLOW_HTTP, "sometimes"),
            (vars::ENDPOINT, "backup-bucket.oss-cn-hangzhou.aliyuncs.com"),
            (vars::ENDPOINT, "https://oss-cn-hangzhou.aliyuncs.com/path"),
        ];
        for (name, value) in cases {
            let mut env = valid_environment();
            env.insert(name.to_string(), value.to_string());
            let error = load(&env).unwrap_err();
            assert!(error.to_string().contains(name), "{name}={value}: {error}");
        }
    }

    #[test]
    fn rejects_region_that_differs_from_endpoint() {
        let mut env = valid_environment();
        env.insert(vars::REGION.into(), "cn-shanghai".into());
        let error = load(&env).unwrap_err();
        assert!(matches!(
            error,
            OssConfigError::Endpoint {
                source: EndpointError::RegionMismatch { .. },
                ..
            }
        ));
    }

    #[test]
    fn custom_domain_flag_selects_custom_domain_mode() {
        let mut env = valid_environment();
        env.insert(vars::ENDPOINT.into(), "backups.example.com".into());
        assert!(matches!(
            load(&env).unwrap_err(),
            OssConfigError::Endpoint {
                source: EndpointError::NotOssEndpoint { .. },
                ..
            }
        ));

        env.insert(vars::CUSTOM_DOMAIN.into(), "true".into());
        assert_eq!(
            load(&env).unwrap().endpoint.kind(),
            &EndpointKind::CustomDomain
        );
    }

    #[test]
    fn http_endpoint_needs_allow_http() {
        let mut env = valid_environment();
        env.insert(
            vars::ENDPOINT.into(),
            "http://oss-cn-hangzhou.aliyuncs.com:9000".into(),
        );
        assert!(load(&env).is_err());

        env.insert(vars::ALLOW_HTTP.into(), "true".into());
        assert_eq!(
            load(&env).unwrap().endpoint.to_string(),
            "http://oss-cn-hangzhou.aliyuncs.com:9000"
        );
    }

    #[test]
    fn credentials_can_be_given_as_a_value() {
        let mut env = valid_environment();
        env.remove(vars::ACCESS_KEY_ID);
        env.remove(vars::ACCESS_KEY_SECRET);
        let credentials = AliyunCredentials {
            access_key_id: "from-secrets-manager".into(),
            access_key_secret: Secret::new("s"),
            security_token: None,
        };
        let config =
            OssConfig::from_env_with_credentials(|name| env.get(name).cloned(), credentials)
                .unwrap();
        assert_eq!(config.credentials.access_key_id, "from-secrets-manager");
    }
}
