//! CopyObject of an object onto itself, the way OSS replaces an object's metadata: the bytes,
//! ETag and CRC-64 stay, the user metadata and content type are replaced. Copies between
//! different objects and UploadPartCopy are not served.

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use chrono::Utc;
use percent_encoding::percent_decode_str;

use super::router::Context;
use super::xml::OssError;

pub(crate) fn copy_object(context: &Context) -> Result<Response, OssError> {
    let source = context.header("x-oss-copy-source").unwrap_or_default();
    let (source_bucket, source_key) = parse_copy_source(source)?;
    if context.has_query("uploadId") || context.has_query("partNumber") {
        return Err(OssError::not_implemented(
            "the fake OSS does not implement UploadPartCopy",
        ));
    }
    if source_bucket != context.bucket || source_key != context.key {
        return Err(OssError::not_implemented(
            "the fake OSS copies an object only onto itself, to replace its metadata",
        ));
    }
    let replace = match context.header("x-oss-metadata-directive") {
        None => false,
        Some(value) if value.eq_ignore_ascii_case("COPY") => false,
        Some(value) if value.eq_ignore_ascii_case("REPLACE") => true,
        Some(value) => {
            return Err(OssError::invalid_argument(format!(
                "x-oss-metadata-directive must be COPY or REPLACE, not {value}"
            ))
            .with_detail("ArgumentName", "x-oss-metadata-directive")
            .with_detail("ArgumentValue", value));
        }
    };

    let mut state = context.shared.store.lock();
    let object = state
        .objects
        .get_mut(&(context.bucket.clone(), context.key.clone()))
        .ok_or_else(OssError::no_such_key)?;
    if context.forbids_overwrite() {
        return Err(OssError::file_already_exists());
    }
    if let Some(wanted) = context.header("x-oss-copy-source-if-match")
        && wanted.trim_matches('"') != object.etag.trim_matches('"')
    {
        return Err(OssError::new(
            StatusCode::PRECONDITION_FAILED,
            "PreconditionFailed",
            "At least one of the pre-conditions you specified did not hold.",
        )
        .with_detail("Condition", "If-Match"));
    }
    if replace {
        object.metadata = context.user_metadata();
        object.content_type = context
            .header("content-type")
            .unwrap_or("application/octet-stream")
            .to_string();
    }
    object.last_modified = Utc::now();
    let body = format!(
        "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<CopyObjectResult>\n  <ETag>{}</ETag>\n  <LastModified>{}</LastModified>\n</CopyObjectResult>\n",
        object.etag,
        object.last_modified.format("%Y-%m-%dT%H:%M:%S%.3fZ")
    );
    let crc64 = object.crc64;
    drop(state);
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/xml")
        .header("x-oss-hash-crc64ecma", crc64.to_string())
        .body(Body::from(body))
        .map_err(|error| OssError::internal(error.to_string()))
}

/// Splits `/bucket/url-encoded-key` into bucket and decoded key.
fn parse_copy_source(source: &str) -> Result<(String, String), OssError> {
    let invalid = || {
        OssError::invalid_argument(format!(
            "x-oss-copy-source must be /<bucket>/<key>, not {source}"
        ))
    };
    let rest = source.strip_prefix('/').ok_or_else(invalid)?;
    let (bucket, key) = rest.split_once('/').ok_or_else(invalid)?;
    let key = percent_decode_str(key)
        .decode_utf8()
        .map_err(|_| invalid())?
        .into_owned();
    if bucket.is_empty() || key.is_empty() {
        return Err(invalid());
    }
    Ok((bucket.to_string(), key))
}
