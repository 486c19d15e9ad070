//! Reliability of `s3-oss-sync`: the handler runs against moto and the fake OSS with a fault
//! proxy in front of each, and every scenario checks the end state: the OSS object is
//! byte-identical to the source or absent, no multipart upload is left open on either side,
//! and the robot received exactly the expected alerts.

mod reliability_support;

use std::net::SocketAddr;

use backup_bridge::lambda::sync::SyncFunction;
use futures::StreamExt;
use serde_json::Value;
use testkit::aws;
use testkit::fault_proxy::{Action, FaultProxy, Match, Rule};
use testkit::local_clouds::{LocalClouds, OSS_DOMAIN, sample_bytes};
use testkit::s3_events::{CreatedObject, object_created_event};

use reliability_support::{
    Env, assert_alerts, assert_no_open_uploads, assert_oss_absent, assert_oss_identical,
    invocation, lookup, set,
};

const MIB: usize = 1024 * 1024;

/// The local clouds with a fault proxy in front of moto and one in front of the fake OSS.
struct Harness {
    clouds: LocalClouds,
    s3_proxy: FaultProxy,
    oss_proxy: FaultProxy,
}

impl Harness {
    async fn start(name: &str) -> Self {
        let clouds = LocalClouds::start(name).await.unwrap();
        let moto: SocketAddr = clouds
            .moto_url
            .trim_start_matches("http://")
            .parse()
            .unwrap();
        let s3_proxy = FaultProxy::start(moto).unwrap();
        let oss_proxy =
            FaultProxy::start(SocketAddr::from(([127, 0, 0, 1], clouds.oss.port()))).unwrap();
        Self {
            clouds,
            s3_proxy,
            oss_proxy,
        }
    }

    /// The sync environment with S3 and OSS reached through the proxies.
    fn env(&self) -> Env {
        let mut env = self.clouds.sync_env();
        set(&mut env, "AWS_ENDPOINT_URL_S3", self.s3_proxy.url());
        set(
            &mut env,
            "OSS_ENDPOINT",
            format!("http://{OSS_DOMAIN}:{}", self.oss_proxy.addr().port()),
        );
        env
    }

    async fn function(&self) -> SyncFunction {
        SyncFunction::from_env(&lookup(self.env()), &aws::sdk_config(&self.s3_proxy.url()))
            .await
            .expect("sync function configures")
    }

    /// Uploads a generated object and returns its bytes and ETag.
    async fn put(&self, key: &str, size: usize, seed: u64) -> (Vec<u8>, String) {
        let body = sample_bytes(size, seed);
        let etag = self.clouds.put_s3_object(key, body.clone()).await.unwrap();
        (body, etag)
    }

    fn event(&self, key: &str, size: usize, etag: &str) -> Value {
        self.event_with_sequencer(key, size, etag, "0062F1A4B3C2D1E0F9")
    }

    fn event_with_sequencer(&self, key: &str, size: usize, etag: &str, sequencer: &str) -> Value {
        object_created_event(&[CreatedObject {
            event: "Put",
            bucket: &self.clouds.bucket,
            key,
            size: size as u64,
            etag,
            sequencer,
        }])
    }
}

fn target(key: &str) -> String {
    format!("iotdb-backup/{key}")
}

fn outcome(result: &Value, index: usize) -> &str {
    result["records"][index]["outcome"]
        .as_str()
        .unwrap_or("none")
}

