//! The [`Reconciler`] of completed exports, over the sync engine.
//!
//! It lists every object under an export's S3 prefix and runs each through [`sync_record`], the
//! same code path as an S3 notification. That path HEADs the OSS copy, counts an object with the
//! same size and CRC-64 (or the same source ETag) as matched, copies a missing one with
//! `forbid_overwrite`, and reports different content as a conflict without touching it.

use std::sync::Mutex;

use async_trait::async_trait;
use futures::stream::{self, StreamExt};
use tokio::time::Instant;

use super::export_poll::{ReconcileCounts, Reconciler};
use super::sync::{SyncError, SyncOutcome, SyncSettings, sync_record};
use crate::events::S3ObjectRecord;
use crate::storage::{ListedObject, ObjectLister, ObjectSink, ObjectSource};

/// The event name given to listed objects, so that `sync_record` treats them as created.
const LISTED_EVENT_NAME: &str = "ObjectCreated:Put";

/// One object that the reconciliation could not bring into OSS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReconcileFailure {
    /// The S3 key.
    pub key: String,
    /// The error or outcome, as a sentence for logs and alerts.
    pub reason: String,
    /// True when OSS contains different content at the target key.
    pub conflict: bool,
}

/// Reconciles export objects of one S3 bucket with OSS through the sync engine.
///
/// An object already being copied when the deadline passes is finished, so one large object
/// can run past the deadline by the length of its copy.
pub struct SyncReconciler<'a> {
    bucket: String,
    lister: &'a dyn ObjectLister,
    source: &'a dyn ObjectSource,
    sink: &'a dyn ObjectSink,
    settings: &'a SyncSettings,
    failures: Mutex<Vec<ReconcileFailure>>,
}

impl<'a> SyncReconciler<'a> {
    /// Builds a reconciler for `bucket`, listed by `lister` and read by `source`, copying into
    /// `sink` with the prefixes of `settings`.
    pub fn new(
        bucket: impl Into<String>,
        lister: &'a dyn ObjectLister,
        source: &'a dyn ObjectSource,
        sink: &'a dyn ObjectSink,
        settings: &'a SyncSettings,
    ) -> Self {
        Self {
            bucket: bucket.into(),
            lister,
            source,
            sink,
            settings,
            failures: Mutex::new(Vec::new()),
        }
    }

    /// Returns the failures collected by every reconciliation so far and clears the list.
    pub fn take_failures(&self) -> Vec<ReconcileFailure> {
        let mut failures = self
            .failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        std::mem::take(&mut *failures)
    }

    fn record(&self, object: &ListedObject) -> S3ObjectRecord {
        S3ObjectRecord {
            bucket: self.bucket.clone(),
            key: object.key.clone(),
            size: object.size,
            etag: object.etag.clone(),
            sequencer: None,
            event_name: LISTED_EVENT_NAME.to_string(),
        }
    }

    /// Copies one object unless the deadline has passed; `None` means it was left for later.
    async fn reconcile_one(
        &self,
        object: ListedObject,
        deadline: Instant,
    ) -> Option<(String, Result<SyncOutcome, SyncError>)> {
        if Instant::now() >= deadline {
            return None;
        }
        let record = self.record(&object);
        let result = sync_record(self.source, self.sink, &record, self.settings).await;
        Some((object.key, result))
    }
}

#[async_trait]
impl Reconciler for SyncReconciler<'_> {
    async fn reconcile(
        &self,
        s3_key_prefix: &str,
        deadline: Instant,
    ) -> Result<ReconcileCounts, String> {
        let objects = self.lister.list(s3_key_prefix).await.map_err(|error| {
            format!(
                "failed to list s3://{}/{s3_key_prefix}: {error}",
                self.bucket
            )
        })?;
        let mut counts = ReconcileCounts {
            listed: objects.len() as u64,
            ..ReconcileCounts::default()
        };

        let runs = objects
            .into_iter()
            .map(|object| self.reconcile_one(object, deadline));
        let results: Vec<_> = stream::iter(runs)
            .buffer_unordered(self.settings.record_concurrency.max(1))
            .collect()
            .await;

        let mut failures = Vec::new();
        for result in results {
            let Some((key, result)) = result else {
                counts.remaining += 1;
                continue;
            };
            match result {
                Ok(SyncOutcome::AlreadySynced) => counts.matched += 1,
                Ok(SyncOutcome::Copied { bytes, .. }) => {
                    tracing::info!(key, bytes, "copied an export object missing from OSS");
                    counts.copied += 1;
                }
                Ok(outcome @ (SyncOutcome::Skipped { .. } | SyncOutcome::SourceMissing)) => {
                    counts.failed += 1;
                    let reason = match outcome {
                        SyncOutcome::Skipped { reason } => reason,
                        _ => "the object was deleted from S3 during the reconciliation".into(),
                    };
                    failures.push(ReconcileFailure {
                        key,
                        reason,
                        conflict: false,
                    });
                }
                Err(error) => {
                    counts.failed += 1;
                    tracing::error!(key, %error, "failed to reconcile an export object");
                    failures.push(ReconcileFailure {
                        key,
                        conflict: matches!(error, SyncError::Conflict { .. }),
                        reason: error.to_string(),
                    });
                }
            }
        }
        self.failures
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .extend(failures);
        Ok(counts)
    }
}
