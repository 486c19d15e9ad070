//! The local clouds as one unit: moto for S3 and the fake OSS, with the environment that points a
//! function at them (the export functions also use the scripted RDS fake). Tests and `make demo` share it so that both run the same set-up.

use backup_bridge::alert::summary::RECORD_FOLDER;
use backup_bridge::aws::export_id;
use backup_bridge::config::DEFAULT_STATE_PREFIX;

use std::sync::Arc;

use chrono::{TimeDelta, Utc};

use crate::fake_oss::{FakeOss, FakeOssConfig};
use crate::fake_rds::{DownloadUrls, FakeRds, FakeRdsConfig, Fixture};
use crate::fake_rds_export::{ExportPlan, FakeRdsExport, FakeSnapshot};
use crate::fake_wecom::FakeWecom;
use crate::{aws, moto};

/// The RDS instance of a seeded Aliyun backup.
pub const ALIYUN_INSTANCE: &str = "rm-bp1demo0000001";

/// The OSS bucket the fake serves, reached in custom-domain mode at `localhost`, so that a
/// function in another process needs no DNS override.
pub const OSS_BUCKET: &str = "iotdb-backup-demo";
pub const OSS_DOMAIN: &str = "localhost";
/// The webhook key the fake WeCom robot accepts.
pub const WECOM_KEY: &str = "local-clouds-wecom-key";

/// moto (shared by the process) and a fake OSS of one test or demo run.
pub struct LocalClouds {
    pub moto_url: String,
    pub oss: FakeOss,
    pub wecom: FakeWecom,
    /// The S3 bucket created for this run.
    pub bucket: String,
}

impl LocalClouds {
    /// Starts the fake OSS, makes sure moto runs, and creates a fresh S3 bucket named after
    /// `bucket_prefix`.
    pub async fn start(bucket_prefix: &str) -> anyhow::Result<Self> {
        let mut config = FakeOssConfig::with_buckets(&[OSS_BUCKET]);
        config
            .custom_domains
            .push((OSS_DOMAIN.to_string(), OSS_BUCKET.to_string()));
        let oss = FakeOss::start(config).await?;
        let wecom = FakeWecom::start(&[WECOM_KEY]).await?;
        let moto_url = moto::endpoint();
        let bucket = aws::unique_bucket(bucket_prefix).await;
        Ok(Self {
            moto_url,
            oss,
            wecom,
            bucket,
        })
    }

