use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;

use super::*;
use crate::checksum::crc64;
use crate::storage::memory::{Fault, FaultAction, MemoryStore, Operation};
use crate::storage::{ErrorKind, ObjectSink, ObjectSource, StorageError};

const PART: u64 = 1024;
const KEY: &str = "iotdb-backup/mysql/db/table/part-00000.gz.parquet";

fn settings(concurrency: usize) -> TransferSettings {
    TransferSettings {
        part_size: PART,
        concurrency,
        retry: RetryPolicy {
            max_attempts: 3,
            base_delay: Duration::from_millis(1),
            max_delay: Duration::from_millis(2),
        },
        progress_interval: Duration::from_secs(10),
        limits: PartLimits {
            min_part_size: PART,
            ..PartLimits::OSS
        },
    }
}

fn store() -> MemoryStore {
    MemoryStore::new("target").with_min_part_size(PART)
}

fn sample(len: usize) -> Bytes {
    (0..len)
        .map(|i| (i.wrapping_mul(7919) % 251) as u8)
        .collect::<Vec<u8>>()
        .into()
}

/// Streams `data` in chunks of `chunk` bytes.
fn body(data: &Bytes, chunk: usize) -> ByteStream {
    let chunks: Vec<Result<Bytes, StorageError>> = data
        .chunks(chunk)
        .map(|piece| Ok(Bytes::copy_from_slice(piece)))
        .collect();
    Box::pin(futures::stream::iter(chunks))
}

async fn run_copy(
    sink: &MemoryStore,
    data: &Bytes,
    settings: &TransferSettings,
) -> Result<TransferReport, TransferError> {
    copy(
        sink,
        KEY,
        data.len() as u64,
        body(data, 300),
        &PutOptions::default(),
        settings,
    )
    .await
}

#[tokio::test]
async fn parts_complete_in_ascending_order_when_finishing_in_reverse() {
    // Later parts yield fewer times, so they finish first.
    let sink = store().with_part_yields(|part| 100 - part * 10);
    let data = sample(8 * PART as usize + 100);

    let report = run_copy(&sink, &data, &settings(9))
        .await
        .expect("copy succeeds");

    let order = sink.part_completion_order();
    assert_eq!(order.len(), 9);
    assert_ne!(
        order,
        (1..=9).collect::<Vec<u32>>(),
        "parts should have finished out of order"
    );
    assert_eq!(sink.object(KEY), Some(data.clone()));
    assert_eq!(report.parts, 9);
    assert_eq!(report.crc64, crc64(&data));
    assert_eq!(report.upload_id.as_deref(), Some("upload-1"));
}

#[tokio::test]
async fn in_flight_parts_never_exceed_concurrency() {
    let sink = store().with_part_yields(|part| part % 5 * 3 + 1);
    let data = sample(40 * PART as usize);

    run_copy(&sink, &data, &settings(3))
        .await
        .expect("copy succeeds");

    assert_eq!(sink.max_parts_in_flight(), 3);
    assert_eq!(sink.calls_of(Operation::UploadPart).len(), 40);
    assert_eq!(sink.object(KEY), Some(data));
}

#[tokio::test]
async fn transient_part_failure_is_retried() {
    let sink = store();
    sink.inject(
        Fault::new(
            Operation::UploadPart,
            FaultAction::Fail(ErrorKind::Transient),
        )
        .on_part(3)
        .times(1),
    );
    let data = sample(5 * PART as usize);

    run_copy(&sink, &data, &settings(2))
        .await
        .expect("copy succeeds after one retry");

    let part_three_calls = sink
        .calls_of(Operation::UploadPart)
        .iter()
        .filter(|call| call.part_number == Some(3))
        .count();
    assert_eq!(part_three_calls, 2);
    assert_eq!(sink.object(KEY), Some(data));
}

#[tokio::test]
async fn part_crc_mismatch_resends_part() {
    let sink = store();
    sink.inject(
        Fault::new(Operation::UploadPart, FaultAction::ReportCrc64(42))
            .on_part(2)
            .times(1),
    );
    let data = sample(4 * PART as usize);

    let report = run_copy(&sink, &data, &settings(2))
        .await
        .expect("copy succeeds once the part is sent again");

    let part_two_calls = sink
        .calls_of(Operation::UploadPart)
        .iter()
        .filter(|call| call.part_number == Some(2))
        .count();
    assert_eq!(part_two_calls, 2);
    assert_eq!(report.crc64, crc64(&data));
    assert_eq!(sink.object(KEY), Some(data));
}

