//! An in-memory object store for domain tests. It implements [`ObjectSource`], [`ObjectSink`]
//! and [`MarkerStore`], records every call, injects chosen failures, and behaves like OSS where
//! the engine could get it wrong: CRC-64/XZ on every write, ascending part order, the minimum
//! part size for all parts but the last, part numbers 1 to 10,000 and `forbid_overwrite`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use bytes::Bytes;
use md5::{Digest, Md5};

use super::{
    ByteRange, ByteStream, ErrorKind, MarkerStore, ObjectInfo, ObjectSink, ObjectSource,
    PendingUpload, PutOptions, StorageError, UploadedPart, WriteOutcome,
};
use crate::checksum::crc64;

/// A store operation, named as in the S3 and OSS APIs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Operation {
    HeadObject,
    GetObject,
    PutObject,
    CreateMultipartUpload,
    UploadPart,
    CompleteMultipartUpload,
    AbortMultipartUpload,
    ListParts,
    ListMultipartUploads,
    CreateMarker,
    ReadMarker,
    DeleteMarker,
}

impl Operation {
    fn name(self) -> &'static str {
        match self {
            Self::HeadObject => "HeadObject",
            Self::GetObject => "GetObject",
            Self::PutObject => "PutObject",
            Self::CreateMultipartUpload => "CreateMultipartUpload",
            Self::UploadPart => "UploadPart",
            Self::CompleteMultipartUpload => "CompleteMultipartUpload",
            Self::AbortMultipartUpload => "AbortMultipartUpload",
            Self::ListParts => "ListParts",
            Self::ListMultipartUploads => "ListMultipartUploads",
            Self::CreateMarker => "CreateMarker",
            Self::ReadMarker => "ReadMarker",
            Self::DeleteMarker => "DeleteMarker",
        }
    }
}

/// One recorded call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Call {
    pub operation: Operation,
    pub key: String,
    pub part_number: Option<u32>,
}

/// What an injected fault does to the call it matches.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FaultAction {
    /// The call fails with this kind of error and changes nothing.
    Fail(ErrorKind),
    /// PutObject or CompleteMultipartUpload succeeds but returns this CRC-64 instead of the real one.
    ReportCrc64(u64),
    /// GetObject's body fails with a transient error after this many bytes.
    CutBodyAfter(u64),
}

/// A failure to inject into matching calls.
#[derive(Debug, Clone)]
pub struct Fault {
    operation: Operation,
    part_number: Option<u32>,
    /// Calls left to affect; `None` affects every matching call.
    remaining: Option<u32>,
    action: FaultAction,
}

impl Fault {
    /// Affects every call of `operation` until narrowed with [`Fault::on_part`] or [`Fault::times`].
    pub fn new(operation: Operation, action: FaultAction) -> Self {
        Self {
            operation,
            part_number: None,
            remaining: None,
            action,
        }
    }

    /// Affects only UploadPart calls for this part number.
    pub fn on_part(mut self, part_number: u32) -> Self {
        self.part_number = Some(part_number);
        self
    }

    /// Affects only the next `count` matching calls.
    pub fn times(mut self, count: u32) -> Self {
        self.remaining = Some(count);
        self
    }
}

type YieldsForPart = Arc<dyn Fn(u32) -> u32 + Send + Sync>;

/// The in-memory store; see the module documentation.
pub struct MemoryStore {
    bucket: String,
    min_part_size: u64,
    chunk_size: usize,
    part_yields: Option<YieldsForPart>,
    reports_crc64: bool,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    objects: BTreeMap<String, StoredObject>,
    uploads: BTreeMap<String, Upload>,
    markers: BTreeMap<String, Bytes>,
    calls: Vec<Call>,
    faults: Vec<Fault>,
    uploads_created: u64,
    parts_in_flight: usize,
    max_parts_in_flight: usize,
    part_completion_order: Vec<u32>,
}

#[derive(Clone)]
struct StoredObject {
    data: Bytes,
    etag: String,
    metadata: BTreeMap<String, String>,
}

