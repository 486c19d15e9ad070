//! Errors of the copy engine, each naming the destination, the values involved and the upload id.

use crate::storage::StorageError;

/// A failed copy. Every variant that involved a multipart upload names its id; by the time the
/// error is returned that upload has been aborted, unless the variant says otherwise.
#[derive(Debug, Clone, thiserror::Error)]
pub enum TransferError {
    #[error("cannot copy to {location}: {source}")]
    ObjectTooLarge {
        location: String,
        #[source]
        source: super::sizing::ObjectTooLarge,
    },

    #[error("failed to read the source for {location} (upload id {}): {source}", upload_label(.upload_id))]
    Source {
        location: String,
        upload_id: Option<String>,
        #[source]
        source: Box<StorageError>,
    },

    #[error("failed to write {location} (upload id {}): {source}", upload_label(.upload_id))]
    Sink {
        location: String,
        upload_id: Option<String>,
        #[source]
        source: Box<StorageError>,
    },

    #[error(
        "size mismatch for {location}: expected {expected} bytes, read {actual} (upload id {})",
        upload_label(.upload_id)
    )]
    SizeMismatch {
        location: String,
        expected: u64,
        actual: u64,
        upload_id: Option<String>,
    },

    /// The CRC-64 computed over the stream differs from the one the destination or the caller
    /// expected. When `reported_by_sink` is true the object was already written.
    #[error(
        "CRC-64 mismatch for {location}: computed {computed} over the stream, {origin} {reported} (upload id {})",
        upload_label(.upload_id),
        origin = if *.reported_by_sink { "destination returned" } else { "expected" }
    )]
    ChecksumMismatch {
        location: String,
        computed: u64,
        reported: u64,
        reported_by_sink: bool,
        upload_id: Option<String>,
    },

    /// A resumed copy found the upload's parts differ from the saved state.
    #[error("cannot resume {location} (upload id {upload_id}): {detail}; start the copy again")]
    ResumeMismatch {
        location: String,
        upload_id: String,
        detail: String,
    },
}

fn upload_label(upload_id: &Option<String>) -> &str {
    upload_id.as_deref().unwrap_or("none, single put")
}

impl TransferError {
    /// Returns true when running the whole copy again may succeed: a transient store failure, a
    /// short or changed source, or a checksum mismatch (data damaged in transit).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Source { source, .. } | Self::Sink { source, .. } => source.is_retryable(),
            Self::SizeMismatch { .. } | Self::ChecksumMismatch { .. } => true,
            Self::ObjectTooLarge { .. } | Self::ResumeMismatch { .. } => false,
        }
    }

    /// Returns the storage error behind a source or sink failure.
    pub fn storage_error(&self) -> Option<&StorageError> {
        match self {
            Self::Source { source, .. } | Self::Sink { source, .. } => Some(source),
            _ => None,
        }
    }
}
