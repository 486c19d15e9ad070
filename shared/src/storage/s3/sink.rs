//! [`ObjectSink`] for [`S3Store`]: PutObject and the multipart upload calls.
//!
//! Every body carries the CRC-32 that the SDK computes by default (`x-amz-checksum-crc32`), which
//! S3 checks on arrival. The payload itself is not signed (`UNSIGNED-PAYLOAD`): the checksum already
//! protects the body, and SigV4's SHA-256 of every byte cost more CPU than the rest of a copy.
//! S3 returns no CRC-64/XZ, so `UploadedPart.crc64` and `WriteOutcome.crc64` are always `None`
//! here; callers store their own CRC in metadata.

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use aws_sdk_s3::types::{CompletedMultipartUpload, CompletedPart};
use bytes::Bytes;

use super::{S3Store, body_length, error, unquote};
use crate::storage::{
    ErrorKind, ObjectInfo, ObjectSink, PendingUpload, PutOptions, StorageError, UploadedPart,
    WriteOutcome,
};

#[async_trait]
impl ObjectSink for S3Store {
    fn location(&self, key: &str) -> String {
        self.location_of(key)
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StorageError> {
        self.head_object(key).await
    }

    /// Writes the object. With `forbid_overwrite` it sends `If-None-Match: *`, so an existing
    /// object makes S3 return 412 and the call fail with [`ErrorKind::AlreadyExists`].
    async fn put(
        &self,
        key: &str,
        body: Bytes,
        options: &PutOptions,
    ) -> Result<WriteOutcome, StorageError> {
        let output = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_length(body_length(&body))
            .set_metadata(metadata(&options.metadata))
            .set_content_type(options.content_type.clone())
            .set_if_none_match(options.forbid_overwrite.then(|| "*".to_owned()))
            .body(body.into())
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map_err(|sdk_error| error::from_sdk("PutObject", self.location_of(key), sdk_error))?;
        Ok(WriteOutcome {
            etag: output.e_tag().map(unquote),
            crc64: None,
        })
    }

    async fn create_multipart(
        &self,
        key: &str,
        options: &PutOptions,
    ) -> Result<String, StorageError> {
        const OPERATION: &str = "CreateMultipartUpload";
        let output = self
            .client
            .create_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .set_metadata(metadata(&options.metadata))
            .set_content_type(options.content_type.clone())
            .send()
            .await
            .map_err(|sdk_error| error::from_sdk(OPERATION, self.location_of(key), sdk_error))?;
        output
            .upload_id()
            .map(str::to_owned)
            .ok_or_else(|| error::missing_field(OPERATION, self.location_of(key), "upload id"))
    }

    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Bytes,
    ) -> Result<UploadedPart, StorageError> {
        const OPERATION: &str = "UploadPart";
        let location = self.upload_location(key, upload_id);
        let sdk_part_number = i32::try_from(part_number).map_err(|_| {
            StorageError::new(
                ErrorKind::Permanent,
                OPERATION,
                location.clone(),
                format!("part number {part_number} is out of range; S3 takes 1 to 10000"),
            )
        })?;
        let size = body.len() as u64;
        let output = self
            .client
            .upload_part()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .part_number(sdk_part_number)
            .content_length(body_length(&body))
            .body(body.into())
            .customize()
            .disable_payload_signing()
            .send()
            .await
            .map_err(|sdk_error| error::from_sdk(OPERATION, location.clone(), sdk_error))?;
        let etag = output
            .e_tag()
            .map(unquote)
            .ok_or_else(|| error::missing_field(OPERATION, location, "ETag"))?;
        Ok(UploadedPart {
            part_number,
            etag,
            size,
            crc64: None,
        })
    }

