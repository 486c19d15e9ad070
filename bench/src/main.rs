//! `make bench`: measures the copy engine against rclone and a raw GET on 127.0.0.1, times each
//! function's cold start, prints PASS or MISS per target and writes `docs/benchmarks.md`.
//!
//! Settings come from the environment, and `scripts/bench.sh` sets the paths.
//! - `BENCH_SIZES`: object sizes, comma-separated, such as `256M,1G,4G`.
//! - `BENCH_RUNS`: runs per job and size, at least 1. `BENCH_COLD_RUNS`: starts per function.
//! - `BENCH_TMPDIR`: the folder on disk for the objects (default `/var/tmp`).
//! - `BENCH_S3S_FS`, `BENCH_RCLONE`, `BENCH_COPY`: the binaries to run.
//! - `BENCH_TARGET_DIR`: the Cargo target folder with the release function binaries.
//! - `BENCH_DOCS`: where `benchmarks.md` and `benchmarks.svg` are written.
//! - `BENCH_JOBS`: the jobs to run, such as `1,3` (default all three).
//! - `BENCH_COPY_WRAPPER`: a profiler command put in front of `bench-copy`, such as
//!   `valgrind --tool=callgrind`; the figures of such a run are not comparable.

mod chart;
mod cold_start;
mod completion;
mod document;
mod figures;
mod jobs;
mod machine;
mod scale;
mod servers;
mod sources;

use std::path::PathBuf;

use anyhow::{Context, bail};

use crate::figures::{JobFigures, parse_size, size_label};
use crate::jobs::{Job, Runner};
use crate::servers::{OssServer, S3Server};

/// The engine's defaults, which the peers are given too.
const PART_SIZE: u64 = 16 * 1024 * 1024;
const CONCURRENCY: usize = 4;

/// Settings of one benchmark run, read from the environment.
#[derive(Debug)]
struct Settings {
    sizes: Vec<u64>,
    runs: usize,
    cold_runs: usize,
    tmp_dir: PathBuf,
    s3s_fs: PathBuf,
    rclone: PathBuf,
    copy_binary: PathBuf,
    target_dir: PathBuf,
    docs_dir: PathBuf,
    workspace: PathBuf,
    copy_wrapper: Vec<String>,
    jobs: Vec<Job>,
}

