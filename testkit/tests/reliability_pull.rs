//! Reliability of `aliyun-backup-pull`: the handler runs against the fake RDS API, the fake OSS
//! (the download source) and moto, with fault proxies in front of the download and of S3. Each
//! scenario checks the end state: the S3 object is byte-identical to the backup or absent, no
//! multipart upload is left open, and the robot received exactly the expected alerts.
//!
//! The link that expires mid-stream is tested in `pull_function.rs`.

mod reliability_support;

use std::net::SocketAddr;
use std::sync::Arc;

use backup_bridge::jobs::pull::{Continuation, RecordedContinuations};
use backup_bridge::lambda::pull::PullFunction;
use serde_json::{Value, json};
use testkit::aws;
use testkit::fake_rds::{FakeRds, FakeRdsConfig};
use testkit::fault_proxy::{Action, FaultProxy, Match, Rule};
use testkit::local_clouds::{LocalClouds, SeededBackup, WECOM_KEY, sample_bytes, with_wecom};

use reliability_support::{
    Env, assert_alerts, assert_no_open_uploads, assert_s3_absent, assert_s3_identical, invocation,
    lookup, set,
};

const MIB: u64 = 1024 * 1024;

/// A seeded backup whose download URL and S3 endpoint point at fault proxies.
struct Harness {
    clouds: LocalClouds,
    backup: SeededBackup,
    bytes: Vec<u8>,
    download_proxy: FaultProxy,
    s3_proxy: FaultProxy,
}

impl Harness {
    async fn start(name: &str, size: u64, seed: u64) -> Self {
        let clouds = LocalClouds::start(name).await.unwrap();
        let seeded = clouds.seed_aliyun_backup(size, seed).await.unwrap();
        let oss_port = clouds.oss.port();
        let download_proxy =
            FaultProxy::start(SocketAddr::from(([127, 0, 0, 1], oss_port))).unwrap();
        let moto: SocketAddr = clouds
            .moto_url
            .trim_start_matches("http://")
            .parse()
            .unwrap();
        let s3_proxy = FaultProxy::start(moto).unwrap();

        // A second RDS fake with the same listing whose download URLs go through the proxy.
        let mut config: FakeRdsConfig = seeded.rds.config().clone();
        let original = config.download_urls.clone().expect("seeded URLs");
        let from = format!("localhost:{oss_port}");
        let to = format!("localhost:{}", download_proxy.addr().port());
        config.download_urls = Some(Arc::new(move |backup| {
            let mut urls = original(backup);
            urls.public = urls.public.replacen(&from, &to, 1);
            urls.intranet = urls.intranet.replacen(&from, &to, 1);
            urls
        }));
        let rds = FakeRds::start(config).await.unwrap();
        let backup = SeededBackup { rds, ..seeded };
        Self {
            bytes: sample_bytes(usize::try_from(size).unwrap(), seed),
            clouds,
            backup,
            download_proxy,
            s3_proxy,
        }
    }

    fn env(&self) -> Env {
        let mut env = with_wecom(
            self.clouds.pull_env(&self.backup),
            &self.clouds.wecom.base_url(),
            WECOM_KEY,
        );
        set(&mut env, "AWS_ENDPOINT_URL_S3", self.s3_proxy.url());
        env
    }

    async fn function(&self, env: Env, continuations: Arc<RecordedContinuations>) -> PullFunction {
        let continuation: Arc<dyn Continuation> = continuations;
        PullFunction::from_env(
            &lookup(env),
            &aws::sdk_config(&self.s3_proxy.url()),
            Some(continuation),
        )
        .await
        .expect("pull function configures")
    }

    fn backup_event(&self) -> Value {
        json!({ "instance_id": self.backup.instance_id, "backup_id": self.backup.backup_id })
    }

    /// The download requests of the backup file, in arrival order.
    fn downloads(&self) -> Vec<testkit::fault_proxy::SeenRequest> {
        self.download_proxy
            .requests()
            .into_iter()
            .filter(|request| request.method == "GET")
            .collect()
    }
}

fn outcome(result: &Value) -> &str {
    result["backups"][0]["outcome"].as_str().unwrap_or("none")
}

