//! The bad-input corpus in `testkit/corpus/<family>/`: each file goes through the handler or
//! the configuration loader it is meant for, and must give an error that contains the text
//! listed for it in the family's `expected.tsv` (the offending value or field), without a panic
//! and without writing anything to S3 (outside the state prefix) or to the fake OSS.
//!
//! A file that is not JSON at all never reaches a handler, because the Lambda runtime rejects
//! it while deserialising; for those the runtime's parse error is what is checked.

mod reliability_support;

use std::future::Future;
use std::panic::AssertUnwindSafe;
use std::path::PathBuf;
use std::sync::Arc;

use backup_bridge::jobs::pull::{Continuation, RecordedContinuations};
use backup_bridge::lambda::export_poll::ExportPollFunction;
use backup_bridge::lambda::pull::PullFunction;
use backup_bridge::lambda::sync::SyncFunction;
use futures::FutureExt;
use serde_json::Value;
use testkit::local_clouds::{LocalClouds, OSS_BUCKET, SeededBackup};
use testkit::{aws, paths};

use reliability_support::{Env, invocation, lookup, set};

/// The state prefix, where alert markers may be written while an error is reported.
const STATE_PREFIX: &str = "backup-bridge-state/";

/// One corpus file with the text its error must contain.
struct Case {
    name: String,
    text: String,
    expected: String,
}

fn corpus(family: &str) -> Vec<Case> {
    let dir: PathBuf = paths::workspace_root()
        .unwrap()
        .join("testkit/corpus")
        .join(family);
    let index = std::fs::read_to_string(dir.join("expected.tsv")).unwrap();
    index
        .lines()
        .filter(|line| !line.starts_with('#') && !line.trim().is_empty())
        .map(|line| {
            let (name, expected) = line.split_once('\t').unwrap();
            Case {
                name: name.to_string(),
                text: std::fs::read_to_string(dir.join(name)).unwrap(),
                expected: expected.to_string(),
            }
        })
        .collect()
}

/// Runs `work`, turning a panic into a failure message, and returns its output text.
async fn output_of<F>(work: F) -> Result<String, String>
where
    F: Future<Output = String>,
{
    AssertUnwindSafe(work)
        .catch_unwind()
        .await
        .map_err(|panic| {
            let message = panic
                .downcast_ref::<String>()
                .cloned()
                .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                .unwrap_or_default();
            format!("panicked: {message}")
        })
}

fn text_of<T: ToString, E: std::fmt::Display>(result: Result<T, E>) -> String {
    match result {
        Ok(value) => value.to_string(),
        Err(error) => format!("error: {error}"),
    }
}

/// Lists what the case wrote: S3 objects outside the state prefix and OSS write requests.
async fn writes(clouds: &LocalClouds) -> Vec<String> {
    let listed = aws::s3_client()
        .list_objects_v2()
        .bucket(&clouds.bucket)
        .send()
        .await
        .unwrap();
    let mut written: Vec<String> = listed
        .contents()
        .iter()
        .filter_map(|object| object.key())
        .filter(|key| !key.starts_with(STATE_PREFIX))
        .map(|key| format!("s3://{}/{key}", clouds.bucket))
        .collect();
    written.extend(
        clouds
            .oss
            .request_log()
            .iter()
            .filter(|request| request.method == "PUT" || request.method == "POST")
            .map(|request| format!("oss {} {}", request.method, request.path)),
    );
    written.extend(
        clouds
            .oss
            .pending_uploads(OSS_BUCKET)
            .into_iter()
            .map(|(key, _)| format!("oss upload {key}")),
    );
    written
}

/// Runs every case of `family` through `run` and fails with the list of cases that broke a rule.
async fn check_family<R, F>(family: &str, clouds: &LocalClouds, run: R)
where
    R: Fn(Value) -> F,
    F: Future<Output = String>,
{
    let cases = corpus(family);
    assert!(!cases.is_empty(), "no cases in {family}");
    let mut problems = Vec::new();
    for case in &cases {
        let output = match serde_json::from_str::<Value>(&case.text) {
            Ok(event) => output_of(run(event)).await,
            Err(error) => Ok(format!("rejected by the runtime: {error}")),
        };
        match output {
            Err(panic) => problems.push(format!("{}: {panic}", case.name)),
            Ok(text) if !text.contains(&case.expected) => problems.push(format!(
                "{}: the output does not contain {:?}: {text}",
                case.name, case.expected
            )),
            Ok(_) => {}
        }
        let written = writes(clouds).await;
        if !written.is_empty() {
            problems.push(format!("{}: wrote {written:?}", case.name));
        }
    }
    assert!(
        problems.is_empty(),
        "{} of {} cases in {family} failed:\n{}",
        problems.len(),
        cases.len(),
        problems.join("\n")
    );
}

async fn sync_function(clouds: &LocalClouds, env: Env) -> Result<SyncFunction, String> {
    SyncFunction::from_env(&lookup(env), &aws::sdk_config(&clouds.moto_url))
        .await
        .map_err(|error| format!("error: {error}"))
}

