//! The export start job and the `aws-sdk-rds` adapter against the scripted RDS fake over HTTP.

mod rds_support;

use backup_bridge::aws::export_id;
use backup_bridge::aws::rds::{SnapshotCatalog, Source};
use backup_bridge::events::rds::parse_export_start;
use backup_bridge::jobs::export_start::{
    self, ExportOutcome, ExportStartConfig, MAX_CONCURRENT_EXPORTS,
};
use backup_bridge::validate::snapshot::{SnapshotPolicy, SnapshotVerdict};
use chrono::{Duration, Utc};
use rds_support::{cluster_snapshot, instance_snapshot, rds_client, sample_event};
use testkit::fake_rds_export::{ExportPlan, FakeRdsExport, Fault};

fn config(sources: Vec<Source>) -> ExportStartConfig {
    ExportStartConfig {
        sources,
        s3_bucket: "exports".into(),
        s3_prefix: "mysql".into(),
        iam_role_arn: "arn:aws:iam::123456789012:role/rds-export".into(),
        kms_key_id: "arn:aws:kms:us-east-1:123456789012:key/1111".into(),
        export_only: vec!["appdb".into(), "appdb.orders".into()],
        id_prefix: "bb".into(),
        policy: SnapshotPolicy::default(),
        max_concurrent_exports: MAX_CONCURRENT_EXPORTS,
    }
}

async fn fake() -> FakeRdsExport {
    match FakeRdsExport::start().await {
        Ok(fake) => fake,
        Err(error) => panic!("fake RDS did not start: {error}"),
    }
}

fn prod() -> Source {
    Source::Instance("prod-db".into())
}

#[tokio::test]
async fn starts_export_of_newest_snapshot() {
    let rds = fake().await;
    let now = Utc::now();
    rds.add_snapshot(instance_snapshot(
        "rds:prod-db-old",
        "prod-db",
        now - Duration::hours(25),
    ));
    rds.add_snapshot(instance_snapshot(
        "rds:prod-db-new",
        "prod-db",
        now - Duration::hours(1),
    ));
    let client = rds_client(&rds.endpoint());

    let report = export_start::export_sources(&client, &client, &config(vec![prod()]), now).await;
    let report = report.unwrap_or_else(|error| panic!("run failed: {error}"));

    let task_id = export_id::for_snapshot("rds:prod-db-new");
    let expected = ExportOutcome::Started {
        snapshot_id: "rds:prod-db-new".into(),
        task_id: task_id.clone(),
    };
    assert_eq!(report.sources[0].outcome, expected);
    let starts = rds.requests("StartExportTask");
    assert_eq!(starts.len(), 1);
    let form = &starts[0];
    assert_eq!(form.get("ExportTaskIdentifier"), Some(&task_id));
    assert_eq!(form.get("S3Prefix").map(String::as_str), Some("mysql"));
    assert_eq!(
        form.get("S3BucketName").map(String::as_str),
        Some("exports")
    );
    assert_eq!(
        form.get("SourceArn").map(String::as_str),
        Some("arn:aws:rds:us-east-1:123456789012:snapshot:rds:prod-db-new")
    );
    assert_eq!(
        form.get("KmsKeyId").map(String::as_str),
        Some("arn:aws:kms:us-east-1:123456789012:key/1111")
    );
    assert!(
        form.get("IamRoleArn")
            .is_some_and(|v| v.ends_with("role/rds-export"))
    );
    assert_eq!(
        form.get("ExportOnly.member.1").map(String::as_str),
        Some("appdb")
    );
    assert_eq!(
        form.get("ExportOnly.member.2").map(String::as_str),
        Some("appdb.orders")
    );
}

#[tokio::test]
async fn catalog_reads_every_page() {
    let rds = fake().await;
    let now = Utc::now();
    for i in 0..45 {
        rds.add_snapshot(instance_snapshot(&format!("snap-{i:02}"), "prod-db", now));
    }
    rds.add_snapshot(instance_snapshot("other", "other-db", now));
    let client = rds_client(&rds.endpoint());

    let snapshots = client.list_snapshots(&prod()).await;
    let snapshots = snapshots.unwrap_or_else(|error| panic!("listing failed: {error}"));

    assert_eq!(snapshots.len(), 45);
    assert_eq!(rds.requests("DescribeDBSnapshots").len(), 3);
    let requests = rds.requests("DescribeDBSnapshots");
    assert_eq!(
        requests[0].get("MaxRecords").map(String::as_str),
        Some("20")
    );
    assert_eq!(
        requests[0].get("DBInstanceIdentifier").map(String::as_str),
        Some("prod-db")
    );
    assert!(!requests[0].contains_key("Marker"));
    assert_eq!(requests[1].get("Marker").map(String::as_str), Some("20"));
}

