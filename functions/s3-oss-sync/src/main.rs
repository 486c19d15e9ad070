//! `s3-oss-sync`: copies each object created under the S3 source prefix to Aliyun OSS, streamed
//! and verified with CRC-64. The handler and its retry rules live in
//! `backup_bridge::lambda::sync`.

use backup_bridge::config::process_env;
use backup_bridge::lambda::{aws_sdk_config, startup_error, sync::SyncFunction};
use lambda_runtime::{Error, LambdaEvent, run, service_fn};
use serde_json::Value;

#[tokio::main]
async fn main() -> Result<(), Error> {
    lambda_runtime::tracing::init_default_subscriber();

    let sdk_config = aws_sdk_config().await;
    let function = SyncFunction::from_env(&process_env, &sdk_config)
        .await
        .map_err(startup_error)?;

    run(service_fn(|event: LambdaEvent<Value>| {
        function.handle(event)
    }))
    .await
}
