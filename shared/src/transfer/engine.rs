//! The bounded multipart pipeline behind [`crate::transfer::copy`].

use std::collections::{BTreeMap, VecDeque};
use std::time::Instant;

use bytes::{Bytes, BytesMut};
use futures::stream::{FuturesUnordered, StreamExt};

use super::buffers::PartBuffers;
use super::progress::Progress;
use super::{
    CRC64_METADATA_KEY, PartRecord, ResumableCrc64, TransferError, TransferOutcome, TransferReport,
    TransferSettings, TransferState, plan_part_size, with_crc64_metadata,
};
use crate::checksum::crc64;
use crate::retry::retry;
use crate::storage::{
    ByteRange, ByteStream, ErrorKind, ObjectInfo, ObjectSink, ObjectSource, PutOptions,
    StorageError, UploadedPart, WriteOutcome,
};

/// The source of a copy's bytes.
enum Body<'b> {
    /// One stream from the first byte still to copy to the end.
    Stream(ByteStream),
    /// A source that serves byte ranges, read with one ranged GET per part.
    Ranged(RangedSource<'b>),
}

/// A source object read by ranges, and the version every range must come from.
#[derive(Clone, Copy)]
struct RangedSource<'b> {
    source: &'b dyn ObjectSource,
    key: &'b str,
    etag: Option<&'b str>,
}

impl RangedSource<'_> {
    /// Fails when a reply comes from another version of the object than the copy started
    /// with, because joining ranges of two versions would store bytes that never existed.
    fn check_version(&self, info: &ObjectInfo, size: u64) -> Result<(), StorageError> {
        let changed = |detail: String| {
            StorageError::new(
                ErrorKind::Permanent,
                "GetObject",
                self.source.location(self.key),
                format!("the object changed during the copy: {detail}; copy it again"),
            )
        };
        if info.size != size {
            return Err(changed(format!(
                "it had {size} bytes and now has {}",
                info.size
            )));
        }
        match (self.etag, info.etag.as_deref()) {
            (Some(expected), Some(found)) if expected != found => Err(changed(format!(
                "its ETag was {expected} and is now {found}"
            ))),
            _ => Ok(()),
        }
    }
}

/// One copy into one key, configured before it runs.
pub struct Transfer<'a> {
    sink: &'a dyn ObjectSink,
    key: &'a str,
    size: u64,
    options: &'a PutOptions,
    settings: &'a TransferSettings,
    resume: Option<TransferState>,
    deadline: Option<tokio::time::Instant>,
    expected_crc64: Option<u64>,
}

impl<'a> Transfer<'a> {
    /// Prepares a copy of exactly `size` bytes to `key`.
    pub fn new(
        sink: &'a dyn ObjectSink,
        key: &'a str,
        size: u64,
        options: &'a PutOptions,
        settings: &'a TransferSettings,
    ) -> Self {
        Self {
            sink,
            key,
            size,
            options,
            settings,
            resume: None,
            deadline: None,
            expected_crc64: None,
        }
    }

    /// Continues an unfinished multipart copy. The body passed to [`Transfer::run`] must start
    /// at `state.bytes_done`, and the saved parts are checked against ListParts first.
    pub fn resume_from(mut self, state: TransferState) -> Self {
        self.resume = Some(state);
        self
    }

    /// Stops at the first part boundary after `deadline`, keeping the upload open.
    pub fn pause_at(mut self, deadline: tokio::time::Instant) -> Self {
        self.deadline = Some(deadline);
        self
    }

    /// Fails before completing the upload unless the whole object has this CRC-64
    /// (for sources that publish one up front, such as an OSS download).
    pub fn expect_crc64(mut self, crc64: u64) -> Self {
        self.expected_crc64 = Some(crc64);
        self
    }

