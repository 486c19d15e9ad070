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
    /// Time allowed between two reads of a response. A stalled body fails after this.
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
#[path = "config_tests.rs"]
mod tests;