#[tokio::test]
async fn persistent_part_crc_mismatch_aborts() {
    let sink = store();
    sink.inject(Fault::new(Operation::UploadPart, FaultAction::ReportCrc64(42)).on_part(3));
    let data = sample(4 * PART as usize);

    let error = run_copy(&sink, &data, &settings(2))
        .await
        .expect_err("copy fails");

    let part_three = &data[2 * PART as usize..3 * PART as usize];
    let message = error.to_string();
    assert!(message.contains("part 3"), "{message}");
    assert!(
        message.contains(&crc64(part_three).to_string()),
        "{message}"
    );
    assert!(message.contains("returned 42"), "{message}");
    // Every attempt the retry policy allows was made before giving up.
    let part_three_calls = sink
        .calls_of(Operation::UploadPart)
        .iter()
        .filter(|call| call.part_number == Some(3))
        .count();
    assert_eq!(part_three_calls, 3);
    assert_eq!(sink.calls_of(Operation::AbortMultipartUpload).len(), 1);
    assert!(sink.object(KEY).is_none());
}

#[tokio::test]
async fn permanent_part_failure_aborts_upload() {
    let sink = store();
    sink.inject(
        Fault::new(
            Operation::UploadPart,
            FaultAction::Fail(ErrorKind::Permanent),
        )
        .on_part(2),
    );
    let data = sample(5 * PART as usize);

    let error = run_copy(&sink, &data, &settings(2))
        .await
        .expect_err("copy fails");

    assert!(matches!(&error, TransferError::Sink { upload_id: Some(id), .. } if id == "upload-1"));
    assert!(!error.is_retryable());
    let part_two_calls = sink
        .calls_of(Operation::UploadPart)
        .iter()
        .filter(|call| call.part_number == Some(2))
        .count();
    assert_eq!(part_two_calls, 1, "permanent failures are not retried");
    assert_eq!(sink.calls_of(Operation::AbortMultipartUpload).len(), 1);
    assert!(sink.pending_upload_ids().is_empty());
    assert!(sink.object(KEY).is_none());
}

#[tokio::test]
async fn crc_mismatch_from_sink_fails_with_both_values() {
    let sink = store();
    sink.inject(Fault::new(
        Operation::CompleteMultipartUpload,
        FaultAction::ReportCrc64(42),
    ));
    let data = sample(3 * PART as usize);

    let error = run_copy(&sink, &data, &settings(2))
        .await
        .expect_err("copy fails");

    let message = error.to_string();
    assert!(message.contains(&crc64(&data).to_string()), "{message}");
    assert!(message.contains("returned 42"), "{message}");
    assert!(message.contains("upload-1"), "{message}");
    assert!(message.contains(KEY), "{message}");
    assert!(error.is_retryable());
    assert_eq!(sink.calls_of(Operation::AbortMultipartUpload).len(), 1);
    // The completed object with the wrong checksum is removed.
    assert_eq!(sink.calls_of(Operation::DeleteObject).len(), 1);
    assert!(sink.object(KEY).is_none());
}

#[tokio::test]
async fn multipart_copy_records_its_crc_in_the_metadata_afterwards() {
    let sink = store();
    let data = sample(3 * PART as usize + 17);

    run_copy(&sink, &data, &settings(2))
        .await
        .expect("copy succeeds");

    assert_eq!(sink.calls_of(Operation::CopyObject).len(), 1);
    let metadata = sink.object_metadata(KEY).unwrap_or_default();
    assert_eq!(
        metadata.get(CRC64_METADATA_KEY),
        Some(&crc64(&data).to_string())
    );
}

#[tokio::test]
async fn a_failed_metadata_update_leaves_the_verified_copy_in_place() {
    let sink = store();
    sink.inject(Fault::new(
        Operation::CopyObject,
        FaultAction::Fail(ErrorKind::Permanent),
    ));
    let data = sample(3 * PART as usize + 17);

    let report = run_copy(&sink, &data, &settings(2))
        .await
        .expect("copy succeeds");

    assert_eq!(report.crc64, crc64(&data));
    assert_eq!(sink.object(KEY), Some(data));
    let metadata = sink.object_metadata(KEY).unwrap_or_default();
    assert!(!metadata.contains_key(CRC64_METADATA_KEY));
}