#[tokio::test]
async fn get_reset_mid_part_is_read_again() {
    let harness = Harness::start("rel-sync-get-reset").await;
    let key = "mysql/export-1/shop/shop.orders/1/part-00000-reset.gz.parquet";
    let (body, etag) = harness.put(key, 3 * MIB + 99, 1).await;
    // Each part is one ranged GET of 1 MiB, and the first one is cut halfway.
    harness.s3_proxy.add_rule(Rule::new(
        Match::method("GET")
            .path_contains("part-00000-reset")
            .nth(1),
        Action::ResetAfterResponseBytes(500_000),
    ));

    let result = harness
        .function()
        .await
        .handle(invocation(harness.event(key, body.len(), &etag), 60))
        .await
        .unwrap();

    assert_eq!(outcome(&result, 0), "copied", "{result}");
    assert_eq!(result["records"][0]["parts"], 4);
    let gets = harness
        .s3_proxy
        .requests()
        .iter()
        .filter(|request| {
            request.method == "GET" && request.path_and_query.contains("part-00000-reset")
        })
        .count();
    assert_eq!(gets, 5, "four ranges and one read again");
    assert_oss_identical(&harness.clouds, &target(key), &body);
    assert_no_open_uploads(&harness.clouds).await;
    assert_alerts(&harness.clouds.wecom, &[]);
}

#[tokio::test]
async fn get_reset_every_time_fails_cleanly() {
    let harness = Harness::start("rel-sync-get-resets").await;
    let key = "mysql/export-1/shop/shop.orders/1/part-00000-resets.gz.parquet";
    let (body, etag) = harness.put(key, 3 * MIB + 99, 1).await;
    harness.s3_proxy.add_rule(Rule::new(
        Match::method("GET").path_contains("part-00000-resets"),
        Action::ResetAfterResponseBytes(500_000),
    ));
    let function = harness.function().await;

    let first = function
        .handle(invocation(harness.event(key, body.len(), &etag), 60))
        .await;
    harness.s3_proxy.clear_rules();
    let retried = function
        .handle(invocation(harness.event(key, body.len(), &etag), 60))
        .await
        .unwrap();

    let error = first.expect_err("a source that is always cut must fail the invocation");
    assert!(error.to_string().contains(key), "{error}");
    assert_eq!(outcome(&retried, 0), "copied", "{retried}");
    assert_oss_identical(&harness.clouds, &target(key), &body);
    assert_no_open_uploads(&harness.clouds).await;
    assert_alerts(&harness.clouds.wecom, &["shop.orders"]);
}

#[tokio::test]
async fn upload_part_reset_is_retried_within_the_invocation() {
    let harness = Harness::start("rel-sync-part-reset").await;
    let key = "mysql/export-1/shop/shop.items/1/part-00000-part-reset.gz.parquet";
    let (body, etag) = harness.put(key, 3 * MIB + 5, 2).await;
    harness.oss_proxy.add_rule(Rule::new(
        Match::method("PUT").path_contains("partNumber=2").nth(1),
        Action::ResetAfterRequestBytes(300_000),
    ));

    let result = harness
        .function()
        .await
        .handle(invocation(harness.event(key, body.len(), &etag), 60))
        .await
        .unwrap();

    assert_eq!(outcome(&result, 0), "copied", "{result}");
    assert_eq!(result["records"][0]["parts"], 4);
    assert_oss_identical(&harness.clouds, &target(key), &body);
    assert_no_open_uploads(&harness.clouds).await;
    assert_alerts(&harness.clouds.wecom, &[]);
}

#[tokio::test]
async fn oss_503_burst_is_absorbed_by_retries() {
    let harness = Harness::start("rel-sync-503").await;
    let key = "mysql/export-1/shop/shop.burst/1/part-00000-burst.gz.parquet";
    let (body, etag) = harness.put(key, 2 * MIB + 1, 3).await;
    let unavailable = Action::respond_xml(
        503,
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>ServiceUnavailable</Code>\
         <Message>Please reduce your request rate.</Message><RequestId>FAULT</RequestId></Error>",
    );
    // The engine retries InitiateMultipartUpload and UploadPart. The HEAD checks before the
    // copy are not retried in the invocation: a 503 there fails the record for Lambda's retry.
    harness.oss_proxy.add_rule(Rule::new(
        Match::method("POST").path_contains("uploads").times(2),
        unavailable.clone(),
    ));
    harness
        .oss_proxy
        .add_rule(Rule::new(Match::method("PUT").times(3), unavailable));

    let result = harness
        .function()
        .await
        .handle(invocation(harness.event(key, body.len(), &etag), 60))
        .await
        .unwrap();

    assert_eq!(outcome(&result, 0), "copied", "{result}");
    let refused = harness
        .oss_proxy
        .requests()
        .iter()
        .filter(|request| request.status == Some(503))
        .count();
    assert_eq!(refused, 5, "the burst reached the client");
    assert_oss_identical(&harness.clouds, &target(key), &body);
    assert_no_open_uploads(&harness.clouds).await;
    assert_alerts(&harness.clouds.wecom, &[]);
}

