//! The JSON contract between the `bench` harness and the `bench-copy` process.
//!
//! The harness passes one [`CopyRequest`] as the only argument of `bench-copy`, and `bench-copy`
//! prints one [`CopyResult`] line on stdout. Keeping the copy in its own process makes its peak
//! RSS and CPU time ours alone, without the servers that the harness runs in-process.

use serde::{Deserialize, Serialize};

/// Static credentials and the endpoint of the local S3-compatible server.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct S3Endpoint {
    /// `http://127.0.0.1:<port>`.
    pub url: String,
    pub region: String,
    pub access_key_id: String,
    pub secret_access_key: String,
}

/// The fake OSS port, bucket and credentials.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct OssTarget {
    pub port: u16,
    pub region: String,
    pub bucket: String,
    pub access_key_id: String,
    pub access_key_secret: String,
}

/// One copy through the engine.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(tag = "job", rename_all = "kebab-case")]
pub enum CopyJob {
    /// An HTTP download URL with `Range` support into S3: the Aliyun pull path.
    UrlToS3 {
        url: String,
        bucket: String,
        key: String,
    },
    /// An S3 object into OSS: the sync path.
    S3ToOss {
        bucket: String,
        key: String,
        oss: OssTarget,
        oss_key: String,
    },
    /// An S3 object into another S3 bucket, to compare the engine with rclone's.
    S3ToS3 {
        bucket: String,
        key: String,
        target_bucket: String,
        target_key: String,
    },
}

/// Everything `bench-copy` needs for one run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CopyRequest {
    pub s3: S3Endpoint,
    pub job: CopyJob,
    /// Preferred part size in bytes; `None` keeps the engine's default.
    pub part_size: Option<u64>,
    /// Parts in flight; `None` keeps the engine's default.
    pub concurrency: Option<usize>,
}

/// The figures `bench-copy` measured about itself with `getrusage(RUSAGE_SELF)`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CopyResult {
    pub bytes: u64,
    /// Wall-clock seconds of the copy alone, without process start and client setup.
    pub seconds: f64,
    pub user_cpu_seconds: f64,
    pub system_cpu_seconds: f64,
    /// Peak resident set size in KiB.
    pub max_rss_kib: u64,
    pub parts: u32,
    /// CRC-64/XZ of the copied bytes, for checking that every side moved the same object.
    pub crc64: u64,
}