async fn pull_function(clouds: &LocalClouds, env: Env) -> Result<PullFunction, String> {
    let continuation: Arc<dyn Continuation> = Arc::new(RecordedContinuations::default());
    PullFunction::from_env(
        &lookup(env),
        &aws::sdk_config(&clouds.moto_url),
        Some(continuation),
    )
    .await
    .map_err(|error| format!("error: {error}"))
}

async fn seeded(clouds: &LocalClouds) -> SeededBackup {
    clouds.seed_aliyun_backup(64 * 1024, 60).await.unwrap()
}

#[tokio::test]
async fn s3_events_are_rejected_by_the_sync_handler() {
    let clouds = LocalClouds::start("bad-s3-event").await.unwrap();
    let function = sync_function(&clouds, clouds.sync_env()).await.unwrap();
    let bucket = clouds.bucket.clone();
    check_family("s3-event", &clouds, |event| {
        let text = event.to_string().replace("__BUCKET__", &bucket);
        let event: Value = serde_json::from_str(&text).unwrap();
        let function = &function;
        async move { text_of(function.handle(invocation(event, 30)).await) }
    })
    .await;
}

#[tokio::test]
async fn direct_events_are_rejected_by_the_pull_handler() {
    let clouds = LocalClouds::start("bad-pull-event").await.unwrap();
    let backup = seeded(&clouds).await;
    let function = pull_function(&clouds, clouds.pull_env(&backup))
        .await
        .unwrap();
    check_family("pull-event", &clouds, |event| {
        let function = &function;
        async move { text_of(function.handle(invocation(event, 30)).await) }
    })
    .await;
}

#[tokio::test]
async fn continuations_are_rejected_by_the_pull_handler() {
    let clouds = LocalClouds::start("bad-continuation").await.unwrap();
    let backup = seeded(&clouds).await;
    let function = pull_function(&clouds, clouds.pull_env(&backup))
        .await
        .unwrap();
    check_family("continuation", &clouds, |event| {
        let function = &function;
        async move { text_of(function.handle(invocation(event, 30)).await) }
    })
    .await;
}

#[tokio::test]
async fn export_events_are_rejected_by_the_poll_handler() {
    let clouds = LocalClouds::start("bad-export-event").await.unwrap();
    let rds = testkit::fake_rds_export::FakeRdsExport::start()
        .await
        .unwrap();
    let env = clouds.export_poll_env(&rds.endpoint());
    let function = ExportPollFunction::from_env(&lookup(env), &aws::sdk_config(&clouds.moto_url))
        .await
        .unwrap();
    check_family("export-event", &clouds, |event| {
        let function = &function;
        async move { text_of(function.handle(invocation(event, 30)).await) }
    })
    .await;
}

#[tokio::test]
async fn config_environments_are_rejected_at_start() {
    let clouds = LocalClouds::start("bad-config-env").await.unwrap();
    let backup = seeded(&clouds).await;
    let rds = testkit::fake_rds_export::FakeRdsExport::start()
        .await
        .unwrap();
    check_family("config-env", &clouds, |document| {
        let mut env = match document["function"].as_str() {
            Some("sync") => clouds.sync_env(),
            Some("pull") => clouds.pull_env(&backup),
            _ => clouds.export_poll_env(&rds.endpoint()),
        };
        if let Some(values) = document["set"].as_object() {
            for (name, value) in values {
                set(&mut env, name, value.as_str().unwrap_or_default());
            }
        }
        if let Some(names) = document["unset"].as_array() {
            env.retain(|(name, _)| !names.iter().any(|unset| unset == name.as_str()));
        }
        let clouds = &clouds;
        async move {
            let sdk = aws::sdk_config(&clouds.moto_url);
            let result = match document["function"].as_str() {
                Some("sync") => sync_function(clouds, env).await.map(|_| ()),
                Some("pull") => pull_function(clouds, env).await.map(|_| ()),
                _ => ExportPollFunction::from_env(&lookup(env), &sdk)
                    .await
                    .map(|_| ())
                    .map_err(|error| format!("error: {error}")),
            };
            match result {
                Ok(()) => "configured without an error".to_string(),
                Err(error) => error,
            }
        }
    })
    .await;
}

#[tokio::test]
async fn alert_rule_documents_are_rejected_at_start() {
    let clouds = LocalClouds::start("bad-alert-rules").await.unwrap();
    let dir = paths::workspace_root()
        .unwrap()
        .join("testkit/corpus/alert-rules");
    let mut problems = Vec::new();
    for case in corpus("alert-rules") {
        let mut env = clouds.sync_env();
        set(&mut env, "ALERT_RULES", case.text.clone());
        let output = output_of(async {
            match sync_function(&clouds, env).await {
                Ok(_) => "configured without an error".to_string(),
                Err(error) => error,
            }
        })
        .await;
        match output {
            Err(panic) => problems.push(format!("{}: {panic}", case.name)),
            Ok(text) if !text.contains(&case.expected) => problems.push(format!(
                "{}: the output does not contain {:?}: {text}",
                case.name, case.expected
            )),
            Ok(_) => {}
        }
    }
    let written = writes(&clouds).await;
    assert!(written.is_empty(), "{written:?}");
    assert!(
        problems.is_empty(),
        "alert rules in {}:\n{}",
        dir.display(),
        problems.join("\n")
    );
}
