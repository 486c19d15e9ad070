//! Medians and targets: turns the samples of every run into the figures the report prints and
//! into one PASS or MISS line per target.

use crate::jobs::{Job, Sample};

pub const MIB: f64 = 1024.0 * 1024.0;
pub const GIB: f64 = 1024.0 * MIB;

/// The figures of one job at one object size.
#[derive(Debug, Clone)]
pub struct JobFigures {
    pub job: Job,
    pub size: u64,
    pub ours_mib_s: f64,
    pub peer_mib_s: f64,
    /// The highest peak RSS of our process over all runs, in MiB.
    pub ours_rss_mib: f64,
    pub peer_rss_mib: f64,
    pub ours_cpu_s_per_gib: f64,
    pub peer_cpu_s_per_gib: f64,
    /// For a job that writes into S3: the server's completion step and the throughput of each
    /// side with that step taken out of its time.
    pub completion: Option<CompletionFigures>,
}

/// Medians of the server's completion step, which both sides of a job into S3 wait for.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CompletionFigures {
    pub ours_seconds: f64,
    pub peer_seconds: f64,
    /// Throughput over each run's time less its completion step, from the median of those times.
    pub ours_mib_s: f64,
    pub peer_mib_s: f64,
}

impl CompletionFigures {
    /// Returns `None` unless every sample on both sides has its completion step.
    fn from_samples(size: u64, ours: &[Sample], peer: &[Sample]) -> Option<Self> {
        let steps = |samples: &[Sample]| -> Option<Vec<(f64, f64)>> {
            samples
                .iter()
                .map(|s| s.completion_seconds.map(|step| (s.seconds, step)))
                .collect()
        };
        let (ours, peer) = (steps(ours)?, steps(peer)?);
        if ours.is_empty() || peer.is_empty() {
            return None;
        }
        let without = |runs: &[(f64, f64)]| {
            size as f64 / MIB / median(runs.iter().map(|(total, step)| total - step))
        };
        Some(Self {
            ours_seconds: median(ours.iter().map(|(_, step)| *step)),
            peer_seconds: median(peer.iter().map(|(_, step)| *step)),
            ours_mib_s: without(&ours),
            peer_mib_s: without(&peer),
        })
    }

    /// Our throughput without the completion step divided by the peer's.
    pub fn ratio(&self) -> f64 {
        self.ours_mib_s / self.peer_mib_s
    }
}

impl JobFigures {
    pub fn from_samples(job: Job, size: u64, ours: &[Sample], peer: &[Sample]) -> Self {
        let gib = size as f64 / GIB;
        let throughput =
            |samples: &[Sample]| size as f64 / MIB / median(samples.iter().map(|s| s.seconds));
        let peak_rss = |samples: &[Sample]| {
            samples
                .iter()
                .map(|s| s.usage.max_rss_kib)
                .max()
                .unwrap_or(0) as f64
                / 1024.0
        };
        let cpu_per_gib =
            |samples: &[Sample]| median(samples.iter().map(|s| s.usage.cpu_seconds())) / gib;
        Self {
            job,
            size,
            ours_mib_s: throughput(ours),
            peer_mib_s: throughput(peer),
            ours_rss_mib: peak_rss(ours),
            peer_rss_mib: peak_rss(peer),
            ours_cpu_s_per_gib: cpu_per_gib(ours),
            peer_cpu_s_per_gib: cpu_per_gib(peer),
            completion: CompletionFigures::from_samples(size, ours, peer),
        }
    }

    /// Our throughput divided by the peer's.
    pub fn ratio(&self) -> f64 {
        self.ours_mib_s / self.peer_mib_s
    }
}

/// Returns the median; the mean of the two middle values for an even count, NaN when empty.
pub fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut sorted: Vec<f64> = values.collect();
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted.sort_by(f64::total_cmp);
    let middle = sorted.len() / 2;
    if sorted.len() % 2 == 1 {
        sorted[middle]
    } else {
        (sorted[middle - 1] + sorted[middle]) / 2.0
    }
}

/// One target and whether the measured figures meet it.
#[derive(Debug, Clone)]
pub struct Verdict {
    pub target: String,
    pub measured: String,
    pub passed: bool,
}

/// Job 1 must reach 1.25× rclone and job 2 0.8× the raw GET.
const URL_TO_S3_MIN_RATIO: f64 = 1.25;
const S3_TO_OSS_MIN_RATIO: f64 = 0.8;
/// Peak RSS at default settings, and its allowed growth from the smallest to the largest object.
const MAX_RSS_MIB: f64 = 96.0;
const MAX_RSS_GROWTH: f64 = 0.10;
pub const MAX_COLD_START_MS: f64 = 30.0;

