//! The three jobs of the benchmark, each run through our engine (`bench-copy`) and through its
//! peer (rclone or curl) one right after the other, so load changes hit both sides alike.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Instant;

use anyhow::{Context, bail, ensure};
use bench::protocol::{CopyJob, CopyRequest, CopyResult};
use bench::usage::{Usage, wait_with_usage};

use crate::servers::{OSS_TARGET_BUCKET, OssServer, S3_SOURCE_BUCKET, S3_TARGET_BUCKET, S3Server};

/// One job and its peer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Job {
    /// Download URL → S3 against `rclone copyurl`.
    UrlToS3,
    /// S3 → OSS against a raw GET of the same S3 object with curl.
    S3ToOss,
    /// S3 → S3 against `rclone copyto` between two buckets.
    S3ToS3,
}

impl Job {
    /// Returns whether the job writes into `s3s-fs`, whose completion step the harness times.
    pub fn writes_s3(self) -> bool {
        matches!(self, Job::UrlToS3 | Job::S3ToS3)
    }

    pub const ALL: [Job; 3] = [Job::UrlToS3, Job::S3ToOss, Job::S3ToS3];

    pub fn title(self) -> &'static str {
        match self {
            Job::UrlToS3 => "1. URL → S3",
            Job::S3ToOss => "2. S3 → OSS",
            Job::S3ToS3 => "3. S3 → S3",
        }
    }

    pub fn peer(self) -> &'static str {
        match self {
            Job::UrlToS3 => "rclone copyurl",
            Job::S3ToOss => "curl GET to /dev/null",
            Job::S3ToS3 => "rclone copyto",
        }
    }
}

/// One timed run of one side.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Wall-clock seconds from spawning the process to reaping it.
    pub seconds: f64,
    pub usage: Usage,
    /// For a multipart copy into S3, the seconds `s3s-fs` took to complete the upload, which
    /// the client waits for (see `completion.rs`).
    pub completion_seconds: Option<f64>,
}

/// A source object of the benchmark, stored in S3 and in the OSS download bucket.
#[derive(Debug, Clone)]
pub struct SourceObject {
    pub key: String,
    pub size: u64,
    pub crc64: u64,
    pub url: String,
}

/// Everything the runs need: the servers, the binaries and the engine settings.
pub struct Runner<'a> {
    pub s3: &'a S3Server,
    pub oss: &'a OssServer,
    pub copy_binary: PathBuf,
    pub rclone: PathBuf,
    /// An empty rclone configuration file; the remotes come from `RCLONE_CONFIG_*` variables.
    pub rclone_config: PathBuf,
    pub part_size: u64,
    pub concurrency: usize,
    /// A command put in front of `bench-copy`, such as `valgrind --tool=callgrind`, for
    /// profiling runs; its figures then measure the profiler too.
    pub copy_wrapper: Vec<String>,
}

