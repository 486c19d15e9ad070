//! Alerting settings shared by every function: the rules, the WeCom robot, and where the
//! deduplication markers live.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::time::Instant;

use super::{ConfigError, Lookup, optional, prefix};
use crate::alert::{
    AlertBatch, AlertRules, Alerter, DispatchReport, WeComClient, WeComConfig, wecom,
};
use crate::secret::Secret;
use crate::storage::{MarkerStore, ObjectSource, StorageError};

pub const ALERT_RULES: &str = "ALERT_RULES";
pub const ALERT_RULES_S3_KEY: &str = "ALERT_RULES_S3_KEY";
pub const WECOM_BASE_URL: &str = "WECOM_BASE_URL";
pub const WECOM_ALLOWED_HOSTS: &str = "WECOM_ALLOWED_HOSTS";
pub const STATE_PREFIX: &str = "STATE_PREFIX";
/// Default prefix, in the function's own S3 bucket, of the small state objects (alert and export
/// markers). It must stay outside the sync prefix so that markers are never copied.
pub const DEFAULT_STATE_PREFIX: &str = "backup-bridge-state/";

/// Alert rules, the robot (none when no webhook key is configured) and the marker prefix.
#[derive(Debug, Clone)]
pub struct AlertingConfig {
    pub rules: AlertRules,
    pub wecom: Option<WeComConfig>,
    pub state_prefix: String,
}

impl AlertingConfig {
    /// Reads `ALERT_RULES` (JSON) or `ALERT_RULES_S3_KEY` (an object in `rules_source`), the
    /// robot's `WECOM_BASE_URL` and `WECOM_ALLOWED_HOSTS`, and `STATE_PREFIX`.
    ///
    /// # Errors
    /// A [`ConfigError`] naming the variable, or the rules' parse error with its position.
    pub async fn from_env(
        lookup: Lookup<'_>,
        webhook_key: Option<Secret>,
        rules_source: &dyn ObjectSource,
    ) -> Result<Self, ConfigError> {
        let rules = match (
            optional(lookup, ALERT_RULES),
            optional(lookup, ALERT_RULES_S3_KEY),
        ) {
            (Some(text), _) => AlertRules::from_json(&text, ALERT_RULES)?,
            (None, Some(key)) => AlertRules::from_object(rules_source, &key).await?,
            (None, None) => AlertRules::default(),
        };
        let wecom = match webhook_key {
            None => None,
            Some(key) => {
                let mut config = WeComConfig::new(key);
                if let Some(base_url) = optional(lookup, WECOM_BASE_URL) {
                    config.base_url = base_url;
                }
                if let Some(hosts) = optional(lookup, WECOM_ALLOWED_HOSTS) {
                    config.allowed_hosts = wecom::parse_allowed_hosts(&hosts);
                }
                Some(config)
            }
        };
        Ok(Self {
            rules,
            wecom,
            state_prefix: prefix(lookup, STATE_PREFIX, DEFAULT_STATE_PREFIX)?,
        })
    }
}

/// Where a function sends its alerts: the WeCom robot, or only the log when no robot is set up.
/// Sending never fails the job that raised the alerts.
pub struct Alerts {
    alerter: Option<Alerter>,
}

impl Alerts {
    /// Builds the alerter over `markers` (the function's S3 bucket), with marker keys placed
    /// under the configured state prefix.
    ///
    /// # Errors
    /// [`ConfigError::WeCom`] when the robot's URL is invalid or its host is not allowed.
    pub fn new(config: AlertingConfig, markers: Arc<dyn MarkerStore>) -> Result<Self, ConfigError> {
        let alerter = match config.wecom {
            None => {
                tracing::warn!("no WeCom webhook key is configured; alerts are only logged");
                None
            }
            Some(wecom) => {
                let markers = Arc::new(PrefixedMarkers {
                    inner: markers,
                    prefix: config.state_prefix,
                });
                Some(Alerter::new(
                    config.rules,
                    WeComClient::new(wecom)?,
                    markers,
                ))
            }
        };
        Ok(Self { alerter })
    }

    /// Sends the alerts of one invocation before `deadline`.
    pub async fn dispatch(&self, batch: AlertBatch, deadline: Instant) -> DispatchReport {
        if batch.is_empty() {
            return DispatchReport::default();
        }
        match &self.alerter {
            Some(alerter) => alerter.dispatch(batch, deadline).await,
            None => {
                for alert in batch.alerts() {
                    tracing::warn!(
                        kind = alert.kind.as_str(),
                        severity = alert.severity.as_str(),
                        resource = ?alert.resource,
                        "alert not sent: no WeCom robot is configured"
                    );
                }
                DispatchReport::default()
            }
        }
    }
}

/// Puts every marker key under a prefix of the state bucket.
struct PrefixedMarkers {
    inner: Arc<dyn MarkerStore>,
    prefix: String,
}

#[async_trait]
impl MarkerStore for PrefixedMarkers {
    async fn create_marker(&self, key: &str, body: Bytes) -> Result<bool, StorageError> {
        self.inner
            .create_marker(&format!("{}{key}", self.prefix), body)
            .await
    }

    async fn read_marker(&self, key: &str) -> Result<Option<Bytes>, StorageError> {
        self.inner
            .read_marker(&format!("{}{key}", self.prefix))
            .await
    }

    async fn delete_marker(&self, key: &str) -> Result<(), StorageError> {
        self.inner
            .delete_marker(&format!("{}{key}", self.prefix))
            .await
    }
}
