//! Storage ports: what the transfer engine needs from an object store, with no SDK type in sight.
//!
//! [`ObjectSource`] reads objects (S3, OSS, an HTTP download); [`ObjectSink`] writes them, with
//! multipart uploads for large bodies. Adapters live in submodules and in `crate::oss`.

mod error;
pub mod http;
mod listing;
pub mod memory;
pub mod s3;

use std::collections::BTreeMap;
use std::pin::Pin;

use async_trait::async_trait;
use bytes::Bytes;
use futures::Stream;

pub use error::{ErrorKind, StorageError};
pub use listing::{ListedObject, ObjectLister};

/// A stream of body chunks; each chunk may fail on its own (a reset mid-body, a short body).
pub type ByteStream = Pin<Box<dyn Stream<Item = Result<Bytes, StorageError>> + Send>>;

/// What a store reports about one object.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectInfo {
    pub size: u64,
    /// The store's ETag without quotes. Multipart ETags differ between clouds, so never compare
    /// them across stores.
    pub etag: Option<String>,
    /// CRC-64/XZ of the whole object where the store computes one (OSS always does).
    pub crc64: Option<u64>,
    /// User metadata with the store's prefix (`x-amz-meta-`, `x-oss-meta-`) removed, keys lowercase.
    pub metadata: BTreeMap<String, String>,
}

/// A byte range, both ends inclusive, as in an HTTP `Range: bytes=first-last` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ByteRange {
    pub first: u64,
    pub last: u64,
}

/// Options for a new object.
#[derive(Debug, Clone, Default)]
pub struct PutOptions {
    /// User metadata, written with the store's prefix.
    pub metadata: BTreeMap<String, String>,
    /// Makes the store reject the write when an object already exists at the key
    /// (`x-oss-forbid-overwrite: true` on OSS, `If-None-Match: *` on S3).
    pub forbid_overwrite: bool,
    pub content_type: Option<String>,
}

/// One uploaded part, as UploadPart returned it or ListParts listed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UploadedPart {
    pub part_number: u32,
    pub etag: String,
    pub size: u64,
    /// CRC-64/XZ of the part where the store returns one.
    pub crc64: Option<u64>,
}

/// What a store reports about a finished write.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    pub etag: Option<String>,
    /// CRC-64/XZ of the whole object where the store returns one.
    pub crc64: Option<u64>,
}

/// An unfinished multipart upload, as ListMultipartUploads lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PendingUpload {
    pub key: String,
    pub upload_id: String,
}

/// Reads objects from one bucket.
#[async_trait]
pub trait ObjectSource: Send + Sync {
    /// Returns a printable location such as `s3://bucket/key` for logs and errors.
    fn location(&self, key: &str) -> String;

    /// Returns the object's size and checksums, or `None` when no object exists at `key`.
    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StorageError>;

    /// Opens the object (or one range of it) as a stream.
    async fn get(
        &self,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<(ObjectInfo, ByteStream), StorageError>;
}

/// Writes objects into one bucket.
#[async_trait]
pub trait ObjectSink: Send + Sync {
    /// Returns a printable location such as `oss://bucket/key` for logs and errors.
    fn location(&self, key: &str) -> String;

    /// Returns the object's size and checksums, or `None` when no object exists at `key`.
    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StorageError>;

    /// Writes a whole object in one request, with a checksum of the body that the store verifies.
    async fn put(
        &self,
        key: &str,
        body: Bytes,
        options: &PutOptions,
    ) -> Result<WriteOutcome, StorageError>;

    /// Starts a multipart upload and returns its upload id.
    async fn create_multipart(
        &self,
        key: &str,
        options: &PutOptions,
    ) -> Result<String, StorageError>;

    /// Uploads one part with a checksum of the body that the store verifies.
    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Bytes,
    ) -> Result<UploadedPart, StorageError>;

    /// Completes the upload from `parts`, which must be in ascending part order.
    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[UploadedPart],
        options: &PutOptions,
    ) -> Result<WriteOutcome, StorageError>;

    /// Aborts the upload; an upload that no longer exists counts as aborted.
    async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), StorageError>;

    /// Lists the parts uploaded so far, in ascending part order.
    async fn list_parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> Result<Vec<UploadedPart>, StorageError>;

    /// Lists unfinished multipart uploads whose key starts with `prefix`.
    async fn list_pending_uploads(&self, prefix: &str) -> Result<Vec<PendingUpload>, StorageError>;

    /// Deletes the object at `key`; a missing object counts as deleted. Used only to remove an
    /// object this copy has just written and found corrupt.
    async fn delete(&self, key: &str) -> Result<(), StorageError>;

    /// Replaces the user metadata and content type of the object at `key`, whose ETag must
    /// still be `etag`, without rewriting its bytes. Returns false when the store cannot do
    /// that, so metadata known only after a multipart upload is not recorded there.
    async fn replace_metadata(
        &self,
        key: &str,
        etag: &str,
        options: &PutOptions,
    ) -> Result<bool, StorageError> {
        let _ = (key, etag, options);
        Ok(false)
    }
}

/// Small marker objects written at most once, so that concurrent Lambdas agree on who acts
/// (one alert per fingerprint, one report per export state). S3 implements it with a
/// conditional PutObject (`If-None-Match: *`).
#[async_trait]
pub trait MarkerStore: Send + Sync {
    /// Writes the marker unless one exists; returns true when this call created it.
    async fn create_marker(&self, key: &str, body: Bytes) -> Result<bool, StorageError>;

    /// Reads a marker, or `None` when none exists.
    async fn read_marker(&self, key: &str) -> Result<Option<Bytes>, StorageError>;

    /// Deletes a marker; a missing marker counts as deleted.
    async fn delete_marker(&self, key: &str) -> Result<(), StorageError>;
}