#[tokio::test]
async fn s3_slow_down_on_get_is_absorbed_by_retries() {
    let harness = Harness::start("rel-sync-slowdown").await;
    let key = "mysql/export-1/shop/shop.slow/1/part-00000-slow.gz.parquet";
    let (body, etag) = harness.put(key, MIB + 3, 4).await;
    harness.s3_proxy.add_rule(Rule::new(
        Match::method("GET")
            .path_contains("part-00000-slow")
            .times(2),
        Action::s3_slow_down(),
    ));

    let result = harness
        .function()
        .await
        .handle(invocation(harness.event(key, body.len(), &etag), 60))
        .await
        .unwrap();

    assert_eq!(outcome(&result, 0), "copied", "{result}");
    assert_oss_identical(&harness.clouds, &target(key), &body);
    assert_no_open_uploads(&harness.clouds).await;
    assert_alerts(&harness.clouds.wecom, &[]);
}

#[tokio::test]
async fn lost_upload_part_reply_is_retried() {
    let harness = Harness::start("rel-sync-lost-part").await;
    let key = "mysql/export-1/shop/shop.lost/1/part-00000-lost-part.gz.parquet";
    let (body, etag) = harness.put(key, 3 * MIB + 11, 5).await;
    harness.oss_proxy.add_rule(Rule::new(
        Match::method("PUT").path_contains("partNumber=1").nth(1),
        Action::DropReply,
    ));

    let result = harness
        .function()
        .await
        .handle(invocation(harness.event(key, body.len(), &etag), 60))
        .await
        .unwrap();

    assert_eq!(outcome(&result, 0), "copied", "{result}");
    assert_oss_identical(&harness.clouds, &target(key), &body);
    assert_no_open_uploads(&harness.clouds).await;
    assert_alerts(&harness.clouds.wecom, &[]);
}

#[tokio::test]
async fn part_crc64_mismatch_resends_part() {
    let harness = Harness::start("rel-sync-part-crc").await;
    let key = "mysql/export-1/shop/shop.crc/1/part-00000-part-crc.gz.parquet";
    let (body, etag) = harness.put(key, 3 * MIB + 17, 8).await;
    // OSS reports each part's CRC-64 in `x-oss-hash-crc64ecma`. A value other than the one the
    // sender computed means the part arrived damaged.
    harness.oss_proxy.add_rule(Rule::new(
        Match::method("PUT").path_contains("partNumber=2").nth(1),
        Action::Respond {
            status: 200,
            headers: vec![
                (
                    "ETag".to_owned(),
                    "\"0CC175B9C0F1B6A831C399E269772661\"".to_owned(),
                ),
                ("x-oss-hash-crc64ecma".to_owned(), "42".to_owned()),
            ],
            body: Default::default(),
        },
    ));

    let result = harness
        .function()
        .await
        .handle(invocation(harness.event(key, body.len(), &etag), 60))
        .await
        .unwrap();

    assert_eq!(outcome(&result, 0), "copied", "{result}");
    let part_two_sends = harness
        .oss_proxy
        .requests()
        .iter()
        .filter(|request| {
            request.method == "PUT" && request.path_and_query.contains("partNumber=2")
        })
        .count();
    assert_eq!(
        part_two_sends, 2,
        "part 2 is sent again after the wrong CRC-64"
    );
    assert_oss_identical(&harness.clouds, &target(key), &body);
    assert_no_open_uploads(&harness.clouds).await;
    assert_alerts(&harness.clouds.wecom, &[]);
}

