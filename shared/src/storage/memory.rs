//! An in-memory object store for domain tests. It implements [`ObjectSource`], [`ObjectSink`]
//! and [`MarkerStore`], records every call and injects chosen failures.
//!
//! It behaves like OSS where the engine could get it wrong. It returns CRC-64/XZ on every
//! write, and at Complete it checks ascending part order, the minimum size of every part but
//! the last, part numbers 1 to 10,000 and `forbid_overwrite`.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;
use bytes::Bytes;
use md5::{Digest, Md5};

use super::{
    ByteRange, ByteStream, ErrorKind, MarkerStore, ObjectInfo, ObjectSource, PutOptions,
    StorageError,
};
use crate::checksum::crc64;

mod fault;
mod sink;

pub use fault::{Call, Fault, FaultAction, Operation};

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
        let fault = state
            .faults
            .iter_mut()
            .find(|fault| fault.matches(operation, part_number))?;
        Some(fault.consume())
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
