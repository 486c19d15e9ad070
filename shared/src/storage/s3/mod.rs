//! S3 adapter over the official `aws-sdk-s3`: one [`S3Store`] per bucket implements
//! [`ObjectSource`], [`ObjectSink`], [`MarkerStore`] and [`ObjectLister`].
//!
//! S3 computes no CRC-64/XZ, so the CRC that backup-bridge verifies copies with is stored as
//! user metadata under [`CRC64_METADATA_KEY`] and read back from there.

mod error;
mod sink;

use std::collections::{BTreeMap, HashMap};

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream;

use crate::checksum::{content_md5, parse_crc64};
use crate::storage::{
    ByteRange, ByteStream, ErrorKind, ListedObject, MarkerStore, ObjectInfo, ObjectLister,
    ObjectSource, StorageError,
};

/// User metadata key (sent as `x-amz-meta-crc64ecma`) that holds the CRC-64/XZ of an object as
/// an unsigned decimal string, the same form OSS uses in `x-oss-hash-crc64ecma`.
pub const CRC64_METADATA_KEY: &str = "crc64ecma";

/// ListObjectsV2 returns at most 1000 keys per page.
const MAX_LIST_PAGE_SIZE: i32 = 1000;

/// How to reach S3, beyond what `aws_config` already reads from the environment.
#[derive(Debug, Clone, Default)]
pub struct S3ClientOptions {
    /// Overrides the endpoint, e.g. `http://127.0.0.1:5000` for moto. `aws_config` also reads
    /// `AWS_ENDPOINT_URL_S3` by itself when the configuration is loaded from the environment.
    pub endpoint_url: Option<String>,
    /// Addresses buckets as `endpoint/bucket/key` instead of `bucket.endpoint/key`; needed
    /// for moto and other endpoints without per-bucket host names.
    pub force_path_style: bool,
}

/// Builds an S3 client from a loaded `aws_config` configuration and [`S3ClientOptions`].
pub fn build_client(
    sdk_config: &aws_config::SdkConfig,
    options: &S3ClientOptions,
) -> aws_sdk_s3::Client {
    let mut builder = aws_sdk_s3::config::Builder::from(sdk_config);
    if let Some(endpoint) = &options.endpoint_url {
        builder = builder.endpoint_url(endpoint);
    }
    builder = builder.force_path_style(options.force_path_style);
    aws_sdk_s3::Client::from_conf(builder.build())
}

/// One S3 bucket behind the storage ports.
#[derive(Clone, Debug)]
pub struct S3Store {
    client: aws_sdk_s3::Client,
    bucket: String,
    list_page_size: i32,
}

impl S3Store {
    pub fn new(client: aws_sdk_s3::Client, bucket: impl Into<String>) -> Self {
        Self {
            client,
            bucket: bucket.into(),
            list_page_size: MAX_LIST_PAGE_SIZE,
        }
    }

    /// Sets how many keys each ListObjectsV2 request asks for, clamped to 1..=1000. Smaller
    /// pages only make sense in tests of pagination.
    pub fn with_list_page_size(mut self, page_size: u32) -> Self {
        self.list_page_size = i32::try_from(page_size)
            .unwrap_or(MAX_LIST_PAGE_SIZE)
            .clamp(1, MAX_LIST_PAGE_SIZE);
        self
    }

    pub fn bucket(&self) -> &str {
        &self.bucket
    }

    fn location_of(&self, key: &str) -> String {
        format!("s3://{}/{key}", self.bucket)
    }

    /// Reads an object's size, ETag, metadata and stored CRC-64, or `None` on 404.
    async fn head_object(&self, key: &str) -> Result<Option<ObjectInfo>, StorageError> {
        let result = self
            .client
            .head_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        match result {
            Ok(output) => Ok(Some(object_info(
                output.content_length(),
                output.e_tag(),
                output.metadata(),
            ))),
            Err(sdk_error) => {
                let error = error::from_sdk("HeadObject", self.location_of(key), sdk_error);
                if error.kind == ErrorKind::NotFound {
                    Ok(None)
                } else {
                    Err(error)
                }
            }
        }
    }

