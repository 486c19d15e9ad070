//! The local servers of one benchmark run: `s3s-fs` as a child process and the fake OSS inside
//! the harness, both on 127.0.0.1, with their files in one temporary directory on disk.

use std::net::{Ipv4Addr, SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use backup_bridge::storage::{ObjectSink, PutOptions, StorageError};
use bench::clients::oss_store;
use bench::protocol::{OssTarget, S3Endpoint};
use futures::StreamExt as _;
use testkit::fake_oss::{FakeOss, FakeOssConfig};

/// The S3 bucket that contains the source objects.
pub const S3_SOURCE_BUCKET: &str = "bench-source";
/// The S3 bucket that every copy into S3 writes to.
pub const S3_TARGET_BUCKET: &str = "bench-target";
/// The OSS bucket that serves the download URL; bound to the custom domain `127.0.0.1`, so a
/// URL on 127.0.0.1 needs no DNS override and works for rclone and curl too.
pub const OSS_SOURCE_BUCKET: &str = "bench-download";
/// The OSS bucket that the S3 → OSS copies write to.
pub const OSS_TARGET_BUCKET: &str = "bench-sync";

const S3_REGION: &str = "us-east-1";
const S3_ACCESS_KEY: &str = "benchaccesskey";
const S3_SECRET_KEY: &str = "benchsecretkey";
const STARTUP_TIMEOUT: Duration = Duration::from_secs(20);

/// A running `s3s-fs` whose buckets are directories under `root`.
pub struct S3Server {
    child: Child,
    port: u16,
    root: PathBuf,
    log: PathBuf,
}

impl S3Server {
    /// Starts `s3s-fs` on a free port of 127.0.0.1 with `root` as its data directory, creates
    /// the source and target buckets, and waits until the port accepts connections.
    pub fn start(binary: &Path, root: &Path) -> anyhow::Result<Self> {
        for bucket in [S3_SOURCE_BUCKET, S3_TARGET_BUCKET] {
            std::fs::create_dir_all(root.join(bucket))
                .with_context(|| format!("failed to create the bucket directory {bucket}"))?;
        }
        let port = testkit::free_port().context("failed to find a free port for s3s-fs")?;
        let log_path = root.with_extension("log");
        let log =
            std::fs::File::create(&log_path).context("failed to create the s3s-fs log file")?;
        let child = Command::new(binary)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .args(["--access-key", S3_ACCESS_KEY, "--secret-key", S3_SECRET_KEY])
            .arg(root)
            .env("RUST_LOG", crate::completion::LOG_FILTER)
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .with_context(|| {
                format!(
                    "failed to start {}; run `make bench` to install it",
                    binary.display()
                )
            })?;
        let mut server = Self {
            child,
            port,
            root: root.to_path_buf(),
            log: log_path,
        };
        server.wait_until_ready()?;
        Ok(server)
    }

    fn wait_until_ready(&mut self) -> anyhow::Result<()> {
        let address = SocketAddr::from((Ipv4Addr::LOCALHOST, self.port));
        let started = Instant::now();
        while TcpStream::connect_timeout(&address, Duration::from_millis(200)).is_err() {
            if let Some(status) = self.child.try_wait()? {
                bail!(
                    "s3s-fs exited with {status} before accepting connections; see its log next to {}",
                    self.root.display()
                );
            }
            if started.elapsed() > STARTUP_TIMEOUT {
                bail!("s3s-fs did not accept connections on {address} within {STARTUP_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        Ok(())
    }

    pub fn endpoint(&self) -> S3Endpoint {
        S3Endpoint {
            url: format!("http://127.0.0.1:{}", self.port),
            region: S3_REGION.to_string(),
            access_key_id: S3_ACCESS_KEY.to_string(),
            secret_access_key: S3_SECRET_KEY.to_string(),
        }
    }

    /// Returns the size of the server's log in bytes, the point to read a run's events from.
    pub fn log_len(&self) -> anyhow::Result<u64> {
        Ok(std::fs::metadata(&self.log)
            .with_context(|| format!("failed to read {}", self.log.display()))?
            .len())
    }

    /// Returns the seconds the server spent completing the one multipart upload that its log
    /// records after byte `offset`, or `None` when it records none.
    pub fn completion_since(&self, offset: u64) -> anyhow::Result<Option<f64>> {
        use std::io::{Read as _, Seek as _};
        let mut file = std::fs::File::open(&self.log)
            .with_context(|| format!("failed to open {}", self.log.display()))?;
        file.seek(std::io::SeekFrom::Start(offset))?;
        let mut text = String::new();
        file.read_to_string(&mut text)
            .with_context(|| format!("failed to read {}", self.log.display()))?;
        crate::completion::completion_seconds(&text)
            .with_context(|| format!("in {}", self.log.display()))
    }

    /// Returns the file that contains `key` in `bucket`; `s3s-fs` stores each object as a file.
    pub fn object_path(&self, bucket: &str, key: &str) -> PathBuf {
        self.root.join(bucket).join(key)
    }
}

impl Drop for S3Server {
    fn drop(&mut self) {
        // Only this child, by its own handle.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The fake OSS with a download bucket and a sync target bucket.
pub struct OssServer {
    pub fake: FakeOss,
}

impl OssServer {
    pub async fn start() -> anyhow::Result<Self> {
        let mut config = FakeOssConfig::with_buckets(&[OSS_SOURCE_BUCKET, OSS_TARGET_BUCKET]);
        config.custom_domains = vec![("127.0.0.1".to_string(), OSS_SOURCE_BUCKET.to_string())];
        Ok(Self {
            fake: FakeOss::start(config).await?,
        })
    }

    /// Returns where the S3 → OSS copies write, with the fake's credentials.
    pub fn target(&self, bucket: &str) -> OssTarget {
        let config = self.fake.config();
        OssTarget {
            port: self.fake.port(),
            region: config.region.clone(),
            bucket: bucket.to_string(),
            access_key_id: config.access_key_id.clone(),
            access_key_secret: config.access_key_secret.clone(),
        }
    }

    /// Returns a presigned GET URL for `key` in the download bucket, on 127.0.0.1 through the
    /// bucket's custom domain. The V1 signature covers `/bucket/key` and not the host, so the
    /// URL signed for the virtual-hosted name stays valid.
    pub fn download_url(&self, key: &str) -> String {
        let expires = chrono::Utc::now() + chrono::Duration::hours(12);
        let signed = self.fake.presign_get(OSS_SOURCE_BUCKET, key, expires);
        signed.replacen(
            &self.fake.bucket_authority(OSS_SOURCE_BUCKET),
            &format!("127.0.0.1:{}", self.fake.port()),
            1,
        )
    }

    /// Deletes an object from a bucket of the fake; a missing object counts as deleted.
    pub async fn delete(&self, bucket: &str, key: &str) -> anyhow::Result<()> {
        let store = oss_store(&self.target(bucket))?;
        store.delete(key).await?;
        Ok(())
    }

    /// Copies a local file into the download bucket through the engine, streaming it.
    pub async fn upload_file(&self, path: &Path, key: &str) -> anyhow::Result<()> {
        let store = oss_store(&self.target(OSS_SOURCE_BUCKET))?;
        let size = std::fs::metadata(path)?.len();
        let file = tokio::fs::File::open(path).await?;
        let location = store.location(key);
        let body = tokio_util::io::ReaderStream::with_capacity(file, 1 << 20).map(move |chunk| {
            chunk.map_err(|error| {
                StorageError::new(
                    backup_bridge::storage::ErrorKind::Permanent,
                    "ReadFile",
                    location.clone(),
                    format!("failed to read the source file: {error}"),
                )
            })
        });
        let settings = backup_bridge::transfer::TransferSettings::default();
        backup_bridge::transfer::copy(
            &store,
            key,
            size,
            Box::pin(body),
            &PutOptions::default(),
            &settings,
        )
        .await?;
        Ok(())
    }
}
