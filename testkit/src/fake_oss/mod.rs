//! A fake Aliyun OSS server for tests: native OSS API on 127.0.0.1, bodies on disk, and the checks
//! the real service makes where clients tend to go wrong.
//!
//! Served operations: PutObject, GetObject (with `Range`), HeadObject, DeleteObject,
//! InitiateMultipartUpload, UploadPart, CompleteMultipartUpload, AbortMultipartUpload, ListParts
//! and ListMultipartUploads, and CopyObject of an object onto itself (to replace its metadata).
//! Every request must be virtual-hosted (`<bucket>.<endpoint_host>`) or
//! go to a bound custom domain, and must carry a valid V4 signature or V1 query signature.
//! Tests reach `<bucket>.oss-<region>.aliyuncs.com` at 127.0.0.1 by overriding DNS in the client;
//! [`FakeOss::http_client`] builds a reqwest client that resolves every name to the fake.
//!
//! Not served: CopyObject between different objects, UploadPartCopy, listing objects, bucket operations, V4 query
//! signatures, callbacks and server-side encryption.

mod auth;
mod copy;
mod faults;
mod listing;
mod multipart;
mod objects;
mod router;
mod store;
mod xml;

use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::Context as _;
use axum::Router;
use axum::extract::DefaultBodyLimit;
use chrono::{DateTime, Utc};
use md5::{Digest, Md5};

pub use store::StoredObject;

/// Signs a GET link for (bucket, key) that expires at the given time.
pub type LinkSigner = Arc<dyn Fn(&str, &str, DateTime<Utc>) -> String + Send + Sync>;

/// Settings of one fake OSS server.
#[derive(Clone)]
pub struct FakeOssConfig {
    /// The region the server pretends to be in, such as `cn-hangzhou`; V4 scopes must name it.
    pub region: String,
    pub access_key_id: String,
    pub access_key_secret: String,
    /// When set, every request must carry this STS token (`x-oss-security-token`, or
    /// `security-token` in a V1 query-signed URL).
    pub security_token: Option<String>,
    /// Buckets that exist; any other bucket name gets `NoSuchBucket`.
    pub buckets: Vec<String>,
    /// Custom domains (CNAME) bound to a bucket, as `(domain, bucket)`. A domain may be
    /// `localhost` or `127.0.0.1`, so a client in custom-domain mode needs no DNS override.
    pub custom_domains: Vec<(String, String)>,
}

impl FakeOssConfig {
    /// Returns a configuration for region `cn-hangzhou` with test credentials and the given buckets.
    pub fn with_buckets(buckets: &[&str]) -> Self {
        Self {
            region: "cn-hangzhou".to_string(),
            access_key_id: "fake-oss-access-key-id".to_string(),
            access_key_secret: "fake-oss-access-key-secret".to_string(),
            security_token: None,
            buckets: buckets.iter().map(|bucket| bucket.to_string()).collect(),
            custom_domains: Vec::new(),
        }
    }
}

impl fmt::Debug for FakeOssConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("FakeOssConfig")
            .field("region", &self.region)
            .field("access_key_id", &self.access_key_id)
            .field("access_key_secret", &"***")
            .field(
                "security_token",
                &self.security_token.as_ref().map(|_| "***"),
            )
            .field("buckets", &self.buckets)
            .field("custom_domains", &self.custom_domains)
            .finish()
    }
}

/// One request as the server received it, for assertions on what a client sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordedRequest {
    pub method: String,
    /// The Host header, with its port.
    pub host: String,
    /// The path as sent, still percent-encoded.
    pub path: String,
    /// Query parameters, decoded, in the order sent.
    pub query: Vec<(String, String)>,
    /// `authorization`, `content-*`, `range`, `transfer-encoding` and every `x-oss-*` header,
    /// with a security token shown as `***`.
    pub headers: Vec<(String, String)>,
    /// The status of the reply.
    pub status: u16,
}

impl RecordedRequest {
    /// Returns the first value of a header, by lowercase name.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(header, _)| header == name)
            .map(|(_, value)| value.as_str())
    }
}

pub(crate) struct Shared {
    pub config: FakeOssConfig,
    pub store: store::Store,
    pub cut_downloads_after: Mutex<Option<u64>>,
    /// Cut the next download through a query-signed link after this many bytes, then expire
    /// that link (see [`FakeOss::expire_link_mid_download`]).
    pub expire_link_after: Mutex<Option<u64>>,
    /// Query-signed links whose `Expires` is at or before this are refused as expired.
    pub links_expired_up_to: Mutex<Option<i64>>,
    pub log: Mutex<Vec<RecordedRequest>>,
}

