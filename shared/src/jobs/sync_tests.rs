use std::collections::BTreeMap;
use std::time::Duration;

use bytes::Bytes;
use serde_json::json;

use super::*;
use crate::checksum::crc64;
use crate::storage::memory::{Fault, FaultAction, MemoryStore, Operation};

const PART: u64 = 100 * 1024;

fn settings() -> SyncSettings {
    SyncSettings {
        part_size: PART,
        concurrency: 3,
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        },
        ..SyncSettings::default()
    }
}

/// An S3-like source: it reports no CRC-64.
fn source_with(key: &str, data: &Bytes) -> MemoryStore {
    let source = MemoryStore::new("source-bucket")
        .without_crc64()
        .with_chunk_size(16 * 1024);
    source.insert_object(key, data.clone(), BTreeMap::new());
    source
}

/// An OSS-like target whose parts finish out of order.
fn target() -> MemoryStore {
    MemoryStore::new("target-bucket").with_part_yields(|part| 10 - part % 10)
}

fn sample(len: usize) -> Bytes {
    (0..len)
        .map(|i| (i.wrapping_mul(31) % 253) as u8)
        .collect::<Vec<u8>>()
        .into()
}

fn record(key: &str, size: u64) -> S3ObjectRecord {
    S3ObjectRecord {
        bucket: "source-bucket".to_string(),
        key: key.to_string(),
        size,
        etag: None,
        sequencer: None,
        event_name: "ObjectCreated:CompleteMultipartUpload".to_string(),
    }
}

fn event_record(raw_key: &str, size: u64) -> serde_json::Value {
    json!({
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": "us-east-1",
        "eventTime": "2025-06-01T03:00:00.000Z",
        "eventName": "ObjectCreated:Put",
        "userIdentity": {"principalId": "AWS:EXAMPLE"},
        "requestParameters": {"sourceIPAddress": "127.0.0.1"},
        "responseElements": {},
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": {"name": "source-bucket", "arn": "arn:aws:s3:::source-bucket"},
            "object": {"key": raw_key, "size": size, "eTag": "abc", "sequencer": "0065A1B2C3D4E5F601"}
        }
    })
}

#[tokio::test]
async fn copies_object_to_target_prefix() {
    let key = "mysql/export-1/db/db.t$x/1/part-00000.gz.parquet";
    let data = sample(5 * PART as usize + 123);
    let source = source_with(key, &data);
    let sink = target();

    let outcome = sync_record(&source, &sink, &record(key, data.len() as u64), &settings())
        .await
        .expect("sync succeeds");

    let target_key = "iotdb-backup/mysql/export-1/db/db.t$x/1/part-00000.gz.parquet";
    assert!(
        matches!(outcome, SyncOutcome::Copied { bytes, parts: 6, crc64: crc, .. } if bytes == data.len() as u64 && crc == crc64(&data))
    );
    assert_eq!(sink.object(target_key), Some(data));
    let metadata = sink.object_metadata(target_key).unwrap_or_default();
    let source_etag = ObjectSource::head(&source, key)
        .await
        .ok()
        .flatten()
        .and_then(|info| info.etag);
    assert_eq!(metadata.get(SOURCE_ETAG_METADATA_KEY), source_etag.as_ref());
    assert!(sink.pending_upload_ids().is_empty());
}

#[tokio::test]
async fn zero_byte_object_is_one_put() {
    let key = "mysql/export-1/_SUCCESS";
    let source = source_with(key, &Bytes::new());
    let sink = target();

    let outcome = sync_record(&source, &sink, &record(key, 0), &settings())
        .await
        .expect("sync succeeds");

    assert!(matches!(
        outcome,
        SyncOutcome::Copied {
            bytes: 0,
            parts: 1,
            crc64: 0,
            ..
        }
    ));
    assert_eq!(sink.calls_of(Operation::PutObject).len(), 1);
    assert_eq!(
        sink.object("iotdb-backup/mysql/export-1/_SUCCESS"),
        Some(Bytes::new())
    );
}

