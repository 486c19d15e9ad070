//! Configuration of the WeCom robot: its URL, its key and the webhook hosts that may be called.

use std::time::Duration;

use crate::retry::RetryPolicy;
use crate::secret::Secret;

/// The default webhook base URL.
pub const DEFAULT_BASE_URL: &str = "https://qyapi.weixin.qq.com";
/// The hosts allowed when `WECOM_ALLOWED_HOSTS` is unset.
pub const DEFAULT_ALLOWED_HOST: &str = "qyapi.weixin.qq.com";

/// A webhook host that may be called. Plain `http` is allowed only when the entry starts with
/// `http://`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AllowedHost {
    pub host: String,
    pub allow_http: bool,
}

impl AllowedHost {
    /// Parses `host` (https only) or `http://host` (http and https).
    pub fn parse(entry: &str) -> Self {
        let entry = entry.trim();
        match entry.strip_prefix("http://") {
            Some(host) => Self {
                host: host.trim_end_matches('/').to_ascii_lowercase(),
                allow_http: true,
            },
            None => Self {
                host: entry.to_ascii_lowercase(),
                allow_http: false,
            },
        }
    }
}

/// The robot's URL, webhook key, allowlist and retry policy.
#[derive(Debug, Clone)]
pub struct WeComConfig {
    pub key: Secret,
    /// e.g. `https://qyapi.weixin.qq.com`; must name an allowed host.
    pub base_url: String,
    pub allowed_hosts: Vec<AllowedHost>,
    /// Backoff for `45009` and transient failures; attempts stop at the caller's deadline.
    pub retry: RetryPolicy,
}

impl WeComConfig {
    /// Builds a config for the public endpoint with the default allowlist.
    pub fn new(key: Secret) -> Self {
        Self {
            key,
            base_url: DEFAULT_BASE_URL.to_string(),
            allowed_hosts: vec![AllowedHost::parse(DEFAULT_ALLOWED_HOST)],
            retry: RetryPolicy {
                max_attempts: u32::MAX,
                base_delay: Duration::from_secs(2),
                max_delay: Duration::from_secs(20),
            },
        }
    }

    /// Reads `WECOM_WEBHOOK_KEY` (required), `WECOM_BASE_URL` and `WECOM_ALLOWED_HOSTS` (a comma
    /// list of hosts; prefix a host with `http://` to allow plain http to it).
    pub fn from_env() -> Result<Self, WeComConfigError> {
        let key = std::env::var("WECOM_WEBHOOK_KEY")
            .ok()
            .filter(|key| !key.trim().is_empty())
            .ok_or(WeComConfigError::MissingKey)?;
        let mut config = Self::new(Secret::new(key));
        if let Ok(base_url) = std::env::var("WECOM_BASE_URL") {
            config.base_url = base_url;
        }
        if let Ok(hosts) = std::env::var("WECOM_ALLOWED_HOSTS") {
            config.allowed_hosts = parse_allowed_hosts(&hosts);
        }
        Ok(config)
    }
}

/// Parses a comma-separated allowlist such as `qyapi.weixin.qq.com,http://127.0.0.1`.
pub fn parse_allowed_hosts(list: &str) -> Vec<AllowedHost> {
    list.split(',')
        .filter(|entry| !entry.trim().is_empty())
        .map(AllowedHost::parse)
        .collect()
}

/// A robot configuration that cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum WeComConfigError {
    #[error("WECOM_WEBHOOK_KEY is missing or empty; set it to the group robot's webhook key")]
    MissingKey,
    #[error("invalid WECOM_BASE_URL {value:?}: {reason}")]
    InvalidBaseUrl { value: String, reason: String },
    #[error("webhook host {host} is not in WECOM_ALLOWED_HOSTS; add it there to allow it")]
    HostNotAllowed { host: String },
    #[error(
        "plain http to webhook host {host} is not allowed; use https or list it as http://{host} in WECOM_ALLOWED_HOSTS"
    )]
    HttpNotAllowed { host: String },
    #[error("failed to build the http client for webhook host {host}: {message}")]
    Client { host: String, message: String },
}
