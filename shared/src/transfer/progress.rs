//! Progress log lines of a multipart copy.

use std::time::{Duration, Instant};

/// Progress of one run, logged at a steady interval rather than per part.
pub(super) struct Progress {
    started: Instant,
    last_logged: Instant,
    interval: Duration,
    bytes_before: u64,
    bytes_uploaded: u64,
    parts: u32,
}

impl Progress {
    pub(super) fn new(interval: Duration, bytes_before: u64) -> Self {
        let now = Instant::now();
        Self {
            started: now,
            last_logged: now,
            interval,
            bytes_before,
            bytes_uploaded: 0,
            parts: 0,
        }
    }

    pub(super) fn record_part(&mut self, size: u64) {
        self.bytes_uploaded += size;
        self.parts += 1;
    }

    pub(super) fn log_if_due(&mut self, key: &str, upload_id: &str) {
        if self.last_logged.elapsed() < self.interval {
            return;
        }
        self.last_logged = Instant::now();
        let seconds = self.started.elapsed().as_secs_f64();
        let mib_per_second =
            self.bytes_uploaded as f64 / (1024.0 * 1024.0) / seconds.max(f64::EPSILON);
        tracing::info!(
            key,
            upload_id,
            bytes = self.bytes_before + self.bytes_uploaded,
            parts = self.parts,
            mib_per_second = format!("{mib_per_second:.1}"),
            "copy in progress"
        );
    }
}
