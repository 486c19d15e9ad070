//! `rds-export-start` through the real Lambda runtime loop: the built binary runs
//! `lambda_runtime` against the `cargo lambda watch` Runtime API, and `cargo lambda invoke` sends
//! it the direct sample event.

use std::path::Path;

use backup_bridge::aws::export_id;
use chrono::{Duration, Utc};
use testkit::fake_rds_export::{FakeRdsExport, FakeSnapshot};
use testkit::lambda::LambdaWatch;
use testkit::local_clouds::{EXPORT_INSTANCE, LocalClouds};
use testkit::paths;

#[tokio::test(flavor = "multi_thread")]
async fn cargo_lambda_invoke_starts_an_export() {
    let clouds = LocalClouds::start("export-start-watch").await.unwrap();
    let rds = FakeRdsExport::start().await.unwrap();
    let id = "manual-prod-db-1";
    rds.add_snapshot(FakeSnapshot {
        id: id.to_string(),
        source_id: EXPORT_INSTANCE.to_string(),
        cluster: false,
        created: Utc::now() - Duration::hours(1),
        status: "available".into(),
        encrypted: true,
        snapshot_type: "automated".into(),
    });
    let env = clouds.export_start_env(&rds.endpoint());
    let sample = paths::workspace_root()
        .unwrap()
        .join("events/rds-export-start-direct.json");

    let invocation = tokio::task::spawn_blocking(move || {
        let binary = Path::new(env!("CARGO_BIN_EXE_rds-export-start"));
        let watch = LambdaWatch::start(binary, &env)?;
        let invocation = watch.invoke(&sample)?;
        anyhow::Ok((invocation, watch.log()))
    })
    .await
    .unwrap()
    .unwrap();

    let (invocation, log) = invocation;
    assert!(invocation.succeeded, "{}\n{log}", invocation.output);
    assert!(
        invocation.output.contains("\"started\""),
        "{}",
        invocation.output
    );
    assert_eq!(rds.task_ids(), vec![export_id::for_snapshot(id)]);
}
