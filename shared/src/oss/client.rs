//! [`OssStore`]: the HTTP side of the OSS adapter. It builds virtual-hosted (or custom-domain)
//! requests, signs each one with V4 and turns error replies into [`StorageError`]s.
//!
//! The store does not retry. Every error carries its kind, and the caller (the transfer engine)
//! retries transient ones with backoff.

use bytes::Bytes;
use chrono::Utc;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, Response};
use url::Url;

use super::config::OssConfig;
use super::response::error_from_response;
use super::signer::{self, SignableRequest, UNSIGNED_PAYLOAD};
use crate::storage::{ErrorKind, StorageError};

/// The maximum object key length that OSS accepts, in bytes.
const MAX_KEY_BYTES: usize = 1023;

/// The OSS adapter of the storage ports for one bucket. Cloning is cheap and shares the
/// connection pool.
#[derive(Debug, Clone)]
pub struct OssStore {
    pub(super) http: reqwest::Client,
    pub(super) config: std::sync::Arc<OssConfig>,
}

/// One request before signing. Header names are lowercase.
pub(super) struct OssRequest<'a> {
    pub operation: &'static str,
    pub method: Method,
    /// The object key, or `None` for a bucket-level request.
    pub key: Option<&'a str>,
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Option<Bytes>,
}

impl<'a> OssRequest<'a> {
    pub fn new(operation: &'static str, method: Method, key: Option<&'a str>) -> Self {
        Self {
            operation,
            method,
            key,
            query: Vec::new(),
            headers: Vec::new(),
            body: None,
        }
    }

    pub fn query(mut self, name: &str, value: impl Into<String>) -> Self {
        self.query.push((name.to_string(), value.into()));
        self
    }

    pub fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_ascii_lowercase(), value.into()));
        self
    }

    pub fn body(mut self, body: Bytes) -> Self {
        self.body = Some(body);
        self
    }
}

impl OssStore {
    /// Builds the store and its HTTP client (rustls, pooled connections, the configured
    /// timeouts and, in tests, the DNS overrides of [`OssConfig::resolve`]).
    ///
    /// # Errors
    /// Returns a permanent [`StorageError`] when the HTTP client cannot be built.
    pub fn new(config: OssConfig) -> Result<Self, StorageError> {
        let mut builder = reqwest::Client::builder()
            .connect_timeout(config.timeouts.connect)
            .read_timeout(config.timeouts.read)
            .pool_idle_timeout(config.timeouts.pool_idle)
            // Redirects are not followed, so a signed request and its body never go to a host
            // that the configuration did not name. A 3xx reply becomes an error.
            .redirect(reqwest::redirect::Policy::none());
        if !config.resolve.is_empty() {
            // DNS overrides only serve tests against local servers, and a proxy taken from
            // the environment would send those requests elsewhere.
            builder = builder.no_proxy();
        }
        for (host, address) in &config.resolve {
            builder = builder.resolve(host, *address);
        }
        let http = builder.build().map_err(|error| {
            StorageError::new(
                ErrorKind::Permanent,
                "CreateClient",
                format!("oss://{}", config.bucket),
                format!("failed to build the HTTP client: {error}"),
            )
        })?;
        Ok(Self {
            http,
            config: std::sync::Arc::new(config),
        })
    }

    pub fn config(&self) -> &OssConfig {
        &self.config
    }

    pub fn bucket(&self) -> &str {
        &self.config.bucket
    }

    /// Returns `oss://bucket/key`, the location that logs and errors name.
    pub fn object_location(&self, key: &str) -> String {
        format!("oss://{}/{key}", self.config.bucket)
    }

    fn request_location(&self, key: Option<&str>) -> String {
        match key {
            Some(key) => self.object_location(key),
            None => format!("oss://{}", self.config.bucket),
        }
    }

