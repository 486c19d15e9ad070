//! Routing: finds the bucket from the Host header (virtual-hosted or custom domain, never path
//! style), authenticates the request, picks the operation from method and query, and records the
//! request for the tests.

use std::sync::Arc;

use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method};
use axum::response::Response;
use chrono::Utc;
use percent_encoding::percent_decode_str;

use super::auth::{self, RequestToCheck};
use super::xml::OssError;
use super::{RecordedRequest, Shared, copy, listing, multipart, objects};

/// Everything an operation handler needs about the request it serves.
pub(crate) struct Context {
    pub shared: Arc<Shared>,
    pub method: Method,
    pub bucket: String,
    /// The object key, percent-decoded; empty for bucket-level requests.
    pub key: String,
    pub query: Vec<(String, String)>,
    pub headers: HeaderMap,
}

impl Context {
    pub fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    pub fn has_query(&self, name: &str) -> bool {
        self.query.iter().any(|(key, _)| key == name)
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|value| value.to_str().ok())
    }

    /// Returns whether the request sets `x-oss-forbid-overwrite: true`.
    pub fn forbids_overwrite(&self) -> bool {
        self.header("x-oss-forbid-overwrite")
            .is_some_and(|value| value.eq_ignore_ascii_case("true"))
    }

    /// Returns the `x-oss-meta-*` headers with the prefix removed and names in lowercase.
    pub fn user_metadata(&self) -> std::collections::BTreeMap<String, String> {
        self.headers
            .iter()
            .filter_map(|(name, value)| {
                let suffix = name.as_str().strip_prefix("x-oss-meta-")?;
                Some((
                    suffix.to_string(),
                    String::from_utf8_lossy(value.as_bytes()).into_owned(),
                ))
            })
            .collect()
    }
}

/// Serves every request: the single fallback handler of the axum router.
pub(crate) async fn handle(State(shared): State<Arc<Shared>>, request: Request) -> Response {
    let request_id = new_request_id();
    let (parts, body) = request.into_parts();
    let host = parts
        .headers
        .get("host")
        .and_then(|value| value.to_str().ok())
        .map(str::to_string)
        .or_else(|| parts.uri.authority().map(|authority| authority.to_string()))
        .unwrap_or_default();
    let raw_path = parts.uri.path().to_string();
    let query = parse_query(parts.uri.query().unwrap_or(""));
    let is_head = parts.method == Method::HEAD;

    let mut record = RecordedRequest {
        method: parts.method.to_string(),
        host: host.clone(),
        path: raw_path.clone(),
        query: query.clone(),
        headers: selected_headers(&parts.headers),
        status: 0,
    };

    let result = serve(
        shared.clone(),
        parts.method,
        &host,
        &raw_path,
        query,
        parts.headers,
        body,
    )
    .await;
    let mut response = match result {
        Ok(response) => response,
        Err(error) => {
            tracing::debug!(code = error.code, message = %error.message, host = %host, path = %raw_path, "fake OSS rejected a request");
            error.into_response(&request_id, host_without_port(&host), is_head)
        }
    };
    if let Ok(value) = request_id.parse() {
        response.headers_mut().insert("x-oss-request-id", value);
    }
    record.status = response.status().as_u16();
    shared
        .log
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner())
        .push(record);
    response
}

async fn serve(
    shared: Arc<Shared>,
    method: Method,
    host: &str,
    raw_path: &str,
    query: Vec<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, OssError> {
    let bucket = resolve_bucket(&shared, host, raw_path)?;
    let key = percent_decode_str(raw_path.strip_prefix('/').unwrap_or(raw_path))
        .decode_utf8()
        .map_err(|_| {
            OssError::invalid_argument(format!("object key in path {raw_path} is not valid UTF-8"))
        })?
        .into_owned();
    if !shared.config.buckets.contains(&bucket) {
        return Err(OssError::new(
            axum::http::StatusCode::NOT_FOUND,
            "NoSuchBucket",
            "The specified bucket does not exist.",
        )
        .with_detail("BucketName", bucket));
    }

    let check = RequestToCheck {
        method: &method,
        bucket: &bucket,
        key: &key,
        query: &query,
        headers: &headers,
    };
    let auth_kind = auth::authenticate(&shared.config, &check, Utc::now())?;
    auth::check_payload_headers(&headers, auth_kind)?;
    if matches!(auth_kind, auth::AuthKind::PresignedV1) {
        check_link_not_expired(&shared, &query)?;
    }

    let context = Context {
        shared,
        method,
        bucket,
        key,
        query,
        headers,
    };
    dispatch(context, body).await
}

async fn dispatch(context: Context, body: Body) -> Result<Response, OssError> {
    let method = context.method.clone();
    if context.key.is_empty() {
        return match method {
            Method::GET if context.has_query("uploads") => listing::list_uploads(&context),
            _ => Err(OssError::not_implemented(
                "the fake OSS serves only ListMultipartUploads at bucket level",
            )),
        };
    }
    if context.header("x-oss-copy-source").is_some() {
        return match method {
            Method::PUT => copy::copy_object(&context),
            _ => Err(OssError::not_implemented(format!(
                "x-oss-copy-source on a {method} request"
            ))),
        };
    }
    match method {
        Method::PUT if context.has_query("uploadId") || context.has_query("partNumber") => {
            multipart::upload_part(&context, body).await
        }
        Method::PUT => objects::put_object(&context, body).await,
        Method::GET if context.has_query("uploadId") => listing::list_parts(&context),
        Method::GET => objects::get_object(&context, false),
        Method::HEAD => objects::get_object(&context, true),
        Method::DELETE if context.has_query("uploadId") => multipart::abort(&context),
        Method::DELETE => objects::delete_object(&context),
        Method::POST if context.has_query("uploads") => multipart::initiate(&context),
        Method::POST if context.has_query("uploadId") => multipart::complete(&context, body).await,
        _ => Err(OssError::not_implemented(format!(
            "the fake OSS does not implement {method} on an object with this query"
        ))),
    }
}

fn host_without_port(host: &str) -> &str {
    host.rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|byte| byte.is_ascii_digit()))
        .map_or(host, |(name, _)| name)
}

