//! AWS SDK clients for tests, pointed at moto with static credentials.
//!
//! The configuration is built field by field instead of loaded from the environment, so no
//! client made here looks up credentials or a region through the EC2 instance metadata service
//! or reaches any host other than the moto server on 127.0.0.1.

use std::sync::atomic::{AtomicU32, Ordering};

use aws_config::{BehaviorVersion, Region, SdkConfig};
use aws_sdk_s3::config::{Credentials, SharedCredentialsProvider};

use crate::moto;

/// The region every test client uses; moto keeps separate state per region.
pub const TEST_REGION: &str = "us-east-1";

/// Returns an SDK configuration for moto at `endpoint`, with static test credentials.
pub fn sdk_config(endpoint: &str) -> SdkConfig {
    let credentials = Credentials::new("testing", "testing", None, None, "backup-bridge-testkit");
    SdkConfig::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new(TEST_REGION))
        .credentials_provider(SharedCredentialsProvider::new(credentials))
        .endpoint_url(endpoint)
        .build()
}

/// Returns an S3 client for this process's moto server, with path-style addressing because
/// moto on 127.0.0.1 cannot serve bucket names as host names.
pub fn s3_client() -> aws_sdk_s3::Client {
    let config = sdk_config(&moto::endpoint());
    let s3_config = aws_sdk_s3::config::Builder::from(&config)
        .force_path_style(true)
        .build();
    aws_sdk_s3::Client::from_conf(s3_config)
}

/// Returns a Secrets Manager client for this process's moto server.
pub fn secrets_client() -> aws_sdk_secretsmanager::Client {
    aws_sdk_secretsmanager::Client::new(&sdk_config(&moto::endpoint()))
}

/// Creates a bucket in moto.
///
/// # Panics
/// When moto rejects the request; the message names the bucket and moto's error.
pub async fn create_bucket(name: &str) {
    let result = s3_client().create_bucket().bucket(name).send().await;
    if let Err(error) = result {
        let code = aws_sdk_s3::error::ProvideErrorMetadata::code(&error).unwrap_or("no code");
        panic!(
            "failed to create bucket {name} in moto at {}: {code}: {error}",
            moto::endpoint()
        );
    }
}

/// Creates a bucket whose name starts with `prefix` and is unique across the tests of this
/// process and earlier runs against the same moto server, and returns its name.
pub async fn unique_bucket(prefix: &str) -> String {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let sequence = COUNTER.fetch_add(1, Ordering::Relaxed);
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.subsec_nanos())
        .unwrap_or(0);
    // Bucket names allow lowercase letters, digits and hyphens, 3 to 63 characters.
    let prefix: String = prefix
        .to_ascii_lowercase()
        .chars()
        .map(|c| if c.is_ascii_alphanumeric() { c } else { '-' })
        .take(30)
        .collect();
    let name = format!("{prefix}-{}-{sequence}-{nanos:x}", std::process::id());
    create_bucket(&name).await;
    name
}