#[tokio::test]
async fn defers_when_five_exports_run() {
    let rds = fake().await;
    let now = Utc::now();
    rds.add_snapshot(instance_snapshot("rds:prod-db-1", "prod-db", now));
    for i in 0..5 {
        rds.add_task(
            &format!("someone-else-{i}"),
            "arn:other",
            ExportPlan::Stuck,
            now,
        );
    }
    let client = rds_client(&rds.endpoint());

    let report = export_start::export_sources(&client, &client, &config(vec![prod()]), now).await;
    let report = report.unwrap_or_else(|error| panic!("run failed: {error}"));

    assert_eq!(report.count("deferred"), 1);
    assert!(matches!(
        report.sources[0].outcome,
        ExportOutcome::Deferred {
            active_exports: 5,
            ..
        }
    ));
    assert!(rds.requests("StartExportTask").is_empty());
}

#[tokio::test]
async fn limit_fault_from_rds_defers() {
    let rds = fake().await;
    let now = Utc::now();
    rds.add_snapshot(instance_snapshot("rds:prod-db-1", "prod-db", now));
    rds.fail_next(
        "StartExportTask",
        Fault::new("ExportTaskLimitReached", 400),
        1,
    );
    let client = rds_client(&rds.endpoint());

    let report = export_start::export_sources(&client, &client, &config(vec![prod()]), now).await;
    let report = report.unwrap_or_else(|error| panic!("run failed: {error}"));

    assert_eq!(report.count("deferred"), 1);
    assert_eq!(rds.requests("StartExportTask").len(), 1);
}

#[tokio::test]
async fn existing_task_counts_as_started() {
    let rds = fake().await;
    let now = Utc::now();
    rds.add_snapshot(instance_snapshot("rds:prod-db-1", "prod-db", now));
    let client = rds_client(&rds.endpoint());
    let cfg = config(vec![prod()]);

    let first = export_start::export_sources(&client, &client, &cfg, now).await;
    let second = export_start::export_sources(&client, &client, &cfg, now).await;

    assert_eq!(first.map(|r| r.count("started")).ok(), Some(1));
    assert_eq!(second.map(|r| r.count("already_exists")).ok(), Some(1));
    assert_eq!(rds.requests("StartExportTask").len(), 1);
}

#[tokio::test]
async fn already_exists_fault_counts_as_started() {
    let rds = fake().await;
    let now = Utc::now();
    rds.add_snapshot(instance_snapshot("rds:prod-db-1", "prod-db", now));
    rds.fail_next(
        "StartExportTask",
        Fault::new("ExportTaskAlreadyExists", 400),
        1,
    );
    let client = rds_client(&rds.endpoint());

    let report = export_start::export_sources(&client, &client, &config(vec![prod()]), now).await;

    assert_eq!(report.map(|r| r.count("already_exists")).ok(), Some(1));
}

#[tokio::test]
async fn permanent_faults_are_reported_once() {
    let codes = [
        ("KMSKeyNotAccessibleFault", 400),
        ("IamRoleNotFound", 404),
        ("InvalidExportSourceState", 400),
        ("InvalidParameterValue", 400),
        ("AccessDenied", 403),
    ];
    for (code, status) in codes {
        let rds = fake().await;
        let now = Utc::now();
        rds.add_snapshot(instance_snapshot("rds:prod-db-1", "prod-db", now));
        rds.fail_next("StartExportTask", Fault::new(code, status), 1);
        let client = rds_client(&rds.endpoint());

        let report =
            export_start::export_sources(&client, &client, &config(vec![prod()]), now).await;
        let report = report.unwrap_or_else(|error| panic!("run failed: {error}"));

        let ExportOutcome::Failed {
            code: reported,
            request_id,
            ..
        } = &report.sources[0].outcome
        else {
            panic!(
                "code {code}: expected a failure, got {:?}",
                report.sources[0].outcome
            );
        };
        assert_eq!(reported.as_deref(), Some(code));
        assert!(
            request_id
                .as_deref()
                .is_some_and(|id| id.starts_with("fake-rds-")),
            "code {code}"
        );
        assert_eq!(
            rds.requests("StartExportTask").len(),
            1,
            "code {code} was retried"
        );
    }
}

