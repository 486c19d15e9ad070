//! Secret hygiene: the handlers run with distinctive secret values (the OSS AccessKey secret, an
//! STS token, the Aliyun RDS AccessKey secret and the WeCom webhook key), on paths that succeed
//! and paths that fail, and no captured log line, handler result, error or alert body may contain
//! any of them.

mod reliability_support;

use std::io::Write;
use std::sync::{Arc, Mutex};

use backup_bridge::jobs::pull::{Continuation, RecordedContinuations};
use backup_bridge::lambda::pull::PullFunction;
use backup_bridge::lambda::sync::SyncFunction;
use serde_json::{Value, json};
use testkit::aws;
use testkit::fake_oss::{FakeOss, FakeOssConfig};
use testkit::fake_rds::FakeRds;
use testkit::fake_wecom::FakeWecom;
use testkit::local_clouds::{LocalClouds, OSS_BUCKET, OSS_DOMAIN, SeededBackup, sample_bytes};
use testkit::s3_events::{CreatedObject, object_created_event};
use tracing_subscriber::fmt::MakeWriter;

use reliability_support::{Env, invocation, lookup, set};

const OSS_SECRET: &str = "OssSecretZq81Kx0wPlVb3nTr7YhJ";
const STS_TOKEN: &str = "CAISStsTokenQm4Rt8Zx2Lk9Wd6Hv3Yp";
const RDS_SECRET: &str = "RdsSecretNb5Jf1Gc7Xs0Qe4Tu2Oi";
const WECOM_SECRET_KEY: &str = "wecom-key-7d1c93f0-b6aa-4e52-9f08-secret";

fn secrets() -> [&'static str; 4] {
    [OSS_SECRET, STS_TOKEN, RDS_SECRET, WECOM_SECRET_KEY]
}

/// Every log line of the test's thread, formatted as the functions' JSON logs are.
#[derive(Clone, Default)]
struct CapturedLogs(Arc<Mutex<Vec<u8>>>);