#[tokio::test]
async fn expected_crc_mismatch_aborts_before_complete() {
    let sink = store();
    let data = sample(3 * PART as usize);
    let options = PutOptions::default();
    let settings = settings(2);

    let transfer =
        Transfer::new(&sink, KEY, data.len() as u64, &options, &settings).expect_crc64(7);
    let error = transfer
        .run(body(&data, 500))
        .await
        .expect_err("copy fails");

    assert!(matches!(
        error,
        TransferError::ChecksumMismatch {
            reported: 7,
            reported_by_sink: false,
            ..
        }
    ));
    assert!(sink.calls_of(Operation::CompleteMultipartUpload).is_empty());
    assert!(sink.pending_upload_ids().is_empty());
    assert!(sink.object(KEY).is_none());
}

#[tokio::test]
async fn zero_byte_object_uses_single_put() {
    let sink = store();

    let report = run_copy(&sink, &Bytes::new(), &settings(2))
        .await
        .expect("copy succeeds");

    assert_eq!(sink.calls_of(Operation::PutObject).len(), 1);
    assert!(sink.calls_of(Operation::CreateMultipartUpload).is_empty());
    assert_eq!(sink.object(KEY), Some(Bytes::new()));
    assert_eq!(report.crc64, 0);
    assert_eq!(report.upload_id, None);
    let metadata = sink.object_metadata(KEY).unwrap_or_default();
    assert_eq!(
        metadata.get(CRC64_METADATA_KEY).map(String::as_str),
        Some("0")
    );
}

#[tokio::test]
async fn object_of_one_part_uses_single_put_with_crc_metadata() {
    let sink = store();
    let data = sample(PART as usize);

    let report = run_copy(&sink, &data, &settings(2))
        .await
        .expect("copy succeeds");

    assert_eq!(sink.calls_of(Operation::PutObject).len(), 1);
    assert_eq!(report.parts, 1);
    let metadata = sink.object_metadata(KEY).unwrap_or_default();
    assert_eq!(
        metadata.get(CRC64_METADATA_KEY),
        Some(&crc64(&data).to_string())
    );
}

#[tokio::test]
async fn short_source_aborts_with_size_mismatch() {
    let sink = store();
    let data = sample(3 * PART as usize);
    let options = PutOptions::default();

    let error = copy(
        &sink,
        KEY,
        data.len() as u64 + 10,
        body(&data, 256),
        &options,
        &settings(2),
    )
    .await
    .expect_err("copy fails");

    assert!(
        matches!(error, TransferError::SizeMismatch { expected, actual, .. } if expected == data.len() as u64 + 10 && actual == data.len() as u64)
    );
    assert!(sink.pending_upload_ids().is_empty());
}

#[tokio::test]
async fn source_stream_error_aborts_upload() {
    let source = MemoryStore::new("source").with_chunk_size(100);
    let data = sample(4 * PART as usize);
    source.insert_object("mysql/a", data.clone(), Default::default());
    source.inject(Fault::new(
        Operation::GetObject,
        FaultAction::CutBodyAfter(2500),
    ));
    let sink = store();
    let (_, stream) = crate::storage::ObjectSource::get(&source, "mysql/a", None)
        .await
        .expect("get succeeds");

    let error = copy(
        &sink,
        KEY,
        data.len() as u64,
        stream,
        &PutOptions::default(),
        &settings(2),
    )
    .await
    .expect_err("copy fails");

    assert!(
        matches!(&error, TransferError::Source { source, .. } if source.kind == ErrorKind::Transient)
    );
    assert!(error.is_retryable());
    assert!(sink.pending_upload_ids().is_empty());
}

#[tokio::test]
async fn rejects_object_above_destination_maximum() {
    let sink = store();
    let mut settings = settings(2);
    settings.limits.max_object_size = 10 * PART;

    let error = copy(
        &sink,
        KEY,
        10 * PART + 1,
        body(&Bytes::new(), 1),
        &PutOptions::default(),
        &settings,
    )
    .await
    .expect_err("copy fails");

    assert!(matches!(error, TransferError::ObjectTooLarge { .. }));
    assert!(sink.calls().is_empty());
}

/// Streams `data` from `offset`, advancing the paused tokio clock by one second per chunk so a
/// deadline passes at a known point of the stream.
fn clock_advancing_body(data: Bytes, offset: usize, chunk: usize) -> ByteStream {
    let stream = futures::stream::unfold(offset, move |position| {
        let data = data.clone();
        async move {
            if position >= data.len() {
                return None;
            }
            tokio::time::advance(Duration::from_secs(1)).await;
            let end = (position + chunk).min(data.len());
            Some((Ok(data.slice(position..end)), end))
        }
    });
    stream.boxed()
}

