//! Helpers shared by the RDS export tests: an SDK client aimed at a local endpoint, an in-memory
//! marker store and sample snapshots.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Mutex;
use std::time::Duration;

use async_trait::async_trait;
use aws_sdk_rds::config::{BehaviorVersion, Credentials, Region};
use aws_smithy_types::retry::RetryConfig;
use backup_bridge::aws::rds_client::RdsClient;
use backup_bridge::retry::RetryPolicy;
use backup_bridge::storage::{MarkerStore, StorageError};
use bytes::Bytes;
use chrono::{DateTime, Utc};
use testkit::fake_rds_export::FakeSnapshot;

/// Builds an RDS client for `endpoint` with fixed test credentials and region, so the SDK never
/// looks for credentials elsewhere, and with SDK retries off so our retry policy is the only one.
pub fn rds_client(endpoint: &str) -> RdsClient {
    let config = aws_sdk_rds::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .credentials_provider(Credentials::new("testing", "testing", None, None, "tests"))
        .endpoint_url(endpoint)
        .retry_config(RetryConfig::disabled())
        .build();
    let quick = RetryPolicy {
        max_attempts: 4,
        base_delay: Duration::from_millis(1),
        max_delay: Duration::from_millis(5),
    };
    RdsClient::new(aws_sdk_rds::Client::from_conf(config))
        .with_page_size(20)
        .with_retry(quick)
}

pub fn instance_snapshot(id: &str, instance: &str, created: DateTime<Utc>) -> FakeSnapshot {
    FakeSnapshot {
        id: id.to_string(),
        source_id: instance.to_string(),
        cluster: false,
        created,
        status: "available".into(),
        encrypted: true,
        snapshot_type: "automated".into(),
    }
}

pub fn cluster_snapshot(id: &str, cluster: &str, created: DateTime<Utc>) -> FakeSnapshot {
    FakeSnapshot {
        cluster: true,
        source_id: cluster.to_string(),
        ..instance_snapshot(id, cluster, created)
    }
}

/// Reads a sample event from the repository's `events/` folder.
pub fn sample_event(name: &str) -> serde_json::Value {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../events")
        .join(name);
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|error| panic!("sample event {} is unreadable: {error}", path.display()));
    serde_json::from_str(&text)
        .unwrap_or_else(|error| panic!("sample event {} is invalid JSON: {error}", path.display()))
}

/// A marker store in memory with the same create-once rule as the S3 one.
#[derive(Default)]
pub struct MemoryMarkers {
    pub markers: Mutex<BTreeMap<String, Bytes>>,
}

impl MemoryMarkers {
    pub fn keys(&self) -> Vec<String> {
        self.markers
            .lock()
            .map(|m| m.keys().cloned().collect())
            .unwrap_or_default()
    }
}

#[async_trait]
impl MarkerStore for MemoryMarkers {
    async fn create_marker(&self, key: &str, body: Bytes) -> Result<bool, StorageError> {
        let mut markers = self.markers.lock().unwrap_or_else(|p| p.into_inner());
        if markers.contains_key(key) {
            return Ok(false);
        }
        markers.insert(key.to_string(), body);
        Ok(true)
    }

    async fn read_marker(&self, key: &str) -> Result<Option<Bytes>, StorageError> {
        let markers = self.markers.lock().unwrap_or_else(|p| p.into_inner());
        Ok(markers.get(key).cloned())
    }

    async fn delete_marker(&self, key: &str) -> Result<(), StorageError> {
        let mut markers = self.markers.lock().unwrap_or_else(|p| p.into_inner());
        markers.remove(key);
        Ok(())
    }
}
