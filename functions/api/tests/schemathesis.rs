//! A property-based run of schemathesis (pinned in `requirements-dev.txt`) against the router on
//! 127.0.0.1: it reads `/openapi.json`, generates requests for every operation, and fails on
//! any 5xx reply or any reply that the document does not describe.

mod common;

use std::process::Command;

use common::ApiClouds;
use testkit::paths;

/// Generated requests per operation: enough to reach every documented status, few enough to
/// keep `make test` short.
const MAX_EXAMPLES: &str = "25";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_document_matches_every_reply() {
    let clouds = ApiClouds::start("api-schemathesis").await.unwrap();
    let base = clouds.serve().await.unwrap();
    let schemathesis = paths::venv_bin("st").unwrap();

    let output = tokio::task::spawn_blocking(move || {
        Command::new(schemathesis)
            .arg("run")
            .arg(format!("{base}/openapi.json"))
            .args([
                "--checks",
                "not_a_server_error,status_code_conformance,content_type_conformance,response_schema_conformance",
                "--max-examples",
                MAX_EXAMPLES,
                "--seed",
                "20261204",
                "--workers",
                "1",
                "--generation-database",
                "none",
                "--request-timeout",
                "25",
                "--no-color",
            ])
            .env("PATH", paths::path_with_venv().unwrap())
            .env("SCHEMATHESIS_TELEMETRY", "false")
            .output()
    })
    .await
    .unwrap()
    .unwrap();

    let report = format!(
        "{}\n{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    assert!(
        output.status.success(),
        "schemathesis found problems:\n{report}"
    );
    // A run that reached no operation would pass as well, so count the operations tested.
    assert!(
        report.contains("Tested: 9"),
        "schemathesis did not test all 9 operations:\n{report}"
    );
}
