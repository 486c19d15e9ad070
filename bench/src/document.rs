//! The printed table and `docs/benchmarks.md`, both built from one [`Report`].

use std::fmt::Write as _;

use chrono::{DateTime, Utc};

use crate::cold_start::ColdStart;
use crate::figures::{JobFigures, MAX_COLD_START_MS, Verdict, copy_verdicts, median, size_label};
use crate::jobs::Job;
use crate::machine::Machine;
use crate::scale;

/// Everything one benchmark run measured.
pub struct Report {
    pub machine: Machine,
    pub sizes: Vec<u64>,
    pub runs: usize,
    pub jobs: Vec<Job>,
    pub cold_runs: usize,
    pub part_size: u64,
    pub concurrency: usize,
    pub figures: Vec<JobFigures>,
    pub cold_starts: Vec<ColdStart>,
    /// Load averages before and after each object size, as `/proc/loadavg` printed them.
    pub loads: Vec<String>,
    pub date: DateTime<Utc>,
}

impl Report {
    /// Returns every target with its verdict, copy targets first, then cold starts.
    pub fn verdicts(&self) -> Vec<Verdict> {
        let mut verdicts = copy_verdicts(&self.figures);
        for cold in &self.cold_starts {
            let median_ms = median(cold.millis.iter().copied());
            let measured = if cold.failures.is_empty() {
                format!("{median_ms:.1} ms")
            } else {
                format!(
                    "{} of {} starts never requested next: {}",
                    cold.failures.len(),
                    self.cold_runs,
                    cold.failures[0]
                )
            };
            verdicts.push(Verdict {
                target: format!(
                    "cold start of {}: ≤ {MAX_COLD_START_MS} ms to the first next",
                    cold.function
                ),
                measured,
                passed: cold.failures.is_empty() && median_ms <= MAX_COLD_START_MS,
            });
        }
        verdicts
    }

