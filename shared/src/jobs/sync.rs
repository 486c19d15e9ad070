//! The S3 → OSS sync: copies each object created under the source prefix to the target prefix,
//! verified by CRC-64, idempotent under repeated and concurrent deliveries.
//!
//! Lambda retries an invocation when [`SyncBatchReport::should_fail`] is true, which happens when
//! any record failed in a way that may succeed later (a transient store error, a short body, a
//! checksum mismatch). Invalid records, conflicts and objects deleted before the copy are
//! reported and dropped, because sending them again changes nothing.

use std::collections::BTreeMap;
use std::time::Duration;

use crate::events::{EventError, S3ObjectRecord};

mod batch;

use crate::retry::RetryPolicy;
use crate::storage::{ErrorKind, ObjectInfo, ObjectSink, ObjectSource, PutOptions, StorageError};
use crate::transfer::{
    CRC64_METADATA_KEY, PartLimits, Transfer, TransferError, TransferOutcome, TransferSettings,
};
pub use batch::{RecordReport, SyncBatchReport, sync_event};

/// User metadata key of the source object's ETag on the target (`x-oss-meta-source-etag`).
pub const SOURCE_ETAG_METADATA_KEY: &str = "source-etag";

/// Prefixes and copy settings of the sync.
#[derive(Debug, Clone)]
pub struct SyncSettings {
    /// Only records of this bucket are copied; `None` accepts any bucket.
    pub source_bucket: Option<String>,
    /// Only keys under this prefix are copied, e.g. `mysql/`.
    pub source_prefix: String,
    /// Replaces the source prefix in the target key, e.g. `iotdb-backup/mysql/`.
    pub target_prefix: String,
    /// Preferred part size in bytes; grown for large objects.
    pub part_size: u64,
    /// Parts in flight per object.
    pub concurrency: usize,
    /// Objects copied at the same time within one event.
    pub record_concurrency: usize,
    pub retry: RetryPolicy,
    pub progress_interval: Duration,
}

impl Default for SyncSettings {
    fn default() -> Self {
        Self {
            source_bucket: None,
            source_prefix: "mysql/".to_string(),
            target_prefix: "iotdb-backup/mysql/".to_string(),
            part_size: 16 * 1024 * 1024,
            concurrency: 4,
            record_concurrency: 2,
            retry: RetryPolicy::default(),
            progress_interval: Duration::from_secs(10),
        }
    }
}

impl SyncSettings {
    fn transfer_settings(&self) -> TransferSettings {
        TransferSettings {
            part_size: self.part_size,
            concurrency: self.concurrency,
            retry: self.retry,
            progress_interval: self.progress_interval,
            limits: PartLimits::OSS,
        }
    }

    /// Returns the target key for `source_key`, or `None` when the key is outside the source prefix.
    pub fn target_key(&self, source_key: &str) -> Option<String> {
        let rest = source_key.strip_prefix(&self.source_prefix)?;
        Some(format!("{}{rest}", self.target_prefix))
    }
}

/// Outcome of one record that did not fail.
#[derive(Debug, Clone, PartialEq)]
pub enum SyncOutcome {
    Copied {
        bytes: u64,
        parts: u32,
        crc64: u64,
        seconds: f64,
    },
    /// The target already contains this object (an earlier or concurrent delivery copied it).
    AlreadySynced,
    Skipped {
        reason: String,
    },
    /// The source object was deleted before it could be copied.
    SourceMissing,
}

impl SyncOutcome {
    fn label(&self) -> &'static str {
        match self {
            Self::Copied { .. } => "copied",
            Self::AlreadySynced => "already_synced",
            Self::Skipped { .. } => "skipped",
            Self::SourceMissing => "source_missing",
        }
    }
}

