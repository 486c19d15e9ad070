//! Object operations: PutObject, GetObject (with `Range`), HeadObject and DeleteObject.

use axum::body::Body;
use axum::http::StatusCode;
use axum::response::Response;
use base64::Engine;
use chrono::Utc;

use super::router::Context;
use super::store::{StoredObject, remove_file};
use super::xml::OssError;
use super::{faults, http_date};

/// Parses a `Content-MD5` header into the 16 digest bytes, or rejects it as OSS does.
pub(crate) fn parse_content_md5(context: &Context) -> Result<Option<[u8; 16]>, OssError> {
    let Some(text) = context.header("content-md5") else {
        return Ok(None);
    };
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .unwrap_or_default();
    let digest: [u8; 16] = bytes.try_into().map_err(|_| {
        invalid_digest(format!(
            "Content-MD5 {text} is not the base64 of a 16-byte MD5 digest"
        ))
    })?;
    Ok(Some(digest))
}

pub(crate) fn invalid_digest(message: impl Into<String>) -> OssError {
    OssError::new(StatusCode::BAD_REQUEST, "InvalidDigest", message)
}

pub(crate) fn incomplete_body(error: std::io::Error) -> OssError {
    OssError::new(
        StatusCode::BAD_REQUEST,
        "IncompleteBody",
        format!("failed to read the request body: {error}"),
    )
}

fn object_key(context: &Context) -> (String, String) {
    (context.bucket.clone(), context.key.clone())
}

pub(crate) async fn put_object(context: &Context, body: Body) -> Result<Response, OssError> {
    let store = &context.shared.store;
    if context.forbids_overwrite() && store.lock().objects.contains_key(&object_key(context)) {
        return Err(OssError::file_already_exists());
    }
    let expected_md5 = parse_content_md5(context)?;
    let written = store.write_body(body).await.map_err(incomplete_body)?;
    if let Some(expected) = expected_md5
        && expected != written.md5
    {
        remove_file(&written.path);
        return Err(invalid_digest("The Content-MD5 you specified was invalid."));
    }

    let object = StoredObject {
        size: written.size,
        crc64: written.crc64,
        etag: format!("\"{}\"", hex::encode_upper(written.md5)),
        content_type: context
            .header("content-type")
            .unwrap_or("application/octet-stream")
            .to_string(),
        metadata: context.user_metadata(),
        last_modified: Utc::now(),
        parts: None,
        path: written.path,
    };
    let reply = Response::builder()
        .status(StatusCode::OK)
        .header("etag", &object.etag)
        .header("x-oss-hash-crc64ecma", object.crc64.to_string())
        .header(
            "content-md5",
            base64::engine::general_purpose::STANDARD.encode(written.md5),
        );

    let mut state = store.lock();
    let key = object_key(context);
    if context.forbids_overwrite() && state.objects.contains_key(&key) {
        drop(state);
        remove_file(&object.path);
        return Err(OssError::file_already_exists());
    }
    if let Some(previous) = state.objects.insert(key, object) {
        remove_file(&previous.path);
    }
    drop(state);
    reply
        .body(Body::empty())
        .map_err(|error| OssError::internal(error.to_string()))
}

/// A byte range `first..=last` inside an object.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct ByteRange {
    first: u64,
    last: u64,
}

/// What a GetObject sends for a `Range` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum RangeOutcome {
    Partial(ByteRange),
    /// The header is ignored and the whole object is sent with 200.
    Whole,
    /// 416 `InvalidRange`.
    Unsatisfiable,
}

/// Resolves `bytes=a-b`, `bytes=a-` and `bytes=-n` as OSS does. By default OSS ignores a range
/// that does not fit inside the object and sends the whole object. With
/// `x-oss-range-behavior: standard` it trims an end beyond the object and rejects a start beyond
/// it with 416.
fn resolve_range(header: &str, size: u64, standard: bool) -> RangeOutcome {
    // NOTE: a multi-range header is ignored here; OSS documents both "first range only" and 416.
    let Some((start, end)) = header
        .trim()
        .strip_prefix("bytes=")
        .filter(|spec| !spec.contains(','))
        .and_then(|spec| spec.split_once('-'))
    else {
        return RangeOutcome::Whole;
    };
    let (start, end) = (start.trim(), end.trim());
    let beyond = if standard {
        RangeOutcome::Unsatisfiable
    } else {
        RangeOutcome::Whole
    };

    if start.is_empty() {
        let Ok(suffix) = end.parse::<u64>() else {
            return RangeOutcome::Whole;
        };
        if suffix == 0 || size == 0 {
            return beyond;
        }
        if suffix > size && !standard {
            return RangeOutcome::Whole;
        }
        return RangeOutcome::Partial(ByteRange {
            first: size.saturating_sub(suffix),
            last: size - 1,
        });
    }

    let Ok(first) = start.parse::<u64>() else {
        return RangeOutcome::Whole;
    };
    if first >= size {
        return beyond;
    }
    let last = if end.is_empty() {
        size - 1
    } else {
        match end.parse::<u64>() {
            Ok(last) if last < first => return RangeOutcome::Whole,
            Ok(last) if last >= size && !standard => return RangeOutcome::Whole,
            Ok(last) => last.min(size - 1),
            Err(_) => return RangeOutcome::Whole,
        }
    };
    RangeOutcome::Partial(ByteRange { first, last })
}