#[tokio::test]
async fn xml_error_on_resumed_range_request_is_retried_not_stored() {
    let harness = Harness::start("rel-pull-xml-range", 11 * MIB + 5, 21).await;
    let file = harness.backup.file_name.clone();
    harness.download_proxy.add_rule(Rule::new(
        Match::method("GET").path_contains(&file).nth(1),
        Action::ResetAfterResponseBytes(3 * MIB),
    ));
    harness.download_proxy.add_rule(Rule::new(
        Match::method("GET")
            .path_contains(&file)
            .header("Range")
            .nth(1),
        Action::respond_xml(
            500,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>InternalError</Code>\
             <Message>We encountered an internal error. Please try again.</Message>\
             <RequestId>FAULT</RequestId></Error>",
        ),
    ));
    let continuations = Arc::new(RecordedContinuations::default());
    let function = harness.function(harness.env(), continuations.clone()).await;

    let result = function
        .handle(invocation(harness.backup_event(), 600))
        .await
        .unwrap();

    assert_eq!(outcome(&result), "pulled", "{result}");
    let statuses: Vec<Option<u16>> = harness.downloads().iter().map(|r| r.status).collect();
    assert!(statuses.contains(&Some(500)), "{statuses:?}");
    assert_s3_identical(
        &harness.clouds.bucket,
        &harness.backup.expected_key,
        &harness.bytes,
    )
    .await;
    assert_no_open_uploads(&harness.clouds).await;
    assert_alerts(&harness.clouds.wecom, &[]);
    assert!(continuations.take().is_empty());
}

#[tokio::test]
async fn access_denied_on_resumed_range_request_fails_cleanly() {
    let harness = Harness::start("rel-pull-denied-range", 11 * MIB, 22).await;
    let file = harness.backup.file_name.clone();
    harness.download_proxy.add_rule(Rule::new(
        Match::method("GET").path_contains(&file).nth(1),
        Action::ResetAfterResponseBytes(3 * MIB),
    ));
    harness.download_proxy.add_rule(Rule::new(
        Match::method("GET").path_contains(&file).header("Range"),
        Action::respond_xml(
            403,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>AccessDenied</Code>\
             <Message>You have no right to access this object.</Message>\
             <RequestId>FAULT</RequestId></Error>",
        ),
    ));
    let continuations = Arc::new(RecordedContinuations::default());
    let function = harness.function(harness.env(), continuations.clone()).await;

    let result = function
        .handle(invocation(harness.backup_event(), 600))
        .await;

    let failed = match &result {
        Ok(value) => outcome(value) == "failed",
        Err(_) => true,
    };
    assert!(failed, "{result:?}");
    assert_s3_absent(&harness.clouds.bucket, &harness.backup.expected_key).await;
    assert_no_open_uploads(&harness.clouds).await;
    assert_alerts(&harness.clouds.wecom, &[&harness.backup.backup_id]);
    assert!(continuations.take().is_empty());
}

#[tokio::test]
async fn truncated_download_body_resumes_with_range() {
    let harness = Harness::start("rel-pull-truncated", 11 * MIB + 3, 23).await;
    harness.download_proxy.add_rule(Rule::new(
        Match::method("GET")
            .path_contains(&harness.backup.file_name)
            .nth(1),
        Action::TruncateResponse { after: 3 * MIB },
    ));
    let continuations = Arc::new(RecordedContinuations::default());
    let function = harness.function(harness.env(), continuations.clone()).await;

    let result = function
        .handle(invocation(harness.backup_event(), 600))
        .await
        .unwrap();

    assert_eq!(outcome(&result), "pulled", "{result}");
    // The cut first request, its reopening for the rest of part 1, and one range each for
    // parts 2 and 3.
    assert_eq!(harness.downloads().len(), 4, "{:?}", harness.downloads());
    assert_s3_identical(
        &harness.clouds.bucket,
        &harness.backup.expected_key,
        &harness.bytes,
    )
    .await;
    assert_no_open_uploads(&harness.clouds).await;
    assert_alerts(&harness.clouds.wecom, &[]);
}

#[tokio::test]
async fn expired_link_on_a_range_is_replaced() {
    let harness = Harness::start("rel-pull-expired-range", 11 * MIB + 7, 26).await;
    harness.download_proxy.add_rule(Rule::new(
        Match::method("GET")
            .path_contains(&harness.backup.file_name)
            .header("Range")
            .nth(1),
        Action::expired_link(),
    ));
    let continuations = Arc::new(RecordedContinuations::default());
    let function = harness.function(harness.env(), continuations.clone()).await;
    let lookups_before = harness.backup.rds.calls().len();

    let result = function
        .handle(invocation(harness.backup_event(), 600))
        .await
        .unwrap();

    assert_eq!(outcome(&result), "pulled", "{result}");
    let statuses: Vec<Option<u16>> = harness.downloads().iter().map(|r| r.status).collect();
    assert_eq!(
        statuses
            .iter()
            .filter(|status| **status == Some(403))
            .count(),
        1,
        "{statuses:?}"
    );
    assert_eq!(statuses.len(), 4, "{statuses:?}");
    assert!(
        harness.backup.rds.calls().len() > lookups_before + 1,
        "the expired link was looked up again: {:?}",
        harness.backup.rds.calls()
    );
    assert_s3_identical(
        &harness.clouds.bucket,
        &harness.backup.expected_key,
        &harness.bytes,
    )
    .await;
    assert_no_open_uploads(&harness.clouds).await;
    assert_alerts(&harness.clouds.wecom, &[]);
}