/// A record that failed.
#[derive(Debug, Clone, thiserror::Error)]
pub enum SyncError {
    #[error(transparent)]
    InvalidRecord(#[from] EventError),

    #[error("failed to read {location}: {source}")]
    Source {
        location: String,
        source: Box<StorageError>,
    },

    #[error("failed to check {location}: {source}")]
    Target {
        location: String,
        source: Box<StorageError>,
    },

    #[error(transparent)]
    Transfer(#[from] TransferError),

    /// The target contains different content, which is left untouched.
    #[error(
        "conflict at {target_location}: it holds {target_size} bytes with CRC-64 {}, but {source_location} has {source_size} bytes with CRC-64 {} and ETag {}; remove or rename the target object to copy again",
        show(.target_crc64), show(.source_crc64), show(.source_etag)
    )]
    Conflict {
        source_location: String,
        target_location: String,
        source_size: u64,
        target_size: u64,
        source_crc64: Option<u64>,
        target_crc64: Option<u64>,
        source_etag: Option<String>,
    },
}

fn show<T: ToString>(value: &Option<T>) -> String {
    value
        .as_ref()
        .map_or_else(|| "unknown".to_string(), ToString::to_string)
}

impl SyncError {
    /// Returns true when delivering the record again may succeed.
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::InvalidRecord(_) | Self::Conflict { .. } => false,
            Self::Source { source, .. } | Self::Target { source, .. } => source.is_retryable(),
            Self::Transfer(error) => error.is_retryable(),
        }
    }
}

/// Copies the object of one record from `source` to `sink`.
///
/// The target is written with `forbid_overwrite`, so of two concurrent deliveries one writes and
/// the other finds the object and reports [`SyncOutcome::AlreadySynced`].
///
/// # Errors
/// [`SyncError::Conflict`] when the target contains different content, and the storage or
/// transfer error otherwise. A failed copy leaves no multipart upload behind.
pub async fn sync_record(
    source: &dyn ObjectSource,
    sink: &dyn ObjectSink,
    record: &S3ObjectRecord,
    settings: &SyncSettings,
) -> Result<SyncOutcome, SyncError> {
    if !record.is_object_created() {
        let reason = format!("event {} does not create an object", record.event_name);
        return Ok(SyncOutcome::Skipped { reason });
    }
    if let Some(bucket) = settings
        .source_bucket
        .as_deref()
        .filter(|b| *b != record.bucket)
    {
        tracing::warn!(
            key = record.key,
            event_bucket = record.bucket,
            source_bucket = bucket,
            "skipped an object of another bucket"
        );
        let reason = format!("bucket {} is not the source bucket {bucket}", record.bucket);
        return Ok(SyncOutcome::Skipped { reason });
    }
    let Some(target_key) = settings.target_key(&record.key) else {
        tracing::warn!(
            key = record.key,
            source_prefix = settings.source_prefix,
            "skipped an object outside the source prefix"
        );
        let reason = format!(
            "key is outside the source prefix {}",
            settings.source_prefix
        );
        return Ok(SyncOutcome::Skipped { reason });
    };
    let source_error = |error: StorageError| SyncError::Source {
        location: source.location(&record.key),
        source: Box::new(error),
    };
    let target_error = |error: StorageError| SyncError::Target {
        location: sink.location(&target_key),
        source: Box::new(error),
    };

    let Some(source_info) = source
        .head(&record.key)
        .await
        .or_else(not_found_as_none)
        .map_err(source_error)?
    else {
        return Ok(SyncOutcome::SourceMissing);
    };
    if let Some(target_info) = sink.head(&target_key).await.map_err(target_error)? {
        return compare(
            source,
            sink,
            record,
            &target_key,
            &source_info,
            &target_info,
        );
    }

    // Each part is read with its own ranged GET, and every range must come from the version
    // this HEAD saw.
    let info = source_info;
    let source_crc64 = known_crc64(&info);
    let mut metadata = BTreeMap::new();
    if let Some(etag) = &info.etag {
        metadata.insert(SOURCE_ETAG_METADATA_KEY.to_string(), etag.clone());
    }
    if let Some(crc64) = source_crc64 {
        metadata.insert(CRC64_METADATA_KEY.to_string(), crc64.to_string());
    }
    let options = PutOptions {
        metadata,
        forbid_overwrite: true,
        content_type: None,
    };
    let transfer_settings = settings.transfer_settings();
    let mut transfer = Transfer::new(sink, &target_key, info.size, &options, &transfer_settings);
    if let Some(crc64) = source_crc64 {
        transfer = transfer.expect_crc64(crc64);
    }

    match transfer
        .run_ranged(source, &record.key, info.etag.as_deref())
        .await
    {
        Ok(TransferOutcome::Finished(report)) => Ok(SyncOutcome::Copied {
            bytes: report.bytes,
            parts: report.parts,
            crc64: report.crc64,
            seconds: report.seconds,
        }),
        // No deadline was set, so the engine cannot pause.
        Ok(TransferOutcome::Paused(_)) => Ok(SyncOutcome::Skipped {
            reason: "copy paused without a deadline".to_string(),
        }),
        Err(error) => match error.storage_error().map(|storage| storage.kind) {
            Some(ErrorKind::AlreadyExists) => {
                // Another delivery wrote the object after our HEAD: it counts if it matches.
                let Some(target_info) = sink.head(&target_key).await.map_err(target_error)? else {
                    return Err(error.into());
                };
                compare(source, sink, record, &target_key, &info, &target_info)
            }
            Some(ErrorKind::NotFound) if matches!(error, TransferError::Source { .. }) => {
                Ok(SyncOutcome::SourceMissing)
            }
            _ => Err(error.into()),
        },
    }
}