#[tokio::test]
async fn key_outside_prefix_is_skipped() {
    let source = source_with("other/file", &sample(10));
    let sink = target();

    let outcome = sync_record(&source, &sink, &record("other/file", 10), &settings())
        .await
        .expect("no error");

    assert!(matches!(outcome, SyncOutcome::Skipped { .. }));
    assert!(source.calls().is_empty());
    assert!(sink.calls().is_empty());
}

#[tokio::test]
async fn missing_source_is_reported() {
    let source = MemoryStore::new("source-bucket");
    let sink = target();

    let outcome = sync_record(&source, &sink, &record("mysql/gone", 10), &settings())
        .await
        .expect("no error");

    assert_eq!(outcome, SyncOutcome::SourceMissing);
    assert!(sink.calls().is_empty());
}

#[tokio::test]
async fn second_run_is_already_synced() {
    let key = "mysql/db/big.parquet";
    let data = sample(3 * PART as usize + 1);
    let source = source_with(key, &data);
    let sink = target();
    let record = record(key, data.len() as u64);

    sync_record(&source, &sink, &record, &settings())
        .await
        .expect("first run copies");
    let writes_after_first = sink.calls_of(Operation::UploadPart).len();
    let second = sync_record(&source, &sink, &record, &settings())
        .await
        .expect("second run succeeds");

    assert_eq!(second, SyncOutcome::AlreadySynced);
    assert_eq!(
        sink.calls_of(Operation::UploadPart).len(),
        writes_after_first
    );
    assert_eq!(sink.calls_of(Operation::CreateMultipartUpload).len(), 1);
}

#[tokio::test]
async fn conflict_is_not_overwritten() {
    let key = "mysql/db/table.parquet";
    let data = sample(1000);
    let source = source_with(key, &data);
    let sink = target();
    let target_key = "iotdb-backup/mysql/db/table.parquet";
    let other = Bytes::from_static(b"someone else's bytes");
    sink.insert_object(target_key, other.clone(), BTreeMap::new());

    let error = sync_record(&source, &sink, &record(key, 1000), &settings())
        .await
        .expect_err("conflict");

    let message = error.to_string();
    assert!(matches!(error, SyncError::Conflict { .. }));
    assert!(message.contains(&crc64(&other).to_string()), "{message}");
    assert!(message.contains(target_key), "{message}");
    assert!(!error.is_retryable());
    assert_eq!(sink.object(target_key), Some(other));
    assert!(sink.calls_of(Operation::PutObject).is_empty());
}

#[tokio::test]
async fn conflict_names_both_crc64_values_when_source_has_one() {
    let key = "mysql/db/table.parquet";
    let data = sample(1000);
    // An OSS-like source reports its CRC-64.
    let source = MemoryStore::new("source-bucket");
    source.insert_object(key, data.clone(), BTreeMap::new());
    let sink = target();
    let other = sample(999);
    sink.insert_object(
        "iotdb-backup/mysql/db/table.parquet",
        other.clone(),
        BTreeMap::new(),
    );

    let error = sync_record(&source, &sink, &record(key, 1000), &settings())
        .await
        .expect_err("conflict");

    let message = error.to_string();
    assert!(message.contains(&crc64(&data).to_string()), "{message}");
    assert!(message.contains(&crc64(&other).to_string()), "{message}");
}

