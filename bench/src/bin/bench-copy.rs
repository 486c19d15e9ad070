//! Runs one copy through the backup-bridge engine and prints a JSON [`CopyResult`] on stdout.
//!
//! Started by the `bench` harness with a JSON [`CopyRequest`] as its only argument. Every client
//! it builds has static test credentials and an explicit 127.0.0.1 endpoint.

use std::time::Instant;

use anyhow::{Context, bail};
use backup_bridge::storage::http::{HttpSource, HttpSourceConfig};
use backup_bridge::storage::s3::S3Store;
use backup_bridge::storage::{ObjectSink, ObjectSource, PutOptions};
use backup_bridge::transfer::{PartLimits, Transfer, TransferOutcome, TransferSettings};
use bench::clients::{oss_store, s3_client};
use bench::protocol::{CopyJob, CopyRequest, CopyResult};
use bench::usage::own_usage;

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    // Logs go to stderr only when asked for, such as `RUST_LOG=backup_bridge=debug` to see how
    // many part buffers a copy allocated.
    if std::env::var_os("RUST_LOG").is_some() {
        tracing_subscriber::fmt()
            .with_env_filter(tracing_subscriber::EnvFilter::from_default_env())
            .with_writer(std::io::stderr)
            .init();
    }
    let argument = std::env::args()
        .nth(1)
        .context("missing argument: pass one JSON CopyRequest")?;
    let request: CopyRequest =
        serde_json::from_str(&argument).context("invalid CopyRequest JSON argument")?;
    let result = run(&request).await?;
    println!("{}", serde_json::to_string(&result)?);
    Ok(())
}

async fn run(request: &CopyRequest) -> anyhow::Result<CopyResult> {
    let s3 = s3_client(&request.s3);
    let mut settings = TransferSettings::default();
    if let Some(part_size) = request.part_size {
        settings.part_size = part_size;
    }
    if let Some(concurrency) = request.concurrency {
        settings.concurrency = concurrency;
    }

    let (source, source_key, sink, sink_key): (
        Box<dyn ObjectSource>,
        &str,
        Box<dyn ObjectSink>,
        &str,
    ) = match &request.job {
        CopyJob::UrlToS3 { url, bucket, key } => {
            settings.limits = PartLimits::S3;
            let config = HttpSourceConfig {
                allowed_host_suffixes: vec!["127.0.0.1".to_string()],
                allow_plain_http: true,
                ..HttpSourceConfig::default()
            };
            let source =
                HttpSource::with_client_builder(config, reqwest::Client::builder().no_proxy())?;
            (
                Box::new(source),
                url,
                Box::new(S3Store::new(s3, bucket)),
                key,
            )
        }
        CopyJob::S3ToOss {
            bucket,
            key,
            oss,
            oss_key,
        } => {
            settings.limits = PartLimits::OSS;
            let source = S3Store::new(s3, bucket);
            (Box::new(source), key, Box::new(oss_store(oss)?), oss_key)
        }
        CopyJob::S3ToS3 {
            bucket,
            key,
            target_bucket,
            target_key,
        } => {
            settings.limits = PartLimits::S3;
            let source = S3Store::new(s3.clone(), bucket);
            (
                Box::new(source),
                key,
                Box::new(S3Store::new(s3, target_bucket)),
                target_key,
            )
        }
    };

    let started = Instant::now();
    let options = PutOptions::default();
    // Every source is read by ranges, one GET per part, as the functions read them. The pull
    // function takes its first part from its first plain GET, but here that part is a range too.
    let info = source
        .head(source_key)
        .await?
        .with_context(|| format!("no source object {source_key}"))?;
    let mut transfer = Transfer::new(sink.as_ref(), sink_key, info.size, &options, &settings);
    if let Some(crc64) = info.crc64 {
        transfer = transfer.expect_crc64(crc64);
    }
    let outcome = transfer
        .run_ranged(source.as_ref(), source_key, info.etag.as_deref())
        .await?;
    let report = match outcome {
        TransferOutcome::Finished(report) => report,
        TransferOutcome::Paused(state) => bail!(
            "copy paused at {} bytes without a deadline",
            state.bytes_done
        ),
    };
    let seconds = started.elapsed().as_secs_f64();
    let usage = own_usage()?;
    Ok(CopyResult {
        bytes: report.bytes,
        seconds,
        user_cpu_seconds: usage.user_cpu_seconds,
        system_cpu_seconds: usage.system_cpu_seconds,
        max_rss_kib: usage.max_rss_kib,
        parts: report.parts,
        crc64: report.crc64,
    })
}
