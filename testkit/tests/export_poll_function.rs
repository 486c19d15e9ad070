//! Tests of the `rds-export-poll` handler against the scripted RDS fake, moto, the fake OSS and
//! the fake WeCom robot, fed with the sample events in `events/`. The runtime-loop test lives in
//! the function's crate.

use backup_bridge::aws::export_id;
use backup_bridge::checksum::crc64;
use backup_bridge::lambda::export_poll::ExportPollFunction;
use backup_bridge::lambda::export_start::ExportInvocationError;
use chrono::{Duration, Utc};
use lambda_runtime::{Context, LambdaEvent};
use serde_json::{Value, json};
use testkit::fake_rds_export::{ExportPlan, FakeRdsExport, FakeSnapshot};
use testkit::fake_wecom::FakeWecom;
use testkit::local_clouds::{
    EXPORT_INSTANCE, LocalClouds, OSS_BUCKET, prepare_export_demo, sample_bytes,
    with_daily_summary, with_wecom,
};
use testkit::{aws, paths};

const WECOM_KEY: &str = "export-poll-robot";
/// The snapshot that the sample export events name.
const SAMPLE_SNAPSHOT: &str = "rds:prod-db-2024-01-01-00-05";

async fn function(clouds: &LocalClouds, env: Vec<(String, String)>) -> ExportPollFunction {
    let lookup = move |name: &str| {
        env.iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.clone())
    };
    ExportPollFunction::from_env(&lookup, &aws::sdk_config(&clouds.moto_url))
        .await
        .expect("export poll function configures")
}

fn invocation(payload: Value) -> LambdaEvent<Value> {
    let mut context = Context::default();
    context.request_id = "export-poll-test".to_string();
    context.deadline = u64::try_from(Utc::now().timestamp_millis()).unwrap() + 120_000;
    LambdaEvent::new(payload, context)
}

