//! Helpers shared by the OSS client tests: a fake OSS on 127.0.0.1 and an [`OssStore`] that
//! reaches it through the standard endpoint name or a custom domain.

#![allow(dead_code)]

use std::net::{Ipv4Addr, SocketAddr};

use backup_bridge::oss::{EndpointOptions, OssConfig, OssEndpoint, OssStore, OssTimeouts};
use backup_bridge::secret::{AliyunCredentials, Secret};
use testkit::fake_oss::{FakeOss, FakeOssConfig};

pub const BUCKET: &str = "backup-bucket";
pub const REGION: &str = "cn-hangzhou";
/// The custom domain (CNAME) that the fake binds to [`BUCKET`] in custom-domain tests.
pub const CUSTOM_DOMAIN: &str = "backups.example.com";

pub fn fake_config() -> FakeOssConfig {
    let mut config = FakeOssConfig::with_buckets(&[BUCKET]);
    config
        .custom_domains
        .push((CUSTOM_DOMAIN.to_string(), BUCKET.to_string()));
    config
}

pub async fn start_fake() -> FakeOss {
    start_fake_with(fake_config()).await
}

pub async fn start_fake_with(config: FakeOssConfig) -> FakeOss {
    FakeOss::start(config).await.expect("fake OSS starts")
}

fn credentials(oss: &FakeOss, secret: &str) -> AliyunCredentials {
    let config = oss.config();
    AliyunCredentials {
        access_key_id: config.access_key_id.clone(),
        access_key_secret: Secret::new(secret),
        security_token: config.security_token.clone().map(Secret::new),
    }
}

fn loopback(oss: &FakeOss) -> SocketAddr {
    SocketAddr::from((Ipv4Addr::LOCALHOST, oss.port()))
}

/// Builds a store for `bucket.oss-cn-hangzhou.aliyuncs.com`, with that name resolved to the
/// fake on 127.0.0.1.
pub fn standard_store(oss: &FakeOss) -> OssStore {
    store_with_secret(oss, &oss.config().access_key_secret.clone())
}

pub fn store_with_secret(oss: &FakeOss, secret: &str) -> OssStore {
    let endpoint = format!("http://{}:{}", oss.endpoint_host(), oss.port());
    let options = EndpointOptions {
        custom_domain: false,
        allow_http: true,
    };
    let config = OssConfig {
        endpoint: OssEndpoint::parse(&endpoint, options).expect("fake endpoint parses"),
        region: REGION.to_string(),
        bucket: BUCKET.to_string(),
        credentials: credentials(oss, secret),
        timeouts: OssTimeouts::default(),
        resolve: vec![(format!("{BUCKET}.{}", oss.endpoint_host()), loopback(oss))],
    };
    OssStore::new(config).expect("store builds")
}

/// Builds a store in custom-domain mode: requests go to `backups.example.com` itself, resolved
/// to the fake on 127.0.0.1.
pub fn custom_domain_store(oss: &FakeOss) -> OssStore {
    let endpoint = format!("http://{CUSTOM_DOMAIN}:{}", oss.port());
    let options = EndpointOptions {
        custom_domain: true,
        allow_http: true,
    };
    let config = OssConfig {
        endpoint: OssEndpoint::parse(&endpoint, options).expect("custom domain parses"),
        region: REGION.to_string(),
        bucket: BUCKET.to_string(),
        credentials: credentials(oss, &oss.config().access_key_secret.clone()),
        timeouts: OssTimeouts::default(),
        resolve: vec![(CUSTOM_DOMAIN.to_string(), loopback(oss))],
    };
    OssStore::new(config).expect("store builds")
}

/// Returns `len` bytes of a repeating pattern that differs from part to part.
pub fn pattern(len: usize, seed: u8) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed))
        .collect()
}

/// Collects a body stream into memory (test objects are small).
pub async fn collect(mut stream: backup_bridge::storage::ByteStream) -> Vec<u8> {
    use futures::StreamExt;
    let mut bytes = Vec::new();
    while let Some(chunk) = stream.next().await {
        bytes.extend_from_slice(&chunk.expect("body chunk arrives"));
    }
    bytes
}
