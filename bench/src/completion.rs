//! The server's completion step of a multipart upload, read from the debug log of `s3s-fs`.
//!
//! `s3s-fs` 0.14.1 completes a multipart upload by reading every part file again, hashing it
//! with MD5 and writing the whole object. Every client that uploads to it waits for that, so the
//! harness times the step from the server's own log, the same way for ours and the peer. The
//! step runs from the event that records the last part written (`write file, path:`) to the
//! event that records the whole object's ETag (`multipart etag`). That span also contains the
//! time the client takes to send CompleteMultipartUpload after its last part, which the log
//! does not show apart.

use anyhow::{Context, bail};
use chrono::{DateTime, Utc};

/// The log filter that makes `s3s-fs` write the events this module reads, and warnings from
/// everything else.
pub const LOG_FILTER: &str = "warn,s3s_fs::s3=debug";

const PART_WRITTEN: &str = "write file, path:";
const PART_JOINED: &str = "write file, from:";
const ETAG_RECORDED: &str = "multipart etag";

/// Returns the seconds from the last part written to the ETag of the completed object, for the
/// one multipart upload whose events `log` contains. Returns `None` when the client sent the
/// object in one PutObject, as rclone does below its upload cutoff. Fails when `log` contains
/// more than one completed upload.
pub fn completion_seconds(log: &str) -> anyhow::Result<Option<f64>> {
    let mut last_part: Option<DateTime<Utc>> = None;
    let mut started: Option<DateTime<Utc>> = None;
    let mut spans = Vec::new();
    for (number, line) in log.lines().enumerate() {
        let Some((time, message)) = parse_event(line)
            .with_context(|| format!("line {} of the s3s-fs log: {line:?}", number + 1))?
        else {
            continue;
        };
        if message.starts_with(PART_WRITTEN) {
            last_part = Some(time);
        } else if message.starts_with(PART_JOINED) {
            // The first part joined marks the start of the step. Parts written afterwards
            // belong to another upload, so the last one before this point counts.
            started = started.or(last_part);
        } else if message.starts_with(ETAG_RECORDED) {
            let Some(start) = started.take() else {
                bail!("the s3s-fs log records a multipart ETag without any part written before it");
            };
            spans.push((time - start).as_seconds_f64());
            last_part = None;
        }
    }
    match spans.as_slice() {
        [seconds] => Ok(Some(*seconds)),
        [] => Ok(None),
        _ => bail!(
            "found {} completed multipart uploads in the s3s-fs log, expected one",
            spans.len()
        ),
    }
}

/// Splits an event's first line, `  2026-12-05T10:46:26.121756Z DEBUG s3s_fs::s3: message`,
/// into its time and message. Returns `None` for the other lines of the pretty format (`at`,
/// `in`, blank) and for events from other targets.
fn parse_event(line: &str) -> anyhow::Result<Option<(DateTime<Utc>, &str)>> {
    let mut fields = line.trim_start().splitn(4, ' ');
    let (Some(time), Some(level), Some(target), Some(message)) =
        (fields.next(), fields.next(), fields.next(), fields.next())
    else {
        return Ok(None);
    };
    if level != "DEBUG" || target != "s3s_fs::s3:" {
        return Ok(None);
    }
    let time = DateTime::parse_from_rfc3339(time)
        .with_context(|| format!("invalid event time {time:?}"))?
        .with_timezone(&Utc);
    Ok(Some((time, message.trim_start())))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Events in the layout `s3s-fs` 0.14.1 writes with its pretty formatter and no colors.
    fn event(time: &str, message: &str) -> String {
        format!(
            "  2026-12-05T{time}Z DEBUG s3s_fs::s3: {message}\n    at s3s-fs-0.14.1/src/s3.rs:917\n    in s3s_fs::s3::upload_part with req: S3Request {{ .. }}\n\n"
        )
    }

    fn upload(first_part: &str, last_part: &str, joined: &str, etag: &str) -> String {
        [
            event(
                first_part,
                "write file, path: /s3/.upload.1, size: 16777216",
            ),
            event(last_part, "write file, path: /s3/.upload.2, size: 16777216"),
            event(joined, "write file, from: /s3/.upload.1, size: 16777216"),
            event(joined, "write file, from: /s3/.upload.2, size: 16777216"),
            event(
                etag,
                "multipart etag, e_tag: \"9a0364b9e99bb480dd25e1f0284c8555-2\"",
            ),
        ]
        .concat()
    }

    #[test]
    fn times_last_part_to_etag() {
        let log = upload(
            "10:46:13.000000",
            "10:46:26.121756",
            "10:46:26.187362",
            "10:46:37.944204",
        );
        let seconds = completion_seconds(&log).unwrap().unwrap();
        assert!((seconds - 11.822448).abs() < 1e-9, "{seconds}");
    }

    #[test]
    fn ignores_other_targets_and_levels() {
        let noise = "  2026-12-05T10:46:03.970788Z ERROR s3s::ops: error: S3Error { code: InvalidBucketName, .. }\n    at s3s-0.14.1/src/ops/mod.rs:314\n\n  2026-12-05T10:46:20.000000Z DEBUG s3s_fs::s3: output: CompleteMultipartUploadOutput { .. }\n";
        let log = format!(
            "{noise}{}",
            upload("10:00:00.0", "10:00:01.5", "10:00:01.6", "10:00:04.5")
        );
        let seconds = completion_seconds(&log).unwrap().unwrap();
        assert!((seconds - 3.0).abs() < 1e-9, "{seconds}");
    }

    #[test]
    fn single_put_has_no_completion() {
        let log = event(
            "10:00:00.0",
            "write file, path: /s3/bench-target/small.bin, size: 5",
        );

        assert_eq!(completion_seconds(&log).unwrap(), None);
    }

    #[test]
    fn two_completions_are_an_error() {
        let log = [
            upload("10:00:00.0", "10:00:01.0", "10:00:01.1", "10:00:02.0"),
            upload("10:01:00.0", "10:01:01.0", "10:01:01.1", "10:01:02.0"),
        ]
        .concat();
        let error = completion_seconds(&log).unwrap_err().to_string();
        assert!(
            error.contains("found 2 completed multipart uploads"),
            "{error}"
        );
    }

    #[test]
    fn bad_event_time_names_the_line() {
        let log = "  yesterday DEBUG s3s_fs::s3: multipart etag, e_tag: x\n";
        let error = format!("{:#}", completion_seconds(log).unwrap_err());
        assert!(error.contains("line 1"), "{error}");
        assert!(error.contains("\"yesterday\""), "{error}");
    }
}