struct Upload {
    key: String,
    options: PutOptions,
    parts: BTreeMap<u32, (Bytes, String)>,
}

impl MemoryStore {
    /// Creates an empty store with OSS's 100 KB minimum part size.
    pub fn new(bucket: impl Into<String>) -> Self {
        Self {
            bucket: bucket.into(),
            min_part_size: 100 * 1024,
            chunk_size: 64 * 1024,
            part_yields: None,
            reports_crc64: true,
            state: Mutex::new(State::default()),
        }
    }

    pub fn with_min_part_size(mut self, bytes: u64) -> Self {
        self.min_part_size = bytes;
        self
    }

    /// Sets the size of the chunks that GetObject streams.
    pub fn with_chunk_size(mut self, bytes: usize) -> Self {
        self.chunk_size = bytes.max(1);
        self
    }

    /// Makes UploadPart yield to the scheduler `yields(part_number)` times before it finishes,
    /// so parts complete in a chosen order without timers.
    pub fn with_part_yields(mut self, yields: impl Fn(u32) -> u32 + Send + Sync + 'static) -> Self {
        self.part_yields = Some(Arc::new(yields));
        self
    }

    /// Makes HEAD and GET report no CRC-64, like S3 for objects it did not checksum.
    pub fn without_crc64(mut self) -> Self {
        self.reports_crc64 = false;
        self
    }

    pub fn inject(&self, fault: Fault) {
        self.lock().faults.push(fault);
    }

    /// Stores an object directly, without recording a call.
    pub fn insert_object(
        &self,
        key: &str,
        data: impl Into<Bytes>,
        metadata: BTreeMap<String, String>,
    ) {
        let data = data.into();
        let etag = hex::encode(Md5::digest(&data));
        self.lock().objects.insert(
            key.to_string(),
            StoredObject {
                data,
                etag,
                metadata,
            },
        );
    }

    pub fn object(&self, key: &str) -> Option<Bytes> {
        self.lock()
            .objects
            .get(key)
            .map(|object| object.data.clone())
    }

    pub fn object_metadata(&self, key: &str) -> Option<BTreeMap<String, String>> {
        self.lock()
            .objects
            .get(key)
            .map(|object| object.metadata.clone())
    }

    pub fn object_count(&self) -> usize {
        self.lock().objects.len()
    }

    /// Returns the ids of multipart uploads neither completed nor aborted.
    pub fn pending_upload_ids(&self) -> Vec<String> {
        self.lock().uploads.keys().cloned().collect()
    }

    pub fn calls(&self) -> Vec<Call> {
        self.lock().calls.clone()
    }

    pub fn calls_of(&self, operation: Operation) -> Vec<Call> {
        self.lock()
            .calls
            .iter()
            .filter(|call| call.operation == operation)
            .cloned()
            .collect()
    }

    /// Returns the highest number of UploadPart calls that were running at the same time.
    pub fn max_parts_in_flight(&self) -> usize {
        self.lock().max_parts_in_flight
    }

