//! Alert dispatch against the fake WeCom robot over HTTP: grouping, truncation, language,
//! mentions, rate limiting, bad keys and failures that must not touch the job's outcome.

mod alert_common;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use alert_common::{
    CapturedLogs, KEY, MemoryMarkers, alerter, at, generous_deadline, transfer_failed,
};
use backup_bridge::alert::{
    Alert, AlertBatch, AlertKind, AlertRules, FactName, Language, Mentions, Severity,
};
use testkit::fake_wecom::{ERRCODE_RATE_LIMITED, FakeWecom};
use testkit::fault_proxy::{Action, FaultProxy, Match, Rule};
use tokio::time::Instant;

#[tokio::test]
async fn groups_300_failures_into_one_truncated_chinese_message() {
    let robot = FakeWecom::start(&[KEY]).await.unwrap();
    let (alerter, _) = alerter(
        &robot.base_url(),
        KEY,
        AlertRules::default(),
        Arc::default(),
    );
    let batch: AlertBatch = (0..300)
        .map(|i| {
            transfer_failed("备份桶-上海", &format!("实例/rm-bp1/全量备份_{i:03}.xb"))
                .fact(FactName::ErrorCode, "InternalError")
                .fact(FactName::Cause, "源端连接被重置")
        })
        .collect();

    let report = alerter.dispatch(batch, generous_deadline()).await;

    assert_eq!(report.sent, 300);
    assert_eq!(report.failed, 0);
    let messages = robot.messages();
    assert_eq!(messages.len(), 1);
    let content = &messages[0].content;
    assert_eq!(messages[0].msgtype, "markdown");
    assert!(content.len() <= 4096, "{} bytes", content.len());
    assert!(content.contains("备份复制失败"));
    assert!(content.contains("涉及 300 项"));
    let listed = content
        .lines()
        .filter(|line| line.starts_with("- "))
        .count();
    assert!(listed > 0, "listed {listed}");
    assert!(listed < 300, "listed {listed}");
    assert!(
        content.contains(&format!("……另有 {} 项未列出", 300 - listed)),
        "{content}"
    );
    assert!(content.contains("**下一步**"));
}

#[tokio::test]
async fn sends_one_message_per_kind() {
    let robot = FakeWecom::start(&[KEY]).await.unwrap();
    let (alerter, _) = alerter(
        &robot.base_url(),
        KEY,
        AlertRules::default(),
        Arc::default(),
    );
    let mut batch = AlertBatch::new();
    for i in 0..5 {
        batch.push(transfer_failed("bucket", &format!("key-{i}")));
    }
    batch.push(
        Alert::new(
            AlertKind::ExportFailed,
            Severity::Critical,
            "export-poll",
            "req-2",
            at("2024-05-01T03:00:00Z"),
        )
        .export_id("export-1")
        .fact(FactName::Status, "FAILED"),
    );
    batch.push(transfer_failed("bucket", "key-5"));

    let report = alerter.dispatch(batch, generous_deadline()).await;

    assert_eq!(report.sent, 7);
    assert_eq!(report.messages_sent, 2);
    let messages = robot.messages();
    assert_eq!(messages.len(), 2);
    assert!(messages[0].content.contains("涉及 6 项"));
    assert!(messages[0].content.contains("`bucket/key-5`"));
    assert!(messages[1].content.contains("RDS 快照导出失败"));
    assert!(messages[1].content.contains("导出任务 `export-1`"));
}