/// Checks the copy targets against `figures`.
pub fn copy_verdicts(figures: &[JobFigures]) -> Vec<Verdict> {
    let mut verdicts = Vec::new();
    for figure in figures {
        let minimum = match figure.job {
            Job::UrlToS3 => URL_TO_S3_MIN_RATIO,
            Job::S3ToOss => S3_TO_OSS_MIN_RATIO,
            Job::S3ToS3 => continue,
        };
        let target = format!(
            "{} at {}: ≥ {minimum}× {}",
            figure.job.title(),
            size_label(figure.size),
            figure.job.peer()
        );
        let ratio_verdict = |target: String, ratio: f64| Verdict {
            target,
            measured: format!("{ratio:.2}×"),
            passed: ratio >= minimum,
        };
        verdicts.push(ratio_verdict(target.clone(), figure.ratio()));
        if let (Job::UrlToS3, Some(completion)) = (figure.job, figure.completion) {
            verdicts.push(ratio_verdict(
                format!("{target}, with the server's completion step left out"),
                completion.ratio(),
            ));
        }
    }
    for figure in figures.iter().filter(|figure| figure.job == Job::UrlToS3) {
        verdicts.push(Verdict {
            target: format!(
                "1. URL → S3 at {}: CPU per GiB ≤ rclone's",
                size_label(figure.size)
            ),
            measured: format!(
                "{:.2} s vs {:.2} s",
                figure.ours_cpu_s_per_gib, figure.peer_cpu_s_per_gib
            ),
            passed: figure.ours_cpu_s_per_gib <= figure.peer_cpu_s_per_gib,
        });
    }
    for figure in figures {
        verdicts.push(Verdict {
            target: format!(
                "{} at {}: peak RSS ≤ {MAX_RSS_MIB} MiB",
                figure.job.title(),
                size_label(figure.size)
            ),
            measured: format!("{:.1} MiB", figure.ours_rss_mib),
            passed: figure.ours_rss_mib <= MAX_RSS_MIB,
        });
    }
    for job in Job::ALL {
        let of_job: Vec<&JobFigures> = figures.iter().filter(|figure| figure.job == job).collect();
        let (Some(smallest), Some(largest)) = (
            of_job.iter().min_by_key(|figure| figure.size),
            of_job.iter().max_by_key(|figure| figure.size),
        ) else {
            continue;
        };
        if smallest.size == largest.size {
            continue;
        }
        let growth = (largest.ours_rss_mib - smallest.ours_rss_mib).abs() / smallest.ours_rss_mib;
        verdicts.push(Verdict {
            target: format!(
                "{}: peak RSS within {:.0} % from {} to {}",
                job.title(),
                MAX_RSS_GROWTH * 100.0,
                size_label(smallest.size),
                size_label(largest.size)
            ),
            measured: format!(
                "{:+.1} %",
                growth * 100.0 * (largest.ours_rss_mib - smallest.ours_rss_mib).signum()
            ),
            passed: growth <= MAX_RSS_GROWTH,
        });
    }
    verdicts
}

/// Formats a byte count as `256 MiB` or `4 GiB`.
pub fn size_label(bytes: u64) -> String {
    let bytes_f = bytes as f64;
    if bytes_f >= GIB && bytes.is_multiple_of(1 << 30) {
        format!("{} GiB", bytes >> 30)
    } else if bytes_f >= MIB {
        format!("{:.0} MiB", bytes_f / MIB)
    } else {
        format!("{} KiB", bytes >> 10)
    }
}