/// Finds the bucket a request addresses. OSS serves only `<bucket>.<endpoint>` and bound custom
/// domains. A request to the bare endpoint or to an IP address is path style, and OSS rejects it
/// with `SecondLevelDomainForbidden`.
fn resolve_bucket(shared: &Shared, host: &str, raw_path: &str) -> Result<String, OssError> {
    let name = host_without_port(host).to_ascii_lowercase();
    if let Some((_, bucket)) = shared
        .config
        .custom_domains
        .iter()
        .find(|(domain, _)| domain.eq_ignore_ascii_case(&name))
    {
        return Ok(bucket.clone());
    }
    let endpoint = shared.endpoint_host();
    if let Some(bucket) = name.strip_suffix(&format!(".{endpoint}"))
        && !bucket.is_empty()
        && !bucket.contains('.')
    {
        return Ok(bucket.to_string());
    }
    let is_ip = name.parse::<std::net::IpAddr>().is_ok() || name.starts_with('[');
    if name == endpoint || is_ip || name == "localhost" {
        return Err(
            OssError::access_denied("Please use virtual hosted style to access.")
                .with_code("SecondLevelDomainForbidden")
                .with_detail("PathStyleRequest", raw_path),
        );
    }
    Err(OssError::access_denied(format!(
        "host {name} is neither <bucket>.{endpoint} nor a custom domain bound to a bucket"
    )))
}

fn parse_query(query: &str) -> Vec<(String, String)> {
    query
        .split('&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (name, value) = pair.split_once('=').unwrap_or((pair, ""));
            (decode_component(name), decode_component(value))
        })
        .collect()
}

/// Decodes a query component; OSS clients percent-encode, so `+` stays a plus sign.
fn decode_component(text: &str) -> String {
    percent_decode_str(text).decode_utf8_lossy().into_owned()
}

/// Headers kept in the request log: the ones tests assert on; a security token is masked.
fn selected_headers(headers: &HeaderMap) -> Vec<(String, String)> {
    const NAMES: &[&str] = &[
        "authorization",
        "content-length",
        "content-md5",
        "content-type",
        "content-encoding",
        "transfer-encoding",
        "range",
    ];
    headers
        .iter()
        .filter(|(name, _)| name.as_str().starts_with("x-oss-") || NAMES.contains(&name.as_str()))
        .map(|(name, value)| {
            let value = if name.as_str() == "x-oss-security-token" {
                "***".to_string()
            } else {
                String::from_utf8_lossy(value.as_bytes()).into_owned()
            };
            (name.as_str().to_string(), value)
        })
        .collect()
}

fn new_request_id() -> String {
    let bytes: [u8; 12] = rand::random();
    hex::encode_upper(bytes)
}

/// Refuses a query-signed link that [`crate::fake_oss::FakeOss::expire_link_mid_download`] let
/// run out, with the reply OSS gives for an expired link.
fn check_link_not_expired(shared: &Shared, query: &[(String, String)]) -> Result<(), OssError> {
    let expires = query
        .iter()
        .find(|(name, _)| name == "Expires")
        .and_then(|(_, value)| value.parse::<i64>().ok());
    let expired_up_to = *shared
        .links_expired_up_to
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    match (expires, expired_up_to) {
        (Some(expires), Some(limit)) if expires <= limit => {
            Err(OssError::access_denied("Request has expired.")
                .with_detail("Expires", expires.to_string()))
        }
        _ => Ok(()),
    }
}
