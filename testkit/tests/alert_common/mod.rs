//! Helpers shared by the alert tests: an in-memory marker store, an alerter aimed at a fake
//! robot on 127.0.0.1, and capture of tracing output.

#![allow(dead_code)]

use std::collections::HashMap;
use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use backup_bridge::alert::wecom::parse_allowed_hosts;
use backup_bridge::alert::{
    Alert, AlertKind, AlertRules, Alerter, MemoryMetricWriter, Severity, WeComClient, WeComConfig,
};
use backup_bridge::retry::RetryPolicy;
use backup_bridge::secret::Secret;
use backup_bridge::storage::{MarkerStore, StorageError};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use tokio::time::Instant;

pub const KEY: &str = "test-robot-key-0001";

/// A marker store whose `create_marker` is atomic, like S3's `If-None-Match: *` put.
#[derive(Default)]
pub struct MemoryMarkers {
    markers: Mutex<HashMap<String, Bytes>>,
    /// Makes every call fail with a transient error, like an S3 outage.
    unavailable: std::sync::atomic::AtomicBool,
}

impl MemoryMarkers {
    pub fn set_unavailable(&self, unavailable: bool) {
        self.unavailable
            .store(unavailable, std::sync::atomic::Ordering::SeqCst);
    }

    fn check_available(&self, key: &str) -> Result<(), StorageError> {
        if self.unavailable.load(std::sync::atomic::Ordering::SeqCst) {
            let kind = backup_bridge::storage::ErrorKind::Transient;
            return Err(StorageError::new(
                kind,
                "PutObject",
                format!("s3://markers/{key}"),
                "service unavailable",
            ));
        }
        Ok(())
    }

    pub fn keys(&self) -> Vec<String> {
        let mut keys: Vec<String> = self.markers.lock().unwrap().keys().cloned().collect();
        keys.sort();
        keys
    }
}

#[async_trait]
impl MarkerStore for MemoryMarkers {
    async fn create_marker(&self, key: &str, body: Bytes) -> Result<bool, StorageError> {
        self.check_available(key)?;
        let mut markers = self.markers.lock().unwrap();
        if markers.contains_key(key) {
            return Ok(false);
        }
        markers.insert(key.to_string(), body);
        Ok(true)
    }

    async fn read_marker(&self, key: &str) -> Result<Option<Bytes>, StorageError> {
        self.check_available(key)?;
        Ok(self.markers.lock().unwrap().get(key).cloned())
    }

    async fn delete_marker(&self, key: &str) -> Result<(), StorageError> {
        self.check_available(key)?;
        self.markers.lock().unwrap().remove(key);
        Ok(())
    }
}

/// Builds a robot config for a fake robot at `base_url`, with quick retries.
pub fn robot_config(base_url: &str, key: &str) -> WeComConfig {
    WeComConfig {
        base_url: base_url.to_string(),
        allowed_hosts: parse_allowed_hosts("qyapi.weixin.qq.com,http://127.0.0.1"),
        retry: RetryPolicy {
            max_attempts: u32::MAX,
            base_delay: Duration::from_millis(5),
            max_delay: Duration::from_millis(20),
        },
        ..WeComConfig::new(Secret::new(key))
    }
}

/// Builds an alerter aimed at `base_url`, with its metric lines kept in memory.
pub fn alerter(
    base_url: &str,
    key: &str,
    rules: AlertRules,
    markers: Arc<MemoryMarkers>,
) -> (Alerter, MemoryMetricWriter) {
    let robot = WeComClient::new(robot_config(base_url, key)).expect("fake robot config is valid");
    let metrics = MemoryMetricWriter::default();
    let alerter = Alerter::new(rules, robot, markers).with_metric_writer(Arc::new(metrics.clone()));
    (alerter, metrics)
}

/// Returns a deadline far enough away that only a stuck test reaches it.
pub fn generous_deadline() -> Instant {
    Instant::now() + Duration::from_secs(30)
}

pub fn at(text: &str) -> DateTime<Utc> {
    text.parse().expect("test time is RFC 3339")
}

pub fn transfer_failed(bucket: &str, key: &str) -> Alert {
    Alert::new(
        AlertKind::TransferFailed,
        Severity::Critical,
        "s3-oss-sync",
        "req-0001",
        at("2024-05-01T02:00:00Z"),
    )
    .object(bucket, key)
}

/// Everything written through a tracing subscriber, as text.
#[derive(Clone, Default)]
pub struct CapturedLogs {
    buffer: Arc<Mutex<Vec<u8>>>,
}

impl CapturedLogs {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.buffer.lock().unwrap()).into_owned()
    }

    /// Installs a subscriber that records every level for the current thread, until the guard
    /// is dropped. Use it in a current-thread runtime so that spawned tasks log into it too.
    pub fn install(&self) -> tracing::subscriber::DefaultGuard {
        let writer = self.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::TRACE)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }
}

impl Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.buffer.lock().unwrap().extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
