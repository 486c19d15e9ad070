//! Handing an unfinished pull to a fresh invocation: the payload that carries the open S3
//! multipart upload, and the port that starts the invocation.

use std::sync::Mutex;

use async_trait::async_trait;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::transfer::TransferState;

/// Largest serialised payload sent: asynchronous Lambda invocations accept events of 256 KiB,
/// and the rest is left for the envelope.
pub const MAX_PAYLOAD_BYTES: usize = 250 * 1024;

/// What the next invocation needs to continue one pull. Sent as `{"continuation": {…}}`.
///
/// It carries no download URL, because a presigned URL is a credential until it expires; the
/// next invocation looks up a fresh one.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContinuationPayload {
    pub instance_id: String,
    pub backup_id: String,
    /// The backup's start, to look it up again within one hour either side.
    pub backup_start: DateTime<Utc>,
    pub backup_end: Option<DateTime<Utc>>,
    /// CRC-64/XZ of the whole backup from the first download's `x-oss-hash-crc64ecma` header.
    /// Every reopened download must report the same value.
    pub expected_crc64: u64,
    /// The number of the invocation that receives this payload, counting the first run as 1.
    pub run: u32,
    /// The S3 multipart upload: key, upload id, next part, bytes done and CRC-64 so far.
    pub state: TransferState,
}

impl ContinuationPayload {
    /// Returns the event that carries this payload.
    pub fn to_event(&self) -> serde_json::Value {
        serde_json::json!({ "continuation": self })
    }
}

/// A failed hand-over.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{message}")]
pub struct ContinuationError {
    pub message: String,
    /// True when trying the hand-over again may succeed (throttling, 5xx, network).
    pub retryable: bool,
}

/// Starts the next invocation of this function with a continuation payload.
#[async_trait]
pub trait Continuation: Send + Sync {
    /// Queues the invocation and returns once the service accepted it.
    async fn hand_over(&self, payload: &ContinuationPayload) -> Result<(), ContinuationError>;
}

/// A [`Continuation`] that only records payloads, for tests and for a caller that drives the
/// runs itself.
#[derive(Debug, Default)]
pub struct RecordedContinuations {
    payloads: Mutex<Vec<ContinuationPayload>>,
}

impl RecordedContinuations {
    /// Removes and returns the payloads recorded so far, oldest first.
    pub fn take(&self) -> Vec<ContinuationPayload> {
        std::mem::take(&mut *self.lock())
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<ContinuationPayload>> {
        self.payloads
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

#[async_trait]
impl Continuation for RecordedContinuations {
    async fn hand_over(&self, payload: &ContinuationPayload) -> Result<(), ContinuationError> {
        self.lock().push(payload.clone());
        Ok(())
    }
}
