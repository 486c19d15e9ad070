//! An [`ObjectSource`] over plain HTTP(S) GET, for presigned download URLs such as the backup
//! links of Aliyun RDS. The "key" of every call is the full URL.
//!
//! The URL must pass a host allowlist (`https` only unless plain `http` is allowed, hosts under
//! `aliyuncs.com` by default), so that a bad API response cannot make the function fetch from
//! an arbitrary address. Redirects are followed only to the same host. A response is data only
//! when it is 2xx with the expected `Content-Length` and `Content-Range`. Anything else, such as
//! the short XML `AccessDenied` "Request has expired" of OSS, is an error and never a body.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use reqwest::header::HeaderMap;
use url::Url;

use super::{ByteRange, ByteStream, ErrorKind, ObjectInfo, ObjectSource, StorageError};
use crate::checksum::parse_crc64;

/// Maximum number of error-body bytes read to find the error code and message.
const MAX_ERROR_BODY: usize = 4096;

/// Settings of an [`HttpSource`].
#[derive(Debug, Clone)]
pub struct HttpSourceConfig {
    /// A host is allowed when it equals one of these names or ends with `.` and one of them.
    pub allowed_host_suffixes: Vec<String>,
    /// Accepts `http://` URLs; only local tests set it.
    pub allow_plain_http: bool,
    pub connect_timeout: Duration,
    /// Maximum wait for the next chunk of a body before the download counts as stalled.
    pub read_timeout: Duration,
}

impl Default for HttpSourceConfig {
    fn default() -> Self {
        Self {
            allowed_host_suffixes: vec!["aliyuncs.com".to_string()],
            allow_plain_http: false,
            connect_timeout: Duration::from_secs(10),
            read_timeout: Duration::from_secs(60),
        }
    }
}

impl HttpSourceConfig {
    /// Checks `url` against the scheme rule and the host allowlist.
    pub fn check_url(&self, url: &str) -> Result<Url, StorageError> {
        let rejected = |message: String| {
            StorageError::new(ErrorKind::Permanent, "GetObject", redact(url), message)
        };
        let parsed =
            Url::parse(url).map_err(|error| rejected(format!("invalid download url: {error}")))?;
        match parsed.scheme() {
            "https" => {}
            "http" if self.allow_plain_http => {}
            other => {
                return Err(rejected(format!(
                    "download url scheme {other} is not allowed; use https"
                )));
            }
        }
        if !parsed.username().is_empty() || parsed.password().is_some() {
            return Err(rejected(
                "download url must not carry a user name or password".into(),
            ));
        }
        let host = parsed.host_str().unwrap_or_default().to_ascii_lowercase();
        if !self.host_is_allowed(&host) {
            return Err(rejected(format!(
                "download host {host} is not in the allowlist {:?}; add it to the allowed hosts if it is trusted",
                self.allowed_host_suffixes
            )));
        }
        Ok(parsed)
    }

    fn host_is_allowed(&self, host: &str) -> bool {
        !host.is_empty()
            && self.allowed_host_suffixes.iter().any(|suffix| {
                let suffix = suffix.trim_start_matches('.').to_ascii_lowercase();
                host == suffix || host.ends_with(&format!(".{suffix}"))
            })
    }
}

/// Returns `scheme://host[:port]/path` of a URL, without the query that carries the signature
/// of a presigned URL, for logs and errors.
pub fn redact(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut parsed) => {
            parsed.set_query(None);
            parsed.set_fragment(None);
            let _ = parsed.set_username("");
            let _ = parsed.set_password(None);
            parsed.to_string()
        }
        Err(_) => "<invalid url>".to_string(),
    }
}

/// Returns true when a download failed because its presigned URL expired (OSS returns 403
/// `AccessDenied` "Request has expired"), so the caller should fetch a fresh URL and resume.
pub fn is_expired_url(error: &StorageError) -> bool {
    error.code.as_deref() == Some("AccessDenied")
        && error.message.to_ascii_lowercase().contains("expired")
}

