//! The OSS API operations behind [`ObjectSource`] and [`ObjectSink`], plus DeleteObject.

use async_trait::async_trait;
use bytes::Bytes;
use futures::TryStreamExt;
use percent_encoding::percent_decode_str;
use reqwest::{Method, Response};

use super::client::{OssRequest, OssStore, describe_reqwest_error};
use super::response::{self, META_PREFIX, malformed_reply};
use super::signer;
use super::xml;
use crate::checksum::{content_md5, parse_crc64};
use crate::storage::{
    ByteRange, ByteStream, ErrorKind, ObjectInfo, ObjectSink, ObjectSource, PendingUpload,
    PutOptions, StorageError, UploadedPart, WriteOutcome,
};

/// Page size of ListParts and ListMultipartUploads (the OSS maximum for both is 1000).
const PAGE_SIZE: &str = "1000";

impl OssStore {
    async fn head_object(&self, key: &str) -> Result<Option<ObjectInfo>, StorageError> {
        let request = OssRequest::new("HeadObject", Method::HEAD, Some(key));
        match self.send(request).await {
            Ok(reply) => match response::object_info(reply.headers()) {
                Some(info) => Ok(Some(info)),
                None => Err(malformed_reply(
                    "HeadObject",
                    self.object_location(key),
                    "no Content-Length".into(),
                )),
            },
            Err(error) if error.kind == ErrorKind::NotFound => Ok(None),
            Err(error) => Err(error),
        }
    }

    /// Reads a small XML reply body. A cut body is a transient error and unreadable XML a
    /// permanent one.
    async fn read_xml<T: for<'de> serde::Deserialize<'de>>(
        &self,
        operation: &'static str,
        location: String,
        reply: Response,
    ) -> Result<T, StorageError> {
        let text = reply.text().await.map_err(|error| {
            StorageError::new(
                ErrorKind::Transient,
                operation,
                &location,
                describe_reqwest_error(&error),
            )
        })?;
        xml::parse(&text)
            .map_err(|error| malformed_reply(operation, location, format!("invalid XML: {error}")))
    }
}

/// Adds the headers that a new object carries: type, user metadata and the overwrite guard.
fn with_put_options<'a>(mut request: OssRequest<'a>, options: &PutOptions) -> OssRequest<'a> {
    if let Some(content_type) = &options.content_type {
        request = request.header("content-type", content_type.as_str());
    }
    for (name, value) in &options.metadata {
        request = request.header(
            &format!("{META_PREFIX}{}", name.to_ascii_lowercase()),
            value.as_str(),
        );
    }
    if options.forbid_overwrite {
        request = request.header("x-oss-forbid-overwrite", "true");
    }
    request
}

fn write_outcome(reply: &Response) -> WriteOutcome {
    WriteOutcome {
        etag: response::etag(reply.headers()),
        crc64: response::crc64(reply.headers()),
    }
}

