//! Deduplication across invocations, against the fake WeCom robot and an atomic in-memory
//! marker store in place of S3's conditional put.

mod alert_common;

use std::sync::Arc;

use alert_common::{KEY, MemoryMarkers, alerter, at, generous_deadline, transfer_failed};
use backup_bridge::alert::{AlertBatch, AlertRules};
use testkit::fake_wecom::FakeWecom;

fn one_failure() -> AlertBatch {
    [transfer_failed("bucket", "backups/rm-1/full.xb")]
        .into_iter()
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicates_are_sent_once() {
    let robot = FakeWecom::start(&[KEY]).await.unwrap();
    let markers = Arc::new(MemoryMarkers::default());
    let (first, _) = alerter(
        &robot.base_url(),
        KEY,
        AlertRules::default(),
        markers.clone(),
    );
    let (second, _) = alerter(
        &robot.base_url(),
        KEY,
        AlertRules::default(),
        markers.clone(),
    );

    let (one, two) = tokio::join!(
        tokio::spawn(async move { first.dispatch(one_failure(), generous_deadline()).await }),
        tokio::spawn(async move { second.dispatch(one_failure(), generous_deadline()).await }),
    );
    let (one, two) = (one.unwrap(), two.unwrap());

    assert_eq!(one.sent + two.sent, 1);
    assert_eq!(one.deduplicated + two.deduplicated, 1);
    assert_eq!(robot.messages().len(), 1);
    // The winner's claim, and beside it the acknowledgement that its message was delivered.
    let keys = markers.keys();
    assert_eq!(keys.len(), 2, "{keys:?}");
    assert!(keys[0].starts_with("alerts/dedup/"), "{}", keys[0]);
    assert_eq!(keys[1], format!("{}.sent", keys[0]));
}

#[tokio::test]
async fn repeat_across_bucket_boundary_is_suppressed() {
    let robot = FakeWecom::start(&[KEY]).await.unwrap();
    let markers = Arc::new(MemoryMarkers::default());
    let (alerter, _) = alerter(
        &robot.base_url(),
        KEY,
        AlertRules::default(),
        markers.clone(),
    );

    // With a 6-hour window, 05:59 and 06:01 fall in different buckets but are 2 minutes apart.
    let first = alerter
        .dispatch_at(
            one_failure(),
            at("2024-05-01T05:59:00Z"),
            generous_deadline(),
        )
        .await;
    let repeat = alerter
        .dispatch_at(
            one_failure(),
            at("2024-05-01T06:01:00Z"),
            generous_deadline(),
        )
        .await;
    let after_window = alerter
        .dispatch_at(
            one_failure(),
            at("2024-05-01T12:00:00Z"),
            generous_deadline(),
        )
        .await;

    assert_eq!(first.sent, 1);
    assert_eq!(repeat.deduplicated, 1);
    assert_eq!(repeat.sent, 0);
    assert_eq!(after_window.sent, 1);
    assert_eq!(robot.messages().len(), 2);
}

#[tokio::test]
async fn repeat_in_the_same_batch_is_sent_once() {
    let robot = FakeWecom::start(&[KEY]).await.unwrap();
    let (alerter, _) = alerter(
        &robot.base_url(),
        KEY,
        AlertRules::default(),
        Arc::default(),
    );
    let mut batch = one_failure();
    batch.extend(one_failure().into_alerts());

    let report = alerter.dispatch(batch, generous_deadline()).await;

    assert_eq!(report.sent, 1);
    assert_eq!(report.deduplicated, 1);
    let messages = robot.messages();
    assert_eq!(messages.len(), 1);
    assert!(messages[0].content.contains("涉及 1 项"));
}

#[tokio::test]
async fn undelivered_alert_is_sent_by_the_next_invocation() {
    let robot = FakeWecom::start(&[KEY]).await.unwrap();
    let markers = Arc::new(MemoryMarkers::default());
    let (broken, _) = alerter(
        &robot.base_url(),
        "unknown-key",
        AlertRules::default(),
        markers.clone(),
    );
    let (working, _) = alerter(
        &robot.base_url(),
        KEY,
        AlertRules::default(),
        markers.clone(),
    );

    let failed = broken.dispatch(one_failure(), generous_deadline()).await;
    let retried = working.dispatch(one_failure(), generous_deadline()).await;

    assert_eq!(failed.failed, 1);
    assert_eq!(retried.sent, 1);
    assert_eq!(retried.deduplicated, 0);
    assert_eq!(robot.messages().len(), 1);
}

#[tokio::test]
async fn different_resources_are_not_deduplicated() {
    let robot = FakeWecom::start(&[KEY]).await.unwrap();
    let (alerter, _) = alerter(
        &robot.base_url(),
        KEY,
        AlertRules::default(),
        Arc::default(),
    );

    let first = alerter.dispatch(one_failure(), generous_deadline()).await;
    let other: AlertBatch = [transfer_failed("bucket", "backups/rm-2/full.xb")]
        .into_iter()
        .collect();
    let second = alerter.dispatch(other, generous_deadline()).await;

    assert_eq!(first.sent, 1);
    assert_eq!(second.sent, 1);
    assert_eq!(robot.messages().len(), 2);
}

#[tokio::test]
async fn marker_store_outage_still_sends_the_alert() {
    let robot = FakeWecom::start(&[KEY]).await.unwrap();
    let markers = Arc::new(MemoryMarkers::default());
    markers.set_unavailable(true);
    let (alerter, _) = alerter(
        &robot.base_url(),
        KEY,
        AlertRules::default(),
        markers.clone(),
    );

    let report = alerter.dispatch(one_failure(), generous_deadline()).await;

    assert_eq!(report.sent, 1);
    assert_eq!(report.deduplicated, 0);
    assert_eq!(robot.messages().len(), 1);
}
