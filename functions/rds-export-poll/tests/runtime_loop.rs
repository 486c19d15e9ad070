//! `rds-export-poll` through the real Lambda runtime loop: the built binary runs
//! `lambda_runtime` against the `cargo lambda watch` Runtime API, and `cargo lambda invoke` sends
//! it the schedule sample event.

use std::path::Path;

use backup_bridge::aws::export_id;
use chrono::{Duration, Utc};
use testkit::fake_rds_export::{ExportPlan, FakeRdsExport, FakeSnapshot};
use testkit::lambda::LambdaWatch;
use testkit::local_clouds::{EXPORT_INSTANCE, LocalClouds};
use testkit::paths;

/// The snapshot that the sample export events name.
const SAMPLE_SNAPSHOT: &str = "rds:prod-db-2024-01-01-00-05";

#[tokio::test(flavor = "multi_thread")]
async fn cargo_lambda_invoke_reports_a_failed_export() {
    let clouds = LocalClouds::start("export-poll-watch").await.unwrap();
    let rds = FakeRdsExport::start().await.unwrap();
    let cause = "The export ran out of disk space.";
    let snapshot = FakeSnapshot {
        id: SAMPLE_SNAPSHOT.into(),
        source_id: EXPORT_INSTANCE.into(),
        cluster: false,
        created: Utc::now() - Duration::hours(1),
        status: "available".into(),
        encrypted: true,
        snapshot_type: "automated".into(),
    };
    let task_id = export_id::for_snapshot(&snapshot.id);
    rds.add_snapshot(snapshot.clone());
    let plan = ExportPlan::Fails {
        after: 1,
        cause: cause.into(),
    };
    rds.add_task(&task_id, &snapshot.arn(), plan, Utc::now());
    let env = clouds.export_poll_env(&rds.endpoint());
    let sample = paths::workspace_root()
        .unwrap()
        .join("events/rds-export-poll-schedule.json");

    let invocation = tokio::task::spawn_blocking(move || {
        let binary = Path::new(env!("CARGO_BIN_EXE_rds-export-poll"));
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
        invocation.output.contains("\"FAILED\""),
        "{}",
        invocation.output
    );
    assert!(invocation.output.contains(cause), "{}", invocation.output);
}