fn sample_event(name: &str) -> Value {
    let path = paths::workspace_root().unwrap().join("events").join(name);
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn sample_snapshot() -> FakeSnapshot {
    FakeSnapshot {
        id: SAMPLE_SNAPSHOT.into(),
        source_id: EXPORT_INSTANCE.into(),
        cluster: false,
        created: Utc::now() - Duration::hours(1),
        status: "available".into(),
        encrypted: true,
        snapshot_type: "automated".into(),
    }
}

/// Adds a task for the sample snapshot, as if `rds-export-start` had started it, and returns
/// its id.
fn add_sample_task(rds: &FakeRdsExport, plan: ExportPlan) -> String {
    let snapshot = sample_snapshot();
    let task_id = export_id::for_snapshot(&snapshot.id);
    rds.add_snapshot(snapshot.clone());
    rds.add_task(&task_id, &snapshot.arn(), plan, Utc::now());
    task_id
}

fn oss_key(s3_key: &str) -> String {
    format!("iotdb-backup/{s3_key}")
}

#[tokio::test]
async fn completed_sample_reconciles_export_files_into_oss() {
    let clouds = LocalClouds::start("export-poll-complete").await.unwrap();
    let rds = FakeRdsExport::start().await.unwrap();
    let task_id = add_sample_task(&rds, ExportPlan::Completes { after: 1 });
    let mut bodies = Vec::new();
    for (index, size) in [150 * 1024, 2 * 1024 * 1024 + 7, 0].into_iter().enumerate() {
        let key = format!("mysql/{task_id}/shop/shop.t{index}/1/part-00000.gz.parquet");
        let body = sample_bytes(size, index as u64);
        clouds.put_s3_object(&key, body.clone()).await.unwrap();
        bodies.push((key, body));
    }
    // A file of another export must stay out of this reconciliation.
    clouds
        .put_s3_object("mysql/bb-other-1/shop/x.gz.parquet", b"other".to_vec())
        .await
        .unwrap();
    let function = function(&clouds, clouds.export_poll_env(&rds.endpoint())).await;
    let event = sample_event("rds-export-poll-completed.json");

    let first = function.handle(invocation(event.clone())).await.unwrap();
    let second = function.handle(invocation(event)).await.unwrap();

    assert_eq!(first["trigger"], "export_event");
    assert_eq!(first["tasks_seen"], 1);
    let counts = &first["reconciled"][0];
    assert_eq!(counts["task_id"], task_id);
    assert_eq!(counts["listed"], 3);
    assert_eq!(counts["copied"], 3);
    assert_eq!(counts["fully_synced"], true);
    let states: Vec<&str> = first["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|t| t["state"].as_str())
        .collect();
    assert_eq!(states, ["COMPLETE", "SYNCED"]);
    for (key, body) in &bodies {
        let stored = clouds.oss.object(OSS_BUCKET, &oss_key(key)).unwrap();
        assert_eq!(stored.crc64, crc64(body), "{key}");
    }
    assert!(
        clouds
            .oss
            .object(OSS_BUCKET, &oss_key("mysql/bb-other-1/shop/x.gz.parquet"))
            .is_none()
    );
    // Once synced, later polls neither report nor reconcile the export again.
    assert_eq!(second["transitions"].as_array().unwrap().len(), 0);
    assert_eq!(second["reconciled"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn conflicting_oss_object_is_left_untouched_and_alerted() {
    let clouds = LocalClouds::start("export-poll-conflict").await.unwrap();
    let rds = FakeRdsExport::start().await.unwrap();
    let robot = FakeWecom::start(&[WECOM_KEY]).await.unwrap();
    let task_id = add_sample_task(&rds, ExportPlan::Completes { after: 1 });
    let key = format!("mysql/{task_id}/shop/shop.users/1/part-00000.gz.parquet");
    clouds
        .put_s3_object(&key, sample_bytes(64 * 1024, 9))
        .await
        .unwrap();
    let other = b"someone else's object".to_vec();
    clouds
        .oss
        .put_object_direct(OSS_BUCKET, &oss_key(&key), &other, &[])
        .unwrap();
    let env = with_wecom(
        clouds.export_poll_env(&rds.endpoint()),
        &robot.base_url(),
        WECOM_KEY,
    );
    let function = function(&clouds, env).await;

    let result = function
        .handle(invocation(json!({"trigger": "schedule"})))
        .await
        .unwrap();

    let counts = &result["reconciled"][0];
    assert_eq!(counts["failed"], 1);
    assert_eq!(counts["fully_synced"], false);
    assert_eq!(
        clouds.oss.read_object(OSS_BUCKET, &oss_key(&key)).unwrap(),
        other
    );
    let messages = robot.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(
        messages[0].content.contains(&task_id),
        "{}",
        messages[0].content
    );
}

#[tokio::test]
async fn failed_sample_produces_one_alert_across_two_polls() {
    let clouds = LocalClouds::start("export-poll-failed").await.unwrap();
    let rds = FakeRdsExport::start().await.unwrap();
    let robot = FakeWecom::start(&[WECOM_KEY]).await.unwrap();
    let cause = "S3 bucket policy denies the export role.";
    let task_id = add_sample_task(
        &rds,
        ExportPlan::Fails {
            after: 1,
            cause: cause.into(),
        },
    );
    let env = with_wecom(
        clouds.export_poll_env(&rds.endpoint()),
        &robot.base_url(),
        WECOM_KEY,
    );
    let function = function(&clouds, env).await;
    let event = sample_event("rds-export-poll-failed.json");

    let first = function.handle(invocation(event.clone())).await.unwrap();
    let second = function.handle(invocation(event)).await.unwrap();

    assert_eq!(first["transitions"][0]["state"], "FAILED");
    assert_eq!(first["transitions"][0]["failure_cause"], cause);
    assert_eq!(second["transitions"].as_array().unwrap().len(), 0);
    let messages = robot.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    assert!(
        messages[0].content.contains(&task_id),
        "{}",
        messages[0].content
    );
    assert!(
        messages[0].content.contains(cause),
        "{}",
        messages[0].content
    );
}

#[tokio::test]
async fn canceled_sample_reports_the_cancellation() {
    let clouds = LocalClouds::start("export-poll-canceled").await.unwrap();
    let rds = FakeRdsExport::start().await.unwrap();
    let task_id = add_sample_task(&rds, ExportPlan::Canceled { after: 1 });
    let function = function(&clouds, clouds.export_poll_env(&rds.endpoint())).await;

    let result = function
        .handle(invocation(sample_event("rds-export-poll-canceled.json")))
        .await
        .unwrap();

    assert_eq!(result["transitions"][0]["state"], "CANCELED");
    assert_eq!(result["transitions"][0]["task_id"], task_id);
    let requests = rds.requests("DescribeExportTasks");
    assert_eq!(requests[0]["SourceArn"], sample_snapshot().arn());
}

#[tokio::test]
async fn schedule_sample_reports_a_stuck_export() {
    let clouds = LocalClouds::start("export-poll-stuck").await.unwrap();
    let rds = FakeRdsExport::start().await.unwrap();
    let snapshot = sample_snapshot();
    let task_id = export_id::for_snapshot(&snapshot.id);
    rds.add_task(
        &task_id,
        &snapshot.arn(),
        ExportPlan::Stuck,
        Utc::now() - Duration::hours(30),
    );
    rds.add_task(
        "someone-elses-task",
        "arn:other",
        ExportPlan::Stuck,
        Utc::now() - Duration::days(3),
    );
    let function = function(&clouds, clouds.export_poll_env(&rds.endpoint())).await;
    let event = sample_event("rds-export-poll-schedule.json");

    let first = function.handle(invocation(event.clone())).await.unwrap();
    let second = function.handle(invocation(event)).await.unwrap();

    assert_eq!(first["trigger"], "schedule");
    assert_eq!(first["tasks_seen"], 1);
    assert_eq!(first["transitions"][0]["state"], "STUCK");
    assert_eq!(first["transitions"][0]["running_hours"], 30);
    assert_eq!(second["transitions"].as_array().unwrap().len(), 0);
}

#[tokio::test]
async fn unrecognized_input_is_rejected() {
    let clouds = LocalClouds::start("export-poll-invalid").await.unwrap();
    let rds = FakeRdsExport::start().await.unwrap();
    let function = function(&clouds, clouds.export_poll_env(&rds.endpoint())).await;

    let error = function
        .handle(invocation(json!({"snapshot_id": "x"})))
        .await
        .unwrap_err();

    assert!(
        matches!(error, ExportInvocationError::InvalidInput(_)),
        "{error}"
    );
}

#[tokio::test]
async fn export_demo_syncs_one_export_and_fails_one() {
    let clouds = LocalClouds::start("export-demo").await.unwrap();
    let rds = FakeRdsExport::start().await.unwrap();
    let demo = prepare_export_demo(&clouds, &rds).await.unwrap();
    let start = backup_bridge::lambda::export_start::ExportStartFunction::from_env(
        &|name: &str| {
            demo.start_env
                .iter()
                .find(|(key, _)| key == name)
                .map(|(_, value)| value.clone())
        },
        &aws::sdk_config(&clouds.moto_url),
    )
    .await
    .unwrap();
    let poll = function(&clouds, demo.poll_env.clone()).await;

    let started = start
        .handle(invocation(json!({"trigger": "schedule"})))
        .await
        .unwrap();
    let mut states = Vec::new();
    for _ in 0..2 {
        let result = poll
            .handle(invocation(json!({"trigger": "schedule"})))
            .await
            .unwrap();
        for transition in result["transitions"].as_array().unwrap() {
            states.push((
                transition["task_id"].as_str().unwrap().to_string(),
                transition["state"].as_str().unwrap().to_string(),
            ));
        }
    }

    assert_eq!(started["sources"][0]["task_id"], demo.completing_task_id);
    assert_eq!(started["sources"][1]["task_id"], demo.failing_task_id);
    assert!(
        states.contains(&(demo.completing_task_id.clone(), "SYNCED".into())),
        "{states:?}"
    );
    assert!(
        states.contains(&(demo.failing_task_id.clone(), "FAILED".into())),
        "{states:?}"
    );
    for key in &demo.exported_keys {
        assert!(
            clouds.oss.object(OSS_BUCKET, &oss_key(key)).is_some(),
            "{key}"
        );
    }
}

/// Returns the poll function's environment with the daily summary switched on.
fn summary_env(
    clouds: &LocalClouds,
    rds: &FakeRdsExport,
    robot: &FakeWecom,
) -> Vec<(String, String)> {
    with_daily_summary(with_wecom(
        clouds.export_poll_env(&rds.endpoint()),
        &robot.base_url(),
        WECOM_KEY,
    ))
}

/// Polls `event` once per request id, in order.
async fn poll_as(function: &ExportPollFunction, event: &Value, request_ids: &[&str]) {
    for request_id in request_ids {
        let mut invocation = invocation(event.clone());
        invocation.context.request_id = (*request_id).into();
        function.handle(invocation).await.unwrap();
    }
}

#[tokio::test]
async fn synced_export_is_counted_once_for_the_summary() {
    let clouds = LocalClouds::start("export-poll-summary-ok").await.unwrap();
    let rds = FakeRdsExport::start().await.unwrap();
    let robot = FakeWecom::start(&[WECOM_KEY]).await.unwrap();
    let task_id = add_sample_task(&rds, ExportPlan::Completes { after: 1 });
    let key = format!("mysql/{task_id}/shop/shop.orders/1/part-00000.gz.parquet");
    clouds
        .put_s3_object(&key, sample_bytes(4096, 7))
        .await
        .unwrap();
    let function = function(&clouds, summary_env(&clouds, &rds, &robot)).await;

    poll_as(
        &function,
        &sample_event("rds-export-poll-completed.json"),
        &["poll-1", "poll-2"],
    )
    .await;

    assert!(clouds.oss.object(OSS_BUCKET, &oss_key(&key)).is_some());
    assert_eq!(
        clouds.summary_records("rds-export-poll").await.unwrap(),
        ["0-0-0-0-poll-2", "1-0-0-0-poll-1"]
    );
}

#[tokio::test]
async fn failed_export_is_counted_once_for_the_summary() {
    let clouds = LocalClouds::start("export-poll-summary").await.unwrap();
    let rds = FakeRdsExport::start().await.unwrap();
    let robot = FakeWecom::start(&[WECOM_KEY]).await.unwrap();
    let task_id = add_sample_task(
        &rds,
        ExportPlan::Fails {
            after: 1,
            cause: "S3 bucket policy denies the export role.".into(),
        },
    );
    let function = function(&clouds, summary_env(&clouds, &rds, &robot)).await;

    poll_as(
        &function,
        &sample_event("rds-export-poll-failed.json"),
        &["poll-1", "poll-2"],
    )
    .await;

    // The first poll reports the failure and raises its alert. The second finds the same
    // task with its marker written, so it counts it neither as failed nor as succeeded.
    assert_eq!(
        clouds.summary_records("rds-export-poll").await.unwrap(),
        ["0-0-0-0-poll-2", "0-1-0-1-poll-1"]
    );
    // The robot may also get yesterday's summary, which the first run after 09:00 Shanghai
    // time sends.
    let alerts: Vec<_> = robot
        .messages()
        .into_iter()
        .filter(|message| message.content.contains(&task_id))
        .collect();
    assert_eq!(alerts.len(), 1, "{alerts:?}");
}
