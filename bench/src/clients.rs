//! Clients for the local servers, shared by the harness and `bench-copy`. Each one has static
//! test credentials and an explicit 127.0.0.1 endpoint, so nothing looks up credentials,
//! regions or host names outside the machine.

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider};
use backup_bridge::oss::{EndpointOptions, OssConfig, OssStore, OssTimeouts};
use backup_bridge::secret::{AliyunCredentials, Secret};
use backup_bridge::storage::s3::{S3ClientOptions, build_client};

use crate::protocol::{OssTarget, S3Endpoint};

/// Builds an S3 client with static credentials, so no credential or region lookup leaves the
/// machine.
pub fn s3_client(endpoint: &S3Endpoint) -> aws_sdk_s3::Client {
    let credentials = Credentials::new(
        &endpoint.access_key_id,
        &endpoint.secret_access_key,
        None,
        None,
        "backup-bridge-bench",
    );
    let config = SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(endpoint.region.clone()))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .build();
    let options = S3ClientOptions {
        endpoint_url: Some(endpoint.url.clone()),
        force_path_style: true,
    };
    build_client(&config, &options)
}

/// Builds an OSS store for `<bucket>.oss-<region>.aliyuncs.com`, with that name resolved to the
/// fake OSS on 127.0.0.1 so no DNS lookup happens.
pub fn oss_store(endpoint: &OssTarget) -> anyhow::Result<OssStore> {
    let host = format!("oss-{}.aliyuncs.com", endpoint.region);
    let options = EndpointOptions {
        custom_domain: false,
        allow_http: true,
    };
    let parsed = backup_bridge::oss::OssEndpoint::parse(
        &format!("http://{host}:{}", endpoint.port),
        options,
    )?;
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], endpoint.port));
    let config = OssConfig {
        endpoint: parsed,
        region: endpoint.region.clone(),
        bucket: endpoint.bucket.clone(),
        credentials: AliyunCredentials {
            access_key_id: endpoint.access_key_id.clone(),
            access_key_secret: Secret::new(endpoint.access_key_secret.clone()),
            security_token: None,
        },
        timeouts: OssTimeouts::default(),
        resolve: vec![(format!("{}.{host}", endpoint.bucket), loopback)],
    };
    Ok(OssStore::new(config)?)
}
