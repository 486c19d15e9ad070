//! Turning HTTP responses into object bodies or errors: status and error-body parsing, the
//! checks of `Content-Length` and `Content-Range`, and a body stream that counts its bytes.

use std::collections::BTreeMap;

use futures::StreamExt;
use reqwest::header::HeaderMap;

use super::redact;
use crate::checksum::parse_crc64;
use crate::storage::{ByteRange, ByteStream, ErrorKind, ObjectInfo, StorageError};

/// Maximum number of error-body bytes read to find the error code and message.
const MAX_ERROR_BODY: usize = 4096;

pub(super) fn transport_error(
    operation: &'static str,
    url: &str,
    error: reqwest::Error,
) -> StorageError {
    // The URL is dropped from the error because its query carries the presigned signature.
    let error = error.without_url();
    let mut message = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    StorageError::new(
        ErrorKind::Transient,
        operation,
        redact(url),
        format!("request failed: {message}"),
    )
}

/// Returns the text of the first `<name>` element of an XML error body.
pub(super) fn xml_element(body: &str, name: &str) -> Option<String> {
    let start = body.find(&format!("<{name}>"))? + name.len() + 2;
    let end = body[start..].find(&format!("</{name}>"))? + start;
    Some(body[start..end].trim().to_string())
}

/// Turns a non-2xx response into an error, reading at most [`MAX_ERROR_BODY`] bytes of its body
/// for the OSS error code, message and request id. The body is never treated as data.
pub(super) async fn status_error(
    operation: &'static str,
    url: &str,
    response: reqwest::Response,
) -> StorageError {
    let status = response.status().as_u16();
    let header_request_id = response
        .headers()
        .get("x-oss-request-id")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let location = response
        .headers()
        .get("location")
        .and_then(|value| value.to_str().ok())
        .map(redact);

    let mut body = Vec::new();
    let mut stream = response.bytes_stream();
    while let Some(Ok(chunk)) = stream.next().await {
        body.extend_from_slice(&chunk);
        if body.len() >= MAX_ERROR_BODY {
            body.truncate(MAX_ERROR_BODY);
            break;
        }
    }
    let body = String::from_utf8_lossy(&body);
    let code = xml_element(&body, "Code");
    let message = match (&location, status) {
        (Some(target), 300..=399) => format!("redirect to another host rejected: {target}"),
        _ => xml_element(&body, "Message").unwrap_or_else(|| format!("http status {status}")),
    };
    let kind = if (300..=399).contains(&status) {
        ErrorKind::Permanent
    } else {
        StorageError::kind_for(status, code.as_deref())
    };

    let mut error = StorageError::new(kind, operation, redact(url), message);
    if let Some(code) = code {
        error = error.with_code(code);
    }
    if let Some(request_id) = xml_element(&body, "RequestId").or(header_request_id) {
        error = error.with_request_id(request_id);
    }
    tracing::warn!(operation, location = %error.location, status, code = error.code.as_deref(), "download failed");
    error
}

pub(super) fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// Parses `Content-Range: bytes first-last/total`.
pub(super) fn content_range(headers: &HeaderMap) -> Option<(u64, u64, u64)> {
    let text = headers
        .get("content-range")?
        .to_str()
        .ok()?
        .trim()
        .strip_prefix("bytes ")?;
    let (span, total) = text.split_once('/')?;
    let (first, last) = span.split_once('-')?;
    Some((first.parse().ok()?, last.parse().ok()?, total.parse().ok()?))
}

pub(super) fn object_info(headers: &HeaderMap, size: u64) -> ObjectInfo {
    let text = |name: &str| headers.get(name).and_then(|value| value.to_str().ok());
    let metadata: BTreeMap<String, String> = headers
        .iter()
        .filter_map(|(name, value)| {
            let name = name.as_str().strip_prefix("x-oss-meta-")?;
            Some((name.to_string(), value.to_str().ok()?.to_string()))
        })
        .collect();
    ObjectInfo {
        size,
        etag: text("etag").map(|etag| etag.trim_matches('"').to_string()),
        // OSS sends the CRC-64/XZ of the whole object, also on a range response.
        crc64: text("x-oss-hash-crc64ecma").and_then(parse_crc64),
        metadata,
    }
}

/// Checks what a response promises against the request. Returns the object's total size and
/// the number of body bytes to expect.
pub(super) fn check_response(
    url: &str,
    response: &reqwest::Response,
    range: Option<ByteRange>,
) -> Result<(u64, u64), StorageError> {
    let invalid = |message: String| {
        StorageError::new(ErrorKind::Transient, "GetObject", redact(url), message)
    };
    let headers = response.headers();
    let length = header_u64(headers, "content-length")
        .ok_or_else(|| invalid("response has no Content-Length".into()))?;
    match (range, response.status().as_u16()) {
        (None, 200) => Ok((length, length)),
        (Some(requested), 206) => {
            let (first, last, total) = content_range(headers)
                .ok_or_else(|| invalid("range response has no valid Content-Range".into()))?;
            // OSS shortens a range that runs past the end of the object to its last byte.
            let expected_last = requested.last.min(total.saturating_sub(1));
            if first != requested.first || last != expected_last || length != last - first + 1 {
                return Err(invalid(format!(
                    "requested bytes {}-{} but got Content-Range {first}-{last}/{total} with Content-Length {length}",
                    requested.first, requested.last
                )));
            }
            Ok((total, length))
        }
        (Some(_), 200) => Err(StorageError::new(
            ErrorKind::Permanent,
            "GetObject",
            redact(url),
            "server ignored the Range header and sent the whole object",
        )),
        (_, status) => Err(invalid(format!(
            "unexpected status {status} for a download"
        ))),
    }
}

/// The progress of a body that [`counted_body`] checks.
struct BodyState {
    chunks: futures::stream::BoxStream<'static, reqwest::Result<bytes::Bytes>>,
    location: String,
    received: u64,
    expected: u64,
    done: bool,
}

/// Wraps a body so that it fails unless exactly `expected` bytes arrive.
pub(super) fn counted_body(url: &str, response: reqwest::Response, expected: u64) -> ByteStream {
    let state = BodyState {
        chunks: response.bytes_stream().boxed(),
        location: redact(url),
        received: 0,
        expected,
        done: false,
    };
    let stream = futures::stream::unfold(state, |mut state| async move {
        if state.done {
            return None;
        }
        let failure = |state: &BodyState, message: String| {
            StorageError::new(
                ErrorKind::Transient,
                "GetObject",
                state.location.clone(),
                message,
            )
        };
        match state.chunks.next().await {
            Some(Ok(chunk)) => {
                state.received += chunk.len() as u64;
                if state.received > state.expected {
                    state.done = true;
                    let message = format!(
                        "body is longer than its Content-Length of {} bytes",
                        state.expected
                    );
                    return Some((Err(failure(&state, message)), state));
                }
                Some((Ok(chunk), state))
            }
            Some(Err(error)) => {
                state.done = true;
                let message = format!(
                    "body failed after {} of {} bytes: {}",
                    state.received,
                    state.expected,
                    error.without_url()
                );
                Some((Err(failure(&state, message)), state))
            }
            None if state.received != state.expected => {
                state.done = true;
                let message = format!(
                    "body cut short after {} of {} bytes",
                    state.received, state.expected
                );
                Some((Err(failure(&state, message)), state))
            }
            None => None,
        }
    });
    Box::pin(stream)
}
