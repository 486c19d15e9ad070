//! The job metrics that the CloudWatch dashboard shows, written as Embedded Metric Format (EMF)
//! lines: Lambda sends stdout to CloudWatch Logs, which turns each line into metric values in the
//! `BackupBridge` namespace without a `PutMetricData` call.
//!
//! Each invocation writes at most one job line (bytes copied, throughput, failures) and one
//! backup-age line per validated Aliyun instance. The dashboard and alarms in `template.yaml`
//! name these metrics, so a renamed constant here must be renamed there too.

use chrono::{DateTime, Utc};
use serde_json::{Map, Value, json};

pub use crate::alert::metric::{METRIC_NAMESPACE, MetricWriter, StdoutMetricWriter};

/// Bytes written to the destination by completed copies (unit `Bytes`).
pub const BYTES_COPIED: &str = "BytesCopied";
/// Bytes per second of the copies whose duration is known (unit `Bytes/Second`).
pub const THROUGHPUT: &str = "Throughput";
/// Objects, backups or exports that failed in the invocation (unit `Count`).
pub const FAILURES: &str = "Failures";
/// Hours since the newest successful full Aliyun backup of an instance ended (unit `None`,
/// because CloudWatch has no hour unit).
pub const BACKUP_AGE_HOURS: &str = "BackupAgeHours";

/// The results of one invocation that the dashboard shows.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct JobMetrics {
    /// Items (objects, backups, exports) that ended well, including those found done already.
    /// The daily summary counts them; the dashboard does not.
    pub succeeded: u64,
    /// Bytes of every copy completed by the invocation.
    pub bytes_copied: u64,
    /// Bytes of the copies whose whole duration is known, the numerator of the throughput.
    pub timed_bytes: u64,
    /// Seconds that those copies took.
    pub timed_seconds: f64,
    /// Failed items.
    pub failures: u64,
}

impl JobMetrics {
    /// Adds one completed copy. `seconds` is `None` when the copy spanned several invocations,
    /// so its bytes count towards `BytesCopied` but not towards the throughput.
    pub fn add_copy(&mut self, bytes: u64, seconds: Option<f64>) {
        self.bytes_copied += bytes;
        if let Some(seconds) = seconds.filter(|seconds| *seconds > 0.0) {
            self.timed_bytes += bytes;
            self.timed_seconds += seconds;
        }
    }

    /// Returns metrics of an invocation that copied nothing and had `failures` failed items.
    pub fn failed(failures: u64) -> Self {
        Self {
            failures,
            ..Self::default()
        }
    }

    /// Returns the bytes per second of the timed copies, or `None` when none was timed.
    pub fn throughput(&self) -> Option<f64> {
        (self.timed_seconds > 0.0).then(|| self.timed_bytes as f64 / self.timed_seconds)
    }
}

/// Returns the EMF line of one invocation of `function`, with `Function` as the dimension.
/// The throughput is left out when no copy was timed, so that idle runs do not pull its
/// average down to zero.
pub fn job_line(function: &str, metrics: &JobMetrics, at: DateTime<Utc>) -> String {
    let mut definitions = vec![
        json!({ "Name": BYTES_COPIED, "Unit": "Bytes" }),
        json!({ "Name": FAILURES, "Unit": "Count" }),
    ];
    let mut values = Map::new();
    values.insert("Function".into(), json!(function));
    values.insert(BYTES_COPIED.into(), json!(metrics.bytes_copied));
    values.insert(FAILURES.into(), json!(metrics.failures));
    if let Some(throughput) = metrics.throughput() {
        definitions.push(json!({ "Name": THROUGHPUT, "Unit": "Bytes/Second" }));
        values.insert(THROUGHPUT.into(), json!(throughput));
    }
    emf_line(&[&["Function"]], definitions, values, at)
}

