//! Reading OSS replies: error bodies into [`StorageError`]s, and the object headers
//! (`ETag`, `x-oss-hash-crc64ecma`, `x-oss-meta-*`, sizes) into [`ObjectInfo`].

use std::collections::BTreeMap;

use base64::Engine;
use reqwest::Response;
use reqwest::header::HeaderMap;

use super::xml::{self, ErrorReply};
use crate::checksum::parse_crc64;
use crate::storage::{ErrorKind, ObjectInfo, StorageError};

/// The prefix of user metadata headers.
pub(super) const META_PREFIX: &str = "x-oss-meta-";
/// Error bodies are small XML documents. A longer body is cut here so that a misbehaving
/// proxy cannot make an error message huge.
const MAX_ERROR_BODY_BYTES: usize = 16 * 1024;

/// Returns the header's value as text, or `None` when it is absent or not visible ASCII.
pub(super) fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|value| value.to_str().ok())
}

pub(super) fn request_id(headers: &HeaderMap) -> Option<String> {
    header(headers, "x-oss-request-id").map(str::to_string)
}

/// Returns the ETag without its quotes.
pub(super) fn etag(headers: &HeaderMap) -> Option<String> {
    header(headers, "etag").map(|value| xml::unquote(value).to_string())
}

/// Reads `x-oss-hash-crc64ecma`, the decimal CRC-64/XZ that OSS computes for every write and
/// returns on reads of the whole object.
pub(super) fn crc64(headers: &HeaderMap) -> Option<u64> {
    header(headers, "x-oss-hash-crc64ecma").and_then(parse_crc64)
}

/// Collects `x-oss-meta-*` headers with the prefix removed and names in lowercase.
pub(super) fn metadata(headers: &HeaderMap) -> BTreeMap<String, String> {
    headers
        .iter()
        .filter_map(|(name, value)| {
            let name = name.as_str().strip_prefix(META_PREFIX)?;
            Some((
                name.to_string(),
                String::from_utf8_lossy(value.as_bytes()).into_owned(),
            ))
        })
        .collect()
}

/// Builds [`ObjectInfo`] from HEAD or GET headers. The size is the whole object's: the total
/// of `Content-Range` on a 206 reply, otherwise `Content-Length`.
pub(super) fn object_info(headers: &HeaderMap) -> Option<ObjectInfo> {
    let size = match header(headers, "content-range") {
        Some(range) => range
            .rsplit_once('/')
            .and_then(|(_, total)| total.trim().parse().ok())?,
        None => header(headers, "content-length")?.trim().parse().ok()?,
    };
    Some(ObjectInfo {
        size,
        etag: etag(headers),
        crc64: crc64(headers),
        metadata: metadata(headers),
    })
}

/// Turns a non-2xx reply into a [`StorageError`] with the OSS code, message and request id.
///
/// HEAD replies have no body, so OSS sends the error XML base64-encoded in `x-oss-err`, and
/// that header is read when the body is empty. A body that is not OSS error XML (a proxy's HTML
/// page, say) keeps the status alone for the retry decision.
pub(super) async fn error_from_response(
    operation: &'static str,
    location: String,
    response: Response,
) -> StorageError {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let body = read_error_body(response).await;

    let mut reply = parse_error_xml(&body);
    if reply.is_none() && body.trim().is_empty() {
        reply = header(&headers, "x-oss-err")
            .and_then(|encoded| {
                base64::engine::general_purpose::STANDARD
                    .decode(encoded.trim())
                    .ok()
            })
            .and_then(|decoded| parse_error_xml(&String::from_utf8_lossy(&decoded)));
    }
    let reply = reply.unwrap_or_default();

    let code = reply.code.filter(|code| !code.is_empty());
    let kind = StorageError::kind_for(status, code.as_deref());
    let mut message = match reply.message.filter(|message| !message.is_empty()) {
        Some(message) => message,
        None => format!("OSS replied with HTTP status {status}"),
    };
    if let Some(ec) = reply.ec.filter(|ec| !ec.is_empty()) {
        message.push_str(&format!(" (EC {ec})"));
    }

    let mut error = StorageError::new(kind, operation, location, message);
    if let Some(code) = code {
        error = error.with_code(code);
    }
    if let Some(request_id) = reply.request_id.or_else(|| request_id(&headers)) {
        error = error.with_request_id(request_id);
    }
    tracing::debug!(operation, location = %error.location, status, code = error.code.as_deref().unwrap_or(""), "OSS request failed");
    error
}

fn parse_error_xml(text: &str) -> Option<ErrorReply> {
    xml::parse::<ErrorReply>(text)
        .ok()
        .filter(|reply| reply.code.is_some())
}

/// Reads at most [`MAX_ERROR_BODY_BYTES`] of the body. After a failed read it returns what
/// arrived before the failure.
async fn read_error_body(mut response: Response) -> String {
    let mut body = Vec::new();
    while body.len() < MAX_ERROR_BODY_BYTES {
        match response.chunk().await {
            Ok(Some(chunk)) => body.extend_from_slice(&chunk),
            Ok(None) | Err(_) => break,
        }
    }
    body.truncate(MAX_ERROR_BODY_BYTES);
    String::from_utf8_lossy(&body).into_owned()
}

