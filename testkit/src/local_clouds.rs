//! The local clouds as one unit: moto for S3 and the fake OSS, with the environment that points a
//! function at them. Tests and `make demo` share it so that both run the same set-up.

use crate::fake_oss::{FakeOss, FakeOssConfig};
use crate::fake_wecom::FakeWecom;
use crate::{aws, moto};

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
