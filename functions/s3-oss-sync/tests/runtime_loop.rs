//! `s3-oss-sync` through the real Lambda runtime loop: the built binary runs `lambda_runtime`
//! against the `cargo lambda watch` Runtime API, and `cargo lambda invoke` sends it an S3 event.

use std::path::Path;

use backup_bridge::checksum::crc64;
use testkit::lambda::LambdaWatch;
use testkit::local_clouds::{LocalClouds, OSS_BUCKET, sample_bytes};
use testkit::s3_events::{CreatedObject, object_created_event};

#[tokio::test(flavor = "multi_thread")]
async fn cargo_lambda_invoke_copies_an_object_to_oss() {
    let clouds = LocalClouds::start("sync-runtime").await.unwrap();
    let key = "mysql/export-rt/shop/shop.orders/1/part-00000 备份+1.gz.parquet";
    let body = sample_bytes(2 * 1024 * 1024 + 99, 7);
    let etag = clouds.put_s3_object(key, body.clone()).await.unwrap();
    let event = object_created_event(&[CreatedObject {
        event: "CompleteMultipartUpload",
        bucket: &clouds.bucket,
        key,
        size: body.len() as u64,
        etag: &etag,
        sequencer: "0062F1A4B3C2D1E0F9",
    }]);
    let event_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(event_file.path(), serde_json::to_vec(&event).unwrap()).unwrap();

    let env = clouds.sync_env();
    let invocation = tokio::task::spawn_blocking(move || {
        let binary = Path::new(env!("CARGO_BIN_EXE_s3-oss-sync"));
        let watch = LambdaWatch::start(binary, &env).unwrap();
        let invocation = watch.invoke(event_file.path()).unwrap();
        (invocation, watch.log())
    })
    .await
    .unwrap();

    let (invocation, log) = invocation;
    assert!(
        invocation.succeeded,
        "invoke failed: {}\nlog:\n{log}",
        invocation.output
    );
    assert!(
        invocation.output.contains("\"copied\""),
        "{}",
        invocation.output
    );
    let target = format!("iotdb-backup/{key}");
    let stored = clouds
        .oss
        .object(OSS_BUCKET, &target)
        .expect("object in OSS");
    assert_eq!(stored.crc64, crc64(&body));
    assert_eq!(clouds.oss.read_object(OSS_BUCKET, &target).unwrap(), body);
}