/// Builds the error for a 2xx reply whose body could not be read or understood.
pub(super) fn malformed_reply(
    operation: &'static str,
    location: String,
    what: String,
) -> StorageError {
    StorageError::new(
        ErrorKind::Permanent,
        operation,
        location,
        format!("OSS sent a malformed reply: {what}"),
    )
}

#[cfg(test)]
mod tests {
    use reqwest::header::{HeaderName, HeaderValue};

    use super::*;

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        map
    }

    #[test]
    fn object_info_reads_size_etag_crc_and_metadata() {
        let map = headers(&[
            ("content-length", "11"),
            ("etag", "\"5EB63BBBE01EEED093CB22BB8F5ACDC3\""),
            ("x-oss-hash-crc64ecma", "11051210869376104954"),
            ("x-oss-meta-source-etag", "abc"),
            ("x-oss-meta-crc64", "42"),
            ("x-oss-request-id", "RID"),
        ]);
        let info = object_info(&map).unwrap();
        assert_eq!(info.size, 11);
        assert_eq!(
            info.etag.as_deref(),
            Some("5EB63BBBE01EEED093CB22BB8F5ACDC3")
        );
        assert_eq!(info.crc64, Some(11051210869376104954));
        assert_eq!(
            info.metadata.get("source-etag").map(String::as_str),
            Some("abc")
        );
        assert_eq!(info.metadata.get("crc64").map(String::as_str), Some("42"));
        assert_eq!(info.metadata.len(), 2);
    }

    #[test]
    fn object_info_takes_whole_size_from_content_range() {
        let map = headers(&[
            ("content-length", "10"),
            ("content-range", "bytes 0-9/12345"),
        ]);
        assert_eq!(object_info(&map).unwrap().size, 12345);
    }

    fn reply(status: u16, pairs: &[(&str, &str)], body: &str) -> Response {
        let mut builder = http::Response::builder().status(status);
        for (name, value) in pairs {
            builder = builder.header(*name, *value);
        }
        Response::from(builder.body(body.to_string()).unwrap())
    }

    #[tokio::test]
    async fn error_reply_maps_code_message_and_request_id() {
        let body = "<Error><Code>SignatureDoesNotMatch</Code><Message>signature mismatch</Message>\
                    <RequestId>RID-XML</RequestId><EC>0002-00000040</EC></Error>";
        let error =
            error_from_response("PutObject", "oss://b/k".into(), reply(403, &[], body)).await;
        assert_eq!(error.kind, ErrorKind::Permanent);
        assert_eq!(error.operation, "PutObject");
        assert_eq!(error.location, "oss://b/k");
        assert_eq!(error.code.as_deref(), Some("SignatureDoesNotMatch"));
        assert_eq!(error.message, "signature mismatch (EC 0002-00000040)");
        assert_eq!(error.request_id.as_deref(), Some("RID-XML"));
    }

    #[tokio::test]
    async fn error_reply_kind_follows_the_code() {
        let cases = [
            (404, "NoSuchUpload", ErrorKind::NoSuchUpload),
            (409, "FileAlreadyExists", ErrorKind::AlreadyExists),
            (404, "NoSuchKey", ErrorKind::NotFound),
            (503, "ServiceUnavailable", ErrorKind::Transient),
            (400, "InvalidDigest", ErrorKind::Permanent),
        ];
        for (status, code, kind) in cases {
            let body = format!("<Error><Code>{code}</Code><Message>m</Message></Error>");
            let error =
                error_from_response("UploadPart", "oss://b/k".into(), reply(status, &[], &body))
                    .await;
            assert_eq!(error.kind, kind, "{code}");
        }
    }

    #[tokio::test]
    async fn head_error_is_read_from_x_oss_err_header() {
        let xml = "<Error><Code>AccessDenied</Code><Message>denied</Message><RequestId>RID-HEADER</RequestId></Error>";
        let encoded = base64::engine::general_purpose::STANDARD.encode(xml);
        let headers = [
            ("x-oss-err", encoded.as_str()),
            ("x-oss-request-id", "RID-OTHER"),
        ];
        let error =
            error_from_response("HeadObject", "oss://b/k".into(), reply(403, &headers, "")).await;
        assert_eq!(error.code.as_deref(), Some("AccessDenied"));
        assert_eq!(error.message, "denied");
        assert_eq!(error.request_id.as_deref(), Some("RID-HEADER"));
    }

    #[tokio::test]
    async fn non_xml_error_keeps_status_and_request_id_header() {
        let headers = [("x-oss-request-id", "RID-PROXY")];
        let error = error_from_response(
            "GetObject",
            "oss://b/k".into(),
            reply(502, &headers, "<html>Bad Gateway</html>"),
        )
        .await;
        assert_eq!(error.kind, ErrorKind::Transient);
        assert_eq!(error.code, None);
        assert_eq!(error.message, "OSS replied with HTTP status 502");
        assert_eq!(error.request_id.as_deref(), Some("RID-PROXY"));
    }

    #[test]
    fn object_info_without_length_is_none() {
        assert_eq!(object_info(&headers(&[("etag", "\"A\"")])), None);
    }
}
