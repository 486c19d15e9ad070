use std::collections::BTreeMap;
use std::sync::Mutex;

use async_trait::async_trait;
use chrono::TimeZone;
use serde_json::json;

use super::*;
use crate::aliyun::{AliyunError, BackupType};
use crate::checksum::crc64;
use crate::storage::memory::{Fault, FaultAction, MemoryStore, Operation};
use crate::storage::{ByteRange, ByteStream, ErrorKind, ObjectInfo, StorageError};
use crate::validate::backup::Verdict;

const INSTANCE: &str = "rm-test1";
/// A listed link that expires in 2100.
const URL: &str =
    "https://rdsbak.oss-cn-hangzhou.aliyuncs.com/c/hins_data_qp.xb?Expires=4102444800";
const FRESH_URL: &str = "https://rdsbak.oss-cn-hangzhou.aliyuncs.com/c/hins_data_qp.xb?fresh=1";
const KEY: &str = "aliyun-rds/rm-test1/2024/05/01/4001/hins_data_qp.xb";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2024, 5, 1, 12, 0, 0).unwrap()
}

fn data(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 31 + i / 7) as u8).collect()
}

fn backup(id: &str, size: u64) -> Backup {
    Backup {
        backup_id: id.into(),
        instance_id: INSTANCE.into(),
        status: BackupStatus::Success,
        mode: None,
        method: Some(BackupMethod::Physical),
        backup_type: Some(BackupType::FullBackup),
        start: Utc.with_ymd_and_hms(2024, 5, 1, 2, 0, 0).unwrap(),
        end: Some(Utc.with_ymd_and_hms(2024, 5, 1, 2, 30, 0).unwrap()),
        size_bytes: size,
        download_url: Some(URL.into()),
        intranet_download_url: None,
        checksum: None,
        consistent_time: None,
        host_instance_id: None,
        is_available: Some(true),
        store_status: None,
        engine: None,
        engine_version: None,
        encryption: None,
    }
}

/// A catalog over fixed backups; `find_backup` hands out `FRESH_URL`.
#[derive(Default)]
struct FakeCatalog {
    backups: Vec<Backup>,
    lookups: Mutex<u32>,
}

#[async_trait]
impl BackupCatalog for FakeCatalog {
    async fn list_backups(
        &self,
        instance_id: &str,
        _window: &BackupWindow,
    ) -> Result<Vec<Backup>, AliyunError> {
        Ok(self
            .backups
            .iter()
            .filter(|backup| backup.instance_id == instance_id)
            .cloned()
            .collect())
    }

    async fn find_backup(
        &self,
        instance_id: &str,
        backup_id: &str,
        _window: &BackupWindow,
    ) -> Result<Option<Backup>, AliyunError> {
        *self.lookups.lock().unwrap() += 1;
        Ok(self
            .backups
            .iter()
            .find(|backup| backup.instance_id == instance_id && backup.backup_id == backup_id)
            .map(|backup| Backup {
                download_url: Some(FRESH_URL.into()),
                ..backup.clone()
            }))
    }
}

/// A download source over one object, reachable at `URL` and `FRESH_URL`. `URL` returns
/// "Request has expired" after `URL` has served `valid_gets` requests.
struct Downloads {
    store: MemoryStore,
    valid_gets: Option<u32>,
    gets: Mutex<Vec<(String, Option<ByteRange>)>>,
}

impl Downloads {
    fn new(bytes: &[u8]) -> Self {
        let store = MemoryStore::new("rdsbak").with_chunk_size(1000);
        for url in [URL, FRESH_URL] {
            store.insert_object(url, bytes.to_vec(), BTreeMap::new());
        }
        Self {
            store,
            valid_gets: None,
            gets: Mutex::new(Vec::new()),
        }
    }

    fn gets(&self) -> Vec<(String, Option<ByteRange>)> {
        self.gets.lock().unwrap().clone()
    }
}

