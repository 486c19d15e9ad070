//! The `s3-oss-sync` handler against moto and the fake OSS, fed with the sample events in
//! `events/` (their bucket renamed to each test's own bucket).

use backup_bridge::checksum::crc64;
use backup_bridge::lambda::sync::SyncFunction;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;
use testkit::local_clouds::{LocalClouds, OSS_BUCKET, sample_bytes};
use testkit::s3_events::{CreatedObject, object_created_event};
use testkit::{aws, paths};

async fn function(clouds: &LocalClouds) -> SyncFunction {
    let env = clouds.sync_env();
    let lookup = move |name: &str| {
        env.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    SyncFunction::from_env(&lookup, &aws::sdk_config(&clouds.moto_url))
        .await
        .expect("sync function configures")
}

fn invocation(payload: Value) -> LambdaEvent<Value> {
    let mut context = Context::default();
    context.request_id = "test-request".to_string();
    context.deadline = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap() + 60_000;
    LambdaEvent::new(payload, context)
}

/// Loads `events/<name>` with its bucket replaced by `bucket`.
fn sample_event(name: &str, bucket: &str) -> Value {
    let path = paths::workspace_root().unwrap().join("events").join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut event: Value = serde_json::from_str(&text).unwrap();
    if let Some(records) = event["Records"].as_array_mut() {
        for record in records {
            record["s3"]["bucket"]["name"] = Value::from(bucket);
            record["s3"]["bucket"]["arn"] = Value::from(format!("arn:aws:s3:::{bucket}"));
        }
    }
    event
}

fn decoded_key(event: &Value) -> String {
    let raw = event["Records"][0]["s3"]["object"]["key"].as_str().unwrap();
    backup_bridge::events::decode_s3_key(raw).unwrap()
}

fn target_key(source_key: &str) -> String {
    format!("iotdb-backup/{source_key}")
}

#[tokio::test]
async fn sample_put_event_copies_the_object() {
    let clouds = LocalClouds::start("sync-put").await.unwrap();
    let event = sample_event("s3-oss-sync-put.json", &clouds.bucket);
    let key = decoded_key(&event);
    let body = sample_bytes(300 * 1024, 1);
    let etag = clouds.put_s3_object(&key, body.clone()).await.unwrap();

    let result = function(&clouds)
        .await
        .handle(invocation(event))
        .await
        .unwrap();

    assert_eq!(result["records"][0]["outcome"], "copied");
    assert_eq!(result["records"][0]["crc64"], crc64(&body).to_string());
    let stored = clouds.oss.object(OSS_BUCKET, &target_key(&key)).unwrap();
    assert_eq!(stored.crc64, crc64(&body));
    assert_eq!(stored.metadata.get("source-etag"), Some(&etag));
    assert_eq!(
        clouds
            .oss
            .read_object(OSS_BUCKET, &target_key(&key))
            .unwrap(),
        body
    );
}

#[tokio::test]
async fn sample_multipart_event_with_awkward_key_copies_in_parts() {
    let clouds = LocalClouds::start("sync-awkward").await.unwrap();
    let event = sample_event("s3-oss-sync-multipart-awkward-key.json", &clouds.bucket);
    let key = decoded_key(&event);
    assert!(
        key.contains("订单库.order items+v2$archive"),
        "decoded key: {key}"
    );
    // Three and a bit parts of the configured 1 MiB.
    let body = sample_bytes(3 * 1024 * 1024 + 4321, 2);
    clouds.put_s3_object(&key, body.clone()).await.unwrap();

    let result = function(&clouds)
        .await
        .handle(invocation(event))
        .await
        .unwrap();

    assert_eq!(result["records"][0]["outcome"], "copied");
    assert_eq!(result["records"][0]["parts"], 4);
    let stored = clouds.oss.object(OSS_BUCKET, &target_key(&key)).unwrap();
    assert_eq!(stored.size, body.len() as u64);
    assert_eq!(stored.crc64, crc64(&body));
    // Known only after the last part, the CRC-64 is written by copying the object onto itself.
    assert_eq!(
        stored.metadata.get("crc64ecma"),
        Some(&crc64(&body).to_string())
    );
    assert!(stored.metadata.contains_key("source-etag"));
    assert!(clouds.oss.pending_uploads(OSS_BUCKET).is_empty());
}

#[tokio::test]
async fn sample_zero_byte_event_writes_an_empty_object() {
    let clouds = LocalClouds::start("sync-empty").await.unwrap();
    let event = sample_event("s3-oss-sync-zero-byte.json", &clouds.bucket);
    let key = decoded_key(&event);
    clouds.put_s3_object(&key, Vec::new()).await.unwrap();

    let result = function(&clouds)
        .await
        .handle(invocation(event))
        .await
        .unwrap();

    assert_eq!(result["records"][0]["outcome"], "copied");
    let stored = clouds.oss.object(OSS_BUCKET, &target_key(&key)).unwrap();
    assert_eq!(stored.size, 0);
    let multipart = clouds
        .oss
        .request_log()
        .iter()
        .filter(|request| request.query.iter().any(|(name, _)| name == "uploads"))
        .count();
    assert_eq!(multipart, 0, "a zero-byte object needs no multipart upload");
}

#[tokio::test]
async fn sample_test_event_is_accepted_and_ignored() {
    let clouds = LocalClouds::start("sync-test-event").await.unwrap();
    let event = sample_event("s3-oss-sync-test-event.json", &clouds.bucket);

    let result = function(&clouds)
        .await
        .handle(invocation(event))
        .await
        .unwrap();

    assert_eq!(result["test_event"], true);
    assert_eq!(result["records"].as_array().unwrap().len(), 0);
    assert!(clouds.oss.request_log().is_empty());
}

fn put_event(clouds: &LocalClouds, key: &str, size: u64, etag: &str) -> Value {
    object_created_event(&[CreatedObject {
        event: "Put",
        bucket: &clouds.bucket,
        key,
        size,
        etag,
        sequencer: "0062F1A4B3C2D1E0F9",
    }])
}

#[tokio::test]
async fn repeated_delivery_is_already_synced() {
    let clouds = LocalClouds::start("sync-repeat").await.unwrap();
    let key = "mysql/export-1/shop/shop.orders/1/part-00000-a.gz.parquet";
    let body = sample_bytes(200 * 1024, 3);
    let etag = clouds.put_s3_object(key, body.clone()).await.unwrap();
    let function = function(&clouds).await;

    let first = function
        .handle(invocation(put_event(&clouds, key, 200 * 1024, &etag)))
        .await
        .unwrap();
    let second = function
        .handle(invocation(put_event(&clouds, key, 200 * 1024, &etag)))
        .await
        .unwrap();

    assert_eq!(first["records"][0]["outcome"], "copied");
    assert_eq!(second["records"][0]["outcome"], "already_synced");
    assert!(
        clouds.wecom.messages().is_empty(),
        "a successful sync sends no alert"
    );
}

#[tokio::test]
async fn concurrent_deliveries_end_with_one_correct_object() {
    let clouds = LocalClouds::start("sync-race").await.unwrap();
    let key = "mysql/export-1/shop/shop.items/1/part-00000-b.gz.parquet";
    let body = sample_bytes(2 * 1024 * 1024 + 17, 4);
    let etag = clouds.put_s3_object(key, body.clone()).await.unwrap();
    let function = function(&clouds).await;
    let size = body.len() as u64;

    let (first, second) = tokio::join!(
        function.handle(invocation(put_event(&clouds, key, size, &etag))),
        function.handle(invocation(put_event(&clouds, key, size, &etag))),
    );

    let outcomes = [
        first.unwrap()["records"][0]["outcome"].clone(),
        second.unwrap()["records"][0]["outcome"].clone(),
    ];
    assert!(outcomes.contains(&Value::from("copied")), "{outcomes:?}");
    assert!(
        outcomes
            .iter()
            .all(|outcome| outcome == "copied" || outcome == "already_synced")
    );
    assert_eq!(
        clouds
            .oss
            .read_object(OSS_BUCKET, &target_key(key))
            .unwrap(),
        body
    );
    assert!(clouds.oss.pending_uploads(OSS_BUCKET).is_empty());
}

#[tokio::test]
async fn different_content_at_the_target_is_a_conflict_left_untouched() {
    let clouds = LocalClouds::start("sync-conflict").await.unwrap();
    let key = "mysql/export-1/shop/shop.users/1/part-00000-c.gz.parquet";
    let body = sample_bytes(150 * 1024, 5);
    let etag = clouds.put_s3_object(key, body.clone()).await.unwrap();
    let other = b"someone else's object".to_vec();
    clouds
        .oss
        .put_object_direct(OSS_BUCKET, &target_key(key), &other, &[])
        .unwrap();

    let result = function(&clouds)
        .await
        .handle(invocation(put_event(&clouds, key, 150 * 1024, &etag)))
        .await
        .unwrap();

    assert_eq!(result["records"][0]["outcome"], "failed");
    assert_eq!(result["records"][0]["retryable"], false);
    let error = result["records"][0]["error"].as_str().unwrap();
    assert!(error.contains("conflict"), "{error}");
    assert!(error.contains(&crc64(&other).to_string()), "{error}");
    assert_eq!(
        clouds
            .oss
            .read_object(OSS_BUCKET, &target_key(key))
            .unwrap(),
        other
    );
    let messages = clouds.wecom.messages();
    assert_eq!(
        messages.len(),
        1,
        "one alert for the conflict: {messages:?}"
    );
    assert!(
        messages[0].content.contains("shop.users"),
        "{}",
        messages[0].content
    );
}

#[tokio::test]
async fn deleted_source_is_reported_and_not_retried() {
    let clouds = LocalClouds::start("sync-deleted").await.unwrap();
    let key = "mysql/export-1/shop/shop.gone/1/part-00000-d.gz.parquet";

    let result = function(&clouds)
        .await
        .handle(invocation(put_event(&clouds, key, 10, "0123")))
        .await
        .unwrap();

    assert_eq!(result["records"][0]["outcome"], "source_missing");
    assert!(clouds.oss.object(OSS_BUCKET, &target_key(key)).is_none());
}

#[tokio::test]
async fn keys_outside_the_prefix_and_other_buckets_are_skipped() {
    let clouds = LocalClouds::start("sync-skip").await.unwrap();
    let outside = "aliyun-rds/rm-1/2026/12/04/123/backup_qp.xb";
    clouds
        .put_s3_object(outside, b"pulled".to_vec())
        .await
        .unwrap();
    let mut event = put_event(&clouds, outside, 6, "e1");
    let mut other_bucket = put_event(&clouds, "mysql/x/y.gz.parquet", 6, "e2");
    other_bucket["Records"][0]["s3"]["bucket"]["name"] = Value::from("someone-elses-bucket");
    let second = other_bucket["Records"][0].clone();
    event["Records"].as_array_mut().unwrap().push(second);

    let result = function(&clouds)
        .await
        .handle(invocation(event))
        .await
        .unwrap();

    assert_eq!(result["records"][0]["outcome"], "skipped");
    assert_eq!(result["records"][1]["outcome"], "skipped");
    assert!(clouds.oss.request_log().is_empty());
}

#[tokio::test]
async fn state_prefix_inside_the_sync_prefix_is_rejected_at_start() {
    let clouds = LocalClouds::start("sync-state-prefix").await.unwrap();
    let mut env = clouds.sync_env();
    env.push(("STATE_PREFIX".to_string(), "mysql/state/".to_string()));
    let lookup = move |name: &str| {
        env.iter()
            .rev()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };

    let result = SyncFunction::from_env(&lookup, &aws::sdk_config(&clouds.moto_url)).await;

    let Err(error) = result else {
        panic!("a state prefix under mysql/ must be rejected");
    };
    assert!(
        error.to_string().contains("STATE_PREFIX=mysql/state/"),
        "{error}"
    );
}