    /// Returns the plain-text table printed at the end of a run.
    pub fn table(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "{:<13} {:>8} {:>9} {:>9} {:>6} {:>9} {:>9} {:>9} {:>9}",
            "job",
            "size",
            "ours MB/s",
            "peer MB/s",
            "ratio",
            "ours RSS",
            "peer RSS",
            "ours s/G",
            "peer s/G"
        );
        for figure in &self.figures {
            let _ = writeln!(
                out,
                "{:<13} {:>8} {:>9.1} {:>9.1} {:>6.2} {:>9.1} {:>9.1} {:>9.2} {:>9.2}",
                figure.job.title(),
                size_label(figure.size),
                figure.ours_mib_s,
                figure.peer_mib_s,
                figure.ratio(),
                figure.ours_rss_mib,
                figure.peer_rss_mib,
                figure.ours_cpu_s_per_gib,
                figure.peer_cpu_s_per_gib
            );
        }
        for figure in &self.figures {
            if let Some(completion) = figure.completion {
                let _ = writeln!(
                    out,
                    "{} {}: s3s-fs completion {:.2} s ours, {:.2} s peer; without it {:.1} vs {:.1} MB/s, ratio {:.2}",
                    figure.job.title(),
                    size_label(figure.size),
                    completion.ours_seconds,
                    completion.peer_seconds,
                    completion.ours_mib_s,
                    completion.peer_mib_s,
                    completion.ratio()
                );
            }
        }
        for verdict in self.verdicts() {
            let mark = if verdict.passed { "PASS" } else { "MISS" };
            let _ = writeln!(out, "{mark} {}: {}", verdict.target, verdict.measured);
        }
        out
    }

    /// Returns the whole `docs/benchmarks.md` page.
    pub fn markdown(&self) -> String {
        let mut out = String::new();
        let sizes: Vec<String> = self.sizes.iter().map(|&size| size_label(size)).collect();
        let _ = writeln!(out, "# Benchmarks\n");
        let _ = writeln!(
            out,
            "Written by `make bench` on {} (UTC). Every server ran on 127.0.0.1 of one machine, so these \
             figures measure CPU and memory cost of each client, not any real network.\n",
            self.date.format("%Y-%m-%d %H:%M")
        );
        let _ = writeln!(out, "## How they were measured\n");
        let _ = writeln!(
            out,
            "- Command: `make bench BENCH_SIZES={} BENCH_RUNS={}{}` ({} cold starts per function).",
            self.sizes
                .iter()
                .map(|&size| compact_size(size))
                .collect::<Vec<_>>()
                .join(","),
            self.runs,
            jobs_setting(&self.jobs),
            self.cold_runs
        );
        let _ = writeln!(out, "- Machine: {}.", self.machine);
        let _ = writeln!(
            out,
            "- Load average (1, 5, 15 min) around each size: {}. A load near 2 is the benchmark's own \
             servers and clients on two cores. Higher loads mean other work shared the machine, which \
             makes absolute figures noisy, while the ratios still compare runs made back to back.",
            self.loads.join("; ")
        );
        let _ = writeln!(
            out,
            "- Objects of {} of random bytes. Each job runs ours, then its peer, and repeats that for {} \
             runs per size (A B A B). Throughput and CPU are medians, and peak RSS is the highest of the runs.",
            sizes.join(", "),
            self.runs
        );
        let _ = writeln!(
            out,
            "- Ours is `bench-copy`, a separate process that runs one copy through `backup_bridge::transfer` \
             at the engine's defaults ({} MiB parts, {} in flight) and reports its own CPU time \
             (`getrusage`) and peak RSS (`VmHWM`). The pull function has the same defaults, and the \
             sync function defaults to 8 MiB parts, which hold less in memory. The peers get the same part size and concurrency \
             (`--s3-chunk-size`, `--s3-upload-concurrency`). Their CPU time comes from `wait4` and their \
             peak RSS from `VmHWM`, sampled every 10 ms. Throughput counts the whole process, start to \
             exit.",
            self.part_size >> 20,
            self.concurrency
        );
        let _ = writeln!(
            out,
            "- Servers: `s3s-fs` 0.14.1 for S3; the fake OSS from `testkit` (in the harness process) for \
             OSS and for the download URL, a presigned V1 URL on 127.0.0.1 served with `Range` support. \
             Job 1 reads it with `backup_bridge::storage::http::HttpSource`. Ours reads every source \
             with one ranged GET per part, {} at once, as the functions do. `rclone copyto` reads \
             by ranges too (its multi-thread copy), while `rclone copyurl` and curl read one stream. \
             The source objects are written to disk and then copied onto themselves in `s3s-fs`, so \
             it stores their ETag as S3 does.\n",
            self.concurrency
        );

        let _ = writeln!(out, "## Copies\n");
        let _ = writeln!(
            out,
            "![Throughput and peak RSS by object size](benchmarks.svg)\n"
        );
        let _ = writeln!(
            out,
            "| Job | Peer | Size | Ours MiB/s | Peer MiB/s | Ratio | Ours peak RSS MiB | Peer peak RSS MiB | Ours CPU s/GiB | Peer CPU s/GiB |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|---|---|");
        for figure in &self.figures {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.1} | {:.1} | {:.2} | {:.1} | {:.1} | {:.2} | {:.2} |",
                figure.job.title(),
                figure.job.peer(),
                size_label(figure.size),
                figure.ours_mib_s,
                figure.peer_mib_s,
                figure.ratio(),
                figure.ours_rss_mib,
                figure.peer_rss_mib,
                figure.ours_cpu_s_per_gib,
                figure.peer_cpu_s_per_gib
            );
        }
        let _ = writeln!(
            out,
            "\nJob 2's peer moves no bytes anywhere: curl reads the S3 object in one stream to \
             `/dev/null`, the bound for a copy that reads one stream. Ours reads {} ranges at once, so it \
             can pass that bound, and it also writes into the fake OSS, which runs in the harness and \
             shares the same cores.\n",
            self.concurrency
        );
        self.write_completion(&mut out);

        let _ = writeln!(out, "## Cold start\n");
        let _ = writeln!(
            out,
            "| Function | Bootstrap size | Median to first `next` | Starts that reached `next` |"
        );
        let _ = writeln!(out, "|---|---|---|---|");
        for cold in &self.cold_starts {
            let median_ms = median(cold.millis.iter().copied());
            let median_text = if median_ms.is_finite() {
                format!("{median_ms:.1} ms")
            } else {
                "none".to_string()
            };
            let _ = writeln!(
                out,
                "| {} | {:.1} MiB | {median_text} | {} of {} |",
                cold.function,
                cold.bootstrap_bytes as f64 / (1024.0 * 1024.0),
                cold.millis.len(),
                self.cold_runs
            );
        }
        let _ = writeln!(
            out,
            "\nEach release `bootstrap` starts against a Runtime API stub on 127.0.0.1 that never replies, and \
             the time runs from exec to the arrival of `GET /2018-06-01/runtime/invocation/next`.\n"
        );

        let _ = writeln!(out, "## Targets\n");
        let _ = writeln!(out, "| Target | Measured | Verdict |");
        let _ = writeln!(out, "|---|---|---|");
        for verdict in self.verdicts() {
            let mark = if verdict.passed { "PASS" } else { "MISS" };
            let _ = writeln!(
                out,
                "| {} | {} | {mark} |",
                verdict.target, verdict.measured
            );
        }
        out.push('\n');
        out.push_str(&scale::section(&self.figures));
        out
    }

    /// Writes the section on the completion step of `s3s-fs`, when a job into S3 ran.
    fn write_completion(&self, out: &mut String) {
        let with_step: Vec<_> = self
            .figures
            .iter()
            .filter_map(|figure| figure.completion.map(|completion| (figure, completion)))
            .collect();
        if with_step.is_empty() {
            return;
        }
        let _ = writeln!(
            out,
            "## The server's completion step
"
        );
        let _ = writeln!(
            out,
            "`s3s-fs` 0.14.1 completes a multipart upload by reading every part file again, hashing it \
             with MD5 and writing the whole object, while the client waits for its reply. The harness \
             reads the time of that step from the server's own debug log, the same way for both sides: \
             from the last part written to the ETag of the whole object. The last three columns take \
             each run's step out of its time. Real S3 does not rewrite the object when it completes an \
             upload.\n"
        );
        let _ = writeln!(
            out,
            "| Job | Peer | Size | Ours step s | Peer step s | Ours MiB/s without it | Peer MiB/s without it | Ratio without it |"
        );
        let _ = writeln!(out, "|---|---|---|---|---|---|---|---|");
        for (figure, completion) in with_step {
            let _ = writeln!(
                out,
                "| {} | {} | {} | {:.2} | {:.2} | {:.1} | {:.1} | {:.2} |",
                figure.job.title(),
                figure.job.peer(),
                size_label(figure.size),
                completion.ours_seconds,
                completion.peer_seconds,
                completion.ours_mib_s,
                completion.peer_mib_s,
                completion.ratio()
            );
        }
        out.push('\n');
    }
}

/// Formats a size the way `BENCH_SIZES` takes it: `256M`, `4G`.
fn compact_size(bytes: u64) -> String {
    if bytes.is_multiple_of(1 << 30) {
        format!("{}G", bytes >> 30)
    } else if bytes.is_multiple_of(1 << 20) {
        format!("{}M", bytes >> 20)
    } else {
        bytes.to_string()
    }
}

/// Returns the figures of `job` at the largest measured size.
pub fn largest(figures: &[JobFigures], job: Job) -> Option<&JobFigures> {
    figures
        .iter()
        .filter(|figure| figure.job == job)
        .max_by_key(|figure| figure.size)
}

/// Returns ` BENCH_JOBS=1,2` when only some jobs ran, and nothing when all did.
fn jobs_setting(jobs: &[Job]) -> String {
    if jobs.len() == Job::ALL.len() {
        return String::new();
    }
    let numbers: Vec<String> = jobs
        .iter()
        .filter_map(|job| Job::ALL.iter().position(|candidate| candidate == job))
        .map(|index| (index + 1).to_string())
        .collect();
    format!(" BENCH_JOBS={}", numbers.join(","))
}