    /// Returns the environment of `s3-oss-sync` against these clouds.
    pub fn sync_env(&self) -> Vec<(String, String)> {
        let config = self.oss.config();
        [
            ("SOURCE_BUCKET", self.bucket.clone()),
            ("SYNC_SOURCE_PREFIX", "mysql/".into()),
            (
                "OSS_ENDPOINT",
                format!("http://{OSS_DOMAIN}:{}", self.oss.port()),
            ),
            ("OSS_CUSTOM_DOMAIN", "true".into()),
            ("OSS_ALLOW_HTTP", "true".into()),
            ("OSS_REGION", config.region.clone()),
            ("OSS_BUCKET", OSS_BUCKET.into()),
            ("OSS_PREFIX", "iotdb-backup/mysql/".into()),
            ("SYNC_PART_SIZE_MIB", "1".into()),
            ("SYNC_CONCURRENCY", "4".into()),
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", config.access_key_id.clone()),
            (
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
                config.access_key_secret.clone(),
            ),
            ("WECOM_WEBHOOK_KEY", WECOM_KEY.into()),
            ("WECOM_BASE_URL", self.wecom.base_url()),
            ("WECOM_ALLOWED_HOSTS", "http://127.0.0.1".into()),
            ("AWS_ENDPOINT_URL_S3", self.moto_url.clone()),
            ("S3_FORCE_PATH_STYLE", "true".into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", aws::TEST_REGION.into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect()
    }

    /// Uploads `body` to the run's S3 bucket and returns the ETag moto reports, without quotes.
    pub async fn put_s3_object(&self, key: &str, body: Vec<u8>) -> anyhow::Result<String> {
        let output = aws::s3_client()
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .body(body.into())
            .send()
            .await?;
        Ok(output
            .e_tag()
            .unwrap_or_default()
            .trim_matches('"')
            .to_string())
    }

    /// Lists the daily summary's run records of `function` in the run's S3 bucket, under the
    /// default state prefix, sorted, as `<succeeded>-<failed>-<bytes>-<alerts>-<request id>`.
    pub async fn summary_records(&self, function: &str) -> anyhow::Result<Vec<String>> {
        let listed = aws::s3_client()
            .list_objects_v2()
            .bucket(&self.bucket)
            .prefix(format!("{DEFAULT_STATE_PREFIX}{RECORD_FOLDER}"))
            .send()
            .await?;
        let marker = format!("/{function}/");
        let mut records: Vec<String> = listed
            .contents()
            .iter()
            .filter_map(|object| object.key())
            .filter_map(|key| {
                key.split_once(&marker)
                    .map(|(_, record)| record.to_string())
            })
            .collect();
        records.sort();
        Ok(records)
    }
}

/// A generated Aliyun physical backup: listed by a fake RDS API, its bytes in the fake OSS.
pub struct SeededBackup {
    pub rds: FakeRds,
    pub instance_id: String,
    pub backup_id: String,
    /// The `_qp.xb` file name of the download URL.
    pub file_name: String,
    pub size: u64,
    pub crc64: u64,
    /// The S3 key the pull writes with the default prefix `aliyun-rds/`.
    pub expected_key: String,
}

impl LocalClouds {
    /// Seeds a generated backup of `size` bytes. The bytes go to the fake OSS, and a new fake
    /// RDS API lists one successful physical full backup that started two hours ago. Its
    /// download URL is a presigned link on the fake OSS at `localhost`, so a function in
    /// another process reaches it without a DNS override.
    pub async fn seed_aliyun_backup(&self, size: u64, seed: u64) -> anyhow::Result<SeededBackup> {
        let bytes = sample_bytes(usize::try_from(size)?, seed);
        let crc64 = backup_bridge::checksum::crc64(&bytes);
        let start = Utc::now() - TimeDelta::hours(2);
        let backup_id = format!("9{}", start.timestamp());
        let file_name = format!("hins1000001_data_{}_qp.xb", start.format("%Y%m%d%H%M%S"));
        let key = format!("custins1000001/{file_name}");
        self.oss.put_object_direct(OSS_BUCKET, &key, &bytes, &[])?;
        drop(bytes);

        // Like RDS, every DescribeBackups answer carries a fresh link, here one second later
        // than the one before, so a link that was let expire is never handed out again.
        let sign = self.oss.link_signer();
        let presigned_authority = self.oss.bucket_authority(OSS_BUCKET);
        let local_authority = format!("{OSS_DOMAIN}:{}", self.oss.port());
        let issued = Arc::new(std::sync::atomic::AtomicI64::new(0));
        let link_key = key.clone();
        let fresh_link = move || {
            let count = issued.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let expires = Utc::now() + TimeDelta::hours(12) + TimeDelta::seconds(count);
            sign(OSS_BUCKET, &link_key, expires).replacen(&presigned_authority, &local_authority, 1)
        };
        let time = |at: chrono::DateTime<Utc>| at.format("%Y-%m-%dT%H:%M:%SZ").to_string();
        let fixture = serde_json::json!({
            "Items": { "Backup": [{
                "DBInstanceId": ALIYUN_INSTANCE,
                "BackupId": backup_id,
                "BackupStatus": "Success",
                "BackupMode": "Automated",
                "BackupMethod": "Physical",
                "BackupType": "FullBackup",
                "BackupStartTime": time(start),
                "BackupEndTime": time(start + TimeDelta::minutes(30)),
                "BackupSize": size,
                "BackupDownloadURL": format!("https://rdsbak-demo.oss-cn-hangzhou.aliyuncs.com/{key}"),
                "BackupIntranetDownloadURL": format!("https://rdsbak-demo.oss-cn-hangzhou-internal.aliyuncs.com/{key}"),
                "IsAvail": 1,
                "Engine": "MySQL",
                "EngineVersion": "8.0",
            }]},
            "PageNumber": 1,
            "PageRecordCount": 1,
            "TotalRecordCount": 1,
            "RequestId": "SEEDED",
        });
        // The fake keeps its fixture for the whole process; one leaked string per seeded backup.
        let fixture: &'static str = Box::leak(fixture.to_string().into_boxed_str());
        let mut config = FakeRdsConfig::new(Fixture::Inline(fixture));
        config.download_urls = Some(Arc::new(move |_| {
            let url = fresh_link();
            DownloadUrls {
                public: url.clone(),
                intranet: url,
            }
        }));
        let rds = FakeRds::start(config).await?;
        let expected_key = format!(
            "aliyun-rds/{ALIYUN_INSTANCE}/{}/{backup_id}/{file_name}",
            start.format("%Y/%m/%d")
        );
        Ok(SeededBackup {
            rds,
            instance_id: ALIYUN_INSTANCE.to_string(),
            backup_id,
            file_name,
            size,
            crc64,
            expected_key,
        })
    }

    /// Returns the environment of `aliyun-backup-pull` against these clouds and `backup`:
    /// 5 MiB parts (the S3 minimum), one part in flight, downloads from `localhost` over plain
    /// HTTP, and the Aliyun credentials of the fake RDS API.
    pub fn pull_env(&self, backup: &SeededBackup) -> Vec<(String, String)> {
        let rds = backup.rds.config();
        [
            ("PULL_BUCKET", self.bucket.clone()),
            ("RDS_INSTANCE_IDS", backup.instance_id.clone()),
            ("ALIYUN_RDS_ENDPOINT", backup.rds.endpoint()),
            ("ALIYUN_RDS_ALLOW_HTTP", "true".into()),
            ("DOWNLOAD_ALLOWED_HOSTS", OSS_DOMAIN.into()),
            ("DOWNLOAD_ALLOW_HTTP", "true".into()),
            ("PULL_PART_SIZE_MIB", "5".into()),
            ("PULL_CONCURRENCY", "1".into()),
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", rds.access_key_id.clone()),
            (
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
                rds.access_key_secret.clone(),
            ),
            ("AWS_ENDPOINT_URL_S3", self.moto_url.clone()),
            ("S3_FORCE_PATH_STYLE", "true".into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", aws::TEST_REGION.into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ]
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect()
    }
}

/// Returns `len` bytes that differ from position to position and from seed to seed, so a part
/// copied to the wrong place changes the CRC.
pub fn sample_bytes(len: usize, seed: u64) -> Vec<u8> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 24) as u8
        })
        .collect()
}

