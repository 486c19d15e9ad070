//! An [`ObjectSource`] over plain HTTP(S) GET, for presigned download URLs such as the backup
//! links of Aliyun RDS. The "key" of every call is the full URL.
//!
//! The URL must pass a host allowlist (`https` only unless plain `http` is allowed, hosts under
//! `aliyuncs.com` by default), so that a bad API response cannot make the function fetch from
//! an arbitrary address. Redirects are followed only to the same host. A response is data only
//! when it is 2xx with the expected `Content-Length` and `Content-Range`. Anything else, such as
//! the short XML `AccessDenied` "Request has expired" of OSS, is an error and never a body.

mod response;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use chrono::{DateTime, NaiveDateTime, TimeDelta, Utc};
use url::Url;

use super::{ByteRange, ByteStream, ErrorKind, ObjectInfo, ObjectSource, StorageError};
use response::{
    check_response, content_range, counted_body, header_u64, object_info, status_error,
    transport_error,
};

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

/// Returns the absolute expiry of an OSS presigned URL: `Expires` (Unix seconds) of a V1 URL, or
/// `x-oss-date` plus `x-oss-expires` seconds of a V4 URL. Returns `None` when the URL has neither.
pub fn presigned_expiry(url: &str) -> Option<DateTime<Utc>> {
    let parsed = Url::parse(url).ok()?;
    let query: Vec<(String, String)> = parsed.query_pairs().into_owned().collect();
    let param = |name: &str| {
        query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    };
    if let Some(expires) = param("Expires") {
        return DateTime::from_timestamp(expires.parse().ok()?, 0);
    }
    let signed_at = NaiveDateTime::parse_from_str(param("x-oss-date")?, "%Y%m%dT%H%M%SZ")
        .ok()?
        .and_utc();
    let seconds: i64 = param("x-oss-expires")?.parse().ok()?;
    Some(signed_at + TimeDelta::seconds(seconds))
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
mod tests;