#[tokio::test(start_paused = true)]
async fn paused_copy_resumes_across_three_runs_to_identical_object() {
    let sink = Arc::new(store());
    let data = sample(10 * PART as usize + 77);
    let options = PutOptions::default();
    let settings = settings(2);
    let size = data.len() as u64;
    let mut state: Option<TransferState> = None;
    let mut runs = 0;

    let report = loop {
        runs += 1;
        assert!(runs <= 3, "copy needed more than three runs");
        let offset = state.as_ref().map_or(0, |state| state.bytes_done as usize);
        // One chunk per second: four parts launch before the deadline, the fifth read pauses.
        let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
        let mut transfer =
            Transfer::new(sink.as_ref(), KEY, size, &options, &settings).pause_at(deadline);
        if let Some(saved) = state.take() {
            // The state travels between invocations as JSON.
            let json = serde_json::to_string(&saved).expect("state serializes");
            transfer =
                transfer.resume_from(serde_json::from_str(&json).expect("state deserializes"));
        }
        match transfer
            .run(clock_advancing_body(data.clone(), offset, PART as usize))
            .await
        {
            Ok(TransferOutcome::Finished(report)) => break report,
            Ok(TransferOutcome::Paused(saved)) => {
                assert_eq!(saved.bytes_done, u64::from(saved.next_part - 1) * PART);
                assert_eq!(saved.crc64, crc64(&data[..saved.bytes_done as usize]));
                state = Some(saved);
            }
            Err(error) => panic!("run {runs} failed: {error}"),
        }
    };

    assert_eq!(runs, 3);
    assert_eq!(sink.object(KEY), Some(data.clone()));
    assert_eq!(report.crc64, crc64(&data));
    assert_eq!(report.parts, 11);
    assert_eq!(sink.calls_of(Operation::CreateMultipartUpload).len(), 1);
    assert_eq!(sink.calls_of(Operation::ListParts).len(), 2);
}

#[tokio::test]
async fn resume_rejects_state_with_missing_part() {
    let sink = store();
    let options = PutOptions::default();
    let settings = settings(2);
    let upload_id = sink
        .create_multipart(KEY, &options)
        .await
        .expect("upload starts");
    let state = TransferState {
        key: KEY.to_string(),
        upload_id: upload_id.clone(),
        size: 3 * PART,
        part_size: PART,
        next_part: 2,
        bytes_done: PART,
        crc64: 1,
        parts: vec![PartRecord {
            part_number: 1,
            etag: "never-uploaded".to_string(),
            size: PART,
            crc64: None,
        }],
    };

    let transfer = Transfer::new(&sink, KEY, 3 * PART, &options, &settings).resume_from(state);
    let error = transfer
        .run(body(&sample(2 * PART as usize), 100))
        .await
        .expect_err("resume fails");

    assert!(
        matches!(&error, TransferError::ResumeMismatch { upload_id: id, .. } if *id == upload_id)
    );
    assert!(sink.calls_of(Operation::UploadPart).is_empty());
}

const SOURCE_KEY: &str = "mysql/export/db/table/part-00000.gz.parquet";

/// Returns a memory store with `data` stored at [`SOURCE_KEY`].
fn source_with(data: &Bytes) -> MemoryStore {
    let source = MemoryStore::new("source");
    source.insert_object(SOURCE_KEY, data.clone(), std::collections::BTreeMap::new());
    source
}

async fn run_ranged_copy(
    source: &dyn ObjectSource,
    sink: &MemoryStore,
    size: usize,
    concurrency: usize,
    etag: Option<&str>,
) -> Result<TransferReport, TransferError> {
    let options = PutOptions::default();
    let settings = settings(concurrency);
    match Transfer::new(sink, KEY, size as u64, &options, &settings)
        .run_ranged(source, SOURCE_KEY, etag)
        .await?
    {
        TransferOutcome::Finished(report) => Ok(report),
        TransferOutcome::Paused(_) => panic!("a copy without a deadline paused"),
    }
}

#[tokio::test]
async fn ranged_copy_reads_one_range_per_part() {
    let sink = store().with_part_yields(|part| 100 - part * 10);
    let data = sample(8 * PART as usize + 100);
    let source = source_with(&data);

    let report = run_ranged_copy(&source, &sink, data.len(), 4, None)
        .await
        .expect("copy succeeds");

    assert_eq!(sink.object(KEY), Some(data.clone()));
    assert_eq!(report.crc64, crc64(&data));
    assert_eq!(report.parts, 9);
    assert_eq!(source.calls_of(Operation::GetObject).len(), 9);
    assert_eq!(sink.max_parts_in_flight(), 4);
}

