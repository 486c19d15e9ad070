//! The `aliyun-backup-pull` handler against moto, the fake RDS API and the fake OSS, fed with
//! the sample events in `events/` (their ids replaced by the seeded backup's).

use std::sync::Arc;

use backup_bridge::checksum::crc64;
use backup_bridge::jobs::pull::{Continuation, RecordedContinuations};
use backup_bridge::lambda::pull::PullFunction;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;
use testkit::local_clouds::{LocalClouds, SeededBackup, sample_bytes};
use testkit::{aws, paths};

const MIB: u64 = 1024 * 1024;

async fn function(
    env: Vec<(String, String)>,
    clouds: &LocalClouds,
    continuations: Arc<RecordedContinuations>,
) -> PullFunction {
    let lookup = move |name: &str| {
        env.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    let continuation: Arc<dyn Continuation> = continuations;
    PullFunction::from_env(
        &lookup,
        &aws::sdk_config(&clouds.moto_url),
        Some(continuation),
    )
    .await
    .expect("pull function configures")
}

fn invocation(payload: Value) -> LambdaEvent<Value> {
    let mut context = Context::default();
    context.request_id = "test-request".to_string();
    context.deadline = u64::try_from(chrono::Utc::now().timestamp_millis()).unwrap() + 600_000;
    LambdaEvent::new(payload, context)
}

/// Loads `events/<name>` with its instance and backup ids replaced by the seeded backup's.
fn sample_event(name: &str, backup: &SeededBackup) -> Value {
    let path = paths::workspace_root().unwrap().join("events").join(name);
    let text = std::fs::read_to_string(&path).unwrap();
    let mut event: Value = serde_json::from_str(&text).unwrap();
    if event.get("instance_id").is_some() {
        event["instance_id"] = Value::from(backup.instance_id.clone());
        event["backup_id"] = Value::from(backup.backup_id.clone());
    }
    event
}

async fn s3_object(
    clouds: &LocalClouds,
    key: &str,
) -> (Vec<u8>, std::collections::HashMap<String, String>) {
    let output = aws::s3_client()
        .get_object()
        .bucket(&clouds.bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    let metadata = output.metadata().cloned().unwrap_or_default();
    let bytes = output.body.collect().await.unwrap().into_bytes().to_vec();
    (bytes, metadata)
}

#[tokio::test]
async fn sample_schedule_event_pulls_the_seeded_backup() {
    let clouds = LocalClouds::start("pull-schedule").await.unwrap();
    let backup = clouds.seed_aliyun_backup(11 * MIB + 7, 11).await.unwrap();
    let continuations = Arc::new(RecordedContinuations::default());
    let function = function(clouds.pull_env(&backup), &clouds, continuations.clone()).await;

    let event = sample_event("aliyun-backup-pull-schedule.json", &backup);
    let result = function.handle(invocation(event)).await.unwrap();

    let pulled = &result["backups"][0];
    assert_eq!(pulled["outcome"], "pulled", "{result}");
    assert_eq!(pulled["key"], backup.expected_key.as_str());
    assert_eq!(pulled["parts"], 3);
    assert_eq!(pulled["crc64"], backup.crc64.to_string());
    let (bytes, metadata) = s3_object(&clouds, &backup.expected_key).await;
    assert_eq!(bytes, sample_bytes((11 * MIB + 7) as usize, 11));
    assert_eq!(metadata["crc64ecma"], backup.crc64.to_string());
    assert_eq!(metadata["backup-id"], backup.backup_id);
    assert!(continuations.take().is_empty());

    // A second schedule finds the backup in S3 and skips it.
    let event = sample_event("aliyun-backup-pull-schedule.json", &backup);
    let again = function.handle(invocation(event)).await.unwrap();
    assert_eq!(again["backups"][0]["outcome"], "already_pulled", "{again}");
}

#[tokio::test]
async fn forced_deadline_takes_three_invocations() {
    let clouds = LocalClouds::start("pull-three-runs").await.unwrap();
    let size = 11 * MIB;
    let backup = clouds.seed_aliyun_backup(size, 12).await.unwrap();
    let mut env = clouds.pull_env(&backup);
    // A margin longer than the invocation leaves a deadline that has passed, so every run
    // uploads exactly its one guaranteed part.
    env.push(("PULL_DEADLINE_MARGIN_SECONDS".into(), "3600".into()));
    let continuations = Arc::new(RecordedContinuations::default());
    let function = function(env, &clouds, continuations.clone()).await;

    let mut event = sample_event("aliyun-backup-pull-backup.json", &backup);
    let mut results = Vec::new();
    for _ in 0..5 {
        let result = function.handle(invocation(event)).await.unwrap();
        let outcome = result["backups"][0]["outcome"]
            .as_str()
            .unwrap()
            .to_string();
        results.push(result);
        if outcome != "continued" {
            break;
        }
        let mut payloads = continuations.take();
        assert_eq!(payloads.len(), 1);
        event = payloads.remove(0).to_event();
    }

    assert_eq!(results.len(), 3, "{results:?}");
    let last = &results[2]["backups"][0];
    assert_eq!(last["outcome"], "pulled", "{last}");
    assert_eq!(last["runs"], 3);
    assert_eq!(last["crc64"], backup.crc64.to_string());
    let (bytes, _) = s3_object(&clouds, &backup.expected_key).await;
    assert_eq!(crc64(&bytes), backup.crc64);
    assert_eq!(bytes, sample_bytes(size as usize, 12));
}

#[tokio::test]
async fn stale_continuation_fails_without_retry() {
    let clouds = LocalClouds::start("pull-stale-continuation").await.unwrap();
    let backup = clouds.seed_aliyun_backup(11 * MIB, 13).await.unwrap();
    let continuations = Arc::new(RecordedContinuations::default());
    let function = function(clouds.pull_env(&backup), &clouds, continuations.clone()).await;

    // The sample names an upload that moto never started and a backup the fake does not list.
    let event = sample_event("aliyun-backup-pull-continuation.json", &backup);
    let result = function.handle(invocation(event)).await.unwrap();

    assert_eq!(result["backups"][0]["outcome"], "failed", "{result}");
    assert!(continuations.take().is_empty());
}

/// GET requests of the backup file that the fake OSS received, as (status, Expires, Range).
fn downloads(clouds: &LocalClouds) -> Vec<(u16, String, Option<String>)> {
    clouds
        .oss
        .request_log()
        .into_iter()
        .filter(|request| request.method == "GET" && request.path.ends_with("_qp.xb"))
        .map(|request| {
            let expires = request
                .query
                .iter()
                .find(|(name, _)| name == "Expires")
                .map(|(_, value)| value.clone())
                .unwrap_or_default();
            let range = request
                .headers
                .iter()
                .find(|(name, _)| name == "range")
                .map(|(_, value)| value.clone());
            (request.status, expires, range)
        })
        .collect()
}

#[tokio::test]
async fn a_link_that_expires_mid_stream_is_renewed_and_resumed_with_range() {
    let clouds = LocalClouds::start("pull-link-expiry").await.unwrap();
    let size = 11 * MIB + 7;
    let backup = clouds.seed_aliyun_backup(size, 14).await.unwrap();
    let continuations = Arc::new(RecordedContinuations::default());
    let function = function(clouds.pull_env(&backup), &clouds, continuations.clone()).await;
    // The connection breaks 3 MiB in, inside part 1 (parts are 5 MiB), and the link has run out
    // by the time the download is reopened.
    clouds.oss.expire_link_mid_download(3 * MIB);

    let event = sample_event("aliyun-backup-pull-backup.json", &backup);
    let result = function.handle(invocation(event)).await.unwrap();

    let pulled = &result["backups"][0];
    assert_eq!(pulled["outcome"], "pulled", "{result}");
    assert_eq!(pulled["crc64"], backup.crc64.to_string());
    let (bytes, metadata) = s3_object(&clouds, &backup.expected_key).await;
    assert_eq!(bytes, sample_bytes(size as usize, 14));
    assert_eq!(metadata["crc64ecma"], backup.crc64.to_string());

    // The cut download, the expired link refused, then a fresh link resumed at the first byte
    // not yet read.
    let downloads = downloads(&clouds);
    let refused = downloads
        .iter()
        .position(|(status, _, _)| *status == 403)
        .unwrap_or_else(|| panic!("no expired link was refused: {downloads:?}"));
    let (_, old_link, _) = &downloads[refused];
    let resumed = &downloads[refused + 1..];
    assert!(!resumed.is_empty(), "{downloads:?}");
    let (status, new_link, range) = &resumed[0];
    assert_eq!(*status, 206, "{downloads:?}");
    assert!(new_link > old_link, "{downloads:?}");
    let resume_offset = range
        .as_deref()
        .and_then(|range| range.strip_prefix("bytes="))
        .and_then(|range| range.split('-').next())
        .and_then(|start| start.parse::<u64>().ok())
        .unwrap_or_else(|| panic!("the resumed download has no Range: {downloads:?}"));
    assert!(
        (2 * MIB..=3 * MIB).contains(&resume_offset),
        "{downloads:?}"
    );
    // Parts 2 and 3 are read by ranges through the fresh link.
    let ranged_after: Vec<&str> = resumed[1..]
        .iter()
        .filter_map(|(_, _, range)| range.as_deref())
        .collect();
    assert_eq!(ranged_after.len(), 2, "{downloads:?}");
    let describe_calls = backup
        .rds
        .calls()
        .iter()
        .filter(|call| call.action == "DescribeBackups" && call.error_code.is_none())
        .count();
    assert!(describe_calls >= 2, "the link was never renewed");
    assert!(continuations.take().is_empty());
    let uploads = aws::s3_client()
        .list_multipart_uploads()
        .bucket(&clouds.bucket)
        .send()
        .await
        .unwrap();
    assert!(uploads.uploads().is_empty(), "{uploads:?}");
}

/// A download link that the configuration does not trust (a host outside the allow-list, or
/// plain `http` where only `https` is allowed) fails the pull before any byte is fetched, names
/// the link's host or scheme, and leaves nothing in S3.
#[tokio::test]
async fn untrusted_download_links_fail_before_any_byte_is_fetched() {
    let cases = [
        ("DOWNLOAD_ALLOWED_HOSTS", "aliyuncs.com", "localhost"),
        ("DOWNLOAD_ALLOW_HTTP", "false", "http"),
    ];
    for (name, value, named) in cases {
        let clouds = LocalClouds::start("pull-untrusted-link").await.unwrap();
        let backup = clouds.seed_aliyun_backup(6 * MIB, 15).await.unwrap();
        let env: Vec<(String, String)> = clouds
            .pull_env(&backup)
            .into_iter()
            .map(|(key, old)| {
                let new = if key == name { value.to_string() } else { old };
                (key, new)
            })
            .collect();
        let continuations = Arc::new(RecordedContinuations::default());
        let function = function(env, &clouds, continuations.clone()).await;

        let event = sample_event("aliyun-backup-pull-backup.json", &backup);
        let result = function.handle(invocation(event)).await.unwrap();

        let pulled = &result["backups"][0];
        assert_eq!(pulled["outcome"], "failed", "{name}={value}: {result}");
        assert!(
            pulled.to_string().contains(named),
            "{name}={value}: the error should name {named:?}: {pulled}"
        );
        assert!(
            downloads(&clouds).is_empty(),
            "{name}={value}: the link was fetched"
        );
        let s3 = aws::s3_client();
        let head = s3
            .head_object()
            .bucket(&clouds.bucket)
            .key(&backup.expected_key)
            .send()
            .await;
        assert!(head.is_err(), "{name}={value}: an object was written");
        let uploads = s3
            .list_multipart_uploads()
            .bucket(&clouds.bucket)
            .send()
            .await
            .unwrap();
        assert!(
            uploads.uploads().is_empty(),
            "{name}={value}: an upload was left open"
        );
        assert!(continuations.take().is_empty());
    }
}
