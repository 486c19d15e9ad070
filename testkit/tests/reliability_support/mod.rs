//! End-state checks shared by the reliability suites: the destination is byte-identical to the
//! source (CRC-64/XZ and SHA-256 computed here, not taken from the product) or absent, no
//! multipart upload is left open on either side, and the WeCom robot received exactly the
//! expected alerts.

#![allow(dead_code)]

use backup_bridge::checksum::crc64;
use lambda_runtime::{Context, LambdaEvent};
use serde_json::Value;
use sha2::{Digest, Sha256};
use testkit::aws;
use testkit::fake_wecom::FakeWecom;
use testkit::local_clouds::{LocalClouds, OSS_BUCKET};

/// A function environment as `(name, value)` pairs.
pub type Env = Vec<(String, String)>;

/// Replaces or adds one variable.
pub fn set(env: &mut Env, name: &str, value: impl Into<String>) {
    env.retain(|(key, _)| key != name);
    env.push((name.to_string(), value.into()));
}

/// Turns an environment into the lookup that the functions' `from_env` takes.
pub fn lookup(env: Env) -> impl Fn(&str) -> Option<String> {
    move |name: &str| {
        env.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    }
}

/// Builds a Lambda event whose deadline is `seconds` from now.
pub fn invocation(payload: Value, seconds: i64) -> LambdaEvent<Value> {
    let mut context = Context::default();
    context.request_id = "reliability-request".to_string();
    let deadline = chrono::Utc::now().timestamp_millis() + seconds * 1000;
    context.deadline = u64::try_from(deadline).unwrap_or_default();
    LambdaEvent::new(payload, context)
}

/// Returns the lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

/// Asserts that `actual` equals `expected` by length, CRC-64/XZ and SHA-256.
pub fn assert_identical(what: &str, actual: &[u8], expected: &[u8]) {
    assert_eq!(actual.len(), expected.len(), "{what}: size differs");
    assert_eq!(crc64(actual), crc64(expected), "{what}: CRC-64 differs");
    assert_eq!(
        sha256_hex(actual),
        sha256_hex(expected),
        "{what}: SHA-256 differs"
    );
}

/// Asserts that the fake OSS holds `key` with exactly `expected`.
pub fn assert_oss_identical(clouds: &LocalClouds, key: &str, expected: &[u8]) {
    let Some(stored) = clouds.oss.read_object(OSS_BUCKET, key) else {
        panic!("oss://{OSS_BUCKET}/{key} is missing");
    };
    assert_identical(&format!("oss://{OSS_BUCKET}/{key}"), &stored, expected);
}

/// Asserts that the fake OSS has no object at `key`.
pub fn assert_oss_absent(clouds: &LocalClouds, key: &str) {
    assert!(
        clouds.oss.object(OSS_BUCKET, key).is_none(),
        "oss://{OSS_BUCKET}/{key} exists but should not"
    );
}

/// Reads an object from moto, or `None` when it does not exist.
pub async fn s3_bytes(bucket: &str, key: &str) -> Option<Vec<u8>> {
    let output = aws::s3_client()
        .get_object()
        .bucket(bucket)
        .key(key)
        .send()
        .await
        .ok()?;
    Some(output.body.collect().await.ok()?.into_bytes().to_vec())
}

/// Asserts that moto holds `bucket/key` with exactly `expected`.
pub async fn assert_s3_identical(bucket: &str, key: &str, expected: &[u8]) {
    let Some(stored) = s3_bytes(bucket, key).await else {
        panic!("s3://{bucket}/{key} is missing");
    };
    assert_identical(&format!("s3://{bucket}/{key}"), &stored, expected);
}

/// Asserts that moto has no object at `bucket/key`.
pub async fn assert_s3_absent(bucket: &str, key: &str) {
    assert!(
        s3_bytes(bucket, key).await.is_none(),
        "s3://{bucket}/{key} exists but should not"
    );
}

/// Lists the open multipart uploads of a moto bucket as `(key, upload id)`.
pub async fn s3_open_uploads(bucket: &str) -> Vec<(String, String)> {
    let output = aws::s3_client()
        .list_multipart_uploads()
        .bucket(bucket)
        .send()
        .await
        .unwrap_or_else(|error| panic!("ListMultipartUploads on {bucket} failed: {error:?}"));
    output
        .uploads()
        .iter()
        .map(|upload| {
            (
                upload.key().unwrap_or_default().to_string(),
                upload.upload_id().unwrap_or_default().to_string(),
            )
        })
        .collect()
}

/// Asserts that neither the run's moto bucket nor the fake OSS bucket has an open upload.
pub async fn assert_no_open_uploads(clouds: &LocalClouds) {
    let s3 = s3_open_uploads(&clouds.bucket).await;
    assert!(
        s3.is_empty(),
        "open uploads in s3://{}: {s3:?}",
        clouds.bucket
    );
    let oss = clouds.oss.pending_uploads(OSS_BUCKET);
    assert!(
        oss.is_empty(),
        "open uploads in oss://{OSS_BUCKET}: {oss:?}"
    );
}

/// Asserts that the robot received one message per entry of `expected`, each containing its
/// entry's text, and no other message.
pub fn assert_alerts(wecom: &FakeWecom, expected: &[&str]) {
    let messages = wecom.messages();
    let contents: Vec<&str> = messages
        .iter()
        .map(|message| message.content.as_str())
        .collect();
    assert_eq!(
        contents.len(),
        expected.len(),
        "expected {} alerts, received: {contents:#?}",
        expected.len()
    );
    for text in expected {
        let matching = contents
            .iter()
            .filter(|content| content.contains(text))
            .count();
        assert_eq!(matching, 1, "alerts containing {text:?}: {contents:#?}");
    }
}
