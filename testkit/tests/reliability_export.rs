//! Reliability of `rds-export-poll`: throttled `DescribeExportTasks`, a poller killed before
//! and after it records a terminal state, and two pollers at once. Each scenario checks that
//! the exported files end byte-identical in OSS, no multipart upload is left open, and the
//! failed export is alerted exactly once.

mod reliability_support;

use std::net::SocketAddr;
use std::time::Duration;

use backup_bridge::aws::export_id;
use backup_bridge::lambda::export_poll::ExportPollFunction;
use chrono::Utc;
use serde_json::{Value, json};
use testkit::aws;
use testkit::fake_rds_export::{ExportPlan, FakeRdsExport, FakeSnapshot};
use testkit::fault_proxy::{Action, FaultProxy, Match, Rule};
use testkit::local_clouds::{EXPORT_INSTANCE, LocalClouds, WECOM_KEY, sample_bytes, with_wecom};

use reliability_support::{
    Env, assert_alerts, assert_no_open_uploads, assert_oss_identical, invocation, lookup, set,
};

const FAILURE_CAUSE: &str = "The export role cannot write to the bucket.";

/// One export that completes, with two files in S3, and one that fails.
struct Exports {
    rds: FakeRdsExport,
    failed_task: String,
    files: Vec<(String, Vec<u8>)>,
}

fn snapshot(id: &str) -> FakeSnapshot {
    FakeSnapshot {
        id: id.into(),
        source_id: EXPORT_INSTANCE.into(),
        cluster: false,
        created: Utc::now() - chrono::Duration::hours(1),
        status: "available".into(),
        encrypted: true,
        snapshot_type: "automated".into(),
    }
}

async fn prepare(clouds: &LocalClouds) -> Exports {
    let rds = FakeRdsExport::start().await.unwrap();
    let completed = snapshot("rds:prod-db-reliability-ok");
    let failed = snapshot("rds:prod-db-reliability-bad");
    let completed_task = export_id::for_snapshot(&completed.id);
    let failed_task = export_id::for_snapshot(&failed.id);
    rds.add_snapshot(completed.clone());
    rds.add_snapshot(failed.clone());
    rds.add_task(
        &completed_task,
        &completed.arn(),
        ExportPlan::Completes { after: 1 },
        Utc::now(),
    );
    let failure = ExportPlan::Fails {
        after: 1,
        cause: FAILURE_CAUSE.into(),
    };
    rds.add_task(&failed_task, &failed.arn(), failure, Utc::now());
    let mut files = Vec::new();
    for (index, size) in [200 * 1024, 2 * 1024 * 1024 + 31].into_iter().enumerate() {
        let key = format!("mysql/{completed_task}/shop/shop.t{index}/1/part-00000.gz.parquet");
        let body = sample_bytes(size, 40 + index as u64);
        clouds.put_s3_object(&key, body.clone()).await.unwrap();
        files.push((key, body));
    }
    Exports {
        rds,
        failed_task,
        files,
    }
}

fn env(clouds: &LocalClouds, exports: &Exports) -> Env {
    with_wecom(
        clouds.export_poll_env(&exports.rds.endpoint()),
        &clouds.wecom.base_url(),
        WECOM_KEY,
    )
}

async fn function(env: Env, s3_endpoint: &str) -> ExportPollFunction {
    ExportPollFunction::from_env(&lookup(env), &aws::sdk_config(s3_endpoint))
        .await
        .expect("export poll function configures")
}

fn schedule() -> Value {
    json!({ "trigger": "schedule" })
}

fn assert_files_in_oss(clouds: &LocalClouds, exports: &Exports) {
    for (key, body) in &exports.files {
        assert_oss_identical(clouds, &format!("iotdb-backup/{key}"), body);
    }
}

fn proxy_in_front_of(url: &str) -> FaultProxy {
    let address: SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    FaultProxy::start(address).unwrap()
}

/// Waits until `proxy` has received a request whose target contains `fragment`.
async fn wait_for_request(proxy: &FaultProxy, fragment: &str) {
    loop {
        let seen = proxy.requests().len();
        if proxy
            .requests()
            .iter()
            .any(|request| request.path_and_query.contains(fragment))
        {
            return;
        }
        proxy.wait_for_requests(seen + 1).await;
    }
}

