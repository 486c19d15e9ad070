//! Alerting: the alert model, rules, deduplication, grouping, zh-CN and en messages, and delivery
//! to a WeCom group robot.
//!
//! A job collects [`Alert`]s in an [`AlertBatch`] and calls [`Alerter::dispatch`] once. Dispatch
//! drops alerts the [`AlertRules`] do not want, drops alerts sent within the deduplication window
//! (by any invocation, through a [`MarkerStore`]), groups the rest by kind into one message per
//! kind, and sends them. It returns a [`DispatchReport`] and never an error: a delivery failure is
//! logged and counted as a metric, and must not change the outcome of the job.

pub mod dedup;
pub mod metric;
pub mod model;
pub mod render;
pub mod rules;
pub mod summary;
pub mod templates;
pub mod truncate;
pub mod wecom;

use std::sync::Arc;

use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::time::Instant;

pub use dedup::DedupDecision;
pub use metric::{MemoryMetricWriter, MetricWriter, StdoutMetricWriter};
pub use model::{Alert, AlertBatch, AlertKind, Fact, FactName, ResourceIds, Severity};
pub use rules::{AlertRules, KindRule, Language, Mentions, RulesError};
pub use wecom::{DeliveryError, WeComClient, WeComConfig, WeComConfigError, WeComMessage};

use crate::storage::MarkerStore;

/// Time after its deadline during which a sender's claim on an alert stays in force.
const CLAIM_SLACK: std::time::Duration = std::time::Duration::from_secs(5);

/// The outcome of a batch. Counts are of alerts, not messages.
#[derive(Debug, Default)]
pub struct DispatchReport {
    /// Alerts whose message reached the robot.
    pub sent: usize,
    /// Alerts the rules do not want (kind disabled or severity below the minimum).
    pub suppressed_by_rule: usize,
    /// Alerts already sent within the deduplication window.
    pub deduplicated: usize,
    /// Alerts whose message was not delivered.
    pub failed: usize,
    /// Messages the robot accepted, follow-up text messages included.
    pub messages_sent: usize,
    /// Every failed message, with its error.
    pub failures: Vec<DispatchFailure>,
}

/// One message that was not delivered.
#[derive(Debug)]
pub struct DispatchFailure {
    pub kind: AlertKind,
    /// Alerts that the message carried; 0 for a follow-up mention message.
    pub alerts: usize,
    pub error: DeliveryError,
}

/// Deadlines below this (2001-09-09 in epoch milliseconds) are durations, not instants.
const EPOCH_MS_FLOOR: u64 = 1_000_000_000_000;

/// Returns the time left before a Lambda deadline. Lambda sends milliseconds since the Unix
/// epoch; the `cargo lambda watch` emulator (1.9) sends the timeout itself (`600000`), which is
/// taken as that many milliseconds from now. A deadline already passed gives zero.
pub fn remaining_before(lambda_deadline_ms: u64) -> std::time::Duration {
    if lambda_deadline_ms < EPOCH_MS_FLOOR {
        return std::time::Duration::from_millis(lambda_deadline_ms);
    }
    let now_ms = u64::try_from(Utc::now().timestamp_millis()).unwrap_or(0);
    std::time::Duration::from_millis(lambda_deadline_ms.saturating_sub(now_ms))
}

/// Converts a Lambda deadline (see [`remaining_before`]) into a dispatch deadline that leaves
/// `margin` for the job to finish. A deadline already passed becomes now.
pub fn deadline_before(lambda_deadline_ms: u64, margin: std::time::Duration) -> Instant {
    Instant::now() + remaining_before(lambda_deadline_ms).saturating_sub(margin)
}

/// Applies rules, deduplication and grouping to alert batches and sends them to a WeCom robot.
pub struct Alerter {
    rules: AlertRules,
    robot: WeComClient,
    markers: Arc<dyn MarkerStore>,
    metrics: Arc<dyn MetricWriter>,
}

impl Alerter {
    /// Builds an alerter that writes metric lines to stdout.
    pub fn new(rules: AlertRules, robot: WeComClient, markers: Arc<dyn MarkerStore>) -> Self {
        Self {
            rules,
            robot,
            markers,
            metrics: Arc::new(StdoutMetricWriter),
        }
    }

    /// Replaces where metric lines go.
    pub fn with_metric_writer(mut self, metrics: Arc<dyn MetricWriter>) -> Self {
        self.metrics = metrics;
        self
    }

    pub fn rules(&self) -> &AlertRules {
        &self.rules
    }

    /// Sends one message outside any alert group, such as the daily summary.
    ///
    /// # Errors
    /// The robot's [`DeliveryError`]; it is also logged and counted as a metric.
    pub async fn send_message(
        &self,
        function: &str,
        message: &WeComMessage,
        deadline: Instant,
    ) -> Result<(), DeliveryError> {
        let result = self.robot.send(message, deadline).await;
        if let Err(error) = &result {
            tracing::error!(function, %error, "failed to deliver a WeCom message");
            let line = metric::delivery_failure_line(
                function,
                error.reason(),
                error.errcode(),
                1,
                Utc::now(),
            );
            self.metrics.write_line(&line);
        }
        result
    }

    /// Dispatches a batch now; retries of rate-limited messages stop at `deadline`, which should
    /// leave the invocation time to finish (e.g. the Lambda deadline minus a few seconds).
    pub async fn dispatch(&self, batch: AlertBatch, deadline: Instant) -> DispatchReport {
        self.dispatch_at(batch, Utc::now(), deadline).await
    }

