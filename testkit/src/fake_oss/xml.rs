//! OSS error replies and the XML bodies of the multipart operations.
//!
//! Errors are `<Error><Code/><Message/><RequestId/><HostId/></Error>` with the status OSS uses for
//! the code. A HEAD reply has no body, so OSS sends the error XML base64-encoded in the
//! `x-oss-err` header instead. The official SDKs read that header, and the fake sends it too.

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use base64::Engine;
use chrono::{DateTime, SecondsFormat, Utc};
use quick_xml::escape::escape;

pub(crate) const XML_HEADER: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";

/// An error reply: the OSS error code, its HTTP status, a message and extra elements (such as
/// `StringToSign` for a signature mismatch).
#[derive(Debug, Clone)]
pub(crate) struct OssError {
    pub status: StatusCode,
    pub code: &'static str,
    pub message: String,
    pub details: Vec<(&'static str, String)>,
}

impl OssError {
    pub fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
            details: Vec::new(),
        }
    }

    pub fn with_detail(mut self, element: &'static str, value: impl Into<String>) -> Self {
        self.details.push((element, value.into()));
        self
    }

    pub fn with_code(mut self, code: &'static str) -> Self {
        self.code = code;
        self
    }

    pub fn invalid_argument(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "InvalidArgument", message)
    }

    pub fn signature_mismatch(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "SignatureDoesNotMatch", message)
    }

    pub fn access_denied(message: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "AccessDenied", message)
    }

    pub fn no_such_key() -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NoSuchKey",
            "The specified key does not exist.",
        )
    }

    pub fn no_such_upload(upload_id: &str) -> Self {
        Self::new(
            StatusCode::NOT_FOUND,
            "NoSuchUpload",
            "The specified upload does not exist. The upload ID may be invalid, or the upload may have been aborted or completed.",
        )
        .with_detail("UploadId", upload_id)
    }

    pub fn file_already_exists() -> Self {
        Self::new(
            StatusCode::CONFLICT,
            "FileAlreadyExists",
            "The object you specified already exists and can not be overwritten.",
        )
    }

    pub fn malformed_xml(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, "MalformedXML", message)
    }

    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "InternalError", message)
    }

    pub fn not_implemented(message: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_IMPLEMENTED, "NotImplemented", message)
    }

    fn to_xml(&self, request_id: &str, host_id: &str) -> String {
        let mut xml = format!(
            "{XML_HEADER}<Error>\n  <Code>{}</Code>\n  <Message>{}</Message>\n  <RequestId>{}</RequestId>\n  <HostId>{}</HostId>\n",
            self.code,
            escape(self.message.as_str()),
            escape(request_id),
            escape(host_id)
        );
        for (element, value) in &self.details {
            xml.push_str(&format!(
                "  <{element}>{}</{element}>\n",
                escape(value.as_str())
            ));
        }
        xml.push_str("</Error>\n");
        xml
    }

    /// Builds the reply; a HEAD reply carries the XML only in `x-oss-err`.
    pub fn into_response(self, request_id: &str, host_id: &str, is_head: bool) -> Response {
        let xml = self.to_xml(request_id, host_id);
        let mut builder = Response::builder()
            .status(self.status)
            .header("x-oss-request-id", request_id)
            .header("content-type", "application/xml");
        let body = if is_head {
            let encoded = base64::engine::general_purpose::STANDARD.encode(xml.as_bytes());
            if let Ok(value) = HeaderValue::from_str(&encoded) {
                builder = builder.header("x-oss-err", value);
            }
            Body::empty()
        } else {
            builder = builder.header("content-length", xml.len());
            Body::from(xml)
        };
        builder
            .body(body)
            .unwrap_or_else(|_| Response::new(Body::empty()))
    }
}

/// Formats a time as the list replies do: `2025-04-11T06:41:24.000Z`.
pub(crate) fn iso_time(time: DateTime<Utc>) -> String {
    time.to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Writes `<Name>value</Name>` with the value escaped.
pub(crate) fn element(name: &str, value: &str) -> String {
    format!("<{name}>{}</{name}>", escape(value))
}

/// Returns `key` as a list reply writes it: URL-encoded when the request asked for
/// `encoding-type=url`, as the official SDKs do by default.
pub(crate) fn encode_key(key: &str, url_encoding: bool) -> String {
    if url_encoding {
        percent_encoding::utf8_percent_encode(key, URL_KEY).to_string()
    } else {
        key.to_string()
    }
}

/// Keys in `encoding-type=url` replies keep unreserved characters and `/`.
const URL_KEY: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~')
    .remove(b'/');

/// Wraps an XML document in a 200 reply.
pub(crate) fn xml_response(xml: String) -> Response {
    Response::builder()
        .status(StatusCode::OK)
        .header("content-type", "application/xml")
        .header("content-length", xml.len())
        .body(Body::from(xml))
        .unwrap_or_else(|_| Response::new(Body::empty()))
}