#[tokio::test]
async fn ranged_copy_rereads_a_cut_range() {
    let sink = store();
    let data = sample(4 * PART as usize);
    let source = source_with(&data);
    source.inject(Fault::new(Operation::GetObject, FaultAction::CutBodyAfter(100)).times(1));

    let report = run_ranged_copy(&source, &sink, data.len(), 2, None)
        .await
        .expect("copy succeeds");

    assert_eq!(sink.object(KEY), Some(data.clone()));
    assert_eq!(report.crc64, crc64(&data));
    assert_eq!(source.calls_of(Operation::GetObject).len(), 5);
    assert_eq!(sink.calls_of(Operation::UploadPart).len(), 4);
}

#[tokio::test]
async fn ranged_copy_of_changed_source_fails() {
    let sink = store();
    let data = sample(3 * PART as usize);
    let source = source_with(&data);

    let error = run_ranged_copy(&source, &sink, data.len(), 2, Some("etag-of-older-version"))
        .await
        .expect_err("copy fails");

    assert!(matches!(
        &error,
        TransferError::Source {
            upload_id: Some(_),
            ..
        }
    ));
    assert!(
        error.to_string().contains("etag-of-older-version"),
        "{error}"
    );
    assert!(!error.is_retryable());
    assert_eq!(sink.object(KEY), None);
    assert!(sink.pending_upload_ids().is_empty());
    assert!(sink.calls_of(Operation::UploadPart).is_empty());
}

#[tokio::test]
async fn ranged_copy_of_small_object_puts_once() {
    let sink = store();
    let data = sample(PART as usize / 2);
    let source = source_with(&data);

    let report = run_ranged_copy(&source, &sink, data.len(), 4, None)
        .await
        .expect("copy succeeds");

    assert_eq!(sink.object(KEY), Some(data.clone()));
    assert_eq!(report.parts, 1);
    assert_eq!(source.calls_of(Operation::GetObject).len(), 1);
    assert_eq!(sink.calls_of(Operation::PutObject).len(), 1);
    assert!(sink.calls_of(Operation::CreateMultipartUpload).is_empty());
}

/// Reads a memory store and lets one second pass on the paused clock per GetObject.
struct OneSecondPerGet(MemoryStore);

#[async_trait::async_trait]
impl ObjectSource for OneSecondPerGet {
    fn location(&self, key: &str) -> String {
        ObjectSource::location(&self.0, key)
    }

    async fn head(&self, key: &str) -> Result<Option<crate::storage::ObjectInfo>, StorageError> {
        ObjectSource::head(&self.0, key).await
    }

    async fn get(
        &self,
        key: &str,
        range: Option<crate::storage::ByteRange>,
    ) -> Result<(crate::storage::ObjectInfo, ByteStream), StorageError> {
        tokio::time::advance(Duration::from_secs(1)).await;
        self.0.get(key, range).await
    }
}

#[tokio::test(start_paused = true)]
async fn paused_ranged_copy_resumes_to_identical_object() {
    let sink = store();
    let data = sample(10 * PART as usize + 77);
    let source = OneSecondPerGet(source_with(&data));
    let options = PutOptions::default();
    let settings = settings(2);
    let size = data.len() as u64;

    let deadline = tokio::time::Instant::now() + Duration::from_secs(3);
    let first = Transfer::new(&sink, KEY, size, &options, &settings)
        .pause_at(deadline)
        .run_ranged(&source, SOURCE_KEY, None)
        .await
        .expect("first run succeeds");
    let TransferOutcome::Paused(saved) = first else {
        panic!("the first run did not pause");
    };
    assert!(saved.bytes_done > 0);
    assert!(saved.bytes_done < size);
    assert_eq!(saved.bytes_done, u64::from(saved.next_part - 1) * PART);
    assert_eq!(saved.parts.len() as u32, saved.next_part - 1);
    assert_eq!(saved.crc64, crc64(&data[..saved.bytes_done as usize]));

    let json = serde_json::to_string(&saved).expect("state serializes");
    let second = Transfer::new(&sink, KEY, size, &options, &settings)
        .resume_from(serde_json::from_str(&json).expect("state deserializes"))
        .run_ranged(&source, SOURCE_KEY, None)
        .await
        .expect("second run succeeds");
    let TransferOutcome::Finished(report) = second else {
        panic!("the second run paused without a deadline");
    };

    assert_eq!(sink.object(KEY), Some(data.clone()));
    assert_eq!(report.crc64, crc64(&data));
    assert_eq!(report.parts, 11);
    assert_eq!(sink.calls_of(Operation::CreateMultipartUpload).len(), 1);
    assert_eq!(sink.calls_of(Operation::ListParts).len(), 1);
}
