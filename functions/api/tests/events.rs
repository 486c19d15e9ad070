//! Every `events/api-*.json` sample, an API Gateway HTTP API event (payload format 2.0), fed
//! through the router as the Lambda handler receives it, and one sample through the real
//! runtime loop of the built `api` binary.

mod common;

use std::path::Path;

use http_body_util::BodyExt;
use serde_json::Value;
use tower::ServiceExt;

use backup_bridge_api::router;
use common::ApiClouds;
use testkit::lambda::LambdaWatch;
use testkit::paths;

/// Each sample with the status it must produce against the test clouds.
const SAMPLES: [(&str, u16); 8] = [
    ("api-health.json", 200),
    ("api-health-deep.json", 200),
    ("api-config.json", 200),
    ("api-status.json", 200),
    ("api-backups.json", 200),
    ("api-pull-unknown-backup.json", 404),
    ("api-exports.json", 200),
    ("api-export-invalid-id.json", 400),
];

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_sample_event_passes_through_the_handler() {
    let clouds = ApiClouds::start("api-events").await.unwrap();
    let app = router(clouds.state().unwrap());
    let events = paths::workspace_root().unwrap().join("events");
    let mut found: Vec<String> = std::fs::read_dir(&events)
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.starts_with("api-"))
        .collect();
    found.sort();
    let mut listed: Vec<String> = SAMPLES.iter().map(|(name, _)| name.to_string()).collect();
    listed.sort();
    assert_eq!(
        found, listed,
        "every api sample needs an expected status here"
    );

    for (name, expected) in SAMPLES {
        let text = std::fs::read_to_string(events.join(name)).unwrap();
        let request = lambda_http::request::from_str(&text).unwrap();
        let response = app.clone().oneshot(request).await.unwrap();
        let status = response.status().as_u16();
        let body = response.into_body().collect().await.unwrap().to_bytes();
        let body: Value = serde_json::from_slice(&body).unwrap();
        assert_eq!(status, expected, "{name}: {body}");
        if status >= 400 {
            assert!(body["code"].is_string(), "{name}: {body}");
            assert!(body["message"].is_string(), "{name}: {body}");
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_event_runs_through_the_runtime_loop() {
    let clouds = ApiClouds::start("api-runtime").await.unwrap();
    let env = clouds.env.clone();
    let data_file = paths::workspace_root()
        .unwrap()
        .join("events/api-status.json");

    // The invoke blocks its thread; the fakes keep serving on the other worker.
    let (invocation, log) = tokio::task::spawn_blocking(move || {
        let binary = Path::new(env!("CARGO_BIN_EXE_api"));
        let watch = LambdaWatch::start(binary, &env)?;
        let invocation = watch.invoke(&data_file)?;
        anyhow::Ok((invocation, watch.log()))
    })
    .await
    .unwrap()
    .unwrap();

    assert!(invocation.succeeded, "{}\n{log}", invocation.output);
    let start = invocation.output.find('{').unwrap_or(0);
    let reply: Value = serde_json::from_str(&invocation.output[start..])
        .unwrap_or_else(|error| panic!("no JSON reply ({error}) in {}", invocation.output));
    assert_eq!(reply["statusCode"], 200, "{reply}");
    let body: Value = serde_json::from_str(reply["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["aliyun"][0]["instance_id"], clouds.backup.instance_id);
    assert_eq!(body["rds"].as_array().unwrap().len(), 2);
}
