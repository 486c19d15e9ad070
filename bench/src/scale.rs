//! The "Scale on paper" section: projections from the measured throughput to large backups and
//! to many small syncs, with every assumption named next to the figure it feeds.

use std::fmt::Write as _;

use crate::document::largest;
use crate::figures::{JobFigures, MIB};
use crate::jobs::Job;

/// Memory and timeout of `aliyun-backup-pull` in template.yaml.
const TEMPLATE_MEMORY_MB: f64 = 1024.0;
const TEMPLATE_TIMEOUT_S: f64 = 900.0;
/// Time kept free at the end of each invocation to pause at a part boundary and chain the next.
/// An assumption, not a measured figure.
const PAUSE_MARGIN_S: f64 = 60.0;
/// Assumed sustained throughput of one invocation between Aliyun OSS and AWS over the internet.
const ASSUMED_LINK_MIB_S: f64 = 50.0;
/// Assumed x86 Lambda price per GB-second (the list price in us-east-1; check the current one).
const ASSUMED_PRICE_PER_GB_S: f64 = 0.000_016_666_7;
/// The default concurrent executions quota of one account in one region.
const DEFAULT_CONCURRENCY: f64 = 1000.0;
/// Assumed duration of one small-file S3 → OSS sync: a few requests across the Pacific
/// (GetObject in-region, PutObject and HeadObject on OSS, each some 100–200 ms).
const ASSUMED_SMALL_SYNC_S: f64 = 0.5;
const SMALL_FILES: f64 = 50_000.0;

/// Returns the markdown of the section.
pub fn section(figures: &[JobFigures]) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "## Scale on paper\n");
    let Some(pull) = largest(figures, Job::UrlToS3) else {
        let _ = writeln!(
            out,
            "No URL → S3 figures were measured, so nothing is projected."
        );
        return out;
    };
    let measured = pull.ours_mib_s;
    let rate = measured.min(ASSUMED_LINK_MIB_S);
    let usable = TEMPLATE_TIMEOUT_S - PAUSE_MARGIN_S;
    let gb = TEMPLATE_MEMORY_MB / 1024.0;

    let _ = writeln!(out, "| Input | Value | Source |");
    let _ = writeln!(out, "|---|---|---|");
    let _ = writeln!(
        out,
        "| URL → S3 throughput of one invocation on loopback | {measured:.1} MiB/s | measured here at {} |",
        crate::figures::size_label(pull.size)
    );
    let _ = writeln!(
        out,
        "| Throughput between Aliyun and AWS | {ASSUMED_LINK_MIB_S:.0} MiB/s | assumed |"
    );
    let _ = writeln!(
        out,
        "| Rate used below (the smaller of the two) | {rate:.1} MiB/s | derived |"
    );
    let _ = writeln!(
        out,
        "| Memory, timeout | {TEMPLATE_MEMORY_MB:.0} MB, {TEMPLATE_TIMEOUT_S:.0} s | template.yaml |"
    );
    let _ = writeln!(
        out,
        "| Copy time per invocation | {usable:.0} s | assumed ({PAUSE_MARGIN_S:.0} s kept to pause and chain) |"
    );
    let _ = writeln!(
        out,
        "| Price | ${ASSUMED_PRICE_PER_GB_S} per GB-second | assumed (x86 list price) |\n"
    );

    let _ = writeln!(
        out,
        "| Backup | Copy time | Chained invocations | GB-seconds | Cost |"
    );
    let _ = writeln!(out, "|---|---|---|---|---|");
    for (label, bytes) in [("100 GB", 100e9), ("1 TB", 1e12)] {
        let seconds = bytes / MIB / rate;
        let invocations = (seconds / usable).ceil();
        let gb_seconds = seconds * gb;
        let _ = writeln!(
            out,
            "| {label} | {:.1} h | {invocations:.0} | {gb_seconds:.0} | ${:.2} |",
            seconds / 3600.0,
            gb_seconds * ASSUMED_PRICE_PER_GB_S
        );
    }

    let per_minute = DEFAULT_CONCURRENCY * 60.0 / ASSUMED_SMALL_SYNC_S;
    let _ = writeln!(
        out,
        "\nSmall files: with the default quota of {DEFAULT_CONCURRENCY:.0} concurrent executions and an \
         assumed {ASSUMED_SMALL_SYNC_S} s per small-file sync (one object per invocation, dominated by \
         round trips across the Pacific, not by bytes), one account sustains about {per_minute:.0} \
         syncs per minute, so an export of {SMALL_FILES:.0} small files takes about {:.0} s of wall \
         time. None of these small-file figures is measured here.",
        SMALL_FILES / per_minute * 60.0
    );
    out
}
