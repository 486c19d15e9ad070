//! The writing side of the in-memory store, with the checks OSS makes on multipart uploads.

use std::collections::BTreeMap;

use async_trait::async_trait;
use bytes::Bytes;
use md5::{Digest, Md5};

use super::{FaultAction, MemoryStore, Operation, StoredObject, Upload};
use crate::checksum::crc64;
use crate::storage::{
    ErrorKind, ObjectInfo, ObjectSink, PendingUpload, PutOptions, StorageError, UploadedPart,
    WriteOutcome,
};

/// Decrements the in-flight part count even when the UploadPart future is dropped.
struct InFlightGuard<'a>(&'a MemoryStore);

impl Drop for InFlightGuard<'_> {
    fn drop(&mut self) {
        self.0.lock().parts_in_flight -= 1;
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
        let reported = match action {
            Some(FaultAction::ReportCrc64(value)) => value,
            _ => crc64(&body),
        };
        let part = UploadedPart {
            part_number,
            etag: etag.clone(),
            size: body.len() as u64,
            crc64: Some(reported),
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

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        let action = self.begin(Operation::DeleteObject, key, None);
        self.injected(action, Operation::DeleteObject, key)?;
        self.lock().objects.remove(key);
        Ok(())
    }

    /// Like OSS's CopyObject of an object onto itself with `x-oss-metadata-directive: REPLACE`
    /// and `x-oss-copy-source-if-match`.
    async fn replace_metadata(
        &self,
        key: &str,
        etag: &str,
        options: &PutOptions,
    ) -> Result<bool, StorageError> {
        let action = self.begin(Operation::CopyObject, key, None);
        self.injected(action, Operation::CopyObject, key)?;
        let mut state = self.lock();
        let Some(object) = state.objects.get_mut(key) else {
            return Err(self.error(
                ErrorKind::NotFound,
                Operation::CopyObject,
                key,
                "NoSuchKey",
                "object does not exist",
            ));
        };
        if object.etag != etag {
            return Err(self.error(
                ErrorKind::Permanent,
                Operation::CopyObject,
                key,
                "PreconditionFailed",
                "ETag does not match x-oss-copy-source-if-match",
            ));
        }
        object.metadata = options.metadata.clone();
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::storage::MarkerStore;
    use crate::storage::memory::Fault;

    async fn upload_two_parts(
        store: &MemoryStore,
        first_size: usize,
    ) -> (String, Vec<UploadedPart>) {
        let options = PutOptions::default();
        let upload_id = store
            .create_multipart("k", &options)
            .await
            .expect("upload starts");
        let first = store
            .upload_part("k", &upload_id, 1, Bytes::from(vec![1; first_size]))
            .await
            .expect("part 1");
        let second = store
            .upload_part("k", &upload_id, 2, Bytes::from(vec![2; 10]))
            .await
            .expect("part 2");
        (upload_id, vec![first, second])
    }

    #[tokio::test]
    async fn complete_rejects_descending_parts() {
        let store = MemoryStore::new("b").with_min_part_size(4);
        let (upload_id, mut parts) = upload_two_parts(&store, 8).await;
        parts.reverse();

        let error = store
            .complete_multipart("k", &upload_id, &parts, &PutOptions::default())
            .await
            .expect_err("rejected");

        assert_eq!(error.code.as_deref(), Some("InvalidPartOrder"));
        assert_eq!(store.pending_upload_ids(), [upload_id]);
    }

    #[tokio::test]
    async fn complete_rejects_small_part_before_last() {
        let store = MemoryStore::new("b").with_min_part_size(100);
        let (upload_id, parts) = upload_two_parts(&store, 99).await;

        let error = store
            .complete_multipart("k", &upload_id, &parts, &PutOptions::default())
            .await
            .expect_err("rejected");

        assert_eq!(error.code.as_deref(), Some("EntityTooSmall"));
    }

    #[tokio::test]
    async fn complete_returns_crc64_of_whole_object() {
        let store = MemoryStore::new("b").with_min_part_size(4);
        let (upload_id, parts) = upload_two_parts(&store, 8).await;

        let outcome = store
            .complete_multipart("k", &upload_id, &parts, &PutOptions::default())
            .await
            .expect("completes");

        let data = store.object("k").expect("object exists");
        assert_eq!(data.len(), 18);
        assert_eq!(outcome.crc64, Some(crc64(&data)));
        assert!(store.pending_upload_ids().is_empty());
    }

    #[tokio::test]
    async fn finished_upload_is_no_such_upload() {
        let store = MemoryStore::new("b").with_min_part_size(4);
        let (upload_id, parts) = upload_two_parts(&store, 8).await;
        store
            .complete_multipart("k", &upload_id, &parts, &PutOptions::default())
            .await
            .expect("completes");

        let error = store
            .upload_part("k", &upload_id, 3, Bytes::from_static(b"x"))
            .await
            .expect_err("rejected");

        assert_eq!(error.kind, ErrorKind::NoSuchUpload);
    }

    #[tokio::test]
    async fn forbid_overwrite_rejects_existing_object() {
        let store = MemoryStore::new("b");
        store.insert_object("k", Bytes::from_static(b"old"), BTreeMap::new());
        let options = PutOptions {
            forbid_overwrite: true,
            ..PutOptions::default()
        };

        let error = store
            .put("k", Bytes::from_static(b"new"), &options)
            .await
            .expect_err("rejected");

        assert_eq!(error.kind, ErrorKind::AlreadyExists);
        assert_eq!(store.object("k"), Some(Bytes::from_static(b"old")));
    }

    #[tokio::test]
    async fn marker_is_created_once() {
        let store = MemoryStore::new("b");

        let first = store
            .create_marker("m", Bytes::from_static(b"1"))
            .await
            .expect("first");
        let second = store
            .create_marker("m", Bytes::from_static(b"2"))
            .await
            .expect("second");

        assert!(first);
        assert!(!second);
        assert_eq!(
            store.read_marker("m").await.expect("read"),
            Some(Bytes::from_static(b"1"))
        );
    }

    #[tokio::test]
    async fn injected_fault_applies_given_times() {
        let store = MemoryStore::new("b");
        store.inject(
            Fault::new(
                Operation::PutObject,
                FaultAction::Fail(ErrorKind::Transient),
            )
            .times(1),
        );
        let options = PutOptions::default();

        let first = store.put("k", Bytes::from_static(b"x"), &options).await;
        let second = store.put("k", Bytes::from_static(b"x"), &options).await;

        assert!(first.is_err_and(|error| error.is_retryable()));
        assert!(second.is_ok());
        assert_eq!(store.calls_of(Operation::PutObject).len(), 2);
    }
}