    /// Signs and sends `request`. A 2xx reply is returned as is, and any other reply becomes
    /// a [`StorageError`] built from its XML error body.
    ///
    /// # Errors
    /// Permanent for a key or header that cannot be sent, transient for network failures, and
    /// the kind that [`StorageError::kind_for`] decides for an error reply.
    pub(super) async fn send(&self, request: OssRequest<'_>) -> Result<Response, StorageError> {
        let location = self.request_location(request.key);
        let invalid = |message: String| {
            StorageError::new(ErrorKind::Permanent, request.operation, &location, message)
        };

        if let Some(key) = request.key {
            check_key(key).map_err(|reason| invalid(format!("invalid object key: {reason}")))?;
        }
        let url = self
            .url_for(&request)
            .map_err(|error| invalid(format!("failed to build the request URL: {error}")))?;

        let time = Utc::now();
        let mut headers = request.headers.clone();
        headers.push(("x-oss-date".into(), signer::format_time(time)));
        headers.push(("x-oss-content-sha256".into(), UNSIGNED_PAYLOAD.into()));
        if let Some(token) = &self.config.credentials.security_token {
            headers.push(("x-oss-security-token".into(), token.expose().to_string()));
        }

        let signable = SignableRequest {
            method: request.method.as_str(),
            bucket: Some(&self.config.bucket),
            key: request.key,
            query: &request.query,
            headers: &headers,
            additional_headers: &[],
        };
        let credentials = &self.config.credentials;
        let authorization = signer::authorization(
            &credentials.access_key_id,
            credentials.access_key_secret.expose(),
            &self.config.region,
            time,
            &signable,
        );
        headers.push(("authorization".into(), authorization));

        let header_map = to_header_map(&headers)
            .map_err(|name| invalid(format!("invalid value for header {name}")))?;
        let mut builder = self
            .http
            .request(request.method.clone(), url)
            .headers(header_map);
        if let Some(body) = request.body {
            builder = builder.body(body);
        }

        let response = builder.send().await.map_err(|error| {
            StorageError::new(
                ErrorKind::Transient,
                request.operation,
                &location,
                describe_reqwest_error(&error),
            )
        })?;
        let status = response.status().as_u16();
        tracing::debug!(
            operation = request.operation,
            bucket = %self.config.bucket,
            key = request.key.unwrap_or(""),
            status,
            request_id = response.headers().get("x-oss-request-id").and_then(|v| v.to_str().ok()).unwrap_or(""),
            "OSS request finished"
        );
        if response.status().is_success() {
            Ok(response)
        } else {
            Err(error_from_response(request.operation, location, response).await)
        }
    }

    fn url_for(&self, request: &OssRequest<'_>) -> Result<Url, url::ParseError> {
        let endpoint = &self.config.endpoint;
        match request.key {
            Some(key) => endpoint.object_url(&self.config.bucket, key, &request.query),
            None => endpoint.bucket_url(&self.config.bucket, &request.query),
        }
    }
}

/// Checks that `key` is a key OSS accepts and that a URL carries unchanged.
fn check_key(key: &str) -> Result<(), &'static str> {
    if key.is_empty() {
        return Err("the key is empty");
    }
    if key.len() > MAX_KEY_BYTES {
        return Err("the key is longer than 1023 bytes");
    }
    if key.starts_with('/') || key.starts_with('\\') {
        return Err("the key starts with a slash");
    }
    // NOTE: URL parsers resolve `.` and `..` path segments (also when escaped as %2E), so such a
    // key would reach a different object. OSS allows these keys, but this client rejects them.
    if key
        .split('/')
        .any(|segment| segment == "." || segment == "..")
    {
        return Err("the key has a `.` or `..` segment");
    }
    Ok(())
}

/// Converts signed header pairs into a header map; on failure returns the offending name.
fn to_header_map(headers: &[(String, String)]) -> Result<HeaderMap, String> {
    let mut map = HeaderMap::with_capacity(headers.len());
    for (name, value) in headers {
        let header_name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| name.clone())?;
        let header_value = HeaderValue::from_str(value.trim()).map_err(|_| name.clone())?;
        map.insert(header_name, header_value);
    }
    Ok(map)
}

/// Describes a reqwest failure with its causes, which reqwest's own message leaves out.
pub(super) fn describe_reqwest_error(error: &reqwest::Error) -> String {
    let mut text = if error.is_timeout() {
        format!("request timed out: {error}")
    } else if error.is_connect() {
        format!("failed to connect: {error}")
    } else {
        format!("request failed: {error}")
    };
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        text.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn store_debug_output_hides_secret_and_token() {
        use crate::oss::{EndpointOptions, OssEndpoint, OssTimeouts};
        use crate::secret::{AliyunCredentials, Secret};

        let config = OssConfig {
            endpoint: OssEndpoint::parse(
                "oss-cn-hangzhou.aliyuncs.com",
                EndpointOptions::default(),
            )
            .unwrap(),
            region: "cn-hangzhou".into(),
            bucket: "backup-bucket".into(),
            credentials: AliyunCredentials {
                access_key_id: "LTAI-visible".into(),
                access_key_secret: Secret::new("store-secret-value"),
                security_token: Some(Secret::new("store-token-value")),
            },
            timeouts: OssTimeouts::default(),
            resolve: Vec::new(),
        };
        let printed = format!("{:?}", OssStore::new(config).unwrap());
        assert!(printed.contains("LTAI-visible"));
        assert!(!printed.contains("store-secret-value"));
        assert!(!printed.contains("store-token-value"));
    }

    #[test]
    fn check_key_accepts_awkward_but_valid_keys() {
        for key in ["mysql/a b+c/备份$1.gz", "a/.hidden/b", "a//b", "x"] {
            assert_eq!(check_key(key), Ok(()), "{key}");
        }
    }

    #[test]
    fn check_key_rejects_keys_oss_or_urls_cannot_carry() {
        let long = "k".repeat(MAX_KEY_BYTES + 1);
        for key in ["", "/leading", "a/../b", "a/./b", "..", long.as_str()] {
            assert!(check_key(key).is_err(), "{key}");
        }
    }
}