impl Shared {
    pub fn endpoint_host(&self) -> String {
        format!("oss-{}.aliyuncs.com", self.config.region)
    }
}

/// A running fake OSS server. Dropping it stops the server and deletes its files.
pub struct FakeOss {
    shared: Arc<Shared>,
    address: SocketAddr,
    server: tokio::task::JoinHandle<()>,
}

impl FakeOss {
    /// Starts a server on a random port of 127.0.0.1 with a fresh temporary directory.
    pub async fn start(config: FakeOssConfig) -> anyhow::Result<FakeOss> {
        let store =
            store::Store::new().context("failed to create the fake OSS temporary directory")?;
        let shared = Arc::new(Shared {
            config,
            store,
            cut_downloads_after: Mutex::new(None),
            expire_link_after: Mutex::new(None),
            links_expired_up_to: Mutex::new(None),
            log: Mutex::new(Vec::new()),
        });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .context("failed to bind the fake OSS to 127.0.0.1")?;
        let address = listener
            .local_addr()
            .context("failed to read the fake OSS address")?;
        let app = Router::new()
            .fallback(router::handle)
            .layer(DefaultBodyLimit::disable())
            .with_state(shared.clone());
        let server = tokio::spawn(async move {
            if let Err(error) = axum::serve(listener, app).await {
                tracing::error!(%error, "fake OSS server stopped");
            }
        });
        tracing::debug!(%address, region = %shared.config.region, "fake OSS started");
        Ok(FakeOss {
            shared,
            address,
            server,
        })
    }

    pub fn port(&self) -> u16 {
        self.address.port()
    }

    /// Returns the standard OSS endpoint name for the region, such as `oss-cn-hangzhou.aliyuncs.com`.
    pub fn endpoint_host(&self) -> String {
        self.shared.endpoint_host()
    }

    /// Returns `<bucket>.<endpoint_host>:<port>`, the authority of virtual-hosted requests.
    pub fn bucket_authority(&self, bucket: &str) -> String {
        format!("{bucket}.{}:{}", self.endpoint_host(), self.port())
    }

    /// Builds a reqwest client that resolves every host name to this server, so requests to
    /// `<bucket>.<endpoint>` or a custom domain reach it and no request leaves the machine. URLs
    /// must still carry the port, because name resolution cannot change it.
    pub fn http_client(&self) -> anyhow::Result<reqwest::Client> {
        reqwest::Client::builder()
            .no_proxy()
            .dns_resolver(Arc::new(LoopbackResolver(self.address)))
            .build()
            .context("failed to build the reqwest client for the fake OSS")
    }

    pub fn config(&self) -> &FakeOssConfig {
        &self.shared.config
    }

    /// Returns the stored object, if any.
    pub fn object(&self, bucket: &str, key: &str) -> Option<StoredObject> {
        self.shared
            .store
            .lock()
            .objects
            .get(&(bucket.to_string(), key.to_string()))
            .cloned()
    }

    /// Reads a whole object into memory; meant for small test objects.
    pub fn read_object(&self, bucket: &str, key: &str) -> Option<Vec<u8>> {
        let object = self.object(bucket, key)?;
        std::fs::read(object.path).ok()
    }

    /// Lists the multipart uploads of a bucket that are neither completed nor aborted, as
    /// `(key, upload id)` sorted by key.
    pub fn pending_uploads(&self, bucket: &str) -> Vec<(String, String)> {
        let mut uploads: Vec<(String, String)> = self
            .shared
            .store
            .lock()
            .uploads
            .iter()
            .filter(|(_, upload)| upload.bucket == bucket)
            .map(|(id, upload)| (upload.key.clone(), id.clone()))
            .collect();
        uploads.sort();
        uploads
    }