#[tokio::test]
async fn throttled_describe_export_tasks_ends_reported_once() {
    let clouds = LocalClouds::start("rel-export-throttle").await.unwrap();
    let exports = prepare(&clouds).await;
    exports.rds.throttle_next("DescribeExportTasks", 4);
    let function = function(env(&clouds, &exports), &clouds.moto_url).await;

    let mut results = Vec::new();
    for _ in 0..4 {
        results.push(function.handle(invocation(schedule(), 120)).await);
    }

    assert!(results.iter().any(Result::is_ok), "{results:?}");
    let reported: Vec<Value> = results
        .iter()
        .filter_map(|result| result.as_ref().ok())
        .flat_map(|result| {
            result["transitions"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .collect();
    let failed = reported
        .iter()
        .filter(|transition| transition["state"] == "FAILED")
        .count();
    assert_eq!(failed, 1, "{reported:?}");
    assert_files_in_oss(&clouds, &exports);
    assert_no_open_uploads(&clouds).await;
    assert_alerts(&clouds.wecom, &[&exports.failed_task]);
}

#[tokio::test]
async fn poller_killed_before_writing_the_marker_reports_on_next_poll() {
    let clouds = LocalClouds::start("rel-export-kill-marker").await.unwrap();
    let exports = prepare(&clouds).await;
    let s3_proxy = proxy_in_front_of(&clouds.moto_url);
    let mut env = env(&clouds, &exports);
    set(&mut env, "AWS_ENDPOINT_URL_S3", s3_proxy.url());
    // The marker write of the failed export is held, and the poller dies while it waits.
    s3_proxy.add_rule(Rule::new(
        Match::method("PUT").path_contains(&format!("{}/FAILED", exports.failed_task)),
        Action::Delay(Duration::from_secs(600)),
    ));
    let killed = function(env.clone(), &s3_proxy.url()).await;
    let running = tokio::spawn(async move { killed.handle(invocation(schedule(), 120)).await });
    wait_for_request(&s3_proxy, &format!("{}/FAILED", exports.failed_task)).await;
    running.abort();
    assert!(running.await.unwrap_err().is_cancelled());
    s3_proxy.clear_rules();

    let next = function(env, &s3_proxy.url()).await;
    let second = next.handle(invocation(schedule(), 120)).await.unwrap();
    let third = next.handle(invocation(schedule(), 120)).await.unwrap();

    let states: Vec<&str> = second["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|transition| transition["state"].as_str())
        .collect();
    assert!(states.contains(&"FAILED"), "{second}");
    assert_eq!(third["transitions"].as_array().unwrap().len(), 0, "{third}");
    assert_files_in_oss(&clouds, &exports);
    assert_no_open_uploads(&clouds).await;
    assert_alerts(&clouds.wecom, &[&exports.failed_task]);
}

// The poller writes its markers only after alerting, and the alert's claim on its deduplication
// marker lasts until the claimant's deadline. So when a poller dies while its alert is on the way,
// the next poll after that deadline finds the transition unreported and the claim abandoned, and
// sends the alert itself.
#[tokio::test]
async fn poller_killed_before_sending_the_alert_still_alerts_once() {
    let clouds = LocalClouds::start("rel-export-kill-alert").await.unwrap();
    let exports = prepare(&clouds).await;
    let robot_proxy = proxy_in_front_of(&clouds.wecom.base_url());
    let mut env = env(&clouds, &exports);
    set(&mut env, "WECOM_BASE_URL", robot_proxy.url());
    // The alert is held on its way to the robot, and the poller dies while it waits.
    robot_proxy.add_rule(Rule::new(
        Match::method("POST"),
        Action::Delay(Duration::from_secs(600)),
    ));
    // A short invocation, so that its claim on the alert runs out soon after it dies.
    let killed_seconds = 20;
    let killed_deadline = tokio::time::Instant::now() + Duration::from_secs(killed_seconds);
    let killed = function(env.clone(), &clouds.moto_url).await;
    let running = tokio::spawn(async move {
        killed
            .handle(invocation(schedule(), killed_seconds as i64))
            .await
    });
    robot_proxy.wait_for_requests(1).await;
    running.abort();
    assert!(running.await.unwrap_err().is_cancelled());
    robot_proxy.clear_rules();
    // Lambda would have stopped the killed poller at its deadline; the next poll comes later.
    tokio::time::sleep_until(killed_deadline + Duration::from_secs(2)).await;

    let next = function(env, &clouds.moto_url).await;
    next.handle(invocation(schedule(), 120)).await.unwrap();
    next.handle(invocation(schedule(), 120)).await.unwrap();

    assert_files_in_oss(&clouds, &exports);
    assert_no_open_uploads(&clouds).await;
    assert_alerts(&clouds.wecom, &[&exports.failed_task]);
}

#[tokio::test]
async fn two_pollers_at_once_report_and_copy_once() {
    let clouds = LocalClouds::start("rel-export-two").await.unwrap();
    let exports = prepare(&clouds).await;
    let first = function(env(&clouds, &exports), &clouds.moto_url).await;
    let second = function(env(&clouds, &exports), &clouds.moto_url).await;

    let (one, two) = tokio::join!(
        first.handle(invocation(schedule(), 120)),
        second.handle(invocation(schedule(), 120)),
    );
    let (one, two) = (one.unwrap(), two.unwrap());

    let failed = [&one, &two]
        .iter()
        .flat_map(|result| {
            result["transitions"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter(|transition| transition["state"] == "FAILED")
        .count();
    assert_eq!(failed, 1, "{one}\n{two}");
    assert_files_in_oss(&clouds, &exports);
    assert_no_open_uploads(&clouds).await;
    assert_alerts(&clouds.wecom, &[&exports.failed_task]);
}
