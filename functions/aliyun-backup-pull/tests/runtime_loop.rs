//! `aliyun-backup-pull` in the real Lambda runtime loop: the built binary runs `lambda_runtime`
//! against the `cargo lambda watch` Runtime API, and `cargo lambda invoke` sends it the sample
//! schedule event.

use std::path::Path;

use testkit::lambda::LambdaWatch;
use testkit::local_clouds::LocalClouds;
use testkit::{aws, paths};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn schedule_event_pulls_a_backup_through_the_runtime() {
    let clouds = LocalClouds::start("pull-runtime").await.unwrap();
    let backup = clouds
        .seed_aliyun_backup(6 * 1024 * 1024 + 3, 21)
        .await
        .unwrap();
    let env = clouds.pull_env(&backup);
    let data_file = paths::workspace_root()
        .unwrap()
        .join("events/aliyun-backup-pull-schedule.json");

    // The invoke blocks its thread; the fakes keep serving on the other worker.
    let invocation = tokio::task::spawn_blocking(move || {
        let binary = Path::new(env!("CARGO_BIN_EXE_aliyun-backup-pull"));
        let watch = LambdaWatch::start(binary, &env)?;
        let invocation = watch.invoke(&data_file)?;
        anyhow::Ok((invocation, watch.log()))
    })
    .await
    .unwrap()
    .unwrap();

    let (invocation, log) = invocation;
    assert!(invocation.succeeded, "{}\n{log}", invocation.output);
    assert!(
        invocation.output.contains("\"pulled\""),
        "{}",
        invocation.output
    );
    let head = aws::s3_client()
        .head_object()
        .bucket(&clouds.bucket)
        .key(&backup.expected_key)
        .send()
        .await
        .unwrap();
    assert_eq!(head.content_length(), Some(backup.size as i64));
    let metadata = head.metadata().cloned().unwrap_or_default();
    assert_eq!(metadata["crc64ecma"], backup.crc64.to_string());
}