/// The DB instance and Aurora cluster that [`LocalClouds::export_start_env`] configures.
pub const EXPORT_INSTANCE: &str = "prod-db";
pub const EXPORT_CLUSTER: &str = "aurora-prod";
/// The `FailureCause` of the failing export that [`prepare_export_demo`] scripts.
pub const DEMO_FAILURE_CAUSE: &str = "The IAM role lost s3:PutObject on the export bucket.";

impl LocalClouds {
    /// Returns the environment of `rds-export-start` against these clouds, with RDS served by
    /// the scripted fake at `rds_endpoint`.
    pub fn export_start_env(&self, rds_endpoint: &str) -> Vec<(String, String)> {
        let mut env = self.export_common_env(rds_endpoint);
        env.extend(pairs([
            (
                "RDS_SOURCES",
                format!("instance:{EXPORT_INSTANCE},cluster:{EXPORT_CLUSTER}"),
            ),
            (
                "EXPORT_IAM_ROLE_ARN",
                "arn:aws:iam::123456789012:role/rds-s3-export".into(),
            ),
            (
                "EXPORT_KMS_KEY_ID",
                "arn:aws:kms:us-east-1:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab"
                    .into(),
            ),
        ]));
        env
    }

    /// Returns the environment of `rds-export-poll` against these clouds and the fake OSS, with
    /// RDS served by the scripted fake at `rds_endpoint`.
    pub fn export_poll_env(&self, rds_endpoint: &str) -> Vec<(String, String)> {
        let config = self.oss.config();
        let mut env = self.export_common_env(rds_endpoint);
        env.extend(pairs([
            (
                "OSS_ENDPOINT",
                format!("http://{OSS_DOMAIN}:{}", self.oss.port()),
            ),
            ("OSS_CUSTOM_DOMAIN", "true".into()),
            ("OSS_ALLOW_HTTP", "true".into()),
            ("OSS_REGION", config.region.clone()),
            ("OSS_BUCKET", OSS_BUCKET.into()),
            ("OSS_PREFIX", "iotdb-backup/mysql/".into()),
            ("SYNC_PART_SIZE_MIB", "1".into()),
            ("ALIBABA_CLOUD_ACCESS_KEY_ID", config.access_key_id.clone()),
            (
                "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
                config.access_key_secret.clone(),
            ),
        ]));
        env
    }

