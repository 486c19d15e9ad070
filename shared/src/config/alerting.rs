//! Alerting settings shared by every function: the rules, the WeCom robot, and where the
//! deduplication markers live.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use tokio::time::Instant;

use super::{ConfigError, Lookup, optional, prefix};
use chrono::{DateTime, NaiveDate, Utc};

use crate::alert::summary::{self, RunTally};
use crate::alert::{
    AlertBatch, AlertRules, Alerter, DispatchReport, WeComClient, WeComConfig, wecom,
};
use crate::secret::Secret;
use crate::storage::{MarkerStore, ObjectLister, ObjectSource, StorageError};

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
    /// The state bucket's markers, keys relative to the state prefix.
    markers: Option<Arc<dyn MarkerStore>>,
    state_prefix: String,
    /// Lists the run records for the daily summary; set with [`Alerts::with_summary_lister`].
    lister: Option<Arc<dyn ObjectLister>>,
}

impl Alerts {
    /// Builds the alerter over `markers` (the function's S3 bucket), with marker keys placed
    /// under the configured state prefix.
    ///
    /// # Errors
    /// [`ConfigError::WeCom`] when the robot's URL is invalid or its host is not allowed.
    pub fn new(config: AlertingConfig, markers: Arc<dyn MarkerStore>) -> Result<Self, ConfigError> {
        let prefixed: Arc<dyn MarkerStore> = Arc::new(PrefixedMarkers {
            inner: markers,
            prefix: config.state_prefix.clone(),
        });
        let alerter = match config.wecom {
            None => {
                tracing::warn!("no WeCom webhook key is configured; alerts are only logged");
                None
            }
            Some(wecom) => Some(Alerter::new(
                config.rules,
                WeComClient::new(wecom)?,
                prefixed.clone(),
            )),
        };
        Ok(Self {
            alerter,
            markers: Some(prefixed),
            state_prefix: config.state_prefix,
            lister: None,
        })
    }

    /// Lets the functions record their runs and send the daily summary when the rules ask for
    /// it; `lister` lists the same bucket as the markers.
    #[must_use]
    pub fn with_summary_lister(mut self, lister: Arc<dyn ObjectLister>) -> Self {
        self.lister = Some(lister);
        self
    }

    /// Records what the invocation did and, when the previous day's summary is due and no
    /// other invocation has claimed it, sends it. Returns the day whose summary this call sent.
    /// Failures are logged and never reach the job.
    pub async fn finish_run(&self, tally: RunTally, deadline: Instant) -> Option<NaiveDate> {
        self.finish_run_at(tally, Utc::now(), deadline).await
    }

    /// [`Alerts::finish_run`] as if the time were `now`.
    pub async fn finish_run_at(
        &self,
        tally: RunTally,
        now: DateTime<Utc>,
        deadline: Instant,
    ) -> Option<NaiveDate> {
        let (Some(alerter), Some(markers), Some(lister)) =
            (&self.alerter, &self.markers, &self.lister)
        else {
            return None;
        };
        if !alerter.rules().daily_summary {
            return None;
        }
        let record_key = tally.record_key(summary::shanghai_day(now));
        let body = Bytes::from(tally.record_body(now));
        if let Err(error) = markers.create_marker(&record_key, body).await {
            tracing::warn!(%error, "failed to record the run for the daily summary");
        }
        let day = summary::due_day(now)?;
        let claim = summary::sent_marker_key(day);
        match markers
            .create_marker(&claim, Bytes::from(tally.request_id.clone()))
            .await
        {
            Ok(true) => {}
            Ok(false) => return None,
            Err(error) => {
                tracing::warn!(%error, %day, "failed to claim the daily summary; a later run tries again");
                return None;
            }
        }
        let folder = format!("{}{}", self.state_prefix, summary::day_folder(day));
        let listed = match lister.list(&folder).await {
            Ok(listed) => listed,
            Err(error) => {
                tracing::warn!(%error, %day, "failed to list the runs for the daily summary");
                release(markers.as_ref(), &claim).await;
                return None;
            }
        };
        let keys = listed
            .iter()
            .filter_map(|object| object.key.strip_prefix(&folder));
        let day_summary = summary::collect(day, keys);
        let message = summary::render(&day_summary, alerter.rules().language);
        match alerter
            .send_message(&tally.function, &message, deadline)
            .await
        {
            Ok(()) => {
                tracing::info!(%day, functions = day_summary.functions.len(), "sent the daily summary");
                Some(day)
            }
            Err(_) => {
                release(markers.as_ref(), &claim).await;
                None
            }
        }
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

/// Gives back a claimed summary so that a later invocation sends it.
async fn release(markers: &dyn MarkerStore, claim: &str) {
    if let Err(error) = markers.delete_marker(claim).await {
        tracing::error!(%error, claim, "failed to release the daily summary claim; that day's summary will not be sent");
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