#[tokio::test]
async fn lost_complete_reply_still_ends_with_the_object() {
    let harness = Harness::start("rel-sync-lost-complete").await;
    let key = "mysql/export-1/shop/shop.done/1/part-00000-lost-complete.gz.parquet";
    let (body, etag) = harness.put(key, 2 * MIB + 13, 6).await;
    harness.oss_proxy.add_rule(Rule::new(
        Match::method("POST").path_contains("uploadId=").nth(1),
        Action::DropReply,
    ));
    let function = harness.function().await;

    let first = function
        .handle(invocation(harness.event(key, body.len(), &etag), 60))
        .await;

    // The upload was completed although its reply was lost: the object is whole either way.
    assert_oss_identical(&harness.clouds, &target(key), &body);
    assert_no_open_uploads(&harness.clouds).await;
    let first = first.expect("a completed upload whose reply was lost is a success");
    assert!(
        ["copied", "already_synced"].contains(&outcome(&first, 0)),
        "{first}"
    );
    assert_alerts(&harness.clouds.wecom, &[]);
}

#[tokio::test]
async fn source_deleted_mid_copy_is_reported_and_nothing_written() {
    let harness = Harness::start("rel-sync-deleted").await;
    let key = "mysql/export-1/shop/shop.gone/1/part-00000-gone.gz.parquet";
    let (body, etag) = harness.put(key, MIB + 17, 7).await;
    // The GET waits in the proxy while the test deletes the object behind it.
    harness.s3_proxy.add_rule(Rule::new(
        Match::method("GET").path_contains("part-00000-gone"),
        Action::Delay(std::time::Duration::from_secs(2)),
    ));
    let function = harness.function().await;
    let event = harness.event(key, body.len(), &etag);
    let handle = tokio::spawn(async move { function.handle(invocation(event, 60)).await });

    loop {
        let seen = harness.s3_proxy.requests().len();
        harness.s3_proxy.wait_for_requests(seen + 1).await;
        let get_arrived = harness.s3_proxy.requests().iter().any(|request| {
            request.method == "GET" && request.path_and_query.contains("part-00000-gone")
        });
        if get_arrived {
            break;
        }
    }
    aws::s3_client()
        .delete_object()
        .bucket(&harness.clouds.bucket)
        .key(key)
        .send()
        .await
        .unwrap();
    let result = handle.await.unwrap().unwrap();

    assert_eq!(outcome(&result, 0), "source_missing", "{result}");
    assert_oss_absent(&harness.clouds, &target(key));
    assert_no_open_uploads(&harness.clouds).await;
    assert_alerts(&harness.clouds.wecom, &[]);
}

#[tokio::test]
async fn same_record_twice_at_once_and_an_hour_later_copies_once() {
    let harness = Harness::start("rel-sync-duplicate").await;
    let key = "mysql/export-1/shop/shop.twice/1/part-00000-twice.gz.parquet";
    let (body, etag) = harness.put(key, 2 * MIB + 19, 8).await;
    let function = harness.function().await;

    let (first, second) = tokio::join!(
        function.handle(invocation(harness.event(key, body.len(), &etag), 60)),
        function.handle(invocation(harness.event(key, body.len(), &etag), 60)),
    );
    let mut late = harness.event(key, body.len(), &etag);
    let an_hour_later = (chrono::Utc::now() + chrono::TimeDelta::hours(1))
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    late["Records"][0]["eventTime"] = Value::from(an_hour_later);
    let third = function.handle(invocation(late, 60)).await.unwrap();

    let outcomes = [
        outcome(&first.unwrap(), 0).to_string(),
        outcome(&second.unwrap(), 0).to_string(),
    ];
    assert_eq!(
        outcomes.iter().filter(|o| *o == "copied").count()
            + outcomes.iter().filter(|o| *o == "already_synced").count(),
        2,
        "{outcomes:?}"
    );
    assert!(outcomes.contains(&"copied".to_string()), "{outcomes:?}");
    assert_eq!(outcome(&third, 0), "already_synced", "{third}");
    assert_oss_identical(&harness.clouds, &target(key), &body);
    assert_no_open_uploads(&harness.clouds).await;
    assert_alerts(&harness.clouds.wecom, &[]);
}

