//! The export poll job against the scripted RDS fake over HTTP, with an in-memory marker store and
//! a fake reconciler.

mod rds_support;

use std::sync::Mutex;
use std::time::Duration as StdDuration;

use async_trait::async_trait;
use backup_bridge::events::rds::{ExportPollTrigger, parse_export_poll};
use backup_bridge::jobs::export_poll::{
    self, DEFAULT_STUCK_AFTER, ExportPollConfig, ExportPollReport, ReconcileCounts, Reconciler,
    TransitionKind,
};
use chrono::{Duration, Utc};
use rds_support::{MemoryMarkers, rds_client, sample_event};
use testkit::fake_rds_export::{ExportPlan, FakeRdsExport};

const SNAPSHOT_ARN: &str =
    "arn:aws:rds:us-east-1:123456789012:snapshot:rds:prod-db-2024-01-01-00-05";

/// Returns scripted counts, one per call, repeating the last; records the prefixes it was given.
struct ScriptedReconciler {
    results: Mutex<Vec<ReconcileCounts>>,
    prefixes: Mutex<Vec<String>>,
}

impl ScriptedReconciler {
    fn new(results: Vec<ReconcileCounts>) -> Self {
        Self {
            results: Mutex::new(results),
            prefixes: Mutex::new(Vec::new()),
        }
    }

    fn prefixes(&self) -> Vec<String> {
        self.prefixes.lock().map(|p| p.clone()).unwrap_or_default()
    }
}

#[async_trait]
impl Reconciler for ScriptedReconciler {
    async fn reconcile(
        &self,
        s3_key_prefix: &str,
        _deadline: tokio::time::Instant,
    ) -> Result<ReconcileCounts, String> {
        if let Ok(mut prefixes) = self.prefixes.lock() {
            prefixes.push(s3_key_prefix.to_string());
        }
        let mut results = self
            .results
            .lock()
            .map_err(|_| "lock poisoned".to_string())?;
        match results.len() {
            0 => Err("no scripted result".into()),
            1 => Ok(results[0]),
            _ => Ok(results.remove(0)),
        }
    }
}

fn synced(listed: u64) -> ReconcileCounts {
    ReconcileCounts {
        listed,
        matched: listed - 1,
        copied: 1,
        remaining: 0,
        failed: 0,
    }
}

fn config() -> ExportPollConfig {
    ExportPollConfig {
        id_prefix: "bb".into(),
        marker_prefix: "exports/state".into(),
        default_s3_prefix: "mysql".into(),
        stuck_after: DEFAULT_STUCK_AFTER,
    }
}

async fn fake() -> FakeRdsExport {
    match FakeRdsExport::start().await {
        Ok(fake) => fake,
        Err(error) => panic!("fake RDS did not start: {error}"),
    }
}

async fn poll(
    rds: &FakeRdsExport,
    markers: &MemoryMarkers,
    reconciler: &ScriptedReconciler,
    trigger: &ExportPollTrigger,
) -> ExportPollReport {
    let client = rds_client(&rds.endpoint());
    let budget = StdDuration::from_secs(60);
    let report = export_poll::run(
        trigger,
        &client,
        markers,
        reconciler,
        &config(),
        Utc::now(),
        budget,
    )
    .await;
    let mut report = report.unwrap_or_else(|error| panic!("poll failed: {error}"));
    // The handler alerts here, between finding the transitions and writing their markers.
    export_poll::commit(&mut report, markers, &config()).await;
    report
}

fn states(report: &ExportPollReport) -> Vec<&'static str> {
    report
        .transitions
        .iter()
        .map(|t| t.kind.marker_state())
        .collect()
}

#[tokio::test]
async fn follows_export_to_complete_and_sync() {
    let rds = fake().await;
    rds.add_task(
        "bb-prod-1",
        SNAPSHOT_ARN,
        ExportPlan::Completes { after: 2 },
        Utc::now(),
    );
    let markers = MemoryMarkers::default();
    let reconciler = ScriptedReconciler::new(vec![synced(3)]);

    let first = poll(&rds, &markers, &reconciler, &ExportPollTrigger::Schedule).await;
    let second = poll(&rds, &markers, &reconciler, &ExportPollTrigger::Schedule).await;
    let third = poll(&rds, &markers, &reconciler, &ExportPollTrigger::Schedule).await;

    assert_eq!(
        states(&first),
        Vec::<&str>::new(),
        "first poll sees IN_PROGRESS"
    );
    assert_eq!(states(&second), vec!["COMPLETE", "SYNCED"]);
    assert_eq!(
        states(&third),
        Vec::<&str>::new(),
        "transitions are reported once"
    );
    assert_eq!(reconciler.prefixes(), vec!["mysql/bb-prod-1/".to_string()]);
    assert_eq!(
        markers.keys(),
        vec![
            "exports/state/bb-prod-1/COMPLETE",
            "exports/state/bb-prod-1/SYNCED"
        ]
    );
}

#[tokio::test]
async fn keeps_reconciling_until_fully_synced() {
    let rds = fake().await;
    rds.add_task(
        "bb-prod-1",
        SNAPSHOT_ARN,
        ExportPlan::Completes { after: 1 },
        Utc::now(),
    );
    let markers = MemoryMarkers::default();
    let partial = ReconcileCounts {
        listed: 4,
        matched: 1,
        copied: 1,
        remaining: 2,
        failed: 0,
    };
    let reconciler = ScriptedReconciler::new(vec![partial, synced(4)]);

    let first = poll(&rds, &markers, &reconciler, &ExportPollTrigger::Schedule).await;
    let second = poll(&rds, &markers, &reconciler, &ExportPollTrigger::Schedule).await;

    assert_eq!(states(&first), vec!["COMPLETE"]);
    assert_eq!(first.reconciled, vec![("bb-prod-1".to_string(), partial)]);
    assert_eq!(states(&second), vec!["SYNCED"]);
    assert_eq!(reconciler.prefixes().len(), 2);
}

