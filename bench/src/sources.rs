//! Source objects and function environments. Each source object is written once per size to
//! disk, and both `s3s-fs` and the fake OSS download bucket serve it.

use std::io::Write;

use anyhow::Context;
use backup_bridge::checksum::Crc64;
use bench::clients::s3_client;
use rand::{RngCore, SeedableRng};

use crate::figures::size_label;
use crate::jobs::SourceObject;
use crate::servers::{OSS_SOURCE_BUCKET, OssServer, S3_SOURCE_BUCKET, S3Server};

const WRITE_CHUNK: usize = 8 << 20;

/// Writes `size` random bytes as an S3 source object and uploads them to the OSS download
/// bucket. The bytes are incompressible, so no layer can shortcut the copy.
pub async fn create(s3: &S3Server, oss: &OssServer, size: u64) -> anyhow::Result<SourceObject> {
    let key = format!("source-{size}.bin");
    let path = s3.object_path(S3_SOURCE_BUCKET, &key);
    println!("bench: writing the {} source object", size_label(size));
    let crc64 = tokio::task::spawn_blocking({
        let path = path.clone();
        move || write_random_file(&path, size)
    })
    .await??;
    store_etag(s3, &key).await?;
    oss.upload_file(&path, &key)
        .await
        .with_context(|| format!("failed to upload {key} to the fake OSS"))?;
    Ok(SourceObject {
        url: oss.download_url(&key),
        key,
        size,
        crc64,
    })
}

/// Has `s3s-fs` record the ETag of an object that was written straight to its folder, by copying
/// the object onto itself. Without a recorded ETag, `s3s-fs` computes the MD5 of the whole file
/// before it replies to each HEAD and GET, at about 3 s per GiB on this machine. That charged every
/// request against the object, so a client that sends one GET per part paid for it once per
/// part. Real S3 stores the ETag when the object is written.
async fn store_etag(s3: &S3Server, key: &str) -> anyhow::Result<()> {
    let client = s3_client(&s3.endpoint());
    client
        .copy_object()
        .bucket(S3_SOURCE_BUCKET)
        .key(key)
        .copy_source(format!("{S3_SOURCE_BUCKET}/{key}"))
        .metadata_directive(aws_sdk_s3::types::MetadataDirective::Replace)
        .send()
        .await
        .with_context(|| format!("failed to copy {key} onto itself in s3s-fs"))?;
    Ok(())
}

/// Deletes a source object from both servers.
pub async fn remove(s3: &S3Server, oss: &OssServer, object: &SourceObject) -> anyhow::Result<()> {
    std::fs::remove_file(s3.object_path(S3_SOURCE_BUCKET, &object.key))?;
    oss.delete(OSS_SOURCE_BUCKET, &object.key).await
}

fn write_random_file(path: &std::path::Path, size: u64) -> anyhow::Result<u64> {
    let file = std::fs::File::create(path)
        .with_context(|| format!("failed to create {}", path.display()))?;
    let mut writer = std::io::BufWriter::with_capacity(WRITE_CHUNK, file);
    // A fixed seed makes every run move the same bytes.
    let mut rng = rand::rngs::StdRng::seed_from_u64(size);
    let mut chunk = vec![0u8; WRITE_CHUNK];
    let mut crc = Crc64::new();
    let mut left = size;
    while left > 0 {
        let length = usize::try_from(left.min(WRITE_CHUNK as u64))?;
        rng.fill_bytes(&mut chunk[..length]);
        crc.update(&chunk[..length]);
        writer.write_all(&chunk[..length])?;
        left -= length as u64;
    }
    writer.flush()?;
    Ok(crc.value())
}

/// Returns the environment a function's bootstrap starts with: the variables Lambda sets, test
/// credentials, and every endpoint pointed at 127.0.0.1 so that a start which reads them
/// reaches nothing else.
pub fn function_env(function: &str, oss: &OssServer) -> Vec<(String, String)> {
    let target = oss.target(crate::servers::OSS_TARGET_BUCKET);
    let pairs = [
        ("AWS_LAMBDA_FUNCTION_NAME", function.to_string()),
        ("AWS_LAMBDA_FUNCTION_VERSION", "$LATEST".to_string()),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "256".to_string()),
        (
            "AWS_LAMBDA_LOG_GROUP_NAME",
            format!("/aws/lambda/{function}"),
        ),
        ("AWS_LAMBDA_LOG_STREAM_NAME", "bench".to_string()),
        ("AWS_REGION", "us-east-1".to_string()),
        ("AWS_DEFAULT_REGION", "us-east-1".to_string()),
        ("AWS_ACCESS_KEY_ID", "benchaccesskey".to_string()),
        ("AWS_SECRET_ACCESS_KEY", "benchsecretkey".to_string()),
        ("AWS_EC2_METADATA_DISABLED", "true".to_string()),
        ("AWS_ENDPOINT_URL", "http://127.0.0.1:9".to_string()),
        ("OSS_ENDPOINT", format!("http://127.0.0.1:{}", target.port)),
        ("OSS_REGION", target.region.clone()),
        ("OSS_BUCKET", target.bucket.clone()),
        ("OSS_CUSTOM_DOMAIN", "true".to_string()),
        // What each function's configuration requires. Nothing here is contacted before the
        // first invocation, so the values only have to be valid.
        ("SOURCE_BUCKET", "bench-source".to_string()),
        ("EXPORT_BUCKET", "bench-source".to_string()),
        ("PULL_BUCKET", "bench-backups".to_string()),
        ("RDS_INSTANCE_IDS", "rm-bench".to_string()),
        ("RDS_SOURCES", "instance:bench-db".to_string()),
        (
            "EXPORT_IAM_ROLE_ARN",
            "arn:aws:iam::123456789012:role/bench-export".to_string(),
        ),
        (
            "EXPORT_KMS_KEY_ID",
            "arn:aws:kms:us-east-1:123456789012:key/bench".to_string(),
        ),
        ("PULL_FUNCTION_NAME", "aliyun-backup-pull".to_string()),
        ("OSS_ALLOW_HTTP", "true".to_string()),
        ("ALIBABA_CLOUD_ACCESS_KEY_ID", target.access_key_id.clone()),
        (
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
            target.access_key_secret.clone(),
        ),
    ];
    pairs
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect()
}