#[tokio::test]
async fn throttled_requests_are_retried() {
    let rds = fake().await;
    let now = Utc::now();
    rds.add_snapshot(instance_snapshot("rds:prod-db-1", "prod-db", now));
    rds.throttle_next("DescribeDBSnapshots", 2);
    rds.throttle_next("StartExportTask", 3);
    let client = rds_client(&rds.endpoint());

    let report = export_start::export_sources(&client, &client, &config(vec![prod()]), now).await;

    assert_eq!(report.map(|r| r.count("started")).ok(), Some(1));
    assert_eq!(rds.requests("DescribeDBSnapshots").len(), 3);
    assert_eq!(rds.requests("StartExportTask").len(), 4);
}

#[tokio::test]
async fn stale_snapshot_is_skipped_with_verdict() {
    let rds = fake().await;
    let now = Utc::now();
    rds.add_snapshot(instance_snapshot(
        "rds:prod-db-1",
        "prod-db",
        now - Duration::hours(30),
    ));
    let client = rds_client(&rds.endpoint());
    let sources = vec![prod(), Source::Cluster("empty".into())];

    let report = export_start::export_sources(&client, &client, &config(sources), now).await;
    let report = report.unwrap_or_else(|error| panic!("run failed: {error}"));

    assert!(matches!(
        &report.sources[0].outcome,
        ExportOutcome::Skipped {
            verdict: SnapshotVerdict::Stale { .. }
        }
    ));
    assert!(matches!(
        &report.sources[1].outcome,
        ExportOutcome::Skipped {
            verdict: SnapshotVerdict::NoSnapshot { .. }
        }
    ));
    assert!(rds.requests("StartExportTask").is_empty());
}

#[tokio::test]
async fn sample_events_start_exports() {
    let rds = fake().await;
    let now = Utc::now();
    rds.add_snapshot(instance_snapshot(
        "rds:prod-db-2024-01-01-00-05",
        "prod-db",
        now,
    ));
    rds.add_snapshot(cluster_snapshot(
        "rds:aurora-prod-2024-01-01-00-05",
        "aurora-prod",
        now,
    ));
    rds.add_snapshot(instance_snapshot(
        "manual-prod-db-1",
        "prod-db",
        now - Duration::days(40),
    ));
    let client = rds_client(&rds.endpoint());
    let cfg = config(vec![]);

    for (sample, snapshot_id) in [
        (
            "rds-export-start-snapshot-instance.json",
            "rds:prod-db-2024-01-01-00-05",
        ),
        (
            "rds-export-start-snapshot-cluster.json",
            "rds:aurora-prod-2024-01-01-00-05",
        ),
        ("rds-export-start-direct.json", "manual-prod-db-1"),
    ] {
        let trigger = parse_export_start(&sample_event(sample))
            .unwrap_or_else(|error| panic!("sample {sample} did not parse: {error}"));
        let report = export_start::run(&trigger, &client, &client, &cfg, now).await;
        let report = report.unwrap_or_else(|error| panic!("sample {sample} failed: {error}"));
        let expected = ExportOutcome::Started {
            snapshot_id: snapshot_id.into(),
            task_id: export_id::for_snapshot(snapshot_id),
        };
        assert_eq!(report.sources[0].outcome, expected, "sample {sample}");
    }
    assert_eq!(rds.requests("DescribeDBClusterSnapshots").len(), 1);
}

#[tokio::test]
async fn missing_named_snapshot_is_reported() {
    let rds = fake().await;
    let client = rds_client(&rds.endpoint());
    let trigger = parse_export_start(&sample_event("rds-export-start-direct.json"))
        .unwrap_or_else(|error| panic!("sample did not parse: {error}"));

    let report = export_start::run(&trigger, &client, &client, &config(vec![]), Utc::now()).await;

    let expected = ExportOutcome::NotFound {
        snapshot_id: "manual-prod-db-1".into(),
    };
    assert_eq!(
        report.map(|r| r.sources[0].outcome.clone()).ok(),
        Some(expected)
    );
}