    /// Stores an object without going through HTTP, replacing any object at that key.
    /// `metadata` names are given without the `x-oss-meta-` prefix.
    pub fn put_object_direct(
        &self,
        bucket: &str,
        key: &str,
        bytes: &[u8],
        metadata: &[(&str, &str)],
    ) -> anyhow::Result<StoredObject> {
        let written = self
            .shared
            .store
            .write_bytes(bytes)
            .with_context(|| format!("failed to write oss://{bucket}/{key} to disk"))?;
        let object = StoredObject {
            size: written.size,
            crc64: written.crc64,
            etag: format!("\"{}\"", hex::encode_upper(Md5::digest(bytes))),
            content_type: "application/octet-stream".to_string(),
            metadata: metadata
                .iter()
                .map(|(name, value)| (name.to_ascii_lowercase(), value.to_string()))
                .collect(),
            last_modified: Utc::now(),
            parts: None,
            path: written.path,
        };
        if let Some(previous) = self
            .shared
            .store
            .lock()
            .objects
            .insert((bucket.to_string(), key.to_string()), object.clone())
        {
            store::remove_file(&previous.path);
        }
        Ok(object)
    }

    /// Builds a V1 query-signed GET URL, the form of the download links Aliyun RDS hands out:
    /// `http://<bucket>.<endpoint>:<port>/<key>?Expires=…&OSSAccessKeyId=…&Signature=…`.
    pub fn presign_get(&self, bucket: &str, key: &str, expires: DateTime<Utc>) -> String {
        presign_v1_get(
            &self.shared.config,
            &self.bucket_authority(bucket),
            bucket,
            key,
            expires,
        )
    }

    /// Returns [`FakeOss::presign_get`] as a function that outlives this borrow, for a fake
    /// RDS API that hands out a fresh link on every call.
    pub fn link_signer(&self) -> LinkSigner {
        let config = self.shared.config.clone();
        let endpoint_host = self.endpoint_host();
        let port = self.port();
        Arc::new(move |bucket, key, expires| {
            let authority = format!("{bucket}.{endpoint_host}:{port}");
            presign_v1_get(&config, &authority, bucket, key, expires)
        })
    }

    /// Makes every following GetObject send at most `bytes` body bytes and then close the
    /// connection, although `Content-Length` promised the full length; `None` ends the fault.
    pub fn cut_downloads_after(&self, bytes: Option<u64>) {
        *self
            .shared
            .cut_downloads_after
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = bytes;
    }

    /// Lets a download link run out during a download: the next GetObject through a
    /// query-signed link sends `bytes` body bytes and closes the connection, and from then on
    /// that link, and every link that expires no later, answers 403 `AccessDenied` "Request has
    /// expired", as OSS does for a request that starts after `Expires`.
    pub fn expire_link_mid_download(&self, bytes: u64) {
        *self
            .shared
            .expire_link_after
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = Some(bytes);
    }

    /// Returns every request received so far, oldest first.
    pub fn request_log(&self) -> Vec<RecordedRequest> {
        self.shared
            .log
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
            .clone()
    }
}

/// Resolves every name to the fake's loopback address.
struct LoopbackResolver(SocketAddr);

impl reqwest::dns::Resolve for LoopbackResolver {
    fn resolve(&self, _name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let address = self.0;
        Box::pin(async move { Ok(Box::new(std::iter::once(address)) as reqwest::dns::Addrs) })
    }
}

impl Drop for FakeOss {
    fn drop(&mut self) {
        self.server.abort();
    }
}

/// Formats a time for `Last-Modified`: `Fri, 11 Apr 2025 06:41:24 GMT`.
pub(crate) fn http_date(time: DateTime<Utc>) -> String {
    time.format("%a, %d %b %Y %H:%M:%S GMT").to_string()
}

/// Builds a V1 query-signed GET URL for `bucket` reached at `authority`.
fn presign_v1_get(
    config: &FakeOssConfig,
    authority: &str,
    bucket: &str,
    key: &str,
    expires: DateTime<Utc>,
) -> String {
    let expires = expires.timestamp().to_string();
    let mut query = Vec::new();
    if let Some(token) = &config.security_token {
        query.push(("security-token".to_string(), token.clone()));
    }
    let string_to_sign = auth::v1_string_to_sign("GET", &[], &expires, bucket, key, &query);
    let signature = auth::v1_signature(&config.access_key_secret, &string_to_sign);
    let encode = |text: &str| backup_bridge::oss::signer::uri_encode(text);
    let path: String = key.split('/').map(encode).collect::<Vec<_>>().join("/");
    let mut url = format!(
        "http://{}/{path}?Expires={expires}&OSSAccessKeyId={}&Signature={}",
        authority,
        encode(&config.access_key_id),
        encode(&signature)
    );
    for (name, value) in &query {
        url.push_str(&format!("&{name}={}", encode(value)));
    }
    url
}