#[tokio::test]
async fn truncated_range_is_read_again() {
    let harness = Harness::start("rel-pull-truncated-range", 11 * MIB + 3, 25).await;
    harness.download_proxy.add_rule(Rule::new(
        Match::method("GET")
            .path_contains(&harness.backup.file_name)
            .header("Range")
            .nth(1),
        Action::TruncateResponse { after: MIB },
    ));
    let continuations = Arc::new(RecordedContinuations::default());
    let function = harness.function(harness.env(), continuations.clone()).await;

    let result = function
        .handle(invocation(harness.backup_event(), 600))
        .await
        .unwrap();

    assert_eq!(outcome(&result), "pulled", "{result}");
    // Part 1 from the first request, then parts 2 and 3 by ranges, one of them twice.
    assert_eq!(harness.downloads().len(), 4, "{:?}", harness.downloads());
    assert_s3_identical(
        &harness.clouds.bucket,
        &harness.backup.expected_key,
        &harness.bytes,
    )
    .await;
    assert_no_open_uploads(&harness.clouds).await;
    assert_alerts(&harness.clouds.wecom, &[]);
    assert!(continuations.take().is_empty());
}

#[tokio::test]
async fn s3_503_burst_on_upload_part_is_absorbed() {
    let harness = Harness::start("rel-pull-s3-503", 11 * MIB, 24).await;
    let unavailable = Action::respond_xml(
        503,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>ServiceUnavailable</Code>\
         <Message>Please reduce your request rate.</Message><RequestId>FAULT</RequestId></Error>",
    );
    harness.s3_proxy.add_rule(Rule::new(
        Match::method("PUT").path_contains("partNumber=").times(3),
        unavailable,
    ));
    let continuations = Arc::new(RecordedContinuations::default());
    let function = harness.function(harness.env(), continuations.clone()).await;

    let result = function
        .handle(invocation(harness.backup_event(), 600))
        .await
        .unwrap();

    assert_eq!(outcome(&result), "pulled", "{result}");
    assert_s3_identical(
        &harness.clouds.bucket,
        &harness.backup.expected_key,
        &harness.bytes,
    )
    .await;
    assert_no_open_uploads(&harness.clouds).await;
    assert_alerts(&harness.clouds.wecom, &[]);
}

#[tokio::test]
async fn continuation_whose_parts_are_gone_fails_and_next_schedule_pulls() {
    let harness = Harness::start("rel-pull-parts-gone", 11 * MIB, 25).await;
    let mut env = harness.env();
    // A margin longer than the invocation makes each run upload one part and hand over.
    set(&mut env, "PULL_DEADLINE_MARGIN_SECONDS", "3600");
    let continuations = Arc::new(RecordedContinuations::default());
    let function = harness.function(env, continuations.clone()).await;

    let first = function
        .handle(invocation(harness.backup_event(), 600))
        .await
        .unwrap();
    assert_eq!(outcome(&first), "continued", "{first}");
    let mut payloads = continuations.take();
    assert_eq!(payloads.len(), 1);
    // Someone aborts the upload between the runs, so its recorded parts are gone.
    for (key, upload_id) in reliability_support::s3_open_uploads(&harness.clouds.bucket).await {
        aws::s3_client()
            .abort_multipart_upload()
            .bucket(&harness.clouds.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await
            .unwrap();
    }
    let resumed = function
        .handle(invocation(payloads.remove(0).to_event(), 600))
        .await;

    let failed = match &resumed {
        Ok(value) => outcome(value) == "failed",
        Err(_) => true,
    };
    assert!(failed, "{resumed:?}");
    assert!(
        continuations.take().is_empty(),
        "a failed resume hands nothing over"
    );
    assert_s3_absent(&harness.clouds.bucket, &harness.backup.expected_key).await;
    assert_no_open_uploads(&harness.clouds).await;
    assert_alerts(&harness.clouds.wecom, &[&harness.backup.backup_id]);

    // The next schedule starts over and finishes with default settings.
    let fresh = harness.function(harness.env(), continuations.clone()).await;
    let pulled = fresh
        .handle(invocation(json!({ "trigger": "schedule" }), 600))
        .await
        .unwrap();
    assert_eq!(outcome(&pulled), "pulled", "{pulled}");
    assert_s3_identical(
        &harness.clouds.bucket,
        &harness.backup.expected_key,
        &harness.bytes,
    )
    .await;
    assert_no_open_uploads(&harness.clouds).await;
}