#[tokio::test]
async fn writes_english_when_the_rules_say_so() {
    let robot = FakeWecom::start(&[KEY]).await.unwrap();
    let rules = AlertRules::from_json(r#"{"language": "en"}"#, "test").unwrap();
    let (alerter, _) = alerter(&robot.base_url(), KEY, rules, Arc::default());
    let batch: AlertBatch = [transfer_failed("bucket", "key")].into_iter().collect();

    alerter.dispatch(batch, generous_deadline()).await;

    let messages = robot.messages();
    assert_eq!(messages.len(), 1);
    assert!(
        messages[0].content.contains("[CRITICAL]Backup copy failed"),
        "{}",
        messages[0].content
    );
    assert!(messages[0].content.contains("Next step"));
}

#[tokio::test]
async fn drops_alerts_below_the_minimum_severity() {
    let robot = FakeWecom::start(&[KEY]).await.unwrap();
    let rules = AlertRules::from_json(
        r#"{"kinds": {"transfer_failed": {"enabled": false}}}"#,
        "test",
    )
    .unwrap();
    let (alerter, _) = alerter(&robot.base_url(), KEY, rules, Arc::default());
    let mut info = transfer_failed("bucket", "other");
    info.kind = AlertKind::SyncIncomplete;
    info.severity = Severity::Info;
    let batch: AlertBatch = [transfer_failed("bucket", "key"), info]
        .into_iter()
        .collect();

    let report = alerter.dispatch(batch, generous_deadline()).await;

    assert_eq!(report.suppressed_by_rule, 2);
    assert_eq!(report.sent, 0);
    assert!(robot.messages().is_empty());
}

#[tokio::test]
async fn mobiles_and_all_go_in_text_message() {
    let robot = FakeWecom::start(&[KEY]).await.unwrap();
    let mut rules = AlertRules::default();
    rules.mentions.insert(
        Severity::Critical,
        Mentions {
            user_ids: vec!["lisi".into()],
            mobiles: vec!["13800000000".into()],
            all: true,
        },
    );
    let (alerter, _) = alerter(&robot.base_url(), KEY, rules, Arc::default());
    let batch: AlertBatch = [transfer_failed("bucket", "key")].into_iter().collect();

    let report = alerter.dispatch(batch, generous_deadline()).await;

    assert_eq!(report.messages_sent, 2);
    let messages = robot.messages();
    assert_eq!(messages[0].msgtype, "markdown");
    assert!(messages[0].content.contains("<@lisi>"));
    assert_eq!(messages[1].msgtype, "text");
    assert_eq!(messages[1].mentioned_list, vec!["@all".to_string()]);
    assert_eq!(
        messages[1].mentioned_mobile_list,
        vec!["13800000000".to_string()]
    );
}

fn numbered(i: usize) -> AlertBatch {
    [transfer_failed("bucket", &format!("key-{i:02}"))]
        .into_iter()
        .collect()
}

#[tokio::test]
async fn retries_21st_alert_until_limit_clears() {
    let robot = Arc::new(FakeWecom::start(&[KEY]).await.unwrap());
    let (alerter, metrics) = alerter(
        &robot.base_url(),
        KEY,
        AlertRules::default(),
        Arc::default(),
    );

    for i in 1..=20 {
        let report = alerter.dispatch(numbered(i), generous_deadline()).await;
        assert_eq!(report.sent, 1, "alert {i}");
    }
    // The robot's rolling minute passes as soon as it has rejected the 21st message once.
    let clock = robot.clone();
    let mover = tokio::spawn(async move {
        clock.wait_for_rejections(1).await;
        clock.advance_clock(Duration::from_secs(61));
    });
    let report = alerter.dispatch(numbered(21), generous_deadline()).await;
    mover.await.unwrap();
    for i in 22..=25 {
        let report = alerter.dispatch(numbered(i), generous_deadline()).await;
        assert_eq!(report.sent, 1, "alert {i}");
    }

    assert_eq!(report.sent, 1);
    assert_eq!(report.failed, 0);
    let rejections = robot.rejections();
    assert!(!rejections.is_empty());
    assert!(
        rejections
            .iter()
            .all(|rejection| rejection.errcode == ERRCODE_RATE_LIMITED)
    );
    assert_eq!(rejections[0].accepted_before, 20);
    let messages = robot.messages();
    assert_eq!(messages.len(), 25);
    assert!(messages[20].content.contains("key-21"));
    assert!(metrics.lines().is_empty());
}

#[tokio::test]
async fn rate_limited_alert_fails_at_deadline() {
    let robot = FakeWecom::start(&[KEY]).await.unwrap();
    let (alerter, metrics) = alerter(
        &robot.base_url(),
        KEY,
        AlertRules::default(),
        Arc::default(),
    );
    for i in 1..=20 {
        alerter.dispatch(numbered(i), generous_deadline()).await;
    }
    let logs = CapturedLogs::default();
    let _guard = logs.install();

    let report = alerter
        .dispatch(numbered(21), Instant::now() + Duration::from_millis(300))
        .await;

    assert_eq!(report.failed, 1);
    assert_eq!(
        report.failures[0].error.errcode(),
        Some(ERRCODE_RATE_LIMITED)
    );
    assert_eq!(robot.messages().len(), 20);
    let lines = metrics.lines();
    assert_eq!(lines.len(), 1);
    let metric: serde_json::Value = serde_json::from_str(&lines[0]).unwrap();
    assert_eq!(metric["AlertDeliveryFailures"], 1);
    assert_eq!(metric["Reason"], "rate_limited");
    assert_eq!(metric["Function"], "s3-oss-sync");
    let text = logs.text();
    assert!(text.contains("ERROR"), "{text}");
    assert!(text.contains("errcode=45009"), "{text}");
}

#[tokio::test]
async fn rate_limit_outlasts_attempt_cut_at_deadline() {
    let robot = FakeWecom::start(&[KEY]).await.unwrap();
    let upstream: SocketAddr = robot
        .base_url()
        .trim_start_matches("http://")
        .parse()
        .unwrap();
    let proxy = FaultProxy::start(upstream).unwrap();
    let (alerter, _metrics) = alerter(&proxy.url(), KEY, AlertRules::default(), Arc::default());
    for i in 1..=20 {
        alerter.dispatch(numbered(i), generous_deadline()).await;
    }
    // The first attempt of alert 21 meets the rate limit. The second is held past the deadline,
    // so the deadline cuts it and its transport error must not hide the rate limit.
    proxy.add_rule(Rule::new(
        Match::method("POST").nth(2),
        Action::Delay(Duration::from_secs(5)),
    ));

    let report = alerter
        .dispatch(numbered(21), Instant::now() + Duration::from_secs(1))
        .await;

    assert_eq!(report.failed, 1);
    assert_eq!(
        report.failures[0].error.errcode(),
        Some(ERRCODE_RATE_LIMITED),
        "{}",
        report.failures[0].error
    );
    assert!(proxy.requests().len() >= 22, "{:?}", proxy.requests());
    assert_eq!(robot.messages().len(), 20);
}

#[tokio::test]
async fn bad_key_is_reported_without_leaking_into_logs() {
    let secret_key = "wrong-key-5f2d8e0c-never-log-me";
    let robot = FakeWecom::start(&[KEY]).await.unwrap();
    let (alerter, metrics) = alerter(
        &robot.base_url(),
        secret_key,
        AlertRules::default(),
        Arc::default(),
    );
    let logs = CapturedLogs::default();
    let _guard = logs.install();
    let batch: AlertBatch = [transfer_failed("bucket", "key")].into_iter().collect();

    let report = alerter.dispatch(batch, generous_deadline()).await;

    assert_eq!(report.failed, 1);
    assert_eq!(report.failures.len(), 1);
    let error = &report.failures[0].error;
    assert_eq!(error.errcode(), Some(93000));
    assert!(!error.to_string().contains(secret_key));
    assert!(!format!("{error:?}").contains(secret_key));
    assert!(robot.messages().is_empty());
    let text = logs.text();
    assert!(text.contains("errcode=93000"), "{text}");
    assert!(!text.contains(secret_key), "{text}");
    assert!(!text.contains("key="), "{text}");
    assert!(
        metrics
            .lines()
            .iter()
            .all(|line| !line.contains(secret_key))
    );
}

/// A job whose own result must come out of dispatch unchanged.
async fn run_job(
    alerter: &backup_bridge::alert::Alerter,
    result: Result<u64, String>,
) -> Result<u64, String> {
    let batch: AlertBatch = [transfer_failed("bucket", "key")].into_iter().collect();
    let report = alerter
        .dispatch(batch, Instant::now() + Duration::from_millis(300))
        .await;
    assert_eq!(report.failed, 1);
    result
}

#[tokio::test]
async fn delivery_failure_leaves_the_job_outcome_alone() {
    // A port that was just free and is closed now: nothing listens there.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let base_url = format!("http://{}", listener.local_addr().unwrap());
    drop(listener);
    let markers = Arc::new(MemoryMarkers::default());
    let (alerter, metrics) = alerter(&base_url, KEY, AlertRules::default(), markers.clone());

    assert_eq!(run_job(&alerter, Ok(7)).await, Ok(7));
    assert_eq!(
        run_job(&alerter, Err("export failed".into())).await,
        Err("export failed".into())
    );
    assert_eq!(metrics.lines().len(), 2);
    assert!(
        markers.keys().is_empty(),
        "markers of undelivered alerts are released"
    );
}

#[tokio::test]
async fn render_text_shows_received_messages_without_font_tags() {
    let robot = FakeWecom::start(&[KEY]).await.unwrap();
    let (alerter, _) = alerter(
        &robot.base_url(),
        KEY,
        AlertRules {
            language: Language::ZhCn,
            ..AlertRules::default()
        },
        Arc::default(),
    );
    let batch: AlertBatch = [transfer_failed("bucket", "key")].into_iter().collect();
    alerter.dispatch(batch, generous_deadline()).await;

    let text = robot.render_text();

    assert!(text.starts_with("--- message 1 (markdown) ---\n"), "{text}");
    assert!(text.contains("**【严重】备份复制失败**"));
    assert!(!text.contains("<font"));
}

#[tokio::test]
async fn oversized_chinese_fact_is_cut() {
    let robot = FakeWecom::start(&[KEY]).await.unwrap();
    let (alerter, _) = alerter(
        &robot.base_url(),
        KEY,
        AlertRules::default(),
        Arc::default(),
    );
    let detail = format!("{}份", "备".repeat(1365));
    let batch: AlertBatch = [transfer_failed("bucket", "key").fact(FactName::Detail, detail)]
        .into_iter()
        .collect();

    let report = alerter.dispatch(batch, generous_deadline()).await;

    assert_eq!(report.sent, 1);
    let messages = robot.messages();
    let content = &messages[0].content;
    assert!(content.len() <= 4096);
    let item = content
        .lines()
        .find(|line| line.contains("详情："))
        .unwrap();
    assert!(item.len() <= 1024, "{} bytes", item.len());
    assert!(item.ends_with("备…"), "{item}");
}
