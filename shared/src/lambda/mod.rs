//! Lambda entry points: each function's handler, between the trigger event and its job, and the
//! start-up that every `main` shares.

pub mod export_alerts;
pub mod export_poll;
pub mod export_start;
pub mod pull;
pub mod sync;

/// Loads the AWS SDK configuration from the Lambda environment (region, credentials, and the
/// `AWS_ENDPOINT_URL*` overrides used against local stand-ins).
pub async fn aws_sdk_config() -> aws_config::SdkConfig {
    aws_config::load_defaults(aws_config::BehaviorVersion::latest()).await
}
