//! Alert delivery must not change a job's result: `s3-oss-sync` meets a conflict (which raises
//! one alert) while the WeCom robot answers `45009` for a minute, or cannot be reached at all.
//! The job's result and the OSS object come out as they do with a healthy robot.

mod reliability_support;

use std::sync::Arc;
use std::time::Duration;

use backup_bridge::lambda::sync::SyncFunction;
use serde_json::Value;
use testkit::aws;
use testkit::fake_wecom::{FakeWecom, RateLimit};
use testkit::local_clouds::{LocalClouds, OSS_BUCKET, WECOM_KEY, sample_bytes};
use testkit::s3_events::{CreatedObject, object_created_event};

use reliability_support::{Env, assert_alerts, assert_no_open_uploads, invocation, lookup, set};

const KEY: &str = "mysql/export-1/shop/shop.alerted/1/part-00000-alert.gz.parquet";
const OTHER: &[u8] = b"an object someone else wrote";

/// Puts the source and a different object at the target, so the sync reports a conflict.
async fn prepare_conflict(clouds: &LocalClouds) -> Value {
    let body = sample_bytes(100 * 1024, 50);
    let etag = clouds.put_s3_object(KEY, body.clone()).await.unwrap();
    clouds
        .oss
        .put_object_direct(OSS_BUCKET, &format!("iotdb-backup/{KEY}"), OTHER, &[])
        .unwrap();
    object_created_event(&[CreatedObject {
        event: "Put",
        bucket: &clouds.bucket,
        key: KEY,
        size: body.len() as u64,
        etag: &etag,
        sequencer: "0062F1A4B3C2D1E0F9",
    }])
}

async fn run_sync(clouds: &LocalClouds, env: Env, event: Value, seconds: i64) -> Value {
    let function = SyncFunction::from_env(&lookup(env), &aws::sdk_config(&clouds.moto_url))
        .await
        .expect("sync function configures");
    function
        .handle(invocation(event, seconds))
        .await
        .expect("a conflict is reported, not retried")
}

/// The parts of a record result that must not depend on alert delivery.
fn verdict(result: &Value) -> (Value, Value, bool) {
    let record = &result["records"][0];
    let error = record["error"].as_str().unwrap_or_default();
    (
        record["outcome"].clone(),
        record["retryable"].clone(),
        error.contains("conflict"),
    )
}

fn assert_target_untouched(clouds: &LocalClouds) {
    let stored = clouds
        .oss
        .read_object(OSS_BUCKET, &format!("iotdb-backup/{KEY}"))
        .unwrap();
    assert_eq!(stored, OTHER);
}

async fn baseline() -> (Value, Value, bool) {
    let clouds = LocalClouds::start("rel-alert-baseline").await.unwrap();
    let event = prepare_conflict(&clouds).await;
    let result = run_sync(&clouds, clouds.sync_env(), event, 60).await;
    assert_alerts(&clouds.wecom, &["shop.alerted"]);
    verdict(&result)
}

#[tokio::test]
async fn robot_rate_limited_for_a_minute_leaves_result_unchanged() {
    let expected = baseline().await;
    let clouds = LocalClouds::start("rel-alert-45009").await.unwrap();
    let limit = RateLimit {
        messages: 1,
        window: Duration::from_secs(60),
    };
    let robot = Arc::new(
        FakeWecom::start_with_limit(&[WECOM_KEY], limit)
            .await
            .unwrap(),
    );
    // One message already sent this minute fills the robot's quota.
    let earlier = serde_json::json!({ "msgtype": "text", "text": { "content": "earlier" } });
    reqwest::Client::new()
        .post(format!(
            "{}/cgi-bin/webhook/send?key={WECOM_KEY}",
            robot.base_url()
        ))
        .json(&earlier)
        .send()
        .await
        .unwrap();
    let mut env = clouds.sync_env();
    set(&mut env, "WECOM_BASE_URL", robot.base_url());
    let event = prepare_conflict(&clouds).await;
    // The minute passes once the robot has answered 45009 at least once.
    let clock = Arc::clone(&robot);
    let mover = tokio::spawn(async move {
        clock.wait_for_rejections(1).await;
        clock.advance_clock(Duration::from_secs(61));
    });

    let result = run_sync(&clouds, env, event, 60).await;
    mover.await.unwrap();

    assert_eq!(verdict(&result), expected, "{result}");
    assert_target_untouched(&clouds);
    assert_no_open_uploads(&clouds).await;
    assert!(robot.rejections().iter().all(|r| r.errcode == 45009));
    assert_alerts(&robot, &["earlier", "shop.alerted"]);
}

#[tokio::test]
async fn robot_rate_limited_past_the_deadline_leaves_result_unchanged() {
    let expected = baseline().await;
    let clouds = LocalClouds::start("rel-alert-45009-long").await.unwrap();
    let limit = RateLimit {
        messages: 0,
        window: Duration::from_secs(60),
    };
    let robot = FakeWecom::start_with_limit(&[WECOM_KEY], limit)
        .await
        .unwrap();
    let mut env = clouds.sync_env();
    set(&mut env, "WECOM_BASE_URL", robot.base_url());
    let event = prepare_conflict(&clouds).await;

    // Alerts get the invocation's time less a 5 s margin, so this run gives them 3 s.
    let result = run_sync(&clouds, env, event, 8).await;

    assert_eq!(verdict(&result), expected, "{result}");
    assert_target_untouched(&clouds);
    assert_no_open_uploads(&clouds).await;
    assert!(!robot.rejections().is_empty());
    assert_alerts(&robot, &[]);
}

#[tokio::test]
async fn unreachable_robot_leaves_result_unchanged() {
    let expected = baseline().await;
    let clouds = LocalClouds::start("rel-alert-unreachable").await.unwrap();
    // A port that was just free and is closed now: nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let closed = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let mut env = clouds.sync_env();
    set(&mut env, "WECOM_BASE_URL", closed);
    let event = prepare_conflict(&clouds).await;

    let result = run_sync(&clouds, env, event, 20).await;

    assert_eq!(verdict(&result), expected, "{result}");
    assert_target_untouched(&clouds);
    assert_no_open_uploads(&clouds).await;
    assert_alerts(&clouds.wecom, &[]);
}