    fn export_common_env(&self, rds_endpoint: &str) -> Vec<(String, String)> {
        pairs([
            ("EXPORT_BUCKET", self.bucket.clone()),
            ("EXPORT_PREFIX", "mysql".into()),
            ("EXPORT_ID_PREFIX", export_id::DEFAULT_PREFIX.into()),
            ("AWS_ENDPOINT_URL_RDS", rds_endpoint.to_string()),
            ("AWS_ENDPOINT_URL_S3", self.moto_url.clone()),
            ("S3_FORCE_PATH_STYLE", "true".into()),
            ("AWS_ACCESS_KEY_ID", "testing".into()),
            ("AWS_SECRET_ACCESS_KEY", "testing".into()),
            ("AWS_REGION", aws::TEST_REGION.into()),
            ("AWS_EC2_METADATA_DISABLED", "true".into()),
        ])
    }
}

/// Adds alert rules that switch the daily summary on to a function's environment.
pub fn with_daily_summary(mut env: Vec<(String, String)>) -> Vec<(String, String)> {
    env.push(("ALERT_RULES".into(), r#"{"daily_summary": true}"#.into()));
    env
}

/// Adds the variables that send alerts to the fake WeCom robot at `base_url` with `key`.
pub fn with_wecom(
    mut env: Vec<(String, String)>,
    base_url: &str,
    key: &str,
) -> Vec<(String, String)> {
    env.extend(pairs([
        ("WECOM_WEBHOOK_KEY", key.to_string()),
        ("WECOM_BASE_URL", base_url.to_string()),
        ("WECOM_ALLOWED_HOSTS", "http://127.0.0.1".into()),
    ]));
    env
}

fn pairs<const N: usize>(pairs: [(&str, String); N]) -> Vec<(String, String)> {
    pairs
        .into_iter()
        .map(|(name, value)| (name.to_string(), value))
        .collect()
}

/// The snapshots, task ids, exported keys and environments that [`prepare_export_demo`] set up.
pub struct ExportDemo {
    pub start_env: Vec<(String, String)>,
    pub poll_env: Vec<(String, String)>,
    /// The instance snapshot whose export completes.
    pub completing: FakeSnapshot,
    pub completing_task_id: String,
    /// The S3 keys placed under the completing export's prefix, as RDS would write them.
    pub exported_keys: Vec<String>,
    /// The cluster snapshot whose export fails with [`DEMO_FAILURE_CAUSE`].
    pub failing: FakeSnapshot,
    pub failing_task_id: String,
}

/// Prepares the export demo: an instance snapshot whose export completes after two polls and
/// a cluster snapshot whose export fails after two polls, both an hour old, and the exported
/// files of the first already in S3. Returns the environment of both functions.
pub async fn prepare_export_demo(
    clouds: &LocalClouds,
    rds: &FakeRdsExport,
) -> anyhow::Result<ExportDemo> {
    let created = chrono::Utc::now() - chrono::Duration::hours(1);
    let completing = FakeSnapshot {
        id: "rds:prod-db-demo".into(),
        source_id: EXPORT_INSTANCE.into(),
        cluster: false,
        created,
        status: "available".into(),
        encrypted: true,
        snapshot_type: "automated".into(),
    };
    let failing = FakeSnapshot {
        id: "rds:aurora-prod-demo".into(),
        source_id: EXPORT_CLUSTER.into(),
        cluster: true,
        ..completing.clone()
    };
    rds.add_snapshot(completing.clone());
    rds.add_snapshot(failing.clone());
    rds.plan_export(&completing.arn(), ExportPlan::Completes { after: 2 });
    let failure = ExportPlan::Fails {
        after: 2,
        cause: DEMO_FAILURE_CAUSE.into(),
    };
    rds.plan_export(&failing.arn(), failure);

    let completing_task_id = export_id::for_snapshot(&completing.id);
    let failing_task_id = export_id::for_snapshot(&failing.id);
    let mut exported_keys = Vec::new();
    let tables = [
        ("shop.orders", 300 * 1024),
        ("shop.users", 2 * 1024 * 1024 + 99),
    ];
    for (index, (table, size)) in tables.into_iter().enumerate() {
        let key = format!("mysql/{completing_task_id}/shop/{table}/1/part-00000-demo.gz.parquet");
        clouds
            .put_s3_object(&key, sample_bytes(size, index as u64 + 10))
            .await?;
        exported_keys.push(key);
    }
    let endpoint = rds.endpoint();
    Ok(ExportDemo {
        start_env: clouds.export_start_env(&endpoint),
        poll_env: clouds.export_poll_env(&endpoint),
        completing,
        completing_task_id,
        exported_keys,
        failing,
        failing_task_id,
    })
}