    /// Dispatches a batch as if the time were `now`, which decides the deduplication window.
    pub async fn dispatch_at(
        &self,
        batch: AlertBatch,
        now: DateTime<Utc>,
        deadline: Instant,
    ) -> DispatchReport {
        let mut report = DispatchReport::default();

        // Groups keep the order in which their kind first appeared in the batch.
        let mut groups: Vec<(AlertKind, Vec<Alert>, Vec<String>)> = Vec::new();
        for alert in batch.into_alerts() {
            if !self.rules.allows(alert.kind, alert.severity) {
                report.suppressed_by_rule += 1;
                continue;
            }
            let marker_key = match self.claim(&alert, now, deadline).await {
                Some(DedupDecision::Duplicate) => {
                    report.deduplicated += 1;
                    continue;
                }
                Some(DedupDecision::Send { marker_key }) => Some(marker_key),
                None => None,
            };
            let index = match groups.iter().position(|(kind, _, _)| *kind == alert.kind) {
                Some(index) => index,
                None => {
                    groups.push((alert.kind, Vec::new(), Vec::new()));
                    groups.len() - 1
                }
            };
            let group = &mut groups[index];
            group.1.push(alert);
            group.2.extend(marker_key);
        }

        for (kind, alerts, marker_keys) in groups {
            self.send_group(kind, &alerts, &marker_keys, now, deadline, &mut report)
                .await;
        }

        tracing::info!(
            sent = report.sent,
            suppressed_by_rule = report.suppressed_by_rule,
            deduplicated = report.deduplicated,
            failed = report.failed,
            messages_sent = report.messages_sent,
            "alert batch dispatched"
        );
        report
    }

    /// Returns the deduplication decision, or `None` when the marker store failed and the alert
    /// is sent without a marker: a duplicate message beats a lost one.
    async fn claim(
        &self,
        alert: &Alert,
        now: DateTime<Utc>,
        deadline: Instant,
    ) -> Option<DedupDecision> {
        // The claim lasts until this invocation can no longer be sending: the deadline, plus the
        // time a request already in flight may take to end.
        let remaining = deadline.saturating_duration_since(Instant::now()) + CLAIM_SLACK;
        let claimed_until = now + chrono::TimeDelta::from_std(remaining).unwrap_or_default();
        let window = self.rules.dedup_window;
        match dedup::claim(self.markers.as_ref(), alert, now, window, claimed_until).await {
            Ok(decision) => Some(decision),
            Err(error) => {
                tracing::warn!(kind = alert.kind.as_str(), %error, "alert deduplication failed; sending without a marker");
                None
            }
        }
    }

    async fn send_group(
        &self,
        kind: AlertKind,
        alerts: &[Alert],
        marker_keys: &[String],
        now: DateTime<Utc>,
        deadline: Instant,
        report: &mut DispatchReport,
    ) {
        let function = alerts
            .first()
            .map(|alert| alert.function.as_str())
            .unwrap_or("unknown");
        let messages = render::render_group(kind, alerts, &self.rules);
        let mut main_delivered = false;
        for (index, message) in messages.iter().enumerate() {
            let carried = if index == 0 { alerts.len() } else { 0 };
            match self.robot.send(message, deadline).await {
                Ok(()) => {
                    report.messages_sent += 1;
                    if index == 0 {
                        main_delivered = true;
                        report.sent += alerts.len();
                    }
                }
                Err(error) => {
                    tracing::error!(
                        kind = kind.as_str(),
                        function,
                        alerts = carried,
                        host = %self.robot.host(),
                        errcode = error.errcode(),
                        reason = error.reason(),
                        %error,
                        "failed to deliver alert message"
                    );
                    let count = carried.max(1);
                    let line = metric::delivery_failure_line(
                        function,
                        error.reason(),
                        error.errcode(),
                        count,
                        now,
                    );
                    self.metrics.write_line(&line);
                    report.failures.push(DispatchFailure {
                        kind,
                        alerts: carried,
                        error,
                    });
                    if index == 0 {
                        report.failed += alerts.len();
                        break;
                    }
                }
            }
        }
        if main_delivered {
            self.acknowledge_markers(marker_keys).await;
        } else {
            self.release_markers(marker_keys).await;
        }
    }

    /// Marks the claims of delivered alerts as sent, so that no later invocation takes them over.
    async fn acknowledge_markers(&self, marker_keys: &[String]) {
        for key in marker_keys {
            let sent = dedup::sent_key(key);
            if let Err(error) = self.markers.create_marker(&sent, Bytes::new()).await {
                tracing::warn!(marker = %sent, %error, "failed to mark an alert as delivered; a later invocation may send it again");
            }
        }
    }

    /// Deletes the markers of undelivered alerts so that a later invocation sends them.
    async fn release_markers(&self, marker_keys: &[String]) {
        for key in marker_keys {
            if let Err(error) = self.markers.delete_marker(key).await {
                tracing::warn!(marker = %key, %error, "failed to delete the marker of an undelivered alert; it stays suppressed until the window ends");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn deadline_leaves_the_margin() {
        let in_ten_seconds = u64::try_from(Utc::now().timestamp_millis()).unwrap() + 10_000;
        let deadline = deadline_before(in_ten_seconds, Duration::from_secs(3));
        let remaining = deadline.saturating_duration_since(Instant::now());
        assert!(remaining <= Duration::from_secs(7));
        assert!(remaining > Duration::ZERO);
    }

    #[test]
    fn emulator_timeout_counts_from_now() {
        let remaining = remaining_before(600_000);
        assert_eq!(remaining, Duration::from_secs(600));
    }

    #[test]
    fn past_deadline_becomes_now() {
        let deadline = deadline_before(0, Duration::from_secs(3));
        assert!(deadline <= Instant::now());
    }
}