    /// Returns part numbers in the order their successful UploadPart calls finished.
    pub fn part_completion_order(&self) -> Vec<u32> {
        self.lock().part_completion_order.clone()
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A test that panicked while holding the lock has failed already; keep the data usable.
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn location_of(&self, key: &str) -> String {
        format!("mem://{}/{key}", self.bucket)
    }

    fn error(
        &self,
        kind: ErrorKind,
        operation: Operation,
        key: &str,
        code: &str,
        message: &str,
    ) -> StorageError {
        StorageError::new(kind, operation.name(), self.location_of(key), message).with_code(code)
    }

    /// Records the call and returns the action of the first matching fault, if any.
    fn begin(
        &self,
        operation: Operation,
        key: &str,
        part_number: Option<u32>,
    ) -> Option<FaultAction> {
        let mut state = self.lock();
        state.calls.push(Call {
            operation,
            key: key.to_string(),
            part_number,
        });
        let fault = state.faults.iter_mut().find(|fault| {
            fault.operation == operation
                && fault
                    .part_number
                    .is_none_or(|number| Some(number) == part_number)
                && fault.remaining != Some(0)
        })?;
        if let Some(remaining) = fault.remaining.as_mut() {
            *remaining -= 1;
        }
        Some(fault.action)
    }

    /// Turns an injected `Fail` into the error a real store would return.
    fn injected(
        &self,
        action: Option<FaultAction>,
        operation: Operation,
        key: &str,
    ) -> Result<(), StorageError> {
        match action {
            Some(FaultAction::Fail(kind)) => {
                let code = match kind {
                    ErrorKind::NotFound => "NoSuchKey",
                    ErrorKind::NoSuchUpload => "NoSuchUpload",
                    ErrorKind::AlreadyExists => "FileAlreadyExists",
                    ErrorKind::Permanent => "AccessDenied",
                    ErrorKind::Transient => "InternalError",
                };
                Err(self.error(kind, operation, key, code, "injected failure"))
            }
            _ => Ok(()),
        }
    }

    fn info(&self, object: &StoredObject) -> ObjectInfo {
        ObjectInfo {
            size: object.data.len() as u64,
            etag: Some(object.etag.clone()),
            crc64: self.reports_crc64.then(|| crc64(&object.data)),
            metadata: object.metadata.clone(),
        }
    }

    fn head_object(&self, key: &str) -> Result<Option<ObjectInfo>, StorageError> {
        let action = self.begin(Operation::HeadObject, key, None);
        self.injected(action, Operation::HeadObject, key)?;
        Ok(self.lock().objects.get(key).map(|object| self.info(object)))
    }
}

/// Decrements the in-flight part count even when the UploadPart future is dropped.
struct InFlightGuard<'a>(&'a MemoryStore);

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.0.lock().parts_in_flight -= 1;
    }
}