/// Downloads objects by URL.
#[derive(Debug, Clone)]
pub struct HttpSource {
    http: reqwest::Client,
    config: Arc<HttpSourceConfig>,
}

impl HttpSource {
    /// Builds a source with a default HTTP client.
    pub fn new(config: HttpSourceConfig) -> Result<Self, StorageError> {
        Self::with_client_builder(config, reqwest::Client::builder())
    }

    /// Builds a source on `builder`, to which the redirect rule and timeouts are added. Tests use
    /// it to resolve the fake OSS host names to 127.0.0.1.
    pub fn with_client_builder(
        config: HttpSourceConfig,
        builder: reqwest::ClientBuilder,
    ) -> Result<Self, StorageError> {
        let policy = reqwest::redirect::Policy::custom(|attempt| {
            let same_host = attempt.previous().first().is_some_and(|first| {
                first.host_str() == attempt.url().host_str()
                    && first.port_or_known_default() == attempt.url().port_or_known_default()
                    && (attempt.url().scheme() == "https"
                        || first.scheme() == attempt.url().scheme())
            });
            if attempt.previous().len() > 5 {
                attempt.error("more than 5 redirects")
            } else if same_host {
                attempt.follow()
            } else {
                // The 3xx response is returned as it is and rejected as a non-2xx status.
                attempt.stop()
            }
        });
        let http = builder
            .redirect(policy)
            .connect_timeout(config.connect_timeout)
            .read_timeout(config.read_timeout)
            .build()
            .map_err(|error| {
                StorageError::new(
                    ErrorKind::Permanent,
                    "GetObject",
                    "http",
                    format!("failed to build the http client: {error}"),
                )
            })?;
        Ok(Self {
            http,
            config: Arc::new(config),
        })
    }

    async fn send(
        &self,
        operation: &'static str,
        url: &str,
        range: Option<ByteRange>,
    ) -> Result<reqwest::Response, StorageError> {
        let parsed = self.config.check_url(url)?;
        let mut request = self.http.get(parsed);
        if let Some(range) = range {
            request = request.header("range", format!("bytes={}-{}", range.first, range.last));
        }
        let response = request
            .send()
            .await
            .map_err(|error| transport_error(operation, url, error))?;
        if response.status().is_success() {
            return Ok(response);
        }
        Err(status_error(operation, url, response).await)
    }
}

