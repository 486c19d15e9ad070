//! The copy of one backup into S3: the skip check, the first part of each run, the engine, and
//! the hand-over of a paused copy to the next invocation.

use bytes::{Bytes, BytesMut};
use futures::StreamExt;

use super::continuation::{ContinuationPayload, MAX_PAYLOAD_BYTES};
use super::download::{self, BackupLink, Expected, OpenedDownload};
use super::target::object_metadata;
use super::{PullError, PullOutcome, PullPorts, PullSettings};
use crate::aliyun::Backup;
use crate::checksum::parse_crc64;
use crate::retry::retry;
use crate::storage::{ByteStream, PutOptions, StorageError};
use crate::transfer::{
    CRC64_METADATA_KEY, PartRecord, ResumableCrc64, Transfer, TransferError, TransferOutcome,
    TransferState, plan_part_size, restore_parts,
};

/// One backup being copied, with everything a run needs to know about it.
pub(super) struct BackupCopy<'a> {
    pub ports: &'a PullPorts,
    pub settings: &'a PullSettings,
    pub backup: &'a Backup,
    pub key: String,
    /// The number of this invocation for this backup, 1 for the first.
    pub run: u32,
}

impl BackupCopy<'_> {
    fn link(&self) -> BackupLink {
        BackupLink {
            catalog: self.ports.catalog.clone(),
            instance_id: self.backup.instance_id.clone(),
            backup_id: self.backup.backup_id.clone(),
            backup_start: self.backup.start,
            network: self.settings.validation.network,
            expiry_margin: self.settings.url_expiry_margin,
        }
    }

    fn storage_error(&self, source: StorageError) -> PullError {
        PullError::Storage {
            instance_id: self.backup.instance_id.clone(),
            backup_id: self.backup.backup_id.clone(),
            source,
        }
    }

    fn transfer_error(&self, source: TransferError) -> PullError {
        PullError::Transfer {
            instance_id: self.backup.instance_id.clone(),
            backup_id: self.backup.backup_id.clone(),
            source,
        }
    }

    fn invalid(&self, reason: String) -> PullError {
        PullError::InvalidDownload {
            instance_id: self.backup.instance_id.clone(),
            backup_id: self.backup.backup_id.clone(),
            reason,
        }
    }

    /// Starts the copy: opens the download, checks it against the listing, skips a backup
    /// already in S3 with the same size and CRC-64, and copies it otherwise.
    pub async fn start(
        &self,
        url: String,
        deadline: tokio::time::Instant,
    ) -> Result<PullOutcome, PullError> {
        let opened = download::open(
            self.ports.download.clone(),
            self.link(),
            url,
            0,
            Expected::default(),
            self.settings.transfer.retry,
        )
        .await
        .map_err(|source| self.storage_error(source))?;

        if opened.size != self.backup.size_bytes {
            return Err(self.invalid(format!(
                "download has {} bytes but BackupSize is {}",
                opened.size, self.backup.size_bytes
            )));
        }
        let Some(crc64) = opened.crc64 else {
            return Err(self.invalid(
                "download has no x-oss-hash-crc64ecma header to verify the copy against".into(),
            ));
        };
        let api_checksum_matches = self.compare_api_checksum(crc64);

        if self.already_pulled(crc64).await? {
            tracing::info!(
                instance_id = self.backup.instance_id,
                backup_id = self.backup.backup_id,
                key = self.key,
                "backup already in S3 with the same size and CRC-64"
            );
            return Ok(PullOutcome::AlreadyPulled {
                key: self.key.clone(),
            });
        }

        let options = PutOptions {
            metadata: object_metadata(self.backup, crc64),
            forbid_overwrite: false,
            content_type: Some("application/octet-stream".into()),
        };
        let transfer = &self.settings.transfer;
        let part_size = plan_part_size(opened.size, transfer.part_size, &transfer.limits).map_err(
            |source| {
                self.transfer_error(TransferError::ObjectTooLarge {
                    location: self.ports.sink.location(&self.key),
                    source,
                })
            },
        )?;

        if opened.size <= part_size {
            let outcome = Transfer::new(
                self.ports.sink.as_ref(),
                &self.key,
                opened.size,
                &options,
                transfer,
            )
            .expect_crc64(crc64)
            .run(opened.body)
            .await
            .map_err(|source| self.transfer_error(source))?;
            return self.finish(outcome, crc64, api_checksum_matches).await;
        }

        let upload_id = retry(&transfer.retry, StorageError::is_retryable, |_| {
            self.ports.sink.create_multipart(&self.key, &options)
        })
        .await
        .map_err(|source| self.storage_error(source))?;
        let state = TransferState {
            key: self.key.clone(),
            upload_id,
            size: opened.size,
            part_size,
            next_part: 1,
            bytes_done: 0,
            crc64: 0,
            parts: Vec::new(),
        };
        self.run_multipart(
            state,
            opened,
            crc64,
            &options,
            deadline,
            api_checksum_matches,
        )
        .await
    }

    /// Continues a paused copy from `state` with a fresh download URL.
    pub async fn resume(
        &self,
        mut state: TransferState,
        crc64: u64,
        deadline: tokio::time::Instant,
    ) -> Result<PullOutcome, PullError> {
        // Another run may have pulled the backup meanwhile and aborted this upload with the
        // other abandoned ones (see `abort_abandoned_uploads`).
        if self.already_pulled(crc64).await? {
            return Ok(PullOutcome::AlreadyPulled {
                key: self.key.clone(),
            });
        }
        restore_parts(
            self.ports.sink.as_ref(),
            &mut state,
            &self.settings.transfer.retry,
        )
        .await
        .map_err(|source| self.transfer_error(source))?;
        let link = self.link();
        let url = link
            .fresh_url()
            .await
            .map_err(|source| self.storage_error(source))?;
        let opened = download::open(
            self.ports.download.clone(),
            link,
            url,
            state.bytes_done,
            Expected {
                size: Some(state.size),
                crc64: Some(crc64),
            },
            self.settings.transfer.retry,
        )
        .await
        .map_err(|source| self.storage_error(source))?;
        // The metadata was written when the upload started; it is passed again because the
        // engine hands it to CompleteMultipartUpload.
        let options = PutOptions {
            metadata: object_metadata(self.backup, crc64),
            forbid_overwrite: false,
            content_type: Some("application/octet-stream".into()),
        };
        self.run_multipart(state, opened, crc64, &options, deadline, None)
            .await
    }

    /// Uploads the next part from the opened download, then lets the engine read the rest by
    /// ranges until the deadline, one ranged GET per part and `concurrency` at once. The first
    /// part is uploaded whatever the deadline, so every run advances the copy.
    async fn run_multipart(
        &self,
        mut state: TransferState,
        opened: OpenedDownload,
        crc64: u64,
        options: &PutOptions,
        deadline: tokio::time::Instant,
        api_checksum_matches: Option<bool>,
    ) -> Result<PullOutcome, PullError> {
        let sink = self.ports.sink.as_ref();
        let transfer = &self.settings.transfer;
        match self.upload_next_part(&mut state, opened.body).await {
            // The rest of the first response is not read, because the ranges below cover it.
            Ok(rest) => drop(rest),
            Err(error) => {
                let _ = sink.abort_multipart(&self.key, &state.upload_id).await;
                return Err(self.transfer_error(error));
            }
        }
        let ranged = download::RangedDownload::new(
            self.ports.download.clone(),
            self.link(),
            opened.url,
            state.size,
            crc64,
            transfer.retry,
        );
        let outcome = Transfer::new(sink, &self.key, state.size, options, transfer)
            .resume_from(state)
            .pause_at(deadline)
            .expect_crc64(crc64)
            .run_ranged(&ranged, &self.key, None)
            .await
            .map_err(|source| self.transfer_error(source))?;
        self.finish(outcome, crc64, api_checksum_matches).await
    }

    /// Reads one part from `body`, uploads it and records it in `state`. Returns the rest of the
    /// body, starting at the new `state.bytes_done`.
    async fn upload_next_part(
        &self,
        state: &mut TransferState,
        mut body: ByteStream,
    ) -> Result<ByteStream, TransferError> {
        let location = self.ports.sink.location(&self.key);
        let upload_id = state.upload_id.clone();
        let length = state.part_size.min(state.size - state.bytes_done) as usize;
        if length == 0 {
            return Ok(body);
        }
        let mut part = BytesMut::with_capacity(length);
        let mut rest = Bytes::new();
        while part.len() < length {
            let Some(chunk) = body.next().await else {
                return Err(TransferError::SizeMismatch {
                    location,
                    expected: state.size,
                    actual: state.bytes_done + part.len() as u64,
                    upload_id: Some(upload_id),
                });
            };
            let mut chunk = chunk.map_err(|source| TransferError::Source {
                location: location.clone(),
                upload_id: Some(upload_id.clone()),
                source: Box::new(source),
            })?;
            let wanted = length - part.len();
            if chunk.len() > wanted {
                rest = chunk.split_off(wanted);
            }
            part.extend_from_slice(&chunk);
        }

        let part = part.freeze();
        let part_number = state.next_part;
        let uploaded = retry(
            &self.settings.transfer.retry,
            StorageError::is_retryable,
            |_| {
                self.ports
                    .sink
                    .upload_part(&self.key, &upload_id, part_number, part.clone())
            },
        )
        .await
        .map_err(|source| TransferError::Sink {
            location: location.clone(),
            upload_id: Some(upload_id.clone()),
            source: Box::new(source),
        })?;
        let mut crc = ResumableCrc64::resume(state.crc64);
        crc.update(&part);
        state.crc64 = crc.value();
        state.parts.push(PartRecord {
            part_number,
            etag: uploaded.etag,
            size: length as u64,
            crc64: uploaded.crc64,
        });
        state.next_part += 1;
        state.bytes_done += length as u64;

        let rest: ByteStream = if rest.is_empty() {
            body
        } else {
            Box::pin(futures::stream::iter([Ok(rest)]).chain(body))
        };
        Ok(rest)
    }

    /// Reports a finished copy, or hands a paused one to the next invocation.
    async fn finish(
        &self,
        outcome: TransferOutcome,
        crc64: u64,
        api_checksum_matches: Option<bool>,
    ) -> Result<PullOutcome, PullError> {
        match outcome {
            TransferOutcome::Finished(report) => {
                self.abort_abandoned_uploads(report.upload_id.as_deref())
                    .await;
                tracing::info!(
                    instance_id = self.backup.instance_id,
                    backup_id = self.backup.backup_id,
                    key = self.key,
                    bytes = report.bytes,
                    parts = report.parts,
                    crc64 = report.crc64,
                    runs = self.run,
                    "backup pulled into S3"
                );
                Ok(PullOutcome::Pulled {
                    key: self.key.clone(),
                    bytes: report.bytes,
                    parts: report.parts,
                    crc64: report.crc64,
                    runs: self.run,
                    seconds: report.seconds,
                    api_checksum_matches,
                })
            }
            TransferOutcome::Paused(state) => self.hand_over(state, crc64).await,
        }
    }

    async fn hand_over(&self, state: TransferState, crc64: u64) -> Result<PullOutcome, PullError> {
        let payload = ContinuationPayload {
            instance_id: self.backup.instance_id.clone(),
            backup_id: self.backup.backup_id.clone(),
            backup_start: self.backup.start,
            backup_end: self.backup.end,
            expected_crc64: crc64,
            run: self.run + 1,
            state,
        };
        let upload_id = payload.state.upload_id.clone();
        let failed = |message: String, retryable: bool| PullError::Continuation {
            instance_id: self.backup.instance_id.clone(),
            backup_id: self.backup.backup_id.clone(),
            upload_id: upload_id.clone(),
            message,
            retryable,
        };
        let payload = fit_in_one_event(payload).map_err(|size| {
            failed(
                format!(
                    "continuation payload of {size} bytes exceeds {MAX_PAYLOAD_BYTES} even without its part list"
                ),
                false,
            )
        })?;
        self.ports
            .continuation
            .hand_over(&payload)
            .await
            .map_err(|error| failed(error.message.clone(), error.retryable))?;
        tracing::info!(
            instance_id = payload.instance_id,
            backup_id = payload.backup_id,
            key = self.key,
            upload_id = payload.state.upload_id,
            bytes_done = payload.state.bytes_done,
            next_part = payload.state.next_part,
            next_run = payload.run,
            "handed the paused pull to a new invocation"
        );
        Ok(PullOutcome::Continued {
            key: self.key.clone(),
            upload_id: payload.state.upload_id.clone(),
            bytes_done: payload.state.bytes_done,
            next_part: payload.state.next_part,
            next_run: payload.run,
        })
    }

    /// Returns whether the API's `Checksum` equals the download's CRC-64, or `None` when the
    /// API sent none or one that is not a decimal number. The API's CRC variant is not
    /// documented, so a mismatch is only logged.
    fn compare_api_checksum(&self, crc64: u64) -> Option<bool> {
        let reported = parse_crc64(self.backup.checksum.as_deref()?)?;
        let matches = reported == crc64;
        if !matches {
            tracing::warn!(
                instance_id = self.backup.instance_id,
                backup_id = self.backup.backup_id,
                api_checksum = reported,
                download_crc64 = crc64,
                "the API's Checksum differs from the download's x-oss-hash-crc64ecma"
            );
        }
        Some(matches)
    }

    /// Aborts the other open multipart uploads of this backup's key, now that the backup is in
    /// S3. They belong to runs that died mid-copy, such as one killed by a crash or an
    /// out-of-memory stop, and no run needs them any more: a continuation that still names
    /// one finds the backup pulled before it reads the upload. Failures are only logged, and
    /// the bucket's lifecycle rule removes what remains.
    async fn abort_abandoned_uploads(&self, completed: Option<&str>) {
        let sink = self.ports.sink.as_ref();
        let pending = match sink.list_pending_uploads(&self.key).await {
            Ok(pending) => pending,
            Err(error) => {
                tracing::warn!(key = self.key, %error, "failed to list abandoned uploads of the pulled backup");
                return;
            }
        };
        let abandoned = pending.into_iter().filter(|upload| {
            upload.key == self.key && Some(upload.upload_id.as_str()) != completed
        });
        for upload in abandoned {
            match sink.abort_multipart(&upload.key, &upload.upload_id).await {
                Ok(()) => tracing::warn!(
                    key = self.key,
                    upload_id = upload.upload_id,
                    "aborted an abandoned multipart upload of the pulled backup"
                ),
                Err(error) => tracing::warn!(
                    key = self.key,
                    upload_id = upload.upload_id,
                    %error,
                    "failed to abort an abandoned multipart upload of the pulled backup"
                ),
            }
        }
    }

    /// Returns true when S3 holds the backup with the same size and stored CRC-64.
    async fn already_pulled(&self, crc64: u64) -> Result<bool, PullError> {
        let existing = retry(
            &self.settings.transfer.retry,
            StorageError::is_retryable,
            |_| self.ports.sink.head(&self.key),
        )
        .await
        .map_err(|source| self.storage_error(source))?;
        let Some(existing) = existing else {
            return Ok(false);
        };
        let stored = existing
            .metadata
            .get(CRC64_METADATA_KEY)
            .and_then(|text| parse_crc64(text));
        let same = existing.size == self.backup.size_bytes && stored == Some(crc64);
        if !same {
            tracing::warn!(
                key = self.key,
                size = existing.size,
                stored_crc64 = stored,
                expected_size = self.backup.size_bytes,
                expected_crc64 = crc64,
                "an object at the key differs from the backup; copying it again"
            );
        }
        Ok(same)
    }
}

/// Returns the payload as it is when it fits in one Lambda event, otherwise without its part
/// list, which the next run lists from S3 again. Returns the size when even that is too big.
pub(super) fn fit_in_one_event(payload: ContinuationPayload) -> Result<ContinuationPayload, usize> {
    let size = |payload: &ContinuationPayload| payload.to_event().to_string().len();
    if size(&payload) <= MAX_PAYLOAD_BYTES {
        return Ok(payload);
    }
    let compact = ContinuationPayload {
        state: payload.state.without_parts(),
        ..payload
    };
    match size(&compact) {
        compact_size if compact_size <= MAX_PAYLOAD_BYTES => Ok(compact),
        compact_size => Err(compact_size),
    }
}