#[async_trait]
impl ObjectSource for Downloads {
    fn location(&self, key: &str) -> String {
        key.to_string()
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StorageError> {
        ObjectSource::head(&self.store, key).await
    }

    async fn get(
        &self,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<(ObjectInfo, ByteStream), StorageError> {
        let served = {
            let mut gets = self.gets.lock().unwrap();
            gets.push((key.to_string(), range));
            gets.iter().filter(|(url, _)| url == URL).count() as u32
        };
        if key == URL && self.valid_gets.is_some_and(|valid| served > valid) {
            return Err(StorageError::new(
                ErrorKind::Permanent,
                "GetObject",
                key,
                "Request has expired.",
            )
            .with_code("AccessDenied"));
        }
        ObjectSource::get(&self.store, key, range).await
    }
}

struct Setup {
    downloads: Arc<Downloads>,
    sink: Arc<MemoryStore>,
    catalog: Arc<FakeCatalog>,
    continuations: Arc<RecordedContinuations>,
    settings: PullSettings,
}

impl Setup {
    fn new(bytes: &[u8], backups: Vec<Backup>) -> Self {
        Self::with_downloads(Downloads::new(bytes), backups)
    }

    fn with_downloads(downloads: Downloads, backups: Vec<Backup>) -> Self {
        let settings = PullSettings {
            instances: vec![INSTANCE.into()],
            transfer: TransferSettings {
                part_size: 4000,
                concurrency: 2,
                limits: PartLimits {
                    min_part_size: 1000,
                    ..PartLimits::S3
                },
                retry: crate::retry::RetryPolicy {
                    base_delay: Duration::from_millis(1),
                    max_delay: Duration::from_millis(2),
                    ..crate::retry::RetryPolicy::default()
                },
                ..TransferSettings::default()
            },
            ..PullSettings::default()
        };
        Self {
            downloads: Arc::new(downloads),
            sink: Arc::new(MemoryStore::new("s3-bucket").with_min_part_size(1000)),
            catalog: Arc::new(FakeCatalog {
                backups,
                ..FakeCatalog::default()
            }),
            continuations: Arc::new(RecordedContinuations::default()),
            settings,
        }
    }

    fn ports(&self) -> PullPorts {
        PullPorts {
            catalog: self.catalog.clone(),
            download: self.downloads.clone(),
            sink: self.sink.clone(),
            continuation: self.continuations.clone(),
        }
    }

    async fn run(&self, trigger: PullTrigger, deadline: tokio::time::Instant) -> PullReport {
        run_pull(trigger, &self.ports(), &self.settings, now(), deadline).await
    }
}

fn later() -> tokio::time::Instant {
    tokio::time::Instant::now() + Duration::from_secs(3600)
}

fn direct(backup_id: &str) -> PullTrigger {
    PullTrigger::Backup {
        instance_id: INSTANCE.into(),
        backup_id: backup_id.into(),
    }
}

// The error is returned as the job returns it, so its size is the job's concern.
#[allow(clippy::result_large_err)]
fn only_result(report: PullReport) -> Result<PullOutcome, PullError> {
    assert_eq!(report.backups.len(), 1, "{report:?}");
    report.backups.into_iter().next().unwrap().result
}

#[tokio::test]
async fn pulls_backup_into_s3_with_metadata() {
    let bytes = data(10_500);
    let setup = Setup::new(&bytes, vec![backup("4001", 10_500)]);

    let outcome = only_result(setup.run(direct("4001"), later()).await).unwrap();

    let PullOutcome::Pulled {
        key,
        bytes: copied,
        parts,
        crc64: crc,
        runs,
        ..
    } = outcome.clone()
    else {
        panic!("expected a finished pull, got {outcome:?}");
    };
    assert_eq!(key, KEY);
    assert_eq!(copied, 10_500);
    assert_eq!(parts, 3);
    assert_eq!(runs, 1);
    assert_eq!(crc, crc64(&bytes));
    assert_eq!(setup.sink.object(KEY).unwrap().as_ref(), bytes.as_slice());
    let metadata = setup.sink.object_metadata(KEY).unwrap();
    assert_eq!(metadata["crc64ecma"], crc64(&bytes).to_string());
    assert_eq!(metadata["backup-id"], "4001");
    assert_eq!(metadata["instance-id"], INSTANCE);
    assert_eq!(metadata["backup-start"], "2024-05-01T02:00:00+00:00");
}

#[tokio::test]
async fn small_backup_goes_in_one_put() {
    let bytes = data(1500);
    let setup = Setup::new(&bytes, vec![backup("4001", 1500)]);

    let outcome = only_result(setup.run(direct("4001"), later()).await).unwrap();

    assert!(
        matches!(outcome, PullOutcome::Pulled { parts: 1, .. }),
        "{outcome:?}"
    );
    assert_eq!(setup.sink.calls_of(Operation::PutObject).len(), 1);
    assert_eq!(setup.sink.object(KEY).unwrap().as_ref(), bytes.as_slice());
}

#[tokio::test]
async fn skips_backup_already_in_s3() {
    let bytes = data(5000);
    let setup = Setup::new(&bytes, vec![backup("4001", 5000)]);
    let metadata = BTreeMap::from([("crc64ecma".to_string(), crc64(&bytes).to_string())]);
    setup.sink.insert_object(KEY, bytes.clone(), metadata);

    let outcome = only_result(setup.run(direct("4001"), later()).await).unwrap();

    assert_eq!(outcome, PullOutcome::AlreadyPulled { key: KEY.into() });
    assert!(
        setup
            .sink
            .calls_of(Operation::CreateMultipartUpload)
            .is_empty()
    );
}

#[tokio::test]
async fn copies_again_when_stored_crc_differs() {
    let bytes = data(5000);
    let setup = Setup::new(&bytes, vec![backup("4001", 5000)]);
    let metadata = BTreeMap::from([("crc64ecma".to_string(), "1".to_string())]);
    setup.sink.insert_object(KEY, bytes.clone(), metadata);

    let outcome = only_result(setup.run(direct("4001"), later()).await).unwrap();

    assert!(matches!(outcome, PullOutcome::Pulled { .. }), "{outcome:?}");
    assert_eq!(
        setup.sink.object_metadata(KEY).unwrap()["crc64ecma"],
        crc64(&bytes).to_string()
    );
}

#[tokio::test]
async fn rejects_download_whose_size_differs_from_backup_size() {
    let setup = Setup::new(&data(5000), vec![backup("4001", 6000)]);

    let error = only_result(setup.run(direct("4001"), later()).await).unwrap_err();

    assert!(
        matches!(error, PullError::InvalidDownload { .. }),
        "{error}"
    );
    assert!(error.to_string().contains("BackupSize is 6000"), "{error}");
    assert!(!error.is_retryable());
    assert_eq!(setup.sink.object_count(), 0);
}

fn range(first: u64, last: u64) -> Option<ByteRange> {
    Some(ByteRange { first, last })
}

#[tokio::test]
async fn reads_parts_after_the_first_by_ranges() {
    let bytes = data(10_000);
    let setup = Setup::new(&bytes, vec![backup("4001", 10_000)]);

    let outcome = only_result(setup.run(direct("4001"), later()).await).unwrap();

    assert!(matches!(outcome, PullOutcome::Pulled { .. }), "{outcome:?}");
    assert_eq!(setup.sink.object(KEY).unwrap().as_ref(), bytes.as_slice());
    let mut ranges: Vec<Option<ByteRange>> = setup
        .downloads
        .gets()
        .into_iter()
        .map(|(_, range)| range)
        .collect();
    assert_eq!(
        ranges.remove(0),
        None,
        "the first request reads from byte 0"
    );
    ranges.sort_by_key(|range| range.map(|range| range.first));
    assert_eq!(ranges, vec![range(4000, 7999), range(8000, 9999)]);
}

#[tokio::test]
async fn reopens_cut_download_with_a_range() {
    let bytes = data(10_000);
    let setup = Setup::new(&bytes, vec![backup("4001", 10_000)]);
    setup
        .downloads
        .store
        .inject(Fault::new(Operation::GetObject, FaultAction::CutBodyAfter(2000)).times(1));

    let outcome = only_result(setup.run(direct("4001"), later()).await).unwrap();

    assert!(matches!(outcome, PullOutcome::Pulled { .. }), "{outcome:?}");
    assert_eq!(setup.sink.object(KEY).unwrap().as_ref(), bytes.as_slice());
    let gets = setup.downloads.gets();
    assert_eq!(gets.len(), 4, "{gets:?}");
    assert_eq!(gets[1].1, range(2000, 9999));
}

#[tokio::test]
async fn reads_a_cut_range_again() {
    let bytes = data(10_000);
    let setup = Setup::new(&bytes, vec![backup("4001", 10_000)]);
    // Faults apply in the order injected. The first request is cut only after part 1, which is
    // all that is read from it. Then the first ranged read of parts 2 and 3 is cut.
    setup
        .downloads
        .store
        .inject(Fault::new(Operation::GetObject, FaultAction::CutBodyAfter(10_000)).times(1));
    setup
        .downloads
        .store
        .inject(Fault::new(Operation::GetObject, FaultAction::CutBodyAfter(1000)).times(2));

    let outcome = only_result(setup.run(direct("4001"), later()).await).unwrap();

    assert!(matches!(outcome, PullOutcome::Pulled { .. }), "{outcome:?}");
    assert_eq!(setup.sink.object(KEY).unwrap().as_ref(), bytes.as_slice());
    let gets = setup.downloads.gets();
    assert_eq!(gets.len(), 5, "{gets:?}");
    let second_part_reads = gets.iter().filter(|(_, r)| *r == range(4000, 7999)).count();
    let third_part_reads = gets.iter().filter(|(_, r)| *r == range(8000, 9999)).count();
    assert_eq!((second_part_reads, third_part_reads), (2, 2), "{gets:?}");
}

#[tokio::test]
async fn refreshes_url_that_expires_mid_download() {
    let bytes = data(10_000);
    let mut downloads = Downloads::new(&bytes);
    downloads.valid_gets = Some(1);
    let setup = Setup::with_downloads(downloads, vec![backup("4001", 10_000)]);
    setup
        .downloads
        .store
        .inject(Fault::new(Operation::GetObject, FaultAction::CutBodyAfter(3000)).times(1));

    // The schedule starts from the listed URL; a direct request would look up a fresh one.
    let outcome = only_result(setup.run(PullTrigger::Schedule, later()).await).unwrap();

    assert!(matches!(outcome, PullOutcome::Pulled { .. }), "{outcome:?}");
    assert_eq!(setup.sink.object(KEY).unwrap().as_ref(), bytes.as_slice());
    let gets = setup.downloads.gets();
    let urls: Vec<&str> = gets.iter().map(|(url, _)| url.as_str()).collect();
    // The second request met the expired URL; the ranged reads start from the fresh one.
    assert_eq!(urls, vec![URL, URL, FRESH_URL, FRESH_URL, FRESH_URL]);
    assert_eq!(gets[2].1, range(3000, 9999));
    assert_eq!(*setup.catalog.lookups.lock().unwrap(), 1);
}

#[tokio::test]
async fn expired_link_is_replaced_before_the_first_request() {
    let bytes = data(5000);
    let mut listed = backup("4001", 5000);
    listed.download_url =
        Some("https://rdsbak.oss-cn-hangzhou.aliyuncs.com/c/hins_data_qp.xb?Expires=1".into());
    let setup = Setup::new(&bytes, vec![listed]);

    let outcome = only_result(setup.run(PullTrigger::Schedule, later()).await).unwrap();

    assert!(matches!(outcome, PullOutcome::Pulled { .. }), "{outcome:?}");
    let urls: Vec<String> = setup
        .downloads
        .gets()
        .into_iter()
        .map(|(url, _)| url)
        .collect();
    assert_eq!(urls, vec![FRESH_URL.to_string(), FRESH_URL.to_string()]);
    assert_eq!(*setup.catalog.lookups.lock().unwrap(), 1);
}

#[tokio::test]
async fn passed_deadline_uploads_one_part_per_run() {
    let bytes = data(10_500);
    let setup = Setup::new(&bytes, vec![backup("4001", 10_500)]);
    let passed = tokio::time::Instant::now();

    let mut outcome = only_result(setup.run(direct("4001"), passed).await).unwrap();
    let mut runs = 1;
    while let PullOutcome::Continued { next_run, .. } = &outcome {
        let payloads = setup.continuations.take();
        assert_eq!(payloads.len(), 1);
        assert_eq!(payloads[0].run, *next_run);
        // The payload survives the JSON round trip of a Lambda event.
        let event = payloads[0].to_event();
        let trigger = PullTrigger::from_event(&event).unwrap();
        outcome = only_result(setup.run(trigger, passed).await).unwrap();
        runs += 1;
        assert!(runs <= 5, "the pull does not advance");
    }

    assert_eq!(runs, 3);
    assert!(
        matches!(
            outcome,
            PullOutcome::Pulled {
                runs: 3,
                parts: 3,
                ..
            }
        ),
        "{outcome:?}"
    );
    assert_eq!(setup.sink.object(KEY).unwrap().as_ref(), bytes.as_slice());
    assert!(setup.sink.pending_upload_ids().is_empty());
}

#[tokio::test]
async fn resumes_from_a_payload_without_its_part_list() {
    let bytes = data(10_500);
    let setup = Setup::new(&bytes, vec![backup("4001", 10_500)]);
    let passed = tokio::time::Instant::now();

    let mut outcome = only_result(setup.run(direct("4001"), passed).await).unwrap();
    let mut runs = 1;
    while let PullOutcome::Continued { .. } = &outcome {
        let mut payload = setup.continuations.take().remove(0);
        // As a payload too large for one event is sent: the next run lists the parts itself.
        payload.state = payload.state.without_parts();
        assert!(payload.state.parts_elided());
        let trigger = PullTrigger::from_event(&payload.to_event()).unwrap();
        outcome = only_result(setup.run(trigger, passed).await).unwrap();
        runs += 1;
        assert!(runs <= 5, "the pull does not advance");
    }

    assert_eq!(runs, 3);
    assert!(
        matches!(outcome, PullOutcome::Pulled { parts: 3, .. }),
        "{outcome:?}"
    );
    assert_eq!(setup.sink.object(KEY).unwrap().as_ref(), bytes.as_slice());
}

#[test]
fn a_payload_too_large_for_one_event_goes_without_its_part_list() {
    let part_size = 64 * 1024 * 1024;
    let parts: Vec<crate::transfer::PartRecord> = (1..=4_000)
        .map(|part_number| crate::transfer::PartRecord {
            part_number,
            etag: format!("\"{part_number:032x}\""),
            size: part_size,
            crc64: None,
        })
        .collect();
    let payload = ContinuationPayload {
        instance_id: INSTANCE.into(),
        backup_id: "4001".into(),
        backup_start: now(),
        backup_end: None,
        expected_crc64: 1,
        run: 2,
        state: crate::transfer::TransferState {
            key: KEY.into(),
            upload_id: "upload-1".into(),
            size: part_size * 9_000,
            part_size,
            next_part: 4_001,
            bytes_done: part_size * 4_000,
            crc64: 2,
            parts,
        },
    };
    assert!(payload.to_event().to_string().len() > MAX_PAYLOAD_BYTES);

    let sent = super::copy::fit_in_one_event(payload.clone()).unwrap();

    assert!(sent.to_event().to_string().len() <= MAX_PAYLOAD_BYTES);
    assert!(sent.state.parts_elided());
    assert_eq!(sent.state.next_part, 4_001);
    assert_eq!(sent.state.bytes_done, payload.state.bytes_done);

    // A small payload is sent as it is.
    let small = ContinuationPayload {
        state: crate::transfer::TransferState {
            parts: payload.state.parts[..3].to_vec(),
            next_part: 4,
            bytes_done: part_size * 3,
            ..payload.state.clone()
        },
        ..payload
    };
    assert_eq!(super::copy::fit_in_one_event(small.clone()).unwrap(), small);
}

#[tokio::test]
async fn continuation_outside_the_prefix_is_rejected() {
    let bytes = data(10_500);
    let setup = Setup::new(&bytes, vec![backup("4001", 10_500)]);
    setup.run(direct("4001"), tokio::time::Instant::now()).await;
    let mut payload = setup.continuations.take().remove(0);
    payload.state.key = "mysql/elsewhere.xb".into();

    let error = only_result(
        setup
            .run(PullTrigger::Continuation(Box::new(payload)), later())
            .await,
    )
    .unwrap_err();

    assert!(matches!(error, PullError::NotPullable { .. }), "{error}");
    assert!(setup.sink.object("mysql/elsewhere.xb").is_none());
}

#[tokio::test]
async fn schedule_validates_and_pulls_each_new_backup() {
    let bytes = data(5000);
    let mut failed = backup("4000", 0);
    failed.status = BackupStatus::Failed;
    failed.download_url = None;
    let setup = Setup::new(&bytes, vec![backup("4001", 5000), failed]);

    let report = setup.run(PullTrigger::Schedule, later()).await;

    assert_eq!(report.validations.len(), 1);
    assert_eq!(
        report.validations[0].verdicts,
        vec![Verdict::Failed {
            backup_id: "4000".into()
        }]
    );
    assert_eq!(
        report.backups.len(),
        1,
        "only the successful backup is pulled"
    );
    assert!(matches!(
        report.backups[0].result,
        Ok(PullOutcome::Pulled { .. })
    ));
    assert!(!report.has_retryable_failure());
}

#[tokio::test]
async fn schedule_defers_backups_after_the_deadline() {
    let bytes = data(5000);
    let setup = Setup::new(&bytes, vec![backup("4001", 5000)]);

    let report = setup
        .run(PullTrigger::Schedule, tokio::time::Instant::now())
        .await;

    assert!(matches!(
        report.backups[0].result,
        Ok(PullOutcome::Deferred)
    ));
    assert_eq!(setup.sink.object_count(), 0);
}

#[test]
fn trigger_reads_each_event_shape() {
    assert_eq!(
        PullTrigger::from_event(&json!({"trigger": "schedule"})).unwrap(),
        PullTrigger::Schedule
    );
    assert_eq!(
        PullTrigger::from_event(&json!({"detail-type": "Scheduled Event", "source": "aws.events"}))
            .unwrap(),
        PullTrigger::Schedule
    );
    assert_eq!(
        PullTrigger::from_event(&json!({"instance_id": "rm-1", "backup_id": "42"})).unwrap(),
        PullTrigger::Backup {
            instance_id: "rm-1".into(),
            backup_id: "42".into()
        }
    );
}

#[test]
fn trigger_rejects_unknown_and_unsafe_events() {
    for event in [
        json!({}),
        json!({"trigger": "nightly"}),
        json!({"instance_id": "rm-1"}),
        json!({"instance_id": "../rm-1", "backup_id": "42"}),
        json!({"continuation": {"backup_id": "42"}}),
    ] {
        assert!(PullTrigger::from_event(&event).is_err(), "{event}");
    }
}

#[tokio::test]
async fn a_fresh_pull_aborts_abandoned_uploads_and_stale_continuations_stop() {
    let bytes = data(10_500);
    let setup = Setup::new(&bytes, vec![backup("4001", 10_500)]);

    // A first run hands over, and its continuation is lost: the upload stays open.
    let first = only_result(setup.run(direct("4001"), tokio::time::Instant::now()).await).unwrap();
    assert!(matches!(first, PullOutcome::Continued { .. }), "{first:?}");
    let stale = setup.continuations.take().remove(0);
    assert_eq!(setup.sink.pending_upload_ids().len(), 1);

    // A later run pulls the backup from the start and aborts the abandoned upload.
    let fresh = only_result(setup.run(direct("4001"), later()).await).unwrap();
    assert!(matches!(fresh, PullOutcome::Pulled { .. }), "{fresh:?}");
    assert_eq!(setup.sink.object(KEY).unwrap().as_ref(), bytes.as_slice());
    assert!(setup.sink.pending_upload_ids().is_empty());

    // The lost continuation arrives at last and finds the backup pulled.
    let late = only_result(
        setup
            .run(PullTrigger::Continuation(Box::new(stale)), later())
            .await,
    )
    .unwrap();
    assert_eq!(late, PullOutcome::AlreadyPulled { key: KEY.into() });
    assert_eq!(setup.sink.object(KEY).unwrap().as_ref(), bytes.as_slice());
}