impl Runner<'_> {
    /// Runs `job` once through `bench-copy` and checks that it copied every byte.
    pub async fn run_ours(&self, job: Job, object: &SourceObject) -> anyhow::Result<Sample> {
        let target_key = format!("ours-{}", object.key);
        let copy_job = match job {
            Job::UrlToS3 => CopyJob::UrlToS3 {
                url: object.url.clone(),
                bucket: S3_TARGET_BUCKET.to_string(),
                key: target_key.clone(),
            },
            Job::S3ToOss => CopyJob::S3ToOss {
                bucket: S3_SOURCE_BUCKET.to_string(),
                key: object.key.clone(),
                oss: self.oss.target(OSS_TARGET_BUCKET),
                oss_key: target_key.clone(),
            },
            Job::S3ToS3 => CopyJob::S3ToS3 {
                bucket: S3_SOURCE_BUCKET.to_string(),
                key: object.key.clone(),
                target_bucket: S3_TARGET_BUCKET.to_string(),
                target_key: target_key.clone(),
            },
        };
        let request = CopyRequest {
            s3: self.s3.endpoint(),
            job: copy_job,
            part_size: Some(self.part_size),
            concurrency: Some(self.concurrency),
        };
        let mut command = match self.copy_wrapper.split_first() {
            Some((program, arguments)) => {
                let mut command = Command::new(program);
                command.args(arguments).arg(&self.copy_binary);
                command
            }
            None => Command::new(&self.copy_binary),
        };
        command
            .arg(serde_json::to_string(&request)?)
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .stdin(Stdio::null())
            .stdout(Stdio::piped());
        let log_start = self.s3.log_len()?;
        let (sample, stdout) = run_measured(command, "bench-copy").await?;
        let completion_seconds = self.completion(job, log_start)?;
        let result: CopyResult = serde_json::from_str(stdout.trim())
            .with_context(|| format!("bench-copy printed no CopyResult: {stdout}"))?;
        ensure!(
            result.bytes == object.size && result.crc64 == object.crc64,
            "bench-copy copied {} bytes with CRC-64 {}, expected {} bytes with {}",
            result.bytes,
            result.crc64,
            object.size,
            object.crc64
        );
        self.remove_target(job, &target_key).await?;
        // `bench-copy` reports its own getrusage, which for a process without children
        // matches what wait4 returns.
        Ok(Sample {
            seconds: sample.seconds,
            usage: Usage {
                user_cpu_seconds: result.user_cpu_seconds,
                system_cpu_seconds: result.system_cpu_seconds,
                max_rss_kib: result.max_rss_kib,
            },
            completion_seconds,
        })
    }

    /// Runs the peer of `job` once and checks the size of what it wrote or read.
    pub async fn run_peer(&self, job: Job, object: &SourceObject) -> anyhow::Result<Sample> {
        let target_key = format!("peer-{}", object.key);
        let chunk = format!("{}k", self.part_size / 1024);
        let concurrency = self.concurrency.to_string();
        let mut command;
        match job {
            Job::UrlToS3 | Job::S3ToS3 => {
                command = Command::new(&self.rclone);
                if job == Job::UrlToS3 {
                    command.args(["copyurl", &object.url]);
                } else {
                    command.args([
                        "copyto",
                        &format!("benchsource:{S3_SOURCE_BUCKET}/{}", object.key),
                    ]);
                }
                command
                    .arg(format!("benchtarget:{S3_TARGET_BUCKET}/{target_key}"))
                    .args(["--config", path_text(&self.rclone_config)?])
                    .args([
                        "--s3-chunk-size",
                        &chunk,
                        "--s3-upload-concurrency",
                        &concurrency,
                    ])
                    // Without this rclone would copy S3 → S3 on the server and move no bytes.
                    .args(["--disable", "Copy", "--s3-no-check-bucket"])
                    .args(["--retries", "1", "--quiet"]);
                self.add_rclone_remotes(&mut command);
            }
            Job::S3ToOss => {
                let endpoint = self.s3.endpoint();
                command = Command::new("curl");
                command
                    .args([
                        "--silent",
                        "--show-error",
                        "--fail",
                        "--output",
                        "/dev/null",
                    ])
                    .args(["--write-out", "%{size_download}"])
                    .args(["--aws-sigv4", &format!("aws:amz:{}:s3", endpoint.region)])
                    // s3s rejects a request without this header, which curl 7.88 does not add.
                    .args(["--header", "x-amz-content-sha256: UNSIGNED-PAYLOAD"])
                    .args([
                        "--user",
                        &format!("{}:{}", endpoint.access_key_id, endpoint.secret_access_key),
                    ])
                    .arg(format!(
                        "{}/{S3_SOURCE_BUCKET}/{}",
                        endpoint.url, object.key
                    ));
            }
        }
        command.stdin(Stdio::null()).stdout(Stdio::piped());
        let log_start = self.s3.log_len()?;
        let (mut sample, stdout) = run_measured(command, job.peer()).await?;
        sample.completion_seconds = self.completion(job, log_start)?;

        let copied = match job {
            Job::S3ToOss => stdout.trim().parse::<u64>().unwrap_or(0),
            Job::UrlToS3 | Job::S3ToS3 => {
                let path = self.s3.object_path(S3_TARGET_BUCKET, &target_key);
                let size = std::fs::metadata(&path).map(|meta| meta.len()).unwrap_or(0);
                self.remove_target(job, &target_key).await?;
                size
            }
        };
        ensure!(
            copied == object.size,
            "{} moved {copied} bytes of {}, expected {}",
            job.peer(),
            object.key,
            object.size
        );
        Ok(sample)
    }

    /// Returns the server's completion step of the run whose log starts at `log_start`, for a
    /// job that writes into S3 with a multipart upload.
    fn completion(&self, job: Job, log_start: u64) -> anyhow::Result<Option<f64>> {
        if !job.writes_s3() {
            return Ok(None);
        }
        self.s3.completion_since(log_start)
    }

    fn add_rclone_remotes(&self, command: &mut Command) {
        let endpoint = self.s3.endpoint();
        // Two remotes with one server behind them, so that rclone treats the copy as one
        // between different stores.
        for remote in ["BENCHSOURCE", "BENCHTARGET"] {
            let var = |name: &str| format!("RCLONE_CONFIG_{remote}_{name}");
            command
                .env(var("TYPE"), "s3")
                .env(var("PROVIDER"), "Other")
                .env(var("ENDPOINT"), &endpoint.url)
                .env(var("REGION"), &endpoint.region)
                .env(var("ACCESS_KEY_ID"), &endpoint.access_key_id)
                .env(var("SECRET_ACCESS_KEY"), &endpoint.secret_access_key)
                .env(var("FORCE_PATH_STYLE"), "true");
        }
    }

    /// Deletes a copy, so the disk keeps at most one target object at a time.
    async fn remove_target(&self, job: Job, key: &str) -> anyhow::Result<()> {
        match job {
            Job::S3ToOss => self.oss.delete(OSS_TARGET_BUCKET, key).await,
            Job::UrlToS3 | Job::S3ToS3 => {
                let path = self.s3.object_path(S3_TARGET_BUCKET, key);
                match std::fs::remove_file(&path) {
                    Err(error) if error.kind() != std::io::ErrorKind::NotFound => {
                        Err(error).with_context(|| format!("failed to remove {}", path.display()))
                    }
                    _ => Ok(()),
                }
            }
        }
    }
}

/// Spawns `command`, reaps it with `wait4` on a blocking thread, and returns its sample and
/// stdout. Fails when the process exits with a non-zero status.
async fn run_measured(mut command: Command, name: &str) -> anyhow::Result<(Sample, String)> {
    let name = name.to_string();
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let mut child = command
            .spawn()
            .with_context(|| format!("failed to start {name}"))?;
        let mut stdout = String::new();
        // Reading the pipe to its end before reaping keeps a child that prints much from blocking.
        if let Some(mut pipe) = child.stdout.take() {
            pipe.read_to_string(&mut stdout)?;
        }
        let finished = wait_with_usage(&child, started)?;
        if !finished.success {
            bail!(
                "{name} failed with wait status {}; its output: {stdout}",
                finished.raw_status
            );
        }
        Ok((
            Sample {
                seconds: finished.elapsed.as_secs_f64(),
                usage: finished.usage,
                completion_seconds: None,
            },
            stdout,
        ))
    })
    .await?
}

fn path_text(path: &Path) -> anyhow::Result<&str> {
    path.to_str()
        .with_context(|| format!("path {} is not UTF-8", path.display()))
}