impl Write for CapturedLogs {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> MakeWriter<'a> for CapturedLogs {
    type Writer = CapturedLogs;

    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

impl CapturedLogs {
    fn install(&self) -> tracing::subscriber::DefaultGuard {
        let subscriber = tracing_subscriber::fmt()
            .json()
            .with_max_level(tracing::Level::TRACE)
            .with_writer(self.clone())
            .finish();
        tracing::subscriber::set_default(subscriber)
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
    }
}

/// Asserts that no secret occurs in any captured text, naming where one was found.
fn assert_no_secrets(captured: &[(&str, String)]) {
    for (origin, text) in captured {
        assert!(
            !text.is_empty() || *origin != "logs",
            "no log line was captured"
        );
        for secret in secrets() {
            assert!(
                !text.contains(secret),
                "{origin} contains the secret {secret}:\n{text}"
            );
        }
    }
}

/// Local clouds whose fake OSS requires the distinctive secret and STS token, and whose robot
/// accepts the distinctive webhook key.
async fn secret_clouds(name: &str) -> LocalClouds {
    let base = LocalClouds::start(name).await.unwrap();
    let mut config = FakeOssConfig::with_buckets(&[OSS_BUCKET]);
    config
        .custom_domains
        .push((OSS_DOMAIN.to_string(), OSS_BUCKET.to_string()));
    config.access_key_secret = OSS_SECRET.to_string();
    config.security_token = Some(STS_TOKEN.to_string());
    LocalClouds {
        oss: FakeOss::start(config).await.unwrap(),
        wecom: FakeWecom::start(&[WECOM_SECRET_KEY]).await.unwrap(),
        ..base
    }
}

fn sync_env(clouds: &LocalClouds, oss_secret: &str) -> Env {
    let mut env = clouds.sync_env();
    set(&mut env, "ALIBABA_CLOUD_ACCESS_KEY_SECRET", oss_secret);
    set(&mut env, "ALIBABA_CLOUD_SECURITY_TOKEN", STS_TOKEN);
    set(&mut env, "WECOM_WEBHOOK_KEY", WECOM_SECRET_KEY);
    env
}

async fn put_event(clouds: &LocalClouds, key: &str, seed: u64) -> Value {
    let body = sample_bytes(1024 * 1024 + 77, seed);
    let etag = clouds.put_s3_object(key, body.clone()).await.unwrap();
    object_created_event(&[CreatedObject {
        event: "Put",
        bucket: &clouds.bucket,
        key,
        size: body.len() as u64,
        etag: &etag,
        sequencer: "0062F1A4B3C2D1E0F9",
    }])
}

fn text_of<T: ToString, E: std::fmt::Display + std::fmt::Debug>(result: &Result<T, E>) -> String {
    match result {
        Ok(value) => value.to_string(),
        Err(error) => format!("{error} / {error:?}"),
    }
}

fn alert_bodies(robot: &FakeWecom) -> String {
    let mut text: Vec<String> = robot
        .messages()
        .iter()
        .map(|message| {
            format!(
                "{} {:?} {:?}",
                message.content, message.mentioned_list, message.mentioned_mobile_list
            )
        })
        .collect();
    text.extend(robot.rejections().iter().map(|r| format!("{r:?}")));
    text.join("\n")
}

#[tokio::test]
async fn sync_success_and_failures_leak_no_secret() {
    let logs = CapturedLogs::default();
    let _guard = logs.install();
    let clouds = secret_clouds("secret-sync").await;

    // A copy that succeeds with the right secret and token.
    let good = SyncFunction::from_env(
        &lookup(sync_env(&clouds, OSS_SECRET)),
        &aws::sdk_config(&clouds.moto_url),
    )
    .await
    .unwrap();
    let key = "mysql/export-1/shop/shop.secret/1/part-00000-ok.gz.parquet";
    let copied = good
        .handle(invocation(put_event(&clouds, key, 70).await, 60))
        .await;
    // A conflict, which sends an alert through the robot with the secret key.
    clouds
        .oss
        .put_object_direct(
            OSS_BUCKET,
            "iotdb-backup/mysql/export-1/shop/shop.secret/1/part-00000-conflict.gz.parquet",
            b"other",
            &[],
        )
        .unwrap();
    let conflict_key = "mysql/export-1/shop/shop.secret/1/part-00000-conflict.gz.parquet";
    let conflict = good
        .handle(invocation(put_event(&clouds, conflict_key, 71).await, 60))
        .await;
    // A wrong secret: OSS rejects every signature, and the robot gets an alert.
    let wrong_secret = format!("{OSS_SECRET}-wrong");
    let bad = SyncFunction::from_env(
        &lookup(sync_env(&clouds, &wrong_secret)),
        &aws::sdk_config(&clouds.moto_url),
    )
    .await
    .unwrap();
    let rejected_key = "mysql/export-1/shop/shop.secret/1/part-00000-denied.gz.parquet";
    let rejected = bad
        .handle(invocation(put_event(&clouds, rejected_key, 72).await, 60))
        .await;
    // A webhook key the robot does not know: delivery fails and is logged.
    let mut env = sync_env(&clouds, OSS_SECRET);
    set(
        &mut env,
        "WECOM_WEBHOOK_KEY",
        format!("{WECOM_SECRET_KEY}-unknown"),
    );
    let unknown_robot = SyncFunction::from_env(&lookup(env), &aws::sdk_config(&clouds.moto_url))
        .await
        .unwrap();
    let undelivered = unknown_robot
        .handle(invocation(put_event(&clouds, conflict_key, 71).await, 60))
        .await;

    assert_eq!(copied.as_ref().unwrap()["records"][0]["outcome"], "copied");
    assert_eq!(
        conflict.as_ref().unwrap()["records"][0]["outcome"],
        "failed"
    );
    assert!(
        !clouds.wecom.messages().is_empty(),
        "the conflict was alerted"
    );
    assert_no_secrets(&[
        ("logs", logs.text()),
        ("copied result", text_of(&copied)),
        ("conflict result", text_of(&conflict)),
        ("rejected result", text_of(&rejected)),
        ("undelivered result", text_of(&undelivered)),
        ("alert bodies", alert_bodies(&clouds.wecom)),
    ]);
    let reply = text_of(&rejected);
    assert!(!reply.contains(&wrong_secret), "{reply}");
}

#[tokio::test]
async fn pull_with_sts_token_leaks_no_secret() {
    let logs = CapturedLogs::default();
    let _guard = logs.install();
    let clouds = secret_clouds("secret-pull").await;
    let seeded = LocalClouds::start("secret-pull-source").await.unwrap();
    let backup = seeded
        .seed_aliyun_backup(6 * 1024 * 1024, 73)
        .await
        .unwrap();
    let mut config = backup.rds.config().clone();
    config.access_key_secret = RDS_SECRET.to_string();
    config.security_token = Some(STS_TOKEN.to_string());
    let backup = SeededBackup {
        rds: FakeRds::start(config).await.unwrap(),
        ..backup
    };
    let mut env = seeded.pull_env(&backup);
    set(&mut env, "PULL_BUCKET", clouds.bucket.clone());
    set(&mut env, "ALIBABA_CLOUD_ACCESS_KEY_SECRET", RDS_SECRET);
    set(&mut env, "ALIBABA_CLOUD_SECURITY_TOKEN", STS_TOKEN);
    set(&mut env, "WECOM_WEBHOOK_KEY", WECOM_SECRET_KEY);
    set(&mut env, "WECOM_BASE_URL", clouds.wecom.base_url());
    set(&mut env, "WECOM_ALLOWED_HOSTS", "http://127.0.0.1");
    let continuation: Arc<dyn Continuation> = Arc::new(RecordedContinuations::default());
    let function = PullFunction::from_env(
        &lookup(env.clone()),
        &aws::sdk_config(&clouds.moto_url),
        Some(continuation.clone()),
    )
    .await
    .unwrap();

    let pulled = function
        .handle(invocation(json!({"trigger": "schedule"}), 600))
        .await;
    // A wrong RDS secret: every DescribeBackups call is rejected and alerted.
    set(
        &mut env,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        format!("{RDS_SECRET}-wrong"),
    );
    let denied = PullFunction::from_env(
        &lookup(env),
        &aws::sdk_config(&clouds.moto_url),
        Some(continuation),
    )
    .await
    .unwrap()
    .handle(invocation(json!({"trigger": "schedule"}), 600))
    .await;

    assert_eq!(
        pulled.as_ref().unwrap()["backups"][0]["outcome"],
        "pulled",
        "{pulled:?}"
    );
    assert!(
        !clouds.wecom.messages().is_empty(),
        "the denied listing was alerted"
    );
    assert_no_secrets(&[
        ("logs", logs.text()),
        ("pulled result", text_of(&pulled)),
        ("denied result", text_of(&denied)),
        ("alert bodies", alert_bodies(&clouds.wecom)),
    ]);
}