#[tokio::test]
async fn reports_failure_with_cause_once() {
    let rds = fake().await;
    let cause = "The IAM role lacks s3:PutObject on the bucket";
    let plan = ExportPlan::Fails {
        after: 1,
        cause: cause.into(),
    };
    rds.add_task("bb-prod-1", SNAPSHOT_ARN, plan, Utc::now());
    let markers = MemoryMarkers::default();
    let reconciler = ScriptedReconciler::new(vec![]);

    let first = poll(&rds, &markers, &reconciler, &ExportPollTrigger::Schedule).await;
    let second = poll(&rds, &markers, &reconciler, &ExportPollTrigger::Schedule).await;

    assert_eq!(states(&first), vec!["FAILED"]);
    assert_eq!(first.transitions[0].failure_cause.as_deref(), Some(cause));
    assert_eq!(first.transitions[0].snapshot_arn, SNAPSHOT_ARN);
    assert!(second.transitions.is_empty());
    assert!(reconciler.prefixes().is_empty());
}

#[tokio::test]
async fn reports_cancel_once() {
    let rds = fake().await;
    rds.add_task(
        "bb-prod-1",
        SNAPSHOT_ARN,
        ExportPlan::Canceled { after: 1 },
        Utc::now(),
    );
    let markers = MemoryMarkers::default();
    let reconciler = ScriptedReconciler::new(vec![]);

    let first = poll(&rds, &markers, &reconciler, &ExportPollTrigger::Schedule).await;
    let second = poll(&rds, &markers, &reconciler, &ExportPollTrigger::Schedule).await;

    assert_eq!(states(&first), vec!["CANCELED"]);
    assert!(second.transitions.is_empty());
}

#[tokio::test]
async fn reports_stuck_export_once() {
    let rds = fake().await;
    let started = Utc::now() - Duration::hours(30);
    rds.add_task("bb-prod-1", SNAPSHOT_ARN, ExportPlan::Stuck, started);
    rds.add_task("bb-prod-2", "arn:fresh", ExportPlan::Stuck, Utc::now());
    let markers = MemoryMarkers::default();
    let reconciler = ScriptedReconciler::new(vec![]);

    let first = poll(&rds, &markers, &reconciler, &ExportPollTrigger::Schedule).await;
    let second = poll(&rds, &markers, &reconciler, &ExportPollTrigger::Schedule).await;

    assert_eq!(states(&first), vec!["STUCK"]);
    assert_eq!(first.transitions[0].task_id, "bb-prod-1");
    assert!(matches!(
        first.transitions[0].kind,
        TransitionKind::Stuck { running_for } if running_for > DEFAULT_STUCK_AFTER
    ));
    assert!(second.transitions.is_empty());
}

#[tokio::test]
async fn ignores_tasks_of_other_deployments() {
    let rds = fake().await;
    let plan = ExportPlan::Fails {
        after: 1,
        cause: "x".into(),
    };
    rds.add_task("other-prod-1", SNAPSHOT_ARN, plan.clone(), Utc::now());
    rds.add_task("bbx-prod-1", SNAPSHOT_ARN, plan, Utc::now());
    let markers = MemoryMarkers::default();
    let reconciler = ScriptedReconciler::new(vec![]);

    let report = poll(&rds, &markers, &reconciler, &ExportPollTrigger::Schedule).await;

    assert_eq!(report.tasks_seen, 0);
    assert!(report.transitions.is_empty());
}

#[tokio::test]
async fn export_events_poll_their_snapshot() {
    let rds = fake().await;
    rds.add_task(
        "bb-prod-1",
        SNAPSHOT_ARN,
        ExportPlan::Completes { after: 1 },
        Utc::now(),
    );
    rds.add_task(
        "bb-other-1",
        "arn:other",
        ExportPlan::Completes { after: 1 },
        Utc::now(),
    );
    let markers = MemoryMarkers::default();
    let reconciler = ScriptedReconciler::new(vec![synced(2)]);

    for sample in [
        "rds-export-poll-completed.json",
        "rds-export-poll-failed.json",
        "rds-export-poll-canceled.json",
    ] {
        let trigger = parse_export_poll(&sample_event(sample))
            .unwrap_or_else(|error| panic!("sample {sample} did not parse: {error}"));
        let report = poll(&rds, &markers, &reconciler, &trigger).await;
        assert_eq!(report.tasks_seen, 1, "sample {sample}");
    }
    let requests = rds.requests("DescribeExportTasks");
    assert!(
        requests
            .iter()
            .all(|r| r.get("SourceArn").map(String::as_str) == Some(SNAPSHOT_ARN))
    );
    assert_eq!(
        markers.keys(),
        vec![
            "exports/state/bb-prod-1/COMPLETE",
            "exports/state/bb-prod-1/SYNCED"
        ]
    );
}

#[tokio::test]
async fn schedule_sample_polls_every_task() {
    let trigger = parse_export_poll(&sample_event("rds-export-poll-schedule.json"))
        .unwrap_or_else(|error| panic!("sample did not parse: {error}"));
    assert_eq!(trigger, ExportPollTrigger::Schedule);
}