fn not_found_as_none(error: StorageError) -> Result<Option<ObjectInfo>, StorageError> {
    if error.kind == ErrorKind::NotFound {
        Ok(None)
    } else {
        Err(error)
    }
}

/// Returns the CRC-64 a store reports for an object, or the one stored in its metadata.
fn known_crc64(info: &ObjectInfo) -> Option<u64> {
    info.crc64.or_else(|| {
        info.metadata
            .get(CRC64_METADATA_KEY)
            .and_then(|value| crate::checksum::parse_crc64(value))
    })
}

/// Decides whether an existing target contains the source object.
///
/// The target matches when the sizes agree, its CRC-64 (stored metadata or store-computed) is
/// known and consistent, and it equals the source's CRC-64 when the source has one, or else the
/// target's `source-etag` equals the source's ETag.
fn compare(
    source: &dyn ObjectSource,
    sink: &dyn ObjectSink,
    record: &S3ObjectRecord,
    target_key: &str,
    source_info: &ObjectInfo,
    target_info: &ObjectInfo,
) -> Result<SyncOutcome, SyncError> {
    let stored_crc64 = target_info
        .metadata
        .get(CRC64_METADATA_KEY)
        .and_then(|value| crate::checksum::parse_crc64(value));
    let target_crc64 = stored_crc64.or(target_info.crc64);
    let source_crc64 = known_crc64(source_info);
    let consistent = match (stored_crc64, target_info.crc64) {
        (Some(stored), Some(computed)) => stored == computed,
        _ => target_crc64.is_some(),
    };
    let same_content = match source_crc64 {
        Some(crc64) => target_crc64 == Some(crc64),
        None => {
            let copied_from = target_info.metadata.get(SOURCE_ETAG_METADATA_KEY);
            copied_from.is_some() && copied_from == source_info.etag.as_ref()
        }
    };

    if source_info.size == target_info.size && consistent && same_content {
        return Ok(SyncOutcome::AlreadySynced);
    }
    // NOTE: an S3 object re-uploaded with identical bytes but a new ETag also lands here, since
    // S3 reports no CRC-64/XZ to compare without reading the object again.
    Err(SyncError::Conflict {
        source_location: source.location(&record.key),
        target_location: sink.location(target_key),
        source_size: source_info.size,
        target_size: target_info.size,
        source_crc64,
        target_crc64,
        source_etag: source_info.etag.clone(),
    })
}

#[cfg(test)]
#[path = "sync_tests.rs"]
mod tests;
