//! The streaming copy engine: copies a source of known size into an [`ObjectSink`] with bounded
//! memory, verifying the byte count and the CRC-64/XZ of every byte. The source is one stream
//! ([`Transfer::run`]) or a store read with one ranged GET per part ([`Transfer::run_ranged`]).
//!
//! Objects up to one part go in a single put; larger ones go in a multipart upload with at most
//! `concurrency` parts in flight, so memory stays near (concurrency + 1) × part size from a
//! stream and concurrency × part size from ranges. A copy can stop at a part boundary and resume
//! later from a saved [`TransferState`].

mod buffers;
mod crc;
mod engine;
mod error;
mod progress;
mod restore;
mod sizing;

use std::collections::BTreeMap;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use crate::retry::RetryPolicy;
use crate::storage::{ByteStream, ObjectSink, PutOptions, UploadedPart};

pub use crc::{ResumableCrc64, crc64_combine};
pub use engine::Transfer;
pub use error::TransferError;
pub use restore::restore_parts;
pub use sizing::{ObjectTooLarge, PartLimits, part_count, plan_part_size};

/// The user metadata key that holds the object's CRC-64/XZ as a decimal string
/// (`x-oss-meta-crc64ecma` on OSS, `x-amz-meta-crc64ecma` on S3).
pub const CRC64_METADATA_KEY: &str = "crc64ecma";

/// How a copy splits, parallelises, retries and reports.
#[derive(Debug, Clone)]
pub struct TransferSettings {
    /// Preferred part size in bytes, grown for large objects (see [`plan_part_size`]).
    pub part_size: u64,
    /// Maximum number of parts uploading at the same time (at least 1).
    pub concurrency: usize,
    /// Retries of each request on transient failures.
    pub retry: RetryPolicy,
    /// Interval between progress log lines of a multipart copy.
    pub progress_interval: Duration,
    /// The destination's multipart limits.
    pub limits: PartLimits,
}

impl Default for TransferSettings {
    fn default() -> Self {
        Self {
            part_size: 16 * 1024 * 1024,
            concurrency: 4,
            retry: RetryPolicy::default(),
            progress_interval: Duration::from_secs(10),
            limits: PartLimits::OSS,
        }
    }
}

/// What a finished copy did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct TransferReport {
    pub bytes: u64,
    /// Parts uploaded; a single put counts as one part.
    pub parts: u32,
    /// CRC-64/XZ of the whole object.
    pub crc64: u64,
    /// The multipart upload id, or `None` for a single put.
    pub upload_id: Option<String>,
    /// Wall-clock seconds of this run (of the last run only, for a resumed copy).
    pub seconds: f64,
}

/// How a run of the engine ended.
#[derive(Debug, Clone, PartialEq)]
pub enum TransferOutcome {
    Finished(TransferReport),
    /// Stopped at a part boundary because the deadline passed; the upload stays open and the
    /// copy continues from this state with a source stream starting at `bytes_done`.
    Paused(TransferState),
}

/// One completed part, as saved between runs.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PartRecord {
    pub part_number: u32,
    pub etag: String,
    pub size: u64,
    pub crc64: Option<u64>,
}

impl From<&UploadedPart> for PartRecord {
    fn from(part: &UploadedPart) -> Self {
        Self {
            part_number: part.part_number,
            etag: part.etag.clone(),
            size: part.size,
            crc64: part.crc64,
        }
    }
}

impl From<&PartRecord> for UploadedPart {
    fn from(part: &PartRecord) -> Self {
        Self {
            part_number: part.part_number,
            etag: part.etag.clone(),
            size: part.size,
            crc64: part.crc64,
        }
    }
}

/// The state of an unfinished multipart copy, small enough to pass to the next invocation.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TransferState {
    pub key: String,
    pub upload_id: String,
    /// Size of the whole object in bytes.
    pub size: u64,
    pub part_size: u64,
    /// The part number the next run uploads first.
    pub next_part: u32,
    /// Bytes covered by `parts`; the next run's source stream must start at this offset.
    pub bytes_done: u64,
    /// CRC-64/XZ of the first `bytes_done` bytes.
    pub crc64: u64,
    /// Completed parts in ascending order. Empty while `next_part` is above 1 when the list
    /// did not fit in one event; the next run lists it again (see [`restore_parts`]).
    pub parts: Vec<PartRecord>,
}

/// Copies `body`, which must yield exactly `size` bytes, to `key` in `sink`.
///
/// Adds the CRC-64 as `crc64ecma` metadata where the store allows (see [`Transfer::run`]).
pub async fn copy(
    sink: &dyn ObjectSink,
    key: &str,
    size: u64,
    body: ByteStream,
    options: &PutOptions,
    settings: &TransferSettings,
) -> Result<TransferReport, TransferError> {
    match Transfer::new(sink, key, size, options, settings)
        .run(body)
        .await?
    {
        TransferOutcome::Finished(report) => Ok(report),
        // Without a deadline the engine never pauses.
        TransferOutcome::Paused(state) => Err(TransferError::ResumeMismatch {
            location: sink.location(key),
            upload_id: state.upload_id,
            detail: "the copy paused without a deadline".to_string(),
        }),
    }
}

/// Returns `options` with the CRC-64 added as user metadata.
fn with_crc64_metadata(options: &PutOptions, crc64: u64) -> PutOptions {
    let mut metadata: BTreeMap<String, String> = options.metadata.clone();
    metadata.insert(CRC64_METADATA_KEY.to_string(), crc64.to_string());
    PutOptions {
        metadata,
        ..options.clone()
    }
}

#[cfg(test)]
mod tests;