/// Returns the EMF line of the newest backup's age of one Aliyun instance, with `Function` and
/// `Instance` as dimensions.
pub fn backup_age_line(
    function: &str,
    instance_id: &str,
    age_hours: f64,
    at: DateTime<Utc>,
) -> String {
    let mut values = Map::new();
    values.insert("Function".into(), json!(function));
    values.insert("Instance".into(), json!(instance_id));
    values.insert(BACKUP_AGE_HOURS.into(), json!(age_hours));
    let definitions = vec![json!({ "Name": BACKUP_AGE_HOURS, "Unit": "None" })];
    emf_line(&[&["Function", "Instance"]], definitions, values, at)
}

/// Writes the job line of one invocation to stdout.
pub fn publish_job(function: &str, metrics: &JobMetrics) {
    StdoutMetricWriter.write_line(&job_line(function, metrics, Utc::now()));
}

fn emf_line(
    dimensions: &[&[&str]],
    definitions: Vec<Value>,
    mut values: Map<String, Value>,
    at: DateTime<Utc>,
) -> String {
    values.insert(
        "_aws".into(),
        json!({
            "Timestamp": at.timestamp_millis(),
            "CloudWatchMetrics": [{
                "Namespace": METRIC_NAMESPACE,
                "Dimensions": dimensions,
                "Metrics": definitions,
            }],
        }),
    );
    Value::Object(values).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at() -> DateTime<Utc> {
        "2024-05-01T00:00:00Z".parse().unwrap()
    }

    fn parse(line: &str) -> Value {
        assert!(!line.contains('\n'), "an EMF record must be one line");
        serde_json::from_str(line).unwrap()
    }

    fn metric_names(value: &Value) -> Vec<String> {
        value["_aws"]["CloudWatchMetrics"][0]["Metrics"]
            .as_array()
            .unwrap()
            .iter()
            .map(|metric| metric["Name"].as_str().unwrap().to_string())
            .collect()
    }

    #[test]
    fn job_line_carries_bytes_failures_and_throughput() {
        let mut metrics = JobMetrics::failed(1);
        metrics.add_copy(8_000, Some(2.0));
        metrics.add_copy(2_000, Some(2.0));
        let value = parse(&job_line("s3-oss-sync", &metrics, at()));
        let directive = &value["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(value["_aws"]["Timestamp"], 1_714_521_600_000i64);
        assert_eq!(directive["Namespace"], "BackupBridge");
        assert_eq!(directive["Dimensions"], json!([["Function"]]));
        assert_eq!(
            metric_names(&value),
            vec!["BytesCopied", "Failures", "Throughput"]
        );
        assert_eq!(value["Function"], "s3-oss-sync");
        assert_eq!(value["BytesCopied"], 10_000);
        assert_eq!(value["Failures"], 1);
        assert_eq!(value["Throughput"], 2_500.0);
    }

    #[test]
    fn job_line_without_timed_copies_has_no_throughput() {
        let mut metrics = JobMetrics::default();
        metrics.add_copy(4_096, None);
        let value = parse(&job_line("aliyun-backup-pull", &metrics, at()));
        assert_eq!(metric_names(&value), vec!["BytesCopied", "Failures"]);
        assert_eq!(value["BytesCopied"], 4_096);
        assert!(value.get("Throughput").is_none());
    }

    #[test]
    fn zero_second_copy_is_not_timed() {
        let mut metrics = JobMetrics::default();
        metrics.add_copy(0, Some(0.0));
        assert_eq!(metrics.throughput(), None);
    }

    #[test]
    fn backup_age_line_has_instance_dimension() {
        let value = parse(&backup_age_line(
            "aliyun-backup-pull",
            "rm-bp1abc",
            27.5,
            at(),
        ));
        let directive = &value["_aws"]["CloudWatchMetrics"][0];
        assert_eq!(directive["Dimensions"], json!([["Function", "Instance"]]));
        assert_eq!(metric_names(&value), vec!["BackupAgeHours"]);
        assert_eq!(value["Instance"], "rm-bp1abc");
        assert_eq!(value["BackupAgeHours"], 27.5);
    }
}