impl Settings {
    fn from_env() -> anyhow::Result<Self> {
        let var = |name: &str| std::env::var(name).ok().filter(|value| !value.is_empty());
        let workspace = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .context("the bench crate has no parent folder")?
            .to_path_buf();
        let sizes_text = var("BENCH_SIZES").unwrap_or_else(|| "256M,1G,4G".to_string());
        let mut sizes = Vec::new();
        for text in sizes_text.split(',') {
            match parse_size(text) {
                Some(size) if size > 0 => sizes.push(size),
                _ => bail!("invalid BENCH_SIZES entry {text:?}: use sizes such as 256M, 1G or 4G"),
            }
        }
        let count = |name: &str, default: usize| -> anyhow::Result<usize> {
            match var(name) {
                None => Ok(default),
                Some(text) => match text.parse::<usize>() {
                    Ok(value) if value > 0 => Ok(value),
                    _ => bail!("invalid {name}={text}: use a whole number of at least 1"),
                },
            }
        };
        let own_folder = std::env::current_exe()?
            .parent()
            .context("the bench binary has no parent folder")?
            .to_path_buf();
        let path = |name: &str, default: PathBuf| var(name).map(PathBuf::from).unwrap_or(default);
        Ok(Self {
            sizes,
            runs: count("BENCH_RUNS", 5)?,
            cold_runs: count("BENCH_COLD_RUNS", 20)?,
            tmp_dir: path("BENCH_TMPDIR", PathBuf::from("/var/tmp")),
            s3s_fs: path("BENCH_S3S_FS", workspace.join(".bench-tools/bin/s3s-fs")),
            rclone: path("BENCH_RCLONE", workspace.join(".venv/bin/rclone")),
            copy_binary: path("BENCH_COPY", own_folder.join("bench-copy")),
            target_dir: path("BENCH_TARGET_DIR", workspace.join("target")),
            docs_dir: path("BENCH_DOCS", workspace.join("docs")),
            workspace,
            jobs: parse_jobs(var("BENCH_JOBS").as_deref())?,
            copy_wrapper: var("BENCH_COPY_WRAPPER")
                .map(|text| text.split_whitespace().map(str::to_string).collect())
                .unwrap_or_default(),
        })
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let settings = Settings::from_env()?;
    let machine = machine::Machine::read();
    println!("bench: {machine}");

    let work = tempfile::Builder::new()
        .prefix("backup-bridge-bench-")
        .tempdir_in(&settings.tmp_dir)
        .with_context(|| {
            format!(
                "failed to create a folder in {}",
                settings.tmp_dir.display()
            )
        })?;
    let s3 = S3Server::start(&settings.s3s_fs, &work.path().join("s3"))?;
    let oss = OssServer::start().await?;
    let rclone_config = work.path().join("rclone.conf");
    std::fs::write(&rclone_config, "")?;
    let runner = Runner {
        s3: &s3,
        oss: &oss,
        copy_binary: settings.copy_binary.clone(),
        rclone: settings.rclone.clone(),
        rclone_config,
        part_size: PART_SIZE,
        concurrency: CONCURRENCY,
        copy_wrapper: settings.copy_wrapper.clone(),
    };

    let mut figures = Vec::new();
    let mut loads = Vec::new();
    for &size in &settings.sizes {
        let object = sources::create(&s3, &oss, size).await?;
        loads.push(format!(
            "{}: {} before",
            size_label(size),
            machine::load_average()
        ));
        let mut samples: Vec<(Vec<jobs::Sample>, Vec<jobs::Sample>)> =
            vec![Default::default(); settings.jobs.len()];
        for run in 1..=settings.runs {
            for (index, &job) in settings.jobs.iter().enumerate() {
                let ours = runner.run_ours(job, &object).await?;
                let peer = runner.run_peer(job, &object).await?;
                println!(
                    "bench: {} {} run {run}/{}: ours {:.2} s, {} {:.2} s",
                    job.title(),
                    size_label(size),
                    settings.runs,
                    ours.seconds,
                    job.peer(),
                    peer.seconds
                );
                samples[index].0.push(ours);
                samples[index].1.push(peer);
            }
        }
        loads.push(format!(
            "{}: {} after",
            size_label(size),
            machine::load_average()
        ));
        for (index, &job) in settings.jobs.iter().enumerate() {
            figures.push(JobFigures::from_samples(
                job,
                size,
                &samples[index].0,
                &samples[index].1,
            ));
        }
        sources::remove(&s3, &oss, &object).await?;
    }
    drop(runner);
    drop(s3);

    let cold_starts = measure_cold_starts(&settings, &oss)?;
    let report = document::Report {
        machine,
        sizes: settings.sizes.clone(),
        runs: settings.runs,
        jobs: settings.jobs.clone(),
        cold_runs: settings.cold_runs,
        part_size: PART_SIZE,
        concurrency: CONCURRENCY,
        figures,
        cold_starts,
        loads,
        date: chrono::Utc::now(),
    };
    print!("{}", report.table());
    std::fs::create_dir_all(&settings.docs_dir)?;
    std::fs::write(
        settings.docs_dir.join("benchmarks.svg"),
        chart::render(&report.figures),
    )?;
    // Findings from profiling are written by hand and appended, so a new run keeps them.
    let findings_path = settings.workspace.join("bench/findings.md");
    let findings = std::fs::read_to_string(&findings_path)
        .with_context(|| format!("failed to read {}", findings_path.display()))?;
    let page = format!("{}\n{}", report.markdown(), findings);
    std::fs::write(settings.docs_dir.join("benchmarks.md"), page)?;
    println!(
        "bench: wrote {}",
        settings.docs_dir.join("benchmarks.md").display()
    );
    Ok(())
}

fn measure_cold_starts(
    settings: &Settings,
    oss: &OssServer,
) -> anyhow::Result<Vec<cold_start::ColdStart>> {
    let mut results = Vec::new();
    for function in cold_start::discover_functions(&settings.workspace)? {
        let binary = cold_start::release_binary(&settings.target_dir, &function);
        let env = sources::function_env(&function, oss);
        let result = match cold_start::measure(&function, &binary, &env, settings.cold_runs) {
            Ok(result) => result,
            Err(error) => {
                eprintln!("bench: cold start of {function} not measured: {error:#}");
                cold_start::ColdStart {
                    function: function.clone(),
                    bootstrap_bytes: 0,
                    millis: Vec::new(),
                    failures: vec![format!("{error:#}")],
                }
            }
        };
        println!(
            "bench: cold start of {function}: {} starts reached next, {} did not",
            result.millis.len(),
            result.failures.len()
        );
        results.push(result);
    }
    Ok(results)
}

/// Parses `BENCH_JOBS`, a comma-separated list of job numbers; `None` selects every job.
fn parse_jobs(text: Option<&str>) -> anyhow::Result<Vec<Job>> {
    let Some(text) = text else {
        return Ok(Job::ALL.to_vec());
    };
    let mut jobs = Vec::new();
    for number in text.split(',') {
        match number.trim().parse::<usize>() {
            Ok(number @ 1..=3) => jobs.push(Job::ALL[number - 1]),
            _ => bail!("invalid BENCH_JOBS entry {number:?}: use job numbers 1, 2 or 3"),
        }
    }
    Ok(jobs)
}