#[tokio::test]
async fn records_out_of_order_end_with_the_latest_version() {
    let harness = Harness::start("rel-sync-order").await;
    let key = "mysql/export-1/shop/shop.order/1/part-00000-order.gz.parquet";
    let (old_body, old_etag) = harness.put(key, 300 * 1024, 9).await;
    let (new_body, new_etag) = harness.put(key, 400 * 1024, 10).await;
    let function = harness.function().await;
    let newer = harness.event_with_sequencer(key, new_body.len(), &new_etag, "0062F1A4B3C2D1E0FA");
    let older = harness.event_with_sequencer(key, old_body.len(), &old_etag, "0062F1A4B3C2D1E0F9");

    let new_result = function.handle(invocation(newer, 60)).await.unwrap();
    let old_result = function.handle(invocation(older, 60)).await;

    assert_eq!(outcome(&new_result, 0), "copied", "{new_result}");
    let old_result = old_result.expect("a stale record is not retried");
    assert_ne!(outcome(&old_result, 0), "copied", "{old_result}");
    assert_oss_identical(&harness.clouds, &target(key), &new_body);
    assert_no_open_uploads(&harness.clouds).await;
    assert_alerts(&harness.clouds.wecom, &[]);
}

#[tokio::test]
async fn thousand_small_objects_with_duplicates_in_one_burst() {
    let harness = Harness::start("rel-sync-burst").await;
    let objects: Vec<(String, Vec<u8>)> = (0..1000)
        .map(|index| {
            let key = format!("mysql/export-1/shop/shop.many/1/part-{index:05}.gz.parquet");
            (key, sample_bytes(2048 + index % 97, index as u64))
        })
        .collect();
    let etags: Vec<String> = futures::stream::iter(objects.iter())
        .map(|(key, body)| harness.clouds.put_s3_object(key, body.clone()))
        .buffered(16)
        .map(Result::unwrap)
        .collect()
        .await;
    // Every tenth object is delivered twice, in another batch than its first delivery.
    let mut records: Vec<usize> = (0..1000).collect();
    records.extend((0..1000).step_by(10).map(|index| (index + 500) % 1000));
    let function = harness.function().await;
    let batches: Vec<Value> = records
        .chunks(100)
        .map(|chunk| {
            let created: Vec<CreatedObject> = chunk
                .iter()
                .map(|&index| CreatedObject {
                    event: "Put",
                    bucket: &harness.clouds.bucket,
                    key: &objects[index].0,
                    size: objects[index].1.len() as u64,
                    etag: &etags[index],
                    sequencer: "0062F1A4B3C2D1E0F9",
                })
                .collect();
            object_created_event(&created)
        })
        .collect();

    let results: Vec<Value> = futures::stream::iter(batches)
        .map(|batch| function.handle(invocation(batch, 120)))
        .buffer_unordered(11)
        .map(Result::unwrap)
        .collect()
        .await;

    let outcomes: Vec<&str> = results
        .iter()
        .flat_map(|result| result["records"].as_array().unwrap())
        .map(|record| record["outcome"].as_str().unwrap_or("none"))
        .collect();
    assert_eq!(outcomes.len(), 1100);
    // A duplicate that races its first delivery may copy the same bytes a second time.
    let copied = outcomes.iter().filter(|o| **o == "copied").count();
    let already = outcomes.iter().filter(|o| **o == "already_synced").count();
    assert!(copied >= 1000, "copied {copied}: {outcomes:?}");
    assert_eq!(copied + already, 1100, "{outcomes:?}");
    for (key, body) in &objects {
        assert_oss_identical(&harness.clouds, &target(key), body);
    }
    assert_no_open_uploads(&harness.clouds).await;
    assert_alerts(&harness.clouds.wecom, &[]);
}
