//! The daily summary over moto S3 (run records, listing, the claim marker) and the fake WeCom
//! robot: recorded runs are added up per function, the summary goes out once after 09:00
//! Shanghai time, and a failed delivery gives the claim back.

mod alert_common;

use std::sync::Arc;

use alert_common::{at, generous_deadline, robot_config};
use backup_bridge::alert::AlertRules;
use backup_bridge::alert::summary::RunTally;
use backup_bridge::config::{AlertingConfig, Alerts};
use backup_bridge::storage::ObjectLister;
use backup_bridge::storage::s3::S3Store;
use testkit::aws;
use testkit::fake_wecom::FakeWecom;

const KEY: &str = "summary-robot-key";

async fn alerts(robot: &FakeWecom, key: &str, daily_summary: bool) -> (Alerts, S3Store) {
    let bucket = aws::unique_bucket("alert-summary").await;
    let store = S3Store::new(aws::s3_client(), bucket);
    let config = AlertingConfig {
        rules: AlertRules {
            daily_summary,
            ..AlertRules::default()
        },
        wecom: Some(robot_config(&robot.base_url(), key)),
        state_prefix: "backup-bridge-state/".into(),
    };
    let alerts = Alerts::new(config, Arc::new(store.clone()))
        .unwrap()
        .with_summary_lister(Arc::new(store.clone()));
    (alerts, store)
}

fn run(function: &str, request_id: &str, succeeded: u64, failed: u64, bytes: u64) -> RunTally {
    RunTally {
        function: function.into(),
        request_id: request_id.into(),
        succeeded,
        failed,
        bytes,
        alerts: failed,
    }
}

#[tokio::test]
async fn yesterdays_runs_are_summed_and_sent_once_after_nine() {
    let robot = FakeWecom::start(&[KEY]).await.unwrap();
    let (alerts, _) = alerts(&robot, KEY, true).await;
    let deadline = generous_deadline();
    // Runs on 2026-12-03 in Shanghai, all before 09:00 there (01:00 UTC), so none sends a
    // summary of 2026-12-02.
    for (request_id, at_time, succeeded, failed, bytes) in [
        ("r1", "2026-12-02T16:30:00Z", 3, 0, 3 * 1024 * 1024),
        ("r2", "2026-12-03T00:10:00Z", 1, 1, 1024),
    ] {
        let sent = alerts
            .finish_run_at(
                run("s3-oss-sync", request_id, succeeded, failed, bytes),
                at(at_time),
                deadline,
            )
            .await;
        assert_eq!(sent, None, "08:59 Shanghai or earlier sends nothing");
    }
    alerts
        .finish_run_at(
            run("aliyun-backup-pull", "p1", 1, 0, 256 * 1024 * 1024),
            at("2026-12-03T00:20:00Z"),
            deadline,
        )
        .await;
    assert!(robot.messages().is_empty());

    // 2026-12-04 10:00 Shanghai: the first run sends the summary of 2026-12-03.
    let sent = alerts
        .finish_run_at(
            run("rds-export-poll", "q1", 2, 0, 0),
            at("2026-12-04T02:00:00Z"),
            deadline,
        )
        .await;
    let again = alerts
        .finish_run_at(
            run("rds-export-poll", "q2", 2, 0, 0),
            at("2026-12-04T03:00:00Z"),
            deadline,
        )
        .await;

    assert_eq!(sent, Some("2026-12-03".parse().unwrap()));
    assert_eq!(again, None);
    let messages = robot.messages();
    assert_eq!(messages.len(), 1, "{messages:?}");
    let content = &messages[0].content;
    assert!(content.contains("backup-bridge 每日汇总"), "{content}");
    assert!(content.contains("2026-12-03"), "{content}");
    assert!(
        content.contains("`s3-oss-sync`：运行 2 次，成功 4 项，失败 1 项，复制 3.0 MiB，告警 1 条"),
        "{content}"
    );
    assert!(
        content.contains("`aliyun-backup-pull`：运行 1 次，成功 1 项，失败 0 项，复制 256.0 MiB"),
        "{content}"
    );
    assert!(
        !content.contains("rds-export-poll"),
        "today's runs belong to tomorrow: {content}"
    );
    assert!(content.contains("color=\"warning\""), "{content}");
}

#[tokio::test]
async fn a_failed_delivery_gives_the_claim_back_to_a_later_run() {
    let robot = FakeWecom::start(&[KEY]).await.unwrap();
    // The first client has a key the robot does not know (93000), the second the right one.
    let (broken, store) = alerts(&robot, "unknown-key", true).await;
    let config = AlertingConfig {
        rules: AlertRules {
            daily_summary: true,
            ..AlertRules::default()
        },
        wecom: Some(robot_config(&robot.base_url(), KEY)),
        state_prefix: "backup-bridge-state/".into(),
    };
    let working = Alerts::new(config, Arc::new(store.clone()))
        .unwrap()
        .with_summary_lister(Arc::new(store.clone()));
    let deadline = generous_deadline();

    let first = broken
        .finish_run_at(
            run("s3-oss-sync", "a", 1, 0, 10),
            at("2026-12-04T02:00:00Z"),
            deadline,
        )
        .await;
    let claims = store
        .list("backup-bridge-state/summary-sent/")
        .await
        .unwrap();
    let second = working
        .finish_run_at(
            run("s3-oss-sync", "b", 1, 0, 10),
            at("2026-12-04T02:05:00Z"),
            deadline,
        )
        .await;

    assert_eq!(first, None);
    assert!(
        claims.is_empty(),
        "the claim was not given back: {claims:?}"
    );
    assert_eq!(second, Some("2026-12-03".parse().unwrap()));
    let messages = robot.messages();
    assert_eq!(messages.len(), 1);
    assert!(messages[0].content.contains("当天没有任何函数运行的记录"));
}

#[tokio::test]
async fn nothing_is_recorded_or_sent_when_the_summary_is_off() {
    let robot = FakeWecom::start(&[KEY]).await.unwrap();
    let (alerts, store) = alerts(&robot, KEY, false).await;

    let sent = alerts
        .finish_run_at(
            run("s3-oss-sync", "a", 1, 0, 10),
            at("2026-12-04T02:00:00Z"),
            generous_deadline(),
        )
        .await;

    assert_eq!(sent, None);
    assert!(store.list("backup-bridge-state/").await.unwrap().is_empty());
    assert!(robot.messages().is_empty());
}
