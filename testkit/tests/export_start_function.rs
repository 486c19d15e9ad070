//! Tests of the `rds-export-start` handler against the scripted RDS fake, moto and the fake WeCom
//! robot, fed with the sample events in `events/`. The runtime-loop test lives in the function's crate.

use backup_bridge::aws::export_id;
use backup_bridge::lambda::export_start::{ExportInvocationError, ExportStartFunction};
use chrono::{Duration, Utc};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use testkit::fake_rds_export::{FakeRdsExport, FakeSnapshot, Fault};
use testkit::fake_wecom::FakeWecom;
use testkit::local_clouds::{
    EXPORT_CLUSTER, EXPORT_INSTANCE, LocalClouds, with_daily_summary, with_wecom,
};
use testkit::{aws, paths};

const WECOM_KEY: &str = "export-start-robot";

async fn function(clouds: &LocalClouds, env: Vec<(String, String)>) -> ExportStartFunction {
    let lookup = move |name: &str| {
        env.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    ExportStartFunction::from_env(&lookup, &aws::sdk_config(&clouds.moto_url))
        .await
        .expect("export start function configures")
}

fn invocation(payload: Value) -> LambdaEvent<Value> {
    let mut context = Context::default();
    context.request_id = "export-start-test".to_string();
    context.deadline = u64::try_from(Utc::now().timestamp_millis()).unwrap() + 60_000;
    LambdaEvent::new(payload, context)
}

fn sample_event(name: &str) -> Value {
    let path = paths::workspace_root().unwrap().join("events").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn snapshot(id: &str, source: &str, cluster: bool, age: Duration) -> FakeSnapshot {
    FakeSnapshot {
        id: id.to_string(),
        source_id: source.to_string(),
        cluster,
        created: Utc::now() - age,
        status: "available".into(),
        encrypted: true,
        snapshot_type: "automated".into(),
    }
}

#[tokio::test]
async fn schedule_sample_starts_one_export_per_source() {
    let clouds = LocalClouds::start("export-start-schedule").await.unwrap();
    let rds = FakeRdsExport::start().await.unwrap();
    rds.add_snapshot(snapshot(
        "rds:prod-db-a",
        EXPORT_INSTANCE,
        false,
        Duration::hours(30),
    ));
    rds.add_snapshot(snapshot(
        "rds:prod-db-b",
        EXPORT_INSTANCE,
        false,
        Duration::hours(2),
    ));
    rds.add_snapshot(snapshot(
        "rds:aurora-prod-a",
        EXPORT_CLUSTER,
        true,
        Duration::hours(3),
    ));
    let function = function(&clouds, clouds.export_start_env(&rds.endpoint())).await;

    let result = function
        .handle(invocation(sample_event("rds-export-start-schedule.json")))
        .await
        .unwrap();

    assert_eq!(result["trigger"], "schedule");
    assert_eq!(result["sources"][0]["outcome"], "started");
    assert_eq!(result["sources"][0]["snapshot_id"], "rds:prod-db-b");
    assert_eq!(result["sources"][1]["outcome"], "started");
    assert_eq!(result["sources"][1]["snapshot_id"], "rds:aurora-prod-a");
    let starts = rds.requests("StartExportTask");
    assert_eq!(starts.len(), 2);
    let first = &starts[0];
    assert_eq!(
        first["ExportTaskIdentifier"],
        export_id::for_snapshot("rds:prod-db-b")
    );
    assert_eq!(first["S3BucketName"], clouds.bucket);
    assert_eq!(first["S3Prefix"], "mysql");
    assert_eq!(
        first["IamRoleArn"],
        "arn:aws:iam::123456789012:role/rds-s3-export"
    );
    assert!(first["KmsKeyId"].starts_with("arn:aws:kms:"));
}

#[tokio::test]
async fn snapshot_samples_start_the_named_exports() {
    let clouds = LocalClouds::start("export-start-samples").await.unwrap();
    let rds = FakeRdsExport::start().await.unwrap();
    let named = [
        (
            "rds-export-start-snapshot-instance.json",
            "rds:prod-db-2024-01-01-00-05",
            false,
        ),
        (
            "rds-export-start-snapshot-cluster.json",
            "rds:aurora-prod-2024-01-01-00-05",
            true,
        ),
        ("rds-export-start-direct.json", "manual-prod-db-1", false),
    ];
    // Named snapshots are exported whatever their age.
    for (_, id, cluster) in named {
        rds.add_snapshot(snapshot(id, "any-source", cluster, Duration::days(400)));
    }
    let function = function(&clouds, clouds.export_start_env(&rds.endpoint())).await;

    for (sample, id, _) in named {
        let result = function
            .handle(invocation(sample_event(sample)))
            .await
            .unwrap();

        assert_eq!(result["trigger"], "snapshot", "sample {sample}");
        assert_eq!(
            result["sources"][0]["outcome"], "started",
            "sample {sample}: {result}"
        );
        assert_eq!(
            result["sources"][0]["task_id"],
            export_id::for_snapshot(id),
            "sample {sample}"
        );
    }
    assert_eq!(rds.task_ids().len(), 3);
}

#[tokio::test]
async fn repeated_snapshot_event_counts_as_already_started() {
    let clouds = LocalClouds::start("export-start-repeat").await.unwrap();
    let rds = FakeRdsExport::start().await.unwrap();
    let id = "rds:prod-db-2024-01-01-00-05";
    rds.add_snapshot(snapshot(id, EXPORT_INSTANCE, false, Duration::hours(1)));
    let function = function(&clouds, clouds.export_start_env(&rds.endpoint())).await;
    let event = sample_event("rds-export-start-snapshot-instance.json");

    let first = function.handle(invocation(event.clone())).await.unwrap();
    let second = function.handle(invocation(event)).await.unwrap();

    assert_eq!(first["sources"][0]["outcome"], "started");
    assert_eq!(second["sources"][0]["outcome"], "already_exists");
    assert_eq!(rds.requests("StartExportTask").len(), 1);
}

#[tokio::test]
async fn permanent_fault_alerts_once_without_retry() {
    let clouds = LocalClouds::start("export-start-kms").await.unwrap();
    let rds = FakeRdsExport::start().await.unwrap();
    let robot = FakeWecom::start(&[WECOM_KEY]).await.unwrap();
    rds.add_snapshot(snapshot(
        "manual-prod-db-1",
        EXPORT_INSTANCE,
        false,
        Duration::hours(1),
    ));
    rds.fail_next(
        "StartExportTask",
        Fault::new("KMSKeyNotAccessibleFault", 400),
        1,
    );
    let env = with_wecom(
        clouds.export_start_env(&rds.endpoint()),
        &robot.base_url(),
        WECOM_KEY,
    );
    let function = function(&clouds, env).await;

    let result = function
        .handle(invocation(sample_event("rds-export-start-direct.json")))
        .await
        .unwrap();

    assert_eq!(result["sources"][0]["outcome"], "failed");
    assert_eq!(result["sources"][0]["code"], "KMSKeyNotAccessibleFault");
    assert_eq!(rds.requests("StartExportTask").len(), 1);
    let messages = robot.messages();
    assert_eq!(messages.len(), 1);
    assert!(
        messages[0].content.contains("KMSKeyNotAccessibleFault"),
        "{}",
        messages[0].content
    );
}

#[tokio::test]
async fn sources_without_snapshots_raise_a_verdict_alert() {
    let clouds = LocalClouds::start("export-start-missing").await.unwrap();
    let rds = FakeRdsExport::start().await.unwrap();
    let robot = FakeWecom::start(&[WECOM_KEY]).await.unwrap();
    let env = with_wecom(
        clouds.export_start_env(&rds.endpoint()),
        &robot.base_url(),
        WECOM_KEY,
    );
    let function = function(&clouds, env).await;

    let result = function
        .handle(invocation(json!({"trigger": "schedule"})))
        .await
        .unwrap();

    assert_eq!(result["sources"][0]["verdict"], "no_snapshot");
    assert_eq!(result["sources"][1]["verdict"], "no_snapshot");
    assert!(rds.requests("StartExportTask").is_empty());
    // Both alerts share one kind, so they share one message.
    let messages = robot.messages();
    assert_eq!(messages.len(), 1);
    assert!(
        messages[0].content.contains(EXPORT_CLUSTER),
        "{}",
        messages[0].content
    );
}

#[tokio::test]
async fn throttled_task_listing_is_returned_for_a_retry() {
    let clouds = LocalClouds::start("export-start-throttle").await.unwrap();
    let rds = FakeRdsExport::start().await.unwrap();
    rds.add_snapshot(snapshot(
        "rds:prod-db-b",
        EXPORT_INSTANCE,
        false,
        Duration::hours(2),
    ));
    rds.throttle_next("DescribeExportTasks", 10);
    let function = function(&clouds, clouds.export_start_env(&rds.endpoint())).await;

    let error = function
        .handle(invocation(json!({"trigger": "schedule"})))
        .await
        .unwrap_err();

    assert!(
        matches!(error, ExportInvocationError::Retryable(_)),
        "{error}"
    );
    assert!(rds.requests("StartExportTask").is_empty());
}

#[tokio::test]
async fn unrecognized_input_is_rejected() {
    let clouds = LocalClouds::start("export-start-invalid").await.unwrap();
    let rds = FakeRdsExport::start().await.unwrap();
    let function = function(&clouds, clouds.export_start_env(&rds.endpoint())).await;

    let error = function
        .handle(invocation(json!({"snapshot": "x"})))
        .await
        .unwrap_err();

    assert!(
        matches!(error, ExportInvocationError::InvalidInput(_)),
        "{error}"
    );
    assert!(rds.requests("DescribeExportTasks").is_empty());
}

#[tokio::test]
async fn summary_counts_started_and_failed_sources() {
    let clouds = LocalClouds::start("export-start-summary").await.unwrap();
    let rds = FakeRdsExport::start().await.unwrap();
    let robot = FakeWecom::start(&[WECOM_KEY]).await.unwrap();
    // The instance has a snapshot to export, and the cluster has none, which is alerted.
    rds.add_snapshot(snapshot(
        "rds:prod-db-a",
        EXPORT_INSTANCE,
        false,
        Duration::hours(2),
    ));
    let env = with_daily_summary(with_wecom(
        clouds.export_start_env(&rds.endpoint()),
        &robot.base_url(),
        WECOM_KEY,
    ));
    let function = function(&clouds, env).await;

    for request_id in ["run-1", "run-2"] {
        let mut invocation = invocation(json!({"trigger": "schedule"}));
        invocation.context.request_id = request_id.into();
        function.handle(invocation).await.unwrap();
    }

    // Each run: the instance's export started or exists (a success), and the cluster's
    // missing snapshot is a failure with its alert raised.
    assert_eq!(
        clouds.summary_records("rds-export-start").await.unwrap(),
        ["1-1-0-1-run-1", "1-1-0-1-run-2"]
    );
    assert_eq!(rds.requests("StartExportTask").len(), 1);
}
