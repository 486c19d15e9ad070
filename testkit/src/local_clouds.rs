//! The local clouds as one unit: moto for S3 and the fake OSS, with the environment that points a
//! function at them. Tests and `make demo` share it so that both run the same set-up.

use std::sync::Arc;

use chrono::{TimeDelta, Utc};

use crate::fake_oss::{FakeOss, FakeOssConfig};
use crate::fake_rds::{DownloadUrls, FakeRds, FakeRdsConfig, Fixture};
use crate::{aws, moto};

/// The RDS instance of a seeded Aliyun backup.
pub const ALIYUN_INSTANCE: &str = "rm-bp1demo0000001";

/// The OSS bucket the fake serves, reached in custom-domain mode at `localhost`, so that a
/// function in another process needs no DNS override.
pub const OSS_BUCKET: &str = "iotdb-backup-demo";
pub const OSS_DOMAIN: &str = "localhost";

/// moto (shared by the process) and a fake OSS of one test or demo run.
pub struct LocalClouds {
    pub moto_url: String,
    pub oss: FakeOss,
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
        let moto_url = moto::endpoint();
        let bucket = aws::unique_bucket(bucket_prefix).await;
        Ok(Self {
            moto_url,
            oss,
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

        let presigned = self
            .oss
            .presign_get(OSS_BUCKET, &key, Utc::now() + TimeDelta::hours(12));
        let url = presigned.replacen(
            &self.oss.bucket_authority(OSS_BUCKET),
            &format!("{OSS_DOMAIN}:{}", self.oss.port()),
            1,
        );
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
        config.download_urls = Some(Arc::new(move |_| DownloadUrls {
            public: url.clone(),
            intranet: url.clone(),
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