/// Parses `256M`, `1G`, `4GiB` or a plain byte count.
pub fn parse_size(text: &str) -> Option<u64> {
    let text = text.trim();
    let digits_end = text
        .find(|c: char| !c.is_ascii_digit())
        .unwrap_or(text.len());
    let number: u64 = text[..digits_end].parse().ok()?;
    let shift = match text[digits_end..].trim().to_ascii_uppercase().as_str() {
        "" | "B" => 0,
        "K" | "KIB" => 10,
        "M" | "MIB" => 20,
        "G" | "GIB" => 30,
        _ => return None,
    };
    number.checked_mul(1 << shift)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jobs::Sample;
    use bench::usage::Usage;

    fn sample(seconds: f64, cpu_seconds: f64, max_rss_kib: u64) -> Sample {
        Sample {
            completion_seconds: None,
            seconds,
            usage: Usage {
                user_cpu_seconds: cpu_seconds,
                system_cpu_seconds: 0.0,
                max_rss_kib,
            },
        }
    }

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(median([3.0, 1.0, 2.0].into_iter()), 2.0);
        assert_eq!(median([4.0, 1.0, 3.0, 2.0].into_iter()), 2.5);
        assert!(median(std::iter::empty()).is_nan());
    }

    #[test]
    fn parse_size_accepts_binary_suffixes() {
        assert_eq!(parse_size("256M"), Some(256 << 20));
        assert_eq!(parse_size("4GiB"), Some(4 << 30));
        assert_eq!(parse_size("512k"), Some(512 << 10));
        assert_eq!(parse_size("1000"), Some(1000));
        assert_eq!(parse_size("1T"), None);
        assert_eq!(parse_size("G"), None);
    }

    #[test]
    fn figures_use_median_time_and_highest_rss() {
        let size = 1 << 30;
        let ours = [
            sample(4.0, 2.0, 50 * 1024),
            sample(2.0, 1.0, 60 * 1024),
            sample(3.0, 3.0, 40 * 1024),
        ];
        let peer = [
            sample(6.0, 4.0, 100 * 1024),
            sample(6.0, 4.0, 90 * 1024),
            sample(6.0, 4.0, 80 * 1024),
        ];
        let figures = JobFigures::from_samples(Job::UrlToS3, size, &ours, &peer);
        assert_eq!(figures.ours_mib_s, 1024.0 / 3.0);
        assert_eq!(figures.peer_mib_s, 1024.0 / 6.0);
        assert_eq!(figures.ratio(), 2.0);
        assert_eq!(figures.ours_rss_mib, 60.0);
        assert_eq!(figures.ours_cpu_s_per_gib, 2.0);
    }

    #[test]
    fn completion_step_is_taken_out_per_run() {
        let size = 1 << 30;
        let with_step = |seconds: f64, step: f64| Sample {
            completion_seconds: Some(step),
            ..sample(seconds, 1.0, 1024)
        };
        // Ours moves the bytes in 2, 3 and 4 s, the peer in 6 s each time, and the server's
        // step of about 10 s hides most of that difference.
        let ours = [
            with_step(12.0, 10.0),
            with_step(14.0, 11.0),
            with_step(13.5, 9.5),
        ];
        let peer = [
            with_step(16.0, 10.0),
            with_step(16.5, 10.5),
            with_step(16.2, 10.2),
        ];
        let figures = JobFigures::from_samples(Job::UrlToS3, size, &ours, &peer);
        let completion = figures.completion.expect("every sample has its step");
        assert_eq!(completion.ours_seconds, 10.0);
        assert_eq!(completion.peer_seconds, 10.2);
        assert_eq!(completion.ours_mib_s, 1024.0 / 3.0);
        assert!((completion.peer_mib_s - 1024.0 / 6.0).abs() < 1e-9);
        assert!((completion.ratio() - 2.0).abs() < 1e-9);
        assert!(figures.ratio() < 1.25, "whole runs: {}", figures.ratio());

        let verdicts = copy_verdicts(&[figures]);
        let whole = &verdicts[0];
        let without_step = &verdicts[1];
        assert!(!whole.passed, "{whole:?}");
        assert!(without_step.target.contains("completion step left out"));
        assert!(without_step.passed, "{without_step:?}");
    }

    #[test]
    fn completion_needs_every_sample() {
        let ours = [
            Sample {
                completion_seconds: Some(1.0),
                ..sample(2.0, 1.0, 1024)
            },
            sample(2.0, 1.0, 1024),
        ];
        let peer = [Sample {
            completion_seconds: Some(1.0),
            ..sample(3.0, 1.0, 1024)
        }];
        let figures = JobFigures::from_samples(Job::UrlToS3, 1 << 30, &ours, &peer);
        assert_eq!(figures.completion, None);
        assert_eq!(copy_verdicts(&[figures]).len(), 3, "no completion verdict");
    }

    #[test]
    fn verdicts_miss_when_rss_grows_with_size() {
        let small = JobFigures::from_samples(
            Job::S3ToS3,
            256 << 20,
            &[sample(1.0, 1.0, 50 * 1024)],
            &[sample(1.0, 1.0, 1)],
        );
        let large = JobFigures::from_samples(
            Job::S3ToS3,
            4 << 30,
            &[sample(1.0, 1.0, 60 * 1024)],
            &[sample(1.0, 1.0, 1)],
        );
        let verdicts = copy_verdicts(&[small, large]);
        let growth = verdicts
            .iter()
            .find(|verdict| verdict.target.contains("within 10 %"))
            .expect("a growth verdict for two sizes");
        assert!(!growth.passed, "50 → 60 MiB is 20 % growth: {growth:?}");
        assert!(
            verdicts
                .iter()
                .filter(|verdict| verdict.target.contains("≤ 96 MiB"))
                .all(|verdict| verdict.passed)
        );
    }

    #[test]
    fn size_label_prefers_whole_gib() {
        assert_eq!(size_label(4 << 30), "4 GiB");
        assert_eq!(size_label(256 << 20), "256 MiB");
        assert_eq!(size_label(3 << 29), "1536 MiB");
    }
}