#[async_trait]
impl ObjectSource for MemoryStore {
    fn location(&self, key: &str) -> String {
        self.location_of(key)
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StorageError> {
        self.head_object(key)
    }

    async fn get(
        &self,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<(ObjectInfo, ByteStream), StorageError> {
        let action = self.begin(Operation::GetObject, key, None);
        self.injected(action, Operation::GetObject, key)?;
        let object = self.lock().objects.get(key).cloned();
        let Some(object) = object else {
            return Err(self.error(
                ErrorKind::NotFound,
                Operation::GetObject,
                key,
                "NoSuchKey",
                "no object at the key",
            ));
        };

        let info = self.info(&object);
        let mut data = object.data;
        if let Some(range) = range {
            let last = range.last.min((data.len() as u64).saturating_sub(1));
            if data.is_empty() || range.first > last {
                return Err(self.error(
                    ErrorKind::Permanent,
                    Operation::GetObject,
                    key,
                    "InvalidRange",
                    "range outside the object",
                ));
            }
            data = data.slice(range.first as usize..=last as usize);
        }
        let cut_after = match action {
            Some(FaultAction::CutBodyAfter(bytes)) => Some(bytes.min(data.len() as u64) as usize),
            _ => None,
        };

        let mut items: Vec<Result<Bytes, StorageError>> = Vec::new();
        let readable = data.slice(..cut_after.unwrap_or(data.len()));
        let mut offset = 0;
        while offset < readable.len() {
            let end = (offset + self.chunk_size).min(readable.len());
            items.push(Ok(readable.slice(offset..end)));
            offset = end;
        }
        if cut_after.is_some() {
            items.push(Err(self.error(
                ErrorKind::Transient,
                Operation::GetObject,
                key,
                "ConnectionReset",
                "body cut short",
            )));
        }
        Ok((info, Box::pin(futures::stream::iter(items))))
    }
}

#[async_trait]
impl ObjectSink for MemoryStore {
    fn location(&self, key: &str) -> String {
        self.location_of(key)
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StorageError> {
        self.head_object(key)
    }

    async fn put(
        &self,
        key: &str,
        body: Bytes,
        options: &PutOptions,
    ) -> Result<WriteOutcome, StorageError> {
        let action = self.begin(Operation::PutObject, key, None);
        self.injected(action, Operation::PutObject, key)?;
        let mut state = self.lock();
        if options.forbid_overwrite && state.objects.contains_key(key) {
            return Err(self.error(
                ErrorKind::AlreadyExists,
                Operation::PutObject,
                key,
                "FileAlreadyExists",
                "object exists",
            ));
        }
        let crc = crc64(&body);
        let etag = hex::encode(Md5::digest(&body));
        let object = StoredObject {
            data: body,
            etag: etag.clone(),
            metadata: options.metadata.clone(),
        };
        state.objects.insert(key.to_string(), object);
        let reported = match action {
            Some(FaultAction::ReportCrc64(value)) => value,
            _ => crc,
        };
        Ok(WriteOutcome {
            etag: Some(etag),
            crc64: Some(reported),
        })
    }

    async fn create_multipart(
        &self,
        key: &str,
        options: &PutOptions,
    ) -> Result<String, StorageError> {
        let action = self.begin(Operation::CreateMultipartUpload, key, None);
        self.injected(action, Operation::CreateMultipartUpload, key)?;
        let mut state = self.lock();
        state.uploads_created += 1;
        let upload_id = format!("upload-{}", state.uploads_created);
        let upload = Upload {
            key: key.to_string(),
            options: options.clone(),
            parts: BTreeMap::new(),
        };
        state.uploads.insert(upload_id.clone(), upload);
        Ok(upload_id)
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Bytes,
    ) -> Result<UploadedPart, StorageError> {
        let action = self.begin(Operation::UploadPart, key, Some(part_number));
        {
            let mut state = self.lock();
            state.parts_in_flight += 1;
            state.max_parts_in_flight = state.max_parts_in_flight.max(state.parts_in_flight);
        }
        let _guard = InFlightGuard(self);
        let yields = self
            .part_yields
            .as_ref()
            .map_or(0, |yields| yields(part_number));
        for _ in 0..yields {
            tokio::task::yield_now().await;
        }
        self.injected(action, Operation::UploadPart, key)?;

        if !(1..=10_000).contains(&part_number) {
            return Err(self.error(
                ErrorKind::Permanent,
                Operation::UploadPart,
                key,
                "InvalidArgument",
                "part number outside 1..=10000",
            ));
        }
        let mut state = self.lock();
        let Some(upload) = state
            .uploads
            .get_mut(upload_id)
            .filter(|upload| upload.key == key)
        else {
            return Err(self.error(
                ErrorKind::NoSuchUpload,
                Operation::UploadPart,
                key,
                "NoSuchUpload",
                "unknown upload id",
            ));
        };
        let etag = hex::encode(Md5::digest(&body));
        let part = UploadedPart {
            part_number,
            etag: etag.clone(),
            size: body.len() as u64,
            crc64: Some(crc64(&body)),
        };
        upload.parts.insert(part_number, (body, etag));
        state.part_completion_order.push(part_number);
        Ok(part)
    }

    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[UploadedPart],
        options: &PutOptions,
    ) -> Result<WriteOutcome, StorageError> {
        let operation = Operation::CompleteMultipartUpload;
        let action = self.begin(operation, key, None);
        self.injected(action, operation, key)?;
        let mut state = self.lock();
        let Some(upload) = state
            .uploads
            .get(upload_id)
            .filter(|upload| upload.key == key)
        else {
            return Err(self.error(
                ErrorKind::NoSuchUpload,
                operation,
                key,
                "NoSuchUpload",
                "unknown upload id",
            ));
        };
        if parts.is_empty()
            || parts
                .windows(2)
                .any(|pair| pair[0].part_number >= pair[1].part_number)
        {
            return Err(self.error(
                ErrorKind::Permanent,
                operation,
                key,
                "InvalidPartOrder",
                "parts must be listed in ascending order",
            ));
        }
        let mut data = Vec::new();
        let mut etags = Vec::new();
        for (index, listed) in parts.iter().enumerate() {
            let Some((body, etag)) = upload
                .parts
                .get(&listed.part_number)
                .filter(|(_, etag)| *etag == listed.etag)
            else {
                return Err(self.error(
                    ErrorKind::Permanent,
                    operation,
                    key,
                    "InvalidPart",
                    "listed part not uploaded or ETag differs",
                ));
            };
            if index + 1 < parts.len() && (body.len() as u64) < self.min_part_size {
                return Err(self.error(
                    ErrorKind::Permanent,
                    operation,
                    key,
                    "EntityTooSmall",
                    "part below the minimum size",
                ));
            }
            data.extend_from_slice(body);
            etags.push(etag.clone());
        }
        let forbid_overwrite = options.forbid_overwrite || upload.options.forbid_overwrite;
        if forbid_overwrite && state.objects.contains_key(key) {
            return Err(self.error(
                ErrorKind::AlreadyExists,
                operation,
                key,
                "FileAlreadyExists",
                "object exists",
            ));
        }

        // Like OSS and S3, user metadata comes from the initiate request; Complete cannot set it.
        let metadata = upload.options.metadata.clone();
        let data = Bytes::from(data);
        let crc = crc64(&data);
        let etag = format!(
            "{}-{}",
            hex::encode(Md5::digest(etags.concat())),
            parts.len()
        );
        state.uploads.remove(upload_id);
        state.objects.insert(
            key.to_string(),
            StoredObject {
                data,
                etag: etag.clone(),
                metadata,
            },
        );
        let reported = match action {
            Some(FaultAction::ReportCrc64(value)) => value,
            _ => crc,
        };
        Ok(WriteOutcome {
            etag: Some(etag),
            crc64: Some(reported),
        })
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), StorageError> {
        let action = self.begin(Operation::AbortMultipartUpload, key, None);
        self.injected(action, Operation::AbortMultipartUpload, key)?;
        self.lock().uploads.remove(upload_id);
        Ok(())
    }

    async fn list_parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> Result<Vec<UploadedPart>, StorageError> {
        let action = self.begin(Operation::ListParts, key, None);
        self.injected(action, Operation::ListParts, key)?;
        let state = self.lock();
        let Some(upload) = state
            .uploads
            .get(upload_id)
            .filter(|upload| upload.key == key)
        else {
            return Err(self.error(
                ErrorKind::NoSuchUpload,
                Operation::ListParts,
                key,
                "NoSuchUpload",
                "unknown upload id",
            ));
        };
        let parts = upload
            .parts
            .iter()
            .map(|(number, (body, etag))| UploadedPart {
                part_number: *number,
                etag: etag.clone(),
                size: body.len() as u64,
                crc64: Some(crc64(body)),
            });
        Ok(parts.collect())
    }

    async fn list_pending_uploads(&self, prefix: &str) -> Result<Vec<PendingUpload>, StorageError> {
        let action = self.begin(Operation::ListMultipartUploads, prefix, None);
        self.injected(action, Operation::ListMultipartUploads, prefix)?;
        let state = self.lock();
        let pending = state
            .uploads
            .iter()
            .filter(|(_, upload)| upload.key.starts_with(prefix));
        Ok(pending
            .map(|(id, upload)| PendingUpload {
                key: upload.key.clone(),
                upload_id: id.clone(),
            })
            .collect())
    }
}

#[async_trait]
impl MarkerStore for MemoryStore {
    async fn create_marker(&self, key: &str, body: Bytes) -> Result<bool, StorageError> {
        let action = self.begin(Operation::CreateMarker, key, None);
        self.injected(action, Operation::CreateMarker, key)?;
        let mut state = self.lock();
        if state.markers.contains_key(key) {
            return Ok(false);
        }
        state.markers.insert(key.to_string(), body);
        Ok(true)
    }

    async fn read_marker(&self, key: &str) -> Result<Option<Bytes>, StorageError> {
        let action = self.begin(Operation::ReadMarker, key, None);
        self.injected(action, Operation::ReadMarker, key)?;
        Ok(self.lock().markers.get(key).cloned())
    }

    async fn delete_marker(&self, key: &str) -> Result<(), StorageError> {
        let action = self.begin(Operation::DeleteMarker, key, None);
        self.injected(action, Operation::DeleteMarker, key)?;
        self.lock().markers.remove(key);
        Ok(())
    }
}