    /// Runs the copy.
    ///
    /// Objects no larger than one part go in one put, and larger ones in a multipart upload
    /// whose parts complete in ascending order however they finish. Each request is retried on
    /// transient errors. A single put writes the CRC-64 as `crc64ecma` metadata. A multipart
    /// upload takes user metadata only when it starts, before the CRC-64 is known unless the
    /// caller set it: after completing, the engine asks the store to replace the metadata in
    /// place (OSS copies the object onto itself), and where the store cannot, its own checksum
    /// is the record.
    ///
    /// # Errors
    /// Any failure or mismatch aborts the multipart upload and returns an error naming the key,
    /// the values compared and the upload id. An object completed with a checksum that does not
    /// match is deleted.
    pub async fn run(self, body: ByteStream) -> Result<TransferOutcome, TransferError> {
        self.run_body(Body::Stream(body)).await
    }

    /// Runs the copy like [`Transfer::run`], but reads each part with its own ranged GET of
    /// `key` in `source`, so up to `concurrency` parts are read and written at once. One TCP
    /// stream often carries less than several, which matters most between clouds. Every range
    /// must come from the object of the expected size and, when given, `etag`; a range that
    /// fails or ends short is read again. A resumed copy reads from `bytes_done` on.
    ///
    /// # Errors
    /// As [`Transfer::run`], and a source error when the object changed during the copy.
    pub async fn run_ranged(
        self,
        source: &dyn ObjectSource,
        key: &str,
        etag: Option<&str>,
    ) -> Result<TransferOutcome, TransferError> {
        self.run_body(Body::Ranged(RangedSource { source, key, etag }))
            .await
    }

    async fn run_body(self, body: Body<'_>) -> Result<TransferOutcome, TransferError> {
        let started = Instant::now();
        let state = match self.resume.clone() {
            Some(state) => {
                self.check_resume(&state).await?;
                state
            }
            None => {
                let part_size =
                    plan_part_size(self.size, self.settings.part_size, &self.settings.limits)
                        .map_err(|source| TransferError::ObjectTooLarge {
                            location: self.location(),
                            source,
                        })?;
                if self.size <= part_size {
                    let body = match body {
                        Body::Stream(stream) => stream,
                        Body::Ranged(ranged) => self.open_whole(ranged).await?,
                    };
                    return self
                        .put_whole(body, started)
                        .await
                        .map(TransferOutcome::Finished);
                }
                self.start_multipart(part_size).await?
            }
        };

        let upload_id = state.upload_id.clone();
        let result = self.upload_and_complete(state, body, started).await;
        if result.is_err() {
            self.abort(&upload_id).await;
        }
        result
    }