    /// Completes the upload. With `forbid_overwrite` it sends `If-None-Match: *`, so an object
    /// that appeared meanwhile makes it fail with [`ErrorKind::AlreadyExists`].
    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[UploadedPart],
        options: &PutOptions,
    ) -> Result<WriteOutcome, StorageError> {
        const OPERATION: &str = "CompleteMultipartUpload";
        let location = self.upload_location(key, upload_id);
        let mut completed = Vec::with_capacity(parts.len());
        for part in parts {
            let part_number = i32::try_from(part.part_number).map_err(|_| {
                StorageError::new(
                    ErrorKind::Permanent,
                    OPERATION,
                    location.clone(),
                    format!(
                        "part number {} is out of range; S3 takes 1 to 10000",
                        part.part_number
                    ),
                )
            })?;
            completed.push(
                CompletedPart::builder()
                    .part_number(part_number)
                    .e_tag(format!("\"{}\"", part.etag))
                    .build(),
            );
        }
        let upload = CompletedMultipartUpload::builder()
            .set_parts(Some(completed))
            .build();
        let output = self
            .client
            .complete_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .multipart_upload(upload)
            .set_if_none_match(options.forbid_overwrite.then(|| "*".to_owned()))
            .send()
            .await
            .map_err(|sdk_error| error::from_sdk(OPERATION, location, sdk_error))?;
        Ok(WriteOutcome {
            etag: output.e_tag().map(unquote),
            crc64: None,
        })
    }

    /// Aborts the upload; `NoSuchUpload` (already aborted or completed) counts as aborted.
    async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), StorageError> {
        let result = self
            .client
            .abort_multipart_upload()
            .bucket(&self.bucket)
            .key(key)
            .upload_id(upload_id)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(sdk_error) => {
                let location = self.upload_location(key, upload_id);
                let error = error::from_sdk("AbortMultipartUpload", location, sdk_error);
                if error.kind == ErrorKind::NoSuchUpload {
                    Ok(())
                } else {
                    Err(error)
                }
            }
        }
    }

    async fn list_parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> Result<Vec<UploadedPart>, StorageError> {
        const OPERATION: &str = "ListParts";
        let mut parts = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let output = self
                .client
                .list_parts()
                .bucket(&self.bucket)
                .key(key)
                .upload_id(upload_id)
                .set_part_number_marker(marker.clone())
                .send()
                .await
                .map_err(|sdk_error| {
                    error::from_sdk(OPERATION, self.upload_location(key, upload_id), sdk_error)
                })?;
            for part in output.parts() {
                let (Some(number), Some(etag)) = (part.part_number(), part.e_tag()) else {
                    continue;
                };
                parts.push(UploadedPart {
                    part_number: u32::try_from(number).unwrap_or(0),
                    etag: unquote(etag),
                    size: super::non_negative(part.size()),
                    crc64: None,
                });
            }
            // A marker that does not advance would repeat the same page forever.
            match output.next_part_number_marker() {
                Some(next)
                    if output.is_truncated() == Some(true) && marker.as_deref() != Some(next) =>
                {
                    marker = Some(next.to_owned());
                }
                _ => break,
            }
        }
        parts.sort_by_key(|part| part.part_number);
        Ok(parts)
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await
            .map_err(|sdk_error| {
                error::from_sdk("DeleteObject", self.location_of(key), sdk_error)
            })?;
        Ok(())
    }

    async fn list_pending_uploads(&self, prefix: &str) -> Result<Vec<PendingUpload>, StorageError> {
        let mut uploads = Vec::new();
        let mut key_marker: Option<String> = None;
        let mut upload_id_marker: Option<String> = None;
        loop {
            let output = self
                .client
                .list_multipart_uploads()
                .bucket(&self.bucket)
                .prefix(prefix)
                .set_key_marker(key_marker.clone())
                .set_upload_id_marker(upload_id_marker.clone())
                .send()
                .await
                .map_err(|sdk_error| {
                    error::from_sdk("ListMultipartUploads", self.location_of(prefix), sdk_error)
                })?;
            for upload in output.uploads() {
                if let (Some(key), Some(upload_id)) = (upload.key(), upload.upload_id()) {
                    uploads.push(PendingUpload {
                        key: key.to_owned(),
                        upload_id: upload_id.to_owned(),
                    });
                }
            }
            if output.is_truncated() != Some(true) {
                return Ok(uploads);
            }
            let next_key_marker = output.next_key_marker().map(str::to_owned);
            let next_upload_id_marker = output.next_upload_id_marker().map(str::to_owned);
            let advanced =
                next_key_marker != key_marker || next_upload_id_marker != upload_id_marker;
            if !advanced || (next_key_marker.is_none() && next_upload_id_marker.is_none()) {
                return Ok(uploads);
            }
            key_marker = next_key_marker;
            upload_id_marker = next_upload_id_marker;
        }
    }
}

impl S3Store {
    fn upload_location(&self, key: &str, upload_id: &str) -> String {
        format!("{} (upload id {upload_id})", self.location_of(key))
    }
}

/// Converts our metadata map for the SDK, which adds the `x-amz-meta-` prefix itself.
fn metadata(metadata: &BTreeMap<String, String>) -> Option<HashMap<String, String>> {
    if metadata.is_empty() {
        return None;
    }
    Some(
        metadata
            .iter()
            .map(|(name, value)| (name.clone(), value.clone()))
            .collect(),
    )
}