    /// Writes `body` with `If-None-Match: *`; returns false when an object already exists.
    async fn put_if_absent(&self, key: &str, body: Bytes) -> Result<bool, StorageError> {
        let result = self
            .client
            .put_object()
            .bucket(&self.bucket)
            .key(key)
            .content_md5(content_md5(&body))
            .content_length(body_length(&body))
            .if_none_match("*")
            .body(body.into())
            .send()
            .await;
        match result {
            Ok(_) => Ok(true),
            Err(sdk_error) => {
                let error = error::from_sdk("PutObject", self.location_of(key), sdk_error);
                // 412 means the object exists; 409 means a concurrent conditional write to the
                // same key is in progress, which will leave the marker in place for someone else.
                let lost_race = error.kind == ErrorKind::AlreadyExists
                    || error.code.as_deref() == Some("ConditionalRequestConflict");
                if lost_race { Ok(false) } else { Err(error) }
            }
        }
    }
}

#[async_trait]
impl ObjectSource for S3Store {
    fn location(&self, key: &str) -> String {
        self.location_of(key)
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StorageError> {
        self.head_object(key).await
    }

    /// Opens the object as a stream. With a range, `ObjectInfo.size` is still the size of the
    /// whole object, taken from `Content-Range`. A failure while reading the body is
    /// [`ErrorKind::Transient`] and ends the stream.
    async fn get(
        &self,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<(ObjectInfo, ByteStream), StorageError> {
        let location = self.location_of(key);
        let output = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .set_range(range.map(|range| format!("bytes={}-{}", range.first, range.last)))
            .send()
            .await
            .map_err(|sdk_error| error::from_sdk("GetObject", location.clone(), sdk_error))?;

        let total_size = output.content_range().and_then(total_from_content_range);
        let mut info = object_info(output.content_length(), output.e_tag(), output.metadata());
        if let Some(total_size) = total_size {
            info.size = total_size;
        }
        Ok((info, body_stream(output.body, location)))
    }
}

#[async_trait]
impl MarkerStore for S3Store {
    async fn create_marker(&self, key: &str, body: Bytes) -> Result<bool, StorageError> {
        self.put_if_absent(key, body).await
    }

    async fn read_marker(&self, key: &str) -> Result<Option<Bytes>, StorageError> {
        let location = self.location_of(key);
        let result = self
            .client
            .get_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        let output = match result {
            Ok(output) => output,
            Err(sdk_error) => {
                let error = error::from_sdk("GetObject", location, sdk_error);
                return if error.kind == ErrorKind::NotFound {
                    Ok(None)
                } else {
                    Err(error)
                };
            }
        };
        let body = output
            .body
            .collect()
            .await
            .map_err(|read_error| body_read_error(location, &read_error))?;
        Ok(Some(body.into_bytes()))
    }

    /// Deletes the marker. S3 answers DeleteObject on a missing key with success.
    async fn delete_marker(&self, key: &str) -> Result<(), StorageError> {
        let result = self
            .client
            .delete_object()
            .bucket(&self.bucket)
            .key(key)
            .send()
            .await;
        match result {
            Ok(_) => Ok(()),
            Err(sdk_error) => {
                let error = error::from_sdk("DeleteObject", self.location_of(key), sdk_error);
                if error.kind == ErrorKind::NotFound {
                    Ok(())
                } else {
                    Err(error)
                }
            }
        }
    }
}

#[async_trait]
impl ObjectLister for S3Store {
    async fn list(&self, prefix: &str) -> Result<Vec<ListedObject>, StorageError> {
        let mut objects = Vec::new();
        let mut continuation_token: Option<String> = None;
        loop {
            let output = self
                .client
                .list_objects_v2()
                .bucket(&self.bucket)
                .prefix(prefix)
                .max_keys(self.list_page_size)
                .set_continuation_token(continuation_token.take())
                .send()
                .await
                .map_err(|sdk_error| {
                    error::from_sdk("ListObjectsV2", self.location_of(prefix), sdk_error)
                })?;

            for object in output.contents() {
                let Some(key) = object.key() else { continue };
                objects.push(ListedObject {
                    key: key.to_owned(),
                    size: non_negative(object.size()),
                    etag: object.e_tag().map(unquote),
                });
            }

            match output.next_continuation_token() {
                Some(token) if output.is_truncated() == Some(true) => {
                    continuation_token = Some(token.to_owned());
                }
                _ => return Ok(objects),
            }
        }
    }
}

/// Builds [`ObjectInfo`] from the fields HeadObject and GetObject share.
fn object_info(
    content_length: Option<i64>,
    etag: Option<&str>,
    metadata: Option<&HashMap<String, String>>,
) -> ObjectInfo {
    let metadata: BTreeMap<String, String> = metadata
        .into_iter()
        .flatten()
        .map(|(name, value)| (name.to_ascii_lowercase(), value.clone()))
        .collect();
    let crc64 = metadata
        .get(CRC64_METADATA_KEY)
        .and_then(|value| parse_crc64(value));
    ObjectInfo {
        size: non_negative(content_length),
        etag: etag.map(unquote),
        crc64,
        metadata,
    }
}

/// Reads the total size from `Content-Range: bytes first-last/total`.
fn total_from_content_range(content_range: &str) -> Option<u64> {
    content_range.rsplit_once('/')?.1.trim().parse().ok()
}

fn unquote(etag: &str) -> String {
    etag.trim_matches('"').to_owned()
}

fn non_negative(value: Option<i64>) -> u64 {
    value
        .and_then(|value| u64::try_from(value).ok())
        .unwrap_or(0)
}

/// Returns the body length in the type the SDK takes; `Bytes` never exceeds `i64::MAX`.
fn body_length(body: &Bytes) -> i64 {
    i64::try_from(body.len()).unwrap_or(i64::MAX)
}

fn body_read_error(
    location: String,
    read_error: &(dyn std::error::Error + 'static),
) -> StorageError {
    StorageError::new(
        ErrorKind::Transient,
        "GetObject",
        location,
        format!(
            "failed to read the response body: {}",
            error::display_chain(read_error)
        ),
    )
}

/// Turns the SDK body into our [`ByteStream`]; the first read error ends the stream.
fn body_stream(body: aws_sdk_s3::primitives::ByteStream, location: String) -> ByteStream {
    Box::pin(stream::unfold(Some(body), move |state| {
        let location = location.clone();
        async move {
            let mut body = state?;
            match body.next().await? {
                Ok(chunk) => Some((Ok(chunk), Some(body))),
                Err(read_error) => Some((Err(body_read_error(location, &read_error)), None)),
            }
        }
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn content_range_total_is_parsed() {
        assert_eq!(total_from_content_range("bytes 0-99/12345"), Some(12345));
        assert_eq!(total_from_content_range("bytes 0-99/*"), None);
    }

    #[test]
    fn object_info_reads_crc64_from_metadata_and_lowercases_keys() {
        let metadata = HashMap::from([
            ("CRC64ECMA".to_owned(), "11051210869376104954".to_owned()),
            ("Source-ETag".to_owned(), "abc".to_owned()),
        ]);
        let info = object_info(Some(9), Some("\"etag-1\""), Some(&metadata));
        assert_eq!(info.size, 9);
        assert_eq!(info.etag.as_deref(), Some("etag-1"));
        assert_eq!(info.crc64, Some(11051210869376104954));
        assert_eq!(
            info.metadata.get("source-etag").map(String::as_str),
            Some("abc")
        );
    }

    #[test]
    fn list_page_size_is_clamped_to_s3_limits() {
        let config = aws_sdk_s3::Config::builder()
            .behavior_version(aws_sdk_s3::config::BehaviorVersion::latest())
            .build();
        let client = aws_sdk_s3::Client::from_conf(config);
        assert_eq!(
            S3Store::new(client.clone(), "b")
                .with_list_page_size(0)
                .list_page_size,
            1
        );
        assert_eq!(
            S3Store::new(client, "b")
                .with_list_page_size(5000)
                .list_page_size,
            1000
        );
    }
}