    async fn put_whole(
        &self,
        mut body: ByteStream,
        started: Instant,
    ) -> Result<TransferReport, TransferError> {
        let mut buffer = BytesMut::with_capacity(self.size as usize);
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|source| self.source_error(None, source))?;
            let read = (buffer.len() + chunk.len()) as u64;
            if read > self.size {
                return Err(self.size_mismatch(read, None));
            }
            buffer.extend_from_slice(&chunk);
        }
        if buffer.len() as u64 != self.size {
            return Err(self.size_mismatch(buffer.len() as u64, None));
        }

        let body = buffer.freeze();
        let computed = crc64(&body);
        self.check_expected_crc64(computed, None)?;
        let options = with_crc64_metadata(self.options, computed);
        let outcome = retry(&self.settings.retry, StorageError::is_retryable, |_| {
            self.sink.put(self.key, body.clone(), &options)
        })
        .await
        .map_err(|source| self.sink_error(None, source))?;
        self.check_reported_crc64(computed, outcome.crc64, None)?;

        Ok(TransferReport {
            bytes: self.size,
            parts: 1,
            crc64: computed,
            upload_id: None,
            seconds: started.elapsed().as_secs_f64(),
        })
    }

    /// Opens the whole object of a ranged source, for a copy that fits in one put.
    async fn open_whole(&self, ranged: RangedSource<'_>) -> Result<ByteStream, TransferError> {
        let opened = retry(
            &self.settings.retry,
            StorageError::is_retryable,
            |_| async {
                let (info, stream) = ranged.source.get(ranged.key, None).await?;
                ranged.check_version(&info, self.size)?;
                Ok(stream)
            },
        )
        .await;
        opened.map_err(|source| self.source_error(None, source))
    }

    async fn start_multipart(&self, part_size: u64) -> Result<TransferState, TransferError> {
        let upload_id = retry(&self.settings.retry, StorageError::is_retryable, |_| {
            self.sink.create_multipart(self.key, self.options)
        })
        .await
        .map_err(|source| self.sink_error(None, source))?;
        tracing::debug!(
            key = self.key,
            upload_id,
            size = self.size,
            part_size,
            "started multipart upload"
        );
        Ok(TransferState {
            key: self.key.to_string(),
            upload_id,
            size: self.size,
            part_size,
            next_part: 1,
            bytes_done: 0,
            crc64: 0,
            parts: Vec::new(),
        })
    }

    async fn upload_and_complete(
        &self,
        state: TransferState,
        body: Body<'_>,
        started: Instant,
    ) -> Result<TransferOutcome, TransferError> {
        let (state, paused) = match body {
            Body::Stream(stream) => self.upload_parts(state, stream).await?,
            Body::Ranged(ranged) => self.upload_ranged_parts(state, ranged).await?,
        };
        if paused {
            tracing::info!(
                key = self.key,
                upload_id = state.upload_id,
                bytes_done = state.bytes_done,
                next_part = state.next_part,
                "paused the copy at a part boundary"
            );
            return Ok(TransferOutcome::Paused(state));
        }

        let upload_id = Some(state.upload_id.as_str());
        let computed = state.crc64;
        self.check_expected_crc64(computed, upload_id)?;
        let parts: Vec<UploadedPart> = state.parts.iter().map(UploadedPart::from).collect();
        let options = with_crc64_metadata(self.options, computed);
        let completed = retry(&self.settings.retry, StorageError::is_retryable, |_| {
            self.sink
                .complete_multipart(self.key, &state.upload_id, &parts, &options)
        })
        .await;
        let outcome = match completed {
            Ok(outcome) => outcome,
            Err(source) if source.kind == ErrorKind::NoSuchUpload => self
                .completed_by_lost_reply(state.size, computed)
                .await
                .ok_or_else(|| self.sink_error(upload_id, source))?,
            Err(source) => return Err(self.sink_error(upload_id, source)),
        };
        if let Err(mismatch) = self.check_reported_crc64(computed, outcome.crc64, upload_id) {
            // The object exists already: remove it so no corrupt copy stays at the key.
            self.delete_corrupt().await;
            return Err(mismatch);
        }
        if !self.options.metadata.contains_key(CRC64_METADATA_KEY) {
            self.record_crc64(outcome.etag.as_deref(), &options).await;
        }

        Ok(TransferOutcome::Finished(TransferReport {
            bytes: state.size,
            parts: parts.len() as u32,
            crc64: computed,
            upload_id: Some(state.upload_id.clone()),
            seconds: started.elapsed().as_secs_f64(),
        }))
    }

    /// Streams the body into parts, at most `concurrency` in flight. The stream is read only
    /// while a slot is free, so at most one partial part waits in memory besides those in
    /// flight. Returns the updated state and whether the deadline stopped the copy.
    async fn upload_parts(
        &self,
        mut state: TransferState,
        mut body: ByteStream,
    ) -> Result<(TransferState, bool), TransferError> {
        let concurrency = self.settings.concurrency.max(1);
        let part_size = state.part_size as usize;
        let upload_id = state.upload_id.clone();
        let mut crc = ResumableCrc64::resume(state.crc64);
        let mut completed: BTreeMap<u32, UploadedPart> = BTreeMap::new();
        let mut in_flight = FuturesUnordered::new();
        // Each part fills a buffer of exactly `part_size` bytes, and a sent part's buffer is
        // filled again, so the copy holds the same few blocks from the first part to the last.
        let mut buffers = PartBuffers::new(part_size);
        let mut buffer = buffers.take();
        let mut ready: VecDeque<Bytes> = VecDeque::new();
        let mut bytes_read = state.bytes_done;
        let mut bytes_launched = 0u64;
        let mut next_part = state.next_part;
        let mut reading = true;
        let mut paused = false;
        let mut progress = Progress::new(self.settings.progress_interval, state.bytes_done);

        loop {
            while !paused && in_flight.len() < concurrency {
                let Some(part) = ready.pop_front() else { break };
                if self
                    .deadline
                    .is_some_and(|deadline| tokio::time::Instant::now() >= deadline)
                {
                    paused = true;
                    reading = false;
                    ready.clear();
                    buffer.clear();
                    break;
                }
                // The CRC covers parts in launch order, which is stream order.
                let part_crc64 = crc64(&part);
                crc.append(part_crc64, part.len() as u64);
                bytes_launched += part.len() as u64;
                in_flight.push(self.upload_part(&upload_id, next_part, part, part_crc64));
                next_part += 1;
            }
            if in_flight.is_empty() && ready.is_empty() && !reading {
                break;
            }

            let can_read = reading && ready.is_empty() && in_flight.len() < concurrency;
            tokio::select! {
                Some(result) = in_flight.next(), if !in_flight.is_empty() => {
                    let (part, body) = result?;
                    buffers.recycle(body);
                    progress.record_part(part.size);
                    completed.insert(part.part_number, part);
                }
                chunk = body.next(), if can_read => match chunk {
                    Some(Ok(chunk)) => {
                        bytes_read += chunk.len() as u64;
                        if bytes_read > state.size {
                            return Err(self.size_mismatch(bytes_read, Some(&upload_id)));
                        }
                        let mut rest: &[u8] = &chunk;
                        while !rest.is_empty() {
                            let take = rest.len().min(part_size - buffer.len());
                            buffer.extend_from_slice(&rest[..take]);
                            rest = &rest[take..];
                            if buffer.len() == part_size {
                                let full = std::mem::replace(&mut buffer, buffers.take());
                                ready.push_back(full.freeze());
                            }
                        }
                    }
                    Some(Err(source)) => return Err(self.source_error(Some(&upload_id), source)),
                    None => {
                        reading = false;
                        if bytes_read != state.size {
                            return Err(self.size_mismatch(bytes_read, Some(&upload_id)));
                        }
                        if !buffer.is_empty() {
                            ready.push_back(std::mem::take(&mut buffer).freeze());
                        }
                    }
                },
                else => break,
            }
            progress.log_if_due(self.key, &upload_id);
        }

        buffers.log_allocated(self.key, &upload_id);
        state.parts.extend(completed.values().map(PartRecord::from));
        state.bytes_done += bytes_launched;
        state.next_part = next_part;
        state.crc64 = crc.value();
        Ok((state, paused))
    }

    /// Reads and uploads the parts of a ranged source, at most `concurrency` at a time, each
    /// into its own part buffer. Parts launch in order, and a pause waits for every launched
    /// part, so the parts done always form one run from the first.
    async fn upload_ranged_parts(
        &self,
        mut state: TransferState,
        ranged: RangedSource<'_>,
    ) -> Result<(TransferState, bool), TransferError> {
        let concurrency = self.settings.concurrency.max(1);
        let upload_id = state.upload_id.clone();
        let mut buffers = PartBuffers::new(state.part_size as usize);
        // Parts finish in any order, so their CRC-64 values join the running one in part order.
        let mut finished: BTreeMap<u32, (UploadedPart, u64)> = BTreeMap::new();
        let mut in_flight = FuturesUnordered::new();
        let mut next_part = state.next_part;
        let mut offset = state.bytes_done;
        let mut paused = false;
        let mut progress = Progress::new(self.settings.progress_interval, state.bytes_done);

        loop {
            while !paused && in_flight.len() < concurrency && offset < state.size {
                if self
                    .deadline
                    .is_some_and(|deadline| tokio::time::Instant::now() >= deadline)
                {
                    paused = true;
                    break;
                }
                let length = state.part_size.min(state.size - offset);
                let range = ByteRange {
                    first: offset,
                    last: offset + length - 1,
                };
                in_flight.push(self.copy_range(
                    ranged,
                    &upload_id,
                    next_part,
                    range,
                    buffers.take(),
                ));
                offset += length;
                next_part += 1;
            }
            let Some(result) = in_flight.next().await else {
                break;
            };
            let (part, part_crc64, body) = result?;
            buffers.recycle(body);
            progress.record_part(part.size);
            finished.insert(part.part_number, (part, part_crc64));
            progress.log_if_due(self.key, &upload_id);
        }

        buffers.log_allocated(self.key, &upload_id);
        let mut crc = ResumableCrc64::resume(state.crc64);
        for (part, part_crc64) in finished.values() {
            crc.append(*part_crc64, part.size);
        }
        state
            .parts
            .extend(finished.values().map(|(part, _)| PartRecord::from(part)));
        state.bytes_done = offset;
        state.next_part = next_part;
        state.crc64 = crc.value();
        Ok((state, paused))
    }

    /// Reads `range` into `buffer` and uploads it as part `part_number`. A read that fails
    /// transiently or ends short is retried from the range's first byte.
    async fn copy_range(
        &self,
        ranged: RangedSource<'_>,
        upload_id: &str,
        part_number: u32,
        range: ByteRange,
        mut buffer: BytesMut,
    ) -> Result<(UploadedPart, u64, Bytes), TransferError> {
        let policy = &self.settings.retry;
        let mut attempt = 1;
        while let Err(error) = self.read_range(ranged, range, &mut buffer).await {
            if attempt >= policy.max_attempts || !error.is_retryable() {
                return Err(self.source_error(Some(upload_id), error));
            }
            let delay = policy.delay(attempt);
            tracing::warn!(
                key = self.key,
                part_number,
                attempt,
                delay_ms = delay.as_millis() as u64,
                %error,
                "reading the part again after a transient failure"
            );
            tokio::time::sleep(delay).await;
            attempt += 1;
        }
        let body = buffer.freeze();
        let part_crc64 = crc64(&body);
        let (part, body) = self
            .upload_part(upload_id, part_number, body, part_crc64)
            .await?;
        Ok((part, part_crc64, body))
    }

    /// Fills `buffer` with exactly the bytes of `range`.
    async fn read_range(
        &self,
        ranged: RangedSource<'_>,
        range: ByteRange,
        buffer: &mut BytesMut,
    ) -> Result<(), StorageError> {
        buffer.clear();
        let expected = (range.last - range.first + 1) as usize;
        let (info, mut stream) = ranged.source.get(ranged.key, Some(range)).await?;
        ranged.check_version(&info, self.size)?;
        while let Some(chunk) = stream.next().await {
            let chunk = chunk?;
            if buffer.len() + chunk.len() > expected {
                return Err(StorageError::new(
                    ErrorKind::Permanent,
                    "GetObject",
                    ranged.source.location(ranged.key),
                    format!(
                        "bytes {}-{} returned more than {expected} bytes; the source ignores Range",
                        range.first, range.last
                    ),
                ));
            }
            buffer.extend_from_slice(&chunk);
        }
        if buffer.len() != expected {
            return Err(StorageError::new(
                ErrorKind::Transient,
                "GetObject",
                ranged.source.location(ranged.key),
                format!(
                    "bytes {}-{} ended after {} of {expected} bytes",
                    range.first,
                    range.last,
                    buffer.len()
                ),
            ));
        }
        Ok(())
    }

    /// Uploads one part and returns it with its bytes, for the buffer to be filled again.
    ///
    /// A store that reports the part's CRC-64 (OSS does) must report `part_crc64`. A different
    /// value means the part arrived damaged, so it is sent again like any transient failure.
    async fn upload_part(
        &self,
        upload_id: &str,
        part_number: u32,
        body: Bytes,
        part_crc64: u64,
    ) -> Result<(UploadedPart, Bytes), TransferError> {
        let size = body.len() as u64;
        let mut part = retry(
            &self.settings.retry,
            StorageError::is_retryable,
            |_| async {
                let part = self
                    .sink
                    .upload_part(self.key, upload_id, part_number, body.clone())
                    .await?;
                match part.crc64 {
                    Some(reported) if reported != part_crc64 => Err(StorageError::new(
                        ErrorKind::Transient,
                        "UploadPart",
                        self.location(),
                        format!(
                            "part {part_number} of upload {upload_id} has CRC-64 {part_crc64}, \
                         but the store returned {reported}"
                        ),
                    )),
                    _ => Ok(part),
                }
            },
        )
        .await
        .map_err(|source| self.sink_error(Some(upload_id), source))?;
        // Complete must list what was sent, whatever the store echoed back.
        part.part_number = part_number;
        part.size = size;
        Ok((part, body))
    }

    /// Checks that the saved parts still exist in the upload with the same ETags.
    async fn check_resume(&self, state: &TransferState) -> Result<(), TransferError> {
        let mismatch = |detail: String| TransferError::ResumeMismatch {
            location: self.location(),
            upload_id: state.upload_id.clone(),
            detail,
        };
        if state.key != self.key || state.size != self.size {
            return Err(mismatch(format!(
                "saved state is for key {} of {} bytes",
                state.key, state.size
            )));
        }
        let expected_bytes: u64 = state.parts.iter().map(|part| part.size).sum();
        if expected_bytes != state.bytes_done || state.next_part as usize != state.parts.len() + 1 {
            return Err(mismatch(
                "saved parts do not add up to bytes_done and next_part".to_string(),
            ));
        }

        let listed = retry(&self.settings.retry, StorageError::is_retryable, |_| {
            self.sink.list_parts(self.key, &state.upload_id)
        })
        .await
        .map_err(|source| self.sink_error(Some(&state.upload_id), source))?;
        for saved in &state.parts {
            let found = listed
                .iter()
                .find(|part| part.part_number == saved.part_number);
            if found.is_none_or(|part| part.etag != saved.etag) {
                return Err(mismatch(format!(
                    "part {} is missing or has a different ETag",
                    saved.part_number
                )));
            }
        }
        Ok(())
    }

    /// Checks whether an earlier CompleteMultipartUpload succeeded although its reply was lost:
    /// the retry then meets `NoSuchUpload`, and the object already exists. It counts only with
    /// this copy's size and CRC-64 (reported by the store or in the object's metadata).
    async fn completed_by_lost_reply(&self, size: u64, computed: u64) -> Option<WriteOutcome> {
        let info = match self.sink.head(self.key).await {
            Ok(info) => info?,
            Err(error) => {
                tracing::warn!(key = self.key, %error, "failed to check the object after NoSuchUpload");
                return None;
            }
        };
        let stored_crc64 = info.crc64.or_else(|| {
            info.metadata
                .get(CRC64_METADATA_KEY)
                .and_then(|value| crate::checksum::parse_crc64(value))
        });
        if info.size != size || stored_crc64 != Some(computed) {
            return None;
        }
        tracing::info!(
            key = self.key,
            size,
            crc64 = computed,
            "the upload was completed by an attempt whose reply was lost"
        );
        Some(WriteOutcome {
            etag: info.etag,
            crc64: Some(computed),
        })
    }

    /// Deletes the object just completed with a wrong checksum, logging rather than returning
    /// a failure so the mismatch is what the caller sees.
    async fn delete_corrupt(&self) {
        let result = retry(&self.settings.retry, StorageError::is_retryable, |_| {
            self.sink.delete(self.key)
        })
        .await;
        match result {
            Ok(()) => tracing::warn!(
                key = self.key,
                "deleted the object whose checksum did not match"
            ),
            Err(error) => tracing::error!(
                key = self.key,
                %error,
                "failed to delete the object whose checksum did not match; delete it by hand"
            ),
        }
    }

    /// Writes the CRC-64, known only now, into the metadata of a multipart copy where the
    /// store can replace metadata in place. The copy is verified already, and the store's own
    /// checksum stays on the object, so a failure here is logged and the copy still counts.
    async fn record_crc64(&self, etag: Option<&str>, options: &PutOptions) {
        let Some(etag) = etag else {
            tracing::warn!(
                key = self.key,
                "no ETag after the upload, so the CRC-64 metadata was not written"
            );
            return;
        };
        let result = retry(&self.settings.retry, StorageError::is_retryable, |_| {
            self.sink.replace_metadata(self.key, etag, options)
        })
        .await;
        match result {
            Ok(true) => {
                tracing::debug!(key = self.key, "recorded the CRC-64 in the object metadata")
            }
            Ok(false) => {}
            Err(error) => tracing::warn!(
                key = self.key,
                %error,
                "failed to record the CRC-64 in the object metadata; the store's own checksum remains"
            ),
        }
    }

    /// Aborts the upload, logging rather than returning a failure so the original error wins.
    async fn abort(&self, upload_id: &str) {
        let result = retry(&self.settings.retry, StorageError::is_retryable, |_| {
            self.sink.abort_multipart(self.key, upload_id)
        })
        .await;
        match result {
            Ok(()) => tracing::warn!(
                key = self.key,
                upload_id,
                "aborted the multipart upload after a failed copy"
            ),
            Err(error) => tracing::error!(
                key = self.key,
                upload_id,
                %error,
                "failed to abort the multipart upload; it stays until aborted or removed by a lifecycle rule"
            ),
        }
    }

    fn check_expected_crc64(
        &self,
        computed: u64,
        upload_id: Option<&str>,
    ) -> Result<(), TransferError> {
        match self.expected_crc64 {
            Some(expected) if expected != computed => Err(TransferError::ChecksumMismatch {
                location: self.location(),
                computed,
                reported: expected,
                reported_by_sink: false,
                upload_id: upload_id.map(str::to_string),
            }),
            _ => Ok(()),
        }
    }

    fn check_reported_crc64(
        &self,
        computed: u64,
        reported: Option<u64>,
        upload_id: Option<&str>,
    ) -> Result<(), TransferError> {
        match reported {
            Some(reported) if reported != computed => Err(TransferError::ChecksumMismatch {
                location: self.location(),
                computed,
                reported,
                reported_by_sink: true,
                upload_id: upload_id.map(str::to_string),
            }),
            _ => Ok(()),
        }
    }

    fn location(&self) -> String {
        self.sink.location(self.key)
    }

    fn size_mismatch(&self, actual: u64, upload_id: Option<&str>) -> TransferError {
        TransferError::SizeMismatch {
            location: self.location(),
            expected: self.size,
            actual,
            upload_id: upload_id.map(str::to_string),
        }
    }

    fn source_error(&self, upload_id: Option<&str>, source: StorageError) -> TransferError {
        TransferError::Source {
            location: self.location(),
            upload_id: upload_id.map(str::to_string),
            source: Box::new(source),
        }
    }

    fn sink_error(&self, upload_id: Option<&str>, source: StorageError) -> TransferError {
        TransferError::Sink {
            location: self.location(),
            upload_id: upload_id.map(str::to_string),
            source: Box::new(source),
        }
    }
}
