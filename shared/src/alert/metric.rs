//! The `AlertDeliveryFailures` metric, written as a CloudWatch Embedded Metric Format (EMF) log
//! line: Lambda sends stdout to CloudWatch Logs, which turns the line into a metric.

use std::sync::{Arc, Mutex};

use chrono::{DateTime, Utc};
use serde_json::json;

pub const METRIC_NAMESPACE: &str = "BackupBridge";
pub const DELIVERY_FAILURES_METRIC: &str = "AlertDeliveryFailures";

/// Returns one EMF line counting `count` undelivered alerts, with `Function` as the dimension and
/// the failure reason and `errcode` as searchable properties.
pub fn delivery_failure_line(
    function: &str,
    reason: &str,
    errcode: Option<i64>,
    count: usize,
    at: DateTime<Utc>,
) -> String {
    json!({
        "_aws": {
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": METRIC_NAMESPACE,
                "Dimensions": [["Function"]],
                "Metrics": [{ "Name": DELIVERY_FAILURES_METRIC, "Unit": "Count" }],
            }],
        },
        "Function": function,
        "Reason": reason,
        "Errcode": errcode,
        DELIVERY_FAILURES_METRIC: count,
    })
    .to_string()
}

/// The destination of metric lines: stdout in Lambda, a buffer in tests.
pub trait MetricWriter: Send + Sync {
    fn write_line(&self, line: &str);
}

/// Prints each line to stdout, where CloudWatch Logs picks EMF lines up.
#[derive(Debug, Default)]
pub struct StdoutMetricWriter;

impl MetricWriter for StdoutMetricWriter {
    fn write_line(&self, line: &str) {
        println!("{line}");
    }
}

/// Keeps lines in memory so tests can read them.
#[derive(Debug, Default, Clone)]
pub struct MemoryMetricWriter {
    lines: Arc<Mutex<Vec<String>>>,
}

impl MemoryMetricWriter {
    pub fn lines(&self) -> Vec<String> {
        self.lines
            .lock()
            .map(|lines| lines.clone())
            .unwrap_or_default()
    }
}

impl MetricWriter for MemoryMetricWriter {
    fn write_line(&self, line: &str) {
        if let Ok(mut lines) = self.lines.lock() {
            lines.push(line.to_string());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_is_valid_emf() {
        let at: DateTime<Utc> = "2024-05-01T00:00:00Z".parse().unwrap();
        let line = delivery_failure_line("s3-oss-sync", "rejected", Some(93000), 2, at);
        let value: serde_json::Value = serde_json::from_str(&line).unwrap();
        let directive = &value["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(value["_aws"]["Timestamp"], 1_714_521_600_000i64);
        assert_eq!(directive["Namespace"], "BackupBridge");
        assert_eq!(directive["Metrics"][0]["Name"], "AlertDeliveryFailures");
        assert_eq!(directive["Dimensions"][0][0], "Function");
        assert_eq!(value["Function"], "s3-oss-sync");
        assert_eq!(value["AlertDeliveryFailures"], 2);
        assert_eq!(value["Errcode"], 93000);
        assert!(!line.contains('\n'));
    }
}