#[tokio::test]
async fn concurrent_duplicate_deliveries_write_one_object() {
    let key = "mysql/db/dup.parquet";
    let data = sample(4 * PART as usize + 5);
    let source = source_with(key, &data);
    let sink = target();
    let record = record(key, data.len() as u64);
    let settings = settings();

    let (first, second) = tokio::join!(
        sync_record(&source, &sink, &record, &settings),
        sync_record(&source, &sink, &record, &settings)
    );

    let mut outcomes = [
        first.expect("first delivery succeeds"),
        second.expect("second delivery succeeds"),
    ];
    outcomes.sort_by_key(|outcome| outcome.label());
    assert_eq!(outcomes[0], SyncOutcome::AlreadySynced);
    assert!(matches!(outcomes[1], SyncOutcome::Copied { .. }));
    assert_eq!(
        sink.calls_of(Operation::CreateMultipartUpload).len(),
        2,
        "both deliveries should have raced"
    );
    assert_eq!(sink.object("iotdb-backup/mysql/db/dup.parquet"), Some(data));
    assert_eq!(sink.object_count(), 1);
    assert!(sink.pending_upload_ids().is_empty());
}

#[tokio::test]
async fn test_event_is_ignored() {
    let source = MemoryStore::new("source-bucket");
    let sink = target();
    let event = json!({"Service": "Amazon S3", "Event": "s3:TestEvent", "Time": "2025-06-01T03:00:00.000Z", "Bucket": "source-bucket"});

    let report = sync_event(event, &source, &sink, &settings()).await;

    assert!(report.test_event);
    assert!(report.records.is_empty());
    assert!(!report.should_fail());
    assert!(sink.calls().is_empty());
}

#[tokio::test]
async fn event_reports_each_record() {
    let data = sample(2000);
    let source = source_with("mysql/a b+c/中.parquet", &data);
    let sink = target();
    let event = json!({"Records": [
        event_record("mysql/a+b%2Bc/%E4%B8%AD.parquet", 2000),
        event_record("mysql/gone", 5),
        event_record("mysql/bad%zz", 5),
        event_record("elsewhere/x", 5),
    ]});

    let report = sync_event(event, &source, &sink, &settings()).await;

    let keys: Vec<&str> = report
        .records
        .iter()
        .map(|record| record.key.as_str())
        .collect();
    assert_eq!(
        keys,
        [
            "mysql/a b+c/中.parquet",
            "mysql/gone",
            "mysql/bad%zz",
            "elsewhere/x"
        ]
    );
    assert!(matches!(
        report.records[0].result,
        Ok(SyncOutcome::Copied { .. })
    ));
    assert!(matches!(
        report.records[1].result,
        Ok(SyncOutcome::SourceMissing)
    ));
    assert!(matches!(
        report.records[2].result,
        Err(SyncError::InvalidRecord(_))
    ));
    assert!(matches!(
        report.records[3].result,
        Ok(SyncOutcome::Skipped { .. })
    ));
    assert!(
        !report.should_fail(),
        "permanent failures are reported and dropped"
    );
    assert_eq!(
        sink.object("iotdb-backup/mysql/a b+c/中.parquet"),
        Some(data)
    );
}

#[tokio::test]
async fn transient_failure_fails_the_invocation() {
    let data = sample(3 * PART as usize);
    let source = source_with("mysql/flaky", &data);
    let sink = target();
    sink.inject(
        Fault::new(
            Operation::UploadPart,
            FaultAction::Fail(ErrorKind::Transient),
        )
        .on_part(2),
    );
    let event = json!({"Records": [event_record("mysql/flaky", data.len() as u64)]});

    let report = sync_event(event, &source, &sink, &settings()).await;

    let error = report.records[0].result.as_ref().expect_err("record fails");
    assert!(error.is_retryable());
    assert!(report.should_fail());
    assert!(sink.pending_upload_ids().is_empty());
    assert!(sink.object("iotdb-backup/mysql/flaky").is_none());
}

#[tokio::test]
async fn invalid_event_is_dropped() {
    let source = MemoryStore::new("source-bucket");
    let sink = target();

    let report = sync_event(json!({"unexpected": true}), &source, &sink, &settings()).await;

    assert_eq!(report.records.len(), 1);
    assert!(matches!(
        report.records[0].result,
        Err(SyncError::InvalidRecord(EventError::InvalidEvent(_)))
    ));
    assert!(!report.should_fail());
}
