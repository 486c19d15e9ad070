//! The API's routes through the real router, served on 127.0.0.1, against the local clouds.

mod common;

use common::{ApiClouds, PULL_FUNCTION};
use reqwest::StatusCode;
use serde_json::Value;

async fn get(url: &str) -> (StatusCode, Value) {
    let response = reqwest::get(url).await.unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

async fn post(url: &str, language: &str) -> (StatusCode, Value) {
    let response = reqwest::Client::new()
        .post(url)
        .header("accept-language", language)
        .send()
        .await
        .unwrap();
    let status = response.status();
    (status, response.json().await.unwrap())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_reports_version_and_build() {
    let clouds = ApiClouds::start("api-health").await.unwrap();
    let base = clouds.serve().await.unwrap();

    let (status, body) = get(&format!("{base}/health")).await;

    assert_eq!(status, StatusCode::OK);
    assert_eq!(body["status"], "ok");
    assert_eq!(body["build"], "test-build");
    assert!(body.get("checks").is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_health_checks_every_dependency() {
    let clouds = ApiClouds::start("api-deep").await.unwrap();
    let base = clouds.serve().await.unwrap();

    let (status, body) = get(&format!("{base}/health?deep=true")).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    let checks = body["checks"].as_array().unwrap();
    let names: Vec<&str> = checks.iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["s3", "oss", "aliyun_api", "rds", "wecom"]);
    for check in checks {
        assert_eq!(check["status"], "ok", "{check}");
    }
    assert!(clouds.clouds.wecom.messages().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deep_health_reports_wrong_oss_key() {
    let mut clouds = ApiClouds::start("api-deep-bad").await.unwrap();
    clouds.env.push((
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET".into(),
        "wrong-secret".into(),
    ));
    let base = clouds.serve().await.unwrap();

    let (status, body) = get(&format!("{base}/health?deep=true")).await;

    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(body["status"], "degraded");
    let oss = &body["checks"][1];
    assert_eq!(oss["name"], "oss");
    assert_eq!(oss["status"], "error");
    let aliyun = &body["checks"][2];
    assert_eq!(aliyun["status"], "error");
    assert!(!body.to_string().contains("wrong-secret"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn config_shows_no_secret_value() {
    let mut clouds = ApiClouds::start("api-config").await.unwrap();
    clouds.env.push((
        "ALIBABA_CLOUD_SECURITY_TOKEN".into(),
        "sts-token-for-config-test".into(),
    ));
    let secrets: Vec<String> = clouds
        .env
        .iter()
        .filter(|(name, _)| {
            [
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
                "ALIBABA_CLOUD_SECURITY_TOKEN",
                "WECOM_WEBHOOK_KEY",
            ]
            .contains(&name.as_str())
        })
        .map(|(_, value)| value.clone())
        .collect();
    assert!(
        secrets.len() >= 3,
        "the environment lacks a secret to look for"
    );
    let base = clouds.serve().await.unwrap();

    let response = reqwest::get(format!("{base}/config")).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let text = response.text().await.unwrap();

    for secret in &secrets {
        assert!(
            !text.contains(secret.as_str()),
            "/config contains a secret value"
        );
    }
    let body: Value = serde_json::from_str(&text).unwrap();
    let api = &body["functions"]["api"];
    assert_eq!(api["aliyun_access_key_secret"], "***");
    assert_eq!(api["aliyun_security_token"], "***");
    assert_eq!(api["wecom_webhook_key"], "***");
    assert_eq!(
        body["functions"]["aliyun-backup-pull"]["bucket"],
        clouds.clouds.bucket
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_carry_verdicts() {
    let clouds = ApiClouds::start("api-backups").await.unwrap();
    let base = clouds.serve().await.unwrap();
    let instance = &clouds.backup.instance_id;

    let (status, body) = get(&format!("{base}/aliyun/instances/{instance}/backups")).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    let backups = body["backups"].as_array().unwrap();
    assert_eq!(backups.len(), 1);
    assert_eq!(backups[0]["backup_id"], clouds.backup.backup_id);
    assert_eq!(backups[0]["verdicts"], serde_json::json!(["ok"]));
    assert_eq!(body["verdicts"][0]["verdict"], "ok");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn backups_reject_invalid_time_naming_field() {
    let clouds = ApiClouds::start("api-backups-bad").await.unwrap();
    let base = clouds.serve().await.unwrap();
    let instance = &clouds.backup.instance_id;

    let (status, body) = get(&format!(
        "{base}/aliyun/instances/{instance}/backups?from=yesterday"
    ))
    .await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "invalid_parameter");
    assert!(body["message"].as_str().unwrap().contains("from"), "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_instance_is_not_found_in_english() {
    let clouds = ApiClouds::start("api-unknown").await.unwrap();
    let base = clouds.serve().await.unwrap();

    let (status, body) = post(
        &format!("{base}/aliyun/instances/rm-unknown/backups/123/pull"),
        "en-US,en;q=0.9",
    )
    .await;

    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "instance_not_found");
    assert_eq!(body["message"], "configured instance rm-unknown not found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn errors_default_to_chinese() {
    let clouds = ApiClouds::start("api-zh").await.unwrap();
    let base = clouds.serve().await.unwrap();

    let (status, body) = get(&format!("{base}/aws/exports/Not_Valid")).await;

    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["code"], "invalid_parameter");
    assert!(
        body["message"]
            .as_str()
            .unwrap()
            .starts_with("参数 id 无效"),
        "{body}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_route_has_the_error_shape() {
    let clouds = ApiClouds::start("api-route").await.unwrap();
    let base = clouds.serve().await.unwrap();

    let (status, body) = get(&format!("{base}/no/such/route")).await;

    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "route_not_found");
    assert!(body["message"].is_string());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_start_invokes_the_pull_asynchronously() {
    let clouds = ApiClouds::start("api-pull").await.unwrap();
    let base = clouds.serve().await.unwrap();
    let backup = &clouds.backup;

    let (status, body) = post(
        &format!(
            "{base}/aliyun/instances/{}/backups/{}/pull",
            backup.instance_id, backup.backup_id
        ),
        "en",
    )
    .await;

    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(
        body["s3_uri"],
        format!("s3://{}/{}", clouds.clouds.bucket, backup.expected_key)
    );
    let invocations = clouds.lambda.invocations();
    assert_eq!(invocations.len(), 1);
    assert_eq!(invocations[0].function_name, PULL_FUNCTION);
    assert_eq!(invocations[0].invocation_type, "Event");
    assert_eq!(invocations[0].payload["instance_id"], backup.instance_id);
    assert_eq!(invocations[0].payload["backup_id"], backup.backup_id);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pull_of_unknown_backup_is_not_found() {
    let clouds = ApiClouds::start("api-pull-404").await.unwrap();
    let base = clouds.serve().await.unwrap();

    let (status, body) = post(
        &format!(
            "{base}/aliyun/instances/{}/backups/1234/pull",
            clouds.backup.instance_id
        ),
        "en",
    )
    .await;

    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["code"], "backup_not_found");
    assert!(clouds.lambda.invocations().is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refused_invoke_is_a_bad_gateway_with_code() {
    let clouds = ApiClouds::start("api-pull-502").await.unwrap();
    clouds
        .lambda
        .fail_next(&[testkit::fake_lambda::Fault::ServiceError]);
    let base = clouds.serve().await.unwrap();
    let backup = &clouds.backup;

    let (status, body) = post(
        &format!(
            "{base}/aliyun/instances/{}/backups/{}/pull",
            backup.instance_id, backup.backup_id
        ),
        "en",
    )
    .await;

    assert_eq!(status, StatusCode::BAD_GATEWAY, "{body}");
    assert_eq!(body["code"], "lambda_error");
    assert_eq!(body["cloud_code"], "ServiceException");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn snapshots_carry_source_verdicts() {
    let clouds = ApiClouds::start("api-snapshots").await.unwrap();
    let base = clouds.serve().await.unwrap();

    let (status, body) = get(&format!("{base}/aws/snapshots?source=instance:prod-db")).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    let sources = body["sources"].as_array().unwrap();
    assert_eq!(sources.len(), 1);
    assert_eq!(sources[0]["source"], "instance:prod-db");
    assert_eq!(sources[0]["verdict"], "valid");
    assert_eq!(
        sources[0]["snapshots"][0]["id"],
        clouds.export.completing.id
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unconfigured_source_is_not_found() {
    let clouds = ApiClouds::start("api-snapshots-404").await.unwrap();
    let base = clouds.serve().await.unwrap();

    let (status, body) = get(&format!("{base}/aws/snapshots?source=cluster:other")).await;

    assert_eq!(status, StatusCode::NOT_FOUND);
    assert_eq!(body["code"], "source_not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn export_start_then_follow_to_oss_counts() {
    let clouds = ApiClouds::start("api-export").await.unwrap();
    let base = clouds.serve().await.unwrap();
    let snapshot = &clouds.export.completing.id;
    let task_id = &clouds.export.completing_task_id;

    let (status, body) = post(&format!("{base}/aws/snapshots/{snapshot}/export"), "en").await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["task_id"], *task_id);
    assert_eq!(body["follow"], format!("/aws/exports/{task_id}"));

    let (status, body) = post(&format!("{base}/aws/snapshots/{snapshot}/export"), "en").await;
    assert_eq!(status, StatusCode::CONFLICT, "{body}");
    assert_eq!(body["code"], "export_exists");

    // The scripted export completes after two reads of its status, and the POSTs above read it
    // too, so a few GETs reach COMPLETE.
    let mut last = Value::Null;
    for _ in 0..4 {
        let (status, body) = get(&format!("{base}/aws/exports/{task_id}")).await;
        assert_eq!(status, StatusCode::OK, "{body}");
        last = body;
        if last["status"] == "COMPLETE" {
            break;
        }
    }
    assert_eq!(last["status"], "COMPLETE", "{last}");
    let oss = &last["oss"];
    assert_eq!(oss["listed"], clouds.export.exported_keys.len() as u64);
    assert_eq!(oss["missing"], clouds.export.exported_keys.len() as u64);
    assert_eq!(oss["present"], 0);
    assert_eq!(oss["synced"], false);

    let (status, body) = get(&format!("{base}/aws/exports")).await;
    assert_eq!(status, StatusCode::OK);
    let ids: Vec<&str> = body["exports"]
        .as_array()
        .unwrap()
        .iter()
        .map(|export| export["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [task_id.as_str()]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_export_is_not_found() {
    let clouds = ApiClouds::start("api-export-404").await.unwrap();
    let base = clouds.serve().await.unwrap();

    let (status, body) = get(&format!("{base}/aws/exports/bb-no-such-task")).await;

    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    assert_eq!(body["code"], "export_not_found");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn status_shows_every_configured_source() {
    let clouds = ApiClouds::start("api-status").await.unwrap();
    let base = clouds.serve().await.unwrap();

    let (status, body) = get(&format!("{base}/status")).await;

    assert_eq!(status, StatusCode::OK, "{body}");
    let aliyun = &body["aliyun"][0];
    assert_eq!(aliyun["instance_id"], clouds.backup.instance_id);
    assert_eq!(aliyun["backup_id"], clouds.backup.backup_id);
    assert_eq!(aliyun["fresh"], true);
    assert_eq!(aliyun["in_s3"], false);
    assert_eq!(aliyun["s3_key"], clouds.backup.expected_key);
    let rds = body["rds"].as_array().unwrap();
    assert_eq!(rds.len(), 2);
    assert_eq!(rds[0]["source"], "instance:prod-db");
    assert_eq!(rds[0]["export_task_id"], clouds.export.completing_task_id);
    assert_eq!(rds[0]["in_oss"], false);
    assert_eq!(body["healthy"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openapi_lists_every_route() {
    let clouds = ApiClouds::start("api-openapi").await.unwrap();
    let base = clouds.serve().await.unwrap();

    let (status, body) = get(&format!("{base}/openapi.json")).await;

    assert_eq!(status, StatusCode::OK);
    assert!(body["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = body["paths"].as_object().unwrap();
    for path in [
        "/health",
        "/config",
        "/aliyun/instances/{id}/backups",
        "/aliyun/instances/{id}/backups/{backup_id}/pull",
        "/aws/snapshots",
        "/aws/snapshots/{id}/export",
        "/aws/exports",
        "/aws/exports/{id}",
        "/status",
    ] {
        assert!(paths.contains_key(path), "{path} is missing");
    }
    let page = reqwest::get(format!("{base}/docs"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("<code>/aws/exports/{id}</code>"), "{page}");
    // The renderer is one pinned release, never a moving `latest`.
    assert!(
        page.contains("redoc@2.5.0/bundles/redoc.standalone.js"),
        "{page}"
    );
    assert!(!page.contains("latest"), "{page}");
}