#[async_trait]
impl ObjectSource for OssStore {
    fn location(&self, key: &str) -> String {
        self.object_location(key)
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StorageError> {
        self.head_object(key).await
    }

    /// Streams the object. A ranged read sends `x-oss-range-behavior: standard`, so a range
    /// past the end fails (`InvalidRange`) instead of returning the whole object.
    async fn get(
        &self,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<(ObjectInfo, ByteStream), StorageError> {
        let location = self.object_location(key);
        let mut request = OssRequest::new("GetObject", Method::GET, Some(key));
        if let Some(range) = range {
            if range.first > range.last {
                let message = format!(
                    "invalid range {}-{}: the first byte is after the last",
                    range.first, range.last
                );
                return Err(StorageError::new(
                    ErrorKind::Permanent,
                    "GetObject",
                    location,
                    message,
                ));
            }
            request = request
                .header("range", format!("bytes={}-{}", range.first, range.last))
                .header("x-oss-range-behavior", "standard");
        }

        let reply = self.send(request).await?;
        if range.is_some() && reply.status().as_u16() != 206 {
            let message = format!(
                "expected a partial reply (206) to a range request, got {}",
                reply.status().as_u16()
            );
            return Err(malformed_reply("GetObject", location, message));
        }
        let Some(info) = response::object_info(reply.headers()) else {
            return Err(malformed_reply(
                "GetObject",
                location,
                "no Content-Length".into(),
            ));
        };

        let stream = reply.bytes_stream().map_err(move |error| {
            StorageError::new(
                ErrorKind::Transient,
                "GetObject",
                location.clone(),
                describe_reqwest_error(&error),
            )
        });
        Ok((info, Box::pin(stream)))
    }
}

#[async_trait]
impl ObjectSink for OssStore {
    fn location(&self, key: &str) -> String {
        self.object_location(key)
    }

    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StorageError> {
        self.head_object(key).await
    }

    async fn put(
        &self,
        key: &str,
        body: Bytes,
        options: &PutOptions,
    ) -> Result<WriteOutcome, StorageError> {
        let request = OssRequest::new("PutObject", Method::PUT, Some(key))
            .header("content-md5", content_md5(&body));
        let request = with_put_options(request, options).body(body);
        let reply = self.send(request).await?;
        Ok(write_outcome(&reply))
    }

    async fn create_multipart(
        &self,
        key: &str,
        options: &PutOptions,
    ) -> Result<String, StorageError> {
        let request = OssRequest::new("InitiateMultipartUpload", Method::POST, Some(key))
            .query("uploads", "");
        let reply = self.send(with_put_options(request, options)).await?;
        let result: xml::InitiateMultipartUploadResult = self
            .read_xml("InitiateMultipartUpload", self.object_location(key), reply)
            .await?;
        Ok(result.upload_id)
    }

    /// Sends one part without `Content-MD5`, which OSS takes as optional. OSS returns the part's
    /// CRC-64 in `x-oss-hash-crc64ecma`, and the transfer engine compares it with its own and
    /// sends the part again when they differ, as Aliyun's SDKs check parts by default. PutObject
    /// keeps `Content-MD5`, so OSS refuses a damaged single-put body before it replaces anything.
    async fn upload_part(
        &self,
        key: &str,
        upload_id: &str,
        part_number: u32,
        body: Bytes,
    ) -> Result<UploadedPart, StorageError> {
        let size = body.len() as u64;
        let request = OssRequest::new("UploadPart", Method::PUT, Some(key))
            .query("partNumber", part_number.to_string())
            .query("uploadId", upload_id)
            .body(body);
        let reply = self
            .send(request)
            .await
            .map_err(|error| with_upload_id(error, upload_id))?;
        let Some(etag) = response::etag(reply.headers()) else {
            let location = self.object_location(key);
            return Err(malformed_reply(
                "UploadPart",
                location,
                format!("no ETag for part {part_number} of upload {upload_id}"),
            ));
        };
        Ok(UploadedPart {
            part_number,
            etag,
            size,
            crc64: response::crc64(reply.headers()),
        })
    }

    /// Completes the upload. The parts are sorted by number here as well, because OSS rejects
    /// a list out of order (`InvalidPartOrder`). A part number listed twice is an error.
    async fn complete_multipart(
        &self,
        key: &str,
        upload_id: &str,
        parts: &[UploadedPart],
        options: &PutOptions,
    ) -> Result<WriteOutcome, StorageError> {
        let location = self.object_location(key);
        let mut sorted = parts.to_vec();
        sorted.sort_by_key(|part| part.part_number);
        if sorted.is_empty()
            || sorted
                .windows(2)
                .any(|pair| pair[0].part_number == pair[1].part_number)
        {
            let message =
                format!("upload {upload_id} needs at least one part and each part number once");
            return Err(StorageError::new(
                ErrorKind::Permanent,
                "CompleteMultipartUpload",
                location,
                message,
            ));
        }

        let body = Bytes::from(xml::complete_multipart_body(&sorted));
        let request = OssRequest::new("CompleteMultipartUpload", Method::POST, Some(key))
            .query("uploadId", upload_id)
            .header("content-type", "application/xml")
            .header("content-md5", content_md5(&body));
        let request = with_put_options(
            request,
            &PutOptions {
                forbid_overwrite: options.forbid_overwrite,
                ..PutOptions::default()
            },
        );
        let reply = self
            .send(request.body(body))
            .await
            .map_err(|error| with_upload_id(error, upload_id))?;

        let header_outcome = write_outcome(&reply);
        let result: xml::CompleteMultipartUploadResult = self
            .read_xml("CompleteMultipartUpload", location, reply)
            .await?;
        Ok(WriteOutcome {
            etag: header_outcome
                .etag
                .or(result.etag.map(|etag| xml::unquote(&etag).to_string())),
            crc64: header_outcome.crc64,
        })
    }

    async fn abort_multipart(&self, key: &str, upload_id: &str) -> Result<(), StorageError> {
        let request = OssRequest::new("AbortMultipartUpload", Method::DELETE, Some(key))
            .query("uploadId", upload_id);
        match self.send(request).await {
            Ok(_) => Ok(()),
            // The upload was completed or aborted already, so nothing is left to clean up.
            Err(error) if error.kind == ErrorKind::NoSuchUpload => {
                tracing::debug!(
                    key,
                    upload_id,
                    "multipart upload was already gone when aborted"
                );
                Ok(())
            }
            Err(error) => Err(with_upload_id(error, upload_id)),
        }
    }

    async fn list_parts(
        &self,
        key: &str,
        upload_id: &str,
    ) -> Result<Vec<UploadedPart>, StorageError> {
        let mut parts = Vec::new();
        let mut marker: Option<String> = None;
        loop {
            let mut request = OssRequest::new("ListParts", Method::GET, Some(key))
                .query("uploadId", upload_id)
                .query("max-parts", PAGE_SIZE);
            if let Some(marker) = &marker {
                request = request.query("part-number-marker", marker.as_str());
            }
            let reply = self
                .send(request)
                .await
                .map_err(|error| with_upload_id(error, upload_id))?;
            let page: xml::ListPartsResult = self
                .read_xml("ListParts", self.object_location(key), reply)
                .await?;

            parts.extend(page.parts.into_iter().map(|part| UploadedPart {
                part_number: part.part_number,
                etag: xml::unquote(&part.etag).to_string(),
                size: part.size,
                crc64: part.crc64.as_deref().and_then(parse_crc64),
            }));
            match page.next_part_number_marker {
                Some(next) if page.is_truncated && marker.as_deref() != Some(next.as_str()) => {
                    marker = Some(next)
                }
                _ => break,
            }
        }
        parts.sort_by_key(|part| part.part_number);
        Ok(parts)
    }

    async fn delete(&self, key: &str) -> Result<(), StorageError> {
        self.send(OssRequest::new("DeleteObject", Method::DELETE, Some(key)))
            .await?;
        Ok(())
    }

    /// Copies the object onto itself with `x-oss-metadata-directive: REPLACE`: in a bucket
    /// without versioning OSS then changes only the metadata and keeps the bytes, whatever the
    /// object's size. `x-oss-copy-source-if-match` makes sure it is still the object we wrote.
    async fn replace_metadata(
        &self,
        key: &str,
        etag: &str,
        options: &PutOptions,
    ) -> Result<bool, StorageError> {
        let encoded_key: Vec<String> = key.split('/').map(signer::uri_encode).collect();
        let source = format!("/{}/{}", self.bucket(), encoded_key.join("/"));
        let request = OssRequest::new("CopyObject", Method::PUT, Some(key))
            .header("x-oss-copy-source", &source)
            .header("x-oss-copy-source-if-match", format!("\"{etag}\""))
            .header("x-oss-metadata-directive", "REPLACE");
        let request = with_put_options(
            request,
            &PutOptions {
                forbid_overwrite: false,
                ..options.clone()
            },
        );
        let reply = self.send(request).await?;
        let _: xml::CopyObjectResult = self
            .read_xml("CopyObject", self.object_location(key), reply)
            .await?;
        Ok(true)
    }

    async fn list_pending_uploads(&self, prefix: &str) -> Result<Vec<PendingUpload>, StorageError> {
        let mut uploads = Vec::new();
        let mut markers: Option<(String, String)> = None;
        loop {
            // Keys may contain characters that XML 1.0 cannot carry, so they come URL-encoded.
            let mut request = OssRequest::new("ListMultipartUploads", Method::GET, None)
                .query("uploads", "")
                .query("max-uploads", PAGE_SIZE)
                .query("encoding-type", "url");
            if !prefix.is_empty() {
                request = request.query("prefix", prefix);
            }
            if let Some((key_marker, upload_id_marker)) = &markers {
                request = request
                    .query("key-marker", key_marker.as_str())
                    .query("upload-id-marker", upload_id_marker.as_str());
            }
            let location = format!("oss://{}/{prefix}", self.bucket());
            let reply = self.send(request).await?;
            let page: xml::ListMultipartUploadsResult = self
                .read_xml("ListMultipartUploads", location.clone(), reply)
                .await?;

            let url_encoded = page.encoding_type.as_deref() == Some("url");
            let decode = |text: String| -> Result<String, StorageError> {
                if !url_encoded {
                    return Ok(text);
                }
                match percent_decode_str(&text).decode_utf8() {
                    Ok(decoded) => Ok(decoded.into_owned()),
                    Err(_) => Err(malformed_reply(
                        "ListMultipartUploads",
                        location.clone(),
                        format!("key {text} is not valid UTF-8 once decoded"),
                    )),
                }
            };
            for upload in page.uploads {
                uploads.push(PendingUpload {
                    key: decode(upload.key)?,
                    upload_id: upload.upload_id,
                });
            }
            let next = match (page.next_key_marker, page.next_upload_id_marker) {
                (Some(key), Some(upload_id)) => Some((decode(key)?, upload_id)),
                _ => None,
            };
            match next {
                Some(next) if page.is_truncated && markers.as_ref() != Some(&next) => {
                    markers = Some(next)
                }
                _ => break,
            }
        }
        Ok(uploads)
    }
}

/// Names the upload id in the message, so that a failed part can be traced to its upload.
fn with_upload_id(mut error: StorageError, upload_id: &str) -> StorageError {
    error.message = format!("{} (upload id {upload_id})", error.message);
    error
}