fn transport_error(operation: &'static str, url: &str, error: reqwest::Error) -> StorageError {
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
fn xml_element(body: &str, name: &str) -> Option<String> {
    let start = body.find(&format!("<{name}>"))? + name.len() + 2;
    let end = body[start..].find(&format!("</{name}>"))? + start;
    Some(body[start..end].trim().to_string())
}

/// Turns a non-2xx response into an error, reading at most [`MAX_ERROR_BODY`] bytes of its body
/// for the OSS error code, message and request id. The body is never treated as data.
async fn status_error(
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

fn header_u64(headers: &HeaderMap, name: &str) -> Option<u64> {
    headers.get(name)?.to_str().ok()?.trim().parse().ok()
}

/// Parses `Content-Range: bytes first-last/total`.
fn content_range(headers: &HeaderMap) -> Option<(u64, u64, u64)> {
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

fn object_info(headers: &HeaderMap, size: u64) -> ObjectInfo {
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
fn check_response(
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
fn counted_body(url: &str, response: reqwest::Response, expected: u64) -> ByteStream {
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

#[async_trait]
impl ObjectSource for HttpSource {
    fn location(&self, key: &str) -> String {
        redact(key)
    }

    /// Reads the size and checksums with a GET of the first byte, because a presigned GET URL
    /// is not valid for HEAD. Returns `None` on 404.
    async fn head(&self, key: &str) -> Result<Option<ObjectInfo>, StorageError> {
        let response = match self
            .send("HeadObject", key, Some(ByteRange { first: 0, last: 0 }))
            .await
        {
            Ok(response) => response,
            Err(error) if error.kind == ErrorKind::NotFound => return Ok(None),
            Err(error) => return Err(error),
        };
        let headers = response.headers().clone();
        // OSS ignores a range it cannot serve, such as byte 0 of an empty object, and sends 200.
        let size = match response.status().as_u16() {
            206 => content_range(&headers).map(|(_, _, total)| total),
            _ => header_u64(&headers, "content-length"),
        }
        .ok_or_else(|| {
            StorageError::new(
                ErrorKind::Transient,
                "HeadObject",
                redact(key),
                "response has no object size",
            )
        })?;
        Ok(Some(object_info(&headers, size)))
    }

    async fn get(
        &self,
        key: &str,
        range: Option<ByteRange>,
    ) -> Result<(ObjectInfo, ByteStream), StorageError> {
        if let Some(range) = range
            && range.first > range.last
        {
            return Err(StorageError::new(
                ErrorKind::Permanent,
                "GetObject",
                redact(key),
                format!(
                    "invalid range {}-{}: first byte after last byte",
                    range.first, range.last
                ),
            ));
        }
        let response = self.send("GetObject", key, range).await?;
        let (total, length) = check_response(key, &response, range)?;
        let info = object_info(response.headers(), total);
        Ok((info, counted_body(key, response, length)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config() -> HttpSourceConfig {
        HttpSourceConfig::default()
    }

    #[test]
    fn accepts_https_hosts_under_aliyuncs_com() {
        let url =
            "https://rdsbak-hz.oss-cn-hangzhou.aliyuncs.com/custins1/a_qp.xb?Expires=1&Signature=x";
        assert!(config().check_url(url).is_ok());
    }

    #[test]
    fn rejects_hosts_outside_the_allowlist() {
        for url in [
            "https://example.com/a",
            "https://aliyuncs.com.example.com/a",
            "https://evilaliyuncs.com/a",
            "https://169.254.169.254/latest/meta-data",
            "https://user:pass@rds.aliyuncs.com/a",
        ] {
            assert!(config().check_url(url).is_err(), "{url} was accepted");
        }
    }

    #[test]
    fn rejects_plain_http_unless_allowed() {
        let url = "http://bucket.oss-cn-hangzhou.aliyuncs.com/a";
        assert!(config().check_url(url).is_err());
        let allowed = HttpSourceConfig {
            allow_plain_http: true,
            ..config()
        };
        assert!(allowed.check_url(url).is_ok());
        assert!(
            allowed
                .check_url("ftp://bucket.oss-cn-hangzhou.aliyuncs.com/a")
                .is_err()
        );
    }

    #[test]
    fn redact_drops_the_signed_query() {
        let url = "https://b.oss-cn-hangzhou.aliyuncs.com/k/a.xb?Expires=1&OSSAccessKeyId=ak&Signature=secret";
        assert_eq!(redact(url), "https://b.oss-cn-hangzhou.aliyuncs.com/k/a.xb");
    }

    #[test]
    fn expired_url_is_recognised_by_code_and_message() {
        let expired = StorageError::new(
            ErrorKind::Permanent,
            "GetObject",
            "u",
            "Request has expired.",
        )
        .with_code("AccessDenied");
        let denied = StorageError::new(ErrorKind::Permanent, "GetObject", "u", "Access denied.")
            .with_code("AccessDenied");
        assert!(is_expired_url(&expired));
        assert!(!is_expired_url(&denied));
    }

    #[test]
    fn xml_element_reads_oss_error_fields() {
        let body = "<?xml version=\"1.0\"?><Error><Code>AccessDenied</Code><Message>Request has expired.</Message><RequestId>R1</RequestId></Error>";
        assert_eq!(xml_element(body, "Code").as_deref(), Some("AccessDenied"));
        assert_eq!(xml_element(body, "RequestId").as_deref(), Some("R1"));
        assert_eq!(xml_element(body, "HostId"), None);
    }
}