/// Serves GetObject, or HeadObject when `head_only`: the whole-object CRC-64, ETag and user
/// metadata go in the headers of both.
pub(crate) fn get_object(context: &Context, head_only: bool) -> Result<Response, OssError> {
    let (object, file) = {
        let state = context.shared.store.lock();
        let object = state
            .objects
            .get(&object_key(context))
            .cloned()
            .ok_or_else(OssError::no_such_key)?;
        // Open while locked so an overwrite that removes this file cannot come in between.
        let file = if head_only {
            None
        } else {
            Some(std::fs::File::open(&object.path).map_err(|error| {
                OssError::internal(format!("failed to open the stored body: {error}"))
            })?)
        };
        (object, file)
    };

    let standard = context
        .header("x-oss-range-behavior")
        .is_some_and(|value| value.eq_ignore_ascii_case("standard"));
    let outcome = context
        .header("range")
        .map_or(RangeOutcome::Whole, |header| {
            resolve_range(header, object.size, standard)
        });
    let range = match outcome {
        RangeOutcome::Partial(range) => Some(range),
        RangeOutcome::Whole => None,
        RangeOutcome::Unsatisfiable => {
            return Err(OssError::new(
                StatusCode::RANGE_NOT_SATISFIABLE,
                "InvalidRange",
                "The requested range cannot be satisfied.",
            ));
        }
    };
    let (status, first, length) = match range {
        Some(range) => (
            StatusCode::PARTIAL_CONTENT,
            range.first,
            range.last - range.first + 1,
        ),
        None => (StatusCode::OK, 0, object.size),
    };

    let mut reply = Response::builder()
        .status(status)
        .header("content-length", length)
        .header("content-type", &object.content_type)
        .header("etag", &object.etag)
        .header("last-modified", http_date(object.last_modified))
        .header("accept-ranges", "bytes")
        .header(
            "x-oss-object-type",
            if object.parts.is_some() {
                "Multipart"
            } else {
                "Normal"
            },
        )
        .header("x-oss-storage-class", "Standard")
        .header("x-oss-hash-crc64ecma", object.crc64.to_string());
    if let Some(range) = range {
        reply = reply.header(
            "content-range",
            format!("bytes {}-{}/{}", range.first, range.last, object.size),
        );
    }
    for (name, value) in &object.metadata {
        reply = reply.header(format!("x-oss-meta-{name}"), value);
    }

    let body = match file {
        None => Body::empty(),
        Some(file) => {
            let mut cut_after = *context
                .shared
                .cut_downloads_after
                .lock()
                .unwrap_or_else(|poisoned| poisoned.into_inner());
            if let Some(bytes) = take_link_expiry(context) {
                cut_after = Some(bytes);
            }
            faults::file_body(tokio::fs::File::from_std(file), first, length, cut_after)
        }
    };
    reply
        .body(body)
        .map_err(|error| OssError::internal(error.to_string()))
}

pub(crate) fn delete_object(context: &Context) -> Result<Response, OssError> {
    let removed = context
        .shared
        .store
        .lock()
        .objects
        .remove(&object_key(context));
    if let Some(object) = removed {
        remove_file(&object.path);
    }
    Response::builder()
        .status(StatusCode::NO_CONTENT)
        .body(Body::empty())
        .map_err(|error| OssError::internal(error.to_string()))
}

/// Takes the pending "expire the link mid-download" fault when this GetObject came through a
/// query-signed link: returns where to cut the body and expires the link from now on.
fn take_link_expiry(context: &Context) -> Option<u64> {
    let expires: i64 = context.query("Expires")?.parse().ok()?;
    let bytes = context
        .shared
        .expire_link_after
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .take()?;
    *context
        .shared
        .links_expired_up_to
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(expires);
    Some(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn partial(first: u64, last: u64) -> RangeOutcome {
        RangeOutcome::Partial(ByteRange { first, last })
    }

    #[test]
    fn resolve_range_reads_every_form() {
        assert_eq!(resolve_range("bytes=0-9", 100, false), partial(0, 9));
        assert_eq!(resolve_range("bytes=90-", 100, false), partial(90, 99));
        assert_eq!(resolve_range("bytes=-10", 100, false), partial(90, 99));
        assert_eq!(resolve_range("bytes=0-99", 100, false), partial(0, 99));
    }

    #[test]
    fn resolve_range_ignores_misfits_by_default() {
        assert_eq!(
            resolve_range("bytes=50-500", 100, false),
            RangeOutcome::Whole
        );
        assert_eq!(resolve_range("bytes=100-", 100, false), RangeOutcome::Whole);
        assert_eq!(resolve_range("bytes=-200", 100, false), RangeOutcome::Whole);
        assert_eq!(resolve_range("bytes=9-3", 100, false), RangeOutcome::Whole);
        assert_eq!(
            resolve_range("bytes=0-1,5-6", 100, false),
            RangeOutcome::Whole
        );
        assert_eq!(resolve_range("byte=0-1", 100, false), RangeOutcome::Whole);
        assert_eq!(resolve_range("bytes=0-0", 0, false), RangeOutcome::Whole);
    }

    #[test]
    fn resolve_range_standard_trims_end_and_rejects_start() {
        assert_eq!(resolve_range("bytes=50-500", 100, true), partial(50, 99));
        assert_eq!(resolve_range("bytes=-200", 100, true), partial(0, 99));
        assert_eq!(
            resolve_range("bytes=100-200", 100, true),
            RangeOutcome::Unsatisfiable
        );
        assert_eq!(
            resolve_range("bytes=0-0", 0, true),
            RangeOutcome::Unsatisfiable
        );
    }
}
